"""Guest writes: what the vCPUs dirty, logged the way KVM's dirty log does.

The guest's writes come in up to two deterministic streams, each writing into
its own range of pages at its own rate: stream ``s`` issues write ``k`` at the
instant its rate reaches ``k + 1`` writes. ``uniform`` is one stream over all
of RAM; ``hotcold`` a stream over the hot set (``hot_share`` of the writes) and
one over the rest; ``sequential`` one stream whose page is a cursor sweeping
``write_range``; ``zipf`` one stream over RAM with Zipf page popularity;
``replay`` the writes of a recorded trace at their times. Random pages come
from each stream's own SplitMix64 sequence.
A write sets the page's bit in the dirty log (read and cleared by the next
bitmap sync) and in check mode bumps the page's version. The order of writes
between two looks at memory changes neither, so each stream is applied in one
go. (Whether a page of the initially-zero region was ever written is the union
of the log and every log merged before it: see ``migration_bitmap_sync``.)
"""
import numpy as np
from numba import njit

from .bitset import count_range
from . import layout as L
from .rng import below, skip_ahead, splitmix64, zipf_constants, zipf_rank


SLICE_PS = 10_000_000_000     # CPU_THROTTLE_TIMESLICE_NS: a throttled vCPU runs 10 ms a period [ps]


@njit(cache=True, nogil=True, inline="always")
def throttled_run_time(dt_ps, pct):
    """Time a vCPU throttled at ``pct`` % runs in the ``dt_ps`` [ps] after the throttle
    was set: periods of ``10 ms / (1 - pct)``, each a sleep of ``pct / (1 - pct)
    x 10 ms`` (the timer tick fires at once) then 10 ms of running
    (``cpu_throttle_timer_tick``). [ps]"""
    period = SLICE_PS * 100 // (100 - pct)
    full = dt_ps // period
    return full * SLICE_PS + max(0, dt_ps - full * period - (period - SLICE_PS))


@njit(cache=True, nogil=True)
def guest_run_time(p, st):
    """The guest's own running time by ``st[L.S_T]``: all of it but the time it was
    stopped before running again (postcopy), unless throttled (auto-converge:
    10 ms slices) or dirty-limited (a steady fraction). [ps]"""
    pct = st[L.S_THROTTLE]
    if pct != 0:
        return st[L.S_GUEST_BASE] + throttled_run_time(st[L.S_T] - st[L.S_THROTTLE_T0], pct)
    if st[L.S_DIRTY_LIMIT_T] >= 0:           # split so that the product cannot overflow
        dt = st[L.S_T] - st[L.S_THROTTLE_T0]
        ppm = p[L.P_DIRTY_QUOTA_PPM]
        return st[L.S_GUEST_BASE] + dt // 1_000_000 * ppm + dt % 1_000_000 * ppm // 1_000_000
    return st[L.S_T] - st[L.S_GUEST_OFFSET]


@njit(cache=True, nogil=True, inline="always")
def writes_due(t_ps, rate):
    """Number of writes a stream has issued by ``t_ps`` [ps] at ``rate`` [1/ps]."""
    return np.int64(np.float64(t_ps) * rate)


@njit(cache=True, nogil=True)
def replay_due(streams, t_ps):
    """Writes of a replayed trace due by ``t_ps`` [ps]: entries whose time is not later."""
    lo, hi = 0, (streams.shape[0] - L.G_REPLAY) // L.GR_SIZE
    t_us = np.float64(t_ps) / 1e6
    while lo < hi:                      # the first entry later than t_us
        mid = (lo + hi) // 2
        if streams[L.G_REPLAY + L.GR_SIZE * mid + L.GR_TIME] <= t_us:
            lo = mid + 1
        else:
            hi = mid
    return lo


