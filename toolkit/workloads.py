"""Workloads from measurements: a guest's dirty-pages-versus-time curve.

QEMU's ``calc-dirty-rate`` (and the 2023 qemu-devel migration-prediction
series) sample how many distinct pages a guest dirties within a time ``t``
after the dirty log is cleared; the curve rises with the write rate and
saturates at the working set. :func:`fit_dirty_curve` fits the simplest model
that saturates, uniform writes at ``r`` pages/s over a working set of ``W``
pages, ``D(t) = W (1 - exp(-r t / W))``, and returns Scenario parameters that
write exactly so (a ``hotcold`` guest whose hot set is the working set and takes
every write), so a measured guest can be simulated and swept.
"""
from __future__ import annotations

import math

import numpy as np

from .scenario import PAGE_SIZE
from .units import parse_size


def dirty_curve(t_s, working_set: float, rate: float) -> np.ndarray:
    """``W (1 - exp(-r t / W))``: distinct pages after ``t_s`` [s] of uniform writes at
    ``rate`` [pages/s] over ``working_set`` [pages]."""
    t = np.asarray(t_s, dtype=float)
    return working_set * -np.expm1(-rate * t / working_set)


def _golden(f, lo: float, hi: float, steps: int = 60) -> float:
    ratio = (math.sqrt(5) - 1) / 2
    c, d = hi - ratio * (hi - lo), lo + ratio * (hi - lo)
    fc, fd = f(c), f(d)
    for _ in range(steps):
        if fc <= fd:
            hi, d, fd = d, c, fc
            c = hi - ratio * (hi - lo)
            fc = f(c)
        else:
            lo, c, fc = c, d, fd
            d = lo + ratio * (hi - lo)
            fd = f(d)
    return (lo + hi) / 2


def fit_dirty_curve(t_s, dirty_pages, ram_size) -> dict:
    """Fit ``W (1 - exp(-r t / W))`` to a measured curve and give Scenario parameters.

    Parameters
    ----------
    t_s : array_like
        Times since the dirty log was cleared [s], > 0.
    dirty_pages : array_like
        Distinct pages dirtied by then [pages], >= 0 and not decreasing.
    ram_size : int or str
        Guest RAM [B] (strings with units allowed).

    Returns
    -------
    dict
        ``workload``, ``hot_fraction``, ``hot_share``, ``dirty_rate`` [B/s] (or
        ``workload="uniform"`` when the working set is all of RAM) for
        :class:`toolkit.Scenario`, plus ``working_set`` [pages], ``rate``
        [pages/s] and ``rms_error`` [pages] of the fit.

    Raises
    ------
    ValueError
        Curves of different lengths, fewer than 2 points, non-positive times,
        negative or decreasing page counts.
    """
    t = np.asarray(t_s, dtype=float)
    d = np.asarray(dirty_pages, dtype=float)
    ram = parse_size(ram_size, "ram_size")
    n_pages = ram // PAGE_SIZE
    if t.shape != d.shape or t.ndim != 1 or t.size < 2:
        raise ValueError(f"fit_dirty_curve: t_s and dirty_pages must be 1-D of the same length "
                         f">= 2, got shapes {t.shape} and {d.shape}")
    if not np.all(np.isfinite(t)) or np.any(t <= 0):
        raise ValueError(f"fit_dirty_curve: t_s must be finite and > 0 s, got {t.tolist()}")
    if np.any(d < 0) or np.any(np.diff(d[np.argsort(t)]) < 0) or d.max() == 0:
        raise ValueError("fit_dirty_curve: dirty_pages must be >= 0, not decreasing with time, "
                         f"and not all 0; got {d.tolist()}")
    if d.max() > n_pages:
        raise ValueError(f"fit_dirty_curve: {d.max():.0f} dirty pages exceed the "
                         f"{n_pages} pages of ram_size={ram_size!r}")

    def best_rate(log_w):
        w = math.exp(log_w)
        # the initial slope bounds the rate from below; search a wide bracket around it
        slope = max(d / t)
        r = math.exp(_golden(lambda x: float(np.sum((dirty_curve(t, w, math.exp(x)) - d) ** 2)),
                             math.log(slope / 4), math.log(slope * 1e3)))
        return r, float(np.sum((dirty_curve(t, w, r) - d) ** 2))

    log_w = _golden(lambda x: best_rate(x)[1], math.log(d.max()), math.log(n_pages), steps=50)
    working_set = math.exp(log_w)
    rate, sse = best_rate(log_w)
    out = {"working_set": working_set, "rate": rate,
           "rms_error": math.sqrt(sse / t.size), "dirty_rate": rate * PAGE_SIZE}
    hot = round(working_set)
    if hot >= n_pages:
        out["workload"] = "uniform"
    else:
        out.update(workload="hotcold", hot_fraction=hot / n_pages, hot_share=1.0)
    return out
