"""Read user values with units into plain numbers.

Every parser takes the value and the parameter ``name`` (used in error
messages) and accepts either a number or a string.

Numbers
    A bare number (``int``, ``float``, a NumPy integer or floating scalar,
    or a string holding only a number) is in the parameter's base unit:
    bytes for sizes, bytes per second for rates, and the ``unit`` argument
    of :func:`parse_duration` for durations. ``bool`` is not a number here.

Strings
    A number, optional whitespace, then a unit, e.g. ``"4GiB"``,
    ``"100 MB/s"``, ``"1.5s"``. The number may be an integer, a decimal or
    use scientific notation (``"1.25"``, ``"1e9"``, ``"2.5e3"``), with an
    optional sign; ``"nan"`` and ``"inf"`` are read as floats. Units are
    case-sensitive and matched exactly.

Sizes
    ``B`` (byte) or ``b`` / ``bit`` (bit, 1/8 byte), optionally preceded by
    a prefix: decimal ``k`` or ``K`` (10^3), ``M`` (10^6), ``G`` (10^9),
    ``T`` (10^12), or binary ``Ki`` (2^10), ``Mi`` (2^20), ``Gi`` (2^30),
    ``Ti`` (2^40). So ``kB``/``KB``, ``MB``, ``GB``, ``TB`` are powers of
    1000 bytes, ``KiB``, ``MiB``, ``GiB``, ``TiB`` powers of 1024 bytes,
    ``kbit``/``kb``, ``Mbit``/``Mb``, ``Gbit``/``Gb``, ``Tbit``/``Tb`` powers
    of 1000 bits and ``Kibit``, ``Mibit``, ``Gibit``, ``Tibit`` powers of
    1024 bits. No other prefix is accepted: in particular a lowercase ``m``
    is neither milli nor mega, so ``mb`` and ``mB`` are errors.

Rates
    A size unit followed by ``/s`` or ``ps``, e.g. ``"10Gbit/s"``,
    ``"10Gb/s"``, ``"10Gbps"``, ``"1.25GB/s"``, ``"300MiB/s"``. The result
    is in bytes per second. A size unit without ``/s`` is not a rate.

Durations
    ``ns``, ``us`` (or ``µs``), ``ms``, ``s``, ``min``, ``h``.

The parsers check types and syntax only, not ranges: negative, NaN and
infinite values are returned as numbers for the caller to validate.
``TypeError`` is raised for values that are neither numbers nor strings,
``ValueError`` for strings that cannot be read or carry a unit of the
wrong kind.
"""

import math
import numbers
import re
from decimal import Decimal
from fractions import Fraction

__all__ = [
    "parse_size",
    "parse_rate",
    "parse_duration",
    "format_size",
    "format_rate",
    "format_count",
    "format_number",
    "format_duration",
    "display_unit",
]

_NUMBER_RE = re.compile(
    r"(?P<num>[+-]?(?:(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?"
    r"|(?i:inf(?:inity)?|nan)))\s*(?P<unit>.*)",
    re.DOTALL,
)
_SIZE_UNIT_RE = re.compile(
    r"(?P<prefix>|k|K|M|G|T|Ki|Mi|Gi|Ti)(?P<base>B|b|bit)(?P<per>/s|ps)?"
)
_MILLI_RE = re.compile(r"mi?(?:B|b|bit)(?:/s|ps)?")

_PREFIXES = {
    "": 1,
    "k": 10**3,
    "K": 10**3,
    "M": 10**6,
    "G": 10**9,
    "T": 10**12,
    "Ki": 2**10,
    "Mi": 2**20,
    "Gi": 2**30,
    "Ti": 2**40,
}
_BASES = {"B": Fraction(1), "b": Fraction(1, 8), "bit": Fraction(1, 8)}

# Duration units in nanoseconds.
_DURATIONS = {
    "ns": 1,
    "us": 10**3,
    "\u00b5s": 10**3,  # MICRO SIGN
    "\u03bcs": 10**3,  # GREEK SMALL LETTER MU
    "ms": 10**6,
    "s": 10**9,
    "min": 60 * 10**9,
    "h": 3600 * 10**9,
}
_DURATION_OUT = ("ns", "us", "ms", "s")

