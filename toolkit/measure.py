"""Your own VM's measurements in: QEMU's and libvirt's dirty-rate readings as parameters.

>>> import toolkit as tk
>>> m = tk.load("query-dirty-rate.json")            # doctest: +SKIP
>>> tk.simulate(**m.to_parameters(), link_bandwidth="10Gbit/s")   # doctest: +SKIP

:func:`load` sniffs which of these a file is (or takes ``kind``) and returns a
:class:`Measurement`:

``query-dirty-rate``
    QMP ``query-dirty-rate``'s answer after ``calc-dirty-rate``
    (:func:`read_query_dirty_rate`), any mode: ``page-sampling``,
    ``dirty-bitmap``, ``dirty-ring`` (with per-vCPU rates).
``info-dirty-rate``
    HMP ``info dirty_rate`` text (:func:`read_info_dirty_rate`).
``virsh-dirtyrate``
    ``virsh domdirtyrate-calc`` then ``virsh domstats --dirtyrate``
    (:func:`read_virsh_dirtyrate`).
``domjobinfo``
    ``virsh domjobinfo [--completed]`` of a migration (:func:`read_domjobinfo`).
``query-migrate``
    A JSON-lines log of ``query-migrate`` replies, e.g. the harness's
    ``samples.jsonl`` (:func:`read_query_migrate_log`); it also gives a
    dirty-pages curve for :func:`toolkit.workloads.fit_dirty_curve`.

What each rate is: QEMU counts *distinct* pages dirtied in a period (a page
written twice counts once), so a measured rate is at most the guest's write
rate, equal to it while the guest writes each page at most once per period.
QEMU reports ``dirty-rate`` in MiB/s (it prints "MB/s"), rounded down to an
integer; here every rate is [B/s].  Rates measured before a migration tend to
understate those during one (see ``toolkit.advise``'s headroom).

Samples of every format ship in ``toolkit/measurements`` (:data:`SAMPLES`,
described in its README): the QMP and HMP ones recorded from QEMU 10.0.2 with
``python -m toolkit.qemu.dirtyrate``, the virsh ones written from libvirt's
documented format.
"""
from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path

from .constants import MIB, PAGE_SIZE
from .qemu import readers
from .units import parse_rate, parse_size

SAMPLES = Path(__file__).parent / "measurements"
"""Directory of the shipped sample files (see its README.md)."""

KINDS = {
    "query-dirty-rate": "QMP query-dirty-rate reply (JSON), after calc-dirty-rate",
    "info-dirty-rate": "HMP 'info dirty_rate' text",
    "virsh-dirtyrate": "'virsh domstats --dirtyrate' text (after 'virsh domdirtyrate-calc')",
    "domjobinfo": "'virsh domjobinfo [--completed]' text",
    "query-migrate": "JSON lines of query-migrate replies (e.g. samples.jsonl)",
}
"""The formats :func:`load` reads, by ``kind``."""

MODES = ("page-sampling", "dirty-bitmap", "dirty-ring")
"""QEMU's ``DirtyRateMeasureMode`` values."""

_STATUSES = ("unstarted", "measuring", "measured")   # DirtyRateStatus; libvirt's 0, 1, 2
_RATE_PERIOD_MS = 1000   # migration_bitmap_sync updates dirty-pages-rate after periods > 1 s


