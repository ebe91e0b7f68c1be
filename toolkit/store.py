"""Read and write result datasets so that nothing on disk is ever half-written.

:func:`save` writes a Dataset to NetCDF (``.nc``) or Zarr (``.zarr``) through a
temporary sibling that is renamed into place only once complete;
:func:`save_figure` does the same for a matplotlib figure;
:func:`open_dataset` reads one back, by path or by the name of a dataset
shipped in ``datasets/``; :class:`ChunkStore` keeps the finished chunks of a
sweep so an interrupted run resumes without losing or repeating results.
"""
from __future__ import annotations

import datetime
import errno
import hashlib
import json
import os
import pathlib
import re
import secrets
import shutil
import sys

from glob import escape as glob_escape

import numpy as np
import xarray as xr

from ._version import __version__

_PACKAGED = pathlib.Path(__file__).resolve().parent / "_datasets"
#: Where shipped datasets live: the repository's ``datasets/`` directory in a
#: checkout, ``toolkit/_datasets`` in an installed wheel (``setup.py`` copies them).
DATASETS_DIR = _PACKAGED if _PACKAGED.is_dir() else \
    pathlib.Path(__file__).resolve().parents[1] / "datasets"

SUFFIXES = (".nc", ".zarr")
ZARR_MISSING = "Zarr output needs the optional extra: pip install 'switchover-lab[parallel]'"
COMPLEVEL = 4
# encoding keys that say how values are *represented* (CF), as opposed to how
# one backend laid them out on disk; the latter would be rejected by, or leak
# into, the other backend
_CF_ENCODING = {"dtype", "_FillValue", "missing_value", "scale_factor", "add_offset",
                "units", "calendar"}
_INT64 = np.iinfo(np.int64)
_CHUNK = re.compile(r"chunk-(\d{6,})\.npz")
_DIGEST = "_sha256"          # a chunk's checksum of its own arrays


def _digest(arrays: dict) -> str:
    """SHA-256 of named arrays: names, dtypes, shapes and bytes, in name order."""
    h = hashlib.sha256()
    for name in sorted(arrays):
        a = np.ascontiguousarray(arrays[name])
        h.update(f"{name}|{a.dtype.str}|{a.shape}|".encode())
        h.update(a.tobytes())
    return h.hexdigest()


def _damage(path: pathlib.Path) -> str:
    """Why a chunk file cannot be trusted, or "" if it is whole."""
    try:
        with np.load(path) as z:
            arrays = {name: z[name] for name in z.files}
    except Exception as err:      # a truncated zip, an empty file, a bad header...
        return f"{type(err).__name__}: {err}"
    stored = arrays.pop(_DIGEST, None)
    if stored is None:
        return "no checksum"
    if str(stored) != _digest(arrays):
        return "checksum mismatch"
    return ""


# ---------------------------------------------------------------- save / open

def save(ds: xr.Dataset, path, *, overwrite: bool = True) -> pathlib.Path:
    """Write ``ds`` to NetCDF or Zarr, atomically.

    Parameters
    ----------
    ds : xarray.Dataset
        Results to write; it is not modified.
    path : str or os.PathLike
        Target ending in ``.nc`` (NetCDF4 via h5netcdf, zlib level 4) or
        ``.zarr`` (a Zarr directory; needs the optional ``zarr`` package).
    overwrite : bool
        Replace an existing target; if False, raise ``FileExistsError``.

    Returns
    -------
    pathlib.Path
        The path written.
    """
    final = pathlib.Path(path).expanduser()
    kind = _kind(final)
    if kind == ".zarr":
        _require_zarr()   # fail before any work, with the install hint
    if not overwrite and _exists(final):
        raise FileExistsError(f"{final} exists (pass overwrite=True to replace it)")
    final.parent.mkdir(parents=True, exist_ok=True)
    out = _prepared(ds, final.name)
    _check_space(out, final)
    _remove_leftovers(final)
    tmp = _sibling(final, "tmp")
    try:
        if kind == ".nc":
            _write_netcdf(out, tmp)
            _publish_file(tmp, final, overwrite)
        else:
            _write_zarr(out, tmp)
            _publish_dir(tmp, final, overwrite)
    finally:
        _remove(tmp)   # no-op once published
    _fsync_dir(final.parent)
    return final


