"""The ipywidgets apps: explore() for one migration, explore_sweep() for a sweep Dataset."""
import matplotlib

matplotlib.use("Agg")

import ipywidgets as widgets  # noqa: E402
import pytest  # noqa: E402

import toolkit as tk  # noqa: E402
from toolkit.widgets import explore, explore_sweep  # noqa: E402

MIB = 2**20


def has_image(out: widgets.Output) -> bool:
    return any("image/png" in o.get("data", {}) for o in out.outputs)


@pytest.fixture(scope="module")
def app():
    """The app with its defaults: the README's story (never read after a test changes it)."""
    return explore()


def test_builds_with_the_dom_hooks(app):
    assert isinstance(app, widgets.VBox)
    assert "so-explorer" in app._dom_classes
    assert len(app.verdicts) == 2 and len(app.figures) == 2
    assert all("so-verdict" in w._dom_classes for w in app.verdicts)
    assert all("so-figure" in w._dom_classes for w in app.figures)
    slider = app.controls["dirty_rate"]
    assert "so-dirty-rate" in slider._dom_classes
    assert slider.description == "dirty rate"
    assert slider.value == 1024
    assert all(has_image(out) for out in app.figures)


def test_sliders_report_only_on_release(app):
    sliders = [w for w in app.controls.values() if hasattr(w, "continuous_update")]
    assert len(sliders) >= 7
    assert not any(w.continuous_update for w in sliders)


def test_readme_story_estimate_never_converges_half_link_does(app):
    estimate, user = app.results
    assert estimate.attrs["workload"] == "sequential"
    assert estimate.attrs["avail_switchover_bandwidth"] == 0
    assert user.attrs["avail_switchover_bandwidth"] == 625_000_000      # 0.5x 10 Gbit/s
    assert not bool(estimate.converged)
    assert bool(user.converged) and user.downtime.item() <= 300
    assert "never converges" in app.verdicts[0].value
    assert "converges in" in app.verdicts[1].value


def test_dirty_rate_change_reruns_both():
    app = explore()
    before = [w.value for w in app.verdicts]
    app.controls["dirty_rate"].value = 100          # MiB/s; observe() runs update()
    assert [ds.attrs["dirty_rate"] for ds in app.results] == [100 * MIB] * 2
    assert [w.value for w in app.verdicts] != before
    assert "converges in" in app.verdicts[0].value
    app.controls["avail_switchover_bandwidth"].value = 4.0
    assert app.results[1].attrs["avail_switchover_bandwidth"] == 5_000_000_000
    assert "OVERSHOOTS the 300 ms limit" in app.verdicts[1].value
    assert app.results[0] is not None and app.results[0].attrs["dirty_rate"] == 100 * MIB
    app.update()
    assert all(has_image(out) for out in app.figures)


def test_defaults_by_parameter_name():
    app = explore(dirty_rate="300MiB/s", downtime_limit=500, workload="uniform",
                  avail_switchover_bandwidth="2x link", seed=3)
    c = app.controls
    assert c["dirty_rate"].value == pytest.approx(300)
    assert c["downtime_limit"].value == 500
    assert c["avail_switchover_bandwidth"].value == pytest.approx(2.0)
    assert app.fixed["seed"] == 3
    ds = app.results[1]
    assert (ds.attrs["dirty_rate"], ds.attrs["downtime_limit"], ds.attrs["seed"]) == \
        (300 * MIB, 500, 3)
    with pytest.raises(TypeError, match="downtime_limit"):
        explore(downtime_limt=500)


def test_bad_combination_shows_the_error():
    app = explore(write_range="2GiB")               # fits 4 GiB of RAM ...
    assert app.results[0] is not None
    app.controls["ram_size"].value = 2**30          # ... not 1 GiB: no exception
    assert app.results == (None, None)
    assert all("error" in w.value and "beyond ram_size" in w.value for w in app.verdicts)
    assert not any(has_image(out) for out in app.figures)
    app.controls["ram_size"].value = 4 * 2**30      # back to a good one
    assert "never converges" in app.verdicts[0].value


@pytest.fixture(scope="module")
def grid():
    ds = tk.sweep(ram_size="256MiB", dirty_rate=["50MiB/s", "400MiB/s", "2GiB/s"],
                  downtime_limit=[50, 300], link_bandwidth=["1Gbit/s", "10Gbit/s"],
                  avail_switchover_bandwidth=["estimate", "link"], max_time=5.0, workers=2)
    return ds.merge(tk.rescue(ds)[["rescue_class"]])


def test_explore_sweep_redraws_for_every_choice(grid):
    app = explore_sweep(grid)
    c = app.controls
    assert isinstance(app, widgets.VBox)
    assert [v for _, v in c["var"].options] == ["converged", "total_time", "downtime",
                                                "dirty_sync_count", "rescue_class"]
    assert (c["x"].value, c["y"].value) == ("dirty_rate", "downtime_limit")
    sliders = [c[d] for d in grid.converged.dims]
    assert not any(w.continuous_update for w in sliders)
    for var in ("converged", "total_time", "downtime", "dirty_sync_count", "rescue_class"):
        c["var"].value = var
        assert has_image(app.figure) and app.message.value == "", var
    c["x"].value = "avail_switchover_bandwidth"
    c["link_bandwidth"].value = 1
    assert has_image(app.figure) and app.message.value == ""
    assert "link_bandwidth = 10 Gbit/s" in app.figure.outputs[0]["data"]["text/plain"]
    assert c["avail_switchover_bandwidth"].layout.display == "none"
    assert c["link_bandwidth"].layout.display != "none"
    c["y"].value = "avail_switchover_bandwidth"     # same as x: the axes swap
    assert (c["x"].value, c["y"].value) == ("downtime_limit", "avail_switchover_bandwidth")
    c["var"].value = "downtime"
    assert has_image(app.figure) and app.message.value == ""


def test_explore_sweep_needs_two_dimensions():
    ds = tk.sweep(ram_size="256MiB", dirty_rate=["50MiB/s", "400MiB/s"], max_time=5.0)
    with pytest.raises(ValueError, match="two parameters"):
        explore_sweep(ds)