@njit(cache=True, nogil=True)
def stream_range(p, workload, stream):
    """First page and number of pages stream ``stream`` of ``workload`` writes to."""
    if workload == L.SEQUENTIAL:
        return p[L.P_SEQ_START], p[L.P_SEQ_PAGES]
    hot = p[L.P_HOT_PAGES] if workload == L.HOTCOLD else 0    # else stream 0 covers all of RAM
    if stream == 0:
        return 0, hot if hot > 0 else p[L.P_N_PAGES]
    return hot, p[L.P_N_PAGES] - hot


@njit(cache=True, nogil=True, inline="always")
def next_page(workload, lo, size, k, state, zipf, seq):
    """Page of a stream's write ``k`` and the stream's next SplitMix64 state.

    ``zipf`` holds the exponent and the sampler's constants (``zipf`` workload);
    ``seq`` the sequential cursor's stride and first offset [pages]: write ``k``
    goes to ``lo + (offset + k * stride) % size``. (The hot loops over a
    sequential stream step a cursor instead: :func:`sequential_writes`.)
    """
    if workload == L.SEQUENTIAL:
        stride, offset = seq
        return lo + (offset + (k % size) * stride) % size, state
    if workload == L.ZIPF:
        state, rank = zipf_rank(state, size, zipf[0], zipf[1], zipf[2], zipf[3])
        return lo + rank - 1, state
    state, z = splitmix64(state)
    return lo + below(z, size), state


@njit(cache=True, nogil=True, inline="always")
def stream_writes(streams, st, s, run_time):
    """Writes stream ``s`` has applied, and those due by ``run_time`` [ps] (equal
    for an unused stream)."""
    done = st[L.S_STREAM_WRITES + s]
    rate = streams[L.G_RATE + s]
    return done, (writes_due(run_time, rate) if rate != 0.0 else done)


@njit(cache=True, nogil=True, inline="always")
def zero_write(k, q_ppm):
    """Whether write ``k`` of a stream writes zeros: ``q_ppm`` millionths of the
    writes do, spread evenly (write k is a zero write when
    ``floor((k + 1) q) > floor(k q)``, q = ``q_ppm`` / 10^6)."""
    m = k % 1_000_000
    return (m + 1) * q_ppm // 1_000_000 > m * q_ppm // 1_000_000


@njit(cache=True, nogil=True, inline="always")
def seq_params(p):
    """The sequential cursor's stride and first offset [pages]."""
    return p[L.P_SEQ_STRIDE], p[L.P_SEQ_CURSOR]


@njit(cache=True, nogil=True)
def zipf_params(p, workload, size):
    """Exponent and sampler constants of the zipf workload (unused otherwise)."""
    q = p[L.P_ZIPF_EXPONENT_MICRO] / 1e6
    if workload != L.ZIPF:
        return (q, 0.0, 0.0, 0.0)
    h_x1, h_n, s = zipf_constants(size, q)
    return (q, h_x1, h_n, s)


@njit(cache=True, nogil=True)
def write_pages(workload, check, lo, size, first, stop, state, zipf, seq, q_ppm, dirty_log,
                zero, src_version):
    """Writes ``first .. stop - 1`` of a stream, without counting; returns the RNG state.

    With zero writes (``q_ppm`` > 0) each write also sets the page's content in
    ``zero`` (which then covers all of RAM): a zero write makes it a zero page
    again, a data write a data page (:func:`write_pages_content`).
    """
    if q_ppm != 0:
        return write_pages_content(workload, check, lo, size, first, stop, state, zipf, seq,
                                   q_ppm, dirty_log, zero, src_version)
    if workload == L.SEQUENTIAL and not check:
        sequential_writes(lo, size, first, stop, seq, 0, False, dirty_log)
        return state
    # separate loops: a branch inside this one costs the other guests ~30 %
    for k in range(first, stop):
        page, state = next_page(workload, lo, size, k, state, zipf, seq)
        dirty_log[page >> 6] |= np.uint64(1) << np.uint64(page & 63)
        if check:
            src_version[page] += 1
    return state


