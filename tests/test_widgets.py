"""The ipywidgets apps: explore() for one migration, explore_sweep() for a sweep Dataset."""
import matplotlib

matplotlib.use("Agg")

import ipywidgets as widgets  # noqa: E402
import pytest  # noqa: E402

from matplotlib.colors import to_rgb  # noqa: E402

import toolkit as tk  # noqa: E402
from toolkit.verdict import Verdict, verdict  # noqa: E402
from toolkit.widgets import explore, explore_sweep  # noqa: E402

MIB = 2**20


def has_image(out: widgets.Output) -> bool:
    return any("image/png" in o.get("data", {}) for o in out.outputs)


@pytest.fixture(scope="module")
def app():
    """The app with its defaults (never read after a test changes it)."""
    return explore()


def _verdicts(app):
    return [Verdict(verdict(ds)) if ds is not None else None for ds in app.results]


def test_builds_with_the_dom_hooks(app):
    assert isinstance(app, widgets.VBox)
    assert "so-explorer" in app._dom_classes
    assert len(app.verdicts) == 2 and len(app.figures) == 2
    assert all("so-verdict" in w._dom_classes for w in app.verdicts)
    assert all("so-figure" in w._dom_classes for w in app.figures)
    for name, css in (("dirty_rate", "so-dirty-rate"), ("downtime_limit", "so-downtime-limit"),
                      ("avail_switchover_bandwidth", "so-avail"),
                      ("working_set", "so-working-set")):
        assert css in app.controls[name]._dom_classes
    slider = app.controls["dirty_rate"]
    assert slider.description == "dirty rate"
    assert slider.value == pytest.approx(200)
    assert app.controls["working_set"].value == 256 * MIB
    assert all(has_image(out) for out in app.figures)
    assert "cheap estimate" in app.note.value and "exact" in app.note.value


def test_sliders_report_only_on_release(app):
    sliders = [w for w in app.controls.values() if hasattr(w, "continuous_update")]
    assert len(sliders) >= 8
    assert not any(w.continuous_update for w in sliders)


def test_default_story_estimate_never_converges_half_link_does(app):
    estimate, user = app.results
    assert estimate.attrs["workload"] == "hotcold"
    assert estimate.attrs["hot_fraction"] == pytest.approx(256 / 4096)
    assert estimate.attrs["avail_switchover_bandwidth"] == 0
    assert user.attrs["avail_switchover_bandwidth"] == 625_000_000      # 0.5x 10 Gbit/s
    assert _verdicts(app) == [Verdict.NOT_CONVERGING, Verdict.CONVERGES]
    assert "never converges" in app.verdicts[0].value
    assert "converges in" in app.verdicts[1].value


# each main control, moved within its range from the default, changes a verdict
MOVES = [("dirty_rate", 100, [Verdict.CONVERGES, Verdict.CONVERGES]),
         ("dirty_rate", 400, [Verdict.NOT_CONVERGING, Verdict.NOT_CONVERGING]),
         ("downtime_limit", 200, [Verdict.NOT_CONVERGING, Verdict.NOT_CONVERGING]),
         ("downtime_limit", 1000, [Verdict.CONVERGES, Verdict.CONVERGES]),
         ("avail_switchover_bandwidth", 0.25, [Verdict.NOT_CONVERGING, Verdict.NOT_CONVERGING]),
         ("avail_switchover_bandwidth", 2.0, [Verdict.NOT_CONVERGING, Verdict.OVERSHOOTS]),
         ("working_set", 512 * MIB, [Verdict.NOT_CONVERGING, Verdict.NOT_CONVERGING]),
         ("working_set", 64 * MIB, [Verdict.CONVERGES, Verdict.CONVERGES])]


@pytest.mark.parametrize("name, value, want", MOVES, ids=[f"{n}={v}" for n, v, _ in MOVES])
def test_every_main_slider_changes_a_verdict(name, value, want):
    app = explore()
    before = [w.value for w in app.verdicts]
    slider = app.controls[name]
    if isinstance(slider, widgets.FloatLogSlider):
        assert slider.base ** slider.min <= value <= slider.base ** slider.max
    elif hasattr(slider, "min"):
        assert slider.min <= value <= slider.max
    else:
        assert value in [v for _, v in slider.options]
    slider.value = value                      # observe() runs update()
    assert _verdicts(app) == want
    assert [w.value for w in app.verdicts] != before
    assert all(has_image(out) for out in app.figures)


