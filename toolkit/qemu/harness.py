"""Run one real QEMU precopy migration (TCG, loopback TCP) against the dirtier guest.

:func:`run_migration` starts a destination QEMU (``-incoming defer``, then
``migrate-incoming tcp:127.0.0.1:0`` so that QEMU itself picks a free port) and
a source QEMU booting the guest of :mod:`toolkit.qemu.guest`, lets the guest
warm up, applies the migration capabilities and parameters, issues
``migrate`` and samples ``query-migrate`` on a fixed period until the
migration completes, fails, or is cancelled at the time limit.  Everything
happens in a private ``tempfile.mkdtemp()`` directory that is always removed;
both QEMUs are always stopped (SIGTERM, then SIGKILL), also on exceptions,
KeyboardInterrupt and a SIGTERM to the harness (which then ends by that SIGTERM).

Files written (copied to ``output_dir`` when given):

``samples.jsonl``
    One JSON object per ``query-migrate`` sample: ``t`` [s] since the
    ``migrate`` command, ``monotonic`` [s] host ``time.monotonic()`` and
    ``query-migrate`` (QEMU's reply, unchanged: times in ms, sizes in B,
    ``dirty-pages-rate`` in pages/s, ``mbps`` in Mbit/s).
``events.jsonl``
    The source's QMP events (``MIGRATION``, ``MIGRATION_PASS``, ...).  The
    first are a ``STOP``/``RESUME`` pair right before ``migrate``: the harness
    pauses the guest for the 1-2 ms it takes to read the guest's write count and
    cursor as one consistent pair (``MigrationResult.cursor_at_migrate``).
``src-trace.log``, ``dst-trace.log``
    QEMU trace output of :data:`TRACE_EVENTS` (``-trace enable=...`` with
    ``-D``).  Debian's QEMU uses the ``log`` trace backend, whose lines read
    ``PID@SEC.USEC:event args`` (host ``CLOCK_REALTIME``).  With a build whose
    backend does not log to ``-D`` (``ftrace``, ``dtrace``, ``nop``) these
    files stay empty.
``src-qemu.log``, ``dst-qemu.log``, ``src-serial.log``
    QEMU's stdout/stderr and the guest's COM1 output.
"""
from __future__ import annotations

import ctypes
import itertools
import json
import os
import re
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..constants import PAGE_SIZE
from . import guest
from .qmp import QMPClient

QEMU = "qemu-system-x86_64"
MIN_QEMU_VERSION = (8, 2)
"""``avail-switchover-bandwidth`` and the ``vmstate_downtime_checkpoint`` trace event are 8.2+."""
TRACE_EVENTS = (
    "migrate_transferred",
    "migrate_pending_estimate",
    "migrate_pending_exact",
    "migration_bitmap_sync_end",
    "migration_thread_low_pending",
    "vmstate_downtime_checkpoint",
)
SIZE_MAX = 2**64 - 1
"""QEMU's range for the bandwidth parameters on a 64-bit host [B/s]."""
MAX_DOWNTIME_LIMIT = 2000 * 1000
"""QEMU's ``MAX_MIGRATE_DOWNTIME`` [ms]."""
MAX_RAM_MIB = 8192
"""Largest guest RAM [MiB]; the guest itself reaches only :func:`low_ram_mib` of it."""
MAX_MULTIFD_CHANNELS = 255          # QEMU's multifd-channels: 1..255
# QEMU's multifd-compression methods that need no accelerator (qpl, uadk, qatzip do)
MULTIFD_COMPRESSION = ("none", "zlib", "zstd")
MACHINE = "pc"
"""The machine type both QEMUs run (in QEMU 10.0 an alias of ``pc-i440fx-10.0``)."""
LOW_RAM_SPLIT_MIB = 3584
"""``max-ram-below-4g`` default of the ``pc`` machine (0xe0000000) [MiB]."""
LOW_RAM_LARGE_MIB = 3072
"""RAM below 4 GiB of a ``pc`` machine with at least :data:`LOW_RAM_SPLIT_MIB` [MiB]."""
TERMINAL_STATUSES = ("completed", "failed", "cancelled")

