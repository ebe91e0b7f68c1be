"""Build and configure the page-dirtying test guest (``guest/dirtier.asm``).

The guest is a 512-byte x86 boot sector that SeaBIOS boots from a floppy.  It
switches to 32-bit protected mode (no paging: it addresses RAM below 4 GiB
only, see :func:`toolkit.qemu.harness.low_ram_mib`), writes every page of the
range ``[start_page, start_page + pages)`` once (``fill=True``, so that
migration finds no zero page there; ``fill=False`` leaves the range
never-touched) and then loops forever: write ``burst_pages`` pages of the range,
then halt until ``burst_ticks`` ticks of the PIT (programmed to
:data:`TICK_HZ` ~ 1000.15 Hz) have passed since the previous burst was due.

A *data write* increments the 32-bit counter at the start of the page (the
page is then non-zero); a *zero write* clears the whole 4 KiB page
(``rep stosd``), so that QEMU finds a zero page (``buffer_is_zero``) and sends
it as a zero-page marker (``ram.duplicate`` of ``query-migrate``).  With
``zero_every = k`` loop write j (counting from 1) is a zero write when
``k > 0`` and ``j % k == 0`` (k = 1: all of them); the fill's writes are data
writes.

Pages are visited in a sweep (``"sequential"``: loop write j goes to range
index ``(j - 1) * stride % pages``; ``stride`` coprime to ``pages``, so
``stride > 1`` is a scattered order that still writes every page once per
sweep) or in a pseudo-random permutation of the range (``"random"``: a
full-period LCG modulo a power of two with rejection, so every page is still
written once per sweep).  The guest counts PIT ticks, page writes (fill
included) and the range index of the page it wrote last (the *cursor*) at
physical address :data:`STATS_ADDRESS`; read them with QMP ``pmemsave``, see
:func:`parse_stats`.  Writes and cursor are published together at the end of
each burst.

The image is built once with ``nasm`` (:func:`build_guest`); each scenario then
gets a copy whose parameter block is patched (:func:`guest_image`), so no
rebuild per scenario is needed.

Pace and dirty rate
-------------------
``rate`` [pages/s] is turned into a burst of ``burst_pages`` pages every
``burst_ticks`` ticks (:func:`pace`); the guest writes
``burst_pages * TICK_HZ / burst_ticks`` pages per second of *guest virtual
time* as long as the vCPU is fast enough.  A guest that falls behind starts
afresh instead of catching up, so an overloaded host gives a lower rate, never
a burst.  What migration sees as the dirty rate is the number of *distinct*
pages written between two bitmap syncs, so it is ``min(rate, pages / period)``
for the sequential pattern: a range that is swept more than once per sync
period saturates at its own size.

Measured with QEMU 10.0.2 (Debian bookworm-backports), TCG, one vCPU, on a
2-core host (Xeon, in a VM).  Guest alone (no migration), 256 MiB RAM, range of
16 384 pages (64 MiB) from 1 MiB, filled; writes/s from the guest's counter
over 3 s (two or three runs each):

=============== ======================== =====================
rate [pages/s]  writes                   guest writes [pages/s]
=============== ======================== =====================
100             1 page / 10 ticks        100
1 000           1 page / 1 tick          999
10 000          10 pages / 1 tick        9 990
100 000         100 pages / 1 tick       99 823
100 000         zero writes              99 909 - 100 002
100 000         stride 4 097             99 456 - 99 882
unpaced         sequential, data         10.2 M - 12.3 M
unpaced         stride 4 097, data       4.9 M - 8.8 M
unpaced         random, data             6.5 M - 8.6 M
unpaced         sequential, zero writes  0.30 M - 0.45 M
unpaced         stride 4 097, zero       0.41 M - 0.43 M
unpaced         random, zero writes      0.42 M - 0.47 M
unpaced         every 2nd a zero write   0.82 M - 0.94 M
unpaced         zero writes, no fill     0.23 M - 0.43 M
=============== ======================== =====================

A zero write stores 4 KiB instead of 4 B: unpaced, the guest clears
~1.2 - 1.9 GB/s, 25 - 40 times fewer pages per second than it data-writes;
paced rates up to 100 000 pages/s are met either way.  Strided and random
data writes are slower unpaced than the sweep (presumably less locality for the
host's caches and TLBs).  Unpaced rates vary with what else runs on the host
(the guest's PIT ticks/s dropped to 600-900 in the slowest runs).  In quiet
runs the PIT delivered 991-1000 of its 1000.15 ticks/s, so paced rates run up
to ~0.5 % slow.  During a migration (TCG dirty tracking, migration thread on the same
two cores) the guest reached 92-98 % of a 15 000 pages/s pace and QEMU's
``dirty-pages-rate`` agreed with it (13 658-14 749 pages/s over a 32 768-page
range); with a 4 096-page range and 5 000 pages/s the range saturates and
``dirty-pages-rate`` reads ~2 500 pages/s = 4 096 pages per ~1.6 s sync period.

QMP ``calc-dirty-rate`` is of little use here: ``dirty-bitmap`` mode reports
0 under TCG, and ``page-sampling`` (512 sampled pages per GiB) is coarse
(1 280 pages/s for a 1 000 pages/s pace) and saturates at range / calc-time.
"""
from __future__ import annotations

