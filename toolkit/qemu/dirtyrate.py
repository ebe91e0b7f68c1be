"""Record QEMU's own dirty-rate measurements of the test guest, for :mod:`toolkit.measure`.

``python -m toolkit.qemu.dirtyrate --out DIR`` boots the page-dirtying guest of
:mod:`toolkit.qemu.guest` (one QEMU, no migration) writing at a known pace,
runs QMP ``calc-dirty-rate`` in each mode (``page-sampling``, ``dirty-bitmap``,
``dirty-ring``; and ``page-sampling`` once more with ``calc-time-unit`` ms), and
writes into ``DIR``:

``<mode>.json``
    QEMU's answer to ``query-dirty-rate`` once the status is ``measured``, as
    QEMU sent it (``{"return": {...}}``); ``<mode>.error.json`` instead when
    ``calc-dirty-rate`` was refused (``{"error": {"class", "desc"}}``).
``<mode>.hmp.txt``
    HMP ``info dirty_rate`` (via ``human-monitor-command``) right after.
``unstarted.json``, ``measuring.json``
    The first ``query-dirty-rate`` answers seen in those states (right after
    ``calc-dirty-rate``, and while it runs), when polling caught them.
``recording.json``
    What the guest really wrote: the settings, and per mode its page writes
    per second from its own counter over the calculation [pages/s], with QEMU's
    rate converted to the same unit, so the two can be compared.

It prints QEMU's rate against the guest's.  The guest writes each page of its
range once per sweep, so as long as the range holds more pages than the guest
writes in ``calc-time``, the distinct pages dirtied per second (what QEMU
measures) equal its writes per second.  Needs QEMU and nasm (``.ci/install-qemu``).

The guest runs under TCG, as in the harness's migrations.  There QEMU 10.0
refuses dirty-ring mode (it needs KVM's dirty ring: "mode dirty-ring is not
enabled"), and dirty-bitmap mode reads 0 MiB/s: QEMU counts that mode's pages
only from KVM's dirty log, so TCG's dirty memory never reaches the count.
(The test guest does not run under this development host's nested KVM: an
emulation failure at its first ``iret``.)
"""
from __future__ import annotations

import argparse
import json
import math
import shutil
import sys
import tempfile
import time
from pathlib import Path

from ..constants import MIB, PAGE_SIZE
from . import guest, harness
from .qmp import QMPClient, QMPError

MODES = ("page-sampling", "dirty-bitmap", "dirty-ring")
"""QEMU's ``DirtyRateMeasureMode`` values, in the order they are run."""
_POLL = 0.05  # [s] between query-dirty-rate polls
_SLACK = 10.0  # [s] beyond calc-time before a calculation counts as stuck


def _write_json(path: Path, obj) -> None:
    path.write_text(json.dumps(obj, indent=2) + "\n")


def _guest_rate(run: harness._Run, qmp: QMPClient, since: tuple[float, guest.Stats]) -> float:
    """The guest's page writes per second since ``since`` [pages/s]."""
    t, stats = run.guest_stats(qmp)
    return (stats.writes - since[1].writes) / (t - since[0])


def measure(run: harness._Run, qmp: QMPClient, out: Path, name: str, arguments: dict,
            query: dict | None = None) -> dict:
    """One ``calc-dirty-rate`` with ``arguments``; files ``name.*`` in ``out``.

    Returns
    -------
    dict
        ``arguments``, and either ``error`` (QEMU's refusal) or the guest's
        ``guest_rate`` [pages/s] over the calculation and QEMU's
        ``qemu_rate`` [pages/s] (``dirty-rate`` [MiB/s] x 2**20 / 4096).
    """
    start = run.guest_stats(qmp)
    try:
        qmp.execute("calc-dirty-rate", arguments)
    except QMPError as err:
        _write_json(out / f"{name}.error.json", {"error": {"class": err.error_class,
                                                            "desc": err.desc}})
        return {"arguments": arguments, "error": err.desc}
    in_ms = arguments.get("calc-time-unit") == "millisecond"
    calc_s = arguments["calc-time"] / (1000 if in_ms else 1)
    deadline = time.monotonic() + calc_s + _SLACK
    while True:
        # calc-dirty-rate resets the status to unstarted; its thread then measures
        reply = qmp.execute("query-dirty-rate", query)
        if reply["status"] == "measured":
            break
        if not (out / f"{reply['status']}.json").exists():
            _write_json(out / f"{reply['status']}.json", {"return": reply})
        if time.monotonic() > deadline:
            raise RuntimeError(f"calc-dirty-rate {arguments} still measuring after "
                               f"{calc_s + _SLACK} s")
        time.sleep(_POLL)
    guest_rate = _guest_rate(run, qmp, start)
    _write_json(out / f"{name}.json", {"return": reply})
    hmp = qmp.execute("human-monitor-command", {"command-line": "info dirty_rate"})
    (out / f"{name}.hmp.txt").write_text(hmp)
    return {"arguments": arguments, "status": reply["status"], "guest_rate": guest_rate,
            "qemu_rate": reply.get("dirty-rate", math.nan) * MIB / PAGE_SIZE}


