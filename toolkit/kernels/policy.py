"""A management layer's migration monitor (Nova, KubeVirt, oVirt, Proxmox VE), polled
by the migration thread.

The policy arrives as an ``int64`` array (``layout.POL_*``, built by
:mod:`toolkit.policies`). At each poll the monitor, in this order: acts on
the completion timeout (pause the guest, or abort; with KubeVirt's stall
detector, raise downtime-limit and force the switchover later), aborts when
remaining has made no progress for too long, notices a new iteration (remaining grew since
the previous poll), and applies the downtime-limit steps that are due: on time
(Nova, oVirt), on a counter of polls that saw remaining grow (Proxmox), or on a
new iteration after a cooldown (KubeVirt VEP 291); then KubeVirt's stall
detector (VEP 248) judges remaining at each new iteration after the first pass.
**Simplification:** the real monitors run beside QEMU on their own clocks; here
a poll runs at the migration thread's next pass after it is due (at most one
iterate call or one rate-limit sleep late).
"""
from numba import njit

from ..constants import PAGE_SIZE, PS_PER_MS
from . import layout as L

KEEP_GOING, ABORT, PAUSE, POSTCOPY = 0, 1, 2, 3


@njit(cache=True, nogil=True)
def monitor_start(pol, st):
    """Arm the monitor at the ``migrate`` command: the first downtime-limit, the
    deadline, the first poll."""
    st[L.S_POL_START_MS] = -1 if pol[L.POL_START_ON_ITERATION] != 0 else 0
    st[L.S_POL_LAST_REMAINING] = -1
    st[L.S_PAUSED_T] = -1
    st[L.S_LAST_BW] = -1
    st[L.S_POL_STEP_MS] = -1
    st[L.S_POL_EWMA] = -1
    st[L.S_POL_BEST] = -1
    st[L.S_POL_STALL_MS] = -1
    if pol[L.POL_POLL_MS] == 0:
        return
    st[L.S_POL_PERIOD] = pol[L.POL_POLL_MS]
    if pol[L.POL_INITIAL_DOWNTIME] >= 0:
        st[L.S_DOWNTIME_LIMIT] = pol[L.POL_INITIAL_DOWNTIME]
    if pol[L.POL_STALL_MS] > 0:          # KubeVirt: min(maxDowntimeMs, what QEMU has)
        st[L.S_DOWNTIME_LIMIT] = min(st[L.S_DOWNTIME_LIMIT], pol[L.POL_STALL_DOWNTIME])
    st[L.S_POL_DEADLINE_MS] = pol[L.POL_COMPLETION_MS]
    st[L.S_POLL_NEXT] = pol[L.POL_POLL_MS] * PS_PER_MS


