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

# Scalars read from one state slot take their units, long_name and description from
# the slot's field (kernels.layout.STATE, ``result``); these are computed from several.
_DERIVED = {
    "downtime": ("ms", "downtime",
                 "query-migrate downtime: VM stop to last byte queued; NaN if not converged"),
    "remaining": ("B", "bytes remaining",
                  "query-migrate ram.remaining at the end: dirty pages x 4096 (for a run that "
                  "never converged, the last value query-migrate showed)"),
    "switchover_pending": ("B", "pending at switchover",
                           "pending bytes that passed the switchover test; NaN if not converged"),
    "mbps": ("Mbit s-1", "average throughput",
             "query-migrate ram.mbps when completed: bytes x 8 / (total - setup time)"),
}
#: the Dataset's scalars in order
_ORDER = ("converged", "total_time", "setup_time", "downtime", "expected_downtime",
          "transferred", "remaining", "dirty_bytes_last_sync", "dirty_sync_count", "passes",
          "last_page", "normal_pages", "zero_pages", "untouched_zero_pages", "populated_regions",
          "multifd_bytes", "multifd_packets", "multifd_wait_time", "multifd_cpu_time",
          "switchover_threshold", "switchover_pending", "mbps", "downtime_bytes",
          "dirty_pages_rate", "guest_writes", "aborted", "pause_time", "final_downtime_limit",
          "postcopy_start_time", "postcopy_faults", "dirty_limit_start_time",
          "cpu_throttle_percentage", "lost_pages")
#: a slot's units in the Dataset, and the factor that converts it there
_CONVERT = {"ps": ("ms", 1 / PS_PER_MS), "B ms-1": ("B s-1", 1000.0)}
_STATE_RESULTS = L.STATE.results()
_TRACE_RESULTS = L.TRACE.results()
_STATE_SLOTS = L.STATE.slots()


def _units(field: L.Field) -> str:
    return _CONVERT.get(field.units, (field.units,))[0]


#: name: (units, long_name, description)
SCALARS = {name: _DERIVED[name] if name in _DERIVED else
           (_units(f := _STATE_RESULTS[name]), f.long_name, f.description) for name in _ORDER}

#: trace variable: (kernel column, scale, units, long_name)
TRACE = {name: (L.TRACE.slots()[f.name], _CONVERT.get(f.units, (f.units, 1.0))[1], _units(f),
                f.long_name)
         for name, f in _TRACE_RESULTS.items() if name != "time"}


def _slot_result(st: np.ndarray, field: L.Field) -> np.ndarray:
    """One state slot as its Dataset variable: a flag as bool, picoseconds as ms
    (NaN where the slot is -1: never happened), the field's dtype."""
    value = st[..., _STATE_SLOTS[field.name]]
    if field.dtype == "bool":
        return value == 1
    if field.units == "ps":
        return np.where(value >= 0, value / PS_PER_MS, np.nan)
    return value.astype(field.dtype) if field.dtype else value


def scalar_results(states: np.ndarray) -> dict:
    """Scalar results by name, in the units of :data:`SCALARS`.

    Parameters
    ----------
    states : ndarray(int64, (..., N_STATE))
        Final kernel states of one run or of many (leading axes kept).
    """
    st = np.asarray(states)
    converged = st[..., L.S_CONVERGED] == 1
    transfer = st[..., L.S_T] / PS_PER_MS - st[..., L.S_SETUP_T] / PS_PER_MS
    nbytes = st[..., L.S_TRANSFERRED]
    with np.errstate(divide="ignore", invalid="ignore"):
        mbps = np.where(transfer > 0, nbytes * 8 / transfer / 1000, 0.0)
    derived = {
        "downtime": np.where(converged, (st[..., L.S_DOWNTIME_END] - st[..., L.S_DOWNTIME_START])
                             / PS_PER_MS, np.nan),
        "remaining": st[..., L.S_DIRTY] * PAGE_SIZE,
        "switchover_pending": np.where(converged, st[..., L.S_SWITCH_PENDING], np.nan),
        "mbps": mbps,
    }
    return {name: derived[name] if name in derived else _slot_result(st, _STATE_RESULTS[name])
            for name in _ORDER}


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
        time = _TRACE_RESULTS["time"]
        coords["time"] = (tdims, traces[..., L.W_TIME],
                          {"units": time.units, "long_name": time.long_name})
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

