"""Calibrate the simulator's host inputs on real QEMU runs, and predict others.

A real run is a :class:`RealRun`: what QEMU reported (``query-migrate``), what
its trace shows, and how to build its :class:`toolkit.Scenario` from host
values. Two ways to get one:

* :func:`load_run` ``(dir)``: a run of the validation study
  (:mod:`toolkit.qemu.study`: ``result.json`` + ``samples.jsonl`` +
  ``src-trace.log``); its Scenario comes from :func:`scenario_for`.
  A harness output directory without ``result.json`` needs ``scenario=``.
* :func:`user_run` ``(trace=, samples=, scenario=)``: any migration: QEMU's
  trace file (the events of :data:`toolkit.qemu.harness.TRACE_EVENTS`, ``log``
  backend with ``-msg timestamp=on``) and ``query-migrate`` replies as JSON
  lines (the harness's ``samples.jsonl`` shape, bare replies, or QMP
  ``{"return": ...}``), with the Scenario supplied by the caller: its guest
  and migration parameters are kept, its host parameters replaced by the
  calibration's.

:func:`calibrate` gets the host inputs from runs in two ways.

Measured, one value per run that shows it, then mean and standard error:

* ``dirty_rate_efficiency`` [1]: the guest's own write counter during the
  migration over the pace it was asked for, only for runs with both (a
  full-speed guest has no pace: its measured rate is its dirty rate; a run
  without a guest-rate reading uses its Scenario's ``dirty_rate``, or its
  pace times this efficiency). Pooled rather than averaged: all runs' writes
  over all the writes they were asked for (each run weighted by its duration:
  a 0.2 s run measures its rate far less well than a 6 s one), leaving out
  runs whose guest the migration throttles (auto-converge, dirty-limit): the
  model applies that throttle itself, so counting it here would apply it twice;
* ``setup_overhead`` [ms]: ``query-migrate`` ``setup-time``;
* ``sync_time_fixed`` [ms]: the median, over the run's exact syncs, of the time
  from a ``migrate_pending_estimate`` trace line to the
  ``migration_bitmap_sync_end`` of the sync it starts;
* ``vm_stop_time`` [ms] (completed runs): the downtime not spent on RAM:
  ``src-downtime-start`` to ``src-vm-stopped`` plus ``src-iterable-saved`` to
  ``src-downtime-end`` (device state, EOF, flush). The model spends it when the
  VM stops (**simplification**: QEMU spends part of it after the RAM);
* ``device_state_size`` [B] (completed runs): the bytes that are not RAM pages
  (``transferred - 4104 normal - 9 duplicate``; with multifd, whose packets carry
  the pages, ``transferred - multifd-bytes``, less 9 B a zero page the migration
  thread found itself with ``zero-page-detection`` legacy).

Fitted (:data:`FITS`, a table of :class:`Fit`: name, log-scale search range,
start value, the quantities it is fitted on, the kind of page it prices): by
least squares of log errors between the real and the simulated runs, all runs
jointly: completed runs contribute ``total_time`` and ``downtime``, cancelled
ones (not converged by their time limit) the bytes ``transferred`` by then
(simulated with ``max_time`` = the run's time limit) and, as a soft term,
``dirty_sync_count``. The search is by coordinates: each input in turn, a
log grid over its range (6 points a decade) then a golden-section search in
the best bracket (:func:`toolkit.fitting.golden_section`), until a round moves
nothing (at most four). Repeats of a scenario (runs of one ``group``) are
simulated once, against the mean of their log quantities, and simulations are
cached. By default:

* ``link_bandwidth`` [B/s]: the time of a normal page on the wire;
* ``dst_copy_time`` [ns]: the destination's time for a normal page;
* ``dst_populate_time`` [ms]: the destination's time to populate a 2 MiB region of
  guest RAM (a transparent huge page allocated and cleared) at the first normal
  page it receives there: early switchovers populate most of RAM in the downtime;
* ``socket_buffer_size`` [B]: how far the source may queue ahead of a destination
  busy populating (a threshold: the runs pin it down to an interval);
* ``untouched_page_scan_time`` [ns]: a zero page of never-touched RAM (the
  first pass over RAM the guest never wrote);
* ``zero_page_scan_time`` [ns]: a zero page of allocated RAM (preallocated,
  or zeroed by the guest's writes).

A page costs the longest of its source, wire and destination times, so the
runs see only ``max(wire time, dst_copy_time)`` for a re-send: the fit gives
it to the link (first in the table) and reports ``dst_copy_time`` as not
identified, unless the link is known (``known={"link_bandwidth": ...}``, not
fitted). An input the runs cannot identify (no page of its kind, or a fit that
factors of 2 and 4 either way do not make worse by more than its noise) keeps its
start value, with error NaN and a note in :attr:`Calibration.notes`. The
errors of the identified ones come from refitting on bootstrap resamples of
the groups.

:attr:`Calibration.residuals` has, one row per run, real and simulated total
time, downtime, sync count and bytes and their relative errors;
:func:`predict` simulates a run from its settings with a calibration;
:func:`simulated_run` makes runs of known host values to check a fit with.
Calibrating the 126 shipped runs of the study (42 scenarios) takes ~1 minute on
the 2-core development host without bootstrap.

Not fitted, set to 0: ``page_send_time`` (the per-page source time is the wire
time; it can be fitted: ``fit=(*FITTED, "page_send_time")``), and
``sync_time_per_gib``, ``sync_time_per_dirty_page`` (runs of one RAM size
cannot separate them from the fixed part).
"""
from __future__ import annotations

import dataclasses
import itertools
import json
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import xarray as xr

from ..fitting import golden_section
from ..hosts import HOST_PARAMETERS
from ..constants import NORMAL_PAGE_WIRE, PAGE_SIZE, ZERO_PAGE_WIRE
from ..scenario import PARAMETER_INDEX, Scenario
from ..schema import scalar_results
from .._simulate import run_kernel
from .readers import read_replies, read_samples, read_trace
from .records import DEFAULT_OUT, record_dirs, record_scenario

MEASURED = ("dirty_rate_efficiency", "setup_overhead", "sync_time_fixed", "vm_stop_time",
            "device_state_size")
#: Measured values pooled over runs by duration (a rate), not averaged run by run.
POOLED = ("dirty_rate_efficiency",)


UNITS = {"dirty_rate_efficiency": "1", **{k: PARAMETER_INDEX[k].units for k in HOST_PARAMETERS}}

