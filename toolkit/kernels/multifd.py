"""multifd's sender side: the packet being filled, the channel threads, the link.

Mirrors QEMU 10.0 ``migration/multifd.c`` and ``multifd-nocomp.c`` (zlib and
zstd as a CPU cost and a size per page, ``multifd-zlib.c``, ``multifd-zstd.c``).
The migration thread queues pages into a packet of ``MULTIFD_PAGES``
(``multifd_queue_page``) and hands a full one to a free channel, waiting for one
if all are busy (``multifd_send``). A channel's packet takes the longest of its
CPU time, its turn on the link (shared by all channels, packets in the order
they were handed over) and the destination's receive thread's time for it;
``multifd_bytes`` counts it once written, so the migration thread's rate check
and its bandwidth estimate lag what it queued.

**Simplifications** (docs/model.md): the channels' CPU and wire time overlap
(the socket buffer lets the kernel send while the thread works); each channel's
receive thread keeps pace packet by packet (no socket buffer per channel); the
packet's content is read when queued; the host's cores are not shared out (a
channel never waits for a CPU).

The channels' state is the tail of ``st`` (``layout.S_CHANNELS``, records
``layout.CH_*``), as long as ``p[P_MULTIFD_CHANNELS]`` records.
"""
from numba import njit

from ..constants import MULTIFD_FLUSH_WIRE, MULTIFD_HEADER_WIRE, MULTIFD_PAGES
from . import layout as L

INT64_MAX = 2**63 - 1


@njit(cache=True, nogil=True)
def multifd_setup(st):
    """Nothing in flight: the channels are idle from the start."""
    st[L.S_MF_NEXT_END] = INT64_MAX


@njit(cache=True, nogil=True)
def multifd_settle(st):
    """Count in ``multifd_bytes`` the packets written by now (``S_T``): what the
    channel threads add after each write."""
    now = st[L.S_T]
    nxt = INT64_MAX
    for k in range(L.S_CHANNELS, st.shape[0], L.CH_SIZE):
        nbytes = st[k + L.CH_BYTES]
        if nbytes == 0:
            continue
        end = st[k + L.CH_END]
        if end <= now:
            st[L.S_MULTIFD_BYTES] += nbytes
            st[L.S_MF_INFLIGHT] -= nbytes
            st[k + L.CH_BYTES] = 0
        elif end < nxt:
            nxt = end
    st[L.S_MF_NEXT_END] = nxt


@njit(cache=True, nogil=True, inline="always")
def multifd_inflight(st):
    """Bytes handed to the channels and not yet written (settled first). [B]"""
    if st[L.S_T] >= st[L.S_MF_NEXT_END]:
        multifd_settle(st)
    return st[L.S_MF_INFLIGHT]


@njit(cache=True, nogil=True)
def _add_bytes(st, nbytes):
    st[L.S_TRANSFERRED] += nbytes
    if st[L.S_VM_RUNNING] == 0:
        st[L.S_DOWNTIME_BYTES] += nbytes


@njit(cache=True, nogil=True)
def multifd_queue_pages(p, st, populated, normal, zero, untouched):
    """``multifd_queue_page``, for ``normal`` normal pages, ``zero`` zero pages of
    allocated RAM and ``untouched`` ones of never-touched RAM, one after the other,
    that populate ``populated`` 2 MiB regions on the destination; a full packet
    goes at once (the caller never queues past one)."""
    k = normal + zero + untouched
    st[L.S_DIRTY] -= k
    st[L.S_NORMAL] += normal
    st[L.S_ZERO] += zero + untouched
    st[L.S_UNTOUCHED] += untouched
    st[L.S_POPULATED] += populated
    st[L.S_T] += k * p[L.P_PS_MF_QUEUE]
    st[L.S_MF_NORMAL] += normal
    st[L.S_MF_ZERO] += zero
    st[L.S_MF_UNTOUCHED] += untouched
    st[L.S_MF_POPULATED] += populated
    st[L.S_MF_FILL] += k
    if st[L.S_MF_FILL] == MULTIFD_PAGES:
        multifd_send(p, st)


