"""Command line: ``python -m toolkit`` (or the ``toolkit`` script).

``toolkit`` alone runs the main job: the default rescue sweep (the embedded
``configs/rescue-default.toml``), writing a dataset and a PNG map and printing
the class counts. ``toolkit sweep --config F --out P`` runs any TOML sweep,
``toolkit run`` one scenario under several avail settings, ``toolkit advise``
an operator's question (a verdict, the safe avail range, bands), ``toolkit
info`` versions, shipped datasets, or a summary of one dataset.

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
from .scenario import PARAMETER_INDEX, Scenario, check_names, validate_parameter
from .units import format_count, format_number, format_rate, format_size
from .verdict import Verdict, verdict_codes

# `toolkit run`: QEMU's default 128 MiB/s rate limit on a 10 Gbit/s link, a guest
# re-writing 128 MiB at 1 GiB/s. The estimate (~134 MB/s) sets a 40 MB threshold
# that 128 MiB of hot pages never get under; the real link could send them in ~110 ms.
DEFAULT_SCENARIO = dict(ram_size="4GiB", workload="sequential", write_range="128MiB",
                        dirty_rate="1GiB/s", link_bandwidth="10Gbit/s", downtime_limit=300,
                        max_time=120.0)
AVAIL_SETTINGS = ("estimate", "0.1x link", "0.5x link", "link", "4x link")
RUN_FORMATS = ("table", "csv", "json")
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
        try:
            check_names([key])
        except TypeError as err:        # the config reader's message: "did you mean ...?"
            raise UsageError(f"--set {item!r}: {str(err).split(' Known:')[0]}") from None
        values[key] = _value(value)
    return values


def _value(text: str):
    """A command-line value: a flag, a number, or the string (units parse later)."""
    text = text.strip()
    if text.lower() in ("true", "false"):
        return text.lower() == "true"
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def _avail_settings(args, changes: dict) -> list:
    """``--avail`` settings (comma-separated, repeatable), or one from ``--set``."""
    settings = [v.strip() for item in args.avail for v in item.split(",") if v.strip()]
    if "avail_switchover_bandwidth" in changes:
        if settings:
            raise UsageError("--set avail_switchover_bandwidth and --avail both given: use "
                             "--avail (a list of settings)")
        settings = [str(changes.pop("avail_switchover_bandwidth"))]
    settings = [_value(v) for v in settings] or list(AVAIL_SETTINGS)
    if len(set(map(str, settings))) < len(settings):
        raise UsageError(f"--avail {','.join(map(str, settings))}: a setting is given twice")
    return settings


def run_table(base: Scenario, settings=AVAIL_SETTINGS):
    """Simulate ``base`` under each avail-switchover-bandwidth setting.

    Parameters
    ----------
    base : Scenario
    settings : list
        ``"estimate"``, ``"link"``, ``"Nx link"``, rates (``"5Gbit/s"``) or B/s.

    Returns
    -------
    (xarray.Dataset, list of dict)
        The sweep over the settings, and one row per setting with stable keys,
        units in the names.
    """
    from ._sweep import sweep

    for value in settings:          # each setting checked before any work, naming it
        try:
            base.replace(avail_switchover_bandwidth=value)
        except (TypeError, ValueError) as err:
            raise UsageError(f"--avail {value!r}: {err}") from None
    params = {k: getattr(base, k) for k in base._given if k != "avail_switchover_bandwidth"}
    ds = sweep(**params, avail_switchover_bandwidth=list(settings), progress=False)
    codes = verdict_codes(ds.converged, ds.downtime, base.downtime_limit, ds.passes)
    rows = []
    for i, label in enumerate(ds.avail_switchover_bandwidth.values.tolist()):
        point = ds.isel(avail_switchover_bandwidth=i)
        converged = bool(point.converged)
        rows.append({
            "setting": label,
            "avail_switchover_bandwidth_bytes_per_s":
                float(point.avail_switchover_bandwidth_value),
            "verdict": Verdict(int(codes[i])).name.lower(), "converged": converged,
            "total_time_s": float(point.total_time) / 1000,
            "downtime_ms": float(point.downtime) if converged else None,
            "dirty_sync_count": int(point.dirty_sync_count),
            "transferred_bytes": int(point.transferred)})
    return ds, rows


def verdict_table(base: Scenario, settings=AVAIL_SETTINGS) -> str:
    """Simulate ``base`` under each avail-switchover-bandwidth setting (default: off
    and multiples of the link).

    Returns
    -------
    str
        A fixed-width table, one row per setting.
    """
    return _format_table(run_table(base, settings)[1])


def _format_table(rows: list) -> str:
    header = (f"{'avail-switchover-bandwidth':>28} {'verdict':>22} {'total':>9} "
              f"{'downtime':>9} {'syncs':>6} {'transferred':>12}")
    lines = [header, "-" * len(header)]
    for r in rows:
        avail = r["avail_switchover_bandwidth_bytes_per_s"]
        if r["converged"]:
            total, down = f"{r['total_time_s']:.1f} s", f"{r['downtime_ms']:.0f} ms"
        else:
            total, down = f">{r['total_time_s']:.0f} s", "-"
        label = str(r["setting"])
        if not avail:
            name = "0 (use the estimate)"
        elif "link" in label:
            name = f"{label} ({format_rate(avail)})"
        else:
            name = format_rate(avail)
        lines.append(f"{name:>28} {Verdict[r['verdict'].upper()].label:>22} {total:>9} "
                     f"{down:>9} {r['dirty_sync_count']:>6} "
                     f"{format_size(r['transferred_bytes']):>12}")
    return "\n".join(lines)


def _describe(sc: Scenario) -> str:
    work = sc.workload
    if work == "sequential":
        work += f" over {format_size(sc.write_range)}"
    return (f"{format_size(sc.ram_size)} guest, {work} writes at {format_rate(sc.dirty_rate)}; "
            f"link {format_rate(sc.link_bandwidth)}, max-bandwidth "
            f"{format_rate(sc.max_bandwidth) if sc.max_bandwidth else 'unlimited'}, "
            f"downtime-limit {sc.downtime_limit} ms")


def cmd_run(args) -> int:
    """``run``: the verdict table of one scenario (the embedded default with ``--set``)
    under each ``--avail`` setting, as a table, CSV or JSON; ``--out`` keeps the Dataset."""
    import json

    params = dict(DEFAULT_SCENARIO)
    changes = _parse_set(args.set)
    settings = _avail_settings(args, changes)
    params.update(changes)
    sc = Scenario.from_kwargs(**params)
    out = pathlib.Path(args.out) if args.out else None
    if out is not None and out.suffix not in (".nc", ".zarr"):
        raise UsageError(f"--out {out}: expected a path ending in .nc or .zarr")
    ds, rows = run_table(sc, settings)
    if args.format == "table":
        print(_describe(sc))
        print(_format_table(rows))
    elif args.format == "csv":
        import csv
        writer = csv.DictWriter(sys.stdout, fieldnames=list(rows[0]), lineterminator="\n")
        writer.writeheader()
        writer.writerows({k: "" if v is None else v for k, v in r.items()} for r in rows)
    else:
        print(json.dumps({"scenario": {k: getattr(sc, k) for k in sorted(sc._given)},
                          "downtime_limit_ms": sc.downtime_limit, "rows": rows}, indent=2))
    if out is not None:
        from .store import save
        save(ds, out)
        print(f"wrote {out}", file=sys.stderr)
    return 0


#: ``advise`` options that are scenario parameters: option -> parameter
ADVISE_OPTIONS = {"ram_size": "ram_size", "dirty_rate": "dirty_rate",
                  "link_bandwidth": "link_bandwidth", "downtime_limit": "downtime_limit",
                  "max_bandwidth": "max_bandwidth", "host": "host"}


def _advise_inputs(args) -> dict:
    """Keyword arguments of advise from the options, each checked and named as its option."""
    from ._advise import LAYERS

    kwargs = {}
    for option, name in ADVISE_OPTIONS.items():
        value = getattr(args, option)
        if value is None:
            continue
        flag = "--" + option.replace("_", "-")
        try:
            validate_parameter(name, _value(value))
        except (TypeError, ValueError) as err:
            raise UsageError(f"{flag} {value!r}: {err}") from None
        kwargs[name] = _value(value)
    if args.layer.lower() not in LAYERS:
        raise UsageError(f"--layer {args.layer!r}: expected one of {', '.join(LAYERS)}")
    kwargs["layer"] = args.layer.lower()
    try:
        lo, _, hi = args.headroom.partition(",")
        kwargs["headroom"] = (float(lo), float(hi or lo))
    except ValueError:
        raise UsageError(f"--headroom {args.headroom!r}: expected factors LOW,HIGH of the "
                         "dirty rate, e.g. 1,3") from None
    kwargs["seeds"] = args.seeds
    extra = _parse_set(args.set)
    for name in extra:
        if name in ADVISE_OPTIONS.values() or name in ("avail_switchover_bandwidth",
                                                       "policy", "seed"):
            raise UsageError(f"--set {name}: advise has its own option or chooses it itself")
    kwargs.update(extra)
    if args.measurement:
        from . import measure
        try:
            kwargs["measurement"] = measure.load(args.measurement)
        except (FileNotFoundError, IsADirectoryError, PermissionError) as err:
            raise UsageError(f"--from {args.measurement}: {err.strerror.lower()}") from None
        except ValueError as err:
            # the file's own name and line lead the reader's message
            raise UsageError(f"--from: {str(err).replace('give kind= one of', 'it reads')}"
                             ) from None
    if "ram_size" not in kwargs and "measurement" not in kwargs:
        raise UsageError("--ram-size is required (e.g. --ram-size 16GiB), unless --from "
                         "gives it")
    return kwargs


def cmd_advise(args) -> int:
    """``advise``: the answer to an operator's question, as a table or JSON, and a figure."""
    import json

    from ._advise import advise

    kwargs = _advise_inputs(args)
    plot = pathlib.Path(args.plot) if args.plot else None
    if plot is not None and plot.suffix.lower() not in (".png", ".pdf", ".svg"):
        raise UsageError(f"--plot {plot}: expected a .png, .pdf or .svg path")
    try:
        answer = advise(**kwargs)
    except KeyboardInterrupt:
        print("toolkit: interrupted; advise keeps no partial answer", file=sys.stderr)
        return 130
    except (TypeError, ValueError) as err:
        message = str(err)
        for name in (*ADVISE_OPTIONS, "seeds", "headroom"):  # the option, not the keyword
            if message.startswith(name):
                message = f"--{name.replace('_', '-')}: {message}"
                break
        else:
            for name in kwargs:
                if message.startswith((f"{name}=", f"{name}:")):
                    message = f"--set {name}: {message}"
                    break
        raise UsageError(message) from None
    if args.json:
        print(json.dumps(answer.to_dict(), indent=2))
    else:
        print(answer)
    if plot is not None:
        import matplotlib
        matplotlib.use("Agg")
        fig = answer.plot()
        plot.parent.mkdir(parents=True, exist_ok=True)
        tmp = plot.with_name(f".{plot.stem}.tmp{plot.suffix}")
        fig.savefig(tmp, dpi=110)
        os.replace(tmp, plot)
        print(f"wrote {plot}", file=sys.stderr)
    return 0


