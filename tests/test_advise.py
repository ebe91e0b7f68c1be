"""toolkit.advise: the bisection's edges re-simulated, the three-way verdict, layers,
measurements in, bad input; and rescue's class for runs whose first pass did not end."""
import json
import math
import sys
from pathlib import Path

import matplotlib
import pytest

import toolkit as tk
from toolkit._advise import LAYERS, Run, _monotonic
from toolkit._rescue import CLASSES
from toolkit.verdict import Verdict, describe, verdict

matplotlib.use("Agg")

# QEMU's 128 MiB/s on a 10 Gbit/s link, a guest re-writing 128 MiB at 1 GiB/s: the
# estimate never lets it converge; a band of avail values does, within 300 ms
RESCUABLE = dict(ram_size="512MiB", workload="sequential", write_range="128MiB",
                 dirty_rate="1GiB/s", link_bandwidth="10Gbit/s", downtime_limit=300)
# the rate limit below the dirty rate: no avail helps
HOPELESS = dict(ram_size="512MiB", dirty_rate="400MiB/s", link_bandwidth="10Gbit/s",
                downtime_limit=300)


@pytest.fixture(scope="module")
def rescuable():
    return tk.advise(**RESCUABLE)


@pytest.fixture(scope="module")
def hopeless():
    return tk.advise(**HOPELESS, seeds=2, headroom_steps=2)


def _again(advice, params, avail):
    """The advice's scenario re-simulated at ``avail`` [B/s], outside advise."""
    ds = tk.simulate(**params, max_time=advice.inputs["max_time_s"],
                     avail_switchover_bandwidth=int(avail))
    return verdict(ds), ds


def test_bisection_edges_are_right_when_re_simulated(rescuable):
    lo, hi = rescuable.smallest_converging, rescuable.largest_safe
    assert lo.bound is None and hi.bound is None and rescuable.safe and rescuable.monotonic
    # the two ends of each bracket within 1 %
    assert lo.avail / 1.0101 <= lo.neighbour < lo.avail
    assert hi.avail < hi.neighbour <= hi.avail * 1.0101
    # just below the smallest value the run does not converge; at it, it does
    assert _again(rescuable, RESCUABLE, lo.neighbour)[0] is Verdict.NOT_CONVERGING
    v, ds = _again(rescuable, RESCUABLE, lo.avail)
    assert v is Verdict.CONVERGES
    assert lo.run.total_time_s == pytest.approx(ds.total_time.item() / 1000)
    assert lo.run.downtime_ms == pytest.approx(ds.downtime.item())
    assert lo.run.transferred_bytes == int(ds.transferred)
    # at the largest the downtime is within the limit; just above it overshoots
    assert _again(rescuable, RESCUABLE, hi.avail)[0] is Verdict.CONVERGES
    assert _again(rescuable, RESCUABLE, hi.neighbour)[0] is Verdict.OVERSHOOTS
    # QEMU's own estimate: never converges (it iterates: passes done, never under)
    assert rescuable.estimate.verdict is Verdict.NOT_CONVERGING
    assert lo.avail < rescuable.recommended < hi.avail


def test_to_dict_has_stable_keys_with_units_and_is_json(rescuable):
    d = rescuable.to_dict()
    json.dumps(d)
    assert set(d) == {"inputs", "estimate", "estimate_bandwidth_bytes_per_s",
                      "smallest_converging_avail", "largest_safe_avail", "safe",
                      "safe_band_bytes_per_s", "recommended_avail_bytes_per_s", "monotonic",
                      "bands", "layer_ramp", "alternatives", "notes"}
    edge = d["largest_safe_avail"]
    assert {"avail_bytes_per_s", "neighbour_bytes_per_s", "downtime_ms", "total_time_s",
            "transferred_bytes", "verdict"} <= set(edge)
    assert d["estimate"]["verdict"] == "not_converging" and d["estimate"]["downtime_ms"] is None
    band = d["bands"][1]
    assert band["label"] == "recommended avail" and band["runs"] == 9
    assert 0 <= band["share_within_limit"] <= band["share_converging"] <= 1
    assert band["downtime_ms"][0] <= band["downtime_ms"][1]
    assert d["inputs"]["headroom"] == [1.0, 2.0, 3.0]