@dataclass(frozen=True)
class Measurement:
    """One measurement of a guest, in the simulator's units.

    Attributes
    ----------
    kind : str
        Its format, a key of :data:`KINDS`.
    source : str
        The file it came from.
    dirty_rate : float or None
        Distinct pages dirtied per second times the page size [B/s]; None when
        the file has none.
    per_vcpu_dirty_rate : tuple of float
        Each vCPU's dirty rate, by vCPU id [B/s] (dirty-ring mode only).
    calc_time : float or None
        The period the rate was measured over [s].
    ram_size : int or None
        Guest RAM [B], when the file says.
    page_size : int
        Target page size [B] (4096 unless the file says otherwise).
    sample_pages : int or None
        page-sampling: pages sampled per GiB of RAM.
    mode : str or None
        QEMU's measuring mode (:data:`MODES`), None for migration statistics.
    start_time : float or None
        When the calculation started, host realtime [s since the epoch].
    dirty_curve : tuple of (float, float)
        ``(t [s], distinct pages dirtied in t after a bitmap sync [pages])``
        points, for :func:`toolkit.workloads.fit_dirty_curve` (query-migrate
        logs only).
    fields : dict
        Everything numeric the file gave, by its own names (libvirt's labels
        for domjobinfo and query-migrate logs), in the units of its reader.
    notes : tuple of str
        What to know before trusting the numbers.
    """

    kind: str
    source: str
    dirty_rate: float | None
    per_vcpu_dirty_rate: tuple[float, ...] = ()
    calc_time: float | None = None
    ram_size: int | None = None
    page_size: int = PAGE_SIZE
    sample_pages: int | None = None
    mode: str | None = None
    start_time: float | None = None
    dirty_curve: tuple[tuple[float, float], ...] = ()
    fields: dict = field(default_factory=dict, compare=False, hash=False)
    notes: tuple[str, ...] = ()

    def __post_init__(self):
        if self.page_size != PAGE_SIZE:
            # the simulator's guest has 4 KiB pages: the same bytes per second are more pages
            object.__setattr__(self, "notes", self.notes + (
                f"page size {self.page_size} B: the simulator's pages are {PAGE_SIZE} B, so "
                f"the same dirty_rate [B/s] is {self.page_size / PAGE_SIZE:g}x the pages "
                "there",))

    def to_parameters(self, curve: bool = False) -> dict:
        """Keyword arguments for :func:`toolkit.simulate` / :class:`toolkit.Scenario`.

        Parameters
        ----------
        curve : bool, optional
            Use the fit of :attr:`dirty_curve` (a ``hotcold`` working set and
            its rate, see :meth:`fit_dirty_curve`) instead of the plain rate.

        Returns
        -------
        dict
            Only what the measurement says: ``dirty_rate`` [B/s], ``ram_size``
            [B] when known, ``vcpus`` when per-vCPU rates were measured (and
            with ``curve``: ``workload``, ``hot_fraction``, ``hot_share``).

        Raises
        ------
        ValueError
            ``curve`` without a fittable curve (see :meth:`fit_dirty_curve`).
        """
        params = {}
        if curve:
            fit = self.fit_dirty_curve()
            params.update({k: fit[k] for k in ("workload", "hot_fraction", "hot_share",
                                               "dirty_rate") if k in fit})
        elif self.dirty_rate is not None:
            params["dirty_rate"] = float(self.dirty_rate)
        if self.ram_size is not None:
            params["ram_size"] = int(self.ram_size)
        if self.per_vcpu_dirty_rate:
            params["vcpus"] = len(self.per_vcpu_dirty_rate)
        return params

    def fit_dirty_curve(self) -> dict:
        """:func:`toolkit.workloads.fit_dirty_curve` on :attr:`dirty_curve` and :attr:`ram_size`.

        Raises
        ------
        ValueError
            Fewer than two curve points at different times, no RAM size, or
            a curve the fit rejects (decreasing counts); the message names the file.
        """
        from .workloads import fit_dirty_curve

        points = sorted(self.dirty_curve)
        if len({t for t, _ in points}) < 2 or self.ram_size is None:
            raise ValueError(
                f"{self.source}: a dirty-pages curve needs points at two or more periods and "
                f"the RAM size; this {self.kind} measurement has {len(points)} point(s) "
                f"({', '.join(f'{d:.0f} pages in {t:.2f} s' for t, d in points) or 'none'}) "
                f"and ram_size {self.ram_size}: use to_parameters() for its dirty_rate")
        try:
            return fit_dirty_curve([t for t, _ in points], [d for _, d in points],
                                   self.ram_size)
        except ValueError as err:
            raise ValueError(f"{self.source}: {err}") from None


# --- shared checks -----------------------------------------------------------------------

def _where(path, line: int | None) -> str:
    return f"{path}:{line}" if line else f"{path}"


def _number(path, line, name: str, value, *, integer: bool = True, lo: float = 0,
            unit: str = "") -> float:
    """``value`` as a finite number >= ``lo``, or a ValueError naming file, line and field."""
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) \
        and math.isfinite(value) and value >= lo and (not integer or value == int(value))
    if not ok:
        what = "an integer" if integer else "a finite number"
        raise ValueError(f"{_where(path, line)}: {name} must be {what} >= {lo}"
                         f"{f' [{unit}]' if unit else ''}, got {value!r}")
    return value


def _text_number(path, line, name: str, text: str, *, integer: bool = True,
                 unit: str = "") -> float:
    try:
        value = int(text) if integer else float(text)
    except ValueError:
        raise ValueError(f"{path}:{line}: {name} must be {'an integer' if integer else 'a number'}"
                         f"{f' [{unit}]' if unit else ''}, got {text!r}") from None
    return _number(path, line, name, value, integer=integer, unit=unit)


def _status(path, line, status) -> None:
    if status == "measured":
        return
    why = {"measuring": "the calculation has not finished: query again after its calc-time",
           "unstarted": "no calculation has run, or one has just been started "
                        "(calc-dirty-rate resets the status): query again after its calc-time"}
    raise ValueError(f"{_where(path, line)}: status {status!r}, not 'measured': "
                     + why.get(status, f"expected one of {_STATUSES}"))


def _mode(path, line, mode) -> str:
    if mode not in MODES:
        raise ValueError(f"{_where(path, line)}: mode must be one of {MODES}, got {mode!r}")
    return mode


def _rate_notes(mode: str, dirty_rate: float, sample_pages: int | None) -> list[str]:
    notes = ["QEMU's dirty-rate is MiB/s (printed 'MB/s'), rounded down to an integer"]
    if mode == "page-sampling":
        notes.append(f"page-sampling: hashes of {sample_pages} sampled pages per GiB of RAM "
                     "compared after calc-time (a sampling error of some 10-20 % on a small "
                     "guest); a guest that rewrites its working set within calc-time reads "
                     "working set / calc-time")
    if mode == "dirty-bitmap" and dirty_rate == 0:
        notes.append("dirty-bitmap counts pages only through KVM's dirty log: under TCG it "
                     "reads 0 whatever the guest writes")
    return notes


