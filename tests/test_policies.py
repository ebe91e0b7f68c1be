"""Management policies reproduce the step tables and timeouts documented for them."""
import numpy as np
import pytest

import toolkit as tk
from toolkit import policies
from toolkit.policies import KubeVirt, Nova, OVirt

GIB = 2**30


def test_nova_steps_for_an_8_gib_guest():
    # nova/virt/libvirt/migration.py, documented for an 8 GiB shared-storage guest
    steps = Nova().steps(8 * GIB)
    assert [t for t, _ in steps] == list(range(0, 6001, 600))
    assert [d for _, d in steps] == [50, 95, 140, 185, 230, 275, 320, 365, 410, 455, 500]
    pol = Nova().kernel_array(8 * GIB)
    assert pol[tk.kernels.layout.POL_COMPLETION_MS] == 6400 * 1000       # 800 s x 8 GiB
    # small guests count as 2 GiB
    assert Nova().steps(GIB)[1][0] == 150


def test_ovirt_exponential_downtimes_and_wait():
    # VDSM exponential_downtime(500, 10)
    assert OVirt().downtimes() == [51, 51, 53, 57, 65, 79, 108, 165, 278, 499]
    assert OVirt().wait_s(4 * GIB) == pytest.approx(30.0)      # 75 s/GiB x 4 GiB / 10 steps
    assert OVirt().wait_s(64 * GIB) == 60                      # at most 60 s


def test_kubevirt_timeouts():
    # completionTimeoutPerGiB x memory in decimal GB rounded up; 150 s progress timeout
    assert KubeVirt.data_gb(8 * GIB) == 9
    pol = KubeVirt().kernel_array(8 * GIB)
    layout = tk.kernels.layout
    assert pol[layout.POL_COMPLETION_MS] == 150 * 9 * 1000
    assert pol[layout.POL_PROGRESS_MS] == 150 * 1000 and pol[layout.POL_POLL_MS] == 400
    assert KubeVirt(completion_timeout_per_gib=20).kernel_array(8 * GIB)[
        layout.POL_COMPLETION_MS] == 180 * 1000


NEVER = dict(ram_size="2GiB", dirty_rate="500MiB/s", link_bandwidth="1Gbit/s", max_bandwidth=0)


def test_a_run_follows_novas_downtime_steps():
    ds = tk.simulate(**NEVER, max_time=75, policy="nova:downtime_delay=3")
    table = Nova(downtime_delay=3).steps(2 * GIB)            # every 6 s from 50 to 500 ms
    t, limit = ds.time.values, ds.window_downtime_limit.values
    for (start, value), (end, _) in zip(table, table[1:] + [(10**9, None)]):
        # each step holds from its time (plus one 0.5 s poll and one window) to the next
        inside = (t > start * 1000 + 700) & (t < end * 1000)
        assert inside.any() and np.all(limit[inside] == value), (start, value)
    assert int(ds.final_downtime_limit) == 500 and not bool(ds.aborted)


def test_kubevirt_aborts_at_its_completion_timeout():
    ds = tk.simulate(**NEVER, max_time=300, policy="kubevirt:completion_timeout_per_gib=20")
    acceptable = 20 * 3 * 1000                                 # 2 GiB = 2.15 GB -> 3
    assert bool(ds.aborted) and not bool(ds.converged)
    assert acceptable < ds.total_time.item() <= acceptable + 400 + 150


def _polls(policy, remaining_pages):
    """Run the kernel monitor's polls over a sequence of remaining pages."""
    from toolkit.kernels import layout as L
    from toolkit.kernels.policy import monitor_poll, monitor_start
    pol = policy.kernel_array(GIB)
    st = np.zeros(L.N_STATE, np.int64)
    monitor_start(pol, st)
    out = []
    for pages in remaining_pages:
        st[L.S_DIRTY] = pages
        out.append(int(monitor_poll(pol, st)))
    return out


