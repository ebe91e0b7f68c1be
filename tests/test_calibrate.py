"""Calibration on any real run: study records, a user's own trace + query-migrate
lines, and runs the simulator made with known host values (no QEMU needed)."""
import json
import math
import pathlib
import types

import numpy as np
import pytest

import toolkit as tk
from toolkit.qemu import calibrate as cal
from toolkit.qemu import study

ROOT = pathlib.Path(__file__).parents[1]
DATA = ROOT / "tests" / "data" / "qemu"
RUNS = ROOT / "datasets" / "qemu-validation" / "runs"
PAGE = 4096

#: The host the synthetic runs come from: a destination that takes 3 ms to populate a
#: 2 MiB region behind 2 MiB of socket buffers, re-sends wire-bound (4104 B / 2 GB/s =
#: 2.05 us), allocated zero pages 8x dearer than never-touched ones.
TRUTH = dict(link_bandwidth=2e9, dst_populate_time=3.0, socket_buffer_size=2 * 2**20,
             dst_copy_time=0.0,
             untouched_page_scan_time=150.0, zero_page_scan_time=1200.0, page_send_time=0.0,
             sync_time_fixed=0.3, sync_time_per_gib=0.0, sync_time_per_dirty_page=0.0,
             setup_overhead=1.0, vm_stop_time=2.0, device_state_size=100_000)


def guest(ram_mib, pages, rate, start=256, **kw):
    """A sequential guest over [start, start + pages), the rest of RAM zero."""
    n = ram_mib * 256
    return dict(ram_size=ram_mib << 20, workload="sequential", write_range=pages * PAGE,
                write_range_start=start * PAGE, dirty_rate=rate * PAGE,
                zero_fraction=(n - start - pages) / n, **kw)


#: Scenarios that exercise each cost.
SYNTHETIC = {
    # a big never-touched guest: the first pass is mostly untouched zero pages
    "untouched": guest(1024, 1024, 2000, max_bandwidth=100_000_000, downtime_limit=300),
    # the same, preallocated: every zero page is a full scan
    "prealloc": guest(1024, 1024, 2000, max_bandwidth=100_000_000, downtime_limit=300,
                      mem_prealloc=True),
    # switchover at the first window: most of RAM goes in the downtime, populating it
    "early": guest(256, 32768, 5000, max_bandwidth=40_000_000, downtime_limit=200,
                   avail_switchover_bandwidth=5_000_000_000),
    # switchover right after the first pass: the whole range is re-sent in the downtime
    "resend": guest(128, 8192, 5000, max_bandwidth=40_000_000, downtime_limit=10,
                    avail_switchover_bandwidth=5_000_000_000),
    "resend-unlimited": guest(128, 8192, 15000, max_bandwidth=0, downtime_limit=50),
    "converge": guest(128, 8192, 5000, max_bandwidth=100_000_000, downtime_limit=10),
    # never converges: 61 MB/s of writes over a 40 MB/s limit, cancelled at 8 s
    "cancelled": guest(128, 8192, 15000, max_bandwidth=40_000_000, downtime_limit=200,
                       max_time=8.0),
}


def synthetic(names=tuple(SYNTHETIC), truth=TRUTH):
    return [cal.simulated_run(tk.Scenario(**SYNTHETIC[n], **truth), id=n) for n in names]


@pytest.fixture(scope="module")
def fitted():
    return cal.calibrate(synthetic(), bootstrap=3)


def _study_record(run_id):
    record = json.loads((RUNS / run_id / "result.json").read_text())
    record["dir"] = str(RUNS / run_id)
    return record


def _readme_scenario(ram_mib, pages, rate, **kw):
    return tk.Scenario(**guest(ram_mib, pages, rate, **kw))


USER_RUNS = {   # tests/data/qemu/README.md
    "converging": dict(ram_mib=256, pages=32768, rate=15000, max_bandwidth=100_000_000,
                       downtime_limit=300, max_time=30),
    "cancelled": dict(ram_mib=128, pages=4096, rate=5000, max_bandwidth=10_000_000,
                      downtime_limit=300, max_time=10),
    "avail-switchover": dict(ram_mib=128, pages=4096, rate=5000, max_bandwidth=10_000_000,
                             downtime_limit=300, avail_switchover_bandwidth=100_000_000,
                             max_time=30),
}


