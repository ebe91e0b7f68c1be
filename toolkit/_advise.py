"""An operator's question answered: will this VM converge on this link within this
downtime budget, how long, what downtime, and which avail-switchover-bandwidth is safe?

:func:`advise` simulates the guest under the management layer's QEMU settings:

* the verdict under QEMU's own estimate (``avail-switchover-bandwidth`` 0);
* the smallest avail that converges and the largest that keeps the real
  downtime within the limit, each found by bisection on the continuous value
  (to 1 %) inside a bracket from a scan on a x2 grid; the scan checks the
  bisection's assumption (converging and the downtime both grow with avail)
  and the advice says where it fails;
* uncertainty bands over seeds and a dirty-rate headroom (default 1x to 3x:
  rates measured before a migration understate those during it by 2-3x,
  KubeVirt VEP 246);
* what the layer's own downtime ramp does anyway, and, when no avail is safe,
  the alternatives (the downtime-limit needed, the ramp, auto-converge,
  dirty-limit, postcopy, lifting max-bandwidth, multifd with 8 channels without and
  with zstd, with the CPU its channels take), each simulated; those that switch
  over within the limit ranked by downtime, then total time, the others said not
  to help.

The runs go to one pool of threads, each distinct scenario once: the bisections'
probes first, the bands and the alternatives filling the cores they leave idle
(the alternatives start right after the scan when it finds no avail within the
limit, and are dropped if the bisection finds one after all). A run's result
depends only on its scenario, so the answer does not depend on the workers or
the order.

The avail analysis runs with downtime-limit at the operator's budget and the
layer's settings (rate limit, auto-converge), without the layer's ramp: the
ramp is simulated on its own, as what the layer does when avail is not set.

The module is private (``tk.advise`` is the function); :data:`LAYERS` is public
as ``toolkit.ADVISE_LAYERS``.
"""
from __future__ import annotations

import dataclasses
import heapq
import itertools
import math
import numbers
import os
import threading
from concurrent.futures import Future

import numpy as np
import xarray as xr

from .constants import PAGE_SIZE
from .policies import Proxmox
from .scenario import PARAMETER_INDEX, Scenario, check_names
from .units import format_rate, format_size
from .verdict import Verdict, verdict_codes

#: Management layers: the QEMU settings each applies (``settings``; ``"link"``: the
#: link's rate) and its monitor (``policy``, a :mod:`toolkit.policies` string).
LAYERS = {
    "qemu": dict(settings={}, policy=None,
                 doc="QEMU's own defaults: max-bandwidth 128 MiB/s, no monitor"),
    "libvirt": dict(settings={"max_bandwidth": 0}, policy=None,
                    doc="libvirt: max-bandwidth unlimited (QEMU_DOMAIN_MIG_BANDWIDTH_MAX)"),
    "proxmox": dict(settings={"max_bandwidth": Proxmox.MAX_BANDWIDTH, "auto_converge": True},
                    policy="proxmox",
                    doc="Proxmox VE: max-bandwidth 16 GiB/s, auto-converge, downtime from "
                        "100 ms doubled on its counter (xbzrle not modelled)"),
    "nova": dict(settings={"max_bandwidth": 0}, policy="nova",
                 doc="OpenStack Nova on libvirt: unlimited, linear downtime steps"),
    "kubevirt": dict(settings={"max_bandwidth": 0},
                     policy="kubevirt:stall_detection=true,downtime_tuning=true",
                     doc="KubeVirt master (2026): unlimited, VEP 291 ramp from 150 ms, "
                         "VEP 248 stall detector"),
    "ovirt": dict(settings={"max_bandwidth": "link"}, policy="ovirt",
                  doc="oVirt/VDSM: max-bandwidth the detected link speed, exponential "
                      "downtime steps"),
}
DEFAULT_HEADROOM = (1.0, 3.0)
DEFAULT_SEEDS = 3
TOLERANCE = 0.01            # bisection: the two ends of a bracket within 1 %
SCAN = [4.0**k for k in range(-4, 3)]   # the avail scan: 1/256 to 16 times the link
HORIZON_PASSES = 3          # default max_time: this many first passes at the rate limit,
HORIZON_MIN = 30.0          # and at least this [s]
MAX_DOWNTIME_LIMIT = PARAMETER_INDEX["downtime_limit"].hi
# a guest paused longer than this loses its TCP peers' patience and cluster heartbeats:
# a downtime-limit QEMU needs beyond it is no way to migrate the guest [ms]
SANE_DOWNTIME_LIMIT = 10_000
# the alternatives' multifd channels: QEMU's docs, "8 usually provides best performance"
MULTIFD_CHANNELS = 8


def _checked_headroom(headroom, steps):
    if isinstance(headroom, numbers.Real) and not isinstance(headroom, bool):
        headroom = (headroom, headroom)
    try:
        lo, hi = (float(x) for x in headroom)
    except (TypeError, ValueError):
        raise TypeError(f"headroom: expected (low, high) factors of the dirty rate, e.g. "
                        f"(1, 3), got {headroom!r}") from None
    if not (0 < lo <= hi <= 100):
        raise ValueError(f"headroom={headroom!r} is out of range: expected factors "
                         "0 < low <= high <= 100")
    if isinstance(steps, bool) or not isinstance(steps, numbers.Integral) or \
            not 1 <= steps <= 20:
        raise ValueError(f"headroom_steps={steps!r} is out of range: expected an integer "
                         "in [1, 20]")
    return sorted(set(np.linspace(lo, hi, steps if hi > lo else 1).round(6).tolist()))


def _checked_seeds(seeds):
    if isinstance(seeds, numbers.Integral) and not isinstance(seeds, bool):
        if not 1 <= seeds <= 100:
            raise ValueError(f"seeds={seeds!r} is out of range: expected a count in [1, 100] "
                             "or a list of seeds")
        return list(range(int(seeds)))
    try:
        out = [int(s) for s in seeds]
    except (TypeError, ValueError):
        raise TypeError(f"seeds: expected a count or a list of integers, got {seeds!r}") \
            from None
    if not out:
        raise ValueError("seeds: expected at least one seed")
    return out


