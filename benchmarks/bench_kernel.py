"""Kernel speed, measured against this CPU's own limit in the same run.

Prints, for a 16 GiB guest:
  * page events per second of the migration kernel (guest page writes applied
    plus pages sent),
  * the same for a minimal loop that only draws random pages and sets bits
    (the most a page-level kernel could do on this CPU),
  * their ratio (target: the kernel at >= 40 % of the minimal loop),
  * the speed-up of the kernel over the pure-Python reference (tests/reference.py)
    on a guest small enough for the reference,
  * and what page content and multifd cost: the same guest with half its writes
    writing zeros over a half-zero RAM, with the destination populating RAM costed,
    and with multifd (2 channels; 8 with zstd), in page events per second relative
    to the data-only guest without multifd (same run).

Run: ``python benchmarks/bench_kernel.py`` (or ``make bench``). Timings are the
best of several repeats; ratios are taken within one run because this machine
is noisy.
"""
from __future__ import annotations

import argparse
import pathlib
import sys

import numpy as np
from numba import njit

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

from common import best_of  # noqa: E402

from tests.reference import Reference  # noqa: E402
from toolkit import Scenario, warmup  # noqa: E402
from toolkit.kernels import layout as L  # noqa: E402
from toolkit.kernels.bitset import set_bit  # noqa: E402
from toolkit.kernels.rng import below, splitmix64  # noqa: E402
from toolkit._simulate import run_kernel  # noqa: E402

BIG = dict(ram_size="16GiB", workload="uniform", dirty_rate="1GiB/s",
           link_bandwidth="10Gbit/s", max_bandwidth=0, max_time=40.0)
CONTENT = dict(zero_write_share=0.5, zero_fraction=0.5)
DESTINATION = dict(dst_populate_time=1.0, dst_copy_time=300.0)
MULTIFD = dict(multifd=True)
MULTIFD_ZSTD = dict(multifd=True, multifd_channels=8, multifd_compression="zstd")
SMALL = dict(ram_size="32MiB", workload="uniform", dirty_rate="200MiB/s",
             link_bandwidth="1Gbit/s", max_bandwidth=0, downtime_limit=20, max_time=5.0)


@njit(cache=True, nogil=True)
def minimal_loop(bits, n_pages, n_events, state):
    """Draw ``n_events`` random pages and set their bits: nothing else."""
    for _ in range(n_events):
        state, z = splitmix64(state)
        set_bit(bits, below(z, n_pages))
    return state


def events(state) -> int:
    return int(state[L.S_WRITES] + state[L.S_NORMAL] + state[L.S_ZERO])


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    warmup(verbose=False)

    big = Scenario(**BIG)
    t_kernel, raw = best_of(lambda: run_kernel(big), args.repeats)
    n_kernel = events(raw.state)
    kernel_rate = n_kernel / t_kernel

    bits = np.zeros(big.n_pages // 64, np.uint64)
    minimal_loop(bits, big.n_pages, 10, np.uint64(1))
    t_min, _ = best_of(lambda: minimal_loop(bits, big.n_pages, n_kernel, np.uint64(1)),
                       args.repeats)
    min_rate = n_kernel / t_min

    small = Scenario(**SMALL)
    t_small, raw_small = best_of(lambda: run_kernel(small), args.repeats)
    t_ref, ref = best_of(lambda: Reference(small).run(), 1)
    n_small = events(raw_small.state)
    assert n_small == ref.writes + ref.normal + ref.zero

    converged = "converged" if raw.state[L.S_CONVERGED] else "did not converge"
    print(f"16 GiB guest, uniform 1 GiB/s, 10 Gbit/s unlimited ({converged} after "
          f"{raw.state[L.S_T] / 1e12:.1f} simulated s, {raw.state[L.S_N_WINDOWS]} windows)")
    print(f"  kernel:        {n_kernel:>12,d} page events in {t_kernel * 1e3:8.1f} ms "
          f"= {kernel_rate / 1e6:8.1f} M events/s")
    print(f"  minimal loop:  {n_kernel:>12,d} page events in {t_min * 1e3:8.1f} ms "
          f"= {min_rate / 1e6:8.1f} M events/s")
    print(f"  kernel / minimal loop: {kernel_rate / min_rate:.2f}  (target >= 0.40)")
    print(f"  windows per second:    {raw.state[L.S_N_WINDOWS] / t_kernel:,.0f}")
    print(f"32 MiB guest ({n_small:,d} page events): kernel {t_small * 1e3:.2f} ms, "
          f"pure-Python reference {t_ref * 1e3:.0f} ms")
    print(f"  kernel speed-up over the reference: {t_ref / t_small:,.0f}x")
    print("page content and multifd, 16 GiB guest as above, page events/s relative to it:")
    for label, extra in (("half the writes zeros, half of RAM zero", CONTENT),
                         ("destination populating costed", DESTINATION),
                         ("multifd, 2 channels", MULTIFD),
                         ("multifd, 8 channels, zstd", MULTIFD_ZSTD)):
        sc = Scenario(**BIG, **extra)
        t, r = best_of(lambda sc=sc: run_kernel(sc), args.repeats)
        print(f"  {label:42s} {events(r.state) / t / kernel_rate:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
