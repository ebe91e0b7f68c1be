"""Real QEMU migrations through toolkit.qemu: TCG guests migrated over loopback TCP.

Without qemu-system-x86_64 >= 8.2 and nasm the module first runs .ci/install-qemu
when it can (as root with apt; SWITCHOVER_INSTALL_QEMU=0 stops it, =1 forces
the try) and is skipped, with the reason, when they are still missing.  About 40 s
of wall time on a 2-core machine, plus ~25 s for the guest variants (zero writes,
no fill, stride, prealloc, an 8 GiB guest).
"""
import json
import os
import time
import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np
import pytest

from toolkit.constants import PAGE_SIZE
from toolkit.qemu import guest, harness
from toolkit.qemu.qmp import QMPError

ROOT = Path(__file__).resolve().parent.parent


def _skip_reason() -> str | None:
    def missing() -> str | None:
        version = harness.qemu_version()
        if version is None:
            return f"{harness.QEMU} not installed"
        if version[:2] < harness.MIN_QEMU_VERSION:
            return f"{harness.QEMU} {'.'.join(map(str, version))} is older than 8.2"
        if shutil.which("nasm") is None:
            return "nasm not installed"
        return None

    reason = missing()
    # install when we can (root with apt), unless told not to
    can = os.geteuid() == 0 and shutil.which("apt-get") is not None
    if reason and os.environ.get("SWITCHOVER_INSTALL_QEMU", "1" if can else "0") == "1":
        subprocess.run([str(ROOT / ".ci" / "install-qemu")], check=False)
        reason = missing()
    if reason:
        return f"{reason} (run .ci/install-qemu, or set SWITCHOVER_INSTALL_QEMU=1)"
    return None


_SKIP = _skip_reason()
pytestmark = [pytest.mark.qemu, pytest.mark.skipif(_SKIP is not None, reason=_SKIP or "")]

# Converges in a few passes: 128 MiB dirtied at ~61 MB/s against a 100 MB/s limit.
CONVERGING = {"ram_mib": 256, "pages": 32768, "rate": 15000, "max_bandwidth": 100_000_000,
              "downtime_limit": 300}
# Never converges: 16 MiB re-dirtied at ~20 MB/s against a 10 MB/s limit.
DIVERGING = {"ram_mib": 128, "pages": 4096, "rate": 5000, "max_bandwidth": 10_000_000,
             "downtime_limit": 300}


def _qemu_children() -> set[int]:
    """PIDs of this process's children that are QEMUs, zombies included."""
    pids = set()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:  # the process exited meanwhile
            continue
        comm, rest = text[text.index("(") + 1:text.rindex(")")], text[text.rindex(")") + 2:]
        if comm.startswith("qemu-system") and int(rest.split()[1]) == os.getpid():
            pids.add(int(stat.parent.name))
    return pids


def _alive(pid: int) -> bool:
    try:
        return (Path("/proc") / str(pid) / "comm").read_text().startswith("qemu-system")
    except OSError:
        return False


@pytest.fixture(scope="module")
def guest_cache(tmp_path_factory):
    return tmp_path_factory.mktemp("guest")


@pytest.fixture
def tmpdir_root(tmp_path, monkeypatch):
    """Point tempfile at an empty directory, so that leftovers of a run are visible."""
    root = tmp_path / "tmp"
    root.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(root))
    assert not _qemu_children()
    yield root
    assert not list(root.iterdir()), "harness left its temporary directory behind"
    assert not _qemu_children(), "harness left a QEMU process behind"