# --- QMP query-dirty-rate --------------------------------------------------------------------

def _json_objects(path, text: str) -> list[tuple[int, object]]:
    """The file's JSON value (one document, or one per line), each with its first line."""
    try:
        return [(1, json.loads(text))]
    except json.JSONDecodeError as err:
        if err.msg != "Extra data":
            raise ValueError(f"{path}:{err.lineno}: bad JSON ({err.msg}, column {err.colno})"
                             ) from None
    out = []
    for n, line in enumerate(text.splitlines(), 1):
        if line.strip():
            try:
                out.append((n, json.loads(line)))
            except json.JSONDecodeError as err:
                raise ValueError(f"{path}:{n}: bad JSON ({err.msg}, column {err.colno}): "
                                 f"{line.strip()[:80]!r}") from None
    return out


def _is_dirty_rate_info(obj) -> bool:
    # DirtyRateStatus and MigrationStatus share no value: a status alone tells them apart
    return isinstance(obj, dict) and "status" in obj and (
        obj["status"] in _STATUSES or "dirty-rate" in obj or "calc-time" in obj or
        "sample-pages" in obj or obj.get("mode") in MODES)


def _key_line(text: str, first: int, key: str) -> int:
    """Line of the first ``"key"`` at or after line ``first`` (``first`` if none)."""
    lines = text.splitlines()
    for n in range(first, len(lines) + 1):
        if f'"{key}"' in lines[n - 1]:
            return n
    return first


def read_query_dirty_rate(path) -> Measurement:
    """Read QMP ``query-dirty-rate``'s answer (QEMU 5.2+; modes 6.2+; ms unit 8.2+).

    Parameters
    ----------
    path : str or os.PathLike
        A JSON file: QEMU's reply ``{"return": {...}}``, the bare object (as
        ``virsh qemu-monitor-command`` prints it inside ``return``), or JSON
        lines of a QMP session, of which the last ``query-dirty-rate`` answer
        counts.  Fields: ``status``, ``dirty-rate`` [MiB/s], ``calc-time``
        (in ``calc-time-unit``: ``second``, the default, or ``millisecond``),
        ``sample-pages`` [per GiB], ``mode``, ``start-time`` [s] and, in
        dirty-ring mode, ``vcpu-dirty-rate`` (``[{"id", "dirty-rate"}]``).

    Returns
    -------
    Measurement

    Raises
    ------
    ValueError
        Bad JSON, QEMU's error reply (e.g. dirty-ring without a KVM dirty
        ring), a status other than ``measured``, or a field of the wrong type
        or sign; the message gives ``file:line`` and the field.
    """
    text = Path(path).read_text(encoding="utf-8", errors="replace")
    objects = _json_objects(path, text)
    found = None
    for line, obj in objects:
        body = obj.get("return", obj) if isinstance(obj, dict) else None
        if _is_dirty_rate_info(body):
            found = line, body
        elif isinstance(obj, dict) and "error" in obj and len(objects) == 1:
            err = obj["error"] if isinstance(obj["error"], dict) else {"desc": obj["error"]}
            raise ValueError(f"{path}:{line}: QEMU answered an error, not a dirty rate: "
                             f"{err.get('desc', '')} ({err.get('class', '?')})")
    if found is None:
        raise ValueError(f"{path}: no query-dirty-rate answer (an object with 'status' and "
                         "'calc-time', bare or under 'return')")
    first, info = found

    def at(key):
        return _key_line(text, first, key) if len(objects) == 1 else first

    _status(path, at("status"), info["status"])
    if "dirty-rate" not in info:
        raise ValueError(f"{path}:{first}: status 'measured' but no 'dirty-rate'")
    mib_s = _number(path, at("dirty-rate"), "dirty-rate", info["dirty-rate"], unit="MiB/s")
    notes = []
    if "mode" in info:
        mode = _mode(path, at("mode"), info["mode"])
    else:
        mode = "page-sampling"
        notes.append("no 'mode' field (QEMU before 6.2): page-sampling")
    unit = info.get("calc-time-unit", "second")
    if unit not in ("second", "millisecond"):
        raise ValueError(f"{path}:{at('calc-time-unit')}: calc-time-unit must be 'second' or "
                         f"'millisecond', got {unit!r}")
    if "calc-time" not in info:
        raise ValueError(f"{path}:{first}: status 'measured' but no 'calc-time' (QEMU always "
                         "gives it: is this the whole query-dirty-rate reply?)")
    calc_time = _number(path, at("calc-time"), "calc-time", info["calc-time"], unit=unit)
    calc_time = calc_time / 1000 if unit == "millisecond" else float(calc_time)
    sample_pages = None
    if mode == "page-sampling" and "sample-pages" in info:
        sample_pages = int(_number(path, at("sample-pages"), "sample-pages",
                                   info["sample-pages"], unit="pages per GiB"))
    start = info.get("start-time")
    if start is not None:
        start = float(_number(path, at("start-time"), "start-time", start, unit="s"))
    vcpus = info.get("vcpu-dirty-rate", [])
    if not isinstance(vcpus, list):
        raise ValueError(f"{path}:{at('vcpu-dirty-rate')}: vcpu-dirty-rate must be a list of "
                         f"{{'id', 'dirty-rate'}}, got {vcpus!r}")
    per_vcpu = {}
    for v in vcpus:
        if not isinstance(v, dict) or "id" not in v or "dirty-rate" not in v:
            raise ValueError(f"{path}:{at('vcpu-dirty-rate')}: a vcpu-dirty-rate entry must "
                             f"be {{'id': int, 'dirty-rate': int}}, got {v!r}")
        vid = int(_number(path, at("vcpu-dirty-rate"), "vcpu-dirty-rate id", v["id"]))
        per_vcpu[vid] = _number(path, at("vcpu-dirty-rate"), f"vcpu {vid} dirty-rate",
                                v["dirty-rate"], unit="MiB/s") * float(MIB)
    return Measurement(
        kind="query-dirty-rate", source=str(path), dirty_rate=float(mib_s * MIB),
        per_vcpu_dirty_rate=tuple(per_vcpu[k] for k in sorted(per_vcpu)), calc_time=calc_time,
        sample_pages=sample_pages, mode=mode, start_time=start,
        fields={k: v for k, v in info.items() if isinstance(v, (int, float, str))},
        notes=tuple(notes + _rate_notes(mode, mib_s, sample_pages)))