def test_progress_timeouts():
    # KubeVirt: progress is remaining below the previous poll; 2 s without it aborts
    kv = KubeVirt(progress_timeout=2)                 # polls every 0.4 s
    assert _polls(kv, [100] * 6) == [0] * 6 and _polls(kv, [100] * 7)[-1] == 1
    assert 1 not in _polls(kv, [100, 90, 95, 90, 95, 90, 95, 90, 95, 90])
    # oVirt: progress is remaining below its lowest value so far (lowmark)
    ov = OVirt(progress_timeout=25, max_time_per_gib=0)   # polls every 10 s
    assert _polls(ov, [100, 90, 95, 91, 95]) == [0, 0, 0, 0, 1]    # 30 s after 90
    # the same sequence is progress for KubeVirt's rule (91 < 95)
    assert 1 not in _polls(KubeVirt(progress_timeout=1), [100, 90, 95, 91, 95])


def test_pausing_policies_pause_then_converge():
    for policy in ("kubevirt:completion_timeout_per_gib=10,allow_workload_disruption=true",
                   "nova:completion_timeout=10,timeout_action=force_complete"):
        ds = tk.simulate(**NEVER, max_time=300, policy=policy)
        assert bool(ds.converged) and not bool(ds.aborted), policy
        assert 20_000 < ds.pause_time.item() < ds.total_time.item()
        # with the guest paused nothing is dirtied any more: the migration drains
        assert ds.guest_writes.item() < 500 * 2**20 / 4096 * ds.pause_time.item() / 1000 + 1


def test_ovirt_ramps_after_the_first_iteration_and_aborts():
    ds = tk.simulate(**NEVER, max_time=900, policy="ovirt")
    limits = np.unique(ds.window_downtime_limit.values)
    assert limits[0] == 51 and set(limits) <= set(OVirt().downtimes()) and len(limits) > 3
    # migration_max_time_per_gib_mem: 64 s x 2 GiB, seen at a 10 s poll
    assert bool(ds.aborted) and 128_000 < ds.total_time.item() <= 140_000 + 150
    stall = tk.simulate(**NEVER, max_time=900, policy="ovirt:max_time_per_gib=0")
    assert bool(stall.aborted) and stall.total_time.item() > 240_000


def test_sweep_over_policies():
    policies = ["none", "kubevirt:completion_timeout_per_gib=20", "nova:downtime_delay=3"]
    grid = tk.sweep(**{**NEVER, "max_time": 120}, policy=policies)
    assert list(grid.policy.values) == ["none", "kubevirt:completion_timeout_per_gib=20",
                                        "nova:downtime_delay=3"]
    assert grid.aborted.values.tolist() == [False, True, False]
    assert grid.final_downtime_limit.values.tolist() == [300, 300, 500]


def test_policy_strings_round_trip_and_bad_ones_are_rejected():
    for text in ("none", "nova", "kubevirt:allow_workload_disruption=true",
                 "ovirt:downtime=800,downtime_steps=5"):
        assert policies.to_string(policies.parse(text)) == text
    assert tk.Scenario(policy=Nova(timeout_action="force_complete")).policy == \
        "nova:timeout_action=force_complete"
    for bad, match in [("vmware", "expected 'none' or one of nova, kubevirt, ovirt"),
                       ("nova:speed=3", "'speed' is not an option of nova"),
                       ("nova:downtime=50", r"nova downtime=50 is out of range: expected an "
                                            r"integer in \[100, 2000000\]"),
                       ("nova:timeout_action=pause", "expected 'abort' or 'force_complete'"),
                       ("kubevirt:allow_workload_disruption=1", "expects true or false")]:
        with pytest.raises(ValueError, match=match):
            tk.Scenario(policy=bad)