def test_guest_image_roundtrip(guest_cache, tmp_path):
    image = guest.build_guest(guest_cache)
    assert guest.build_guest(guest_cache) == image  # cached
    out = guest.guest_image(image, tmp_path / "g.img", start_page=300, pages=1000,
                            pattern="random", rate=150, seed=7)
    assert out.stat().st_size == 1474560
    params = guest.read_params(out)
    assert params == {"start_page": 300, "pages": 1000, "pattern": "random", "burst_pages": 3,
                      "burst_ticks": 20, "lcg_mask": 1023, "cursor": 7, "stride": 1,
                      "zero_every": 0, "fill": True}
    assert guest.paced_rate(3, 20) == pytest.approx(150, rel=1e-3)
    assert guest.pace(None) == (1, 0)
    assert guest.pace(1) == (1, 1000)
    for rate in (3.0, 99.0, 1234.0, 5e4, 2.5e6):
        assert guest.paced_rate(*guest.pace(rate)) == pytest.approx(rate, rel=0.02)
    with pytest.raises(ValueError, match=r"start_page must be in \[256"):
        guest.guest_image(image, tmp_path / "x.img", start_page=10)
    with pytest.raises(ValueError, match="pattern"):
        guest.guest_image(image, tmp_path / "x.img", pattern="zigzag")


@pytest.mark.parametrize("name, value, match", [
    ("downtime_limit", 2_000_001,
     r"downtime_limit must be an integer in \[0, 2000000\] \[ms\], got 2000001"),
    ("downtime_limit", -1, r"downtime_limit .* got -1"),
    ("max_bandwidth", 2**64,
     r"max_bandwidth must be an integer in \[0, 18446744073709551615\] \[B/s\]"),
    ("avail_switchover_bandwidth", 1.5, r"avail_switchover_bandwidth .* got 1.5"),
    ("pages", 10**6, r"pages must be an integer in \[1, 65280\] \[pages\]"),
    ("time_limit", 0, r"time_limit must be a finite number > 0 \[s\]"),
])
def test_invalid_parameter_is_rejected_before_start(tmpdir_root, name, value, match):
    with pytest.raises(ValueError, match=match):
        harness.run_migration(**{name: value})


def test_converging_migration(guest_cache, tmpdir_root, tmp_path):
    out = tmp_path / "out"
    result = harness.run_migration(**CONVERGING, warmup=1.0, time_limit=30, verify=True,
                                   output_dir=out, guest_cache=guest_cache)
    assert result.completed and result.status == "completed"
    assert result.mismatched_pages == 0
    assert result.dirty_sync_count >= 3  # setup sync, at least one pass, final sync
    assert 0 < result.downtime_ms < result.total_time_ms
    assert result.transferred_bytes > CONVERGING["pages"] * PAGE_SIZE
    assert result.warmup_write_rate == pytest.approx(CONVERGING["rate"], rel=0.1)
    assert not any(_alive(pid) for pid in result.pids)

    lines = (out / "samples.jsonl").read_text().splitlines()
    assert [json.loads(line) for line in lines] == result.samples
    t = np.array([s["t"] for s in result.samples])
    assert np.all(np.diff(t) > 0)
    assert result.samples[-1]["query-migrate"] == result.final
    src_trace = (out / "src-trace.log").read_text()
    for event in ("migrate_transferred", "migrate_pending_estimate", "migration_bitmap_sync_end",
                  "migration_thread_low_pending", "src-downtime-end"):
        assert event in src_trace
    assert "dst-precopy-loadvm-completed" in (out / "dst-trace.log").read_text()
    assert any(e["event"] == "MIGRATION_PASS" for e in result.events)


def test_cancelled_at_time_limit(guest_cache, tmpdir_root):
    result = harness.run_migration(**DIVERGING, warmup=1.0, time_limit=6.0,
                                   guest_cache=guest_cache)
    assert not result.completed and result.status == "cancelled"
    assert result.downtime_ms is None and result.files == {}
    active = [s["query-migrate"] for s in result.samples
              if s["query-migrate"]["status"] == "active"]
    assert max(s["ram"]["dirty-sync-count"] for s in active) >= 3
    # Every pass re-dirties the whole range: what is pending right after each
    # sync (``remaining`` then falls as pages go) stays above the threshold.
    threshold = DIVERGING["max_bandwidth"] * DIVERGING["downtime_limit"] / 1000
    by_sync = {}
    for s in active:
        ram = s["ram"]
        by_sync[ram["dirty-sync-count"]] = max(by_sync.get(ram["dirty-sync-count"], 0),
                                               ram["remaining"])
    assert min(v for k, v in by_sync.items() if k >= 2) > threshold
    assert result.samples[-1]["t"] >= 6.0
    assert not any(_alive(pid) for pid in result.pids)


