"""Sweeps equal a loop of simulate() calls, whatever the workers, chunks or scheduler."""
import numpy as np
import pytest
import xarray as xr

import toolkit as tk
from toolkit import RESCUE_CLASSES as CLASSES

GRID = dict(ram_size="256MiB", workload="hotcold", max_time=8.0,
            dirty_rate=["20MiB/s", "300MiB/s", "1GiB/s"], downtime_limit=[30, 300],
            link_bandwidth=["1Gbit/s", "10Gbit/s"],
            avail_switchover_bandwidth=["estimate", "0.5x link", "4x link"], seed=range(2))


@pytest.fixture(scope="module")
def serial():
    return tk.sweep(**GRID, workers=1, chunk_size=5)


def test_dims_coords_and_units(serial):
    assert serial.converged.dims == ("dirty_rate", "downtime_limit", "link_bandwidth",
                                     "avail_switchover_bandwidth", "seed")
    np.testing.assert_array_equal(serial.dirty_rate, [20 * 2**20, 300 * 2**20, 2**30])
    assert serial.dirty_rate.attrs["units"] == "B s-1"
    assert serial.downtime_limit.attrs["units"] == "ms"
    assert list(serial.avail_switchover_bandwidth.values) == ["estimate", "0.5x link", "4x link"]
    value = serial.avail_switchover_bandwidth_value.sel(link_bandwidth=1.25e9, seed=0,
                                                       dirty_rate=2**30, downtime_limit=30)
    np.testing.assert_array_equal(value, [0, 625_000_000, 5_000_000_000])
    assert serial.attrs["ram_size"] == 256 * 2**20 and "dirty_rate" not in serial.attrs
    assert "window" not in serial.dims


def test_sweep_equals_a_loop_of_simulate(serial):
    for point in [dict(dirty_rate=1, downtime_limit=0, link_bandwidth=1,
                       avail_switchover_bandwidth=2, seed=1),
                  dict(dirty_rate=2, downtime_limit=1, link_bandwidth=0,
                       avail_switchover_bandwidth=0, seed=0)]:
        got = serial.isel(point)
        params = {k: GRID[k][v] if not isinstance(GRID[k], range) else list(GRID[k])[v]
                  for k, v in point.items()}
        fixed = {k: v for k, v in GRID.items() if k not in point}
        want = tk.simulate(**fixed, **params)
        for name in ("converged", "total_time", "downtime", "transferred", "dirty_sync_count"):
            np.testing.assert_array_equal(got[name].values, want[name].values, err_msg=name)


def test_same_numbers_for_1_and_2_workers_and_any_chunking(serial):
    two = tk.sweep(**GRID, workers=2, chunk_size=3)
    xr.testing.assert_identical(serial.drop_attrs(), two.drop_attrs())


def test_traces_are_padded_along_window():
    ds = tk.sweep(ram_size="64MiB", dirty_rate=["10MiB/s", "200MiB/s"], max_bandwidth=0,
                  link_bandwidth="1Gbit/s", downtime_limit=20, max_time=3.0, traces=True)
    assert ds.threshold.dims == ("dirty_rate", "window")
    one = tk.simulate(ram_size="64MiB", dirty_rate="200MiB/s", max_bandwidth=0,
                      link_bandwidth="1Gbit/s", downtime_limit=20, max_time=3.0)
    n = one.sizes["window"]
    np.testing.assert_array_equal(ds.threshold.isel(dirty_rate=1)[:n], one.threshold)
    assert np.isnan(ds.threshold.isel(dirty_rate=0)[ds.sizes["window"] - 1])


def test_rescue_classes(serial):
    res = tk.rescue(serial)
    assert res.rescue_class.attrs["flag_meanings"].split() == list(CLASSES)
    counts = tk.class_counts(res)
    assert sum(counts.values()) == serial.converged.size
    assert counts["lost"] > 0 and counts["overshoots"] > 0 and counts["converges_anyway"] > 0
    code = res.rescue_class
    conv, down = serial.converged, serial.downtime
    limit = serial.downtime_limit
    base = conv.sel(avail_switchover_bandwidth="estimate")
    assert ((code == 2) == (conv & (down > limit))).all()
    assert ((code == 3) == (~conv & ~base)).all()
    assert ((code == 1) == (~base & conv & (down <= limit))).all()
    over = res.overshoot.where(code == 2)
    np.testing.assert_array_equal(over.fillna(-1), (down - limit).where(code == 2).fillna(-1))
    safe = res.largest_safe_avail
    ok = (code <= 1) & (serial.avail_switchover_bandwidth_value > 0)
    want = serial.avail_switchover_bandwidth_value.where(ok).max("avail_switchover_bandwidth")
    xr.testing.assert_equal(safe.drop_attrs(), want.drop_attrs())


def test_merge_rescue_adds_the_rescue_analysis_to_the_sweep(serial):
    merged = tk.merge_rescue(serial)
    res = tk.rescue(serial)
    assert merged.attrs == serial.attrs and set(serial.data_vars) < set(merged.data_vars)
    for name in ("rescue_class", "overshoot", "smallest_converging_avail", "largest_safe_avail"):
        xr.testing.assert_equal(merged[name], res[name])
        assert repr(merged[name].attrs) == repr(res[name].attrs)    # flag_values: an array
    xr.testing.assert_identical(merged[list(serial.data_vars)], serial)   # coords' units kept
    assert tk.class_counts(merged) == tk.class_counts(res)