def open_dataset(path_or_name) -> xr.Dataset:
    """Load a saved dataset fully into memory and close its file.

    Parameters
    ----------
    path_or_name : str or os.PathLike
        An existing ``.nc`` file or ``.zarr`` directory, or the name of a
        dataset shipped in :data:`DATASETS_DIR` (``<name>``, ``<name>.nc`` or
        ``<name>.zarr``).

    Returns
    -------
    xarray.Dataset
        Values, dims, coords and attributes as saved.
    """
    path = pathlib.Path(path_or_name).expanduser()
    if not _exists(path):
        path = _shipped(str(path_or_name))
    kind = _kind(path)
    if kind == ".zarr":
        _require_zarr()
    try:
        opened = xr.open_dataset(path, engine="zarr" if kind == ".zarr" else "h5netcdf")
    except FileNotFoundError:
        raise
    except (OSError, ValueError, KeyError) as err:
        raise ValueError(f"{path}: not a dataset this toolkit can read "
                         f"({type(err).__name__}: {err})") from None
    # load, then close: a returned Dataset must not pin the file open (Windows
    # could not replace it, and a later save over it would race the reader)
    with opened:
        return opened.load()


def _shipped(name: str) -> pathlib.Path:
    base = DATASETS_DIR
    for candidate in (base / name, base / f"{name}.nc", base / f"{name}.zarr"):
        if candidate.suffix.lower() in SUFFIXES and _exists(candidate):
            return candidate
    names = sorted(p.name for p in base.glob("*") if p.suffix.lower() in SUFFIXES) \
        if base.is_dir() else []
    raise FileNotFoundError(
        f"no file and no shipped dataset named {name!r}; available in {base}: "
        f"{', '.join(names) if names else '(none)'}")


def _kind(path: pathlib.Path) -> str:
    suffix = path.suffix.lower()
    if suffix not in SUFFIXES:
        raise ValueError(f"{path}: unsupported suffix {path.suffix!r}; "
                         f"use one of {', '.join(SUFFIXES)}")
    return suffix


def _require_zarr():
    try:
        import zarr  # noqa: F401
    except ImportError:
        raise ImportError(ZARR_MISSING) from None


def _check_space(ds: xr.Dataset, final: pathlib.Path) -> None:
    """Refuse to start a write the disk cannot hold: HDF5 left with a full disk
    half-way keeps a handle that crashes the process when it is collected.

    The bound is the data uncompressed plus 64 KiB a variable (compression only
    shrinks it); another writer may still fill the disk meanwhile.
    """
    need = sum(v.nbytes for v in ds.variables.values()) + 65536 * (len(ds.variables) + 1)
    free = shutil.disk_usage(final.parent).free
    if free < need:
        raise OSError(errno.ENOSPC, f"no space left on {final.parent}: writing {final.name} "
                      f"needs up to {need} B, {free} B are free", str(final))


def _write_netcdf(ds: xr.Dataset, tmp: pathlib.Path) -> None:
    encoding = {}
    for name, var in ds.variables.items():
        # HDF5 cannot filter scalars, and strings gain nothing from zlib
        if var.ndim and var.dtype.kind in "biuf":
            encoding[name] = {**var.encoding, "zlib": True, "complevel": COMPLEVEL}
    ds.to_netcdf(tmp, engine="h5netcdf", encoding=encoding)
    with open(tmp, "rb+") as f:
        os.fsync(f.fileno())


def _write_zarr(ds: xr.Dataset, tmp: pathlib.Path) -> None:
    # Zarr format 2: stable spec for fixed-width strings and consolidated
    # metadata, readable by every Zarr implementation (format 3 warns on both)
    ds.to_zarr(tmp, mode="w-", zarr_format=2, consolidated=True)
    # zarr does not fsync; without this a crash soon after the rename could
    # leave the directory in place with empty chunk files
    for root, _, files in os.walk(tmp):
        for name in files:
            with open(os.path.join(root, name), "rb+") as f:
                os.fsync(f.fileno())
        _fsync_dir(pathlib.Path(root))


def _prepared(ds: xr.Dataset, file_name: str) -> xr.Dataset:
    """A shallow copy of ``ds`` with netCDF-safe attributes and CF globals."""

    out = ds.copy(deep=False)
    for var in out.variables.values():
        var.attrs = _safe_attrs(var.attrs)
        var.encoding = {k: v for k, v in var.encoding.items() if k in _CF_ENCODING}
    attrs = _safe_attrs(ds.attrs)
    attrs.setdefault("Conventions", "CF-1.10")
    attrs.setdefault("title", "Switchover Lab results")
    attrs.setdefault("source", f"switchover-lab {__version__}")
    now = datetime.datetime.now(datetime.timezone.utc)
    line = f"{now:%Y-%m-%dT%H:%M:%SZ} saved to {file_name} by switchover-lab {__version__}"
    attrs["history"] = f"{attrs['history']}\n{line}" if attrs.get("history") else line
    out.attrs = attrs
    return out


