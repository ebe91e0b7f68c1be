"""Hostile and careless inputs (issue 11): each gives a clear error or a right result.

Only the cases fixed so far; the rest of the campaign is still to come.
"""
import importlib
import os
import sys

import numpy as np
import pytest

import toolkit as tk
from toolkit import Scenario
from toolkit.kernels import layout as L
from toolkit._simulate import run_kernel

from .reference import Reference
from .sweeps import assert_resume_finishes, start_sweep, sweep_command, wait_for_chunks


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
    module = sys.modules["toolkit._sweep"]
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
    from toolkit._sweep import plan
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


# ---------------------------------------------------------------- memory and lazy plans
# (issue 11, items 6 and 10): a run or sweep that would not fit in memory is refused
# before any work; plan() makes no Scenario per point, refuses a bad combination at
# once, and keeps the checkpoint fingerprint of existing grids.

GIB = 2**30


@pytest.fixture
def eight_gib(monkeypatch):
    """A machine with 8 GiB available, whatever this one has."""
    monkeypatch.setattr(sys.modules["toolkit._simulate"], "available_memory", lambda: 8 * GIB)


def test_a_16_tib_guest_with_check_is_refused_before_the_kernel(eight_gib, monkeypatch):
    module = sys.modules["toolkit._simulate"]
    monkeypatch.setattr(module, "run_kernel", lambda sc: pytest.fail("the kernel ran"))
    with pytest.raises(ValueError, match=r"ram_size=16 TiB with check=True needs about 33\.0 "
                                         r"GiB of memory, more than the 8\.0 GiB available"):
        tk.simulate(ram_size="16TiB", check=True)


def test_the_memory_estimate_is_what_run_kernel_allocates(monkeypatch):
    module = sys.modules["toolkit._simulate"]
    seen = {}

    def slice_(p, streams, st, rng, dirty_log, bitmap, content, src, dst, *rest):
        seen.update(arrays=(dirty_log, bitmap, content, src, dst, st))
        return True                                   # the migration ended

    monkeypatch.setattr(module, "migration_thread_setup", lambda *args: None)
    monkeypatch.setattr(module, "migration_thread_slice", slice_)
    monkeypatch.setattr(module, "migration_iteration_finish", lambda *args: None)
    sc = Scenario(ram_size="64MiB", zero_fraction=0.5, zero_allocated_fraction=0.25,
                  dst_populate_time=2.0, check=True)
    run_kernel(sc)
    p, _ = module.kernel_inputs(sc)          # the encoder's, as simulate uses it
    want = module.kernel_arrays(sc, p)
    assert [(a.size, a.dtype) for a in seen["arrays"]] == \
        [(n, np.dtype(dtype)) for n, dtype in want.values()]
    assert want["content"][0] > 256 and want["version"][0] == 16384   # 256 words a bitset
    assert module.available_memory() > 0


def test_a_sweep_that_would_not_fit_is_refused_before_any_chunk(eight_gib, monkeypatch):
    module = sys.modules["toolkit._sweep"]
    monkeypatch.setattr(module, "run_chunk", lambda *a: pytest.fail("a chunk ran"))
    with pytest.raises(ValueError, match=r"the sweep \(2 workers at once on runs of up to "
                                         r"8\.2\d GiB: ram_size=4 TiB, check=True; .*more than "
                                         r"the 8\.0 GiB available"):
        tk.sweep(ram_size=["1MiB", "4TiB"], check=[False, True], workers=2)


def test_the_cli_refuses_a_sweep_that_would_not_fit_and_leaves_nothing(eight_gib, tmp_path,
                                                                        capsys):
    out = tmp_path / "o.nc"
    assert _cli("sweep", "--out", str(out), "--set", "ram_size=4TiB", "--set", "check=true",
                "--no-progress") == 2
    err = capsys.readouterr().err
    assert "GiB of memory, more than the 8.0 GiB available" in err and "ram_size=4 TiB" in err
    assert list(tmp_path.iterdir()) == []