def _measurement_parameters(measurement) -> dict:
    if not callable(getattr(measurement, "to_parameters", None)):
        raise TypeError(f"measurement: expected an object with to_parameters() (see "
                        f"toolkit.measure.load), got {type(measurement).__name__}")
    params = dict(measurement.to_parameters())
    if "dirty_rate" not in params and getattr(measurement, "dirty_rate", None) is not None:
        params["dirty_rate"] = measurement.dirty_rate
    check_names(params)
    return params


@dataclasses.dataclass
class Run:
    """One simulated migration, summarised: what a table row needs."""

    verdict: Verdict
    converged: bool
    downtime_ms: float          # NaN if not converged
    total_time_s: float
    transferred_bytes: int
    dirty_sync_count: int
    cpu_throttle_percentage: int
    first_pass_share: float     # [0..1]
    aborted: bool = False       # cancelled by the management layer's monitor
    multifd_cpu_share: float = 0.0  # the multifd channels' CPU time over the total [cores]

    @property
    def within_limit(self) -> bool:
        """Switched over with the real downtime within the limit."""
        return self.verdict is Verdict.CONVERGES

    def to_dict(self) -> dict:
        """Stable keys with units in the names; NaN becomes None (JSON null)."""
        d = dataclasses.asdict(self)
        d["verdict"] = self.verdict.name.lower()
        return {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in d.items()}


def _run(r: dict, ram_size: int, limit: float) -> Run:
    """The :class:`Run` of one result's scalars ``r`` (:func:`toolkit.schema.scalar_results`
    of its final state), judged against the downtime budget ``limit`` [ms] (whatever
    downtime-limit ran)."""
    code = int(verdict_codes(r["converged"], r["downtime"], limit, r["passes"]))
    share = 1.0 if r["passes"] > 0 else float(r["last_page"]) * PAGE_SIZE / ram_size
    return Run(Verdict(code), bool(r["converged"]), float(r["downtime"]),
               float(r["total_time"]) / 1000, int(r["transferred"]),
               int(r["dirty_sync_count"]), int(r["cpu_throttle_percentage"]),
               min(share, 1.0), bool(r["aborted"]),
               float(r["multifd_cpu_time"]) / max(float(r["total_time"]), 1e-9))


@dataclasses.dataclass
class Edge:
    """A bisected avail-switchover-bandwidth edge: ``avail`` [B/s] has the property,
    ``neighbour`` [B/s] (within 1 %) does not; ``bound`` when the scan's range ended
    first (``"low"``: it holds down to the smallest value tried; ``"high"``: up to the
    largest)."""

    avail: float
    neighbour: float | None
    run: Run
    bound: str | None = None

    def to_dict(self) -> dict:
        """Stable keys with units in the names."""
        return {"avail_bytes_per_s": self.avail, "neighbour_bytes_per_s": self.neighbour,
                "bound": self.bound, **{k: v for k, v in self.run.to_dict().items()
                                        if k != "first_pass_share"}}


@dataclasses.dataclass
class Band:
    """A setting over seeds and dirty-rate headroom factors: ranges and shares."""

    label: str
    avail: float                # [B/s], 0 = QEMU's estimate
    runs: np.ndarray            # Run per (headroom, seed)

    def _range(self, name):
        v = [getattr(r, name) for r in self.runs.ravel() if r.converged]
        return [float(min(v)), float(max(v))] if v else None

    def to_dict(self) -> dict:
        """Ranges among the runs that converged, and the shares."""
        runs = self.runs.ravel()
        return {"label": self.label, "avail_bytes_per_s": self.avail, "runs": len(runs),
                "share_converging": sum(r.converged for r in runs) / len(runs),
                "share_within_limit": sum(r.within_limit for r in runs) / len(runs),
                "downtime_ms": self._range("downtime_ms"),
                "total_time_s": self._range("total_time_s"),
                "transferred_bytes": self._range("transferred_bytes")}


@dataclasses.dataclass
class Alternative:
    """Another way to the switchover, simulated."""

    name: str
    setting: str
    run: Run

    @property
    def helps(self) -> bool:
        """Whether it switches over with the real downtime within the limit."""
        return self.run.within_limit

    def to_dict(self) -> dict:
        """Stable keys with units in the names."""
        return {"name": self.name, "setting": self.setting, "helps": self.helps,
                **self.run.to_dict()}


def _how_to_set(layer: str, avail: float) -> str:
    """How an operator on ``layer`` sets avail-switchover-bandwidth ``avail`` [B/s]:
    no layer passes it on (field-2026.md), so QEMU's or libvirt's own knob."""
    qmp = f"QMP migrate-set-parameters avail-switchover-bandwidth={int(avail)}"
    if layer == "qemu":
        return qmp
    if layer == "proxmox":
        return f"Proxmox has no option for it: {qmp} on the VM's monitor"
    virsh = f"libvirt bandwidth.avail.switchover = {int(avail // 2**20)} MiB/s, libvirt 11.1+"
    return virsh if layer == "libvirt" else f"{virsh}; {layer} does not set it"


def _how_to_multifd(layer: str, channels: int, compression: str) -> str:
    """How an operator on ``layer`` turns multifd on with ``channels`` channels and
    ``compression`` (field-2026.md: what each layer exposes)."""
    zstd = compression != "none"
    if layer == "nova":
        return f"Nova live_migration_parallel_connections={channels}" + \
            ("; zstd is not a Nova option" if zstd else "")
    if layer == "kubevirt":
        return f"KubeVirt ParallelMigrationThreads={channels}" + \
            (", zstd compression (VEP 246)" if zstd else "")
    virsh = f"virsh migrate --parallel --parallel-connections {channels}" + \
        (" --compressed --comp-methods zstd" if zstd else "")
    if layer in ("libvirt", "ovirt"):
        return virsh
    return "QMP migrate-set-capabilities multifd=on, migrate-set-parameters " \
        f"multifd-channels={channels}" + (f" multifd-compression={compression}" if zstd else "")


def _gbit(bps) -> str:
    return "-" if bps is None else f"{bps * 8 / 1e9:.3g} Gbit/s"