_BOOT_TIMEOUT = 30.0  # [s] SeaBIOS + floppy boot under TCG takes ~1 s
_QMP_TIMEOUT = 10.0  # [s] QMPClient's default
_PREALLOC_S_PER_GIB = 10.0  # [s/GiB] allowance for -mem-prealloc (measured ~2.5 s/GiB)
_COMPARE_CHUNK = 16384  # pages per pmemsave chunk of the verify comparison (64 MiB)
_CANCEL_TIMEOUT = 30.0  # [s] from migrate_cancel to status "cancelled"
_STOP_TIMEOUT = 5.0  # [s] between SIGTERM and SIGKILL
_KEPT_SUFFIXES = (".log", ".jsonl")
_PR_SET_PDEATHSIG = 1


@dataclass
class MigrationResult:
    """What one :func:`run_migration` produced.

    Attributes
    ----------
    completed : bool
        The migration reached status ``completed``.
    status : str
        Final ``query-migrate`` status: ``completed``, ``failed`` or ``cancelled``.
    final : dict
        The last ``query-migrate`` reply of the source.
    samples : list of dict
        All samples, as written to ``samples.jsonl``.
    events : list of dict
        The source's QMP events.
    setup_time_ms, total_time_ms, downtime_ms : int or None
        From the final ``query-migrate`` [ms]; ``downtime_ms`` only when completed.
    dirty_sync_count : int or None
        Bitmap syncs done (``ram.dirty-sync-count``).
    transferred_bytes : int or None
        ``ram.transferred`` [B].
    warmup_write_rate : float
        The guest's page writes per second during the warm-up, from its boot
        to right before ``migrate`` [pages/s].
    migration_write_rate : float
        The guest's page writes per second while the migration ran, i.e. until
        the source stopped (completed) or the end of sampling [pages/s].
    mismatched_pages : int or None
        With ``verify=True`` and completed: pages of the dirtied range whose
        content (all 4 KiB) differs between the stopped source and the
        destination (0 = no lost page).  ``None`` otherwise.
    writes_at_migrate : int
        The guest's page-write count right before ``migrate`` [pages], the
        initial fill included (see :func:`toolkit.qemu.guest.parse_stats`).
    cursor_at_migrate : int
        Range index (0..pages-1; page ``start_page + cursor_at_migrate``) of
        the last page the guest wrote before ``migrate``, as of the end of its
        last complete burst, read together with ``writes_at_migrate`` (for the
        sequential pattern ``cursor_at_migrate ==
        toolkit.qemu.guest.sequential_cursor(writes_at_migrate, pages, stride,
        fill)``).
    qemu_version : tuple of int
        ``(major, minor, micro)``.
    pids : list of int
        PIDs of the QEMU processes started (all stopped by now).
    files : dict of str to pathlib.Path
        Kept files by name (``samples.jsonl``, ``src-trace.log``, ...) in
        ``output_dir``; empty when no ``output_dir`` was given.
    """

    completed: bool
    status: str
    final: dict
    samples: list[dict]
    events: list[dict]
    setup_time_ms: int | None
    total_time_ms: int | None
    downtime_ms: int | None
    dirty_sync_count: int | None
    transferred_bytes: int | None
    warmup_write_rate: float
    migration_write_rate: float
    mismatched_pages: int | None
    writes_at_migrate: int
    cursor_at_migrate: int
    qemu_version: tuple[int, int, int]
    pids: list[int] = field(default_factory=list)
    files: dict[str, Path] = field(default_factory=dict)


def qemu_version(qemu: str = QEMU) -> tuple[int, int, int] | None:
    """Version of a QEMU binary, or ``None`` if it is not installed (or tells none).

    Parameters
    ----------
    qemu : str, optional
        Executable name or path.

    Returns
    -------
    tuple of int or None
        ``(major, minor, micro)`` parsed from ``qemu --version``.
    """
    return _probe_version(qemu)[0]