def test_the_cli_prints_the_points_and_a_time_estimate_first(tmp_path, capsys):
    config = tmp_path / "c.toml"
    config.write_text('[fixed]\nram_size = "4MiB"\nmax_time = "2s"\n'
                      '[grid]\ndirty_rate = ["1MiB/s", "2MiB/s", "3MiB/s"]\n')
    assert _cli("sweep", "--config", str(config), "--out", str(tmp_path / "o.nc"),
                "--chunk-size", "2", "--workers", "1", "--no-progress") == 0
    assert "sweep: 3 points in 2 chunks of 2 on 1 worker: about " in capsys.readouterr().err


def test_plan_makes_no_scenario_per_point(monkeypatch):
    module = sys.modules["toolkit._sweep"]
    made = []

    class Counted(Scenario):
        def __post_init__(self):
            made.append(1)
            super().__post_init__()

    monkeypatch.setattr(module, "Scenario", Counted)
    grid = module.plan(ram_size="1GiB", dirty_rate=list(range(1, 1001)),
                       downtime_limit=list(range(1000)),
                       avail_switchover_bandwidth=["estimate", "link"])
    assert grid.size == 2_000_000 and len(made) <= 10
    assert grid.scenario(1_999_999).to_dict() == Scenario(
        ram_size="1GiB", dirty_rate=1000, downtime_limit=999,
        avail_switchover_bandwidth="link").to_dict()


def test_a_grid_above_max_points_is_refused_with_its_size():
    from toolkit._sweep import MAX_POINTS
    with pytest.raises(ValueError, match=r"100,000,000 points \(10000 dirty_rate x 10000 "
                                         r"downtime_limit\), more than MAX_POINTS = 10,000,000"):
        tk.sweep(dirty_rate=list(range(10_000)), downtime_limit=list(range(10_000)))
    assert MAX_POINTS == 10**7


@pytest.mark.parametrize("grid", [
    dict(workload="sequential", write_range_start=[0, "1MiB", "3GiB"],
         write_range=["4KiB", "1GiB"], ram_size=["1GiB", "4GiB", "8GiB"]),
    dict(workload="sequential", write_range_start=[0, "1MiB"], write_range=["4KiB", "1GiB"],
         ram_size=["2GiB", "4GiB"]),
    dict(workload="sequential", write_cursor=[0, 10, 300], write_range=["4KiB", "1MiB", "2MiB"]),
    dict(workload="sequential", write_cursor=[0, 10], write_range=["1MiB", "2MiB"]),
    dict(zero_allocated_fraction=[0, 0.3, 0.6], zero_fraction=[0.2, 0.5, 1.0]),
    dict(zero_allocated_fraction=[0, 0.3], zero_fraction=[0.3, 0.5, 1.0]),
    dict(max_cpu_throttle=[20, 50, 99], cpu_throttle_initial=[10, 30, 60]),
    dict(workload=["uniform", "hotcold"], hot_fraction=[1e-6, 0.5, 0.99999],
         ram_size=["1MiB", "64MiB", "4GiB"]),
    dict(workload="hotcold", hot_fraction=[0.01, 0.5, 0.9], ram_size=["1MiB", "4GiB"]),
    dict(qemu_version=["8.2", "10.0"], zero_page_detection=["none", "legacy"]),
    dict(postcopy_start_sync=[0, 3], postcopy_ram=[False, True]),
    dict(host=["none", "kvm-25g"], avail_switchover_bandwidth=["link", "1e10x link"]),
])
def test_plan_refuses_a_grid_exactly_when_one_of_its_points_is_bad(grid):
    import itertools
    from toolkit._sweep import plan
    swept = {k: v for k, v in grid.items() if isinstance(v, list)}
    fixed = {k: v for k, v in grid.items() if k not in swept}
    bad = []
    for combo in itertools.product(*swept.values()):
        try:
            Scenario(**fixed, **dict(zip(swept, combo)))
        except ValueError:
            bad.append(combo)
    if bad:
        with pytest.raises(ValueError, match=r"at sweep point"):
            plan(**grid)
    else:
        grid = plan(**grid)
        assert [grid.scenario(i) for i in range(grid.size)] == \
            [Scenario(**fixed, **dict(zip(swept, c))) for c in itertools.product(*swept.values())]