# --- HMP info dirty_rate ---------------------------------------------------------------------

_HMP = {   # label -> (value pattern, field name); hmp_info_dirty_rate, migration/dirtyrate.c
    "Status": (r"(\w+)", "status"),
    "Start Time": (r"(\S+) \(ms\)", "start-time"),
    "Sample Pages": (r"(\S+) \(per GB\)", "sample-pages"),
    "Period": (r"(\S+) \(sec\)", "calc-time"),
    "Mode": (r"(\S+)", "mode"),
    "Dirty rate": (r"(?:(\S+) \(MB/s\)|(\(not ready\)))", "dirty-rate"),
}
_HMP_VCPU = re.compile(r"vcpu\[(\d+)\], Dirty rate: (\S+?)(?: \(MB/s\))?")


def read_info_dirty_rate(path) -> Measurement:
    """Read HMP ``info dirty_rate`` text (``human-monitor-command`` or a monitor console).

    Parameters
    ----------
    path : str or os.PathLike
        Lines ``Status: measured``, ``Start Time: N (ms)``, ``Sample Pages: N
        (per GB)``, ``Period: N (sec)``, ``Mode: ...``, ``Dirty rate: N
        (MB/s)`` and ``vcpu[i], Dirty rate: N (MB/s)``; ``(qemu)`` prompt
        lines are skipped.  QEMU prints the start time in seconds despite
        its "(ms)", and the period in whole seconds (0 for a sub-second one).

    Returns
    -------
    Measurement

    Raises
    ------
    ValueError
        An unknown line, a bad number, a missing ``Dirty rate`` line or a
        status other than ``measured``; the message gives ``file:line``.
    """
    values, lines, per_vcpu = {}, {}, {}
    with open(path, encoding="utf-8", errors="replace") as f:
        for n, raw in enumerate(f, 1):
            text = raw.strip()
            if not text or text.startswith("(qemu)"):
                continue
            m = _HMP_VCPU.fullmatch(text)
            if m:
                rate = _text_number(path, n, f"vcpu[{m.group(1)}] dirty rate", m.group(2),
                                    unit="MiB/s")
                per_vcpu[int(m.group(1))] = rate * float(MIB)
                continue
            label, _, value = text.partition(": ")
            if label not in _HMP:
                raise ValueError(f"{path}:{n}: not a line of HMP 'info dirty_rate' (labels "
                                 f"{', '.join(_HMP)}, 'vcpu[N], Dirty rate'): {text[:80]!r}")
            pattern, name = _HMP[label]
            m = re.fullmatch(pattern, value.strip())
            if m is None:
                raise ValueError(f"{path}:{n}: {label!r} must read like {pattern!r}, got "
                                 f"{value.strip()!r}")
            values[name], lines[name] = m.group(1), n
    if "status" not in values:
        raise ValueError(f"{path}: no 'Status:' line: not HMP 'info dirty_rate' output")
    _status(path, lines["status"], values["status"])
    if values.get("dirty-rate") is None:
        raise ValueError(f"{path}:{lines.get('dirty-rate', lines['status'])}: no dirty rate "
                         "('Dirty rate: N (MB/s)')")
    mib_s = _text_number(path, lines["dirty-rate"], "Dirty rate", values["dirty-rate"],
                         unit="MiB/s")
    notes = []
    mode = _mode(path, lines["mode"], values["mode"]) if "mode" in values else "page-sampling"
    if "mode" not in values:
        notes.append("no 'Mode:' line (QEMU before 6.2): page-sampling")
    calc_time = None
    if "calc-time" in values:
        calc_time = float(_text_number(path, lines["calc-time"], "Period", values["calc-time"],
                                       unit="s"))
        if calc_time == 0:
            calc_time = None
            notes.append("HMP prints the period in whole seconds: 0 means under 1 s "
                         "(query-dirty-rate with calc-time-unit millisecond gives it)")
    sample_pages = None
    if "sample-pages" in values and mode == "page-sampling":
        sample_pages = int(_text_number(path, lines["sample-pages"], "Sample Pages",
                                        values["sample-pages"], unit="pages per GiB"))
    start = None
    if "start-time" in values:
        start = float(_text_number(path, lines["start-time"], "Start Time",
                                   values["start-time"], unit="s"))
    fields = {k: (int(v) if v.isdigit() else v) for k, v in values.items()}
    return Measurement(
        kind="info-dirty-rate", source=str(path), dirty_rate=float(mib_s * MIB),
        per_vcpu_dirty_rate=tuple(per_vcpu[k] for k in sorted(per_vcpu)), calc_time=calc_time,
        sample_pages=sample_pages, mode=mode, start_time=start, fields=fields,
        notes=tuple(notes + _rate_notes(mode, mib_s, sample_pages)))


