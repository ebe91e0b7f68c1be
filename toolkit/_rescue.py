"""Does a user-set avail-switchover-bandwidth rescue a migration, or make it overshoot?

:func:`rescue` reads a sweep with an ``avail_switchover_bandwidth`` dimension
that includes ``"estimate"`` (0: QEMU's own estimate) and classifies every
point and setting, and finds the range of safe values per point.

The module is private (``tk.rescue`` is the function); :data:`CLASSES` and
:data:`CLASS_HELP` are public as ``toolkit.RESCUE_CLASSES`` and
``toolkit.RESCUE_CLASS_HELP``.
"""
from __future__ import annotations

import numpy as np
import xarray as xr

from .verdict import Verdict, downtime_limit, verdict_codes, within_limit

AVAIL = "avail_switchover_bandwidth"
#: The classes in code order (``rescue_class`` indexes this tuple).
CLASSES = ("converges_anyway", "rescued", "overshoots", "lost", "broken", "not_finished")
#: Classes the baseline (QEMU's estimate) can have: it is what the others are compared with.
BASELINE_CLASSES = ("converges_anyway", "overshoots", "lost", "not_finished")
CLASS_HELP = {
    "converges_anyway": "converges with QEMU's estimate, and with this setting within the limit",
    "rescued": "does not converge with the estimate; converges with this setting within the limit",
    "overshoots": "converges with this setting, but the real downtime exceeds downtime-limit",
    "lost": "converges neither with the estimate nor with this setting",
    "broken": "converges with the estimate but not with this setting",
    "not_finished": "the first pass had not ended at max_time with this setting: no verdict "
                    "yet (a longer max_time decides)",
}


def avail_values(ds: xr.Dataset) -> xr.DataArray:
    """avail-switchover-bandwidth at every point, in B/s (labels such as "2x link" resolved)."""
    if f"{AVAIL}_value" in ds:
        return ds[f"{AVAIL}_value"]
    return ds[AVAIL].astype(float)


#: The per-point variables of :func:`rescue` that :func:`merge_rescue` adds to a sweep.
MERGED = ("rescue_class", "overshoot", "smallest_converging_avail", "largest_safe_avail")


def _not_a_rescue_sweep(ds: xr.Dataset) -> str:
    """Why :func:`rescue` cannot classify ``ds``, or "" if it can."""
    if AVAIL not in ds.dims:
        return f"rescue needs a sweep over {AVAIL}, e.g. {AVAIL}=['estimate', 'link', '2x link']"
    values = avail_values(ds)
    if not bool((values == 0).all([d for d in values.dims if d != AVAIL]).any()):
        return f"rescue needs 'estimate' (0) among the {AVAIL} values, to compare with"
    return ""


def is_rescue_sweep(ds: xr.Dataset) -> bool:
    """Whether ``ds`` sweeps avail-switchover-bandwidth, QEMU's estimate (0) included."""
    return not _not_a_rescue_sweep(ds)


def classify(ds: xr.Dataset) -> xr.DataArray:
    """Class of every point and avail setting, as codes into :data:`CLASSES`."""
    why = _not_a_rescue_sweep(ds)
    if why:
        raise ValueError(why)
    values = avail_values(ds)
    is_estimate = (values == 0).all([d for d in values.dims if d != AVAIL])
    base = ds.converged.isel({AVAIL: int(np.argmax(is_estimate.values))})
    conv = ds.converged
    within = within_limit(conv, ds.downtime, downtime_limit(ds))
    code = xr.where(base & within, 0,
                    xr.where(~base & within, 1,
                             xr.where(conv & ~within, 2,
                                      xr.where(~base & ~conv, 3, 4))))
    if "passes" in ds:      # older datasets lack it: their unfinished runs stay "lost"
        unfinished = verdict_codes(conv, ds.downtime, downtime_limit(ds), ds.passes) == \
            Verdict.NOT_FINISHED
        code = xr.where(unfinished, CLASSES.index("not_finished"), code)
    code = code.astype(np.int8).transpose(*ds.converged.dims)
    code.attrs = {"units": "1", "long_name": "rescue class",
                  "flag_values": np.arange(len(CLASSES), dtype=np.int8),
                  "flag_meanings": " ".join(CLASSES),
                  "description": "; ".join(f"{k}: {v}" for k, v in CLASS_HELP.items())}
    return code