#: Compared quantities and their weights in the loss: completed runs give total
#: time and downtime, cancelled runs the bytes sent by their time limit and
#: (softly: a whole round is one more sync) the sync count.
WEIGHTS = {"total_time": 1.0, "downtime": 1.0, "transferred": 1.0, "dirty_sync_count": 0.1}
COMPLETED_TERMS = ("total_time", "downtime")
CANCELLED_TERMS = ("transferred", "dirty_sync_count")
QUANTITY_UNITS = {"total_time": "ms", "downtime": "ms", "transferred": "B",
                  "dirty_sync_count": "1"}


@dataclass(frozen=True)
class Fit:
    """How one host input is fitted.

    Attributes
    ----------
    name : str
        Scenario parameter (in its base unit, :data:`UNITS`).
    lo, hi : float
        Search range; searched on a log scale.
    start : float or str
        Value before the fit and whenever the runs do not identify it; a name:
        that input's value (e.g. the allocated zero page falls back on the
        never-touched one's cost). 0 = the cost is off unless the runs need it.
    on : tuple of str
        Quantities of the loss it is fitted on (keys of :data:`WEIGHTS`).
    pages : str, optional
        Kind of page it prices (:data:`PAGE_KINDS`); the fit skips it, as not
        identified, when no simulated run sends a page of that kind.
    """

    name: str
    lo: float
    hi: float
    start: float | str
    on: tuple = ("total_time", "downtime", "transferred", "dirty_sync_count")
    pages: str | None = None


#: What each kind of page is, and how many of them a simulated run sent.
PAGE_KINDS = {
    "populate": ("normal pages into RAM the destination may not have populated yet (RAM not "
                 "preallocated)", lambda s: s["normal_pages"] if s["dst_populates"] else 0.0),
    "untouched_zero": ("zero pages of never-touched RAM",
                       lambda s: s["untouched_zero_pages"]),
    "allocated_zero": ("zero pages of allocated RAM (preallocated RAM, or pages the guest "
                       "zeroed)", lambda s: s["zero_pages"] - s["untouched_zero_pages"]),
    "multifd": ("pages queued for multifd channels", lambda s: s["multifd_pages"]),
    "multifd_packet": ("multifd packets", lambda s: s["multifd_packets"]),
    "multifd_plain": ("normal pages over multifd uncompressed",
                      lambda s: s["multifd_normal"] if s["compression"] == "none" else 0.0),
    "zstd": ("normal pages compressed with zstd",
             lambda s: s["multifd_normal"] if s["compression"] == "zstd" else 0.0),
    "zlib": ("normal pages compressed with zlib",
             lambda s: s["multifd_normal"] if s["compression"] == "zlib" else 0.0),
}

#: The fittable inputs, by name.
FITS = {f.name: f for f in (
    Fit("link_bandwidth", 1e8, 2e10, 1e9),
    Fit("dst_copy_time", 10.0, 1e5, 0.0),
    Fit("dst_populate_time", 0.01, 100.0, 0.0, pages="populate"),
    Fit("socket_buffer_size", 2.0**16, 2.0**26, 2.0**22, pages="populate"),
    Fit("untouched_page_scan_time", 1.0, 1e5, 300.0, pages="untouched_zero"),
    Fit("zero_page_scan_time", 1.0, 1e5, "untouched_page_scan_time", pages="allocated_zero"),
    Fit("page_send_time", 10.0, 1e5, 0.0),
    Fit("multifd_queue_time", 1.0, 1e4, 0.0, pages="multifd"),
    Fit("multifd_packet_time", 100.0, 1e7, 0.0, pages="multifd_packet"),
    Fit("multifd_page_time", 10.0, 1e5, 0.0, pages="multifd_plain"),
    Fit("zstd_page_time", 10.0, 1e6, 5000.0, pages="zstd"),
    Fit("zlib_page_time", 10.0, 1e6, 50000.0, pages="zlib"),
)}
#: What :func:`calibrate` fits by default, in this order.
FITTED = ("link_bandwidth", "dst_copy_time", "dst_populate_time", "socket_buffer_size",
          "untouched_page_scan_time",
          "zero_page_scan_time")
#: The multifd costs, fitted on runs with multifd: ``fit=(*FITTED, *MULTIFD_FITTED)``.
#: The channels' page cost goes first: fitted after the migration thread's queue cost,
#: the coordinate search stays where that one took the pages' time (on the multifd
#: study's runs at a higher loss, the channels' costs left unidentified).
MULTIFD_FITTED = ("multifd_page_time", "multifd_queue_time", "multifd_packet_time",
                  "zstd_page_time", "zlib_page_time")

#: Host values that are neither measured nor fitted (and measured ones no run shows).
DEFAULTS = {"dirty_rate_efficiency": 1.0, "page_send_time": 0.0, "sync_time_per_gib": 0.0,
            "sync_time_per_dirty_page": 0.0,
            **{k: float(getattr(Scenario(), k))
               for k in ("setup_overhead", "sync_time_fixed", "vm_stop_time",
                         "device_state_size")}}

#: Identification: a fitted input moved by one of these factors, up and down,
#: must raise its loss by more than IDENTIFY_RISE times the noise of one term ...
IDENTIFY_FACTORS = (2.0, 4.0)
IDENTIFY_RISE = 1.0
#: ... the noise being the fit's mean squared log error, at least this squared.
NOISE_FLOOR = 0.01


# ------------------------------------------------------------------ real runs

def _num(x) -> float:
    return math.nan if x is None else float(x)


def _trace_measurements(path) -> dict:
    """What the source's trace shows: sync times [ms], the downtime checkpoints
    [s, realtime], the VM stop time [ms], the last exact pending [B], the
    pending at the switchover decision [B] (NaN where absent)."""
    out = {"sync_times": [], "checkpoints": {}, "vm_stop_time": math.nan,
           "pending_exact": math.nan, "switchover_pending": math.nan, "windows": 0}
    if path is None or not Path(path).exists():
        return out
    last_estimate = None
    checkpoints = out["checkpoints"]
    for r in read_trace(path):
        if r.event == "migrate_pending_estimate":
            last_estimate = r.time
        elif r.event == "migration_bitmap_sync_end" and last_estimate is not None \
                and not checkpoints:
            out["sync_times"].append((r.time - last_estimate) * 1e3)
            last_estimate = None
        elif r.event == "vmstate_downtime_checkpoint":
            checkpoints[r.args["checkpoint"]] = r.time
        elif r.event == "migrate_pending_exact":
            out["pending_exact"] = float(r.args["size"])
        elif r.event == "migration_thread_low_pending" and math.isnan(out["switchover_pending"]):
            out["switchover_pending"] = float(r.args["pending"])
        elif r.event == "migrate_transferred":
            out["windows"] += 1
    keys = ("src-downtime-start", "src-vm-stopped", "src-iterable-saved", "src-downtime-end")
    if all(k in checkpoints for k in keys):
        c = [checkpoints[k] for k in keys]
        out["vm_stop_time"] = ((c[1] - c[0]) + (c[3] - c[2])) * 1e3
    return out


