"""Bitsets of guest pages: bit ``i & 63`` of word ``i >> 6`` is page ``i``."""
import numpy as np
from numba import njit

_ONE = np.uint64(1)
_M1 = np.uint64(0x5555555555555555)
_M2 = np.uint64(0x3333333333333333)
_M4 = np.uint64(0x0F0F0F0F0F0F0F0F)
_H01 = np.uint64(0x0101010101010101)


@njit(cache=True, nogil=True, inline="always")
def popcount(x):
    """Number of set bits of a ``uint64`` word (SWAR; LLVM lowers it to popcnt)."""
    x = x - ((x >> _ONE) & _M1)
    x = (x & _M2) + ((x >> np.uint64(2)) & _M2)
    x = (x + (x >> np.uint64(4))) & _M4
    return np.int64((x * _H01) >> np.uint64(56))


@njit(cache=True, nogil=True, inline="always")
def lowest_bit(x):
    """Index (0..63) of the lowest set bit of a non-zero ``uint64`` word."""
    return popcount((x & (~x + _ONE)) - _ONE)


@njit(cache=True, nogil=True, inline="always")
def set_bit(words, i):
    """Set page ``i``."""
    words[i >> 6] |= _ONE << np.uint64(i & 63)


@njit(cache=True, nogil=True, inline="always")
def test_bit(words, i):
    """True if page ``i`` is set."""
    return (words[i >> 6] >> np.uint64(i & 63)) & _ONE != 0


@njit(cache=True, nogil=True)
def set_range(words, start, stop):
    """Set pages ``start <= i < stop``, a whole word at a time where possible."""
    i = start
    while i < stop and (i & 63) != 0:
        words[i >> 6] |= _ONE << np.uint64(i & 63)
        i += 1
    while i + 64 <= stop:
        words[i >> 6] = ~np.uint64(0)
        i += 64
    while i < stop:
        words[i >> 6] |= _ONE << np.uint64(i & 63)
        i += 1


@njit(cache=True, nogil=True)
def count(words):
    """Number of set pages."""
    n = 0
    for w in words:
        n += popcount(w)
    return n


@njit(cache=True, nogil=True)
def count_range(words, start, stop):
    """Number of set pages ``start <= i < stop``."""
    n = 0
    i = start
    while i < stop and (i & 63) != 0:
        n += test_bit(words, i)
        i += 1
    while i + 64 <= stop:
        n += popcount(words[i >> 6])
        i += 64
    while i < stop:
        n += test_bit(words, i)
        i += 1
    return n
