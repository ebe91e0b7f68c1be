"""How well the simulator predicts real QEMU: the validation study's table.

Every run of the study (:mod:`toolkit.qemu.study`) is predicted from its
settings alone, by a simulator calibrated on the runs of the *other*
scenarios (leave one scenario out, so neither the run nor its repeats inform
its own prediction). The same runs are predicted by two baselines fed the same
calibrated host (:mod:`toolkit.baselines`): the textbook geometric series and
a SimGrid-style per-round model. :func:`validate` returns one row per run with
what QEMU reported and what each model predicted, plus the calibration on all
runs; :func:`scores` reduces a model's predictions to the study's targets, per
run or with each scenario counted once; :func:`boundaries` checks where each
avail sweep's convergence boundary falls.
"""
from __future__ import annotations

import math
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import xarray as xr

from .. import baselines
from .._version import __version__
from .._simulate import simulate
from .calibrate import MULTIFD_FITTED, UNITS, calibrate, load_records, predicted_scenario
from .records import DEFAULT_OUT

#: Compared quantities: name -> (units, long name).
COMPARED = {
    "converged": ("1", "converged (completed before the time limit)"),
    "total_time": ("ms", "total time (to the time limit if not converged)"),
    "downtime": ("ms", "downtime"),
    "dirty_sync_count": ("1", "dirty-sync-count"),
    "transferred": ("B", "bytes transferred"),
}
#: The models scored, by the prefix of their variables.
MODELS = {"sim": "the page-level simulator (toolkit.simulate)",
          "geometric": "the geometric-series model (toolkit.baselines.geometric)",
          "simgrid": "a SimGrid-style per-round model (toolkit.baselines.simgrid)"}
SETTINGS = {"ram_mib": ("MiB", "guest RAM"), "pages": ("pages", "dirtied range"),
            "rate": ("pages s-1", "guest pace asked (0: full speed)"),
            "zero_every": ("1", "every k-th write zeroes its page (0: data writes only)"),
            "stride": ("pages", "the guest's cursor step"),
            "prealloc": ("1", "-mem-prealloc on both sides"),
            "max_bandwidth": ("B s-1", "max-bandwidth"),
            "downtime_limit": ("ms", "downtime-limit"),
            "avail_switchover_bandwidth": ("B s-1", "avail-switchover-bandwidth (0 = estimate)"),
            "auto_converge": ("1", "capability auto-converge")}
#: Targets of the study: score name -> (comparison, bound).
TARGETS = {"verdict_agreement": (">=", 0.98), "median_total_time_error": ("<=", 0.05),
           "sync_count_exact": (">=", 0.80), "downtime_within": (">=", 0.80)}
DOWNTIME_TOLERANCE = (0.20, 5.0)   # within 20 % or 5 ms


def load_study(out: str | Path = DEFAULT_OUT) -> list:
    """Every finished run of a study directory, by run id (:func:`load_records`)."""
    records = load_records(out)
    if not records:
        raise FileNotFoundError(f"no finished run in {Path(out) / 'runs'}: run "
                                "`python -m toolkit.qemu.study` first")
    return records


def _real(record) -> dict:
    done = bool(record["completed"])
    return {"converged": done, "total_time": float(record["total_time"]),
            "downtime": float(record["downtime"]) if done else math.nan,
            "dirty_sync_count": float(record["dirty_sync_count"]),
            "transferred": float(record["transferred"])}


def _simulated(ds: xr.Dataset) -> dict:
    return {"converged": bool(ds.converged), "total_time": float(ds.total_time),
            "downtime": float(ds.downtime), "dirty_sync_count": float(ds.dirty_sync_count),
            "transferred": float(ds.transferred)}


def _baseline(model, sc) -> dict:
    out = model(sc)
    return {k: float(out[k]) if k != "converged" else bool(out[k]) for k in COMPARED}


def _predict_left_out(args) -> dict:
    """Calibrate on the other scenarios' runs, predict this scenario's runs with
    the simulator and both baselines (one task of :func:`validate`)."""
    sid, records, start, fit, known = args
    cal = calibrate([r for r in records if r["scenario"] != sid], bootstrap=0, start=start,
                    fit=fit, known=known)
    rows = {}
    for r in records:
        if r["scenario"] == sid:
            sc = predicted_scenario(r, cal)
            rows[r["run"]] = {"real": _real(r), "sim": _simulated(simulate(sc)),
                              "geometric": _baseline(baselines.geometric, sc),
                              "simgrid": _baseline(baselines.simgrid, sc)}
    return rows