@dataclass(eq=False)
class RealRun(Mapping):
    """One real migration, ready for :func:`calibrate` and :func:`predict`.

    Build it with :func:`load_run` or :func:`user_run`. As a mapping it reads
    its ``record`` (a study run's ``result.json``), so study code that treats
    runs as dicts keeps working.

    Attributes
    ----------
    id, group : str
        The run, and the runs it repeats (one simulation serves a group).
    completed : bool
        ``query-migrate`` status ``completed``.
    status : str
        The final status (``completed``, ``cancelled``, ``failed``, ``active``).
    total_time, setup_time, downtime : float
        [ms] as QEMU reported them; for a run that did not complete, from the
        last ``active`` reply (``downtime`` NaN).
    dirty_sync_count, transferred, normal_pages, zero_pages, remaining : float
        ``ram.dirty-sync-count``, ``ram.transferred`` [B], ``ram.normal``,
        ``ram.duplicate``, ``ram.remaining`` [B] of that reply (NaN if absent).
    pending_exact : float
        [B] size of the last ``migrate_pending_exact`` trace line (NaN if none).
    time_limit : float or None
        [s] when a run that did not complete was given up.
    guest_rate : float or None
        The guest's page writes per second during the migration [pages/s]
        (None: no reading).
    pace : float or None
        The writes per second the guest was asked for [pages/s] (None or 0:
        full speed, or unknown).
    trace : dict
        Trace measurements: ``sync_times`` [ms], ``checkpoints``, ``vm_stop_time``
        [ms], ``pending_exact``, ``switchover_pending`` [B], ``windows``.
    record : dict
        The study record, or the reported values under the same names.
    scenario : Scenario, optional
        The caller's Scenario (:func:`user_run`).
    builder : callable, optional
        ``builder(run, values) -> Scenario``; None: :func:`scenario_with_host`
        on ``scenario``.
    source : str
        Where it was read from.
    """

    id: str
    group: str
    completed: bool
    status: str
    total_time: float
    setup_time: float
    downtime: float
    dirty_sync_count: float
    transferred: float
    normal_pages: float = math.nan
    zero_pages: float = math.nan
    multifd_bytes: float = 0.0
    zero_page_detection: str = "multifd"
    remaining: float = math.nan
    pending_exact: float = math.nan
    time_limit: float | None = None
    guest_rate: float | None = None
    pace: float | None = None
    trace: dict = field(default_factory=dict)
    record: dict = field(default_factory=dict)
    scenario: Scenario | None = None
    builder: Callable | None = None
    source: str = ""

    # Mapping over the record
    def __getitem__(self, key):
        return self.record[key]

    def __iter__(self):
        return iter(self.record)

    def __len__(self):
        return len(self.record)

    def __repr__(self):
        return (f"RealRun({self.id!r}, {self.status}, total {self.total_time:g} ms, "
                f"downtime {self.downtime:g} ms, {self.dirty_sync_count:g} syncs)")

    @property
    def measured(self) -> dict:
        """The directly measured inputs (:data:`MEASURED`), NaN where the run does not show them."""
        out = dict.fromkeys(MEASURED, math.nan)
        if self.guest_rate and self.pace and not self.throttled:
            out["dirty_rate_efficiency"] = self.guest_rate / self.pace
        out["setup_overhead"] = self.setup_time
        if self.trace.get("sync_times"):
            out["sync_time_fixed"] = float(np.median(self.trace["sync_times"]))
        if self.completed:
            out["vm_stop_time"] = self.trace.get("vm_stop_time", math.nan)
            if self.multifd_bytes > 0:
                # the channels' packets carry the pages; the main stream the zero pages
                # the migration thread finds itself (legacy), as 9 B records
                legacy = self.zero_page_detection == "legacy"
                out["device_state_size"] = (self.transferred - self.multifd_bytes
                                            - ZERO_PAGE_WIRE * self.zero_pages * legacy)
            else:
                out["device_state_size"] = (self.transferred - NORMAL_PAGE_WIRE *
                                            self.normal_pages - ZERO_PAGE_WIRE * self.zero_pages)
        return out

    @property
    def throttled(self) -> bool:
        """Whether the migration throttles the guest (auto-converge or dirty-limit on)."""
        settings = [self.record]
        if self.scenario is not None:
            settings.append({"auto_converge": self.scenario.auto_converge,
                             "dirty_limit": self.scenario.dirty_limit})
        return any(bool(s.get(k)) for s in settings for k in ("auto_converge", "dirty_limit"))

    @property
    def weight(self) -> float:
        """How much its measured rates count in a pooled value: its duration [ms] (1 if unknown)."""
        return self.total_time if np.isfinite(self.total_time) and self.total_time > 0 else 1.0

    def build(self, values: dict) -> Scenario:
        """Its Scenario with the host values ``values`` (and its time limit when cancelled)."""
        if self.builder is not None:
            sc = self.builder(self, values)
        elif self.scenario is not None:
            sc = scenario_with_host(self.scenario, values, dirty_rate_of(self, values))
        else:
            raise ValueError(f"run {self.id}: no Scenario (give scenario= to user_run or "
                             "load_run)")
        return _with_time_limit(self, sc)

    @classmethod
    def from_record(cls, record: dict, builder: Callable | None = None) -> "RealRun":
        """A study run from its ``result.json`` record (with ``"dir"``: the trace and
        samples of that directory are read too)."""
        d = Path(record["dir"]) if record.get("dir") else None
        trace = _trace_measurements(d / "src-trace.log" if d else None)
        remaining = math.nan
        if d is not None and (d / "samples.jsonl").exists():
            replies = [s["query-migrate"] for s in read_samples(d / "samples.jsonl")]
            last = _last_reply(replies, record["completed"])
            remaining = _num(last.get("ram", {}).get("remaining"))
        return cls(
            id=str(record.get("run", d.name if d else "run")),
            group=str(record.get("scenario", record.get("run", ""))),
            completed=bool(record["completed"]), status=str(record.get("status", "")),
            total_time=_num(record.get("total_time")), setup_time=_num(record.get("setup_time")),
            downtime=_num(record.get("downtime")) if record["completed"] else math.nan,
            dirty_sync_count=_num(record.get("dirty_sync_count")),
            transferred=_num(record.get("transferred")),
            normal_pages=_num(record.get("normal_pages")),
            zero_pages=_num(record.get("zero_pages")),
            multifd_bytes=_num(record.get("multifd_bytes") or 0),
            zero_page_detection=(record.get("parameters") or {}).get("zero-page-detection",
                                                                    "multifd"),
            remaining=remaining, pending_exact=trace["pending_exact"],
            time_limit=record.get("time_limit"),
            guest_rate=record.get("migration_write_rate") or None,
            pace=record.get("rate") or None, trace=trace, record=dict(record),
            builder=builder or scenario_for, source=str(d) if d else "")