_SIZE_HELP = (
    "use a number in bytes or a string such as '4GiB', '512MB', '1.5TiB' "
    "(units: B, kB, MB, GB, TB, KiB, MiB, GiB, TiB, and bits: kbit, Mbit, "
    "Gbit, Tbit, Kibit, Mibit, Gibit)"
)
_RATE_HELP = (
    "use a number in B/s or a string such as '300MiB/s', '10Gbit/s', "
    "'1.25GB/s' (a size unit followed by '/s' or 'ps')"
)
_DURATION_HELP = (
    "use a number in {unit} or a string such as '300ms', '1.5s', '2us' "
    "(units: ns, us, \u00b5s, ms, s, min, h)"
)


def _check_type(value, name, example):
    """Raise TypeError unless `value` is a real number (not bool) or a str."""
    if isinstance(value, str):
        return
    if isinstance(value, numbers.Real) and not isinstance(value, bool):
        return
    raise TypeError(
        f"{name}: expected a number or a string with a unit such as "
        f"{example!r}, got {type(value).__name__} {value!r}"
    )


def _classify(unit):
    """Return (kind, factor) for a unit string.

    kind is 'size' (factor in bytes), 'rate' (bytes/s), 'duration' (ns)
    or None for an unknown unit.
    """
    m = _SIZE_UNIT_RE.fullmatch(unit)
    if m:
        factor = _PREFIXES[m["prefix"]] * _BASES[m["base"]]
        return ("rate" if m["per"] else "size"), factor
    if unit in _DURATIONS:
        return "duration", Fraction(_DURATIONS[unit])
    return None, None


def _hint(text, unit, expected):
    """Short explanation of why `unit` is not a valid `expected` unit."""
    kind, _ = _classify(unit)
    if kind == "size" and expected == "rate":
        return f"a rate needs '/s' or 'ps' after the unit, e.g. '{text}/s'; "
    if kind == "rate" and expected == "size":
        return "that is a rate, a size takes no '/s'; "
    if kind is not None and kind != expected:
        return f"{unit!r} is a {kind} unit, not a {expected} unit; "
    if _MILLI_RE.fullmatch(unit):
        return "'m' is not a prefix here, write 'M' (10^6) or 'Mi' (2^20); "
    return ""


def _parse_string(value, name, expected, help_text):
    """Split a string into (number, factor); factor is None without unit.

    number is a Decimal; factor is a Fraction in the base unit of
    `expected` ('size' -> B, 'rate' -> B/s, 'duration' -> ns).
    """
    text = value.strip()
    m = _NUMBER_RE.fullmatch(text)
    unit = m["unit"] if m else None
    if m and unit == "":
        return Decimal(m["num"]), None
    kind, factor = _classify(unit) if m else (None, None)
    if kind == expected:
        return Decimal(m["num"]), factor
    hint = _hint(text, unit, expected) if m else ""
    raise ValueError(
        f"{name}: cannot read {value!r} as a {expected}; {hint}{help_text}"
    )


def _scale(number, factor):
    """Return number * factor, exact as a Fraction when that is cheap.

    Non-finite or extreme numbers come back as a float.
    """
    if number.is_finite() and abs(number.adjusted()) <= 400:
        return Fraction(number) * factor
    return float(number) * float(factor)


def _to_float(x):
    """float(x), giving +-inf instead of OverflowError for huge ints."""
    try:
        return float(x)
    except OverflowError:
        return math.inf if x > 0 else -math.inf


def parse_size(value, name: str) -> int:
    """Read a size.

    Parameters
    ----------
    value : int, float, or str
        A number of bytes, or a string such as ``"4GiB"``, ``"512 MB"``,
        ``"8Gbit"``. [B]
    name : str
        Parameter name, used in error messages.

    Returns
    -------
    int
        Size, rounded to the nearest byte (ties to even). A non-finite
        value (NaN, inf) is returned unchanged as a float. [B]

    Raises
    ------
    TypeError
        If `value` is not a number or a string (``bool`` is rejected).
    ValueError
        If the string cannot be read or its unit is not a size unit.
    """
    _check_type(value, name, "4GiB")
    if isinstance(value, str):
        number, factor = _parse_string(value, name, "size", _SIZE_HELP)
        x = _scale(number, 1 if factor is None else factor)
    elif isinstance(value, numbers.Integral):
        return int(value)
    else:
        x = value
    if isinstance(x, float) or not isinstance(x, numbers.Rational):
        x = _to_float(x)
        if not math.isfinite(x):
            return x
    return round(x)


