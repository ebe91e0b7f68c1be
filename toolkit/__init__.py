"""Switchover Lab: simulate QEMU precopy live migration page by page.

>>> import toolkit as tk
>>> ds = tk.simulate(ram_size="4GiB", dirty_rate="300MiB/s", link_bandwidth="10Gbit/s",
...                  max_bandwidth=0, downtime_limit=300)
"""
from ._version import __version__

from .scenario import IDEAL_HOST, PARAMETERS, Scenario
from . import hosts
from ._simulate import simulate
from ._sweep import geomspace, linspace, sweep
from ._rescue import class_counts, class_counts_by_setting, rescue
from ._advise import Advice, advise
from .store import open_dataset, save
from . import analytic, policies, workloads
from .units import format_rate, format_size, parse_duration, parse_rate, parse_size
from ._warmup import warmup

#: Attributes imported on first use, so that ``import toolkit`` loads neither
#: matplotlib.pyplot nor ipywidgets (seconds, in every worker process).
_LAZY = {"plot": ("toolkit.plot", None), "explore": ("toolkit.widgets", "explore"),
         "explore_sweep": ("toolkit.widgets", "explore_sweep"),
         "load": ("toolkit.measure", "load"), "Measurement": ("toolkit.measure", "Measurement")}


def __getattr__(name):
    if name in _LAZY:
        import importlib
        module, attr = _LAZY[name]
        value = importlib.import_module(module)
        value = value if attr is None else getattr(value, attr)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'toolkit' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(_LAZY))

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
    "class_counts_by_setting",
    "advise",
    "Advice",
    "save",
    "open_dataset",
    "analytic",
    "plot",
    "policies",
    "workloads",
    "explore",
    "explore_sweep",
    "warmup",
    "load",
    "Measurement",
    "parse_size",
    "parse_rate",
    "parse_duration",
    "format_size",
    "format_rate",
    "__version__",
]