def test_postcopy_by_policy():
    # Nova with permit_post_copy switches once a poll sees < 10 % progress after the
    # first iteration; KubeVirt with allowPostCopy at its completion timeout
    nova = tk.simulate(**NEVER, max_time=300, policy="nova:permit_post_copy=true")
    kube = tk.simulate(**NEVER, max_time=300,
                       policy="kubevirt:completion_timeout_per_gib=20,allow_post_copy=true")
    for ds in (nova, kube):
        assert bool(ds.converged) and not bool(ds.aborted)
        assert not np.isnan(ds.postcopy_start_time.item()) and int(ds.postcopy_faults) > 0
    assert nova.postcopy_start_time.item() > nova.time.values[nova.syncs.values > 1][0]
    assert 60_000 < kube.postcopy_start_time.item() <= 60_000 + 400 + 200


# --- Proxmox VE and KubeVirt as run in 2026 (../shared/reference/field-2026.md) ---

def _monitor(policy, polls, ram_size=GIB):
    """Run the kernel monitor's polls over ``(remaining [B], state changes)`` pairs;
    returns (action, downtime-limit [ms], time of the poll [ms]) per poll."""
    from toolkit.kernels import layout as L
    from toolkit.kernels.policy import monitor_poll, monitor_start
    pol = policy.kernel_array(ram_size)
    st = np.zeros(L.N_STATE, np.int64)
    st[L.S_DOWNTIME_LIMIT] = 300                       # QEMU's, before the policy sets its own
    monitor_start(pol, st)
    out = []
    for remaining, changes in polls:
        st[L.S_DIRTY] = remaining // 4096
        for key, value in changes.items():
            st[getattr(L, key)] = value
        now = st[L.S_POLL_NEXT] // 10**9
        action = int(monitor_poll(pol, st))
        out.append((action, int(st[L.S_DOWNTIME_LIMIT]), int(now)))
    return out


def test_proxmox_doubling_table_and_constants():
    from toolkit.policies import Proxmox
    # migrate_downtime 0.1 s, doubled up to 2000 s (fix #7044)
    assert Proxmox().downtimes() == [100 * 2**i for i in range(15)] + [2_000_000]
    assert Proxmox(migrate_downtime=1.5).downtimes()[:3] == [1500, 3000, 6000]
    pol = Proxmox().kernel_array(8 * GIB)
    layout = tk.kernels.layout
    assert pol[layout.POL_POLL_MS] == 1000 and pol[layout.POL_FAST_POLL_MS] == 100
    assert pol[layout.POL_COUNT] == 5 and pol[layout.POL_INITIAL_DOWNTIME] == 100
    assert Proxmox.MAX_BANDWIDTH == 16 * GIB and Proxmox().auto_converge
    with pytest.raises(ValueError, match=r"migrate_downtime=-1.0 is out of range.*\[0, 2000\]"):
        tk.Scenario(policy="proxmox:migrate_downtime=-1")


def test_proxmox_counter_doubles_after_six_polls_that_grew():
    from toolkit.policies import Proxmox
    # remaining grows at every poll: the counter passes 5 at the 6th growth (the 7th
    # poll, the first has nothing to compare with) and starts again
    grow = [((100 + i) * 2**20, {}) for i in range(14)]
    limits = [d for _, d, _ in _monitor(Proxmox(), grow)]
    assert limits[:6] == [100] * 6 and limits[6:12] == [200] * 6 and limits[12] == 400
    assert [t for _, _, t in _monitor(Proxmox(), grow)][:3] == [1000, 2000, 3000]
    # polls where remaining fell do not count, and do not reset the counter either
    mixed = [((100 + (i % 2) * 10 + i) * 2**20, {}) for i in range(14)]
    rises = sum(b[0] > a[0] for a, b in zip(mixed, mixed[1:]))
    assert rises == 7 and [d for _, d, _ in _monitor(Proxmox(), mixed)][-1] == 200
    # a poll that sees remaining 0 counts
    assert _monitor(Proxmox(), [(0, {})] * 6)[-1][1] == 200


def test_proxmox_polls_every_0_1_s_near_the_end():
    from toolkit.policies import Proxmox
    # average sent per poll: 10 MiB, then 10 MiB / 2 polls; remaining 1 MiB is below it
    polls = [(900 * 2**20, {"S_TRANSFERRED": 10 * 2**20}),
             (2**20, {"S_TRANSFERRED": 20 * 2**20}), (2**20, {}), (2**20, {})]
    assert [t for _, _, t in _monitor(Proxmox(), polls)] == [1000, 2000, 2100, 2200]