def validate(records: list, bootstrap: int = 4, workers: int = 2, fit=None,
             known: dict | None = None, title: str = "the validation study") -> xr.Dataset:
    """Predict each run from a calibration on the other scenarios' runs.

    Parameters
    ----------
    records : list
        The study's runs (:func:`load_study`).
    bootstrap : int
        Resamples for the errors of the calibration on all runs.
    workers : int
        Processes for the leave-one-scenario-out calibrations (1: in this process).
    fit, known : optional
        What the calibrations fit and what they take as known
        (:func:`toolkit.qemu.calibrate.calibrate`; default: its own).
    title : str
        What the table is, for its ``title``.

    Returns
    -------
    xarray.Dataset
        Along ``run``: the settings, ``real_<q>`` and ``<model>_<q>`` for each
        compared quantity ``q`` (``COMPARED``) and model (``MODELS``), the
        guest's measured write rate, the scenario, its family and sweep; along
        ``input``: the calibration on all runs (value, error, units, whether
        identified); ``score_*`` attributes (:func:`scores`, :func:`boundaries`).
    """
    scenario_ids = sorted({r["scenario"] for r in records})
    full = calibrate(records, bootstrap=bootstrap, fit=fit, known=known)
    # each left-out calibration starts from the one on all runs and refits near it what
    # that one identified (fewer runs do not tell apart what all runs do not)
    refit = [k for k in full.fitted if full.identified[k]]
    fixed = {**(known or {}), **{k: full.values[k] for k in full.fitted
                                 if not full.identified[k]}}
    tasks = [(sid, records, full.values, refit, fixed) for sid in scenario_ids]
    if workers > 1:
        with ProcessPoolExecutor(workers) as pool:
            parts = list(pool.map(_predict_left_out, tasks))
    else:
        parts = [_predict_left_out(t) for t in tasks]
    rows = {k: v for part in parts for k, v in part.items()}
    runs = [r["run"] for r in records]
    data = {}
    for q, (units, name) in COMPARED.items():
        values = np.array([rows[run]["real"][q] for run in runs])
        data[f"real_{q}"] = ("run", values, {"units": units, "long_name": f"{name}, QEMU"})
        for model, what in MODELS.items():
            values = np.array([rows[run][model][q] for run in runs])
            data[f"{model}_{q}"] = ("run", values, {"units": units,
                                                    "long_name": f"{name}, {what}"})
    rates = [r.get("migration_write_rate") for r in records]
    data["migration_write_rate"] = ("run", np.array([np.nan if x is None else x for x in rates]),
                                    {"units": "pages s-1",
                                     "long_name": "guest writes during the migration "
                                                  "(its counter)"})
    coords = {"run": ("run", runs, {"units": "1", "long_name": "run id"}),
              "scenario": ("run", [r["scenario"] for r in records],
                           {"units": "1", "long_name": "scenario id"}),
              "family": ("run", [r.get("family") or "first edition" for r in records],
                         {"units": "1", "long_name": "what the scenario is there to test"}),
              "sweep": ("run", [r.get("sweep") or "" for r in records],
                        {"units": "1", "long_name": "avail sweep the scenario belongs to"}),
              "repeat": ("run", [r["repeat"] for r in records],
                         {"units": "1", "long_name": "repeat of the scenario"})}
    for k, (units, name) in SETTINGS.items():
        values = [r.get(k) for r in records]
        values = [0 if v is None else (int(v) if isinstance(v, bool) else v) for v in values]
        coords[k] = ("run", np.array(values, dtype=float), {"units": units, "long_name": name})
    # multifd's costs only where fitted: the runs without multifd do not show them
    names = [k for k in UNITS if k not in MULTIFD_FITTED or k in full.fitted]
    data["calibrated_value"] = ("input", [full.values[k] for k in names],
                                {"long_name": "host input calibrated on all runs",
                                 "units": "see input_units"})
    data["calibrated_error"] = ("input", [full.errors.get(k, math.nan) for k in names],
                                {"long_name": "its standard error (NaN: not identified)",
                                 "units": "see input_units"})
    data["calibrated_identified"] = ("input", [bool(full.identified.get(k, False))
                                               for k in names],
                                     {"long_name": "the runs determine it", "units": "1"})
    coords["input"] = ("input", names, {"units": "1", "long_name": "calibrated host input"})
    coords["input_units"] = ("input", [UNITS[k] for k in names],
                             {"units": "1", "long_name": "units of the input"})
    first = records[0]
    attrs = {"title": f"Simulator vs real QEMU: {title}",
             "source": f"switchover-lab {__version__} (toolkit.simulate, leave one scenario "
                       f"out) against QEMU {first['qemu_version']} (recorded, TCG, loopback)",
             "Conventions": "CF-1.10", "scenarios": len(scenario_ids),
             "repeats": int(max(r["repeat"] for r in records)) + 1}
    ds = xr.Dataset(data, coords=coords, attrs=attrs)
    for model in MODELS:
        for by in ("run", "scenario"):
            for k, v in scores(ds, model, by).items():
                ds.attrs[f"score_{model}_{by}_{k}"] = v
        steps = [b["within_one_step"] for b in boundaries(ds, model).values()]
        ds.attrs[f"score_{model}_boundaries_within_one_step"] = \
            float(np.mean(steps)) if steps else math.nan      # NaN: no avail sweep
    return ds


