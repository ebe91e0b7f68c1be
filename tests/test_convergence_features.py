"""Auto-converge and QEMU's release rules, each from its documented behaviour."""
import numpy as np
import pytest

import toolkit as tk
from toolkit.kernels import layout as L
from toolkit.kernels.guest import SLICE_PS, throttled_run_time
from toolkit.kernels.precopy import (complete_ready, exact_sync_wanted,
                                     migration_trigger_throttle)
from toolkit.encode import kernel_inputs

MS = 10**9  # ps


def _period_closes(sc, periods):
    """Run ``migration_trigger_throttle`` over rate periods of (dirty pages, bytes
    sent) and return the throttle after each."""
    p, _ = kernel_inputs(sc)
    st = np.zeros(L.N_STATE, np.int64)
    out = []
    for dirty_pages, sent in periods:
        st[L.S_PERIOD_PAGES] = dirty_pages
        st[L.S_TRANSFERRED] += sent
        migration_trigger_throttle(p, st)
        st[L.S_XFER_PREV] = st[L.S_TRANSFERRED]
        out.append(int(st[L.S_THROTTLE]))
    return out


HIGH = (1000, 4096 * 1000)      # 4.1 MB newly dirty against 4.1 MB sent: above 50 %
LOW = (100, 4096 * 1000)


def test_throttle_steps_on_every_second_high_period():
    sc = tk.Scenario(auto_converge=True)
    # 20 % at the second high period, +10 at every second one after; a low period
    # does not reset the count (QEMU: "++dirty_rate_high_cnt >= 2")
    assert _period_closes(sc, [HIGH, HIGH, HIGH, LOW, HIGH, HIGH, HIGH]) == \
        [0, 20, 20, 20, 30, 30, 40]
    assert _period_closes(sc, [HIGH] * 20)[-1] == 99           # max-cpu-throttle
    capped = tk.Scenario(auto_converge=True, max_cpu_throttle=45, cpu_throttle_initial=25,
                         cpu_throttle_increment=15)
    assert _period_closes(capped, [HIGH] * 8)[1::2] == [25, 40, 45, 45]
    # without the capability the count runs, but nothing is throttled
    assert _period_closes(tk.Scenario(), [HIGH] * 6) == [0] * 6
    # the trigger share: 1000 pages against 4.1 MB is 100 %, not above a 100 % threshold
    assert _period_closes(tk.Scenario(auto_converge=True, throttle_trigger_threshold=100),
                          [HIGH] * 4) == [0] * 4


def test_tailslow_steps_towards_the_ideal_throttle():
    sc = tk.Scenario(auto_converge=True, cpu_throttle_tailslow=True)
    # dirty 2x the threshold: cpu_now = 80, cpu_ideal = 80 * 0.5 = 40, step min(40, 10) = 10
    dirty_twice = (2000, 4096 * 2000)      # 8.2 MB against a 50 % threshold of 8.2 MB x 0.5
    assert _period_closes(sc, [dirty_twice] * 4) == [0, 20, 20, 30]
    # dirty just above the threshold: cpu_ideal = 80 * (threshold / dirty) ~ 79, step 1
    near = (1001, 4096 * 2000)
    assert _period_closes(sc, [near] * 4) == [0, 20, 20, 21]


@pytest.mark.parametrize("pct, t_ms, ran_ms", [
    (50, 10, 0), (50, 20, 10), (50, 1000, 500),          # periods of 20 ms: sleep 10, run 10
    (20, 2.5, 0), (20, 12.5, 10), (20, 1000, 800),       # 12.5 ms: sleep 2.5, run 10
    (99, 1000, 10), (99, 995, 5),                        # 1 s: sleep 990 ms, run 10
])
def test_a_throttled_vcpu_runs_10_ms_per_period(pct, t_ms, ran_ms):
    assert throttled_run_time(int(t_ms * MS), pct) == int(ran_ms * MS)
    assert SLICE_PS == 10 * MS


