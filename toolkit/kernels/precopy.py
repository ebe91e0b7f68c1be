"""The migration thread of QEMU precopy, one 4 KiB page at a time.

Mirrors QEMU 10.0 ``migration/migration.c`` and ``migration/ram.c`` for a
RAM-only guest without xbzrle (with multifd, see :mod:`.multifd`; auto-converge;
dirty-limit approximated; postcopy as a summary); see ``docs/model.md`` for what
is simplified. Time is an integer number of picoseconds since the ``migrate``
command; QEMU's own clocks (``now_ms``) are that time truncated to milliseconds.
"""
import numpy as np
from numba import njit

from ..constants import (MULTIFD_HEADER_WIRE, MULTIFD_PAGES, NORMAL_PAGE_WIRE, PAGE_SIZE,
                         PS_PER_MS, SECTION_WIRE, THP_PAGES, ZERO_PAGE_WIRE)
from .bitset import lowest_bit, popcount, set_range
from .guest import guest_fault_pages, guest_run_time, guest_write_pages
from .multifd import (multifd_inflight, multifd_queue_pages, multifd_ram_flush_and_sync,
                      multifd_settle, multifd_setup)
from .policy import ABORT, PAUSE, POSTCOPY, monitor_poll, monitor_start
from . import layout as L

BUFFER_DELAY = 100           # window of the rate limit and the estimate [ms]
MAX_WAIT = 50                # cap on one ram_save_iterate call [ms]
FLUSH_PAGES = 32             # normal pages per QEMUFile flush: 64 iovecs, header + data each
DIRTY_SYNC_TIMESLICE_MS = 5000  # CPU_THROTTLE_DIRTY_SYNC_TIMESLICE_MS (auto-converge, 9.2+)
INT64_MAX = 2**63 - 1
INT64_LIMIT = 9.223372036854775808e18   # 2^63 as a float: products at or above it saturate


@njit(cache=True, nogil=True, inline="always")
def highest_bit(x):
    """Index (0..63) of the highest set bit of a non-zero ``uint64`` word."""
    n = 0
    for shift in (32, 16, 8, 4, 2, 1):
        if x >> np.uint64(shift):
            x = x >> np.uint64(shift)
            n += shift
    return n


@njit(cache=True, nogil=True)
def migration_transferred_bytes(st):
    """Bytes the QEMUFile has flushed and the multifd channels have written (what
    QEMU's counters see). [B]"""
    return st[L.S_TRANSFERRED] - st[L.S_UNFLUSHED] * NORMAL_PAGE_WIRE - multifd_inflight(st)


@njit(cache=True, nogil=True)
def migration_rate_exceeded(p, st):
    """True once this window's bytes exceed ``max_bandwidth / 10`` (0 = unlimited).

    The check sees a normal page only once the QEMUFile is flushed, every
    ``FLUSH_PAGES`` pages (``add_to_iovec`` flushes at ``MAX_IOV_SIZE`` = 64
    iovecs): a window overshoots its budget by up to 31 pages, as real QEMU
    10.0 does (40 MB/s sends 992 pages per window, not 975).
    """
    limit = p[L.P_RATE_LIMIT_MAX]
    return limit != 0 and migration_transferred_bytes(st) - st[L.S_RATE_START] > limit


@njit(cache=True, nogil=True)
def migration_bitmap_sync(p, streams, st, rng, dirty_log, bitmap, content, src_version):
    """Merge the dirty log into the migration bitmap; count only newly dirty pages.

    The log is read at the start of the sync; the thread is then busy for
    ``sync_time_fixed + sync_time_per_gib * RAM + sync_time_per_dirty_page * logged``.
    The dirty-page rate period (> 1 s) closes as in QEMU. Page content (see
    ``migration_thread``'s ``content``): without zero writes, a logged page of
    the initially-zero region is a data page from now on (it leaves the zero
    bits); with them, the written bits (pages allocated) gain the log.
    """
    guest_write_pages(p, streams, st, rng, dirty_log, content, src_version)
    st[L.S_SYNCS] += 1
    if st[L.S_LAST_SYNC_MS] < 0:
        st[L.S_LAST_SYNC_MS] = st[L.S_T] // PS_PER_MS
    # branch-free word loops: a half-empty log makes "skip empty words" a coin toss
    logged = 0
    new = 0
    n_words = dirty_log.shape[0]
    zw0 = min(p[L.P_ZERO_WORD0], n_words)
    for i in range(n_words):
        w = dirty_log[i]
        logged += popcount(w)
        new += popcount(w & ~bitmap[i])
        bitmap[i] |= w
    if p[L.P_ZERO_WRITE_PPM] == 0:
        for i in range(zw0, n_words):
            content[i - zw0] &= ~dirty_log[i]
    elif p[L.P_WRITTEN_OFF] >= 0:
        off = p[L.P_WRITTEN_OFF]
        for i in range(n_words):
            content[off + i] |= dirty_log[i]
    dirty_log[:] = 0
    for s in range(L.N_STREAMS):
        st[L.S_LOG + s] = -1
        st[L.S_SYNC_WRITES + s] = st[L.S_STREAM_WRITES + s]
    st[L.S_DIRTY] += new
    st[L.S_PERIOD_PAGES] += new
    st[L.S_DIRTY_BYTES_LAST_SYNC] = st[L.S_DIRTY] * PAGE_SIZE
    st[L.S_T] += p[L.P_PS_SYNC_BASE] + logged * p[L.P_PS_SYNC_PAGE]
    end_ms = st[L.S_T] // PS_PER_MS
    if end_ms > st[L.S_LAST_SYNC_MS] + 1000:
        migration_trigger_throttle(p, st)
        st[L.S_DIRTY_RATE] = st[L.S_PERIOD_PAGES] * 1000 // (end_ms - st[L.S_LAST_SYNC_MS])
        st[L.S_LAST_SYNC_MS] = end_ms
        st[L.S_PERIOD_PAGES] = 0
        st[L.S_XFER_PREV] = migration_transferred_bytes(st)


@njit(cache=True, nogil=True)
def migration_trigger_throttle(p, st):
    """At a rate period's close: a period is high when its newly dirty bytes exceed
    ``throttle-trigger-threshold`` % of the bytes sent in it; every second high
    period (the count is not reset by low ones) throttles the guest down, with
    auto-converge on."""
    xfer = migration_transferred_bytes(st) - st[L.S_XFER_PREV]
    dirty = st[L.S_PERIOD_PAGES] * PAGE_SIZE
    threshold = xfer * p[L.P_THROTTLE_TRIGGER] // 100
    if dirty > threshold:
        st[L.S_HIGH_CNT] += 1
        if st[L.S_HIGH_CNT] >= 2:
            st[L.S_HIGH_CNT] = 0
            if p[L.P_AUTO_CONVERGE] != 0:
                mig_throttle_guest_down(p, st, dirty, threshold)
            elif p[L.P_DIRTY_LIMIT] != 0 and st[L.S_DIRTY_LIMIT_T] < 0:
                migration_dirty_limit_guest(p, st)


