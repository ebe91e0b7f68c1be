"""The seed's story (Peter Xu, QEMU 8.2 commit 8b2395970aa3): a 10 Gbit/s link whose
bandwidth estimate reads a few tens of MB/s, so the migration iterates forever;
avail-switchover-bandwidth = the real link rate rescues it; far above the link
it switches over too early and the real downtime overshoots the limit."""
import pytest

import toolkit as tk

# a 2 GiB guest, half of it still zero, re-writing 128 MiB at 1 GiB/s; the
# precopy rate limit holds the thread to 40 MB/s on a 10 Gbit/s link
STORY = dict(ram_size="2GiB", workload="sequential", write_range="128MiB", dirty_rate="1GiB/s",
             zero_fraction=0.5, link_bandwidth="10Gbit/s", max_bandwidth="40MB/s",
             downtime_limit=300, max_time=120.0, check=True)
LINK = 10e9 / 8


@pytest.fixture(scope="module")
def runs():
    return {name: tk.simulate(**STORY, avail_switchover_bandwidth=avail)
            for name, avail in [("estimate", 0), ("link", LINK), ("far above", 100 * LINK)]}


def test_estimate_of_tens_of_mb_s_never_converges(runs):
    ds = runs["estimate"]
    assert not bool(ds.converged)
    bw = ds.bandwidth.values
    assert 10e6 <= bw.min() and bw.max() <= 100e6           # "a few tens of MB/s"
    assert (ds.threshold.values < 128 * 2**20).all()           # never above the hot set
    assert int(ds.dirty_sync_count) > 10                       # it keeps iterating


def test_avail_at_the_link_rate_converges_within_the_limit(runs):
    ds = runs["link"]
    assert bool(ds.converged) and int(ds.lost_pages) == 0
    assert ds.downtime.item() <= STORY["downtime_limit"]
    assert ds.total_time.item() < runs["estimate"].total_time.item()


def test_avail_far_above_the_link_overshoots(runs):
    ds = runs["far above"]
    assert bool(ds.converged) and int(ds.lost_pages) == 0
    assert ds.downtime.item() > 2 * STORY["downtime_limit"]
    # it trusted a bandwidth the link does not have: the real final copy is link-bound
    assert ds.downtime_bytes.item() / (ds.downtime.item() / 1000) <= LINK * 1.001


def test_bitmap_sync_stalls_drag_the_estimate_down():
    # unlimited max-bandwidth; each bitmap sync of a 64 GiB guest stalls the thread
    # for ~0.5 s, and the window holding it measures a fraction of the link
    guest = dict(ram_size="64GiB", workload="hotcold", hot_fraction=0.004, hot_share=1.0,
                 dirty_rate="2GiB/s", max_bandwidth=0, max_time=80.0)
    slow = tk.simulate(**guest, sync_time_per_gib=8.0)
    fast = tk.simulate(**guest, sync_time_per_gib=0.0, sync_time_fixed=0.0)
    assert fast.bandwidth.values.min() > 0.9 * LINK
    assert slow.bandwidth.values.max() > 0.9 * LINK
    assert slow.bandwidth.values.min() < 0.3 * LINK
    low = slow.bandwidth.values < 0.5 * LINK
    assert (slow.time_spent.values[low] >= 500).all()   # the long windows are the syncs
