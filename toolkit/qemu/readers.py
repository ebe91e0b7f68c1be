"""Read recorded real QEMU migrations into Datasets shaped like :func:`toolkit.simulate`'s.

A recording is what :func:`toolkit.qemu.run_migration` leaves in ``output_dir``:
``samples.jsonl`` (``query-migrate`` every ~100 ms), ``events.jsonl`` (QMP
events) and ``src-trace.log`` / ``dst-trace.log`` (QEMU's ``log`` trace
backend with ``-msg timestamp=on``).

* :func:`read_trace`, :func:`read_samples`, :func:`read_events` parse the files.
* :func:`trace_dataset` gives the run as a Dataset with the simulator's names,
  dimensions, units and ``long_name`` s: one row along ``window`` per
  ``migrate_transferred`` line (one closed ~100 ms window of
  ``migration_update_counters``) plus the scalars of the final ``query-migrate``.
* :func:`samples_dataset` gives the ``query-migrate`` samples along ``sample``.
* :func:`domjobinfo_fields` names one sample's fields as libvirt's ``virsh domjobinfo`` does.

Time zero
---------
``time`` is [ms] since the ``migrate`` command.  Trace lines and QMP events
share the host's ``CLOCK_REALTIME``; the harness's ``t``/``monotonic`` do
not, so time zero is the timestamp of the ``MIGRATION`` event with status
``setup``.  QEMU emits it in ``migrate_init``, next to where it takes
``start_time`` (the origin of ``total-time``), so the error is below 1 ms
(checked on the recordings: ``src-downtime-end`` minus this zero equals the
final ``total-time`` within 0.4 ms).  Without events the zero is the start of
the first window (``migrate_transferred`` time minus its ``time_spent``), i.e.
the migration thread's start, which lags the command by the connect time
(~3-4 ms on loopback); ``attrs["time_zero"]`` says which was used.
"""
from __future__ import annotations

import datetime
import json
import math
import re
from pathlib import Path
from typing import NamedTuple

import numpy as np
import xarray as xr

from ..schema import SCALARS, TRACE

TRACE_EVENTS = {
    # event: (argument pattern, argument names); formats of migration/trace-events, 10.0.2.
    # switchover_bw is optional: QEMU before 8.2 did not print it (it was 0 then).
    "migrate_transferred": ((r"transferred (\d+) time_spent (\d+) bandwidth (\d+)"
                             r"(?: switchover_bw (\d+))? max_size (-?\d+)"),
                            ("transferred", "time_spent", "bandwidth", "switchover_bw",
                             "max_size")),
    "migrate_pending_estimate": (r"estimate pending size (\d+) \(pre = (\d+) post=(\d+)\)",
                                 ("size", "pre", "post")),
    "migrate_pending_exact": (r"exact pending size (\d+) \(pre = (\d+) post=(\d+)\)",
                              ("size", "pre", "post")),
    "migration_bitmap_sync_end": (r"dirty_pages (\d+)", ("dirty_pages",)),
    "migration_thread_low_pending": (r"(\d+)", ("pending",)),
    "vmstate_downtime_checkpoint": (r"(\S+)", ("checkpoint",)),
}
_ARGS = {name: (re.compile(pattern), names) for name, (pattern, names) in TRACE_EVENTS.items()}
_LINE = re.compile(r"(\d+)@(\d+\.\d+):(\w+)(?: (.*))?")
_KNOWN = re.compile(r"\b(" + "|".join(TRACE_EVENTS) + r")\b")
_PENDING = ("migrate_pending_estimate", "migrate_pending_exact")


class TraceRecord(NamedTuple):
    """One parsed trace line."""

    time: float
    """Host ``CLOCK_REALTIME`` [s]."""
    event: str
    args: dict
    """Arguments by QEMU's name: int, or str for ``checkpoint``."""
    pid: int
    line: int
    """Line number in the file (1-based)."""