def _user_run(name, **kw):
    return cal.user_run(trace=DATA / name / "src-trace.log", samples=DATA / name / "samples.jsonl",
                        scenario=_readme_scenario(**USER_RUNS[name]), **kw)


# ------------------------------------------------------------ known host values

def test_recovers_the_link_the_destination_and_both_zero_page_scans(fitted):
    v = fitted.values
    assert v["link_bandwidth"] == pytest.approx(2e9, rel=0.02)
    assert v["dst_populate_time"] == pytest.approx(3.0, rel=0.05)
    # the buffer is a threshold (the source waits or it does not): the runs pin it down
    # to the interval between the byte counts at which they would change
    assert 2**20 < v["socket_buffer_size"] < 4 * 2**20
    assert v["untouched_page_scan_time"] == pytest.approx(150, rel=0.1)
    assert v["zero_page_scan_time"] == pytest.approx(1200, rel=0.05)
    for k in ("link_bandwidth", "dst_populate_time", "socket_buffer_size",
              "untouched_page_scan_time", "zero_page_scan_time"):
        assert fitted.identified[k], k
        assert np.isfinite(fitted.errors[k]) and fitted.errors[k] >= 0, k
    # re-sends are wire-bound here: the destination's copy time hides under the link's
    assert not fitted.identified["dst_copy_time"]
    assert v["dst_copy_time"] == 0 and math.isnan(fitted.errors["dst_copy_time"])
    assert "dst_copy_time" in fitted.notes
    # measured: setup-time includes the first sync, as QEMU's does
    assert v["setup_overhead"] == pytest.approx(1.0 + 0.3)
    assert v["sync_time_fixed"] == pytest.approx(0.3)
    assert v["vm_stop_time"] == pytest.approx(2.0)
    assert v["device_state_size"] == pytest.approx(100_000, rel=0.01)
    # and the runs are reproduced
    res = fitted.residuals
    done = res.real_converged.values
    assert np.all(np.abs(res.rel_error_total_time.values[done]) < 0.02)
    assert np.all(np.abs(res.rel_error_downtime.values[done]) < 0.05)
    assert fitted.loss < 1e-3


def test_recovers_the_destination_copy_time_once_the_link_is_known():
    """Re-sends slower than the wire: only max(wire, dst_copy_time) shows in the runs.
    With the link known the fit finds the destination's time; with the link fitted
    too, the link takes it and dst_copy_time is reported as not identified."""
    truth = {**TRUTH, "dst_copy_time": 5000.0, "dst_populate_time": 4.5}
    runs = synthetic(("early", "resend", "resend-unlimited", "converge"), truth)
    known = cal.calibrate(runs, fit=("dst_copy_time", "dst_populate_time"), bootstrap=0,
                          known={"link_bandwidth": 2e9})
    assert known.values["dst_copy_time"] == pytest.approx(5000, rel=0.05)
    assert known.values["dst_populate_time"] == pytest.approx(4.5, rel=0.05)
    assert known.identified["dst_copy_time"] and known.identified["dst_populate_time"]
    assert "link_bandwidth" not in known.identified
    assert known.how["link_bandwidth"] == "known (given)"

    both = cal.calibrate(runs, fit=("link_bandwidth", "dst_copy_time"), bootstrap=0,
                         known={"dst_populate_time": 4.5})
    assert both.values["link_bandwidth"] == pytest.approx(4104 / 5000e-9, rel=0.05)
    assert not both.identified["dst_copy_time"]


def test_inputs_the_runs_cannot_identify_are_reported():
    runs = synthetic(("untouched", "converge"))          # no preallocated RAM, no zero writes
    c = cal.calibrate(runs, fit=("untouched_page_scan_time", "zero_page_scan_time"),
                      bootstrap=2)
    assert c.identified["untouched_page_scan_time"]
    assert c.values["untouched_page_scan_time"] == pytest.approx(150, rel=0.1)
    assert not c.identified["zero_page_scan_time"]
    assert math.isnan(c.errors["zero_page_scan_time"])
    # it keeps its start: the never-touched page's cost
    assert c.values["zero_page_scan_time"] == c.values["untouched_page_scan_time"]
    assert "allocated RAM" in c.notes["zero_page_scan_time"]
    assert "not identified" in c.table()
    # a cancelled run alone shows no downtime: no VM stop time, no device state
    lost = cal.calibrate(synthetic(("cancelled",)), fit=("link_bandwidth",), bootstrap=0)
    for k in ("vm_stop_time", "device_state_size"):
        assert not lost.identified[k] and math.isnan(lost.errors[k])
        assert lost.values[k] == cal.DEFAULTS[k]
    with pytest.raises(ValueError, match="not a fittable input"):
        cal.calibrate(runs, fit=("ram_size",))