def rescue(ds: xr.Dataset) -> xr.Dataset:
    """Classify each point of a sweep and find the safe avail-switchover-bandwidth values.

    Parameters
    ----------
    ds : xarray.Dataset
        A :func:`toolkit.sweep` result with an ``avail_switchover_bandwidth``
        dimension that includes ``"estimate"`` (or 0).

    Returns
    -------
    xarray.Dataset
        ``rescue_class`` (codes into :data:`CLASSES`, CF flag attributes),
        ``overshoot`` [ms] where the downtime exceeds the limit, and, per point
        without the avail dimension, ``smallest_converging_avail`` [B/s] and
        ``largest_safe_avail`` [B/s] (NaN where no swept value qualifies).
    """
    code = classify(ds)
    values = avail_values(ds)
    user = values > 0
    limit = downtime_limit(ds)
    within = within_limit(ds.converged, ds.downtime, limit)
    overshoot = (ds.downtime - limit).where(ds.converged & ~within)
    smallest = values.where(user & ds.converged).min(AVAIL)
    largest = values.where(user & within).max(AVAIL)
    out = xr.Dataset({
        "rescue_class": code,
        "overshoot": overshoot.assign_attrs(
            units="ms", long_name="downtime beyond downtime-limit",
            description="real downtime minus downtime-limit where it overshoots; else NaN"),
        "smallest_converging_avail": smallest.assign_attrs(
            units="B s-1", long_name="smallest avail-switchover-bandwidth that converges",
            description="among the swept user-set values; NaN if none converges"),
        "largest_safe_avail": largest.assign_attrs(
            units="B s-1", long_name="largest avail-switchover-bandwidth within the limit",
            description="among the swept user-set values, the largest that converges with "
                        "the real downtime within downtime-limit; NaN if none"),
    }, attrs=dict(ds.attrs))
    out.attrs["title"] = "Rescue analysis of avail-switchover-bandwidth"
    return out


def merge_rescue(ds: xr.Dataset) -> xr.Dataset:
    """A sweep with its rescue analysis added, as ``python -m toolkit sweep`` saves it.

    Parameters
    ----------
    ds : xarray.Dataset
        A :func:`toolkit.sweep` result over ``avail_switchover_bandwidth``,
        ``"estimate"`` (or 0) included.

    Returns
    -------
    xarray.Dataset
        ``ds`` (its attributes kept) plus :func:`rescue`'s ``rescue_class``,
        ``overshoot`` [ms], ``smallest_converging_avail`` [B/s] and
        ``largest_safe_avail`` [B/s]; :func:`class_counts` and
        :func:`toolkit.plot.rescue_map` read it as they read :func:`rescue`'s output.

    Raises
    ------
    ValueError
        ``ds`` does not sweep avail-switchover-bandwidth with the estimate.
    """
    return ds.merge(rescue(ds)[list(MERGED)])


def class_counts(res: xr.Dataset) -> dict:
    """Number of points in each class, by class name."""
    codes = res["rescue_class"].values.ravel()
    return {name: int((codes == i).sum()) for i, name in enumerate(CLASSES)}


def class_counts_by_setting(res: xr.Dataset) -> dict:
    """Number of points in each class, per avail-switchover-bandwidth setting.

    Returns
    -------
    dict
        ``{setting: {class: count}}``, settings as the coordinate holds them
        (labels such as ``"2x link"``, or B/s). The baseline (``"estimate"``, 0)
        has only :data:`BASELINE_CLASSES`: it cannot rescue or break itself.
    """
    code = res["rescue_class"]
    out = {}
    for i, setting in enumerate(code[AVAIL].values.tolist()):
        codes = code.isel({AVAIL: i}).values.ravel()
        names = BASELINE_CLASSES if setting in ("estimate", 0) else CLASSES
        out[setting] = {name: int((codes == CLASSES.index(name)).sum()) for name in names}
    return out