def test_a_migration_that_only_converges_with_auto_converge():
    base = dict(ram_size="1GiB", dirty_rate="150MiB/s", link_bandwidth="1Gbit/s",
                max_bandwidth=0, max_time=120)
    off = tk.simulate(**base)
    on = tk.simulate(**base, auto_converge=True)
    assert not bool(off.converged) and int(off.cpu_throttle_percentage) == 0
    assert bool(on.converged) and on.downtime.item() <= 300 * 1.1
    steps = [int(x) for x in np.unique(on.window_cpu_throttle_percentage.values)]
    assert steps[0] == 0 and steps[1:] == list(range(20, steps[-1] + 1, 10))
    # each step comes at a window with a bitmap sync (a rate period closes only there),
    # more than 1 s after the previous one (two high periods of > 1 s)
    thr = on.window_cpu_throttle_percentage.values
    change = np.flatnonzero(np.diff(thr) > 0) + 1
    syncs = on.syncs.values
    assert all(syncs[i] > syncs[i - 1] for i in change)
    assert np.all(np.diff(on.time.values[change]) > 1000)
    # the guest is slowed: fewer writes than unthrottled in the same time
    free = tk.simulate(**{**base, "max_time": on.total_time.item() / 1000})
    assert int(on.guest_writes) < int(free.guest_writes)


def test_the_5_s_dirty_sync_of_9_2():
    """QEMU 9.2 added a sync every 5 s when no other happened (auto-converge only)."""
    base = dict(ram_size="4GiB", dirty_rate="300MiB/s", link_bandwidth="1Gbit/s",
                max_bandwidth=0, max_time=60, auto_converge=True)
    old, new = tk.simulate(**base, qemu_version="9.1"), tk.simulate(**base, qemu_version="9.2")
    # a 4 GiB first pass at 1 Gbit/s takes ~36 s: the timer stays quiet in it (count 1)
    # and then syncs once a round lasts over 5 s
    assert int(new.dirty_sync_count) > int(old.dirty_sync_count)
    assert new.syncs.values[new.time.values < 30_000].max() == 1
    # without auto-converge there is no timer
    plain = {**base, "auto_converge": False}
    assert int(tk.simulate(**plain, qemu_version="9.2").dirty_sync_count) == \
        int(tk.simulate(**plain, qemu_version="9.1").dirty_sync_count)


def test_8_2_rule():
    # precopy alone: 8.2's two tests agree with 9.0's estimate < threshold
    for pending, threshold in [(0, 0), (4096, 8192), (8192, 8192), (12288, 8192)]:
        assert exact_sync_wanted(0, pending, pending, threshold) == \
            exact_sync_wanted(1, pending, pending, threshold)
    # with postcopy-ram RAM reports must-precopy 0: 8.2 asks for an exact sync on every
    # pass ("migration/postcopy: Fix high frequency sync", 9.0); RAM's hook still syncs
    # only below the threshold, 9.0 looks at the whole estimate
    assert exact_sync_wanted(0, 4096, 0, 8192) and exact_sync_wanted(1, 4096, 0, 8192)
    assert not exact_sync_wanted(0, 12288, 0, 8192)
    base = dict(ram_size="1GiB", dirty_rate="300MiB/s", max_time=30)
    a, b = tk.simulate(**base, qemu_version="8.2"), tk.simulate(**base, qemu_version="10.0")
    for name in ("converged", "total_time", "dirty_sync_count", "transferred"):
        assert a[name].item() == b[name].item()


def test_10_1_switches_over_at_pending_equal_to_threshold():
    assert complete_ready(2, 8192, 8192) and not complete_ready(1, 8192, 8192)
    assert complete_ready(1, 0, 0) and complete_ready(2, 0, 0)      # threshold 0: pending 0
    # a run whose pending at a window close equals the threshold exactly: no dirtying,
    # a rate limit, and avail-switchover-bandwidth set so that threshold = that pending
    base = dict(ram_size="64MiB", dirty_rate=0, max_bandwidth="40MB/s", downtime_limit=1,
                max_time=10)
    probe = tk.simulate(**base)
    pending = int(probe.pending.values[5])                   # bytes, a multiple of 4096
    avail = pending * 1000                                    # threshold = avail/1000 x 1 ms
    old = tk.simulate(**base, avail_switchover_bandwidth=avail, qemu_version="10.0")
    new = tk.simulate(**base, avail_switchover_bandwidth=avail, qemu_version="10.1")
    assert int(new.switchover_pending) == pending == int(new.switchover_threshold)
    assert int(old.switchover_pending) < int(old.switchover_threshold)
    assert new.total_time.item() < old.total_time.item()


