"""The one place that names the variables, dimensions, units and attributes of results.

:func:`build_dataset` turns kernel runs (one, or a sweep) into an ``xarray.Dataset``: scalars
shaped like QEMU's ``query-migrate`` and a per-window trace along ``window``.
Every variable and coordinate carries ``units`` (UDUNITS-style) and
``long_name``; the scenario's parameters are global attributes.
"""
from __future__ import annotations

import datetime

import numpy as np
import xarray as xr

from .kernels import layout as L
from ._version import __version__
from .constants import PAGE_SIZE, PS_PER_MS
from .scenario import PARAMETER_INDEX, PARAMETERS

QEMU_MODEL = "10.0"

# name: (units, long_name, description)
SCALARS = {
    "converged": ("1", "switched over before max_time",
                  "1 if QEMU's switchover test passed before max_time, else 0"),
    "total_time": ("ms", "total time",
                   "query-migrate total-time: migrate command to completion "
                   "(to max_time if not converged)"),
    "setup_time": ("ms", "setup time", "query-migrate setup-time"),
    "downtime": ("ms", "downtime",
                 "query-migrate downtime: VM stop to last byte queued; NaN if not converged"),
    "expected_downtime": ("ms", "expected downtime",
                          "query-migrate expected-downtime at the last closed window"),
    "transferred": ("B", "bytes transferred", "query-migrate ram.transferred plus device state"),
    "remaining": ("B", "bytes remaining",
                  "query-migrate ram.remaining at the end: dirty pages x 4096 (for a run that "
                  "never converged, the last value query-migrate showed)"),
    "dirty_bytes_last_sync": ("B", "pending at the last sync",
                              "dirty pages x 4096 right after the last bitmap sync "
                              "(mig_stats dirty_bytes_last_sync: the last exact pending)"),
    "dirty_sync_count": ("1", "dirty bitmap syncs", "query-migrate dirty-sync-count"),
    "passes": ("1", "passes over RAM completed",
               "times the page search went round past the end of RAM: 0 while in the first "
               "pass (see toolkit.verdict)"),
    "last_page": ("1", "page the search resumes at",
                  "ram.c last_page at the end: in the first pass, how far it got [pages]"),
    "normal_pages": ("1", "normal pages sent", "query-migrate ram.normal [pages]"),
    "zero_pages": ("1", "zero pages sent", "query-migrate ram.duplicate [pages]"),
    "untouched_zero_pages": ("1", "zero pages of never-touched RAM",
                             "zero pages sent from RAM never allocated (the cheaper scan) "
                             "[pages]"),
    "first_copy_pages": ("1", "first copies on the destination",
                         "normal pages the destination did not hold yet (counted only when a "
                         "first copy costs more than a re-send) [pages]"),
    "switchover_threshold": ("B", "threshold at switchover",
                             "threshold_size when the switchover was decided "
                             "(the last one if not converged)"),
    "switchover_pending": ("B", "pending at switchover",
                           "pending bytes that passed the switchover test; NaN if not converged"),
    "mbps": ("Mbit s-1", "average throughput",
             "query-migrate ram.mbps when completed: bytes x 8 / (total - setup time)"),
    "downtime_bytes": ("B", "bytes sent during downtime",
                       "query-migrate ram.downtime-bytes plus device state"),
    "dirty_pages_rate": ("s-1", "dirty pages rate",
                         "query-migrate ram.dirty-pages-rate: newly dirty pages per second"),
    "guest_writes": ("1", "guest page writes", "page writes the guest issued [pages]"),
    "aborted": ("1", "aborted by the policy",
                "1 if the management policy cancelled the migration (migrate_cancel)"),
    "pause_time": ("ms", "guest paused at",
                   "when the management policy paused the guest; NaN if it never did"),
    "final_downtime_limit": ("ms", "downtime-limit at the end",
                             "the downtime-limit in force at the end (a policy may raise it)"),
    "postcopy_start_time": ("ms", "postcopy started at",
                            "when the destination started running in postcopy (the downtime "
                            "ended); NaN if the migration never switched to postcopy"),
    "postcopy_faults": ("1", "postcopy page faults",
                        "pages the destination's guest touched before they arrived [pages]"),
    "dirty_limit_start_time": ("ms", "dirty-limit started at",
                               "when dirty-limit began holding the vCPUs to their quota; NaN "
                               "if it never did"),
    "cpu_throttle_percentage": ("%", "CPU throttle at the end",
                                "query-migrate cpu-throttle-percentage (auto-converge); "
                                "0 when not throttling"),
    "lost_pages": ("1", "pages lost",
                   "check mode: pages whose destination copy is not the source's last "
                   "version [pages]; -1 when not checked"),
}