def test_rescue_needs_the_estimate():
    from toolkit._rescue import is_rescue_sweep

    ds = tk.sweep(ram_size="64MiB", avail_switchover_bandwidth=["link", "2x link"], max_time=2.0)
    assert not is_rescue_sweep(ds) and not is_rescue_sweep(ds.isel(avail_switchover_bandwidth=0))
    for analysis in (tk.rescue, tk.merge_rescue):
        with pytest.raises(ValueError, match="estimate"):
            analysis(ds)
    with pytest.raises(ValueError, match="needs a sweep over avail_switchover_bandwidth"):
        tk.merge_rescue(ds.isel(avail_switchover_bandwidth=0))


@pytest.mark.parametrize("params, match", [
    (dict(dirty_rate=[]), "dirty_rate"),
    (dict(downtime_limit=[10, 10]), "downtime_limit"),
    (dict(downtime_limit=[10, -1]), "downtime_limit"),
    (dict(dirty_rat=[1, 2]), "dirty_rat"),
    (dict(ram_size=["64MiB", "1GiB"], workload="sequential", write_range="100MiB"),
     "write_range"),
])
def test_bad_sweeps_fail_before_any_work(params, match):
    with pytest.raises((ValueError, TypeError), match=match):
        tk.sweep(**params)


def test_linspace_reads_units():
    np.testing.assert_allclose(tk.linspace("1GiB/s", "2GiB/s", 3), [2**30, 1.5 * 2**30, 2**31])
    np.testing.assert_allclose(tk.geomspace("1GiB", "4GiB", 3), [2**30, 2**31, 2**32])
    with pytest.raises(ValueError, match="linspace"):
        tk.linspace("1GiB", "3s", 3)


def test_dask_local_cluster_gives_identical_results(serial):
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=None) as cluster, \
            distributed.Client(cluster) as client:
        ds = tk.sweep(**GRID, scheduler=client, chunk_size=7)
    xr.testing.assert_identical(serial.drop_attrs(), ds.drop_attrs())


def test_a_planned_grid_is_swept_as_planned():
    params = dict(ram_size="64MiB", dirty_rate=["10MiB/s", "1GiB/s"], max_time=2.0)
    from toolkit._sweep import plan
    grid = plan(**params)
    ds = tk.sweep(grid=grid, workers=1)
    assert ds.converged.equals(tk.sweep(**params, workers=1).converged)
    with pytest.raises(TypeError, match="either grid= or parameters"):
        tk.sweep(grid=grid, ram_size="1GiB")


def test_a_sweep_checks_its_memory_once(monkeypatch, tmp_path):
    import sys

    from toolkit._sweep import check_sweep_memory, plan
    from toolkit.cli import main

    module = sys.modules["toolkit._sweep"]
    calls = []
    real = module.check_memory
    monkeypatch.setattr(module, "check_memory", lambda *a: calls.append(a[1]) or real(*a))
    params = dict(ram_size="64MiB", dirty_rate=["10MiB/s", "1GiB/s"], max_time=2.0)
    tk.sweep(**params, workers=1)
    assert len(calls) == 1
    grid = plan(**params)
    check_sweep_memory(grid, 2)
    tk.sweep(grid=grid, workers=2)
    tk.sweep(grid=grid, workers=1)
    assert len(calls) == 2
    tk.sweep(grid=grid, workers=3)            # more runs at once than were checked
    assert len(calls) == 3 and calls[-1].startswith("the sweep (3 workers")
    config = tmp_path / "c.toml"
    config.write_text('[fixed]\nram_size = "4MiB"\nmax_time = "2s"\n'
                      '[grid]\ndirty_rate = ["1MiB/s", "2MiB/s"]\n')
    assert main(["sweep", "--config", str(config), "--out", str(tmp_path / "o.nc"),
                 "--workers", "2", "--no-progress", "--no-map"]) == 0
    assert len(calls) == 4 and calls[-1].startswith("the sweep (2 workers")


def test_each_kind_makes_its_axis():
    """Coordinates are the kind's canonical values (whole pages, 6 decimals, labels as
    given), or labels where one label is another number at each point (avail)."""
    from toolkit._sweep import _labelled, plan
    grid = plan(ram_size=[2**30 + 5, "2GiB"], zipf_exponent=[0.5, 1.2345678],
                workload=["uniform", "zipf"], check=[False, True],
                link_bandwidth=["1Gbit/s", 2e9], avail_switchover_bandwidth=["estimate", "2x link"],
                max_bandwidth=[0, "1Gbit/s"])
    assert grid.dims == {"ram_size": [2**30, 2**31], "zipf_exponent": [0.5, 1.234568],
                         "workload": ["uniform", "zipf"], "check": [False, True],
                         "link_bandwidth": [1.25e8, 2e9],
                         "avail_switchover_bandwidth": ["estimate", "2x link"],
                         "max_bandwidth": [0, 125_000_000]}
    assert [name for name, coord in grid.dims.items() if _labelled(name, coord)] == \
        ["avail_switchover_bandwidth"]
    assert plan(avail_switchover_bandwidth=[0, "1Gbit/s"]).dims == \
        {"avail_switchover_bandwidth": [0, 125_000_000]}
    # every axis is read by its kind before the corners: a bad workload is named at once
    with pytest.raises(ValueError, match=r"^workload='pareto' is not a known workload: "
                                         r"expected one of uniform, hotcold"):
        plan(workload=["uniform", "pareto"])
    with pytest.raises(ValueError, match="ram_size: swept values 1073741829 and '1GiB' are "
                                         "the same point"):
        plan(ram_size=[2**30 + 5, "1GiB"])