def read_trace(path) -> list[TraceRecord]:
    """Parse a QEMU ``log`` trace backend file (``PID@SEC.USEC:event args``).

    Parameters
    ----------
    path : str or os.PathLike
        A ``src-trace.log`` / ``dst-trace.log``.

    Returns
    -------
    list of TraceRecord
        The lines of the events in :data:`TRACE_EVENTS`, in file order; other
        lines (other events, QEMU messages) are skipped.

    Raises
    ------
    ValueError
        A line names one of those events but does not parse (no timestamp
        prefix, wrong arguments); the message gives ``file:line``.
    """
    records = []
    with open(path, encoding="utf-8", errors="replace") as f:
        for n, text in enumerate(f, 1):
            text = text.rstrip("\n")
            m = _LINE.fullmatch(text)
            event = m.group(3) if m else None
            if event not in _ARGS:
                # A known event without the PID@time prefix cannot be placed in time.
                if _KNOWN.search(text):
                    raise ValueError(f"{path}:{n}: not a 'PID@SEC.USEC:event args' trace line "
                                     f"(QEMU needs -msg timestamp=on): {text!r}")
                continue
            pattern, names = _ARGS[event]
            a = pattern.fullmatch(m.group(4) or "")
            if a is None:
                raise ValueError(f"{path}:{n}: cannot parse the arguments of {event}: {text!r}")
            args = {k: (v if k == "checkpoint" else int(v or 0)) for k, v in zip(names, a.groups())}
            records.append(TraceRecord(float(m.group(2)), event, args, int(m.group(1)), n))
    return records


def _read_jsonl(path, what: str) -> list[dict]:
    out = []
    with open(path, encoding="utf-8") as f:
        for n, text in enumerate(f, 1):
            if not text.strip():
                continue
            try:
                obj = json.loads(text)
            except json.JSONDecodeError as err:
                raise ValueError(f"{path}:{n}: bad JSON ({err.msg}): "
                                 f"{text.strip()[:80]!r}") from None
            if not isinstance(obj, dict) or (what and not isinstance(obj.get(what), dict)):
                raise ValueError(f"{path}:{n}: expected an object with {what!r}: "
                                 f"{text.strip()[:80]!r}")
            out.append(obj)
    return out


def read_samples(path) -> list[dict]:
    """Parse ``samples.jsonl``: ``{"t": [s], "monotonic": [s], "query-migrate": {...}}`` per line.

    Raises
    ------
    ValueError
        A line is not JSON or has no ``query-migrate`` object; the message gives ``file:line``.
    """
    return _read_jsonl(path, "query-migrate")


def read_replies(source) -> list[dict]:
    """``query-migrate`` replies from JSON lines of either shape, in order.

    Parameters
    ----------
    source : str, os.PathLike or list of dict
        A file with one JSON object per line: the harness's ``samples.jsonl``
        shape (``{"t": ..., "query-migrate": {...}}``), a bare reply
        (``{"status": "active", "ram": {...}, ...}``) or a QMP response
        (``{"return": {...}}``); or such objects already parsed.

    Returns
    -------
    list of dict
        The replies themselves (QEMU's names and units).

    Raises
    ------
    ValueError
        A line is not JSON, or an object is none of the three shapes (it has
        no ``status``); the message gives the file and the line or object number.
    """
    if isinstance(source, (list, tuple)):
        objects = [(n, obj) for n, obj in enumerate(source, 1)]
        where = "replies"
    else:
        objects = list(enumerate(_read_jsonl(source, ""), 1))
        where = str(source)
    out = []
    for n, obj in objects:
        reply = obj.get("query-migrate", obj.get("return", obj)) if isinstance(obj, dict) else None
        if not isinstance(reply, dict) or "status" not in reply:
            raise ValueError(f"{where}: object {n}: expected a query-migrate reply (an object with "
                             f"'status', bare, under 'query-migrate' or under 'return'): "
                             f"{json.dumps(obj)[:80]!r}")
        out.append(reply)
    return out