def _by_scenario(ds: xr.Dataset, model: str) -> xr.Dataset:
    """One row per scenario: the verdict of the majority of its runs and, for each
    quantity, the mean over its runs (downtime over the converged ones)."""
    out = {}
    for side in ("real", model):
        out[f"{side}_converged"] = ds[f"{side}_converged"].astype(float).groupby(
            ds.scenario).mean() > 0.5
        for q in ("total_time", "downtime", "dirty_sync_count", "transferred"):
            out[f"{side}_{q}"] = ds[f"{side}_{q}"].groupby(ds.scenario).mean(skipna=True)
    return xr.Dataset(out).rename(scenario="run")


def scores(ds: xr.Dataset, model: str = "sim", by: str = "run") -> dict:
    """A model's scores on the study's targets.

    Parameters
    ----------
    ds : xarray.Dataset
        :func:`validate`'s table.
    model : str
        ``"sim"``, ``"geometric"`` or ``"simgrid"``.
    by : str
        ``"run"`` (every run counts) or ``"scenario"`` (each scenario once: its
        runs' majority verdict and mean figures).

    Returns
    -------
    dict
        ``verdict_agreement`` (share right; target >= 0.98),
        ``median_total_time_error`` (median |model - real| / real over the
        rows converged in both; target <= 0.05), ``sync_count_exact`` (share of
        those with the same dirty-sync-count, rounded for scenario means; target
        >= 0.80), ``downtime_within`` (share whose downtime is within 20 % or
        5 ms; target >= 0.80), ``median_downtime_error``, and the row counts.
    """
    if by == "scenario":
        ds = _by_scenario(ds, model)
    elif by != "run":
        raise ValueError(f"by={by!r}: expected 'run' or 'scenario'")
    real_c = ds.real_converged.values.astype(bool)
    sim_c = ds[f"{model}_converged"].values.astype(bool)
    both = real_c & sim_c

    def values(q):
        return ds[f"real_{q}"].values[both], ds[f"{model}_{q}"].values[both]

    def median_rel(q):
        real, sim = values(q)
        return float(np.median(np.abs(sim - real) / real)) if both.any() else math.nan

    real, sim = values("dirty_sync_count")
    exact = np.round(real) == np.round(sim)
    real_d, sim_d = values("downtime")
    rel, absolute = DOWNTIME_TOLERANCE
    within = (np.abs(sim_d - real_d) <= rel * real_d) | (np.abs(sim_d - real_d) <= absolute)
    return {"rows": int(real_c.size), "converged_in_both": int(both.sum()),
            "verdict_agreement": float(np.mean(real_c == sim_c)),
            "median_total_time_error": median_rel("total_time"),
            "median_downtime_error": median_rel("downtime"),
            "sync_count_exact": float(exact.mean()) if both.any() else math.nan,
            "downtime_within": float(within.mean()) if both.any() else math.nan}


def boundaries(ds: xr.Dataset, model: str = "sim") -> dict:
    """Where each avail sweep starts to converge, in QEMU and in a model.

    Returns
    -------
    dict of str to dict
        By sweep: ``avail`` (the swept values [B/s]), ``real`` and ``model`` (the
        index of the smallest value from which the majority of runs converge at
        every larger value; ``len(avail)`` if none) and ``within_one_step``.
    """
    out = {}
    for name in sorted(set(ds.sweep.values) - {""}):
        part = ds.where(ds.sweep == name, drop=True)
        avail = sorted(set(part.avail_switchover_bandwidth.values))

        def edge(side):
            conv = [float(part[f"{side}_converged"].where(
                part.avail_switchover_bandwidth == a, drop=True).astype(float).mean()) > 0.5
                for a in avail]
            i = len(avail)
            while i > 0 and conv[i - 1]:
                i -= 1
            return i

        real, predicted = edge("real"), edge(model)
        out[name] = {"avail": avail, "real": real, "model": predicted,
                     "within_one_step": abs(real - predicted) <= 1}
    return out


def meets_targets(score: dict) -> dict:
    """Which of :data:`TARGETS` a :func:`scores` result meets."""
    return {k: (score[k] >= bound if op == ">=" else score[k] <= bound)
            for k, (op, bound) in TARGETS.items()}
