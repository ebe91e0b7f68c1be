import math

import numpy as np
import pytest

from toolkit.units import (
    format_rate,
    format_size,
    parse_duration,
    parse_rate,
    parse_size,
)


@pytest.mark.parametrize("text, expected", [
    ("0", 0), ("1024", 1024), ("1B", 1), ("1 B", 1), ("  7  B ", 7),
    ("1kB", 1000), ("1KB", 1000), ("2MB", 2 * 10**6), ("3GB", 3 * 10**9),
    ("4TB", 4 * 10**12), ("1.5KiB", 1536), ("1KiB", 1024),
    ("2MiB", 2 * 2**20), ("4GiB", 4 * 2**30), ("1TiB", 2**40),
    ("8b", 1), ("8bit", 1), ("8kbit", 1000), ("8Kbit", 1000), ("8kb", 1000),
    ("8Mbit", 10**6), ("8Mb", 10**6), ("8Gbit", 10**9), ("8Gb", 10**9),
    ("8Tbit", 10**12), ("8Tb", 10**12), ("8Kibit", 1024),
    ("8Mibit", 2**20), ("8Gibit", 2**30),
    ("1e9", 10**9), ("2.5e3", 2500), ("1e3 B", 1000), ("1.25GB", 1250000000),
    ("-4GiB", -4 * 2**30), ("+1KiB", 1024), (".5KiB", 512), ("1.KiB", 1024),
    ("123456789012345678901B", 123456789012345678901),
    ("1.5", 2), ("2.5", 2),  # round half to even
])
def test_parse_size_strings(text, expected):
    result = parse_size(text, "ram_size")
    assert result == expected
    assert type(result) is int


@pytest.mark.parametrize("value, expected", [
    (4096, 4096), (2**70, 2**70), (1536.0, 1536), (0.4, 0), (-3, -3),
    (np.int64(4096), 4096), (np.uint32(7), 7), (np.float32(2.0), 2),
    (np.float64(1e9), 10**9),
])
def test_parse_size_numbers(value, expected):
    result = parse_size(value, "ram_size")
    assert result == expected
    assert type(result) is int


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf, "nan",
                                   "inf", "-inf", "Infinity", "inf GiB"])
def test_parse_size_non_finite_returned_as_float(value):
    result = parse_size(value, "ram_size")
    assert isinstance(result, float) and not math.isfinite(result)


@pytest.mark.parametrize("text, expected", [
    ("10Gbit/s", 1.25e9), ("10Gb/s", 1.25e9), ("10Gbps", 1.25e9),
    ("1.25GB/s", 1.25e9), ("1.25GBps", 1.25e9), ("300MiB/s", 300 * 2**20),
    ("100 MB/s", 1e8), ("1000B/s", 1000.0), ("1000Bps", 1000.0),
    ("8bit/s", 1.0), ("8bps", 1.0), ("1kB/s", 1000.0), ("1KB/s", 1000.0),
    ("8kbit/s", 1000.0), ("8Kbit/s", 1000.0), ("800Mbit/s", 1e8),
    ("1TB/s", 1e12), ("8Tbit/s", 1e12), ("1KiB/s", 1024.0),
    ("1GiB/s", 2.0**30), ("1TiB/s", 2.0**40), ("8Kibit/s", 1024.0),
    ("8Gibit/s", 2.0**30), ("0.1GB/s", 1e8), ("1e9", 1e9), ("1e9B/s", 1e9),
    (" 2.5e3 B/s ", 2500.0), ("-1MB/s", -1e6),
])
def test_parse_rate_strings(text, expected):
    result = parse_rate(text, "dirty_rate")
    assert result == expected
    assert type(result) is float


@pytest.mark.parametrize("value, expected", [
    (1000, 1000.0), (1.25e9, 1.25e9), (np.int32(5), 5.0),
    (np.float32(0.5), 0.5), (-1, -1.0), (10**400, math.inf),
])
def test_parse_rate_numbers(value, expected):
    result = parse_rate(value, "dirty_rate")
    assert result == expected and type(result) is float