def read_events(path) -> list[dict]:
    """Parse ``events.jsonl``: QMP events with ``timestamp`` ``{seconds, microseconds}`` (realtime).

    Raises
    ------
    ValueError
        A line is not JSON or has no ``timestamp`` object; the message gives ``file:line``.
    """
    return _read_jsonl(path, "timestamp")


def _event_time(event: dict) -> float:
    ts = event["timestamp"]
    return ts["seconds"] + ts["microseconds"] / 1e6


def _time_zero(events: list[dict], records: list[TraceRecord]) -> tuple[float, str]:
    """Realtime [s] of the migrate command and how it was found (see the module docstring)."""
    for ev in events:
        if ev.get("event") == "MIGRATION" and ev.get("data", {}).get("status") == "setup":
            return _event_time(ev), "QMP MIGRATION event, status setup (error < 1 ms)"
    for r in records:
        if r.event == "migrate_transferred":
            return (r.time - r.args["time_spent"] / 1000,
                    "start of the first window (late by the connect time, a few ms)")
    if records:
        return records[0].time, "first trace line (late by connect time and setup)"
    return math.nan, "unknown (no events, no trace lines)"


def _downtime_limit(windows: list[TraceRecord]) -> float:
    """``downtime-limit`` [ms] recovered from ``threshold_size = bw * downtime_limit``."""
    for r in windows:
        a = r.args
        bw = a["switchover_bw"] or (a["transferred"] / a["time_spent"] if a["time_spent"] else 0)
        if bw >= 1000:   # enough digits in max_size to round to the right integer
            return float(round(a["max_size"] / bw))
    return math.nan


def _windows(records: list[TraceRecord], t0: float, downtime_limit: float | None) -> dict:
    """Per-window values by TRACE name, replaying QEMU's counters along the trace."""
    windows = [r for r in records if r.event == "migrate_transferred"]
    if downtime_limit is None:
        downtime_limit = _downtime_limit(windows)
    cols = {name: [] for name in TRACE}
    times = []
    syncs, rate, period_start = 0, 0, None
    last_sync_bytes, after_sync, awaiting = math.nan, False, False
    cumulative = 0
    expected_downtime = downtime_limit   # QEMU starts it at downtime-limit (migration_connect)
    for r in records:
        a = r.args
        if r.event == "migration_bitmap_sync_end":
            syncs += 1
            # migration_bitmap_sync: dirty_pages_rate over rate periods > 1 s, integer ms and
            # integer division as in QEMU.  QEMU starts the first period at the *start* of the
            # setup sync; the trace has only its end, so the first rate is high by the setup
            # sync's share of the period (~0.1 % on the recordings).
            now = math.floor(r.time * 1000)
            if period_start is None:
                period_start = now
            elif now > period_start + 1000:
                rate = a["dirty_pages"] * 1000 // (now - period_start)
                period_start = now
            after_sync = True
        elif r.event in _PENDING:
            if after_sync:   # pending right after a sync = dirty_bytes_last_sync
                last_sync_bytes, after_sync = a["size"], False
            if awaiting:     # the first pending after a window close: pending at that close
                cols["pending"][-1], awaiting = a["size"], False
        elif r.event == "migrate_transferred":
            nbytes, spent, sw = a["transferred"], a["time_spent"], a["switchover_bw"]
            bw = nbytes / spent if spent else math.nan   # [B/ms], untruncated like the simulator
            expected_bw = sw if sw else bw
            if rate != 0 and nbytes > 10000 and expected_bw > 0:
                expected_downtime = float(int(last_sync_bytes / expected_bw))
            cumulative += nbytes
            times.append((r.time - t0) * 1000)
            for name, value in (("time_spent", spent), ("window_bytes", nbytes),
                                ("bandwidth", bw * 1000), ("threshold", a["max_size"]),
                                ("pending", math.nan), ("cumulative_transferred", cumulative),
                                ("syncs", syncs),
                                ("window_expected_downtime", expected_downtime),
                                ("window_mbps", nbytes * 8 / (spent / 1000) / 1e6
                                 if spent else math.nan),
                                ("window_dirty_pages_rate", rate),
                                ("window_cpu_throttle_percentage", math.nan),
                                ("window_downtime_limit", downtime_limit)):
                cols[name].append(value)
            awaiting = True
    cols = {name: np.asarray(v, dtype=float) for name, v in cols.items()}
    return {"time": np.asarray(times, dtype=float), "downtime_limit": downtime_limit, **cols}


