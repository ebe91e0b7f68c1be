"""Interactive Jupyter apps (ipywidgets) over simulations and sweep Datasets.

:func:`explore` re-runs one migration with QEMU's estimate and with a user-set
avail-switchover-bandwidth whenever a control changes, and shows the verdicts
and timelines side by side; :func:`explore_sweep` browses a sweep Dataset as
maps. Both only call :func:`toolkit.simulate` and the figures of
:mod:`toolkit.plot`; the figures are rendered to PNG in ``ipywidgets.Output``
widgets, so they work the same in a notebook, in Voila and headless.

Colours read on JupyterLab's light and dark themes alike (text colours keep a
contrast of at least 3.5 against white and against #111111; figures keep their
own white face).

CSS classes for browser tests: ``so-explorer`` (the app), ``so-verdict`` (the
two verdicts), ``so-figure`` (the two figures), ``so-dirty-rate``,
``so-downtime-limit``, ``so-avail`` and ``so-working-set`` (those sliders);
``so-sweep-explorer`` and ``so-sweep-map`` for the sweep app.
"""
from __future__ import annotations

import base64
import html
import io
import math

import ipywidgets as widgets
import matplotlib.pyplot as plt
from matplotlib.figure import Figure

from . import plot
from .constants import GIB, MIB
from .scenario import PARAMETER_INDEX, WORKLOADS, validate_parameter, check_names
from ._simulate import simulate
from .units import format_count, format_rate, format_size, parse_size
from .verdict import Verdict, describe, verdict

DPI = 96                                   # PNG resolution of the figures [dots per inch]
STYLE = {"description_width": "190px"}
SLIDER_WIDTH = "480px"                     # a slider with its description
# The explorer's default: a 4 GiB guest writing 90% of its pages into a 256 MiB hot set at
# 200 MiB/s, under QEMU's 128 MiB/s max-bandwidth on 10 Gbit/s, downtime-limit 300 ms. The
# estimate (~134 MB/s) never lets it go; 0.5x link does. Every main slider flips a verdict
# within its range: 100 MiB/s both converge, 400 MiB/s neither; 200 ms neither, 1000 ms
# both; 0.25x link not, 2x link overshoots; a 512 MiB working set does not converge.
EXPLORE_DEFAULTS = {"workload": "hotcold", "hot_share": 0.9, "max_time": 120.0,
                    "dirty_rate": 200 * MIB, "ram_size": 4 * GIB, "working_set": 256 * MIB,
                    "link_bandwidth": "10Gbit/s", "avail_switchover_bandwidth": "0.5x link"}
WORKING_SETS = [2**k * MIB for k in range(4, 14)]                # 16 MiB .. 8 GiB
#: how the working set is given to each workload that has one
WORKING_SET_OF = {"hotcold": "hot_fraction", "sequential": "write_range"}
RAM_SIZES = [2**k * GIB for k in range(7)]                       # 1 .. 64 GiB
LINKS = [g * 1.25e8 for g in (1, 10, 25, 40, 100)]               # Gbit/s in B/s
MAX_BANDWIDTHS = [("unlimited (0)", 0), ("32 MiB/s", 32 * MIB),
                  ("128 MiB/s (QEMU default)", 128 * MIB), ("512 MiB/s", 512 * MIB),
                  ("1 GiB/s", GIB)]
SWEEP_VARIABLES = ("converged", "total_time", "downtime", "dirty_sync_count", "rescue_class")


