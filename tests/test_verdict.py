"""One verdict rule for every table, widget and classification (toolkit.verdict)."""
import numpy as np
import xarray as xr

import toolkit as tk
from toolkit.cli import verdict_table
from toolkit.verdict import Verdict, describe, first_pass_share, verdict, verdict_codes

SMALL = dict(ram_size="256MiB", max_bandwidth=0, link_bandwidth="1Gbit/s")


def test_a_run_cut_off_in_its_first_pass_is_not_finished_not_lost():
    # 16 GiB at the default 128 MiB/s needs ~128 s for its first pass
    ds = tk.simulate(ram_size="16GiB", dirty_rate="400MiB/s", max_time=60.0)
    assert not bool(ds.converged) and int(ds.passes) == 0
    assert verdict(ds) is Verdict.NOT_FINISHED
    share = first_pass_share(ds)
    assert abs(share - 60 * 128 * 2**20 / 2**34) < 0.02          # the rate limit's pace
    assert describe(ds).startswith(f"first pass not finished: {share:.0%} of RAM sent")


def test_one_that_iterates_is_not_converging():
    ds = tk.simulate(workload="uniform", dirty_rate="2GiB/s", max_time=20.0, **SMALL)
    assert int(ds.passes) > 1 and verdict(ds) is Verdict.NOT_CONVERGING
    assert describe(ds).startswith("never converges")


def test_converges_and_overshoots_follow_the_downtime_limit():
    ds = tk.simulate(workload="uniform", dirty_rate="10MiB/s", downtime_limit=300, **SMALL)
    assert verdict(ds) is Verdict.CONVERGES and describe(ds).startswith("converges in")
    ds = tk.simulate(workload="sequential", write_range="128MiB", dirty_rate="2GiB/s",
                     avail_switchover_bandwidth="100Gbit/s", downtime_limit=50, **SMALL)
    assert bool(ds.converged) and float(ds.downtime) > 50
    assert verdict(ds) is Verdict.OVERSHOOTS and "OVERSHOOTS the 50 ms limit" in describe(ds)


def test_codes_are_elementwise_and_keep_xarray_coordinates():
    conv = xr.DataArray([True, True, False, False], dims="x", coords={"x": [1, 2, 3, 4]})
    down = xr.DataArray([100.0, 400.0, np.nan, np.nan], dims="x")
    passes = xr.DataArray([3, 3, 5, 0], dims="x")
    codes = verdict_codes(conv, down, 300.0, passes)
    assert list(codes.values) == [0, 1, 2, 3] and list(codes.x.values) == [1, 2, 3, 4]
    assert list(verdict_codes(conv.values, down.values, 300.0, passes.values)) == [0, 1, 2, 3]


def test_the_cli_table_uses_the_same_words():
    sc = tk.Scenario(ram_size="16GiB", dirty_rate="400MiB/s", max_time=60.0)
    assert Verdict.NOT_FINISHED.label in verdict_table(sc)