_WINDOW_SOURCES = {
    "time_spent": "trace migrate_transferred time_spent",
    "window_bytes": "trace migrate_transferred transferred",
    "bandwidth": "window_bytes / time_spent x 1000 (the trace's own field is truncated to B/ms)",
    "threshold": "trace migrate_transferred max_size",
    "pending": "size of the first migrate_pending_estimate/exact line after the window "
               "(NaN if none)",
    "cumulative_transferred": "running sum of the windows' transferred",
    "syncs": "migration_bitmap_sync_end lines so far (the setup sync counts 1)",
    "window_expected_downtime": "replayed: dirty bytes after the last sync / (switchover_bw or "
                                "bandwidth) [B/ms], truncated, once the dirty rate is non-zero; "
                                "downtime-limit before",
    "window_dirty_pages_rate": "replayed from migration_bitmap_sync_end: dirty_pages x 1000 / "
                               "period [ms] at syncs closing a > 1 s period",
    "window_mbps": "window_bytes x 8 / time_spent, decimal Mbit/s (QEMU's formula)",
    "window_cpu_throttle_percentage": "not traced (NaN): query-migrate cpu-throttle-percentage "
                                      "is in the samples",
    "window_downtime_limit": "the run's downtime-limit (params, or threshold / bandwidth): "
                             "the harness sets it once",
}


def _qm(sample: dict) -> dict:
    return sample.get("query-migrate", sample)


def _last(samples: list[dict], *keys, skip_status=()) -> float:
    """The last reported value of a query-migrate field (QEMU drops fields when it ends)."""
    for s in reversed(samples):
        q = _qm(s)
        if q.get("status") in skip_status:
            continue
        for k in keys:
            q = q.get(k) if isinstance(q, dict) else None
        if q is not None:
            return float(q)
    return math.nan


