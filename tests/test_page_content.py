"""Page content, RAM backing and the destination's cost: closed forms and host profiles."""
import math

import numpy as np
import pytest

import toolkit as tk
from toolkit import IDEAL_HOST, Scenario, hosts

FAST_LINK = 1e12        # [B/s] so that the wire never bounds a page's time


def test_zero_writing_guest_holds_the_estimate_at_zero_page_rate():
    """A guest rewriting its RAM with zeros as fast as it can: the thread only scans
    zero pages, so QEMU's estimate is 9 B per scan time (the seed's story)."""
    scan_ns = 2000.0
    ds = tk.simulate(**{**IDEAL_HOST, "ram_size": "512MiB", "workload": "sequential",
                        "write_range": "512MiB", "write_range_start": 0, "zero_fraction": 1.0,
                        "zero_write_share": 1.0, "mem_prealloc": True,
                        "dirty_rate": "20GiB/s", "zero_page_scan_time": scan_ns,
                        "link_bandwidth": FAST_LINK, "max_bandwidth": 0, "max_time": 5.0})
    assert not bool(ds.converged)
    expected = 9 / (scan_ns * 1e-9)                   # [B/s]
    bw = ds.bandwidth.values[2:]                      # after the first windows
    assert np.median(bw) == pytest.approx(expected, rel=0.01)
    assert int(ds.normal_pages) == 0 and int(ds.zero_pages) > 131072


def test_zero_writes_keep_pages_zero_but_data_writes_do_not():
    base = dict(ram_size="64MiB", dirty_rate="200MiB/s", zero_fraction=1.0, max_time=5.0,
                link_bandwidth="1Gbit/s", max_bandwidth=0, workload="sequential",
                write_range="16MiB", write_range_start=0)
    data = tk.simulate(**base)
    zeros = tk.simulate(**base, zero_write_share=1.0)
    half = tk.simulate(**base, zero_write_share=0.5)
    assert int(zeros.normal_pages) == 0
    assert int(data.normal_pages) > 4096
    assert 0 < int(half.normal_pages) < int(data.normal_pages)
    none = tk.simulate(**base, zero_write_share=1.0, zero_page_detection="none")
    assert int(none.zero_pages) == 0                   # every page goes as a normal page


def test_never_touched_first_pass_takes_pages_times_untouched_scan():
    scan_ns = 700.0
    sc = Scenario(**{**IDEAL_HOST, "ram_size": "32MiB", "dirty_rate": 0, "zero_fraction": 1.0,
                     "untouched_page_scan_time": scan_ns, "zero_page_scan_time": 5000.0,
                     "link_bandwidth": FAST_LINK, "max_bandwidth": 0})
    ds = tk.simulate(sc)
    n = sc.n_pages
    assert bool(ds.converged) and int(ds.untouched_zero_pages) == n
    assert float(ds.total_time) == pytest.approx(n * scan_ns * 1e-6, rel=1e-4)
    prealloc = tk.simulate(sc.replace(mem_prealloc=True))   # allocated: the full scan
    assert int(prealloc.untouched_zero_pages) == 0
    assert float(prealloc.total_time) == pytest.approx(n * 5000.0 * 1e-6, rel=1e-4)
    half = tk.simulate(sc.replace(zero_allocated_fraction=0.5))   # zeroed before, half
    assert int(half.untouched_zero_pages) == n // 2
    assert float(half.total_time) == pytest.approx(n / 2 * (5000.0 + scan_ns) * 1e-6, rel=1e-4)
    with pytest.raises(ValueError, match=r"zero_allocated_fraction=0.6 .*\[0, zero_fraction"):
        sc.replace(zero_fraction=0.5, zero_allocated_fraction=0.6)