def _last_reply(replies: list[dict], completed: bool) -> dict:
    """The reply whose figures count: the final one when completed, else the last
    ``active`` one (the reply after ``migrate_cancel`` has no RAM figures)."""
    if completed or not replies:
        return replies[-1] if replies else {}
    with_ram = [r for r in replies if r.get("status") == "active" and "ram" in r]
    return with_ram[-1] if with_ram else replies[-1]


def load_run(run_dir: str | Path, scenario=None) -> RealRun:
    """A recorded run from its directory.

    Parameters
    ----------
    run_dir : path
        A study run (``result.json``, ``samples.jsonl``, ``src-trace.log``), or
        a :func:`toolkit.qemu.run_migration` ``output_dir`` without ``result.json``
        (then ``scenario`` is needed, see :func:`user_run`).
    scenario : Scenario, dict or callable, optional
        The run's Scenario (or its keyword arguments, or a builder ``(run,
        values) -> Scenario``); needed without ``result.json``; for a study run
        it replaces :func:`scenario_for`.
    """
    run_dir = Path(run_dir)
    if (run_dir / "result.json").exists():
        record = json.loads((run_dir / "result.json").read_text())
        record["dir"] = str(run_dir)
        if isinstance(scenario, Mapping):
            scenario = Scenario.from_kwargs(**scenario)
        if isinstance(scenario, Scenario):
            return dataclasses.replace(RealRun.from_record(record), builder=None,
                                       scenario=scenario)
        return RealRun.from_record(record, builder=scenario)
    if scenario is None:
        raise ValueError(f"{run_dir}: no result.json; give scenario= (the run's Scenario)")
    return user_run(trace=run_dir / "src-trace.log", samples=run_dir / "samples.jsonl",
                    scenario=scenario, id=run_dir.name)


def user_run(*, trace, samples, scenario, id: str | None = None, group: str | None = None,
             time_limit: float | None = None, guest_rate: float | None = None,
             pace: float | None = None) -> RealRun:
    """A migration of your own, from QEMU's trace and its ``query-migrate`` replies.

    Parameters
    ----------
    trace : path
        The source QEMU's trace (``-trace enable=<event>`` for the events of
        :data:`toolkit.qemu.harness.TRACE_EVENTS`, ``log`` backend,
        ``-msg timestamp=on``).
    samples : path or list of dict
        ``query-migrate`` replies, one JSON object a line, in time order
        (:func:`toolkit.qemu.readers.read_replies`); the last one decides the
        outcome.
    scenario : Scenario, dict or callable
        The run's Scenario (or its keyword arguments): guest, RAM and migration
        parameters as in the real run; its host parameters are replaced by the
        calibration's. A callable ``(run, values) -> Scenario`` builds it itself.
    id, group : str, optional
        Names; runs of one group are repeats of one setting (default: each its own).
    time_limit : float, optional
        [s] when a run that did not complete was given up; default: its last
        reported ``total-time``.
    guest_rate : float, optional
        The guest's measured page writes per second during the migration
        [pages/s]; it then replaces the Scenario's ``dirty_rate``.
    pace : float, optional
        The guest's asked-for writes per second [pages/s], with ``guest_rate``
        a measurement of ``dirty_rate_efficiency``.
    """
    if not Path(trace).exists():
        raise FileNotFoundError(f"no trace file {trace}")
    replies = read_replies(samples)
    if not replies:
        raise ValueError(f"{samples}: no query-migrate reply")
    completed = replies[-1].get("status") == "completed"
    last = _last_reply(replies, completed)
    ram = last.get("ram", {})

    def reported(key):
        for r in reversed(replies):
            if r.get(key) is not None:
                return float(r[key])
        return math.nan

    if isinstance(scenario, Mapping):
        scenario = Scenario.from_kwargs(**scenario)
    builder = scenario if callable(scenario) and not isinstance(scenario, Scenario) else None
    total = _num(last.get("total-time"))
    rid = id or Path(str(trace)).parent.name or "run"
    record = {"run": rid, "scenario": group or rid, "status": replies[-1].get("status"),
              "completed": completed, "total_time": total, "setup_time": reported("setup-time"),
              "downtime": _num(replies[-1].get("downtime")) if completed else None,
              "dirty_sync_count": _num(ram.get("dirty-sync-count")),
              "transferred": _num(ram.get("transferred")),
              "normal_pages": _num(ram.get("normal")), "zero_pages": _num(ram.get("duplicate")),
              "multifd_bytes": _num(ram.get("multifd-bytes") or 0),
              "remaining": _num(ram.get("remaining")),
              "time_limit": time_limit if time_limit is not None or completed else total / 1e3,
              "migration_write_rate": guest_rate, "rate": pace}
    measured = _trace_measurements(trace)
    return RealRun(
        id=rid, group=group or rid, completed=completed, status=str(record["status"]),
        total_time=total, setup_time=record["setup_time"],
        downtime=record["downtime"] if completed else math.nan,
        dirty_sync_count=record["dirty_sync_count"], transferred=record["transferred"],
        normal_pages=record["normal_pages"], zero_pages=record["zero_pages"],
        multifd_bytes=record["multifd_bytes"],
        zero_page_detection=scenario.zero_page_detection if isinstance(scenario, Scenario)
        else "multifd",
        remaining=record["remaining"], pending_exact=measured["pending_exact"],
        time_limit=record["time_limit"], guest_rate=guest_rate or None, pace=pace or None,
        trace=measured, record=record, scenario=None if builder else scenario, builder=builder,
        source=f"{trace} + {samples if not isinstance(samples, (list, tuple)) else 'replies'}")


