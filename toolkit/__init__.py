"""Switchover Lab: simulate QEMU precopy live migration page by page.

>>> import toolkit as tk
>>> ds = tk.simulate(ram_size="4GiB", dirty_rate="300MiB/s", link_bandwidth="10Gbit/s",
...                  max_bandwidth=0, downtime_limit=300)

The functions live in private modules (``_simulate.py``, ``_sweep.py``,
``_rescue.py``, ``_advise.py``, ``_warmup.py``, as QuantEcon names them), so
that ``toolkit.simulate`` is always the function, never the module of the same
name. What users need from those modules is exported here:
:data:`RESCUE_CLASSES` and :data:`RESCUE_CLASS_HELP` (the rescue classes, in
code order, and what each means), :data:`SWEEP_MAX_POINTS` (the largest grid
:func:`sweep` accepts), :data:`ADVISE_LAYERS` (the management layers
:func:`advise` knows) and :func:`plan` (a sweep's grid, validated).
tests/test_architecture.py fails if a public function shadows a submodule.
"""
from ._version import __version__

from .scenario import IDEAL_HOST, PARAMETERS, Scenario
from . import hosts
from ._simulate import simulate
from ._sweep import geomspace, linspace, plan, sweep
from ._rescue import class_counts, class_counts_by_setting, merge_rescue, rescue
from ._advise import Advice, advise
from .store import open_dataset, save, save_figure
from . import analytic, policies, workloads
from .units import format_rate, format_size, parse_duration, parse_rate, parse_size
from ._warmup import warmup
from . import _advise, _rescue, _sweep

#: The rescue classes in code order: :func:`rescue`'s ``rescue_class`` indexes this tuple.
RESCUE_CLASSES = _rescue.CLASSES
#: What each rescue class means: ``{class: sentence}``.
RESCUE_CLASS_HELP = _rescue.CLASS_HELP
#: Largest grid :func:`sweep` and :func:`plan` accept [points].
SWEEP_MAX_POINTS = _sweep.MAX_POINTS
#: Management layers :func:`advise` knows: ``{name: {"settings", "policy", "doc"}}``,
#: the QEMU settings each applies and its monitor (a :mod:`toolkit.policies` string).
ADVISE_LAYERS = _advise.LAYERS

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
    "plan",
    "SWEEP_MAX_POINTS",
    "linspace",
    "geomspace",
    "rescue",
    "merge_rescue",
    "RESCUE_CLASSES",
    "RESCUE_CLASS_HELP",
    "class_counts",
    "class_counts_by_setting",
    "advise",
    "Advice",
    "ADVISE_LAYERS",
    "save",
    "save_figure",
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
