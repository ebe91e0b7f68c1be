"""A measured dirty-pages curve becomes a workload that dirties pages the same way."""
import math

import numpy as np
import pytest

import toolkit as tk
from toolkit.kernels import layout as L
from toolkit.kernels.bitset import count
from toolkit.kernels.guest import guest_write_pages
from toolkit.simulate import kernel_inputs
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
    p, writes_per_ps = kernel_inputs(sc)
    log = np.zeros(sc.n_pages // 64, np.uint64)
    st = np.zeros(L.N_STATE, np.int64)
    st[L.S_VM_RUNNING] = 1
    st[L.S_LOG_0] = st[L.S_LOG_1] = -1
    rng = np.array(sc.stream_seeds, np.uint64)
    for ti, di in zip(t, measured):
        st[L.S_T] = int(ti * 1e12)
        guest_write_pages(p, writes_per_ps, st, rng, log, np.zeros(0, np.int32))
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
