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
from .units import format_rate, format_size

CLASS_COLOURS = {
    "converges_anyway": "#009E73",   # bluish green
    "rescued": "#56B4E9",            # sky blue
    "overshoots": "#E69F00",         # orange
    "lost": "#000000",               # black
    "broken": "#CC79A7",             # reddish purple
}
CLASS_HATCHES = {"converges_anyway": "", "rescued": "..", "overshoots": "//", "lost": "",
                 "broken": "xx"}


def _tick_labels(name: str, values) -> list[str]:
    values = np.asarray(values)
    if values.dtype.kind in "OUS":
        return [str(v) for v in values]
    if name in ("dirty_rate", "link_bandwidth", "max_bandwidth"):
        return [format_rate(float(v)) for v in values]
    if name in ("ram_size",):
        return [format_size(int(v)) for v in values]
    return [f"{v:g}" for v in values]


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
                title.append(_tick_labels(col, [cv])[0])
            if row:
                title.append(_tick_labels(row, [rv])[0])
            ax.set_title(" | ".join(title), fontsize=9)
            step = max(1, nx // 4)
            ax.set_xticks(np.arange(0, nx, step) + 0.5,
                          _tick_labels(x, code[x].values[::step]), rotation=45, fontsize=7)
            ax.set_yticks(np.arange(ny) + 0.5, _tick_labels(y, code[y].values), fontsize=7)
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
