"""Command line: ``python -m toolkit`` (or the ``toolkit`` script).

``toolkit run`` (the default) simulates the embedded default scenario, or one
changed with ``--set name=value``, under three avail-switchover-bandwidth
settings and prints a verdict table.
"""
from __future__ import annotations

import argparse
import sys

from .scenario import PARAMETER_INDEX, Scenario
from .units import format_rate, format_size

# The embedded default: QEMU's default 128 MiB/s rate limit on a 10 Gbit/s link,
# a guest re-writing 128 MiB at 1 GiB/s. The estimate (~134 MB/s) sets a 40 MB
# threshold that 128 MiB of hot pages never get under; the real link could
# send them in ~110 ms.
DEFAULT_SCENARIO = dict(ram_size="4GiB", workload="sequential", write_range="128MiB",
                        dirty_rate="1GiB/s", link_bandwidth="10Gbit/s", downtime_limit=300,
                        max_time=120.0)
AVAIL_SETTINGS = (("estimate", 0.0), ("0.1x link", 0.1), ("0.5x link", 0.5),
                  ("link", 1.0), ("4x link", 4.0))


def _parse_set(items: list[str]) -> dict:
    values = {}
    for item in items:
        key, sep, value = item.partition("=")
        key = key.strip().replace("-", "_")
        if not sep:
            raise ValueError(f"--set {item!r}: expected name=value, e.g. ram_size=8GiB")
        if key not in PARAMETER_INDEX:
            raise ValueError(f"--set {item!r}: unknown parameter {key!r}")
        value = value.strip()
        if value.lower() in ("true", "false"):
            values[key] = value.lower() == "true"
        elif key in ("workload",):
            values[key] = value
        else:
            try:
                values[key] = int(value)
            except ValueError:
                try:
                    values[key] = float(value)
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

    limit = base.downtime_limit
    header = (f"{'avail-switchover-bandwidth':>28} {'verdict':>22} {'total':>9} "
              f"{'downtime':>9} {'syncs':>6} {'transferred':>12}")
    rows = [header, "-" * len(header)]
    for label, factor in AVAIL_SETTINGS:
        avail = int(round(factor * base.link_bandwidth))
        ds = simulate(base.replace(avail_switchover_bandwidth=avail))
        if not ds.converged:
            verdict, total, down = "never converges", f">{ds.total_time / 1000:.0f} s", "-"
        else:
            over = ds.downtime.item() > limit
            verdict = "OVERSHOOTS the limit" if over else "converges"
            total, down = f"{ds.total_time / 1000:.1f} s", f"{ds.downtime.item():.0f} ms"
        name = f"{label} ({format_rate(avail)})" if avail else "0 (use the estimate)"
        rows.append(f"{name:>28} {verdict:>22} {total:>9} {down:>9} "
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
    params = dict(DEFAULT_SCENARIO)
    params.update(_parse_set(args.set))
    sc = Scenario.from_kwargs(**params)
    print(_describe(sc))
    print(verdict_table(sc))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="toolkit", description="Switchover Lab: simulate QEMU precopy live migration.")
    from . import __version__
    parser.add_argument("--version", action="version", version=f"switchover-lab {__version__}")
    sub = parser.add_subparsers(dest="command")
    run = sub.add_parser("run", help="simulate one scenario under several avail settings "
                                     "(the default command)")
    run.add_argument("--set", action="append", default=[], metavar="NAME=VALUE",
                     help="change a parameter of the default scenario, e.g. --set "
                          "dirty_rate=2GiB/s (repeatable)")
    run.set_defaults(func=cmd_run)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the exit status (0 ok, 2 bad input)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        args = parser.parse_args(["run"] + list(argv or []))
    try:
        return args.func(args)
    except (ValueError, TypeError) as err:
        print(f"toolkit: error: {err}", file=sys.stderr)
        return 2
