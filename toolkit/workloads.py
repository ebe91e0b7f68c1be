"""Workloads from measurements: a dirty-pages-versus-time curve, or a write trace.

QEMU's ``calc-dirty-rate`` (and the 2023 qemu-devel migration-prediction
series) sample how many distinct pages a guest dirties within a time ``t``
after the dirty log is cleared; the curve rises with the write rate and
saturates at the working set. :func:`fit_dirty_curve` fits the simplest model
that saturates, uniform writes at ``r`` pages/s over a working set of ``W``
pages, ``D(t) = W (1 - exp(-r t / W))``, and returns Scenario parameters that
write exactly so (a ``hotcold`` guest whose hot set is the working set and takes
every write), so a measured guest can be simulated and swept.

A recorded page-level write trace replays as it is: ``workload="replay"`` with
``write_trace`` naming a file in the format of :data:`TRACE_FORMAT`
(:func:`read_write_trace`, :func:`write_write_trace`).
"""
from __future__ import annotations

import math
import os

import numpy as np

from .fitting import golden_section
from .constants import PAGE_SIZE
from .units import parse_duration, parse_rate, parse_size


def dirty_curve(t_s, working_set: float, rate: float) -> np.ndarray:
    """``W (1 - exp(-r t / W))``: distinct pages after ``t_s`` [s] of uniform writes at
    ``rate`` [pages/s] over ``working_set`` [pages]."""
    t = np.asarray(t_s, dtype=float)
    return working_set * -np.expm1(-rate * t / working_set)


def fit_dirty_curve(t_s, dirty_pages, ram_size) -> dict:
    """Fit ``W (1 - exp(-r t / W))`` to a measured curve and give Scenario parameters.

    Parameters
    ----------
    t_s : array_like
        Times since the dirty log was cleared [s], > 0.
    dirty_pages : array_like
        Distinct pages dirtied by then [pages], >= 0 and not decreasing.
    ram_size : int or str
        Guest RAM [B] (strings with units allowed).

    Returns
    -------
    dict
        ``workload``, ``hot_fraction``, ``hot_share``, ``dirty_rate`` [B/s] (or
        ``workload="uniform"`` when the working set is all of RAM) for
        :class:`toolkit.Scenario`, plus ``working_set`` [pages], ``rate``
        [pages/s] and ``rms_error`` [pages] of the fit.

    Raises
    ------
    ValueError
        Curves of different lengths, fewer than 2 points, non-positive times,
        negative or decreasing page counts.
    """
    t = np.asarray(t_s, dtype=float)
    d = np.asarray(dirty_pages, dtype=float)
    ram = parse_size(ram_size, "ram_size")
    n_pages = ram // PAGE_SIZE
    if t.shape != d.shape or t.ndim != 1 or t.size < 2:
        raise ValueError(f"fit_dirty_curve: t_s and dirty_pages must be 1-D of the same length "
                         f">= 2, got shapes {t.shape} and {d.shape}")
    if not np.all(np.isfinite(t)) or np.any(t <= 0):
        raise ValueError(f"fit_dirty_curve: t_s must be finite and > 0 s, got {t.tolist()}")
    if np.any(d < 0) or np.any(np.diff(d[np.argsort(t)]) < 0) or d.max() == 0:
        raise ValueError("fit_dirty_curve: dirty_pages must be >= 0, not decreasing with time, "
                         f"and not all 0; got {d.tolist()}")
    if d.max() > n_pages:
        raise ValueError(f"fit_dirty_curve: {d.max():.0f} dirty pages exceed the "
                         f"{n_pages} pages of ram_size={ram_size!r}")

    def best_rate(log_w):
        w = math.exp(log_w)
        # the initial slope bounds the rate from below; search a wide bracket around it
        slope = max(d / t)
        r = math.exp(golden_section(
            lambda x: float(np.sum((dirty_curve(t, w, math.exp(x)) - d) ** 2)),
            math.log(slope / 4), math.log(slope * 1e3))[1])
        return r, float(np.sum((dirty_curve(t, w, r) - d) ** 2))

    log_w = golden_section(lambda x: best_rate(x)[1], math.log(d.max()), math.log(n_pages),
                           steps=50)[1]
    working_set = math.exp(log_w)
    rate, sse = best_rate(log_w)
    out = {"working_set": working_set, "rate": rate,
           "rms_error": math.sqrt(sse / t.size), "dirty_rate": rate * PAGE_SIZE}
    hot = round(working_set)
    if hot >= n_pages:
        out["workload"] = "uniform"
    else:
        out.update(workload="hotcold", hot_fraction=hot / n_pages, hot_share=1.0)
    return out


