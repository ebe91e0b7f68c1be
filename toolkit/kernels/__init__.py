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
    Slot numbers of the parameter, state and trace arrays shared by the kernels
    and :mod:`toolkit.simulate`.
guest
    Guest writes into the dirty log (the workloads).
precopy
    The migration thread: setup, iterate loop, window estimator, switchover.
"""
