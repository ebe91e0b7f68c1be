"""multifd in the model: closed forms for its throughput, the rate check's lag and
the channels' zero detection; multifd off is the model as before; bad settings refused.
(The kernel equals the reference with multifd on: tests/test_reference.py.)"""
import numpy as np
import pytest

import toolkit as tk
from toolkit import Scenario
from toolkit.constants import MULTIFD_HEADER_WIRE, MULTIFD_PAGES, PAGE_SIZE

from .test_reference import SMALL, assert_same

PACKET = MULTIFD_HEADER_WIRE + MULTIFD_PAGES * PAGE_SIZE     # a full packet of data [B]
# no cost but the one each test names
FREE = dict(page_send_time=0, zero_page_scan_time=0, untouched_page_scan_time=0,
            sync_time_fixed=0, sync_time_per_gib=0, sync_time_per_dirty_page=0,
            setup_overhead=0, vm_stop_time=0, device_state_size=0, multifd_queue_time=0,
            multifd_packet_time=0, multifd_page_time=0, max_bandwidth=0, dirty_rate=0,
            multifd=True)


@pytest.mark.parametrize("channels", [1, 2, 3, 4, 8])
def test_n_channels_carry_the_lesser_of_the_link_and_n_channels(channels):
    # an idle guest of data: one pass, each packet 128 pages of 10 us of channel CPU
    page_time, link = 10e-6, 1.25e9
    sc = Scenario(**{**FREE, "multifd_page_time": "10us"}, ram_size="256MiB",
                  link_bandwidth=link, multifd_channels=channels)
    ds = tk.simulate(sc)
    packets = sc.n_pages / MULTIFD_PAGES
    # packets per second: the link's or the channels', whichever is fewer
    rate = min(link / PACKET, channels / (MULTIFD_PAGES * page_time))
    assert bool(ds.converged)
    assert float(ds.total_time) / 1e3 == pytest.approx(packets / rate, rel=0.01)
    assert int(ds.multifd_packets) == packets
    # every packet and one sync packet per channel at the end, in multifd_bytes
    assert int(ds.multifd_bytes) == packets * PACKET + channels * MULTIFD_HEADER_WIRE
    # the channels' CPU: 10 us a page, whichever bounds the pace [ms]
    assert float(ds.multifd_cpu_time) == pytest.approx(sc.n_pages * page_time * 1e3)


def test_the_rate_check_lags_by_the_packets_in_flight():
    # 3 channels of 2 ms a packet, the migration thread waiting for them: at each window's
    # close the 3 packets being written are queued but not yet in multifd_bytes
    channels = 3
    ds = tk.simulate(**{**FREE, "multifd_packet_time": "2ms"}, ram_size="2GiB",
                     multifd_channels=channels, max_time=1.0)
    window_bytes = ds.window_bytes.values
    queued = ds.cumulative_transferred.values
    seen = np.cumsum(window_bytes)            # what the windows counted, from the start
    assert len(window_bytes) >= 5
    np.testing.assert_array_equal(queued - seen, channels * PACKET)
    # so the estimate is what the channels wrote: 3 packets per 2 ms
    np.testing.assert_allclose(ds.bandwidth.values[1:], channels * PACKET / 2e-3, rtol=0.03)


@pytest.mark.parametrize("channels", [1, 2, 4])
def test_zero_detection_in_the_channels_sets_the_estimate(channels):
    # an allocated guest of zero pages: 10 us to scan one, in the channels (multifd) or
    # in the migration thread (legacy); a packet of 128 zero pages is its header alone
    scan = 10e-6
    common = dict(FREE, ram_size="1GiB", zero_fraction=1.0, zero_allocated_fraction=1.0,
                  zero_page_scan_time="10us", multifd_channels=channels, max_time=1.0)
    multifd = tk.simulate(**common)
    legacy = tk.simulate(**common, zero_page_detection="legacy")
    bw_multifd = np.median(multifd.bandwidth.values)
    bw_legacy = np.median(legacy.bandwidth.values)
    assert bw_multifd == pytest.approx(MULTIFD_HEADER_WIRE * channels /
                                       (MULTIFD_PAGES * scan), rel=0.03)
    assert bw_legacy == pytest.approx(9 / scan, rel=0.01)      # 9 B records, one by one
    assert int(legacy.multifd_packets) == 0 and int(multifd.zero_pages) > 0


