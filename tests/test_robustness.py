"""Hostile and careless inputs (issue 11): each gives a clear error or a right result.

Only the cases fixed so far; the rest of the campaign is still to come.
"""
import os
import sys

import numpy as np
import pytest

import toolkit as tk
from toolkit import Scenario
from toolkit.kernels import layout as L
from toolkit.simulate import run_kernel

from .reference import Reference


@pytest.mark.parametrize("dtype", [np.uint64, np.int64])
def test_npz_trace_pages_beyond_int64_are_refused_before_any_cast(tmp_path, dtype):
    path = tmp_path / "u64.npz"
    page = np.full(1000, 2**63 - 2**40 if dtype is np.int64 else 2**64 - 2**40, dtype)
    np.savez(path, time_us=np.arange(1000, dtype=dtype), page=page)
    with pytest.raises(ValueError, match=r"u64.npz: offset 0: .* page .* below 2\^32"):
        tk.simulate(ram_size="64MiB", workload="replay", write_trace=str(path), max_time=2.0)


def test_text_trace_values_beyond_int64_name_the_line(tmp_path):
    path = tmp_path / "big.txt"
    path.write_text("0 1\n5 99999999999999999999\n")
    with pytest.raises(ValueError, match=r"big.txt: line 2: .* out of range"):
        Scenario(ram_size="64MiB", workload="replay", write_trace=str(path))


def test_qemu_bandwidth_bounds_stay_exact_integers():
    assert Scenario(max_bandwidth=2**64 - 1).max_bandwidth == 2**64 - 1
    assert Scenario(max_bandwidth=2**60 + 1).max_bandwidth == 2**60 + 1
    assert Scenario(avail_switchover_bandwidth=np.uint64(2**63 + 7)).avail_switchover_bandwidth \
        == 2**63 + 7
    with pytest.raises(ValueError, match=r"max_bandwidth=18446744073709551616 is out of range"):
        Scenario(max_bandwidth=2**64)


def test_a_threshold_beyond_int64_saturates_as_in_qemu():
    sc = Scenario(ram_size="256MiB", dirty_rate="10MiB/s", max_bandwidth=0, max_time=5.0,
                  link_bandwidth="1Gbit/s", avail_switchover_bandwidth=2**63,
                  downtime_limit=2_000_000)
    raw = run_kernel(sc)
    assert raw.state[L.S_THRESHOLD] == 2**63 - 1
    assert raw.state[L.S_CONVERGED] == 1          # right after the first window
    small = sc.replace(ram_size="1MiB", link_bandwidth="50Mbit/s", max_time=2.0)
    assert run_kernel(small).state[L.S_THRESHOLD] == Reference(small).run().threshold


@pytest.mark.parametrize("kwargs, match", [
    ({"workers": 0}, r"workers=0 is out of range"),
    ({"workers": True}, r"workers=True is out of range"),
    ({"chunk_size": 2.5}, r"chunk_size=2.5 is out of range"),
])
def test_sweep_options_are_honoured_or_refused(kwargs, match):
    with pytest.raises(ValueError, match=match):
        tk.sweep(ram_size="16MiB", dirty_rate=[1, 2], max_time=1.0, **kwargs)
    with pytest.raises(TypeError, match="traces: expected True or False, got str 'no'"):
        tk.sweep(ram_size="16MiB", dirty_rate=[1, 2], max_time=1.0, traces="no")


def test_linspace_counts_are_whole_numbers():
    assert len(tk.linspace("1MiB/s", "2MiB/s", 3)) == 3
    with pytest.raises(ValueError, match=r"linspace: num=2.5 is out of range"):
        tk.linspace("1MiB/s", "2MiB/s", 2.5)
    with pytest.raises(ValueError, match=r"geomspace: num=0 is out of range"):
        tk.geomspace("1MiB/s", "2MiB/s", 0)


def test_sweep_checkpoint_takes_a_path_and_resumes(tmp_path):
    grid = dict(ram_size="16MiB", dirty_rate=["1MiB/s", "50MiB/s", "200MiB/s"], max_time=2.0)
    first = tk.sweep(**grid, checkpoint=tmp_path / "ck", workers=1)
    again = tk.sweep(**grid, checkpoint=str(tmp_path / "ck"), workers=1)
    np.testing.assert_array_equal(first.total_time.values, again.total_time.values)


