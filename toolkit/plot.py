"""Figures from result Datasets (matplotlib, headless-safe). Plots read Datasets only.

Colours are the Okabe-Ito palette (readable for colour-blind readers) and the
classes also differ in hatching, so maps survive greyscale printing.
"""
from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.colors import BoundaryNorm, ListedColormap
from matplotlib.patches import Patch, Rectangle

from .rescue import CLASSES
from .scenario import PARAMETER_INDEX
from .units import format_rate, format_size
from .verdict import describe

CLASS_COLOURS = {
    "converges_anyway": "#009E73",   # bluish green
    "rescued": "#56B4E9",            # sky blue
    "overshoots": "#E69F00",         # orange
    "lost": "#000000",               # black
    "broken": "#CC79A7",             # reddish purple
    "not_finished": "#BBBBBB",       # grey: no verdict yet
}
CLASS_HATCHES = {"converges_anyway": "", "rescued": "..", "overshoots": "//", "lost": "",
                 "broken": "xx", "not_finished": "--"}


def value_labels(name: str, values, with_unit: bool = False) -> list[str]:
    """Readable labels of a parameter's values: rates and sizes with their units,
    durations with theirs when ``with_unit`` (axes already name them)."""
    spec = PARAMETER_INDEX.get(name)
    values = np.asarray(values)
    if values.dtype.kind in "OUSb" or spec is None:
        return [str(x) for x in values]
    if spec.kind == "rate":
        return [format_rate(float(x)) for x in values]
    if spec.kind == "size":
        return [format_size(int(x)) for x in values]
    unit = f" {spec.time_unit}" if with_unit and spec.kind == "duration" else ""
    return [f"{x:g}{unit}" if isinstance(x, (float, np.floating)) else f"{x}{unit}"
            for x in values]


def _axis_label(ds, name: str) -> str:
    units = ds[name].attrs.get("units", "")
    return f"{name.replace('_', ' ')}" + (f" [{units}]" if units not in ("", "1") else "")