def simulated_run(scenario: Scenario, *, id: str | None = None, group: str | None = None,
                  guest_rate: float | None = None, pace: float | None = None) -> RealRun:
    """A run made by the simulator itself, as if QEMU had reported it: for checking
    that :func:`calibrate` finds known host values again.

    ``scenario`` is simulated as it is (its host values are the truth); the
    run reports its outcome like ``query-migrate`` (``setup_time`` includes
    the first sync, as QEMU's ``setup-time`` does), its trace measurements are
    the scenario's ``sync_time_fixed`` and ``vm_stop_time``, and its Scenario
    for the calibration is ``scenario`` with the calibration's host values. A
    run that does not converge was given up at ``max_time``.
    """
    r = scalar_results(run_kernel(scenario).state)
    completed = bool(r["converged"])
    rid = id or f"simulated-{next(_SIMULATED)}"
    trace = {"sync_times": [scenario.sync_time_fixed], "checkpoints": {},
             "vm_stop_time": scenario.vm_stop_time if completed else math.nan,
             "pending_exact": float(r["dirty_bytes_last_sync"]), "switchover_pending": math.nan,
             "windows": 0}
    reported = {q: float(r[q]) for q in ("total_time", "setup_time", "dirty_sync_count",
                                         "transferred", "normal_pages", "zero_pages",
                                         "multifd_bytes", "remaining")}
    record = {"run": rid, "scenario": group or rid, "completed": completed,
              "status": "completed" if completed else "cancelled",
              **reported, "downtime": float(r["downtime"]) if completed else None,
              "time_limit": None if completed else scenario.max_time,
              "migration_write_rate": guest_rate, "rate": pace}
    return RealRun(id=rid, group=group or rid, completed=completed, status=record["status"],
                   downtime=float(r["downtime"]) if completed else math.nan,
                   pending_exact=trace["pending_exact"], time_limit=record["time_limit"],
                   guest_rate=guest_rate, pace=pace, trace=trace, record=record,
                   zero_page_detection=scenario.zero_page_detection, scenario=scenario,
                   source="toolkit.simulate", **reported)


_SIMULATED = itertools.count()


def _as_run(run) -> RealRun:
    if isinstance(run, RealRun):
        return run
    if isinstance(run, Mapping):
        return RealRun.from_record(dict(run))
    raise TypeError(f"expected a RealRun (load_run, user_run) or a study record, got "
                    f"{type(run).__name__}")


def measure(run) -> dict:
    """The directly measured inputs of one run (:attr:`RealRun.measured`)."""
    return _as_run(run).measured


# ------------------------------------------------------------ host -> Scenario

def host_values(values: Mapping) -> dict:
    """All :data:`HOST_PARAMETERS` for a Scenario from calibrated ``values``: the
    given ones, the rest from :data:`DEFAULTS` and the fit's start values
    (``untouched_page_scan_time`` falls back on ``zero_page_scan_time``, as in
    calibrations that had one zero-page cost)."""
    def given(k):
        return k in values and values[k] is not None and np.isfinite(values[k])

    out = {k: float(values[k]) for k in HOST_PARAMETERS if given(k)}
    if "untouched_page_scan_time" not in out and "zero_page_scan_time" in out:
        out["untouched_page_scan_time"] = out["zero_page_scan_time"]
    for k in HOST_PARAMETERS:
        if k in out:
            continue
        if k in DEFAULTS:
            out[k] = DEFAULTS[k]
            continue
        start = FITS[k].start
        while isinstance(start, str):
            start = out.get(start, FITS[start].start)
        out[k] = float(start)
    out["device_state_size"] = max(0, int(round(out["device_state_size"])))
    return out


def dirty_rate_of(run, values: Mapping) -> float | None:
    """The guest's write rate for a run's Scenario [pages/s]: its measured rate
    during the migration; else its pace times ``dirty_rate_efficiency``; else
    None (the Scenario's own ``dirty_rate``). ``run`` is a RealRun or a record."""
    if isinstance(run, RealRun):
        reading, pace = run.guest_rate, run.pace
    else:
        reading, pace = run.get("migration_write_rate"), run.get("rate")
    if reading:
        return float(reading)
    if pace:
        return float(pace) * float(values.get("dirty_rate_efficiency", 1.0))
    return None


def scenario_with_host(scenario: Scenario, values: Mapping,
                       dirty_rate: float | None = None) -> Scenario:
    """``scenario`` with its host parameters from ``values`` (:func:`host_values`)
    and, when given, the guest's ``dirty_rate`` [pages/s]."""
    changes = host_values(values)
    if dirty_rate is not None:
        changes["dirty_rate"] = dirty_rate * PAGE_SIZE
    return scenario.replace(**changes)


def _with_time_limit(run: RealRun, sc: Scenario) -> Scenario:
    """A run that did not complete is simulated to its time limit."""
    if not run.completed and run.time_limit and sc.max_time != float(run.time_limit):
        return sc.replace(max_time=float(run.time_limit))
    return sc


def scenario_for(record, values: dict, dirty_rate: float | None = None) -> Scenario:
    """The Scenario of a study run, with the host inputs ``values``
    (:func:`toolkit.qemu.records.record_scenario` says how the run maps).

    Parameters
    ----------
    record : dict or RealRun
        The run's settings (a ``result.json``, a scenario of the study plus
        ``time_limit``, or a loaded run).
    values : dict
        Host inputs (:attr:`Calibration.values`; missing ones take
        :func:`host_values`' defaults).
    dirty_rate : float, optional
        The guest's write rate [pages/s]; default: the run's measured rate
        during the migration, else its pace times ``dirty_rate_efficiency``
        (:func:`dirty_rate_of`).
    """
    rate = dirty_rate if dirty_rate is not None else dirty_rate_of(record, values)
    return record_scenario(getattr(record, "record", record), host_values(values), rate)


def load_records(out: str | Path = DEFAULT_OUT) -> list[RealRun]:
    """Every finished run of a study directory, in run-id order (:func:`load_run`)."""
    return [load_run(d) for d in record_dirs(out)]


# ------------------------------------------------------------------ the fit

_SIM_KEYS = ("total_time", "downtime", "transferred", "dirty_sync_count", "normal_pages",
             "zero_pages", "untouched_zero_pages", "populated_regions", "multifd_packets")