# -------------------------------------------------------------- kinds of runs

def test_a_cancelled_real_run_calibrates():
    run = cal.load_run(RUNS / "r15000-bw40-dl10-avail0-0")
    assert not run.completed and run.status == "cancelled" and math.isnan(run.downtime)
    assert run.time_limit == study.TIME_LIMIT and run.transferred > 0
    c = cal.calibrate([run], fit=("link_bandwidth",), bootstrap=0)
    assert c.identified["setup_overhead"] and c.identified["sync_time_fixed"]
    assert not c.identified["vm_stop_time"]
    res = c.residuals
    assert res.sizes["run"] == 1 and not bool(res.sim_converged[0])
    # simulated to the run's time limit, compared on the bytes sent by then
    assert float(res.sim_total_time[0]) == pytest.approx(8000, rel=0.01)
    assert abs(float(res.rel_error_transferred[0])) < 0.05
    assert math.isnan(float(res.real_downtime[0]))


def test_full_speed_guests_and_runs_without_a_rate_reading_calibrate():
    base = _study_record("r5000-bw40-dl10-avail0-0")
    full = cal.RealRun.from_record({**base, "run": "full", "scenario": "full", "rate": None})
    blind = cal.RealRun.from_record({**base, "run": "blind", "scenario": "blind",
                                     "migration_write_rate": None})
    paced = cal.RealRun.from_record(base)
    assert math.isnan(full.measured["dirty_rate_efficiency"])
    assert math.isnan(blind.measured["dirty_rate_efficiency"])
    values = {"dirty_rate_efficiency": 0.5}
    # full speed: the measured rate is the dirty rate; no reading: the pace times efficiency
    assert full.build(values).dirty_rate == base["migration_write_rate"] * PAGE
    assert blind.build(values).dirty_rate == 5000 * 0.5 * PAGE
    # a guest unpaced and fast (sequential, 5 M writes/s), simulated
    fast = cal.simulated_run(tk.Scenario(**guest(128, 8192, 5e6, max_bandwidth=100_000_000,
                                                 downtime_limit=300, max_time=4.0), **TRUTH),
                             id="fast", guest_rate=5e6)
    c = cal.calibrate([full, blind, paced, fast], fit=("link_bandwidth",), bootstrap=0)
    assert c.how["dirty_rate_efficiency"] == "measured on 1 run"
    assert c.values["dirty_rate_efficiency"] == pytest.approx(paced.guest_rate / 5000)
    assert c.residuals.sizes["run"] == 4
    # a user's run without any rate: the Scenario's dirty_rate as given
    user = _user_run("converging")
    assert user.guest_rate is None and user.pace is None
    assert user.build(c.values).dirty_rate == 15000 * PAGE


def test_the_guest_efficiency_is_pooled_by_duration_and_skips_throttled_guests():
    base = _study_record("r5000-bw40-dl10-avail0-0")
    pace = base["rate"]

    def run(name, efficiency, total_time, **kw):
        return cal.RealRun.from_record({**base, "run": name, "scenario": name,
                                        "migration_write_rate": efficiency * pace,
                                        "total_time": total_time, **kw})

    long, short = run("long", 0.99, 6000), run("short", 0.6, 200)
    throttled = run("throttled", 0.3, 6000, auto_converge=True)
    assert throttled.throttled and not long.throttled
    assert math.isnan(throttled.measured["dirty_rate_efficiency"])
    c = cal.calibrate([long, short, throttled], fit=("link_bandwidth",), bootstrap=0)
    assert c.how["dirty_rate_efficiency"] == "measured on 2 runs"
    # all writes over all asked-for writes: (0.99 * 6000 + 0.6 * 200) / 6200
    assert c.values["dirty_rate_efficiency"] == pytest.approx((0.99 * 6000 + 0.6 * 200) / 6200)
    assert 0 < c.errors["dirty_rate_efficiency"] < 0.39 / 2