def rescue_map(res, x: str | None = None, y: str | None = None,
               col: str = "avail_switchover_bandwidth", row: str | None = None, **select):
    """Map the rescue classes over two swept dimensions, one panel per setting.

    Parameters
    ----------
    res : xarray.Dataset
        Output of :func:`toolkit.rescue`.
    x, y : str, optional
        Dimensions on the axes of each panel; default the first two swept
        dimensions other than ``col``.
    col, row : str or None
        Dimensions spread over panel columns and rows; ``row`` defaults to the
        third swept dimension, if any.
    **select
        Index (by position) into any other dimension; the first is used otherwise.

    Returns
    -------
    matplotlib.figure.Figure
    """
    code = res["rescue_class"]
    free = [d for d in code.dims if d not in (col, x, y, row)]
    x = x or (free.pop(0) if free else None)
    y = y or (free.pop(0) if free else None)
    if x is None or y is None:
        raise ValueError(f"rescue_map needs two swept dimensions besides {col!r}; "
                         f"this result has {list(code.dims)}")
    row = row or (free.pop(0) if free else None)
    keep = {d for d in (x, y, col, row) if d is not None}
    for dim in code.dims:
        if dim not in keep:
            code = code.isel({dim: select.get(dim, 0)})
    cols = code[col].values if col else [None]
    rows = code[row].values if row else [None]
    fig, axes = plt.subplots(len(rows), len(cols), squeeze=False, sharex=True, sharey=True,
                             figsize=(2.6 * len(cols) + 1.5, 2.2 * len(rows) + 1.2),
                             constrained_layout=True)
    cmap = ListedColormap([CLASS_COLOURS[c] for c in CLASSES])
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
                hatch = CLASS_HATCHES[CLASSES[k]]
                if hatch:
                    ax.add_patch(Rectangle((ix, iy), 1, 1, fill=False, hatch=hatch, linewidth=0,
                                           edgecolor="black"))
            title = []
            if col:
                title.append(value_labels(col, [cv])[0])
            if row:
                title.append(value_labels(row, [rv])[0])
            ax.set_title(" | ".join(title), fontsize=9)
            step = max(1, nx // 4)
            ax.set_xticks(np.arange(0, nx, step) + 0.5,
                          value_labels(x, code[x].values[::step]), rotation=45, fontsize=7)
            ax.set_yticks(np.arange(ny) + 0.5, value_labels(y, code[y].values), fontsize=7)
    for ax in axes[-1, :]:
        ax.set_xlabel(_axis_label(res, x), fontsize=8)
    for ax in axes[:, 0]:
        ax.set_ylabel(_axis_label(res, y), fontsize=8)
    handles = [Patch(facecolor=CLASS_COLOURS[c], hatch=CLASS_HATCHES[c], edgecolor="grey",
                     label=c.replace("_", " ")) for c in CLASSES]
    fig.legend(handles=handles, loc="outside lower center", ncol=len(CLASSES), fontsize=8,
               frameon=False)
    fig.suptitle(res.attrs.get("title", "Rescue map"), fontsize=10)
    return fig


# Okabe-Ito colours and line styles for the timeline's series (distinct in greyscale too)
PENDING_STYLE = dict(color="#0072B2", linestyle="-", linewidth=1.6)
THRESHOLD_STYLE = dict(color="#D55E00", linestyle="--", linewidth=1.6)
ESTIMATE_STYLE = dict(color="#009E73", linestyle="-", linewidth=1.4, marker=".", markersize=3)
LINK_STYLE = dict(color="#000000", linestyle=":", linewidth=1.2)
LIMIT_STYLE = dict(color="#CC79A7", linestyle="-.", linewidth=1.2)


def _bits(bytes_per_s):
    return np.asarray(bytes_per_s, dtype=float) * 8 / 1e9


def timeline(ds, axes=None, title: str | None = None):
    """A migration's timeline from one :func:`toolkit.simulate` result.

    Top: pending dirty bytes and the switchover threshold per ~100 ms window
    (log scale), bitmap syncs as ticks, the switchover marked and the downtime
    shaded. Bottom: the bandwidth estimate of each window against the link and
    the max-bandwidth rate limit.

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
                                 height_ratios=[3, 2])
    top, bottom = axes
    fig = top.figure
    t = ds["time"].values / 1000                                   # s
    mib = 2.0**20
    top.plot(t, ds["pending"].values / mib, label="pending [MiB]", **PENDING_STYLE)
    top.plot(t, ds["threshold"].values / mib, label="threshold [MiB]", **THRESHOLD_STYLE)
    top.set_yscale("symlog", linthresh=1.0)
    top.set_ylabel("MiB")
    syncs = ds["syncs"].values
    new_sync = np.flatnonzero(np.diff(np.concatenate([[1], syncs])) > 0)
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
    top.legend(loc="upper right", fontsize=8, ncol=2)
    bottom.plot(t, _bits(ds["bandwidth"].values), label="estimate (one window)",
                **ESTIMATE_STYLE)
    bottom.axhline(_bits(ds.attrs["link_bandwidth"]), label="link", **LINK_STYLE)
    if ds.attrs.get("max_bandwidth"):
        bottom.axhline(_bits(ds.attrs["max_bandwidth"]), label="max-bandwidth", **LIMIT_STYLE)
    if ds.attrs.get("avail_switchover_bandwidth"):
        bottom.axhline(_bits(ds.attrs["avail_switchover_bandwidth"]),
                       label="avail-switchover-bandwidth", color="#56B4E9", linewidth=1.2)
    bottom.set_ylabel("Gbit/s")
    bottom.set_xlabel("time since migrate [s]")
    bottom.set_ylim(bottom=0)
    bottom.legend(loc="upper right", fontsize=8)
    if title is None:
        title = describe(ds)
    top.set_title(title, fontsize=10)
    return fig


def convergence_map(ds, x: str | None = None, y: str | None = None, var: str = "converged",
                    ax=None, **select):
    """One result variable over two swept dimensions.

    ``converged`` is drawn as two classes (hatched where it does not
    converge); any other variable (``total_time``, ``downtime`` ...) with a
    colour bar in its units, blank where it is NaN.

    Parameters
    ----------
    ds : xarray.Dataset
        A :func:`toolkit.sweep` result.
    x, y : str, optional
        Dimensions on the axes; default the first two of ``ds[var]``.
    var : str
        Variable to map.
    ax : matplotlib Axes, optional
    **select
        Index (by position) into any other dimension; the first is used otherwise.

    Returns
    -------
    matplotlib.figure.Figure
    """
    data = ds[var]
    dims = [d for d in data.dims if d not in (x, y)]
    x = x or dims.pop(0)
    y = y or dims.pop(0)
    for dim in list(data.dims):
        if dim not in (x, y):
            data = data.isel({dim: select.get(dim, 0)})
    grid = data.transpose(y, x).values
    if ax is None:
        fig, ax = plt.subplots(figsize=(6.5, 4), constrained_layout=True)
    fig = ax.figure
    nx, ny = data.sizes[x], data.sizes[y]
    if var == "converged":
        cmap = ListedColormap(["#000000", "#009E73"])
        ax.pcolormesh(np.arange(nx + 1), np.arange(ny + 1), grid.astype(int), cmap=cmap,
                      vmin=0, vmax=1)
        for (iy, ix), ok in np.ndenumerate(grid):
            if not ok:
                ax.add_patch(Rectangle((ix, iy), 1, 1, fill=False, hatch="..", linewidth=0,
                                       edgecolor="grey"))
        ax.legend(handles=[Patch(facecolor="#009E73", label="converges"),
                           Patch(facecolor="#000000", hatch="..", edgecolor="grey",
                                 label="iterates forever")],
                  loc="upper center", bbox_to_anchor=(0.5, -0.22), ncol=2, fontsize=8,
                  frameon=False)
    else:
        mesh = ax.pcolormesh(np.arange(nx + 1), np.arange(ny + 1),
                             np.ma.masked_invalid(grid.astype(float)), cmap="cividis")
        units = ds[var].attrs.get("units", "")
        fig.colorbar(mesh, ax=ax, label=f"{var.replace('_', ' ')} [{units}]")
    step = max(1, nx // 6)
    ax.set_xticks(np.arange(0, nx, step) + 0.5, value_labels(x, data[x].values[::step]),
                  rotation=45, fontsize=7)
    ax.set_yticks(np.arange(ny) + 0.5, value_labels(y, data[y].values), fontsize=7)
    ax.set_xlabel(_axis_label(ds, x), fontsize=8)
    ax.set_ylabel(_axis_label(ds, y), fontsize=8)
    ax.set_title(ds[var].attrs.get("long_name", var), fontsize=10)
    return fig


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
        Index (by position) into any other dimension; the first is used otherwise.

    Returns
    -------
    matplotlib.figure.Figure
    """
    small, large = res["smallest_converging_avail"], res["largest_safe_avail"]
    for dim in list(small.dims):
        if dim not in (x, hue):
            small = small.isel({dim: select.get(dim, 0)})
            large = large.isel({dim: select.get(dim, 0)})
    if ax is None:
        fig, ax = plt.subplots(figsize=(6.5, 4), constrained_layout=True)
    fig = ax.figure
    hues = small[hue].values if hue else [None]
    markers = "osD^v"
    xs = np.arange(small.sizes[x])
    for k, h in enumerate(hues):
        s = small.sel({hue: h}) if hue else small
        g = large.sel({hue: h}) if hue else large
        tag = f" ({value_labels(hue, [h])[0]})" if hue else ""
        ax.plot(xs, _bits(s.values), color="#0072B2", linestyle="-",
                marker=markers[k % len(markers)], label=f"smallest that converges{tag}")
        ax.plot(xs, _bits(g.values), color="#D55E00", linestyle="--",
                marker=markers[k % len(markers)], fillstyle="none",
                label=f"largest within the limit{tag}")
    step = max(1, len(xs) // 6)
    ax.set_xticks(xs[::step], value_labels(x, small[x].values[::step]), rotation=45, fontsize=7)
    ax.set_xlabel(_axis_label(res, x), fontsize=8)
    ax.set_ylabel("avail-switchover-bandwidth [Gbit/s]", fontsize=8)
    ax.set_title("safe avail-switchover-bandwidth (among the swept values)", fontsize=10)
    ax.legend(fontsize=7)
    return fig


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
    for ds, who, marker in ((real, "QEMU", "o"), (sim, "simulated", "")):
        t = ds["time"].values / 1000
        ax.plot(t, ds["pending"].values / mib, marker=marker, markersize=3,
                label=f"pending, {who}", **{**PENDING_STYLE,
                                            "linestyle": "-" if who == "QEMU" else "--"})
        ax.plot(t, ds["threshold"].values / mib, marker=marker, markersize=3,
                label=f"threshold, {who}", **{**THRESHOLD_STYLE,
                                              "linestyle": "-" if who == "QEMU" else "--"})
    ax.set_yscale("symlog", linthresh=1.0)
    ax.set_xlabel("time since migrate [s]")
    ax.set_ylabel("MiB")
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
    if axes is None:
        _, axes = plt.subplots(1, 2, figsize=(9, 4), constrained_layout=True)
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
        units = ds[f"real_{q}"].attrs.get("units", "")
        ax.set_xlabel(f"QEMU {q.replace('_', ' ')} [{units}]")
        ax.set_ylabel(f"simulated {q.replace('_', ' ')} [{units}]")
        ax.legend(fontsize=8)
    return axes[0].figure
