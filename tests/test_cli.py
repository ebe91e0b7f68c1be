"""The command line: main job, run, sweep (configs, resume), info, exit codes."""
import signal
import subprocess

import numpy as np
import pytest
import xarray as xr

import toolkit as tk
from toolkit.cli import AVAIL_SETTINGS, main
from toolkit.config import DEFAULT_CONFIG, ConfigError, load_config, parse_config

from .sweeps import assert_resume_finishes, start_sweep, sweep_command, wait_for_chunks

SMALL = """
title = "small test sweep"
[sweep]
traces = false
[fixed]
ram_size = "256MiB"
workload = "hotcold"
max_time = "10s"
[grid]
dirty_rate = { geomspace = ["50MiB/s", "1GiB/s", 4] }
downtime_limit = [50, 300]
avail_switchover_bandwidth = ["estimate", "link", "4x link"]
"""


def test_run_prints_a_verdict_table(capsys):
    assert main(["run"]) == 0
    out = capsys.readouterr().out
    assert len(out.strip().splitlines()) == 3 + len(AVAIL_SETTINGS)
    assert "never converges" in out and "converges" in out and "OVERSHOOTS" in out


def test_run_set_changes_the_scenario(capsys):
    assert main(["run", "--set", "dirty_rate=0", "--set", "ram_size=512MiB"]) == 0
    out = capsys.readouterr().out
    assert "512 MiB guest" in out and "never" not in out


def test_bad_input_exits_2_with_the_parameter_named(capsys):
    assert main(["run", "--set", "downtime_limit=-4"]) == 2
    assert "downtime_limit" in capsys.readouterr().err
    assert main(["run", "--set", "nonsense=1"]) == 2
    assert "nonsense" in capsys.readouterr().err


def test_sweep_writes_dataset_map_and_counts(tmp_path, capsys):
    config = tmp_path / "small.toml"
    config.write_text(SMALL)
    out = tmp_path / "res" / "small.nc"
    assert main(["sweep", "--config", str(config), "--out", str(out), "--no-progress"]) == 0
    text = capsys.readouterr().out
    assert "24 scenarios" in text and "lost" in text and "overshoots" in text
    assert out.exists() and out.with_suffix(".png").stat().st_size > 10_000
    assert not (tmp_path / "res" / "small.nc.partial").exists()
    ds = tk.open_dataset(out)
    assert ds.attrs["title"] == "small test sweep"
    assert ds.rescue_class.dims == ("dirty_rate", "downtime_limit", "avail_switchover_bandwidth")
    want = tk.sweep(**load_config(config)[0])
    xr.testing.assert_equal(ds[list(want.data_vars)].drop_attrs(), want.drop_attrs())


def test_default_config_is_valid():
    params, options = load_config(DEFAULT_CONFIG)
    assert list(params)[-4:] == ["dirty_rate", "downtime_limit", "link_bandwidth",
                                 "avail_switchover_bandwidth"]
    assert options["title"]


@pytest.mark.parametrize("text, key", [
    ("[grid]\ndirty_rat = [1, 2]", "grid.dirty_rat"),
    ("[grid]\ndirty_rate = 5", "grid.dirty_rate"),
    ("[grid]\ndirty_rate = { linspace = [1, 2] }", "grid.dirty_rate.linspace"),
    ("[fixed]\ndowntime_limit = [1, 2]", "fixed.downtime_limit"),
    ("[fixed]\ndowntime_limit = -5", "fixed.downtime_limit"),
    ("[grid]\ndowntime_limit = [1, -5]", "grid.downtime_limit"),
    ("[sweep]\ntraces = 'yes'", "sweep.traces"),
    ("[sweep]\nworkers = 2", "sweep.workers"),
    ("[grids]\nx = 1", "grids"),
    # the parameter the message is about, not the first one it mentions
    ("[fixed]\nlink_bandwidth = '1Gbit/s'\n[grid]\navail_switchover_bandwidth = "
     "['1e400x link', 'link']", "grid.avail_switchover_bandwidth: avail_switchover_bandwidth="),
    ("[fixed]\nram_size = '1MiB'\nworkload = 'sequential'\nwrite_range = '1MiB'\n[grid]\n"
     "write_range_start = [0, '1MiB']", "grid.write_range_start: write_range_start "),
])
def test_bad_configs_name_the_key(text, key):
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        import tomllib
        parse_config(tomllib.loads(text))


