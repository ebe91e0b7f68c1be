"""The validation study's records: where they live, and the Scenario each one describes.

A record is a run's ``result.json`` (:func:`toolkit.qemu.study.result_record`):
the guest's and the migration's settings plus what QEMU reported. This module
turns one into the model's Scenario given the host's values; it sits below
:mod:`toolkit.qemu.calibrate` (which fits those values) and
:mod:`toolkit.qemu.study` (which writes the records).
"""
from __future__ import annotations

from pathlib import Path

from ..constants import MIB, MULTIFD_HEADER_WIRE, MULTIFD_PAGES, PAGE_SIZE
from ..scenario import PARAMETER_INDEX, QEMU_VERSIONS, Scenario
from .harness import low_ram_mib

ROOT = Path(__file__).resolve().parents[2]
DEFAULT_OUT = ROOT / "datasets" / "qemu-validation"

#: Settings of a record added with the extended test guest and with multifd, and their
#: values for the records written before them (a filled range, data writes only,
#: stride 1, no -mem-prealloc on either side, no auto-converge, the cursor unknown, no
#: multifd).
GUEST_DEFAULTS = {"zero_every": 0, "fill": True, "stride": 1, "prealloc": False,
                  "dst_prealloc": False, "auto_converge": False, "cursor_at_migrate": None,
                  "writes_at_migrate": None,
                  "multifd_channels": 0, "multifd_compression": "none"}


