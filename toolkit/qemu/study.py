"""The validation study: real QEMU migrations of many kinds of guest, each run several times.

The scenarios are :mod:`toolkit.qemu.grid`'s: the first edition's 16 (a 128 MiB
guest rewriting a 32 MiB range at {5 000, 15 000} pages/s x ``max-bandwidth``
{40, 100} MB/s x ``downtime-limit`` {10, 200} ms x avail {estimate, 5 GB/s})
and the second edition's 26: guests up to 8 GiB, preallocated RAM, zero
writes (paced and at full speed), a scattered order, hot sets below, near and
above the threshold, two avail sweeps through the convergence boundary (20 and
25 MB/s steps), an over-optimistic avail with most of RAM not copied, a first
pass shorter than 100 ms and auto-converge.

Each run keeps its ``query-migrate`` samples, QMP events and both sides' trace
logs (the destination's says when it had loaded everything: the pause the guest
sees ends after QEMU's reported ``downtime``) in ``<out>/runs/<run id>/`` and a
``result.json`` written last (atomically), so an interrupted study resumes where
it stopped and never repeats a finished run. ``python -m toolkit.qemu.study`` runs it end to end.
The runs not done yet need QEMU: ``--install-qemu`` installs it with
``.ci/install-qemu`` first (library code never installs anything). It runs what is not done yet
(each run is bounded by its scenario's time limit plus boot and warm-up: about
6 minutes on 2 cores for the second edition's 78 runs, 4 for the first's 48),
predicts every run (:mod:`toolkit.qemu.validate`, about 4 minutes) and writes
the table to ``datasets/qemu-validation.nc``.

``--multifd`` does the same for multifd's 17 scenarios (:data:`grid.MULTIFD`,
recorded in ``datasets/qemu-multifd``, table ``datasets/qemu-multifd.nc``, about
2 minutes): their calibrations take the ``tcg-loopback`` profile's host as known
and fit multifd's costs alone (:data:`MULTIFD_FITTED`), so that the profile
stays one host.
"""
from __future__ import annotations

import argparse
import itertools
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

from ..hosts import HOST_PARAMETERS, TCG_LOOPBACK
from ..store import save
from . import grid, harness
from .calibrate import FITTED, MULTIFD_FITTED, load_records, scenario_for
from .records import DEFAULT_OUT, GUEST_DEFAULTS, ROOT
from .validate import validate

__all__ = ["DEFAULT_OUT", "GUEST_DEFAULTS", "load_records", "main", "result_record", "run_id",
           "run_study", "scenario_for", "scenarios"]
DEFAULT_TABLE = ROOT / "datasets" / "qemu-validation.nc"
MULTIFD_OUT = ROOT / "datasets" / "qemu-multifd"
MULTIFD_TABLE = ROOT / "datasets" / "qemu-multifd.nc"
REPEATS = 3
TIME_LIMIT = grid.BASE["time_limit"]   # [s] after `migrate`, unless a scenario sets its own
KEPT = ("samples.jsonl", "events.jsonl", "src-trace.log", "dst-trace.log")


def scenarios() -> list[dict]:
    """The study's scenarios (:data:`toolkit.qemu.grid.SCENARIOS`), each with an ``id``."""
    return grid.SCENARIOS


def run_id(scenario: dict, repeat: int) -> str:
    """A run's id: its scenario's id and the repeat, ``"<id>-<repeat>"``."""
    return f"{scenario['id']}-{repeat}"


