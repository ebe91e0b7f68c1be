"""Shipped datasets load with their schema, and regenerating one gives identical values."""
import pathlib

import numpy as np
import pytest

import toolkit as tk
from toolkit.cli import main

DATASETS = pathlib.Path(__file__).parents[1] / "datasets"
SHIPPED = sorted(p.stem for p in DATASETS.glob("*.nc"))


def test_datasets_readme_lists_every_file_and_its_command():
    readme = (DATASETS / "README.md").read_text()
    assert SHIPPED
    for name in SHIPPED:
        assert f"`{name}.nc`" in readme and f"datasets/{name}.nc" in readme


@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_dataset_schema(name):
    ds = tk.open_dataset(name)
    for key, var in {**ds.data_vars, **ds.coords}.items():
        assert var.attrs.get("units") and var.attrs.get("long_name"), key
    assert ds.attrs["Conventions"] == "CF-1.10" and "switchover-lab" in ds.attrs["source"]


def test_regenerating_a_shipped_dataset_gives_identical_values(tmp_path):
    out = tmp_path / "convergence-small.nc"
    assert main(["sweep", "--config", str(DATASETS / "configs" / "convergence-small.toml"),
                 "--out", str(out), "--no-progress"]) == 0
    new, old = tk.open_dataset(out), tk.open_dataset("convergence-small")
    assert set(new.data_vars) == set(old.data_vars) and new.sizes == old.sizes
    for name in list(old.data_vars) + list(old.coords):
        np.testing.assert_array_equal(new[name].values, old[name].values, err_msg=name)
        assert new[name].attrs == old[name].attrs
