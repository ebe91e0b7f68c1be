"""Build and configure the page-dirtying test guest (``guest/dirtier.asm``).

The guest is a 512-byte x86 boot sector that SeaBIOS boots from a floppy.  It
switches to 32-bit protected mode, writes every page of the range
``[start_page, start_page + pages)`` once (so that migration finds no zero page
there) and then loops forever: write ``burst_pages`` pages of the range
(increment the 32-bit counter at the start of each page), then halt until
``burst_ticks`` ticks of the PIT (programmed to :data:`TICK_HZ` ~ 1000.15 Hz)
have passed since the previous burst was due.  Pages are visited in address
order (``"sequential"``) or in a pseudo-random permutation of the range
(``"random"``: a full-period LCG modulo a power of two with rejection, so every
page is still written once per sweep).  The guest counts PIT ticks and page
writes at physical address :data:`STATS_ADDRESS` (read with QMP ``pmemsave``,
see :func:`parse_stats`).

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
2-core host.  Guest alone (no migration), 256 MiB RAM, range of 16 384 pages
(64 MiB) from 1 MiB; writes/s from the guest's counter over 3 s:

=============== ================== =====================
rate [pages/s]  burst              guest writes [pages/s]
=============== ================== =====================
100             1 page / 10 ticks  100
1 000           1 page / 1 tick    997
10 000          10 pages / 1 tick  9 906
100 000         100 pages / 1 tick 99 713
unpaced         sequential         4.9 M - 7.2 M
unpaced         random             2.2 M
=============== ================== =====================

The PIT delivered 991-997 of its 1000.15 ticks/s, so paced rates run ~0.5 %
slow.  During a migration (TCG dirty tracking, migration thread on the same
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
import os
import shutil
import struct
import subprocess
import tempfile
from fractions import Fraction
from pathlib import Path

import numpy as np

SOURCE = Path(__file__).parent / "guest" / "dirtier.asm"
PAGE_SIZE = 4096
"""Guest page size [B]."""
TICK_HZ = 1193182 / 1193
"""The guest's PIT tick rate [Hz]: the 8254 input clock over the divisor in dirtier.asm."""
STATS_ADDRESS = 0x500
"""Guest physical address of the statistics the guest writes: ticks (u32), writes (u64)."""
STATS_SIZE = 12
"""Size of the statistics block [B]."""
READY_MARK = b"dirtier ready"
"""What the guest prints on COM1 once it has written its range and starts the loop."""
PATTERNS = ("sequential", "random")
FIRST_PAGE = 256
"""Lowest allowed start page: below 1 MiB live the guest's code, stack, IDT and BIOS."""
MAX_PAGE = 1 << 20
"""The guest runs without paging in 32-bit mode: pages must lie below 4 GiB."""

_PARAMS_OFFSET = 0x1D0  # == PARAMS in dirtier.asm
_PARAMS = struct.Struct("<4s7I")
_MAGIC = b"DRT1"
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


def guest_image(image: str | os.PathLike, out: str | os.PathLike, *, start_page: int = FIRST_PAGE,
                pages: int = 1024, pattern: str = "sequential", rate: float | None = None,
                seed: int = 1) -> Path:
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
        4 GiB and should end below the guest RAM size (the caller checks).
    pattern : {"sequential", "random"}, optional
        Address order of the writes.
    rate : float or None, optional
        Page writes per second [pages/s], see :func:`pace`; ``None`` = unpaced.
    seed : int, optional
        Start of the LCG for the ``"random"`` pattern.

    Returns
    -------
    pathlib.Path
        ``out``.

    Raises
    ------
    ValueError
        A parameter is out of range, or ``image`` is not the dirtier boot sector.
    """
    if pattern not in PATTERNS:
        raise ValueError(f"pattern must be one of {PATTERNS}, got {pattern!r}")
    if not FIRST_PAGE <= start_page < MAX_PAGE:
        raise ValueError(f"start_page must be in [{FIRST_PAGE}, {MAX_PAGE}) [pages], "
                         f"got {start_page!r}")
    if not 1 <= pages <= MAX_PAGE - start_page:
        raise ValueError(f"pages must be in [1, {MAX_PAGE - start_page}] for start_page "
                         f"{start_page} (range below 4 GiB) [pages], got {pages!r}")
    burst_pages, burst_ticks = pace(rate)
    mask = (1 << max(0, (pages - 1).bit_length())) - 1
    sector = bytearray(Path(image).read_bytes())
    if len(sector) != 512 or sector[_PARAMS_OFFSET:_PARAMS_OFFSET + 4] != _MAGIC:
        raise ValueError(f"{image} is not a dirtier boot sector (no {_MAGIC!r} block)")
    _PARAMS.pack_into(sector, _PARAMS_OFFSET, _MAGIC, start_page, pages, PATTERNS.index(pattern),
                      burst_pages, burst_ticks, mask, seed & 0xFFFFFFFF)
    out = Path(out)
    with open(out, "wb") as f:
        f.write(sector)
        f.truncate(_FLOPPY_SIZE)
    return out


def read_params(image: str | os.PathLike) -> dict:
    """The parameter block of a guest image, as a dict of ints and the pattern name."""
    with open(image, "rb") as f:
        sector = f.read(512)
    magic, start_page, pages, pattern, burst_pages, burst_ticks, mask, seed = \
        _PARAMS.unpack_from(sector, _PARAMS_OFFSET)
    if magic != _MAGIC:
        raise ValueError(f"{image} is not a dirtier image (no {_MAGIC!r} block)")
    return {"start_page": start_page, "pages": pages, "pattern": PATTERNS[pattern],
            "burst_pages": burst_pages, "burst_ticks": burst_ticks, "lcg_mask": mask, "seed": seed}


def parse_stats(data: bytes) -> tuple[int, int]:
    """Decode the guest's statistics block (``STATS_SIZE`` bytes at ``STATS_ADDRESS``).

    Returns
    -------
    ticks : int
        PIT ticks the guest has seen [1/TICK_HZ s] (wraps at 2**32).
    writes : int
        Page writes done since boot [pages].
    """
    return struct.unpack("<IQ", data[:STATS_SIZE])