def test_a_user_run_from_a_trace_and_query_migrate_lines(tmp_path):
    runs = [_user_run(name) for name in USER_RUNS]
    conv, lost, avail = runs
    assert (conv.completed, conv.total_time, conv.setup_time, conv.downtime,
            conv.dirty_sync_count, conv.transferred) == (True, 2435, 1, 23, 6, 270537822)
    assert conv.pending_exact > 0 and conv.time_limit is None
    assert lost.status == "cancelled" and lost.dirty_sync_count == 7
    assert lost.time_limit == pytest.approx(lost.total_time / 1000)
    assert (avail.total_time, avail.downtime, avail.dirty_sync_count, avail.transferred) == \
        (1660, 33, 3, 34471566)
    # the caller's Scenario keeps its guest and settings, takes the calibrated host
    sc = conv.build({"link_bandwidth": 1.5e9, "dst_populate_time": 7.0})
    assert sc.ram_size == 256 << 20 and sc.max_bandwidth == 100_000_000
    assert sc.link_bandwidth == 1.5e9 and sc.dst_populate_time == 7.0
    c = cal.calibrate(runs, fit=("link_bandwidth", "dst_populate_time"), bootstrap=0)
    assert 1e8 < c.values["link_bandwidth"] < 2e10
    assert list(c.residuals.run.values) == list(USER_RUNS)
    # bare replies, one per line, and QMP responses read the same
    replies = [json.loads(line)["query-migrate"]
               for line in (DATA / "converging" / "samples.jsonl").read_text().splitlines()]
    bare, qmp = tmp_path / "bare.jsonl", tmp_path / "qmp.jsonl"
    bare.write_text("".join(json.dumps(r) + "\n" for r in replies))
    qmp.write_text("".join(json.dumps({"return": r}) + "\n" for r in replies))
    for path in (bare, qmp, replies):
        other = cal.user_run(trace=DATA / "converging" / "src-trace.log", samples=path,
                             scenario=_readme_scenario(**USER_RUNS["converging"]))
        assert (other.total_time, other.downtime, other.transferred, other.normal_pages) == \
            (conv.total_time, conv.downtime, conv.transferred, conv.normal_pages)
    # a harness output directory without result.json, with the Scenario given
    same = cal.load_run(DATA / "converging", scenario=_readme_scenario(**USER_RUNS["converging"]))
    assert same.id == "converging" and same.transferred == conv.transferred
    with pytest.raises(ValueError, match="scenario"):
        cal.load_run(DATA / "converging")
    with pytest.raises(ValueError, match="query-migrate reply"):
        cal.user_run(trace=DATA / "converging" / "src-trace.log", samples=[{"x": 1}],
                     scenario=_readme_scenario(**USER_RUNS["converging"]))


def test_a_study_run_read_as_a_user_run_is_the_same_run():
    run_id = "r15000-bw40-dl10-avail5000-0"
    loaded = cal.load_run(RUNS / run_id)
    record = _study_record(run_id)
    user = cal.user_run(trace=RUNS / run_id / "src-trace.log",
                        samples=RUNS / run_id / "samples.jsonl",
                        scenario=study.scenario_for(record, {}), id=run_id,
                        guest_rate=record["migration_write_rate"], pace=record["rate"])
    for k in ("completed", "total_time", "setup_time", "downtime", "dirty_sync_count",
              "transferred", "normal_pages", "zero_pages", "remaining", "pending_exact"):
        assert getattr(user, k) == getattr(loaded, k), k
    assert user.measured == loaded.measured
    values = {"link_bandwidth": 1.2e9, "dst_populate_time": 4.0,
              "dirty_rate_efficiency": 0.9}
    assert user.build(values) == loaded.build(values)