def result_record(scenario: dict, repeat: int, res: harness.MigrationResult) -> dict:
    """The summary of one run: its settings and what QEMU and the guest reported.

    A cancelled run reports the last ``query-migrate`` sample taken while it was
    still active (the reply after ``migrate_cancel`` has no RAM figures). The
    guest settings of :data:`GUEST_DEFAULTS` come from the result when it has
    them, else from the scenario, else the defaults.
    """
    last = res.final
    if not res.completed:
        active = [s["query-migrate"] for s in res.samples
                  if s["query-migrate"].get("status") == "active"]
        last = active[-1] if active else {}
    ram = last.get("ram", {})
    guest = {k: getattr(res, k, scenario.get(k, default)) for k, default in GUEST_DEFAULTS.items()}
    return {
        "run": run_id(scenario, repeat), "scenario": scenario["id"], "repeat": repeat,
        **{k: v for k, v in scenario.items() if k != "id"},
        **guest,
        "time_limit": scenario.get("time_limit", TIME_LIMIT),   # [s]
        "qemu_version": ".".join(map(str, res.qemu_version)),
        "status": res.status, "completed": res.completed,
        "total_time": last.get("total-time"), "setup_time": last.get("setup-time"),
        "downtime": last.get("downtime"), "dirty_sync_count": ram.get("dirty-sync-count"),
        "transferred": ram.get("transferred"), "downtime_bytes": ram.get("downtime-bytes"),
        "normal_pages": ram.get("normal"), "zero_pages": ram.get("duplicate"),
        "multifd_bytes": ram.get("multifd-bytes"),
        "ram_total": ram.get("total"),
        "warmup_write_rate": res.warmup_write_rate,
        "migration_write_rate": res.migration_write_rate,
    }


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def run_study(out: str | os.PathLike = DEFAULT_OUT, repeats: int = REPEATS,
              only: str | None = None, progress=print,
              scenarios: list | None = None) -> list[dict]:
    """Run every scenario ``repeats`` times (skipping finished runs) and return all records.

    Parameters
    ----------
    out : path
        Study directory; runs go to ``<out>/runs/<run id>/``.
    repeats : int
        Runs per scenario, >= 1.
    only : str, optional
        Run only the scenarios whose id contains this text.
    progress : callable
        Called with one line of text per run.
    scenarios : list of dict, optional
        The scenarios to run (default :func:`scenarios`, the study's; e.g.
        :data:`toolkit.qemu.grid.MULTIFD` into ``datasets/qemu-multifd``).
    """
    if repeats < 1:
        raise ValueError(f"repeats={repeats!r} is out of range: at least 1")
    runs_dir = Path(out) / "runs"
    runs_dir.mkdir(parents=True, exist_ok=True)
    cache = Path(out) / ".guest-cache"
    for repeat, sc in _todo(out, repeats, only, scenarios):
        rid = run_id(sc, repeat)
        scratch = runs_dir / (rid + ".partial")
        shutil.rmtree(scratch, ignore_errors=True)
        t0 = time.monotonic()
        res = harness.run_migration(**grid.harness_kwargs(sc), output_dir=scratch,
                                    guest_cache=cache)
        for path in scratch.iterdir():
            if path.name not in KEPT:
                path.unlink()
        _write_atomic(scratch / "result.json",
                      json.dumps(result_record(sc, repeat, res), indent=1) + "\n")
        final = runs_dir / rid
        shutil.rmtree(final, ignore_errors=True)
        os.replace(scratch, final)
        rec = json.loads((final / "result.json").read_text())
        progress(f"{rid}: {res.status}, total {rec['total_time']} ms, downtime "
                 f"{rec['downtime']} ms, {rec['dirty_sync_count']} syncs "
                 f"({time.monotonic() - t0:.0f} s)")
    return load_records(out)


INSTALL_QEMU = ROOT / ".ci" / "install-qemu"


def qemu_missing() -> str | None:
    """What the study's runs lack on this host (QEMU >= 8.2, nasm), or None."""
    version = harness.qemu_version()
    if version is None or version[:2] < harness.MIN_QEMU_VERSION:
        return f"QEMU {'.'.join(map(str, harness.MIN_QEMU_VERSION))} or newer"
    return None if shutil.which("nasm") else "nasm"


def _todo(out, repeats: int, only: str | None, which=None) -> list[tuple[int, dict]]:
    """(repeat, scenario) of each run not recorded yet (no ``result.json``), in run order,
    of the scenarios ``which`` (default the study's)."""
    return [(r, sc) for r, sc in itertools.product(range(repeats), which or scenarios())
            if not (only and only not in sc["id"])
            and not (Path(out) / "runs" / run_id(sc, r) / "result.json").exists()]