def test_proxmox_run_turns_on_auto_converge_and_doubles():
    ds = tk.simulate(**NEVER, max_time=200, policy="proxmox")
    assert int(ds.cpu_throttle_percentage) > 0           # auto-converge, from the policy
    limits = np.unique(ds.window_downtime_limit.values)
    assert limits[0] == 100 and set(limits) <= set(policies.Proxmox().downtimes())
    assert len(limits) > 2 and bool(ds.converged)
    with pytest.raises(ValueError, match="conflicts with policy='proxmox'"):
        tk.Scenario(policy="proxmox", dirty_limit=True)


def test_kubevirt_vep291_ramp_table_after_iteration_3_with_cooldown():
    kv = KubeVirt(downtime_tuning=True)
    # 150 ms, 7 linear steps to maxDowntimeMs 900
    assert kv.tuning_table() == [150, 257, 364, 471, 578, 685, 792, 900]
    # polls every 0.4 s; a new iteration at every poll from sync 1 on
    polls = [(GIB, {"S_SYNCS": i + 1}) for i in range(60)]
    out = _monitor(kv, polls)
    limits = [d for _, d, _ in out]
    assert limits[:3] == [150] * 3                 # iterations 1-3: no step
    assert limits[3] == 257                        # iteration 4, at 1.6 s
    # the next step waits the 10 s cooldown: 25 polls of 0.4 s
    first_at = out[3][2]
    second = next(t for _, d, t in out if d == 364)
    assert second - first_at == 10_000
    # iteration 5 seen at the first poll steps at once; then no new iteration, no
    # step, even after the cooldown
    idle = [(GIB, {"S_SYNCS": 5})] + [(GIB, {})] * 40
    assert {d for _, d, _ in _monitor(kv, idle)} == {257}


def test_kubevirt_stall_detector_constants_and_ewma():
    kv = KubeVirt(stall_detection=True)
    layout = tk.kernels.layout
    pol = kv.kernel_array(GIB)
    assert (pol[layout.POL_STALL_MS], pol[layout.POL_STALL_MARGIN],
            pol[layout.POL_STALL_DOWNTIME], pol[layout.POL_STALL_ABORT],
            pol[layout.POL_SWITCHOVER_MS], pol[layout.POL_FORCE_DOWNTIME]) == \
        (40_000, 4, 900, 150, 60_000, 2_000_000)
    from toolkit.kernels.policy import monitor_poll, monitor_start
    st = np.zeros(layout.N_STATE, np.int64)
    st[layout.S_DOWNTIME_LIMIT] = 300
    monitor_start(pol, st)
    assert st[layout.S_DOWNTIME_LIMIT] == 300            # min(900, QEMU's 300)
    ewma = None
    for bw in (100e6, 200e6, 50e6):
        st[layout.S_LAST_BW] = bw
        monitor_poll(pol, st)
        ewma = bw if ewma is None else 0.4 * bw + 0.6 * ewma
        assert st[layout.S_POL_EWMA] == pytest.approx(ewma, abs=1)


def _stalled(kv, remaining):
    """Polls of a migration whose iterations restart at the same remaining bytes,
    at 100 MB/s: (action, downtime-limit, time) per poll."""
    polls = [(remaining, {"S_SYNCS": i + 1, "S_LAST_BW": 100_000_000,
                          "S_DIRTY_BYTES_LAST_SYNC": remaining}) for i in range(300)]
    return _monitor(kv, polls)