def test_bands_span_seeds_and_headroom(rescuable):
    # at 3x the dirty rate the smallest safe value no longer converges: the band says so
    band = rescuable.bands[1]
    runs = band.runs
    assert runs.shape == (3, 3)
    again = tk.simulate(**{**RESCUABLE, "dirty_rate": 3 * 2**30}, seed=2,
                        max_time=rescuable.inputs["max_time_s"],
                        avail_switchover_bandwidth=int(band.avail))
    assert runs[2, 2].converged == bool(again.converged)
    assert runs[2, 2].total_time_s == pytest.approx(again.total_time.item() / 1000)


def test_text_table_and_dataset_and_figure(rescuable, tmp_path):
    text = str(rescuable)
    assert "QEMU's estimate (avail 0): never converges" in text
    # the setting as the operator's layer takes it: QEMU's own here
    assert "safe avail-switchover-bandwidth:" in text and \
        f"QMP migrate-set-parameters avail-switchover-bandwidth={int(rescuable.recommended)}" \
        in text
    ds = rescuable.to_dataset()
    assert ds.downtime.attrs["units"] == "ms" and \
        ds.avail_switchover_bandwidth.attrs["units"] == "B s-1"
    assert ds.attrs["largest_safe_avail"] == rescuable.largest_safe.avail
    assert ds.sizes["headroom"] == 3 and ds.sizes["seed"] == 3
    path = tk.save(ds, tmp_path / "advice.nc")
    assert tk.open_dataset(path).band.values.tolist() == [b.label for b in rescuable.bands]
    fig = rescuable.plot()
    ax = fig.axes[0]
    assert ax.get_xlabel() == "avail-switchover-bandwidth [Gbit/s]"
    assert ax.get_ylabel() == "real downtime [ms]"
    labels = [t.get_label() for t in ax.get_legend().texts] + \
        [t.get_text() for t in ax.get_legend().texts]
    assert any("downtime-limit 300 ms" in x for x in labels)
    assert any("QEMU's estimate" in x for x in labels)
    assert any("safe avail" in x for x in labels)
    # the shaded band spans the safe values, in the axis unit (Gbit/s)
    lo, hi = rescuable.safe_band
    span = ax.patches[0].get_x(), ax.patches[0].get_x() + ax.patches[0].get_width()
    assert span == pytest.approx((lo * 8 / 1e9, hi * 8 / 1e9))
    # the estimate's marker sits at QEMU's estimated bandwidth, ~ the 128 MiB/s limit
    assert rescuable.estimate_bandwidth == pytest.approx(128 * 2**20, rel=0.05)


def test_no_safe_avail_gives_alternatives_simulated_and_ranked(hopeless):
    assert not hopeless.safe and hopeless.alternatives
    names = [a.name for a in hopeless.alternatives]
    # QEMU's 128 MiB/s is below the link: lifting it is one of them
    assert {"downtime-limit needed", "auto-converge", "dirty-limit", "postcopy",
            "max-bandwidth unlimited", "multifd, 8 channels",
            "multifd, 8 channels + zstd"} == set(names)
    key = [(a.run.verdict is not Verdict.CONVERGES, a.run.downtime_ms if a.run.converged
            else math.inf, a.run.total_time_s) for a in hopeless.alternatives]
    assert key == sorted(key)
    # those that overshoot or never switch over are said not to help, after the others
    helps = [a.helps for a in hopeless.alternatives]
    assert helps == sorted(helps, reverse=True) and True in helps and False in helps
    assert all(a.helps == (a.run.verdict is Verdict.CONVERGES) for a in hopeless.alternatives)
    text = str(hopeless)
    assert "do not help (no switchover, or a downtime over 300 ms):" in text
    tail = text.split("do not help")[1]
    assert all(a.name in tail for a in hopeless.alternatives if not a.helps)
    assert [a["helps"] for a in hopeless.to_dict()["alternatives"]] == helps
    # each is a real run: re-simulate auto-converge
    auto = next(a for a in hopeless.alternatives if a.name == "auto-converge")
    ds = tk.simulate(**HOPELESS, max_time=hopeless.inputs["max_time_s"], auto_converge=True)
    assert auto.run.total_time_s == pytest.approx(ds.total_time.item() / 1000)
    assert f"throttle reached {int(ds.cpu_throttle_percentage)}%" in auto.setting
    # the downtime-limit needed: the estimate converges there, 1 % lower it does not
    need = next(a for a in hopeless.alternatives if a.name == "downtime-limit needed")
    limit = int(need.setting.split("=")[1].split()[0])
    at = tk.simulate(**{**HOPELESS, "downtime_limit": limit},
                     max_time=hopeless.inputs["max_time_s"])
    below = tk.simulate(**{**HOPELESS, "downtime_limit": int(limit / 1.0101)},
                        max_time=hopeless.inputs["max_time_s"])
    assert bool(at.converged) and not bool(below.converged)
    assert "alternatives, ranked by downtime then total time:" in str(hopeless)


