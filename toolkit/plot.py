"""Figures from result Datasets (matplotlib, headless-safe). Plots read Datasets only.

Colours are the Okabe-Ito palette (readable for colour-blind readers), chosen
to read on a light and on a dark page alike (every figure keeps its own white
face), and the classes also differ in hatching, so maps survive greyscale
printing. Axes on rates and sizes carry one unit, chosen for their values
(``dirty-rate [MiB/s]``, ``link bandwidth [Gbit/s]``), and their ticks are
plain numbers in it. Dimensions not on an axis are picked by value, with
units (``link_bandwidth="10Gbit/s"``), and the title says which slice is shown.
"""
from __future__ import annotations

import textwrap

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.colors import BoundaryNorm, ListedColormap, LogNorm, Normalize
from matplotlib.lines import Line2D
from matplotlib.patches import Patch, Rectangle

from ._rescue import CLASSES
from .scenario import PARAMETER_INDEX
from .units import (display_unit, format_number, format_rate, format_size, parse_duration,
                    parse_rate, parse_size)
from .verdict import describe

CLASS_COLOURS = {
    "converges_anyway": "#009E73",   # bluish green
    "rescued": "#56B4E9",            # sky blue
    "overshoots": "#E69F00",         # orange
    "lost": "#B8B8B8",               # light grey: nothing gained, nothing to look at
    "broken": "#CC79A7",             # reddish purple
}
CLASS_HATCHES = {"converges_anyway": "", "rescued": "..", "overshoots": "//", "lost": "",
                 "broken": "xx"}
# for classes added to toolkit.RESCUE_CLASSES later: the rest of Okabe-Ito, other hatches
_SPARE_COLOURS = ("#F0E442", "#D55E00", "#0072B2", "#7F7F7F")
_SPARE_HATCHES = ("\\\\", "++", "oo", "--")
#: QEMU's own spelling of the parameters a user sets with migrate-set-parameters
QEMU_NAMES = {"downtime_limit": "downtime-limit", "max_bandwidth": "max-bandwidth",
              "avail_switchover_bandwidth": "avail-switchover-bandwidth"}
TICK_SIZE = 8                      # tick labels [pt]
LABEL_SIZE = 9                     # axis labels [pt]
NAN_COLOUR = "#D9D9D9"             # cells without a value (e.g. no downtime: never converges)


def class_colour(name: str) -> str:
    """The colour of a rescue class (one of :data:`toolkit.RESCUE_CLASSES`)."""
    if name in CLASS_COLOURS:
        return CLASS_COLOURS[name]
    extra = [c for c in CLASSES if c not in CLASS_COLOURS]
    return _SPARE_COLOURS[extra.index(name) % len(_SPARE_COLOURS)] if name in extra \
        else _SPARE_COLOURS[-1]


def class_hatch(name: str) -> str:
    """The hatching of a rescue class ("" for none)."""
    if name in CLASS_HATCHES:
        return CLASS_HATCHES[name]
    extra = [c for c in CLASSES if c not in CLASS_HATCHES]
    return _SPARE_HATCHES[extra.index(name) % len(_SPARE_HATCHES)] if name in extra else "++"


def class_label(name: str) -> str:
    """A rescue class in words: ``"converges anyway"``."""
    return name.replace("_", " ")


def display_name(name: str) -> str:
    """A parameter or variable in words, QEMU's hyphenated names for QEMU's parameters."""
    return QEMU_NAMES.get(name, name.replace("_", " "))


def axis_unit(name: str, values) -> tuple[str, float]:
    """The unit an axis over ``name`` shows and its size in the stored unit.

    Rates and sizes get one unit chosen for ``values``
    (:func:`toolkit.units.display_unit`); durations their parameter's unit
    ([ms], [s] ...); anything else ``("", 1)``.
    """
    spec = PARAMETER_INDEX.get(name)
    values = np.asarray(values)
    if spec is None or values.dtype.kind in "OUSb":
        return "", 1.0
    if spec.quantity in ("rate", "size"):
        return display_unit(spec.quantity, values.ravel())
    if spec.quantity == "duration":
        return spec.time_unit, 1.0
    return "", 1.0


def value_labels(name: str, values, with_unit: bool = False) -> list[str]:
    """Readable labels of a parameter's values.

    With ``with_unit`` each label carries its unit (``"20 MiB/s"``, ``"300 ms"``),
    for text and sliders; without, the numbers are in the one unit of
    :func:`axis_unit` (``"20"``, ``"2048"``) for ticks beside a labelled axis.
    Labels such as ``"0.5x link"`` stay as they are.
    """
    spec = PARAMETER_INDEX.get(name)
    values = np.asarray(values)
    if values.dtype.kind in "OUSb" or spec is None:
        return [str(x) for x in values]
    if with_unit:
        if spec.quantity == "rate":
            return [format_rate(float(x)) for x in values]
        if spec.quantity == "size":
            return [format_size(int(x)) for x in values]
        unit = f" {spec.time_unit}" if spec.quantity == "duration" else ""
        return [f"{format_number(x)}{unit}" for x in values]
    _, factor = axis_unit(name, values)
    return [format_number(float(x) / factor) for x in values]


