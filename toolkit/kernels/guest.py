"""Guest writes: what the vCPUs dirty, logged the way KVM's dirty log does.

Writes form one deterministic stream per run: write ``k`` happens at the instant
the stream's rate reaches ``k + 1`` writes, and its page comes from the run's
SplitMix64 stream (``uniform``, ``hotcold``) or from a cursor (``sequential``).
A write sets the page's bit in the dirty log (read and cleared by the next bitmap
sync), marks a page of the initially-zero region as written, and in check mode bumps the page's version.
"""
import numpy as np
from numba import njit

from .bitset import count, count_range, set_bit
from .rng import below, skip_ahead, splitmix64
from .layout import (HOTCOLD, P_CHECK, P_HOT_CUT, P_HOT_PAGES, P_N_PAGES,
                     P_SEQ_PAGES, P_SEQ_START, P_WORKLOAD, P_ZERO_START, S_LOG_HOT,
                     S_LOG_PAGES, S_SYNC_WRITES, S_T, S_VM_RUNNING, S_WRITES, UNIFORM)


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
    # once every page a write can hit is in the log, further writes change
    # nothing but versions: skip them (exactly, SplitMix64 skips ahead in O(1))
    skip = not check
    zero_start = p[P_ZERO_START]
    hot = p[P_HOT_PAGES]
    cold = n_pages - hot
    cut = np.uint64(p[P_HOT_CUT])
    start = p[P_SEQ_START]
    span = p[P_SEQ_PAGES]
    if workload == UNIFORM:
        reachable, draws = n_pages, 1
    elif workload == HOTCOLD:
        reachable, draws = n_pages, 2
    else:
        reachable, draws = span, 0
    logged = st[S_LOG_PAGES]
    hot_logged = st[S_LOG_HOT]
    if skip and logged < 0 and done - st[S_SYNC_WRITES] >= reachable:
        # enough writes since the sync that the log may fill: count it once, then
        # keep counting (counting costs each write a dependent load, so not before)
        logged = count(dirty_log)
        hot_logged = count_range(dirty_log, 0, hot)
    counting = skip and logged >= 0
    state = rng[0]
    for k in range(done, due):
        if counting and logged == reachable:
            state = skip_ahead(state, draws * (due - k))
            break
        if workload == UNIFORM:
            state, z = splitmix64(state)
            page = below(z, n_pages)
        elif workload == HOTCOLD:
            state, z = splitmix64(state)
            is_hot = (z >> np.uint64(11)) < cut
            if is_hot and counting and hot_logged == hot:
                state = skip_ahead(state, 1)        # its page draw: the write changes nothing
                continue
            state, z = splitmix64(state)
            page = below(z, hot) if is_hot else hot + below(z, cold)
        else:  # SEQUENTIAL: one write per page, in address order, wrapping in the range
            page = start + k % span
        # inline, not a helper call: a call costs more than the write itself
        i = page >> 6
        shift = np.uint64(page & 63)
        w = dirty_log[i]
        dirty_log[i] = w | (np.uint64(1) << shift)
        if counting:
            new = np.int64(((w >> shift) & np.uint64(1)) ^ np.uint64(1))
            logged += new
            if page < hot:
                hot_logged += new
        if page >= zero_start:
            set_bit(written, page - zero_start)
        if check:
            src_version[page] += 1
    rng[0] = state
    st[S_LOG_PAGES] = logged if counting else -1
    st[S_LOG_HOT] = hot_logged
    st[S_WRITES] = due
