"""The simulator against closed forms and QEMU's formulas."""
import math

import numpy as np
import pytest

import toolkit as tk
from toolkit import Scenario
from toolkit.kernels import layout as L
from toolkit.kernels.bitset import count
from toolkit.kernels.guest import guest_write_pages
from toolkit.encode import kernel_inputs, stream_seeds

NO_COSTS = dict(page_send_time=0, zero_page_scan_time=0, sync_time_fixed=0, sync_time_per_gib=0,
                sync_time_per_dirty_page=0, setup_overhead=0, vm_stop_time=0,
                device_state_size=0)


@pytest.mark.parametrize("link, max_bw", [("10Gbit/s", 0), ("10Gbit/s", "128MiB/s"),
                                          ("1Gbit/s", "1GB/s"), ("2.5Gbit/s", 0)])
def test_no_dirtying_is_one_pass(link, max_bw):
    ds = tk.simulate(ram_size="1GiB", dirty_rate=0, link_bandwidth=link, max_bandwidth=max_bw,
                     setup_overhead=20, check=True)
    sc = Scenario(link_bandwidth=link, max_bandwidth=max_bw)
    rate = min(sc.link_bandwidth, sc.max_bandwidth or math.inf)
    n = 2**30 // 4096
    assert bool(ds.converged) and int(ds.lost_pages) == 0
    assert int(ds.normal_pages) == n and int(ds.zero_pages) == 0
    assert int(ds.dirty_sync_count) == 3          # setup, exact at the end of the pass, final
    # the pass runs at min(link, max_bandwidth) until what is left passes the
    # threshold; that rest goes at link speed during the downtime
    rest = ds.switchover_pending.item() / 4096 * 4104
    one_pass = ds.setup_time.item() + ((n * 4104 - rest) / rate + rest / sc.link_bandwidth) * 1000
    assert 0 < rest <= 0.300 * rate * 1.01
    costs = 2 + 2 * 1.5 + 512 * 1024 / sc.link_bandwidth * 1000  # vm stop, 2 syncs, devices
    # rate limited: each window's budget goes out at link speed, then the thread
    # sleeps, so the last window can end up to one window early
    window = 100 if max_bw else 1
    assert one_pass - window <= ds.total_time.item() <= one_pass + costs + 1


def test_zero_costs_estimate_is_the_smaller_of_link_and_max_bandwidth():
    for link, max_bw in [("10Gbit/s", 0), ("10Gbit/s", "300MiB/s"), ("1Gbit/s", "1GB/s")]:
        ds = tk.simulate(ram_size="4GiB", dirty_rate=0, link_bandwidth=link,
                         max_bandwidth=max_bw, **NO_COSTS)
        sc = Scenario(link_bandwidth=link, max_bandwidth=max_bw)
        expected = min(sc.link_bandwidth, sc.max_bandwidth or math.inf)
        bw = ds.bandwidth.values[1:-1]            # whole windows inside the single pass
        assert len(bw) > 5
        # QEMU divides by whole ms, and the rate limit lets one page past the budget
        np.testing.assert_allclose(bw, expected, rtol=0.011)


