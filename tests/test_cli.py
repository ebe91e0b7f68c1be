import toolkit as tk
from toolkit.cli import AVAIL_SETTINGS, main


def test_default_run_prints_a_verdict_table(capsys):
    assert main([]) == 0
    out = capsys.readouterr().out
    lines = out.strip().splitlines()
    assert len(lines) == 3 + len(AVAIL_SETTINGS)
    assert "never converges" in out and "converges" in out and "OVERSHOOTS" in out


def test_set_changes_the_scenario(capsys):
    assert main(["run", "--set", "dirty_rate=0", "--set", "ram_size=512MiB"]) == 0
    out = capsys.readouterr().out
    assert "512 MiB guest" in out and "never" not in out


def test_bad_input_exits_2_with_the_parameter_named(capsys):
    assert main(["run", "--set", "downtime_limit=-4"]) == 2
    assert "downtime_limit" in capsys.readouterr().err
    assert main(["run", "--set", "nonsense=1"]) == 2
    assert "nonsense" in capsys.readouterr().err


def test_warmup_reports_seconds(capsys):
    assert tk.warmup() >= 0
    assert "kernels ready" in capsys.readouterr().out
