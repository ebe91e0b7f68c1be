"""The validation study: real QEMU migrations of many kinds of guest, each run several times.

The scenarios are :mod:`toolkit.qemu.grid`'s: the first edition's 16 (a 128 MiB
guest rewriting a 32 MiB range at {5 000, 15 000} pages/s x ``max-bandwidth``
{40, 100} MB/s x ``downtime-limit`` {10, 200} ms x avail {estimate, 5 GB/s})
and the second edition's 26: guests up to 8 GiB, preallocated RAM, zero
writes (paced and at full speed), a scattered order, hot sets below, near and
above the threshold, two avail sweeps through the convergence boundary (20 and
25 MB/s steps), an over-optimistic avail with most of RAM not copied, a first
pass shorter than 100 ms and auto-converge.

Each run keeps its ``query-migrate`` samples, QMP events and the source's
trace log in ``<out>/runs/<run id>/`` and a ``result.json`` written last
(atomically), so an interrupted study resumes where it stopped and never
repeats a finished run. ``python -m toolkit.qemu.study`` runs it end to end:
installs QEMU with ``.ci/install-qemu`` if missing, runs what is not done yet
(each run is bounded by its scenario's time limit plus boot and warm-up: about
6 minutes on 2 cores for the second edition's 78 runs, 4 for the first's 48),
predicts every run (:mod:`toolkit.qemu.validate`, about 4.5 minutes) and writes
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

from ..scenario import PAGE_SIZE, PARAMETER_INDEX, QEMU_VERSIONS, Scenario
from . import grid, harness
from .calibrate import dirty_rate_of, host_values, load_run

ROOT = Path(__file__).resolve().parents[2]
DEFAULT_OUT = ROOT / "datasets" / "qemu-validation"
DEFAULT_TABLE = ROOT / "datasets" / "qemu-validation.nc"
REPEATS = 3
TIME_LIMIT = grid.BASE["time_limit"]   # [s] after `migrate`, unless a scenario sets its own
KEPT = ("samples.jsonl", "events.jsonl", "src-trace.log")


def scenarios() -> list[dict]:
    """The study's scenarios (:data:`toolkit.qemu.grid.SCENARIOS`), each with an ``id``."""
    return grid.SCENARIOS


def run_id(scenario: dict, repeat: int) -> str:
    return f"{scenario['id']}-{repeat}"


#: Guest settings of a record added with the extended test guest, and their values
#: for the records written before it (a filled range, data writes only, stride 1,
#: no -mem-prealloc, no auto-converge, the cursor unknown).
GUEST_DEFAULTS = {"zero_every": 0, "fill": True, "stride": 1, "prealloc": False,
                  "auto_converge": False, "cursor_at_migrate": None, "writes_at_migrate": None}


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
        "ram_total": ram.get("total"),
        "warmup_write_rate": res.warmup_write_rate,
        "migration_write_rate": res.migration_write_rate,
    }


def _release(version) -> str:
    """The model's ``qemu_version`` for a QEMU release (``"10.0.2"``): the newest
    rule set not after it (8.2 for older ones)."""
    try:
        major, minor = (int(x) for x in str(version).split(".")[:2])
    except (TypeError, ValueError):
        return Scenario().qemu_version
    older = [v for v in QEMU_VERSIONS if tuple(map(int, v.split("."))) <= (major, minor)]
    return older[-1] if older else QEMU_VERSIONS[0]


