"""Run one scenario through the kernel and return a Dataset: :func:`simulate`.

This layer turns a validated :class:`~toolkit.scenario.Scenario` into the
kernel's integer parameters (picoseconds, pages, bytes), allocates the bitsets,
runs the migration thread (:mod:`toolkit.kernels.precopy`) slice by slice, and
hands the raw numbers to :func:`toolkit.schema.build_dataset`.
"""
from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass

import numpy as np

from . import policies
from .constants import (GIB, NORMAL_PAGE_WIRE, PAGE_SIZE, PS_PER_S, SECTION_WIRE,
                        ZERO_PAGE_WIRE)
from .kernels import layout as L
from .constants import PS_PER_MS
from .kernels.precopy import (BUFFER_DELAY, migration_iteration_finish, migration_thread_setup,
                              migration_thread_slice)
from .scenario import QEMU_VERSIONS, Scenario
from .units import format_size

WORKLOAD_CODES = {"uniform": L.UNIFORM, "hotcold": L.HOTCOLD, "sequential": L.SEQUENTIAL,
                  "zipf": L.ZIPF, "replay": L.REPLAY, "phases": L.PHASES}
#: migration_iteration_run's switchover rule by release: 8.2, 9.0-10.0, 10.1 and later
QEMU_RULES = {"8.2": 0, "9.0": 1, "9.1": 1, "9.2": 1, "10.0": 1, "10.1": 2}
SLICE_WALL_TIME = 0.075          # aim for one kernel call: Ctrl-C waits at most about this [s]
SLICE_FIRST = BUFFER_DELAY * PS_PER_MS   # simulated length of the first slice [ps]
TRACE_ROWS_FIRST = 64            # trace rows allocated to start with (it doubles as needed)


@dataclass
class RawRun:
    """What the kernel left behind for one scenario.

    Attributes
    ----------
    state : ndarray(int64)
        Final state, indexed by ``layout.S_*``.
    trace : ndarray(float64, (windows, N_TRACE))
        Closed windows, indexed by ``layout.W_*``.
    """

    state: np.ndarray
    trace: np.ndarray


def _ps(seconds: float) -> int:
    return int(round(seconds * PS_PER_S))


def wire_ps(nbytes: int, link_bandwidth: float) -> int:
    """Time to put ``nbytes`` on a link of ``link_bandwidth`` [B/s]. [ps]"""
    return _ps(nbytes / link_bandwidth)


