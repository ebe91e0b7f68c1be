"""The two baseline predictors: closed forms, the working-set cap, agreement with
the geometric series and, where they should agree, with the simulator."""
import math

import pytest

import toolkit as tk
from toolkit.analytic import geometric_precopy
from toolkit.baselines import (RESULT_UNITS, geometric, precopy_bandwidth, simgrid,
                               working_set)
from toolkit.constants import PAGE_SIZE
from toolkit.scenario import IDEAL_HOST

GIB, MIB = 2**30, 2**20
MODELS = [geometric, simgrid]


def scenario(**kw):
    return tk.Scenario(**{**IDEAL_HOST, **kw})


def check_shape(r, sc):
    assert set(r) == set(RESULT_UNITS)
    assert isinstance(r["converged"], bool)
    assert isinstance(r["dirty_sync_count"], int) and r["dirty_sync_count"] >= 1
    for key in ("total_time", "downtime", "transferred"):
        assert isinstance(r[key], float)
    if r["converged"]:
        assert 0 <= r["downtime"] <= r["total_time"]
        assert r["dirty_sync_count"] >= 3
        assert r["transferred"] >= sc.ram_size
    else:
        assert math.isnan(r["downtime"])
        assert r["total_time"] == sc.max_time * 1000


def test_units_are_documented():
    assert RESULT_UNITS == {"converged": "1", "total_time": "ms", "downtime": "ms",
                            "dirty_sync_count": "1", "transferred": "B"}
    for f in MODELS:
        for key in RESULT_UNITS:
            assert key in f.__doc__
        assert "[ms]" in f.__doc__ and "[B]" in f.__doc__


@pytest.mark.parametrize("model", MODELS)
@pytest.mark.parametrize("kw", [
    dict(dirty_rate=0),
    dict(dirty_rate="3GiB/s", max_bandwidth=0, max_time=20.0),
    dict(dirty_rate="50MiB/s", workload="hotcold", page_send_time=250, setup_overhead=5,
         vm_stop_time=2, device_state_size="512KiB"),
    dict(dirty_rate="2GiB/s", workload="sequential", write_range="16MiB"),
    dict(dirty_rate="100MiB/s", workload="zipf"),
])
def test_keys_types_and_units(model, kw):
    sc = tk.Scenario(ram_size="1GiB", **kw)
    check_shape(model(sc), sc)


# ---------------------------------------------------------------- closed forms

COSTS = dict(setup_overhead=5.0, vm_stop_time=2.0, device_state_size=512 * 1024)


@pytest.mark.parametrize("max_bandwidth", [0, 128 * MIB])
def test_no_dirtying_is_one_round(max_bandwidth):
    sc = scenario(ram_size="2GiB", dirty_rate=0, link_bandwidth="10Gbit/s",
                  max_bandwidth=max_bandwidth, downtime_limit=300, **COSTS)
    bw, link = precopy_bandwidth(sc), sc.link_bandwidth
    assert bw == (link if max_bandwidth == 0 else max_bandwidth)
    final = 2.0 + 512 * 1024 / link * 1e3                        # vm stop + device state [ms]
    s = simgrid(sc)
    assert s["converged"] and s["dirty_sync_count"] == 3
    assert s["total_time"] == pytest.approx(5.0 + sc.ram_size / bw * 1e3 + final)
    assert s["downtime"] == pytest.approx(final)
    assert s["transferred"] == pytest.approx(sc.ram_size + 512 * 1024)
    # the textbook series has no host costs; with them it is the same closed form
    g = geometric(sc)
    assert g["converged"] and g["dirty_sync_count"] == 3
    assert g["total_time"] == pytest.approx(sc.ram_size / bw * 1e3)
    assert g["downtime"] == 0 and g["transferred"] == sc.ram_size
    gc = geometric(sc, fixed_costs=True)
    for key in RESULT_UNITS:
        assert gc[key] == pytest.approx(s[key])


def test_ram_within_one_downtime():
    # 256 MiB < 1 GB/s x 300 ms: the series switches before round 0, SimGrid after stage 1
    sc = scenario(ram_size="256MiB", dirty_rate="100MiB/s", link_bandwidth=1e9,
                  max_bandwidth=0, downtime_limit=300)
    g, s = geometric(sc), simgrid(sc)
    assert g["downtime"] == pytest.approx(sc.ram_size / 1e9 * 1e3)
    assert g["dirty_sync_count"] == s["dirty_sync_count"] == 3
    assert s["downtime"] == pytest.approx(100 * MIB * sc.ram_size / 1e9 / 1e9 * 1e3)


