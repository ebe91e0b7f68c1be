"""The textbook geometric-series model of precopy, to hold against the simulator.

Round 0 sends all of RAM at bandwidth ``B``; each later round sends what was
dirtied during the previous one, at dirty rate ``R``. Round ``i`` therefore
sends ``M (R/B)^i`` bytes in ``M (R/B)^i / B`` seconds. Like QEMU's test, the
migration switches over once what is pending is below ``B × downtime-limit``.
This assumes every write dirties a new page, the estimate equals the real
bandwidth, and syncs cost nothing: exactly what the simulator does not assume.
"""
from __future__ import annotations

import math

import numpy as np
import xarray as xr


def geometric_precopy(ram_size: float, dirty_rate: float, bandwidth: float,
                      downtime_limit: float, max_rounds: int = 1000) -> dict:
    """Rounds, total time and downtime of precopy under the geometric-series model.

    Parameters
    ----------
    ram_size : float
        Guest RAM. [B]
    dirty_rate : float
        Rate of newly dirtied memory. [B/s]
    bandwidth : float
        Migration bandwidth, the same for the estimate and the final copy. [B/s]
    downtime_limit : float
        QEMU downtime-limit. [ms]
    max_rounds : int
        Give up after this many rounds.

    Returns
    -------
    dict
        ``converges`` (bool), ``rounds`` (precopy rounds before the switchover),
        ``total_time`` [ms], ``downtime`` [ms], ``transferred`` [B]; the times
        are NaN when it does not converge.
    """
    threshold = bandwidth * downtime_limit / 1000
    pending, total, sent = float(ram_size), 0.0, 0.0
    for rounds in range(max_rounds + 1):
        if pending < threshold or pending == 0:
            downtime = pending / bandwidth
            return {"converges": True, "rounds": rounds, "total_time": (total + downtime) * 1e3,
                    "downtime": downtime * 1e3, "transferred": sent + pending}
        duration = pending / bandwidth
        total += duration
        sent += pending
        pending = min(float(ram_size), dirty_rate * duration)
        if dirty_rate >= bandwidth and pending >= threshold:
            break                      # the series no longer shrinks: never converges
    return {"converges": False, "rounds": rounds, "total_time": math.nan,
            "downtime": math.nan, "transferred": math.nan}


def rounds_needed(ram_size: float, dirty_rate: float, bandwidth: float,
                  downtime_limit: float) -> float:
    """Closed form of the number of rounds: ``ceil(log(B d / M) / log(R / B))``.

    Returns
    -------
    float
        Rounds before the switchover; ``inf`` when ``R >= B`` and RAM does not
        fit in one downtime.
    """
    threshold = bandwidth * downtime_limit / 1000
    if ram_size < threshold:
        return 0.0
    ratio = dirty_rate / bandwidth
    if ratio == 0:
        return 1.0
    if ratio >= 1:
        return math.inf
    # pending after round n is M ratio^n; the first n with M ratio^n < threshold
    return float(math.floor(math.log(threshold / ram_size) / math.log(ratio)) + 1)


def geometric_on(ds: xr.Dataset, bandwidth: str = "link") -> xr.Dataset:
    """The geometric-series model at every point of a sweep, for comparison.

    Parameters
    ----------
    ds : xarray.Dataset
        A :func:`toolkit.sweep` result; swept values come from its coordinates,
        fixed ones from its attributes.
    bandwidth : {"link", "estimate"}
        Which bandwidth the model uses: the link, or what the precopy thread
        is held to (``min(link, max_bandwidth)``).

    Returns
    -------
    xarray.Dataset
        ``converges``, ``rounds``, ``total_time`` [ms], ``downtime`` [ms] on the
        dimensions of ``ds``.
    """
    def value(name):
        return ds[name] if name in ds.coords else xr.DataArray(ds.attrs[name])

    link = value("link_bandwidth")
    bw = link
    if bandwidth == "estimate":
        limit = value("max_bandwidth")
        bw = xr.where(limit > 0, np.minimum(link, limit), link)
    fields = ("converges", "rounds", "total_time", "downtime")

    def one(m, r, b, d):
        out = geometric_precopy(float(m), float(r), float(b), float(d))
        return tuple(out[f] for f in fields)

    results = xr.apply_ufunc(one, value("ram_size"), value("dirty_rate"), bw,
                             value("downtime_limit"), vectorize=True,
                             output_core_dims=[[]] * len(fields))
    units = {"converges": "1", "rounds": "1", "total_time": "ms", "downtime": "ms"}
    return xr.Dataset({f: r.assign_attrs(units=units[f], long_name=f"{f} (geometric model)")
                       for f, r in zip(fields, results)})
