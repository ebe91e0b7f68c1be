"""Sweeps: every scenario parameter may be a list; the result is one Dataset.

``sweep(dirty_rate=[...], downtime_limit=[...], ...)`` builds the cartesian grid
of the listed parameters (dimensions in the order given), validates every
point before any work, runs the points in chunks (threads over the ``nogil``
kernel, or a Dask cluster), and unstacks the flat results into a Dataset built
by :func:`toolkit.schema.build_dataset`. A point's result depends only on its
parameters and seed, never on the chunking or the number of workers.
"""
from __future__ import annotations

import hashlib
import itertools
import os
import sys
import threading
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field

import numpy as np

from .kernels import layout as L
from .scenario import Scenario, _validate, check_names, resolve_avail
from .simulate import run_kernel
from .store import ChunkStore
from .units import parse_duration, parse_rate, parse_size

SCHEDULERS = ("threads", "dask")


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
    """A count of values: a whole number >= 1 (2.5 is refused, not rounded)."""
    if isinstance(num, bool) or not isinstance(num, (int, np.integer)) or num < 1:
        raise ValueError(f"{name}: num={num!r} is out of range: expected an integer >= 1")
    return int(num)


def _whole(value, name: str) -> int:
    """A sweep option that is a whole number >= 1 (``True`` is not one)."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{name}={value!r} is out of range: expected an integer >= 1")
    return int(value)


def _read_same_kind(start, stop, name):
    for parse in (parse_rate, parse_size, parse_duration):
        try:
            return float(parse(start, f"{name} start")), float(parse(stop, f"{name} stop"))
        except ValueError:
            continue
    raise ValueError(f"{name}: cannot read {start!r} and {stop!r} as two rates, sizes or "
                     "durations of the same kind")


def _listed(value) -> list | None:
    """The values of a swept parameter, or None for a fixed one."""
    if isinstance(value, (list, tuple, range)) or \
            (isinstance(value, np.ndarray) and value.ndim == 1):
        return list(value.tolist() if isinstance(value, np.ndarray) else value)
    return None


def _coordinate(name: str, values: list):
    """Coordinate values of a swept parameter: base units, or labels where needed."""
    if name == "avail_switchover_bandwidth" and any(
            isinstance(v, str) and resolve_avail(v, 1.0) != v for v in values):
        return [v if isinstance(v, str) else str(v) for v in values]
    if name == "workload":
        return [str(v) for v in values]
    return [_validate(name, resolve_avail(v, 1.0) if name == "avail_switchover_bandwidth"
                      else v) for v in values]


@dataclass
class Grid:
    """A validated sweep: swept dimensions, fixed parameters and every scenario."""

    dims: dict                     # name -> coordinate values, in dimension order
    fixed: dict                    # name -> value as given
    scenarios: list = field(default_factory=list)   # flat, C order over dims

    @property
    def shape(self) -> tuple:
        return tuple(len(v) for v in self.dims.values())

    def fingerprint(self, traces: bool) -> str:
        """Identifies the sweep, so a checkpoint is only resumed by the same sweep."""
        from . import __version__
        key = (__version__, traces, [sc.to_dict() for sc in self.scenarios])
        # a replayed trace counts by its content: editing the file is another sweep
        files = sorted({sc.write_trace for sc in self.scenarios if sc.workload == "replay"})
        if files:
            key += (tuple(hashlib.sha256(open(f, "rb").read()).hexdigest() for f in files),)
        return hashlib.sha256(repr(key).encode()).hexdigest()


def plan(**params) -> Grid:
    """Validate a sweep's parameters and list its scenarios, before any work.

    Raises
    ------
    TypeError, ValueError
        An unknown parameter, an empty or repeated list, or a bad value; the
        message names the parameter (and the point's values for a bad combination).
    """
    check_names(params)
    Scenario.from_kwargs(**{k: v for k, v in params.items() if _listed(v) is None})
    raw, dims, fixed = {}, {}, {}
    for name, value in params.items():
        values = _listed(value)
        if values is None:
            fixed[name] = value
            continue
        if not values:
            raise ValueError(f"{name}: the list of values to sweep is empty")
        coord = _coordinate(name, values)
        if len(set(coord)) != len(coord):
            raise ValueError(f"{name}: swept values repeat: {values!r}")
        raw[name], dims[name] = values, coord
    grid = Grid(dims=dims, fixed=fixed)
    for combo in itertools.product(*raw.values()):
        point = dict(zip(raw, combo))
        try:
            grid.scenarios.append(Scenario(**fixed, **point))
        except (TypeError, ValueError) as err:
            raise type(err)(f"{err} (at sweep point {point})") from None
    return grid


def run_chunk(scenarios: list, traces: bool, cancel: threading.Event | None = None) -> dict:
    """Run scenarios one after the other; the unit of work of threads and Dask tasks.

    ``cancel`` (threads): once set, the run in progress stops with
    KeyboardInterrupt (:func:`~toolkit.simulate.run_kernel`).

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
        cancel = threading.Event()
        futures, handled = {}, set()
        try:
            futures = {pool.submit(run_chunk, [grid.scenarios[i] for i in chunks[c]], traces,
                                   cancel): c for c in todo}
            for fut in as_completed(futures):
                on_result(futures[fut], fut.result())
                handled.add(fut)
        except BaseException as err:
            # Ctrl-C or an error: the queued chunks never start and the running ones
            # stop at their kernel's next slice (about SLICE_WALL_TIME)
            cancel.set()
            pool.shutdown(wait=True, cancel_futures=True)
            if isinstance(err, KeyboardInterrupt):
                # every chunk that finished before Ctrl-C is kept
                for fut, c in futures.items():
                    if fut not in handled and fut.done() and not fut.cancelled() and \
                            fut.exception() is None:
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
        futures = {client.submit(run_chunk, [grid.scenarios[i] for i in chunks[c]], traces,
                                 pure=False): c for c in todo}
        for fut in as_finished(futures):
            on_result(futures[fut], fut.result())
    finally:
        if own is not None:
            client.close()
            own.close()


def sweep(*, traces: bool = False, workers: int | None = None, chunk_size: int | None = None,
          scheduler="threads", progress: bool | None = None, checkpoint=None, **params):
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
    grid = plan(**params)
    n = len(grid.scenarios)
    chunk_size = max(1, min(64, -(-n // (8 * workers)))) if chunk_size is None else \
        _whole(chunk_size, "chunk_size")
    if isinstance(checkpoint, (str, os.PathLike)):
        # the chunking names the chunks: a resume must chunk alike (as the CLI's does)
        checkpoint = ChunkStore(checkpoint, grid.fingerprint(traces) + f"-{chunk_size}")
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
    resolved = {}
    labels = grid.dims.get("avail_switchover_bandwidth")
    if labels and isinstance(labels[0], str):
        resolved["avail_switchover_bandwidth"] = np.array(
            [sc.avail_switchover_bandwidth for sc in grid.scenarios],
            dtype=np.float64).reshape(grid.shape)
    fixed = grid.scenarios[0].to_dict() if grid.scenarios else {}
    return build_dataset(states, fixed, traces=padded, dims=grid.dims, resolved=resolved)


__all__ = ["sweep", "plan", "linspace", "geomspace", "run_chunk", "assemble", "Grid"]
