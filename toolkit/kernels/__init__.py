"""Numba kernels: plain arrays and scalars in, arrays out, no mutable globals.

The kernels know nothing of units, strings, xarray or files. Each function that
mirrors QEMU carries the name of the QEMU function it mirrors, so
``grep migration_bitmap_sync`` finds both.

Modules
-------
rng
    SplitMix64, the only source of randomness (seeded per scenario).
bitset
    One bit per 4 KiB guest page in ``uint64`` words.
layout
    One field table per kernel array (parameters, state, trace, policy): names,
    units and descriptions, from which the slot numbers and the Dataset's
    variables (:mod:`toolkit.schema`) are derived.
guest
    Guest writes into the dirty log (the workloads).
precopy
    The migration thread: setup, iterate loop, window estimator, switchover.
"""

import fcntl as _fcntl
import hashlib as _hashlib
import pathlib as _pathlib


def _drop_stale_cache() -> None:
    """Delete numba's cache when any kernel source changed.

    numba keys each cached function on its own file only, so a function that
    inlines or calls code from another kernel module would keep running the
    old code after that module changed. A stamp of all kernel sources guards
    against it; a read-only install simply skips the check. Processes that
    import at once (Dask workers) take turns on a lock, so none deletes a cache
    file another one has just written.
    """
    here = _pathlib.Path(__file__).parent
    digest = _hashlib.sha256(b"".join(p.read_bytes() for p in sorted(here.glob("*.py"))))
    cache = here / "__pycache__"
    stamp = cache / "kernels.sha256"
    try:
        if stamp.exists() and stamp.read_text() == digest.hexdigest():
            return
        cache.mkdir(exist_ok=True)
        with open(cache / "kernels.lock", "w") as lock:
            _fcntl.flock(lock, _fcntl.LOCK_EX)
            if stamp.exists() and stamp.read_text() == digest.hexdigest():
                return                      # another process cleared it meanwhile
            for path in list(cache.glob("*.nbi")) + list(cache.glob("*.nbc")):
                path.unlink(missing_ok=True)
            stamp.write_text(digest.hexdigest())
    except OSError:
        pass


_drop_stale_cache()