@njit(cache=True, nogil=True)
def monitor_poll(pol, st):
    """One poll of the monitor, due at ``st[L.S_POLL_NEXT]``.

    Returns
    -------
    int
        ``ABORT`` (``migrate_cancel``), ``PAUSE`` (suspend the guest; the
        migration goes on), ``POSTCOPY`` (``migrate-start-postcopy``) or
        ``KEEP_GOING``.
    """
    now_ms = st[L.S_POLL_NEXT] // PS_PER_MS
    st[L.S_POLL_NEXT] += st[L.S_POL_PERIOD] * PS_PER_MS
    remaining = st[L.S_DIRTY] * PAGE_SIZE
    paused = st[L.S_PAUSED_T] >= 0
    deadline = st[L.S_POL_DEADLINE_MS]
    due = deadline > 0 and now_ms > deadline
    if due and pol[L.POL_STALL_MS] > 0 and pol[L.POL_ACTION] == PAUSE:
        # VEP 248 never pauses: maxDowntimeMs now, the forced switchover after the
        # switchover timeout (on the stall's timer, if a stall started it)
        st[L.S_POL_DEADLINE_MS] = 0
        st[L.S_DOWNTIME_LIMIT] = max(st[L.S_DOWNTIME_LIMIT], pol[L.POL_STALL_DOWNTIME])
        if st[L.S_POL_STALL_MS] < 0:
            st[L.S_POL_STALL_MS] = now_ms
    elif due:
        if pol[L.POL_ACTION] == POSTCOPY and not st[L.S_POSTCOPY_REQUESTED]:
            st[L.S_POL_DEADLINE_MS] = 0
            return POSTCOPY
        if pol[L.POL_ACTION] == PAUSE and not paused:
            if pol[L.POL_DOUBLE] != 0:
                st[L.S_POL_DEADLINE_MS] = 2 * deadline
            else:
                st[L.S_POL_DEADLINE_MS] = 0            # nothing more happens on time
            return PAUSE
        if pol[L.POL_ACTION] == ABORT or (pol[L.POL_ACTION] == PAUSE and pol[L.POL_DOUBLE] != 0):
            return ABORT
    # progress: below the previous poll (KubeVirt) or below the lowest so far (oVirt)
    mark = st[L.S_POL_MARK] if pol[L.POL_LOWMARK] != 0 else st[L.S_POL_LAST_REMAINING]
    if st[L.S_POL_LAST_REMAINING] < 0 or remaining < mark:
        st[L.S_POL_PROGRESS_MS] = now_ms
        st[L.S_POL_MARK] = remaining
    elif pol[L.POL_PROGRESS_MS] > 0 and now_ms - st[L.S_POL_PROGRESS_MS] > pol[L.POL_PROGRESS_MS]:
        return ABORT
    if st[L.S_POL_START_MS] < 0 and 0 <= st[L.S_POL_LAST_REMAINING] < remaining:
        st[L.S_POL_START_MS] = now_ms                  # the first new iteration seen
    # Nova's should_switch_to_postcopy: after the first iteration, a poll that saw
    # remaining fall by less than 10 % of the previous poll's
    previous = st[L.S_POL_LAST_REMAINING]
    switch = pol[L.POL_NOVA_SWITCH] != 0 and previous > 0 and st[L.S_SYNCS] > 1 and \
        st[L.S_POSTCOPY_REQUESTED] == 0 and \
        round((previous - remaining) * 100 / previous) < 10
    st[L.S_POL_LAST_REMAINING] = remaining
    # Proxmox polls faster once remaining is below the average bytes sent per poll
    st[L.S_POL_POLLS] += 1
    fast = pol[L.POL_FAST_POLL_MS]
    if fast > 0 and st[L.S_POL_PERIOD] != fast:
        average = st[L.S_POL_LAST_TRANSFERRED] // st[L.S_POL_POLLS]
        if average > 0 and remaining < average:
            st[L.S_POL_PERIOD] = fast
            st[L.S_POLL_NEXT] = (now_ms + fast) * PS_PER_MS
    st[L.S_POL_LAST_TRANSFERRED] = st[L.S_TRANSFERRED]
    new_iteration = st[L.S_SYNCS] > st[L.S_POL_LAST_SYNCS]
    st[L.S_POL_LAST_SYNCS] = st[L.S_SYNCS]
    downtime_steps(pol, st, now_ms, remaining, previous, new_iteration)
    if pol[L.POL_STALL_MS] > 0:
        return stall_detector(pol, st, now_ms, remaining, new_iteration)
    return POSTCOPY if switch else KEEP_GOING