@njit(cache=True, nogil=True)
def write_pages_content(workload, check, lo, size, first, stop, state, zipf, seq, q_ppm,
                        dirty_log, zero, src_version):
    """:func:`write_pages` for a guest with zero writes: each write also sets the
    page's content bit in ``zero``."""
    for k in range(first, stop):
        page, state = next_page(workload, lo, size, k, state, zipf, seq)
        log_write(page, k, q_ppm, check, dirty_log, zero, src_version)
    return state


@njit(cache=True, nogil=True, inline="always")
def log_write(page, k, q_ppm, check, dirty_log, zero, src_version):
    """Write ``k`` of a stream to ``page``: into the dirty log, with zero writes
    (``q_ppm`` > 0) into the page's content bit, in check mode a new version."""
    i = page >> 6
    bit = np.uint64(1) << np.uint64(page & 63)
    dirty_log[i] |= bit
    if q_ppm != 0:
        if zero_write(k, q_ppm):
            zero[i] |= bit
        else:
            zero[i] &= ~bit
    if check:
        src_version[page] += 1


@njit(cache=True, nogil=True)
def sequential_writes(lo, size, first, stop, seq, logged, counting, dirty_log):
    """A sequential stream's writes ``first .. stop - 1``: its cursor steps by the
    stride (no division per write). With ``counting``, the distinct pages of the
    range it adds to the log go onto ``logged`` and it stops once all ``size``
    are there (the rest change nothing). Returns ``logged``."""
    stride, offset = seq
    stride = stride % size
    pos = (offset + (first % size) * stride) % size
    for _ in range(first, stop):
        if counting and logged == size:
            return logged
        page = lo + pos
        i = page >> 6
        shift = np.uint64(page & 63)
        w = dirty_log[i]
        dirty_log[i] = w | (np.uint64(1) << shift)
        logged += np.int64(((w >> shift) & np.uint64(1)) ^ np.uint64(1))
        pos += stride
        if pos >= size:
            pos -= size
    return logged


@njit(cache=True, nogil=True)
def write_pages_counting(workload, lo, size, first, stop, state, seq, logged, dirty_log):
    """Writes ``first .. stop - 1`` of a stream while counting the distinct pages
    of its range in the log; once all ``size`` are there, the rest change nothing
    and are skipped (exactly: SplitMix64 skips ahead in O(1)).

    Returns
    -------
    state : uint64
        The stream's RNG state after write ``stop - 1``.
    logged : int
        Distinct pages of the range in the log.
    """
    if workload == L.SEQUENTIAL:
        return state, sequential_writes(lo, size, first, stop, seq, logged, True, dirty_log)
    for k in range(first, stop):
        if logged == size:
            return skip_ahead(state, stop - k), logged
        page, state = next_page(workload, lo, size, k, state, (0.0, 0.0, 0.0, 0.0), seq)
        i = page >> 6
        shift = np.uint64(page & 63)
        w = dirty_log[i]
        dirty_log[i] = w | (np.uint64(1) << shift)
        logged += np.int64(((w >> shift) & np.uint64(1)) ^ np.uint64(1))
    return state, logged


@njit(cache=True, nogil=True)
def guest_write_pages(p, streams, st, rng, dirty_log, zero, src_version):
    """Apply every guest write due by the current time ``st[S_T]``: a stream's
    writes accrue with the guest's running time (:func:`guest_run_time`).
    Nothing happens while the guest is stopped.

    Parameters
    ----------
    p : ndarray(int64)
        Run parameters (``layout.P_*``).
    streams : ndarray(float64)
        The write streams (``layout.STREAMS``): each stream's rate, then for
        ``replay`` the trace's writes, for ``phases`` the phases.
    st : ndarray(int64)
        Run state (``layout.S_*``); the write counters are advanced.
    rng : ndarray(uint64, 2)
        SplitMix64 state of each stream (``layout.SEEDS``), advanced in place.
    dirty_log : ndarray(uint64)
        Bitset of pages written since the last sync.
    zero : ndarray(uint64)
        With zero writes: the page-content array of ``migration_thread``, whose
        zero bits (over all of RAM then) come first.
    src_version : ndarray(int32)
        Per-page write count (check mode only, else empty).
    """
    if st[L.S_VM_RUNNING] == 0:
        return
    # the unused bitmap and dst_version: the arrays of the same types at hand
    guest_pages(p, streams, st, rng, dirty_log, zero, dirty_log, src_version, src_version,
                False)


