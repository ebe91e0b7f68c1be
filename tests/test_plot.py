"""Every plot renders headless and shows what it should."""
import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from matplotlib.colors import to_hex  # noqa: E402

import toolkit as tk  # noqa: E402
from toolkit import plot  # noqa: E402
from toolkit.rescue import CLASSES  # noqa: E402


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
    assert "pending [MiB]" in labels and "threshold [MiB]" in labels
    assert "bitmap sync" in [c.get_label() for c in top.collections]
    assert len([c for c in top.patches + top.collections]) >= 1          # the downtime span
    assert bottom.get_ylabel() == "Gbit/s" and "time since migrate [s]" in bottom.get_xlabel()
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
    mesh = ax.collections[0]
    values = np.asarray(mesh.get_array()).reshape(2, 3)
    want = ds.converged.isel(link_bandwidth=0, avail_switchover_bandwidth=0) \
        .transpose("downtime_limit", "dirty_rate").values
    np.testing.assert_array_equal(values, want.astype(int))
    assert ax.get_xlabel() == "dirty rate [B s-1]" and ax.get_ylabel() == "downtime limit [ms]"
    assert [t.get_text() for t in ax.get_xticklabels()] == ["20 MiB/s", "300 MiB/s", "2 GiB/s"]
    _render(fig)
    fig = plot.convergence_map(ds, x="dirty_rate", y="link_bandwidth", var="total_time")
    assert "total time [ms]" in fig.axes[-1].get_ylabel()          # the colour bar
    _render(fig)


def test_rescue_map_colours_every_class(grid):
    _, res = grid
    fig = plot.rescue_map(res)
    panels = [ax for ax in fig.axes if ax.collections]
    assert len(panels) == 3 * 2                    # avail settings x links
    legend = fig.legends[0]
    assert [t.get_text() for t in legend.get_texts()] == [c.replace("_", " ") for c in CLASSES]
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
