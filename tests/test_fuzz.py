"""Fuzzing the readers of user input (issue 11): the unit parser, the TOML config reader
and both write-trace readers.

Any input gives a valid result or a ValueError/TypeError whose message names the
parameter, key, file or line; never another exception. Each bug these found is fixed,
and the example that found it is kept below as an ``@example``.
"""
import io
import math
import pathlib
import tempfile
import tomllib
import zipfile

import numpy as np
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from toolkit.config import TOP_KEYS, ConfigError, load_config, parse_config
from toolkit.scenario import PARAMETER_INDEX
from toolkit.units import format_rate, format_size, parse_duration, parse_rate, parse_size
from toolkit.workloads import read_write_trace

FUZZ = settings(max_examples=200, deadline=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])

# --- units ----------------------------------------------------------------------------------

UNITS = ["", "B", "b", "bit", "kB", "KB", "MB", "GB", "TB", "KiB", "MiB", "GiB", "TiB",
         "Gbit", "Mibit", "mB", "/s", "ps", "B/s", "Gbit/s", "Gbps", "MiB/s", "ns", "us",
         "\u00b5s", "ms", "s", "min", "h", "x", "link"]
NUMBERS = st.one_of(st.integers(-10**30, 10**30).map(str),
                    st.floats(allow_nan=True, allow_infinity=True).map(repr),
                    st.sampled_from(["1e999", "-1e-999", ".5", "5.", "+3", "nan", "-inf",
                                     "Infinity", "1e400", "0x10", "1_000", "", "."]))
UNIT_TEXT = st.one_of(
    st.tuples(NUMBERS, st.sampled_from(["", " ", "\t"]), st.sampled_from(UNITS))
    .map("".join),
    st.text(max_size=20))
VALUES = st.one_of(UNIT_TEXT, st.integers(), st.floats(), st.booleans(), st.none(),
                   st.fractions(), st.decimals(allow_nan=False), st.complex_numbers(),
                   st.lists(st.integers(), max_size=2),
                   st.integers(-2**63, 2**63 - 1).map(np.int64), st.floats().map(np.float64))


def _read(parse, value):
    try:
        return parse(value, "the_param")
    except (TypeError, ValueError) as err:
        assert "the_param" in str(err)
        return None


@FUZZ
@given(VALUES)
@example("9" * 5000 + "B")
@example("1e999999999 TiB")
def test_unit_parsers_read_or_refuse_by_name(value):
    for parse, kind in ((parse_size, int), (parse_rate, float), (parse_duration, float)):
        x = _read(parse, value)
        if x is not None:
            assert isinstance(x, kind) or (isinstance(x, float) and not math.isfinite(x))


@FUZZ
@given(st.one_of(st.integers(-2**70, 2**70), st.floats(allow_nan=False, allow_infinity=False)))
def test_formatted_sizes_and_rates_read_back(x):
    for fmt, parse in ((format_size, parse_size), (format_rate, parse_rate)):
        back = parse(fmt(x), "x")
        assert math.isclose(back, x, rel_tol=5e-3, abs_tol=0.5), (fmt(x), back)


# --- each parameter's kind -----------------------------------------------------------------

SETTINGS = st.one_of(VALUES, st.sampled_from(
    ["estimate", " Estimate ", "link", "0.5x link", "1e400x link", "2 x link", "x link",
     "uniform", "zipf", "nova", "none", "tcg-loopback", "10.0"]),
    st.tuples(NUMBERS, st.sampled_from(["x link", " x link", "xlink"])).map("".join))


@FUZZ
@given(st.sampled_from(sorted(PARAMETER_INDEX)), SETTINGS)
@example("avail_switchover_bandwidth", "1e400x link")
@example("max_bandwidth", True)
def test_each_kind_reads_a_value_to_a_fixed_point_or_names_the_parameter(name, value):
    """A value reads to its canonical form, which reads back to itself (so a Dataset's
    attributes rebuild the same Scenario); a relative setting read against any link is
    such a value too; anything else is a TypeError or ValueError naming the parameter."""
    spec = PARAMETER_INDEX[name]
    for against in ((None,) if spec.resolved_against is None else (1.25e9, 1000.0)):
        try:
            x = spec.parse(value if against is None else spec.resolve(value, against))
        except (TypeError, ValueError) as err:
            assert str(err).startswith(name), str(err)
            continue
        assert spec.parse(x) == x and type(spec.parse(x)) is type(x), (value, x)
        assert spec.coordinates([x]) == [x]


