"""SplitMix64 pseudo-random numbers, small enough to reproduce in pure Python.

The tests' reference simulator reimplements the same recurrence so that both
draw the same pages.
"""
import math

import numpy as np
from numba import njit

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_MIX1 = np.uint64(0xBF58476D1CE4E5B9)
_MIX2 = np.uint64(0x94D049BB133111EB)


@njit(cache=True, nogil=True, inline="always")
def splitmix64(state):
    """Advance a SplitMix64 stream by one draw.

    Parameters
    ----------
    state : uint64
        Current state.

    Returns
    -------
    state : uint64
        Next state.
    value : uint64
        Uniform 64-bit draw.
    """
    state = state + _GOLDEN
    z = state
    z = (z ^ (z >> np.uint64(30))) * _MIX1
    z = (z ^ (z >> np.uint64(27))) * _MIX2
    return state, z ^ (z >> np.uint64(31))


@njit(cache=True, nogil=True, inline="always")
def below(value, n):
    """Map a uniform 64-bit draw to ``0 <= k < n`` (``n <= 2**32``) by multiply-shift.

    Lemire's method on the draw's high 32 bits: a multiplication instead of a
    64-bit division (several times faster), bias below ``n / 2**32``.
    """
    return np.int64(((value >> np.uint64(32)) * np.uint64(n)) >> np.uint64(32))


@njit(cache=True, nogil=True, inline="always")
def skip_ahead(state, n):
    """The state after ``n`` more draws: SplitMix64's state only counts up by a constant."""
    return state + np.uint64(n) * _GOLDEN


@njit(cache=True, nogil=True, inline="always")
def uniform01(value):
    """A double in [0, 1) from the top 53 bits of a 64-bit draw."""
    return np.float64(value >> np.uint64(11)) * (1.0 / 9007199254740992.0)


@njit(cache=True, nogil=True)
def zipf_h(x, q):
    """Integral of ``x ** -q``: ``H(x) = (x ** (1 - q) - 1) / (1 - q)``, ``log(x)`` at q = 1."""
    if q == 1.0:
        return math.log(x)
    return (x ** (1.0 - q) - 1.0) / (1.0 - q)


@njit(cache=True, nogil=True)
def zipf_h_inv(x, q):
    """The inverse of :func:`zipf_h`."""
    if q == 1.0:
        return math.exp(x)
    return (1.0 + x * (1.0 - q)) ** (1.0 / (1.0 - q))


@njit(cache=True, nogil=True)
def zipf_constants(n, q):
    """Constants of the rejection-inversion sampler over ranks 1..n with exponent q."""
    h_x1 = zipf_h(1.5, q) - 1.0
    h_n = zipf_h(n + 0.5, q)
    s = 2.0 - zipf_h_inv(zipf_h(2.5, q) - 2.0 ** -q, q)
    return h_x1, h_n, s


@njit(cache=True, nogil=True)
def zipf_rank(state, n, q, h_x1, h_n, s):
    """A rank in 1..n with probability proportional to ``rank ** -q``, exactly:
    Hörmann and Derflinger's rejection-inversion (1996), one draw per try.

    Returns
    -------
    state : uint64
        The stream's next state.
    rank : int
    """
    while True:
        state, z = splitmix64(state)
        u = h_n + uniform01(z) * (h_x1 - h_n)
        x = zipf_h_inv(u, q)
        k = np.int64(x + 0.5)
        if k < 1:
            k = 1
        elif k > n:
            k = n
        if k - x <= s or u >= zipf_h(k + 0.5, q) - np.float64(k) ** -q:
            return state, k