# a migration thread CPU-bound at 8 us a page (~500 MB/s) on a 10 Gbit/s link, a guest
# rewriting 1 GiB at 900 MB/s: no avail is safe; 8 channels of 8 us a page fill the link
CPU_BOUND = dict(ram_size="2GiB", workload="sequential", write_range="1GiB",
                 dirty_rate="900MB/s", link_bandwidth="10Gbit/s", downtime_limit=300,
                 page_send_time="8us", multifd_page_time="8us")


@pytest.mark.parametrize("layer, how", [
    ("libvirt", "virsh migrate --parallel --parallel-connections 8"),
    ("nova", "Nova live_migration_parallel_connections=8")])
def test_eight_multifd_channels_converge_without_avail_at_their_cpu_cost(layer, how):
    advice = tk.advise(**CPU_BOUND, layer=layer, seeds=1, headroom=1)
    assert not advice.safe
    multifd = next(a for a in advice.alternatives if a.name == "multifd, 8 channels")
    assert multifd.helps
    # the run re-simulated: its CPU share is the channels' CPU time over the total
    ds = tk.simulate(**CPU_BOUND, **LAYERS[layer]["settings"], multifd=True,
                     multifd_channels=8, max_time=advice.inputs["max_time_s"])
    share = float(ds.multifd_cpu_time) / float(ds.total_time)
    assert multifd.run.total_time_s == pytest.approx(float(ds.total_time) / 1000)
    assert multifd.run.multifd_cpu_share == pytest.approx(share) and share > 1
    assert f"({share:.0%} CPU)" in multifd.setting
    note = next(n for n in advice.notes if n.startswith("multifd, 8 channels:"))
    assert f"taking {share:.1f} cores" in note and note.endswith(how)
    assert multifd.to_dict()["multifd_cpu_share"] == pytest.approx(share)


def test_three_way_verdict_on_constructed_cases():
    # cut off in its first pass: 2 GiB at 16 MiB/s needs 128 s; 120 s is not enough
    cut = tk.simulate(ram_size="2GiB", dirty_rate="10MiB/s", max_bandwidth="16MiB/s",
                      max_time=120)
    assert verdict(cut) is Verdict.NOT_FINISHED
    assert describe(cut).startswith("first pass not finished: 95% of RAM sent after 120 s")
    # it iterates: passes done, pending never under the threshold
    iterates = tk.simulate(ram_size="256MiB", dirty_rate="200MiB/s",
                           max_bandwidth="64MiB/s", max_time=30)
    assert verdict(iterates) is Verdict.NOT_CONVERGING and int(iterates.passes) > 1
    # and one that converges / overshoots
    assert verdict(tk.simulate(ram_size="256MiB", dirty_rate="1MiB/s")) is Verdict.CONVERGES
    over = tk.simulate(**RESCUABLE, avail_switchover_bandwidth="4x link")
    assert verdict(over) is Verdict.OVERSHOOTS
    # advise with that max_time says "not finished", not "never converges"; by default
    # it gives the first pass room enough
    short = tk.advise(ram_size="2GiB", dirty_rate="10MiB/s", max_bandwidth="16MiB/s",
                      max_time=120, seeds=1, headroom=1, alternatives=False)
    assert short.estimate.verdict is Verdict.NOT_FINISHED
    assert short.estimate.first_pass_share == pytest.approx(0.95, abs=0.01)
    assert "first pass not finished" in str(short)