import hashlib
import math
import os
import shutil
import struct
import subprocess
import tempfile
from fractions import Fraction
from pathlib import Path
from typing import NamedTuple

import numpy as np

SOURCE = Path(__file__).parent / "guest" / "dirtier.asm"
TICK_HZ = 1193182 / 1193
"""The guest's PIT tick rate [Hz]: the 8254 input clock over the divisor in dirtier.asm."""
STATS_ADDRESS = 0x500
"""Guest physical address of the statistics the guest writes: ticks (u32), writes (u64),
cursor (u32)."""
STATS_SIZE = 16
"""Size of the statistics block [B]."""
READY_MARK = b"dirtier ready"
"""What the guest prints on COM1 once it has written its range and starts the loop."""
PATTERNS = ("sequential", "random")
FIRST_PAGE = 256
"""Lowest allowed start page: below 1 MiB live the guest's code, stack, IDT and BIOS."""
MAX_PAGE = 1 << 20
"""The guest runs without paging in 32-bit mode: pages must lie below 4 GiB."""

MAX_U32 = 2**32 - 1

_PARAMS_OFFSET = 0x1D2  # == PARAMS in dirtier.asm
_PARAMS = struct.Struct("<4s10I")
_MAGIC = b"DRT2"
_FLOPPY_SIZE = 1474560  # SeaBIOS wants a floppy of a standard geometry: 1.44 MB
_MAX_BURST_TICKS = 20  # bursts at most ~20 ms apart keep the dirtying smooth


def build_guest(workdir: str | os.PathLike) -> Path:
    """Assemble ``dirtier.asm`` into a boot sector, cached by source hash.

    Parameters
    ----------
    workdir : str or os.PathLike
        Directory for the image (created if missing).  An image built from
        the same source text is reused.

    Returns
    -------
    pathlib.Path
        The 512-byte boot sector ``dirtier-<hash>.bin`` (default parameters).

    Raises
    ------
    RuntimeError
        ``nasm`` is missing or fails.
    """
    source = SOURCE.read_bytes()
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    image = workdir / f"dirtier-{hashlib.sha256(source).hexdigest()[:16]}.bin"
    if image.exists():
        return image
    nasm = shutil.which("nasm")
    if nasm is None:
        raise RuntimeError("nasm not found: install it (e.g. .ci/install-qemu) to build the guest")
    # Assemble to a temporary name and rename, so a concurrent or interrupted
    # build never leaves a truncated image under the cached name.
    fd, tmp = tempfile.mkstemp(dir=workdir, suffix=".bin.tmp")
    os.close(fd)
    try:
        proc = subprocess.run([nasm, "-f", "bin", "-o", tmp, str(SOURCE)],
                              check=False, capture_output=True, text=True)
        if proc.returncode != 0:
            raise RuntimeError(f"nasm failed on {SOURCE}:\n{proc.stderr}")
        if os.path.getsize(tmp) != 512:
            raise RuntimeError(f"{SOURCE} assembled to {os.path.getsize(tmp)} B, not 512 B")
        os.replace(tmp, image)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return image


def pace(rate: float | None) -> tuple[int, int]:
    """Turn a dirty rate into the guest's burst parameters.

    Parameters
    ----------
    rate : float or None
        Page writes per second of guest time [pages/s]; ``None`` or ``0`` for
        an unpaced guest (as fast as the vCPU runs).

    Returns
    -------
    burst_pages : int
        Pages written per burst (>= 1).
    burst_ticks : int
        PIT ticks from one burst to the next (0 = unpaced).

    Raises
    ------
    ValueError
        ``rate`` is negative or not finite.
    """
    if rate is not None and (isinstance(rate, (bool, np.bool_))
                             or not isinstance(rate, (int, float, np.integer, np.floating))):
        raise ValueError(f"rate must be a finite number >= 0 [pages/s] or None, got {rate!r}")
    if not rate:
        return 1, 0
    if not np.isfinite(rate) or rate < 0:
        raise ValueError(f"rate must be a finite number >= 0 [pages/s], got {rate!r}")
    per_tick = Fraction(rate / TICK_HZ).limit_denominator(_MAX_BURST_TICKS)
    if per_tick == 0:  # slower than one page per _MAX_BURST_TICKS ticks
        return 1, max(1, round(TICK_HZ / rate))
    return per_tick.numerator, per_tick.denominator