@pytest.mark.parametrize("error", [RuntimeError, KeyboardInterrupt])
def test_exception_in_callback_cleans_up(guest_cache, tmpdir_root, error):
    seen = []

    def callback(sample):
        seen.append(_qemu_children())
        if len(seen) == 3:
            raise error("stop here")

    with pytest.raises(error, match="stop here"):
        harness.run_migration(**DIVERGING, warmup=0.5, callback=callback,
                              guest_cache=guest_cache)
    assert len(seen[-1]) == 2  # both QEMUs were running when the callback raised
    assert not any(_alive(pid) for pid in seen[-1])


def test_qemu_rejected_parameter_cleans_up(guest_cache, tmpdir_root, tmp_path):
    out = tmp_path / "out"
    with pytest.raises(QMPError, match="throttle_trigger_threshold") as info:
        harness.run_migration(**DIVERGING, warmup=0.0, parameters={"throttle-trigger-threshold": 0},
                              output_dir=out, guest_cache=guest_cache)
    assert info.value.command == "migrate-set-parameters"
    assert (out / "src-qemu.log").exists()  # logs are kept also when the run fails


@pytest.mark.parametrize("scenario_id", ["r5000-bw100-dl200-avail0", "r15000-bw40-dl200-avail0"])
def test_simulator_predicts_the_verdict_of_a_live_run(guest_cache, tmpdir_root, scenario_id):
    """One converging and one never-converging real migration of the study's grid,
    predicted from the calibration shipped with the validation study."""
    import toolkit as tk
    from toolkit.qemu import calibrate, grid, study

    sc = next(s for s in study.scenarios() if s["id"] == scenario_id)
    settings = {**grid.harness_kwargs(sc), "time_limit": 5.0}
    result = harness.run_migration(**settings, guest_cache=guest_cache)
    record = {**study.result_record(sc, 0, result), "time_limit": 5.0}
    table = tk.open_dataset("qemu-validation")
    values = dict(zip(table.input.values, table.calibrated_value.values))
    predicted = calibrate.predict(record, calibrate.Calibration(values, {}))
    assert bool(predicted.converged) == result.completed == (scenario_id.startswith("r5000"))
    if result.completed:
        assert float(predicted.total_time) == pytest.approx(record["total_time"], rel=0.3)