# --- replaying a recorded page-level write trace -------------------------------------------

TRACE_FORMAT = """A write trace lists the guest's page writes in time order, one per line:

    <time since the migrate command, integer microseconds> <page number>

separated by spaces, a tab or a comma; blank lines and lines starting with '#'
are ignored. Pages count 4 KiB from the start of RAM. Times never decrease.
A ``.npz`` file with integer arrays ``time_us`` and ``page`` of one length
holds the same, compactly. After its last write the guest writes nothing more.
Times are below 2^53 us and pages below 2^32 (the pages of the largest guest)."""

#: Bounds of a trace's values: the kernel keeps them in float64, exact below these.
MAX_TRACE_TIME_US = 2**53
MAX_TRACE_PAGE = 2**32
_TRACES: dict = {}


def _trace_error(path, where: str, problem: str) -> ValueError:
    return ValueError(f"write trace {path}: {where}: {problem}\n{TRACE_FORMAT}")


def read_write_trace(path) -> tuple[np.ndarray, np.ndarray]:
    """Read a write trace (see ``TRACE_FORMAT``); cached by path, size and mtime.

    Returns
    -------
    time_us, page : ndarray(int64)
        Write times [us] and pages, in order.

    Raises
    ------
    ValueError
        A line or array entry that breaks the format, naming the line (text)
        or the offset (``.npz``).
    FileNotFoundError
        No such file.
    """
    try:
        stat = os.stat(path)
        if not os.path.isfile(path):
            raise IsADirectoryError(path)
    except FileNotFoundError:
        raise FileNotFoundError(f"write_trace={str(path)!r}: no such file") from None
    except OSError as err:
        raise ValueError(f"write_trace={str(path)!r}: not a readable file "
                         f"({type(err).__name__})") from None
    key = (os.path.abspath(path), stat.st_size, stat.st_mtime_ns)
    if key not in _TRACES:
        _TRACES.clear()                 # one trace at a time is what sweeps need
        _TRACES[key] = _parse_npz(path) if str(path).endswith(".npz") else _parse_text(path)
    return _TRACES[key]


def trace_position(path, index: int) -> str:
    """Where write ``index`` (0-based) of a trace is, for messages: ``"line N"``
    of a text trace (comments and blank lines counted), ``"entry #i"`` of a
    ``.npz``. Only error paths call it: it reads the file again."""
    if str(path).endswith(".npz"):
        return f"entry #{index}"
    seen = -1
    with open(path, encoding="ascii", errors="replace") as f:
        for n, line in enumerate(f, 1):
            text = line.strip()
            if text and not text.startswith("#"):
                seen += 1
                if seen == index:
                    return f"line {n}"
    return f"write #{index}"


def _parse_text(path):
    times, pages = [], []
    with open(path, encoding="ascii", errors="replace") as f:
        for n, line in enumerate(f, 1):
            text = line.strip()
            if not text or text.startswith("#"):
                continue
            fields = text.replace(",", " ").split()
            if len(fields) != 2 or not all(x.isdigit() for x in fields):
                raise _trace_error(path, f"line {n}", f"expected two non-negative integers "
                                   f"'<time_us> <page>', got {text[:60]!r}")
            # over 16 digits is beyond both bounds (and int() refuses 4300 digits and more)
            if any(len(x.lstrip("0")) > 16 for x in fields) or \
                    int(fields[0]) >= MAX_TRACE_TIME_US or int(fields[1]) >= MAX_TRACE_PAGE:
                raise _trace_error(path, f"line {n}", f"{text[:60]!r} is out of range: "
                                   "expected a time below 2^53 us and a page below 2^32")
            t, page = int(fields[0]), int(fields[1])
            if times and t < times[-1]:
                raise _trace_error(path, f"line {n}", f"time {t} us is before the previous "
                                   f"line's {times[-1]} us")
            times.append(t)
            pages.append(page)
    if not times:
        raise _trace_error(path, "whole file", "no writes")
    return np.array(times, np.int64), np.array(pages, np.int64)