def pending_runs(out, repeats: int = REPEATS, only: str | None = None,
                 scenarios: list | None = None) -> list[str]:
    """The run ids :func:`run_study` would run: those without a ``result.json``."""
    return [run_id(sc, r) for r, sc in _todo(out, repeats, only, scenarios)]


def multifd_known() -> dict:
    """The host the multifd study's calibrations take as known: what the
    ``tcg-loopback`` profile fitted on the study's runs without multifd."""
    return {k: TCG_LOOPBACK[k][0] for k in (*FITTED, "page_send_time")}


def validate_multifd(records: list, **kwargs):
    """:func:`toolkit.qemu.validate.validate` for the multifd runs (see the module)."""
    return validate(records, fit=MULTIFD_FITTED, known=multifd_known(),
                    title="the multifd study", **kwargs)


def main(argv=None) -> int:
    """``python -m toolkit.qemu.study``: run what is missing, then write the table."""
    parser = argparse.ArgumentParser(prog="python -m toolkit.qemu.study",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--multifd", action="store_true",
                        help="multifd's scenarios (toolkit.qemu.grid.MULTIFD) instead; "
                             f"defaults --out {MULTIFD_OUT.relative_to(ROOT)}, --table "
                             f"{MULTIFD_TABLE.relative_to(ROOT)}")
    parser.add_argument("--out", help=f"study directory (default "
                                      f"{DEFAULT_OUT.relative_to(ROOT)})")
    parser.add_argument("--repeats", type=int, default=REPEATS, help="runs per scenario")
    parser.add_argument("--only", help="only the scenarios whose id contains this text")
    parser.add_argument("--install-qemu", action="store_true",
                        help=f"install QEMU and nasm first with {INSTALL_QEMU} (apt-get, as "
                             "root or with sudo)")
    parser.add_argument("--table", help="where the validation table goes (NetCDF; default "
                                         f"{DEFAULT_TABLE.relative_to(ROOT)})")
    args = parser.parse_args(argv)
    which = grid.MULTIFD if args.multifd else None
    args.out = args.out or str(MULTIFD_OUT if args.multifd else DEFAULT_OUT)
    args.table = args.table or str(MULTIFD_TABLE if args.multifd else DEFAULT_TABLE)
    if args.install_qemu:
        subprocess.run([str(INSTALL_QEMU)], check=True)
    todo = pending_runs(args.out, args.repeats, args.only, which)
    missing = qemu_missing() if todo else None
    if missing:
        print(f"python -m toolkit.qemu.study: {len(todo)} runs to do need {missing}, not found: "
              f"install it with {INSTALL_QEMU} (or rerun with --install-qemu)", file=sys.stderr)
        return 2
    t0 = time.monotonic()
    records = run_study(args.out, args.repeats, args.only, scenarios=which)
    print(f"{len(records)} runs in {args.out} ({time.monotonic() - t0:.0f} s for the runs "
          "not recorded yet)")
    t0 = time.monotonic()
    table = validate_multifd(records) if args.multifd else validate(records)
    save(table, args.table)
    print(f"wrote {args.table} ({time.monotonic() - t0:.0f} s for the table)")
    for k, v in table.attrs.items():
        if k.startswith("score_"):
            print(f"  {k[6:]:44s} {v:.3g}")
    name = "TCG_LOOPBACK_MULTIFD" if args.multifd else "TCG_LOOPBACK"
    print(f"toolkit/hosts.py {name} from this calibration (value, standard error):")
    print(profile_block(table, MULTIFD_FITTED if args.multifd else None))
    return 0


def profile_block(table, names=None) -> str:
    """The ``TCG_LOOPBACK`` block of :mod:`toolkit.hosts` for a validation table's
    calibration (NaN error: not identified or not fitted); with ``names``, those
    inputs only (the ``TCG_LOOPBACK_MULTIFD`` block)."""
    values = dict(zip(table.input.values, table.calibrated_value.values))
    errors = dict(zip(table.input.values, table.calibrated_error.values))
    lines = []
    for k in HOST_PARAMETERS:
        if k in values and (names is None or k in names):
            err = float(errors[k])
            text = "math.nan" if err != err else f"{err:.3g}"
            lines.append(f'    "{k}": ({float(values[k]):.6g}, {text}),')
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
