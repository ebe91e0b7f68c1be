"""The encoder: a validated Scenario in, the kernel's plain arrays out.

The only module that writes kernel slots (``layout.P_*``, the monitor's
``layout.POL_*`` through :mod:`toolkit.policies`): units become picoseconds,
pages and bytes, workloads become write streams, and the per-page arrays get
their sizes. :func:`encode` gives everything a run needs but its state;
:mod:`toolkit._simulate` allocates, runs and reads back.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import policies
from .constants import (GIB, MULTIFD_HEADER_WIRE, NORMAL_PAGE_WIRE, PAGE_SIZE, PS_PER_S,
                        SECTION_WIRE, ZERO_PAGE_WIRE)
from .kernels import layout as L
from .scenario import QEMU_VERSIONS, Scenario
from .workloads import parse_phases, read_write_trace

WORKLOAD_CODES = {"uniform": L.UNIFORM, "hotcold": L.HOTCOLD, "sequential": L.SEQUENTIAL,
                  "zipf": L.ZIPF, "replay": L.REPLAY, "phases": L.PHASES}
#: migration_iteration_run's switchover rule by release: 8.2, 9.0-10.0, 10.1 and later
QEMU_RULES = {"8.2": 0, "9.0": 1, "9.1": 1, "9.2": 1, "10.0": 1, "10.1": 2}


@dataclass
class KernelInputs:
    """What the kernel is given for one scenario, but for its state.

    Attributes
    ----------
    params : ndarray(int64, N_PARAMS)
        See ``layout.P_*``.
    streams : ndarray(float64)
        The guest's write streams (:func:`kernel_inputs`).
    monitor : ndarray(int64)
        The management policy's monitor (``layout.POL_*``; poll period 0: none).
    seeds : ndarray(uint64, 2)
        SplitMix64 state of each write stream.
    arrays : dict
        Length and dtype of each per-page array (:func:`kernel_arrays`).
    content : ndarray(uint64)
        The page-content array to start from (:func:`page_content`).
    """

    params: np.ndarray
    streams: np.ndarray
    monitor: np.ndarray
    seeds: np.ndarray
    arrays: dict
    content: np.ndarray


def encode(sc: Scenario) -> KernelInputs:
    """Everything the kernel needs for ``sc`` but its state."""
    policy = sc.policy_object
    p, streams = kernel_inputs(sc, policy)
    arrays = kernel_arrays(sc, p)
    return KernelInputs(params=p, streams=streams,
                        monitor=policies.kernel_array(policy, sc.ram_size),
                        seeds=stream_seeds(sc),
                        arrays=arrays, content=page_content(p, sc, arrays["content"][0]))


def stream_seeds(sc: Scenario) -> np.ndarray:
    """The kernel's ``rng`` array for ``sc``: each stream's SplitMix64 state to
    start from (``layout.R_STATE``)."""
    seeds = np.zeros(L.SEEDS.size, np.uint64)
    seeds[L.R_STATE: L.R_STATE + L.N_STREAMS] = sc.stream_seeds
    return seeds


def _ps(seconds: float) -> int:
    return int(round(seconds * PS_PER_S))


def wire_ps(nbytes: int, link_bandwidth: float) -> int:
    """Time to put ``nbytes`` on a link of ``link_bandwidth`` [B/s]. [ps]"""
    return _ps(nbytes / link_bandwidth)


def kernel_inputs(sc: Scenario, policy=None) -> tuple[np.ndarray, np.ndarray]:
    """The kernel's parameter array and guest write rate for a scenario.

    ``policy``: ``sc.policy_object`` when the caller has it already (parsed once).

    Returns
    -------
    p : ndarray(int64, N_PARAMS)
        See ``layout.P_*``.
    streams : ndarray(float64)
        The guest's write streams, laid out by ``layout.STREAMS``: page writes
        per picosecond of each stream (hotcold: hot set, rest; otherwise one
        stream) [1/ps]; for ``replay`` zero rates, then the trace's writes
        (``layout.REPLAY_WRITE``), for ``phases`` the phases (``layout.PHASE``).
    """
    n = sc.n_pages
    link = sc.link_bandwidth
    p = np.zeros(L.N_PARAMS, dtype=np.int64)
    p[L.P_N_PAGES] = n
    p[L.P_WORKLOAD] = WORKLOAD_CODES[sc.workload]
    p[L.P_HOT_PAGES] = sc.hot_pages if sc.workload in ("hotcold", "phases") else 0
    p[L.P_SEQ_START] = sc.write_range_start // PAGE_SIZE
    p[L.P_SEQ_PAGES] = max(1, sc.write_range // PAGE_SIZE)
    p[L.P_RATE_LIMIT_MAX] = sc.max_bandwidth // 10         # migration_rate_set
    p[L.P_DOWNTIME_LIMIT] = sc.downtime_limit
    p[L.P_AVAIL_BW_PER_MS] = sc.avail_switchover_bandwidth // 1000
    # a page costs the thread the longest of its CPU time, its wire time and the
    # destination's time for it: the blocking socket makes the thread wait for
    # the link and for the destination (back-pressure)
    normal = max(_ps(sc.page_send_time * 1e-9), wire_ps(NORMAL_PAGE_WIRE, link))
    p[L.P_PS_NORMAL] = max(normal, _ps(sc.dst_copy_time * 1e-9))
    # preallocated, the destination's RAM is populated from the start
    p[L.P_PS_POPULATE] = _ps(sc.dst_populate_time * 1e-3) if sc.dst_populates else 0
    p[L.P_SOCKET_BUFFER] = sc.socket_buffer_size
    p[L.P_PS_ZERO] = max(_ps(sc.zero_page_scan_time * 1e-9), wire_ps(ZERO_PAGE_WIRE, link))
    p[L.P_PS_ZERO_UNTOUCHED] = max(_ps(sc.untouched_page_scan_time * 1e-9),
                                   wire_ps(ZERO_PAGE_WIRE, link))
    # page content: which words the zero-content bitset covers (detection 'none': none)
    detect = sc.zero_page_detection != "none"
    p[L.P_ZERO_WRITE_PPM] = round(sc.zero_write_share * 1e6) if detect else 0
    n_words = (n + 63) // 64
    p[L.P_ZERO_WORD0] = (0 if p[L.P_ZERO_WRITE_PPM] else sc.zero_start // 64) \
        if detect and (sc.zero_start < n or p[L.P_ZERO_WRITE_PPM]) else n_words
    p[L.P_PREALLOC] = int(sc.mem_prealloc)
    # the content array: zero bits, then the written bits, then the destination's
    zero_words = n_words - p[L.P_ZERO_WORD0]
    has_written = (p[L.P_ZERO_WRITE_PPM] or sc.zero_allocated_end > sc.zero_start) and \
        not sc.mem_prealloc
    p[L.P_WRITTEN_OFF] = zero_words if has_written else -1
    track = p[L.P_PS_POPULATE] > 0
    p[L.P_DST_OFF] = zero_words + (n_words if has_written else 0) if track else -1
    multifd_inputs(p, sc)
    p[L.P_SEQ_STRIDE] = sc.write_stride
    p[L.P_SEQ_CURSOR] = sc.write_cursor
    p[L.P_PS_SECTION] = wire_ps(SECTION_WIRE, link)
    p[L.P_PS_SYNC_BASE] = _ps((sc.sync_time_fixed + sc.sync_time_per_gib * sc.ram_size / GIB)
                              * 1e-3)
    p[L.P_PS_SYNC_PAGE] = _ps(sc.sync_time_per_dirty_page * 1e-9)
    p[L.P_PS_SETUP] = _ps(sc.setup_overhead * 1e-3)
    p[L.P_PS_VM_STOP] = _ps(sc.vm_stop_time * 1e-3)
    p[L.P_PS_DEVICE] = wire_ps(sc.device_state_size, link)
    p[L.P_DEVICE_BYTES] = sc.device_state_size
    p[L.P_PS_MAX_TIME] = _ps(sc.max_time)
    p[L.P_CHECK] = int(sc.check)
    p[L.P_QEMU_RULE] = QEMU_RULES[sc.qemu_version]
    if policy is None:
        policy = sc.policy_object
    # a policy may turn on auto-converge (Proxmox), as it may postcopy-ram
    auto_converge = sc.auto_converge or bool(getattr(policy, "auto_converge", False))
    p[L.P_AUTO_CONVERGE] = int(auto_converge)
    p[L.P_THROTTLE_TRIGGER] = sc.throttle_trigger_threshold
    p[L.P_THROTTLE_INITIAL] = sc.cpu_throttle_initial
    p[L.P_THROTTLE_INCREMENT] = sc.cpu_throttle_increment
    p[L.P_THROTTLE_TAILSLOW] = int(sc.cpu_throttle_tailslow)
    p[L.P_THROTTLE_MAX] = sc.max_cpu_throttle
    p[L.P_POSTCOPY_RAM] = int(sc.postcopy_ram or (policy is not None and policy.postcopy))
    p[L.P_POSTCOPY_START_SYNC] = sc.postcopy_start_sync
    p[L.P_ZIPF_EXPONENT_MICRO] = round(sc.zipf_exponent * 1e6)
    p[L.P_DIRTY_LIMIT] = int(sc.dirty_limit)
    quota = sc.vcpus * sc.vcpu_dirty_limit * 2**20                 # [B/s]
    p[L.P_DIRTY_QUOTA_PPM] = 1_000_000 if sc.dirty_rate <= quota else \
        round(1e6 * quota / sc.dirty_rate)
    # the 5 s dirty-sync timer of auto-converge arrived in QEMU 9.2
    p[L.P_PERIODIC_SYNC] = int(auto_converge and
                               QEMU_VERSIONS.index(sc.qemu_version) >= QEMU_VERSIONS.index("9.2"))
    return p, write_streams(sc)


def multifd_inputs(p: np.ndarray, sc: Scenario) -> None:
    """The multifd slots of ``p`` (all 0 with multifd off): channels, who finds zero
    pages, the migration thread's, the channels' and the destination's costs, and
    a packet's bytes and wire time."""
    if not sc.multifd:
        return
    link = sc.link_bandwidth
    p[L.P_MULTIFD_CHANNELS] = sc.multifd_channels
    # 'multifd' (9.0+) detects zero pages in the channels; 8.2 and 'legacy' in the thread
    p[L.P_MF_DETECT] = int(sc.zero_page_detection == "multifd" and sc.qemu_version != "8.2")
    p[L.P_PS_MF_QUEUE] = _ps(sc.multifd_queue_time * 1e-9)
    p[L.P_PS_MF_PACKET] = _ps(sc.multifd_packet_time * 1e-9)
    page_time = {"none": sc.multifd_page_time, "zlib": sc.zlib_page_time,
                 "zstd": sc.zstd_page_time}[sc.multifd_compression]
    p[L.P_PS_MF_PAGE] = _ps(page_time * 1e-9)
    p[L.P_PS_MF_ZERO] = _ps(sc.zero_page_scan_time * 1e-9)
    p[L.P_PS_MF_UNTOUCHED] = _ps(sc.untouched_page_scan_time * 1e-9)
    p[L.P_PS_MF_DST_PAGE] = _ps(sc.dst_copy_time * 1e-9)
    page_bytes = PAGE_SIZE if sc.multifd_compression == "none" else \
        max(1, round(PAGE_SIZE * sc.compressed_fraction))
    p[L.P_MF_PAGE_BYTES] = page_bytes
    p[L.P_PS_MF_HEADER_WIRE] = wire_ps(MULTIFD_HEADER_WIRE, link)
    p[L.P_PS_MF_PAGE_WIRE] = wire_ps(page_bytes, link)


