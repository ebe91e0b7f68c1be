"""A management layer's migration monitor (Nova, KubeVirt, oVirt, Proxmox VE), polled
by the migration thread.

The policy arrives as an ``int64`` array (``layout.POL_*``, built by
:mod:`toolkit.policies`). At each poll the monitor, in this order: acts on
the completion timeout (pause the guest, or abort), aborts when remaining has
made no progress for too long, notices a new iteration (remaining grew since
the previous poll), and applies the downtime-limit steps that are due: on time
(Nova, oVirt), on a counter of polls that saw remaining grow (Proxmox), or on a
new iteration after a cooldown (KubeVirt VEP 291); then KubeVirt's stall
detector (VEP 248) looks at remaining at each new iteration.
**Simplification:** the real monitors run beside QEMU on their own clocks; here
a poll runs at the migration thread's next pass after it is due (at most one
iterate call or one rate-limit sleep late).
"""
from numba import njit

from ..constants import PAGE_SIZE, PS_PER_MS
from .layout import (POL_ACTION, POL_COMPLETION_MS, POL_COOLDOWN_MS, POL_COUNT, POL_DOUBLE,
                     POL_FAST_POLL_MS, POL_FORCE_DOWNTIME, POL_INITIAL_DOWNTIME, POL_LOWMARK,
                     POL_N_STEPS, POL_NOVA_SWITCH, POL_POLL_MS, POL_PROGRESS_MS,
                     POL_STALL_ABORT, POL_STALL_DOWNTIME, POL_STALL_MARGIN, POL_STALL_MS,
                     POL_START_ON_ITERATION, POL_STEPS, POL_SWITCHOVER_MS, POL_TRIGGER,
                     S_DIRTY, S_DIRTY_BYTES_LAST_SYNC, S_DOWNTIME_LIMIT, S_LAST_BW, S_PAUSED_T,
                     S_POL_BEST,
                     S_POL_COUNTER, S_POL_DEADLINE_MS, S_POL_EWMA, S_POL_LAST_REMAINING,
                     S_POL_LAST_SYNCS, S_POL_LAST_TRANSFERRED, S_POL_MARK, S_POL_PERIOD,
                     S_POL_POLLS, S_POL_PROGRESS_MS, S_POL_STALL_MS, S_POL_STALL_PROGRESS_MS,
                     S_POL_START_MS, S_POL_STEP, S_POL_STEP_MS, S_POLL_NEXT,
                     S_POSTCOPY_REQUESTED, S_SYNCS, S_TRANSFERRED)

KEEP_GOING, ABORT, PAUSE, POSTCOPY = 0, 1, 2, 3


@njit(cache=True, nogil=True)
def monitor_start(pol, st):
    """Arm the monitor at the ``migrate`` command: the first downtime-limit, the
    deadline, the first poll."""
    st[S_POL_START_MS] = -1 if pol[POL_START_ON_ITERATION] != 0 else 0
    st[S_POL_LAST_REMAINING] = -1
    st[S_PAUSED_T] = -1
    st[S_LAST_BW] = -1
    st[S_POL_STEP_MS] = -1
    st[S_POL_EWMA] = -1
    st[S_POL_BEST] = -1
    st[S_POL_STALL_MS] = -1
    if pol[POL_POLL_MS] == 0:
        return
    st[S_POL_PERIOD] = pol[POL_POLL_MS]
    if pol[POL_INITIAL_DOWNTIME] >= 0:
        st[S_DOWNTIME_LIMIT] = pol[POL_INITIAL_DOWNTIME]
    if pol[POL_STALL_MS] > 0:          # KubeVirt: min(maxDowntimeMs, what QEMU has)
        st[S_DOWNTIME_LIMIT] = min(st[S_DOWNTIME_LIMIT], pol[POL_STALL_DOWNTIME])
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
    st[S_POLL_NEXT] += st[S_POL_PERIOD] * PS_PER_MS
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
    # Proxmox polls faster once remaining is below the average bytes sent per poll
    st[S_POL_POLLS] += 1
    fast = pol[POL_FAST_POLL_MS]
    if fast > 0 and st[S_POL_PERIOD] != fast:
        average = st[S_POL_LAST_TRANSFERRED] // st[S_POL_POLLS]
        if average > 0 and remaining < average:
            st[S_POL_PERIOD] = fast
            st[S_POLL_NEXT] = (now_ms + fast) * PS_PER_MS
    st[S_POL_LAST_TRANSFERRED] = st[S_TRANSFERRED]
    new_iteration = st[S_SYNCS] > st[S_POL_LAST_SYNCS]
    st[S_POL_LAST_SYNCS] = st[S_SYNCS]
    downtime_steps(pol, st, now_ms, remaining, previous, new_iteration)
    if pol[POL_STALL_MS] > 0:
        return stall_detector(pol, st, now_ms, remaining, new_iteration)
    return POSTCOPY if switch else KEEP_GOING