# --- virsh domstats --dirtyrate --------------------------------------------------------------

_KEY_VALUE = re.compile(r"([A-Za-z_][\w.]*)=(.*)")
_VCPU_KEY = re.compile(r"dirtyrate\.vcpu\.(\d+)\.megabytes_per_second")
_VIRSH_TEXT = (re.compile(r"Domain: '.*'"), re.compile(r"Start to calculate domain's memory "
                                                        r"dirty rate successfully\."),
               re.compile(r"(\$|#|virsh)\s.*"))


def read_virsh_dirtyrate(path) -> Measurement:
    """Read ``virsh domstats --dirtyrate`` output (libvirt 7.2+; modes 8.1+).

    Parameters
    ----------
    path : str or os.PathLike
        ``Domain: 'name'`` and ``key=value`` lines: ``dirtyrate.calc_status``
        (0 unstarted, 1 measuring, 2 measured), ``dirtyrate.calc_start_time``
        [s], ``dirtyrate.calc_period`` [s], ``dirtyrate.megabytes_per_second``
        [MiB/s], ``dirtyrate.calc_mode`` and
        ``dirtyrate.vcpu.N.megabytes_per_second`` [MiB/s]; ``balloon.maximum``
        [KiB] gives the RAM when present.  ``virsh domdirtyrate-calc``'s line
        and echoed ``virsh`` commands may precede it; other groups' keys are ignored.

    Returns
    -------
    Measurement

    Raises
    ------
    ValueError
        A line of neither shape, more than one domain, a bad number, no
        megabytes_per_second, or a status other than measured; the message
        gives ``file:line``.
    """
    values, lines, domains = {}, {}, 0
    with open(path, encoding="utf-8", errors="replace") as f:
        for n, raw in enumerate(f, 1):
            text = raw.strip()
            if not text:
                continue
            m = _KEY_VALUE.fullmatch(text)
            if m is None:
                if not any(p.fullmatch(text) for p in _VIRSH_TEXT):
                    raise ValueError(f"{path}:{n}: not a line of 'virsh domstats' output "
                                     f"(\"Domain: 'name'\" or key=value): {text[:80]!r}")
                domains += text.startswith("Domain:")
                if domains > 1:
                    raise ValueError(f"{path}:{n}: a second domain: give one domain's stats")
                continue
            values[m.group(1)], lines[m.group(1)] = m.group(2).strip(), n
    if not any(k.startswith("dirtyrate.") for k in values):
        raise ValueError(f"{path}: no dirtyrate.* keys: run 'virsh domdirtyrate-calc DOMAIN' "
                         "then 'virsh domstats --dirtyrate DOMAIN'")

    def num(key, unit, integer=True):
        return _text_number(path, lines[key], key, values[key], integer=integer, unit=unit)

    status = values.get("dirtyrate.calc_status")
    if status is None:
        raise ValueError(f"{path}: no dirtyrate.calc_status line")
    if status.isdigit():
        code = int(status)
        status = _STATUSES[code] if code < len(_STATUSES) else status
    _status(path, lines["dirtyrate.calc_status"], status)
    if "dirtyrate.megabytes_per_second" not in values:
        raise ValueError(f"{path}: calc_status measured but no dirtyrate.megabytes_per_second")
    mib_s = num("dirtyrate.megabytes_per_second", "MiB/s")
    notes = []
    if "dirtyrate.calc_mode" in values:
        mode = _mode(path, lines["dirtyrate.calc_mode"], values["dirtyrate.calc_mode"])
    else:
        mode = "page-sampling"
        notes.append("no dirtyrate.calc_mode (libvirt before 8.1): page-sampling")
    per_vcpu = {}
    for key in values:
        m = _VCPU_KEY.fullmatch(key)
        if m:
            per_vcpu[int(m.group(1))] = num(key, "MiB/s") * float(MIB)
    calc_time = float(num("dirtyrate.calc_period", "s")) if "dirtyrate.calc_period" in values \
        else None
    start = float(num("dirtyrate.calc_start_time", "s")) \
        if "dirtyrate.calc_start_time" in values else None
    ram_size = int(num("balloon.maximum", "KiB")) * 1024 if "balloon.maximum" in values else None
    notes.append("libvirt does not report sample-pages: page-sampling used QEMU's default "
                 "(512 per GiB) unless set otherwise" if mode == "page-sampling" else
                 f"{mode} mode")
    fields = {k: (int(v) if v.isdigit() else v) for k, v in values.items()
              if k.startswith(("dirtyrate.", "balloon."))}
    return Measurement(
        kind="virsh-dirtyrate", source=str(path), dirty_rate=float(mib_s * MIB),
        per_vcpu_dirty_rate=tuple(per_vcpu[k] for k in sorted(per_vcpu)), calc_time=calc_time,
        ram_size=ram_size, mode=mode, start_time=start, fields=fields,
        notes=tuple(notes + _rate_notes(mode, mib_s, None)[:1]))