def _scalars(samples: list[dict], records: list[TraceRecord], t0: float,
             win: dict) -> dict:
    """Scalars by SCALARS name: (value, description of the source)."""
    out = {}
    low = [r for r in records if r.event == "migration_thread_low_pending"]
    checkpoints = {r.args["checkpoint"]: r.time for r in records
                   if r.event == "vmstate_downtime_checkpoint"}
    if samples:
        status = _qm(samples[-1]).get("status")
        converged = status == "completed"
        out["converged"] = (converged, f"final query-migrate status is completed ({status})")
        for name, keys in (("total_time", ("total-time",)), ("setup_time", ("setup-time",)),
                           ("expected_downtime", ("expected-downtime",)),
                           ("transferred", ("ram", "transferred")),
                           ("remaining", ("ram", "remaining")),
                           ("dirty_sync_count", ("ram", "dirty-sync-count")),
                           ("normal_pages", ("ram", "normal")),
                           ("zero_pages", ("ram", "duplicate")),
                           ("downtime_bytes", ("ram", "downtime-bytes"))):
            out[name] = (_last(samples, *keys),
                         f"query-migrate {'.'.join(keys)} of the last sample reporting it")
        # Unlike the simulator's, QEMU's downtime-bytes counts RAM pages only.
        out["downtime_bytes"] = (out["downtime_bytes"][0],
                                 "query-migrate ram.downtime-bytes (RAM only, no device state)")
        # Completed replies show dirty-pages-rate 0: keep the last rate QEMU measured.
        out["dirty_pages_rate"] = (_last(samples, "ram", "dirty-pages-rate",
                                         skip_status=("completed",)),
                                   ("query-migrate ram.dirty-pages-rate of the last sample "
                                    "before completion"))
        out["downtime"] = (_last(samples, "downtime") if converged else math.nan,
                           "query-migrate downtime; NaN if not completed")
        total, setup, nbytes = (out[k][0] for k in ("total_time", "setup_time", "transferred"))
        if converged:
            out["mbps"] = (_last(samples, "ram", "mbps"), "query-migrate ram.mbps when completed")
        else:
            # Before completion QEMU's mbps is the last window's; the simulator reports the
            # average, so compute QEMU's completion formula from the last reported values.
            out["mbps"] = (nbytes * 8 / (total - setup) / 1000 if total > setup else math.nan,
                           "transferred x 8 / (total_time - setup_time): not completed")
    elif records:
        converged = bool(low) and "src-downtime-end" in checkpoints
        out["converged"] = (converged, "trace: migration_thread_low_pending and src-downtime-end")
        out["dirty_sync_count"] = (float(sum(r.event == "migration_bitmap_sync_end"
                                             for r in records)),
                                   "trace: number of migration_bitmap_sync_end lines")
        if converged:
            start = checkpoints.get("src-downtime-start", math.nan)
            end = checkpoints["src-downtime-end"]
            out["downtime"] = ((end - start) * 1000, "trace: src-downtime-end - src-downtime-start")
            out["total_time"] = ((end - t0) * 1000, "trace: src-downtime-end - time zero")
    if records:
        thresholds = win["threshold"]
        if low:
            # The switchover was decided after the last window closed before that line.
            n = sum(r.event == "migrate_transferred" and r.line < low[0].line for r in records)
            thr = thresholds[n - 1] if n else 0.0
        else:
            thr = thresholds[-1] if len(thresholds) else math.nan
        out["switchover_threshold"] = (thr, ("trace: max_size of the last window before the "
                                             "switchover decision (or the last window)"))
        out["switchover_pending"] = (float(low[0].args["pending"]) if low else math.nan,
                                     "trace: migration_thread_low_pending; NaN if none")
        exact = [r for r in records if r.event == "migrate_pending_exact"]
        out["dirty_bytes_last_sync"] = (
            float(exact[-1].args["size"]) if exact else math.nan,
            "trace: size of the last migrate_pending_exact (the final sync at completion "
            "is not traced); NaN if none")
        out["final_downtime_limit"] = (win["downtime_limit"],
                                       "the run's downtime-limit, set once by the harness")
    if samples:
        out["cpu_throttle_percentage"] = (
            _last(samples, "cpu-throttle-percentage", skip_status=("completed",))
            if any("cpu-throttle-percentage" in _qm(x) for x in samples) else 0.0,
            "query-migrate cpu-throttle-percentage of the last sample reporting it (0: never)")
        out["postcopy_faults"] = (_last(samples, "ram", "postcopy-requests"),
                                  "query-migrate ram.postcopy-requests of the last sample "
                                  "reporting it")
    out["postcopy_start_time"] = (math.nan, "the harness does not switch to postcopy")
    out["dirty_limit_start_time"] = (math.nan, "the harness does not enable dirty-limit")
    out["aborted"] = (0.0, "no management policy watched the recorded run")
    out["pause_time"] = (math.nan, "no management policy watched the recorded run")
    return out


def _attr_value(value):
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, (int, float, str, np.integer, np.floating)):
        return value
    if isinstance(value, (tuple, list)) and all(isinstance(v, (int, float)) for v in value):
        return ".".join(map(str, value)) if all(isinstance(v, int) for v in value) else list(value)
    return json.dumps(value, default=str)