def test_kubevirt_stall_raises_then_forces_the_switchover():
    kv = KubeVirt(stall_detection=True, progress_timeout=0)
    # estimated downtime 100 MB / 100 MB/s = 1000 ms: within 1.5 x 900 ms
    out = _stalled(kv, 100_000_000)
    stall = next(t for _, d, t in out if d == 900)
    # the baseline is the end of the first pass (sync 2, the second poll at 0.8 s);
    # the first boundary more than 40 s later is at 41.2 s
    assert stall == 41_200
    force = next(t for _, d, t in out if d == 2_000_000)
    assert 60_000 < force - stall <= 60_400
    assert all(a == 0 for a, _, _ in out)
    # 1 ms short of the 4 % margin is not progress; more than it is
    fall = [(10**8 - i * 3_900_000, {"S_SYNCS": i + 1, "S_LAST_BW": 10**8,
                                     "S_DIRTY_BYTES_LAST_SYNC": int(10**8 * 0.9605 ** i)})
            for i in range(150)]
    assert {d for _, d, _ in _monitor(kv, fall)} == {300}


def test_kubevirt_stall_aborts_beyond_1_5x_max_downtime():
    kv = KubeVirt(stall_detection=True, progress_timeout=0)
    # 140 MB / 100 MB/s = 1400 ms > 1350 ms: a precopy-only migration aborts
    out = _stalled(kv, 140_000_000)
    assert [a for a, _, _ in out].count(1) == 1          # once (the migration ends there)
    aborted_at = next(t for a, _, t in out if a == 1)
    assert aborted_at == 41_200
    # with postcopy allowed it switches to postcopy instead
    post = KubeVirt(stall_detection=True, progress_timeout=0, allow_post_copy=True)
    assert 3 in [a for a, _, _ in _stalled(post, 140_000_000)]


def _sync_times(ds):
    """Times [ms] of the windows where dirty_sync_count grew, by the new count."""
    syncs, t = ds.syncs.values, ds.time.values
    at = np.nonzero(np.diff(syncs))[0] + 1
    return {int(syncs[i]): float(t[i]) for i in at}


def test_kubevirt_2026_runs_ramp_and_give_up_on_a_stall():
    # 500 MiB/s over 2 GiB on 1 Gbit/s: the guest outruns the link; no iteration
    # starts 4 % lower than the one after the first pass (~17 s passes)
    stall = tk.simulate(**NEVER, max_time=300,
                        policy="kubevirt:stall_detection=true,downtime_tuning=true")
    syncs = _sync_times(stall)
    end = stall.total_time.item()
    assert bool(stall.aborted) and not bool(stall.converged)
    # judged at a boundary: the first sync more than 40 s after the baseline (sync 2)
    judged = min(n for n, t in syncs.items() if t > syncs[2] + 40_000 - 400)
    assert syncs[judged] < end <= syncs[judged] + 500 and end > syncs[2] + 40_000
    assert judged == 5 and 57_000 < end < 70_000
    ramp = tk.simulate(**NEVER, max_time=300, policy="kubevirt:downtime_tuning=true")
    assert np.unique(ramp.window_downtime_limit.values).tolist() == \
        KubeVirt(downtime_tuning=True).tuning_table()
    assert not bool(ramp.converged) and not bool(ramp.aborted)


def test_kubevirt_stall_detector_waits_out_a_long_first_pass():
    # 64 GiB dirtying 1 MiB/s on 10 Gbit/s: the first pass alone takes ~55 s
    run = dict(ram_size="64GiB", dirty_rate="1MiB/s", link_bandwidth="10Gbit/s",
               max_bandwidth=0, max_time=300)
    ds = tk.simulate(**run, policy="kubevirt:stall_detection=true")
    assert bool(ds.converged) and not bool(ds.aborted)
    assert _sync_times(ds)[2] > 50_000                    # sync 2 ends the first pass
    legacy = tk.simulate(**run, policy="kubevirt")
    assert ds.total_time.item() == legacy.total_time.item()
    # at the monitor: 80 s of first pass (no sync after setup's) is never a stall
    kv = KubeVirt(stall_detection=True, progress_timeout=0)
    first = [(GIB - i * 2**22, {"S_SYNCS": 1, "S_LAST_BW": 10**6,
                                "S_DIRTY_BYTES_LAST_SYNC": GIB}) for i in range(200)]
    assert {(a, d) for a, d, _ in _monitor(kv, first)} == {(0, 300)}