class Advice:
    """The answer of :func:`advise`: see its Returns. ``str(advice)`` is a text table."""

    #: the management layers ``advise(layer=...)`` knows: :data:`LAYERS`
    LAYERS = LAYERS

    def __init__(self, **fields):
        self.__dict__.update(fields)

    # --- views ---------------------------------------------------------------------
    @property
    def safe(self) -> bool:
        """Whether some avail-switchover-bandwidth converges within the limit."""
        return self.safe_band is not None

    @property
    def safe_band(self) -> tuple[float, float] | None:
        """(smallest converging, largest within the limit) [B/s], or None."""
        lo, hi = self.smallest_converging, self.largest_safe
        if lo is None or hi is None or lo.avail > hi.avail:
            return None
        return lo.avail, hi.avail

    def to_dict(self) -> dict:
        """Everything as plain data with stable keys (units in the names): JSON-ready."""
        return {
            "inputs": self.inputs,
            "estimate": self.estimate.to_dict(),
            "estimate_bandwidth_bytes_per_s": self.estimate_bandwidth,
            "smallest_converging_avail":
                None if self.smallest_converging is None else self.smallest_converging.to_dict(),
            "largest_safe_avail":
                None if self.largest_safe is None else self.largest_safe.to_dict(),
            "safe": self.safe,
            "safe_band_bytes_per_s": None if self.safe_band is None else list(self.safe_band),
            "recommended_avail_bytes_per_s": self.recommended,
            "monotonic": self.monotonic,
            "bands": [b.to_dict() for b in self.bands],
            "layer_ramp": None if self.layer_ramp is None else self.layer_ramp.to_dict(),
            "alternatives": [a.to_dict() for a in self.alternatives],
            "notes": list(self.notes),
        }

    def to_dataset(self) -> xr.Dataset:
        """The avail scan (every value simulated) along ``avail_switchover_bandwidth`` and
        the bands along (``band``, ``headroom``, ``seed``), with units; the edges and
        inputs as attributes (NaN where none)."""
        avail = np.array([a for a, _ in self.scan], float)
        runs = [r for _, r in self.scan]

        def var(values, units, long_name, dims=("avail_switchover_bandwidth",)):
            return xr.Variable(dims, np.asarray(values), {"units": units,
                                                          "long_name": long_name})
        flags = {"flag_values": np.arange(len(Verdict), dtype=np.int8),
                 "flag_meanings": " ".join(v.name.lower() for v in Verdict)}
        band_dims = ("band", "headroom", "seed")
        grid = np.stack([b.runs for b in self.bands])

        def band(name):
            return np.vectorize(lambda r: getattr(r, name), otypes=[float])(grid)
        ds = xr.Dataset(
            {"converged": var([r.converged for r in runs], "1", "switched over"),
             "verdict": var(np.array([int(r.verdict) for r in runs], np.int8), "1",
                            "verdict (toolkit.verdict.Verdict)"),
             "downtime": var([r.downtime_ms for r in runs], "ms", "real downtime"),
             "total_time": var([r.total_time_s for r in runs], "s", "total time"),
             "transferred": var([r.transferred_bytes for r in runs], "B", "bytes sent"),
             "band_converged": var(band("converged"), "1", "switched over", band_dims),
             "band_within_limit": var(band("within_limit"), "1",
                                      "switched over within downtime-limit", band_dims),
             "band_downtime": var(band("downtime_ms"), "ms", "real downtime", band_dims),
             "band_total_time": var(band("total_time_s"), "s", "total time", band_dims),
             "band_transferred": var(band("transferred_bytes"), "B", "bytes sent",
                                     band_dims)},
            coords={"avail_switchover_bandwidth": ("avail_switchover_bandwidth", avail,
                                                   {"units": "B s-1",
                                                    "long_name": "avail-switchover-bandwidth"}),
                    "band": ("band", [b.label for b in self.bands]),
                    "band_avail": ("band", [b.avail for b in self.bands],
                                   {"units": "B s-1", "long_name": "the band's avail"}),
                    "headroom": ("headroom", self.headroom,
                                 {"units": "1", "long_name": "dirty-rate factor"}),
                    "seed": ("seed", self.seeds)})
        ds["verdict"].attrs.update(flags)
        nan = float("nan")
        ds.attrs = {"title": "toolkit.advise: avail-switchover-bandwidth for one guest",
                    "smallest_converging_avail": nan if self.smallest_converging is None
                    else self.smallest_converging.avail,
                    "largest_safe_avail": nan if self.largest_safe is None
                    else self.largest_safe.avail,
                    "recommended_avail": nan if self.recommended is None else self.recommended,
                    "estimate_verdict": self.estimate.verdict.name.lower(),
                    "estimate_bandwidth": self.estimate_bandwidth,
                    "monotonic": int(self.monotonic), "notes": " | ".join(self.notes),
                    **{k: (v if isinstance(v, (int, float, str)) else str(v))
                       for k, v in self.inputs.items()}}
        return ds

    def __str__(self) -> str:
        i = self.inputs
        cap = i["max_bandwidth_bytes_per_s"]
        lines = [f"{format_size(i['ram_size_bytes'])} guest dirtying "
                 f"{format_rate(i['dirty_rate_bytes_per_s'])} (bands x{self.headroom[0]:g} to "
                 f"x{self.headroom[-1]:g}); link {format_rate(i['link_bandwidth_bytes_per_s'])}"
                 f", max-bandwidth {format_rate(cap) if cap else 'unlimited'}, downtime-limit "
                 f"{i['downtime_limit_ms']} ms, layer {i['layer']}",
                 f"QEMU's estimate (avail 0): {self.estimate_text}"]
        header = f"{'':<28} {'avail':>15} {'verdict':>22} {'total':>9} {'downtime':>9} " \
                 f"{'sent':>10}"
        rows = [header, "-" * len(header)]

        def row(name, avail, run):
            total = f"{run.total_time_s:.1f} s" if run.converged else \
                f">{run.total_time_s:.0f} s"
            down = f"{run.downtime_ms:.0f} ms" if run.converged else "-"
            label = "aborted by the layer" if run.aborted else run.verdict.label
            rows.append(f"{name:<28} {avail:>15} {label:>22} {total:>9} "
                        f"{down:>9} {format_size(run.transferred_bytes):>10}")
        row("QEMU's estimate", "0", self.estimate)
        for name, edge in (("smallest converging avail", self.smallest_converging),
                           ("largest safe avail", self.largest_safe)):
            if edge is not None:
                mark = {"low": "<=", "high": ">="}.get(edge.bound, "")
                row(name, mark + _gbit(edge.avail), edge.run)
        if self.layer_ramp is not None:
            row(f"{i['layer']}'s own ramp", "0", self.layer_ramp.run)
        lines += rows
        if self.estimate.verdict is Verdict.CONVERGES:
            lines.append("QEMU's estimate converges within the limit already: avail is not "
                         "needed (the range below is what is safe to set)")
        if self.safe:
            lo, hi = self.safe_band
            lines.append(f"safe avail-switchover-bandwidth: {_gbit(lo)} to {_gbit(hi)}; "
                         f"recommended {_gbit(self.recommended)} "
                         f"({_how_to_set(i['layer'], self.recommended)})")
        else:
            lines.append("no avail-switchover-bandwidth is safe")
        lines.append("bands over seeds x dirty-rate headroom (ranges among converged runs):")
        for b in self.bands:
            d = b.to_dict()
            down = "-" if d["downtime_ms"] is None else \
                f"{d['downtime_ms'][0]:.0f}-{d['downtime_ms'][1]:.0f} ms"
            total = "-" if d["total_time_s"] is None else \
                f"{d['total_time_s'][0]:.1f}-{d['total_time_s'][1]:.1f} s"
            lines.append(f"  {b.label:<26} {_gbit(b.avail) if b.avail else 'estimate':>13} "
                         f"within limit {d['share_within_limit']:>4.0%} "
                         f"(converge {d['share_converging']:.0%}), downtime {down}, "
                         f"total {total}")
        def alternative(mark, alt):
            r = alt.run
            down = f"{r.downtime_ms:.0f} ms" if r.converged else "-"
            total = f"{r.total_time_s:.1f} s" if r.converged else f">{r.total_time_s:.0f} s"
            label = "aborted by the layer" if r.aborted else r.verdict.label
            lines.append(f"  {mark:>2} {alt.name:<26} {alt.setting:<34} {label:>22} "
                         f"{total:>9} {down:>9}")
        helping = [a for a in self.alternatives if a.helps]
        if self.alternatives:
            lines.append("alternatives, ranked by downtime then total time:")
            for k, alt in enumerate(helping, 1):
                alternative(f"{k}.", alt)
            if not helping:
                lines.append("   none switches over within the limit")
        if len(helping) < len(self.alternatives):
            lines.append(f"do not help (no switchover, or a downtime over "
                         f"{i['downtime_limit_ms']} ms):")
            for alt in self.alternatives:
                if not alt.helps:
                    alternative("-", alt)
        lines += [f"note: {n}" for n in self.notes]
        return "\n".join(lines)

    def plot(self, ax=None):
        """Real downtime against avail: the limit, the safe band shaded, QEMU's estimate
        marked; runs that did not switch over along the top.

        Returns
        -------
        matplotlib.figure.Figure
        """
        import matplotlib.pyplot as plt
        from matplotlib.ticker import FuncFormatter

        if ax is None:
            fig, ax = plt.subplots(figsize=(7, 4), layout="constrained")
        else:
            fig = ax.figure
        link = self.inputs["link_bandwidth_bytes_per_s"]
        unit, scale = ("Gbit/s", 1.25e8) if link >= 1.25e8 else ("Mbit/s", 1.25e5)
        limit = self.inputs["downtime_limit_ms"]
        scan = sorted(self.scan, key=lambda p: p[0])
        x = np.array([a for a, _ in scan]) / scale
        down = np.array([r.downtime_ms for _, r in scan])
        conv = np.array([r.converged for _, r in scan])
        top = max(np.nanmax(down, initial=limit), limit) * 1.3
        if self.safe:
            lo, hi = self.safe_band
            ax.axvspan(lo / scale, hi / scale, color="#009E73", alpha=0.15,
                       label="safe avail (converges within the limit)")
        ax.plot(x[conv], down[conv], "o-", color="#0072B2", ms=3, label="real downtime")
        if (~conv).any():
            ax.plot(x[~conv], np.full((~conv).sum(), top * 0.97), "x", color="#555555",
                    label="no switchover")
        ax.axhline(limit, color="#D55E00", ls="--", label=f"downtime-limit {limit:g} ms")
        if self.estimate_bandwidth:
            ax.axvline(self.estimate_bandwidth / scale, color="#CC79A7", ls=":",
                       label="QEMU's estimate (its bandwidth)")
            if self.estimate.converged:
                ax.plot([self.estimate_bandwidth / scale], [self.estimate.downtime_ms], "*",
                        color="#CC79A7", ms=11)
        ax.set_xscale("log")
        ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
        ax.set_xlabel(f"avail-switchover-bandwidth [{unit}]")
        ax.set_ylabel("real downtime [ms]")
        ax.set_ylim(0, top)
        ax.set_title(f"{format_size(self.inputs['ram_size_bytes'])} guest at "
                     f"{format_rate(self.inputs['dirty_rate_bytes_per_s'])}, link "
                     f"{format_rate(link)} ({self.inputs['layer']})", fontsize=10)
        ax.legend(fontsize=8, loc="best")
        return fig