def test_layers_set_their_defaults_and_explicit_arguments_win():
    small = dict(ram_size="64MiB", dirty_rate="10MiB/s", link_bandwidth="1Gbit/s",
                 seeds=1, headroom=1, alternatives=False)
    assert set(LAYERS) == {"qemu", "libvirt", "proxmox", "nova", "kubevirt", "ovirt"}
    qemu = tk.advise(**small)
    assert qemu.inputs["max_bandwidth_bytes_per_s"] == 128 * 2**20 and qemu.layer_ramp is None
    assert tk.advise(**small, layer="libvirt").inputs["max_bandwidth_bytes_per_s"] == 0
    pve = tk.advise(**small, layer="proxmox")
    assert pve.inputs["max_bandwidth_bytes_per_s"] == 16 * 2**30
    assert pve.layer_ramp.setting == "proxmox" and any("xbzrle" in n for n in pve.notes)
    assert tk.advise(**small, layer="ovirt").inputs["max_bandwidth_bytes_per_s"] == 125_000_000
    kv = tk.advise(**small, layer="kubevirt")
    assert "stall_detection=true" in kv.layer_ramp.setting
    assert tk.advise(**small, layer="proxmox", max_bandwidth="1GiB/s").inputs[
        "max_bandwidth_bytes_per_s"] == 2**30


def test_the_layers_monitor_is_reported_when_it_aborts():
    # 500 MiB/s over 2 GiB on 1 Gbit/s: KubeVirt's stall detector gives up at the first
    # iteration boundary more than 40 s after the end of the first pass (~17 s): ~67 s
    kv = tk.advise(ram_size="2GiB", dirty_rate="500MiB/s", link_bandwidth="1Gbit/s",
                   layer="kubevirt", seeds=1, headroom=1, alternatives=False, max_time=120)
    assert kv.layer_ramp.run.aborted and not kv.layer_ramp.run.converged
    assert any("kubevirt's monitor aborted the migration after 6" in n for n in kv.notes)
    assert "aborted by the layer" in str(kv)
    assert kv.to_dict()["layer_ramp"]["aborted"] is True


class FakeMeasurement:
    """A stand-in for toolkit.measure's Measurement: to_parameters() and dirty_rate."""

    dirty_rate = 300 * 2**20

    def to_parameters(self):
        return {"dirty_rate": self.dirty_rate, "workload": "hotcold", "hot_fraction": 0.2}


def test_a_measurement_gives_the_guest_and_explicit_arguments_win():
    common = dict(ram_size="64MiB", link_bandwidth="1Gbit/s", seeds=1, headroom=1,
                  alternatives=False)
    a = tk.advise(**common, measurement=FakeMeasurement())
    b = tk.advise(**common, dirty_rate=FakeMeasurement())
    c = tk.advise(**common, dirty_rate="300MiB/s", workload="hotcold", hot_fraction=0.2)
    assert a.inputs == b.inputs == c.inputs
    assert a.inputs["workload"] == "hotcold"
    assert a.estimate == c.estimate
    d = tk.advise(**common, measurement=FakeMeasurement(), dirty_rate="10MiB/s")
    assert d.inputs["dirty_rate_bytes_per_s"] == 10 * 2**20
    with pytest.raises(TypeError, match="measurement: expected an object with to_parameters"):
        tk.advise(**common, measurement={"dirty_rate": 1})