def test_numpy_bools_are_bools_and_a_missing_trace_names_the_path(tmp_path):
    assert Scenario(check=np.True_).check is True
    with pytest.raises(FileNotFoundError, match=r"write_trace='.*nope.txt': no such file"):
        Scenario(workload="replay", write_trace=str(tmp_path / "nope.txt"))
    with pytest.raises(ValueError, match=r"write_trace='.*': not a readable file"):
        Scenario(workload="replay", write_trace=str(tmp_path))


def test_an_interrupted_sweep_does_not_run_its_queued_chunks(monkeypatch):
    """Ctrl-C lands in the main thread while it takes a result: the chunks still
    queued must not start (each chunk here takes tens of ms)."""
    module = sys.modules["toolkit.sweep"]           # tk.sweep is the function
    real, calls = module.run_chunk, []

    def counted(scenarios, traces, cancel=None):
        calls.append(1)
        return real(scenarios, traces, cancel)

    class Interrupting:                             # a checkpoint that is "Ctrl-C'd"
        def done(self):
            return set()

        def write(self, chunk_id, result):
            raise KeyboardInterrupt

    monkeypatch.setattr(module, "run_chunk", counted)
    with pytest.raises(KeyboardInterrupt):
        tk.sweep(ram_size="1GiB", dirty_rate=[f"{r}MiB/s" for r in range(100, 2100, 100)],
                 max_bandwidth=0, max_time=3.0, workers=1, chunk_size=1,
                 checkpoint=Interrupting())
    assert len(calls) <= 3            # of 20 chunks


def _cli(*argv):
    from toolkit.cli import main
    return main(list(argv))


def test_cli_os_errors_are_one_line_messages_naming_the_path(tmp_path, capsys):
    assert _cli("sweep", "--config", str(tmp_path), "--out", str(tmp_path / "o.nc")) == 2
    assert "not a regular file" in capsys.readouterr().err
    fifo = tmp_path / "fifo.toml"
    os.mkfifo(fifo)
    assert _cli("sweep", "--config", str(fifo), "--out", str(tmp_path / "o.nc")) == 2   # no hang
    assert "fifo.toml: not a regular file" in capsys.readouterr().err
    garbage = tmp_path / "garbage.nc"
    garbage.write_bytes(b"\x00\xff" * 100)
    code = _cli("info", str(garbage))
    err = capsys.readouterr().err
    assert code == 2 and "garbage.nc" in err and "Traceback" not in err


def test_a_changed_write_trace_is_another_sweep(tmp_path):
    from toolkit.sweep import plan
    path = tmp_path / "t.txt"
    tk.workloads.write_write_trace(path, [0, 10], [1, 2])
    grid = dict(ram_size="1MiB", workload="replay", write_trace=str(path), dirty_rate=[1, 2])
    before = plan(**grid).fingerprint(False)
    tk.workloads.write_write_trace(path, [0, 10], [1, 3])
    assert plan(**grid).fingerprint(False) != before


def test_two_sweeps_on_one_out_the_second_is_refused(tmp_path, capsys):
    from toolkit.cli import _exclusive
    out = tmp_path / "o.nc"
    with _exclusive(out):                   # the first sweep, still running
        assert _cli("sweep", "--out", str(out), "--set", "ram_size=16MiB",
                    "--no-progress") == 2
    assert "another sweep is writing o.nc" in capsys.readouterr().err
    assert not (tmp_path / ".o.nc.lock").exists()      # released and removed


def test_a_full_disk_is_refused_before_hdf5_starts(tmp_path, monkeypatch):
    import collections
    import errno

    import xarray as xr
    from toolkit import store
    ds = xr.Dataset({"x": ("a", np.arange(100_000.0))})
    usage = collections.namedtuple("usage", "total used free")
    monkeypatch.setattr(store.shutil, "disk_usage", lambda p: usage(10**6, 10**6 - 1000, 1000))
    with pytest.raises(OSError) as info:
        tk.save(ds, tmp_path / "x.nc")
    assert info.value.errno == errno.ENOSPC and "no space left on" in str(info.value)
    assert list(tmp_path.iterdir()) == []                       # nothing half-written