def test_parse_rate_non_finite():
    assert math.isnan(parse_rate("nan", "r"))
    assert parse_rate("inf", "r") == math.inf
    assert parse_rate(-math.inf, "r") == -math.inf


@pytest.mark.parametrize("value, unit, expected", [
    ("300ms", "ms", 300.0), ("1.5s", "ms", 1500.0), ("2us", "ns", 2000.0),
    ("5min", "s", 300.0), ("1h", "s", 3600.0), ("1h", "ms", 3.6e6),
    ("300ms", "s", 0.3), ("10ns", "us", 0.01), ("3\u00b5s", "ns", 3000.0),
    ("3\u03bcs", "ns", 3000.0), ("250 us", "ms", 0.25), ("1e3 ms", "s", 1.0),
    ("2.5e-3s", "ms", 2.5), ("42", "ms", 42.0), ("42", "s", 42.0),
    ("1.5", "us", 1.5), (42, "ns", 42.0), (0.5, "s", 0.5),
    (np.int64(7), "ms", 7.0), (np.float32(0.25), "s", 0.25),
    ("-1s", "ms", -1000.0),
])
def test_parse_duration(value, unit, expected):
    result = parse_duration(value, "downtime", unit=unit)
    assert result == expected and type(result) is float


def test_parse_duration_default_unit_is_ms():
    assert parse_duration("2s", "downtime") == 2000.0
    assert parse_duration(5, "downtime") == 5.0


def test_parse_duration_bad_unit_argument():
    with pytest.raises(ValueError, match="downtime.*'min'"):
        parse_duration("1s", "downtime", unit="min")


PARSERS = [parse_size, parse_rate, parse_duration]


@pytest.mark.parametrize("parser", PARSERS)
@pytest.mark.parametrize("value", [True, False, np.bool_(True), None,
                                   [1, 2], {"a": 1}, (1,), b"4GiB", 1j,
                                   object()])
def test_type_errors(parser, value):
    with pytest.raises(TypeError) as exc:
        parser(value, "my_param")
    msg = str(exc.value)
    assert msg.startswith("my_param: expected a number or a string")
    assert repr(value) in msg and type(value).__name__ in msg


def test_type_error_example_message():
    with pytest.raises(TypeError) as exc:
        parse_size([1, 2], "ram_size")
    assert str(exc.value) == ("ram_size: expected a number or a string with "
                              "a unit such as '4GiB', got list [1, 2]")


@pytest.mark.parametrize("parser, value, fragment", [
    (parse_size, "", "size"), (parse_size, "   ", "size"),
    (parse_size, "GiB", "size"), (parse_size, "4 GiBs", "size"),
    (parse_size, "4gb", "size"), (parse_size, "4mb", "'M'"),
    (parse_size, "4mB", "'M'"), (parse_size, "4kiB", "size"),
    (parse_size, "4KIB", "size"), (parse_size, "4PB", "size"),
    (parse_size, "4 G B", "size"), (parse_size, "1_000", "size"),
    (parse_size, "4GiB/s", "rate"), (parse_size, "10MB/s", "rate"),
    (parse_size, "5ms", "duration"), (parse_size, "1e", "size"),
    (parse_size, "0x10", "size"), (parse_size, "1,5GB", "size"),
    (parse_rate, "4GiB", "'/s'"), (parse_rate, "10Gbit", "'/s'"),
    (parse_rate, "300 furlongs/s", "'300MiB/s'"),
    (parse_rate, "10 Gb /s", "rate"), (parse_rate, "4GiB", "'4GiB/s'"),
    (parse_rate, "10Gb/h", "rate"), (parse_rate, "1s", "duration"),
    (parse_rate, "10mb/s", "'M'"), (parse_rate, "fast", "rate"),
    (parse_duration, "5m", "duration"), (parse_duration, "5 mins", "duration"),
    (parse_duration, "1ps", "duration"),
    (parse_duration, "10MB", "size"), (parse_duration, "1GB/s", "rate"),
    (parse_duration, "1S", "duration"), (parse_duration, "s", "duration"),
])
def test_value_errors(parser, value, fragment):
    with pytest.raises(ValueError) as exc:
        parser(value, "my_param")
    msg = str(exc.value)
    assert msg.startswith("my_param: cannot read")
    assert repr(value) in msg and fragment in msg