def scenario_for(record, values: dict, dirty_rate: float | None = None) -> Scenario:
    """The Scenario of a study run, with the host inputs ``values``.

    The guest: ``ram_mib`` MiB of RAM, a ``sequential`` workload over
    ``[start_page, start_page + pages)`` with ``write_stride = stride`` and the
    cursor where the guest's stood (``write_cursor = (cursor_at_migrate +
    stride) % pages``, 0 when unknown); ``zero_write_share = 1 / zero_every``
    (0 without zero writes); the pages below ``start_page + pages`` hold data
    (below ``start_page`` when the range was not filled, or when the guest
    writes zeros and has swept the whole range: then the range holds allocated
    zero pages), the rest is zero (never touched unless ``prealloc``);
    ``mem_prealloc = prealloc``; the extra QMP ``parameters`` of the run
    (auto-converge's ``cpu-throttle-initial`` and the like) by their names. The
    migration: ``max_bandwidth``, ``downtime_limit``,
    ``avail_switchover_bandwidth``, ``auto_converge``, ``max_time =
    time_limit`` and the QEMU release. Records written before these settings
    existed take :data:`GUEST_DEFAULTS`. **Simplification**: the guest's
    ``random`` pattern (a permutation sweep) is modelled as sequential.

    Parameters
    ----------
    record : dict or toolkit.qemu.calibrate.RealRun
        The run's settings (a ``result.json``, a scenario of the study plus
        ``time_limit``, or a loaded run).
    values : dict
        Host inputs (:attr:`toolkit.qemu.calibrate.Calibration.values`; missing
        ones take :func:`toolkit.qemu.calibrate.host_values`' defaults).
    dirty_rate : float, optional
        The guest's write rate [pages/s]; default: the run's measured rate
        during the migration, else its pace times ``dirty_rate_efficiency``
        (:func:`toolkit.qemu.calibrate.dirty_rate_of`).

    Raises
    ------
    ValueError
        The zero region would not start on a 64-page boundary (the model's
        bitmap words), or the run gives no write rate.
    """
    run = record
    record = getattr(record, "record", record)

    def setting(key):
        value = record.get(key)
        return GUEST_DEFAULTS[key] if value is None else value

    pages, start = int(record["pages"]), int(record["start_page"])
    ram = int(record["ram_mib"]) << 20
    n_pages = ram // PAGE_SIZE
    stride = int(setting("stride"))
    zero_every = int(setting("zero_every"))
    cursor = setting("cursor_at_migrate")
    fill = bool(setting("fill"))
    writes = setting("writes_at_migrate")
    swept = writes is not None and int(writes) - (pages if fill else 0) >= pages
    if zero_every > 1 or (zero_every == 1 and not swept) or \
            (zero_every == 0 and not fill and not swept and writes is not None):
        raise ValueError(
            f"run {record.get('run', '?')}: at migrate the guest's range is partly data and "
            f"partly zero (zero_every={zero_every}, fill={fill}, writes {writes} for "
            f"{pages} pages): the model's initial content is a data region below a zero "
            "region; let the warm-up cover a whole sweep")
    # the range holds data, or (zero writes, a whole sweep done) allocated zero pages
    zero_start = start if zero_every == 1 or not (fill or swept) else start + pages
    allocated = pages if zero_every == 1 else 0
    if zero_start % 64:
        raise ValueError(
            f"run {record.get('run', '?')}: the zero region would start at page {zero_start} "
            f"(start_page {start}{' + pages ' + str(pages) if setting('fill') else ''}), not a "
            "multiple of 64: the model's initially-zero region starts on a 64-page bitmap word")
    rate = dirty_rate if dirty_rate is not None else dirty_rate_of(run, values)
    if rate is None:
        raise ValueError(f"run {record.get('run', '?')}: no write rate (no pace and no "
                         "migration_write_rate); give dirty_rate=")
    return Scenario(
        ram_size=ram, workload="sequential", write_range=pages * PAGE_SIZE,
        write_range_start=start * PAGE_SIZE, dirty_rate=rate * PAGE_SIZE,
        write_stride=stride,
        write_cursor=(int(cursor) + stride) % pages if cursor is not None else 0,
        zero_fraction=(n_pages - zero_start) / n_pages,
        zero_allocated_fraction=allocated / n_pages,
        zero_write_share=1.0 / zero_every if zero_every else 0.0,
        mem_prealloc=bool(setting("prealloc")),
        max_bandwidth=record["max_bandwidth"], downtime_limit=record["downtime_limit"],
        avail_switchover_bandwidth=record["avail_switchover_bandwidth"],
        auto_converge=bool(setting("auto_converge")),
        **qmp_parameters(record.get("parameters")),
        qemu_version=_release(record.get("qemu_version")),
        max_time=record["time_limit"], **host_values(values))


def qmp_parameters(parameters: dict | None) -> dict:
    """The Scenario parameters among a run's extra ``migrate-set-parameters``
    (QMP names such as ``cpu-throttle-initial``); refuse any the model lacks."""
    out = {}
    for qmp, value in (parameters or {}).items():
        name = qmp.replace("-", "_")
        if name not in PARAMETER_INDEX or PARAMETER_INDEX[name].qemu != qmp:
            raise ValueError(f"migrate-set-parameters {qmp!r}: the model has no such "
                             "parameter")
        out[name] = value
    return out


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
    t0 = time.monotonic()
    records = run_study(args.out, args.repeats, args.only)
    print(f"{len(records)} runs in {args.out} ({time.monotonic() - t0:.0f} s for the runs "
          "not recorded yet)")
    from ..store import save
    from .validate import validate
    t0 = time.monotonic()
    table = validate(records)
    save(table, args.table)
    print(f"wrote {args.table} ({time.monotonic() - t0:.0f} s for the table)")
    for k, v in table.attrs.items():
        if k.startswith("score_"):
            print(f"  {k[6:]:44s} {v:.3g}")
    print("toolkit/hosts.py TCG_LOOPBACK from this calibration (value, standard error):")
    print(profile_block(table))
    return 0


def profile_block(table) -> str:
    """The ``TCG_LOOPBACK`` block of :mod:`toolkit.hosts` for a validation table's
    calibration (NaN error: not identified or not fitted)."""
    from ..hosts import HOST_PARAMETERS
    values = dict(zip(table.input.values, table.calibrated_value.values))
    errors = dict(zip(table.input.values, table.calibrated_error.values))
    lines = []
    for k in HOST_PARAMETERS:
        if k in values:
            err = float(errors[k])
            text = "math.nan" if err != err else f"{err:.3g}"
            lines.append(f'    "{k}": ({float(values[k]):.6g}, {text}),')
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