# --- virsh domjobinfo ------------------------------------------------------------------------

#: libvirt's domjobinfo labels (toolkit.qemu.readers' vocabulary) -> how virsh prints them.
_JOB_LABELS = {label for label, _, _ in readers.DOMJOBINFO}
_JOB_SIZE = re.compile(r"\d+(?:\.\d+)? (?:B|KiB|MiB|GiB|TiB|PiB|EiB)")
_JOB_RATE = re.compile(r"\d+(?:\.\d+)? (?:B|KiB|MiB|GiB|TiB|PiB|EiB)/s")
_JOB_UNIT = re.compile(r"(\S+)(?:\s+(ms|pages/s|bytes|%))?")


def _job_value(path, n, label, value: str):
    """One domjobinfo value in libvirt's units: [ms], [B], [B/s], [pages/s], [1]."""
    if _JOB_RATE.fullmatch(value):
        return parse_rate(value, label)
    if _JOB_SIZE.fullmatch(value):
        return parse_size(value, label)
    m = _JOB_UNIT.fullmatch(value)
    if m is None or not re.fullmatch(r"-?\d+(?:\.\d+)?", m.group(1)):
        if label in _JOB_LABELS:
            raise ValueError(f"{path}:{n}: {label!r} must be a number with virsh's unit "
                             f"(e.g. '1234 ms', '1.234 GiB', '12.5 MiB/s', '100 pages/s', "
                             f"'4096 bytes'), got {value!r}")
        return value     # Job type, Operation, ...: text
    return _number(path, n, label, float(m.group(1)), integer=False)


def read_domjobinfo(path) -> Measurement:
    """Read ``virsh domjobinfo DOMAIN`` (or ``--completed``) text of a migration.

    Parameters
    ----------
    path : str or os.PathLike
        ``Label: value [unit]`` lines as virsh prints them: ``Time elapsed:
        1223 ms``, ``Data processed: 1.234 GiB``, ``Memory bandwidth: 108.709
        MiB/s``, ``Dirty rate: 1234 pages/s``, ``Page size: 4096 bytes``,
        ``Iteration: 3``, ``Expected downtime: 300 ms`` ...  The labels are
        those of :func:`toolkit.qemu.readers.domjobinfo_fields`.

    Returns
    -------
    Measurement
        ``dirty_rate`` = ``Dirty rate`` x ``Page size`` [B/s] (QEMU's
        ``ram.dirty-pages-rate`` of the last rate period), ``ram_size`` =
        ``Memory total``; ``fields`` holds every line by its label in
        libvirt's units (sizes [B], ``Memory bandwidth`` [B/s], times [ms]).

    Raises
    ------
    ValueError
        A line that is not ``Label: value``, or a bad number under a known
        label; the message gives ``file:line``.
    """
    fields, lines = {}, {}
    with open(path, encoding="utf-8", errors="replace") as f:
        for n, raw in enumerate(f, 1):
            text = raw.strip()
            if not text or re.fullmatch(r"(\$|#|virsh)\s.*", text):
                continue
            label, sep, value = text.partition(":")
            if not sep or not label or not value.strip():
                raise ValueError(f"{path}:{n}: not a 'Label: value' line of virsh domjobinfo: "
                                 f"{text[:80]!r}")
            label = label.strip()
            if label == "error":
                raise ValueError(f"{path}:{n}: virsh reported an error, not a job: {text[:120]!r}")
            fields[label], lines[label] = _job_value(path, n, label, value.strip()), n
    if not fields:
        raise ValueError(f"{path}: empty: no 'Label: value' lines of virsh domjobinfo")
    notes = []
    job = fields.get("Job type")
    if isinstance(job, str) and job.lower() == "none":
        raise ValueError(f"{path}:{lines['Job type']}: 'Job type: None': no migration job "
                         "ran (use --completed after it finished)")
    page_size = int(fields.get("Page size", PAGE_SIZE))
    if "Page size" not in fields:
        notes.append(f"no 'Page size' line: {PAGE_SIZE} B assumed")
    completed = isinstance(job, str) and job.lower() == "completed"
    dirty_rate = None
    if "Dirty rate" not in fields:
        notes.append("no 'Dirty rate' line")
    elif fields["Dirty rate"] == 0 and (completed or fields.get("Iteration", 0) < 2):
        # QEMU fills ram.dirty-pages-rate only while the migration runs, and only after
        # its first rate period: a 0 then is no measurement
        notes.append("'Dirty rate: 0' " + ("of a completed job (QEMU reports the rate only "
                                           "while migrating)" if completed else
                                           "before the first pass ended (Iteration < 2)")
                     + ": no dirty rate")
    else:
        dirty_rate = float(fields["Dirty rate"]) * page_size
        notes.append("'Dirty rate' is QEMU's ram.dirty-pages-rate: distinct pages dirtied in "
                     "the last rate period (> 1 s) during the migration, throttling included")
    ram = fields.get("Memory total")
    if ram is not None:
        # virsh prints 3 decimals of its unit; RAM is whole pages
        ram = round(ram / page_size) * page_size
        notes.append("virsh prints sizes to 3 decimals of their unit (e.g. 2.016 GiB, within "
                     "0.5 MiB): ram_size is 'Memory total' rounded to whole pages")
    if completed:
        notes.append("a completed job (--completed): its figures are those at the end")
    return Measurement(kind="domjobinfo", source=str(path), dirty_rate=dirty_rate,
                       ram_size=int(ram) if ram is not None else None, page_size=page_size,
                       fields=fields, notes=tuple(notes))