def _figure_output(fig, text: str) -> dict:
    """One ``display_data`` output holding ``fig`` as a PNG, ``text`` as its plain-text form."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI)
    return {"output_type": "display_data", "metadata": {},
            "data": {"image/png": base64.b64encode(buf.getvalue()).decode("ascii"),
                     "text/plain": text}}


def _options(pairs: list, value, label: str) -> list:
    """(label, value) pairs, with ``value`` added in order when it is not among them."""
    if any(v == value for _, v in pairs):
        return list(pairs)
    return sorted(list(pairs) + [(label, value)], key=lambda pair: pair[1])


def _wide():
    """A Layout of its own (a shared one would show and hide widgets together)."""
    return widgets.Layout(width=SLIDER_WIDTH)


def _menu():
    """A Layout of its own for a Dropdown, wide enough for its longest option."""
    return widgets.Layout(width="400px")


def _with_unit(widget, unit: str):
    """The widget followed by its unit."""
    return widgets.HBox([widget, widgets.Label(unit)])


def _slider(cls, description: str, value, lo, hi, step, **kw):
    """A slider that only reports a value when released, its range widened to hold ``value``."""
    return cls(description=description, value=value, min=min(lo, value), max=max(hi, value),
               step=step, continuous_update=False, style=STYLE, layout=_wide(), **kw)


#: The colour of each verdict's line.
VERDICT_COLOURS = {Verdict.CONVERGES: "#008A63", Verdict.OVERSHOOTS: "#C46A00",
                   Verdict.NOT_CONVERGING: "#E03C31", Verdict.NOT_FINISHED: "#808080"}
ERROR_COLOUR = "#E03C31"


def _verdict_html(heading: str, ds=None, error: str | None = None) -> str:
    if error is not None:
        body = f'<span style="color:{ERROR_COLOUR}">error: {html.escape(error)}</span>'
    else:
        text = describe(ds)
        colour = VERDICT_COLOURS[verdict(ds)]
        body = (f'<span style="color:{colour};font-size:1.15em">{html.escape(text)}</span><br>'
                f'<small>{format_count(int(ds["dirty_sync_count"]), "bitmap sync")}, '
                f'{format_size(int(ds["transferred"]))} sent</small>')
    return f"<b>{html.escape(heading)}</b><br>{body}"


class Explorer(widgets.VBox):
    """The app of :func:`explore`: controls on top, two result columns below.

    Attributes
    ----------
    controls : dict
        Scenario parameter name -> its widget (``avail_switchover_bandwidth``
        is the factor of the link [x link], 0 = the estimate), and
        ``"working_set"`` [B]: the hot set of ``hotcold``, the write range of
        ``sequential`` (disabled for the other workloads).
    fixed : dict
        The other scenario parameters, the same for every run.
    verdicts : tuple of two ipywidgets.HTML
        Estimate column, user-set column.
    figures : tuple of two ipywidgets.Output, or of two ipympl Canvas
        The timelines, as PNG images; with ``hover=True`` live matplotlib
        canvases whose footer reads out the window under the pointer.
    results : tuple of two xarray.Dataset or None
        The latest runs (None after an error).
    """

    def __init__(self, hover: bool = False, **defaults):
        check_names({k: v for k, v in defaults.items() if k != "working_set"})
        self.hover = bool(hover)
        if self.hover:
            try:
                from ipympl.backend_nbagg import Canvas, FigureManager
            except ImportError:
                raise ValueError("explore(hover=True) needs ipympl, matplotlib's widget "
                                 "backend: pip install ipympl") from None
        values = {**EXPLORE_DEFAULTS, **defaults}
        ram = validate_parameter("ram_size", values["ram_size"])
        work = values["workload"]
        # a working set given through the workload's own parameter wins over the default
        if "working_set" in defaults:
            ws = parse_size(defaults["working_set"], "working_set")
        elif work == "hotcold" and "hot_fraction" in defaults:
            ws = int(round(float(defaults["hot_fraction"]) * ram))
        elif work == "sequential" and "write_range" in defaults:
            ws = validate_parameter("write_range", defaults["write_range"])
        else:
            ws = parse_size(values["working_set"], "working_set")
        for name in ("working_set", "hot_fraction", "write_range"):
            values.pop(name, None)
        v = {name: validate_parameter(name, value) for name, value in values.items()
             if name != "avail_switchover_bandwidth"}
        link = v["link_bandwidth"]
        spec = PARAMETER_INDEX["avail_switchover_bandwidth"]
        avail = spec.parse(spec.resolve(values["avail_switchover_bandwidth"], link))
        get = lambda name: v.get(name, PARAMETER_INDEX[name].default)  # noqa: E731
        if v["dirty_rate"] <= 0:
            raise ValueError("explore: dirty_rate must be > 0 (the slider is logarithmic)")
        rate = v["dirty_rate"] / MIB
        c = {
            "dirty_rate": widgets.FloatLogSlider(    # 8 .. 4096 MiB/s, exponents of 2
                description="dirty rate", value=rate, base=2, min=min(3.0, math.log2(rate)),
                max=max(12.0, math.log2(rate)), step=0.1, readout_format=".0f",
                continuous_update=False, style=STYLE, layout=_wide()),
            "workload": widgets.Dropdown(description="workload", options=WORKLOADS,
                                         value=v["workload"], style=STYLE, layout=_menu()),
            "working_set": widgets.SelectionSlider(
                description="working set", continuous_update=False, style=STYLE,
                layout=_wide(), value=ws,
                options=_options([(format_size(s), s) for s in WORKING_SETS], ws,
                                 format_size(ws))),
            "ram_size": widgets.SelectionSlider(
                description="RAM size", continuous_update=False, style=STYLE, layout=_wide(),
                options=_options([(format_size(s), s) for s in RAM_SIZES], v["ram_size"],
                                 format_size(v["ram_size"])), value=v["ram_size"]),
            "link_bandwidth": widgets.Dropdown(
                description="link bandwidth", style=STYLE, layout=_menu(), value=link,
                options=_options([(format_rate(b), b) for b in LINKS], link, format_rate(link))),
            "max_bandwidth": widgets.Dropdown(
                description="max-bandwidth", style=STYLE, layout=_menu(),
                value=get("max_bandwidth"),
                options=_options(MAX_BANDWIDTHS, get("max_bandwidth"),
                                 format_rate(get("max_bandwidth")))),
            "downtime_limit": _slider(widgets.IntSlider, "downtime-limit",
                                      get("downtime_limit"), 10, 2000, 10),
            "avail_switchover_bandwidth": _slider(widgets.FloatSlider,
                                                  "avail-switchover-bandwidth",
                                                  avail / link, 0.0, 8.0, 0.05),
            "page_send_time": _slider(widgets.FloatSlider, "page send time",
                                      get("page_send_time"), 0.0, 2000.0, 10.0),
            "zero_page_scan_time": _slider(widgets.FloatSlider, "zero-page scan time",
                                           get("zero_page_scan_time"), 0.0, 1000.0, 10.0),
            "sync_time_per_gib": _slider(widgets.FloatSlider, "bitmap sync time per GiB",
                                         get("sync_time_per_gib"), 0.0, 20.0, 0.1),
            "zero_fraction": _slider(widgets.FloatSlider, "zero fraction",
                                     get("zero_fraction"), 0.0, 1.0, 0.05),
        }
        for name, css in (("dirty_rate", "so-dirty-rate"), ("downtime_limit", "so-downtime-limit"),
                          ("avail_switchover_bandwidth", "so-avail"),
                          ("working_set", "so-working-set")):
            c[name].add_class(css)
        self.controls = c
        self.fixed = {k: val for k, val in values.items() if k not in c}
        self._avail_unit = widgets.Label("x link")
        self._ws_note = widgets.Label()
        host = widgets.VBox([_with_unit(c["page_send_time"], "ns"),
                             _with_unit(c["zero_page_scan_time"], "ns"),
                             _with_unit(c["sync_time_per_gib"], "ms/GiB"), c["zero_fraction"]])
        costs = widgets.Accordion(children=[host], titles=("host costs",), selected_index=None)
        self.verdicts = (widgets.HTML(), widgets.HTML())
        if self.hover:
            self._figs = (Figure(figsize=(6.4, 4.6), facecolor="white"),
                          Figure(figsize=(6.4, 4.6), facecolor="white"))
            self.figures = tuple(Canvas(f) for f in self._figs)
            for k, canvas in enumerate(self.figures):
                FigureManager(canvas, k)          # the toolbar that writes the read-out
                canvas.header_visible = False
                canvas.toolbar_visible = False
                canvas.resizable = False
        else:
            self.figures = (widgets.Output(), widgets.Output())
        for w in self.verdicts:
            w.add_class("so-verdict")
        for w in self.figures:
            w.add_class("so-figure")
        self.note = widgets.HTML(f"<small>{html.escape(plot.PENDING_NOTE)}</small>")
        self.results = (None, None)
        self._drawn = (None, None)     # parameters of the runs shown in each column
        columns = [widgets.VBox([h, f], layout=widgets.Layout(width="50%"))
                   for h, f in zip(self.verdicts, self.figures)]
        super().__init__([
            _with_unit(c["dirty_rate"], "MiB/s"), c["workload"],
            widgets.HBox([c["working_set"], self._ws_note]), c["ram_size"],
            c["link_bandwidth"], c["max_bandwidth"], _with_unit(c["downtime_limit"], "ms"),
            widgets.HBox([c["avail_switchover_bandwidth"], self._avail_unit]), costs,
            widgets.HBox(columns), self.note])
        self.add_class("so-explorer")
        for w in c.values():
            w.observe(lambda change: self.update(), names="value")
        self.update()

    def parameters(self) -> dict:
        """Scenario parameters of the user-set run, in base units (avail in [B/s])."""
        c = self.controls
        params = {**self.fixed, **{k: w.value for k, w in c.items() if k != "working_set"}}
        params["dirty_rate"] = c["dirty_rate"].value * MIB
        params["avail_switchover_bandwidth"] = int(round(
            c["avail_switchover_bandwidth"].value * c["link_bandwidth"].value))
        ws = c["working_set"].value
        if params["workload"] == "hotcold":
            params["hot_fraction"] = ws / params["ram_size"]
        elif params["workload"] == "sequential":
            params["write_range"] = ws
        return params

    def _show_working_set(self, workload: str) -> None:
        target = WORKING_SET_OF.get(workload)
        self.controls["working_set"].disabled = target is None
        share = self.fixed.get("hot_share", PARAMETER_INDEX["hot_share"].default)
        self._ws_note.value = {"hot_fraction": f"hot set: {share:.0%} of the writes land here",
                               "write_range": "the range the write cursor sweeps"}.get(
            target, f"{workload}: writes spread over all of RAM")

    def update(self) -> None:
        """Simulate with the estimate and with the user-set value; redraw both columns."""
        params = self.parameters()
        self._show_working_set(params["workload"])
        factor = self.controls["avail_switchover_bandwidth"].value
        avail = params["avail_switchover_bandwidth"]
        self._avail_unit.value = f"x link ({format_rate(avail)})" if avail else \
            "x link (0: use the estimate)"
        headings = ("avail-switchover-bandwidth 0: QEMU's estimate",
                    f"avail-switchover-bandwidth {factor:g}x link ({format_rate(avail)})"
                    if avail else "avail-switchover-bandwidth 0x link: the estimate too")
        runs = [{**params, "avail_switchover_bandwidth": a} for a in (0, avail)]
        try:
            results = [ds if key == runs[i] else simulate(**runs[i])
                       for i, (key, ds) in enumerate(zip(self._drawn, self.results))]
        except (TypeError, ValueError) as err:
            self.results, self._drawn = (None, None), (None, None)
            for w, heading in zip(self.verdicts, headings):
                w.value = _verdict_html(heading, error=str(err))
            for out in self.figures:
                if self.hover:
                    out.figure.clear()
                    out.draw_idle()
                else:
                    out.outputs = ()
            return
        for i, (ds, w, out, heading) in enumerate(zip(results, self.verdicts, self.figures,
                                                      headings)):
            w.value = _verdict_html(heading, ds)
            if self._drawn[i] == runs[i]:
                continue        # same run as shown (the estimate, when only avail moved)
            fig = out.figure if self.hover else Figure(figsize=(6.4, 4.6), facecolor="white")
            fig.clear()
            # fixed margins: constrained layout would double the drawing time
            fig.subplots_adjust(left=0.12, right=0.98, top=0.93, bottom=0.1, hspace=0.08)
            axes = fig.subplots(2, 1, sharex=True, height_ratios=[3, 2])
            plot.timeline(ds, axes=axes, title=heading)
            if self.hover:
                out.draw_idle()
            else:
                out.outputs = (_figure_output(fig, f"timeline: {describe(ds)}"),)
        self.results, self._drawn = tuple(results), tuple(runs)


def explore(hover: bool = False, **defaults) -> Explorer:
    """An app to explore one migration, with QEMU's estimate and a user-set
    avail-switchover-bandwidth side by side.

    Every change of a control runs :func:`toolkit.simulate` twice with the same
    parameters, ``avail_switchover_bandwidth=0`` (QEMU's estimate) and the
    slider's multiple of the link, and shows each run's verdict and
    :func:`toolkit.plot.timeline`. A bad combination shows its error in the
    verdicts instead of raising.

    Parameters
    ----------
    hover : bool
        Draw the timelines on ipympl canvases (``pip install ipympl``): the
        footer under each reads out the window under the pointer (time,
        pending, threshold, estimate; :func:`toolkit.plot.readout`). Off, they
        are PNG images, quicker to draw and shown by any front end.
    **defaults
        Initial values by scenario parameter name, numbers in base units or
        strings with units, e.g. ``explore(dirty_rate="300MiB/s",
        downtime_limit=500)``. Parameters with a control set its initial value
        (``avail_switchover_bandwidth`` also as ``"2x link"``, ``"estimate"``;
        ``working_set`` [B], or the workload's own ``hot_fraction`` or
        ``write_range``); the others (``seed``, ``hot_share`` ...) stay fixed.
        Defaults (:data:`EXPLORE_DEFAULTS`): a 4 [GiB] hotcold guest writing
        200 [MiB/s], 90% of it into a 256 [MiB] working set, 10 [Gbit/s] link,
        max-bandwidth 128 [MiB/s], downtime-limit 300 [ms],
        avail-switchover-bandwidth 0.5 [x link], max_time 120 [s]: the
        estimate never converges, 0.5x link does, and the dirty rate, the
        downtime-limit, the avail factor and the working set each change a
        verdict within their ranges.

    Returns
    -------
    Explorer
        An ``ipywidgets.VBox`` with ``controls``, ``verdicts``, ``figures``,
        ``results`` and ``update()``.

    Raises
    ------
    TypeError, ValueError
        An unknown parameter name or a value that cannot be read.
    """
    return Explorer(hover=hover, **defaults)


class SweepExplorer(widgets.VBox):
    """The app of :func:`explore_sweep`.

    Attributes
    ----------
    controls : dict
        ``"var"``, ``"x"``, ``"y"`` (Dropdowns) and one SelectionSlider per
        dimension, labelled with units, whose value is a coordinate value
        (hidden while the dimension is on an axis).
    figure : ipywidgets.Output
        The map, as a PNG image.
    message : ipywidgets.HTML
        An error, if drawing failed.
    """

    def __init__(self, ds):
        variables = [v for v in SWEEP_VARIABLES if v in ds.data_vars]
        if not variables:
            raise ValueError(f"explore_sweep: the Dataset has none of {SWEEP_VARIABLES}")
        dims = list(ds[variables[0]].dims)
        if len(dims) < 2:
            raise ValueError(f"explore_sweep needs a sweep over at least two parameters; "
                             f"this one has {dims}")
        self.ds = ds
        units = lambda v: ds[v].attrs.get("units", "1")  # noqa: E731
        c = {"var": widgets.Dropdown(
                 description="variable", style=STYLE, layout=_menu(),
                 value="rescue_class" if "rescue_class" in variables else variables[0],
                 options=[(v + (f" [{units(v)}]" if units(v) != "1" else ""), v)
                          for v in variables]),
             "x": widgets.Dropdown(description="x axis", options=dims, value=dims[0],
                                   style=STYLE, layout=_menu()),
             "y": widgets.Dropdown(description="y axis", options=dims, value=dims[1],
                                   style=STYLE, layout=_menu())}
        self._labels = {d: plot.value_labels(d, ds[d].values, with_unit=True) for d in dims}
        for d in dims:
            c[d] = widgets.SelectionSlider(
                description=d.replace("_", " "), continuous_update=False, style=STYLE,
                layout=_wide(), value=ds[d].values[0].item(),
                options=list(zip(self._labels[d], (x.item() for x in ds[d].values))))
        self.controls = c
        self.figure = widgets.Output()
        self.figure.add_class("so-sweep-map")
        self.message = widgets.HTML()
        self._quiet = False
        super().__init__([c["var"], c["x"], c["y"], *(c[d] for d in dims), self.message,
                          self.figure])
        self.add_class("so-sweep-explorer")
        for w in c.values():
            w.observe(self._changed, names="value")
        self.update()

    def _changed(self, change) -> None:
        if self._quiet:
            return
        x, y = self.controls["x"], self.controls["y"]
        if change["owner"] in (x, y) and x.value == y.value:   # same dim twice: swap
            other = y if change["owner"] is x else x
            self._quiet = True
            try:
                other.value = change["old"]
            finally:
                self._quiet = False
        self.update()

    def update(self) -> None:
        """Redraw the map for the selected variable, axes and positions."""
        c, ds = self.controls, self.ds
        var, x, y = c["var"].value, c["x"].value, c["y"].value
        rest = [d for d in ds[var].dims if d not in (x, y)]
        for d in ds[var].dims:
            c[d].layout.display = "none" if d in (x, y) else None
        select = {d: c[d].value for d in rest}
        fig = None
        try:
            if var == "rescue_class":
                fig = plot.rescue_map(ds, x, y, col=None, row=None, **select)
                plt.close(fig)          # out of pyplot's list; it is only saved below
                # one panel is too narrow for rescue_map's title and legend of five classes
                fig.set_size_inches(max(fig.get_figwidth(), 7.5), max(fig.get_figheight(), 4.6))
            else:
                fig = Figure(figsize=(6.8, 4.4), layout="constrained", facecolor="white")
                plot.convergence_map(ds, x, y, var, ax=fig.add_subplot(), **select)
            labels = {d: dict(zip((v.item() for v in ds[d].values), self._labels[d]))
                      for d in select}
            where = ", ".join(f"{d} = {labels[d][i]}" for d, i in select.items())
            self.figure.outputs = (_figure_output(fig, f"{var} over {x} and {y}"
                                                  + (f" at {where}" if where else "")),)
            self.message.value = ""
        except (TypeError, ValueError, KeyError, IndexError) as err:
            self.figure.outputs = ()
            self.message.value = (f'<span style="color:{ERROR_COLOUR}">'
                                  f'{html.escape(str(err))}</span>')


def explore_sweep(ds) -> SweepExplorer:
    """An app to browse a sweep Dataset as maps over two of its dimensions.

    Dropdowns pick the variable (``converged``, ``total_time`` [ms],
    ``downtime`` [ms], ``dirty_sync_count``, and ``rescue_class`` when present)
    and the two dimensions on the axes; a slider per other dimension picks its
    value (labelled with units). The downtime map keeps one colour scale for
    the whole Dataset and marks the limit. ``rescue_class`` is drawn by
    :func:`toolkit.plot.rescue_map`, the
    others by :func:`toolkit.plot.convergence_map`.

    Parameters
    ----------
    ds : xarray.Dataset
        A :func:`toolkit.sweep` result over at least two parameters, optionally
        merged with :func:`toolkit.rescue` output, e.g.
        ``toolkit.open_dataset("rescue-default")``.

    Returns
    -------
    SweepExplorer
        An ``ipywidgets.VBox`` with ``controls``, ``figure`` and ``update()``.

    Raises
    ------
    ValueError
        The Dataset has none of the variables, or fewer than two dimensions.
    """
    return SweepExplorer(ds)


__all__ = ["explore", "explore_sweep", "Explorer", "SweepExplorer"]