@pytest.mark.parametrize("kwargs, error, match", [
    (dict(layer="vmware"), ValueError, r"layer='vmware' is not a known management layer: "
                                       r"expected one of qemu, libvirt, proxmox"),
    (dict(headroom=(3, 1)), ValueError, r"headroom=\(3, 1\) is out of range"),
    (dict(headroom="2x"), TypeError, "headroom: expected"),
    (dict(seeds=0), ValueError, r"seeds=0 is out of range: expected a count in \[1, 100\]"),
    (dict(dirty_rat="1GiB/s"), TypeError, "did you mean 'dirty_rate'"),
    (dict(avail_switchover_bandwidth="link"), TypeError, "advise chooses it"),
    (dict(downtime_limit=-1), ValueError, r"downtime_limit=-1"),
    (dict(dirty_rate="0.5TiB/s"), ValueError, r"headroom x3: dirty_rate"),
])
def test_bad_input_is_refused_before_any_work(kwargs, error, match):
    with pytest.raises(error, match=match):
        tk.advise(**{"ram_size": "64MiB", **kwargs})


def _run(converged, within):
    v = Verdict.CONVERGES if within else Verdict.OVERSHOOTS if converged else \
        Verdict.NOT_CONVERGING
    return Run(v, converged, 1.0 if converged else float("nan"), 1.0, 1, 1, 0, 1.0, False)


def test_the_monotonic_assumption_is_checked():
    ok = [(1, _run(False, False)), (2, _run(True, True)), (4, _run(True, False))]
    assert _monotonic(ok) == (True, [])
    # converging again lost at 8; within the limit again at 16 after overshooting at 4
    bad = ok + [(8, _run(False, False)), (16, _run(True, True))]
    assert _monotonic(bad) == (False, [8, 16])


# --- rescue: runs whose first pass did not finish are their own class ---

def test_rescue_gives_unfinished_first_passes_their_own_class():
    grid = tk.sweep(ram_size="1GiB", dirty_rate="1MiB/s", max_bandwidth=["8MiB/s", 0],
                    link_bandwidth="1Gbit/s", max_time=20,
                    avail_switchover_bandwidth=["estimate", "link"])
    res = tk.rescue(grid)
    code = res.rescue_class
    # at 8 MiB/s the first pass (128 s) was cut at 20 s: not "lost"
    slow = code.sel(max_bandwidth=8 * 2**20)
    assert (slow == CLASSES.index("not_finished")).all()
    assert (grid.passes.sel(max_bandwidth=8 * 2**20) == 0).all()
    assert "not_finished" in res.rescue_class.attrs["flag_meanings"]
    counts = tk.class_counts(res)
    assert counts["not_finished"] == 2 and counts["lost"] == 0
    by = tk.class_counts_by_setting(res)
    assert set(by) == {"estimate", "link"}
    # the baseline has no "rescued" (nor "broken"): it is what the others are compared to
    assert "rescued" not in by["estimate"] and "broken" not in by["estimate"]
    assert by["estimate"]["not_finished"] == 1 and by["link"]["not_finished"] == 1
    assert sum(by["link"].values()) == sum(by["estimate"].values()) == 2
    assert by["link"]["converges_anyway"] == 1


def test_rescue_plot_colours_the_new_class():
    from toolkit.plot import class_colour, class_hatch
    assert "not_finished" in CLASSES
    assert len({class_colour(c) for c in CLASSES}) == len(CLASSES)
    assert class_hatch("not_finished") not in {class_hatch(c) for c in CLASSES
                                               if c != "not_finished"}


