"""Readers of recorded real QEMU migrations (tests/data/qemu, QEMU not needed)."""
import json
import math
from pathlib import Path

import numpy as np
import pytest
import xarray as xr

import toolkit as tk
from toolkit.qemu import readers
from toolkit.schema import SCALARS, TRACE

DATA = Path(__file__).resolve().parent / "data" / "qemu"
RUNS = ("converging", "cancelled", "avail-switchover")


@pytest.fixture(scope="module")
def sim():
    return tk.simulate(ram_size="256MiB", workload="sequential", write_range="128MiB",
                       write_range_start="1MiB", dirty_rate="60MB/s", max_bandwidth="100MB/s",
                       max_time=30)


def _lines(run, event):
    return [line for line in (DATA / run / "src-trace.log").read_text().splitlines()
            if f":{event} " in line]


@pytest.mark.parametrize("run", RUNS)
def test_read_trace_all_lines(run):
    for side in ("src", "dst"):
        path = DATA / run / f"{side}-trace.log"
        records = readers.read_trace(path)
        assert len(records) == len(path.read_text().splitlines())  # only traced events there
        assert all(np.diff([r.time for r in records]) >= 0)
    first = readers.read_trace(DATA / run / "src-trace.log")[0]
    assert first.event == "migration_bitmap_sync_end" and first.args == {"dirty_pages": 0}


def test_read_trace_values():
    records = readers.read_trace(DATA / "converging" / "src-trace.log")
    window = next(r for r in records if r.event == "migrate_transferred")
    assert window.time == pytest.approx(1795709594.245913, abs=1e-6)
    assert window.args == {"transferred": 10114480, "time_spent": 100, "bandwidth": 101144,
                           "switchover_bw": 0, "max_size": 30343440}
    assert window.pid == 32042 and window.line == 3
    exact = next(r for r in records if r.event == "migrate_pending_exact")
    assert exact.args == {"size": 79142912, "pre": 79142912, "post": 0}
    checkpoints = [r.args["checkpoint"] for r in records
                   if r.event == "vmstate_downtime_checkpoint"]
    assert checkpoints[0] == "src-downtime-start" and checkpoints[-1] == "src-downtime-end"


def test_bad_lines(tmp_path):
    good = (DATA / "converging" / "src-trace.log").read_text().splitlines()[:3]
    path = tmp_path / "trace.log"
    # other events and QEMU messages are skipped
    path.write_text("\n".join(good + ["123@1.000001:migrate_transferred_bytes qemu_file 1",
                                      "qemu-system-x86_64: some warning", ""]) + "\n")
    assert len(readers.read_trace(path)) == 3
    for bad in ("123@1.5:migrate_transferred transferred 10 time_spent x bandwidth 1",
                "migrate_transferred transferred 1 time_spent 100 bandwidth 0 max_size 0",
                "123@1.5:migrate_pending_exact exact pending size 1 (pre = 1"):
        path.write_text("\n".join(good + [bad]) + "\n")
        with pytest.raises(ValueError, match=rf"{path.name}:4\b"):
            readers.read_trace(path)
    path.write_text('{"t": 0.1, "query-migrate": {"status": "setup"}}\n{"t": 0.2, "query-\n')
    with pytest.raises(ValueError, match=rf"{path.name}:2\b"):
        readers.read_samples(path)
    path.write_text('{"t": 0.1}\n')
    with pytest.raises(ValueError, match=rf"{path.name}:1\b"):
        readers.read_samples(path)


def test_converging_run():
    ds = readers.trace_dataset(DATA / "converging", qemu_version=(10, 0, 2),
                               params={"ram_mib": 256, "pages": 32768, "rate": 15000})
    # README: completed, total 2 435 ms, setup 1 ms, downtime 23 ms, 6 syncs, 270 537 822 B
    assert ds.converged.dtype == bool and bool(ds.converged)
    assert (ds.total_time, ds.setup_time, ds.downtime) == (2435, 1, 23)
    assert ds.dirty_sync_count == 6 and ds.transferred == 270537822
    assert ds.dirty_pages_rate == 14749 and ds.remaining == 0
    assert (ds.normal_pages, ds.zero_pages) == (65821, 32783)
    assert ds.mbps == pytest.approx(270537822 * 8 / (2435 - 1) / 1000)
    assert ds.switchover_pending == 27697152 and ds.switchover_threshold == 30336822
    assert ds.attrs["source"] == "QEMU 10.0.2 (recorded)" and ds.attrs["ram_mib"] == 256
    assert ds.attrs["downtime_limit_used"] == 300
    # per window: the trace's own numbers
    lines = _lines("converging", "migrate_transferred")
    assert ds.sizes["window"] == len(lines) == 24
    assert ds.window_bytes[0] == 10114480 and ds.threshold[0] == 30343440
    assert ds.syncs[0] == 1 and ds.syncs[-1] == 4     # setup sync counts 1
    assert ds.pending[0] == 257961984                # the estimate right after the first close
    assert ds.cumulative_transferred[-1] == ds.window_bytes.sum()
    # time zero: src-downtime-end is at total-time (QEMU's own ms clock)
    end = next(r for r in readers.read_trace(DATA / "converging" / "src-trace.log")
               if r.args.get("checkpoint") == "src-downtime-end")
    assert (end.time - ds.attrs["time_zero_realtime"]) * 1000 == pytest.approx(2435, abs=1)