def _rss_mib(pid: int) -> float:
    for line in (Path("/proc") / str(pid) / "status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError(f"no VmRSS for pid {pid}")


def _available_mib() -> float:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemAvailable:"):
            return int(line.split()[1]) / 1024
    return 0.0


# A 128 MiB guest: 32 768 pages of RAM, of which the BIOS and the guest's own
# low pages are ~120 non-zero ones.
RAM_PAGES_128 = 128 * 256


@pytest.mark.parametrize("fill", [False, True])
def test_zero_writes_are_sent_as_zero_pages(guest_cache, tmpdir_root, fill):
    """zero_every=1: every write clears its page, and QEMU sends the range as zero pages."""
    pages = 8192
    result = harness.run_migration(ram_mib=128, pages=pages, rate=20000, zero_every=1, fill=fill,
                                   max_bandwidth=0, warmup=1.0, time_limit=10,
                                   guest_cache=guest_cache)
    assert result.completed
    # Warm-up long enough for a whole sweep: every page of the range was cleared.
    assert guest.loop_writes(result.writes_at_migrate, pages, fill) >= pages
    ram = result.final["ram"]
    assert ram["duplicate"] >= pages
    assert ram["normal"] < pages / 10  # with fill=True and data writes: >= pages
    # Zero writes during the migration re-dirty pages that the final pass sends
    # as zero pages again: more pages go than the guest has.
    assert ram["duplicate"] + ram["normal"] > ram["total"] // PAGE_SIZE
    # the warm-up's first sweep populates the source's RAM under the guest: 16 regions of
    # 2 MiB, ~5 ms each where the host must back the memory again (python -m
    # toolkit.qemu.populate), so the 1 s warm-up may pace up to ~10% slower without fill
    assert result.warmup_write_rate == pytest.approx(20000, rel=0.1 if fill else 0.2)


def test_no_fill_leaves_the_range_zero(guest_cache, tmpdir_root):
    """fill=False, slow data writes: all but the few written pages go as zero pages."""
    pages = 16384
    result = harness.run_migration(ram_mib=128, pages=pages, rate=100, fill=False,
                                   max_bandwidth=0, warmup=0.5, time_limit=10,
                                   guest_cache=guest_cache)
    assert result.completed
    assert 0 < result.writes_at_migrate < 500  # no fill: only the loop's writes
    ram = result.final["ram"]
    written = result.writes_at_migrate + 200  # generous: the few writes during the migration
    assert ram["normal"] < written + 200      # + the BIOS's pages
    assert ram["duplicate"] > RAM_PAGES_128 - written - 200


def test_mixed_zero_and_data_writes_verify(guest_cache, tmpdir_root):
    """Every 3rd write a zero write, scattered order, several passes: no page lost,
    compared page by page (all 4 KiB), and duplicate grows from pass to pass."""
    pages = 32768
    result = harness.run_migration(ram_mib=256, pages=pages, rate=15000, zero_every=3,
                                   stride=12345, max_bandwidth=100_000_000, warmup=1.0,
                                   time_limit=30, verify=True, guest_cache=guest_cache)
    assert result.completed and result.mismatched_pages == 0
    assert result.dirty_sync_count >= 3
    dup = [s["query-migrate"]["ram"]["duplicate"] for s in result.samples
           if "ram" in s["query-migrate"]]
    assert np.all(np.diff(dup) >= 0) and dup[-1] > dup[0]
    # The RAM outside the range is zero, and ~1/3 of the range's pages were last
    # written by a zero write.
    assert result.final["ram"]["duplicate"] > 256 * 256 - pages + pages / 5
    assert result.warmup_write_rate == pytest.approx(15000, rel=0.1)
    assert result.cursor_at_migrate == guest.sequential_cursor(result.writes_at_migrate, pages,
                                                               12345)


@pytest.mark.parametrize("settings", [
    {"stride": 4097, "rate": 5000},
    {"stride": 1, "rate": 5000, "fill": False},
    # Unpaced (~10 M writes/s): the pair is still read consistently.
    {"stride": 3, "rate": None, "zero_every": 4, "fill": False},
    {"pattern": "random", "rate": None},
])
def test_cursor_at_migrate(guest_cache, tmpdir_root, settings):
    pages = 16384
    result = harness.run_migration(ram_mib=128, pages=pages, max_bandwidth=0, warmup=0.5,
                                   time_limit=10, guest_cache=guest_cache, **settings)
    fill = settings.get("fill", True)
    assert guest.loop_writes(result.writes_at_migrate, pages, fill) > 0
    assert 0 <= result.cursor_at_migrate < pages
    if settings.get("pattern", "sequential") == "sequential":
        assert result.cursor_at_migrate == guest.sequential_cursor(
            result.writes_at_migrate, pages, settings["stride"], fill)
    if settings["rate"] is None:
        assert result.warmup_write_rate > 50_000
    else:
        assert result.warmup_write_rate == pytest.approx(settings["rate"], rel=0.1)


def test_prealloc(guest_cache, tmpdir_root):
    ram_mib = 128
    rss = []

    def callback(sample):
        if not rss:
            rss.append([_rss_mib(p) for p in _qemu_children()])

    result = harness.run_migration(ram_mib=ram_mib, pages=4096, rate=2000, prealloc=True,
                                   warmup=0.5, verify=True, guest_cache=guest_cache,
                                   callback=callback)
    assert result.completed and result.mismatched_pages == 0
    # Both QEMUs hold all of the guest's RAM (~166 MiB each; without prealloc ~40-60 MiB).
    assert len(rss[0]) == 2 and min(rss[0]) > ram_mib


_BIG_MIB = 8192
_BIG_NEED_MIB = 3072  # the range, QEMU's own memory and some room; untouched RAM costs nothing


@pytest.mark.skipif(_available_mib() < _BIG_NEED_MIB,
                    reason=f"an {_BIG_MIB} MiB guest pair needs ~{_BIG_NEED_MIB} MiB of free "
                           f"host memory, {_available_mib():.0f} MiB available")
def test_8gib_guest_boots_and_migrates(guest_cache, tmpdir_root):
    """8 GiB of RAM, the range right below the 3 GiB the pc machine maps under 4 GiB."""
    pages = 4096
    low_pages = harness.low_ram_mib(_BIG_MIB) * 256
    assert low_pages == 786432
    t = time.monotonic()
    rss = []
    result = harness.run_migration(ram_mib=_BIG_MIB, start_page=low_pages - pages, pages=pages,
                                   rate=5000, zero_every=5, max_bandwidth=0, warmup=0.5,
                                   time_limit=20, verify=True, guest_cache=guest_cache,
                                   callback=lambda s: rss.append(
                                       [_rss_mib(p) for p in _qemu_children()]))
    assert time.monotonic() - t < 30
    assert result.completed and result.mismatched_pages == 0
    assert result.final["ram"]["total"] >= _BIG_MIB << 20
    assert result.final["ram"]["duplicate"] > (_BIG_MIB << 8) - 2 * pages
    assert result.final["ram"]["normal"] > 0.7 * pages  # the range was filled with data
    assert result.cursor_at_migrate == guest.sequential_cursor(result.writes_at_migrate, pages)
    assert max(max(r) for r in rss) < 1024  # not preallocated: the host holds little of it


def test_the_firmware_leaves_data_where_the_model_puts_it(tmp_path):
    """Above its range the harness guest's RAM is zero but for SeaBIOS's pages at the top
    of low RAM, the model's toolkit.qemu.records.firmware_data_ranges."""
    from toolkit import Scenario
    from toolkit.qemu.records import firmware_data_ranges
    ram_mib, start, pages = 64, guest.FIRST_PAGE, 1024
    image = guest.guest_image(guest.build_guest(tmp_path), tmp_path / "guest.img",
                              start_page=start, pages=pages, rate=1000)
    run = harness._Run(tmp_path, harness.QEMU)
    try:
        qmp = run.start("src", image, ram_mib, [])
        run.wait_for_boot()
        qmp.execute("stop")
        above = run.page_range(qmp, "src", start + pages, ram_mib * 256 - start - pages)
    finally:
        run.close()
    found = (start + pages + np.flatnonzero(above.any(axis=1))).tolist()
    ranges = Scenario(ram_size=f"{ram_mib}MiB",
                      data_ranges=firmware_data_ranges(ram_mib << 20)).data_page_ranges
    assert found == [page for first, end in ranges for page in range(first, end)]


@pytest.mark.parametrize("channels, compression", [(4, "none"), (2, "zstd")])
def test_multifd_migrates_every_page(guest_cache, tmpdir_root, channels, compression):
    """multifd on both sides: the pages go through the channels (multifd-bytes) and
    the destination holds every page of the range, compared page by page."""
    result = harness.run_migration(ram_mib=128, pages=8192, rate=5000, max_bandwidth=0,
                                   downtime_limit=300, multifd_channels=channels,
                                   multifd_compression=compression, warmup=0.5,
                                   time_limit=20, verify=True, guest_cache=guest_cache)
    assert result.completed and result.mismatched_pages == 0
    sent, range_bytes = result.final["ram"]["multifd-bytes"], 8192 * PAGE_SIZE
    if compression == "none":
        assert sent >= range_bytes
    else:                        # the guest's pages (a counter each) compress well
        assert 0 < sent < range_bytes / 4


def test_multifd_arguments_are_checked_before_qemu_starts(tmpdir_root):
    with pytest.raises(ValueError, match=r"multifd_channels must be an integer in \[0, 255\]"):
        harness.run_migration(multifd_channels=256)
    with pytest.raises(ValueError, match=r"multifd_compression must be one of none, zlib, zstd"):
        harness.run_migration(multifd_channels=2, multifd_compression="lz4")
    with pytest.raises(ValueError, match=r"multifd_compression='zstd' needs multifd"):
        harness.run_migration(multifd_compression="zstd")