def axis_label(ds, name: str) -> str:
    """An axis label naming the dimension and the unit of its ticks (:func:`value_labels`)."""
    unit, _ = axis_unit(name, ds[name].values)
    if not unit and name not in PARAMETER_INDEX:
        unit = ds[name].attrs.get("units", "")
        unit = "" if unit in ("", "1") else unit
    return display_name(name) + (f" [{unit}]" if unit else "")


def parse_value(name: str, value):
    """A value of parameter ``name`` with units (``"10Gbit/s"``, ``"300ms"``) in its base unit."""
    spec = PARAMETER_INDEX.get(name)
    if spec is None or isinstance(value, bool):
        return value
    if spec.quantity == "rate":
        return parse_rate(value, name)
    if spec.quantity == "size":
        return parse_size(value, name)
    if spec.quantity == "duration":
        return parse_duration(value, name, spec.time_unit)
    return value


def pick(data, keep, select: dict, what: str):
    """Keep the dimensions in ``keep``; pick one value of every other by value.

    Parameters
    ----------
    data : xarray.DataArray or Dataset
    keep : iterable of str
        Dimensions left whole (the axes, panels, lines).
    select : dict
        Dimension -> value, with units or a label (``link_bandwidth="10Gbit/s"``,
        ``avail_switchover_bandwidth="estimate"``, ``downtime_limit=300``); a
        dimension not given gets its first value.
    what : str
        The caller, for error messages.

    Returns
    -------
    (same type as ``data``, dict)
        The slice, and the label of each picked value by dimension (``"10 Gbit/s"``).

    Raises
    ------
    ValueError
        An unknown dimension, one that is also on an axis, or a value that is
        not among the swept ones (the message lists them).
    """
    keep = {d for d in keep if d is not None}
    for dim in select:
        if dim not in data.dims:
            raise ValueError(f"{what}: {dim}={select[dim]!r}: no such dimension; the "
                             f"dimensions are {list(data.dims)}")
        if dim in keep:
            raise ValueError(f"{what}: {dim}={select[dim]!r}: {dim} is already on an axis or "
                             "in the panels; pick another dimension to slice")
    picked = {}
    for dim in [d for d in data.dims if d not in keep]:
        coord = data[dim].values
        labels = value_labels(dim, coord, with_unit=True)
        if dim not in select:
            i = 0
        else:
            raw = select[dim]
            if coord.dtype.kind in "OUS":
                hits = np.flatnonzero(coord == str(raw))
            else:
                try:
                    v = float(parse_value(dim, raw))
                except (TypeError, ValueError) as err:
                    raise ValueError(f"{what}: {err}") from None
                hits = np.flatnonzero(np.isclose(coord.astype(float), v, rtol=1e-9, atol=0))
            if not len(hits):
                raise ValueError(f"{what}: {dim}={raw!r} is not among its swept values: "
                                 f"{', '.join(labels)}")
            i = int(hits[0])
        data = data.isel({dim: i})
        picked[dim] = labels[i]
    return data, picked


def slice_text(picked: dict) -> str:
    """``"link bandwidth 10 Gbit/s, avail-switchover-bandwidth estimate"``."""
    return ", ".join(f"{display_name(d)} {v}" for d, v in picked.items())