def _old_fingerprint(grid, traces):
    """The fingerprint as plan() computed it from every Scenario, before plans were lazy."""
    import hashlib
    import itertools
    swept = {k: v for k, v in grid.items() if isinstance(v, (list, range))}
    fixed = {k: v for k, v in grid.items() if k not in swept}
    scenarios = [Scenario(**fixed, **dict(zip(swept, c)))
                 for c in itertools.product(*swept.values())]
    key = (importlib.import_module("toolkit._sweep").__version__, traces,
           [sc.to_dict() for sc in scenarios])
    files = sorted({sc.write_trace for sc in scenarios if sc.workload == "replay"})
    if files:
        key += (tuple(hashlib.sha256(open(f, "rb").read()).hexdigest() for f in files),)
    return hashlib.sha256(repr(key).encode()).hexdigest()


def test_fingerprints_of_existing_grids_are_unchanged(tmp_path, monkeypatch):
    from toolkit._sweep import plan
    monkeypatch.setattr(importlib.import_module("toolkit._sweep"), "__version__", "pinned")
    test_sweep_grid = dict(
        ram_size="256MiB", workload="hotcold", max_time=8.0,
        dirty_rate=["20MiB/s", "300MiB/s", "1GiB/s"], downtime_limit=[30, 300],
        link_bandwidth=["1Gbit/s", "10Gbit/s"],
        avail_switchover_bandwidth=["estimate", "0.5x link", "4x link"], seed=range(2))
    coupled = dict(host=["none", "kvm-25g", "tcg-loopback"], ram_size=["64MiB", 2**30 + 5],
                   avail_switchover_bandwidth=["link", "2x link"],
                   zipf_exponent=[0.5, 1.2345678], workload="zipf", check=[False, True])
    # computed by the eager plan() of commit 5d9b9b3, again when the Scenario gained
    # data_ranges, dst_populate_time and socket_buffer_size and tcg-loopback was
    # recalibrated, and when it gained multifd (a point's identity then changes: a
    # sweep of the older model is not resumed into this one)
    assert plan(**test_sweep_grid).fingerprint(False) == \
        "045064fe377d22160ae38b45a651574665a3e82d522eafb1f104cf034cbc4633"
    assert plan(**coupled).fingerprint(True) == \
        "caa0c74cd93589d359433232d5dacd02c4db024bae726d5b8ef84a009952281e"
    paths = []
    for i in range(2):
        paths.append(str(tmp_path / f"t{i}.txt"))
        tk.workloads.write_write_trace(paths[-1], [0, 10], [1, 2 + i])
    replay = dict(ram_size="1MiB", workload=["replay", "uniform"], write_trace=paths,
                  dirty_rate=[1, 2], link_bandwidth=["1Gbit/s", "2Gbit/s"],
                  avail_switchover_bandwidth="link")
    for grid in (test_sweep_grid, coupled, replay):
        assert plan(**grid).fingerprint(False) == _old_fingerprint(grid, False)


# --- issue 11, items 15, 18, 19: inputs honoured or refused; the harness on SIGTERM ----------