# trace variable: (kernel column, scale, units, long_name)
TRACE = {
    "time_spent": (L.W_TIME_SPENT, 1.0, "ms", "window length"),
    "window_bytes": (L.W_BYTES, 1.0, "B", "bytes queued in the window"),
    "bandwidth": (L.W_BANDWIDTH, 1000.0, "B s-1",
                  "estimated bandwidth (one window, migration_update_counters)"),
    "threshold": (L.W_THRESHOLD, 1.0, "B", "switchover threshold (threshold_size)"),
    "pending": (L.W_PENDING, 1.0, "B", "pending dirty bytes at window close"),
    "cumulative_transferred": (L.W_TRANSFERRED, 1.0, "B", "bytes transferred since migrate"),
    "syncs": (L.W_SYNCS, 1.0, "1", "dirty-sync-count at window close"),
    "window_expected_downtime": (L.W_EXPECTED_DOWNTIME, 1.0, "ms", "expected downtime"),
    "window_mbps": (L.W_MBPS, 1.0, "Mbit s-1", "throughput of the window (query-migrate mbps)"),
    "window_dirty_pages_rate": (L.W_DIRTY_RATE, 1.0, "s-1", "dirty pages rate"),
    "window_cpu_throttle_percentage": (L.W_THROTTLE, 1.0, "%",
                                       "CPU throttle at window close (auto-converge)"),
    "window_downtime_limit": (L.W_DOWNTIME_LIMIT, 1.0, "ms", "downtime-limit at window close"),
}


def scalar_results(states: np.ndarray) -> dict:
    """Scalar results by name, in the units of :data:`SCALARS`.

    Parameters
    ----------
    states : ndarray(int64, (..., N_STATE))
        Final kernel states of one run or of many (leading axes kept).
    """
    st = np.asarray(states)
    converged = st[..., L.S_CONVERGED] == 1
    end = st[..., L.S_T] / PS_PER_MS
    setup = st[..., L.S_SETUP_T] / PS_PER_MS
    transfer = end - setup
    nbytes = st[..., L.S_TRANSFERRED]
    with np.errstate(divide="ignore", invalid="ignore"):
        mbps = np.where(transfer > 0, nbytes * 8 / transfer / 1000, 0.0)
    return {
        "converged": converged,
        "total_time": end,
        "setup_time": setup,
        "downtime": np.where(converged, (st[..., L.S_DOWNTIME_END] - st[..., L.S_DOWNTIME_START])
                             / PS_PER_MS, np.nan),
        "expected_downtime": st[..., L.S_EXPECTED_DOWNTIME].astype(float),
        "transferred": nbytes,
        "remaining": st[..., L.S_DIRTY] * PAGE_SIZE,
        "dirty_bytes_last_sync": st[..., L.S_DIRTY_BYTES_LAST_SYNC],
        "dirty_sync_count": st[..., L.S_SYNCS],
        "passes": st[..., L.S_WRAPS],
        "last_page": st[..., L.S_CURSOR],
        "normal_pages": st[..., L.S_NORMAL],
        "zero_pages": st[..., L.S_ZERO],
        "untouched_zero_pages": st[..., L.S_UNTOUCHED],
        "first_copy_pages": st[..., L.S_FIRST_COPIES],
        "switchover_threshold": st[..., L.S_THRESHOLD],
        "switchover_pending": np.where(converged, st[..., L.S_SWITCH_PENDING], np.nan),
        "mbps": mbps,
        "downtime_bytes": st[..., L.S_DOWNTIME_BYTES],
        "dirty_pages_rate": st[..., L.S_DIRTY_RATE],
        "guest_writes": st[..., L.S_WRITES],
        "cpu_throttle_percentage": st[..., L.S_THROTTLE],
        "aborted": st[..., L.S_ABORTED] == 1,
        "pause_time": np.where(st[..., L.S_PAUSED_T] >= 0, st[..., L.S_PAUSED_T] / PS_PER_MS,
                               np.nan),
        "final_downtime_limit": st[..., L.S_DOWNTIME_LIMIT],
        "postcopy_start_time": np.where(st[..., L.S_POSTCOPY_T] >= 0,
                                        st[..., L.S_POSTCOPY_T] / PS_PER_MS, np.nan),
        "postcopy_faults": st[..., L.S_FAULTS],
        "dirty_limit_start_time": np.where(st[..., L.S_DIRTY_LIMIT_T] >= 0,
                                           st[..., L.S_DIRTY_LIMIT_T] / PS_PER_MS, np.nan),
        "lost_pages": st[..., L.S_LOST_PAGES],
    }


