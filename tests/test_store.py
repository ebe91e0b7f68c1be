"""Saving and loading results: round trips, atomic writes, shipped datasets, checkpoints."""
import pathlib
import re
import sys
from concurrent.futures import ProcessPoolExecutor

import h5py
import numpy as np
import pytest
import xarray as xr

import toolkit as tk
from toolkit import store
from toolkit.store import ChunkStore

STAMP = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ"


@pytest.fixture(scope="module")
def results():
    ds = tk.simulate(ram_size="64MiB", dirty_rate="10MiB/s", max_time=5.0)
    ds = ds.expand_dims(estimate=["estimate", "link", "2x link"])
    ds["estimate"].attrs = {"units": "1", "long_name": "bandwidth estimate"}
    ds.attrs.update(size_max=2**64 - 1, flag=True, nothing=None, huge=2**70)
    ds["bandwidth"].attrs["flag"] = False
    return ds


@pytest.mark.parametrize("suffix", [".nc", ".zarr"])
def test_round_trip(results, tmp_path, suffix):
    before = dict(results.attrs)
    path = store.save(results, tmp_path / f"run{suffix}")
    assert path == tmp_path / f"run{suffix}" and [p.name for p in tmp_path.iterdir()] == [path.name]
    back = store.open_dataset(path)
    xr.testing.assert_equal(back, results)           # values, dims, coords
    assert back.converged.dtype == bool
    assert list(back.estimate.values) == ["estimate", "link", "2x link"]
    for name, var in results.variables.items():
        for key in ("units", "long_name"):
            assert back[name].attrs[key] == var.attrs[key], (name, key)
    assert back.bandwidth.attrs["flag"] == 0
    for key in ("title", "source", "Conventions", "ram_size", "dirty_rate", "workload"):
        assert back.attrs[key] == results.attrs[key]
    assert int(back.attrs["size_max"]) == 2**64 - 1  # exactly, not rounded through float
    assert back.attrs["flag"] == 1 and "nothing" not in back.attrs
    assert back.attrs["huge"] == str(2**70)
    old, new = back.attrs["history"].split("\n")
    assert old == results.attrs["history"]
    assert re.fullmatch(rf"{STAMP} saved to run{suffix} by switchover-lab {tk.__version__}", new)
    assert results.attrs == before and results.bandwidth.attrs["flag"] is False  # caller's intact


def test_cf_defaults_and_compression(tmp_path):
    ds = xr.Dataset({"x": ("i", np.arange(100.0)), "label": ("i", ["a"] * 100),
                     "n": ((), 3)})
    back = store.open_dataset(store.save(ds, tmp_path / "bare.nc"))
    assert back.attrs["Conventions"] == "CF-1.10"
    assert back.attrs["title"] == "Switchover Lab results"
    assert back.attrs["source"] == f"switchover-lab {tk.__version__}"
    assert re.fullmatch(rf"{STAMP} saved to bare.nc by switchover-lab \S+", back.attrs["history"])
    with h5py.File(tmp_path / "bare.nc") as f:
        assert f["x"].compression == "gzip" and f["x"].compression_opts == 4
        assert f["label"].compression is None


def _failing_writer(path, *args, **kwargs):
    """Stands in for to_netcdf/to_zarr: leaves a partial output behind, then dies."""
    path = pathlib.Path(path)
    if kwargs.get("engine") == "h5netcdf":
        path.write_bytes(b"\x89HDF partial")
    else:
        path.mkdir()
        (path / "zarr.json").write_text("{")
    raise OSError("disk full")


@pytest.mark.parametrize("suffix, method", [(".nc", "to_netcdf"), (".zarr", "to_zarr")])
def test_save_is_atomic(results, tmp_path, monkeypatch, suffix, method):
    target = tmp_path / f"run{suffix}"
    monkeypatch.setattr(xr.Dataset, method, lambda self, path, *a, **k:
                        _failing_writer(path, *a, **k))
    with pytest.raises(OSError, match="disk full"):
        store.save(results, target)
    assert list(tmp_path.iterdir()) == []            # no target, no temporary
    monkeypatch.undo()
    store.save(results, target)
    monkeypatch.setattr(xr.Dataset, method, lambda self, path, *a, **k:
                        _failing_writer(path, *a, **k))
    with pytest.raises(OSError, match="disk full"):
        store.save(results.isel(window=slice(1)), target)
    assert [p.name for p in tmp_path.iterdir()] == [target.name]
    monkeypatch.undo()
    xr.testing.assert_equal(store.open_dataset(target), results)  # old one untouched


@pytest.mark.parametrize("suffix", [".nc", ".zarr"])
def test_overwrite(results, tmp_path, suffix):
    target = store.save(results, tmp_path / f"run{suffix}")
    with pytest.raises(FileExistsError, match="run"):
        store.save(results, target, overwrite=False)
    store.save(results.isel(window=slice(1)), target)
    assert store.open_dataset(target).sizes["window"] == 1
    assert [p.name for p in tmp_path.iterdir()] == [target.name]  # old copy deleted


