"""Helpers for tests that drive a CLI sweep in a subprocess."""
import os
import pathlib
import subprocess
import sys
import time


def sweep_command(config, out, chunk_size: int, workers: int) -> tuple[list, dict]:
    """The command line and environment of ``python -m toolkit sweep`` on ``config``."""
    cmd = [sys.executable, "-m", "toolkit", "sweep", "--config", str(config), "--out", str(out),
           "--chunk-size", str(chunk_size), "--workers", str(workers), "--no-progress",
           "--no-map"]
    return cmd, {**os.environ, "CI": "1"}


def start_sweep(cmd, env) -> subprocess.Popen:
    """Run a :func:`sweep_command` in the background."""
    return subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)


def wait_for_chunks(out, n: int, timeout: float = 120.0) -> pathlib.Path:
    """Wait until ``n`` chunks are checkpointed for ``out``; its ``.partial`` directory."""
    partial = pathlib.Path(str(out) + ".partial")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and len(list(partial.glob("chunk-*.npz"))) < n:
        time.sleep(0.02)
    return partial


def assert_resume_finishes(cmd, env, config, out, done: int, total: int) -> None:
    """``--resume`` runs the ``total - done`` chunks left, and the result equals an
    uninterrupted sweep of ``config``, variable by variable."""
    import numpy as np

    import toolkit as tk
    from toolkit.config import load_config
    resumed = subprocess.run(cmd + ["--resume"], env=env, capture_output=True, text=True)
    assert resumed.returncode == 0, resumed.stderr
    assert f"({done} of {total} chunks from the interrupted run)" in resumed.stdout
    whole = tk.sweep(**load_config(config)[0])
    got = tk.open_dataset(out)
    for name in whole.data_vars:
        np.testing.assert_array_equal(got[name].values, whole[name].values, err_msg=name)
