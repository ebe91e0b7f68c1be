"""Calibration and validation against the shipped real QEMU runs (no QEMU needed)."""
import json
import math
import pathlib

import numpy as np
import pytest
import xarray as xr

import toolkit as tk
from toolkit.qemu import calibrate as cal
from toolkit.qemu import records, study, validate

DATASETS = pathlib.Path(__file__).parents[1] / "datasets"
RECORDS = study.load_records(DATASETS / "qemu-validation")
FIRST_EDITION = [r for r in RECORDS if r.get("family", "first edition") == "first edition"]


def _run(run_id):
    return next(r for r in RECORDS if r["run"] == run_id)


def test_the_study_is_shipped_whole():
    assert len(RECORDS) == len(study.scenarios()) * study.REPEATS == 126
    assert {r["scenario"] for r in RECORDS} == {s["id"] for s in study.scenarios()}
    # what the second edition is for: guests from 128 MiB to 8 GiB, zero writes, prealloc,
    # a scattered order, avail sweeps in steps of at most 25 MB/s, a short first pass
    sizes = {r["ram_mib"] for r in RECORDS}
    assert min(sizes) <= 128 and max(sizes) == 8192
    assert any(r.get("zero_every") for r in RECORDS) and any(r.get("prealloc") for r in RECORDS)
    assert any((r.get("stride") or 1) > 1 for r in RECORDS)
    assert any(r.get("auto_converge") for r in RECORDS)
    for name in {s.get("sweep") for s in study.scenarios()} - {None}:
        avail = sorted(s["avail_switchover_bandwidth"] for s in study.scenarios()
                       if s.get("sweep") == name)
        assert len(avail) >= 4 and max(np.diff(avail)) <= 25_000_000
    assert _run("short-first-pass-0")["total_time"] < 100         # one window not closed yet
    # the grid holds every case the study is for
    converged = {r["scenario"]: r["completed"] for r in RECORDS}
    assert not converged["r15000-bw40-dl200-avail0"]                      # lost with the estimate
    assert converged["r15000-bw40-dl200-avail5000"]                       # rescued
    over = _run("r15000-bw40-dl10-avail5000-0")
    assert over["completed"] and over["downtime"] > over["downtime_limit"]  # overshoots


def test_scenario_for_maps_the_guest_and_the_settings():
    r = _run("r5000-bw40-dl10-avail0-0")
    values = {k: 1.0 for k in cal.UNITS} | {"link_bandwidth": 1e9, "device_state_size": 1000}
    sc = study.scenario_for(r, values)
    assert sc.ram_size == 128 << 20 and sc.workload == "sequential"
    assert sc.write_range == 8192 * 4096 and sc.write_range_start == 256 * 4096
    assert sc.dirty_rate == r["migration_write_rate"] * 4096   # the guest's measured rate
    assert sc.zero_start == 256 + 8192                     # the pages above the range
    assert (sc.max_bandwidth, sc.downtime_limit, sc.avail_switchover_bandwidth) == \
        (40_000_000, 10, 0)
    assert sc.max_time == study.TIME_LIMIT == 8.0
    assert sc.link_bandwidth == 1e9 and sc.device_state_size == 1000
    assert study.scenario_for(r, values, dirty_rate=4000).dirty_rate == 4000 * 4096
    assert cal.scenario_for(r, values) == sc               # the old name still works


def test_measure_reads_the_run():
    r = _run("r15000-bw40-dl10-avail5000-0")
    m = cal.measure(r)
    assert m["dirty_rate_efficiency"] == pytest.approx(r["migration_write_rate"] / 15000)
    assert m["setup_overhead"] == r["setup_time"]
    assert 0 < m["vm_stop_time"] < r["downtime"]
    assert 0 < m["sync_time_fixed"] < 10
    # the bytes that are not pages: 4104 B per normal page, 9 B per zero page
    assert m["device_state_size"] == \
        r["transferred"] - 4104 * r["normal_pages"] - 9 * r["zero_pages"]
    lost = cal.measure(_run("r15000-bw40-dl10-avail0-0"))
    assert math.isnan(lost["vm_stop_time"]) and math.isnan(lost["device_state_size"])


