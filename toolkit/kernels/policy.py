"""A management layer's migration monitor (Nova, KubeVirt, oVirt), polled by the
migration thread.

The policy arrives as an ``int64`` array (``layout.POL_*``, built by
:mod:`toolkit.policies`). At each poll the monitor, in this order: acts on
the completion timeout (pause the guest, or abort), aborts when remaining has
made no progress for too long, notices a new iteration (remaining grew since
the previous poll), and applies the downtime-limit steps that are due.
**Simplification:** the real monitors run beside QEMU on their own clocks; here
a poll runs at the migration thread's next pass after it is due (at most one
iterate call or one rate-limit sleep late).
"""
from numba import njit

from ..constants import PAGE_SIZE, PS_PER_MS
from .layout import (POL_ACTION, POL_COMPLETION_MS, POL_DOUBLE, POL_INITIAL_DOWNTIME,
                     POL_LOWMARK, POL_N_STEPS, POL_NOVA_SWITCH, POL_POLL_MS, POL_PROGRESS_MS,
                     POL_START_ON_ITERATION, POL_STEPS, S_DIRTY, S_DOWNTIME_LIMIT,
                     S_PAUSED_T, S_POL_DEADLINE_MS, S_POL_LAST_REMAINING, S_POL_MARK,
                     S_POL_PROGRESS_MS, S_POL_START_MS, S_POL_STEP, S_POLL_NEXT,
                     S_POSTCOPY_REQUESTED,
                     S_SYNCS)

KEEP_GOING, ABORT, PAUSE, POSTCOPY = 0, 1, 2, 3


@njit(cache=True, nogil=True)
def monitor_start(pol, st):
    """Arm the monitor at the ``migrate`` command: the first downtime-limit, the
    deadline, the first poll."""
    st[S_POL_START_MS] = -1 if pol[POL_START_ON_ITERATION] != 0 else 0
    st[S_POL_LAST_REMAINING] = -1
    st[S_PAUSED_T] = -1
    if pol[POL_POLL_MS] == 0:
        return
    if pol[POL_INITIAL_DOWNTIME] >= 0:
        st[S_DOWNTIME_LIMIT] = pol[POL_INITIAL_DOWNTIME]
    st[S_POL_DEADLINE_MS] = pol[POL_COMPLETION_MS]
    st[S_POLL_NEXT] = pol[POL_POLL_MS] * PS_PER_MS


@njit(cache=True, nogil=True)
def monitor_poll(pol, st):
    """One poll of the monitor, due at ``st[S_POLL_NEXT]``.

    Returns
    -------
    int
        ``ABORT`` (``migrate_cancel``), ``PAUSE`` (suspend the guest; the
        migration goes on), ``POSTCOPY`` (``migrate-start-postcopy``) or
        ``KEEP_GOING``.
    """
    now_ms = st[S_POLL_NEXT] // PS_PER_MS
    st[S_POLL_NEXT] += pol[POL_POLL_MS] * PS_PER_MS
    remaining = st[S_DIRTY] * PAGE_SIZE
    paused = st[S_PAUSED_T] >= 0
    deadline = st[S_POL_DEADLINE_MS]
    if deadline > 0 and now_ms > deadline:
        if pol[POL_ACTION] == POSTCOPY and not st[S_POSTCOPY_REQUESTED]:
            st[S_POL_DEADLINE_MS] = 0
            return POSTCOPY
        if pol[POL_ACTION] == PAUSE and not paused:
            if pol[POL_DOUBLE] != 0:
                st[S_POL_DEADLINE_MS] = 2 * deadline
            else:
                st[S_POL_DEADLINE_MS] = 0            # nothing more happens on time
            return PAUSE
        if pol[POL_ACTION] == ABORT or (pol[POL_ACTION] == PAUSE and pol[POL_DOUBLE] != 0):
            return ABORT
    # progress: below the previous poll (KubeVirt) or below the lowest so far (oVirt)
    mark = st[S_POL_MARK] if pol[POL_LOWMARK] != 0 else st[S_POL_LAST_REMAINING]
    if st[S_POL_LAST_REMAINING] < 0 or remaining < mark:
        st[S_POL_PROGRESS_MS] = now_ms
        st[S_POL_MARK] = remaining
    elif pol[POL_PROGRESS_MS] > 0 and now_ms - st[S_POL_PROGRESS_MS] > pol[POL_PROGRESS_MS]:
        return ABORT
    if st[S_POL_START_MS] < 0 and 0 <= st[S_POL_LAST_REMAINING] < remaining:
        st[S_POL_START_MS] = now_ms                  # the first new iteration seen
    # Nova's should_switch_to_postcopy: after the first iteration, a poll that saw
    # remaining fall by less than 10 % of the previous poll's
    previous = st[S_POL_LAST_REMAINING]
    switch = pol[POL_NOVA_SWITCH] != 0 and previous > 0 and st[S_SYNCS] > 1 and \
        st[S_POSTCOPY_REQUESTED] == 0 and \
        round((previous - remaining) * 100 / previous) < 10
    st[S_POL_LAST_REMAINING] = remaining
    if st[S_POL_START_MS] >= 0:
        while st[S_POL_STEP] < pol[POL_N_STEPS] and \
                now_ms >= st[S_POL_START_MS] + pol[POL_STEPS + 2 * st[S_POL_STEP]]:
            st[S_DOWNTIME_LIMIT] = pol[POL_STEPS + 2 * st[S_POL_STEP] + 1]
            st[S_POL_STEP] += 1
    return POSTCOPY if switch else KEEP_GOING