def trace_dataset(run_dir=None, *, trace=None, samples=None, events=None,
                  params: dict | None = None, qemu_version=None) -> xr.Dataset:
    """A recorded run as a Dataset with :func:`toolkit.simulate`'s names and units.

    Parameters
    ----------
    run_dir : str or os.PathLike, optional
        Directory written by :func:`toolkit.qemu.run_migration` (``output_dir``);
        supplies ``src-trace.log``, ``samples.jsonl`` and ``events.jsonl``.
    trace, samples, events : str or os.PathLike, optional
        Paths overriding those of ``run_dir``; ``trace`` is required without
        ``run_dir``, the other two are optional (see Returns).
    params : dict, optional
        The run's parameters (e.g. the keyword arguments of ``run_migration``),
        stored as global attributes; ``downtime_limit`` [ms] there is used
        instead of the one recovered from the trace.
    qemu_version : str or tuple of int, optional
        For ``attrs["source"]`` (the recording files do not name it).

    Returns
    -------
    xarray.Dataset
        Along ``window`` (one per ``migrate_transferred`` line), with the same
        ``units`` and ``long_name`` as the simulator's trace and a
        ``description`` of the source: ``time`` [ms] since migrate (window
        close), ``time_spent`` [ms], ``window_bytes`` [B], ``bandwidth``
        [B s-1], ``threshold`` [B], ``pending`` [B], ``cumulative_transferred``
        [B], ``syncs`` [1], ``window_expected_downtime`` [ms], ``window_mbps``
        [Mbit s-1], ``window_dirty_pages_rate`` [s-1].  The expected downtime
        and dirty rate are replayed from the trace with QEMU's formulas (they
        are not traced).  Scalars as in :data:`toolkit.schema.SCALARS` from
        the last ``query-migrate`` samples and the trace; ``guest_writes`` and
        ``lost_pages`` are absent (not recorded), as are the sample-only
        scalars without ``samples.jsonl``.

    Raises
    ------
    FileNotFoundError
        No trace file.
    ValueError
        A file does not parse (the message gives ``file:line``).
    """
    run_dir = Path(run_dir) if run_dir is not None else None

    def pick(given, name):
        if given is not None:
            return Path(given)
        path = run_dir / name if run_dir is not None else None
        return path if path is not None and path.exists() else None

    trace_path, samples_path, events_path = (pick(trace, "src-trace.log"),
                                             pick(samples, "samples.jsonl"),
                                             pick(events, "events.jsonl"))
    if trace_path is None:
        raise FileNotFoundError(f"no src-trace.log in {run_dir}" if run_dir else
                                "trace_dataset: give run_dir or trace")
    records = read_trace(trace_path)
    sample_list = read_samples(samples_path) if samples_path else []
    event_list = read_events(events_path) if events_path else []
    t0, t0_how = _time_zero(event_list, records)
    dl = (params or {}).get("downtime_limit")
    win = _windows(records, t0, None if dl is None else float(dl))

    data_vars = {}
    for name, (value, description) in _scalars(sample_list, records, t0, win).items():
        units, long_name, _ = SCALARS[name]
        data_vars[name] = xr.Variable((), np.bool_(value) if name == "converged" else
                                      np.float64(value),
                                      {"units": units, "long_name": long_name,
                                       "description": description})
    for name, (_, _, units, long_name) in TRACE.items():
        data_vars[name] = xr.Variable(("window",), win[name],
                                      {"units": units, "long_name": long_name,
                                       "description": _WINDOW_SOURCES[name]})
    n = len(win["time"])
    coords = {"window": ("window", np.arange(n), {"units": "1",
                                                   "long_name": "window number (~100 ms each)"}),
              "time": ("window", win["time"], {"units": "ms",
                                               "long_name": "time since migrate (window close)"})}
    version = _attr_value(qemu_version) if qemu_version is not None else None
    attrs = {
        "title": "Recorded QEMU precopy live migration",
        "source": f"QEMU {version} (recorded)" if version else "QEMU (recorded, version unknown)",
        "history": f"{datetime.datetime.now(datetime.UTC):%Y-%m-%dT%H:%M:%SZ} "
                   f"toolkit.qemu.readers.trace_dataset",
        "Conventions": "CF-1.10",
        "recording": str(run_dir if run_dir is not None else trace_path),
        "time_zero": t0_how,
        "time_zero_realtime": t0,
        "downtime_limit_used": win["downtime_limit"],
    }
    for key, value in (params or {}).items():
        if value is not None:
            attrs[key] = _attr_value(value)
    return xr.Dataset(data_vars, coords=coords, attrs=attrs)


