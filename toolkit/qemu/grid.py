"""The validation study's scenarios (second edition): what each real migration runs.

Each scenario is a dict of :func:`toolkit.qemu.harness.run_migration` keywords
plus an ``id``, a ``family`` (what it is there to test) and, for the avail
sweeps, a ``sweep`` name: the scenarios of one sweep differ only in
``avail-switchover-bandwidth``, in steps of at most 25 MB/s, so that the study
can check where the model places the convergence boundary.

The first edition's 16 scenarios (:data:`FIRST_EDITION`: a 128 MiB guest
rewriting a 32 MiB range, ``rate`` x ``max-bandwidth`` x ``downtime-limit``
x avail) are kept as they are, with their recorded runs. The second edition
adds :data:`SECOND_EDITION`, one family each for what the first could not
show: guests up to 8 GiB whose first pass is mostly never-touched RAM,
preallocated RAM, guests that write zeros (at a pace and at full speed), a
scattered write order, hot sets below, near and above the threshold (mid-pass
syncs), avail sweeps through the convergence boundary, an over-optimistic
avail with most of RAM not yet copied, a first pass shorter than one 100 ms
window, and auto-converge.
"""
from __future__ import annotations

import itertools

MB = 1_000_000
#: What every run shares unless its scenario says otherwise.
BASE = dict(ram_mib=128, start_page=256, pages=8192, pattern="sequential", rate=5000,
            zero_every=0, fill=True, stride=1, prealloc=False, max_bandwidth=0,
            downtime_limit=300, avail_switchover_bandwidth=0, auto_converge=False,
            warmup=2.0, sample_interval=0.1, time_limit=8.0)

#: The first edition's grid: guest pace [pages/s] x max-bandwidth [B/s] x
#: downtime-limit [ms] x avail-switchover-bandwidth [B/s].
FIRST_GRID = {"rate": [5_000, 15_000], "max_bandwidth": [40 * MB, 100 * MB],
              "downtime_limit": [10, 200], "avail_switchover_bandwidth": [0, 5000 * MB]}


