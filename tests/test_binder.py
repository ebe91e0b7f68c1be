"""Binder works: a fresh virtual environment built from binder/ alone runs every notebook.

repo2docker reads only binder/: it installs binder/requirements.txt into an
environment that already has Jupyter (ipykernel, nbclient), then runs
binder/postBuild. This test does the same in a new venv, offline-friendly (pip
uses its cache), and executes the notebooks with that environment's kernel.
"""
import os
import pathlib
import shutil
import subprocess
import sys
import venv

import pytest

ROOT = pathlib.Path(__file__).parents[1]
BINDER = ROOT / "binder"
JUPYTER_BASE = ["ipykernel", "nbclient", "nbformat"]   # what repo2docker's base env provides

RUN_NOTEBOOKS = """
import pathlib, sys
import nbformat
from nbclient import NotebookClient
for path in sorted(pathlib.Path(sys.argv[1]).glob("*.ipynb")):
    nb = nbformat.read(path, as_version=4)
    NotebookClient(nb, timeout=600, kernel_name="python3",
                   resources={"metadata": {"path": str(path.parent)}}).execute()
    print("ran", path.name)
"""


def _run(cmd, env, cwd):
    done = subprocess.run(cmd, env=env, cwd=cwd, capture_output=True, text=True, timeout=1200)
    assert done.returncode == 0, f"{cmd} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done.stdout


@pytest.mark.slow
def test_binder_environment_runs_the_notebooks(tmp_path):
    assert (BINDER / "runtime.txt").read_text().strip() == \
        f"python-{sys.version_info.major}.{sys.version_info.minor}"
    repo = tmp_path / "repo"                 # a clean copy: what Binder would clone
    shutil.copytree(ROOT, repo, ignore=shutil.ignore_patterns(
        ".venv", ".git", "__pycache__", "*.egg-info", "out", ".pytest_cache", ".hypothesis",
        "test-artifacts", "*.partial"))
    env_dir = tmp_path / "env"
    venv.create(env_dir, with_pip=True)
    bin_dir = env_dir / "bin"
    env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
           "VIRTUAL_ENV": str(env_dir), "MPLBACKEND": "Agg"}
    env.pop("PYTHONPATH", None)
    pip = [str(bin_dir / "python"), "-m", "pip", "install", "--quiet"]
    _run(pip + ["-r", str(repo / "binder" / "requirements.txt")] + JUPYTER_BASE, env, repo)
    _run(["bash", str(repo / "binder" / "postBuild")], env, repo)
    out = _run([str(bin_dir / "python"), "-c", RUN_NOTEBOOKS, str(repo / "notebooks")], env, repo)
    assert out.count("ran ") == len(list((ROOT / "notebooks").glob("*.ipynb")))