def parse_rate(value, name: str) -> float:
    """Read a rate.

    Parameters
    ----------
    value : int, float, or str
        A number of bytes per second, or a string such as ``"10Gbit/s"``,
        ``"10Gbps"``, ``"1.25GB/s"``, ``"300 MiB/s"``. [B/s]
    name : str
        Parameter name, used in error messages.

    Returns
    -------
    float
        Rate. [B/s]

    Raises
    ------
    TypeError
        If `value` is not a number or a string (``bool`` is rejected).
    ValueError
        If the string cannot be read or its unit is not a rate unit
        (a size unit needs ``/s`` or ``ps``).
    """
    _check_type(value, name, "10Gbit/s")
    if isinstance(value, str):
        number, factor = _parse_string(value, name, "rate", _RATE_HELP)
        return _to_float(_scale(number, 1 if factor is None else factor))
    return _to_float(value)


def parse_duration(value, name: str, unit: str = "ms") -> float:
    """Read a duration.

    Parameters
    ----------
    value : int, float, or str
        A number in `unit`, or a string such as ``"300ms"``, ``"1.5 s"``,
        ``"2us"``, ``"5min"``. [`unit`]
    name : str
        Parameter name, used in error messages.
    unit : {'ns', 'us', 'ms', 's'}, optional
        Unit of bare numbers and of the result. Default ``'ms'``.

    Returns
    -------
    float
        Duration. [`unit`]

    Raises
    ------
    TypeError
        If `value` is not a number or a string (``bool`` is rejected).
    ValueError
        If the string cannot be read or its unit is not a duration unit,
        or if `unit` is not one of ns, us, ms, s.
    """
    if unit not in _DURATION_OUT:
        raise ValueError(
            f"{name}: unit must be one of 'ns', 'us', 'ms', 's', got {unit!r}"
        )
    _check_type(value, name, "300ms")
    if isinstance(value, str):
        help_text = _DURATION_HELP.format(unit=unit)
        number, factor = _parse_string(value, name, "duration", help_text)
        if factor is None:
            return _to_float(_scale(number, 1))
        return _to_float(_scale(number, factor / _DURATIONS[unit]))
    return _to_float(value)


def _format_number(x):
    """Format a finite float with at most 3 significant digits."""
    if x == 0:
        return "0"
    if not 1e-3 <= abs(x) < 1e15:
        return f"{x:.3g}"
    decimals = 2 - math.floor(math.log10(abs(x)))
    r = round(x, decimals)
    if decimals <= 0:
        return str(int(r))
    return f"{r:.{decimals}f}".rstrip("0").rstrip(".")


def _format_binary(x, suffix):
    """Format `x` bytes with the largest binary unit up to TiB."""
    if not math.isfinite(x):
        return f"{x} B{suffix}"
    units = ("B", "KiB", "MiB", "GiB", "TiB")
    k = 0
    while abs(x) >= 1024 and k < len(units) - 1:
        x /= 1024
        k += 1
    if k == 0 and float(x).is_integer():
        text = str(int(x))  # whole bytes below 1 KiB are shown exactly
    else:
        text = _format_number(x)
    return f"{text} {units[k]}{suffix}"


def format_size(nbytes) -> str:
    """Format a size for humans, in binary units.

    Uses the largest of B, KiB, MiB, GiB, TiB that keeps the number at
    least 1, with at most 3 significant digits (whole byte counts below
    1 KiB are shown exactly), e.g. ``4294967296 -> "4 GiB"``,
    ``1536 -> "1.5 KiB"``, ``0 -> "0 B"``. The result can be read back by
    :func:`parse_size`.

    Parameters
    ----------
    nbytes : int or float
        Size. [B]

    Returns
    -------
    str
        Size with a unit.
    """
    _check_type(nbytes, "nbytes", "4GiB")
    if isinstance(nbytes, str):
        raise TypeError(f"nbytes: expected a number, got str {nbytes!r}")
    return _format_binary(_to_float(nbytes), "")