def test_config_chunk_size_is_honoured_and_checked(tmp_path, capsys):
    from toolkit.config import ConfigError, load_config
    config = tmp_path / "c.toml"
    config.write_text('[sweep]\nchunk_size = 2\n[fixed]\nram_size = "16MiB"\nmax_time = "2s"\n'
                      '[grid]\ndirty_rate = ["1MiB/s", "50MiB/s", "200MiB/s"]\n')
    out = tmp_path / "o.nc"
    assert _cli("sweep", "--config", str(config), "--out", str(out), "--no-progress") == 0
    assert "sweep: 3 points in 2 chunks of 2" in capsys.readouterr().err
    out.unlink()
    assert _cli("sweep", "--config", str(config), "--out", str(out), "--no-progress",
                "--chunk-size", "1") == 0                     # the command line wins
    assert "sweep: 3 points in 3 chunks of 1" in capsys.readouterr().err
    config.write_text(config.read_text().replace("chunk_size = 2", "chunk_size = 0"))
    with pytest.raises(ConfigError, match=r"sweep\.chunk_size=0 is out of range"):
        load_config(config)


def test_set_on_a_swept_parameter_is_refused(tmp_path, capsys):
    config = tmp_path / "c.toml"
    config.write_text('[fixed]\nram_size = "16MiB"\n[grid]\ndirty_rate = ["1MiB/s", "2MiB/s"]\n')
    assert _cli("sweep", "--config", str(config), "--out", str(tmp_path / "o.nc"),
                "--set", "dirty-rate=5MiB/s") == 2
    err = capsys.readouterr().err
    assert "--set dirty_rate: dirty_rate is swept by" in err and "c.toml" in err
    assert not list(tmp_path.glob("o.nc*"))


@pytest.mark.parametrize("values, first, second", [
    (["link", "1x link"], "'link'", "'1x link'"),
    (["estimate", 0], "'estimate'", "0"),
    (["0x link", "estimate"], "'0x link'", "'estimate'"),
    (["10Gbit/s", 1.25e9], "'10Gbit/s'", "1250000000.0"),
])
def test_two_spellings_of_one_avail_point_are_refused(values, first, second):
    with pytest.raises(ValueError, match=rf"avail_switchover_bandwidth: swept values {first} "
                                         rf"and {second} are the same point"):
        tk.sweep(ram_size="16MiB", avail_switchover_bandwidth=values)
    from toolkit._sweep import plan
    assert plan(avail_switchover_bandwidth=["estimate", "0.5x link", "link", "4x link",
                                            "1Gbit/s"]).shape == (5,)


def test_an_empty_config_is_refused_naming_the_file(tmp_path, capsys):
    from toolkit.config import ConfigError, load_config
    empty = tmp_path / "empty.toml"
    empty.write_text("# nothing yet\n")
    with pytest.raises(ConfigError, match=r"empty\.toml: empty: expected scenario parameters"):
        load_config(empty)
    titled = tmp_path / "titled.toml"
    titled.write_text('title = "x"\n[sweep]\ntraces = true\n[grid]\n')
    with pytest.raises(ConfigError, match=r"titled\.toml: sets no parameter"):
        load_config(titled)
    assert _cli("sweep", "--config", str(empty), "--out", str(tmp_path / "o.nc")) == 2
    assert "empty.toml" in capsys.readouterr().err


def test_zipf_exponent_below_a_millionth_is_refused_not_zeroed():
    with pytest.raises(ValueError, match=r"zipf_exponent=1e-07 is out of range: expected a "
                                         r"number in \[1e-06, 10\]"):
        Scenario(workload="zipf", zipf_exponent=1e-7)
    assert Scenario(workload="zipf", zipf_exponent=1e-6).zipf_exponent == 1e-6


def _fake_harness(monkeypatch, migrate):
    """run_migration with the QEMU probe, the guest build and _migrate replaced."""
    from pathlib import Path

    from toolkit.qemu import harness
    monkeypatch.setattr(harness, "_probe_version", lambda qemu: ((10, 0, 0), ""))
    monkeypatch.setattr(harness.guest, "build_guest", lambda cache: None)
    monkeypatch.setattr(harness.guest, "guest_image", lambda *a, **k: Path("guest.img"))
    monkeypatch.setattr(harness, "_migrate", migrate)
    return harness


