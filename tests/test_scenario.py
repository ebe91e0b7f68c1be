"""Bad input gets a clear error naming the parameter, the value and the range."""
import math

import numpy as np
import pytest

import toolkit as tk
from toolkit import PARAMETERS, Scenario


@pytest.mark.parametrize("name, value, words", [
    ("downtime_limit", 2_000_001, ["downtime_limit", "2000001", "0", "2000000", "downtime-limit"]),
    ("downtime_limit", -1, ["downtime_limit", "-1", "2000000"]),
    ("downtime_limit", 10.5, ["downtime_limit", "10.5", "integer"]),
    ("downtime_limit", "3000s", ["downtime_limit", "3000s", "2000000"]),
    ("max_bandwidth", -5, ["max_bandwidth", "-5", "18446744073709551615", "max-bandwidth"]),
    ("max_bandwidth", 2**64, ["max_bandwidth", "18446744073709551616"]),
    ("avail_switchover_bandwidth", "-1Gbit/s", ["avail_switchover_bandwidth", "-1Gbit/s"]),
    ("dirty_rate", float("nan"), ["dirty_rate", "nan"]),
    ("dirty_rate", math.inf, ["dirty_rate", "inf"]),
    ("ram_size", "1KiB", ["ram_size", "1KiB", "4096"]),
    ("link_bandwidth", 0, ["link_bandwidth", "0"]),
    ("zero_fraction", 1.5, ["zero_fraction", "1.5", "[0, 1]"]),
    ("hot_fraction", 0, ["hot_fraction", "(0, 1]"]),
    ("max_time", 0, ["max_time", "(0"]),
    ("workload", "pareto", ["workload", "pareto", "uniform", "hotcold", "sequential", "zipf"]),
    ("dirty_rate", "300 furlongs/s", ["dirty_rate", "furlongs"]),
    ("dirty_rate", "4GiB", ["dirty_rate", "/s"]),
    ("ram_size", "10MB/s", ["ram_size"]),
    ("page_send_time", "fast", ["page_send_time", "fast"]),
])
def test_value_errors_name_parameter_value_and_range(name, value, words):
    with pytest.raises(ValueError) as err:
        Scenario(**{name: value})
    for word in words:
        assert word in str(err.value), (word, str(err.value))


@pytest.mark.parametrize("name, value", [
    ("ram_size", [4096]), ("dirty_rate", None.__class__), ("downtime_limit", True),
    ("workload", 3), ("check", "yes"), ("seed", 1.5j), ("hot_share", "0.5"),
])
def test_type_errors_name_the_parameter(name, value):
    with pytest.raises(TypeError, match=name):
        Scenario(**{name: value})


def test_unknown_parameter_suggests_the_right_name():
    with pytest.raises(TypeError, match="did you mean 'downtime_limit'"):
        tk.simulate(downtime_limt=300)


def test_cross_parameter_checks():
    with pytest.raises(ValueError, match="write_range"):
        Scenario(ram_size="64MiB", workload="sequential", write_range="100MiB")
    with pytest.raises(ValueError, match="hot_fraction"):
        Scenario(ram_size="64KiB", workload="hotcold", hot_fraction=1.0)


def test_errors_come_before_any_work(monkeypatch):
    import sys
    sim = sys.modules["toolkit._simulate"]

    def boom(*args):
        raise AssertionError("kernel ran")
    monkeypatch.setattr(sim, "migration_thread_setup", boom)
    with pytest.raises(ValueError):
        tk.simulate(downtime_limit=-3)


def test_units_are_read_into_base_units():
    sc = Scenario(ram_size="4GiB", dirty_rate="300MiB/s", link_bandwidth="10Gbit/s",
                  max_bandwidth="1.25GB/s", downtime_limit="0.5s", page_send_time="2us",
                  max_time="5min", seed=np.int64(3))
    assert sc.ram_size == 4 * 2**30 and sc.dirty_rate == 300 * 2**20
    assert sc.link_bandwidth == 1.25e9 and sc.max_bandwidth == 1_250_000_000
    assert sc.downtime_limit == 500 and sc.page_send_time == 2000 and sc.max_time == 300
    assert sc.seed == 3 and isinstance(sc.downtime_limit, int)


def test_defaults_are_qemus():
    sc = Scenario()
    assert sc.max_bandwidth == 128 * 2**20         # MAX_THROTTLE
    assert sc.downtime_limit == 300                # DEFAULT_MIGRATE_SET_DOWNTIME
    assert sc.avail_switchover_bandwidth == 0
    assert {p.name for p in PARAMETERS} == set(sc.to_dict())


def test_ram_size_is_rounded_down_to_pages():
    assert Scenario(ram_size="4GB").ram_size == 4_000_000_000 // 4096 * 4096


