"""A wheel built from the repository works outside the checkout: the main job runs
(as ``python -m toolkit`` and as the ``switchover-lab`` and ``toolkit`` scripts),
the shipped datasets open by name, a shipped config regenerates its dataset, and the
metadata says the version and the SPDX license."""
import email
import os
import pathlib
import subprocess
import sys
import zipfile

import pytest

import toolkit

ROOT = pathlib.Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """(wheel, site, env, work): the wheel installed in ``site``, outside the checkout."""
    tmp = tmp_path_factory.mktemp("wheel")
    wheels, site, work = tmp / "wheels", tmp / "site", tmp / "work"
    work.mkdir()
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check"]
    build = subprocess.run([*pip, "wheel", "-v", "--no-deps", "-w", str(wheels), str(ROOT)],
                           cwd=tmp, capture_output=True, text=True)
    assert build.returncode == 0, build.stdout[-3000:] + build.stderr[-3000:]
    # setuptools says "`project.license` as a TOML table is deprecated" and the like
    said = [line for line in (build.stdout + build.stderr).splitlines()
            if "deprecat" in line.lower()]
    assert not said, "\n".join(said)
    (wheel,) = wheels.glob("switchover_lab-*.whl")
    subprocess.run([*pip, "install", "-q", "--no-deps", "--target", str(site), str(wheel)],
                   check=True)
    # the dependencies come from this interpreter; toolkit from the wheel, not the checkout
    env = {**os.environ, "PYTHONPATH": str(site), "CI": "1"}
    return wheel, site, env, work


@pytest.mark.slow
def test_the_wheel_carries_datasets_configs_and_metadata(installed):
    wheel, *_ = installed
    with zipfile.ZipFile(wheel) as z:
        names = set(z.namelist())
        (meta,) = [n for n in names if n.endswith(".dist-info/METADATA")]
        metadata = email.message_from_bytes(z.read(meta))
    for shipped in ("rescue-default.nc", "rescue-default.png", "convergence-small.nc",
                    "story-traces.nc", "qemu-validation.nc", "README.md",
                    "configs/convergence-small.toml", "configs/story-traces.toml"):
        assert f"toolkit/_datasets/{shipped}" in names, shipped
    runs = [n for n in names if n.startswith("toolkit/_datasets/qemu-validation/runs/")]
    assert len(runs) == len(list((ROOT / "datasets/qemu-validation/runs").glob("*/*")))
    assert "toolkit/configs/rescue-default.toml" in names
    assert metadata["Version"] == toolkit.__version__
    assert metadata["License-Expression"] == "MIT"
    assert any(n.endswith(".dist-info/licenses/LICENSE") for n in names)


@pytest.mark.slow
def test_a_wheel_installed_outside_the_checkout_runs_the_main_job(installed):
    _, site, env, work = installed
    probe = ("import toolkit, pathlib; p = pathlib.Path(toolkit.__file__).resolve(); "
             f"assert p.is_relative_to({str(site.resolve())!r}), p; "
             "ds = toolkit.open_dataset('rescue-default'); print(ds.sizes['dirty_rate'])")
    out = subprocess.run([sys.executable, "-c", probe], env=env, cwd=work, check=True,
                         capture_output=True, text=True).stdout
    assert out.strip() == "12"
    job = subprocess.run([sys.executable, "-m", "toolkit", "--no-progress"], env=env, cwd=work,
                         capture_output=True, text=True)
    assert job.returncode == 0, job.stderr
    assert (work / "out" / "rescue-default.nc").exists() and "rescued" in job.stdout


@pytest.mark.slow
@pytest.mark.parametrize("script", ["switchover-lab", "toolkit"])
def test_the_console_scripts_run(installed, script):
    _, site, env, work = installed
    path = site / "bin" / script
    version = subprocess.run([sys.executable, str(path), "--version"], env=env, cwd=work,
                             capture_output=True, text=True)
    assert version.returncode == 0 and toolkit.__version__ in version.stdout, version.stderr
    info = subprocess.run([sys.executable, str(path), "info"], env=env, cwd=work,
                          capture_output=True, text=True)
    assert info.returncode == 0, info.stderr
    assert str(site) in info.stdout and "rescue-default.nc" in info.stdout


@pytest.mark.slow
def test_a_shipped_config_regenerates_its_dataset_outside_the_checkout(installed):
    _, site, env, work = installed
    config = site / "toolkit" / "_datasets" / "configs" / "convergence-small.toml"
    out = work / "conv.nc"
    done = subprocess.run([sys.executable, "-m", "toolkit", "sweep", "--config", str(config),
                           "--out", str(out), "--no-progress", "--no-map"], env=env, cwd=work,
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    check = ("import numpy as np, toolkit; a = toolkit.open_dataset(%r); "
             "b = toolkit.open_dataset('convergence-small'); "
             "np.testing.assert_array_equal(a.converged.values, b.converged.values); "
             "np.testing.assert_array_equal(a.total_time.values, b.total_time.values)") % str(out)
    subprocess.run([sys.executable, "-c", check], env=env, cwd=work, check=True)


@pytest.mark.slow
def test_the_wheel_installs_with_its_dependencies_in_a_fresh_venv(installed, tmp_path):
    # the metadata's dependencies are enough: a venv with nothing else, pip resolving them
    wheel, _, _, work = installed
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    py = venv / "bin" / "python"
    done = subprocess.run([str(py), "-m", "pip", "install", "-q", "--disable-pip-version-check",
                           str(wheel)], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    code = ("import toolkit; print(toolkit.__file__); "
            "print(dict(toolkit.open_dataset('rescue-default').sizes))")
    out = subprocess.run([str(py), "-c", code], cwd=work, env=env, capture_output=True,
                         text=True, check=True).stdout
    assert str(venv) in out.splitlines()[0] and "'dirty_rate': 12" in out
    info = subprocess.run([str(venv / "bin" / "switchover-lab"), "info", "rescue-default"],
                          cwd=work, env=env, capture_output=True, text=True)
    assert info.returncode == 0 and "rescue classes per setting" in info.stdout, info.stderr
