"""One validated, immutable migration scenario, with QEMU's names, defaults and ranges.

Every public parameter is listed once in :data:`PARAMETERS` with its kind, base
unit, default, allowed range and a one-line description; validation, sweep
coordinates, the README's parameter table and the Dataset attributes all read
that table. Each kind is one :class:`Kind` object (:data:`KINDS`) that reads a
value, stores it canonically, makes it a sweep coordinate and describes it in
words; code that depends on a parameter's kind asks it instead of testing names.
Values may be numbers in the base unit or strings with units (see
:mod:`toolkit.units`). Errors name the parameter, the value and the range,
and are raised before any simulation work starts.
"""
from __future__ import annotations

import difflib
import hashlib
import math
import numbers
import re
import textwrap
from dataclasses import dataclass, field, fields

import numpy as np

from . import hosts
from .constants import PAGE_SIZE
from .units import _to_float, format_rate, format_size, parse_duration, parse_rate, parse_size
from .workloads import parse_phases, read_write_trace, trace_position

SIZE_MAX = 2**64 - 1                # QEMU's bound for max-bandwidth and avail-switchover-bandwidth
MAX_MIGRATE_DOWNTIME = 2000 * 1000  # QEMU's bound for downtime-limit [ms]
MAX_THROTTLE = 128 << 20            # QEMU's default max-bandwidth [B/s]
WORKLOADS = ("uniform", "hotcold", "sequential", "zipf", "replay", "phases")
#: QEMU releases whose convergence rules differ (``qemu_version``); 10.1 stands for 10.1 and later.
QEMU_VERSIONS = ("8.2", "9.0", "9.1", "9.2", "10.0", "10.1")


