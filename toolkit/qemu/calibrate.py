"""Calibrate the simulator's free inputs on real QEMU runs, and predict others.

A real run of the study (:mod:`toolkit.qemu.study`) maps onto a
:class:`toolkit.Scenario`: same RAM, a ``sequential`` workload over the guest's
range at its pace, the zero region above the range, the same
``max-bandwidth``, ``downtime-limit`` and ``avail-switchover-bandwidth``. What
the Scenario needs beyond that is the host: how fast the guest really writes,
and what the migration thread's work costs. :func:`calibrate` gets them from
runs in two ways:

measured, one value per run, then mean and standard error over the runs:

* ``dirty_rate_efficiency``: the guest's own write counter during the
  migration over the pace it was asked for (the vCPU shares 2 cores with the
  migration thread and the destination);
* ``setup_overhead`` [ms]: ``query-migrate`` ``setup-time``;
* ``sync_time_fixed`` [ms]: from a ``migrate_pending_estimate`` trace line to
  the ``migration_bitmap_sync_end`` of the exact sync it starts;
* ``vm_stop_time`` [ms]: the downtime not spent on RAM: from
  ``src-downtime-start`` to ``src-vm-stopped`` plus from ``src-iterable-saved``
  to ``src-downtime-end`` (device state, EOF, flush). The model spends it when
  the VM stops (**simplification**: QEMU spends part of it after the RAM);
* ``device_state_size`` [B]: the bytes that are not RAM pages
  (``transferred - 4104 normal - 9 duplicate``);

fitted, each by least squares of the log of the quantity it governs between
the simulator and the completed runs (golden-section searches on a log
scale, one input at a time, three rounds):

* ``link_bandwidth`` [B/s], on downtime: the speed of the final, unlimited
  copy over loopback (CPU-bound, ~1 GB/s under TCG);
* ``zero_page_scan_time`` [ns], on total time: the cost of a zero page
  (``buffer_is_zero`` over 4 KiB), which decides whether the first pass
  scans the zero region within one 50 ms iterate call. **Known miss**: real
  zero pages look several times cheaper in the first pass (24 000 in under
  12 ms) than when a switchover sends them during downtime (~2 us each); the
  model has one cost, so the downtime of a switchover before the first pass
  has ended is predicted less well (see the study's notebook).

The uncertainty of the fitted pair comes from refitting on bootstrap
resamples of the runs. ``page_send_time`` is set to 0 (the per-page time is
the wire time at ``link_bandwidth``) and ``sync_time_per_gib`` and
``sync_time_per_dirty_page`` to 0 (one RAM size cannot separate them from the
fixed part).
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..fitting import golden_section
from ..scenario import Scenario
from ..simulate import simulate
from .readers import read_trace

PAGE = 4096
MEASURED = ("dirty_rate_efficiency", "setup_overhead", "sync_time_fixed", "vm_stop_time",
            "device_state_size")
FITTED = ("link_bandwidth", "zero_page_scan_time")
UNITS = {"dirty_rate_efficiency": "1", "setup_overhead": "ms", "sync_time_fixed": "ms",
         "vm_stop_time": "ms", "device_state_size": "B", "link_bandwidth": "B s-1",
         "zero_page_scan_time": "ns"}
#: Search ranges of the fitted inputs (log scale) and where the search starts.
FIT_RANGE = {"link_bandwidth": (1e8, 2e10), "zero_page_scan_time": (1.0, 1e5)}
FIT_START = {"link_bandwidth": 1e9, "zero_page_scan_time": 300.0}


@dataclass
class Calibration:
    """Host inputs of the simulator fitted on real runs.

    Attributes
    ----------
    values, errors : dict of str to float
        Value and its standard error, by name, in ``UNITS``.
    runs : list of str
        Ids of the runs it was fitted on.
    """

    values: dict[str, float]
    errors: dict[str, float]
    runs: list[str] = field(default_factory=list)

    def table(self) -> str:
        """One line per input: name, value +- error, unit."""
        return "\n".join(f"{k:22s} {self.values[k]:14.6g} +- {self.errors[k]:<12.3g} {UNITS[k]}"
                         for k in (*MEASURED, *FITTED))


def load_run(run_dir: str | Path) -> dict:
    """A study run's ``result.json`` with the path of its directory under ``"dir"``."""
    run_dir = Path(run_dir)
    record = json.loads((run_dir / "result.json").read_text())
    record["dir"] = str(run_dir)
    return record


def measure(record: dict) -> dict:
    """The directly measured inputs of one run (NaN where the run does not show them)."""
    out = dict.fromkeys(MEASURED, math.nan)
    out["dirty_rate_efficiency"] = record["migration_write_rate"] / record["rate"]
    out["setup_overhead"] = float(record["setup_time"])
    trace = read_trace(Path(record["dir"]) / "src-trace.log")
    syncs = []
    last_estimate = None
    checkpoints = {}
    for r in trace:
        if r.event == "migrate_pending_estimate":
            last_estimate = r.time
        elif r.event == "migration_bitmap_sync_end" and last_estimate is not None \
                and not checkpoints:
            syncs.append(r.time - last_estimate)
            last_estimate = None
        elif r.event == "vmstate_downtime_checkpoint":
            checkpoints[r.args["checkpoint"]] = r.time
    if syncs:
        out["sync_time_fixed"] = float(np.median(syncs)) * 1e3
    if record["completed"]:
        keys = ("src-downtime-start", "src-vm-stopped", "src-iterable-saved", "src-downtime-end")
        if all(k in checkpoints for k in keys):
            c = [checkpoints[k] for k in keys]
            out["vm_stop_time"] = ((c[1] - c[0]) + (c[3] - c[2])) * 1e3
        out["device_state_size"] = float(record["transferred"] - 4104 * record["normal_pages"]
                                         - 9 * record["zero_pages"])
    return out


