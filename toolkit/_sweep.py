"""Sweeps: every scenario parameter may be a list; the result is one Dataset.

``sweep(dirty_rate=[...], downtime_limit=[...], ...)`` builds the cartesian grid
of the listed parameters (dimensions in the order given), validates it before
any work (see :func:`plan`), runs the points in chunks (threads over the
``nogil`` kernel, or a Dask cluster), each chunk making its Scenarios from the
grid's coordinates as it starts, and unstacks the flat results into a Dataset
built by :func:`toolkit.schema.build_dataset`. A point's result depends only on
its parameters and seed, never on the chunking or the number of workers.

The module is private (``tk.sweep`` is the function); :func:`plan` and
:data:`MAX_POINTS` are public as ``toolkit.plan`` and ``toolkit.SWEEP_MAX_POINTS``.
"""
from __future__ import annotations

import functools
import hashlib
import itertools
import math
import numbers
import os
import sys
import threading
import time
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from dataclasses import dataclass, field

import numpy as np

from .constants import GIB
from .kernels import layout as L
from ._version import __version__
from .scenario import COUPLED, PARAMETER_INDEX, Scenario, check_names
from ._simulate import check_memory, run_kernel, run_memory
from .store import ChunkStore
from .units import format_size, parse_duration, parse_rate, parse_size

SCHEDULERS = ("threads", "dask")
#: Largest grid :func:`plan` accepts [points]: each point's results alone take
#: N_STATE int64 (~0.5 KB), ~5 GB for 10^7 points before the Dataset is built.
MAX_POINTS = 10**7


def linspace(start, stop, num: int) -> np.ndarray:
    """``num`` evenly spaced values from ``start`` to ``stop``, read with units.

    Both ends may be strings with units ("50MiB/s", "4GiB", "300ms"); the
    result is in the base unit (B/s, B or ms).
    """
    a, b = _read_same_kind(start, stop, "linspace")
    return np.linspace(a, b, _count(num, "linspace"))


def geomspace(start, stop, num: int) -> np.ndarray:
    """``num`` values from ``start`` to ``stop`` spaced by a constant ratio, read with units."""
    a, b = _read_same_kind(start, stop, "geomspace")
    return np.geomspace(a, b, _count(num, "geomspace"))


def _count(num, name: str) -> int:
    """A count of values: a whole number in [1, MAX_POINTS] (2.5 is refused, not
    rounded)."""
    if isinstance(num, bool) or not isinstance(num, (int, np.integer)) or \
            not 1 <= num <= MAX_POINTS:
        raise ValueError(f"{name}: num={num!r} is out of range: expected an integer in "
                         f"[1, {MAX_POINTS}]")
    return int(num)


