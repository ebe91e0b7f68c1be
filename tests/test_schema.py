"""Every variable and coordinate carries units and long_name; parameters in attrs."""
import numpy as np
import pytest

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
    prefixes = [t.prefix for t in (*L.TABLES.values(), *L.RECORDS.values())]
    assert len(set(prefixes)) == len(prefixes)
    for table in (*L.TABLES.values(), *L.RECORDS.values()):
        names = [f.name for f in table.fields]
        assert len(set(names)) == len(names), table.prefix
        slots = table.slots()
        expected = 0
        tails = [f for f in table.fields if f.length == 0]
        assert table.fields[len(table.fields) - len(tails):] == tuple(tails)   # tails go last
        for f in table.fields:
            assert getattr(L, table.prefix + f.name) == slots[f.name] == expected, f.name
            assert f.length in (0, 1, L.N_STREAMS), f.name
            assert (f.length == 0) == (f.record is not None), f.name   # a tail has records
            assert f.units and f.long_name, f.name
            expected += f.length
        assert table.size == expected
    for record in L.RECORDS.values():
        assert getattr(L, record.prefix + "SIZE") == record.size > 0
        assert all(f.length for f in record.fields)                    # no tail in a record
    assert (L.N_PARAMS, L.N_STATE, L.N_TRACE) == (L.PARAMS.size, L.STATE.size, L.TRACE.size)
    assert L.S_LOG + L.N_STREAMS == L.S_SYNC_WRITES                    # per-stream blocks


def test_every_kernel_array_has_a_field_table():
    """The arrays migration_thread takes are the tables' and the bare bitsets."""
    import inspect

    from toolkit.kernels import layout as L
    from toolkit.kernels.precopy import migration_thread
    bitsets = {"dirty_log", "bitmap", "content", "src_version", "dst_version"}
    tables = {"p": "params", "st": "state", "trace": "trace", "pol": "policy",
              "streams": "streams", "rng": "seeds"}
    args = set(inspect.signature(migration_thread.py_func).parameters)
    assert args == bitsets | set(tables)
    assert set(tables.values()) == set(L.TABLES)


def test_write_streams_follow_their_field_table(tmp_path):
    """The encoder writes each record where the table puts it: a phase's rates and a
    replayed write's page land in their named slots."""
    from toolkit.encode import stream_seeds, write_streams
    from toolkit.kernels import layout as L
    from toolkit.workloads import write_write_trace
    sc = tk.Scenario(ram_size="64MiB", workload="hotcold", dirty_rate="40MiB/s",
                     hot_fraction=0.1)
    g = write_streams(sc)
    rate = 40 * 2**20 / 4096 / 1e12
    assert g.shape == (L.STREAMS.size,)
    assert g[L.G_RATE] + g[L.G_RATE + 1] == pytest.approx(rate)
    assert g[L.G_RATE] == pytest.approx(rate * sc.hot_share)
    assert list(stream_seeds(sc)[L.R_STATE: L.R_STATE + L.N_STREAMS]) == list(sc.stream_seeds)
    sc = tk.Scenario(ram_size="64MiB", workload="phases",
                     phases="uniform:8MiB/s:2s,sequential:4MiB/s:500ms", write_range="1MiB")
    g = write_streams(sc)
    assert g.shape == (L.G_PHASES + 2 * L.GP_SIZE,) and not g[L.G_RATE: L.G_PHASES].any()
    second = L.G_PHASES + L.GP_SIZE
    assert g[second + L.GP_DURATION] == 500_000                                     # [us]
    assert g[second + L.GP_WORKLOAD] == L.SEQUENTIAL
    assert g[second + L.GP_RATE] == pytest.approx(4 * 2**20 / 4096 / 1e12)
    assert g[second + L.GP_RATE + 1] == 0
    path = str(tmp_path / "w.csv")
    write_write_trace(path, np.array([5, 9, 20]), np.array([7, 3, 11]))
    sc = tk.Scenario(ram_size="64MiB", workload="replay", write_trace=path)
    g = write_streams(sc)
    assert g.shape == (L.G_REPLAY + 3 * L.GR_SIZE,)
    assert [g[L.G_REPLAY + L.GR_SIZE * k + L.GR_PAGE] for k in range(3)] == [7, 3, 11]
    assert [g[L.G_REPLAY + L.GR_SIZE * k + L.GR_TIME] for k in range(3)] == [5, 9, 20]


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
