"""Switchover Lab: simulate QEMU precopy live migration page by page.

>>> import toolkit as tk
>>> ds = tk.simulate(ram_size="4GiB", dirty_rate="300MiB/s", link_bandwidth="10Gbit/s",
...                  max_bandwidth=0, downtime_limit=300)
"""
__version__ = "0.1.0"

from .scenario import IDEAL_HOST, PARAMETERS, Scenario
from . import hosts
from .simulate import simulate
from .sweep import geomspace, linspace, sweep
from .rescue import class_counts, rescue
from .store import open_dataset, save
from . import analytic, plot, policies, workloads
from .widgets import explore, explore_sweep
from .units import format_rate, format_size, parse_duration, parse_rate, parse_size
from .warmup import warmup

__all__ = [
    "PARAMETERS",
    "IDEAL_HOST",
    "hosts",
    "Scenario",
    "simulate",
    "sweep",
    "linspace",
    "geomspace",
    "rescue",
    "class_counts",
    "save",
    "open_dataset",
    "analytic",
    "plot",
    "policies",
    "workloads",
    "explore",
    "explore_sweep",
    "warmup",
    "parse_size",
    "parse_rate",
    "parse_duration",
    "format_size",
    "format_rate",
    "__version__",
]