def _bound(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else f"{x:g}"


def _power_words(x: float) -> str:
    """A bound as written in the docs: 2^40, 2^64 - 1 and 10^6 rather than their digits."""
    if x > 0 and (abs(x) >= 10**6 or abs(x) < 10**-3) and \
            math.isclose(x, 10.0 ** round(math.log10(x)), rel_tol=1e-12):
        return f"10^{round(math.log10(x))}"
    x = int(x) if float(x).is_integer() else x
    if isinstance(x, int) and x >= 2**20:
        for k in range(20, 65):
            if x in (2**k, 2**k - 1):
                return f"2^{k}" + (" - 1" if x == 2**k - 1 else "")
    return _bound(x)


# --- kinds: how the values of each kind of parameter are read, stored, swept and shown

class Kind:
    """How the values of one kind of parameter are read, stored, swept and shown.

    One object per kind (:data:`KINDS`); a :class:`Param` names its kind and
    delegates to it. This base class is a label taken as given (text).

    Attributes
    ----------
    name : str
        What :attr:`Param.kind` says.
    quantity : str or None
        What a number of it measures, for display: ``"size"`` [B], ``"rate"``
        [B/s], ``"duration"``; None for anything else.
    numeric : bool
        Its stored values are numbers (a sweep's coordinate of them may still be
        labels, see :meth:`coordinates`).
    relative : bool
        A value may be given relative to another parameter's
        (:attr:`Param.resolved_against`), read by :meth:`resolve`.
    """

    name = "text"
    quantity: str | None = None
    numeric = False
    relative = False
    words = "str"            # its type in numpydoc's words
    what = "text"            # what it expects, in a TypeError

    def parse(self, spec: Param, value):
        """``value`` checked and in its canonical form; raises naming ``spec``."""
        if not isinstance(value, str):
            raise TypeError(f"{spec.name}: expected {self.what} (str), got "
                            f"{type(value).__name__} {value!r}")
        return str(value)

    def resolve(self, spec: Param, value, against):
        """``value`` with a relative setting read against ``against``, the value of
        :attr:`Param.resolved_against`; other values unchanged (for :meth:`parse`)."""
        return value

    def coordinates(self, spec: Param, values: list) -> list:
        """A sweep's coordinate values for ``values``: canonical values, or labels
        where a value's meaning differs from point to point."""
        return [self.parse(spec, v) for v in values]

    def meaning(self, spec: Param, value, coordinate):
        """What a swept ``value`` (``coordinate`` on its axis) stands for: two values
        with the same meaning are the same point."""
        return coordinate

    def units(self, spec: Param) -> str:
        """UDUNITS of the base value (``B s-1``, ``ms GiB-1``; ``1`` for none)."""
        return f"{spec.unit} {spec.per}" if spec.per else spec.unit

    def type_words(self, spec: Param) -> str:
        """The accepted type in numpydoc's words (``int or str``)."""
        return self.words

    def annotation(self, spec: Param) -> str:
        """The honest type hint of a :class:`Scenario` field of it (``int | str | None``)."""
        return self.type_words(spec).replace(" or ", " | ") + " | None"

    def default_words(self, spec: Param) -> str:
        """The default as one would write it (``4GiB``, ``300``)."""
        value = spec.default
        if isinstance(value, float) and value.is_integer():
            return str(int(value))
        return str(value)

    def range_words(self, spec: Param) -> str:
        """The values it takes, for the docs (``[4 KiB, 16 TiB]``); "" where the
        type says it all."""
        return ""


class _Path(Kind):
    name, what = "path", "a file path"


class _Choice(Kind):
    """One of :attr:`Param.choices`."""

    name = "choice"

    def parse(self, spec, value):
        if not isinstance(value, str):
            raise TypeError(f"{spec.name}: expected one of {spec.choices}, got "
                            f"{type(value).__name__} {value!r}")
        if value not in spec.choices:
            raise ValueError(f"{spec.name}={value!r} is not a known "
                             f"{spec.name.replace('_', ' ')}: expected one of "
                             f"{', '.join(spec.choices)}")
        return str(value)

    def type_words(self, spec):
        return "{" + ", ".join(repr(c) for c in spec.choices) + "}"

    def annotation(self, spec):
        return "str | None"


class _Policy(Kind):
    """A management policy with its options (:mod:`toolkit.policies`), stored as its
    canonical string."""

    name = "policy"

    def parse(self, spec, value):
        from . import policies
        return policies.to_string(policies.parse(value))


class _Flag(Kind):
    name, words = "bool", "bool"

    def parse(self, spec, value):
        if not isinstance(value, (bool, np.bool_)):
            raise TypeError(f"{spec.name}: expected True or False, got "
                            f"{type(value).__name__} {value!r}")
        return bool(value)


class _Number(Kind):
    """A number in [lo, hi] in the base unit; whole where QEMU takes an integer
    (:attr:`Param.integer`); rounded as :attr:`Param.multiple` and
    :attr:`Param.decimals` say."""

    name, numeric, words = "int", True, "int"
    whole = True         # every value is an integer, whatever Param.integer says
    exact = False        # an int stays an int (QEMU's 2^64 - 1 is beyond a float)
    always_float = False

    def read(self, spec, value):
        """``value`` as a number in the base unit, unchecked."""
        if isinstance(value, bool) or not isinstance(value, numbers.Real):
            raise TypeError(f"{spec.name}: expected a number, got {type(value).__name__} "
                            f"{value!r}")
        return value

    def parse(self, spec, value):
        if type(value) is not int and (spec.integer or self.whole) and \
                isinstance(value, numbers.Integral) and not isinstance(value, bool):
            value = int(value)       # exact: QEMU's bounds (2^64 - 1 B/s) are beyond a float's
        exact = spec.integer and self.exact and type(value) is int
        x = value if exact else self.read(spec, value)
        # one canonical type per kind (1 and 1.0 are the same share, and seed the same)
        x = _to_float(x) if not isinstance(x, int) or self.always_float else x
        bad = (isinstance(x, float) and not math.isfinite(x)) or \
            (spec.lo is not None and (x < spec.lo or (spec.lo_open and x == spec.lo))) or \
            (spec.hi is not None and x > spec.hi)
        if spec.integer or self.whole:
            if not bad and float(x) != math.floor(float(x)):
                bad = True
            if not bad:
                x = int(x) if isinstance(x, int) else int(round(x))
        if bad:
            raise ValueError(f"{spec.name}={value!r} is out of range: expected "
                             f"{self.range_text(spec)}")
        if spec.multiple:
            x = x // spec.multiple * spec.multiple
        if spec.decimals is not None:
            x = round(x, spec.decimals)
        return x

    def range_text(self, spec) -> str:
        """The range in an error message: 'an integer in [0, 2000000] ms (QEMU
        'downtime-limit')' and the like."""
        kind = "an integer" if spec.integer or self.whole else "a number"
        # people read B/s, not CF's "B s-1"
        unit = "" if spec.units == "1" else f" {spec.units.replace(' s-1', '/s')}"
        text = f"{kind} in {'(' if spec.lo_open else '['}{_bound(spec.lo)}, " \
            f"{_bound(spec.hi)}]{unit}{self.range_extra(spec)}"
        return text + (f" (QEMU '{spec.qemu}')" if spec.qemu else "")

    def range_extra(self, spec) -> str:
        """The range again with readable units, for an error message (sizes, rates)."""
        return ""

    def bound_words(self, spec, x) -> str:
        """A bound in the docs (2^40, 10^6)."""
        return _power_words(x)

    def range_words(self, spec):
        if spec.lo is None:
            return ""
        return f"{'(' if spec.lo_open else '['}{self.bound_words(spec, spec.lo)}, " \
            f"{self.bound_words(spec, spec.hi)}]"


class _Fraction(_Number):
    name, words, whole, always_float = "fraction", "float", False, True

    def default_words(self, spec):
        return str(spec.default)


class _Size(_Number):
    name, quantity, words, whole = "size", "size", "int or str", False

    def read(self, spec, value):
        return parse_size(value, spec.name)

    def range_extra(self, spec):
        return f" ({format_size(spec.lo)} to {format_size(spec.hi)})"

    def bound_words(self, spec, x):
        return format_size(x)


class _Rate(_Number):
    name, quantity, whole, exact = "rate", "rate", False, True

    def read(self, spec, value):
        return parse_rate(value, spec.name)

    def type_words(self, spec):
        return ("int" if spec.integer else "float") + " or str"

    def default_words(self, spec):
        value = spec.default
        if value and not isinstance(value, str):
            return f"{value} ({format_rate(value)})"
        return super().default_words(spec)

    def range_extra(self, spec):
        return f" ({format_rate(spec.lo)} to {format_rate(spec.hi)})"

    def bound_words(self, spec, x):
        # QEMU's bound 2^64 - 1 reads better as a power than as a rate
        return format_rate(x) if spec.hi < SIZE_MAX else _power_words(x)


class _Duration(_Number):
    """A duration in :attr:`Param.time_unit`."""

    name, quantity, whole = "duration", "duration", False

    def read(self, spec, value):
        return parse_duration(value, spec.name, spec.time_unit)

    def units(self, spec):
        return f"{spec.time_unit} {spec.per}" if spec.per else spec.time_unit

    type_words = _Rate.type_words


def _is_estimate(value) -> bool:
    return isinstance(value, str) and value.strip().lower() == "estimate"


_RELATIVE = re.compile(r"^\s*(?:(?P<factor>[0-9]*\.?[0-9]+(?:[eE][+-]?[0-9]+)?)\s*x\s*)?link\s*$")


class _Avail(_Rate):
    """A rate, where 0 (``"estimate"``) means QEMU's own estimate, or a multiple of
    :attr:`Param.resolved_against` (the link): ``"link"``, ``"0.5x link"``.

    Swept, the relative settings are labels (one label, a different rate at each
    link) resolved per point; stored, a value is in whole B/s.
    """

    name, relative = "avail", True

    def link_factor(self, spec, value) -> float | None:
        """The multiple of the link ``value`` names: 1 for ``"link"``, 0.5 for
        ``"0.5x link"``; None for ``"estimate"``, a number or a rate. Raises
        ValueError for a string that mentions ``link`` or ``estimate`` but is
        neither form."""
        if not isinstance(value, str) or _is_estimate(value):
            return None
        match = _RELATIVE.match(value.lower())
        if match is None:
            if "link" in value.lower() or "estimate" in value.lower():
                raise ValueError(f"{spec.name}={value!r}: expected a rate such as "
                                 "'10Gbit/s', or 'estimate', 'link', 'Nx link' (e.g. '2x link')")
            return None
        return float(match["factor"]) if match["factor"] else 1.0

    def is_label(self, spec, value) -> bool:
        """Whether ``value`` is ``"estimate"`` or relative to the link."""
        return _is_estimate(value) or self.link_factor(spec, value) is not None

    def resolve(self, spec, value, against):
        if _is_estimate(value):
            return 0
        factor = self.link_factor(spec, value)
        if factor is None:
            return value
        rate = factor * against
        if not rate <= spec.hi:            # also an infinite "1e400x link"
            raise ValueError(f"{spec.name}={value!r} is out of range at "
                             f"{spec.resolved_against}={against!r} ({rate:g} B/s): expected "
                             f"{self.range_text(spec)}")
        return int(round(rate))

    def parse(self, spec, value):
        if _is_estimate(value):
            return 0
        if self.is_label(spec, value):
            raise ValueError(f"{spec.name}={value!r} is relative to {spec.resolved_against}: "
                             "it has a value only in a Scenario or a sweep, which know the "
                             f"{spec.resolved_against}")
        return super().parse(spec, value)

    def coordinates(self, spec, values):
        # labels if any value is one: the same label stands for another rate at each link
        if any(self.is_label(spec, v) for v in values):
            return [v if isinstance(v, str) else str(v) for v in values]
        return super().coordinates(spec, values)

    def meaning(self, spec, value, coordinate):
        # "link" and "1x link" are one point; so are "estimate", 0 and "0x link"
        factor = self.link_factor(spec, value)
        return ("x link", factor) if factor else self.parse(spec, self.resolve(spec, value, 0))


#: One :class:`Kind` per parameter kind, by :attr:`Kind.name`.
KINDS = {k.name: k for k in (Kind(), _Path(), _Choice(), _Policy(), _Flag(), _Number(),
                             _Fraction(), _Size(), _Rate(), _Duration(), _Avail())}


@dataclass(frozen=True)
class Param:
    """Specification of one scenario parameter; what depends on its kind, its
    :attr:`rules` decide."""

    name: str
    kind: str          # a name in KINDS: size | rate | avail | duration | fraction | int | ...
    default: object
    unit: str          # base unit of bare numbers, UDUNITS-style
    lo: float | None = None
    hi: float | None = None
    doc: str = ""
    time_unit: str = "ms"   # for kind == "duration": the unit bare numbers are in
    integer: bool = False   # QEMU takes an integer here
    qemu: str | None = None  # QEMU parameter name, when this is one
    lo_open: bool = False    # the lower bound itself is not allowed
    choices: tuple = ()      # for kind == "choice": the allowed values
    per: str = ""            # a cost per something: UDUNITS of it, e.g. "GiB-1"
    multiple: int = 0        # stored rounded down to a multiple of this (0: as read)
    decimals: int | None = None    # stored rounded to this many decimal places
    # the coupling, declared here only: a relative value of this parameter is read
    # against the value of resolved_against; the value of a parameter with
    # supplies_defaults is a profile giving the defaults of those parameters
    resolved_against: str | None = None
    supplies_defaults: tuple = ()
    #: Its :class:`Kind` (``KINDS[kind]``): how its values are read, stored, swept and shown.
    rules: Kind = field(init=False, repr=False, compare=False)

    def __post_init__(self):
        if self.kind not in KINDS:
            raise ValueError(f"{self.name}: kind {self.kind!r} is not one of {', '.join(KINDS)}")
        if bool(self.resolved_against) != KINDS[self.kind].relative:
            raise ValueError(f"{self.name}: resolved_against goes with a relative kind "
                             f"({', '.join(k.name for k in KINDS.values() if k.relative)})")
        object.__setattr__(self, "rules", KINDS[self.kind])

    @property
    def quantity(self) -> str | None:
        """What a number of it measures: ``"size"``, ``"rate"``, ``"duration"`` or None."""
        return self.rules.quantity

    def parse(self, value):
        """``value`` checked and in its canonical form (base unit; a label, a flag or a
        path as given); raises naming the parameter, the value and the range."""
        return self.rules.parse(self, value)

    def resolve(self, value, against):
        """``value`` with a relative setting read against ``against`` (the value of
        :attr:`resolved_against`); see :meth:`Kind.resolve`."""
        return self.rules.resolve(self, value, against)

    def coordinates(self, values: list) -> list:
        """A sweep's coordinate values for ``values`` (:meth:`Kind.coordinates`)."""
        return self.rules.coordinates(self, values)

    def meaning(self, value, coordinate):
        """What a swept value stands for (:meth:`Kind.meaning`)."""
        return self.rules.meaning(self, value, coordinate)

    @property
    def units(self) -> str:
        """The units of its base value, as in Dataset attributes (e.g. ``ms GiB-1``)."""
        return self.rules.units(self)

    # --- how the table reads in the docs (Scenario's docstring, the README's table)

    @property
    def display_units(self) -> str:
        """Its units as people write them (``B/s``, ``ms/GiB``); "" for a pure number."""
        over = [u[:-2] for u in self.units.split() if u.endswith("-1")]
        top = [u for u in self.units.split() if not u.endswith("-1") and u != "1"]
        return "/".join([" ".join(top) or "1", *over]) if over else " ".join(top)

    @property
    def type_words(self) -> str:
        """Its type in numpydoc's words (``int or str``, ``{'legacy', 'none'}``)."""
        return self.rules.type_words(self)

    @property
    def annotation(self) -> str:
        """The type hint of its :class:`Scenario` field (``int | str | None``)."""
        return self.rules.annotation(self)

    @property
    def default_words(self) -> str:
        """Its default as one would write it (``4GiB``; ``134217728`` with ``128 MiB/s``)."""
        return self.default if isinstance(self.default, str) else self.rules.default_words(self)

    def range_words(self) -> str:
        """The values it takes (``[4 KiB, 16 TiB]``, ``(0, 10^6]``; sizes and rates with
        their units, other numbers in :attr:`display_units`); "" where the type says it
        all (a choice, a flag, text)."""
        return self.rules.range_words(self)


PARAMETERS = (
    # the guest
    Param("ram_size", "size", "4GiB", "B", PAGE_SIZE, 2**44,
          "Guest RAM, rounded down to whole 4 KiB pages.", multiple=PAGE_SIZE),
    Param("dirty_rate", "rate", "100MiB/s", "B s-1", 0, 2**40,
          "Guest page writes per second times 4096 B (writes may hit the same page)."),
    Param("workload", "choice", "uniform", "1", doc="Which pages the guest writes: "
          "'uniform' (any page), 'hotcold' (a hot set takes most writes), "
          "'sequential' (a cursor sweeping write_range, like QEMU's test guest), "
          "'zipf' (page i of RAM written with probability proportional to (i + 1) ** -"
          "zipf_exponent), 'replay' (the writes of write_trace) or 'phases' (the "
          "workloads of phases, one after the other).",
          choices=WORKLOADS),
    Param("hot_fraction", "fraction", 0.1, "1", 0, 1,
          "hotcold: share of RAM in the hot set (the lowest pages); at least one page, and "
          "fewer than all (a cold set must remain).", lo_open=True),
    Param("hot_share", "fraction", 0.9, "1", 0, 1,
          "hotcold: share of writes that hit the hot set."),
    Param("zipf_exponent", "fraction", 1.0, "1", 1e-6, 10,
          "zipf: the exponent s of the page popularity (i + 1) ** -s, rounded to 6 decimal "
          "places.", decimals=6),
    Param("phases", "text", "", "1",
          doc="phases: 'workload:rate:duration, ...' (e.g. 'uniform:100MiB/s:10s, "
          "hotcold:1GiB/s:2s'), cycling; the other guest parameters are shared."),
    Param("write_trace", "path", "", "1",
          doc="replay: a file of page writes with their times (toolkit.workloads.TRACE_FORMAT)."),
    Param("write_range", "size", "100MiB", "B", PAGE_SIZE, 2**44,
          "sequential (and a sequential phase of phases): bytes swept by the write "
          "cursor; write_range_start + write_range at most ram_size."),
    Param("write_range_start", "size", "1MiB", "B", 0, 2**44,
          "sequential: first byte of the swept range."),
    Param("zero_fraction", "fraction", 0.0, "1", 0, 1,
          "Share of RAM (the top pages) that holds zeros at the start; the rest holds data."),
    Param("zero_allocated_fraction", "fraction", 0.0, "1", 0, 1,
          "Share of RAM, at the bottom of the zero region, whose zero pages are allocated "
          "(written with zeros before the migration: a full scan each); the rest of the "
          "zero region was never touched. At most zero_fraction."),
    Param("data_ranges", "text", "", "1", doc="Byte ranges that hold data at the start "
          "although they lie in the zero region, as 'start:size, ...' (e.g. the firmware's "
          "tables at the top of low RAM, '111.88MiB:124KiB, 127.88MiB:12KiB'); each is "
          "widened to whole pages and must lie within ram_size."),
    Param("zero_write_share", "fraction", 0.0, "1", 0, 1,
          "Share of the guest's writes that write zeros (the page is a zero page again, "
          "as after Linux init_on_free or a balloon deflate), spread evenly over each "
          "stream's writes; the others write data."),
    Param("mem_prealloc", "bool", False, "1",
          doc="QEMU -mem-prealloc on both sides: all RAM is allocated from the start, so a "
          "zero page costs the source a full scan (zero_page_scan_time) and the destination "
          "populates nothing (dst_populate_time)."),
    Param("dst_mem_prealloc", "bool", False, "1",
          doc="QEMU -mem-prealloc on the destination only: its RAM is populated before the "
          "migration starts, so a first copy costs no population (dst_populate_time); the "
          "source's RAM is as mem_prealloc says."),
    Param("write_stride", "int", 1, "pages", 1, 2**31 - 1,
          "sequential: pages the write cursor advances per write, modulo the range "
          "(a scattered order when > 1; coprime with the range's pages, it visits all)."),
    Param("write_cursor", "int", 0, "pages", 0, 2**32,
          "sequential: offset in the range of the first write (where the guest's cursor "
          "stands when the migration starts); below the range's pages."),
    # the link and QEMU's migration parameters
    Param("compressed_fraction", "fraction", 0.5, "1", 0, 1,
          "multifd compression: the share of its 4096 B a normal page of this guest "
          "compresses to (how compressible its data is).", lo_open=True),
    Param("link_bandwidth", "rate", "10Gbit/s", "B s-1", 1000, 1e12,
          "What the network carries; the final copy runs at this rate."),
    Param("max_bandwidth", "rate", MAX_THROTTLE, "B s-1", 0, SIZE_MAX,
          "QEMU max-bandwidth: precopy rate limit, 0 = unlimited.", integer=True,
          qemu="max-bandwidth"),
    Param("downtime_limit", "duration", 300, "ms", 0, MAX_MIGRATE_DOWNTIME,
          "QEMU downtime-limit: the switchover threshold is bandwidth x this.",
          integer=True, qemu="downtime-limit"),
    Param("avail_switchover_bandwidth", "avail", 0, "B s-1", 0, SIZE_MAX,
          "QEMU avail-switchover-bandwidth: used instead of the estimate when non-zero; "
          "also 'estimate' (0), 'link' or 'Nx link'.",
          integer=True, qemu="avail-switchover-bandwidth", resolved_against="link_bandwidth"),
    # QEMU's release and its convergence features
    Param("zero_page_detection", "choice", "multifd", "1", qemu="zero-page-detection",
          doc="QEMU 9.0+ zero-page-detection: 'legacy' scans every page in the migration "
          "thread and sends a zero page as a 9 B record; 'multifd' (the default) scans "
          "them in the multifd channels with multifd on, and is legacy without it; 'none' "
          "sends every page as a normal page. QEMU 8.2 has no such parameter: it behaves "
          "as legacy.",
          choices=("multifd", "legacy", "none")),
    Param("multifd", "bool", False, "1", qemu="multifd",
          doc="QEMU capability multifd: the migration thread queues pages into 128-page "
          "packets that multifd_channels sender threads send, each on a connection of "
          "its own; with zero_page_detection 'multifd' they also find the zero pages."),
    Param("multifd_channels", "int", 2, "1", 1, 255, qemu="multifd-channels",
          doc="multifd: sender threads (QEMU's default 2; its docs say 8 usually performs "
          "best)."),
    Param("multifd_compression", "choice", "none", "1", qemu="multifd-compression",
          doc="multifd: 'zlib' or 'zstd' compress each packet's normal pages in the "
          "channel (zlib_page_time or zstd_page_time each, to compressed_fraction of "
          "their size); 'none' sends them as they are.", choices=("none", "zlib", "zstd")),
    Param("qemu_version", "choice", "10.0", "1", doc="QEMU release whose rules apply: "
          "8.2, 9.0, 9.1, 9.2, 10.0 or 10.1 (10.1 and later: switchover when pending <= "
          "threshold; 9.2 and later: auto-converge's 5 s dirty sync).", choices=QEMU_VERSIONS),
    Param("auto_converge", "bool", False, "1", qemu="auto-converge",
          doc="QEMU capability auto-converge: throttle the vCPUs while the guest dirties "
          "memory faster than migration sends it."),
    Param("throttle_trigger_threshold", "int", 50, "%", 1, 100, qemu="throttle-trigger-threshold",
          doc="auto-converge: a rate period is 'high' when its newly dirty bytes exceed this "
          "share of the bytes sent; every second high period throttles more."),
    Param("cpu_throttle_initial", "int", 20, "%", 1, 99, qemu="cpu-throttle-initial",
          doc="auto-converge: the first throttle percentage."),
    Param("cpu_throttle_increment", "int", 10, "%", 1, 99, qemu="cpu-throttle-increment",
          doc="auto-converge: added at each further throttle step."),
    Param("cpu_throttle_tailslow", "bool", False, "1", qemu="cpu-throttle-tailslow",
          doc="auto-converge: smaller steps near the needed throttle."),
    Param("max_cpu_throttle", "int", 99, "%", 1, 99, qemu="max-cpu-throttle",
          doc="auto-converge: the largest throttle percentage (at least cpu_throttle_initial)."),
    Param("dirty_limit", "bool", False, "1", qemu="dirty-limit",
          doc="QEMU capability dirty-limit: on the same trigger as auto-converge, hold "
          "each vCPU to vcpu_dirty_limit (an approximation, see docs/model.md)."),
    Param("vcpu_dirty_limit", "int", 1, "MiB s-1", 1, 2**40, qemu="vcpu-dirty-limit",
          doc="dirty-limit: each vCPU's quota (QEMU's MB/s are MiB/s)."),
    Param("vcpus", "int", 1, "1", 1, 4096, doc="Guest vCPUs (dirty-limit quotas are per vCPU)."),
    Param("postcopy_ram", "bool", False, "1", qemu="postcopy-ram",
          doc="QEMU capability postcopy-ram: RAM may go after the switch to postcopy."),
    Param("postcopy_start_sync", "int", 0, "1", 0, 2**31,
          doc="Call migrate-start-postcopy once dirty-sync-count reaches this (needs "
          "postcopy_ram); 0 = never."),
    Param("policy", "policy", "none", "1", doc="Management layer watching the migration: "
          "'none', 'nova', 'kubevirt', 'ovirt' or 'proxmox', with options as "
          "'nova:timeout_action=force_complete' (see toolkit.policies)."),
    # host costs: why the migration thread can be slower than the link
    Param("host", "choice", "none", "1", doc="Named host profile (toolkit.hosts) whose values "
          "the host parameters (link_bandwidth and the costs below) take unless given: "
          "'none' (these defaults), 'tcg-loopback' (calibrated on this project's real QEMU "
          "runs), 'kvm-10g', 'kvm-25g' (order of magnitude).", choices=hosts.NAMES,
          supplies_defaults=hosts.HOST_PARAMETERS),
    Param("page_send_time", "duration", 250.0, "ns", 0, 1e9,
          "CPU time of the migration thread per normal page sent.", time_unit="ns"),
    Param("zero_page_scan_time", "duration", 100.0, "ns", 0, 1e9,
          "CPU time to scan one 4 KiB zero page of allocated RAM (buffer_is_zero reads it "
          "all): preallocated, or written once.", time_unit="ns"),
    Param("untouched_page_scan_time", "duration", 100.0, "ns", 0, 1e9,
          "CPU time to scan one zero page of never-touched RAM (backed by the host's shared "
          "zero page, which stays in cache).", time_unit="ns"),
    Param("dst_populate_time", "duration", 0.0, "ms", 0, 1e6,
          "Destination: time to populate a 2 MiB region of guest RAM (allocate and clear "
          "a transparent huge page) at the first normal page it receives there; the "
          "stream waits for it once the socket buffers are full. Zero pages populate "
          "nothing."),
    Param("socket_buffer_size", "size", "4MiB", "B", 0, 2**40,
          "Bytes the source may queue ahead of the destination (the TCP send and receive "
          "buffers): how far the destination may fall behind while it populates RAM "
          "before the source waits for it."),
    Param("dst_copy_time", "duration", 0.0, "ns", 0, 1e9,
          "Destination: time to take in a normal page it already holds (copy only).",
          time_unit="ns"),
    Param("multifd_queue_time", "duration", 50.0, "ns", 0, 1e9,
          "multifd: CPU time of the migration thread to queue one page into a packet.",
          time_unit="ns"),
    Param("multifd_packet_time", "duration", 10000.0, "ns", 0, 1e9,
          "multifd: CPU time of a channel per packet (its header, the write call).",
          time_unit="ns"),
    Param("multifd_page_time", "duration", 250.0, "ns", 0, 1e9,
          "multifd: CPU time of a channel per normal page sent uncompressed (its copy "
          "into the socket).", time_unit="ns"),
    Param("zlib_page_time", "duration", 50000.0, "ns", 0, 1e9,
          "multifd-compression zlib: CPU time of a channel to compress one normal page "
          "(level 1).", time_unit="ns"),
    Param("zstd_page_time", "duration", 5000.0, "ns", 0, 1e9,
          "multifd-compression zstd: CPU time of a channel to compress one normal page "
          "(level 1).", time_unit="ns"),
    Param("sync_time_fixed", "duration", 1.0, "ms", 0, 1e6,
          "Bitmap sync: fixed cost per sync."),
    Param("sync_time_per_gib", "duration", 0.5, "ms", 0, 1e6,
          "Bitmap sync: cost per GiB of guest RAM.", per="GiB-1"),
    Param("sync_time_per_dirty_page", "duration", 10.0, "ns", 0, 1e9,
          "Bitmap sync: cost per page found in the dirty log.", time_unit="ns"),
    Param("setup_overhead", "duration", 5.0, "ms", 0, 1e6,
          "Setup work before the first bitmap sync (connect, header, dirty-log start)."),
    Param("vm_stop_time", "duration", 2.0, "ms", 0, 1e6,
          "Stopping the VM at switchover (pause vCPUs, drain and flush block devices)."),
    Param("device_state_size", "size", "512KiB", "B", 0, 2**40,
          "Non-RAM device state sent during downtime."),
    # the run
    Param("max_time", "duration", 300.0, "s", 0, 1e6,
          "Give up and report not converged after this much simulated time (QEMU would "
          "iterate on): a precopy pass is cut there, a downtime begun before it is not.",
          time_unit="s", lo_open=True),
    Param("seed", "int", 0, "1", 0, SIZE_MAX, "Seed of the guest's writes (their random "
          "stream depends on it and the guest's parameters only)."),
    Param("check", "bool", False, "1",
          doc="Track every page's version and count pages the destination lacks."),
)
PARAMETER_INDEX = {p.name: p for p in PARAMETERS}


_NBSP = "\u00a0"


def parameters_section(indent: str = "") -> str:
    """The numpydoc ``Parameters`` section of :class:`Scenario`, from :data:`PARAMETERS`:
    type, default, description, and units in brackets with the range."""
    lines = ["Parameters", "----------"]
    for spec in PARAMETERS:
        default = repr(spec.default) if isinstance(spec.default, str) else spec.default_words
        lines.append(f"{spec.name} : {spec.type_words}, default {default}")
        units, values = spec.display_units, spec.range_words()
        where = f"[{units}], in {values}." if units and values else f"[{units}]." if units \
            else f"In {values}." if values else ""
        # a unit or a range is never split across lines
        text = f"{spec.doc} {where.replace(' ', _NBSP)}".rstrip()
        lines += [line.replace(_NBSP, " ") for line in
                  textwrap.wrap(text, 92 - len(indent), initial_indent="    ",
                                subsequent_indent="    ", break_on_hyphens=False)]
    return "".join(f"{indent}{line}\n" for line in lines)


#: Host costs all zero: the migration thread is never slower than the link.
IDEAL_HOST = dict(page_send_time=0, zero_page_scan_time=0, untouched_page_scan_time=0,
                  dst_populate_time=0, dst_copy_time=0, sync_time_fixed=0,
                  sync_time_per_gib=0, sync_time_per_dirty_page=0, setup_overhead=0,
                  vm_stop_time=0, device_state_size=0)

# parameters that define the guest's write stream (and so its random seed)
GUEST_PARAMETERS = ("ram_size", "dirty_rate", "workload", "hot_fraction", "hot_share",
                    "write_range", "write_range_start", "zero_fraction")


#: Parameters whose value changes other fields of a Scenario, or is read against
#: another's (from :attr:`Param.resolved_against` and :attr:`Param.supplies_defaults`):
#: a sweep makes each point's Scenario with the point's values of these.
COUPLED = tuple(p.name for p in PARAMETERS if p.supplies_defaults or p.resolved_against or
                any(q.resolved_against == p.name for q in PARAMETERS))


def check_names(names) -> None:
    """Raise TypeError for a name that is not a scenario parameter, suggesting the closest."""
    for key in names:
        if key not in PARAMETER_INDEX:
            close = difflib.get_close_matches(key, PARAMETER_INDEX, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise TypeError(f"unknown parameter {key!r}{hint} Known: "
                            f"{', '.join(PARAMETER_INDEX)}")


def validate_parameter(name: str, value):
    """``value`` of parameter ``name`` checked and in its canonical form (base unit; a
    label, a flag or a path as given); raises naming the parameter, the value and the
    range. The same as ``PARAMETER_INDEX[name].parse(value)``."""
    return PARAMETER_INDEX[name].parse(value)


@dataclass(frozen=True)
class Scenario:
    """One migration scenario: every parameter validated and in its base unit.

    Build it with keyword arguments named as in :data:`PARAMETERS`; omitted ones
    take their defaults. Numbers are in the base unit (B, B/s, ms, ns or s as
    listed); strings may carry units ("4GiB", "10Gbit/s", "300ms"). Once made,
    each field holds its kind's canonical value, the first type of its hint
    (``ram_size`` an int of whole pages, ``link_bandwidth`` a float, an
    ``avail_switchover_bandwidth`` of ``"2x link"`` an int read against
    ``link_bandwidth``). The Parameters section below is written from
    :data:`PARAMETERS` at import.

    Raises
    ------
    TypeError
        Unknown parameter, or a value of the wrong type.
    ValueError
        A value that cannot be read, or is outside its range.
    """

    ram_size: int | str | None = None
    dirty_rate: float | str | None = None
    workload: str | None = None
    hot_fraction: float | None = None
    hot_share: float | None = None
    zipf_exponent: float | None = None
    phases: str | None = None
    write_trace: str | None = None
    write_range: int | str | None = None
    write_range_start: int | str | None = None
    zero_fraction: float | None = None
    zero_allocated_fraction: float | None = None
    data_ranges: str | None = None
    zero_write_share: float | None = None
    mem_prealloc: bool | None = None
    dst_mem_prealloc: bool | None = None
    write_stride: int | None = None
    write_cursor: int | None = None
    compressed_fraction: float | None = None
    link_bandwidth: float | str | None = None
    max_bandwidth: int | str | None = None
    downtime_limit: int | str | None = None
    avail_switchover_bandwidth: int | str | None = None
    zero_page_detection: str | None = None
    multifd: bool | None = None
    multifd_channels: int | None = None
    multifd_compression: str | None = None
    qemu_version: str | None = None
    auto_converge: bool | None = None
    throttle_trigger_threshold: int | None = None
    cpu_throttle_initial: int | None = None
    cpu_throttle_increment: int | None = None
    cpu_throttle_tailslow: bool | None = None
    max_cpu_throttle: int | None = None
    dirty_limit: bool | None = None
    vcpu_dirty_limit: int | None = None
    vcpus: int | None = None
    postcopy_ram: bool | None = None
    postcopy_start_sync: int | None = None
    policy: str | None = None
    host: str | None = None
    page_send_time: float | str | None = None
    zero_page_scan_time: float | str | None = None
    untouched_page_scan_time: float | str | None = None
    dst_populate_time: float | str | None = None
    socket_buffer_size: int | str | None = None
    dst_copy_time: float | str | None = None
    multifd_queue_time: float | str | None = None
    multifd_packet_time: float | str | None = None
    multifd_page_time: float | str | None = None
    zlib_page_time: float | str | None = None
    zstd_page_time: float | str | None = None
    sync_time_fixed: float | str | None = None
    sync_time_per_gib: float | str | None = None
    sync_time_per_dirty_page: float | str | None = None
    setup_overhead: float | str | None = None
    vm_stop_time: float | str | None = None
    device_state_size: int | str | None = None
    max_time: float | str | None = None
    seed: int | None = None
    check: bool | None = None

    def __post_init__(self):  # noqa: C901 (one check per rule, in QEMU's order)
        given = frozenset(f.name for f in fields(self) if getattr(self, f.name) is not None)
        object.__setattr__(self, "_given", given)
        host = validate_parameter("host", "none" if self.host is None else self.host)
        profile = {} if host == "none" else hosts.get(host).values
        for f in fields(self):
            value = getattr(self, f.name)
            spec = PARAMETER_INDEX[f.name]
            if value is None:
                value = profile.get(f.name, spec.default)
            if spec.resolved_against:      # read before it in the table: done already
                value = spec.resolve(value, getattr(self, spec.resolved_against))
            object.__setattr__(self, f.name, spec.parse(value))
        # toolkit.plan checks the rules below at a grid's corners only: keep each
        # monotonic in every number it reads
        if self.workload in ("sequential", "phases") and \
                self.write_range_start + self.write_range > self.ram_size:
            raise ValueError(
                f"write_range_start + write_range = {self.write_range_start} + "
                f"{self.write_range} B is beyond ram_size = {self.ram_size} B")
        if self.workload in ("sequential", "phases") and \
                self.write_cursor >= max(1, self.write_range // PAGE_SIZE):
            raise ValueError(
                f"write_cursor={self.write_cursor!r} is out of range: expected an integer in "
                f"[0, {max(1, self.write_range // PAGE_SIZE) - 1}] pages (the pages of "
                f"write_range = {self.write_range} B)")
        if self.zero_allocated_fraction > self.zero_fraction:
            raise ValueError(f"zero_allocated_fraction={self.zero_allocated_fraction!r} is out "
                             f"of range: expected a number in [0, zero_fraction = "
                             f"{self.zero_fraction!r}]")
        if self.data_ranges:
            self.data_page_ranges       # noqa: B018 (parses and checks them)
        if self.qemu_version == "8.2" and self.zero_page_detection == "none":
            raise ValueError("zero_page_detection='none' needs qemu_version >= 9.0: QEMU 8.2 "
                             "has no zero-page-detection parameter (it always detects)")
        if self.max_cpu_throttle < self.cpu_throttle_initial:
            raise ValueError(
                f"max_cpu_throttle={self.max_cpu_throttle!r} is out of range: expected an "
                f"integer in [cpu_throttle_initial = {self.cpu_throttle_initial}, 99] % "
                "(QEMU 'max-cpu-throttle')")
        if self.workload == "replay":
            self._check_write_trace()
        if self.workload == "phases":
            parse_phases(self.phases)
        if self.dirty_limit and self.auto_converge:
            raise ValueError("dirty_limit=True conflicts with auto_converge=True: QEMU "
                             "enables either, not both")
        if self.dirty_limit and getattr(self.policy_object, "auto_converge", False):
            raise ValueError(f"dirty_limit=True conflicts with policy={self.policy!r}, which "
                             "turns on auto_converge: QEMU enables either, not both")
        if self.dirty_limit and self.workload in ("replay", "phases"):
            raise ValueError(f"dirty_limit needs a guest with one dirty_rate; workload="
                             f"{self.workload!r} has none")
        if self.multifd_compression != "none" and not self.multifd:
            raise ValueError(f"multifd_compression={self.multifd_compression!r} needs "
                             "multifd=True (QEMU compresses only in the multifd channels)")
        if self.multifd and (self.postcopy_ram or
                             getattr(self.policy_object, "postcopy", False)):
            raise ValueError("multifd=True with postcopy-ram (postcopy_ram=True or a policy "
                             "that switches to postcopy) is not modelled: QEMU refuses it "
                             "before 10.1")
        if self.postcopy_start_sync and not self.postcopy_ram:
            raise ValueError(f"postcopy_start_sync={self.postcopy_start_sync!r} needs "
                             "postcopy_ram=True (QEMU refuses migrate-start-postcopy without "
                             "the postcopy-ram capability)")
        if self.workload in ("hotcold", "phases"):
            hot = self.hot_pages
            if not 1 <= hot < self.n_pages:
                raise ValueError(
                    f"hot_fraction={self.hot_fraction!r} gives {hot} hot pages of "
                    f"{self.n_pages}: expected at least 1 and fewer than all")

    @classmethod
    def from_kwargs(cls, **kwargs) -> "Scenario":
        """Build a Scenario, rejecting unknown names with a suggestion, and ``None``
        (which would silently mean the default)."""
        check_names(kwargs)
        for name, value in kwargs.items():
            if value is None:
                raise TypeError(f"{name}=None: give a value, or leave {name} out for its "
                                f"default ({PARAMETER_INDEX[name].default!r})")
        return cls(**kwargs)

    def replace(self, **changes) -> "Scenario":
        """A copy with some parameters changed (and validated again).

        Parameters that were not given take their defaults again, so a new
        ``host`` brings its own values for the host parameters not given.
        """
        values = {name: getattr(self, name) for name in self._given}
        values.update(changes)
        return Scenario.from_kwargs(**values)

    def to_dict(self) -> dict:
        """Parameters by name, in base units."""
        return {f.name: getattr(self, f.name) for f in fields(self)}

    @property
    def n_pages(self) -> int:
        """Guest pages. [pages]"""
        return self.ram_size // PAGE_SIZE

    def _check_write_trace(self):
        if not self.write_trace:
            raise ValueError("workload='replay' needs write_trace: the path of a trace file")
        _, pages = read_write_trace(self.write_trace)
        beyond = np.flatnonzero(pages >= self.n_pages)
        if beyond.size:
            where = trace_position(self.write_trace, int(beyond[0]))
            raise ValueError(f"write trace {self.write_trace}: {where}: page "
                             f"{pages[beyond[0]]} is beyond the {self.n_pages} pages of "
                             f"ram_size={self.ram_size} B")

    @property
    def dst_populates(self) -> bool:
        """Whether the destination populates its RAM during the migration (neither side
        preallocated, nor the destination alone)."""
        return not (self.mem_prealloc or self.dst_mem_prealloc)

    @property
    def policy_object(self):
        """The management policy (a :mod:`toolkit.policies` object), or None."""
        from . import policies
        return policies.parse(self.policy)

    @property
    def hot_pages(self) -> int:
        """hotcold: pages in the hot set. [pages]"""
        return int(round(self.hot_fraction * self.n_pages))

    @property
    def zero_start(self) -> int:
        """First page of the initially-zero region at the top of RAM. [pages]

        ``zero_fraction`` of the pages, rounded to start on a 64-page (256 KiB)
        boundary so that the region is whole bitmap words.
        """
        start = self.n_pages - int(round(self.zero_fraction * self.n_pages))
        return min(self.n_pages, -(-start // 64) * 64)

    @property
    def data_page_ranges(self) -> list[tuple[int, int]]:
        """``data_ranges`` as page ranges ``(first, end)``, end excluded, in the order
        given. [pages]

        Raises
        ------
        ValueError
            An item that is not ``start:size``, a bad size, or a range beyond
            ``ram_size``; the message names the item.
        """
        out = []
        for n, item in enumerate(self.data_ranges.split(","), 1):
            parts = [x.strip() for x in item.split(":")]
            if len(parts) != 2:
                raise ValueError(f"data_ranges: item {n} {item.strip()!r}: expected "
                                 "'start:size', e.g. '127.88MiB:12KiB'")
            start = parse_size(parts[0], f"data_ranges item {n} start")
            size = parse_size(parts[1], f"data_ranges item {n} size")
            if not (math.isfinite(start) and math.isfinite(size)) or start < 0 or size <= 0:
                raise ValueError(f"data_ranges: item {n} {item.strip()!r}: expected a start "
                                 ">= 0 B and a size > 0 B")
            if start + size > self.ram_size:
                raise ValueError(f"data_ranges: item {n} {item.strip()!r}: start + size = "
                                 f"{start + size} B is beyond ram_size = {self.ram_size} B")
            out.append((start // PAGE_SIZE, -(-(start + size) // PAGE_SIZE)))
        return out

    @property
    def zero_allocated_end(self) -> int:
        """End of the allocated part of the zero region, which starts at ``zero_start``
        (a multiple of 64 pages, or the end of RAM). [pages]"""
        end = self.zero_start + int(round(self.zero_allocated_fraction * self.n_pages))
        return min(self.n_pages, -(-end // 64) * 64)

    @property
    def stream_seeds(self) -> tuple[int, int]:
        """64-bit seeds of the guest's two write streams, from ``seed`` and the guest's
        parameters.

        Migration parameters do not enter them, so runs that differ only in how
        they migrate see exactly the same guest writes.
        """
        extra = {"zipf": ("zipf_exponent",), "replay": ("write_trace",),
                 "phases": ("phases", "zipf_exponent")}
        names = GUEST_PARAMETERS + extra.get(self.workload, ())
        key = repr((self.seed,) + tuple(getattr(self, n) for n in names))
        return tuple(int.from_bytes(hashlib.blake2b(f"{key}/{s}".encode(), digest_size=8)
                                    .digest(), "little") for s in (0, 1))


if Scenario.__doc__:          # None under python -OO
    Scenario.__doc__ = Scenario.__doc__.replace(
        "    Raises\n", parameters_section("    ") + "\n    Raises\n", 1)