def _safe_attrs(attrs: dict) -> dict:
    """Attributes netCDF can store: no None, no bool, no int beyond int64."""
    safe = {}
    for key, value in attrs.items():
        if value is None:
            continue
        if isinstance(value, (bool, np.bool_)):
            value = int(value)
        elif isinstance(value, int) and not _INT64.min <= value <= _INT64.max:
            # e.g. QEMU's SIZE_MAX (2**64-1): uint64 keeps it exactly; beyond
            # that only text does
            value = np.uint64(value) if 0 <= value < 2**64 else str(value)
        safe[key] = value
    return safe


def save_figure(fig, path, *, dpi: int = 110, overwrite: bool = True) -> pathlib.Path:
    """Write a matplotlib figure, atomically, in the format its suffix names.

    Parameters
    ----------
    fig : matplotlib.figure.Figure
        The figure, e.g. :func:`toolkit.plot.rescue_map`'s; it is not closed.
    path : str or os.PathLike
        Target ending in a format matplotlib writes (``.png``, ``.svg``, ``.pdf``, ...).
    dpi : int
        Resolution of raster formats [dots per inch].
    overwrite : bool
        Replace an existing target; if False, raise ``FileExistsError``.

    Returns
    -------
    pathlib.Path
        The path written.
    """
    final = pathlib.Path(path).expanduser()
    formats = fig.canvas.get_supported_filetypes()
    kind = final.suffix[1:].lower()
    if kind not in formats:
        raise ValueError(f"save_figure: {final}: expected a path ending in one of "
                         f"{', '.join('.' + f for f in sorted(formats))}")
    if not overwrite and _exists(final):
        raise FileExistsError(f"{final} exists (pass overwrite=True to replace it)")
    final.parent.mkdir(parents=True, exist_ok=True)
    _remove_leftovers(final)
    tmp = _sibling(final, "tmp")
    try:
        fig.savefig(tmp, format=kind, dpi=dpi)
        _publish_file(tmp, final, overwrite)
    finally:
        _remove(tmp)
    _fsync_dir(final.parent)
    return final


# ---------------------------------------------------------------- atomic moves

def _sibling(final: pathlib.Path, tag: str) -> pathlib.Path:
    # same directory, so the final rename never crosses a filesystem; hidden,
    # so globs for results do not pick it up; the writer's pid, so that a
    # later write can tell a leftover of a killed writer from a live one's
    return final.with_name(f".{final.name}.{tag}-{os.getpid()}-{secrets.token_hex(6)}")


def _remove_leftovers(final: pathlib.Path) -> None:
    """Remove the temporary siblings of ``final`` left by writers that were killed
    (kill -9 during a write): their pid no longer runs."""
    prefix = f".{final.name}.tmp-"
    for p in final.parent.glob(f"{glob_escape(prefix)}*"):
        pid = p.name[len(prefix):].split("-", 1)[0]
        if pid.isdigit() and not _alive(int(pid)):
            _remove(p)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _exists(path: pathlib.Path) -> bool:
    return os.path.lexists(path)


