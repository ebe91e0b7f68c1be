"""Real QEMU migrations through toolkit.qemu: TCG guests migrated over loopback TCP.

Without qemu-system-x86_64 >= 8.2 and nasm the module first runs .ci/install-qemu
when it can (as root with apt; SWITCHOVER_INSTALL_QEMU=0 stops it, =1 forces
the try) and is skipped, with the reason, when they are still missing.  About 40 s
of wall time on a 2-core machine.
"""
import json
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np
import pytest

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
                      "burst_ticks": 20, "lcg_mask": 1023, "seed": 7}
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
    assert result.transferred_bytes > CONVERGING["pages"] * guest.PAGE_SIZE
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
    from toolkit.qemu import calibrate, study

    sc = next(s for s in study.scenarios() if s["id"] == scenario_id)
    settings = {k: v for k, v in sc.items() if k != "id"}
    result = harness.run_migration(**settings, time_limit=5.0, guest_cache=guest_cache)
    record = {**study.result_record(sc, 0, result), "time_limit": 5.0}
    table = tk.open_dataset("qemu-validation")
    values = dict(zip(table.input.values, table.calibrated_value.values))
    predicted = calibrate.predict(record, calibrate.Calibration(values, {}))
    assert bool(predicted.converged) == result.completed == (scenario_id.startswith("r5000"))
    if result.completed:
        assert float(predicted.total_time) == pytest.approx(record["total_time"], rel=0.3)
