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


def test_downtime_that_populates_regions_waits_for_the_destination():
    """An over-optimistic avail switches over after the first window with most of RAM
    not copied: the destination populates each 2 MiB region it then receives. With
    no socket buffer the source waits for each; with one larger than the stream it
    never does, and the downtime (which ends on the source) is the copy alone."""
    populate_ms, copy_ns = 0.4, 1000.0
    sc = Scenario(**{**IDEAL_HOST, "ram_size": "1GiB", "dirty_rate": 0,
                     "link_bandwidth": FAST_LINK, "max_bandwidth": 0,
                     "avail_switchover_bandwidth": 10**12, "downtime_limit": 300,
                     "dst_populate_time": populate_ms, "dst_copy_time": copy_ns,
                     "socket_buffer_size": 0})
    ds = tk.simulate(sc)
    assert bool(ds.converged)
    left = int(float(ds.switchover_pending) / 4096)          # pages the downtime copies
    assert left > sc.n_pages / 2
    regions_left = left // 512                               # whole regions not yet sent
    assert int(ds.populated_regions) == sc.n_pages // 512    # each region populated once
    # each region's first batch of 64 pages goes while the destination populates it
    populating = regions_left + (left % 512 > 0)
    lo = regions_left * populate_ms + (left - 64 * populating) * copy_ns * 1e-6
    hi = populating * populate_ms + left * copy_ns * 1e-6
    assert lo <= float(ds.downtime) <= hi
    # with buffers that never fill, the destination holds up neither the precopy
    # nor the downtime (which ends on the source)
    ample = sc.replace(socket_buffer_size="2GiB")
    ds = tk.simulate(ample)
    left = int(float(ds.switchover_pending) / 4096)
    assert left > 1000 and int(ds.populated_regions) == sc.n_pages // 512
    assert float(ds.downtime) == pytest.approx(left * copy_ns * 1e-6, rel=1e-3)
    prealloc = tk.simulate(ample.replace(mem_prealloc=True))   # populated from the start
    assert int(prealloc.populated_regions) == 0
    assert float(prealloc.downtime) == pytest.approx(float(ds.downtime), rel=1e-3)
    # the destination alone preallocated: the run of a destination that populates for free
    dst_only = tk.simulate(sc.replace(dst_mem_prealloc=True))
    free = tk.simulate(sc.replace(dst_populate_time=0))
    assert int(dst_only.populated_regions) == 0
    for name in ("total_time", "downtime", "transferred", "dirty_sync_count"):
        assert float(dst_only[name]) == float(free[name]), name


def test_zero_pages_populate_nothing_and_data_ranges_hold_data():
    base = dict(IDEAL_HOST, ram_size="16MiB", dirty_rate=0, link_bandwidth="1Gbit/s",
                max_bandwidth=0, downtime_limit=300, dst_populate_time=1.0,
                zero_fraction=0.75)                        # data in region 0 and 1 only
    assert int(tk.simulate(Scenario(**base)).populated_regions) == 2
    # a page and a 3-page range in the zero region: their regions (5 and 7) hold data
    sc = Scenario(**base, data_ranges="10MiB:4KiB, 16372KiB:12KiB")
    assert sc.data_page_ranges == [(2560, 2561), (4093, 4096)]
    ds = tk.simulate(sc)
    assert int(ds.populated_regions) == 4
    assert int(ds.normal_pages) == 1024 + 4
    with pytest.raises(ValueError, match=r"data_ranges: item 2 '15MiB:2MiB'.*beyond ram_size"):
        Scenario(**base, data_ranges="1MiB:4KiB, 15MiB:2MiB")
    with pytest.raises(ValueError, match=r"data_ranges: item 1 '3MiB'.*'start:size'"):
        Scenario(**base, data_ranges="3MiB")


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