def test_downtime_of_first_copies_is_at_least_pages_times_first_copy_cost():
    """An over-optimistic avail switches over after the first window with most of RAM
    not copied: the destination's first copies bound the downtime."""
    first_ns, copy_ns = 3000.0, 200.0
    sc = Scenario(**{**IDEAL_HOST, "ram_size": "1GiB", "dirty_rate": 0,
                     "link_bandwidth": "100Gbit/s", "max_bandwidth": 0,
                     "avail_switchover_bandwidth": 10**12, "downtime_limit": 300,
                     "dst_first_copy_time": first_ns, "dst_copy_time": copy_ns})
    ds = tk.simulate(sc)
    assert bool(ds.converged)
    left = float(ds.switchover_pending) / 4096             # pages the downtime copies
    assert left > sc.n_pages / 2
    assert float(ds.downtime) >= left * first_ns * 1e-6
    assert float(ds.downtime) == pytest.approx(left * first_ns * 1e-6, rel=1e-3)
    assert int(ds.first_copy_pages) == sc.n_pages           # each page arrives once
    resend = tk.simulate(sc.replace(mem_prealloc=True))     # the destination holds them all
    assert int(resend.first_copy_pages) == 0
    assert float(resend.downtime) < float(ds.downtime) / 5


def test_stride_and_cursor_order_the_sequential_writes():
    base = dict(ram_size="8MiB", workload="sequential", write_range="1MiB",
                write_range_start="1MiB", dirty_rate="4MiB/s", max_time=3.0, check=True,
                link_bandwidth="100Mbit/s", max_bandwidth=0)
    a = tk.simulate(**base)
    b = tk.simulate(**base, write_stride=3, write_cursor=17)
    # the same writes per second reach the same number of distinct pages per sweep
    assert int(a.guest_writes) == int(b.guest_writes)
    assert int(a.lost_pages) == int(b.lost_pages) == 0
    with pytest.raises(ValueError, match=r"write_cursor=256 .*\[0, 255\] pages"):
        Scenario(**base, write_cursor=256)
    with pytest.raises(ValueError, match="write_stride"):
        Scenario(**base, write_stride=0)


def test_zero_page_detection_none_needs_qemu_9():
    with pytest.raises(ValueError, match="zero_page_detection='none' needs qemu_version"):
        Scenario(zero_page_detection="none", qemu_version="8.2")
    with pytest.raises(ValueError, match="expected one of multifd, legacy, none"):
        Scenario(zero_page_detection="off")


# --- host profiles ---

@pytest.mark.parametrize("name", hosts.PROFILES)
def test_every_profile_is_a_valid_scenario(name):
    profile = hosts.get(name)
    assert set(profile.values) <= set(hosts.HOST_PARAMETERS)
    sc = Scenario(host=name)
    for k, v in profile.values.items():
        assert getattr(sc, k) == pytest.approx(v), k
    assert name in profile.table()


def test_explicit_values_override_the_profile_and_go_to_the_attributes():
    ds = tk.simulate(host="kvm-25g", ram_size="64MiB", dst_copy_time=999.0, max_time=5.0)
    assert ds.attrs["host"] == "kvm-25g"
    assert ds.attrs["dst_copy_time"] == 999.0
    assert ds.attrs["link_bandwidth"] == hosts.get("kvm-25g").values["link_bandwidth"]
    sc = Scenario(host="kvm-10g", dirty_rate="1GiB/s")
    moved = sc.replace(host="tcg-loopback")             # the new profile's values come in
    assert moved.link_bandwidth == hosts.get("tcg-loopback").values["link_bandwidth"]
    assert moved.dirty_rate == sc.dirty_rate
    assert Scenario(host="none").link_bandwidth == Scenario().link_bandwidth


def test_a_sweep_over_hosts_and_a_bad_name():
    grid = tk.sweep(host=["none", "kvm-10g", "kvm-25g"], ram_size="256MiB", max_bandwidth=0,
                    max_time=5.0)
    assert list(grid.host.values) == ["none", "kvm-10g", "kvm-25g"]
    assert float(grid.total_time.sel(host="kvm-25g")) < float(grid.total_time.sel(host="kvm-10g"))
    with pytest.raises(ValueError, match="host='kvm' is not a known host"):
        Scenario(host="kvm")


def test_tcg_profile_errors_are_standard_errors():
    p = hosts.get("tcg-loopback")
    assert all(math.isnan(e) or e >= 0 for e in p.errors.values())