def test_kubevirt_stall_is_judged_at_iteration_boundaries_only():
    kv = KubeVirt(stall_detection=True, progress_timeout=0)
    # setup's sync at the first poll, the first pass ends at the second (0.8 s),
    # then a new iteration every 20 s (50 polls), each starting at the same bytes
    polls = []
    for i in range(200):
        syncs = 1 if i == 0 else 2 + (i - 1) // 50
        polls.append((100_000_000, {"S_SYNCS": syncs, "S_LAST_BW": 10**8,
                                    "S_DIRTY_BYTES_LAST_SYNC": 100_000_000}))
    out = _monitor(kv, polls)
    # boundaries at 0.8, 20.8, 40.8 (40.0 s: not more than the timeout), 60.8 s
    assert next(t for _, d, t in out if d == 900) == 60_800
    assert all(d == 300 for _, d, t in out if t < 60_800)
    # a guest 140 MB behind at 100 MB/s (1.4 s > 1.5 x 900 ms) aborts there
    behind = [(140_000_000, {**c, "S_DIRTY_BYTES_LAST_SYNC": 140_000_000}) for _, c in polls]
    assert [(a, t) for a, _, t in _monitor(kv, behind) if a] == [(1, 60_800)]


def test_kubevirt_stall_detector_completion_timeout_raises_then_forces():
    # completion timeout 2 s (1 s/GB x 2 GB), workload disruption allowed: VEP 248
    # never pauses; it raises downtime-limit to maxDowntimeMs, forces 60 s later
    kv = KubeVirt(stall_detection=True, progress_timeout=0, completion_timeout_per_gib=1,
                  allow_workload_disruption=True)
    falling = [(GIB - i * 2**20, {"S_SYNCS": 1, "S_LAST_BW": 10**8}) for i in range(200)]
    out = _monitor(kv, falling)
    assert all(a == 0 for a, _, _ in out)                    # no pause, no abort
    assert next(t for _, d, t in out if d == 900) == 2_400  # the first poll after 2 s
    assert next(t for _, d, t in out if d == 2_000_000) == 62_800
    # the legacy path pauses at the same poll (and again: nobody pauses the guest here)
    legacy = KubeVirt(progress_timeout=0, completion_timeout_per_gib=1,
                      allow_workload_disruption=True)
    assert [(a, t) for a, _, t in _monitor(legacy, falling) if a][0] == (2, 2_400)
    # postcopy allowed: postcopy at the timeout, as on the legacy path
    post = KubeVirt(stall_detection=True, progress_timeout=0, completion_timeout_per_gib=1,
                    allow_post_copy=True)
    assert [(a, t) for a, _, t in _monitor(post, falling) if a] == [(3, 2_400)]
    # without disruption it aborts at the timeout
    plain = KubeVirt(stall_detection=True, progress_timeout=0, completion_timeout_per_gib=1)
    assert [(a, t) for a, _, t in _monitor(plain, falling) if a][0] == (1, 2_400)


def test_kubevirt_stall_detector_run_forces_at_its_completion_timeout():
    # the outrunning guest with a 20 s/GB timeout and disruption allowed: at 60 s
    # downtime-limit goes to 900 ms (poll at 60.4 s), 60 s later to 2,000,000 ms (the
    # first poll more than 60 s after it, at 120.8 s), and it converges unpaused
    ds = tk.simulate(**NEVER, max_time=300, policy=(
        "kubevirt:stall_detection=true,completion_timeout_per_gib=20,"
        "allow_workload_disruption=true,stall_timeout=1000"))
    t, limit = ds.time.values, ds.window_downtime_limit.values
    assert np.all(limit[t < 60_000] == 300)
    assert 60_400 < t[limit == 900].min() <= 60_400 + 300
    assert 120_800 < t[limit == 2_000_000].min() <= 120_800 + 300
    assert bool(ds.converged) and not bool(ds.aborted)
    assert int(ds.final_downtime_limit) == 2_000_000 and np.isnan(ds.pause_time.item())