def test_calibration_recovers_the_link_from_simulated_downtimes():
    """Runs made by the simulator itself with a known link: the fit finds it again."""
    truth = {"setup_overhead": 1.0, "sync_time_fixed": 0.5, "vm_stop_time": 2.0,
             "device_state_size": 100_000.0, "link_bandwidth": 2.5e9,
             "untouched_page_scan_time": 300.0}
    fake = [cal.simulated_run(study.scenario_for(r, truth, dirty_rate=r["rate"]), id=r["run"])
            for r in RECORDS if r["repeat"] == 0 and r["avail_switchover_bandwidth"] > 0]
    c = cal.calibrate(fake, fit=("link_bandwidth", "untouched_page_scan_time"), bootstrap=0)
    assert c.values["link_bandwidth"] == pytest.approx(2.5e9, rel=0.05)
    assert c.values["untouched_page_scan_time"] == pytest.approx(300, rel=0.3)


def test_calibrate_gives_values_with_errors():
    c = cal.calibrate([r for r in FIRST_EDITION if r["repeat"] < 2], bootstrap=2)
    for k in cal.UNITS:
        assert np.isfinite(c.values[k]), k
    for k, ok in c.identified.items():
        assert not ok or c.errors[k] >= 0, k
    assert 0.9 < c.values["dirty_rate_efficiency"] < 1.05
    assert 3e8 < c.values["link_bandwidth"] < 1e10
    assert c.identified["link_bandwidth"] and c.identified["dst_populate_time"]
    assert not c.identified["zero_page_scan_time"]    # no preallocated RAM, no zero writes
    assert "link_bandwidth" in c.table()
    assert c.residuals.sizes["run"] == 32
    # runs that never completed calibrate too (no downtime: no VM stop time measured)
    lost = cal.calibrate([r for r in FIRST_EDITION if not r["completed"]],
                         fit=("link_bandwidth",), bootstrap=0)
    assert not lost.identified["vm_stop_time"] and lost.identified["sync_time_fixed"]


def test_scores_closed_form():
    ds = xr.Dataset({
        "real_converged": ("run", [True, True, True, False]),
        "sim_converged": ("run", [True, True, False, False]),
        "real_total_time": ("run", [100.0, 200.0, 300.0, 8000.0]),
        "sim_total_time": ("run", [110.0, 180.0, 8000.0, 8000.0]),
        "real_downtime": ("run", [10.0, 20.0, 30.0, np.nan]),
        "sim_downtime": ("run", [10.0, 30.0, np.nan, np.nan]),
        "real_dirty_sync_count": ("run", [3, 4, 5, 9]),
        "sim_dirty_sync_count": ("run", [3, 5, 9, 9]),
    })
    s = validate.scores(ds)
    assert s["verdict_agreement"] == 0.75 and s["converged_in_both"] == 2
    assert s["median_total_time_error"] == pytest.approx(0.1)
    assert s["median_downtime_error"] == pytest.approx(0.25)
    assert s["sync_count_exact"] == 0.5


def _assert_is_shipped(table, name):
    """``table`` holds the shipped dataset ``name``'s values (to 1e-9 where floating)."""
    shipped = tk.open_dataset(name)
    for var in list(shipped.data_vars) + list(shipped.coords):
        if table[var].dtype.kind == "f":
            np.testing.assert_allclose(table[var].values, shipped[var].values, rtol=1e-9,
                                       err_msg=var)
        else:
            np.testing.assert_array_equal(table[var].values, shipped[var].values, err_msg=var)