@njit(cache=True, nogil=True)
def migration_dirty_limit_guest(p, st):
    """dirty-limit, once: every vCPU gets the ``vcpu-dirty-limit`` quota.

    **Approximation:** QEMU's controller measures each vCPU's dirty rate every
    ``x-vcpu-dirty-limit-period`` and stretches its dirty-ring-full sleeps until
    the rate meets the quota; here the guest runs at once at the steady fraction
    that meets it (``vcpus x vcpu-dirty-limit`` against its write rate), with no
    settling time and writes, not newly dirty pages, held to the quota.
    """
    st[L.S_GUEST_BASE] = guest_run_time(p, st)
    st[L.S_THROTTLE_T0] = st[L.S_T]
    st[L.S_DIRTY_LIMIT_T] = st[L.S_T]


@njit(cache=True, nogil=True)
def mig_throttle_guest_down(p, st, bytes_dirty_period, bytes_dirty_threshold):
    """Start throttling at ``cpu-throttle-initial`` %, or add ``cpu-throttle-increment``
    (less with tailslow), up to ``max-cpu-throttle``; ``cpu_throttle_set`` clamps
    to [1, 99]. The guest's running time so far is kept, its slices restart now."""
    pct = st[L.S_THROTTLE]
    if pct == 0:
        new = p[L.P_THROTTLE_INITIAL]
    else:
        inc = p[L.P_THROTTLE_INCREMENT]
        if p[L.P_THROTTLE_TAILSLOW] != 0:
            cpu_now = 100 - pct
            cpu_ideal = np.int64(cpu_now * (np.float64(bytes_dirty_threshold)
                                            / np.float64(bytes_dirty_period)))
            inc = min(cpu_now - cpu_ideal, inc)
        new = min(pct + inc, p[L.P_THROTTLE_MAX])
    new = max(1, min(99, new))
    st[L.S_GUEST_BASE] = guest_run_time(p, st)
    st[L.S_THROTTLE_T0] = st[L.S_T]
    st[L.S_THROTTLE] = new


@njit(cache=True, nogil=True)
def find_dirty_block(bitmap, n_pages, cursor, wrap):
    """First bitmap word holding a dirty page at or after ``cursor``.

    With ``wrap`` the search goes round once past the end of RAM, as QEMU's
    page search does; without, it stops at the end of RAM.

    Returns
    -------
    word : int
        Word index, -1 if no page is dirty.
    mask : uint64
        The dirty bits of that word at or after the first dirty page found.
    """
    n_words = (n_pages + 63) >> 6
    wi = cursor >> 6
    w = bitmap[wi] & (~np.uint64(0) << np.uint64(cursor & 63))
    if w:
        return wi, w
    for j in range(wi + 1, n_words):
        if bitmap[j]:
            return j, bitmap[j]
    if wrap:
        for j in range(0, wi + 1):
            if bitmap[j]:
                return j, bitmap[j]
    return -1, np.uint64(0)


@njit(cache=True, nogil=True, inline="always")
def content_flags(p):
    """What :func:`classify_pages` needs of ``p``, read once per loop: the first
    word the zero bits cover, zero writes on, RAM preallocated, destination
    tracked, and where the written and destination bits start in ``content``."""
    return (p[L.P_ZERO_WORD0], p[L.P_ZERO_WRITE_PPM] != 0, p[L.P_PREALLOC] != 0,
            p[L.P_DST_OFF] >= 0, p[L.P_WRITTEN_OFF], p[L.P_DST_OFF])


@njit(cache=True, nogil=True, inline="always")
def classify_pages(flags, wi, mask, dirty_log, content):
    """What the pages ``mask`` of bitmap word ``wi`` cost to send
    (``ram_save_target_page``: ``save_zero_page`` first, else ``save_normal_page``).

    A page is a zero page when its content is zero (``zero``; without zero
    writes the log's pages are data pages already, though ``zero`` learns it
    only at the next sync); a zero page of never-touched RAM (not preallocated,
    never written) is the kernel's shared zero page, cheaper to scan. With
    ``zero-page-detection`` none ``zero`` is empty: every page is a normal page.

    The destination's guest RAM is populated in 2 MiB regions (QEMU madvises it
    MADV_HUGEPAGE: a transparent huge page is allocated and cleared at the first
    write there). The first normal page it receives in a region populates it; a
    zero page does not (``ram_handle_zero`` only reads it, which maps the shared
    huge zero page). A word's 64 pages lie in one region, so a word's populated
    bits are all set or all clear.

    Returns
    -------
    populated, normal, zero_allocated, zero_untouched : int
        Regions this populated (0 or 1), and pages of each kind.
    """
    _, zero_writes, prealloc, track, written_off, dst_off = flags
    n_untouched = 0
    z = zero_bits(flags, wi, mask, dirty_log, content)
    if z and not prealloc:
        if zero_writes:
            n_untouched = popcount(z & ~(content[written_off + wi] | dirty_log[wi]))
        else:                      # written: the zero pages allocated before the migration
            n_untouched = popcount(z & ~content[written_off + wi]) if written_off >= 0 \
                else popcount(z)
    normal = mask & ~z
    n_populated = populate_region(content, dst_off, wi) if track and normal else 0
    n_zero = popcount(z)
    return n_populated, popcount(normal), n_zero - n_untouched, n_untouched


