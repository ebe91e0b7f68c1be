"""The one place that names the variables, dimensions, units and attributes of results.

:func:`build_dataset` turns a kernel run into an ``xarray.Dataset``: scalars
shaped like QEMU's ``query-migrate`` and a per-window trace along ``window``.
Every variable and coordinate carries ``units`` (UDUNITS-style) and
``long_name``; the scenario's parameters are global attributes.
"""
from __future__ import annotations

import datetime

import numpy as np
import xarray as xr

from .kernels import layout as L
from .kernels.precopy import PS_PER_MS
from .scenario import PARAMETERS, Scenario

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
    "remaining": ("B", "bytes remaining", "dirty pages x 4096 at the end"),
    "dirty_sync_count": ("1", "dirty bitmap syncs", "query-migrate dirty-sync-count"),
    "normal_pages": ("1", "normal pages sent", "query-migrate ram.normal [pages]"),
    "zero_pages": ("1", "zero pages sent", "query-migrate ram.duplicate [pages]"),
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
}


def _ms(ps) -> float:
    return float(ps) / PS_PER_MS


def scalar_results(sc: Scenario, st: np.ndarray) -> dict:
    """Scalar results of one run, by name, in the units of :data:`SCALARS`."""
    converged = bool(st[L.S_CONVERGED])
    end = st[L.S_T]
    setup = st[L.S_SETUP_T]
    transfer_ms = _ms(end - setup)
    return {
        "converged": converged,
        "total_time": _ms(end),
        "setup_time": _ms(setup),
        "downtime": _ms(end - st[L.S_DOWNTIME_START]) if converged else np.nan,
        "expected_downtime": float(st[L.S_EXPECTED_DOWNTIME]),
        "transferred": int(st[L.S_TRANSFERRED]),
        "remaining": int(st[L.S_DIRTY]) * 4096,
        "dirty_sync_count": int(st[L.S_SYNCS]),
        "normal_pages": int(st[L.S_NORMAL]),
        "zero_pages": int(st[L.S_ZERO]),
        "switchover_threshold": int(st[L.S_THRESHOLD]),
        "switchover_pending": float(st[L.S_SWITCH_PENDING]) if converged else np.nan,
        "mbps": (st[L.S_TRANSFERRED] * 8 / transfer_ms / 1000) if transfer_ms > 0 else 0.0,
        "downtime_bytes": int(st[L.S_DOWNTIME_BYTES]),
        "dirty_pages_rate": int(st[L.S_DIRTY_RATE]),
        "guest_writes": int(st[L.S_WRITES]),
        "lost_pages": int(st[L.S_LOST_PAGES]),
    }


def parameter_attrs(sc: Scenario) -> dict:
    """The scenario's parameters as netCDF-friendly attributes, plus their units."""
    attrs = {}
    for spec in PARAMETERS:
        value = getattr(sc, spec.name)
        attrs[spec.name] = int(value) if isinstance(value, bool) else value
    attrs["parameter_units"] = "; ".join(
        f"{s.name}: {s.time_unit if s.kind == 'duration' else s.unit}" for s in PARAMETERS)
    return attrs


def build_dataset(sc: Scenario, raw) -> xr.Dataset:
    """Dataset of one run: scalars, the per-window trace, units and attributes.

    Parameters
    ----------
    sc : Scenario
        The scenario that was run.
    raw : toolkit.simulate.RawRun
        The kernel's state and trace.
    """
    data_vars = {}
    for name, value in scalar_results(sc, raw.state).items():
        units, long_name, description = SCALARS[name]
        data_vars[name] = xr.Variable((), value, {"units": units, "long_name": long_name,
                                                  "description": description})
    trace = raw.trace
    for name, (col, scale, units, long_name) in TRACE.items():
        data_vars[name] = xr.Variable(("window",), trace[:, col] * scale,
                                      {"units": units, "long_name": long_name})
    coords = {
        "window": ("window", np.arange(trace.shape[0]),
                   {"units": "1", "long_name": "window number (~100 ms each)"}),
        "time": ("window", trace[:, L.W_TIME],
                 {"units": "ms", "long_name": "time since migrate (window close)"}),
    }
    attrs = {
        "title": "Simulated QEMU precopy live migration",
        "source": f"switchover-lab {_version()} (QEMU {QEMU_MODEL} precopy model)",
        "history": f"{datetime.datetime.now(datetime.timezone.utc):%Y-%m-%dT%H:%M:%SZ} "
                   "toolkit.simulate",
        "Conventions": "CF-1.10",
        "qemu_model": QEMU_MODEL,
    }
    attrs.update(parameter_attrs(sc))
    return xr.Dataset(data_vars, coords=coords, attrs=attrs)


def _version() -> str:
    from . import __version__
    return __version__