def paced_rate(burst_pages: int, burst_ticks: int) -> float:
    """The rate a pace gives on a fast enough vCPU [pages/s] (``inf`` if unpaced)."""
    return np.inf if burst_ticks == 0 else burst_pages * TICK_HZ / burst_ticks


def _is_int(value) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))


def check_params(*, start_page: int = FIRST_PAGE, pages: int = 1024, pattern: str = "sequential",
                 zero_every: int = 0, fill: bool = True, stride: int = 1) -> None:
    """Check the guest parameters of :func:`guest_image` (all but ``rate`` and ``seed``).

    Raises
    ------
    ValueError
        A parameter is out of range; the message names it, its value and the
        allowed range.
    """
    if pattern not in PATTERNS:
        raise ValueError(f"pattern must be one of {PATTERNS}, got {pattern!r}")
    if not _is_int(start_page) or not FIRST_PAGE <= start_page < MAX_PAGE:
        raise ValueError(f"start_page must be in [{FIRST_PAGE}, {MAX_PAGE}) [pages], "
                         f"got {start_page!r}")
    if not _is_int(pages) or not 1 <= pages <= MAX_PAGE - start_page:
        raise ValueError(f"pages must be in [1, {MAX_PAGE - start_page}] for start_page "
                         f"{start_page} (range below 4 GiB) [pages], got {pages!r}")
    if not _is_int(zero_every) or not 0 <= zero_every <= MAX_U32:
        raise ValueError(f"zero_every must be an integer in [0, {MAX_U32}] [writes] "
                         f"(0 = no zero writes), got {zero_every!r}")
    if not isinstance(fill, (bool, np.bool_)):
        raise ValueError(f"fill must be a bool (True or False), got {fill!r}")
    top = max(1, pages - 1)
    if not _is_int(stride) or not 1 <= stride <= top:
        raise ValueError(f"stride must be an integer in [1, {top}] for pages {pages} [pages], "
                         f"got {stride!r}")
    if math.gcd(int(stride), int(pages)) != 1:
        raise ValueError(f"stride must be coprime to pages (gcd(stride, pages) == 1, so that "
                         f"every page is visited once per sweep), got stride {stride} with pages "
                         f"{pages} (gcd {math.gcd(int(stride), int(pages))})")
    if stride != 1 and pattern != "sequential":
        raise ValueError(f"stride applies to pattern 'sequential' only; must be 1 with pattern "
                         f"{pattern!r}, got {stride!r}")


def guest_image(image: str | os.PathLike, out: str | os.PathLike, *, start_page: int = FIRST_PAGE,
                pages: int = 1024, pattern: str = "sequential", rate: float | None = None,
                seed: int = 1, zero_every: int = 0, fill: bool = True,
                stride: int = 1) -> Path:
    """Write a configured, bootable floppy image of the guest.

    Parameters
    ----------
    image : str or os.PathLike
        Boot sector from :func:`build_guest`.
    out : str or os.PathLike
        Path of the floppy image to write (overwritten).
    start_page : int, optional
        First page of the dirtied range [pages of 4 KiB], >= 256 (1 MiB).
    pages : int, optional
        Number of pages in the range [pages], >= 1; the range must end below
        4 GiB and must end below the guest's RAM below the 32-bit PCI hole (the
        caller checks, see :func:`toolkit.qemu.harness.low_ram_mib`).
    pattern : {"sequential", "random"}, optional
        Address order of the writes.
    rate : float or None, optional
        Page writes per second [pages/s], see :func:`pace`; ``None`` = unpaced.
    seed : int, optional
        Start of the LCG for the ``"random"`` pattern (taken modulo the LCG's
        power of two); unused by ``"sequential"``.
    zero_every : int, optional
        Zero writes among the writes of the loop [writes], 0..2**32-1: 0 = none
        (every write is a data write: increment the page's first 32-bit word);
        1 = every write is a zero write (clear the whole 4 KiB page, so that
        migration finds a zero page); k > 1 = loop write j (from 1) is a zero
        write when ``j % k == 0``.  A data write to a zero page makes it
        non-zero again.
    fill : bool, optional
        Write every page of the range once (a data write) before the loop
        (``True``), or start the loop on never-touched, zero RAM (``False``).
    stride : int, optional
        Step of the ``"sequential"`` cursor [pages], 1..pages-1 (1 for a
        one-page range) and coprime to ``pages``: loop write j (from 1) goes to
        range index ``(j - 1) * stride % pages``, so every page is written once
        per sweep, in a scattered order when ``stride > 1``.  Must be 1 for
        ``"random"``.

    Returns
    -------
    pathlib.Path
        ``out``.

    Raises
    ------
    ValueError
        A parameter is out of range, or ``image`` is not the dirtier boot sector.
    """
    check_params(start_page=start_page, pages=pages, pattern=pattern, zero_every=zero_every,
                 fill=fill, stride=stride)
    burst_pages, burst_ticks = pace(rate)
    mask = (1 << max(0, (pages - 1).bit_length())) - 1
    # The guest advances the cursor before each write: start one stride before index 0.
    cursor = (pages - stride) % pages if pattern == "sequential" else seed & mask
    sector = bytearray(Path(image).read_bytes())
    if len(sector) != 512 or sector[_PARAMS_OFFSET:_PARAMS_OFFSET + 4] != _MAGIC:
        raise ValueError(f"{image} is not a dirtier boot sector (no {_MAGIC!r} block)")
    _PARAMS.pack_into(sector, _PARAMS_OFFSET, _MAGIC, start_page, pages, PATTERNS.index(pattern),
                      burst_pages, burst_ticks, mask, cursor, stride, zero_every,
                      pages if fill else 0)
    out = Path(out)
    with open(out, "wb") as f:
        f.write(sector)
        f.truncate(_FLOPPY_SIZE)
    return out