@njit(cache=True, nogil=True)
def guest_fault_pages(p, streams, st, rng, bitmap, src_version, dst_version):
    """Postcopy: the guest runs on the destination; each of its writes due by now
    that touches a page still only on the source faults, and the source sends
    that page at once: it leaves the bitmap (the caller accounts it as sent).
    Returns the pages faulted.

    The writes come from the same streams as before the switch; nothing is logged
    (the destination does not track dirty pages). **Simplification:** a fault
    does not stall the vCPU.
    """
    return guest_pages(p, streams, st, rng, bitmap, bitmap, bitmap, src_version, dst_version,
                       True)


@njit(cache=True, nogil=True, inline="always")
def guest_pages(p, streams, st, rng, dirty_log, zero, bitmap, src_version, dst_version,
                fault):
    """The guest's writes due by now, logged (:func:`guest_write_pages`) or, with
    ``fault``, faulting (:func:`guest_fault_pages`): one skeleton for both, inlined
    into each with ``fault`` a constant. Returns the pages faulted.

    Counting a stream's distinct logged pages costs each write a dependent
    load, so it starts only once the log could be full (as many writes since
    the last sync as the range has pages), with one count of the range; check
    mode never counts, as every write bumps a version, nor does zipf, whose
    writes take a varying number of draws (no skipping ahead), nor a guest with
    zero writes, whose every write may change a page's content.
    """
    check = p[L.P_CHECK] != 0
    workload = p[L.P_WORKLOAD]
    q_ppm = p[L.P_ZERO_WRITE_PPM]
    seq = seq_params(p)
    run_time = guest_run_time(p, st)
    faults = 0
    if workload == L.REPLAY:
        done = st[L.S_WRITES]
        due = replay_due(streams, run_time)
        for k in range(done, due):
            page = np.int64(streams[L.G_REPLAY + L.GR_SIZE * k + L.GR_PAGE])
            if fault:
                faults += fault_page(page, bitmap, check, src_version, dst_version)
            else:
                log_write(page, k, q_ppm, check, dirty_log, zero, src_version)
        st[L.S_WRITES] = max(done, due)
    elif workload == L.PHASES:
        faults = phase_writes(p, streams, st, rng, run_time, dirty_log, zero, bitmap,
                              src_version, dst_version, fault)
    else:
        no_count = check or workload == L.ZIPF or q_ppm != 0
        for s in range(L.N_STREAMS):
            done, due = stream_writes(streams, st, s, run_time)
            if due <= done:
                continue
            lo, size = stream_range(p, workload, s)
            state = rng[L.R_STATE + s]
            if fault:
                state, n = fault_pages(workload, check, lo, size, done, due, state,
                                       zipf_params(p, workload, size), seq, bitmap,
                                       src_version, dst_version)
                faults += n
            else:
                state = log_stream_writes(p, st, s, workload, check, lo, size, done, due,
                                          state, seq, q_ppm, no_count, dirty_log, zero,
                                          src_version)
            rng[L.R_STATE + s] = state
            st[L.S_WRITES] += due - done
            st[L.S_STREAM_WRITES + s] = due
    if fault:
        st[L.S_FAULTS] += faults
    return faults