def test_sigterm_during_a_migration_cleans_up_then_goes_to_the_previous_handler(
        monkeypatch, tmp_path):
    import signal
    import subprocess
    seen = {}

    def migrate(run, *args, **kwargs):
        seen["workdir"] = run.workdir
        seen["handler"] = signal.getsignal(signal.SIGTERM)
        (run.workdir / "src-qemu.log").write_text("fake QEMU\n")
        run.procs["src"] = subprocess.Popen(["sleep", "30"], start_new_session=True)
        os.kill(os.getpid(), signal.SIGTERM)
        raise AssertionError("SIGTERM did not stop the run")

    harness = _fake_harness(monkeypatch, migrate)
    calls = []
    previous = signal.signal(signal.SIGTERM, lambda *a: calls.append(a[0]))
    try:
        mine = signal.getsignal(signal.SIGTERM)
        with pytest.raises(RuntimeError, match="stopped by SIGTERM"):
            harness.run_migration(output_dir=tmp_path / "kept")
        assert signal.getsignal(signal.SIGTERM) is mine and calls == [signal.SIGTERM]
    finally:
        signal.signal(signal.SIGTERM, previous)
    assert seen["handler"] is not mine and not seen["workdir"].exists()
    assert (tmp_path / "kept" / "src-qemu.log").read_text() == "fake QEMU\n"


def test_sigterm_to_a_harness_process_ends_it_by_sigterm_after_cleanup(tmp_path):
    import pathlib
    import signal
    import subprocess
    code = f"""
import subprocess, sys, time
from pathlib import Path
sys.path.insert(0, {str(pathlib.Path(__file__).resolve().parent.parent)!r})
from toolkit.qemu import harness
harness._probe_version = lambda qemu: ((10, 0, 0), "")
harness.guest.build_guest = lambda cache: None
harness.guest.guest_image = lambda *a, **k: Path("guest.img")
def migrate(run, *args, **kwargs):
    run.procs["src"] = subprocess.Popen(["sleep", "30"], start_new_session=True)
    print(run.workdir, run.procs["src"].pid, flush=True)
    time.sleep(30)
harness._migrate = migrate
harness.run_migration()
"""
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    workdir, pid = proc.stdout.readline().split()
    assert os.path.isdir(workdir)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=30) == -signal.SIGTERM
    assert not os.path.exists(workdir)
    with pytest.raises(ProcessLookupError):
        os.kill(int(pid), 0)