@pytest.mark.parametrize("model", MODELS)
@pytest.mark.parametrize("max_bandwidth", [0, 128 * MIB])
def test_dirty_rate_above_bandwidth_never_converges(model, max_bandwidth):
    sc = scenario(ram_size="1GiB", dirty_rate="4GiB/s", link_bandwidth="10Gbit/s",
                  max_bandwidth=max_bandwidth, downtime_limit=300, max_time=30.0,
                  setup_overhead=5.0)
    setup = 5e-3 if model is simgrid else 0.0
    r = model(sc)
    check_shape(r, sc)
    assert not r["converged"]
    bw = precopy_bandwidth(sc)
    assert r["transferred"] == pytest.approx(bw * (30.0 - setup))
    # every round sends all of RAM: the syncs are setup's and those of the rounds done
    assert r["dirty_sync_count"] == 1 + math.floor((30.0 - setup) / (sc.ram_size / bw))


@pytest.mark.parametrize("model", MODELS)
def test_max_time_cuts_a_slow_series(model):
    # R / B = 0.8 converges after about 11 rounds and 17 s; max_time = 5 s ends it
    # during round 1: the syncs of setup and round 0 only
    sc = scenario(ram_size="4GiB", dirty_rate=1e9, link_bandwidth=1.25e9, max_bandwidth=0,
                  downtime_limit=300, max_time=5.0)
    r = model(sc)
    assert not r["converged"] and r["dirty_sync_count"] == 2
    assert model(sc.replace(max_time=60.0))["converged"]


def test_large_avail_converges_right_after_stage_1():
    # stage 1 takes 32 s at 128 MiB/s and 64 MiB/s dirties 2 GiB in it: without avail,
    # 128 MiB/s x 300 ms needs several more rounds
    base = dict(ram_size="4GiB", dirty_rate="64MiB/s", link_bandwidth="10Gbit/s",
                max_bandwidth=128 * MIB, downtime_limit=300, **COSTS)
    sc = scenario(**base)
    dirtied = 64 * MIB * 32.0
    for model in MODELS:
        assert model(sc)["converged"] and model(sc)["dirty_sync_count"] > 4
    avail = scenario(**base, avail_switchover_bandwidth=10**10)   # 3 GB per 300 ms > 2 GiB
    g, s = geometric(avail), simgrid(avail)
    assert g["converged"] and s["converged"]
    assert g["dirty_sync_count"] == s["dirty_sync_count"] == 3
    link = avail.link_bandwidth
    assert g["downtime"] == pytest.approx(dirtied / link * 1e3)
    assert s["downtime"] == pytest.approx(2.0 + (dirtied + 512 * 1024) / link * 1e3)
    assert s["total_time"] == pytest.approx(5.0 + 32e3 + s["downtime"])
    # avail past RAM / downtime: the series switches at once, SimGrid still sends stage 1
    huge = avail.replace(avail_switchover_bandwidth=10**12)
    assert geometric(huge)["downtime"] == pytest.approx(huge.ram_size / link * 1e3)
    assert simgrid(huge)["downtime"] == pytest.approx(s["downtime"])


def test_simgrid_rounds_follow_the_series():
    # uniform, R / B = 0.24: pending after round i is M (R/B)^i, as in the series
    sc = scenario(ram_size="4GiB", dirty_rate=3e8, link_bandwidth=1.25e9, max_bandwidth=0,
                  downtime_limit=300)
    g = geometric_precopy(sc.ram_size, 3e8, 1.25e9, 300)
    s = simgrid(sc)
    assert s["dirty_sync_count"] == g["rounds"] + 2
    assert s["total_time"] == pytest.approx(g["total_time"])
    assert s["transferred"] == pytest.approx(g["transferred"])


# ------------------------------------------------------- agreement with the series