def test_working_set_follows_the_workload():
    app = explore()
    app.controls["workload"].value = "sequential"
    assert app.results[0].attrs["write_range"] == 256 * MIB
    assert not app.controls["working_set"].disabled
    app.controls["workload"].value = "uniform"
    assert app.controls["working_set"].disabled
    assert "all of RAM" in app._ws_note.value
    app = explore(workload="sequential", write_range="128MiB")
    assert app.controls["working_set"].value == 128 * MIB


def test_dirty_rate_change_reruns_both():
    app = explore()
    app.controls["dirty_rate"].value = 100          # MiB/s
    assert [ds.attrs["dirty_rate"] for ds in app.results] == [100 * MIB] * 2
    assert "converges in" in app.verdicts[0].value
    app.controls["avail_switchover_bandwidth"].value = 4.0
    assert app.results[1].attrs["avail_switchover_bandwidth"] == 5_000_000_000
    assert "OVERSHOOTS the 300 ms limit" in app.verdicts[1].value
    assert app.results[0] is not None and app.results[0].attrs["dirty_rate"] == 100 * MIB
    app.update()
    assert all(has_image(out) for out in app.figures)


def _contrast(a, b):
    def lum(c):
        r = [x / 12.92 if x <= 0.03928 else ((x + 0.055) / 1.055) ** 2.4 for x in to_rgb(c)]
        return 0.2126 * r[0] + 0.7152 * r[1] + 0.0722 * r[2]
    hi, lo = sorted([lum(a), lum(b)], reverse=True)
    return (hi + 0.05) / (lo + 0.05)


def test_verdict_colours_read_on_light_and_dark_themes():
    from toolkit.widgets import ERROR_COLOUR, VERDICT_COLOURS
    for colour in [*VERDICT_COLOURS.values(), ERROR_COLOUR]:
        for page in ("#ffffff", "#111111"):       # JupyterLab light and dark
            assert _contrast(colour, page) >= 3.5, (colour, page)


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
    app = explore(workload="sequential", write_range="2GiB")    # fits 4 GiB of RAM ...
    assert app.results[0] is not None
    app.controls["ram_size"].value = 2**30          # ... not 1 GiB: no exception
    assert app.results == (None, None)
    assert all("error" in w.value and "beyond ram_size" in w.value for w in app.verdicts)
    assert not any(has_image(out) for out in app.figures)
    app.controls["ram_size"].value = 4 * 2**30      # back to a good one
    assert "never converges" in app.verdicts[0].value


def test_timeline_readout_names_the_window_under_the_pointer():
    ds = tk.simulate(ram_size="1GiB", dirty_rate="200MiB/s", max_bandwidth="200MiB/s")
    text = tk.plot.readout(ds)
    i = 20
    t = ds.time.values[i] / 1000
    got = text(t + 0.01, 0.0)
    assert got.startswith(f"t {tk.units.format_number(t)} s: pending "
                          f"{tk.format_size(float(ds.pending[i]))}")
    assert f"threshold {tk.format_size(float(ds.threshold[i]))}" in got
    assert got.endswith(f"estimate {tk.format_rate(float(ds.bandwidth[i]))}")
    assert "(exact, after sync 1)" in text(0.0, 0.0)
    fig = tk.plot.timeline(ds)
    assert fig.axes[0].format_coord(t, 1.0) == text(t, 1.0)


def test_hover_canvases_read_out_the_pointer():
    pytest.importorskip("ipympl")
    app = explore(hover=True)
    canvas = app.figures[1]
    assert "so-figure" in canvas._dom_classes
    ax = canvas.figure.axes[0]
    ds = app.results[1]
    t = float(ds.time[30]) / 1000
    x, _ = ax.transData.transform((t, 1.0))
    _, top = canvas.figure.bbox.size
    canvas.handle_event({"type": "motion_notify", "x": x, "y": top / 3, "button": 0,
                         "buttons": 0, "modifiers": [], "guiEvent": None})
    assert canvas._message == tk.plot.readout(ds)(t, 0.0)
    app.controls["dirty_rate"].value = 100          # redrawn on the same canvas
    assert canvas.figure.axes[0].get_title().startswith("avail-switchover-bandwidth 0.5x")
    assert app.results[1].attrs["dirty_rate"] == 100 * MIB


def test_hover_without_ipympl_says_what_to_install(monkeypatch):
    import sys
    monkeypatch.setitem(sys.modules, "ipympl", None)
    monkeypatch.setitem(sys.modules, "ipympl.backend_nbagg", None)
    with pytest.raises(ValueError, match="pip install ipympl"):
        explore(hover=True)


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
    c["link_bandwidth"].value = 1.25e9
    assert [label for label, _ in c["link_bandwidth"].options] == ["1 Gbit/s", "10 Gbit/s"]
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