def _progress(args) -> bool:
    return not args.no_progress and sys.stderr.isatty() and not os.environ.get("CI")


def cmd_sweep(args) -> int:
    """``sweep``: run a config's grid (resumable) and write its Dataset."""
    from .config import DEFAULT_CONFIG, load_config
    from ._sweep import plan

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
    from ._rescue import is_rescue_sweep, merge_rescue
    from .store import ChunkStore, save, save_figure
    from ._sweep import _whole, check_sweep_memory, estimate_time, sweep

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
    rescued = is_rescue_sweep(ds)
    if rescued:
        ds = merge_rescue(ds)
        lines += rescue_table(ds)
    save(ds, out)
    store.clear()
    lines.append(f"wrote {out}")
    if rescued and not args.no_map and len(ds.rescue_class.dims) >= 3:
        import matplotlib
        matplotlib.use("Agg")
        from .plot import rescue_map
        lines.append(f"wrote {save_figure(rescue_map(ds), out.with_suffix('.png'))}")
    print("\n".join(lines))
    return 0


def rescue_table(res) -> list[str]:
    """The rescue classes counted per avail-switchover-bandwidth setting, one line each
    (``res``: :func:`toolkit.rescue`'s output or a sweep merged with it).

    The estimate's own column can never be "rescued" or "broken": counts
    mixed over every setting would hide what each one does.
    """
    from ._rescue import AVAIL, CLASSES, class_counts

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
    run.add_argument("--avail", action="append", default=[], metavar="SETTINGS",
                     help="avail-switchover-bandwidth settings, comma-separated: estimate, "
                          "link, Nx link, a rate (5Gbit/s) or B/s (default: "
                          f"{','.join(AVAIL_SETTINGS)})")
    run.add_argument("--format", choices=RUN_FORMATS, default="table")
    run.add_argument("--out", help="also write the results as a Dataset (.nc or .zarr)")
    run.set_defaults(func=cmd_run)
    from ._advise import LAYERS
    adv = sub.add_parser(
        "advise", help="will it converge, how long, what downtime, which "
                       "avail-switchover-bandwidth is safe",
        description="The operator's question for one guest: the verdict under QEMU's own "
                    "estimate, the avail-switchover-bandwidth range that converges within "
                    "the downtime limit, bands over seeds and dirty-rate headroom, the "
                    "layer's own downtime ramp and, when no avail is safe, the alternatives "
                    "(those that do not help listed apart). Exit 0 on an answer, 2 on bad "
                    "input.",
        epilog="layers: " + "; ".join(f"{k}: {v['doc']}" for k, v in LAYERS.items()) +
               ". Example: advise --from reading.json --ram-size 16GiB --link-bandwidth "
               "25Gbit/s --downtime-limit 300 --layer libvirt --json")
    adv.add_argument("--ram-size", help="guest RAM, e.g. 16GiB")
    adv.add_argument("--dirty-rate", help="dirty rate, e.g. 400MiB/s (calc-dirty-rate)")
    adv.add_argument("--link-bandwidth", help="the link, e.g. 25Gbit/s")
    adv.add_argument("--downtime-limit", help="the downtime budget [ms], e.g. 300")
    adv.add_argument("--max-bandwidth", help="QEMU max-bandwidth (default: the layer's)")
    adv.add_argument("--host", help="a host profile (toolkit.hosts)")
    adv.add_argument("--layer", default="qemu",
                     help="management layer: qemu, libvirt, proxmox, nova, kubevirt, ovirt")
    adv.add_argument("--from", dest="measurement", metavar="FILE",
                     help="a measurement of the guest (toolkit.load): query-dirty-rate JSON, "
                          "HMP info dirty_rate, virsh domstats --dirtyrate, virsh "
                          "domjobinfo, a query-migrate log; the options given win over it")
    adv.add_argument("--headroom", default="1,3", help="dirty-rate factors LOW,HIGH for the "
                                                       "bands (default 1,3)")
    adv.add_argument("--seeds", type=int, default=3, help="seeds for the bands (default 3)")
    adv.add_argument("--set", action="append", default=[], metavar="NAME=VALUE",
                     help="another scenario parameter, e.g. --set workload=hotcold")
    adv.add_argument("--json", action="store_true", help="JSON instead of the table")
    adv.add_argument("--plot", metavar="FILE", help="write the figure (.png, .pdf, .svg)")
    adv.set_defaults(func=cmd_advise)
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
    if not argv or argv[0] not in ("run", "advise", "sweep", "info", "-h", "--help",
                                   "--version"):
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