@njit(cache=True, nogil=True, inline="always")
def log_stream_writes(p, st, s, workload, check, lo, size, done, due, state, seq, q_ppm,
                      no_count, dirty_log, zero, src_version):
    """Stream ``s``'s writes ``done .. due - 1`` into the dirty log, counting its
    distinct logged pages once the log could be full; returns its RNG state."""
    logged = st[L.S_LOG + s]
    k = done
    if logged < 0 or no_count:
        stop = due if no_count else min(due, max(done, st[L.S_SYNC_WRITES + s] + size))
        state = write_pages(workload, check, lo, size, done, stop, state,
                            zipf_params(p, workload, size), seq, q_ppm, dirty_log, zero,
                            src_version)
        k = stop
        if k < due:
            logged = count_range(dirty_log, lo, lo + size)
    if k < due:
        state, logged = write_pages_counting(workload, lo, size, k, due, state, seq, logged,
                                             dirty_log)
    st[L.S_LOG + s] = logged
    return state


@njit(cache=True, nogil=True, inline="always")
def fault_page(page, bitmap, check, src_version, dst_version):
    """Postcopy: a write to ``page``; 1 if the page was still only on the source
    (it leaves the bitmap, and the destination gets its version), else 0."""
    i = page >> 6
    bit = np.uint64(1) << np.uint64(page & 63)
    if bitmap[i] & bit:
        bitmap[i] &= ~bit
        if check:
            dst_version[page] = src_version[page]
        return 1
    return 0


@njit(cache=True, nogil=True)
def fault_pages(workload, check, lo, size, first, stop, state, zipf, seq, bitmap, src_version,
                dst_version):
    """Postcopy: writes ``first .. stop - 1`` of a stream on the destination.

    Returns
    -------
    state : uint64
        The stream's RNG state.
    faults : int
        Pages faulted.
    """
    faults = 0
    for k in range(first, stop):
        page, state = next_page(workload, lo, size, k, state, zipf, seq)
        # inline, not fault_page: a call passing arrays costs NRT refcounting per write
        i = page >> 6
        bit = np.uint64(1) << np.uint64(page & 63)
        if bitmap[i] & bit:
            bitmap[i] &= ~bit
            faults += 1
            if check:
                dst_version[page] = src_version[page]
    return state, faults


@njit(cache=True, nogil=True)
def phase_writes(p, streams, st, rng, run_time, dirty_log, zero, bitmap, src_version,
                 dst_version, fault):
    """phases: the writes due by ``run_time`` [ps], phase after phase, the list
    cycling. Each phase's streams start afresh (a sequential cursor at its range's
    start) and draw from the guest's two SplitMix64 streams. Logged, or with
    ``fault``, faulting (postcopy). Returns the pages faulted."""
    check = p[L.P_CHECK] != 0
    q_ppm = p[L.P_ZERO_WRITE_PPM]
    seq = seq_params(p)
    n_phases = (streams.shape[0] - L.G_PHASES) // L.GP_SIZE
    faults = 0
    while True:
        base = L.G_PHASES + L.GP_SIZE * st[L.S_PHASE_IDX]
        start = st[L.S_PHASE_START]
        end = start + np.int64(streams[base + L.GP_DURATION] * 1e6)
        workload = np.int64(streams[base + L.GP_WORKLOAD])
        for s in range(L.N_STREAMS):
            rate = streams[base + L.GP_RATE + s]
            if rate == 0.0:
                continue
            done = st[L.S_PHASE_DONE + s]
            due = writes_due(min(run_time, end) - start, rate)
            if due <= done:
                continue
            lo, size = stream_range(p, workload, s)
            zipf = zipf_params(p, workload, size)
            state = rng[L.R_STATE + s]
            if fault:
                state, n = fault_pages(workload, check, lo, size, done, due, state, zipf,
                                       seq, bitmap, src_version, dst_version)
                faults += n
            else:
                state = write_pages(workload, check, lo, size, done, due, state, zipf,
                                    seq, q_ppm, dirty_log, zero, src_version)
            rng[L.R_STATE + s] = state
            st[L.S_PHASE_DONE + s] = due
            st[L.S_WRITES] += due - done
        if run_time < end:
            return faults
        st[L.S_PHASE_IDX] = (st[L.S_PHASE_IDX] + 1) % n_phases
        st[L.S_PHASE_START] = end
        for s in range(L.N_STREAMS):
            st[L.S_PHASE_DONE + s] = 0
