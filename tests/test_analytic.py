"""The geometric-series model: its closed form, and the simulator where they should agree."""
import math

import pytest

import toolkit as tk
from toolkit.analytic import geometric_on, geometric_precopy, rounds_needed

NO_COSTS = dict(page_send_time=0, zero_page_scan_time=0, sync_time_fixed=0, sync_time_per_gib=0,
                sync_time_per_dirty_page=0, setup_overhead=0, vm_stop_time=0,
                device_state_size=0)


@pytest.mark.parametrize("rate", [0, 1e7, 3e8, 9e8, 1.2e9, 2e9])
def test_iteration_matches_the_closed_form(rate):
    g = geometric_precopy(4 * 2**30, rate, 1.25e9, 300)
    assert g["rounds"] == rounds_needed(4 * 2**30, rate, 1.25e9, 300) or \
        (not g["converges"] and rounds_needed(4 * 2**30, rate, 1.25e9, 300) == math.inf)
    if rate == 0:
        assert g["total_time"] == pytest.approx(4 * 2**30 / 1.25e9 * 1000)


@pytest.mark.parametrize("rate", ["100MiB/s", "400MiB/s", "800MiB/s", "1GiB/s"])
def test_simulator_total_time_agrees_where_the_model_holds(rate):
    # a cursor sweeping all of RAM dirties only new pages, hosts cost nothing and
    # the estimate is the link: the model's assumptions
    ds = tk.simulate(ram_size="4GiB", workload="sequential", write_range="4GiB",
                     write_range_start=0, dirty_rate=rate, max_bandwidth=0,
                     link_bandwidth="10Gbit/s", max_time=60.0, **NO_COSTS)
    wire = tk.Scenario(dirty_rate=rate).dirty_rate * 4104 / 4096     # page headers
    g = geometric_precopy(4 * 2**30 * 4104 / 4096, wire, 1.25e9, 300)
    assert bool(ds.converged) and g["converges"]
    assert ds.total_time.item() == pytest.approx(g["total_time"], rel=0.02)
    # QEMU checks the threshold continuously, not only at round ends
    assert ds.downtime.item() <= 300


def test_geometric_on_a_sweep():
    ds = tk.sweep(ram_size="1GiB", dirty_rate=["10MiB/s", "2GiB/s"], downtime_limit=[100, 300],
                  max_time=5.0)
    g = geometric_on(ds, bandwidth="estimate")
    assert g.converges.dims == ("dirty_rate", "downtime_limit")
    assert g.converges.sel(dirty_rate=10 * 2**20).all()
    assert not g.converges.sel(dirty_rate=2**31).any()
    assert g.total_time.attrs["units"] == "ms"