def test_bad_config_file_exits_2(tmp_path, capsys):
    bad = tmp_path / "bad.toml"
    bad.write_text("[grid]\ndirty_rate = [\n")
    assert main(["sweep", "--config", str(bad), "--out", str(tmp_path / "x.nc")]) == 2
    assert "bad.toml" in capsys.readouterr().err
    assert main(["sweep", "--config", str(tmp_path / "missing.toml")]) == 2
    assert main(["sweep", "--config", str(DEFAULT_CONFIG), "--out", "x.csv"]) == 2


def test_progress_is_off_under_ci(monkeypatch):
    from toolkit.cli import _progress, build_parser
    args = build_parser().parse_args(["sweep"])
    monkeypatch.setenv("CI", "1")
    assert not _progress(args)


def test_info(capsys, tmp_path):
    assert main(["info"]) == 0
    assert "switchover-lab" in capsys.readouterr().out
    assert main(["info", "no-such-dataset"]) == 2


def test_interrupted_sweep_resumes_without_losing_or_repeating(tmp_path):
    config = tmp_path / "slow.toml"
    config.write_text(SMALL.replace('max_time = "10s"', 'max_time = "40s"')
                      .replace("4] }", "12] }"))
    out = tmp_path / "slow.nc"
    cmd, env = sweep_command(config, out, chunk_size=2, workers=1)
    proc = start_sweep(cmd, env)
    partial = wait_for_chunks(out, 3)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    done_before = len(list(partial.glob("chunk-*.npz")))
    assert 3 <= done_before < 36 and not out.exists()
    # without --resume the checkpoint is not silently discarded
    again = subprocess.run(cmd, env=env, capture_output=True, text=True)
    assert again.returncode == 2 and "--resume" in again.stderr
    assert_resume_finishes(cmd, env, config, out, done_before, total=36)


def test_sweep_on_dask_to_zarr_matches_threads(tmp_path):
    pytest.importorskip("distributed")
    config = tmp_path / "small.toml"
    config.write_text(SMALL)
    out = tmp_path / "small.zarr"
    assert main(["sweep", "--config", str(config), "--out", str(out), "--scheduler", "dask",
                 "--workers", "2", "--no-progress", "--no-map"]) == 0
    got = tk.open_dataset(out)
    want = tk.sweep(**load_config(config)[0])
    for name in want.data_vars:
        np.testing.assert_array_equal(got[name].values, want[name].values, err_msg=name)


# --- run: any list of avail settings, formats, a Dataset out; advise ---

SMALL_RUN = ["--set", "ram_size=512MiB", "--set", "max_time=30"]


def test_run_takes_any_avail_settings_and_formats(capsys, tmp_path):
    import csv
    import io
    import json
    assert main(["run", *SMALL_RUN, "--avail", "estimate,link", "--avail", "5Gbit/s",
                 "--format", "csv"]) == 0
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert [r["setting"] for r in rows] == ["estimate", "link", "5Gbit/s"]
    assert float(rows[2]["avail_switchover_bandwidth_bytes_per_s"]) == 625e6
    assert rows[0]["verdict"] == "not_converging" and rows[0]["downtime_ms"] == ""
    # --set avail_switchover_bandwidth is honoured (it used to be ignored)
    assert main(["run", *SMALL_RUN, "--set", "avail_switchover_bandwidth=4x link",
                 "--format", "json", "--out", str(tmp_path / "run.nc")]) == 0
    captured = capsys.readouterr()
    data = json.loads(captured.out)
    assert [r["setting"] for r in data["rows"]] == ["4x link"]
    assert data["rows"][0]["verdict"] == "overshoots" and data["rows"][0]["downtime_ms"] > 300
    ds = tk.open_dataset(tmp_path / "run.nc")
    assert ds.avail_switchover_bandwidth.values.tolist() == ["4x link"]
    assert bool(ds.converged.item()) and "wrote" in captured.err
    assert not list(tmp_path.glob(".*"))            # written atomically: no leftovers
    # the same numbers as one simulate
    one = tk.simulate(ram_size="512MiB", workload="sequential", write_range="128MiB",
                      dirty_rate="1GiB/s", max_time=30, avail_switchover_bandwidth="4x link")
    assert data["rows"][0]["total_time_s"] == pytest.approx(one.total_time.item() / 1000)