class _Pool:
    """Worker threads over the ``nogil`` kernel taking the most urgent task first (the
    lowest ``priority``, then the oldest): the searches' next probes run before the
    bands and the alternatives, which fill the cores the probes leave idle. A task
    may belong to a group of speculative work that :meth:`cancel` drops."""

    def __init__(self, workers: int):
        self._heap, self._order = [], itertools.count()
        self._ready = threading.Condition()
        self._closed = False
        self._threads = [threading.Thread(target=self._work, daemon=True,
                                          name=f"advise-{k}") for k in range(workers)]
        for t in self._threads:
            t.start()

    def submit(self, priority: int, group, fn, *args) -> Future:
        future = Future()
        future.group = group
        with self._ready:
            if self._closed or (group is not None and group.cancelled):
                future.cancel()
                return future
            heapq.heappush(self._heap, (priority, next(self._order), future, fn, args))
            self._ready.notify()
        return future

    def cancel(self, group):
        """Drop the queued tasks of ``group`` and any it submits later (their
        Futures are cancelled); its running tasks end on their own."""
        with self._ready:
            group.cancelled = True
            for *_, future, _, _ in self._heap:
                if future.group is group:
                    future.cancel()

    def _work(self):
        while True:
            with self._ready:
                while not self._heap and not self._closed:
                    self._ready.wait()
                if not self._heap:
                    return
                _, _, future, fn, args = heapq.heappop(self._heap)
            if not future.set_running_or_notify_cancel():
                continue
            try:
                future.set_result(fn(*args))
            except BaseException as err:        # noqa: B036 (handed to the waiting caller)
                future.set_exception(err)

    def close(self):
        """Cancel what has not started, let the running tasks end, join the threads."""
        with self._ready:
            self._closed = True
            for *_, future, _, _ in self._heap:
                future.cancel()
            self._heap.clear()
            self._ready.notify_all()
        for t in self._threads:
            t.join()