def test_a_binary_that_is_no_qemu_is_named_with_what_it_did(tmp_path):
    from toolkit.qemu import harness
    with pytest.raises(RuntimeError, match=r"/bin/false exists but .*'/bin/false --version' "
                                           r"exited with status 1"):
        harness.run_migration(qemu="/bin/false")
    silent = tmp_path / "silent"
    silent.write_text("#!/bin/sh\nexit 3\n")
    silent.chmod(0o755)
    with pytest.raises(RuntimeError, match=r"silent --version' exited with status 3 and "
                                           r"printed nothing"):
        harness.run_migration(qemu=str(silent))
    with pytest.raises(RuntimeError, match=r"no-such-qemu not found"):
        harness.run_migration(qemu="no-such-qemu")


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
    from toolkit import encode, policies
    sim = sys.modules["toolkit._simulate"]
    from toolkit.kernels.precopy import migration_thread
    sc = Scenario(**{"ram_size": "4MiB", "link_bandwidth": "50Mbit/s", "max_bandwidth": 0,
                     "max_time": 4.0, "downtime_limit": 20, **SLICED[case]})
    p, streams = encode.kernel_inputs(sc)
    n_words, versions = (sc.n_pages + 63) // 64, sc.n_pages if sc.check else 0
    st = np.zeros(L.N_STATE, np.int64)
    trace = np.full((int(sc.max_time * 10) + 2, L.N_TRACE), np.nan)
    migration_thread(p, streams, st, encode.stream_seeds(sc),
                     np.zeros(n_words, np.uint64), np.zeros(n_words, np.uint64),
                     encode.encode(sc).content, np.zeros(versions, np.int32),
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
    sim = sys.modules["toolkit._simulate"]
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
    import signal
    import time
    config = tmp_path / "long.toml"
    config.write_text('[fixed]\nram_size = "256MiB"\nworkload = "hotcold"\n'
                      'max_time = "3000s"\n[grid]\n'
                      'dirty_rate = ["1MiB/s", "2MiB/s", "1GiB/s", "3MiB/s", "1.5GiB/s", '
                      '"4MiB/s"]\n')
    out = tmp_path / "long.nc"
    cmd, env = sweep_command(config, out, chunk_size=1, workers=2)
    proc = start_sweep(cmd, env)
    partial = wait_for_chunks(out, 2)
    time.sleep(0.3)                  # chunk 2 (about 2 s) and chunk 3 or 4 are running
    proc.send_signal(signal.SIGINT)
    sent = time.monotonic()
    proc.communicate(timeout=60)
    assert proc.returncode == 130 and time.monotonic() - sent < 2.0
    done = len(list(partial.glob("chunk-*.npz")))
    assert 2 <= done < 6 and not out.exists()
    assert_resume_finishes(cmd, env, config, out, done, total=6)


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


def test_a_page_beyond_ram_names_the_trace_line(tmp_path):
    path = tmp_path / "t.txt"
    path.write_text("# time_us page\n0 1\n\n10 2\n20 3\n30 999999999\n")
    with pytest.raises(ValueError, match=r"t\.txt: line 6: page 999999999 is beyond the 16384"):
        Scenario(ram_size="64MiB", workload="replay", write_trace=str(path))
    npz = tmp_path / "t.npz"
    np.savez(npz, time_us=np.arange(4), page=np.array([1, 2, 3, 99999999]))
    with pytest.raises(ValueError, match=r"t\.npz: entry #3: page 99999999"):
        Scenario(ram_size="64MiB", workload="replay", write_trace=str(npz))


def test_kill_9_during_the_final_write_leaves_no_file_and_the_next_write_no_leftover(tmp_path):
    import signal
    import subprocess
    import time
    import xarray as xr
    out = tmp_path / "big.nc"
    writer = subprocess.Popen([sys.executable, "-c",
                               "import numpy as np, xarray as xr, toolkit as tk; "
                               "tk.save(xr.Dataset({'a': ('x', np.random.default_rng(0)"
                               f".random(40_000_000))}}), {str(out)!r})"])
    deadline = time.monotonic() + 60
    while not list(tmp_path.glob(".big.nc.tmp-*")) and writer.poll() is None:
        assert time.monotonic() < deadline, "the writer never started its temporary file"
        time.sleep(0.01)
    writer.send_signal(signal.SIGKILL)
    writer.wait()
    assert not out.exists()                     # nothing half-written at the output path
    tk.save(xr.Dataset({"a": ("x", np.arange(3.0))}), out)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["big.nc"]
    assert list(tk.open_dataset(out).a.values) == [0.0, 1.0, 2.0]


def test_a_checkpoint_of_another_kernel_state_layout_is_not_resumed(tmp_path, monkeypatch):
    from toolkit.kernels import layout
    grid = dict(ram_size="16MiB", dirty_rate=["1MiB/s", "50MiB/s"], max_time=2.0)
    tk.sweep(**grid, checkpoint=tmp_path / "ck", workers=1)
    assert (tmp_path / "ck").exists()              # the finished chunks stay until cleared
    monkeypatch.setattr(layout.Table, "digest", lambda self: "another-layout")
    with pytest.raises(ValueError, match="another sweep"):
        tk.sweep(**grid, checkpoint=tmp_path / "ck", workers=1)
