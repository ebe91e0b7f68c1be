"""Command line: ``python -m toolkit`` (or the ``toolkit`` script).

``toolkit`` alone runs the main job: the default rescue sweep (the embedded
``configs/rescue-default.toml``), writing a dataset and a PNG map and printing
the class counts. ``toolkit sweep --config F --out P`` runs any TOML sweep,
``toolkit run`` one scenario under several avail settings, ``toolkit info``
versions, shipped datasets, or a summary of one dataset.

Exit status: 0 done, 1 failed while running, 2 bad input or config,
130 interrupted (rerun with ``--resume`` to continue a sweep).
"""
from __future__ import annotations

import argparse
import errno
import os
import pathlib
import sys
import textwrap

import numpy as np

from ._version import __version__
from .scenario import PARAMETER_INDEX, Scenario
from .units import format_count, format_number, format_rate, format_size
from .verdict import verdict

# `toolkit run`: QEMU's default 128 MiB/s rate limit on a 10 Gbit/s link, a guest
# re-writing 128 MiB at 1 GiB/s. The estimate (~134 MB/s) sets a 40 MB threshold
# that 128 MiB of hot pages never get under; the real link could send them in ~110 ms.
DEFAULT_SCENARIO = dict(ram_size="4GiB", workload="sequential", write_range="128MiB",
                        dirty_rate="1GiB/s", link_bandwidth="10Gbit/s", downtime_limit=300,
                        max_time=120.0)
AVAIL_SETTINGS = (("estimate", 0.0), ("0.1x link", 0.1), ("0.5x link", 0.5),
                  ("link", 1.0), ("4x link", 4.0))
DEFAULT_OUT = pathlib.Path("out")
DEFAULT_CHUNK_SIZE = 16      # scenarios per task and checkpoint of `toolkit sweep`


class UsageError(ValueError):
    """Bad command-line input (exit status 2)."""


def _parse_set(items: list[str]) -> dict:
    values = {}
    for item in items:
        key, sep, value = item.partition("=")
        key = key.strip().replace("-", "_")
        if not sep:
            raise UsageError(f"--set {item!r}: expected name=value, e.g. ram_size=8GiB")
        if key not in PARAMETER_INDEX:
            raise UsageError(f"--set {item!r}: unknown parameter {key!r}")
        value = value.strip()
        if value.lower() in ("true", "false"):
            values[key] = value.lower() == "true"
        else:
            for kind in (int, float):
                try:
                    values[key] = kind(value)
                    break
                except ValueError:
                    values[key] = value
    return values


def verdict_table(base: Scenario) -> str:
    """Simulate ``base`` with avail-switchover-bandwidth off and at multiples of the link.

    Returns
    -------
    str
        A fixed-width table, one row per setting.
    """
    from .simulate import simulate

    header = (f"{'avail-switchover-bandwidth':>28} {'verdict':>22} {'total':>9} "
              f"{'downtime':>9} {'syncs':>6} {'transferred':>12}")
    rows = [header, "-" * len(header)]
    for label, factor in AVAIL_SETTINGS:
        avail = int(round(factor * base.link_bandwidth))
        ds = simulate(base.replace(avail_switchover_bandwidth=avail))
        outcome = verdict(ds)
        if ds.converged:
            total, down = f"{ds.total_time / 1000:.1f} s", f"{ds.downtime.item():.0f} ms"
        else:
            total, down = f">{ds.total_time / 1000:.0f} s", "-"
        name = f"{label} ({format_rate(avail)})" if avail else "0 (use the estimate)"
        rows.append(f"{name:>28} {outcome.label:>22} {total:>9} {down:>9} "
                    f"{int(ds.dirty_sync_count):>6} {format_size(int(ds.transferred)):>12}")
    return "\n".join(rows)


def _describe(sc: Scenario) -> str:
    work = sc.workload
    if work == "sequential":
        work += f" over {format_size(sc.write_range)}"
    return (f"{format_size(sc.ram_size)} guest, {work} writes at {format_rate(sc.dirty_rate)}; "
            f"link {format_rate(sc.link_bandwidth)}, max-bandwidth "
            f"{format_rate(sc.max_bandwidth) if sc.max_bandwidth else 'unlimited'}, "
            f"downtime-limit {sc.downtime_limit} ms")


