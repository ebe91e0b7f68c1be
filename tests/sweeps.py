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