def _remove(path: pathlib.Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


def _publish_file(tmp: pathlib.Path, final: pathlib.Path, overwrite: bool) -> None:
    if overwrite:
        os.replace(tmp, final)
        return
    try:
        # unlike replace, link refuses to clobber a target that appeared
        # since the check in save()
        os.link(tmp, final)
    except FileExistsError:
        raise FileExistsError(f"{final} exists (pass overwrite=True to replace it)") from None
    except OSError:
        # filesystem without hard links: check-then-replace is the best left
        if _exists(final):
            raise FileExistsError(f"{final} exists (pass overwrite=True to replace it)") \
                from None
        os.replace(tmp, final)


def _publish_dir(tmp: pathlib.Path, final: pathlib.Path, overwrite: bool) -> None:
    if not _exists(final):
        os.rename(tmp, final)
        return
    if not overwrite:
        raise FileExistsError(f"{final} exists (pass overwrite=True to replace it)")
    # a directory cannot be swapped in one step; moving the old one aside
    # first leaves a moment with no target, but never a mixed or partial one
    old = _sibling(final, "old")
    os.rename(final, old)
    try:
        os.rename(tmp, final)
    except BaseException:
        os.rename(old, final)
        raise
    _remove(old)


def _fsync_dir(directory: pathlib.Path) -> None:
    # makes the rename itself durable on POSIX; Windows cannot open directories
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


# ---------------------------------------------------------------- checkpoints

class ChunkStore:
    """Finished chunks of one sweep, one ``.npz`` file each, in one directory.

    Parameters
    ----------
    directory : str or os.PathLike
        Checkpoint directory; created if needed.
    fingerprint : str
        Identifies the sweep (its parameters). A directory written by a sweep
        with another fingerprint is refused, so results are never mixed.

    Notes
    -----
    Each chunk is written to a temporary file and renamed into place, so a
    killed process leaves a whole chunk or none, and several processes may
    write different chunks into the same directory at once.
    """

    META = "meta.json"

    def __init__(self, directory, fingerprint: str):
        self.directory = pathlib.Path(directory).expanduser()
        self.fingerprint = str(fingerprint)
        self.directory.mkdir(parents=True, exist_ok=True)
        meta = self.directory / self.META
        if not meta.exists():
            strangers = [p for p in self.directory.iterdir()
                         if not p.name.startswith(".") and p.name != self.META]
            # clear() deletes the whole directory: never adopt one holding
            # anything but our own files; re-check meta.json because a worker
            # beside us may have claimed the directory and written chunks since
            if strangers and not meta.exists():
                raise ValueError(f"{self.directory} is not empty and is not a sweep "
                                 "checkpoint; use another directory")
            self._claim(meta)
        found = json.loads(meta.read_text()).get("fingerprint")
        if found != self.fingerprint:
            raise ValueError(
                f"checkpoint {self.directory} belongs to another sweep (fingerprint "
                f"{found!r}, this sweep {self.fingerprint!r}); delete it or choose "
                "another --out")

    def _claim(self, meta: pathlib.Path) -> None:
        tmp = self.directory / f".{self.META}.tmp-{secrets.token_hex(6)}"
        try:
            with open(tmp, "x") as f:
                json.dump({"fingerprint": self.fingerprint}, f)
                f.flush()
                os.fsync(f.fileno())
            # workers may open the same new directory at once: exactly one
            # meta.json wins and the others compare against it
            _publish_file(tmp, meta, overwrite=False)
        except FileExistsError:
            pass
        finally:
            tmp.unlink(missing_ok=True)

    def __repr__(self) -> str:
        return f"ChunkStore({str(self.directory)!r}, fingerprint={self.fingerprint!r})"

    def _path(self, chunk_id: int) -> pathlib.Path:
        chunk_id = int(chunk_id)
        if chunk_id < 0:
            raise ValueError(f"chunk_id must be >= 0, got {chunk_id}")
        return self.directory / f"chunk-{chunk_id:06d}.npz"

    def done(self) -> set[int]:
        """Ids of the chunks already written whole.

        Each chunk is checked against the checksum it carries; a damaged one
        (truncated, emptied, altered) is removed, said on stderr, and left to
        be computed again.
        """
        if not self.directory.is_dir():
            return set()
        ids = set()
        for p in sorted(self.directory.iterdir()):
            m = _CHUNK.fullmatch(p.name)
            if m is None:
                continue
            problem = _damage(p)
            if problem:
                print(f"checkpoint chunk {p} is damaged ({problem}): computing it again",
                      file=sys.stderr)
                p.unlink(missing_ok=True)
            else:
                ids.add(int(m.group(1)))
        return ids

    def write(self, chunk_id: int, arrays: dict[str, np.ndarray]) -> None:
        """Store one chunk's arrays, atomically.

        Parameters
        ----------
        chunk_id : int
            Chunk number, >= 0.
        arrays : dict of str to ndarray
            Results of the chunk, by name.
        """
        final = self._path(chunk_id)
        tmp = _sibling(final, "tmp")
        try:
            # a file object, not a name: np.savez would append ".npz" to a name
            with open(tmp, "xb") as f:
                np.savez(f, **arrays, **{_DIGEST: np.array(_digest(arrays))})
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, final)
        finally:
            tmp.unlink(missing_ok=True)
        _fsync_dir(self.directory)

    def read(self, chunk_id: int) -> dict[str, np.ndarray]:
        """The arrays of one written chunk, by name."""
        with np.load(self._path(chunk_id)) as z:
            return {name: z[name] for name in z.files if name != _DIGEST}

    def clear(self) -> None:
        """Remove the checkpoint directory and everything in it."""
        if self.directory.exists():
            shutil.rmtree(self.directory)