def test_value_error_example_message():
    with pytest.raises(ValueError) as exc:
        parse_rate("300 furlongs/s", "dirty_rate")
    assert str(exc.value).startswith(
        "dirty_rate: cannot read '300 furlongs/s' as a rate; use a number in "
        "B/s or a string such as '300MiB/s', '10Gbit/s', '1.25GB/s'")


@pytest.mark.parametrize("nbytes, expected", [
    (0, "0 B"), (1, "1 B"), (1023, "1023 B"), (0.5, "0.5 B"),
    (1024, "1 KiB"), (1536, "1.5 KiB"), (4294967296, "4 GiB"),
    (np.int64(3 * 2**20), "3 MiB"), (123456789, "118 MiB"),
    (10**6, "977 KiB"), (2**40 * 5000, "5000 TiB"), (-1536, "-1.5 KiB"),
    (1.0 * 2**30 * 1.234567, "1.23 GiB"), (math.inf, "inf B"),
])
def test_format_size(nbytes, expected):
    assert format_size(nbytes) == expected


@pytest.mark.parametrize("bps, expected", [
    (1.25e9, "10 Gbit/s"), (12.5e9, "100 Gbit/s"), (1.25e7, "100 Mbit/s"),
    (1.875e8, "1500 Mbit/s"), (300 * 2**20, "300 MiB/s"), (2**30, "1 GiB/s"),
    (0, "0 B/s"), (1000, "1000 B/s"), (125000, "1 Mbit/s"),
    (-1.25e9, "-10 Gbit/s"), (math.nan, "nan B/s"),
])
def test_format_rate(bps, expected):
    assert format_rate(bps) == expected


@pytest.mark.parametrize("nbytes", [0, 1, 1536, 3 * 2**20, 4 * 2**30, 2**40])
def test_format_size_round_trip(nbytes):
    assert parse_size(format_size(nbytes), "x") == nbytes


@pytest.mark.parametrize("bps", [1.25e9, 1.25e7, 300 * 2**20, 1000.0])
def test_format_rate_round_trip(bps):
    assert parse_rate(format_rate(bps), "x") == bps


@pytest.mark.parametrize("func", [format_size, format_rate])
@pytest.mark.parametrize("value", [True, None, "4GiB", [1]])
def test_formatters_reject_non_numbers(func, value):
    with pytest.raises(TypeError):
        func(value)


def test_display_formatting_for_people():
    from toolkit.units import display_unit, format_count, format_duration, format_number
    assert display_unit("rate", [20 * 2**20, 2**31]) == ("MiB/s", 2.0**20)
    assert display_unit("rate", [1.25e8, 1.25e9, 3.125e9]) == ("Gbit/s", 1.25e8)
    assert display_unit("size", [2**30, 2**33]) == ("GiB", 2.0**30)
    assert display_unit("size", [0, 512]) == ("B", 1.0)
    with pytest.raises(ValueError, match="kind"):
        display_unit("duration", [1])
    assert [format_number(x) for x in (70.71, 2048, 0.5, 4.333, 0)] == \
        ["71", "2048", "0.5", "4.33", "0"]
    assert format_count(1, "chunk") == "1 chunk" and format_count(1234, "sync") == "1,234 syncs"
    assert format_count(2, "batch", "batches") == "2 batches"
    assert [format_duration(ms) for ms in (272.2, 4328.8, 300037.59126840004, 750_000)] == \
        ["272 ms", "4.33 s", "300 s", "12.5 min"]
