"""Every variable and coordinate carries units and long_name; parameters in attrs."""
import numpy as np

import toolkit as tk
from toolkit import PARAMETERS
from toolkit.schema import SCALARS, TRACE

from toolkit._simulate import run_kernel


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


def test_field_tables_number_the_slots():
    from toolkit.kernels import layout as L
    for table in L.TABLES.values():
        names = [f.name for f in table.fields]
        assert len(set(names)) == len(names), table.prefix
        slots = table.slots()
        expected = 0
        for f in table.fields:
            assert getattr(L, table.prefix + f.name) == slots[f.name] == expected, f.name
            assert f.length in (0, 1, L.N_STREAMS), f.name
            assert f.length != 0 or f is table.fields[-1], f.name     # a tail goes last
            assert f.units and f.long_name, f.name
            expected += f.length
        assert table.size == expected
    assert (L.N_PARAMS, L.N_STATE, L.N_TRACE) == (L.PARAMS.size, L.STATE.size, L.TRACE.size)
    assert L.S_LOG + L.N_STREAMS == L.S_SYNC_WRITES                    # per-stream blocks


def test_dataset_variables_come_from_the_field_tables():
    from toolkit.kernels import layout as L
    sc = tk.Scenario(ram_size="64MiB", dirty_rate="30MiB/s", max_time=10.0)
    ds, st = tk.simulate(sc), run_kernel(sc).state
    for name, f in L.STATE.results().items():
        units = "ms" if f.units == "ps" else f.units
        assert SCALARS[name] == (units, f.long_name, f.description), name
        assert ds[name].attrs["units"] == units and ds[name].attrs["long_name"] == f.long_name
        value = st[getattr(L, "S_" + f.name)]
        if f.dtype == "bool":
            assert ds[name].dtype == bool and ds[name].item() == (value == 1), name
        elif f.units == "ps":
            assert ds[name].item() == value / 10**9 or (value < 0 and np.isnan(ds[name])), name
        else:
            assert ds[name].item() == value, name
    for name, f in L.TRACE.results().items():
        if name != "time":
            assert TRACE[name][0] == getattr(L, "W_" + f.name)
            assert ds[name].attrs["long_name"] == f.long_name
    assert ds.time.attrs == {"units": "ms", "long_name": L.TRACE.field("TIME").long_name}