def test_scenario_is_immutable_and_replace_validates():
    sc = Scenario()
    with pytest.raises(AttributeError):
        sc.downtime_limit = 5
    assert sc.replace(downtime_limit=50).downtime_limit == 50
    with pytest.raises(ValueError, match="downtime_limit"):
        sc.replace(downtime_limit=-50)


# --- issue 12: one object per kind; the coupling declared once, in the table -----------------

from toolkit.scenario import COUPLED, KINDS, PARAMETER_INDEX, validate_parameter  # noqa: E402


def test_every_parameter_names_a_kind_and_its_field_hint_is_the_kinds():
    import dataclasses
    hints = {f.name: f.type for f in dataclasses.fields(Scenario)}
    assert list(hints) == [p.name for p in PARAMETERS]
    for spec in PARAMETERS:
        assert spec.rules is KINDS[spec.kind]
        assert hints[spec.name] == spec.annotation, spec.name
    assert hints["ram_size"] == "int | str | None" and hints["hot_share"] == "float | None"
    assert PARAMETER_INDEX["avail_switchover_bandwidth"].kind == "avail"
    with pytest.raises(ValueError, match="kind 'speed' is not one of"):
        tk.scenario.Param("x", "speed", 0, "1")
    with pytest.raises(ValueError, match="resolved_against goes with a relative kind"):
        tk.scenario.Param("x", "rate", 0, "B s-1", 0, 1, resolved_against="link_bandwidth")


def test_the_coupling_is_declared_in_the_table_and_derived():
    sources = {p.resolved_against for p in PARAMETERS if p.resolved_against}
    assert set(COUPLED) == {"host", "link_bandwidth", "avail_switchover_bandwidth"}
    names = [p.name for p in PARAMETERS]
    for spec in PARAMETERS:
        if spec.resolved_against:       # Scenario reads the source first
            assert names.index(spec.resolved_against) < names.index(spec.name)
            assert spec.rules.relative and spec.name in COUPLED
    assert sources <= set(COUPLED)
    supplied = PARAMETER_INDEX["host"].supplies_defaults
    for name in tk.hosts.NAMES:
        if name != "none":
            assert set(tk.hosts.get(name).values) <= set(supplied), name
    # a sweep makes each point from its values of exactly these
    from toolkit import _sweep
    assert _sweep.COUPLED is COUPLED


def test_avail_is_a_rate_the_estimate_or_a_multiple_of_the_link():
    avail = PARAMETER_INDEX["avail_switchover_bandwidth"]
    assert validate_parameter(avail.name, "estimate") == 0 == avail.resolve("estimate", 1e9)
    assert avail.resolve("0.5x link", 1.25e9) == 625_000_000
    assert avail.resolve("link", 1.25e9) == 1_250_000_000 and avail.resolve(5, 1.0) == 5
    assert avail.quantity == "rate" and avail.units == "B s-1"
    with pytest.raises(ValueError, match=r"'2x link' is relative to link_bandwidth"):
        validate_parameter(avail.name, "2x link")
    with pytest.raises(ValueError, match=r"'twice link': expected a rate such as '10Gbit/s', "
                                         r"or 'estimate', 'link', 'Nx link'"):
        Scenario(avail_switchover_bandwidth="twice link")
    # beyond QEMU's 2^64 - 1 B/s, even infinite: an error naming the setting, not a traceback
    for huge in ("1e400x link", "1e30x link"):
        with pytest.raises(ValueError, match=rf"avail_switchover_bandwidth='{huge}' is out of "
                                             r"range at link_bandwidth=1250000000.0"):
            Scenario(avail_switchover_bandwidth=huge)
    assert Scenario(link_bandwidth="1Gbit/s", avail_switchover_bandwidth="2x link") \
        .avail_switchover_bandwidth == 250_000_000


@pytest.mark.parametrize("name", ["max_bandwidth", "avail_switchover_bandwidth", "seed",
                                  "downtime_limit", "ram_size"])
def test_a_flag_is_not_a_number(name):
    for flag in (True, False, np.bool_(True)):
        with pytest.raises(TypeError, match=rf"{name}: expected a number"):
            validate_parameter(name, flag)


def test_canonical_values_are_the_kinds():
    assert validate_parameter("ram_size", 4096 + 5) == 4096           # whole pages
    assert validate_parameter("zipf_exponent", 1.2345678) == 1.234568
    assert validate_parameter("workload", np.str_("zipf")) == "zipf"
    assert type(validate_parameter("workload", np.str_("zipf"))) is str
    seed = validate_parameter("seed", np.uint64(2**64 - 1))          # exact, not via a float
    assert seed == 2**64 - 1 and type(seed) is int
    assert type(validate_parameter("hot_share", 1)) is float
    assert validate_parameter("max_bandwidth", 2**64 - 1) == 2**64 - 1
    assert validate_parameter("policy", "nova") == "nova"
