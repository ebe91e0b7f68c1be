"""How long this host takes to populate guest RAM: the destination's cost per 2 MiB.

``python -m toolkit.qemu.populate [--mib N] [--wait S]`` maps ``N`` MiB of
anonymous memory as QEMU maps guest RAM (private, ``MADV_HUGEPAGE``), touches one
byte per 2 MiB region and prints the time per region, three times: memory the
process has not touched before; the same amount again right after freeing the
first (the kernel hands back memory the host still backs); and again after
waiting ``S`` seconds. On a host that is itself a virtual machine with free
page reporting (virtio-balloon), memory freed for a couple of seconds has gone
back to the hypervisor, which must back it again: the third figure is then
many times the second. That is the destination's ``dst_populate_time`` of
:mod:`toolkit.scenario`, and why it is bimodal on such a host (docs/model.md).
It also says whether the regions were transparent huge pages (``thp_fault_alloc``
of ``/proc/vmstat``). Linux only; needs no QEMU.
"""
from __future__ import annotations

import argparse
import ctypes
import mmap
import sys
import time
from pathlib import Path

from ..constants import MIB, PAGE_SIZE, THP_PAGES

REGION = THP_PAGES * PAGE_SIZE     # [B]
VMSTAT = Path("/proc/vmstat")
REPORTING = Path("/sys/module/page_reporting/parameters/page_reporting_order")


def thp_allocations() -> int | None:
    """``thp_fault_alloc`` of ``/proc/vmstat`` (None where there is none)."""
    try:
        for line in VMSTAT.read_text().splitlines():
            name, value = line.split()
            if name == "thp_fault_alloc":
                return int(value)
    except OSError:
        return None
    return None


def populate(nbytes: int) -> tuple[float, int | None]:
    """Map ``nbytes`` as guest RAM is mapped and touch each 2 MiB region once.

    Returns
    -------
    seconds_per_region : float
        [s]
    huge_pages : int or None
        Transparent huge pages the kernel allocated meanwhile (None: unknown).
    """
    m = mmap.mmap(-1, nbytes + REGION, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
    try:
        # the first 2 MiB boundary inside the mapping (mmap gives page alignment only)
        view = memoryview(m)
        first = -ctypes.addressof(ctypes.c_char.from_buffer(m)) % REGION
        m.madvise(mmap.MADV_HUGEPAGE, first, nbytes)
        before = thp_allocations()
        t0 = time.perf_counter()
        for offset in range(first, first + nbytes, REGION):
            view[offset] = 1
        seconds = time.perf_counter() - t0
        after = thp_allocations()
        view.release()
    finally:
        m.close()
    regions = nbytes // REGION
    return seconds / regions, (after - before if None not in (before, after) else None)


def main(argv=None) -> int:
    """``python -m toolkit.qemu.populate``: print the three figures."""
    parser = argparse.ArgumentParser(prog="python -m toolkit.qemu.populate",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--mib", type=int, default=256, help="memory per try [MiB], >= 2")
    parser.add_argument("--wait", type=float, default=4.0,
                        help="seconds before the third try, >= 0")
    args = parser.parse_args(argv)
    if args.mib < 2 or args.mib > 1 << 20:
        print(f"--mib {args.mib}: expected an integer in [2, 1048576] MiB", file=sys.stderr)
        return 2
    if not 0 <= args.wait <= 3600:
        print(f"--wait {args.wait}: expected seconds in [0, 3600]", file=sys.stderr)
        return 2
    if not hasattr(mmap, "MADV_HUGEPAGE"):
        print("python -m toolkit.qemu.populate: needs Linux (mmap.MADV_HUGEPAGE)",
              file=sys.stderr)
        return 2
    nbytes = args.mib * MIB // REGION * REGION
    order = REPORTING.read_text().strip() if REPORTING.exists() else "none"
    print(f"{nbytes // REGION} regions of 2 MiB a try; free page reporting order: {order}")
    tries = [("memory not touched before", 0.0), ("again, just freed", 0.0),
             (f"again after {args.wait:g} s", args.wait)]
    for label, wait in tries:
        time.sleep(wait)
        per_region, huge = populate(nbytes)
        kind = "" if huge is None else f" ({huge} transparent huge pages)"
        print(f"  {label:28s} {per_region * 1e3:8.3f} ms a region{kind}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