class _Group:
    """Speculative work (see :meth:`_Pool.cancel`)."""

    cancelled = False


# task priorities: the edges' search, then the alternatives' search, then the rest
URGENT, SEARCH, FILL = 0, 1, 2


class _Searcher:
    """Runs the simulations of one base scenario on one pool of threads, each distinct
    scenario once (a point's result depends only on its parameters), and keeps every
    avail value the edges' search simulated (the scan).

    A thread's runs go at the priority and in the group of :meth:`working_as`
    (default: urgent, no group), so a search code runs unchanged in any of them.
    """

    def __init__(self, base: Scenario, workers):
        self.base = base
        self.budget = base.downtime_limit
        self.workers = workers or os.cpu_count() or 1
        self.scan: list[tuple[float, Run]] = []
        self._given = {k: getattr(base, k) for k in base._given}
        self._runs: dict[tuple, Future] = {}
        self._lock = threading.Lock()
        self._cancel = threading.Event()
        self._where = threading.local()
        from ._simulate import check_memory, run_memory
        check_memory(self.workers * run_memory(base), f"advise ({self.workers} runs at once "
                     f"of ram_size={format_size(base.ram_size)})", "fewer workers, a "
                     "smaller ram_size or check=False")
        self._pool = _Pool(self.workers)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        # the answer is complete (or Ctrl-C, an error): what still runs is not wanted
        self._cancel.set()
        self._pool.close()

    @property
    def simulated(self) -> int:
        """Distinct scenarios simulated for the answer (dropped speculative work aside)."""
        with self._lock:
            return sum(not f.cancelled() and (f.group is None or not f.group.cancelled)
                       for f in self._runs.values())

    def working_as(self, priority: int, group: _Group | None = None):
        """Let this thread's runs go at ``priority``, in ``group``."""
        self._where.priority, self._where.group = priority, group

    def cancel(self, group: _Group):
        """Drop ``group``'s work (its waiting searches see CancelledError)."""
        with self._lock:
            self._pool.cancel(group)

    def submit(self, traces=False, priority=None, **changes) -> Future:
        """The run of the base scenario with ``changes``: a Future of (Run, Dataset
        with its per-window trace if ``traces``, else None), shared by every caller
        asking for the same scenario."""
        sc = Scenario(**{**self._given, **changes})
        key = tuple((k, repr(v)) for k, v in sc.to_dict().items())
        if priority is None:
            priority = getattr(self._where, "priority", URGENT)
        group = getattr(self._where, "group", None)
        with self._lock:
            future = self._runs.get(key)
            if future is None or future.cancelled() or (traces and not future.traces):
                future = self._pool.submit(priority, group, self._simulate, sc, traces)
                future.traces = traces
                self._runs[key] = future
            elif future.group is not group:
                future.group = None     # wanted beyond its group: never dropped now
        return future

    def _simulate(self, sc: Scenario, traces: bool):
        from .schema import build_dataset, scalar_results
        from ._simulate import run_kernel
        raw = run_kernel(sc, self._cancel)
        run = _run(scalar_results(raw.state), sc.ram_size, self.budget)
        return run, (build_dataset(raw.state, sc.to_dict(), traces=raw.trace) if traces
                     else None)

    def at(self, name: str, values: list, **extra) -> list[Run]:
        """Runs with ``name`` at each of ``values`` (whole numbers) and ``extra``, at once."""
        futures = [self.submit(**extra, **{name: int(v)}) for v in values]
        runs = [f.result()[0] for f in futures]
        if name == "avail_switchover_bandwidth" and not extra:
            self.scan += [(float(int(v)), r) for v, r in zip(values, runs)]
        return runs

    def one(self, traces=False, **changes) -> tuple[Run, xr.Dataset]:
        """One run, waited for."""
        return self.submit(traces, **changes).result()

    def background(self, fn, *args, priority=SEARCH, group=None) -> Future:
        """``fn(*args)`` in a thread of its own whose runs go at ``priority`` in
        ``group``: a search that runs alongside the caller's."""
        out = Future()

        def run():
            self.working_as(priority, group)
            if out.set_running_or_notify_cancel():
                try:
                    out.set_result(fn(*args))
                except BaseException as err:    # noqa: B036 (handed to the waiting caller)
                    out.set_exception(err)
        thread = threading.Thread(target=run, daemon=True, name="advise-search")
        thread.start()
        out.thread = thread
        return out


def _bisect(search, name, brackets, **extra) -> list:
    """Narrow brackets ``[bad, good, test]`` of whole numbers on a log scale until their
    ends are within :data:`TOLERANCE` (``test(run)`` False at ``bad``, True at
    ``good``), all at once: each round simulates the middle of each bracket. (One
    point a round, not a 3-way split on two cores: the other searches and the
    bands fill the second core, and halving takes 25 % fewer runs per digit.)

    Returns
    -------
    list of (good, bad, Run at good or None if ``good`` never moved)
    """
    state = [[bad, good, test, None] for bad, good, test in brackets]
    while True:
        work = []
        for b in state:
            if abs(b[1] / b[0] - 1) <= TOLERANCE:
                continue
            lb, lg = math.log(b[0]), math.log(b[1])
            qs = sorted({round(math.exp((lb + lg) / 2))} - {b[0], b[1]})
            if not qs:
                b[0] = b[1]         # whole numbers side by side: as close as they get
                continue
            work.append((b, qs))
        if not work:
            return [(b[1], b[0], b[3]) for b in state]
        runs = iter(search.at(name, [q for _, qs in work for q in qs], **extra))
        for b, qs in work:
            found = None
            for q in qs:                            # from the bad end towards the good
                run = next(runs)
                if found is None and b[2](run):
                    found = (q, run)
                elif found is None:
                    b[0] = q
            if found is not None:
                b[1], b[3] = found