def kernel_inputs(sc: Scenario) -> tuple[np.ndarray, np.ndarray]:
    """The kernel's parameter array and guest write rate for a scenario.

    Returns
    -------
    p : ndarray(int64, N_PARAMS)
        See ``layout.P_*``.
    streams : ndarray(float64)
        Page writes per picosecond of each write stream (hotcold: hot set,
        rest; otherwise one stream) [1/ps]; for ``replay`` two zeros, then the
        trace's (time [us], page) pairs (``layout.G_REPLAY``).
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
    # preallocated, the destination holds every page: no first copies
    p[L.P_PS_FIRST_COPY] = p[L.P_PS_NORMAL] if sc.mem_prealloc else \
        max(normal, _ps(sc.dst_first_copy_time * 1e-9))
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
    track = p[L.P_PS_FIRST_COPY] != p[L.P_PS_NORMAL]      # else a first copy is a re-send
    p[L.P_DST_OFF] = zero_words + (n_words if has_written else 0) if track else -1
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
    p[L.P_AUTO_CONVERGE] = int(sc.auto_converge)
    p[L.P_THROTTLE_TRIGGER] = sc.throttle_trigger_threshold
    p[L.P_THROTTLE_INITIAL] = sc.cpu_throttle_initial
    p[L.P_THROTTLE_INCREMENT] = sc.cpu_throttle_increment
    p[L.P_THROTTLE_TAILSLOW] = int(sc.cpu_throttle_tailslow)
    p[L.P_THROTTLE_MAX] = sc.max_cpu_throttle
    policy = sc.policy_object
    p[L.P_POSTCOPY_RAM] = int(sc.postcopy_ram or getattr(policy, "postcopy", False))
    p[L.P_POSTCOPY_START_SYNC] = sc.postcopy_start_sync
    p[L.P_ZIPF_EXPONENT_MICRO] = round(sc.zipf_exponent * 1e6)
    p[L.P_DIRTY_LIMIT] = int(sc.dirty_limit)
    quota = sc.vcpus * sc.vcpu_dirty_limit * 2**20                 # [B/s]
    p[L.P_DIRTY_QUOTA_PPM] = 1_000_000 if sc.dirty_rate <= quota else \
        round(1e6 * quota / sc.dirty_rate)
    # the 5 s dirty-sync timer of auto-converge arrived in QEMU 9.2
    p[L.P_PERIODIC_SYNC] = int(sc.auto_converge and
                               QEMU_VERSIONS.index(sc.qemu_version) >= QEMU_VERSIONS.index("9.2"))
    rate = sc.dirty_rate / PAGE_SIZE / PS_PER_S
    share = sc.hot_share if sc.workload == "hotcold" else 1.0
    if sc.workload == "phases":
        from .workloads import parse_phases
        phases = parse_phases(sc.phases)
        streams = np.zeros(L.G_PHASES + 4 * len(phases))
        for i, (workload, dirty_rate, seconds) in enumerate(phases):
            r = dirty_rate / PAGE_SIZE / PS_PER_S
            share = sc.hot_share if workload == "hotcold" else 1.0
            streams[L.G_PHASES + 4 * i: L.G_PHASES + 4 * i + 4] = (
                seconds * 1e6, WORKLOAD_CODES[workload], r * share, r * (1.0 - share))
        return p, streams
    if sc.workload == "replay":
        from .workloads import read_write_trace
        time_us, pages = read_write_trace(sc.write_trace)
        streams = np.zeros(L.G_REPLAY + 2 * len(pages))
        streams[L.G_REPLAY::2] = time_us
        streams[L.G_REPLAY + 1::2] = pages
        return p, streams
    return p, np.array([rate * share, rate * (1.0 - share)])


def page_content(p: np.ndarray, sc: Scenario) -> np.ndarray:
    """The page-content array the kernel starts from (``migration_thread``'s
    ``content``, laid out by ``P_ZERO_WORD0``, ``P_WRITTEN_OFF`` and ``P_DST_OFF``):
    the zero bits set over the initially-zero region, the written bits over its
    allocated part, the destination's bits clear."""
    n_words = (sc.n_pages + 63) // 64
    zw0 = int(p[L.P_ZERO_WORD0])
    zero_words = n_words - zw0
    content = np.zeros(*kernel_arrays(sc, p)["content"])
    if sc.zero_start < sc.n_pages:
        content[max(0, sc.zero_start // 64 - zw0):zero_words] = ~np.uint64(0)
    if p[L.P_WRITTEN_OFF] >= 0:
        off = int(p[L.P_WRITTEN_OFF])
        content[off + sc.zero_start // 64: off + (sc.zero_allocated_end + 63) // 64] = \
            ~np.uint64(0)
    return content


def run_kernel(sc: Scenario, cancel: threading.Event | None = None) -> RawRun:
    """Allocate the bitsets, run the migration thread, return its raw output.

    The kernel runs in slices of simulated time of about ``SLICE_WALL_TIME``
    each (the next slice's length adapts to the wall time the last one took),
    so Ctrl-C is seen between them, and the trace grows with the run rather
    than being sized for ``max_time``. The result is the same as one call of
    :func:`~toolkit.kernels.precopy.migration_thread`.

    Parameters
    ----------
    sc : Scenario
    cancel : threading.Event, optional
        Checked between slices: once set, the run stops with KeyboardInterrupt
        (how a sweep's worker threads learn of Ctrl-C in the main thread).
    """
    p, streams = kernel_inputs(sc)
    arrays = kernel_arrays(sc, p)
    st = np.zeros(L.N_STATE, dtype=np.int64)
    rng = np.array(sc.stream_seeds, dtype=np.uint64)
    dirty_log, bitmap = np.zeros(*arrays["dirty_log"]), np.zeros(*arrays["bitmap"])
    content = page_content(p, sc)
    src_version = np.zeros(*arrays["version"])
    dst_version = np.full(arrays["dst_version"][0], -1, arrays["dst_version"][1])
    pol = policies.kernel_array(sc.policy_object, sc.ram_size)
    trace = np.full((TRACE_ROWS_FIRST, L.N_TRACE), np.nan)
    migration_thread_setup(p, streams, st, rng, dirty_log, bitmap, content, src_version, pol)
    length = SLICE_FIRST
    done = False
    while not done:
        if cancel is not None and cancel.is_set():
            raise KeyboardInterrupt
        t_stop = min(int(st[L.S_T]) + length, int(p[L.P_PS_MAX_TIME]))
        # a window lasts at least BUFFER_DELAY: room for every window the slice can close
        rows = int(st[L.S_N_WINDOWS]) + 1 + \
            max(0, t_stop // PS_PER_MS - int(st[L.S_WIN_START_MS])) // BUFFER_DELAY
        if rows > trace.shape[0]:
            grown = np.full((max(rows, 2 * trace.shape[0]), L.N_TRACE), np.nan)
            grown[: trace.shape[0]] = trace
            trace = grown
        t0 = time.perf_counter()
        done = migration_thread_slice(p, streams, st, rng, dirty_log, bitmap, content,
                                      src_version, dst_version, pol, trace, t_stop)
        wall = time.perf_counter() - t0
        length = max(PS_PER_MS, int(length * min(8.0, SLICE_WALL_TIME / max(wall, 1e-6))))
    migration_iteration_finish(p, streams, st, rng, dirty_log, content, src_version,
                               dst_version)
    return RawRun(state=st, trace=trace[: st[L.S_N_WINDOWS]].copy())


# ---------------------------------------------------------------- memory

def kernel_arrays(sc: Scenario, p: np.ndarray) -> dict:
    """Length and dtype of each per-page array the kernel is given for ``sc``.

    ``dirty_log`` and ``bitmap`` hold a bit per page in uint64 words;
    ``content`` up to three such bitsets (laid out by ``P_ZERO_WORD0``,
    ``P_WRITTEN_OFF`` and ``P_DST_OFF`` of ``p``, see :func:`page_content`);
    ``version`` and ``dst_version`` an int32 per page with ``check``, else none.
    """
    n_words = (sc.n_pages + 63) // 64
    content = n_words - int(p[L.P_ZERO_WORD0]) + \
        (n_words if p[L.P_WRITTEN_OFF] >= 0 else 0) + (n_words if p[L.P_DST_OFF] >= 0 else 0)
    versions = sc.n_pages if sc.check else 0
    return {"dirty_log": (n_words, np.uint64), "bitmap": (n_words, np.uint64),
            "content": (content, np.uint64), "version": (versions, np.int32),
            "dst_version": (versions, np.int32)}


def run_memory(sc: Scenario) -> int:
    """Memory one run of ``sc`` takes: :func:`kernel_arrays`, the write streams
    (a replayed trace's writes) and the trace buffer as it starts. [B]"""
    p, streams = kernel_inputs(sc)
    pages = sum(n * np.dtype(dtype).itemsize for n, dtype in kernel_arrays(sc, p).values())
    return pages + streams.nbytes + TRACE_ROWS_FIRST * L.N_TRACE * np.float64().itemsize


def available_memory() -> int | None:
    """Memory the system can give now [B]: ``MemAvailable`` of /proc/meminfo (Linux);
    elsewhere the free physical pages of ``os.sysconf``; None where neither says."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024          # given in kB
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (AttributeError, ValueError, OSError):
        return None


def check_memory(estimate: int, what: str, remedy: str) -> None:
    """Refuse work whose arrays would not fit in :func:`available_memory`.

    Parameters
    ----------
    estimate : int
        Memory the work needs. [B]
    what : str
        The work and the parameters that drive ``estimate``, for the message.
    remedy : str
        What to change, for the message.

    Raises
    ------
    ValueError
        ``estimate`` is above the memory available; the message gives both in GiB.
    """
    limit = available_memory()
    if limit is not None and estimate > limit:
        raise ValueError(f"{what} needs about {estimate / GIB:.1f} GiB of memory, more than "
                          f"the {limit / GIB:.1f} GiB available now: {remedy}")


def check_run_memory(sc: Scenario) -> None:
    """Refuse a scenario whose run would not fit in memory (see :func:`check_memory`)."""
    check_memory(run_memory(sc), f"a run of ram_size={format_size(sc.ram_size)} with "
                 f"check={sc.check}", "a smaller ram_size" +
                 (", or check=False (its page versions take 8 B per page)" if sc.check else ""))


def simulate(scenario: Scenario | None = None, **params):
    """Simulate one QEMU precopy migration, page by page.

    Parameters
    ----------
    scenario : Scenario, optional
        A ready scenario; if given, no other parameters are allowed.
    **params
        Scenario parameters by QEMU-style name (see ``toolkit.PARAMETERS``),
        numbers in base units or strings with units, e.g.
        ``ram_size="4GiB"``, ``link_bandwidth="10Gbit/s"``,
        ``downtime_limit=300`` [ms], ``avail_switchover_bandwidth=0`` [B/s];
        ``host="tcg-loopback"`` (or another :mod:`toolkit.hosts` profile) takes
        that profile's values for the host parameters not given.

    Returns
    -------
    xarray.Dataset
        Scalars shaped like ``query-migrate`` (``converged``, ``total_time``
        [ms], ``downtime`` [ms], ``transferred`` [B], ...) and a per-window
        trace along ``window``; see :mod:`toolkit.schema`.

    Examples
    --------
    >>> import toolkit as tk
    >>> ds = tk.simulate(ram_size="1GiB", dirty_rate="100MiB/s", max_bandwidth=0)
    >>> bool(ds.converged)
    True
    >>> ds = tk.simulate(host="kvm-25g", ram_size="1GiB", dirty_rate="100MiB/s")
    >>> ds.attrs["host"], ds.attrs["dst_first_copy_time"]
    ('kvm-25g', 1500.0)
    """
    from .schema import build_dataset

    if scenario is not None:
        if params:
            raise TypeError("simulate: give either a Scenario or keyword parameters, not both")
        if not isinstance(scenario, Scenario):
            raise TypeError(f"scenario: expected a toolkit.Scenario, got "
                            f"{type(scenario).__name__}")
        sc = scenario
    else:
        sc = Scenario.from_kwargs(**params)
    check_run_memory(sc)
    raw = run_kernel(sc)
    return build_dataset(raw.state, sc.to_dict(), traces=raw.trace)
