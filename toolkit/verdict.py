"""A run's verdict, decided in one place: the CLI's tables, the widgets, the
figures and :func:`toolkit.rescue` all read it here.

Four outcomes. A run *converges* (switched over, downtime within
``downtime-limit``) or *overshoots* (switched over, downtime beyond it); one
that did not switch over by ``max_time`` is *not converging* when it finished
its first pass (QEMU iterated, and pending never got under the threshold), and
*not finished* when ``max_time`` came during the first pass: then nothing is
known yet about convergence, only how far the first pass got.
"""
from __future__ import annotations

import enum

import numpy as np
import xarray as xr

from .constants import PAGE_SIZE
from .units import format_count


class Verdict(enum.IntEnum):
    """A run's outcome; the value is its code in arrays (:func:`verdict_codes`)."""

    CONVERGES = 0
    OVERSHOOTS = 1
    NOT_CONVERGING = 2
    NOT_FINISHED = 3

    @property
    def label(self) -> str:
        """Its words in tables: ``converges``, ``OVERSHOOTS the limit``,
        ``never converges``, ``first pass unfinished``."""
        return _LABELS[self]


_LABELS = {Verdict.CONVERGES: "converges", Verdict.OVERSHOOTS: "OVERSHOOTS the limit",
           Verdict.NOT_CONVERGING: "never converges",
           Verdict.NOT_FINISHED: "first pass unfinished"}


def downtime_limit(ds):
    """downtime-limit [ms] of a result: the coordinate when swept, else the fixed attribute."""
    return ds["downtime_limit"] if "downtime_limit" in ds.coords else ds.attrs["downtime_limit"]


def within_limit(converged, downtime, limit):
    """Switched over with the downtime [ms] within ``limit`` [ms] (elementwise)."""
    return converged & (downtime <= limit)


def verdict_codes(converged, downtime, limit, passes):
    """:class:`Verdict` codes, elementwise (numpy arrays or xarray objects).

    Parameters
    ----------
    converged : bool array
        Switched over before ``max_time``.
    downtime : float array
        Downtime [ms] (NaN where not converged).
    limit : float or array
        ``downtime-limit`` [ms].
    passes : int array
        Completed passes over RAM (``passes`` of a result).
    """
    within = within_limit(converged, downtime, limit)
    codes = np.where(within, Verdict.CONVERGES,
                     np.where(converged, Verdict.OVERSHOOTS,
                              np.where(passes > 0, Verdict.NOT_CONVERGING,
                                       Verdict.NOT_FINISHED)))
    if isinstance(converged, xr.DataArray):     # keep its dims and coords
        return converged.copy(data=codes.astype(np.int8))
    return codes.astype(np.int8)


def verdict(ds) -> Verdict:
    """The :class:`Verdict` of one run (a :func:`toolkit.simulate` result)."""
    limit = float(downtime_limit(ds))
    return Verdict(int(verdict_codes(bool(ds["converged"]), ds["downtime"].item(), limit,
                                     int(ds["passes"]))))


def first_pass_share(ds) -> float:
    """How much of RAM the first pass had covered at the end [0..1] (1 once it finished)."""
    if int(ds["passes"]) > 0:
        return 1.0
    return float(ds["last_page"]) * PAGE_SIZE / float(ds.attrs["ram_size"])


def describe(ds) -> str:
    """One line on a run's outcome.

    Returns
    -------
    str
        e.g. ``"converges in 23.1 s, downtime 151 ms"``, ``"converges but
        OVERSHOOTS the 300 ms limit: downtime 1204 ms"``, ``"never converges
        (111 syncs in 120 s)"`` or ``"first pass not finished: 94% of RAM sent
        after 120 s"``.
    """
    total = ds["total_time"].item() / 1000
    v = verdict(ds)
    if v is Verdict.NOT_FINISHED:
        return (f"first pass not finished: {first_pass_share(ds):.0%} of RAM sent after "
                f"{total:.0f} s (no verdict yet; a longer max_time decides)")
    if v is Verdict.NOT_CONVERGING:
        syncs = format_count(int(ds["dirty_sync_count"]), "sync")
        return f"never converges ({syncs} in {total:.0f} s)"
    down = ds["downtime"].item()
    if v is Verdict.OVERSHOOTS:
        limit = float(downtime_limit(ds))
        return f"converges but OVERSHOOTS the {limit:g} ms limit: downtime {down:.0f} ms"
    return f"converges in {total:.1f} s, downtime {down:.0f} ms"
