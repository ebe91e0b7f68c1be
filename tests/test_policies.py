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