@njit(cache=True, nogil=True)
def multifd_send(p, st):
    """``multifd_send``: hand the packet to the channel free first, waiting for it."""
    first = L.S_CHANNELS
    for k in range(L.S_CHANNELS, L.S_CHANNELS + p[L.P_MULTIFD_CHANNELS] * L.CH_SIZE,
                   L.CH_SIZE):
        if st[k + L.CH_END] < st[first + L.CH_END]:
            first = k
    free = st[first + L.CH_END]
    if free > st[L.S_T]:
        st[L.S_MF_WAIT] += free - st[L.S_T]
        st[L.S_T] = free
    multifd_settle(st)
    now = st[L.S_T]
    normal = st[L.S_MF_NORMAL]
    cpu = p[L.P_PS_MF_PACKET] + normal * p[L.P_PS_MF_PAGE] + \
        st[L.S_MF_ZERO] * p[L.P_PS_MF_ZERO] + st[L.S_MF_UNTOUCHED] * p[L.P_PS_MF_UNTOUCHED]
    st[L.S_LINK_T] = max(st[L.S_LINK_T], now) + p[L.P_PS_MF_HEADER_WIRE] + \
        normal * p[L.P_PS_MF_PAGE_WIRE]
    dst = normal * p[L.P_PS_MF_DST_PAGE] + st[L.S_MF_POPULATED] * p[L.P_PS_POPULATE]
    end = max(now + cpu, st[L.S_LINK_T], now + dst)
    nbytes = MULTIFD_HEADER_WIRE + normal * p[L.P_MF_PAGE_BYTES]
    st[L.S_MF_CPU] += cpu
    st[first + L.CH_END] = end
    st[first + L.CH_BYTES] = nbytes
    st[L.S_MF_INFLIGHT] += nbytes
    st[L.S_MF_NEXT_END] = min(st[L.S_MF_NEXT_END], end)
    _add_bytes(st, nbytes)
    st[L.S_MF_PACKETS] += 1
    st[L.S_MF_FILL] = 0
    st[L.S_MF_NORMAL] = 0
    st[L.S_MF_ZERO] = 0
    st[L.S_MF_UNTOUCHED] = 0
    st[L.S_MF_POPULATED] = 0


@njit(cache=True, nogil=True)
def multifd_ram_flush_and_sync(p, st):
    """``multifd_ram_flush_and_sync``: send the packet being filled, then
    ``multifd_send_sync_main``: each channel sends a sync packet (a header) after
    its work, and the migration thread waits for all of them; then
    ``RAM_SAVE_FLAG_MULTIFD_FLUSH`` on the main stream."""
    if st[L.S_MF_FILL] > 0:
        multifd_send(p, st)
    t0 = st[L.S_T]
    done = t0
    sync_ps = max(p[L.P_PS_MF_PACKET], p[L.P_PS_MF_HEADER_WIRE])
    for k in range(L.S_CHANNELS, L.S_CHANNELS + p[L.P_MULTIFD_CHANNELS] * L.CH_SIZE,
                   L.CH_SIZE):
        end = max(t0, st[k + L.CH_END]) + sync_ps
        st[k + L.CH_END] = end
        st[L.S_MULTIFD_BYTES] += st[k + L.CH_BYTES] + MULTIFD_HEADER_WIRE
        st[k + L.CH_BYTES] = 0
        st[L.S_MF_CPU] += p[L.P_PS_MF_PACKET]
        _add_bytes(st, MULTIFD_HEADER_WIRE)
        done = max(done, end)
    st[L.S_MF_INFLIGHT] = 0
    st[L.S_MF_NEXT_END] = INT64_MAX
    st[L.S_MF_WAIT] += done - t0
    st[L.S_T] = done
    _add_bytes(st, MULTIFD_FLUSH_WIRE)
