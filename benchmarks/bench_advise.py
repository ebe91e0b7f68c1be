"""advise's speed: the operator's question for a 16 GiB guest (target: under 5 s on 2 cores).

Prints the wall time of ``toolkit.advise`` for the README's example, a 16 GiB
guest dirtying 400 MiB/s on a 25 Gbit/s link with a 300 ms budget, under two
layers: libvirt (max-bandwidth unlimited: the verdict under QEMU's estimate, the
x4 avail scan, both edges bisected to 1 %, 3 settings x 3 seeds x 3 headroom
factors of bands), and QEMU's own defaults (128 MiB/s, below its dirty rate: no
avail is safe, so it also simulates the alternatives, and its runs that never
converge each go to the horizon, three first passes: 384 s). Both have the
target. Each line gives the wall time, the process's CPU time (what the runs cost
whatever else the machine does: on 2 free cores the wall time is about half of
it), the simulations run, and the answer, so that two versions can be compared
on the same answers.

``--against DIR`` runs the same calls, alternately, with the toolkit of another
checkout ``DIR`` (e.g. ``git worktree add /tmp/before HEAD~3``), in a process of
its own, and prints both. The 1-minute load average before and after is printed
too: other work on the machine skews the wall times (not the CPU times much).

Run: ``python benchmarks/bench_advise.py [--against DIR]`` (about 20 s on 2 cores,
twice that with ``--against``).
"""
from __future__ import annotations

import argparse
import json
import os
import pathlib
import resource
import subprocess
import sys
import time

ROOT = pathlib.Path(__file__).resolve().parents[1]
GUEST = dict(ram_size="16GiB", dirty_rate="400MiB/s", link_bandwidth="25Gbit/s",
             downtime_limit=300)
LAYERS = ("libvirt", "qemu")
TARGET_S = 5.0


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def measure(layer: str, workers) -> dict:
    """One call of advise on GUEST under ``layer``: times and the answer's summary."""
    import toolkit as tk

    cpu, t0 = _cpu(), time.perf_counter()
    advice = tk.advise(**GUEST, layer=layer, workers=workers)
    wall, cpu = time.perf_counter() - t0, _cpu() - cpu
    band = "none" if advice.safe_band is None else \
        " to ".join(f"{x * 8 / 1e9:.4g}" for x in advice.safe_band) + " Gbit/s"
    edge = advice.smallest_converging
    alternatives = ", ".join(f"{a.name} {a.run.verdict.name.lower()}"
                             for a in advice.alternatives)
    return {"layer": layer, "wall_s": wall, "cpu_s": cpu,
            "simulations": advice.inputs["simulations"],
            "answer": f"estimate {advice.estimate.verdict.name.lower()}, safe avail {band}, "
                      f"smallest converging {'-' if edge is None else int(edge.avail)} B/s, "
                      f"alternatives: {alternatives or 'none'}"}


def _child(args) -> int:
    """``--measure LAYER``: one measurement as a JSON line (the ``--against`` side)."""
    import toolkit as tk

    tk.warmup(verbose=False)
    print(json.dumps(measure(args.measure, args.workers)))
    return 0


def _line(who: str, m: dict) -> str:
    goal = "met" if m["wall_s"] < TARGET_S else "MISSED"
    return (f"{who:<7} layer {m['layer']:<8} wall {m['wall_s']:5.2f} s (target < "
            f"{TARGET_S:g} s: {goal}), CPU {m['cpu_s']:5.2f} s, {m['simulations']} "
            f"simulations; {m['answer']}")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=None, help="threads (default: CPUs)")
    parser.add_argument("--against", metavar="DIR", type=pathlib.Path,
                        help="also time the toolkit of this checkout (the 'before')")
    parser.add_argument("--measure", choices=LAYERS, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.measure:
        return _child(args)
    if args.against is not None and not (args.against / "toolkit" / "advise.py").is_file():
        parser.error(f"--against {args.against}: no toolkit/advise.py there (expected a "
                     "checkout of this repository)")
    sys.path.insert(0, str(ROOT))
    import toolkit as tk

    print(f"warm-up (numba cache): {tk.warmup(verbose=False):.1f} s")
    print(f"CPUs: {os.cpu_count()}, load average before: {os.getloadavg()[0]:.2f}")
    for layer in LAYERS:
        if args.against is not None:
            cmd = [sys.executable, str(ROOT / "benchmarks" / "bench_advise.py"),
                   "--measure", layer] + ([] if args.workers is None else
                                          ["--workers", str(args.workers)])
            env = {**os.environ, "PYTHONPATH": str(args.against.resolve())}
            out = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True,
                                 cwd=args.against)
            print(_line("before", json.loads(out.stdout.splitlines()[-1])), flush=True)
        print(_line("this" if args.against is None else "after",
                    measure(layer, args.workers)), flush=True)
    print(f"load average after: {os.getloadavg()[0]:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