@pytest.mark.parametrize("workload", ["uniform", "hotcold", "sequential", "zipf"])
def test_distinct_dirty_pages_closed_form(workload):
    sc = Scenario(ram_size="4GiB", workload=workload, dirty_rate="400MiB/s", hot_fraction=0.2,
                  hot_share=0.7, write_range="1GiB", write_range_start="1GiB",
                  zipf_exponent=0.9)
    p, streams = kernel_inputs(sc)
    n_words = sc.n_pages // 64
    log = np.zeros(n_words, np.uint64)
    st = np.zeros(L.N_STATE, np.int64)
    st[L.S_VM_RUNNING] = 1
    st[L.S_DIRTY_LIMIT_T] = -1                  # as migration_thread starts it
    rng = stream_seeds(sc)
    n = sc.n_pages
    for t_s in (0.5, 2.0, 10.0):
        st[L.S_T] = int(t_s * 1e12)
        guest_write_pages(p, streams, st, rng, log, np.zeros(0, np.uint64),
                          np.zeros(0, np.int32))
        w = st[L.S_WRITES]
        assert abs(w - int(t_s * 400 * 2**20 / 4096)) <= 1     # each stream rounds down
        if workload == "uniform":
            expected = n * (1 - math.exp(-w / n))
        elif workload == "hotcold":
            hot = sc.hot_pages
            expected = hot * (1 - math.exp(-0.7 * w / hot)) + \
                (n - hot) * (1 - math.exp(-0.3 * w / (n - hot)))
        elif workload == "zipf":
            # page i is written with probability p_i = (i + 1) ** -s / sum_j (j + 1) ** -s
            weights = np.arange(1, n + 1, dtype=float) ** -0.9
            expected = float(np.sum(1 - (1 - weights / weights.sum()) ** w))
        else:
            expected = min(w, 2**30 // 4096)
        assert count(log) == pytest.approx(expected, rel=0.005)
        if workload == "sequential":
            assert count(log) == expected


@pytest.mark.parametrize("avail", [0, 999, 1_000, 5_000_000_123, "25Gbit/s"])
def test_threshold_formula_to_the_byte(avail):
    ds = tk.simulate(ram_size="2GiB", dirty_rate="200MiB/s", max_bandwidth=0, downtime_limit=137,
                     avail_switchover_bandwidth=avail, max_time=20.0)
    sc = Scenario(avail_switchover_bandwidth=avail)
    bw_per_ms = ds.window_bytes.values / ds.time_spent.values
    np.testing.assert_array_equal(ds.bandwidth.values, bw_per_ms * 1000)
    per_ms = sc.avail_switchover_bandwidth // 1000
    expected_bw = np.full_like(bw_per_ms, float(per_ms)) if per_ms else bw_per_ms
    np.testing.assert_array_equal(ds.threshold.values, np.floor(expected_bw * 137))
    assert (ds.time_spent.values >= 100).all()
    assert int(ds.switchover_threshold) == ds.threshold.values[-1]


def test_threshold_is_zero_until_the_first_window_closes():
    # everything fits in the first 100 ms: with threshold 0 QEMU switches over
    # as soon as the first pass drains the estimate to 0 (no exact sync first)
    ds = tk.simulate(ram_size="64MiB", dirty_rate="100MiB/s", max_bandwidth=0, check=True)
    assert bool(ds.converged) and ds.sizes["window"] == 0
    assert int(ds.switchover_threshold) == 0 and ds.switchover_pending.item() == 0
    assert int(ds.dirty_sync_count) == 2          # setup + final: no exact sync
    assert int(ds.lost_pages) == 0
    assert ds.downtime_bytes.item() > 0           # what the pass dirtied goes in downtime


def test_downtime_limit_zero_never_syncs_before_the_switchover():
    ds = tk.simulate(ram_size="1GiB", dirty_rate="50MiB/s", max_bandwidth=0, downtime_limit=0,
                     check=True)
    assert bool(ds.converged) and int(ds.dirty_sync_count) == 2
    assert (ds.threshold.values == 0).all() and int(ds.lost_pages) == 0


def test_expected_downtime_uses_dirty_bytes_of_the_last_sync():
    ds = tk.simulate(ram_size="1GiB", workload="hotcold", dirty_rate="500MiB/s", max_time=30.0)
    assert not bool(ds.converged)
    pending_at_sync = ds.pending.values      # not the same instant, but the same size
    exp = ds.window_expected_downtime.values
    late = exp[-20:]
    bw = ds.bandwidth.values[-20:] / 1000
    # expected_downtime = dirty_bytes_last_sync / bandwidth: bounded by what was pending
    assert (late > 300).all()
    assert (late <= pending_at_sync.max() / bw.min() + 1).all()


def test_dirty_pages_rate_counts_new_pages_per_second():
    ds = tk.simulate(ram_size="2GiB", workload="sequential", write_range="512MiB",
                     dirty_rate="100MiB/s", max_bandwidth="50MiB/s", max_time=100.0)
    rate = int(ds.dirty_pages_rate)
    # a sweeping cursor dirties new pages at the write rate, minus what was still pending
    assert 0 < rate <= 100 * 2**20 / 4096 * 1.01


def test_pages_are_sent_once_per_dirtying_at_most():
    ds = tk.simulate(ram_size="1GiB", dirty_rate="300MiB/s", max_bandwidth=0, check=True)
    n = 2**30 // 4096
    sent = int(ds.normal_pages) + int(ds.zero_pages)
    assert n <= sent <= n + int(ds.guest_writes)
    assert int(ds.transferred) >= sent * 9


def test_max_time_reports_not_converged():
    ds = tk.simulate(ram_size="4GiB", dirty_rate="2GiB/s", workload="uniform", max_time=5.0)
    assert not bool(ds.converged)
    assert 5000 <= ds.total_time.item() < 5200
    assert math.isnan(ds.downtime.item()) and int(ds.remaining) > 0


def test_seed_changes_writes_but_not_migration_parameters():
    base = dict(ram_size="1GiB", dirty_rate="500MiB/s", max_bandwidth=0, max_time=30.0)
    a = tk.simulate(**base, seed=1)
    b = tk.simulate(**base, seed=2)
    c = tk.simulate(**base, seed=1)
    assert a.total_time.item() == c.total_time.item()
    assert a.total_time.item() != b.total_time.item()
    assert a.switchover_pending.item() != b.switchover_pending.item()
    assert Scenario(**base, seed=1).stream_seeds == \
        Scenario(**base, seed=1, downtime_limit=50, avail_switchover_bandwidth=10**9).stream_seeds


def test_a_1_tib_guest_fits_in_tens_of_mib():
    import tracemalloc

    from toolkit._simulate import run_kernel
    tracemalloc.start()
    raw = run_kernel(Scenario(ram_size="1TiB", dirty_rate="1GiB/s", max_bandwidth=0,
                              max_time=1.0))
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert raw.state[L.S_NORMAL] > 0
    assert peak < 70 * 2**20          # two 32 MiB bitsets, nothing per page beyond them
