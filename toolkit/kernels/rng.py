"""SplitMix64 pseudo-random numbers, small enough to reproduce in pure Python.

The tests' reference simulator reimplements the same recurrence so that both
draw the same pages.
"""
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
