"""A measured dirty-pages curve becomes a workload that dirties pages the same way."""

import numpy as np
import pytest

import toolkit as tk
from toolkit.kernels import layout as L
from toolkit.kernels.bitset import count
from toolkit.kernels.guest import guest_write_pages
from toolkit.encode import kernel_inputs, stream_seeds
from toolkit.workloads import dirty_curve, fit_dirty_curve

GIB = 2**30


def test_fit_recovers_a_known_curve():
    t = np.array([0.1, 0.25, 0.5, 1, 2, 4, 8])
    d = dirty_curve(t, 150_000, 80_000)
    fit = fit_dirty_curve(t, d, "4GiB")
    assert fit["working_set"] == pytest.approx(150_000, rel=1e-3)
    assert fit["rate"] == pytest.approx(80_000, rel=1e-3)
    assert fit["workload"] == "hotcold" and fit["hot_share"] == 1.0
    assert fit["hot_fraction"] == pytest.approx(150_000 / (GIB // 1024), rel=1e-3)


def test_the_fitted_guest_dirties_pages_along_the_measured_curve():
    # a curve as calc-dirty-rate samples would give: saturating at a working set
    t = np.array([0.05, 0.1, 0.2, 0.4, 0.8, 1.6])
    measured = dirty_curve(t, 60_000, 100_000) * (1 + 0.01 * np.sin(np.arange(6)))
    fit = fit_dirty_curve(t, measured, "2GiB")
    sc = tk.Scenario(ram_size="2GiB", **{k: fit[k] for k in
                                         ("workload", "hot_fraction", "hot_share", "dirty_rate")})
    p, streams = kernel_inputs(sc)
    log = np.zeros(sc.n_pages // 64, np.uint64)
    st = np.zeros(L.N_STATE, np.int64)
    st[L.S_VM_RUNNING] = 1
    st[L.S_DIRTY_LIMIT_T] = -1                  # as migration_thread starts it
    st[L.S_LOG:L.S_LOG + L.N_STREAMS] = -1
    rng = stream_seeds(sc)
    for ti, di in zip(t, measured):
        st[L.S_T] = int(ti * 1e12)
        guest_write_pages(p, streams, st, rng, log, np.zeros(0, np.uint64),
                          np.zeros(0, np.int32))
        assert count(log) == pytest.approx(di, rel=0.02)


def test_a_curve_that_never_saturates_in_ram_is_uniform():
    t = np.array([0.1, 0.2, 0.4])
    fit = fit_dirty_curve(t, t * 1000, "4MiB")
    assert fit["workload"] == "uniform" and fit["dirty_rate"] > 0


@pytest.mark.parametrize("t, d, match", [
    ([1, 2], [5], "same length"),
    ([0, 1], [1, 2], "must be finite and > 0 s"),
    ([1, 2], [5, 3], "not decreasing"),
    ([1, 2], [0, 0], "not all 0"),
    ([1, 2], [10, 2_000_000], "exceed the 1048576 pages"),
])
def test_bad_curves_are_rejected(t, d, match):
    with pytest.raises(ValueError, match=match):
        fit_dirty_curve(t, d, "4GiB")


def _trace(tmp_path, n=3000, pages=1024, seconds=4.0, seed=0, name="trace.txt"):
    rng = np.random.default_rng(seed)
    t = np.sort(rng.integers(0, int(seconds * 1e6), n))
    p = rng.integers(0, pages, n)
    path = tmp_path / name
    tk.workloads.write_write_trace(path, t, p)
    return str(path), t, p


@pytest.mark.parametrize("extra", [{}, {"postcopy_ram": True, "postcopy_start_sync": 2},
                                   {"auto_converge": True, "max_time": 12.0},
                                   {"zero_write_share": 0.3, "zero_fraction": 0.5,
                                    "dst_populate_time": "1ms",
                                    "data_ranges": "3MiB:8KiB"}])
def test_replay_equals_the_reference(tmp_path, extra):
    from .test_reference import SMALL, assert_same
    path, t, _ = _trace(tmp_path, n=6000, seconds=8.0)
    sc = tk.Scenario(**{**SMALL, "workload": "replay", "write_trace": path, **extra})
    raw, ref = assert_same(sc)
    assert ref.writes == raw.state[L.S_WRITES] > 0
    assert ref.converged and (ref.lost_pages() == 0)


def test_replay_writes_the_trace_and_nothing_after(tmp_path):
    path, t, p = _trace(tmp_path, n=5000, pages=16384, seconds=3.0)
    ds = tk.simulate(ram_size="64MiB", workload="replay", write_trace=path, max_time=30,
                     check=True, link_bandwidth="1Gbit/s")
    assert bool(ds.converged) and int(ds.lost_pages) == 0
    end_us = ds.total_time.item() * 1000 - ds.downtime.item() * 1000   # the VM stop
    assert int(ds.guest_writes) == int(np.searchsorted(t, end_us, side="right"))
    # the same trace as a compact .npz replays the same
    npz = tmp_path / "trace.npz"
    np.savez(npz, time_us=t, page=p)
    again = tk.simulate(ram_size="64MiB", workload="replay", write_trace=str(npz), max_time=30,
                        check=True, link_bandwidth="1Gbit/s")
    assert again.total_time.item() == ds.total_time.item()


@pytest.mark.parametrize("text, match", [
    ("# time_us page\n10 5\n20\n", r"line 3: expected two non-negative integers"),
    ("10 5\n5 6\n", r"line 2: time 5 us is before the previous line's 10 us"),
    ("10 -5\n", r"line 1: expected two non-negative integers"),
    ("# nothing\n", r"whole file: no writes"),
    ("10 5\n20 99999999\n", r"line 2: page 99999999 is beyond the 16384 pages"),
])
def test_bad_traces_name_the_line(tmp_path, text, match):
    path = tmp_path / "bad.txt"
    path.write_text(text)
    with pytest.raises(ValueError, match=match):
        tk.Scenario(ram_size="64MiB", workload="replay", write_trace=str(path))


def test_bad_npz_names_the_offset(tmp_path):
    path = tmp_path / "bad.npz"
    np.savez(path, time_us=np.array([0, 10, 5]), page=np.array([1, 2, 3]))
    with pytest.raises(ValueError, match="offset 2: time goes back"):
        tk.Scenario(ram_size="64MiB", workload="replay", write_trace=str(path))
    with pytest.raises(ValueError, match="needs write_trace"):
        tk.Scenario(workload="replay")


def test_phases_write_at_each_phase_rate_and_cycle():
    # 100 MiB/s for 1 s, then idle 1 s, cycling: 25,600 writes per 2 s
    ds = tk.simulate(ram_size="8GiB", workload="phases", phases="uniform:100MiB/s:1s, "
                     "uniform:0:1s", link_bandwidth="1Gbit/s", max_time=5.0, max_bandwidth=0)
    assert not bool(ds.converged)
    assert int(ds.guest_writes) == 3 * 25_600      # phases 1, 3 and 5 (0-4 s, 4-5 s)


@pytest.mark.parametrize("phases, match", [
    ("uniform:100MiB/s", r"item 1 'uniform:100MiB/s': expected workload:rate:duration"),
    ("uniform:1MiB/s:1s, replay:1MiB/s:1s", r"item 2 .* workload 'replay' is not one of"),
    ("uniform:1MiB/s:0s", r"duration must be in \[1 us, 10\^6 s\]"),
    ("", r"expected 'workload:rate:duration, ...'"),
])
def test_bad_phases_name_the_item(phases, match):
    with pytest.raises(ValueError, match=match):
        tk.Scenario(workload="phases", phases=phases)