# --- the TOML config reader -----------------------------------------------------------------

NAMES = sorted(PARAMETER_INDEX)
KEYS = st.one_of(st.sampled_from(NAMES), st.sampled_from(sorted(TOP_KEYS)), st.text(max_size=8))
SCALARS = st.one_of(UNIT_TEXT, st.integers(-2**70, 2**70), st.floats(), st.booleans(),
                    st.dates(), st.datetimes(), st.times(),
                    st.sampled_from(["estimate", "link", "0.5x link", "1x link", "uniform",
                                     "hotcold", "zipf", "nova", "none"]))
TOML_VALUES = st.recursive(SCALARS, lambda inner: st.one_of(
    st.lists(inner, max_size=4),
    st.dictionaries(KEYS, inner, max_size=3),
    st.tuples(st.sampled_from(["linspace", "geomspace"]),
              st.tuples(inner, inner, st.integers(-3, 5)).map(list))
    .map(lambda kv: {kv[0]: kv[1]}),
    st.integers(-2, 10**12).map(lambda n: {"range": n})), max_leaves=8)
TABLES = st.dictionaries(st.sampled_from(NAMES), TOML_VALUES, max_size=4)
DOCUMENTS = st.fixed_dictionaries({}, optional={
    "title": st.one_of(st.text(max_size=10), SCALARS),
    "sweep": st.one_of(st.dictionaries(st.sampled_from(["traces", "chunk_size", "workers"]),
                                       SCALARS, max_size=2), SCALARS),
    "fixed": st.one_of(TABLES, SCALARS),
    "grid": st.one_of(TABLES, SCALARS)}) | st.dictionaries(KEYS, TOML_VALUES, max_size=3)


def _keys(data, prefix=""):
    """Every key path of a document ("grid", "grid.dirty_rate", ...), and the bare names."""
    for key, value in data.items():
        yield f"{prefix}{key}"
        yield str(key)
        if isinstance(value, dict):
            yield from _keys(value, f"{prefix}{key}.")


@FUZZ
@given(DOCUMENTS)
@example({"sweep": 5})
@example({"title": 5, "fixed": {"ram_size": "1GiB"}})
@example({"grid": {"seed": {"range": True}}})
@example({"grid": {"seed": {"range": 10**12}}})
@example({"grid": {"dirty_rate": {"linspace": [{}, 1, 3]}}})
@example({"grid": {"dirty_rate": {"geomspace": [1, float("inf"), 3]}}})
@example({"grid": {"dirty_rate": {"linspace": [1, 2, 10**9]}}})
@example({"fixed": {"hot_share": 10**400}})
@example({"grid": {"avail_switchover_bandwidth": ["estimate", 0]}})
def test_config_documents_give_params_or_name_the_key(data):
    try:
        params, options = parse_config(data)
    except ConfigError as err:
        text = str(err)
        assert any(text.startswith(f"{key}:") or text.startswith(f"{key}.")
                   for key in _keys(data)) or text.startswith("the sweep has"), text
        return
    assert set(params) <= set(NAMES) and set(options) <= {"title", "traces", "chunk_size"}


@pytest.fixture(scope="module")
def scratch():
    """One directory for all examples of a test (hypothesis runs them in one call)."""
    with tempfile.TemporaryDirectory() as name:
        yield pathlib.Path(name)


def _file(scratch: pathlib.Path, name: str, data: bytes) -> pathlib.Path:
    # a new directory each time: the trace cache must not see an earlier example's file
    path = pathlib.Path(tempfile.mkdtemp(dir=scratch)) / name
    path.write_bytes(data)
    return path


@FUZZ
@given(st.one_of(st.binary(max_size=200),
                 DOCUMENTS.map(repr).map(str.encode),
                 st.text(alphabet="[]{}=\"'.,#\n abc123", max_size=60).map(str.encode)))