def _ticks(ax, axis: str, name: str, values, positions):
    """Label every position with the values (thinned above 16, keeping the last)."""
    n = len(values)
    step = max(1, -(-n // 16))
    idx = list(range(0, n, step))
    if idx[-1] != n - 1:
        idx[-1] = n - 1
    labels = value_labels(name, np.asarray(values)[idx])
    if axis == "y":
        ax.set_yticks(np.asarray(positions)[idx], labels, fontsize=TICK_SIZE)
        return
    long = max(map(len, labels), default=0) * len(idx) > 40
    ax.set_xticks(np.asarray(positions)[idx], labels, fontsize=TICK_SIZE,
                  rotation=45 if long else 0, ha="right" if long else "center",
                  rotation_mode="anchor")


def _log_ticks(ax, values):
    """Ticks at 1-2-5 steps within the range of ``values`` (a log or symlog y axis),
    labelled as plain numbers."""
    from matplotlib.ticker import FixedLocator, FuncFormatter, NullLocator

    v = np.asarray(values, dtype=float)
    v = v[np.isfinite(v) & (v > 0)]
    if not v.size:
        return
    lo, hi = v.min(), v.max()
    steps = [m * 10.0**e for e in range(int(np.floor(np.log10(lo))) - 1,
                                         int(np.ceil(np.log10(hi))) + 1) for m in (1, 2, 5)]
    ticks = [t for t in steps if lo / 1.5 <= t <= hi * 1.5]
    if len(ticks) > 7:
        ticks = [t for t in ticks if str(t).lstrip("0.").startswith(("1", "5"))] or ticks
    ax.yaxis.set_major_locator(FixedLocator(ticks))
    ax.yaxis.set_minor_locator(NullLocator())
    ax.yaxis.set_major_formatter(FuncFormatter(lambda x, _: format_number(x)))


def scenario_text(ds, skip=()) -> str:
    """The fixed scenario of a result in words, e.g. ``"4 GiB hotcold guest (hot set
    410 MiB); max-bandwidth 128 MiB/s caps QEMU's estimate"``; swept parameters
    (and those in ``skip``) are left out."""
    a = ds.attrs
    swept = set(str(a.get("swept_parameters", "")).split()) | set(skip) | set(ds.dims)
    parts = []
    guest = []
    if "ram_size" in a and "ram_size" not in swept:
        guest.append(format_size(int(a["ram_size"])))
    if "workload" in a and "workload" not in swept:
        guest.append(str(a["workload"]))
    if guest:
        text = " ".join(guest) + " guest"
        if a.get("workload") == "hotcold" and "hot_fraction" not in swept and "ram_size" in a:
            text += f" (hot set {format_size(float(a['hot_fraction']) * float(a['ram_size']))})"
        if a.get("workload") == "sequential" and "write_range" not in swept:
            text += f" (writes {format_size(int(a['write_range']))})"
        parts.append(text)
    if "dirty_rate" in a and "dirty_rate" not in swept:
        parts.append(f"dirty rate {format_rate(float(a['dirty_rate']))}")
    if "link_bandwidth" in a and "link_bandwidth" not in swept:
        parts.append(f"link {format_rate(float(a['link_bandwidth']))}")
    if "max_bandwidth" in a and "max_bandwidth" not in swept:
        mb = float(a["max_bandwidth"])
        parts.append(f"max-bandwidth {format_rate(mb)} caps QEMU's estimate" if mb
                     else "max-bandwidth unlimited")
    if "downtime_limit" in a and "downtime_limit" not in swept:
        parts.append(f"downtime-limit {format_number(float(a['downtime_limit']))} ms")
    return "; ".join(parts)


def class_counts_text(codes, width: int = 44) -> str:
    """Counts of the rescue classes among ``codes``, nonzero ones, wrapped at ``width``."""
    codes = np.asarray(codes).ravel()
    text = ", ".join(f"{int((codes == i).sum())} {class_label(c)}"
                     for i, c in enumerate(CLASSES) if (codes == i).any())
    return "\n".join(textwrap.wrap(text, width))


def rescue_map(res, x: str | None = None, y: str | None = None,
               col: str | None = "avail_switchover_bandwidth", row: str | None = None,
               counts: bool = True, **select):
    """Map the rescue classes over two swept dimensions, one panel per avail setting.

    Parameters
    ----------
    res : xarray.Dataset
        Output of :func:`toolkit.rescue` (or a sweep merged with it).
    x, y : str, optional
        Dimensions on the axes of each panel; default the first two swept
        dimensions other than ``col``.
    col, row : str or None
        Dimensions spread over panel columns and rows; ``row`` defaults to the
        third swept dimension, if any.
    counts : bool
        Print the class counts of each panel (each avail setting) under its title.
    **select
        A value of any other dimension, with units or a label
        (``downtime_limit=300``, ``link_bandwidth="10Gbit/s"``); the first otherwise.

    Returns
    -------
    matplotlib.figure.Figure
    """
    code = res["rescue_class"]
    free = [d for d in code.dims if d not in (col, x, y, row) and d not in select]
    x = x or (free.pop(0) if free else None)
    y = y or (free.pop(0) if free else None)
    if x is None or y is None:
        raise ValueError(f"rescue_map needs two swept dimensions besides {col!r}; "
                         f"this result has {list(code.dims)}")
    row = row or (free.pop(0) if free else None)
    code, picked = pick(code, (x, y, col, row), select, "rescue_map")
    cols = code[col].values if col else [None]
    rows = code[row].values if row else [None]
    fig, axes = plt.subplots(len(rows), len(cols), squeeze=False, sharex=True, sharey=True,
                             figsize=(2.7 * len(cols) + 1.6, 2.4 * len(rows) + 1.6),
                             constrained_layout=True, facecolor="white")
    cmap = ListedColormap([class_colour(c) for c in CLASSES])
    norm = BoundaryNorm(np.arange(len(CLASSES) + 1) - 0.5, cmap.N)
    nx, ny = code.sizes[x], code.sizes[y]
    for i, rv in enumerate(rows):
        for j, cv in enumerate(cols):
            ax = axes[i, j]
            panel = code
            if row:
                panel = panel.sel({row: rv})
            if col:
                panel = panel.sel({col: cv})
            grid = panel.transpose(y, x).values
            ax.pcolormesh(np.arange(nx + 1), np.arange(ny + 1), grid, cmap=cmap, norm=norm)
            for (iy, ix), k in np.ndenumerate(grid):
                hatch = class_hatch(CLASSES[k])
                if hatch:
                    ax.add_patch(Rectangle((ix, iy), 1, 1, fill=False, hatch=hatch, linewidth=0,
                                           edgecolor="#333333"))
            title = []
            if col:
                value = value_labels(col, [cv], True)[0]
                title.append(f"{display_name(col)} = {value}" if i == 0 else value)
            if counts:
                title.append(class_counts_text(grid, 44))
            ax.set_title("\n".join(title), fontsize=7.5)
            _ticks(ax, "x", x, code[x].values, np.arange(nx) + 0.5)
            _ticks(ax, "y", y, code[y].values, np.arange(ny) + 0.5)
    for ax in axes[-1, :]:
        ax.set_xlabel(axis_label(res, x), fontsize=LABEL_SIZE)
    for i, rv in enumerate(rows):
        head = f"{display_name(row)} {value_labels(row, [rv], True)[0]}\n" if row else ""
        axes[i, 0].set_ylabel(head + axis_label(res, y), fontsize=LABEL_SIZE)
    handles = [Patch(facecolor=class_colour(c), hatch=class_hatch(c), edgecolor="#333333",
                     label=class_label(c)) for c in CLASSES]
    fig.legend(handles=handles, loc="outside lower center", ncol=min(len(CLASSES), 6),
               fontsize=8, frameon=False)
    what = scenario_text(res)
    where = slice_text(picked)
    fig.suptitle("Does avail-switchover-bandwidth rescue the migration?"
                 + (f"\n{what}" if what else "") + (f"\nat {where}" if where else ""),
                 fontsize=10)
    return fig


# Okabe-Ito colours and line styles for the timeline's series (distinct in greyscale too)
PENDING_STYLE = dict(color="#0072B2", linestyle="-", linewidth=1.4)
EXACT_STYLE = dict(color="#0072B2", linestyle="none", marker="o", markersize=5,
                   markerfacecolor="white", markeredgewidth=1.4)
THRESHOLD_STYLE = dict(color="#D55E00", linestyle="--", linewidth=1.6)
ESTIMATE_STYLE = dict(color="#009E73", linestyle="-", linewidth=1.4, marker=".", markersize=3)
LINK_STYLE = dict(color="#000000", linestyle=":", linewidth=1.2)
LIMIT_STYLE = dict(color="#CC79A7", linestyle="-.", linewidth=1.2)
#: what the timeline's two kinds of pending mean, for captions next to it
PENDING_NOTE = ("The line is QEMU's cheap estimate of pending (the pages left in its bitmap, "
                "counted every window); when it dips under the threshold QEMU syncs the bitmap "
                "and counts exactly (the circles: the first window after each sync), and the "
                "pages the guest wrote since are back. It switches over only when the exact "
                "count is under the threshold (the star).")


def _bits(bytes_per_s):
    return np.asarray(bytes_per_s, dtype=float) * 8 / 1e9


def timeline(ds, axes=None, title: str | None = None):
    """A migration's timeline from one :func:`toolkit.simulate` result.

    Top: pending dirty bytes and the switchover threshold per ~100 ms window
    (log scale). The line is QEMU's cheap estimate (pages left in the bitmap);
    circles mark the windows just after a bitmap sync, where the count is
    exact, and a star the exact pending that passed the switchover test
    (:data:`PENDING_NOTE` says it in words). Bitmap syncs are ticks, the
    downtime is shaded. Bottom: the bandwidth estimate of each window against
    the link and the max-bandwidth rate limit.

    Parameters
    ----------
    ds : xarray.Dataset
        One run, with its per-window trace (dimension ``window``).
    axes : pair of matplotlib Axes, optional
        Where to draw; a new figure otherwise.
    title : str, optional
        Figure title; a verdict line by default.

    Returns
    -------
    matplotlib.figure.Figure
    """
    if axes is None:
        fig, axes = plt.subplots(2, 1, sharex=True, figsize=(8, 5.2), constrained_layout=True,
                                 height_ratios=[3, 2], facecolor="white")
    top, bottom = axes
    fig = top.figure
    t = ds["time"].values / 1000                                   # s
    mib = 2.0**20
    pending = ds["pending"].values / mib
    top.plot(t, pending, label="pending, cheap estimate [MiB]", **PENDING_STYLE)
    syncs = ds["syncs"].values
    new_sync = np.flatnonzero(np.diff(np.concatenate([[syncs[0] if len(syncs) else 0], syncs]))
                              > 0)
    if len(new_sync):
        top.plot(t[new_sync], pending[new_sync], label="pending after a sync (exact) [MiB]",
                 **EXACT_STYLE)
    top.plot(t, ds["threshold"].values / mib, label="threshold [MiB]", **THRESHOLD_STYLE)
    top.set_yscale("symlog", linthresh=1.0)
    _log_ticks(top, np.concatenate([pending, ds["threshold"].values / mib]))
    top.set_ylabel("pending, threshold [MiB]", fontsize=LABEL_SIZE)
    if len(new_sync):
        top.vlines(t[new_sync], 0, 1, transform=top.get_xaxis_transform(), color="grey",
                   linewidth=0.6, alpha=0.6, label="bitmap sync")
    converged = bool(ds["converged"])
    total = ds["total_time"].item() / 1000
    if converged:
        start = total - ds["downtime"].item() / 1000
        for ax in axes:
            ax.axvspan(start, total, color="#E69F00", alpha=0.35, linewidth=0,
                       hatch="//", label="downtime" if ax is top else None)
            ax.axvline(start, color="#E69F00", linewidth=1.2)
        passed = ds["switchover_pending"].item() if "switchover_pending" in ds else np.nan
        if np.isfinite(passed):
            top.plot([start], [passed / mib], marker="*", markersize=11, color="#0072B2",
                     markeredgecolor="black", linestyle="none",
                     label="exact pending at switchover [MiB]")
    top.legend(loc="best", fontsize=7, ncol=2, framealpha=0.85)
    bottom.plot(t, _bits(ds["bandwidth"].values), label="estimate (one window)",
                **ESTIMATE_STYLE)
    bottom.axhline(_bits(ds.attrs["link_bandwidth"]), label="link", **LINK_STYLE)
    if ds.attrs.get("max_bandwidth"):
        bottom.axhline(_bits(ds.attrs["max_bandwidth"]), label="max-bandwidth", **LIMIT_STYLE)
    if ds.attrs.get("avail_switchover_bandwidth"):
        bottom.axhline(_bits(ds.attrs["avail_switchover_bandwidth"]),
                       label="avail-switchover-bandwidth", color="#56B4E9", linewidth=1.2)
    bottom.set_ylabel("bandwidth [Gbit/s]", fontsize=LABEL_SIZE)
    bottom.set_xlabel("time since migrate [s]", fontsize=LABEL_SIZE)
    bottom.set_ylim(bottom=0)
    bottom.legend(loc="upper right", fontsize=7)
    for ax in axes:
        ax.tick_params(labelsize=TICK_SIZE)
        ax.format_coord = readout(ds)
    if title is None:
        title = describe(ds)
    top.set_title(title, fontsize=10)
    return fig


def readout(ds):
    """The hover read-out of a timeline: ``f(x, y) -> str`` for ``Axes.format_coord``,
    naming the window under the pointer (its time [s]) and its values in units.

    An interactive backend (ipympl's widget, a desktop window) shows it as the
    pointer moves, e.g. ``"t 31.2 s: pending 128 MiB (after sync 4), threshold
    40 MiB, estimate 134 MB/s"``.
    """
    t = ds["time"].values / 1000
    pending, threshold = ds["pending"].values, ds["threshold"].values
    bandwidth, syncs = ds["bandwidth"].values, ds["syncs"].values

    def text(x, y):
        if not len(t) or not np.isfinite(x):
            return ""
        i = int(np.clip(np.searchsorted(t, x), 0, len(t) - 1))
        if i and abs(t[i - 1] - x) < abs(t[i] - x):
            i -= 1
        fresh = i == 0 or syncs[i] > syncs[i - 1]
        return (f"t {format_number(t[i])} s: pending {format_size(float(pending[i]))}"
                + (f" (exact, after sync {int(syncs[i])})" if fresh else " (cheap estimate)")
                + f", threshold {format_size(float(threshold[i]))}, estimate "
                f"{format_rate(float(bandwidth[i]))}")
    return text


def convergence_map(ds, x: str | None = None, y: str | None = None, var: str = "converged",
                    ax=None, vmin: float | None = None, vmax: float | None = None, **select):
    """One result variable over two swept dimensions.

    ``converged`` is drawn as two classes (hatched where it does not
    converge); any other variable (``total_time``, ``downtime`` ...) with a
    colour bar in its units on one scale for the whole Dataset (so slices
    compare), cells without a value (no downtime: it never converges) grey
    and in the legend. A ``downtime`` map marks ``downtime-limit`` on the
    colour bar, and hatches the cells beyond it.

    Parameters
    ----------
    ds : xarray.Dataset
        A :func:`toolkit.sweep` result.
    x, y : str, optional
        Dimensions on the axes; default the first two of ``ds[var]``.
    var : str
        Variable to map.
    ax : matplotlib Axes, optional
    vmin, vmax : float, optional
        Colour scale [units of ``var``]; default the whole Dataset's range.
    **select
        A value of any other dimension, with units or a label
        (``link_bandwidth="10Gbit/s"``); the first otherwise.

    Returns
    -------
    matplotlib.figure.Figure
    """
    whole = ds[var]
    dims = [d for d in whole.dims if d not in (x, y) and d not in select]
    x = x or dims.pop(0)
    y = y or dims.pop(0)
    data, picked = pick(whole, (x, y), select, "convergence_map")
    grid = data.transpose(y, x).values
    if ax is None:
        fig, ax = plt.subplots(figsize=(6.5, 4.2), constrained_layout=True, facecolor="white")
    fig = ax.figure
    nx, ny = data.sizes[x], data.sizes[y]
    handles = []
    if var == "converged":
        cmap = ListedColormap([NAN_COLOUR, "#009E73"])
        ax.pcolormesh(np.arange(nx + 1), np.arange(ny + 1), grid.astype(int), cmap=cmap,
                      vmin=0, vmax=1)
        for (iy, ix), ok in np.ndenumerate(grid):
            if not ok:
                ax.add_patch(Rectangle((ix, iy), 1, 1, fill=False, hatch="..", linewidth=0,
                                       edgecolor="#555555"))
        handles = [Patch(facecolor="#009E73", label="converges"),
                   Patch(facecolor=NAN_COLOUR, hatch="..", edgecolor="#555555",
                         label="never converges")]
    else:
        values = np.asarray(whole.values, dtype=float)
        finite = values[np.isfinite(values)]
        lo = vmin if vmin is not None else (float(finite.min()) if finite.size else 0.0)
        hi = vmax if vmax is not None else (float(finite.max()) if finite.size else 1.0)
        cmap = plt.get_cmap("cividis").with_extremes(bad=NAN_COLOUR)
        hi = max(hi, lo + 1e-9)
        # a wide range (downtimes of 30 ms and 4 s) reads on a log scale
        norm = LogNorm(lo, hi) if lo > 0 and hi / lo > 20 else Normalize(lo, hi)
        mesh = ax.pcolormesh(np.arange(nx + 1), np.arange(ny + 1),
                             np.ma.masked_invalid(grid.astype(float)), cmap=cmap, norm=norm)
        units = ds[var].attrs.get("units", "")
        bar = fig.colorbar(mesh, ax=ax)
        bar.set_label(display_name(var) + (f" [{units}]" if units not in ("", "1") else ""),
                      fontsize=LABEL_SIZE)
        bar.ax.tick_params(labelsize=TICK_SIZE)
        if isinstance(norm, LogNorm):
            _log_ticks(bar.ax, [lo, hi])
        if np.isnan(grid.astype(float)).any():
            handles.append(Patch(facecolor=NAN_COLOUR, edgecolor="#555555",
                                 label="no value: never converges"))
        if var == "downtime":
            limits = _limits(data, ds, x, y)
            if limits is not None:
                over = np.isfinite(grid.astype(float)) & (grid > limits)
                for iy, ix in zip(*np.nonzero(over)):
                    ax.add_patch(Rectangle((ix, iy), 1, 1, fill=False, hatch="//",
                                           linewidth=0, edgecolor="white"))
                handles.append(Patch(facecolor="#7F7F7F", hatch="//", edgecolor="white",
                                     label="beyond downtime-limit"))
                shown = [v for v in np.unique(limits) if lo <= v <= hi]
                for limit in shown:
                    bar.ax.axhline(limit, color="#D55E00", linewidth=2.5)
                if shown:
                    handles.append(Line2D([], [], color="#D55E00", linewidth=2.5,
                                          label="downtime-limit (on the colour bar)"))
    if handles:
        ax.legend(handles=handles, loc="upper center", bbox_to_anchor=(0.5, -0.2),
                  ncol=min(len(handles), 2), fontsize=8, frameon=False)
    _ticks(ax, "x", x, data[x].values, np.arange(nx) + 0.5)
    _ticks(ax, "y", y, data[y].values, np.arange(ny) + 0.5)
    ax.set_xlabel(axis_label(ds, x), fontsize=LABEL_SIZE)
    ax.set_ylabel(axis_label(ds, y), fontsize=LABEL_SIZE)
    where = slice_text(picked)
    ax.set_title(ds[var].attrs.get("long_name", var) + (f"\nat {where}" if where else ""),
                 fontsize=10)
    return fig


def _limits(data, ds, x, y):
    """downtime-limit [ms] per cell of a map (y rows, x columns), or None when unknown."""
    if "downtime_limit" in data.coords:
        lim = data["downtime_limit"]
        if lim.ndim == 0:
            return float(lim)
        return lim.broadcast_like(data).transpose(y, x).values.astype(float)
    if "downtime_limit" in ds.attrs:
        return float(ds.attrs["downtime_limit"])
    return None


def safe_avail(res, x: str = "dirty_rate", hue: str | None = None, ax=None, **select):
    """The smallest avail-switchover-bandwidth that converges and the largest that keeps
    the downtime within the limit, against a swept dimension.

    Parameters
    ----------
    res : xarray.Dataset
        Output of :func:`toolkit.rescue`.
    x : str
        Dimension on the x axis.
    hue : str, optional
        Dimension drawn as separate lines (e.g. ``downtime_limit``).
    ax : matplotlib Axes, optional
    **select
        A value of any other dimension, with units or a label
        (``link_bandwidth="10Gbit/s"``); the first otherwise.

    Returns
    -------
    matplotlib.figure.Figure
    """
    small, picked = pick(res["smallest_converging_avail"], (x, hue), select, "safe_avail")
    large, _ = pick(res["largest_safe_avail"], (x, hue), select, "safe_avail")
    if ax is None:
        fig, ax = plt.subplots(figsize=(6.5, 4), constrained_layout=True, facecolor="white")
    fig = ax.figure
    hues = small[hue].values if hue else [None]
    markers = "osD^v"
    xs = np.arange(small.sizes[x])
    for k, h in enumerate(hues):
        s = small.sel({hue: h}) if hue else small
        g = large.sel({hue: h}) if hue else large
        tag = f" ({display_name(hue)} {value_labels(hue, [h], True)[0]})" if hue else ""
        ax.plot(xs, _bits(s.values), color="#0072B2", linestyle="-",
                marker=markers[k % len(markers)], label=f"smallest that converges{tag}")
        ax.plot(xs, _bits(g.values), color="#D55E00", linestyle="--",
                marker=markers[k % len(markers)], fillstyle="none",
                label=f"largest within the limit{tag}")
    _ticks(ax, "x", x, small[x].values, xs)
    ax.tick_params(axis="y", labelsize=TICK_SIZE)
    ax.set_xlabel(axis_label(res, x), fontsize=LABEL_SIZE)
    ax.set_ylabel("avail-switchover-bandwidth [Gbit/s]", fontsize=LABEL_SIZE)
    where = slice_text(picked)
    ax.set_title("safe avail-switchover-bandwidth (among the swept values)"
                 + (f"\nat {where}" if where else ""), fontsize=10)
    ax.legend(fontsize=7)
    return fig


def table(data, rows: str | None = None, columns: str | None = None, digits: int = 3):
    """A result over one or two dimensions as a pandas DataFrame labelled in units people
    read (``"20 MiB/s"``, ``"300 ms"``), values rounded, the unit in the header.

    Parameters
    ----------
    data : xarray.DataArray
        At most two dimensions (slice the others first, e.g. with ``.sel``).
    rows, columns : str, optional
        Dimensions on the index and the columns; default in ``data``'s order.
    digits : int
        Significant digits of the values.

    Returns
    -------
    pandas.DataFrame
    """
    import pandas as pd

    if data.ndim > 2 or data.ndim == 0:
        raise ValueError(f"table: expected one or two dimensions, got {list(data.dims)}; "
                         "pick values of the others first, e.g. data.sel(link_bandwidth=1.25e9)")
    dims = list(data.dims)
    rows = rows or dims[0]
    if columns is None and len(dims) == 2:
        columns = next(d for d in dims if d != rows)
    units = data.attrs.get("units", "")
    name = display_name(str(data.name or "value")) + \
        (f" [{units}]" if units not in ("", "1") else "")
    values = data.values
    if values.dtype.kind == "f":
        with np.errstate(invalid="ignore", divide="ignore"):
            mag = np.floor(np.log10(np.abs(np.where(values == 0, 1, values))))
        values = np.where(np.isfinite(values),
                          np.round(values / 10.0**mag, digits - 1) * 10.0**mag, values)
    if columns is None:
        index = pd.Index(value_labels(rows, data[rows].values, True), name=display_name(rows))
        return pd.DataFrame({name: values}, index=index)
    arr = data.copy(data=values).transpose(rows, columns).values
    frame = pd.DataFrame(arr, index=pd.Index(value_labels(rows, data[rows].values, True),
                                             name=display_name(rows)),
                         columns=pd.Index(value_labels(columns, data[columns].values, True),
                                          name=f"{name} by {display_name(columns)}"))
    return frame


def real_vs_simulated(real, sim, ax=None, title: str | None = None):
    """Overlay a real QEMU run and its simulation: pending and threshold per window.

    Parameters
    ----------
    real : xarray.Dataset
        A recorded run (:func:`toolkit.qemu.readers.trace_dataset`).
    sim : xarray.Dataset
        Its simulation (:func:`toolkit.simulate`), same variable names and units.
    ax : matplotlib Axes, optional
        Where to draw; a new figure otherwise.
    title : str, optional
        Axes title.

    Returns
    -------
    matplotlib.figure.Figure
    """
    if ax is None:
        _, ax = plt.subplots(figsize=(8, 3.6), constrained_layout=True)
    mib = 2.0**20
    # markers on both: a run may hold a single window, which a line alone would not show
    for ds, who, marker in ((real, "QEMU", "o"), (sim, "simulated", "x")):
        t = ds["time"].values / 1000
        ax.plot(t, ds["pending"].values / mib, marker=marker, markersize=3,
                label=f"pending, {who}", **{**PENDING_STYLE,
                                            "linestyle": "-" if who == "QEMU" else "--"})
        ax.plot(t, ds["threshold"].values / mib, marker=marker, markersize=3,
                label=f"threshold, {who}", **{**THRESHOLD_STYLE,
                                              "linestyle": "-" if who == "QEMU" else "--"})
    ax.set_yscale("symlog", linthresh=1.0)
    _log_ticks(ax, np.concatenate([d[v].values / mib for d in (real, sim)
                                   for v in ("pending", "threshold")]))
    ax.set_xlabel("time since migrate [s]", fontsize=LABEL_SIZE)
    ax.set_ylabel("pending, threshold [MiB]", fontsize=LABEL_SIZE)
    ax.tick_params(labelsize=TICK_SIZE)
    ax.legend(fontsize=8, ncol=2)
    if title:
        ax.set_title(title, fontsize=10)
    return ax.figure


def validation(ds, axes=None):
    """Predicted against real: total time and downtime of every run of the
    validation study (:func:`toolkit.qemu.validate.validate`), on log axes
    with the identity line; runs that did not converge are left out.

    Returns
    -------
    matplotlib.figure.Figure
    """
    from matplotlib.ticker import LogLocator, NullFormatter, StrMethodFormatter

    if axes is None:
        _, axes = plt.subplots(1, 2, figsize=(9, 4), constrained_layout=True, facecolor="white")
    both = ds.real_converged.values.astype(bool) & ds.sim_converged.values.astype(bool)
    avail = ds.avail_switchover_bandwidth.values[both] > 0
    for ax, q in zip(axes, ("total_time", "downtime")):
        real, sim = ds[f"real_{q}"].values[both], ds[f"sim_{q}"].values[both]
        for mask, label, colour, marker in ((~avail, "estimate", "#0072B2", "o"),
                                            (avail, "avail-switchover-bandwidth set",
                                             "#E69F00", "s")):
            ax.scatter(real[mask], sim[mask], s=22, color=colour, marker=marker, label=label)
        lo = min(real.min(), sim.min()) * 0.8
        hi = max(real.max(), sim.max()) * 1.25
        ax.plot([lo, hi], [lo, hi], color="grey", linewidth=0.8, label="simulated = real")
        ax.set_xscale("log")
        ax.set_yscale("log")
        for axis in (ax.xaxis, ax.yaxis):
            # labels on the decades only: labelled minor ticks overlap on a short log axis
            axis.set_major_locator(LogLocator(base=10, numticks=8))
            axis.set_major_formatter(StrMethodFormatter("{x:g}"))
            axis.set_minor_formatter(NullFormatter())
        ax.tick_params(labelsize=TICK_SIZE)
        units = ds[f"real_{q}"].attrs.get("units", "")
        ax.set_xlabel(f"QEMU {q.replace('_', ' ')} [{units}]")
        ax.set_ylabel(f"simulated {q.replace('_', ' ')} [{units}]")
        ax.legend(fontsize=8)
    return axes[0].figure