def _stream_rates(dirty_rate: float, workload: str, hot_share: float) -> tuple:
    """Page writes per picosecond of each stream for ``dirty_rate`` [B/s]. [1/ps]"""
    rate = dirty_rate / PAGE_SIZE / PS_PER_S
    share = hot_share if workload == "hotcold" else 1.0
    return rate * share, rate * (1.0 - share)


def write_streams(sc: Scenario) -> np.ndarray:
    """The kernel's ``streams`` array for ``sc``: each stream's rate (``G_RATE``),
    then for ``replay`` the trace's writes (``G_REPLAY``, records ``GR_*``), for
    ``phases`` the phases (``G_PHASES``, records ``GP_*``)."""
    if sc.workload == "phases":
        phases = parse_phases(sc.phases)
        streams = np.zeros(L.G_PHASES + L.GP_SIZE * len(phases))
        records = streams[L.G_PHASES:].reshape(-1, L.GP_SIZE)
        for i, (workload, dirty_rate, seconds) in enumerate(phases):
            records[i, L.GP_DURATION] = seconds * 1e6
            records[i, L.GP_WORKLOAD] = WORKLOAD_CODES[workload]
            records[i, L.GP_RATE: L.GP_RATE + L.N_STREAMS] = \
                _stream_rates(dirty_rate, workload, sc.hot_share)
        return streams
    if sc.workload == "replay":
        time_us, pages = read_write_trace(sc.write_trace)
        streams = np.zeros(L.G_REPLAY + L.GR_SIZE * len(pages))
        records = streams[L.G_REPLAY:].reshape(-1, L.GR_SIZE)
        records[:, L.GR_TIME] = time_us
        records[:, L.GR_PAGE] = pages
        return streams
    streams = np.zeros(L.STREAMS.size)
    streams[L.G_RATE: L.G_RATE + L.N_STREAMS] = \
        _stream_rates(sc.dirty_rate, sc.workload, sc.hot_share)
    return streams