def _simulate(sc: Scenario, cache: dict) -> dict:
    hit = cache.get(sc)
    if hit is None:
        r = scalar_results(run_kernel(sc).state)
        hit = {k: float(r[k]) for k in _SIM_KEYS}
        hit["converged"] = bool(r["converged"])
        hit["max_time"] = sc.max_time * 1e3
        hit["dst_populates"] = sc.dst_populates
        hit["compression"] = sc.multifd_compression
        multifd = float(r["multifd_packets"]) > 0
        hit["multifd_pages"] = hit["normal_pages"] + hit["zero_pages"] if multifd else 0.0
        hit["multifd_normal"] = hit["normal_pages"] if multifd else 0.0
        cache[sc] = hit
    return hit


def _log(x: float, q: str) -> float:
    """The log the loss compares for quantity ``q``: of ``x`` plus an offset in its
    unit, so that QEMU's whole-millisecond downtimes of 1-3 ms (and a few ms of
    total time) do not weigh like large relative errors: the study's downtime
    target is "within 20 % or 5 ms"."""
    return math.log(max(float(x) + _OFFSETS[q], _FLOORS[q]))


#: The most one quantity of one group of runs adds to the loss: (log 3)^2, a factor 3.
LOSS_CAP = math.log(3.0) ** 2
_OFFSETS = {"total_time": 2.0, "downtime": 5.0, "transferred": 0.0, "dirty_sync_count": 0.0}
_FLOORS = {"total_time": 0.5, "downtime": 0.5, "transferred": 1.0, "dirty_sync_count": 1.0}


@dataclass
class _Target:
    """A group of repeats: one representative run and the mean of their log quantities."""

    run: RealRun
    completed: bool
    log_real: dict
    members: list


def _targets(runs: list[RealRun]) -> list[_Target]:
    groups: dict[tuple, list[RealRun]] = {}
    for r in runs:
        groups.setdefault((r.group, r.completed), []).append(r)
    out = []
    for (_, completed), g in groups.items():
        terms = COMPLETED_TERMS if completed else CANCELLED_TERMS
        log_real = {}
        for q in terms:
            xs = [getattr(r, q) for r in g]
            xs = [x for x in xs if x is not None and np.isfinite(x)]
            if xs:
                log_real[q] = float(np.mean([_log(x, q) for x in xs]))
        if not log_real:
            continue
        rates = [r.guest_rate for r in g if r.guest_rate]
        rep = dataclasses.replace(g[0], guest_rate=float(np.mean(rates)) if rates else None)
        out.append(_Target(rep, completed, log_real, [r.id for r in g]))
    return out


def _sim_quantities(sim: dict, completed_real: bool) -> dict:
    if completed_real and not sim["converged"]:
        # converged in reality, not in the simulation: the run's whole time limit, for both
        return {"total_time": sim["max_time"], "downtime": sim["max_time"]}
    return {q: sim[q] for q in _SIM_KEYS[:4]}


class _Problem:
    """The fit's loss over targets, with a cache of simulations."""

    def __init__(self, targets, builder, cache):
        self.targets, self.builder, self.cache = targets, builder, cache

    def scenario(self, target: _Target, values: dict) -> Scenario:
        run = target.run
        sc = self.builder(run, values) if self.builder is not None else run.build(values)
        return _with_time_limit(run, sc)

    def sim(self, target: _Target, values: dict) -> dict:
        return _simulate(self.scenario(target, values), self.cache)

    def loss(self, values: dict, on=tuple(WEIGHTS), weights=None) -> tuple[float, float]:
        """Weighted squared log error over the quantities ``on`` (each term at most
        :data:`LOSS_CAP`), and the summed weight."""
        err, n = 0.0, 0.0
        for i, t in enumerate(self.targets):
            m = 1.0 if weights is None else weights[i]
            if m == 0:
                continue
            sim = _sim_quantities(self.sim(t, values), t.completed)
            for q, real in t.log_real.items():
                if q in on:
                    # capped: a knife-edge run (a round more or less, or converging
                    # in one repeat and not the next) must not steer the whole fit
                    err += m * WEIGHTS[q] * min((_log(sim[q], q) - real) ** 2, LOSS_CAP)
                    n += m * WEIGHTS[q]
        return err, n

    def pages(self, kind: str, values: dict, weights=None) -> float:
        count = PAGE_KINDS[kind][1]
        return sum(count(self.sim(t, values)) for i, t in enumerate(self.targets)
                   if weights is None or weights[i])


def _search(f, lo: float, hi: float, per_decade: float, steps: int) -> tuple[float, float]:
    """Minimise ``f`` on [lo, hi] (natural logs): the best of a grid of ``per_decade``
    points per decade, then a golden-section search in the bracket around it. The
    grid finds a narrow minimum next to a flat stretch (a cost hidden under
    another one of the same pages is flat below it), where golden-section search
    alone can go the wrong way."""
    n = max(5, math.ceil((hi - lo) / math.log(10) * per_decade) + 1)
    xs = np.linspace(lo, hi, n)
    fs = [f(x) for x in xs]
    i = int(np.argmin(fs))
    a, b = xs[max(i - 1, 0)], xs[min(i + 1, n - 1)]
    found = golden_section(f, a, b, steps=steps)
    return min(found, (fs[i], float(xs[i])))


def _resolve_start(spec: Fit, values: dict) -> float:
    return float(values[spec.start]) if isinstance(spec.start, str) else float(spec.start)


def _fit(problem: _Problem, values: dict, specs, weights=None, rounds: int = 4,
         per_decade: float = 6, steps: int = 10, ranges: dict | None = None) -> dict:
    """Coordinate search over ``specs`` on a log scale, at most ``rounds`` times (until
    a round moves no input by more than 0.1 %); a value moves only when the loss
    gets strictly smaller."""
    values = dict(values)
    for _ in range(rounds):
        before = dict(values)
        for spec in specs:
            if spec.pages and problem.pages(spec.pages, values, weights) == 0:
                continue

            def loss(x, k=spec.name):
                return problem.loss({**values, k: math.exp(x)}, spec.on, weights)[0]

            lo, hi = (ranges or {}).get(spec.name, (spec.lo, spec.hi))
            f, x = _search(loss, math.log(lo), math.log(hi), per_decade, steps)
            now = problem.loss(values, spec.on, weights)[0]
            if f < now * (1 - 1e-9):
                values[spec.name] = math.exp(x)
        if all(abs(values[s.name] - before[s.name]) <= 1e-3 * abs(before[s.name])
               for s in specs):
            break
    return values


