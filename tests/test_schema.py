"""Every variable and coordinate carries units and long_name; parameters in attrs."""
import numpy as np

import toolkit as tk
from toolkit import PARAMETERS
from toolkit.schema import SCALARS, TRACE


def test_schema_units_and_names():
    ds = tk.simulate(ram_size="256MiB", dirty_rate="50MiB/s", max_bandwidth="100MiB/s")
    assert set(SCALARS) | set(TRACE) == set(ds.data_vars)
    for name, var in {**ds.data_vars, **ds.coords}.items():
        assert var.attrs.get("units"), name
        assert var.attrs.get("long_name"), name
    for name in SCALARS:
        assert ds[name].dims == ()
    for name in TRACE:
        assert ds[name].dims == ("window",)
    assert ds.time.attrs["units"] == "ms" and np.all(np.diff(ds.time.values) >= 100)
    for spec in PARAMETERS:
        assert spec.name in ds.attrs
        assert spec.name + ":" in ds.attrs["parameter_units"]
    assert ds.attrs["max_bandwidth"] == 100 * 2**20
    assert ds.attrs["source"].startswith("switchover-lab ")


def test_query_migrate_shapes():
    ds = tk.simulate(ram_size="256MiB", dirty_rate="50MiB/s")
    assert ds.converged.dtype == bool
    assert ds.total_time.item() > ds.setup_time.item() > 0
    assert 0 < ds.downtime.item() < ds.total_time.item()
    assert ds.transferred.item() >= (int(ds.normal_pages) * 4104)
    assert ds.mbps.item() > 0
    ds.threshold.plot()   # the per-window trace plots as is