@njit(cache=True, nogil=True)
def downtime_steps(pol, st, now_ms, remaining, previous, new_iteration):
    """The downtime-limit steps due at this poll: on time from the schedule's
    start (Nova, oVirt), on Proxmox's counter, or on a new iteration after the
    cooldown (VEP 291); the last two never lower the limit."""
    trigger = pol[POL_TRIGGER]
    step = st[S_POL_STEP]
    if trigger == 0 and st[S_POL_START_MS] >= 0:
        while st[S_POL_STEP] < pol[POL_N_STEPS] and \
                now_ms >= st[S_POL_START_MS] + pol[POL_STEPS + 2 * st[S_POL_STEP]]:
            st[S_DOWNTIME_LIMIT] = pol[POL_STEPS + 2 * st[S_POL_STEP] + 1]
            st[S_POL_STEP] += 1
    elif trigger == 1:
        if (previous > 0 and remaining > previous) or remaining == 0:
            st[S_POL_COUNTER] += 1
        if st[S_POL_COUNTER] > pol[POL_COUNT] and step < pol[POL_N_STEPS]:
            st[S_POL_COUNTER] = 0
            st[S_DOWNTIME_LIMIT] = max(st[S_DOWNTIME_LIMIT], pol[POL_STEPS + 2 * step + 1])
            st[S_POL_STEP] = step + 1
    elif trigger == 2 and new_iteration and st[S_SYNCS] > pol[POL_COUNT] and \
            step < pol[POL_N_STEPS] and (st[S_POL_STEP_MS] < 0 or
                                         now_ms - st[S_POL_STEP_MS] >= pol[POL_COOLDOWN_MS]):
        st[S_DOWNTIME_LIMIT] = max(st[S_DOWNTIME_LIMIT], pol[POL_STEPS + 2 * step + 1])
        st[S_POL_STEP] = step + 1
        st[S_POL_STEP_MS] = now_ms


@njit(cache=True, nogil=True)
def stall_detector(pol, st, now_ms, remaining, new_iteration):
    """KubeVirt's stall detector (VEP 248) at one poll.

    Its bandwidth is an EWMA (alpha 0.4) of the last window's rate, as libvirt
    reports ``MemBps``. Progress is the remaining bytes at an iteration start
    (after its bitmap sync) falling more than the margin below their lowest
    value so far; a new iteration is noticed at the next poll (0.4 s); without it
    for the stall timeout, the estimated downtime ``remaining / EWMA`` decides:
    beyond the abort share of ``maxDowntimeMs`` a precopy-only migration aborts
    (postcopy when allowed), else downtime-limit goes to ``maxDowntimeMs`` and,
    if the switchover timeout passes too, to the forcing value.
    """
    if st[S_LAST_BW] >= 0:
        ewma = st[S_POL_EWMA]
        st[S_POL_EWMA] = st[S_LAST_BW] if ewma < 0 else (4 * st[S_LAST_BW] + 6 * ewma) // 10
    if new_iteration:                  # libvirt's MIGRATION_PASS event, seen at this poll
        start = st[S_DIRTY_BYTES_LAST_SYNC]         # remaining as the iteration began
        best = st[S_POL_BEST]
        if best < 0 or start * 100 < best * (100 - pol[POL_STALL_MARGIN]):
            st[S_POL_BEST] = start
            st[S_POL_STALL_PROGRESS_MS] = now_ms
    if st[S_POL_STALL_MS] < 0:
        if now_ms - st[S_POL_STALL_PROGRESS_MS] > pol[POL_STALL_MS]:
            st[S_POL_STALL_MS] = now_ms
            ewma = st[S_POL_EWMA]
            if ewma <= 0 or (remaining * 1000 // ewma) * 100 > \
                    pol[POL_STALL_ABORT] * pol[POL_STALL_DOWNTIME]:
                if pol[POL_ACTION] == POSTCOPY:
                    return POSTCOPY if st[S_POSTCOPY_REQUESTED] == 0 else KEEP_GOING
                return ABORT
            st[S_DOWNTIME_LIMIT] = max(st[S_DOWNTIME_LIMIT], pol[POL_STALL_DOWNTIME])
    elif now_ms - st[S_POL_STALL_MS] > pol[POL_SWITCHOVER_MS]:
        st[S_DOWNTIME_LIMIT] = pol[POL_FORCE_DOWNTIME]
    return KEEP_GOING