def _parse_npz(path):
    # NumPy and zipfile raise a zoo of exceptions for a damaged archive (BadZipFile,
    # EOFError, zlib.error, ValueError, ...): each is the file's fault, so each is named
    try:
        z = np.load(path)
    except Exception as err:
        raise _trace_error(path, "whole file", f"not a .npz archive ({type(err).__name__}: "
                           f"{str(err)[:80]})") from None
    if not isinstance(z, np.lib.npyio.NpzFile):
        raise _trace_error(path, "whole file", "one .npy array, not a .npz archive of arrays "
                           "time_us and page")
    with z:
        missing = {"time_us", "page"} - set(z.files)
        if missing:
            raise _trace_error(path, "arrays", f"missing {sorted(missing)}; has {z.files}")
        try:
            t, page = z["time_us"], z["page"]
        except Exception as err:
            raise _trace_error(path, "arrays", f"time_us or page cannot be read "
                               f"({type(err).__name__}: {str(err)[:80]})") from None
    if not (isinstance(t, np.ndarray) and isinstance(page, np.ndarray)):
        raise _trace_error(path, "arrays", "time_us or page cannot be read (a member that "
                           "is not in .npy format)")
    if t.ndim != 1 or t.shape != page.shape or t.size == 0 or \
            t.dtype.kind not in "iu" or page.dtype.kind not in "iu":
        raise _trace_error(path, "arrays", f"time_us {t.dtype}{t.shape} and page "
                           f"{page.dtype}{page.shape}: expected non-empty 1-D integer arrays "
                           "of one length")
    # compared before any cast: uint64 values >= 2^63 must not wrap to negative int64
    bad = np.flatnonzero((t < 0) | (page < 0))
    if bad.size:
        raise _trace_error(path, f"offset {bad[0]}", "negative time or page")
    big = np.flatnonzero((t >= MAX_TRACE_TIME_US) | (page >= MAX_TRACE_PAGE))
    if big.size:
        i = big[0]
        raise _trace_error(path, f"offset {i}", f"time {t[i]} us or page {page[i]} is out of "
                           "range: expected a time below 2^53 us and a page below 2^32")
    back = np.flatnonzero(t[1:] < t[:-1])          # np.diff of unsigned times wraps
    if back.size:
        raise _trace_error(path, f"offset {back[0] + 1}", "time goes back")
    return t.astype(np.int64), page.astype(np.int64)


def write_write_trace(path, time_us, page) -> None:
    """Write a trace in the text format (``TRACE_FORMAT``)."""
    with open(path, "w", encoding="ascii") as f:
        f.write("# time_us page\n")
        for t, p in zip(np.asarray(time_us, np.int64), np.asarray(page, np.int64)):
            f.write(f"{t} {p}\n")


# --- phases: workloads one after the other ---------------------------------------------------

PHASE_WORKLOADS = ("uniform", "hotcold", "sequential", "zipf")


def parse_phases(text: str) -> list[tuple[str, float, float]]:
    """Read ``phases``: comma-separated ``workload:dirty rate:duration`` items,
    e.g. ``"uniform:100MiB/s:10s, hotcold:1GiB/s:2s"``.

    Returns
    -------
    list of (workload, dirty rate [B/s], duration [s])

    Raises
    ------
    ValueError
        An item that is not ``workload:rate:duration``, an unknown workload, a
        bad rate or a duration outside [1 us, 10^6 s]; the message names the item.
    """
    if not isinstance(text, str) or not text.strip():
        raise ValueError(f"phases={text!r}: expected 'workload:rate:duration, ...', e.g. "
                         "'uniform:100MiB/s:10s, hotcold:1GiB/s:2s'")
    out = []
    for n, item in enumerate(text.split(","), 1):
        parts = [x.strip() for x in item.split(":")]
        if len(parts) != 3:
            raise ValueError(f"phases: item {n} {item.strip()!r}: expected workload:rate:duration")
        workload, rate, duration = parts
        if workload not in PHASE_WORKLOADS:
            raise ValueError(f"phases: item {n} {item.strip()!r}: workload {workload!r} is not "
                             f"one of {', '.join(PHASE_WORKLOADS)}")
        rate_bps = parse_rate(rate, f"phases item {n} rate")
        seconds = parse_duration(duration, f"phases item {n} duration", "s")
        if not 1e-6 <= seconds <= 1e6 or not 0 <= rate_bps <= 2**40:
            raise ValueError(f"phases: item {n} {item.strip()!r}: duration must be in "
                             "[1 us, 10^6 s] and the rate in [0, 1 TiB/s]")
        out.append((workload, float(rate_bps), float(seconds)))
    return out
