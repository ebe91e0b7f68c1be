"""Every plot renders headless and shows what it should."""
import re

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from matplotlib.colors import to_hex  # noqa: E402

import toolkit as tk  # noqa: E402
from toolkit import plot  # noqa: E402
from toolkit import RESCUE_CLASSES as CLASSES  # noqa: E402


@pytest.fixture(scope="module")
def grid():
    ds = tk.sweep(ram_size="256MiB", workload="hotcold", max_time=6.0,
                  dirty_rate=["20MiB/s", "300MiB/s", "2GiB/s"], downtime_limit=[30, 300],
                  link_bandwidth=["1Gbit/s", "10Gbit/s"],
                  avail_switchover_bandwidth=["estimate", "0.5x link", "8x link"])
    return ds, tk.rescue(ds)


def _render(fig):
    fig.canvas.draw()
    png = fig.canvas.buffer_rgba()
    assert np.asarray(png).std() > 0          # not a blank canvas
    plt.close(fig)


def test_timeline_converged_marks_syncs_and_downtime():
    ds = tk.simulate(ram_size="2GiB", dirty_rate="200MiB/s", max_bandwidth="200MiB/s")
    fig = plot.timeline(ds)
    top, bottom = fig.axes[:2]
    labels = [line.get_label() for line in top.get_lines()]
    assert "pending, cheap estimate [MiB]" in labels and "threshold [MiB]" in labels
    assert "pending after a sync (exact) [MiB]" in labels
    assert "exact pending at switchover [MiB]" in labels
    assert "bitmap sync" in [c.get_label() for c in top.collections]
    assert len([c for c in top.patches + top.collections]) >= 1          # the downtime span
    assert bottom.get_ylabel() == "bandwidth [Gbit/s]"
    assert "time since migrate [s]" in bottom.get_xlabel()
    assert {"estimate (one window)", "link", "max-bandwidth"} <= \
        {line.get_label() for line in bottom.get_lines()}
    assert "downtime" in top.get_title()
    _render(fig)


def test_timeline_not_converged():
    ds = tk.simulate(ram_size="1GiB", dirty_rate="2GiB/s", max_time=5.0)
    fig = plot.timeline(ds)           # 5 s at 128 MiB/s: 63% of the first pass
    assert fig.axes[0].get_title().startswith("first pass not finished: 63% of RAM")
    _render(fig)
    ds = tk.simulate(ram_size="1GiB", dirty_rate="2GiB/s", max_time=5.0, max_bandwidth=0)
    assert plot.timeline(ds).axes[0].get_title().startswith("never converges")


def test_convergence_map(grid):
    ds, _ = grid
    fig = plot.convergence_map(ds, x="dirty_rate", y="downtime_limit")
    ax = fig.axes[0]
    assert "link bandwidth 1 Gbit/s" in ax.get_title()
    assert "avail-switchover-bandwidth estimate" in ax.get_title()
    mesh = ax.collections[0]
    values = np.asarray(mesh.get_array()).reshape(2, 3)
    want = ds.converged.isel(link_bandwidth=0, avail_switchover_bandwidth=0) \
        .transpose("downtime_limit", "dirty_rate").values
    np.testing.assert_array_equal(values, want.astype(int))
    assert ax.get_xlabel() == "dirty rate [MiB/s]" and ax.get_ylabel() == "downtime-limit [ms]"
    assert [t.get_text() for t in ax.get_xticklabels()] == ["20", "300", "2048"]
    assert [t.get_text() for t in ax.get_yticklabels()] == ["30", "300"]
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert legend == ["converges", "never converges"]
    _render(fig)
    fig = plot.convergence_map(ds, x="dirty_rate", y="link_bandwidth", var="total_time")
    assert "total time [ms]" in fig.axes[-1].get_ylabel()          # the colour bar
    _render(fig)