def _monotonic(scan) -> tuple[bool, list]:
    """Whether converging rises and staying within the limit falls with avail, over
    the values simulated; the values [B/s] after which either turns the wrong way."""
    wrong, converged, overshot = [], False, False
    for avail, run in sorted(scan, key=lambda p: p[0]):
        if (converged and not run.converged) or (overshot and run.within_limit):
            wrong.append(avail)
        converged |= run.converged
        overshot |= run.converged and not run.within_limit
    return not wrong, wrong


def _base_scenario(layer, measurement, given, params) -> Scenario:
    """The layer's settings, then the measurement's parameters, then the explicit ones."""
    values = dict(LAYERS[layer]["settings"])
    if measurement is not None:
        values.update(_measurement_parameters(measurement))
        if "dirty_rate" not in values and given.get("dirty_rate") is None and \
                "dirty_rate" not in params:
            # else the default dirty rate would stand in for the guest's, unsaid
            source = getattr(measurement, "source", type(measurement).__name__)
            raise ValueError(f"dirty_rate: the measurement {source} gives none (e.g. a "
                             "completed job's statistics): give the dirty rate too (dirty_rate=, "
                             "--dirty-rate)")
    values.update({k: v for k, v in given.items() if v is not None})
    values.update(params)
    if values.get("max_bandwidth") == "link":
        values["max_bandwidth"] = Scenario.from_kwargs(
            **{k: v for k, v in values.items() if k != "max_bandwidth"}).link_bandwidth
    base = Scenario.from_kwargs(**values)
    return base


def _edges(search, scanned=None) -> tuple[Edge | None, Edge | None]:
    """The smallest converging and the largest safe avail: a scan on a x4 grid of the
    link's multiples, then both edges bisected inside their brackets;
    ``scanned(runs)`` is called with the scan's runs before the bisection."""
    link = search.base.link_bandwidth
    grid = [a for a in (round(link * f) for f in SCAN) if a >= 1]
    runs = search.at("avail_switchover_bandwidth", grid)
    if scanned is not None:
        scanned(runs)
    conv = [r.converged for r in runs]
    within = [r.within_limit for r in runs]
    if not any(conv):
        return None, None
    brackets, edges = [], {}
    first = conv.index(True)
    if first == 0:
        edges["smallest"] = Edge(grid[0], None, runs[0], bound="low")
    else:
        brackets.append(("smallest", grid[first - 1], grid[first],
                         lambda r: r.converged, runs[first]))
    safe_idx = [k for k in range(first, len(grid)) if within[k]]
    if safe_idx:
        last = safe_idx[0]
        while last + 1 < len(grid) and within[last + 1]:
            last += 1           # the end of the first band of safe values
        if last == len(grid) - 1:
            edges["largest"] = Edge(grid[last], None, runs[last], bound="high")
        else:
            brackets.append(("largest", grid[last + 1], grid[last],
                             lambda r: r.within_limit, runs[last]))
    found = _bisect(search, "avail_switchover_bandwidth",
                    [(bad, good, test) for _, bad, good, test, _ in brackets])
    for (key, *_, start), (good, bad, run) in zip(brackets, found):
        edges[key] = Edge(good, bad, run or start)
    smallest = edges.get("smallest")
    if "largest" not in edges and smallest.run.within_limit:
        # the grid's first converging value overshoots already: the safe band ends
        # between the smallest converging value and it
        above = min(a for a, r in search.scan if a > smallest.avail and not r.within_limit)
        below, start = max((p for p in search.scan if smallest.avail <= p[0] < above and
                            p[1].within_limit), key=lambda p: p[0])
        (good, bad, run), = _bisect(search, "avail_switchover_bandwidth",
                                    [(above, below, lambda r: r.within_limit)])
        edges["largest"] = Edge(good, bad, run or start)
    return smallest, edges.get("largest")


def advise(ram_size=None, dirty_rate=None, link_bandwidth=None, downtime_limit=None,
           max_bandwidth=None, *, host=None, layer="qemu", measurement=None,
           headroom=DEFAULT_HEADROOM, headroom_steps=3, seeds=DEFAULT_SEEDS,
           alternatives=None, workers=None, **params) -> Advice:
    """Advise on one migration: verdict, safe avail-switchover-bandwidth, bands.

    Parameters
    ----------
    ram_size : int or str
        Guest RAM [B], e.g. ``"16GiB"``.
    dirty_rate : float, str or measurement
        Guest dirty rate [B/s] (``"400MiB/s"``), or an object with
        ``to_parameters()`` (:func:`toolkit.measure.load`) giving it.
    link_bandwidth, max_bandwidth : float or str
        [B/s]; ``max_bandwidth`` defaults to the layer's (0 = unlimited).
    downtime_limit : int or str
        The downtime budget [ms]: QEMU's downtime-limit, and the limit the real
        downtime is judged against.
    host : str
        A :mod:`toolkit.hosts` profile for the link and host costs.
    layer : str
        One of :data:`LAYERS`: the settings that layer applies (explicit
        arguments override them) and its downtime ramp.
    measurement : object with ``to_parameters()``
        Simulate keyword arguments measured on the VM; explicit arguments win.
    headroom : (float, float)
        Dirty-rate factors for the bands (default 1 to 3), ``headroom_steps``
        values between them.
    seeds : int or list of int
        Seeds for the bands (a count: 0, 1, ...).
    alternatives : bool, optional
        Simulate the alternatives; default only when no avail is safe.
    workers : int, optional
        Threads for the runs (default: CPUs).
    **params
        Any other scenario parameter (``workload``, ``hot_fraction``, ``max_time``, ...).

    Returns
    -------
    Advice
        ``estimate`` (a :class:`Run` with QEMU's estimate), ``smallest_converging``
        and ``largest_safe`` (:class:`Edge` or None), ``safe_band``,
        ``recommended`` [B/s], ``monotonic``, ``bands``, ``layer_ramp``,
        ``alternatives``, ``notes``; ``to_dict()``, ``to_dataset()``,
        ``plot()``, and a text table as ``str()``.

    Raises
    ------
    TypeError, ValueError
        Bad input, naming the parameter, the value and the allowed range, before
        any simulation.
    """
    if layer not in LAYERS:
        raise ValueError(f"layer={layer!r} is not a known management layer: expected one of "
                         f"{', '.join(LAYERS)}")
    if dirty_rate is not None and callable(getattr(dirty_rate, "to_parameters", None)):
        measurement, dirty_rate = dirty_rate, None
    check_names(params)
    for name in ("avail_switchover_bandwidth", "policy", "seed"):
        if name in params:
            raise TypeError(f"{name}: advise chooses it (avail is what it searches; the "
                            "layer sets the policy; seeds= sets the seeds)")
    given = dict(ram_size=ram_size, dirty_rate=dirty_rate, link_bandwidth=link_bandwidth,
                 downtime_limit=downtime_limit, max_bandwidth=max_bandwidth, host=host)
    base = _base_scenario(layer, measurement, given, params)
    factors = _checked_headroom(headroom, headroom_steps)
    seed_list = _checked_seeds(seeds)
    if "max_time" not in base._given:
        # long enough for the first pass several times over: "no verdict yet" is no advice
        rate = min(base.link_bandwidth, base.max_bandwidth or base.link_bandwidth)
        base = base.replace(max_time=min(1e6, max(HORIZON_MIN,
                                                  HORIZON_PASSES * base.ram_size / rate)))
    try:
        base.replace(dirty_rate=base.dirty_rate * factors[-1])
    except ValueError as err:
        raise ValueError(f"headroom x{factors[-1]:g}: {err}") from None
    notes = [f"measurement: {n}" for n in getattr(measurement, "notes", ())
             if isinstance(n, str)]
    if layer == "proxmox":
        notes.append("Proxmox also enables xbzrle, which is not modelled (pages go whole)")
    if LAYERS[layer]["policy"]:
        notes.append(f"the avail analysis keeps downtime-limit at {base.downtime_limit} ms "
                     f"without {layer}'s ramp; the ramp is simulated on its own")
    with _Searcher(base, workers) as search:
        return _advise(search, base, layer, factors, seed_list, alternatives, notes)


