"""How well the simulator predicts real QEMU: the validation study's table.

Every run of the study (:mod:`toolkit.qemu.study`) is predicted from its
settings alone, by a simulator calibrated on the runs of the *other*
scenarios (leave one scenario out, so neither the run nor its repeats inform
its own prediction). :func:`validate` returns one row per run with what QEMU
reported and what the simulator predicted, and the calibration on all runs;
:func:`scores` reduces it to the study's targets.
"""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import xarray as xr

from .. import __version__
from .calibrate import FITTED, MEASURED, UNITS, calibrate, predict
from .study import DEFAULT_OUT, load_records

#: Compared quantities: name -> (units, long name).
COMPARED = {
    "converged": ("1", "converged (completed before the time limit)"),
    "total_time": ("ms", "total time (to the time limit if not converged)"),
    "downtime": ("ms", "downtime"),
    "dirty_sync_count": ("1", "dirty-sync-count"),
    "transferred": ("B", "bytes transferred"),
}
SETTINGS = {"rate": ("pages s-1", "guest pace asked"),
            "max_bandwidth": ("B s-1", "max-bandwidth"),
            "downtime_limit": ("ms", "downtime-limit"),
            "avail_switchover_bandwidth": ("B s-1", "avail-switchover-bandwidth (0 = estimate)")}


def load_study(out: str | Path = DEFAULT_OUT) -> list[dict]:
    """Every finished run of a study directory, by run id (:func:`load_records`)."""
    records = load_records(out)
    if not records:
        raise FileNotFoundError(f"no finished run in {Path(out) / 'runs'}: run "
                                "`python -m toolkit.qemu.study` first")
    return records


def _real(record: dict) -> dict:
    return {"converged": bool(record["completed"]),
            "total_time": float(record["total_time"]),
            "downtime": float(record["downtime"]) if record["completed"] else math.nan,
            "dirty_sync_count": float(record["dirty_sync_count"]),
            "transferred": float(record["transferred"])}


def _simulated(ds: xr.Dataset) -> dict:
    return {"converged": bool(ds.converged), "total_time": float(ds.total_time),
            "downtime": float(ds.downtime), "dirty_sync_count": float(ds.dirty_sync_count),
            "transferred": float(ds.transferred)}


def validate(records: list[dict], bootstrap: int = 8) -> xr.Dataset:
    """Predict each run from a calibration on the other scenarios' runs.

    Parameters
    ----------
    records : list of dict
        The study's runs (:func:`load_study`).
    bootstrap : int
        Resamples for the errors of the calibration on all runs.

    Returns
    -------
    xarray.Dataset
        Along ``run``: the settings, ``real_<q>`` and ``sim_<q>`` for each
        compared quantity ``q`` (``COMPARED``), the guest's measured write
        rate; along ``input``: the calibration on all runs (value, error, units).
    """
    scenario_ids = sorted({r["scenario"] for r in records})
    rows = {}
    for sid in scenario_ids:
        cal = calibrate([r for r in records if r["scenario"] != sid], bootstrap=0)
        for r in records:
            if r["scenario"] == sid:
                rows[r["run"]] = (_real(r), _simulated(predict(r, cal)))
    runs = [r["run"] for r in records]
    data = {}
    for q, (units, name) in COMPARED.items():
        for side, idx in (("real", 0), ("sim", 1)):
            values = np.array([rows[run][idx][q] for run in runs])
            data[f"{side}_{q}"] = ("run", values, {
                "units": units, "long_name": f"{name}, {'QEMU' if side == 'real' else 'simulated'}"})
    data["migration_write_rate"] = ("run", np.array([r["migration_write_rate"] for r in records]),
                                    {"units": "pages s-1",
                                     "long_name": "guest writes during the migration (its counter)"})
    coords = {"run": ("run", runs, {"units": "1", "long_name": "run id"}),
              "scenario": ("run", [r["scenario"] for r in records],
                           {"units": "1", "long_name": "scenario id"}),
              "repeat": ("run", [r["repeat"] for r in records],
                         {"units": "1", "long_name": "repeat of the scenario"})}
    for k, (units, name) in SETTINGS.items():
        coords[k] = ("run", np.array([r[k] for r in records]), {"units": units, "long_name": name})
    full = calibrate(records, bootstrap=bootstrap)
    names = [*MEASURED, *FITTED]
    data["calibrated_value"] = ("input", [full.values[k] for k in names],
                                {"long_name": "host input calibrated on all runs",
                                 "units": "see input_units"})
    data["calibrated_error"] = ("input", [full.errors[k] for k in names],
                                {"long_name": "its standard error", "units": "see input_units"})
    coords["input"] = ("input", names, {"units": "1", "long_name": "calibrated host input"})
    coords["input_units"] = ("input", [UNITS[k] for k in names],
                             {"units": "1", "long_name": "units of the input"})
    first = records[0]
    attrs = {"title": "Simulator vs real QEMU: the validation study",
             "source": f"switchover-lab {__version__} (toolkit.simulate, leave one scenario "
                       f"out) against QEMU {first['qemu_version']} (recorded, TCG, loopback)",
             "Conventions": "CF-1.10",
             "ram_mib": first["ram_mib"], "start_page": first["start_page"],
             "pages": first["pages"], "pattern": first["pattern"],
             "time_limit_s": first["time_limit"], "repeats": int(max(r["repeat"] for r in records)) + 1}
    ds = xr.Dataset(data, coords=coords, attrs=attrs)
    ds.attrs.update({f"score_{k}": v for k, v in scores(ds).items()})
    return ds


def scores(ds: xr.Dataset) -> dict:
    """The study's targets.

    Returns
    -------
    dict
        ``verdict_agreement`` (fraction of runs whose converged/not verdict is
        right; target >= 0.95), ``median_total_time_error`` (median of
        |sim - real| / real over runs that converged in both; target <= 0.10),
        ``sync_count_exact`` (fraction of runs converged in both whose
        dirty-sync-count is exact; target >= 0.80), ``median_downtime_error``
        (as for total time) and the run counts behind them.
    """
    real_c, sim_c = ds.real_converged.values.astype(bool), ds.sim_converged.values.astype(bool)
    both = real_c & sim_c

    def rel(q):
        real, sim = ds[f"real_{q}"].values[both], ds[f"sim_{q}"].values[both]
        return float(np.median(np.abs(sim - real) / real)) if both.any() else math.nan

    exact = ds.real_dirty_sync_count.values[both] == ds.sim_dirty_sync_count.values[both]
    return {"runs": int(real_c.size), "converged_in_both": int(both.sum()),
            "verdict_agreement": float(np.mean(real_c == sim_c)),
            "median_total_time_error": rel("total_time"),
            "median_downtime_error": rel("downtime"),
            "sync_count_exact": float(exact.mean()) if both.any() else math.nan}