def test_a_full_tmpfs_gives_an_error_not_a_crash(tmp_path):
    """On a real 2 MiB tmpfs (where mounting is allowed): the CLI-level message, and the
    process survives garbage collection (it used to segfault in h5py)."""
    import subprocess
    mnt = tmp_path / "tiny"
    mnt.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(mnt)],
                      capture_output=True).returncode != 0:
        pytest.skip("mounting a tmpfs is not allowed here")
    try:
        code = ("import gc, numpy as np, xarray as xr, toolkit as tk\n"
                "ds = xr.Dataset({'x': ('a', np.random.rand(2_000_000))})\n"
                f"try:\n    tk.save(ds, {str(mnt / 'big.nc')!r})\n"
                "except OSError as e:\n    print('refused', e.errno)\n"
                "gc.collect()\nprint('alive')\n")
        run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                             timeout=120)
        assert run.returncode == 0 and "refused 28" in run.stdout and "alive" in run.stdout
    finally:
        subprocess.run(["umount", str(mnt)], capture_output=True)


@pytest.mark.parametrize("damage", ["truncate", "empty", "flip"])
def test_a_damaged_checkpoint_chunk_is_recomputed_not_fatal(tmp_path, capsys, damage):
    grid = dict(ram_size="16MiB", dirty_rate=["1MiB/s", "50MiB/s", "200MiB/s"], max_time=2.0)
    whole = tk.sweep(**grid, workers=1, chunk_size=1)
    ck = tmp_path / "ck"
    tk.sweep(**grid, checkpoint=ck, workers=1, chunk_size=1)
    chunk = sorted(ck.glob("chunk-*.npz"))[1]
    data = chunk.read_bytes()
    chunk.write_bytes({"truncate": data[: len(data) // 2], "empty": b"",
                       "flip": data[:-200] + bytes([data[-200] ^ 1]) + data[-199:]}[damage])
    again = tk.sweep(**grid, checkpoint=ck, workers=1, chunk_size=1)
    assert f"{chunk} is damaged" in capsys.readouterr().err
    np.testing.assert_array_equal(again.total_time.values, whole.total_time.values)


def test_leftovers_of_a_killed_writer_go_and_bad_options_leave_nothing(tmp_path, capsys):
    import subprocess
    import xarray as xr
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    stale = tmp_path / f".x.nc.tmp-{dead.pid}-abcdef"
    stale.write_bytes(b"half a file")
    live = tmp_path / f".x.nc.tmp-{os.getpid()}-fedcba"       # a writer still running
    live.write_bytes(b"in progress")
    tk.save(xr.Dataset({"a": ("x", np.arange(3.0))}), tmp_path / "x.nc")
    assert not stale.exists() and live.exists()
    out = tmp_path / "o.nc"
    for bad in (["--chunk-size", "0"], ["--workers", "0"]):
        assert _cli("sweep", "--out", str(out), "--no-progress", *bad) == 2
    assert "is out of range" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == [live.name, "x.nc"]


def test_relative_avail_is_case_blind_and_harness_output_dir_checked_first(tmp_path):
    assert Scenario(avail_switchover_bandwidth="3x Link").avail_switchover_bandwidth == \
        Scenario(avail_switchover_bandwidth="3x link").avail_switchover_bandwidth
    assert Scenario(avail_switchover_bandwidth="Estimate").avail_switchover_bandwidth == 0
    from toolkit.qemu import harness
    afile = tmp_path / "a-file"
    afile.write_text("x")
    with pytest.raises(ValueError, match=r"output_dir=.*a-file.* is a file"):
        harness.run_migration(output_dir=afile / "run1", qemu="/nonexistent/qemu")


def test_seeds_do_not_depend_on_how_a_number_is_written():
    a = Scenario(workload="hotcold", hot_share=1, zero_fraction=0)
    b = Scenario(workload="hotcold", hot_share=1.0, zero_fraction=0.0)
    assert a.stream_seeds == b.stream_seeds and a == b
    assert Scenario(zero_fraction=0).stream_seeds == Scenario().stream_seeds


def test_none_is_not_a_silent_default():
    with pytest.raises(TypeError, match=r"ram_size=None: give a value"):
        tk.simulate(ram_size=None)
    with pytest.raises(TypeError, match=r"dirty_rate=None: give a value"):
        tk.sweep(ram_size=["1MiB", "2MiB"], dirty_rate=None)


# --- Hangs and unbounded resources (issue 11, items 8, 9 and 14): the kernel runs in
# slices of simulated time, so Ctrl-C stops a run or a sweep at once, the trace grows
# with the run, and max_time cuts a precopy pass short ---

def test_ctrl_c_stops_simulate_within_a_second():
    import signal
    import threading
    import time
    never = dict(ram_size="256MiB", workload="hotcold", dirty_rate="1GiB/s")
    tk.simulate(**never, max_time=1.0)               # compiled before the clock starts
    timer = threading.Timer(0.5, os.kill, (os.getpid(), signal.SIGINT))
    start = time.monotonic()
    timer.start()
    with pytest.raises(KeyboardInterrupt):
        tk.simulate(**never, max_time=1e5)           # about a minute if not stopped
    assert time.monotonic() - start < 0.5 + 1.0
    timer.join()


SLICED = {
    "uniform-check": dict(dirty_rate="4MiB/s", check=True),
    "rate-limited-zero-writes": dict(dirty_rate="4MiB/s", max_bandwidth="2MB/s",
                                     zero_write_share=0.3, zero_fraction=0.5),
    "auto-converge-timer": dict(ram_size="16MiB", dirty_rate="16MiB/s", auto_converge=True,
                                max_time=30.0),
    "kubevirt-pauses": dict(dirty_rate="12MiB/s", max_time=20.0, policy=(
        "kubevirt:completion_timeout_per_gib=2,allow_workload_disruption=true")),
    "ovirt-aborts": dict(ram_size="16MiB", dirty_rate="12MiB/s", max_time=25.0,
                         policy="ovirt:downtime_delay=300,monitor_interval=1,"
                                "progress_timeout=6,max_time_per_gib=0"),
    "postcopy-phases": dict(workload="phases", phases="hotcold:30MiB/s:1.5s, uniform:1MiB/s:1s",
                            write_range="1MiB", postcopy_ram=True, postcopy_start_sync=6,
                            max_time=20.0),
}


@pytest.mark.parametrize("case", SLICED)
def test_slices_of_1_ms_give_the_result_of_one_whole_run(monkeypatch, case):
    from toolkit import policies
    sim = sys.modules["toolkit.simulate"]            # tk.simulate is the function
    from toolkit.kernels.precopy import migration_thread
    sc = Scenario(**{"ram_size": "4MiB", "link_bandwidth": "50Mbit/s", "max_bandwidth": 0,
                     "max_time": 4.0, "downtime_limit": 20, **SLICED[case]})
    p, streams = sim.kernel_inputs(sc)
    n_words, versions = (sc.n_pages + 63) // 64, sc.n_pages if sc.check else 0
    st = np.zeros(L.N_STATE, np.int64)
    trace = np.full((int(sc.max_time * 10) + 2, L.N_TRACE), np.nan)
    migration_thread(p, streams, st, np.array(sc.stream_seeds, np.uint64),
                     np.zeros(n_words, np.uint64), np.zeros(n_words, np.uint64),
                     sim.page_content(p, sc), np.zeros(versions, np.int32),
                     np.full(versions, -1, np.int32),
                     policies.kernel_array(sc.policy_object, sc.ram_size), trace)
    calls = []
    real = sim.migration_thread_slice

    def counted(*args):
        calls.append(1)
        return real(*args)
    monkeypatch.setattr(sim, "migration_thread_slice", counted)
    monkeypatch.setattr(sim, "SLICE_WALL_TIME", 1e-9)     # every slice 1 ms long
    raw = run_kernel(sc)
    assert len(calls) > st[L.S_N_WINDOWS] > 5       # about a call per pass
    np.testing.assert_array_equal(raw.state, st)
    np.testing.assert_array_equal(raw.trace, trace[: st[L.S_N_WINDOWS]])


def test_the_trace_buffer_grows_with_the_run_not_with_max_time(monkeypatch):
    sim = sys.modules["toolkit.simulate"]
    sizes = []
    real = sim.migration_thread_slice

    def recorded(*args):
        sizes.append(args[10].shape[0])                  # the trace the driver passed
        return real(*args)
    monkeypatch.setattr(sim, "migration_thread_slice", recorded)
    ds = tk.simulate(ram_size="64MiB", dirty_rate="10MiB/s", max_bandwidth=0, max_time=1e6)
    assert ds.converged.item() and ds.total_time.item() < 1000
    assert max(sizes) <= 1024                            # max_time would ask for 10 million
    monkeypatch.setattr(sim, "SLICE_WALL_TIME", 1e-9)
    long = tk.simulate(ram_size="4MiB", dirty_rate="40MiB/s", link_bandwidth="50Mbit/s",
                       max_bandwidth=0, downtime_limit=20, max_time=30.0)
    assert long.sizes["window"] > 2 * sim.TRACE_ROWS_FIRST     # grown, every row kept
    assert not np.isnan(long.time.values).any()


def test_ctrl_c_stops_a_cli_sweep_at_once_and_resume_finishes_it(tmp_path):
    import pathlib
    import signal
    import subprocess
    import time
    from toolkit.config import load_config
    config = tmp_path / "long.toml"
    config.write_text('[fixed]\nram_size = "256MiB"\nworkload = "hotcold"\n'
                      'max_time = "3000s"\n[grid]\n'
                      'dirty_rate = ["1MiB/s", "2MiB/s", "1GiB/s", "3MiB/s", "1.5GiB/s", '
                      '"4MiB/s"]\n')
    out = tmp_path / "long.nc"
    cmd = [sys.executable, "-m", "toolkit", "sweep", "--config", str(config), "--out", str(out),
           "--chunk-size", "1", "--workers", "2", "--no-progress", "--no-map"]
    env = {**os.environ, "CI": "1"}
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    partial = pathlib.Path(str(out) + ".partial")
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and len(list(partial.glob("chunk-*.npz"))) < 2:
        time.sleep(0.02)
    time.sleep(0.3)                  # chunk 2 (about 2 s) and chunk 3 or 4 are running
    proc.send_signal(signal.SIGINT)
    sent = time.monotonic()
    proc.communicate(timeout=60)
    assert proc.returncode == 130 and time.monotonic() - sent < 2.0
    done = len(list(partial.glob("chunk-*.npz")))
    assert 2 <= done < 6 and not out.exists()
    resumed = subprocess.run(cmd + ["--resume"], env=env, capture_output=True, text=True)
    assert resumed.returncode == 0, resumed.stderr
    assert f"({6 - done} run now, {done} resumed)" in resumed.stdout
    whole = tk.sweep(**load_config(config)[0])
    got = tk.open_dataset(out)
    for name in whole.data_vars:
        np.testing.assert_array_equal(got[name].values, whole[name].values, err_msg=name)


def test_max_time_cuts_a_precopy_pass_on_a_1000_B_per_s_link():
    """One 64-page batch takes 262 s at 1000 B/s: the run used to end there."""
    for check in (False, True):                       # check mode: no hang either
        ds = tk.simulate(link_bandwidth=1000, max_time=5.0, check=check)
        assert not ds.converged.item() and ds.total_time.item() == 5000.0
        assert ds.normal_pages.item() == 2             # the second was being written at 5 s
    # the downtime is not cut short: a switchover begun before max_time completes
    ds = tk.simulate(ram_size="64KiB", dirty_rate=0, link_bandwidth=1000, max_time=100.0)
    assert ds.converged.item() and ds.total_time.item() > 100_000
    assert ds.downtime.item() > 500_000                # 512 KiB of device state at 1 kB/s


@pytest.mark.parametrize("link, max_bandwidth", [(1000, 0), (1_000_000, 3000)])
def test_a_pass_cut_at_max_time_and_a_sleep_ended_there_are_the_reference_s(link, max_bandwidth):
    from .test_reference import assert_same
    sc = Scenario(ram_size="256KiB", dirty_rate="1MiB/s", link_bandwidth=link,
                  max_bandwidth=max_bandwidth, max_time=30.0, downtime_limit=50, check=True,
                  zero_fraction=0.3, device_state_size="4KiB")
    _, ref = assert_same(sc)
    assert not ref.converged and ref.t == 30 * 10**12