def _advise(search, base, layer, factors, seed_list, alternatives, notes) -> Advice:
    """:func:`advise`'s work on a ready searcher. What does not wait on the edges'
    search runs alongside it: the estimate's band, the layer's ramp, and the
    alternatives once the scan finds no avail within the limit (dropped if the
    bisection finds one after all)."""
    policy = LAYERS[layer]["policy"]
    est_future = search.submit(traces=True, avail_switchover_bandwidth=0)

    def band(avail):
        return [[search.submit(priority=FILL, avail_switchover_bandwidth=int(avail),
                               dirty_rate=base.dirty_rate * f, seed=s) for s in seed_list]
                for f in factors]
    estimate_band = band(0)
    ramp_future = None if not policy else \
        search.submit(priority=SEARCH, policy=policy, avail_switchover_bandwidth=0)
    ahead = {}

    def scanned(runs):
        # the alternatives will likely be wanted when no avail of the scan is within the
        # limit and the first that converges overshoots by more than the scan's step
        # (the downtime grows about linearly with avail): their search starts now
        first = next((r for r in runs if r.converged), None)
        likely = first is None or (not any(r.within_limit for r in runs) and
                                   first.downtime_ms > SCAN[1] / SCAN[0] * base.downtime_limit)
        if alternatives or (alternatives is None and likely):
            ahead["group"] = None if alternatives else _Group()
            ahead["future"] = search.background(_alternatives, search, base, layer, ramp_future,
                                                est_future, group=ahead["group"])

    smallest, largest = _edges(search, scanned)
    estimate, est_ds = est_future.result()
    from .verdict import describe
    estimate_text = describe(est_ds)
    bw = est_ds["bandwidth"].values
    bw = bw[np.isfinite(bw) & (bw > 0)]
    estimate_bandwidth = float(np.median(bw)) if bw.size else 0.0
    monotonic = _scan_notes(search.scan, base, smallest, notes)
    advice = Advice(inputs=None, estimate=estimate, estimate_text=estimate_text,
                    estimate_bandwidth=estimate_bandwidth, smallest_converging=smallest,
                    largest_safe=largest, monotonic=monotonic, scan=search.scan,
                    headroom=factors, seeds=seed_list, notes=notes, bands=[],
                    layer_ramp=None, alternatives=[], recommended=None)
    want_alternatives = alternatives or (alternatives is None and not advice.safe)
    if "future" in ahead and not want_alternatives:
        search.cancel(ahead["group"])
    # the safe band's middle (geometric), and the bands over seeds x headroom
    settings = [("QEMU's estimate", 0.0, estimate_band)]
    if advice.safe:
        lo, hi = advice.safe_band
        advice.recommended = float(int(math.sqrt(lo * hi)))
        settings += [("recommended avail", advice.recommended, band(advice.recommended)),
                     ("largest safe avail", hi, band(hi))]
    for label, avail, futures in settings:
        runs = np.empty((len(factors), len(seed_list)), object)
        for i in np.ndindex(runs.shape):
            runs[i] = futures[i[0]][i[1]].result()[0]
        advice.bands.append(Band(label, avail, runs))
    if policy:
        run = ramp_future.result()[0]
        advice.layer_ramp = Alternative(f"{layer}'s ramp", policy, run)
        if run.aborted:
            notes.append(f"{layer}'s monitor aborted the migration after "
                         f"{run.total_time_s:.0f} s")
        elif not run.converged:
            notes.append(f"{layer}'s ramp did not switch over within the {base.max_time:.0f} s "
                         "horizon (give max_time= for a longer one)")
    if want_alternatives:
        if "future" not in ahead:
            ahead["future"] = search.background(_alternatives, search, base, layer, ramp_future,
                                                est_future)
        advice.alternatives, more = ahead["future"].result()
        notes += more
    elif "future" in ahead:
        ahead["future"].thread.join()           # dropped: it ends at its next wait
    advice.inputs = {
        "ram_size_bytes": base.ram_size, "dirty_rate_bytes_per_s": base.dirty_rate,
        "link_bandwidth_bytes_per_s": base.link_bandwidth,
        "max_bandwidth_bytes_per_s": base.max_bandwidth,
        "downtime_limit_ms": base.downtime_limit, "layer": layer, "host": base.host,
        "workload": base.workload, "max_time_s": base.max_time,
        "headroom": factors, "seeds": seed_list, "simulations": search.simulated}
    return advice