def test_compression_puts_its_share_of_the_bytes_on_the_wire():
    common = dict(FREE, ram_size="64MiB", multifd_channels=4)
    plain = tk.simulate(**common)
    zstd = tk.simulate(**common, multifd_compression="zstd", compressed_fraction=0.25,
                       zstd_page_time=0)
    pages = int(plain.normal_pages)
    assert int(zstd.multifd_bytes) - int(plain.multifd_bytes) == \
        pages * (PAGE_SIZE // 4 - PAGE_SIZE)
    # a CPU-bound channel: zlib at 40 us a page over 2 channels
    zlib = tk.simulate(**{**common, "multifd_channels": 2}, multifd_compression="zlib",
                       zlib_page_time="40us")
    assert float(zlib.total_time) / 1e3 == pytest.approx(pages * 40e-6 / 2, rel=0.01)
    # both channels busy all along: two cores' worth of CPU
    assert float(zlib.multifd_cpu_time) / float(zlib.total_time) == pytest.approx(2, rel=0.02)


def test_multifd_off_is_the_model_as_before():
    base = dict(ram_size="256MiB", dirty_rate="300MiB/s", workload="hotcold", max_time=20.0,
                zero_fraction=0.3, dst_populate_time=1.0)
    before = tk.simulate(**base)
    off = tk.simulate(**base, multifd_channels=1, multifd_page_time="1us")
    for name in before.data_vars:
        np.testing.assert_array_equal(before[name].values, off[name].values, err_msg=name)
    assert int(before.multifd_bytes) == int(before.multifd_packets) == 0
    assert float(before.multifd_wait_time) == 0


def test_no_page_is_lost_with_multifd():
    for extra in (dict(multifd_channels=2), dict(multifd_channels=5, zero_fraction=0.5,
                                                  zero_write_share=0.4,
                                                  multifd_compression="zstd")):
        sc = Scenario(**{**SMALL, "dirty_rate": "1MiB/s", "multifd": True, **extra})
        raw, ref = assert_same(sc)
        assert ref.converged and ref.lost_pages() == 0


@pytest.mark.parametrize("kwargs, message", [
    (dict(multifd_compression="zstd"), r"multifd_compression='zstd' needs multifd=True"),
    (dict(multifd=True, postcopy_ram=True), r"multifd=True with postcopy-ram .* not modelled"),
    (dict(multifd=True, policy="nova:permit_post_copy=true"), r"not modelled"),
    (dict(multifd=True, multifd_channels=0), r"multifd_channels=0 is out of range: .*\[1, 255\]"),
    (dict(multifd=True, multifd_channels=256), r"multifd_channels=256 is out of range"),
    (dict(multifd=True, multifd_compression="lz4"), r"multifd_compression='lz4' is not a known"),
    (dict(compressed_fraction=0), r"compressed_fraction=0 is out of range: .*\(0, 1\]"),
])
def test_bad_multifd_settings_are_refused(kwargs, message):
    with pytest.raises(ValueError, match=message):
        Scenario(**kwargs)


def test_a_sweep_over_channels_and_avail_and_its_rescue_classes():
    # a migration thread CPU-bound at 8 us a page, a guest rewriting 512 MiB at 900 MB/s:
    # one channel is lost whatever avail says; more converge without any
    cpu_bound = dict(ram_size="1GiB", workload="sequential", write_range="512MiB",
                     dirty_rate="900MB/s", link_bandwidth="10Gbit/s", max_bandwidth=0,
                     downtime_limit=300, page_send_time="8us", multifd_page_time="8us",
                     max_time=20, multifd=True)
    ds = tk.sweep(multifd_channels=[1, 8], avail_switchover_bandwidth=[0, int(5e8)],
                  **cpu_bound)
    assert ds.converged.dims == ("multifd_channels", "avail_switchover_bandwidth")
    assert ds.multifd_channels.values.tolist() == [1, 8]
    for channels in (1, 8):
        one = tk.simulate(**cpu_bound, multifd_channels=channels)
        assert float(ds.total_time.sel(multifd_channels=channels,
                                       avail_switchover_bandwidth=0)) == \
            float(one.total_time)
    classes = tk.rescue(ds).rescue_class
    names = {(c, a): tk.RESCUE_CLASSES[int(classes.sel(multifd_channels=c,
                                                       avail_switchover_bandwidth=a))]
             for c in (1, 8) for a in (0, int(5e8))}
    assert names[(1, 0)] == names[(1, int(5e8))] == "lost"
    assert names[(8, 0)] == names[(8, int(5e8))] == "converges_anyway"
    assert ds.multifd_cpu_time.attrs["units"] == "ms"