@pytest.mark.slow
def test_shipped_table_regenerates_and_meets_the_targets(tmp_path):
    table = validate.validate(RECORDS)
    _assert_is_shipped(table, "qemu-validation")
    s = validate.scores(table)
    met = validate.meets_targets(s)
    assert met["verdict_agreement"] and met["sync_count_exact"]
    # met with each scenario counted once; run by run not yet (README, notebook 06): the
    # destination's population cost is bimodal on this host and a few scenarios take an
    # extra rate-limit round at a phase edge; guard what is reached
    by_scenario = validate.meets_targets(validate.scores(table, by="scenario"))
    assert all(by_scenario.values()), by_scenario
    assert s["median_total_time_error"] <= 0.06 and s["downtime_within"] >= 0.7
    assert all(b["within_one_step"] for b in validate.boundaries(table).values())
    for baseline in ("geometric", "simgrid"):
        other = validate.scores(table, baseline)
        assert s["median_total_time_error"] < other["median_total_time_error"] / 10
        assert s["verdict_agreement"] > other["verdict_agreement"]
        assert s["downtime_within"] > other["downtime_within"]


def test_the_tcg_profile_is_the_shipped_calibration():
    from toolkit import hosts
    table = tk.open_dataset("qemu-validation")
    values = dict(zip(table.input.values, table.calibrated_value.values))
    for k, (v, _) in hosts.TCG_LOOPBACK.items():
        assert v == pytest.approx(values[k], rel=1e-5, abs=1e-9), k


MULTIFD_RECORDS = study.load_records(DATASETS / "qemu-multifd")


@pytest.mark.slow
def test_the_multifd_table_regenerates_and_scores_ahead_of_the_baselines():
    table = study.validate_multifd(MULTIFD_RECORDS)
    _assert_is_shipped(table, "qemu-multifd")
    s = validate.scores(table)
    assert s["rows"] == 51 and s["converged_in_both"] == 51
    met = validate.meets_targets(s)
    # the verdicts and the syncs are met; time and downtime not yet (README, "Multifd
    # against real QEMU"): guard what is reached
    assert met["verdict_agreement"] and met["sync_count_exact"]
    assert s["median_total_time_error"] <= 0.25 and s["downtime_within"] >= 0.45
    for baseline in ("geometric", "simgrid"):
        other = validate.scores(table, baseline)
        assert s["median_total_time_error"] < other["median_total_time_error"] / 5
        assert s["downtime_within"] > other["downtime_within"]
    # calibrated: multifd's costs only, the host is tcg-loopback's as known
    inputs = dict(zip(table.input.values, table.calibrated_value.values))
    assert set(cal.MULTIFD_FITTED) <= set(inputs)
    for k, v in study.multifd_known().items():
        assert inputs[k] == v, k


def test_the_tcg_profile_has_the_multifd_calibration():
    from toolkit import hosts
    table = tk.open_dataset("qemu-multifd")
    values = dict(zip(table.input.values, table.calibrated_value.values))
    assert set(hosts.TCG_LOOPBACK_MULTIFD) == set(cal.MULTIFD_FITTED)
    profile = hosts.get("tcg-loopback").values
    for k, (v, _) in hosts.TCG_LOOPBACK_MULTIFD.items():
        assert v == pytest.approx(values[k], rel=1e-5, abs=1e-9) and profile[k] == v, k
    assert table.attrs["title"] == "Simulator vs real QEMU: the multifd study"
    assert math.isnan(table.attrs["score_sim_boundaries_within_one_step"])   # no avail sweep


def test_a_run_with_the_destination_preallocated_maps_to_dst_mem_prealloc():
    run = next(r for r in MULTIFD_RECORDS if r.group == "multifd2-dst-prealloc")
    sc = run.build(study.multifd_known())
    assert sc.dst_mem_prealloc and not sc.mem_prealloc and not sc.dst_populates
    assert not next(r for r in MULTIFD_RECORDS if r.group == "multifd2").build(
        study.multifd_known()).dst_mem_prealloc


def test_the_device_state_of_a_multifd_run_is_what_the_channels_did_not_carry():
    # the channels carry the pages; with legacy detection the main stream the zero pages
    sizes = {r.id: r.measured["device_state_size"] for r in MULTIFD_RECORDS}
    plain = np.array(list(sizes.values()))
    assert np.all(np.abs(plain - 113_000) < 1000), sizes
    legacy = next(r for r in MULTIFD_RECORDS if r.zero_page_detection == "legacy")
    assert legacy.multifd_bytes > 0 and legacy.zero_pages > 100_000