@pytest.mark.parametrize("params, match", [
    ({"qemu_version": "11.0"}, r"qemu_version='11.0' is not a known qemu version: expected "
                               r"one of 8.2, 9.0, 9.1, 9.2, 10.0, 10.1"),
    ({"qemu_version": 10.0}, r"qemu_version: expected one of"),
    ({"throttle_trigger_threshold": 0}, r"throttle_trigger_threshold=0 is out of range: "
                                        r"expected an integer in \[1, 100\] % \(QEMU "
                                        r"'throttle-trigger-threshold'\)"),
    ({"cpu_throttle_increment": 100}, r"cpu_throttle_increment=100 .* \[1, 99\]"),
    ({"cpu_throttle_initial": 50, "max_cpu_throttle": 40},
     r"max_cpu_throttle=40 is out of range: expected an integer in "
     r"\[cpu_throttle_initial = 50, 99\]"),
    ({"auto_converge": "yes"}, r"auto_converge: expected True or False"),
])
def test_bad_convergence_settings_are_rejected(params, match):
    with pytest.raises((ValueError, TypeError), match=match):
        tk.Scenario(**params)


NEVER = dict(ram_size="2GiB", dirty_rate="500MiB/s", link_bandwidth="1Gbit/s", max_bandwidth=0,
             max_time=120)


def test_postcopy_finishes_what_precopy_cannot():
    pre = tk.simulate(**NEVER)
    post = tk.simulate(**NEVER, postcopy_ram=True, postcopy_start_sync=3)
    assert not bool(pre.converged) and np.isnan(pre.postcopy_start_time.item())
    assert bool(post.converged)
    start = post.postcopy_start_time.item()
    # the switch waits for the 3rd sync; the downtime is the stop, the final sync and
    # the device state, not the pages: those follow while the destination runs
    # syncs: setup, two exact ones (the request comes with the 3rd), the final one
    assert int(post.dirty_sync_count) == 4 and start < post.total_time.item()
    assert post.downtime.item() < 10
    # faults: some of the pages still on the source when the guest moved
    assert 0 < int(post.postcopy_faults) < 2 * 2**30 // 4096
    # every page still arrives whole (no-data-lost check)
    checked = tk.simulate(**{**NEVER, "ram_size": "64MiB", "dirty_rate": "100MiB/s"},
                          postcopy_ram=True, postcopy_start_sync=2, check=True)
    assert bool(checked.converged) and int(checked.lost_pages) == 0


def test_postcopy_is_tried_before_the_switchover_test_from_10_1():
    # requested at the 2nd sync, which happens when pending < threshold: 10.0 switches
    # over in precopy at that same pass, 10.1 starts postcopy first
    base = dict(ram_size="1GiB", dirty_rate=0, postcopy_ram=True, postcopy_start_sync=2)
    old, new = tk.simulate(**base, qemu_version="10.0"), tk.simulate(**base, qemu_version="10.1")
    assert np.isnan(old.postcopy_start_time.item()) and int(old.postcopy_faults) == 0
    assert not np.isnan(new.postcopy_start_time.item())


def test_postcopy_start_needs_the_capability():
    with pytest.raises(ValueError, match="postcopy_start_sync=3 needs postcopy_ram=True"):
        tk.Scenario(postcopy_start_sync=3)


def test_dirty_limit_holds_the_guest_to_its_quota():
    base = dict(ram_size="1GiB", dirty_rate="150MiB/s", link_bandwidth="1Gbit/s",
                max_bandwidth=0, max_time=120)
    off = tk.simulate(**base)
    on = tk.simulate(**base, dirty_limit=True, vcpus=4, vcpu_dirty_limit=8)
    assert not bool(off.converged) and np.isnan(off.dirty_limit_start_time.item())
    assert bool(on.converged)
    start_s = on.dirty_limit_start_time.item() / 1000
    stop_s = (on.total_time.item() - on.downtime.item()) / 1000
    # before the trigger the guest writes at 150 MiB/s, after it at 4 x 8 MiB/s
    pages = 150 * 256 * start_s + 4 * 8 * 256 * (stop_s - start_s)
    assert int(on.guest_writes) == pytest.approx(pages, rel=1e-3)
    with pytest.raises(ValueError, match="conflicts with auto_converge"):
        tk.Scenario(dirty_limit=True, auto_converge=True)
    with pytest.raises(ValueError, match=r"vcpu_dirty_limit=0 is out of range"):
        tk.Scenario(vcpu_dirty_limit=0)
