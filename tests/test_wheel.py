"""A wheel built from the repository works outside the checkout: the main job
runs, and the shipped datasets open by name."""
import os
import pathlib
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_a_wheel_installed_outside_the_checkout_runs_the_main_job(tmp_path):
    wheels, site, work = tmp_path / "wheels", tmp_path / "site", tmp_path / "work"
    work.mkdir()
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q"]
    subprocess.run([*pip, "wheel", "--no-deps", "-w", str(wheels), str(ROOT)], check=True,
                   cwd=tmp_path)
    (wheel,) = wheels.glob("switchover_lab-*.whl")
    subprocess.run([*pip, "install", "--no-deps", "--target", str(site), str(wheel)],
                   check=True)
    # the dependencies come from this interpreter; toolkit from the wheel, not the checkout
    env = {**os.environ, "PYTHONPATH": str(site)}
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