def cmd_run(args) -> int:
    """``run``: the verdict table of one scenario (the embedded default with ``--set``)."""
    params = dict(DEFAULT_SCENARIO)
    params.update(_parse_set(args.set))
    sc = Scenario.from_kwargs(**params)
    print(_describe(sc))
    print(verdict_table(sc))
    return 0


def _progress(args) -> bool:
    return not args.no_progress and sys.stderr.isatty() and not os.environ.get("CI")


def cmd_sweep(args) -> int:
    """``sweep``: run a config's grid (resumable) and write its Dataset."""
    from .config import DEFAULT_CONFIG, load_config
    from .sweep import plan

    config = pathlib.Path(args.config) if args.config else DEFAULT_CONFIG
    params, options = load_config(config)
    changes = _parse_set(args.set)
    for key in changes:
        if isinstance(params.get(key), list):
            raise UsageError(f"--set {key}: {key} is swept by {config} ([grid]); --set "
                             "changes fixed parameters only: edit the config's [grid] instead")
    params.update(changes)
    out = pathlib.Path(args.out) if args.out else DEFAULT_OUT / f"{config.stem}.nc"
    if out.suffix not in (".nc", ".zarr"):
        raise UsageError(f"--out {out}: expected a path ending in .nc or .zarr")
    traces = options.get("traces", False)
    grid = plan(**params)
    with _exclusive(out):
        return _sweep_to(out, config, options, traces, grid, args)