def page_content(p: np.ndarray, sc: Scenario, words: int) -> np.ndarray:
    """The page-content array the kernel starts from (``migration_thread``'s
    ``content``, ``words`` uint64 long as :func:`kernel_arrays` says, laid out by
    ``P_ZERO_WORD0``, ``P_WRITTEN_OFF`` and ``P_DST_OFF``): the zero bits set over
    the initially-zero region but for ``data_ranges``, the written bits over its
    allocated part and ``data_ranges``, the destination's bits clear."""
    n_words = (sc.n_pages + 63) // 64
    zw0 = int(p[L.P_ZERO_WORD0])
    zero_words = n_words - zw0
    content = np.zeros(words, np.uint64)
    if sc.zero_start < sc.n_pages:
        content[max(0, sc.zero_start // 64 - zw0):zero_words] = ~np.uint64(0)
    if p[L.P_WRITTEN_OFF] >= 0:
        off = int(p[L.P_WRITTEN_OFF])
        content[off + sc.zero_start // 64: off + (sc.zero_allocated_end + 63) // 64] = \
            ~np.uint64(0)
    for first, end in sc.data_page_ranges if sc.data_ranges else ():
        pages = np.arange(max(first, zw0 * 64), end)
        bits = np.uint64(1) << (pages % 64).astype(np.uint64)
        np.bitwise_and.at(content, pages // 64 - zw0, ~bits)
        if p[L.P_WRITTEN_OFF] >= 0:
            np.bitwise_or.at(content, int(p[L.P_WRITTEN_OFF]) + pages // 64, bits)
    return content


def kernel_arrays(sc: Scenario, p: np.ndarray) -> dict:
    """Length and dtype of each per-page array the kernel is given for ``sc``.

    ``dirty_log`` and ``bitmap`` hold a bit per page in uint64 words;
    ``content`` up to three such bitsets (laid out by ``P_ZERO_WORD0``,
    ``P_WRITTEN_OFF`` and ``P_DST_OFF`` of ``p``, see :func:`page_content`);
    ``version`` and ``dst_version`` an int32 per page with ``check``, else none;
    ``state`` the kernel's state with a record per multifd channel
    (``layout.S_CHANNELS``).
    """
    n_words = (sc.n_pages + 63) // 64
    content = n_words - int(p[L.P_ZERO_WORD0]) + \
        (n_words if p[L.P_WRITTEN_OFF] >= 0 else 0) + (n_words if p[L.P_DST_OFF] >= 0 else 0)
    versions = sc.n_pages if sc.check else 0
    return {"dirty_log": (n_words, np.uint64), "bitmap": (n_words, np.uint64),
            "content": (content, np.uint64), "version": (versions, np.int32),
            "dst_version": (versions, np.int32),
            "state": (L.N_STATE + int(p[L.P_MULTIFD_CHANNELS]) * L.CH_SIZE, np.int64)}