@pytest.mark.parametrize("argv, words", [
    (["run", "--set", "dirty_rat=1GiB/s"], ["dirty_rat", "did you mean 'dirty_rate'?"]),
    (["run", "--avail", "3x lnk"], ["--avail '3x lnk'", "cannot read '3x lnk' as a rate"]),
    (["run", "--avail", "link", "--set", "avail_switchover_bandwidth=link"], ["both given"]),
    (["run", "--avail", "link,link"], ["given twice"]),
    (["run", "--out", "x.csv"], ["--out x.csv", ".nc or .zarr"]),
    (["advise", "--ram-size", "16GiB", "--dirty-rate", "400MiB/z"],
     ["--dirty-rate '400MiB/z'", "cannot read"]),
    (["advise", "--ram-size", "16GiB", "--downtime-limit", "-3"],
     ["--downtime-limit '-3'", "[0, 2000000] ms"]),
    (["advise", "--ram-size", "1TiB0"], ["--ram-size '1TiB0'"]),
    (["advise", "--ram-size", "16GiB", "--layer", "vmware"],
     ["--layer 'vmware'", "qemu, libvirt, proxmox, nova, kubevirt, ovirt"]),
    (["advise", "--ram-size", "16GiB", "--headroom", "x"], ["--headroom 'x'"]),
    (["advise", "--ram-size", "16GiB", "--headroom", "3,1"], ["headroom=(3.0, 1.0)"]),
    (["advise", "--dirty-rate", "1GiB/s"], ["--ram-size is required"]),
    (["advise", "--ram-size", "16GiB", "--seeds", "0"], ["--seeds: seeds=0 is out of range"]),
    (["advise", "--ram-size", "16GiB", "--plot", "out.txt"], ["--plot out.txt"]),
])
def test_bad_run_and_advise_input_exits_2_naming_the_option(argv, words, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err
    for word in words:
        assert word in err, err


ADVISE = ["advise", "--ram-size", "512MiB", "--dirty-rate", "1GiB/s", "--link-bandwidth",
          "10Gbit/s", "--downtime-limit", "300", "--set", "workload=sequential",
          "--set", "write_range=128MiB", "--seeds", "1", "--headroom", "1,2"]


def test_advise_prints_a_table_json_and_a_figure(capsys, tmp_path):
    import json
    assert main(ADVISE + ["--plot", str(tmp_path / "fig" / "advice.png")]) == 0
    captured = capsys.readouterr()
    assert "QEMU's estimate (avail 0): never converges" in captured.out
    assert "safe avail-switchover-bandwidth:" in captured.out
    assert (tmp_path / "fig" / "advice.png").stat().st_size > 10_000
    assert main(ADVISE + ["--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    direct = tk.advise(ram_size="512MiB", dirty_rate="1GiB/s", link_bandwidth="10Gbit/s",
                       downtime_limit=300, workload="sequential", write_range="128MiB",
                       seeds=1, headroom=(1, 2))
    assert data == json.loads(json.dumps(direct.to_dict()))
    assert data["safe"] and data["inputs"]["layer"] == "qemu"


def test_info_of_a_dataset_is_a_summary_in_units(capsys):
    assert main(["info", "rescue-default"]) == 0
    out = capsys.readouterr().out
    assert "<xarray" not in out and "B s-1" not in out and "e+0" not in out
    assert "dirty rate                  12 values: 20 MiB/s" in out
    assert "link bandwidth              3 values: 1 Gbit/s, 10 Gbit/s, 25 Gbit/s" in out
    assert "max-bandwidth 128 MiB/s" in out
    head = next(line for line in out.splitlines() if "avail-switchover-bandwidth estimate" in line)
    assert head.split()[1:] == ["estimate", "0.5x", "link", "link", "4x", "link"]
    rescued = next(line for line in out.splitlines() if line.strip().startswith("rescued"))
    assert rescued.split()[1] == "0"          # the estimate itself never rescues