# query-migrate field -> (our name, units, long_name); names shared with SCALARS use its units.
_SAMPLE_FIELDS = {
    "total-time": ("total_time", "ms", "total time (query-migrate total-time)"),
    "setup-time": ("setup_time", "ms", "setup time (query-migrate setup-time)"),
    "downtime": ("downtime", "ms", "downtime (query-migrate downtime)"),
    "expected-downtime": ("expected_downtime", "ms", "expected downtime"),
    "cpu-throttle-percentage": ("cpu_throttle_percentage", "percent", "vCPU throttle"),
    "dirty-limit-throttle-time-per-round": ("dirty_limit_throttle_time_per_round", "us",
                                            "dirty-limit throttle time per round"),
    "dirty-limit-ring-full-time": ("dirty_limit_ring_full_time", "us",
                                   "dirty-limit ring full time"),
    "ram.transferred": ("transferred", "B", "bytes transferred (ram.transferred)"),
    "ram.remaining": ("remaining", "B", "bytes remaining (ram.remaining)"),
    "ram.total": ("total", "B", "guest RAM (ram.total)"),
    "ram.duplicate": ("zero_pages", "1", "zero pages sent (ram.duplicate)"),
    "ram.normal": ("normal_pages", "1", "normal pages sent (ram.normal)"),
    "ram.normal-bytes": ("normal_bytes", "B", "normal page bytes"),
    "ram.dirty-sync-count": ("dirty_sync_count", "1", "dirty bitmap syncs"),
    "ram.dirty-pages-rate": ("dirty_pages_rate", "s-1", "dirty pages rate"),
    "ram.mbps": ("mbps", "Mbit s-1",
                 "throughput: last window while active, average when completed"),
    "ram.pages-per-second": ("pages_per_second", "s-1", "pages sent per second (last window)"),
    "ram.page-size": ("page_size", "B", "target page size"),
    "ram.precopy-bytes": ("precopy_bytes", "B", "RAM bytes sent while the VM ran"),
    "ram.downtime-bytes": ("downtime_bytes", "B", "RAM bytes sent during downtime"),
    "ram.postcopy-bytes": ("postcopy_bytes", "B", "RAM bytes sent in postcopy"),
    "ram.multifd-bytes": ("multifd_bytes", "B", "bytes sent on multifd channels"),
    "ram.postcopy-requests": ("postcopy_requests", "1", "postcopy page requests"),
    "ram.dirty-sync-missed-zero-copy": ("dirty_sync_missed_zero_copy", "1",
                                        "syncs that missed zero-copy flushes"),
    "ram.skipped": ("skipped", "1", "skipped pages (old QEMU)"),
}


def _flatten(q: dict) -> dict:
    """``{"ram": {"mbps": 1}}`` -> ``{"ram.mbps": 1}``: numbers only (lists, strings dropped)."""
    out = {}
    for key, value in q.items():
        if isinstance(value, dict):
            out.update({f"{key}.{k}": v for k, v in _flatten(value).items()})
        elif isinstance(value, (int, float)) and not isinstance(value, bool):
            out[key] = value
    return out