@pytest.mark.parametrize("rate", [0, 1e7, 3e8, 9e8, 1.2e9, 2e9])
@pytest.mark.parametrize("workload", ["uniform", "sequential"])
def test_geometric_is_the_series_where_the_cap_does_not_bind(rate, workload):
    # a sequential cursor over all of RAM has RAM for its working set, as uniform does
    sc = scenario(ram_size="4GiB", dirty_rate=rate, workload=workload, write_range="4GiB",
                  write_range_start=0, link_bandwidth=1.25e9, max_bandwidth=0,
                  downtime_limit=300, max_time=1e4)
    g = geometric_precopy(sc.ram_size, rate, 1.25e9, 300)
    r = geometric(sc)
    assert r["converged"] == g["converges"]
    if g["converges"]:
        for key in ("total_time", "downtime", "transferred"):
            assert r[key] == pytest.approx(g[key])
        assert r["dirty_sync_count"] == 2 + max(g["rounds"], 1)


@pytest.mark.parametrize("rate", [1e7, 3e7, 6e7])
def test_geometric_rounds_at_max_bandwidth_final_copy_at_link(rate):
    sc = scenario(ram_size="2GiB", dirty_rate=rate, link_bandwidth="10Gbit/s",
                  max_bandwidth=100 * 10**6, downtime_limit=300, max_time=1e4)
    g = geometric_precopy(sc.ram_size, rate, 1e8, 300)
    r = geometric(sc)
    assert r["converged"] and r["dirty_sync_count"] == g["rounds"] + 2
    assert r["downtime"] == pytest.approx(g["downtime"] * 1e8 / sc.link_bandwidth)
    assert r["total_time"] - r["downtime"] == pytest.approx(g["total_time"] - g["downtime"])


def test_geometric_threshold_uses_avail():
    # avail = 4 B: the same rounds as the series with a four times longer downtime limit
    sc = scenario(ram_size="4GiB", dirty_rate=6e8, link_bandwidth=1.25e9, max_bandwidth=0,
                  downtime_limit=50, avail_switchover_bandwidth=5 * 10**9)
    g = geometric_precopy(sc.ram_size, 6e8, 1.25e9, 200)
    plain = geometric_precopy(sc.ram_size, 6e8, 1.25e9, 50)
    r = geometric(sc)
    assert g["rounds"] < plain["rounds"]
    assert r["dirty_sync_count"] == g["rounds"] + 2
    assert r["total_time"] == pytest.approx(g["total_time"])


# ---------------------------------------------------------------- working set

def test_working_set_cap_lets_a_small_sequential_range_converge():
    # 4 GB/s over 8 MiB: at most 8 MiB dirty per round, below 1 GB/s x 30 ms
    sc = scenario(ram_size="1GiB", dirty_rate=4e9, workload="sequential", write_range="8MiB",
                  link_bandwidth=1e9, max_bandwidth=0, downtime_limit=30)
    assert working_set(sc, 10.0) == 8 * MIB
    assert not geometric_precopy(sc.ram_size, 4e9, 1e9, 30)["converges"]   # uncapped
    assert not geometric(sc.replace(workload="uniform"))["converged"]
    for model in MODELS:
        r = model(sc)
        assert r["converged"] and r["dirty_sync_count"] == 3
        assert r["downtime"] == pytest.approx(8 * MIB / 1e9 * 1e3)
        assert r["transferred"] == pytest.approx(sc.ram_size + 8 * MIB)


@pytest.mark.skipif("write_stride" not in tk.scenario.PARAMETER_INDEX,
                    reason="no write_stride parameter")
def test_strided_cursor_visits_pages_over_gcd():
    sc = tk.Scenario(ram_size="1GiB", workload="sequential", write_range="64MiB")
    assert working_set(sc.replace(write_stride=3), 1.0) == 64 * MIB      # coprime: all
    assert working_set(sc.replace(write_stride=4), 1.0) == 16 * MIB


def test_working_set_above_threshold_still_stalls():
    sc = scenario(ram_size="1GiB", dirty_rate=4e9, workload="sequential", write_range="64MiB",
                  link_bandwidth=1e9, max_bandwidth=0, downtime_limit=30, max_time=10.0)
    for model in MODELS:
        r = model(sc)
        assert not r["converged"]
        # round 0, then rounds of 64 MiB each: 1 + 1 + rounds within 10 s - 1.07 s
        assert r["dirty_sync_count"] == 2 + math.floor((10.0 - sc.ram_size / 1e9)
                                                       / (64 * MIB / 1e9))


