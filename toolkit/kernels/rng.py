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