def record(out, *, ram_mib: int = 256, pages: int = 49152, rate: float = 20000.0,
           calc_time: int = 1, sample_pages: int = 512, qemu: str = harness.QEMU) -> dict:
    """Boot the guest once and record ``calc-dirty-rate`` in every mode into ``out``.

    Parameters
    ----------
    out : str or os.PathLike
        Directory for the files (created if missing).
    ram_mib : int, optional
        Guest RAM [MiB].
    pages, rate : optional
        The guest's range [pages] from 1 MiB and its pace [pages/s]; keep
        ``rate * calc_time`` below ``pages`` so that the range does not saturate.
    calc_time : int, optional
        ``calc-time`` [s] of each calculation (the ms run takes half of it).
    sample_pages : int, optional
        ``sample-pages`` [pages per GiB] of page-sampling (QEMU's default 512).
    qemu : str, optional
        The ``qemu-system-x86_64`` executable.

    Returns
    -------
    dict
        What ``recording.json`` holds.
    """
    harness._check_int("ram_mib", ram_mib, 16, harness.MAX_RAM_MIB, "MiB")
    low = harness.low_ram_mib(ram_mib) * 256 - guest.FIRST_PAGE
    harness._check_int("pages", pages, 1, low, "pages", "the range must fit the guest's low RAM")
    harness._check_positive("rate", rate, "pages/s")
    harness._check_int("calc_time", calc_time, 1, 60, "s")
    harness._check_int("sample_pages", sample_pages, 0, 10000, "pages per GiB",
                       "QEMU's range for sample-pages")
    version = harness.qemu_version(qemu)
    if version is None:
        raise RuntimeError(f"{qemu} not found (install it with .ci/install-qemu)")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    for status in ("unstarted", "measuring"):
        (out / f"{status}.json").unlink(missing_ok=True)
    workdir = Path(tempfile.mkdtemp(prefix="switchover-dirtyrate-"))
    run = harness._Run(workdir, qemu)
    try:
        image = guest.guest_image(guest.build_guest(workdir), workdir / "guest.img",
                                  pages=pages, rate=rate)
        qmp = run.start("src", image, ram_mib, [])
        run.wait_for_boot()
        time.sleep(0.5)   # past the fill: the loop runs at its pace
        results = {}
        for mode in MODES:
            args = {"calc-time": calc_time, "mode": mode}
            if mode == "page-sampling":
                args["sample-pages"] = sample_pages
            results[mode] = measure(run, qmp, out, mode, args)
        results["page-sampling-ms"] = measure(
            run, qmp, out, "page-sampling-ms",
            {"calc-time": calc_time * 500, "calc-time-unit": "millisecond", "mode": "page-sampling",
             "sample-pages": sample_pages}, {"calc-time-unit": "millisecond"})
    finally:
        run.close()
        shutil.rmtree(workdir, ignore_errors=True)
    recording = {"qemu_version": ".".join(map(str, version)), "accel": "tcg",
                 "machine": harness.MACHINE, "ram_mib": ram_mib, "vcpus": 1,
                 "start_page": guest.FIRST_PAGE, "pages": pages, "pattern": "sequential",
                 "rate": rate, "paced_rate": guest.paced_rate(*guest.pace(rate)),
                 "units": {"rate": "pages/s", "guest_rate": "pages/s", "qemu_rate": "pages/s"},
                 "runs": results}
    _write_json(out / "recording.json", recording)
    return recording


def main(argv=None) -> int:
    """Command line: record, then print QEMU's rates against the guest's."""
    ap = argparse.ArgumentParser(prog="python -m toolkit.qemu.dirtyrate", description=__doc__
                                 .split("\n\n")[0])
    ap.add_argument("--out", required=True, help="directory for the recorded files")
    ap.add_argument("--ram-mib", type=int, default=256, help="guest RAM [MiB] (default 256)")
    ap.add_argument("--pages", type=int, default=49152, help="guest range [pages] (49152)")
    ap.add_argument("--rate", type=float, default=20000.0, help="guest pace [pages/s] (20000)")
    ap.add_argument("--calc-time", type=int, default=1, help="calc-time [s] (default 1)")
    ap.add_argument("--sample-pages", type=int, default=512,
                    help="page-sampling sample-pages [per GiB] (default 512)")
    a = ap.parse_args(argv)
    try:
        rec = record(a.out, ram_mib=a.ram_mib, pages=a.pages, rate=a.rate,
                     calc_time=a.calc_time, sample_pages=a.sample_pages)
    except (ValueError, RuntimeError, QMPError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2 if isinstance(err, ValueError) else 1
    print(f"QEMU {rec['qemu_version']}, -accel {rec['accel']}, {rec['ram_mib']} MiB, guest pace "
          f"{rec['paced_rate']:.0f} pages/s over {rec['pages']} pages")
    print(f"{'mode':<18} {'QEMU [pages/s]':>15} {'guest [pages/s]':>16} {'ratio':>7}")
    for name, r in rec["runs"].items():
        if "error" in r:
            print(f"{name:<18} not supported: {r['error']}")
        else:
            ratio = r["qemu_rate"] / r["guest_rate"] if r["guest_rate"] else math.nan
            print(f"{name:<18} {r['qemu_rate']:>15.0f} {r['guest_rate']:>16.0f} {ratio:>7.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