def test_hotcold_working_set_is_the_expected_distinct_pages():
    sc = tk.Scenario(ram_size="1GiB", dirty_rate="1GiB/s", workload="hotcold",
                     hot_fraction=0.1, hot_share=0.9)
    hot, cold = sc.hot_pages, sc.n_pages - sc.hot_pages
    assert working_set(sc, 1e-6) == pytest.approx(sc.dirty_rate * 1e-6, rel=1e-3)
    w = working_set(sc, 1.0)
    writes = 2**30 / PAGE_SIZE
    assert w == pytest.approx(PAGE_SIZE * (hot * (1 - math.exp(-0.9 * writes / hot))
                                          + cold * (1 - math.exp(-0.1 * writes / cold))))
    assert hot * PAGE_SIZE < w < sc.dirty_rate * 1.0
    assert working_set(sc, 1e4) == pytest.approx(sc.ram_size)
    assert working_set(sc.replace(workload="uniform"), 1e-6) == sc.ram_size


@pytest.mark.parametrize("model", MODELS)
def test_hotcold_hot_set_converges_where_uniform_does_not(model):
    # 2 GB/s, 99.9 % of it in 8 MiB: the hot set and a few cold pages fit in 100 ms
    kw = dict(ram_size="512MiB", dirty_rate=2e9, hot_fraction=1 / 64, hot_share=0.999,
              link_bandwidth=1e9, max_bandwidth=0, downtime_limit=100, max_time=20.0)
    assert model(scenario(workload="hotcold", **kw))["converged"]
    assert not model(scenario(workload="uniform", **kw))["converged"]


# ---------------------------------------------------------------- bad input

@pytest.mark.parametrize("model", MODELS)
@pytest.mark.parametrize("bad", [None, {"ram_size": "1GiB"}, "4GiB", 42])
def test_not_a_scenario_is_a_type_error(model, bad):
    with pytest.raises(TypeError, match="expected a toolkit.Scenario"):
        model(bad)


@pytest.mark.parametrize("model", MODELS)
def test_workload_without_one_dirty_rate_is_a_value_error(model):
    sc = tk.Scenario(ram_size="1GiB", workload="phases",
                     phases="uniform:100MiB/s:1s, hotcold:1GiB/s:1s")
    with pytest.raises(ValueError, match="workload='phases'"):
        model(sc)
    with pytest.raises(ValueError, match="max_rounds"):
        model(tk.Scenario(), max_rounds=0)


# ---------------------------------------------------------------- the simulator

AGREE = {
    # dirty rate 4x the link over all of RAM
    "storm": dict(ram_size="256MiB", dirty_rate=4e9, link_bandwidth=1e9, max_bandwidth=0,
                  downtime_limit=30, max_time=5.0),
    # QEMU's default 128 MiB/s limit, the guest dirtying 512 MiB/s
    "throttled": dict(ram_size="256MiB", dirty_rate=512 * MIB, link_bandwidth=1e9,
                      downtime_limit=30, max_time=10.0),
    # 4 GB/s, but a cursor over 8 MiB
    "small range": dict(ram_size="256MiB", dirty_rate=4e9, workload="sequential",
                        write_range="8MiB", link_bandwidth=1e9, max_bandwidth=0,
                        downtime_limit=30, max_time=10.0),
    # a tenth of the link, uniform
    "moderate": dict(ram_size="512MiB", dirty_rate=1e8, link_bandwidth=1e9, max_bandwidth=0,
                     downtime_limit=100, max_time=10.0),
}
CONVERGES = {"storm": False, "throttled": False, "small range": True, "moderate": True}


@pytest.mark.parametrize("name", AGREE)
def test_baselines_and_simulator_agree_on_the_verdict(name):
    sc = scenario(**AGREE[name])
    ds = tk.simulate(sc)
    g, s = geometric(sc), simgrid(sc)
    assert bool(ds.converged) == g["converged"] == s["converged"] == CONVERGES[name]
    if CONVERGES[name]:
        for r in (g, s):
            assert r["total_time"] == pytest.approx(float(ds.total_time), rel=0.1)
            assert r["downtime"] <= sc.downtime_limit