@pytest.mark.parametrize("run", RUNS)
def test_window_consistency(run):
    ds = readers.trace_dataset(DATA / run)
    records = [r for r in readers.read_trace(DATA / run / "src-trace.log")
               if r.event == "migrate_transferred"]
    assert ds.sizes["window"] == len(records) == len(_lines(run, "migrate_transferred"))
    np.testing.assert_array_equal(ds.threshold, [r.args["max_size"] for r in records])
    np.testing.assert_allclose(ds.bandwidth, ds.window_bytes / ds.time_spent * 1000)
    # QEMU traces the same bandwidth truncated to B/ms
    np.testing.assert_array_equal(np.floor(ds.bandwidth / 1000),
                                  [r.args["bandwidth"] for r in records])
    np.testing.assert_allclose(ds.window_mbps, ds.window_bytes * 8 / ds.time_spent / 1000)
    t = ds.time.values
    assert np.all(np.diff(t) > 0) and 100 <= t[0] < 110
    assert not np.isnan(ds.pending).any()
    assert np.all(np.diff(ds.syncs) >= 0)


@pytest.mark.parametrize("run", RUNS)
def test_windows_match_samples(run):
    """Replayed per-window values equal what query-migrate reported between window closes."""
    ds = readers.trace_dataset(DATA / run)
    smp = readers.samples_dataset(DATA / run)
    t0 = ds.attrs["time_zero_realtime"]
    sync_times = np.array([(r.time - t0) * 1000 for r in readers.read_trace(
        DATA / run / "src-trace.log") if r.event == "migration_bitmap_sync_end"])
    active = smp.where(smp.status == "active", drop=True)
    close = ds.time.values
    checked = 0
    for k in range(active.sizes["sample"]):
        s = active.isel(sample=k)
        t = float(s.total_time)   # QEMU's ms since migrate, same origin as ds.time
        i = np.searchsorted(close, t) - 1
        if i < 0 or min(abs(np.r_[close, sync_times] - t)) < 2:  # too near a change
            continue
        w = ds.isel(window=i)
        assert s.dirty_sync_count == np.sum(sync_times < t), t
        assert s.expected_downtime == w.window_expected_downtime, t   # changes at closes only
        assert s.transferred >= w.cumulative_transferred
        if s.dirty_sync_count == w.syncs:    # no sync between the close and the sample
            assert s.dirty_pages_rate == pytest.approx(float(w.window_dirty_pages_rate),
                                                       rel=1e-3), t
            assert s.remaining <= w.pending
            checked += 1
    assert checked >= 10


def test_cancelled_run():
    ds = readers.trace_dataset(DATA / "cancelled")
    assert not bool(ds.converged) and math.isnan(ds.downtime) and math.isnan(ds.switchover_pending)
    assert ds.total_time == 10000 and ds.dirty_sync_count == 7
    assert 2475 <= ds.dirty_pages_rate <= 2560
    assert ds.syncs[-1] == 7 and ds.attrs["source"] == "QEMU (recorded, version unknown)"


def test_avail_switchover_run():
    ds = readers.trace_dataset(DATA / "avail-switchover")
    assert bool(ds.converged) and (ds.total_time, ds.downtime, ds.dirty_sync_count) == (1660, 33, 3)
    assert ds.transferred == 34471566
    assert np.all(ds.threshold == 30_000_000)    # avail-switchover-bandwidth x downtime-limit
    assert ds.switchover_pending == 16785408 < ds.switchover_threshold


def test_trace_only_and_explicit_paths(tmp_path):
    run = DATA / "converging"
    ds = readers.trace_dataset(trace=run / "src-trace.log")
    assert bool(ds.converged) and ds.dirty_sync_count == 6
    assert ds.downtime == pytest.approx(23, abs=1) and ds.total_time == pytest.approx(2435, abs=5)
    assert "start of the first window" in ds.attrs["time_zero"]
    assert "transferred" not in ds          # sample-only scalars are absent
    with pytest.raises(FileNotFoundError):
        readers.trace_dataset(tmp_path)