def test_maps_select_by_value_with_units(grid):
    ds, _ = grid
    fig = plot.convergence_map(ds, x="dirty_rate", y="downtime_limit",
                               link_bandwidth="10Gbit/s", avail_switchover_bandwidth="8x link")
    values = np.asarray(fig.axes[0].collections[0].get_array()).reshape(2, 3)
    want = ds.converged.sel(link_bandwidth=1.25e9, avail_switchover_bandwidth="8x link") \
        .transpose("downtime_limit", "dirty_rate").values
    np.testing.assert_array_equal(values, want.astype(int))
    assert "link bandwidth 10 Gbit/s, avail-switchover-bandwidth 8x link" in \
        fig.axes[0].get_title()
    plt.close(fig)
    with pytest.raises(ValueError, match=r"link_bandwidth=1 is not among its swept values: "
                                         r"1 Gbit/s, 10 Gbit/s"):
        plot.convergence_map(ds, x="dirty_rate", y="downtime_limit", link_bandwidth=1)
    with pytest.raises(ValueError, match="no such dimension"):
        plot.convergence_map(ds, x="dirty_rate", y="downtime_limit", ram_size="1GiB")
    with pytest.raises(ValueError, match="link_bandwidth"):
        plot.convergence_map(ds, link_bandwidth="fast")


def test_downtime_map_one_scale_limit_and_no_value_legend(grid):
    ds, _ = grid
    scales = []
    for link in ("1Gbit/s", "10Gbit/s"):
        fig = plot.convergence_map(ds, x="dirty_rate", y="avail_switchover_bandwidth",
                                   var="downtime", link_bandwidth=link, downtime_limit=30)
        mesh = fig.axes[0].collections[0]
        scales.append((mesh.norm.vmin, mesh.norm.vmax))
        legend = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
        assert "no value: never converges" in legend
        assert "downtime-limit (on the colour bar)" in legend
        bar = fig.axes[-1]
        assert any(np.allclose(line.get_ydata(), 30) for line in bar.get_lines())
        plt.close(fig)
    finite = ds.downtime.values[np.isfinite(ds.downtime.values)]
    assert scales[0] == scales[1] == (pytest.approx(finite.min()), pytest.approx(finite.max()))


def test_table_in_units_people_read(grid):
    ds, _ = grid
    t = plot.table(ds.downtime.sel(link_bandwidth=1.25e9, downtime_limit=300))
    assert list(t.index) == ["20 MiB/s", "300 MiB/s", "2 GiB/s"]
    assert list(t.columns) == ["estimate", "0.5x link", "8x link"]
    assert t.columns.name == "downtime [ms] by avail-switchover-bandwidth"
    with pytest.raises(ValueError, match="one or two dimensions"):
        plot.table(ds.downtime)


def test_rescue_map_colours_every_class(grid):
    _, res = grid
    fig = plot.rescue_map(res)
    panels = [ax for ax in fig.axes if ax.collections]
    assert len(panels) == 3 * 2                    # avail settings x links
    legend = fig.legends[0]
    assert [t.get_text() for t in legend.get_texts()] == [c.replace("_", " ") for c in CLASSES]
    top = [ax for ax in panels if ax.get_title().startswith("avail-switchover-bandwidth = ")]
    assert len(top) == 3                            # the column heads name the setting
    assert "max-bandwidth 128 MiB/s caps QEMU's estimate" in fig._suptitle.get_text()
    for ax in panels:                              # counts per setting, summing to the panel
        counts = re.findall(r"(\d+) (" + "|".join(c.replace("_", " ") for c in CLASSES) + ")",
                            ax.get_title())
        assert sum(int(n) for n, _ in counts) == 3 * 2
    assert to_hex(plot.class_colour("lost")) != "#000000"
    colours = {to_hex(h.get_facecolor()) for h in legend.legend_handles}
    assert len(colours) == len(CLASSES)
    shown = set()
    for ax in panels:
        shown |= set(np.unique(np.asarray(ax.collections[0].get_array())).astype(int))
    assert shown == set(np.unique(res.rescue_class.values))
    _render(fig)