def _scan_notes(scan, base, smallest, notes) -> bool:
    """Add what the scan says about the edges to ``notes``; whether it is monotonic."""
    monotonic, wrong = _monotonic(scan)
    if smallest is not None and smallest.avail > base.link_bandwidth and \
            not smallest.run.within_limit:
        notes.append(f"the smallest avail that converges, {_gbit(smallest.avail)}, is above the "
                     f"link's {_gbit(base.link_bandwidth)}: it tells QEMU the link is faster "
                     "than it is, so QEMU switches over with more left than the link sends "
                     "within the limit; it does not help")
    if not monotonic:
        notes.append("the bisection assumes converging, and the downtime, grow with avail; "
                     "the simulated values say otherwise after "
                     f"{', '.join(_gbit(a) for a in wrong)}: the edges bound the first "
                     "band of safe values only")
    return monotonic


def _multifd_alternatives(base) -> list:
    """Multifd with :data:`MULTIFD_CHANNELS` (or the base's more), without and with zstd:
    the channels lift a migration thread that is CPU-bound, and find the zero pages
    themselves (zero-page-detection multifd), so the estimate follows what they carry."""
    if base.postcopy_ram:
        return []               # multifd with postcopy is not modelled
    channels = max(MULTIFD_CHANNELS, base.multifd_channels if base.multifd else 0)
    out = []
    for compression in ("none", "zstd"):
        if base.multifd and channels == base.multifd_channels and \
                compression == base.multifd_compression:
            continue            # the base runs it already
        zstd = compression != "none"
        out.append((f"multifd, {channels} channels" + (" + zstd" if zstd else ""),
                    f"multifd_channels={channels}" +
                    (f", zstd to {base.compressed_fraction:g}" if zstd else ""),
                    dict(multifd=True, multifd_channels=channels,
                         multifd_compression=compression)))
    return out


def _alternatives(search, base, layer, ramp_future, est_future) -> tuple[list, list]:
    """Each way to the switchover besides avail, simulated and ranked; and notes."""
    out, notes = [], []
    others = [("auto-converge", "auto_converge=true", dict(auto_converge=True)),
              ("dirty-limit",
               f"dirty_limit=true at {base.vcpu_dirty_limit} MiB/s x {base.vcpus} vCPU",
               dict(dirty_limit=True, auto_converge=False)),
              ("postcopy", "postcopy_ram=true after the first pass",
               dict(postcopy_ram=True, postcopy_start_sync=2))]
    if base.workload in ("replay", "phases"):
        others = [o for o in others if o[0] != "dirty-limit"]      # it needs one dirty rate
    if 0 < base.max_bandwidth < base.link_bandwidth:
        others.append(("max-bandwidth unlimited", "max_bandwidth=0 (libvirt's default)",
                       dict(max_bandwidth=0)))
    others += _multifd_alternatives(base)
    # one run each: they fill the cores the search below leaves idle
    done = [search.submit(priority=FILL, avail_switchover_bandwidth=0, **o[2])
            for o in others]
    # the downtime-limit QEMU's estimate needs: x4 and x16 per round, then bisection
    lo, run = max(base.downtime_limit, 1), None
    # QEMU's expected-downtime (its pending at the last sync over its bandwidth) is about
    # the limit it needs, often above it: try either side of it, and half of it, first
    expected_downtime = float(est_future.result()[1].expected_downtime)
    hint = [round(expected_downtime * f) for f in (0.5, 0.9, 1.1)]
    hint = sorted({min(max(h, lo + 1), MAX_DOWNTIME_LIMIT) for h in hint})
    while lo < MAX_DOWNTIME_LIMIT and run is None:
        tries = hint or sorted({min(lo * 4, MAX_DOWNTIME_LIMIT),
                                min(lo * 16, MAX_DOWNTIME_LIMIT)})
        hint = None
        runs = search.at("downtime_limit", tries, avail_switchover_bandwidth=0)
        for limit, r in zip(tries, runs):
            if r.converged:
                hi, run = limit, r
                break
            lo = limit
    if run is not None:
        (good, _, better), = _bisect(search, "downtime_limit",
                                     [(lo, hi, lambda r: r.converged)],
                                     avail_switchover_bandwidth=0)
        need = Alternative("downtime-limit needed", f"downtime_limit={int(good)} ms",
                           better or run)
        out.append(need)
        if good > SANE_DOWNTIME_LIMIT:
            notes.append(f"QEMU's estimate switches over only at downtime-limit "
                         f"{good / 1000:.0f} s, beyond any sane setting (over "
                         f"{SANE_DOWNTIME_LIMIT // 1000} s): the guest cannot be migrated "
                         f"within a sane downtime-limit (the real downtime there: "
                         f"{need.run.downtime_ms:.0f} ms, against the "
                         f"{base.downtime_limit} ms budget)")
    else:
        notes.append("QEMU's estimate does not converge even at downtime-limit 2,000,000 ms")
    if ramp_future is not None:
        out.append(Alternative(f"{layer}'s ramp", LAYERS[layer]["policy"],
                               ramp_future.result()[0]))
    for (name, setting, changes), future in zip(others, done):
        run = future.result()[0]
        if name == "auto-converge":
            setting += f" (throttle reached {run.cpu_throttle_percentage}%)"
        elif name.startswith("multifd"):
            setting += f" ({run.multifd_cpu_share:.0%} CPU)"
            if run.within_limit:
                notes.append(f"{name}: switches over within the limit without avail, the "
                             f"channels taking {run.multifd_cpu_share:.1f} cores of the "
                             "source (the model gives each channel a core of its own); "
                             "to set it: " +
                             _how_to_multifd(layer, changes["multifd_channels"],
                                             changes["multifd_compression"]))
        out.append(Alternative(name, setting, run))
    rank = {Verdict.CONVERGES: 0, Verdict.OVERSHOOTS: 1, Verdict.NOT_CONVERGING: 2,
            Verdict.NOT_FINISHED: 3}
    return sorted(out, key=lambda a: (rank[a.run.verdict],
                                      a.run.downtime_ms if a.run.converged else math.inf,
                                      a.run.total_time_s)), notes