class _exclusive:
    """Hold an exclusive lock on ``out`` for a sweep (a hidden ``.<name>.lock`` beside
    it, removed afterwards): a second sweep on the same ``--out`` is refused at
    once instead of both crashing on each other's chunks."""

    def __init__(self, out: pathlib.Path):
        self.path = out.with_name(f".{out.name}.lock")

    def __enter__(self):
        import fcntl
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.file = open(self.path, "a")
        try:
            fcntl.flock(self.file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self.file.close()
            raise UsageError(f"another sweep is writing {self.path.name[1:-5]} in "
                             f"{self.path.parent}: wait for it, or choose another --out") \
                from None
        return self

    def __exit__(self, *exc):
        self.path.unlink(missing_ok=True)
        self.file.close()
        return False


def _duration(seconds: float) -> str:
    """'40 ms', '12 s', '3.5 min', '2.1 h' or '4.0 days'."""
    if seconds < 1:
        return f"{seconds * 1000:.0f} ms"
    for unit, size in (("days", 86400), ("h", 3600), ("min", 60)):
        if seconds >= 2 * size:
            return f"{seconds / size:.1f} {unit}"
    return f"{seconds:.0f} s"


def _sweep_to(out, config, options, traces, grid, args) -> int:
    from .rescue import AVAIL, rescue
    from .store import ChunkStore, save
    from .sweep import _whole, check_sweep_memory, estimate_time, sweep

    for name in ("workers", "chunk_size"):      # before the checkpoint directory exists
        if getattr(args, name) is not None:
            _whole(getattr(args, name), f"--{name.replace('_', '-')}")
    chunk_size = args.chunk_size if args.chunk_size is not None else \
        options.get("chunk_size", DEFAULT_CHUNK_SIZE)
    workers = args.workers or os.cpu_count() or 1
    check_sweep_memory(grid, workers)
    sample, total = estimate_time(grid, workers, chunk_size)
    print(f"sweep: {format_count(grid.size, 'point')} in "
          f"{format_count(-(-grid.size // chunk_size), 'chunk')} of {chunk_size} on "
          f"{format_count(workers, 'worker')}: about {_duration(total)} (one sample run took "
          f"{_duration(sample)})", file=sys.stderr)
    partial = out.with_name(out.name + ".partial")
    if partial.exists() and not args.resume:
        raise UsageError(f"{partial} holds an interrupted run of a sweep: rerun with --resume "
                         "to continue it, or delete it to start again")
    store = ChunkStore(partial, grid.fingerprint(traces) + f"-{chunk_size}")
    resumed = len(store.done())
    if resumed:
        print(f"resuming: {format_count(resumed, 'chunk')} already done in "
              f"{partial}", file=sys.stderr)
    ds = sweep(grid=grid, traces=traces, workers=args.workers, chunk_size=chunk_size,
               scheduler=args.scheduler, progress=_progress(args), checkpoint=store)
    n_chunks = -(-grid.size // chunk_size)
    if options.get("title"):
        ds.attrs["title"] = options["title"]
    ds.attrs["config"] = config.name
    done = f" ({resumed} of {format_count(n_chunks, 'chunk')} from the interrupted run)" \
        if resumed else ""
    lines = [f"{format_count(ds.converged.size, 'scenario')}, {int(ds.converged.sum()):,} "
             f"converged{done}"]
    res = None
    if AVAIL in ds.dims:
        try:
            res = rescue(ds)
        except ValueError:
            res = None
    if res is not None:
        ds = ds.merge(res[["rescue_class", "overshoot", "smallest_converging_avail",
                           "largest_safe_avail"]])
        lines += rescue_table(res)
    save(ds, out)
    store.clear()
    lines.append(f"wrote {out}")
    if res is not None and not args.no_map and len(ds.rescue_class.dims) >= 3:
        import matplotlib
        matplotlib.use("Agg")
        from .plot import rescue_map
        png = out.with_suffix(".png")
        fig = rescue_map(ds)
        tmp = png.with_name(f".{png.name}.tmp.png")
        fig.savefig(tmp, dpi=110)
        os.replace(tmp, png)
        lines.append(f"wrote {png}")
    print("\n".join(lines))
    return 0


def rescue_table(res) -> list[str]:
    """The rescue classes counted per avail-switchover-bandwidth setting, one line each.

    The estimate's own column can never be "rescued" or "broken": counts
    mixed over every setting would hide what each one does.
    """
    from .rescue import AVAIL, CLASSES, class_counts

    settings = [str(v) for v in res[AVAIL].values]
    heads = ["estimate" if s in ("estimate", "0", "0.0") else s for s in settings]
    per = [class_counts(res.isel({AVAIL: i})) for i in range(len(settings))]
    name_w = max(len("avail-switchover-bandwidth"), *(len(c) for c in CLASSES))
    widths = [max(len(h), 6) for h in heads]
    lines = [f"  {'avail-switchover-bandwidth':<{name_w}} "
             + " ".join(f"{h:>{w}}" for h, w in zip(heads, widths))]
    for c in CLASSES:
        lines.append(f"  {c.replace('_', ' '):<{name_w}} "
                     + " ".join(f"{p[c]:>{w},}" for p, w in zip(per, widths)))
    return lines


def _coord_text(ds, dim) -> str:
    from .plot import value_labels

    labels = value_labels(dim, ds[dim].values, with_unit=True)
    if len(labels) > 6:
        labels = labels[:2] + ["..."] + labels[-2:]
    return f"{format_count(ds.sizes[dim], 'value')}: {', '.join(labels)}"


def dataset_summary(ds, name: str) -> str:
    """A dataset in words and units: what it holds, its swept axes, its fixed scenario,
    its verdicts and, for a rescue dataset, the classes per avail setting."""
    from .plot import display_name, scenario_text

    lines = [f"{name}: {ds.attrs.get('title', '(no title)')}"]
    if ds.attrs.get("source"):
        lines.append(f"  made by {ds.attrs['source']}"
                     + (f" from {ds.attrs['config']}" if ds.attrs.get("config") else ""))
    swept = [d for d in ds.dims if d in PARAMETER_INDEX]
    if swept:
        size = 1
        for d in swept:
            size *= ds.sizes[d]
        lines.append(f"  {format_count(size, 'scenario')} over {len(swept)} swept "
                     f"parameter{'s' if len(swept) != 1 else ''}:")
        width = max(len(display_name(d)) for d in swept)
        lines += [f"    {display_name(d):<{width}}  {_coord_text(ds, d)}" for d in swept]
    others = [d for d in ds.dims if d not in PARAMETER_INDEX]
    if others:
        lines.append("  other dimensions: " + ", ".join(f"{d} ({ds.sizes[d]})" for d in others))
    fixed = scenario_text(ds)
    if fixed:
        lines.append(f"  fixed: {fixed}")
    if "converged" in ds and "downtime" in ds and not others:
        conv = ds.converged.values
        down = ds.downtime.values[conv]
        text = f"  converged: {int(conv.sum()):,} of {conv.size:,}"
        if down.size:
            text += (f"; downtime {format_number(down.min())} to {format_number(down.max())} ms"
                     f" (median {format_number(float(np.median(down)))} ms)")
        lines.append(text)
    if "rescue_class" in ds:
        lines.append("  rescue classes per setting:")
        lines += ["  " + line for line in rescue_table(ds)]
    lines += textwrap.wrap(", ".join(sorted(ds.data_vars)), 96, initial_indent="  variables: ",
                           subsequent_indent="    ")
    return "\n".join(lines)


def cmd_info(args) -> int:
    """``info``: summarise a dataset file or a shipped dataset, and the installation."""
    from .store import DATASETS_DIR, open_dataset

    if args.dataset:
        ds = open_dataset(args.dataset)
        print(dataset_summary(ds, args.dataset))
        return 0
    import numba
    import numpy
    import xarray
    print(f"switchover-lab {__version__} (QEMU 10.0 precopy model)")
    print(f"python {sys.version.split()[0]}, numba {numba.__version__}, "
          f"numpy {numpy.__version__}, xarray {xarray.__version__}, "
          f"{format_count(os.cpu_count() or 1, 'CPU')}")
    shipped = sorted(p.name for p in DATASETS_DIR.glob("*") if p.suffix in (".nc", ".zarr"))
    print(f"shipped datasets in {DATASETS_DIR}: {', '.join(shipped) or '(none)'}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The ``python -m toolkit`` argument parser."""
    parser = argparse.ArgumentParser(
        prog="toolkit", description="Switchover Lab: simulate QEMU precopy live migration. "
        "Without a command: run the default rescue sweep.")
    parser.add_argument("--version", action="version", version=f"switchover-lab {__version__}")
    sub = parser.add_subparsers(dest="command")
    run = sub.add_parser("run", help="one scenario under several avail-switchover-bandwidth "
                                     "settings: a verdict table")
    run.add_argument("--set", action="append", default=[], metavar="NAME=VALUE",
                     help="change a parameter, e.g. --set dirty_rate=2GiB/s (repeatable)")
    run.set_defaults(func=cmd_run)
    sw = sub.add_parser("sweep", help="run a TOML sweep; write a dataset (and a rescue map)")
    sw.add_argument("--config", help="TOML sweep config (default: the embedded "
                                     "rescue-default.toml)")
    sw.add_argument("--out", help="output .nc or .zarr (default: out/<config name>.nc)")
    sw.add_argument("--scheduler", choices=("threads", "dask"), default="threads")
    sw.add_argument("--workers", type=int, default=None, help="threads or Dask worker "
                                                              "processes (default: CPUs)")
    sw.add_argument("--chunk-size", type=int, default=None,
                    help="scenarios per task and per checkpoint (default: the config's [sweep] "
                         f"chunk_size, else {DEFAULT_CHUNK_SIZE})")
    sw.add_argument("--resume", action="store_true", help="continue an interrupted run")
    sw.add_argument("--no-progress", action="store_true", help="no progress bar")
    sw.add_argument("--no-map", action="store_true", help="do not write the PNG rescue map")
    sw.add_argument("--set", action="append", default=[], metavar="NAME=VALUE",
                    help="override a fixed parameter of the config (repeatable)")
    sw.set_defaults(func=cmd_sweep)
    info = sub.add_parser("info", help="versions and shipped datasets, or one dataset")
    info.add_argument("dataset", nargs="?", help="a path or the name of a shipped dataset")
    info.set_defaults(func=cmd_info)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the exit status."""
    parser = build_parser()
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] not in ("run", "sweep", "info", "-h", "--help", "--version"):
        argv = ["sweep"] + argv          # the main job
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except KeyboardInterrupt:
        print("toolkit: interrupted; finished chunks are kept: rerun with --resume to "
              "continue", file=sys.stderr)
        return 130
    except (ValueError, TypeError, FileNotFoundError, FileExistsError, ImportError) as err:
        print(f"toolkit: error: {err}", file=sys.stderr)
        return 2
    except OSError as err:            # a directory, a file in the way, no permission, no space
        where = err.filename or "output"
        if err.errno == errno.ENOSPC:
            print(f"toolkit: error: no space left on {where}", file=sys.stderr)
            return 1
        print(f"toolkit: error: {where}: {err.strerror or err}", file=sys.stderr)
        return 2
