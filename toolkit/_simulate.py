"""Run one scenario through the kernel and return a Dataset: :func:`simulate`.

Allocate → run → read back: :mod:`toolkit.encode` turns a validated
:class:`~toolkit.scenario.Scenario` into the kernel's arrays; this layer
allocates the bitsets, runs the migration thread (:mod:`toolkit.kernels.precopy`)
slice by slice, and hands the raw numbers to :func:`toolkit.schema.build_dataset`.
It also refuses, before any work, a run whose arrays would not fit in memory.
The module is private: ``tk.simulate`` is the function.
"""
from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass

import numpy as np

from .constants import GIB, PS_PER_MS
from .encode import encode, kernel_arrays, kernel_inputs
from .kernels import layout as L
from .kernels.precopy import (BUFFER_DELAY, migration_iteration_finish, migration_thread_setup,
                              migration_thread_slice)
from .scenario import Scenario
from .units import format_size

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
    enc = encode(sc)
    p, streams, pol, rng, content, arrays = (enc.params, enc.streams, enc.monitor, enc.seeds,
                                             enc.content, enc.arrays)
    st = np.zeros(*arrays["state"])
    dirty_log, bitmap = np.zeros(*arrays["dirty_log"]), np.zeros(*arrays["bitmap"])
    src_version = np.zeros(*arrays["version"])
    dst_version = np.full(arrays["dst_version"][0], -1, arrays["dst_version"][1])
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
    return RawRun(state=st[: L.N_STATE].copy(), trace=trace[: st[L.S_N_WINDOWS]].copy())


# ---------------------------------------------------------------- memory

def run_memory(sc: Scenario) -> int:
    """Memory one run of ``sc`` takes: the per-page arrays
    (:func:`toolkit.encode.kernel_arrays`), the write streams (a replayed
    trace's writes) and the trace buffer as it starts. [B]"""
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
    >>> ds.attrs["host"], ds.attrs["dst_populate_time"]
    ('kvm-25g', 0.2)
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