def _identified(problem: _Problem, values: dict, spec: Fit, n_fitted: int) -> tuple[bool, str]:
    """Whether the runs pin ``spec`` down at ``values``, and if not, why."""
    if spec.pages and problem.pages(spec.pages, values) == 0:
        return False, f"no run sends {PAGE_KINDS[spec.pages][0]}"
    v = values[spec.name]
    if v == 0:
        return False, ("the runs fit as well without it (it hides under the other costs of "
                       "the same pages)")
    base, n = problem.loss(values, spec.on)
    noise = max(base / max(n - n_fitted, 1.0), NOISE_FLOOR ** 2)

    def rise(factor):
        return problem.loss({**values, spec.name: v * factor}, spec.on)[0] - base

    up = max(rise(f) for f in IDENTIFY_FACTORS)
    down = max(rise(1 / f) for f in IDENTIFY_FACTORS)
    if min(up, down) > IDENTIFY_RISE * noise:
        return True, ""
    widest = f"{max(IDENTIFY_FACTORS):g}x"
    if up > IDENTIFY_RISE * noise:
        return False, (f"bounded from above only: values down to {widest} smaller fit as well "
                       "(it hides under the other costs of the same pages)")
    if down > IDENTIFY_RISE * noise:
        return False, f"bounded from below only: values up to {widest} larger fit as well"
    return False, f"a factor {widest} either way changes the fit by less than its noise"


# ----------------------------------------------------------------- the result

@dataclass
class Calibration:
    """Host inputs of the simulator calibrated on real runs.

    Attributes
    ----------
    values, errors : dict of str to float
        Value and standard error by name, in :data:`UNITS`: every host
        parameter and ``dirty_rate_efficiency``; the error is NaN where the
        input was not identified (or fixed).
    identified : dict of str to bool
        For the measured and fitted inputs: whether the runs determined it.
    residuals : xarray.Dataset, optional
        Along ``run``: ``real_<q>``, ``sim_<q>`` and ``rel_error_<q>`` (sim / real
        - 1) for total_time, downtime, dirty_sync_count, transferred;
        ``real_converged``, ``sim_converged``; ``group``.
    runs : list of str
        Ids of the runs it was calibrated on.
    how : dict of str to str
        For each input: measured (on how many runs), fitted (on what), known
        (given), fixed, or why it is not identified.
    fitted, measured : tuple of str
        The names fitted and measured.
    loss : float
        The fit's weighted squared log error over all runs' groups.
    """

    values: dict
    errors: dict
    identified: dict = field(default_factory=dict)
    residuals: xr.Dataset | None = None
    runs: list = field(default_factory=list)
    how: dict = field(default_factory=dict)
    fitted: tuple = ()
    measured: tuple = MEASURED
    loss: float = math.nan

    @property
    def notes(self) -> dict:
        """Why each input that was not identified is not."""
        return {k: self.how.get(k, "") for k, ok in self.identified.items() if not ok}

    def apply(self, scenario: Scenario) -> Scenario:
        """``scenario`` with these host values."""
        return scenario_with_host(scenario, self.values)

    def table(self) -> str:
        """One line per input: name, value +- error, unit, how it was obtained."""
        names = [*self.measured, *self.fitted,
                 *(k for k in UNITS if k not in self.measured and k not in self.fitted)]
        lines = [f"{'input':26s} {'value':>14s}    {'error':<10s} {'unit':7s} how"]
        for k in names:
            if k not in self.values:
                continue
            err = self.errors.get(k, math.nan)
            lines.append(f"{k:26s} {self.values[k]:14.6g} +- {err:<10.3g} {UNITS[k]:7s} "
                         f"{self.how.get(k, '')}")
        if np.isfinite(self.loss):
            lines.append(f"{len(self.runs)} runs; loss {self.loss:.4g} (squared log errors)")
        return "\n".join(lines)


def _mean_error(xs, weights=None) -> tuple[float, float, int]:
    """The (weighted) mean of the finite ``xs``, its standard error and their count."""
    weights = [1.0] * len(xs) if weights is None else weights
    pairs = [(x, w) for x, w in zip(xs, weights) if x is not None and np.isfinite(x)]
    if not pairs:
        return math.nan, math.nan, 0
    x, w = (np.asarray(v, float) for v in zip(*pairs))
    mean = float(np.sum(w * x) / np.sum(w))
    n = x.size
    # the standard error of a weighted mean (equal weights: sigma / sqrt(n))
    err = float(np.sqrt(np.sum(w ** 2 * (x - mean) ** 2) * n / (n - 1)) / np.sum(w)) \
        if n > 1 else math.nan
    return mean, err, n


def _specs(fit) -> list[Fit]:
    out = []
    for f in (FITTED if fit is None else fit):
        if isinstance(f, Fit):
            out.append(f)
        elif f in FITS:
            out.append(FITS[f])
        else:
            raise ValueError(f"fit: {f!r} is not a fittable input; expected one of "
                             f"{', '.join(FITS)} or a Fit")
    return out


def residuals(runs, values: dict, scenario: Callable | None = None,
              cache: dict | None = None) -> xr.Dataset:
    """Real against simulated quantities, one row per run (see :attr:`Calibration.residuals`)."""
    runs = [_as_run(r) for r in runs]
    cache = {} if cache is None else cache
    names = ("total_time", "downtime", "dirty_sync_count", "transferred")
    real = {q: [] for q in names}
    sim = {q: [] for q in names}
    conv = ([], [])
    for r in runs:
        sc = _with_time_limit(r, scenario(r, values) if scenario is not None else r.build(values))
        s = _simulate(sc, cache)
        for q in names:
            real[q].append(float(getattr(r, q)) if q != "downtime" or r.completed else math.nan)
            sim[q].append(s[q] if q != "downtime" or s["converged"] else math.nan)
        conv[0].append(r.completed)
        conv[1].append(s["converged"])
    data = {"real_converged": ("run", np.array(conv[0], bool), {"units": "1", "long_name":
                                                                   "completed (QEMU)"}),
            "sim_converged": ("run", np.array(conv[1], bool), {"units": "1", "long_name":
                                                                  "converged (simulated)"})}
    for q in names:
        a, b = np.array(real[q], float), np.array(sim[q], float)
        u = QUANTITY_UNITS[q]
        name = q.replace("_", " ")
        data[f"real_{q}"] = ("run", a, {"units": u, "long_name": f"{name}, QEMU"})
        data[f"sim_{q}"] = ("run", b, {"units": u, "long_name": f"{name}, simulated"})
        with np.errstate(divide="ignore", invalid="ignore"):
            data[f"rel_error_{q}"] = ("run", b / a - 1, {"units": "1", "long_name":
                                                         f"relative error of the {name}"})
    coords = {"run": ("run", [r.id for r in runs], {"units": "1", "long_name": "run id"}),
              "group": ("run", [r.group for r in runs],
                        {"units": "1", "long_name": "group of repeats"})}
    return xr.Dataset(data, coords=coords,
                      attrs={"title": "Calibration residuals: real QEMU runs against the "
                                      "simulator", "Conventions": "CF-1.10"})