def _probe_version(qemu: str) -> tuple[tuple[int, int, int] | None, str]:
    """``qemu --version``'s version, or None and what went wrong, naming the path."""
    path = shutil.which(qemu)
    if path is None:
        if os.sep in qemu and os.path.exists(qemu):
            return None, f"{qemu} exists but is not an executable file (give a QEMU binary)"
        return None, f"{qemu} not found (install it with .ci/install-qemu)"
    try:
        ran = subprocess.run([path, "--version"], check=False, capture_output=True, text=True,
                             errors="replace", timeout=30)
    except (OSError, subprocess.TimeoutExpired) as err:
        return None, f"{path} exists but '{path} --version' could not run ({err})"
    match = re.search(r"version (\d+)\.(\d+)\.(\d+)", ran.stdout)
    if match:
        return tuple(int(g) for g in match.groups()), ""
    said = (ran.stdout + ran.stderr).strip()
    said = f"printed {said.splitlines()[0][:120]!r}" if said else "printed nothing"
    return None, (f"{path} exists but is not a QEMU that tells its version: '{path} --version' "
                  f"exited with status {ran.returncode} and {said} (expected 'QEMU emulator "
                  "version X.Y.Z')")


def low_ram_mib(ram_mib: int) -> int:
    """Guest RAM mapped below 4 GiB by the ``pc`` machine [MiB].

    The guest runs in 32-bit protected mode without paging, so this is all the
    RAM it can address, and its dirtied range must end below it.  QEMU 10.0's
    ``pc_init1`` (hw/i386/pc_piix.c) splits RAM at ``max-ram-below-4g``
    (default 3.5 GiB); when the RAM is at least that large, gigabyte alignment
    of the ``pc-i440fx-*`` machines lowers the split to 3 GiB and the rest is
    mapped from 4 GiB up.  So: ``ram_mib`` below 3584 MiB, else 3072 MiB
    (checked with ``info mtree -f``: 3583 MiB all below 4 GiB; 3584 and 8192 MiB
    as 3072 MiB low + the rest at 0x100000000).  Below the split, RAMBlock
    offsets (the harness's page indices / 4096) equal guest-physical addresses.

    Parameters
    ----------
    ram_mib : int
        Guest RAM [MiB].

    Returns
    -------
    int
        RAM below the 32-bit PCI hole [MiB].
    """
    return ram_mib if ram_mib < LOW_RAM_SPLIT_MIB else LOW_RAM_LARGE_MIB


def _check_int(name: str, value, lo: int, hi: int, unit: str, why: str = "") -> None:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)) \
            or not lo <= value <= hi:
        raise ValueError(f"{name} must be an integer in [{lo}, {hi}] [{unit}], got {value!r}"
                         + (f" ({why})" if why else ""))


def _check_bool(name: str, value) -> None:
    if not isinstance(value, (bool, np.bool_)):
        raise ValueError(f"{name} must be a bool (True or False), got {value!r}")


def _check_positive(name: str, value, unit: str, *, zero_ok: bool = False) -> None:
    ok = isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool) \
        and np.isfinite(value) and (value >= 0 if zero_ok else value > 0)
    if not ok:
        raise ValueError(f"{name} must be a finite number {'>=' if zero_ok else '>'} 0 [{unit}], "
                         f"got {value!r}")


def _die_with_parent() -> Callable[[], None] | None:
    """A ``preexec_fn`` that makes the child get SIGKILL when this process dies.

    The harness's finally-clauses cannot run if Python itself is killed
    (SIGKILL, OOM); Linux's PR_SET_PDEATHSIG covers that case.  ``None`` where
    prctl is unavailable (non-Linux).
    """
    try:
        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None
    return lambda: prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