def format_rate(bps) -> str:
    """Format a rate for humans.

    A rate that is a whole, nonzero number of Gbit/s (below 10^15 of them) is
    shown in Gbit/s (``1.25e9 -> "10 Gbit/s"``); otherwise one that is a whole
    number of Mbit/s is shown in Mbit/s (``1.875e8 -> "1500 Mbit/s"``). Anything
    else is shown like :func:`format_size` with ``/s`` appended
    (``314572800 -> "300 MiB/s"``). The result can be read back by
    :func:`parse_rate`.

    Parameters
    ----------
    bps : int or float
        Rate. [B/s]

    Returns
    -------
    str
        Rate with a unit.
    """
    _check_type(bps, "bps", "10Gbit/s")
    if isinstance(bps, str):
        raise TypeError(f"bps: expected a number, got str {bps!r}")
    x = _to_float(bps)
    if math.isfinite(x) and x != 0:
        bits = x * 8
        for factor, unit in ((1e9, "Gbit/s"), (1e6, "Mbit/s")):
            q = bits / factor
            # beyond 10^15 every float is whole (and x * 8 may overflow): no digit strings
            if abs(q) >= 1e15:
                continue
            n = round(q)
            if n != 0 and abs(q - n) <= 1e-9 * abs(q):
                return f"{n} {unit}"
    return _format_binary(x, "/s")


def format_number(x) -> str:
    """A number for people: whole from 10 up (``70.71 -> "71"``, ``2048 -> "2048"``),
    3 significant digits below (``0.5 -> "0.5"``, ``4.333 -> "4.33"``)."""
    x = _to_float(x)
    if not math.isfinite(x):
        return str(x)
    if abs(x) >= 10:
        return str(round(x)) if abs(x) < 1e15 else f"{x:.3g}"
    return _format_number(x)


def format_count(n, noun: str, plural: str | None = None) -> str:
    """``n`` and its noun, singular for one: ``"1 chunk"``, ``"27 chunks"``,
    ``"1,234 syncs"`` (``plural`` for irregular nouns)."""
    n = int(n)
    return f"{n:,} {noun if n == 1 else (plural or noun + 's')}"


def format_duration(ms) -> str:
    """A duration given in [ms], rounded for people: ``"272 ms"``, ``"4.33 s"``,
    ``"300 s"`` (``300037.6 -> "300 s"``), ``"12.5 min"`` from 10 min up."""
    ms = _to_float(ms)
    if not math.isfinite(ms):
        return f"{ms} ms"
    if abs(ms) < 1000:
        return f"{format_number(ms)} ms"
    if abs(ms) < 600_000:
        return f"{format_number(ms / 1000)} s"
    return f"{_format_number(ms / 60_000)} min"


_RATE_BITS = (("Gbit/s", 1.25e8), ("Mbit/s", 1.25e5))
_BINARY = ("B", "KiB", "MiB", "GiB", "TiB")


def display_unit(kind: str, values) -> tuple[str, float]:
    """One unit for a set of sizes or rates, e.g. the ticks of an axis.

    Rates that are all whole Gbit/s (or Mbit/s), as links are, get that unit;
    otherwise the largest binary unit (B .. TiB, with ``/s`` for rates) that
    keeps the smallest nonzero value at least 1.

    Parameters
    ----------
    kind : {"size", "rate"}
    values : iterable of float
        In [B] or [B/s].

    Returns
    -------
    (str, float)
        The unit and its size in the base unit: ``values / factor`` are in ``unit``.
    """
    if kind not in ("size", "rate"):
        raise ValueError(f"display_unit: kind must be 'size' or 'rate', got {kind!r}")
    xs = [abs(_to_float(v)) for v in values]
    xs = [x for x in xs if math.isfinite(x) and x > 0]
    if kind == "rate" and xs:
        for unit, factor in _RATE_BITS:
            if all(abs(x / factor - round(x / factor)) <= 1e-9 * x / factor for x in xs):
                return unit, factor
    k = 0
    low = min(xs, default=0)
    while k < len(_BINARY) - 1 and low >= 1024 ** (k + 1):
        k += 1
    return _BINARY[k] + ("/s" if kind == "rate" else ""), float(1024 ** k)
