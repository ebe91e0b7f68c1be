"""advise's speed: the operator's question for a 16 GiB guest (target: under 5 s on 2 cores).

Prints the wall time of ``toolkit.advise`` for the README's example, a 16 GiB
guest dirtying 400 MiB/s on a 25 Gbit/s link with a 300 ms budget, migrated by
libvirt (max-bandwidth unlimited): the verdict under QEMU's estimate, the x4
avail scan, both edges bisected to 1 %, and 3 settings x 3 seeds x 3 headroom
factors of bands. Then the same guest under QEMU's own defaults (128 MiB/s, below
its dirty rate: no avail is safe, so it also simulates the alternatives), whose
runs that never converge each go to the horizon (three first passes, 384 s):
reported, no target. The simulations each needed and the 1-minute load average
before and after are printed too: other work on the machine skews the figures.

Run: ``python benchmarks/bench_advise.py`` (about 20 s on 2 cores).
"""
from __future__ import annotations

import argparse
import os
import pathlib
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

from common import best_of  # noqa: E402

import toolkit as tk  # noqa: E402

GUEST = dict(ram_size="16GiB", dirty_rate="400MiB/s", link_bandwidth="25Gbit/s",
             downtime_limit=300)
TARGET_S = 5.0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=1, help="best of this many calls")
    parser.add_argument("--workers", type=int, default=None, help="threads (default: CPUs)")
    args = parser.parse_args(argv)
    print(f"warm-up (numba cache): {tk.warmup(verbose=False):.1f} s")
    print(f"CPUs: {os.cpu_count()}, load average before: {os.getloadavg()[0]:.2f}")
    for layer, target in (("libvirt", TARGET_S), ("qemu", None)):
        seconds, advice = best_of(lambda: tk.advise(**GUEST, layer=layer,
                                                    workers=args.workers), args.repeats)
        verdict = advice.estimate.verdict.name.lower()
        band = "none" if advice.safe_band is None else \
            " to ".join(f"{x * 8 / 1e9:.3g}" for x in advice.safe_band) + " Gbit/s"
        goal = "" if target is None else \
            f" (target < {target:g} s: {'met' if seconds < target else 'MISSED'})"
        print(f"advise 16 GiB, layer {layer}: {seconds:.2f} s for "
              f"{advice.inputs['simulations']} simulations{goal}; estimate {verdict}, "
              f"safe avail {band}, {len(advice.alternatives)} alternatives")
    print(f"load average after: {os.getloadavg()[0]:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