@njit(cache=True, nogil=True, inline="always")
def populate_region(content, dst_off, wi):
    """Normal pages of word ``wi`` reach the destination: 1 if that populates their
    2 MiB region (its words' bits, from ``dst_off`` in ``content``, then all set), else 0."""
    if content[dst_off + wi] != 0:
        return 0
    first = wi - wi % (THP_PAGES // 64)
    n_words = content.size - dst_off          # the destination's bits end the array
    # a loop, not a slice: a view would cost NRT reference counting in the hot loop
    for w in range(dst_off + first, dst_off + min(first + THP_PAGES // 64, n_words)):
        content[w] = ~np.uint64(0)
    return 1


@njit(cache=True, nogil=True)
def copy_versions(wi, mask, src_version, dst_version):
    """Check mode: the destination gets the current versions of pages ``mask`` of word ``wi``."""
    while mask:
        page = (wi << 6) + lowest_bit(mask)
        dst_version[page] = src_version[page]
        mask &= mask - np.uint64(1)


@njit(cache=True, nogil=True)
def account_pages(p, st, n_populated, n_normal, n_zero_allocated, n_zero_untouched):
    """Count pages sent (ram_save_target_page): a zero page is a 9 B record after a
    scan of its 4 KiB, any other page 4104 B; the thread's clock advances by each
    page's time: the longest of the source's CPU time, the wire time and the
    destination's time for it (socket back-pressure), by kind of page. The
    ``n_populated`` regions they populate on the destination cost the
    destination's clock (:func:`destination_pace`)."""
    n_zero = n_zero_allocated + n_zero_untouched
    nbytes = n_normal * NORMAL_PAGE_WIRE + n_zero * ZERO_PAGE_WIRE
    st[L.S_UNFLUSHED] = (st[L.S_UNFLUSHED] + n_normal) % FLUSH_PAGES
    st[L.S_DIRTY] -= n_normal + n_zero
    st[L.S_NORMAL] += n_normal
    st[L.S_ZERO] += n_zero
    st[L.S_POPULATED] += n_populated
    st[L.S_UNTOUCHED] += n_zero_untouched
    st[L.S_TRANSFERRED] += nbytes
    if st[L.S_VM_RUNNING] == 0:
        st[L.S_DOWNTIME_BYTES] += nbytes
    st[L.S_T] += n_normal * p[L.P_PS_NORMAL] + \
        n_zero_allocated * p[L.P_PS_ZERO] + n_zero_untouched * p[L.P_PS_ZERO_UNTOUCHED]


@njit(cache=True, nogil=True, inline="always")
def destination_pace(p, st, t_batch, bytes_batch, n_populated):
    """After a batch that began at ``t_batch`` [ps] and byte ``bytes_batch`` of the
    stream: the destination, which loads the stream behind the source, populates
    the ``n_populated`` regions the batch brought on its own clock (``S_DST_T``),
    reading nothing meanwhile; the source may queue ``SOCKET_BUFFER`` bytes past
    where it stopped (``S_DST_AT``), then waits for it (back-pressure).

    **Simplification**: the destination is paced at batch ends only, only by what
    it populates (a page it copies costs the source's clock, see
    :func:`account_pages`), and once done it reads what waits at once."""
    if n_populated:
        if t_batch >= st[L.S_DST_T]:              # it was idle: it stops at this batch
            st[L.S_DST_AT] = bytes_batch
        st[L.S_DST_T] = max(st[L.S_DST_T], t_batch) + n_populated * p[L.P_PS_POPULATE]
    wait_for_destination(p, st)


@njit(cache=True, nogil=True, inline="always")
def wait_for_destination(p, st):
    """Once the socket buffers are full, the source waits for the destination."""
    if st[L.S_T] < st[L.S_DST_T] and \
            st[L.S_TRANSFERRED] - st[L.S_DST_AT] > p[L.P_SOCKET_BUFFER]:
        st[L.S_T] = st[L.S_DST_T]


@njit(cache=True, nogil=True)
def set_cursor(p, st, wi, mask):
    """The page search resumes after the highest page of ``mask`` in word ``wi``;
    count a pass when it goes round past the end of RAM."""
    cursor = (wi << 6) + highest_bit(mask) + 1
    if cursor >= p[L.P_N_PAGES] or cursor <= st[L.S_CURSOR]:
        st[L.S_WRAPS] += 1
    st[L.S_CURSOR] = 0 if cursor >= p[L.P_N_PAGES] else cursor


@njit(cache=True, nogil=True)
def _send_section(st, p):
    st[L.S_TRANSFERRED] += SECTION_WIRE
    if st[L.S_VM_RUNNING] == 0:
        st[L.S_DOWNTIME_BYTES] += SECTION_WIRE
    st[L.S_T] += p[L.P_PS_SECTION]


@njit(cache=True, nogil=True)
def ram_save_batches(p, streams, st, rng, bitmap, dirty_log, content, src_version,
                     dst_version, careful, one_word, limit, t_wait, batch_until, t_cut):
    """Send batches of dirty pages from the cursor: the one page-send path
    (``ram_find_and_save_block`` → ``ram_save_target_page``, page after page).

    A batch is the next (up to) 64 dirty pages in address order (QEMU looks at the
    clock every 64 pages), not past the end of RAM; the guest's writes due go before
    each while something looks at them (:func:`writes_looked_at`). Batches follow
    one another until the time is ``t_wait`` [ps] (the 50 ms cap of an iterate call),
    nothing is dirty, the next batch might cross the byte budget ``limit`` [B] (0 =
    none), or the time is ``batch_until`` [ps] (after it a batch might end past
    ``max_time``).

    Parameters
    ----------
    careful : bool
        One batch, the rate limit and ``t_cut`` [ps] checked before each page and
        each page counted at once (near the byte budget or ``max_time``; always with
        multifd, whose pages go one by one into packets). Otherwise a batch is taken
        word by word and counted once: nothing looks at the counts inside it.
    one_word : bool
        Only the dirty pages of the first dirty word (postcopy, between faults; the
        guest's writes are the caller's).

    The batches loop here, not in the caller, and the common case of
    :func:`classify_pages` is inline: a call that passes arrays costs NRT reference
    counting, more than a batch's work (a call per batch made the kernel 3x slower).

    Returns
    -------
    bool
        True if ``t_wait`` ended it (the caller's iterate call ends too).
    """
    n_pages = p[L.P_N_PAGES]
    n_words = (n_pages + 63) >> 6
    flags = content_flags(p)
    zw0, zero_writes, prealloc, track, written_off, dst_off = flags
    simple = not zero_writes and written_off < 0
    check = p[L.P_CHECK] != 0
    multifd = p[L.P_MULTIFD_CHANNELS] > 0
    maybe_eager = not one_word and writes_looked_at(p, st, n_words)
    while True:
        if maybe_eager and writes_looked_at(p, st, n_words):
            guest_write_pages(p, streams, st, rng, dirty_log, content, src_version)
        wi, mask = find_dirty_block(bitmap, n_pages, st[L.S_CURSOR], True)
        left = 64
        flushed = multifd and multifd_pass_end(p, st, (wi << 6) + lowest_bit(mask))
        t_batch, bytes_batch = st[L.S_T], st[L.S_TRANSFERRED]
        if careful or multifd:
            # page by page (multifd: word by word when it may), in a loop of its own: a
            # branch on ``careful`` in the one below costs it ~20 %
            populated = ram_save_multifd_batch(
                p, st, wi, mask, bitmap, dirty_log, content, src_version, dst_version, limit,
                t_cut, flushed) if multifd else ram_save_pages_checked(
                p, st, wi, mask, bitmap, dirty_log, content, src_version, dst_version, limit,
                t_cut, flushed)
            destination_pace(p, st, t_batch, bytes_batch, populated)
            return st[L.S_T] >= t_wait
        n_sent = 0
        n_populated = 0
        n_zero = 0
        n_untouched = 0
        while True:
            n = popcount(mask)
            if n > left:
                mask = lowest_bits(mask, left)
                n = left
            # take_pages inline: helpers that take arrays cost NRT reference counting
            if wi < zw0 and not track:
                pass
            elif simple:           # the common cases inline: classify_pages costs ~15 %
                zeros = mask & content[wi - zw0] & ~dirty_log[wi] if wi >= zw0 else \
                    np.uint64(0)
                z = popcount(zeros)
                n_zero += z
                n_untouched += 0 if prealloc else z
                if track and mask & ~zeros:
                    n_populated += populate_region(content, dst_off, wi)
            else:
                populated, _, zero_allocated, zero_untouched = classify_pages(
                    flags, wi, mask, dirty_log, content)
                n_populated += populated
                n_zero += zero_allocated + zero_untouched
                n_untouched += zero_untouched
            bitmap[wi] &= ~mask
            if check:
                copy_versions(wi, mask, src_version, dst_version)
            n_sent += n
            left -= n
            last_wi, last_mask = wi, mask
            if one_word:
                break
            # every dirty page of this word past the cursor went (or the batch
            # is full): go on with the next dirty word, not past the end of RAM
            wi += 1
            while left > 0 and wi < n_words and bitmap[wi] == 0:
                wi += 1
            if left == 0 or wi >= n_words:
                break
            mask = bitmap[wi]
        account_pages(p, st, n_populated, n_sent - n_zero, n_zero - n_untouched, n_untouched)
        destination_pace(p, st, t_batch, bytes_batch, n_populated)
        set_cursor(p, st, last_wi, last_mask)
        if st[L.S_T] >= t_wait:
            return True
        if one_word or st[L.S_DIRTY] == 0 or st[L.S_T] >= batch_until or \
                not batch_fits(limit, st[L.S_TRANSFERRED] - st[L.S_RATE_START]):
            return False


@njit(cache=True, nogil=True)
def ram_save_pages_checked(p, st, wi, mask, bitmap, dirty_log, content, src_version,
                           dst_version, limit, t_cut, found):
    """A batch from the dirty pages ``mask`` of word ``wi`` on, page by page: each
    page is counted at once, and the rate limit (unless ``limit`` is 0) and
    ``t_cut`` [ps] are checked before each (:func:`ram_save_batches` near the
    byte budget or ``max_time``, and with multifd). With multifd a page goes
    into the packet (``ram_save_target_page_multifd``), but a zero page found
    by the migration thread (zero-page-detection legacy), which goes as a record
    on the main stream. With ``found`` the first page goes unchecked: QEMU checks
    before it searches, and the search has synced the multifd channels
    (:func:`multifd_pass_end`). Returns the regions the destination populates
    from the main stream."""
    left = 64
    n_populated = 0
    multifd = p[L.P_MULTIFD_CHANNELS] > 0
    while left > 0 and (found or not (limit != 0 and migration_rate_exceeded(p, st)) and
                        st[L.S_T] < t_cut):
        found = False
        bit = mask & (~mask + np.uint64(1))
        populated, zero, untouched = take_pages(p, wi, bit, bitmap, dirty_log, content,
                                                src_version, dst_version)
        if multifd and (zero == 0 or p[L.P_MF_DETECT] != 0):
            multifd_queue_pages(p, st, populated, 1 - zero, zero - untouched, untouched)
        else:
            account_pages(p, st, populated, 1 - zero, zero - untouched, untouched)
            n_populated += populated
        set_cursor(p, st, wi, bit)
        left -= 1
        mask &= ~bit
        if mask == 0:
            if st[L.S_CURSOR] == 0:            # a batch stops at the end of RAM
                break
            wi, mask = find_dirty_block(bitmap, p[L.P_N_PAGES], st[L.S_CURSOR], False)
            if wi < 0:
                break
    return n_populated


@njit(cache=True, nogil=True)
def ram_save_multifd_batch(p, st, wi, mask, bitmap, dirty_log, content, src_version,
                           dst_version, limit, t_cut, found):
    """A batch with multifd from the dirty pages ``mask`` of word ``wi`` on: word by
    word when no check inside it could stop it (:func:`multifd_batch_fits`), else
    page by page (:func:`ram_save_pages_checked`). Returns the regions the
    destination populates from the main stream (none: its zero records populate
    nothing)."""
    if not multifd_batch_fits(p, st, limit, t_cut):
        return ram_save_pages_checked(p, st, wi, mask, bitmap, dirty_log, content,
                                      src_version, dst_version, limit, t_cut, found)
    n_words = (p[L.P_N_PAGES] + 63) >> 6
    flags = content_flags(p)
    detect = p[L.P_MF_DETECT] != 0
    left = 64
    while True:
        n = popcount(mask)
        if n > left:
            mask = lowest_bits(mask, left)
            n = left
        zeros = zero_bits(flags, wi, mask, dirty_log, content)
        queued = mask if detect else mask & ~zeros
        room = MULTIFD_PAGES - st[L.S_MF_FILL]
        first = mask
        if popcount(queued) >= room:       # the packet fills in this word: split there
            last = highest_bit_mask(lowest_bits(queued, room))
            first = mask & ((last << np.uint64(1)) - np.uint64(1))
        multifd_queue_word(p, st, flags, wi, first, zeros, dirty_log, content, detect)
        if first != mask:
            multifd_queue_word(p, st, flags, wi, mask & ~first, zeros, dirty_log, content,
                               detect)
        bitmap[wi] &= ~mask
        if p[L.P_CHECK] != 0:
            copy_versions(wi, mask, src_version, dst_version)
        left -= n
        last_wi, last_mask = wi, mask
        wi += 1
        while left > 0 and wi < n_words and bitmap[wi] == 0:
            wi += 1
        if left == 0 or wi >= n_words:
            break
        mask = bitmap[wi]
    set_cursor(p, st, last_wi, last_mask)
    return 0


@njit(cache=True, nogil=True, inline="always")
def highest_bit_mask(x):
    """The highest set bit of a non-zero ``uint64`` word, alone."""
    return np.uint64(1) << np.uint64(highest_bit(x))


@njit(cache=True, nogil=True)
def multifd_queue_word(p, st, flags, wi, mask, zeros, dirty_log, content, detect):
    """The pages ``mask`` of word ``wi`` (zero pages among them: ``zeros``) at once:
    the queued ones into the packet, which goes if they fill it (they fill it at
    their last at most), a zero page the migration thread found (legacy) as a
    record on the main stream."""
    populated, normal, zero, untouched = classify_pages(flags, wi, mask, dirty_log, content)
    if not detect and zero + untouched:
        account_pages(p, st, 0, 0, zero, untouched)
        zero = untouched = 0
    if normal + zero + untouched:
        multifd_queue_pages(p, st, populated, normal, zero, untouched)


@njit(cache=True, nogil=True)
def multifd_batch_fits(p, st, limit, t_cut):
    """Whether a batch of up to 64 pages can go without a check inside it stopping
    it: the window's queued bytes stay within its budget even if a packet of 128
    pages and a sync's headers go in it (the check sees at most what is queued),
    and no page would start at ``t_cut`` even after waiting for every channel."""
    if limit != 0 and st[L.S_TRANSFERRED] - st[L.S_RATE_START] + \
            (MULTIFD_PAGES + 64) * NORMAL_PAGE_WIRE + 2 * MULTIFD_HEADER_WIRE > limit:
        return False
    if t_cut == INT64_MAX:
        return True
    latest = st[L.S_T]
    for k in range(L.S_CHANNELS, L.S_CHANNELS + p[L.P_MULTIFD_CHANNELS] * L.CH_SIZE,
                   L.CH_SIZE):
        latest = max(latest, st[k + L.CH_END])
    page_ps = max(p[L.P_PS_MF_QUEUE], p[L.P_PS_ZERO], p[L.P_PS_ZERO_UNTOUCHED])
    return latest + 64 * page_ps < t_cut


@njit(cache=True, nogil=True, inline="always")
def zero_bits(flags, wi, mask, dirty_log, content):
    """The zero pages among ``mask`` of word ``wi`` (:func:`classify_pages`'s rule)."""
    zw0, zero_writes, _, _, _, _ = flags
    if wi < zw0:
        return np.uint64(0)
    if zero_writes:
        return mask & content[wi - zw0]
    return mask & content[wi - zw0] & ~dirty_log[wi]


@njit(cache=True, nogil=True)
def multifd_pass_end(p, st, page):
    """Before sending ``page``: if the page search went past the end of RAM to
    find it (``find_dirty_block`` at ``complete_round``), multifd syncs its
    channels first, once per pass (``multifd-flush-after-each-section`` off).
    Returns whether it did (the page then goes, see :func:`ram_save_pages_checked`)."""
    cursor = st[L.S_CURSOR]
    if page < cursor:                  # round the end now; set_cursor counts the pass
        multifd_ram_flush_and_sync(p, st)
        st[L.S_MF_FLUSHED] = st[L.S_WRAPS] + 1
        return True
    if cursor == 0 and st[L.S_WRAPS] > st[L.S_MF_FLUSHED]:   # the last pass ended at it
        multifd_ram_flush_and_sync(p, st)
        st[L.S_MF_FLUSHED] = st[L.S_WRAPS]
        return True
    return False


@njit(cache=True, nogil=True, inline="always")
def take_pages(p, wi, mask, bitmap, dirty_log, content, src_version, dst_version):
    """Take the dirty pages ``mask`` of bitmap word ``wi`` out of the bitmap (in check
    mode the destination gets their versions).

    Returns
    -------
    populated, zero, untouched : int
        Regions the destination populated, zero pages, and of them zero pages of
        never-touched RAM (:func:`classify_pages`).
    """
    populated, _, zero_allocated, untouched = classify_pages(content_flags(p), wi, mask,
                                                             dirty_log, content)
    bitmap[wi] &= ~mask
    if p[L.P_CHECK] != 0:
        copy_versions(wi, mask, src_version, dst_version)
    return populated, zero_allocated + untouched, untouched


@njit(cache=True, nogil=True)
def ram_save_iterate(p, streams, st, rng, dirty_log, bitmap, content,
                     src_version, dst_version):
    """One iterate call: send dirty pages from the cursor until the window's byte
    budget is exceeded, 50 ms have passed, or nothing is dirty.

    Pages go in batches of up to 64 (:func:`ram_save_batches`). Guest writes due
    are applied before each batch and the 50 ms cap (``MAX_WAIT``) is checked
    after it; the rate limit is checked before every page, as in QEMU: page by
    page only while a batch might cross the window's byte budget or ``max_time``
    (:func:`batch_fits`), as it cannot otherwise.

    Guest writes are applied before each batch only while something looks at
    them there (:func:`writes_looked_at`). Otherwise the dirty log is read only
    by the next sync, which applies the writes due first; the result is the
    same, without a call per batch.

    ``max_time`` cuts the call short, as a ``migrate_cancel`` then would: no
    page starts at or after it, and the write in flight then ends at it (its
    bytes count: QEMU counts a page once queued). Near it, pages go one by one.
    """
    t_cut = max(st[L.S_T], p[L.P_PS_MAX_TIME])
    _send_section(st, p)
    # (now - start) // 1 ms > MAX_WAIT
    t_wait = st[L.S_T] + (MAX_WAIT + 1) * PS_PER_MS
    limit = p[L.P_RATE_LIMIT_MAX]
    # a batch may go without looking until its 64 pages, at the longest, end before
    # max_time (waiting for the destination comes after a batch)
    page_ps = max(p[L.P_PS_NORMAL], p[L.P_PS_ZERO], p[L.P_PS_ZERO_UNTOUCHED])
    batch_until = t_cut - 64 * min(page_ps, t_cut // 64 + 1)
    while st[L.S_DIRTY] > 0:
        # a whole batch fits: the rate limit is not exceeded, max_time not reached
        whole = batch_fits(limit, st[L.S_TRANSFERRED] - st[L.S_RATE_START]) and \
            st[L.S_T] < batch_until and p[L.P_MULTIFD_CHANNELS] == 0
        if not whole and (migration_rate_exceeded(p, st) or st[L.S_T] >= t_cut):
            break
        if ram_save_batches(p, streams, st, rng, bitmap, dirty_log, content, src_version,
                            dst_version, not whole, False, limit, t_wait, batch_until, t_cut):
            break
    st[L.S_UNFLUSHED] = 0                # qemu_fflush after RAM_SAVE_FLAG_EOS
    if st[L.S_T] > t_cut:               # the wait for a channel, if any, ends there too
        st[L.S_MF_WAIT] = max(0, st[L.S_MF_WAIT] - (st[L.S_T] - t_cut))
        st[L.S_T] = t_cut


@njit(cache=True, nogil=True, inline="always")
def batch_fits(limit, window_bytes):
    """True if 64 more normal pages keep ``window_bytes`` [B] within the window's
    byte budget ``limit`` [B] (0 = none)."""
    return limit == 0 or window_bytes + 64 * NORMAL_PAGE_WIRE <= limit


@njit(cache=True, nogil=True, inline="always")
def writes_looked_at(p, st, n_words):
    """Whether the guest's writes due must be applied before each batch: in check
    mode (page versions), with zero writes (any write may change a page's
    content) and in the first pass while pages of the initially-zero region
    (if any) still wait in the bitmap since setup."""
    return p[L.P_CHECK] != 0 or p[L.P_ZERO_WRITE_PPM] != 0 or \
        (st[L.S_WRAPS] == 0 and p[L.P_ZERO_WORD0] < n_words)


@njit(cache=True, nogil=True, inline="always")
def lowest_bits(mask, k):
    """The ``k`` lowest set bits of ``mask``."""
    out = np.uint64(0)
    for _ in range(k):
        bit = mask & (~mask + np.uint64(1))
        out |= bit
        mask ^= bit
    return out


@njit(cache=True, nogil=True)
def migration_update_counters(p, st, trace):
    """Close the ~100 ms window: bandwidth estimate, threshold, expected downtime.

    Exactly QEMU's single-window estimate: ``bandwidth = bytes / time_spent``
    [B/ms], ``threshold_size = expected_bw_per_ms * downtime_limit`` where
    ``expected_bw_per_ms`` is ``avail_switchover_bandwidth // 1000`` when set.
    """
    now_ms = st[L.S_T] // PS_PER_MS
    if now_ms < st[L.S_WIN_START_MS] + BUFFER_DELAY:
        return
    # with multifd the channels' bytes count once written (multifd_bytes)
    current = st[L.S_TRANSFERRED] - multifd_inflight(st)
    transferred = current - st[L.S_WIN_BYTES0]
    time_spent = now_ms - st[L.S_WIN_START_MS]
    bandwidth = np.float64(transferred) / np.float64(time_spent)
    st[L.S_LAST_BW] = transferred * 1000 // time_spent      # what a management layer reads [B/s]
    avail = p[L.P_AVAIL_BW_PER_MS]
    expected_bw_per_ms = np.float64(avail) if avail != 0 else bandwidth
    # QEMU's double product saturates here rather than wrap (avail near 2^64 B/s)
    threshold = expected_bw_per_ms * np.float64(st[L.S_DOWNTIME_LIMIT])
    st[L.S_THRESHOLD] = np.int64(threshold) if threshold < INT64_LIMIT else INT64_MAX
    mbps = ((np.float64(transferred) * 8.0) / (np.float64(time_spent) / 1000.0)) / 1e6
    if st[L.S_DIRTY_RATE] != 0 and transferred > 10000 and expected_bw_per_ms > 0.0:
        st[L.S_EXPECTED_DOWNTIME] = np.int64(st[L.S_DIRTY_BYTES_LAST_SYNC] / expected_bw_per_ms)
    st[L.S_RATE_START] = current                    # migration_rate_reset
    st[L.S_WIN_START_MS] = now_ms                   # update_iteration_initial_status
    st[L.S_WIN_BYTES0] = current
    row = st[L.S_N_WINDOWS]
    if row < trace.shape[0]:
        trace[row, L.W_TIME] = now_ms
        trace[row, L.W_TIME_SPENT] = time_spent
        trace[row, L.W_BYTES] = transferred
        trace[row, L.W_BANDWIDTH] = bandwidth
        trace[row, L.W_THRESHOLD] = st[L.S_THRESHOLD]
        trace[row, L.W_PENDING] = st[L.S_DIRTY] * PAGE_SIZE
        trace[row, L.W_TRANSFERRED] = st[L.S_TRANSFERRED]
        trace[row, L.W_SYNCS] = st[L.S_SYNCS]
        trace[row, L.W_EXPECTED_DOWNTIME] = st[L.S_EXPECTED_DOWNTIME]
        trace[row, L.W_MBPS] = mbps
        trace[row, L.W_DIRTY_RATE] = st[L.S_DIRTY_RATE]
        trace[row, L.W_THROTTLE] = st[L.S_THROTTLE]
        trace[row, L.W_DOWNTIME_LIMIT] = st[L.S_DOWNTIME_LIMIT]
        st[L.S_N_WINDOWS] = row + 1


@njit(cache=True, nogil=True)
def migration_rate_limit(p, st, trace):
    """Update the counters; if the budget is spent, sleep to the window's end
    (or to ``max_time``, where the run is given up)."""
    migration_update_counters(p, st, trace)
    if migration_rate_exceeded(p, st):
        wake = min((st[L.S_WIN_START_MS] + BUFFER_DELAY) * PS_PER_MS, p[L.P_PS_MAX_TIME])
        if wake > st[L.S_T]:
            st[L.S_T] = wake


@njit(cache=True, nogil=True)
def migration_stop_vm(p, streams, st, rng, dirty_log, bitmap, content, src_version):
    """Stop the guest for the switchover, as completion and postcopy both begin: the
    writes due, ``vm_stop_force_state`` (the downtime starts), the final bitmap sync
    and the RAM section's header. Returns the guest's running time at the stop [ps]."""
    guest_write_pages(p, streams, st, rng, dirty_log, content, src_version)
    guest_stopped = guest_run_time(p, st)
    st[L.S_DOWNTIME_START] = st[L.S_T]
    st[L.S_VM_RUNNING] = 0
    st[L.S_T] += p[L.P_PS_VM_STOP]
    migration_bitmap_sync(p, streams, st, rng, dirty_log, bitmap, content, src_version)
    _send_section(st, p)
    return guest_stopped


@njit(cache=True, nogil=True)
def save_device_state(p, st):
    """The device state goes last (``qemu_savevm_state_complete_precopy_non_iterable``);
    the downtime ends once it is queued (on the source: it may still wait for the
    destination, :func:`destination_pace`)."""
    st[L.S_TRANSFERRED] += p[L.P_DEVICE_BYTES]
    st[L.S_DOWNTIME_BYTES] += p[L.P_DEVICE_BYTES]
    st[L.S_T] += p[L.P_PS_DEVICE]
    wait_for_destination(p, st)
    st[L.S_DOWNTIME_END] = st[L.S_T]


@njit(cache=True, nogil=True)
def migration_completion(p, streams, st, rng, dirty_log, bitmap, content,
                         src_version, dst_version):
    """Stop the VM, final sync, send everything left at full speed, then device state.

    Mirrors ``migration_completion`` → ``migration_stop_vm``,
    ``migration_switchover_start`` (rate limit off) and ``ram_save_complete``.
    """
    migration_stop_vm(p, streams, st, rng, dirty_log, bitmap, content, src_version)
    while st[L.S_DIRTY] > 0:           # the rate limit is off; with multifd a batch a call
        ram_save_batches(p, streams, st, rng, bitmap, dirty_log, content, src_version,
                         dst_version, False, False, 0, INT64_MAX, INT64_MAX, INT64_MAX)
    if p[L.P_MULTIFD_CHANNELS] > 0:    # ram_save_complete: the channels drain first
        multifd_ram_flush_and_sync(p, st)
    save_device_state(p, st)
    st[L.S_CONVERGED] = 1


@njit(cache=True, nogil=True)
def postcopy_start(p, streams, st, rng, dirty_log, bitmap, content, src_version,
                   dst_version):
    """Switch to postcopy and run it to the end.

    ``postcopy_start``: stop the VM, final sync, send the device state; the
    destination runs from then on (the downtime ends). Then, like
    ``ram_save_iterate`` in postcopy without a rate limit
    (``max-postcopy-bandwidth`` 0): the source sends what is left in address
    order, a word at a time, and each page the destination's guest touches first
    is sent at once (:func:`guest_fault_pages`). **Simplification:** the postcopy
    phase is a summary: no windows, and a fault costs the link the page, not the
    guest a round trip.
    """
    guest_stopped = migration_stop_vm(p, streams, st, rng, dirty_log, bitmap, content,
                                      src_version)
    save_device_state(p, st)
    st[L.S_POSTCOPY_T] = st[L.S_T]
    # the guest resumes on the destination, unthrottled, where it stopped
    st[L.S_THROTTLE] = 0
    st[L.S_DIRTY_LIMIT_T] = -1
    st[L.S_GUEST_OFFSET] = st[L.S_T] - guest_stopped
    st[L.S_VM_RUNNING] = 1
    while st[L.S_DIRTY] > 0:
        faults = guest_fault_pages(p, streams, st, rng, bitmap, src_version, dst_version)
        if faults:     # Simplification: a faulted page costs a re-sent normal page
            account_pages(p, st, 0, faults, 0, 0)
        if st[L.S_DIRTY] == 0:
            break
        ram_save_batches(p, streams, st, rng, bitmap, dirty_log, content, src_version,
                         dst_version, False, True, 0, INT64_MAX, INT64_MAX, INT64_MAX)
    # the guest's writes up to the end happen on the destination: count them there
    guest_fault_pages(p, streams, st, rng, bitmap, src_version, dst_version)
    st[L.S_VM_RUNNING] = 0
    st[L.S_CONVERGED] = 1


@njit(cache=True, nogil=True)
def exact_sync_wanted(rule, pending, must_precopy, threshold):
    """Whether ``migration_iteration_run`` syncs the bitmap (the exact pending).

    8.2: when must-precopy <= threshold, and RAM's exact hook then syncs only if
    RAM's remaining bytes (``pending``) are below the threshold; 9.0 and later:
    when the estimate is below the threshold. The same for precopy alone; with
    postcopy-ram (must-precopy 0) 8.2 syncs on every pass.
    """
    if rule == 0:
        return must_precopy <= threshold and pending < threshold
    return pending < threshold


@njit(cache=True, nogil=True)
def complete_ready(rule, pending, threshold):
    """The switchover test: up to 10.0 ``pending == 0 or pending < threshold``; 10.1
    and later ``pending <= threshold`` ("migration: Rewrite the migration complete
    detect logic")."""
    if rule == 2:
        return pending <= threshold
    return pending == 0 or pending < threshold


@njit(cache=True, nogil=True)
def migration_iteration_run(p, streams, st, rng, dirty_log, bitmap, content,
                            src_version, dst_version):
    """QEMU's decision (by ``qemu_version``): cheap estimate, exact sync only near
    the threshold, switch over when pending passes the switchover test, else iterate.

    Returns
    -------
    bool
        True once the migration has completed.
    """
    pending = st[L.S_DIRTY] * PAGE_SIZE
    rule = p[L.P_QEMU_RULE]
    threshold = st[L.S_THRESHOLD]
    # with postcopy-ram RAM can go after the switch: none of it is must-precopy
    must_precopy = 0 if p[L.P_POSTCOPY_RAM] != 0 else pending
    if exact_sync_wanted(rule, pending, must_precopy, threshold):
        migration_bitmap_sync(p, streams, st, rng, dirty_log, bitmap, content,
                              src_version)
        pending = st[L.S_DIRTY] * PAGE_SIZE
        must_precopy = 0 if p[L.P_POSTCOPY_RAM] != 0 else pending
    if p[L.P_POSTCOPY_START_SYNC] > 0 and st[L.S_SYNCS] >= p[L.P_POSTCOPY_START_SYNC]:
        st[L.S_POSTCOPY_REQUESTED] = 1           # management calls migrate-start-postcopy
    postcopy = p[L.P_POSTCOPY_RAM] != 0 and st[L.S_POSTCOPY_REQUESTED] != 0 and \
        must_precopy <= threshold
    # 10.1 and later try postcopy before the switchover test, earlier releases after it.
    # Threshold 0 (no window closed yet, or downtime-limit 0): no exact sync, and
    # the switchover happens as soon as the estimate drains to 0.
    if not (postcopy and rule == 2) and complete_ready(rule, pending, threshold):
        st[L.S_SWITCH_PENDING] = pending
        migration_completion(p, streams, st, rng, dirty_log, bitmap, content,
                             src_version, dst_version)
        return True
    if postcopy:
        st[L.S_SWITCH_PENDING] = pending
        postcopy_start(p, streams, st, rng, dirty_log, bitmap, content, src_version,
                       dst_version)
        return True
    ram_save_iterate(p, streams, st, rng, dirty_log, bitmap, content,
                     src_version, dst_version)
    return False


@njit(cache=True, nogil=True)
def dirty_sync_timer_tick(p, streams, st, rng, dirty_log, bitmap, content, src_version):
    """auto-converge's 5 s timer (QEMU 9.2+, ``cpu_throttle_dirty_sync_timer_tick``):
    sync if no other sync happened since the previous tick, except in the first pass.

    **Simplification**: QEMU runs it in the main loop; here the migration
    thread runs it at its next pass (at most one iterate call or one rate-limit
    sleep late) and pays its time, as it would wait for the bitmap mutex.
    """
    syncs = st[L.S_SYNCS]
    if syncs > 1 and syncs == st[L.S_TICK_PREV]:
        migration_bitmap_sync(p, streams, st, rng, dirty_log, bitmap, content,
                              src_version)
    st[L.S_TICK_PREV] = st[L.S_SYNCS]
    st[L.S_TICK_NEXT] += DIRTY_SYNC_TIMESLICE_MS * PS_PER_MS


@njit(cache=True, nogil=True)
def migration_thread(p, streams, st, rng, dirty_log, bitmap, content,
                     src_version, dst_version, pol, trace):
    """Run one precopy migration from the ``migrate`` command to completion,
    ``max_time``, or an abort by the management policy, in one call.

    :func:`migration_thread_setup`, one :func:`migration_thread_slice` to
    ``max_time`` and :func:`migration_iteration_finish`; a driver that must see
    signals calls them itself, slice by slice, with the same result.

    Parameters
    ----------
    p : ndarray(int64, N_PARAMS)
        Parameters, see ``layout.P_*``.
    streams : ndarray(float64)
        The guest's write streams, see ``layout.G_*``: each stream's page writes
        per picosecond [1/ps], then a replayed trace's writes (``layout.GR_*``) or
        the phases (``layout.GP_*``).
    st : ndarray(int64, N_STATE)
        State and results, zero on entry; see ``layout.S_*``.
    rng : ndarray(uint64, 2)
        SplitMix64 state of each write stream, see ``layout.R_*``.
    dirty_log, bitmap : ndarray(uint64, ceil(pages / 64))
        Zeroed bitsets: KVM's dirty log, the migration bitmap.
    content : ndarray(uint64)
        Page content, up to three bitsets one after the other (one array, as
        every array passed costs each call reference counting): the zero bits,
        pages whose content is zero from word ``L.P_ZERO_WORD0`` on (the
        initially-zero region; all of RAM with zero writes; none with
        ``zero-page-detection`` none); from ``L.P_WRITTEN_OFF`` (-1: none; with
        zero writes or an allocated zero region, RAM not preallocated) the
        written bits, pages allocated (the allocated zero region to start with;
        zero writes add every page written); from ``L.P_DST_OFF`` (-1: none, when
        populating costs nothing or RAM is preallocated) the destination's
        populated bits, all a word's bits set once its 2 MiB region is
        populated, clear to start with.
    src_version, dst_version : ndarray(int32)
        Check mode: per-page versions (zeros, and -1 for never received);
        empty otherwise.
    pol : ndarray(int64)
        The management policy's monitor, see ``layout.POL_*`` (poll period 0: none).
    trace : ndarray(float64, (windows, N_TRACE))
        One row per closed window, see ``layout.W_*``; rows past its end are
        dropped (:func:`migration_thread_slice` says how many a slice needs).
    """
    migration_thread_setup(p, streams, st, rng, dirty_log, bitmap, content, src_version, pol)
    migration_thread_slice(p, streams, st, rng, dirty_log, bitmap, content, src_version,
                           dst_version, pol, trace, p[L.P_PS_MAX_TIME])
    migration_iteration_finish(p, streams, st, rng, dirty_log, content, src_version,
                               dst_version)


@njit(cache=True, nogil=True)
def migration_thread_setup(p, streams, st, rng, dirty_log, bitmap, content, src_version,
                           pol):
    """From the ``migrate`` command to the first iteration: initial state, the
    policy's monitor, setup (``ram_init_bitmaps``: all pages dirty, first sync).

    Arguments as :func:`migration_thread`'s; ``st`` zero on entry.
    """
    n_pages = p[L.P_N_PAGES]
    st[L.S_LAST_SYNC_MS] = -1
    st[L.S_VM_RUNNING] = 1
    st[L.S_DOWNTIME_START] = -1
    st[L.S_LOST_PAGES] = -1
    for s in range(L.N_STREAMS):
        st[L.S_LOG + s] = -1
    st[L.S_DOWNTIME_LIMIT] = p[L.P_DOWNTIME_LIMIT]
    st[L.S_TICK_NEXT] = DIRTY_SYNC_TIMESLICE_MS * PS_PER_MS   # armed before setup
    st[L.S_TICK_PREV] = 2
    st[L.S_POSTCOPY_T] = -1
    st[L.S_DIRTY_LIMIT_T] = -1
    multifd_setup(st)
    monitor_start(pol, st)
    st[L.S_EXPECTED_DOWNTIME] = st[L.S_DOWNTIME_LIMIT]
    # setup: the window opens before setup, so setup time dilutes the first estimate
    st[L.S_T] = p[L.P_PS_SETUP]
    set_range(bitmap, 0, n_pages)                 # ram_init_bitmaps: all pages dirty
    st[L.S_DIRTY] = n_pages
    migration_bitmap_sync(p, streams, st, rng, dirty_log, bitmap, content, src_version)
    st[L.S_SETUP_T] = st[L.S_T]


@njit(cache=True, nogil=True)
def migration_thread_slice(p, streams, st, rng, dirty_log, bitmap, content, src_version,
                           dst_version, pol, trace, t_stop):
    """The migration thread's loop, from where ``st`` left it until the time
    ``t_stop`` [ps] is reached, or the migration ends (switched over, aborted by
    the policy, or ``max_time`` reached).

    Each pass starts and ends with nothing in flight and everything in ``st``:
    calling again with a later ``t_stop`` goes on exactly as one call would. A
    slice closes at most ``(t_stop_ms - st[L.S_WIN_START_MS]) // BUFFER_DELAY + 1``
    windows (a window lasts at least ``BUFFER_DELAY``; the last pass may end
    past ``t_stop``), the rows ``trace`` must have room for.

    Returns
    -------
    bool
        True once the migration has ended (:func:`migration_iteration_finish`
        comes next), False if ``t_stop`` came first.
    """
    t_end = min(t_stop, p[L.P_PS_MAX_TIME])
    while st[L.S_T] < t_end:
        if p[L.P_PERIODIC_SYNC] != 0 and st[L.S_T] >= st[L.S_TICK_NEXT]:
            dirty_sync_timer_tick(p, streams, st, rng, dirty_log, bitmap, content,
                                  src_version)
        if pol[L.POL_POLL_MS] != 0 and st[L.S_T] >= st[L.S_POLL_NEXT]:
            action = monitor_poll(pol, st)
            if action == ABORT:
                st[L.S_ABORTED] = 1
                return True
            if action == POSTCOPY:          # migrate-start-postcopy
                st[L.S_POSTCOPY_REQUESTED] = 1
            if action == PAUSE:             # the guest stops writing; precopy goes on
                guest_write_pages(p, streams, st, rng, dirty_log, content, src_version)
                st[L.S_VM_RUNNING] = 0
                st[L.S_PAUSED_T] = st[L.S_T]
        if not migration_rate_exceeded(p, st):
            if migration_iteration_run(p, streams, st, rng, dirty_log, bitmap,
                                       content, src_version, dst_version):
                return True
        migration_rate_limit(p, st, trace)
    return st[L.S_T] >= p[L.P_PS_MAX_TIME]


@njit(cache=True, nogil=True)
def migration_iteration_finish(p, streams, st, rng, dirty_log, content, src_version,
                               dst_version):
    """After the loop: the guest's writes due by the end and, in check mode after
    a switchover, the pages whose destination version differs (``L.S_LOST_PAGES``)."""
    guest_write_pages(p, streams, st, rng, dirty_log, content, src_version)
    multifd_settle(st)                 # what the channels wrote by the end
    if p[L.P_CHECK] != 0 and st[L.S_CONVERGED] == 1:
        lost = 0
        for page in range(p[L.P_N_PAGES]):
            if dst_version[page] != src_version[page]:
                lost += 1
        st[L.S_LOST_PAGES] = lost