# --- query-migrate log -----------------------------------------------------------------------

def _object_lines(path) -> list[int]:
    """Line numbers of the non-blank lines (the objects read_replies numbers from 1)."""
    with open(path, encoding="utf-8", errors="replace") as f:
        return [n for n, text in enumerate(f, 1) if text.strip()]


def read_query_migrate_log(path) -> Measurement:
    """Read a JSON-lines log of ``query-migrate`` replies (via ``readers.read_replies``).

    Parameters
    ----------
    path : str or os.PathLike
        One reply per line: the harness's ``samples.jsonl`` shape, a bare
        reply or ``{"return": ...}``, sampled often (~100 ms) so that each
        bitmap sync is placed within a sample.

    Returns
    -------
    Measurement
        ``dirty_rate`` = ``ram.dirty-pages-rate`` [pages/s] x ``ram.page-size``,
        averaged over QEMU's rate periods weighted by their length [B/s];
        ``calc_time`` = those periods together [s]; ``ram_size`` =
        ``ram.total``; ``dirty_curve``: one point per rate period that held a
        single bitmap sync interval (the pages dirtied since the log was
        cleared, ``rate x period``), with the period from the samples'
        ``total-time`` (the sync lies between two samples: error half a
        sample interval); ``fields``: the last active sample under libvirt's
        domjobinfo labels.

    Raises
    ------
    ValueError
        A line that is not JSON or not a reply, a field of the wrong type or
        sign, or no active sample; the message gives ``file:line``.
    """
    replies = readers.read_replies(path)
    line_of = _object_lines(path)
    active = []
    for n, reply in zip(line_of, replies):
        ram = reply.get("ram")
        if reply.get("status") != "active" or ram is None:
            continue
        if not isinstance(ram, dict):
            raise ValueError(f"{path}:{n}: 'ram' must be an object, got {ram!r}")
        row = {"line": n, "total_time": _number(path, n, "total-time", reply.get("total-time"),
                                                unit="ms")}
        for key, unit in (("dirty-sync-count", "1"), ("dirty-pages-rate", "pages/s"),
                          ("total", "B"), ("page-size", "B")):
            if key in ram:
                row[key] = _number(path, n, f"ram.{key}", ram[key], unit=unit)
        row["throttle"] = _number(path, n, "cpu-throttle-percentage",
                                  reply.get("cpu-throttle-percentage", 0), unit="%")
        row["reply"] = reply
        active.append(row)
    if not active:
        raise ValueError(f"{path}: no sample with status 'active' and 'ram': nothing measured")
    last = active[-1]
    page_size = int(last.get("page-size", PAGE_SIZE))
    periods, curve = _rate_periods(active, replies)
    notes = ["ram.dirty-pages-rate: distinct pages dirtied per rate period (QEMU updates it at "
             "a bitmap sync more than 1 s after the previous update) during the migration"]
    dirty_rate = calc_time = None
    if periods:
        calc_time = math.fsum(p for p, _ in periods) / 1000
        dirty_rate = math.fsum(p * r for p, r in periods) / 1000 / calc_time * page_size
        rates = sorted({r for _, r in periods})
        span = f"{rates[0]:.0f}" + (f"-{rates[-1]:.0f}" if len(rates) > 1 else "")
        notes.append(f"{len(periods)} rate period(s) over {calc_time:.2f} s: {span} pages/s")
    else:
        notes.append("no rate period ended in the log (QEMU reports dirty-pages-rate after the "
                     "first pass): no dirty rate")
    if max(row["throttle"] for row in active) > 0:
        notes.append(f"auto-converge throttled the vCPUs up to "
                     f"{max(row['throttle'] for row in active):.0f} %: rates are throttled ones")
    return Measurement(kind="query-migrate", source=str(path), dirty_rate=dirty_rate,
                       calc_time=calc_time,
                       ram_size=int(last["total"]) if "total" in last else None,
                       page_size=page_size, dirty_curve=tuple(curve),
                       fields=readers.domjobinfo_fields(last["reply"]), notes=tuple(notes))