def test_safe_avail(grid):
    _, res = grid
    fig = plot.safe_avail(res, hue="downtime_limit")
    ax = fig.axes[0]
    assert len(ax.get_lines()) == 2 * 2
    assert ax.get_ylabel() == "avail-switchover-bandwidth [Gbit/s]"
    y = ax.get_lines()[0].get_ydata()
    want = res.smallest_converging_avail.isel(link_bandwidth=0, downtime_limit=0).values
    np.testing.assert_allclose(y, want * 8 / 1e9)
    _render(fig)


UNIT_KIND = {"MiB/s": "rate", "GiB/s": "rate", "KiB/s": "rate", "Gbit/s": "rate",
             "Mbit/s": "rate", "B/s": "rate", "MiB": "size", "GiB": "size", "KiB": "size",
             "B": "size"}


def _number(text):
    return float(text.replace("\u2212", "-").replace(",", ""))


def check_units(fig, ds=None):
    """Every axis label names the unit its tick labels are in: ticks are plain numbers
    beside a label with a unit; on a map over a swept dimension, tick x unit is the
    coordinate at that position (within the rounding of the label)."""
    fig.canvas.draw()
    checked = 0
    for ax in fig.axes:
        for which in ("x", "y"):
            label = getattr(ax, f"get_{which}label")()
            ticks = [t for t in getattr(ax, f"get_{which}ticklabels")() if t.get_text()]
            assert "s-1" not in label and "B s" not in label, label
            found = re.search(r"\[([^\]]+)\]$", label)
            if not found or not ticks:
                continue
            unit = found.group(1)
            numbers = [_number(t.get_text()) for t in ticks]        # no units in the ticks
            checked += 1
            if ds is None or unit not in UNIT_KIND:
                continue
            for dim in ds.dims:
                if ds[dim].dtype.kind not in "fiu":
                    continue            # labels such as "0.5x link": no unit to check
                if label.endswith(f"{plot.axis_label(ds, dim).split(' [')[0]} [{unit}]"):
                    coord = ds[dim].values.astype(float)
                    parse = tk.parse_rate if UNIT_KIND[unit] == "rate" else tk.parse_size
                    for t, n in zip(ticks, numbers):
                        pos = t.get_position()[0 if which == "x" else 1]
                        want = coord[int(pos)]
                        assert parse(f"{n}{unit}", dim) == pytest.approx(want, rel=0.05), \
                            (label, t.get_text(), want)
    plt.close(fig)
    return checked


def test_every_figure_has_units_matching_its_ticks(grid):
    ds, res = grid
    shipped = tk.open_dataset("rescue-default")
    run = tk.simulate(ram_size="1GiB", dirty_rate="200MiB/s", max_bandwidth="200MiB/s")
    table = tk.open_dataset("qemu-validation")
    figures = [
        (plot.timeline(run), None),
        (plot.convergence_map(ds, x="dirty_rate", y="link_bandwidth"), ds),
        (plot.convergence_map(ds, x="link_bandwidth", y="dirty_rate", var="downtime"), ds),
        (plot.rescue_map(res), ds),
        (plot.rescue_map(shipped), shipped),
        (plot.convergence_map(shipped, x="dirty_rate", y="link_bandwidth", var="total_time",
                              downtime_limit=300), shipped),
        (plot.safe_avail(res, hue="downtime_limit", link_bandwidth="10Gbit/s"), ds),
        (plot.real_vs_simulated(run, run), None),
        (plot.validation(table), None),
    ]
    counted = [check_units(fig, d) for fig, d in figures]
    assert all(n >= 2 for n in counted), counted


def test_the_unit_check_catches_a_wrong_label(grid):
    ds, _ = grid
    fig = plot.convergence_map(ds, x="dirty_rate", y="downtime_limit")
    fig.axes[0].set_xlabel("dirty rate [GiB/s]")       # ticks are MiB/s
    with pytest.raises(AssertionError):
        check_units(fig, ds)
    fig = plot.convergence_map(ds, x="dirty_rate", y="downtime_limit")
    fig.axes[0].set_xticks([0.5], ["20 MiB/s"])
    with pytest.raises(ValueError):
        check_units(fig, ds)