def _whole(value, name: str) -> int:
    """A sweep option that is a whole number >= 1 (``True`` is not one)."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{name}={value!r} is out of range: expected an integer >= 1")
    return int(value)


def _read_same_kind(start, stop, name):
    for parse in (parse_rate, parse_size, parse_duration):
        try:
            ends = float(parse(start, f"{name} start")), float(parse(stop, f"{name} stop"))
        except ValueError:
            continue
        if not all(map(np.isfinite, ends)):
            raise ValueError(f"{name}: start={start!r} and stop={stop!r}: expected finite ends")
        return ends
    raise ValueError(f"{name}: cannot read {start!r} and {stop!r} as two rates, sizes or "
                     "durations of the same kind")


def _listed(value) -> list | None:
    """The values of a swept parameter, or None for a fixed one."""
    if isinstance(value, (list, tuple, range)) or \
            (isinstance(value, np.ndarray) and value.ndim == 1):
        return list(value.tolist() if isinstance(value, np.ndarray) else value)
    return None


def _labelled(name: str, coord: list) -> bool:
    """Whether the axis of a numeric parameter holds labels (avail's "2x link"), each
    standing for another number at each point."""
    return PARAMETER_INDEX[name].rules.numeric and \
        any(isinstance(c, str) for c in coord)


@dataclass
class Grid:
    """A validated sweep: swept dimensions and fixed parameters.

    Point ``i`` (C order over ``dims``) is made on demand by :meth:`scenario`,
    so a grid takes memory for its axes, not for its points.
    """

    dims: dict                     # name -> coordinate values, in dimension order
    fixed: dict                    # name -> value as given
    values: dict                   # name -> swept values as given, in dimension order
    # the most workers check_sweep_memory has let this grid run on: a caller that
    # checked before its own work (the CLI, before its sample run) is not checked again
    memory_checked: int = field(default=0, compare=False, repr=False)

    @property
    def shape(self) -> tuple:
        """The grid's shape: one length per swept dimension."""
        return tuple(len(v) for v in self.dims.values())

    @property
    def size(self) -> int:
        """Points of the grid."""
        return math.prod(self.shape)

    def point(self, i: int) -> dict:
        """The swept values (as given) of point ``i``."""
        index = {}
        for name in reversed(self.values):
            i, index[name] = divmod(i, len(self.values[name]))
        return {name: self.values[name][index[name]] for name in self.values}

    def scenario(self, i: int) -> Scenario:
        """The Scenario of point ``i``."""
        return Scenario(**self.fixed, **self.point(i))

    def corners(self):
        """The points at the grid's extremes (swept values as given): every value of
        an axis of labels, choices or flags times the smallest and the largest value
        of each numeric axis."""
        picks = []
        for name, coord in self.dims.items():
            if all(isinstance(c, numbers.Real) and not isinstance(c, bool) for c in coord):
                ends = {min(range(len(coord)), key=coord.__getitem__),
                        max(range(len(coord)), key=coord.__getitem__)}
            else:
                ends = range(len(coord))
            picks.append([self.values[name][j] for j in sorted(ends)])
        for combo in itertools.product(*picks):
            yield dict(zip(self.values, combo))

    def _points(self):
        """Each point in C order, cheaply: a Scenario with the point's values of the
        COUPLED axes (and so the point's fields but those of the other axes) and
        the point's index along each axis."""
        names = list(self.values)
        first = {name: values[0] for name, values in self.values.items()}

        @functools.lru_cache(maxsize=4096)
        def made(coupled: tuple) -> Scenario:
            return Scenario(**self.fixed, **{**first, **dict(coupled)})
        for index in itertools.product(*(range(len(v)) for v in self.values.values())):
            yield made(tuple((a, self.values[a][j]) for a, j in zip(names, index)
                             if a in COUPLED)), index

    def fingerprint(self, traces: bool) -> str:
        """Identifies the sweep, so a checkpoint is only resumed by the same sweep.

        The SHA-256 of ``repr((version, traces, [to_dict() of each point]))``, plus
        the replayed traces' SHA-256 when there are any, streamed point by point:
        a point's dict is that of a Scenario sharing its COUPLED values with the
        point's own value of each other swept field.
        """
        first = {name: values[0] for name, values in self.values.items()}
        # the field of each other axis in its every value, as repr shows it
        own = {name: [f"{name!r}: {Scenario(**self.fixed, **{**first, name: v}).to_dict()[name]!r}"
                      for v in values]
               for name, values in self.values.items() if name not in COUPLED}
        digest = hashlib.sha256(f"({__version__!r}, {traces!r}, [".encode())
        slots, known, batch = None, {}, []
        for sc, index in self._points():
            if id(sc) not in known:           # it holds sc: no other object takes its id
                fields = sc.to_dict()
                if slots is None:
                    slots = {name: list(fields).index(name) for name in own}
                if len(known) == 4096:
                    known.clear()
                known[id(sc)] = (sc, [f"{k!r}: {v!r}" for k, v in fields.items()])
            items = known[id(sc)][1].copy()
            for name, j in zip(self.values, index):
                if name in own:
                    items[slots[name]] = own[name][j]
            batch.append("{" + ", ".join(items) + "}")
            if len(batch) == 4096:
                digest.update((", ".join(batch) + ", ").encode())
                batch = []
        digest.update((", ".join(batch) + "]").encode())
        # a replayed trace counts by its content: editing the file is another sweep;
        # the corners hold every value of workload and write_trace, so every file
        files = sorted({sc.write_trace for sc in map(lambda p: Scenario(**self.fixed, **p),
                                                     self.corners())
                        if sc.workload == "replay"})
        if files:
            digest.update((", " + repr(tuple(hashlib.sha256(open(f, "rb").read()).hexdigest()
                                             for f in files))).encode())
        digest.update(b")")
        return digest.hexdigest()


def plan(**params) -> Grid:
    """Validate a sweep's parameters, before any work; its scenarios are made later.

    Each value of each axis is validated once; the rules of Scenario that join
    several parameters are checked at the grid's corners (:meth:`Grid.corners`).
    Each such rule is monotonic in each number it reads (a sum of sizes against
    ``ram_size``, one share against another, ...), so a point that breaks one
    has a corner that breaks it too: no point is refused once the sweep runs.

    Raises
    ------
    TypeError, ValueError
        An unknown parameter, an empty or repeated list, a bad value, or a grid of
        more than :data:`MAX_POINTS` points; the message names the parameter (and
        the point's values for a bad combination).
    """
    check_names(params)
    Scenario.from_kwargs(**{k: v for k, v in params.items() if _listed(v) is None})
    swept = {name: _listed(value) for name, value in params.items()
             if _listed(value) is not None}
    size = math.prod(len(v) for v in swept.values())
    if size > MAX_POINTS:     # before the values are read, one by one
        raise ValueError(f"the sweep has {size:,} points ("
                         f"{' x '.join(f'{len(v)} {k}' for k, v in swept.items())}), more than "
                         f"MAX_POINTS = {MAX_POINTS:,}: sweep fewer values, or split the sweep")
    dims, fixed = {}, {}
    for name, value in params.items():
        values = swept.get(name)
        if values is None:
            fixed[name] = value
            continue
        if not values:
            raise ValueError(f"{name}: the list of values to sweep is empty")
        spec = PARAMETER_INDEX[name]
        coord = spec.coordinates(values)
        seen = {}
        for i, (value, c) in enumerate(zip(values, coord)):
            first = seen.setdefault(spec.meaning(value, c), i)
            if first != i:
                raise ValueError(f"{name}: swept values {values[first]!r} and {value!r} are "
                                 "the same point: give each once")
        dims[name] = coord
    grid = Grid(dims=dims, fixed=fixed, values=swept)
    for point in grid.corners():
        try:
            Scenario(**fixed, **point)
        except (TypeError, ValueError) as err:
            raise type(err)(f"{err} (at sweep point {point})") from None
    return grid


def check_sweep_memory(grid: Grid, workers: int) -> None:
    """Refuse a sweep whose runs would not fit in memory: ``workers`` runs of its
    largest corner point at once (run memory grows with each size and flag), and
    the table of results (``N_STATE`` int64 per point). Once passed, :func:`sweep`
    does not check ``grid`` again for as many workers or fewer."""
    runs = [(run_memory(sc), sc) for sc in map(lambda p: Scenario(**grid.fixed, **p),
                                               grid.corners())]
    per_run, sc = max(runs, key=lambda r: r[0])
    table = grid.size * L.N_STATE * np.dtype(np.int64).itemsize
    check_memory(workers * per_run + table,
                 f"the sweep ({workers} workers at once on runs of up to "
                 f"{per_run / GIB:.2f} GiB: ram_size={format_size(sc.ram_size)}, "
                 f"check={sc.check}; results of {grid.size:,} points: {table / GIB:.2f} GiB)",
                 "fewer workers, a smaller ram_size, check=False or fewer points")
    grid.memory_checked = max(grid.memory_checked, workers)


def estimate_time(grid: Grid, workers: int, chunk_size: int) -> tuple[float, float]:
    """A sweep's wall time, roughly, from one run of its middle point.

    Returns
    -------
    sample : float
        The sample run's wall time, the kernels loaded first. [s]
    total : float
        ``sample`` times the points, shared by the workers that have chunks. [s]
    """
    from ._warmup import warmup
    warmup(verbose=False)
    start = time.perf_counter()
    run_kernel(grid.scenario(grid.size // 2))
    sample = time.perf_counter() - start
    busy = min(workers, os.cpu_count() or 1, -(-grid.size // chunk_size))
    return sample, sample * grid.size / busy


def run_chunk(scenarios: list, traces: bool, cancel: threading.Event | None = None) -> dict:
    """Run scenarios one after the other; the unit of work of threads and Dask tasks.

    ``cancel`` (threads): once set, the run in progress stops with
    KeyboardInterrupt (:func:`~toolkit._simulate.run_kernel`).

    Returns
    -------
    dict
        ``states`` (n, N_STATE) int64; with ``traces``, ``trace`` (windows, N_TRACE)
        concatenated and ``trace_len`` (n,).
    """
    states = np.empty((len(scenarios), L.N_STATE), np.int64)
    rows, lengths = [], np.zeros(len(scenarios), np.int64)
    for i, sc in enumerate(scenarios):
        raw = run_kernel(sc, cancel)
        states[i] = raw.state
        if traces:
            rows.append(raw.trace)
            lengths[i] = raw.trace.shape[0]
    out = {"states": states}
    if traces:
        out["trace"] = np.concatenate(rows) if rows else np.zeros((0, L.N_TRACE))
        out["trace_len"] = lengths
    return out


def _run_points(grid: Grid, ids: range, traces: bool,
                cancel: threading.Event | None = None) -> dict:
    """:func:`run_chunk` over points ``ids`` of ``grid``, their Scenarios made here."""
    return run_chunk([grid.scenario(i) for i in ids], traces, cancel)


def _progress_bar(total: int, progress):
    if progress is None:
        progress = sys.stderr.isatty() and not os.environ.get("CI")
    if not progress:
        return None
    from tqdm.auto import tqdm
    return tqdm(total=total, unit="scenario", desc="sweep")


def _execute(grid: Grid, chunks: list, todo: list, traces: bool, workers: int, scheduler,
             on_result):
    """Run the chunks in ``todo``, calling ``on_result(chunk_id, result)`` as each finishes."""
    if scheduler == "threads":
        pool = ThreadPoolExecutor(max_workers=workers)
        queue, running, cancel = iter(todo), {}, threading.Event()
        try:
            while True:
                # a few chunks ahead of the workers: a future per chunk of a big grid
                # would take memory for nothing
                for c in itertools.islice(queue, 2 * workers - len(running)):
                    running[pool.submit(_run_points, grid, chunks[c], traces, cancel)] = c
                if not running:
                    break
                finished, _ = wait(running, return_when=FIRST_COMPLETED)
                for fut in finished:
                    on_result(running.pop(fut), fut.result())
        except BaseException as err:
            # Ctrl-C or an error: the queued chunks never start and the running ones
            # stop at their kernel's next slice (about SLICE_WALL_TIME)
            cancel.set()
            pool.shutdown(wait=True, cancel_futures=True)
            if isinstance(err, KeyboardInterrupt):
                # every chunk that finished before Ctrl-C is kept
                for fut, c in running.items():
                    if fut.done() and not fut.cancelled() and fut.exception() is None:
                        on_result(c, fut.result())
            raise
        pool.shutdown()
        return
    try:
        from distributed import Client, LocalCluster, get_client
        from distributed import as_completed as as_finished
    except ImportError:
        raise ImportError("scheduler='dask' needs the optional extra: "
                          "pip install 'switchover-lab[parallel]'") from None
    own = None
    if isinstance(scheduler, Client):
        client = scheduler
    else:
        try:
            client = get_client()
        except ValueError:
            own = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                               dashboard_address=None)
            client = Client(own)
    try:
        futures = {client.submit(_run_points, grid, chunks[c], traces, pure=False): c
                   for c in todo}
        for fut in as_finished(futures):
            on_result(futures[fut], fut.result())
    finally:
        if own is not None:
            client.close()
            own.close()


def sweep(*, traces: bool = False, workers: int | None = None, chunk_size: int | None = None,
          scheduler="threads", progress: bool | None = None, checkpoint=None,
          grid: Grid | None = None, **params):
    """Simulate every combination of the listed parameters.

    Parameters
    ----------
    traces : bool
        Also keep each run's per-window trace (NaN-padded along ``window``).
    workers : int, optional
        Threads (or Dask worker processes for a cluster started here); default
        the number of CPUs.
    chunk_size : int, optional
        Scenarios per task; default about 8 tasks per worker, at most 64.
    scheduler : {"threads", "dask"} or distributed.Client
        ``"dask"`` uses the current Dask client, or starts a local cluster of
        ``workers`` processes for this sweep.
    progress : bool, optional
        Show a tqdm bar; default only in an interactive terminal outside CI.
    checkpoint : toolkit.store.ChunkStore or path, optional
        Finished chunks are written here and skipped when the sweep runs again.
    grid : Grid, optional
        A :func:`plan` already made (then no ``params``): it is not planned again,
        nor its memory checked again if :func:`check_sweep_memory` passed it for
        at least ``workers``.
    **params
        Scenario parameters; a list (or range, tuple, 1-D array) is swept, in the
        order given. ``avail_switchover_bandwidth`` also takes ``"estimate"``,
        ``"link"`` and ``"Nx link"``.

    Returns
    -------
    xarray.Dataset
        Dimensions = the swept parameters with their values (base units) as
        coordinates; the scalar results of :func:`toolkit.simulate` as variables.

    Examples
    --------
    >>> import toolkit as tk
    >>> ds = tk.sweep(ram_size="256MiB", dirty_rate=["100MiB/s", "1GiB/s"],
    ...               avail_switchover_bandwidth=["estimate", "link"], max_time=10.0)
    >>> ds.converged.dims
    ('dirty_rate', 'avail_switchover_bandwidth')
    """
    if not (scheduler in SCHEDULERS or type(scheduler).__name__ == "Client"):
        raise ValueError(f"scheduler={scheduler!r}: expected one of {SCHEDULERS} or a "
                         "dask.distributed.Client")
    workers = (os.cpu_count() or 1) if workers is None else _whole(workers, "workers")
    if not isinstance(traces, (bool, np.bool_)):
        raise TypeError(f"traces: expected True or False, got {type(traces).__name__} "
                        f"{traces!r}")
    traces = bool(traces)
    if grid is None:
        grid = plan(**params)
    elif params:
        raise TypeError(f"sweep: give either grid= or parameters, not both (got {sorted(params)})")
    n = grid.size
    # a Client's workers have their own memory
    if isinstance(scheduler, str) and grid.memory_checked < workers:
        check_sweep_memory(grid, workers)
    chunk_size = max(1, min(64, -(-n // (8 * workers)))) if chunk_size is None else \
        _whole(chunk_size, "chunk_size")
    if isinstance(checkpoint, (str, os.PathLike)):
        # the chunking names the chunks: a resume must chunk alike (as the CLI's does);
        # the chunks hold kernel state, which only the same state layout reads back
        checkpoint = ChunkStore(checkpoint, grid.fingerprint(traces) +
                                f"-{chunk_size}-{L.STATE.digest()}")
    chunks = [range(a, min(a + chunk_size, n)) for a in range(0, n, chunk_size)]
    results = {}
    done = checkpoint.done() if checkpoint is not None else set()
    bar = _progress_bar(n, progress)

    def on_result(chunk_id, result):
        if checkpoint is not None:
            checkpoint.write(chunk_id, result)
        else:
            results[chunk_id] = result
        if bar is not None:
            bar.update(len(chunks[chunk_id]))

    if bar is not None:
        bar.update(sum(len(chunks[c]) for c in done if c < len(chunks)))
    try:
        _execute(grid, chunks, [c for c in range(len(chunks)) if c not in done], traces,
                 workers, scheduler, on_result)
    finally:
        if bar is not None:
            bar.close()
    if checkpoint is not None:
        results = {c: checkpoint.read(c) for c in range(len(chunks))}
    return assemble(grid, [results[c] for c in range(len(chunks))], traces)


def assemble(grid: Grid, parts: list, traces: bool):
    """Unstack chunk results (in scenario order) into the sweep's Dataset."""
    from .schema import build_dataset

    states = np.concatenate([p["states"] for p in parts]).reshape(grid.shape + (L.N_STATE,))
    padded = None
    if traces:
        lengths = np.concatenate([p["trace_len"] for p in parts])
        rows = np.concatenate([p["trace"] for p in parts])
        padded = np.full((len(lengths), int(lengths.max(initial=0)), L.N_TRACE), np.nan)
        starts = np.concatenate([[0], np.cumsum(lengths)[:-1]])
        for i, (a, m) in enumerate(zip(starts, lengths)):
            padded[i, :m] = rows[a:a + m]
        padded = padded.reshape(grid.shape + padded.shape[1:])
    # a labelled axis is resolved per point, so it is one of COUPLED, whose values
    # the Scenarios of _points have
    labelled = [name for name, coord in grid.dims.items() if _labelled(name, coord)]
    values = {name: [] for name in labelled}
    for sc, _ in (grid._points() if labelled else ()):
        for name in labelled:
            values[name].append(getattr(sc, name))
    resolved = {name: np.array(v, dtype=np.float64).reshape(grid.shape)
                for name, v in values.items()}
    fixed = grid.scenario(0).to_dict()
    return build_dataset(states, fixed, traces=padded, dims=grid.dims, resolved=resolved)


__all__ = ["sweep", "plan", "estimate_time", "check_sweep_memory", "MAX_POINTS", "linspace",
           "geomspace", "run_chunk", "assemble", "Grid"]
