"""Guest writes: what the vCPUs dirty, logged the way KVM's dirty log does.

Writes form one deterministic stream per run: write ``k`` happens at the instant
the stream's rate reaches ``k + 1`` writes, and its page comes from the run's
SplitMix64 stream (``uniform``, ``hotcold``) or from a cursor (``sequential``).
A write sets the page's bit in the dirty log (read and cleared by the next bitmap
sync), marks a page of the initially-zero region as written, and in check mode bumps the page's version.
"""
import numpy as np
from numba import njit

from .bitset import set_bit
from .rng import below, splitmix64
from .layout import (HOTCOLD, P_CHECK, P_HOT_CUT, P_HOT_PAGES, P_N_PAGES,
                     P_SEQ_PAGES, P_SEQ_START, P_WORKLOAD, P_ZERO_START, S_T, S_VM_RUNNING,
                     S_WRITES, UNIFORM)


@njit(cache=True, nogil=True, inline="always")
def writes_due(t_ps, writes_per_ps):
    """Number of guest writes issued by time ``t_ps`` [ps] at ``writes_per_ps`` [1/ps]."""
    return np.int64(np.float64(t_ps) * writes_per_ps)


@njit(cache=True, nogil=True)
def guest_write_pages(p, writes_per_ps, st, rng, dirty_log, written, src_version):
    """Apply every guest write due by the current time ``st[S_T]``.

    Parameters
    ----------
    p : ndarray(int64)
        Run parameters (``layout.P_*``).
    writes_per_ps : float
        Page writes per picosecond. [1/ps]
    st : ndarray(int64)
        Run state (``layout.S_*``); ``S_WRITES`` is advanced.
    rng : ndarray(uint64, 1)
        SplitMix64 state, advanced in place.
    dirty_log : ndarray(uint64)
        Bitset of pages written since the last sync.
    written : ndarray(uint64)
        Bitset of the initially-zero region (from page ``P_ZERO_START``, a
        multiple of 64): pages written at least once, so no longer zero.
    src_version : ndarray(int32)
        Per-page write count (check mode only, else empty).
    """
    if st[S_VM_RUNNING] == 0:
        return
    done = st[S_WRITES]
    due = writes_due(st[S_T], writes_per_ps)
    if due <= done:
        return
    n_pages = p[P_N_PAGES]
    workload = p[P_WORKLOAD]
    check = p[P_CHECK] != 0
    zero_start = p[P_ZERO_START]
    state = rng[0]
    if workload == UNIFORM:
        n = n_pages
        for k in range(done, due):
            state, z = splitmix64(state)
            page = below(z, n)
            set_bit(dirty_log, page)
            if page >= zero_start:
                set_bit(written, page - zero_start)
            if check:
                src_version[page] += 1
    elif workload == HOTCOLD:
        hot = p[P_HOT_PAGES]
        cold = n_pages - hot
        cut = np.uint64(p[P_HOT_CUT])
        for k in range(done, due):
            state, z = splitmix64(state)
            is_hot = (z >> np.uint64(11)) < cut
            state, z = splitmix64(state)
            if is_hot:
                page = below(z, hot)
            else:
                page = hot + below(z, cold)
            set_bit(dirty_log, page)
            if page >= zero_start:
                set_bit(written, page - zero_start)
            if check:
                src_version[page] += 1
    else:  # SEQUENTIAL: one write per page, in address order, wrapping in the range
        start = p[P_SEQ_START]
        span = p[P_SEQ_PAGES]
        for k in range(done, due):
            page = start + k % span
            set_bit(dirty_log, page)
            if page >= zero_start:
                set_bit(written, page - zero_start)
            if check:
                src_version[page] += 1
    rng[0] = state
    st[S_WRITES] = due