def samples_dataset(path) -> xr.Dataset:
    """The ``query-migrate`` samples of ``samples.jsonl`` along dimension ``sample``.

    Parameters
    ----------
    path : str or os.PathLike
        ``samples.jsonl``, or the run directory holding it.

    Returns
    -------
    xarray.Dataset
        ``time`` [ms] since the migrate command on the harness's clock (``t``;
        within ~1 ms of QEMU's ``total-time``), ``status`` (text) and every
        numeric field: QEMU's names mapped to the simulator's where they mean
        the same (``transferred`` [B], ``remaining`` [B], ``dirty_sync_count``,
        ``mbps`` [Mbit s-1], ``dirty_pages_rate`` [s-1], ``expected_downtime``
        [ms], ``total_time`` [ms], ``normal_pages``, ``zero_pages``, ...),
        others in snake_case (``ram.`` dropped, other groups as prefix).  NaN
        where a sample lacks the field (QEMU shows fields only in some states).
    """
    path = Path(path)
    if path.is_dir():
        path = path / "samples.jsonl"
    samples = read_samples(path)
    flat = [_flatten(_qm(s)) for s in samples]
    keys = list(dict.fromkeys(k for f in flat for k in f))
    status = np.array([_qm(s).get("status", "") for s in samples], dtype=str)
    data_vars = {"status": ("sample", status, {"units": "1", "long_name": "query-migrate status"})}
    for key in keys:
        name, units, long_name = _SAMPLE_FIELDS.get(key, (None, "1", key))
        if name is None:
            name = key.removeprefix("ram.").replace(".", "_").replace("-", "_")
        attrs = {"units": units, "long_name": long_name, "description": f"query-migrate {key}"}
        if key not in _SAMPLE_FIELDS:
            attrs["description"] += " (units not known to this reader)"
        data_vars[name] = ("sample", np.array([f.get(key, np.nan) for f in flat], dtype=float),
                           attrs)
    coords = {"sample": ("sample", np.arange(len(samples)), {"units": "1",
                                                              "long_name": "sample number"}),
              "time": ("sample", np.array([s.get("t", np.nan) for s in samples], float) * 1000,
                       {"units": "ms", "long_name": "time since migrate (harness clock)"})}
    return xr.Dataset(data_vars, coords=coords,
                      attrs={"title": "query-migrate samples of a recorded QEMU migration",
                             "Conventions": "CF-1.10", "recording": str(path)})


#: libvirt's ``virsh domjobinfo`` label -> query-migrate field, scale to libvirt's unit.
DOMJOBINFO = (
    ("Time elapsed", "total-time", 1),            # [ms]; libvirt times the job itself
    ("Data processed", "ram.transferred", 1),     # [B]; + disk (NBD) bytes under libvirt
    ("Data remaining", "ram.remaining", 1),
    ("Data total", "ram.total", 1),
    ("Memory processed", "ram.transferred", 1),
    ("Memory remaining", "ram.remaining", 1),
    ("Memory total", "ram.total", 1),
    ("Memory bandwidth", "ram.mbps", 1e6 / 8),    # [B/s]: libvirt's ram_bps = mbps x 10^6 / 8
    ("Dirty rate", "ram.dirty-pages-rate", 1),    # [pages/s]
    ("Page size", "ram.page-size", 1),
    ("Iteration", "ram.dirty-sync-count", 1),
    ("Postcopy requests", "ram.postcopy-requests", 1),
    ("Constant pages", "ram.duplicate", 1),
    ("Normal pages", "ram.normal", 1),
    ("Normal data", "ram.normal-bytes", 1),
    ("Expected downtime", "expected-downtime", 1),  # [ms]
    ("Total downtime", "downtime", 1),              # [ms]
    ("Setup time", "setup-time", 1),                # [ms]
)


def domjobinfo_fields(sample: dict) -> dict:
    """One sample's fields under libvirt's ``virsh domjobinfo`` labels.

    Parameters
    ----------
    sample : dict
        A line of ``samples.jsonl`` or a bare ``query-migrate`` reply.

    Returns
    -------
    dict
        Label -> number in libvirt's units: times [ms], data [B],
        ``Memory bandwidth`` [B/s], ``Dirty rate`` [pages/s], counts [1];
        only the fields the reply has.  RAM only (no disk/NBD data).
    """
    flat = _flatten(_qm(sample))
    return {label: flat[key] * scale if scale != 1 else flat[key]
            for label, key, scale in DOMJOBINFO if key in flat}