def scenario_for(record: dict, values: dict, dirty_rate: float | None = None) -> Scenario:
    """The Scenario of a study run, with the host inputs ``values``.

    Parameters
    ----------
    record : dict
        The run's settings (a ``result.json`` or a scenario of the study).
    values : dict
        Calibrated inputs (:attr:`Calibration.values`).
    dirty_rate : float, optional
        The guest's write rate [pages/s]; default: its pace times the
        calibrated ``dirty_rate_efficiency``.
    """
    ram = record["ram_mib"] << 20
    top = (record["start_page"] + record["pages"]) * PAGE
    rate = dirty_rate if dirty_rate is not None else \
        record["rate"] * values["dirty_rate_efficiency"]
    return Scenario(
        ram_size=ram, workload="sequential", write_range=record["pages"] * PAGE,
        write_range_start=record["start_page"] * PAGE, dirty_rate=rate * PAGE,
        zero_fraction=1.0 - top / ram,
        max_bandwidth=record["max_bandwidth"], downtime_limit=record["downtime_limit"],
        avail_switchover_bandwidth=record["avail_switchover_bandwidth"],
        max_time=record["time_limit"], link_bandwidth=values["link_bandwidth"],
        page_send_time=0.0, zero_page_scan_time=values["zero_page_scan_time"],
        untouched_page_scan_time=values["zero_page_scan_time"],
        sync_time_fixed=values["sync_time_fixed"], sync_time_per_gib=0.0,
        sync_time_per_dirty_page=0.0, setup_overhead=values["setup_overhead"],
        vm_stop_time=values["vm_stop_time"],
        device_state_size=round(values["device_state_size"]))


def _mean_error(name: str, xs) -> tuple[float, float]:
    xs = np.asarray([x for x in xs if np.isfinite(x)], float)
    if xs.size == 0:
        raise ValueError(f"calibrate: no run shows {name}")
    return float(xs.mean()), float(xs.std(ddof=1) / np.sqrt(xs.size)) if xs.size > 1 else 0.0


def _by_scenario(records: list[dict]) -> list[tuple]:
    """Completed runs grouped by scenario: (a record, mean write rate, mean log
    downtime, mean log total time)."""
    groups: dict[str, list[dict]] = {}
    for r in records:
        if r["completed"] and r["downtime"]:
            groups.setdefault(r["scenario"], []).append(r)
    return [(g[0], float(np.mean([r["migration_write_rate"] for r in g])),
             float(np.mean([math.log(r["downtime"]) for r in g])),
             float(np.mean([math.log(r["total_time"]) for r in g]))) for g in groups.values()]


def _loss(values: dict, targets, fitted: str) -> float:
    """Squared log error of what ``fitted`` governs: downtime for the link speed
    (the final copy), total time for the zero-page cost (the first pass)."""
    err = 0.0
    for record, rate, log_downtime, log_total in targets:
        ds = simulate(scenario_for(record, values, dirty_rate=rate))
        if not bool(ds.converged):
            sim = float(record["time_limit"]) * 1e3
        else:
            sim = float(ds.downtime if fitted == "link_bandwidth" else ds.total_time)
        real = log_downtime if fitted == "link_bandwidth" else log_total
        err += (math.log(max(sim, 1e-3)) - real) ** 2
    return err


def _fit(values: dict, targets, rounds: int = 3, steps: int = 14) -> dict:
    """Coordinate search over ``FITTED``: golden-section search of each input on a
    log scale within ``FIT_RANGE``, the inputs in turn, ``rounds`` times."""
    values = dict(values)
    for _ in range(rounds):
        for k in FITTED:
            def loss(x, k=k):
                return _loss({**values, k: math.exp(x)}, targets, k)
            found = golden_section(loss, *(math.log(v) for v in FIT_RANGE[k]), steps=steps)
            now = math.log(values[k])
            values[k] = math.exp(min(found, (loss(now), now))[1])
    return values


def calibrate(records: list[dict], bootstrap: int = 8, seed: int = 0) -> Calibration:
    """Fit the host inputs on runs (``load_run`` records, with their directories).

    Parameters
    ----------
    records : list of dict
        Runs to fit on; at least one must have completed.
    bootstrap : int
        Refits on resampled scenarios for the fitted inputs' errors (0: none).
    seed : int
        Seed of the resampling.
    """
    targets = _by_scenario(records)
    if not targets:
        raise ValueError(f"calibrate needs at least one completed run; got {len(records)} "
                         "runs, none completed")
    measured = [measure(r) for r in records]
    values, errors = {}, {}
    for k in MEASURED:
        values[k], errors[k] = _mean_error(k, (m[k] for m in measured))
    fitted = _fit({**values, **FIT_START}, targets)
    values.update({k: fitted[k] for k in FITTED})
    rng = np.random.default_rng(seed)
    resampled = []
    for _ in range(bootstrap if len(targets) > 1 else 0):
        pick = rng.integers(len(targets), size=len(targets))
        resampled.append(_fit(values, [targets[i] for i in pick], rounds=2))
    for k in FITTED:
        errors[k] = float(np.std([r[k] for r in resampled], ddof=1)) if len(resampled) > 1 \
            else math.nan
    return Calibration(values, errors, [r["run"] for r in records])


def predict(record: dict, calibration: Calibration):
    """The simulator's prediction of a run from its settings alone (Dataset of ``simulate``)."""
    return simulate(scenario_for(record, calibration.values))
