"""Compile (or load from numba's cache) every kernel before first use.

The module is private: ``tk.warmup`` is the function.
"""
from __future__ import annotations

import time


def warmup(verbose: bool = True) -> float:
    """Compile every kernel by running one tiny migration of each workload.

    Kernels are compiled with ``cache=True``: the first call on a machine
    compiles (tens of seconds on 2 cores) and writes numba's cache next to the
    sources; later processes load it in about a second.

    Parameters
    ----------
    verbose : bool
        Print the time taken.

    Returns
    -------
    float
        Seconds spent compiling or loading. [s]
    """
    from ._simulate import run_kernel
    from .scenario import Scenario

    start = time.perf_counter()
    for workload in ("uniform", "hotcold", "sequential"):
        run_kernel(Scenario(ram_size="1MiB", workload=workload, write_range="256KiB",
                            write_range_start=0, dirty_rate="1MiB/s", max_time=1.0,
                            check=True))
    elapsed = time.perf_counter() - start
    if verbose:
        print(f"toolkit.warmup: kernels ready in {elapsed:.1f} s")
    return elapsed