def read_params(image: str | os.PathLike) -> dict:
    """The parameter block of a guest image.

    Returns
    -------
    dict
        ``start_page``, ``pages``, ``burst_pages``, ``burst_ticks``,
        ``lcg_mask``, ``stride``, ``zero_every`` (ints), ``pattern`` (name),
        ``fill`` (bool) and ``cursor``: the cursor before the first loop write
        (sequential: ``(pages - stride) % pages``) or the LCG start (random).
    """
    with open(image, "rb") as f:
        sector = f.read(512)
    if len(sector) != 512 or sector[_PARAMS_OFFSET:_PARAMS_OFFSET + 4] != _MAGIC:
        raise ValueError(f"{image} is not a dirtier image (no {_MAGIC!r} block)")
    (_, start_page, pages, pattern, burst_pages, burst_ticks, mask, cursor, stride, zero_every,
     fill) = _PARAMS.unpack_from(sector, _PARAMS_OFFSET)
    return {"start_page": start_page, "pages": pages, "pattern": PATTERNS[pattern],
            "burst_pages": burst_pages, "burst_ticks": burst_ticks, "lcg_mask": mask,
            "cursor": cursor, "stride": stride, "zero_every": zero_every, "fill": fill != 0}


def loop_writes(writes: int, pages: int, fill: bool = True) -> int:
    """Writes of the guest's loop [pages] in a ``writes`` count of :func:`parse_stats`."""
    return writes - (pages if fill else 0)


def sequential_cursor(writes: int, pages: int, stride: int = 1, fill: bool = True) -> int:
    """Range index of the page a ``"sequential"`` guest wrote last.

    Loop write j (from 1) goes to index ``(j - 1) * stride % pages``, and the
    guest publishes ``writes`` and ``cursor`` together, so for the pair read
    from :func:`parse_stats` after the first burst of the loop
    ``cursor == sequential_cursor(writes, pages, stride, fill)``.
    """
    return (loop_writes(writes, pages, fill) - 1) * stride % pages


class Stats(NamedTuple):
    """The guest's statistics block, see :func:`parse_stats`."""

    ticks: int
    """PIT ticks the guest has seen [1/TICK_HZ s] (wraps at 2**32)."""
    writes: int
    """Page writes done since boot, the fill's included [pages]."""
    cursor: int
    """Index in the range (0..pages-1) of the page written last [pages]; 0 until
    the end of the loop's first burst."""


def parse_stats(data: bytes) -> Stats:
    """Decode the guest's statistics block (``STATS_SIZE`` bytes at ``STATS_ADDRESS``).

    The guest updates ``writes`` and ``cursor`` together at the end of each
    burst; read them with the vCPU paused (QMP ``stop``) for a consistent pair.

    Returns
    -------
    Stats
        ``(ticks, writes, cursor)``: PIT ticks [1/TICK_HZ s] (wraps at 2**32),
        page writes since boot [pages], range index of the page written last.
    """
    if len(data) < STATS_SIZE:
        raise ValueError(f"statistics block is {STATS_SIZE} B, got {len(data)} B")
    return Stats(*struct.unpack("<IQI", data[:STATS_SIZE]))