def test_bad_suffix_and_missing_zarr(results, tmp_path, monkeypatch):
    with pytest.raises(ValueError, match=r"results\.csv.*\.nc.*\.zarr"):
        store.save(results, tmp_path / "results.csv")
    monkeypatch.setitem(sys.modules, "zarr", None)   # import zarr now fails
    with pytest.raises(ImportError, match=re.escape(
            "Zarr output needs the optional extra: pip install 'switchover-lab[parallel]'")):
        store.save(results, tmp_path / "run.zarr")
    assert list(tmp_path.iterdir()) == []


def test_open_shipped_dataset(results, tmp_path, monkeypatch):
    shipped = tmp_path / "datasets"
    monkeypatch.setattr(store, "DATASETS_DIR", shipped)
    store.save(results, shipped / "demo.nc")
    monkeypatch.chdir(tmp_path)                      # "demo" must not resolve as a local path
    xr.testing.assert_equal(store.open_dataset("demo"), results)
    xr.testing.assert_equal(store.open_dataset("demo.nc"), results)
    with pytest.raises(FileNotFoundError, match=r"'nope'.*demo\.nc"):
        store.open_dataset("nope")


def test_chunk_store(tmp_path):
    cs = ChunkStore(tmp_path / "ckpt", "sweep-a")
    assert cs.done() == set()
    cs.write(3, {"downtime": np.array([1.5, np.nan]), "converged": np.array([True, False])})
    cs.write(0, {"downtime": np.zeros(2), "converged": np.ones(2, bool)})
    (tmp_path / "ckpt" / ".chunk-000007.npz.tmp-dead").write_bytes(b"killed mid-write")
    again = ChunkStore(tmp_path / "ckpt", "sweep-a")  # resume: same fingerprint
    assert again.done() == {0, 3}
    chunk = again.read(3)
    np.testing.assert_array_equal(chunk["downtime"], [1.5, np.nan])
    assert chunk["converged"].dtype == bool and list(chunk["converged"]) == [True, False]
    with pytest.raises(ValueError, match=r"another sweep.*ckpt|ckpt.*another sweep"):
        ChunkStore(tmp_path / "ckpt", "sweep-b")
    again.clear()
    assert not (tmp_path / "ckpt").exists() and again.done() == set()


def test_chunk_store_refuses_foreign_directory(tmp_path):
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(ValueError, match="not a sweep checkpoint"):
        ChunkStore(tmp_path, "sweep-a")


def _write_chunks(directory, ids):
    cs = ChunkStore(directory, "sweep-a")            # workers open the store at once
    for i in ids:
        cs.write(i, {"value": np.full(1000, i)})
    return list(ids)


def test_chunk_store_concurrent_writers(tmp_path):
    directory = tmp_path / "ckpt"
    with ProcessPoolExecutor(2) as pool:
        list(pool.map(_write_chunks, [directory] * 2, [range(0, 40, 2), range(1, 40, 2)]))
    cs = ChunkStore(directory, "sweep-a")
    assert cs.done() == set(range(40))
    assert all(cs.read(i)["value"][0] == i for i in range(40))
    assert not [p.name for p in directory.iterdir() if p.name.startswith(".")]  # no temps


def _figure():
    import matplotlib
    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    fig = Figure(figsize=(2, 1))
    fig.add_subplot().plot([0, 1], [1, 0])
    return fig


def test_save_figure_writes_atomically(tmp_path):
    fig = _figure()
    path = tk.save_figure(fig, tmp_path / "maps" / "m.png")
    assert path == tmp_path / "maps" / "m.png"
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert tk.save_figure(fig, tmp_path / "m.svg").read_text().lstrip().startswith("<?xml")
    with pytest.raises(FileExistsError, match="m.png exists"):
        tk.save_figure(fig, path, overwrite=False)
    with pytest.raises(ValueError, match=r"m\.txt: expected a path ending in one of .*\.png"):
        tk.save_figure(fig, tmp_path / "m.txt")
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["m.png", "m.svg", "maps"]


def test_a_figure_that_fails_to_render_leaves_the_old_file(tmp_path, monkeypatch):
    fig = _figure()
    path = tk.save_figure(fig, tmp_path / "m.png")
    before = path.read_bytes()

    def broken(target, **kwargs):
        pathlib.Path(target).write_bytes(b"\x89PNG half")
        raise RuntimeError("renderer died")

    monkeypatch.setattr(fig, "savefig", broken)
    with pytest.raises(RuntimeError, match="renderer died"):
        tk.save_figure(fig, path)
    assert path.read_bytes() == before and [p.name for p in tmp_path.iterdir()] == ["m.png"]
