"""What the benchmarks share."""
import time

import numpy as np


def best_of(fn, repeats):
    """Best wall time of ``repeats`` calls of ``fn`` [s], and the last result."""
    best, out = np.inf, None
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
    return best, out