@example(b"a = " + b"[" * 5000 + b"]" * 5000)
@example(b"\xff\xfe")
@example(b"")
def test_config_files_give_params_or_name_the_file(scratch, data):
    path = _file(scratch, "c.toml", data)
    try:
        load_config(path)
    except ConfigError as err:
        assert str(err).split(":")[0] in (str(path), *_keys_of(data)), str(err)


def _keys_of(data: bytes) -> list:
    try:
        return list(_keys(tomllib.loads(data.decode())))
    except (UnicodeDecodeError, tomllib.TOMLDecodeError, RecursionError):
        return []


# --- write traces ---------------------------------------------------------------------------

LINE_PART = st.one_of(st.integers(-5, 2**60).map(str), st.sampled_from(
    ["", " ", ",", "\t", "#", "x", "1.5", "-0", "9" * 5000, "0" * 30 + "7", "\u00b2", "\x00"]))
LINES = st.lists(st.lists(LINE_PART, max_size=4).map("".join), max_size=6)


def _trace_result(path):
    try:
        time_us, page = read_write_trace(path)
    except ValueError as err:
        assert str(err).startswith(f"write trace {path}: "), str(err)
        return
    assert time_us.dtype == page.dtype == np.int64 and time_us.shape == page.shape
    assert time_us.size and np.all(np.diff(time_us) >= 0) and (time_us >= 0).all()
    assert (page >= 0).all() and page.max() < 2**32 and time_us.max() < 2**53


@FUZZ
@given(st.one_of(LINES.map("\n".join).map(str.encode), st.binary(max_size=100)))
@example(b"1 " + b"9" * 5000 + b"\n")
@example("0 \u00b2\n".encode())
def test_text_traces_give_writes_or_name_the_line(scratch, data):
    _trace_result(_file(scratch, "t.txt", data))


DTYPES = st.sampled_from([np.int8, np.uint8, np.int64, np.uint64, np.float64, np.bool_,
                          np.complex64, "U3", "S2", "V8", [("a", "i4")]])
ARRAYS = st.tuples(DTYPES, st.lists(st.integers(0, 3), max_size=2),
                   st.integers(-2**63, 2**64 - 1)).map(lambda a: _array(*a))


def _array(dtype, shape, fill):
    try:
        return np.full(shape, fill).astype(dtype)
    except (OverflowError, ValueError, TypeError):
        return np.zeros(shape, dtype)


def _npz(arrays: dict) -> bytes:
    out = io.BytesIO()
    np.savez(out, **arrays)
    return out.getvalue()


GOOD = _npz({"time_us": np.arange(4), "page": np.arange(4)})
NPZ = st.one_of(
    st.dictionaries(st.sampled_from(["time_us", "page", "other"]), ARRAYS, max_size=3)
    .map(_npz),
    st.binary(max_size=200),
    st.tuples(st.integers(0, len(GOOD) - 1), st.binary(min_size=1, max_size=8))
    .map(lambda cut: GOOD[:cut[0]] + cut[1] + GOOD[cut[0] + len(cut[1]):]),
    st.integers(0, len(GOOD)).map(lambda n: GOOD[:n]))


def _npy(array) -> bytes:
    out = io.BytesIO()
    np.save(out, array)
    return out.getvalue()


@FUZZ
@given(NPZ)
@example(b"")
@example(b"hello")
@example(b"PK\x03\x04garbage")
@example(_npy(np.arange(3)))
@example(_npz({"time_us": np.array([5, 3], np.uint64), "page": np.array([1, 2], np.uint64)}))
@example(_npz({"time_us": np.array([object()]), "page": np.array([1])}))
def test_npz_traces_give_writes_or_name_the_file(scratch, data):
    _trace_result(_file(scratch, "t.npz", data))


def test_a_zip_without_npy_members_is_named():
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as z:
        z.writestr("time_us.npy", b"not an array")
        z.writestr("page.npy", b"nor this")
    with tempfile.TemporaryDirectory() as name:
        path = pathlib.Path(name) / "z.npz"
        path.write_bytes(out.getvalue())
        with pytest.raises(ValueError, match=r"z\.npz: arrays: time_us or page cannot be read"):
            read_write_trace(path)
