"""Why a downtime is what it is: the source against the destination, run by run.

``python -m toolkit.qemu.probe [scenario id] [--repeats N]`` migrates one scenario
of :mod:`toolkit.qemu.grid` (default ``r5000-bw40-dl10-avail5000``) ``N`` times and
prints, per run: QEMU's ``downtime`` and ``downtime-bytes``; from the source's
``vmstate_downtime_checkpoint`` trace, when RAM was saved and when the downtime
ended; from the destination's, when it had loaded everything; and the largest
TCP receive buffer (``ss -tm``'s ``rb``) seen at the last sample before the
switchover. These are the figures behind the README's "where the model still
misses": QEMU's downtime ends on the source, the destination loads behind it,
and whether a final copy waits for it depends on the receive buffer Linux has
autotuned. Needs QEMU (``.ci/install-qemu``); ``ss`` (iproute2) is optional.
"""
from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from . import grid, harness
from .records import DEFAULT_OUT, record_dirs

DEFAULT_SCENARIO = "r5000-bw40-dl10-avail5000"


def checkpoints(run_dir: Path) -> dict:
    """``vmstate_downtime_checkpoint`` name -> time [s] of both sides' trace logs (a
    side without a log, as in runs recorded before the study kept the destination's, gives
    none)."""
    out = {}
    for side in ("src", "dst"):
        log = run_dir / f"{side}-trace.log"
        if not log.exists():
            continue
        for line in log.read_text().splitlines():
            m = re.match(r"\d+@([\d.]+):vmstate_downtime_checkpoint (\S+)", line)
            if m:
                out[m.group(2)] = float(m.group(1))
    return out


def receive_buffer() -> int | None:
    """The largest receive buffer of an established TCP socket now [B] (None without ss)."""
    if shutil.which("ss") is None:
        return None
    text = subprocess.run(["ss", "-tmin", "state", "established"], capture_output=True,
                          text=True).stdout
    sizes = [int(x) for x in re.findall(r"rb(\d+)", text)]
    return max(sizes, default=None)


def probe(scenario: dict, out: Path) -> dict:
    """One migration of ``scenario``, recorded under ``out``; its figures [ms, MB, B]."""
    buffers = []
    res = harness.run_migration(**grid.harness_kwargs(scenario), output_dir=out,
                                callback=lambda sample: buffers.append(receive_buffer()))
    cp = checkpoints(out)
    start = cp["src-downtime-start"]
    known = [b for b in buffers if b]
    return {"downtime": res.downtime_ms,
            "downtime_mb": res.final["ram"]["downtime-bytes"] / 1e6,
            "ram_saved": (cp["src-iterable-saved"] - start) * 1e3,
            "source_end": (cp["src-downtime-end"] - start) * 1e3,
            "destination_loaded": (cp["dst-precopy-loadvm-completed"] - start) * 1e3,
            "receive_buffer": known[-1] if known else None}


def print_recorded(scenario_id: str, out: Path = DEFAULT_OUT) -> int:
    """Print, for each completed run of ``scenario_id`` the study recorded, QEMU's
    downtime [ms], the bytes sent in it [MB] and the final copy: the time from
    ``src-vm-stopped`` to ``src-iterable-saved`` [ms] and its rate [GB/s]."""
    runs = [d for d in record_dirs(out) if d.name.rsplit("-", 1)[0] == scenario_id]
    if not runs:
        print(f"no recorded run of {scenario_id!r} in {out}", file=sys.stderr)
        return 2
    print(f"{scenario_id}: recorded runs; final copy = src-vm-stopped to src-iterable-saved")
    print(f"{'run':>34} {'downtime':>9} {'MB':>6} {'final copy':>11} {'GB/s':>6}")
    for d in runs:
        record = json.loads((d / "result.json").read_text())
        if not record.get("completed"):
            print(f"{d.name:>34} {'-':>9} (did not complete)")
            continue
        cp = checkpoints(d)
        ram_ms = (cp["src-iterable-saved"] - cp["src-vm-stopped"]) * 1e3
        mb = record["downtime_bytes"] / 1e6
        rate = mb / ram_ms if ram_ms > 0 else float("nan")
        print(f"{d.name:>34} {record['downtime']:>9} {mb:>6.1f} {ram_ms:>11.1f} {rate:>6.2f}")
    return 0


def main(argv=None) -> int:
    """``python -m toolkit.qemu.probe``: print the figures of each run."""
    parser = argparse.ArgumentParser(prog="python -m toolkit.qemu.probe",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("scenario", nargs="?", default=DEFAULT_SCENARIO,
                        help="a scenario id of toolkit.qemu.grid")
    parser.add_argument("--repeats", type=int, default=6, help="runs, >= 1")
    parser.add_argument("--recorded", action="store_true",
                        help="no QEMU: the scenario's runs recorded by the study "
                             f"({DEFAULT_OUT}), final copy from the source's trace")
    args = parser.parse_args(argv)
    if args.recorded:
        return print_recorded(args.scenario)
    by_id = {sc["id"]: sc for sc in grid.SCENARIOS}
    if args.scenario not in by_id:
        print(f"no scenario {args.scenario!r} in toolkit.qemu.grid", file=sys.stderr)
        return 2
    if args.repeats < 1:
        print(f"--repeats {args.repeats}: expected at least 1", file=sys.stderr)
        return 2
    print(f"{args.scenario}: times after the source's downtime start [ms]; rb: the receive "
          "buffer before it [B]")
    print(f"{'downtime':>9} {'MB':>6} {'RAM saved':>10} {'src end':>8} {'dst loaded':>11} "
          f"{'rb':>10}")
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(args.repeats):
            f = probe(by_id[args.scenario], Path(tmp) / str(i))
            rb = "-" if f["receive_buffer"] is None else f"{f['receive_buffer']:,}"
            print(f"{f['downtime']:>9} {f['downtime_mb']:>6.1f} {f['ram_saved']:>10.1f} "
                  f"{f['source_end']:>8.1f} {f['destination_loaded']:>11.1f} {rb:>10}",
                  flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