@njit(cache=True, nogil=True)
def downtime_steps(pol, st, now_ms, remaining, previous, new_iteration):
    """The downtime-limit steps due at this poll: on time from the schedule's
    start (Nova, oVirt), on Proxmox's counter, or on a new iteration after the
    cooldown (VEP 291); the last two never lower the limit."""
    trigger = pol[L.POL_TRIGGER]
    step = st[L.S_POL_STEP]
    if trigger == 0 and st[L.S_POL_START_MS] >= 0:
        while st[L.S_POL_STEP] < pol[L.POL_N_STEPS] and now_ms >= st[L.S_POL_START_MS] + \
                pol[L.POL_STEPS + L.STEP_SIZE * st[L.S_POL_STEP] + L.STEP_TIME_MS]:
            st[L.S_DOWNTIME_LIMIT] = \
                pol[L.POL_STEPS + L.STEP_SIZE * st[L.S_POL_STEP] + L.STEP_DOWNTIME_LIMIT]
            st[L.S_POL_STEP] += 1
    elif trigger == 1:
        if (previous > 0 and remaining > previous) or remaining == 0:
            st[L.S_POL_COUNTER] += 1
        if st[L.S_POL_COUNTER] > pol[L.POL_COUNT] and step < pol[L.POL_N_STEPS]:
            st[L.S_POL_COUNTER] = 0
            st[L.S_DOWNTIME_LIMIT] = max(st[L.S_DOWNTIME_LIMIT], pol[
                L.POL_STEPS + L.STEP_SIZE * step + L.STEP_DOWNTIME_LIMIT])
            st[L.S_POL_STEP] = step + 1
    elif trigger == 2 and new_iteration and st[L.S_SYNCS] > pol[L.POL_COUNT] and \
            step < pol[L.POL_N_STEPS] and (st[L.S_POL_STEP_MS] < 0 or
                                         now_ms - st[L.S_POL_STEP_MS] >= pol[L.POL_COOLDOWN_MS]):
        st[L.S_DOWNTIME_LIMIT] = max(st[L.S_DOWNTIME_LIMIT], pol[
            L.POL_STEPS + L.STEP_SIZE * step + L.STEP_DOWNTIME_LIMIT])
        st[L.S_POL_STEP] = step + 1
        st[L.S_POL_STEP_MS] = now_ms


@njit(cache=True, nogil=True)
def stall_detector(pol, st, now_ms, remaining, new_iteration):
    """KubeVirt's stall detector (VEP 248) at one poll.

    Its bandwidth is an EWMA (alpha 0.4) of the last window's rate, as libvirt
    reports ``MemBps``. A stall is judged only at iteration boundaries (a new
    sync, noticed at the next poll, 0.4 s): the first one after the first pass
    sets the baseline; progress is the remaining bytes at an iteration start
    (after its bitmap sync) falling more than the margin below their lowest
    value so far. A boundary without progress more than the stall timeout after
    the last progress is a stall: the estimated downtime ``remaining / EWMA``
    decides: beyond the abort share of ``maxDowntimeMs`` a precopy-only
    migration aborts (postcopy when allowed), else downtime-limit goes to
    ``maxDowntimeMs`` and, once the switchover timeout has passed too (checked
    at every poll), to the forcing value.
    """
    if st[L.S_LAST_BW] >= 0:
        ewma = st[L.S_POL_EWMA]
        st[L.S_POL_EWMA] = st[L.S_LAST_BW] if ewma < 0 else (4 * st[L.S_LAST_BW] + 6 * ewma) // 10
    if st[L.S_POL_STALL_MS] < 0 and new_iteration and st[L.S_SYNCS] > 1:
        # libvirt's MIGRATION_PASS event, seen at this poll; the first pass (before
        # sync 2) has no remaining to judge: its end is the first baseline
        start = st[L.S_DIRTY_BYTES_LAST_SYNC]         # remaining as the iteration began
        best = st[L.S_POL_BEST]
        if best < 0 or start * 100 < best * (100 - pol[L.POL_STALL_MARGIN]):
            st[L.S_POL_BEST] = start
            st[L.S_POL_STALL_PROGRESS_MS] = now_ms
        elif now_ms - st[L.S_POL_STALL_PROGRESS_MS] > pol[L.POL_STALL_MS]:
            st[L.S_POL_STALL_MS] = now_ms
            ewma = st[L.S_POL_EWMA]
            if ewma <= 0 or (remaining * 1000 // ewma) * 100 > \
                    pol[L.POL_STALL_ABORT] * pol[L.POL_STALL_DOWNTIME]:
                if pol[L.POL_ACTION] == POSTCOPY:
                    return POSTCOPY if st[L.S_POSTCOPY_REQUESTED] == 0 else KEEP_GOING
                return ABORT
            st[L.S_DOWNTIME_LIMIT] = max(st[L.S_DOWNTIME_LIMIT], pol[L.POL_STALL_DOWNTIME])
    elif st[L.S_POL_STALL_MS] >= 0 and now_ms - st[L.S_POL_STALL_MS] > pol[L.POL_SWITCHOVER_MS]:
        st[L.S_DOWNTIME_LIMIT] = pol[L.POL_FORCE_DOWNTIME]
    return KEEP_GOING