def _stop(procs: list[subprocess.Popen]) -> None:
    """Stop the processes: SIGTERM to all, wait, SIGKILL what is left, reap all."""
    # start_new_session made each QEMU the leader of its own process group, so
    # killpg also reaches anything it may have spawned.
    for sig in (signal.SIGTERM, signal.SIGKILL):
        for proc in procs:
            if proc.poll() is None:
                try:
                    os.killpg(proc.pid, sig)
                except ProcessLookupError:
                    pass
        deadline = time.monotonic() + _STOP_TIMEOUT
        for proc in procs:
            try:
                proc.wait(timeout=max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                pass
    for proc in procs:
        proc.wait()


class _Run:
    """State of one migration run inside its temporary directory."""

    def __init__(self, workdir: Path, qemu: str):
        self.workdir = workdir
        self.qemu = qemu
        self.procs: dict[str, subprocess.Popen] = {}
        self.qmps: list[QMPClient] = []

    def start(self, side: str, image: Path, ram_mib: int, extra: list[str],
              prealloc: bool = False) -> QMPClient:
        """Start one QEMU (``side`` = "src" or "dst") and connect to its QMP socket."""
        w = self.workdir
        args = [self.qemu, "-nographic", "-display", "none", "-nodefaults",
                "-machine", MACHINE, "-accel", "tcg", "-m", f"{ram_mib}M",
                # Read-only: both QEMUs open the same image without lock conflicts.
                "-drive", f"file={image},format=raw,if=floppy,readonly=on", "-boot", "a",
                "-serial", f"file:{w / f'{side}-serial.log'}",
                "-qmp", f"unix:{w / f'{side}.qmp'},server=on,wait=off",
                "-D", str(w / f"{side}-trace.log"),
                # The log trace backend prints "PID@SEC.USEC:" only with this.
                "-msg", "timestamp=on"]
        for event in TRACE_EVENTS:
            args += ["-trace", f"enable={event}"]
        if prealloc:
            # Touches all guest RAM before the machine starts (keeps the RAMBlock "pc.ram").
            args.append("-mem-prealloc")
        with open(w / f"{side}-qemu.log", "wb") as log:
            # A new session keeps a terminal's Ctrl-C (SIGINT to the foreground
            # group) away from QEMU: the harness stops it in order instead.
            # preexec_fn only calls prctl, which is safe between fork and exec.
            proc = subprocess.Popen(args + extra, stdin=subprocess.DEVNULL, stdout=log,
                                    stderr=subprocess.STDOUT, start_new_session=True,
                                    preexec_fn=_die_with_parent())  # noqa: PLW1509
        self.procs[side] = proc
        # QEMU answers QMP only once the RAM is preallocated (~2.5 s per GiB here).
        timeout = _QMP_TIMEOUT + (_PREALLOC_S_PER_GIB * ram_mib / 1024 if prealloc else 0.0)
        try:
            qmp = QMPClient(w / f"{side}.qmp", timeout=timeout)
        except ConnectionError:
            self.check_alive()
            raise
        self.qmps.append(qmp)
        return qmp

    def check_alive(self) -> None:
        """Raise if a QEMU exited, quoting its log."""
        for side, proc in self.procs.items():
            if proc.poll() is not None:
                tail = (self.workdir / f"{side}-qemu.log").read_text(errors="replace")[-2000:]
                raise RuntimeError(f"{side} QEMU (pid {proc.pid}) exited with status "
                                   f"{proc.returncode}:\n{tail}")

    def wait_for_boot(self) -> None:
        """Wait until the guest reports on COM1 that its dirtying loop runs."""
        serial = self.workdir / "src-serial.log"
        deadline = time.monotonic() + _BOOT_TIMEOUT
        while not (serial.exists() and guest.READY_MARK in serial.read_bytes()):
            self.check_alive()
            if time.monotonic() > deadline:
                raise RuntimeError(f"guest did not boot within {_BOOT_TIMEOUT} s")
            time.sleep(0.05)

    def guest_stats(self, qmp: QMPClient) -> tuple[float, guest.Stats]:
        """Host time [s] and the guest's statistics (ticks, writes, cursor)."""
        path = self.workdir / "stats.bin"
        qmp.execute("pmemsave", {"val": guest.STATS_ADDRESS, "size": guest.STATS_SIZE,
                                 "filename": str(path)})
        return time.monotonic(), guest.parse_stats(path.read_bytes())

    def paused_stats(self, qmp: QMPClient) -> tuple[float, guest.Stats]:
        """:meth:`guest_stats` with the vCPU paused, so writes and cursor are one burst's.

        QMP ``stop`` returns once the vCPU has left its translated block; the
        guest publishes both words in one block, so the pair read is
        consistent.  The guest (and its PIT clock) is paused for the 1-2 ms of
        the three QMP commands.
        """
        qmp.execute("stop")
        try:
            return self.guest_stats(qmp)
        finally:
            qmp.execute("cont")

    def page_range(self, qmp: QMPClient, side: str, start_page: int, pages: int) -> np.ndarray:
        """Guest memory from ``start_page`` on, one row of 32-bit words per page."""
        path = self.workdir / f"{side}-range.bin"
        qmp.execute("pmemsave", {"val": start_page * PAGE_SIZE,
                                 "size": pages * PAGE_SIZE, "filename": str(path)})
        data = np.fromfile(path, dtype="<u4").reshape(pages, PAGE_SIZE // 4)
        path.unlink()
        return data

    def mismatched_pages(self, src: QMPClient, dst: QMPClient, start_page: int,
                         pages: int) -> int:
        """Pages of the range whose whole 4 KiB differ between the two sides.

        Compared in chunks of :data:`_COMPARE_CHUNK` pages, so a range of
        gigabytes needs no more host memory than a few chunks.
        """
        mismatched = 0
        for first in range(start_page, start_page + pages, _COMPARE_CHUNK):
            n = min(_COMPARE_CHUNK, start_page + pages - first)
            a = self.page_range(src, "src", first, n)
            b = self.page_range(dst, "dst", first, n)
            mismatched += int(np.count_nonzero((a != b).any(axis=1)))
        return mismatched

    def close(self) -> None:
        """Close the QMP connections and stop the QEMUs."""
        for qmp in self.qmps:
            qmp.close()
        _stop(list(self.procs.values()))


def run_migration(*, ram_mib: int = 256, start_page: int = guest.FIRST_PAGE, pages: int = 16384,
                  pattern: str = "sequential", rate: float | None = 2000.0,
                  zero_every: int = 0, fill: bool = True, stride: int = 1,
                  prealloc: bool = False, dst_prealloc: bool = False,
                  max_bandwidth: int = 128 << 20, downtime_limit: int = 300,
                  avail_switchover_bandwidth: int = 0, auto_converge: bool = False,
                  multifd_channels: int = 0, multifd_compression: str = "none",
                  capabilities: dict[str, bool] | None = None,
                  parameters: dict[str, object] | None = None,
                  warmup: float = 2.0, time_limit: float = 30.0, sample_interval: float = 0.1,
                  verify: bool = False, output_dir: str | os.PathLike | None = None,
                  callback: Callable[[dict], None] | None = None,
                  guest_cache: str | os.PathLike | None = None,
                  qemu: str = QEMU) -> MigrationResult:
    """Migrate a dirtier guest between two local QEMUs and record the run.

    Parameters
    ----------
    ram_mib : int, optional
        Guest RAM [MiB], 16..8192.  Unless ``prealloc``, RAM the guest never
        touches costs the host nothing: an 8 GiB source + destination pair
        runs on a host with a few GiB free.
    start_page, pages, pattern, rate : optional
        The guest's dirtied range [pages], order and pace [pages/s], see
        :func:`toolkit.qemu.guest.guest_image`.  The range must end below the
        RAM the guest addresses, :func:`low_ram_mib` [MiB] (``ram_mib`` below
        3584 MiB, else 3072 MiB): ``start_page + pages <= low_ram_mib(ram_mib)
        * 256``.  Page indices are RAMBlock offsets / 4096 (= guest-physical
        page numbers there).  ``rate=None`` is unpaced (as fast as the vCPU).
    zero_every : int, optional
        Zero writes among the guest's loop writes [writes], 0..2**32-1: 0 =
        data writes only; 1 = every write clears its whole page (QEMU then
        sends it as a zero page, ``ram.duplicate``); k > 1 = every k-th write.
    fill : bool, optional
        The guest writes every page of the range once before its loop (as
        before); ``False`` leaves the range never-touched (zero) RAM.
    stride : int, optional
        Step of the ``"sequential"`` cursor [pages], 1..pages-1 and coprime to
        ``pages`` (1 for a one-page range; 1 for ``"random"``).
    prealloc : bool, optional
        Preallocate all guest RAM on source and destination (``-mem-prealloc``,
        ~2.5 s per GiB on the 2-core development host).  A preallocated guest
        needs ``2 * ram_mib`` MiB of free host RAM for the pair.
    dst_prealloc : bool, optional
        Preallocate the destination's RAM only: it is populated before the
        migration, so the run shows the migration without the destination's
        population cost (which on a host that hands freed memory back to its
        own hypervisor depends on what ran before).
    max_bandwidth : int, optional
        ``max-bandwidth`` [B/s], 0..SIZE_MAX (0 = unlimited; QEMU's default 128 MiB/s).
    downtime_limit : int, optional
        ``downtime-limit`` [ms], 0..2 000 000.
    avail_switchover_bandwidth : int, optional
        ``avail-switchover-bandwidth`` [B/s], 0..SIZE_MAX (0 = use QEMU's estimate).
    auto_converge : bool, optional
        Enable the ``auto-converge`` capability.
    multifd_channels : int, optional
        0 (default): one migration stream; 1..255: the ``multifd`` capability on
        both sides with that many ``multifd-channels``.
    multifd_compression : str, optional
        ``multifd-compression`` with multifd: ``"none"``, ``"zlib"`` or ``"zstd"``.
    capabilities, parameters : dict, optional
        Further ``migrate-set-capabilities`` / ``migrate-set-parameters``
        settings by QMP name, passed to QEMU as they are (QEMU checks them).
    warmup : float, optional
        Guest run time before ``migrate`` [s], >= 0, counted from its boot.
    time_limit : float, optional
        ``migrate_cancel`` when not finished this long after ``migrate`` [s], > 0.
    sample_interval : float, optional
        Period of ``query-migrate`` sampling [s], > 0.
    verify : bool, optional
        Start the destination paused (``-S``) and, when completed, compare the
        dirtied range of both sides, all 4 KiB of every page, in 64 MiB chunks
        (see ``MigrationResult.mismatched_pages``).
    output_dir : str or os.PathLike, optional
        Directory (created if missing) to copy the samples, events, trace and
        QEMU logs into before the temporary directory is removed; also copied
        when the run raises.
    callback : callable, optional
        Called with each sample dict right after it is written; an exception
        it raises aborts the run (after cleanup).
    guest_cache : str or os.PathLike, optional
        Directory caching the assembled guest; default: build inside the
        temporary directory.
    qemu : str, optional
        The ``qemu-system-x86_64`` executable.

    Returns
    -------
    MigrationResult

    Raises
    ------
    ValueError
        A parameter is out of range; the message names it, its value and the range.
    RuntimeError
        QEMU is missing, does not tell its version, is older than 8.2, exits early, or
        the guest does not boot; or a SIGTERM stopped the run and its handler (not the
        default one, which ends the process) returned.
    toolkit.qemu.qmp.QMPError
        QEMU rejected a command (e.g. a bad entry in ``parameters``).
    """
    _check_int("ram_mib", ram_mib, 16, MAX_RAM_MIB, "MiB")
    _check_int("max_bandwidth", max_bandwidth, 0, SIZE_MAX, "B/s")
    _check_int("downtime_limit", downtime_limit, 0, MAX_DOWNTIME_LIMIT, "ms")
    _check_int("avail_switchover_bandwidth", avail_switchover_bandwidth, 0, SIZE_MAX, "B/s")
    _check_int("multifd_channels", multifd_channels, 0, MAX_MULTIFD_CHANNELS, "channels",
               "0 = multifd off")
    if multifd_compression not in MULTIFD_COMPRESSION:
        raise ValueError(f"multifd_compression must be one of {', '.join(MULTIFD_COMPRESSION)}, "
                         f"got {multifd_compression!r}")
    if multifd_compression != "none" and not multifd_channels:
        raise ValueError(f"multifd_compression={multifd_compression!r} needs multifd: give "
                         "multifd_channels in [1, 255]")
    low_mib = low_ram_mib(ram_mib)
    low_why = (f"the range must end below the {low_mib} MiB of the {ram_mib} MiB guest RAM "
               "that lie below the 32-bit PCI hole")
    _check_int("start_page", start_page, guest.FIRST_PAGE, low_mib * 256 - 1, "pages", low_why)
    _check_int("pages", pages, 1, low_mib * 256 - start_page, "pages", low_why)
    guest.check_params(start_page=start_page, pages=pages, pattern=pattern,
                       zero_every=zero_every, fill=fill, stride=stride)
    guest.pace(rate)  # checks rate
    _check_bool("prealloc", prealloc)
    _check_bool("dst_prealloc", dst_prealloc)
    _check_positive("warmup", warmup, "s", zero_ok=True)
    _check_positive("time_limit", time_limit, "s")
    _check_positive("sample_interval", sample_interval, "s")
    if output_dir is not None:
        existing = Path(output_dir)
        while not existing.exists() and existing != existing.parent:
            existing = existing.parent
        if existing.exists() and not existing.is_dir():
            raise ValueError(f"output_dir={str(output_dir)!r}: {existing} is a file, not a "
                             "directory (checked before QEMU starts)")
    version, problem = _probe_version(qemu)
    if version is None:
        raise RuntimeError(problem)
    if version[:2] < MIN_QEMU_VERSION:
        raise RuntimeError(f"{qemu} is {'.'.join(map(str, version))}, need >= "
                           f"{'.'.join(map(str, MIN_QEMU_VERSION))}")

    with _SigtermAfterCleanup() as sigterm:
        workdir = Path(tempfile.mkdtemp(prefix="switchover-qemu-"))
        run = _Run(workdir, qemu)
        try:
            image = guest.guest_image(guest.build_guest(guest_cache or workdir),
                                      workdir / "guest.img", start_page=start_page, pages=pages,
                                      pattern=pattern, rate=rate, zero_every=zero_every,
                                      fill=fill, stride=stride)
            caps = {"events": True, "auto-converge": auto_converge, **(capabilities or {})}
            params = {"max-bandwidth": int(max_bandwidth), "downtime-limit": int(downtime_limit),
                      "avail-switchover-bandwidth": int(avail_switchover_bandwidth),
                      **(parameters or {})}
            # multifd: both sides, the destination before it listens
            both = ({"multifd": True}, {"multifd-channels": int(multifd_channels),
                                        "multifd-compression": multifd_compression}) \
                if multifd_channels else ({}, {})
            caps.update(both[0])
            params.update(both[1])
            result = _migrate(run, image, version, ram_mib=ram_mib, prealloc=bool(prealloc),
                              dst_prealloc=bool(prealloc or dst_prealloc),
                              start_page=start_page, pages=pages, caps=caps, params=params,
                              incoming=both,
                              warmup=warmup, time_limit=time_limit,
                              sample_interval=sample_interval, verify=verify, callback=callback)
        finally:
            sigterm.cleaning = True
            try:
                run.close()  # before copying: QEMU's trace log is complete once it exited
            finally:
                kept = _keep_files(workdir, Path(output_dir)) if output_dir is not None else {}
                shutil.rmtree(workdir, ignore_errors=True)
    result.files = kept
    return result


class _Terminated(BaseException):
    """SIGTERM during a run: unwinds it (like KeyboardInterrupt) so that it cleans up."""


class _SigtermAfterCleanup:
    """While a migration runs, SIGTERM unwinds it like Ctrl-C (both QEMUs stopped, the
    temporary directory removed) and is then delivered again to the handler it had
    before, so that by default the process still ends by SIGTERM.

    A SIGTERM once ``cleaning`` is set, or a second one, waits for the cleanup.  Only
    the main thread can take signals; elsewhere, or where SIGTERM is ignored, nothing
    changes.
    """

    def __init__(self):
        self.previous = None
        self.received = False
        self.cleaning = False

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            previous = signal.getsignal(signal.SIGTERM)
            if previous not in (signal.SIG_IGN, None):      # None: set outside Python
                self.previous = previous
                signal.signal(signal.SIGTERM, self._handle)
        return self

    def _handle(self, signum, frame):
        first, self.received = not self.received, True
        if first and not self.cleaning:
            raise _Terminated

    def __exit__(self, kind, err, tb):
        if self.previous is None:
            return False
        signal.signal(signal.SIGTERM, self.previous)
        if not self.received:
            return False
        signal.raise_signal(signal.SIGTERM)
        # the previous handler let the process live: the run still ended
        raise RuntimeError("the migration was stopped by SIGTERM (QEMUs stopped, temporary "
                           "directory removed)") from (None if kind is _Terminated else err)


def _keep_files(workdir: Path, output_dir: Path) -> dict[str, Path]:
    output_dir.mkdir(parents=True, exist_ok=True)
    kept = {}
    for path in sorted(workdir.iterdir()):
        if path.suffix in _KEPT_SUFFIXES:
            kept[path.name] = Path(shutil.copy2(path, output_dir / path.name))
    return kept


def _set_migration(qmp: QMPClient, caps: dict, params: dict) -> None:
    """``migrate-set-capabilities`` and ``migrate-set-parameters`` on one side (none
    sent where there are none)."""
    if caps:
        qmp.execute("migrate-set-capabilities", {"capabilities": [
            {"capability": name, "state": bool(state)} for name, state in caps.items()]})
    if params:
        qmp.execute("migrate-set-parameters", params)


def _migrate(run: _Run, image: Path, version, *, ram_mib, prealloc, dst_prealloc, start_page,
             pages, caps, params, incoming, warmup, time_limit, sample_interval, verify,
             callback) -> MigrationResult:
    dst = run.start("dst", image, ram_mib, ["-incoming", "defer"] + (["-S"] if verify else []),
                    dst_prealloc)
    _set_migration(dst, *incoming)
    # Port 0: the destination binds a free port itself and reports it, no race.
    dst.execute("migrate-incoming", {"uri": "tcp:127.0.0.1:0"})
    port = int(dst.execute("query-migrate")["socket-address"][0]["port"])
    src = run.start("src", image, ram_mib, [], prealloc)
    run.wait_for_boot()
    t_boot, stats_boot = run.guest_stats(src)
    time.sleep(warmup)
    run.check_alive()

    _set_migration(src, caps, params)
    # Right before migrate: the write count and the cursor as one consistent pair.
    t_warm, stats_warm = run.paused_stats(src)
    writes_warm = stats_warm.writes
    warmup_rate = (writes_warm - stats_boot.writes) / (t_warm - t_boot)

    samples = []
    t0 = time.monotonic()
    src.execute("migrate", {"uri": f"tcp:127.0.0.1:{port}"})
    cancel_deadline = None
    with open(run.workdir / "samples.jsonl", "w") as out:
        for k in itertools.count(1):
            info = src.execute("query-migrate")
            now = time.monotonic()
            sample = {"t": now - t0, "monotonic": now, "query-migrate": info}
            out.write(json.dumps(sample) + "\n")
            samples.append(sample)
            if callback is not None:
                callback(sample)
            status = info.get("status")
            if status in TERMINAL_STATUSES:
                break
            if cancel_deadline is None and now - t0 >= time_limit:
                src.execute("migrate_cancel")
                cancel_deadline = now + _CANCEL_TIMEOUT
            elif cancel_deadline is not None and now > cancel_deadline:
                raise RuntimeError(f"migration still {status!r} {_CANCEL_TIMEOUT} s after "
                                   "migrate_cancel")
            # Sample on a fixed grid so that slow replies do not make the period drift.
            time.sleep(max(0.0, t0 + k * sample_interval - time.monotonic()))

    completed = status == "completed"
    t_end, stats_end = run.guest_stats(src)
    writes_end = stats_end.writes
    if completed:
        # The source guest stopped at the switchover: count its time until then.
        t_end = t0 + (info["total-time"] - info["downtime"]) / 1000
    migration_rate = (writes_end - writes_warm) / max(t_end - t0, 1e-9)
    mismatched = None
    if verify and completed:
        mismatched = run.mismatched_pages(src, dst, start_page, pages)
    with open(run.workdir / "events.jsonl", "w") as out:
        out.writelines(json.dumps(event) + "\n" for event in src.events)

    ram = info.get("ram", {})
    return MigrationResult(
        completed=completed, status=status, final=info, samples=samples, events=list(src.events),
        setup_time_ms=info.get("setup-time"), total_time_ms=info.get("total-time"),
        downtime_ms=info.get("downtime"), dirty_sync_count=ram.get("dirty-sync-count"),
        transferred_bytes=ram.get("transferred"), warmup_write_rate=warmup_rate,
        migration_write_rate=migration_rate, mismatched_pages=mismatched,
        writes_at_migrate=writes_warm, cursor_at_migrate=stats_warm.cursor,
        qemu_version=version, pids=[p.pid for p in run.procs.values()])