def _first_edition() -> list[dict]:
    out = []
    for values in itertools.product(*FIRST_GRID.values()):
        sc = dict(zip(FIRST_GRID, values))
        sc["id"] = "r{rate}-bw{mb}-dl{downtime_limit}-avail{avail}".format(
            mb=sc["max_bandwidth"] // MB, avail=sc["avail_switchover_bandwidth"] // MB, **sc)
        out.append({**BASE, **sc, "family": "first edition"})
    return out


def _scenario(id_: str, family: str, **kw) -> dict:
    return {**BASE, **kw, "id": id_, "family": family}


def _second_edition() -> list[dict]:
    out = [
        # big guests: the first pass is mostly never-touched RAM (cheap zero pages)
        _scenario("big-2g", "large guest, never-touched RAM", ram_mib=2048),
        _scenario("big-4g-dl50", "large guest, never-touched RAM", ram_mib=4096,
                  downtime_limit=50),
        _scenario("big-8g", "large guest, never-touched RAM", ram_mib=8192),
        # preallocated RAM: every zero page costs a full scan
        _scenario("prealloc-1g", "preallocated RAM", ram_mib=1024, prealloc=True),
        _scenario("prealloc-1g-bw100", "preallocated RAM", ram_mib=1024, prealloc=True,
                  max_bandwidth=100 * MB),
        # zero writes: a data range the guest has cleared page by page (the warm-up
        # covers a whole sweep) stays made of allocated zero pages for QEMU, a full
        # scan for 9 B on the wire each, never data again
        _scenario("zero-writes", "zero writes", ram_mib=1024, pages=65536, zero_every=1,
                  rate=20_000, warmup=4.0),
        _scenario("zero-writes-bw100-dl10", "zero writes", ram_mib=1024, pages=65536,
                  zero_every=1, rate=20_000, max_bandwidth=100 * MB, downtime_limit=10,
                  warmup=4.0),
        _scenario("zero-writes-full-speed", "zero writes", ram_mib=1024, pages=65536,
                  zero_every=1, rate=None),
        # a scattered order over the range
        _scenario("scattered", "scattered order", stride=4097, rate=15_000,
                  max_bandwidth=100 * MB, downtime_limit=200),
        _scenario("scattered-avail", "scattered order", stride=4097, rate=15_000,
                  max_bandwidth=40 * MB, downtime_limit=200,
                  avail_switchover_bandwidth=2000 * MB),
        # hot sets below, near and above the threshold: syncs in the middle of a pass
        _scenario("hot-256m-dl100", "hot set vs threshold", ram_mib=1024, pages=65536,
                  rate=30_000, downtime_limit=100, time_limit=6.0),
        _scenario("hot-256m-dl300", "hot set vs threshold", ram_mib=1024, pages=65536,
                  rate=30_000, downtime_limit=300),
        _scenario("hot-64m-dl100", "hot set vs threshold", ram_mib=1024, pages=16384,
                  rate=30_000, downtime_limit=100),
        # an over-optimistic avail with most of RAM not copied yet: the destination
        # populating it makes the downtime
        _scenario("optimistic-avail", "over-optimistic avail", ram_mib=1024, pages=65536,
                  max_bandwidth=100 * MB, downtime_limit=10,
                  avail_switchover_bandwidth=1_000_000 * MB),
        _scenario("optimistic-avail-prealloc", "over-optimistic avail", ram_mib=512,
                  pages=65536, max_bandwidth=100 * MB, downtime_limit=10, prealloc=True,
                  avail_switchover_bandwidth=1_000_000 * MB),
        # a first pass shorter than one 100 ms window: threshold 0, no exact sync
        _scenario("short-first-pass", "first pass < 100 ms", ram_mib=64, pages=1024,
                  rate=1000),
        # auto-converge throttles a guest the limit cannot keep up with
        _scenario("auto-converge", "auto-converge", ram_mib=256, pages=4096, rate=40_000,
                  max_bandwidth=40 * MB, downtime_limit=300, auto_converge=True,
                  parameters={"cpu-throttle-initial": 60, "cpu-throttle-increment": 20},
                  time_limit=12.0),
    ]
    # avail sweeps through the convergence boundary, 20 MB/s apart: a 2048-page range
    # rewritten ~10x a second, 40 MB/s rate limit (the estimate never converges)
    for avail in (40, 60, 80, 100, 120):
        out.append(_scenario(f"sweep-dl100-avail{avail}", "avail sweep", pages=2048,
                             rate=20_000, max_bandwidth=40 * MB, downtime_limit=100,
                             avail_switchover_bandwidth=avail * MB, time_limit=6.0,
                             sweep="dl100"))
    for avail in (150, 175, 200, 225):
        out.append(_scenario(f"sweep-dl40-avail{avail}", "avail sweep", pages=2048,
                             rate=20_000, max_bandwidth=40 * MB, downtime_limit=40,
                             avail_switchover_bandwidth=avail * MB, time_limit=6.0,
                             sweep="dl40"))
    return out


def _multifd() -> list[dict]:
    """The multifd scenarios (``datasets/qemu-multifd``, scored by
    ``python -m toolkit.qemu.study --multifd``)."""
    out = []
    # multifd (issue 15): channel counts, the rate check's lag under max-bandwidth, zero
    # detection in the channels (and in the migration thread, legacy), compression, a
    # downtime with channels, an over-optimistic avail and a large never-touched guest
    mf = dict(ram_mib=1024, pages=65536, rate=20_000)
    for channels in (1, 2, 4, 8):
        out.append(_scenario(f"multifd{channels}", "multifd channels", **mf,
                             multifd_channels=channels))
    out = out + [
        _scenario("multifd2-bw100", "multifd rate limit", multifd_channels=2,
                  max_bandwidth=100 * MB),
        _scenario("multifd2-bw40-dl10-avail5000", "multifd rate limit", multifd_channels=2,
                  max_bandwidth=40 * MB, downtime_limit=10,
                  avail_switchover_bandwidth=5000 * MB),
        _scenario("multifd2-zero-writes", "multifd zero writes", ram_mib=1024, pages=65536,
                  zero_every=1, rate=20_000, warmup=4.0, multifd_channels=2),
        _scenario("multifd2-zero-writes-legacy", "multifd zero writes", ram_mib=1024,
                  pages=65536, zero_every=1, rate=20_000, warmup=4.0, multifd_channels=2,
                  parameters={"zero-page-detection": "legacy"}),
        _scenario("multifd2-zstd", "multifd compression", **mf, multifd_channels=2,
                  multifd_compression="zstd"),
        _scenario("multifd2-zlib", "multifd compression", **mf, multifd_channels=2,
                  multifd_compression="zlib"),
        _scenario("multifd4-optimistic-avail", "multifd over-optimistic avail", ram_mib=1024,
                  pages=65536, max_bandwidth=100 * MB, downtime_limit=10,
                  avail_switchover_bandwidth=1_000_000 * MB, multifd_channels=4),
        _scenario("multifd2-big-2g", "multifd large guest", ram_mib=2048,
                  multifd_channels=2),
    ]
    # the same with the destination's RAM preallocated: the channels and the wire
    # without the destination's population cost (on this host it depends on what ran
    # before: memory freed a moment ago is cheap, memory handed back to the hypervisor is not)
    for channels in (1, 2, 8):
        out.append(_scenario(f"multifd{channels}-dst-prealloc", "multifd, destination "
                             "preallocated", **mf, multifd_channels=channels,
                             dst_prealloc=True))
    for compression in ("zstd", "zlib"):
        out.append(_scenario(f"multifd2-{compression}-dst-prealloc", "multifd, destination "
                             "preallocated", **mf, multifd_channels=2,
                             multifd_compression=compression, dst_prealloc=True))
    return out


FIRST_EDITION = _first_edition()
SECOND_EDITION = _second_edition()
#: Every scenario of the study, first edition first.
SCENARIOS = FIRST_EDITION + SECOND_EDITION
#: multifd's scenarios, recorded in ``datasets/qemu-multifd`` and scored apart
#: (``python -m toolkit.qemu.study --multifd``): their calibration takes the study's
#: host as known and fits multifd's costs alone.
MULTIFD = _multifd()
#: Run keywords that are not harness arguments.
NOT_HARNESS = ("id", "family", "sweep")


def harness_kwargs(scenario: dict) -> dict:
    """The :func:`toolkit.qemu.harness.run_migration` keywords of a scenario."""
    return {k: v for k, v in scenario.items() if k not in NOT_HARNESS}