def test_the_study_never_installs_anything_unasked(monkeypatch, tmp_path, capsys):
    calls = []
    monkeypatch.setattr(study.subprocess, "run", lambda *a, **k: calls.append(a))
    monkeypatch.setattr(study, "qemu_missing", lambda: "QEMU 8.2 or newer")
    assert study.main(["--out", str(tmp_path), "--only", "short-first-pass"]) == 2
    err = capsys.readouterr().err
    assert "3 runs to do need QEMU 8.2 or newer" in err and "install-qemu" in err
    assert calls == []
    assert study.pending_runs(DATASETS / "qemu-validation") == []


def test_the_study_reruns_nothing_recorded(monkeypatch):
    monkeypatch.setattr(study.harness, "run_migration", lambda **kw: pytest.fail("a run ran"))
    lines = []
    records = study.run_study(DATASETS / "qemu-validation", only="short-first-pass",
                              progress=lines.append)
    assert len(records) == 126 and lines == []


def test_the_probe_reads_the_final_copies_of_recorded_runs(capsys):
    from toolkit.qemu import probe
    assert probe.main(["r5000-bw100-dl200-avail0", "--recorded"]) == 0
    rows = [line.split() for line in capsys.readouterr().out.splitlines()[2:]]
    # the README's bimodal example: ~6 MB in 14.3, 14.1 and 3.6 ms
    assert [r[3] for r in rows] == ["14.3", "14.1", "3.6"]
    assert probe.main(["no-such-scenario", "--recorded"]) == 2


def test_the_populate_probe_prints_three_tries_and_refuses_bad_arguments(capsys):
    from toolkit.qemu import populate
    assert populate.main(["--mib", "4", "--wait", "0"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("2 regions of 2 MiB a try; free page reporting order: ")
    assert [line.split()[0] for line in out[1:]] == ["memory", "again,", "again"]
    assert all(" ms a region" in line for line in out[1:])
    per_region, huge = populate.populate(4 * 2**20)
    assert per_region > 0 and (huge is None or 0 <= huge <= 2)
    assert populate.main(["--mib", "1"]) == 2
    assert "--mib 1: expected an integer in [2, 1048576] MiB" in capsys.readouterr().err
    assert populate.main(["--wait", "-1"]) == 2
    assert "--wait -1.0: expected seconds in [0, 3600]" in capsys.readouterr().err


def test_the_multifd_runs_are_shipped_apart():
    from toolkit.qemu import grid
    from toolkit.qemu.records import ROOT
    runs = [json.loads(p.read_text()) for p in
            sorted((ROOT / "datasets" / "qemu-multifd" / "runs").glob("*/result.json"))]
    assert {r["scenario"] for r in runs} == {s["id"] for s in grid.MULTIFD}
    assert study.pending_runs(DATASETS / "qemu-multifd", scenarios=grid.MULTIFD) == []
    assert len(runs) == 3 * len(grid.MULTIFD) and len(grid.MULTIFD) >= 8
    # 1, 2, 4 and 8 channels, both compressions, zero detection in the channels and in
    # the migration thread; every run's pages went through the channels
    assert {r["multifd_channels"] for r in runs} >= {1, 2, 4, 8}
    assert {r["multifd_compression"] for r in runs} == {"none", "zlib", "zstd"}
    assert all(r["completed"] and r["multifd_bytes"] > 0 for r in runs)
    assert any(r.get("zero_every") for r in runs) and \
        any((r.get("parameters") or {}).get("zero-page-detection") == "legacy" for r in runs)
    # each is a Scenario of the model, multifd on, compression read off the run
    for r in runs:
        sc = records.record_scenario(r, cal.host_values({}), 1000.0)
        assert sc.multifd and sc.multifd_channels == r["multifd_channels"]
        if r["multifd_compression"] != "none":
            assert 0 < sc.compressed_fraction < 0.2      # the test guest's data compresses