def calibrate(runs, scenario: Callable | None = None, fit=None, bootstrap: int = 8,  # noqa: C901
              seed: int = 0, known: Mapping | None = None,
              start: Mapping | None = None) -> Calibration:
    """Calibrate the host inputs on real runs.

    Parameters
    ----------
    runs : list of RealRun (or study records)
        From :func:`load_run` / :func:`user_run`; at least one.
    scenario : callable, optional
        ``scenario(run, values) -> Scenario`` for every run, ``values`` being
        the host values (:data:`UNITS` names); default: each run's own
        (:meth:`RealRun.build`). A run that did not complete is simulated to its
        time limit either way.
    fit : iterable of str or Fit, optional
        What to fit, in order (default :data:`FITTED`; names of :data:`FITS`).
    bootstrap : int
        Refits on resampled groups for the errors of the fitted inputs (0: none).
    seed : int
        Seed of the resampling.
    known : dict, optional
        Host values known beforehand: neither measured nor fitted.
    start : dict, optional
        Where the fit starts (e.g. a calibration on more runs): the fitted
        inputs are then searched within a factor 4 of these values, one
        round (a quick refit, as the leave-one-out predictions need).

    Returns
    -------
    Calibration
    """
    runs = [_as_run(r) for r in runs]
    if not runs:
        raise ValueError("calibrate needs at least one run")
    known = dict(known or {})
    for k in known:
        if k not in UNITS:
            raise ValueError(f"known: {k!r} is not a host input; expected one of "
                             f"{', '.join(UNITS)}")
    specs = [s for s in _specs(fit) if s.name not in known]
    values, errors, identified, how = {}, {}, {}, {}
    measured = [r.measured for r in runs]
    for k in MEASURED:
        if k in known:
            continue
        weights = [r.weight for r in runs] if k in POOLED else None
        values[k], errors[k], n = _mean_error([m[k] for m in measured], weights)
        identified[k] = n > 0
        how[k] = f"measured on {n} run{'s' * (n != 1)}" if n else \
            "not identified: no run shows it"
        if not n:
            values[k] = DEFAULTS[k]
    for k, v in known.items():
        values[k], errors[k], how[k] = float(v), math.nan, "known (given)"
    for k in UNITS:
        if k not in values and k in DEFAULTS:
            values[k], errors[k], how[k] = DEFAULTS[k], math.nan, "fixed"
    for spec in FITS.values():     # the starts, in table order (a start may name another)
        if spec.name not in values:
            values[spec.name] = _resolve_start(spec, values)
            errors[spec.name] = math.nan
            how[spec.name] = "fixed (its start value)"
    for spec in specs:
        values[spec.name] = _resolve_start(spec, values)
    near = None
    if start:
        values.update({s.name: float(start[s.name]) for s in specs if s.name in start})
        near = {s.name: (max(s.lo, values[s.name] / 4), min(s.hi, values[s.name] * 4))
                for s in specs if s.name in start and values[s.name] > 0}

    targets = _targets(runs)
    if not targets:
        raise ValueError("calibrate: no run reports the quantities of the fit")
    cache: dict = {}
    problem = _Problem(targets, scenario, cache)
    fitted = _fit(problem, values, specs, rounds=1 if near else 4, ranges=near)
    checks = {spec.name: _identified(problem, fitted, spec, len(specs)) for spec in specs}
    moved = False
    for spec in specs:     # in order: a start that names another input follows its value
        ok, why = checks[spec.name]
        identified[spec.name] = ok
        how[spec.name] = f"fitted on {', '.join(spec.on)}" if ok else f"not identified: {why}"
        if not ok:
            start = _resolve_start(spec, fitted)
            moved |= start != fitted[spec.name]
            fitted[spec.name] = start
    if moved and any(identified[s.name] for s in specs):
        # the others were fitted with the unidentified ones elsewhere: one more round
        fitted = _fit(problem, fitted, [s for s in specs if identified[s.name]], rounds=1)
        for spec in specs:
            if not identified[spec.name]:
                fitted[spec.name] = _resolve_start(spec, fitted)
    values = fitted
    ident_specs = [s for s in specs if identified[s.name]]
    resampled = []
    rng = np.random.default_rng(seed)
    for _ in range(bootstrap if len(targets) > 1 and ident_specs else 0):
        weights = np.bincount(rng.integers(len(targets), size=len(targets)),
                              minlength=len(targets))
        ranges = {s.name: (max(s.lo, values[s.name] / 4), min(s.hi, values[s.name] * 4))
                  for s in ident_specs}
        resampled.append(_fit(problem, values, ident_specs, weights, rounds=2, per_decade=6,
                              steps=10, ranges=ranges))
    for spec in specs:
        errors[spec.name] = (float(np.std([r[spec.name] for r in resampled], ddof=1))
                             if identified[spec.name] and len(resampled) > 1 else math.nan)
    loss = problem.loss(values)[0]
    return Calibration(values=values, errors=errors, identified=identified,
                       residuals=residuals(runs, values, scenario, cache),
                       runs=[r.id for r in runs], how=how,
                       fitted=tuple(s.name for s in specs),
                       measured=tuple(k for k in MEASURED if k not in known), loss=loss)


def predicted_scenario(run, calibration: Calibration,
                       scenario: Callable | None = None) -> Scenario:
    """The Scenario that predicts a run from its settings and a calibration.

    A guest-rate reading of the run is used only when the guest has no pace (a
    full-speed guest); with a pace the guest writes at pace x the calibrated
    ``dirty_rate_efficiency``. A run that did not complete is simulated to its
    time limit.
    """
    run = _as_run(run)
    if run.pace:
        run = dataclasses.replace(run, guest_rate=None)
    sc = scenario(run, calibration.values) if scenario is not None else run.build(
        calibration.values)
    return _with_time_limit(run, sc)


def predict(run, calibration: Calibration, scenario: Callable | None = None):
    """The simulator's prediction of a run (Dataset of ``simulate``) from
    :func:`predicted_scenario`."""
    from .._simulate import simulate
    return simulate(predicted_scenario(run, calibration, scenario))
