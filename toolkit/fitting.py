"""One-dimensional minimisation for the toolkit's fits (no SciPy needed)."""
from __future__ import annotations

import math


def golden_section(f, lo: float, hi: float, steps: int = 60) -> tuple[float, float]:
    """Minimise ``f`` on ``[lo, hi]`` by golden-section search.

    Returns
    -------
    value, x : float
        The smallest value found and where: the better of the last two points
        evaluated.
    """
    ratio = (math.sqrt(5) - 1) / 2
    c, d = hi - ratio * (hi - lo), lo + ratio * (hi - lo)
    fc, fd = f(c), f(d)
    for _ in range(steps):
        if fc <= fd:
            hi, d, fd = d, c, fc
            c = hi - ratio * (hi - lo)
            fc = f(c)
        else:
            lo, c, fc = c, d, fd
            d = lo + ratio * (hi - lo)
            fd = f(d)
    return min((fc, c), (fd, d))