def test_a_recorded_calc_dirty_rate_goes_in_through_load_and_the_cli(capsys):
    from toolkit import measure
    from toolkit.cli import main

    sample = Path(tk.__file__).parent / "measurements" / "qemu-10.0-tcg" / "page-sampling.json"
    m = measure.load(sample)
    common = dict(ram_size="64MiB", link_bandwidth="1Gbit/s", seeds=1, headroom=1,
                  alternatives=False)
    a = tk.advise(**common, measurement=m)
    assert a.inputs["dirty_rate_bytes_per_s"] == pytest.approx(m.dirty_rate)
    assert main(["advise", "--from", str(sample), "--ram-size", "64MiB", "--link-bandwidth",
                 "1Gbit/s", "--seeds", "1", "--headroom", "1", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["inputs"]["dirty_rate_bytes_per_s"] == pytest.approx(m.dirty_rate)
    assert main(["advise", "--from", str(sample.with_name("measuring.json")),
                 "--ram-size", "64MiB"]) == 2
    assert "measuring.json" in capsys.readouterr().err


# --- the search machinery (one pool, each scenario once, work alongside, halving) ---

# the answers of the sequential implementation before it (commit 0b744ac, a 3-way split
# on two cores): edges (avail, neighbour) [B/s] and verdicts, the recommended avail, the
# estimate's verdict and bytes sent, the bands' shares and the alternatives' verdicts
BEFORE = {
    "rescuable": dict(smallest=(403963952, 401665933, "converges"),
                      largest=(1242889159, 1250000000, "converges"), recommended=708577742,
                      estimate=("not_converging", 4058040600),
                      bands=[(0.0, 0.0), (1.0, 1.0), (1.0, 1.0)], alternatives={}),
    "hopeless": dict(smallest=(1235818769, 1228788600, "overshoots"), largest=None,
                     recommended=None, estimate=("not_converging", 4058040600),
                     bands=[(0.0, 0.0)],
                     alternatives={"postcopy": "converges", "dirty-limit": "converges",
                                   "downtime-limit needed": "overshoots",
                                   "auto-converge": "not_converging"}),
}
BEFORE_DOWNTIME_LIMIT_NEEDED = {"hopeless": 2748}     # [ms]


@pytest.mark.parametrize("name", ["rescuable", "hopeless"])
def test_the_answers_are_those_of_the_sequential_search_to_1_percent(name, rescuable,
                                                                     hopeless):
    advice = {"rescuable": rescuable, "hopeless": hopeless}[name]
    before = BEFORE[name]
    for key, edge in (("smallest", advice.smallest_converging),
                      ("largest", advice.largest_safe)):
        if before[key] is None:
            assert edge is None
            continue
        avail, neighbour, verdict_name = before[key]
        # the same verdict, the edge within the bisection's 1 % of the one found before
        assert edge.run.verdict.name.lower() == verdict_name
        assert edge.avail == pytest.approx(avail, rel=0.01)
        assert edge.neighbour == pytest.approx(neighbour, rel=0.01)
    if before["recommended"] is None:
        assert advice.recommended is None
    else:
        assert advice.recommended == pytest.approx(before["recommended"], rel=0.01)
    assert (advice.estimate.verdict.name.lower(), advice.estimate.transferred_bytes) == \
        before["estimate"]
    assert [(d["share_converging"], d["share_within_limit"])
            for d in (b.to_dict() for b in advice.bands)] == before["bands"]
    alternatives = {a.name: a for a in advice.alternatives}
    assert {k: alternatives[k].run.verdict.name.lower() for k in before["alternatives"]} == \
        before["alternatives"]
    if name in BEFORE_DOWNTIME_LIMIT_NEEDED:
        need = alternatives["downtime-limit needed"].setting
        assert int(need.split("=")[1].split()[0]) == \
            pytest.approx(BEFORE_DOWNTIME_LIMIT_NEEDED[name], rel=0.01)


def test_the_answer_does_not_depend_on_the_workers_or_the_timing(hopeless):
    # one worker runs everything in another order (the alternatives started on
    # speculation after the scan included): the same answer, the same count of runs
    one = tk.advise(**HOPELESS, seeds=2, headroom_steps=2, workers=1)
    assert one.to_dict() == hopeless.to_dict()


def test_dropped_speculative_work_is_cancelled_and_not_counted():
    import threading

    from toolkit._advise import FILL, URGENT, _Group, _Searcher

    base = tk.Scenario(ram_size="64MiB", dirty_rate="10MiB/s", max_time=5)
    with _Searcher(base, 1) as search:
        hold = threading.Event()
        held = search._pool.submit(URGENT, None, hold.wait)     # the one worker, busy
        group = _Group()
        search.working_as(FILL, group)
        speculative = [search.submit(seed=k) for k in (1, 2, 3)]
        search.working_as(URGENT)
        wanted = search.submit(seed=2)      # wanted beyond the group: kept
        assert wanted is speculative[1]
        search.cancel(group)
        hold.set()
        assert held.result() is True
        assert speculative[0].cancelled() and speculative[2].cancelled()
        assert wanted.result()[0].converged
        # the group submits no more; a later ask for a dropped scenario runs it
        search.working_as(FILL, group)
        assert search.submit(seed=4).cancelled()
        search.working_as(URGENT)
        again = search.submit(seed=1)
        assert again is not speculative[0] and again.result()[0].converged
        assert search.simulated == 2


def test_what_does_not_help_is_said_so():
    # 2 GiB at 400 MiB/s under QEMU's 128 MiB/s: QEMU's estimate needs a downtime-limit
    # over 10 s, and only an avail above the link converges; lifting max-bandwidth helps
    a = tk.advise(ram_size="2GiB", dirty_rate="400MiB/s", link_bandwidth="25Gbit/s",
                  seeds=1, headroom=1)
    need = next(x for x in a.alternatives if x.name == "downtime-limit needed")
    assert int(need.setting.split("=")[1].split()[0]) > 10_000 and not need.helps
    assert any("beyond any sane setting (over 10 s): the guest cannot be migrated within a "
               "sane downtime-limit" in n for n in a.notes)
    assert a.smallest_converging.avail > a.inputs["link_bandwidth_bytes_per_s"]
    assert any("is above the link's 25 Gbit/s" in n and n.endswith("it does not help")
               for n in a.notes)
    lift = next(x for x in a.alternatives if x.name == "max-bandwidth unlimited")
    assert lift.helps and lift.setting.startswith("max_bandwidth=0")


@pytest.mark.parametrize("layer, words", [
    ("qemu", "QMP migrate-set-parameters avail-switchover-bandwidth=1000"),
    ("proxmox", "Proxmox has no option for it: QMP migrate-set-parameters"),
    ("libvirt", "libvirt bandwidth.avail.switchover = 0 MiB/s, libvirt 11.1+"),
    ("kubevirt", "MiB/s, libvirt 11.1+; kubevirt does not set it"),
])
def test_the_recommended_avail_is_given_as_the_layer_sets_it(layer, words):
    from toolkit._advise import _how_to_set
    assert words in _how_to_set(layer, 1000)
    assert _how_to_set("libvirt", 300 * 2**20) == \
        "libvirt bandwidth.avail.switchover = 300 MiB/s, libvirt 11.1+"


def test_a_measurement_without_a_dirty_rate_is_refused_and_its_notes_are_kept(capsys):
    from toolkit import measure
    from toolkit.cli import main

    done = measure.load(measure.SAMPLES / "domjobinfo-completed.txt")
    assert "dirty_rate" not in done.to_parameters()
    with pytest.raises(ValueError, match="dirty_rate: the measurement .*domjobinfo-completed"
                                         ".txt gives none"):
        tk.advise(measurement=done, seeds=1, headroom=1)
    assert main(["advise", "--from", str(done.source)]) == 2
    assert "--dirty-rate: dirty_rate: the measurement" in capsys.readouterr().err
    # with the rate given, it goes; a reading's caveats reach the advice
    bitmap = measure.load(measure.SAMPLES / "qemu-10.0-tcg" / "dirty-bitmap.json")
    a = tk.advise(measurement=bitmap, ram_size="64MiB", link_bandwidth="1Gbit/s", seeds=1,
                  headroom=1, alternatives=False)
    assert any(n.startswith("measurement: dirty-bitmap counts pages only through KVM")
               for n in a.notes)
    assert tk.advise(measurement=done, dirty_rate="10MiB/s", seeds=1, headroom=1,
                     alternatives=False).inputs["ram_size_bytes"] == done.to_parameters()[
                         "ram_size"]


def test_ctrl_c_stops_advise_and_the_cli_says_so(monkeypatch, capsys):
    import toolkit.cli as cli

    def interrupted(**kwargs):
        raise KeyboardInterrupt
    monkeypatch.setattr(sys.modules["toolkit._advise"], "advise", interrupted)
    assert cli.main(["advise", "--ram-size", "64MiB"]) == 130
    assert "interrupted; advise keeps no partial answer" in capsys.readouterr().err
