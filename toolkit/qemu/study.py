"""The validation study: a grid of real QEMU migrations, each run several times.

16 scenarios: guest dirty pace {5 000, 15 000} pages/s over a 32 MiB range
(sequential) x ``max-bandwidth`` {40, 100} MB/s x ``downtime-limit``
{10, 200} ms x ``avail-switchover-bandwidth`` {0 (QEMU's estimate), 5 GB/s},
on a 128 MiB guest. The grid holds migrations that converge with the estimate,
ones that never do (15 000 pages/s = 61 MB/s over a 40 MB/s limit) and are
rescued by the user-set value, and ones where that value is too high for a
10 ms limit: the switchover comes right after the first pass with ~32 MiB
still dirty, more than loopback moves in 10 ms. The user-set value is far
from the knife edge on purpose: with 2 GB/s and 10 ms (a 20 MB threshold
against ~33 MB dirty) the same scenario converged in one trial and not in the
next.

Each run keeps its ``query-migrate`` samples, QMP events and the source's
trace log in ``<out>/runs/<run id>/`` and a ``result.json`` written last
(atomically), so an interrupted study resumes where it stopped and never
repeats a finished run. ``python -m toolkit.qemu.study`` runs it end to end:
installs QEMU with ``.ci/install-qemu`` if missing, runs what is not done yet
(about 4 minutes on 2 cores for all 48 runs: each is bounded by its 8 s time
limit plus boot), predicts every run (:mod:`toolkit.qemu.validate`) and writes
the table to ``datasets/qemu-validation.nc``.
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

from . import harness
from .calibrate import load_run

ROOT = Path(__file__).resolve().parents[2]
DEFAULT_OUT = ROOT / "datasets" / "qemu-validation"
DEFAULT_TABLE = ROOT / "datasets" / "qemu-validation.nc"

#: What every run of the study shares (``run_migration`` keywords).
FIXED = dict(ram_mib=128, start_page=256, pages=8192, pattern="sequential", warmup=2.0,
             sample_interval=0.1)
#: The swept settings, in this order: guest pace [pages/s], max-bandwidth [B/s],
#: downtime-limit [ms], avail-switchover-bandwidth [B/s].
GRID = {
    "rate": [5_000, 15_000],
    "max_bandwidth": [40_000_000, 100_000_000],
    "downtime_limit": [10, 200],
    "avail_switchover_bandwidth": [0, 5_000_000_000],
}
REPEATS = 3
TIME_LIMIT = 8.0          # [s] after `migrate`: the runs that do not converge are cancelled
KEPT = ("samples.jsonl", "events.jsonl", "src-trace.log")


def scenarios() -> list[dict]:
    """The study's scenarios: ``FIXED`` plus one combination of ``GRID`` each, with an id."""
    out = []
    for values in itertools.product(*GRID.values()):
        sc = dict(zip(GRID, values))
        sc["id"] = "r{rate}-bw{mb}-dl{downtime_limit}-avail{avail}".format(
            mb=sc["max_bandwidth"] // 1_000_000,
            avail=sc["avail_switchover_bandwidth"] // 1_000_000, **sc)
        out.append({**FIXED, **sc})
    return out


def run_id(scenario: dict, repeat: int) -> str:
    return f"{scenario['id']}-{repeat}"


def result_record(scenario: dict, repeat: int, res: harness.MigrationResult) -> dict:
    """The summary of one run: its settings and what QEMU and the guest reported.

    A cancelled run reports the last ``query-migrate`` sample taken while it was
    still active (the reply after ``migrate_cancel`` has no RAM figures).
    """
    last = res.final
    if not res.completed:
        active = [s["query-migrate"] for s in res.samples
                  if s["query-migrate"].get("status") == "active"]
        last = active[-1] if active else {}
    ram = last.get("ram", {})
    return {
        "run": run_id(scenario, repeat), "scenario": scenario["id"], "repeat": repeat,
        **{k: v for k, v in scenario.items() if k != "id"},
        "time_limit": TIME_LIMIT,   # [s]
        "qemu_version": ".".join(map(str, res.qemu_version)),
        "status": res.status, "completed": res.completed,
        "total_time": last.get("total-time"), "setup_time": last.get("setup-time"),
        "downtime": last.get("downtime"), "dirty_sync_count": ram.get("dirty-sync-count"),
        "transferred": ram.get("transferred"), "downtime_bytes": ram.get("downtime-bytes"),
        "normal_pages": ram.get("normal"), "zero_pages": ram.get("duplicate"),
        "ram_total": ram.get("total"),
        "warmup_write_rate": res.warmup_write_rate,
        "migration_write_rate": res.migration_write_rate,
    }


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def run_study(out: str | os.PathLike = DEFAULT_OUT, repeats: int = REPEATS,
              only: str | None = None, progress=print) -> list[dict]:
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
    """
    if repeats < 1:
        raise ValueError(f"repeats={repeats!r} is out of range: at least 1")
    runs_dir = Path(out) / "runs"
    runs_dir.mkdir(parents=True, exist_ok=True)
    cache = Path(out) / ".guest-cache"
    for repeat, sc in itertools.product(range(repeats), scenarios()):
        if only and only not in sc["id"]:
            continue
        rid = run_id(sc, repeat)
        done = runs_dir / rid / "result.json"
        if done.exists():
            continue
        scratch = runs_dir / (rid + ".partial")
        shutil.rmtree(scratch, ignore_errors=True)
        t0 = time.monotonic()
        kwargs = {k: v for k, v in sc.items() if k != "id"}
        res = harness.run_migration(**kwargs, time_limit=TIME_LIMIT, output_dir=scratch,
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


def load_records(out: str | os.PathLike = DEFAULT_OUT) -> list[dict]:
    """The records of every finished run of a study directory, in run-id order
    (:func:`toolkit.qemu.calibrate.load_run`: with their directories)."""
    return [load_run(p.parent) for p in sorted((Path(out) / "runs").glob("*/result.json"))]


def ensure_qemu() -> None:
    """Install QEMU (and nasm) with ``.ci/install-qemu`` when they are missing."""
    version = harness.qemu_version()
    if version is None or version[:2] < harness.MIN_QEMU_VERSION or not shutil.which("nasm"):
        subprocess.run([str(ROOT / ".ci" / "install-qemu")], check=True)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m toolkit.qemu.study",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(DEFAULT_OUT), help="study directory")
    parser.add_argument("--repeats", type=int, default=REPEATS, help="runs per scenario")
    parser.add_argument("--only", help="only the scenarios whose id contains this text")
    parser.add_argument("--no-install", action="store_true",
                        help="do not try to install QEMU when it is missing")
    parser.add_argument("--table", default=str(DEFAULT_TABLE),
                        help="where the validation table goes (NetCDF)")
    args = parser.parse_args(argv)
    if not args.no_install:
        ensure_qemu()
    records = run_study(args.out, args.repeats, args.only)
    print(f"{len(records)} runs in {args.out}")
    from ..store import save
    from .validate import validate
    table = validate(records)
    save(table, args.table)
    print(f"wrote {args.table}")
    for k, v in table.attrs.items():
        if k.startswith("score_"):
            print(f"  {k[6:]:26s} {v:.3g}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