def _rate_periods(active: list[dict], replies: list[dict]):
    """QEMU's rate periods replayed from the samples: ``[(period [ms], rate [pages/s])]`` and
    the dirty-curve points ``[(t [s], pages)]`` of the periods holding one sync interval."""
    setup = next((r.get("setup-time") for r in replies if isinstance(r.get("setup-time"),
                                                                     (int, float))), None)
    # syncs seen: (time [ms] or None when several fell between two samples, its uncertainty
    # [ms], the rate reported after it, whether a rate period surely starts there)
    syncs = []
    prev = None
    for row in active:
        count, rate = row.get("dirty-sync-count"), row.get("dirty-pages-rate")
        if count is None or rate is None:
            continue
        if prev is None:
            if count == 1 and setup is not None:   # the setup sync (ram_init_bitmaps)
                syncs.append((setup, 0.0, rate, True))
        elif count == prev["dirty-sync-count"] + 1:
            half = (row["total_time"] - prev["total_time"]) / 2
            syncs.append((prev["total_time"] + half, half, rate,
                          rate != prev["dirty-pages-rate"]))
        elif count > prev["dirty-sync-count"]:
            syncs.append((None, None, rate, False))
        prev = row
    periods, curve = [], []
    start = None   # (time [ms], index in syncs, rate) where the current rate period began
    for i, (t, err, rate, updated) in enumerate(syncs):
        if t is None:
            start = None
            continue
        if start is None:
            # a period's start is known only where QEMU surely updated the rate
            start = (t, i, rate) if updated else None
            continue
        elapsed = t - start[0]
        # the reported rate changes at an update; an unchanged value can be one too
        if rate != start[2] or elapsed > _RATE_PERIOD_MS + err:
            periods.append((elapsed, rate))
            if i == start[1] + 1:
                curve.append((elapsed / 1000, rate * elapsed / 1000))
            start = (t, i, rate)
    return periods, curve


# --- sniffing --------------------------------------------------------------------------------

READERS = {"query-dirty-rate": read_query_dirty_rate, "info-dirty-rate": read_info_dirty_rate,
           "virsh-dirtyrate": read_virsh_dirtyrate, "domjobinfo": read_domjobinfo,
           "query-migrate": read_query_migrate_log}


def _sniff(path, text: str) -> str | None:
    if text.lstrip().startswith(("{", "[")):
        try:
            objects = [json.loads(text)]
        except json.JSONDecodeError:
            objects = []
            for line in text.splitlines():
                try:
                    objects.append(json.loads(line))
                except json.JSONDecodeError:
                    continue   # the reader names the bad line
        bodies = [o.get("query-migrate", o.get("return", o)) for o in objects
                  if isinstance(o, dict)]
        if any(_is_dirty_rate_info(b) for b in bodies) or (
                len(objects) == 1 and isinstance(objects[0], dict) and "error" in objects[0]):
            return "query-dirty-rate"
        if any(isinstance(b, dict) and "status" in b for b in bodies):
            return "query-migrate"
        # a truncated document: guess from its names, the reader reports the line
        if re.search(r'"(calc-time|sample-pages)"', text):
            return "query-dirty-rate"
        return "query-migrate" if re.search(r'"(ram|query-migrate)"', text) else None
    if re.search(r"^\s*dirtyrate\.\w+=", text, re.M):
        return "virsh-dirtyrate"
    if re.search(r"^Dirty rate: (\S+ \(MB/s\)|\(not ready\))", text, re.M):
        return "info-dirty-rate"
    if re.search(r"^(Job type|Data processed|Memory processed|Time elapsed):", text, re.M) \
            or re.search(r"^Dirty rate:\s+\d+\s+pages/s", text, re.M):
        return "domjobinfo"
    return None


def load(path, kind: str | None = None) -> Measurement:
    """Read a measurement file of any format in :data:`KINDS`.

    Parameters
    ----------
    path : str or os.PathLike
        The file.
    kind : str, optional
        Its format (a key of :data:`KINDS`); sniffed from the content when None.

    Returns
    -------
    Measurement

    Raises
    ------
    ValueError
        Unknown ``kind``, a file of no known format (the message lists the
        kinds), or a bad file (the reader's message, with ``file:line``).
    FileNotFoundError
        No such file.
    """
    listing = "; ".join(f"{k} ({v})" for k, v in KINDS.items())
    if kind is not None and kind not in READERS:
        raise ValueError(f"kind must be one of {tuple(KINDS)} or None (sniff), got {kind!r}")
    if kind is None:
        text = Path(path).read_text(encoding="utf-8", errors="replace")
        if not text.strip():
            raise ValueError(f"{path}: empty file; the kinds read are: {listing}")
        kind = _sniff(path, text)
        if kind is None:
            raise ValueError(f"{path}: not a measurement format toolkit.measure knows; give "
                             f"kind= one of: {listing}")
    return READERS[kind](path)