def build_dataset(states: np.ndarray, params: dict, traces: np.ndarray | None = None,
                  dims: dict | None = None, resolved: dict | None = None) -> xr.Dataset:
    """The Dataset of one run or of a sweep: the one place that names everything.

    Parameters
    ----------
    states : ndarray(int64, (*shape, N_STATE))
        Final kernel states; ``shape`` is that of ``dims`` (empty for one run).
    params : dict
        Fixed scenario parameters (base units), stored as global attributes.
    traces : ndarray(float64, (*shape, windows, N_TRACE)), optional
        Per-window traces, NaN-padded past each run's last window.
    dims : dict, optional
        Swept parameter name -> coordinate values, in dimension order.
    resolved : dict, optional
        Swept parameter name -> values (base units, shaped like ``dims``) for a
        dimension labelled by text, such as avail "2x link"; stored as ``<name>_value``.
    """
    dims = dims or {}
    names = tuple(dims)
    data_vars = {}
    for name, value in scalar_results(states).items():
        units, long_name, description = SCALARS[name]
        data_vars[name] = xr.Variable(names, value, {"units": units, "long_name": long_name,
                                                     "description": description})
    coords = {}
    for name, values in dims.items():
        spec = PARAMETER_INDEX[name]
        values = np.asarray(values)
        units = "1" if values.dtype.kind in "OUS" else spec.units
        coords[name] = (name, values, {"units": units, "long_name": name.replace("_", " "),
                                       "description": spec.doc})
    for name, values in (resolved or {}).items():
        spec = PARAMETER_INDEX[name]
        data_vars[f"{name}_value"] = xr.Variable(
            names, values, {"units": spec.units, "long_name": f"{name.replace('_', ' ')} used",
                            "description": f"{name} in base units at each point"})
    if traces is not None:
        tdims = names + ("window",)
        for name, (col, scale, units, long_name) in TRACE.items():
            data_vars[name] = xr.Variable(tdims, traces[..., col] * scale,
                                          {"units": units, "long_name": long_name})
        coords["window"] = ("window", np.arange(traces.shape[-2]),
                            {"units": "1", "long_name": "window number (~100 ms each)"})
        coords["time"] = (tdims, traces[..., L.W_TIME],
                          {"units": "ms", "long_name": "time since migrate (window close)"})
    attrs = {
        "title": "Simulated QEMU precopy live migration",
        "source": f"switchover-lab {__version__} (QEMU {QEMU_MODEL} precopy model)",
        "history": f"{datetime.datetime.now(datetime.timezone.utc):%Y-%m-%dT%H:%M:%SZ} "
                   f"toolkit.{'sweep' if dims else 'simulate'}",
        "Conventions": "CF-1.10",
        "qemu_model": QEMU_MODEL,
    }
    if dims:
        attrs["swept_parameters"] = " ".join(names)
    fixed = [spec for spec in PARAMETERS if spec.name in params and spec.name not in dims]
    for spec in fixed:
        value = params[spec.name]
        attrs[spec.name] = int(value) if isinstance(value, bool) else value
    attrs["parameter_units"] = "; ".join(f"{s.name}: {s.units}" for s in PARAMETERS)
    return xr.Dataset(data_vars, coords=coords, attrs=attrs)