def test_units_match_simulator(sim):
    ds = readers.trace_dataset(DATA / "converging")
    shared = set(ds.variables) & set(sim.variables)
    assert set(TRACE) | {"time", "window"} <= shared
    assert set(ds.data_vars) - set(sim.data_vars) == set()
    # what QEMU does not report: the guest's writes, lost pages, the kinds of pages sent,
    # the passes over RAM and where the page search stands; multifd's (a run without it)
    assert set(sim.data_vars) - set(ds.data_vars) == {"guest_writes", "lost_pages",
                                                      "untouched_zero_pages", "populated_regions",
                                                      "passes", "last_page", "multifd_bytes",
                                                      "multifd_packets", "multifd_wait_time",
                                                      "multifd_cpu_time"}
    for name in shared:
        assert ds[name].dims == sim[name].dims, name
        for attr in ("units", "long_name"):
            assert ds[name].attrs[attr] == sim[name].attrs[attr], (name, attr)
    smp = readers.samples_dataset(DATA / "converging" / "samples.jsonl")
    for name in set(smp.data_vars) & set(SCALARS):
        assert smp[name].attrs["units"] == SCALARS[name][0], name
    for name, var in {**smp.data_vars, **smp.coords}.items():
        assert "units" in var.attrs, name
    assert smp.time.attrs["units"] == "ms"
    assert list(smp.status.values[[0, -1]]) == ["setup", "completed"]
    assert smp.transferred[-1] == 270537822 and smp.total_time[-1] == 2435
    # the harness's clock and QEMU's total-time agree to a few ms while active
    active = smp.status == "active"
    assert np.all(abs(smp.time[active] - smp.total_time[active]) < 5)


def test_overlay_with_simulation(sim):
    real = readers.trace_dataset(DATA / "converging")
    names = sorted(set(TRACE))
    a, b = xr.align(sim[names], real[names], join="outer")
    assert a.sizes["window"] == b.sizes["window"] == max(sim.sizes["window"], real.sizes["window"])
    both = xr.concat([sim[names].reset_coords("time"), real[names].reset_coords("time")],
                     dim=xr.Variable("source", ["simulated", "recorded"]), join="outer")
    assert both.bandwidth.attrs["units"] == "B s-1"
    # same scenario, same first window and threshold to within 1 %
    assert float(both.bandwidth[1, 0]) == pytest.approx(float(both.bandwidth[0, 0]), rel=0.02)
    scalars = sorted(set(SCALARS) & set(real.data_vars))
    pair = xr.concat([sim[scalars], real[scalars]], dim="source")
    assert pair.total_time.attrs["units"] == "ms" and pair.sizes["source"] == 2


def test_domjobinfo_fields():
    samples = readers.read_samples(DATA / "converging" / "samples.jsonl")
    f = readers.domjobinfo_fields(samples[-2])
    q = samples[-2]["query-migrate"]
    assert f["Time elapsed"] == q["total-time"] == 2400
    assert f["Data processed"] == q["ram"]["transferred"]
    assert f["Data remaining"] == q["ram"]["remaining"] and f["Data total"] == 268967936
    assert f["Memory bandwidth"] == pytest.approx(q["ram"]["mbps"] * 125000)
    assert f["Iteration"] == 4 and f["Dirty rate"] == 14749 and f["Expected downtime"] == 453
    done = readers.domjobinfo_fields(samples[-1]["query-migrate"])
    assert done["Total downtime"] == 23 and done["Setup time"] == 1
    assert "Expected downtime" not in done
    assert readers.domjobinfo_fields({"status": "setup"}) == {}
    json.dumps(f)   # plain numbers


def test_the_downtime_probe_reads_both_sides_and_refuses_bad_arguments(tmp_path, capsys):
    from toolkit.qemu import probe
    (tmp_path / "src-trace.log").write_text(
        "1@10.000000:vmstate_downtime_checkpoint src-downtime-start\n"
        "1@10.020000:vmstate_downtime_checkpoint src-iterable-saved\n"
        "1@10.021500:migrate_transferred transferred 1 time_spent 100 bandwidth 1\n")
    (tmp_path / "dst-trace.log").write_text(
        "2@10.031000:vmstate_downtime_checkpoint dst-precopy-loadvm-completed\n")
    cp = probe.checkpoints(tmp_path)
    assert cp == {"src-downtime-start": 10.0, "src-iterable-saved": 10.02,
                  "dst-precopy-loadvm-completed": 10.031}
    assert probe.main(["no-such-scenario"]) == 2
    assert probe.main(["--repeats", "0"]) == 2
    assert "no scenario 'no-such-scenario'" in capsys.readouterr().err