def firmware_data_ranges(ram: int) -> str:
    """The pages SeaBIOS leaves data in at the top of low RAM, as ``data_ranges``
    (bytes): one page and 26 pages just below 16 MiB under its top, and 3 pages
    128 KiB under it. Read off ``pmemsave`` dumps of the harness's guest (QEMU
    10.0, machine ``pc``) at 64 MiB to 4 GiB; low RAM is
    :func:`toolkit.qemu.harness.low_ram_mib`.

    These few pages matter because each lies in a 2 MiB region that holds no other
    data: the destination populates the region when the page arrives
    (``dst_populate_time``), in the downtime when the first pass had not reached it.
    """
    top = low_ram_mib(ram // MIB) * MIB
    pages = ((top - 16 * MIB - 31 * PAGE_SIZE, 1), (top - 16 * MIB - 26 * PAGE_SIZE, 26),
             (top - 128 * 1024, 3))
    return ", ".join(f"{start}:{n * PAGE_SIZE}" for start, n in pages)


def compressed_fraction(record: dict) -> float | None:
    """How far a multifd run's normal pages compressed: its ``multifd-bytes`` less
    the packets' headers, over its normal pages' 4096 B (None without compression
    or the figures). The packets: one per 128 pages sent, and a sync packet per
    channel at each sync and at the end. A property of the guest's data, read off
    the run as its write rate is."""
    channels = int(record.get("multifd_channels") or 0)
    if not channels or record.get("multifd_compression", "none") == "none":
        return None
    mfb, normal = record.get("multifd_bytes"), record.get("normal_pages")
    if not mfb or not normal:
        return None
    pages = normal + (record.get("zero_pages") or 0)
    packets = -(-pages // MULTIFD_PAGES) + channels * ((record.get("dirty_sync_count") or 0) + 1)
    data = mfb - packets * MULTIFD_HEADER_WIRE
    return min(1.0, max(data / (normal * PAGE_SIZE), 1e-3))


def qemu_release(version) -> str:
    """The model's ``qemu_version`` for a QEMU release (``"10.0.2"``): the newest
    rule set not after it (8.2 for older ones)."""
    try:
        major, minor = (int(x) for x in str(version).split(".")[:2])
    except (TypeError, ValueError):
        return Scenario().qemu_version
    older = [v for v in QEMU_VERSIONS if tuple(map(int, v.split("."))) <= (major, minor)]
    return older[-1] if older else QEMU_VERSIONS[0]


def qmp_parameters(parameters: dict | None) -> dict:
    """The Scenario parameters among a run's extra ``migrate-set-parameters``
    (QMP names such as ``cpu-throttle-initial``); refuse any the model lacks."""
    out = {}
    for qmp, value in (parameters or {}).items():
        name = qmp.replace("-", "_")
        if name not in PARAMETER_INDEX or PARAMETER_INDEX[name].qemu != qmp:
            raise ValueError(f"migrate-set-parameters {qmp!r}: the model has no such "
                             "parameter")
        out[name] = value
    return out


def record_scenario(record: dict, host: dict, dirty_rate: float | None) -> Scenario:
    """The Scenario of a study record, with the host parameters ``host``.

    The guest: ``ram_mib`` MiB of RAM, a ``sequential`` workload over
    ``[start_page, start_page + pages)`` with ``write_stride = stride`` and the
    cursor where the guest's stood (``write_cursor = (cursor_at_migrate +
    stride) % pages``, 0 when unknown); ``zero_write_share = 1 / zero_every``
    (0 without zero writes); the pages below ``start_page + pages`` hold data
    (below ``start_page`` when the range was not filled, or when the guest
    writes zeros and has swept the whole range: then the range holds allocated
    zero pages), the rest is zero (never touched unless ``prealloc``) but for the
    firmware's pages (:func:`firmware_data_ranges`);
    ``mem_prealloc = prealloc``; the extra QMP ``parameters`` of the run
    (auto-converge's ``cpu-throttle-initial`` and the like) by their names. The
    migration: ``max_bandwidth``, ``downtime_limit``,
    ``avail_switchover_bandwidth``, ``auto_converge``, multifd (``multifd_channels``
    > 0, and ``multifd_compression``, with the run's own
    :func:`compressed_fraction`), ``max_time = time_limit`` and the QEMU release.
    Records written before these settings existed take :data:`GUEST_DEFAULTS`.
    **Simplification**: the guest's ``random`` pattern (a permutation sweep) is
    modelled as sequential.

    Parameters
    ----------
    record : dict
        The run's settings (a ``result.json``, or a scenario of the study plus
        ``time_limit``).
    host : dict
        Every host parameter of the Scenario, in its base unit
        (:func:`toolkit.qemu.calibrate.host_values`).
    dirty_rate : float or None
        The guest's write rate [pages/s]; None: the run gives none (refused).

    Raises
    ------
    ValueError
        The zero region would not start on a 64-page boundary (the model's
        bitmap words), or there is no write rate.
    """
    def setting(key):
        value = record.get(key)
        return GUEST_DEFAULTS[key] if value is None else value

    pages, start = int(record["pages"]), int(record["start_page"])
    ram = int(record["ram_mib"]) << 20
    n_pages = ram // PAGE_SIZE
    stride = int(setting("stride"))
    zero_every = int(setting("zero_every"))
    cursor = setting("cursor_at_migrate")
    fill = bool(setting("fill"))
    writes = setting("writes_at_migrate")
    swept = writes is not None and int(writes) - (pages if fill else 0) >= pages
    if zero_every > 1 or (zero_every == 1 and not swept) or \
            (zero_every == 0 and not fill and not swept and writes is not None):
        raise ValueError(
            f"run {record.get('run', '?')}: at migrate the guest's range is partly data and "
            f"partly zero (zero_every={zero_every}, fill={fill}, writes {writes} for "
            f"{pages} pages): the model's initial content is a data region below a zero "
            "region; let the warm-up cover a whole sweep")
    # the range holds data, or (zero writes, a whole sweep done) allocated zero pages
    zero_start = start if zero_every == 1 or not (fill or swept) else start + pages
    allocated = pages if zero_every == 1 else 0
    if zero_start % 64:
        raise ValueError(
            f"run {record.get('run', '?')}: the zero region would start at page {zero_start} "
            f"(start_page {start}{' + pages ' + str(pages) if setting('fill') else ''}), not a "
            "multiple of 64: the model's initially-zero region starts on a 64-page bitmap word")
    compressed = compressed_fraction(record)
    if dirty_rate is None:
        raise ValueError(f"run {record.get('run', '?')}: no write rate (no pace and no "
                         "migration_write_rate); give dirty_rate=")
    return Scenario(
        ram_size=ram, workload="sequential", write_range=pages * PAGE_SIZE,
        write_range_start=start * PAGE_SIZE, dirty_rate=dirty_rate * PAGE_SIZE,
        write_stride=stride,
        write_cursor=(int(cursor) + stride) % pages if cursor is not None else 0,
        zero_fraction=(n_pages - zero_start) / n_pages,
        zero_allocated_fraction=allocated / n_pages,
        data_ranges=firmware_data_ranges(ram),
        zero_write_share=1.0 / zero_every if zero_every else 0.0,
        mem_prealloc=bool(setting("prealloc")),
        dst_mem_prealloc=bool(setting("dst_prealloc")),
        max_bandwidth=record["max_bandwidth"], downtime_limit=record["downtime_limit"],
        avail_switchover_bandwidth=record["avail_switchover_bandwidth"],
        auto_converge=bool(setting("auto_converge")),
        multifd=int(setting("multifd_channels")) > 0,
        multifd_channels=max(1, int(setting("multifd_channels"))),
        multifd_compression=setting("multifd_compression"),
        **({} if compressed is None else {"compressed_fraction": compressed}),
        **qmp_parameters(record.get("parameters")),
        qemu_version=qemu_release(record.get("qemu_version")),
        max_time=record["time_limit"], **host)


def record_dirs(out: str | Path = DEFAULT_OUT) -> list[Path]:
    """The directories of every finished run of a study directory, in run-id order."""
    return [p.parent for p in sorted((Path(out) / "runs").glob("*/result.json"))]
