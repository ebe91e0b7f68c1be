"""TOML sweep configurations: read, check, and turn into ``sweep()`` arguments.

A config has an optional ``title``, a ``[sweep]`` table of options (``traces``,
``chunk_size``), a ``[fixed]`` table of scenario parameters and a ``[grid]``
table of swept ones, in dimension order. A grid entry is a list, or a table
``{ linspace = [start, stop, num] }``, ``{ geomspace = [...] }`` or
``{ range = n }``. Values take units as strings ("4GiB", "10Gbit/s"). Errors
name the key, e.g. ``grid.dirty_rate``.
"""
from __future__ import annotations

import pathlib
import re
import tomllib

from .scenario import check_names
from ._sweep import MAX_POINTS, _whole, geomspace, linspace, plan

TOP_KEYS = {"title", "sweep", "fixed", "grid"}
SWEEP_KEYS = {"traces": bool, "chunk_size": int}
GENERATORS = {"linspace": linspace, "geomspace": geomspace}


class ConfigError(ValueError):
    """A sweep configuration that cannot be used; the message names the key."""


def _grid_values(key: str, value):
    if isinstance(value, list):
        return value
    if isinstance(value, dict) and len(value) == 1:
        (kind, args), = value.items()
        if kind in GENERATORS:
            if not (isinstance(args, list) and len(args) == 3 and isinstance(args[2], int)):
                raise ConfigError(f"{key}.{kind}: expected [start, stop, count], got {args!r}")
            try:
                return GENERATORS[kind](*args).tolist()
            except (TypeError, ValueError) as err:
                raise ConfigError(f"{key}.{kind}: {err}") from None
        if kind == "range":
            if isinstance(args, bool) or not isinstance(args, int) or \
                    not 1 <= args <= MAX_POINTS:
                raise ConfigError(f"{key}.range: expected an integer in [1, "
                                  f"{MAX_POINTS}], got {args!r}")
            return list(range(args))
    raise ConfigError(f"{key}: expected a list of values or a table such as "
                      f"{{ linspace = [start, stop, count] }}, got {value!r}")


def parse_config(data: dict) -> tuple[dict, dict]:  # noqa: C901
    """Check a parsed TOML document.

    Returns
    -------
    params : dict
        Scenario parameters for :func:`toolkit.sweep` (lists for swept ones).
    options : dict
        ``title`` and the ``[sweep]`` options.
    """
    for key in data:
        if key not in TOP_KEYS:
            raise ConfigError(f"{key}: unknown key; expected {', '.join(sorted(TOP_KEYS))}")
    options = {"title": data.get("title")}
    if not isinstance(options["title"], (str, type(None))):
        raise ConfigError(f"title: expected a string, got {options['title']!r}")
    if not isinstance(data.get("sweep", {}), dict):
        raise ConfigError(f"sweep: expected a table of options ({', '.join(SWEEP_KEYS)})")
    for key, value in data.get("sweep", {}).items():
        kind = SWEEP_KEYS.get(key)
        if kind is None:
            raise ConfigError(f"sweep.{key}: unknown option; expected {', '.join(SWEEP_KEYS)}")
        if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            raise ConfigError(f"sweep.{key}: expected {kind.__name__}, got {value!r}")
        if kind is int:
            try:
                _whole(value, f"sweep.{key}")
            except ValueError as err:
                raise ConfigError(str(err)) from None
        options[key] = value
    params = {}
    for table in ("fixed", "grid"):
        section = data.get(table, {})
        if not isinstance(section, dict):
            raise ConfigError(f"{table}: expected a table of parameters")
        for key, value in section.items():
            try:
                check_names([key])
            except TypeError as err:
                raise ConfigError(f"{table}.{key}: {err}") from None
            if key in params:
                raise ConfigError(f"{table}.{key}: given in both [fixed] and [grid]")
            if table == "fixed" and isinstance(value, (list, dict)):
                raise ConfigError(f"fixed.{key}: a fixed parameter takes one value; put lists "
                                  "under [grid]")
            params[key] = _grid_values(f"grid.{key}", value) if table == "grid" else value
    try:
        plan(**params)
    except (TypeError, ValueError) as err:
        # the parameter the message starts with, else the first it names: "avail_
        # switchover_bandwidth='2x link' ... at link_bandwidth=..." is avail's
        text = str(err)
        name = next((k for k in params if re.match(rf"{k}\b", text)), None) or \
            next((k for k in params if k in text), None)
        where = f"{'grid' if isinstance(params.get(name), list) else 'fixed'}.{name}: " \
            if name else ""
        raise ConfigError(f"{where}{err}") from None
    return params, options


def load_config(path) -> tuple[dict, dict]:
    """Read and check a TOML sweep configuration file (see :func:`parse_config`)."""
    path = pathlib.Path(path)
    if path.exists() and not path.is_file():     # a directory, or a FIFO that would hang
        raise ConfigError(f"{path}: not a regular file (a config is a TOML file)")
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))     # TOML is UTF-8
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such config file") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not a text file (a config is a TOML file)") from None
    except OSError as err:
        raise ConfigError(f"{path}: cannot be read ({err.strerror or err})") from None
    except tomllib.TOMLDecodeError as err:
        raise ConfigError(f"{path}: not valid TOML: {err}") from None
    except RecursionError:
        raise ConfigError(f"{path}: arrays or tables nested too deeply to read") from None
    params, options = parse_config(data)
    if not params:      # it would run the default scenario, as if no file had been given
        raise ConfigError(f"{path}: {'empty' if not data else 'sets no parameter'}: expected "
                          "scenario parameters in [fixed] and/or [grid]")
    return params, options


DEFAULT_CONFIG = pathlib.Path(__file__).parent / "configs" / "rescue-default.toml"
__all__ = ["load_config", "parse_config", "ConfigError", "DEFAULT_CONFIG"]