def test_residuals_have_one_row_per_run():
    runs = [cal.load_run(p) for p in sorted(RUNS.glob("r5000-bw40-dl*-avail5000-*"))]
    c = cal.calibrate(runs, fit=("link_bandwidth",), bootstrap=0)
    res = c.residuals
    assert res.sizes["run"] == len(runs) == 6
    assert list(res.run.values) == [r.id for r in runs] == c.runs
    assert list(res.group.values) == [r.group for r in runs]
    for q in ("total_time", "downtime", "dirty_sync_count", "transferred"):
        assert np.all(np.isfinite(res[f"rel_error_{q}"].values)), q
        np.testing.assert_allclose(res[f"real_{q}"].values, [getattr(r, q) for r in runs])
    # the same with a Scenario-building function given by the caller
    again = cal.calibrate(runs, scenario=lambda run, values: study.scenario_for(run, values),
                          fit=("link_bandwidth",), bootstrap=0)
    assert again.values == c.values
    for k in c.values:
        assert k in c.table()


def test_predict_from_the_settings_uses_the_pace():
    record = _study_record("r5000-bw40-dl10-avail0-0")
    values = {"dirty_rate_efficiency": 0.5, "link_bandwidth": 1e9}
    ds = cal.predict(record, cal.Calibration(values, {}))
    assert ds.attrs["dirty_rate"] == 5000 * 0.5 * PAGE
    assert ds.attrs["max_time"] == record["time_limit"]
    lost = cal.predict(cal.load_run(RUNS / "r15000-bw40-dl10-avail0-0"),
                       cal.Calibration({**values, "dirty_rate_efficiency": 0.97}, {}))
    assert not bool(lost.converged)


# ------------------------------------------------------- the study's mapping

def test_study_scenario_for_maps_the_extended_guest():
    old = _study_record("r5000-bw40-dl10-avail0-0")
    sc = study.scenario_for(old, {})
    assert (sc.write_stride, sc.write_cursor, sc.zero_write_share, sc.mem_prealloc) == \
        (1, 0, 0.0, False)
    assert sc.zero_start == 256 + 8192 and not sc.auto_converge and sc.qemu_version == "10.0"
    new = {**old, "fill": False, "stride": 3, "zero_every": 1, "prealloc": True,
           "cursor_at_migrate": 10, "writes_at_migrate": 12345, "auto_converge": True}
    sc = study.scenario_for(new, {"dirty_rate_efficiency": 1.0})
    assert (sc.write_stride, sc.write_cursor, sc.zero_write_share, sc.mem_prealloc) == \
        (3, 13, 1.0, True)
    # a whole sweep of zero writes: the range holds allocated zero pages
    assert sc.zero_start == 256 and sc.zero_allocated_end == 256 + 8192 and sc.auto_converge
    for partial in ({"zero_every": 4}, {"writes_at_migrate": 5000}):
        with pytest.raises(ValueError, match="partly data and partly zero"):
            study.scenario_for({**new, **partial}, {})
    assert sc.dirty_rate == old["migration_write_rate"] * PAGE
    assert study.scenario_for({**new, "cursor_at_migrate": 8190}, {}).write_cursor == 1
    with pytest.raises(ValueError, match="multiple of 64"):
        study.scenario_for({**new, "start_page": 300}, {})
    with pytest.raises(ValueError, match="no write rate"):
        study.scenario_for({**old, "rate": None, "migration_write_rate": None}, {})
    for version, release in (("10.0.2", "10.0"), ("9.2.1", "9.2"), ("10.2.0", "10.1"),
                             ("8.2.0", "8.2"), ("11.0.0", "10.1")):
        assert study.scenario_for({**old, "qemu_version": version}, {}).qemu_version == release


def test_result_record_takes_the_new_guest_fields_with_defaults():
    sc = study.scenarios()[0]
    result = types.SimpleNamespace(
        completed=True, status="completed", samples=[], qemu_version=(10, 0, 2),
        final={"status": "completed", "total-time": 300, "setup-time": 1, "downtime": 5,
               "ram": {"dirty-sync-count": 4, "transferred": 1000, "normal": 1,
                       "duplicate": 2}},
        warmup_write_rate=4990.0, migration_write_rate=4950.0)
    old = study.result_record(sc, 0, result)
    assert {k: old[k] for k in study.GUEST_DEFAULTS} == study.GUEST_DEFAULTS
    new_fields = dict(zero_every=3, fill=False, stride=5, prealloc=True, cursor_at_migrate=77,
                      writes_at_migrate=9999, auto_converge=True)
    new = study.result_record(sc, 1, types.SimpleNamespace(**vars(result), **new_fields))
    assert {k: new[k] for k in new_fields} == new_fields
    assert new["total_time"] == 300 and new["run"].endswith("-1")
