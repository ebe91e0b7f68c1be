"""Two baseline predictors of precopy, to score against the page-level simulator.

A validation study runs real QEMU migrations and asks how close each model
comes to them. These two models are the yardsticks the simulator has to beat:

* :func:`geometric`: the textbook geometric series (:func:`toolkit.analytic.
  geometric_precopy`), given a working-set cap, the avail-switchover-bandwidth
  threshold and a final copy at the link rate;
* :func:`simgrid`: a per-round model in the style of SimGrid's
  ``VmLiveMigration`` (Hirofuchi, Lèbre and Pouilloux, CloudCom 2013 and IEEE TCC
  2015): stage 1 sends all of RAM, each stage-2 round sends what the one before
  it dirtied, and the bandwidth and threshold are measured again after every
  round.

Both take a :class:`toolkit.Scenario` and return the same dict, shaped like
the simulator's scalars (see :data:`RESULT_UNITS`). Both leave out zero pages,
page headers, QEMU's 100 ms bandwidth window and the cost of a bitmap sync,
and they ignore auto-converge, dirty-limit, postcopy and management policies.
Showing what those omissions cost is the point of having baselines.
"""
from __future__ import annotations

import math

from .analytic import geometric_precopy
from .constants import PAGE_SIZE
from .scenario import Scenario

#: Keys of a baseline's result and their units (UDUNITS-style, "1" = dimensionless).
RESULT_UNITS = {"converged": "1", "total_time": "ms", "downtime": "ms",
                "dirty_sync_count": "1", "transferred": "B"}

# workloads with one steady dirty rate, which is all these models know about
_SUPPORTED = ("uniform", "hotcold", "sequential", "zipf")


def _scenario(sc, who: str) -> Scenario:
    """Check that ``sc`` is a Scenario whose guest these models can describe."""
    if not isinstance(sc, Scenario):
        raise TypeError(f"{who}: expected a toolkit.Scenario, got {type(sc).__name__} "
                        f"{sc!r:.60}; build one with toolkit.Scenario(**params)")
    if sc.workload not in _SUPPORTED:
        raise ValueError(f"{who}: workload={sc.workload!r} has no single steady dirty rate; "
                         f"the baselines take one of {', '.join(_SUPPORTED)}")
    return sc


def _check_rounds(max_rounds, who: str) -> int:
    if isinstance(max_rounds, bool) or not isinstance(max_rounds, int) or max_rounds < 1:
        raise ValueError(f"{who}: max_rounds={max_rounds!r}: expected an integer >= 1")
    return max_rounds


def precopy_bandwidth(sc: Scenario) -> float:
    """Rate of the precopy rounds: ``min(link_bandwidth, max_bandwidth)``. [B/s]

    ``max_bandwidth = 0`` means no limit, as in QEMU.
    """
    limit = sc.max_bandwidth if sc.max_bandwidth > 0 else math.inf
    return float(min(sc.link_bandwidth, limit))


def working_set(sc: Scenario, duration: float) -> float:
    """The most bytes the guest can dirty in a round of ``duration``. [B]

    Parameters
    ----------
    sc : Scenario
        The guest (``workload``, ``ram_size``, ``dirty_rate``, ``write_range``,
        ``hot_fraction``, ``hot_share``).
    duration : float
        Length of the round. [s]

    Returns
    -------
    float
        The cap on the bytes dirtied per round (SimGrid's "dp_cap"):

        * ``uniform`` and ``zipf``: all of RAM (no correction for writes that
          hit a page already dirty);
        * ``sequential``: ``write_range`` in whole pages, all the cursor sweeps
          (divided by ``gcd(write_stride, pages)``, the pages a strided cursor
          visits);
        * ``hotcold``: the expected number of distinct pages written in
          ``duration``, each set written uniformly at its share of the rate:
          ``H (1 - exp(-w_h / H)) + C (1 - exp(-w_c / C))`` pages, where ``H``
          and ``C`` are the hot and cold pages and ``w_h``, ``w_c`` the writes
          to each.
    """
    if sc.workload == "sequential":
        pages = max(1, sc.write_range // PAGE_SIZE)
        # a cursor stepping ``write_stride`` pages modulo the range visits pages / gcd
        pages //= math.gcd(pages, int(getattr(sc, "write_stride", 1)))
        return float(pages * PAGE_SIZE)
    if sc.workload != "hotcold":
        return float(sc.ram_size)
    writes = sc.dirty_rate * duration / PAGE_SIZE
    hot = sc.hot_pages
    cold = sc.n_pages - hot
    pages = hot * -math.expm1(-sc.hot_share * writes / hot) + \
        cold * -math.expm1(-(1.0 - sc.hot_share) * writes / cold)
    return pages * PAGE_SIZE


def _dirtied(sc: Scenario, duration: float) -> float:
    """Bytes dirtied in a round of ``duration`` [s]: the rate times the time, capped,
    in whole bytes as SimGrid's ``sg_size_t`` holds them. [B]"""
    return float(math.floor(min(sc.dirty_rate * duration, working_set(sc, duration))))


def _not_converged(sc: Scenario, bandwidth: float, setup: float, syncs: int) -> dict:
    """The result of a run that has not switched over by ``max_time``.

    Precopy sends without a pause in these models, so what went out by then
    is the bandwidth times the time after setup.
    """
    return {"converged": False, "total_time": sc.max_time * 1e3, "downtime": math.nan,
            "dirty_sync_count": int(syncs),
            "transferred": bandwidth * max(0.0, sc.max_time - setup)}


def _rounds_within(budget: float, first: float, ratio: float, bandwidth: float,
                   most: int) -> int:
    """How many rounds of a geometric series end within ``budget`` [s].

    Round ``i`` (from 1) sends ``first * ratio**(i - 1)`` bytes [B] at
    ``bandwidth`` [B/s]. A shrinking series (``ratio < 1``) counts at most
    ``most`` rounds, where the model gives up.
    """
    if budget <= 0 or first <= 0:
        return 0
    step = first / bandwidth                           # the first round [s]
    if ratio >= 1.0:
        k = budget / step
    else:
        # step (1 - ratio**k) / (1 - ratio) <= budget
        left = 1.0 - budget * (1.0 - ratio) / step
        k = math.inf if left <= 0 else math.log(left) / math.log(ratio)
        if k >= most:
            return int(most)
    # a round that ends exactly at the budget does not count (QEMU is cancelled then)
    k = math.ceil(k) - 1 if k == math.floor(k) else math.floor(k)
    return int(max(k, 0))


def geometric(sc: Scenario, *, fixed_costs: bool = False, max_rounds: int = 1000) -> dict:
    """Precopy as the textbook geometric series, with a working-set cap.

    Round 0 sends all of RAM at the precopy bandwidth ``B = min(link_bandwidth,
    max_bandwidth)``; each later round sends what the guest dirtied during the
    one before, ``dirty_rate`` times its length, capped at the guest's working
    set (:func:`working_set`, evaluated over round 0, the longest round). Before
    each round the model switches over if what is pending is below the
    threshold ``avail_switchover_bandwidth x downtime_limit`` when avail is
    set, else ``B x downtime_limit``; the last bytes then go at
    ``link_bandwidth``. The series itself is
    :func:`toolkit.analytic.geometric_precopy`; this function only feeds it the
    capped first round and the avail threshold, and reads its answer in
    QEMU's terms.

    Assumes every write within the working set dirties a new page (no rewrites
    for ``uniform``; for ``hotcold`` the cap is the expected distinct pages of
    round 0), the bandwidth is known exactly and never changes, and syncs,
    zero pages and page headers cost nothing.

    Parameters
    ----------
    sc : Scenario
        The scenario: ``ram_size`` [B], ``dirty_rate`` [B/s], the workload's
        parameters, ``link_bandwidth`` and ``max_bandwidth`` [B/s],
        ``downtime_limit`` [ms], ``avail_switchover_bandwidth`` [B/s] and
        ``max_time`` [s]; the host costs only with ``fixed_costs``.
    fixed_costs : bool
        Also count ``setup_overhead`` [ms] before round 0, and ``vm_stop_time``
        [ms] plus ``device_state_size`` [B] at ``link_bandwidth`` in the
        downtime, as :func:`simgrid` does. Off by default: the textbook model
        has none of them.
    max_rounds : int
        Give up (not converged) after this many rounds.

    Returns
    -------
    dict
        ``converged`` (bool): switched over before ``max_time``;
        ``total_time`` [ms]: to the end of the downtime, ``max_time`` x 1000
        when not converged; ``downtime`` [ms]: NaN when not converged;
        ``dirty_sync_count`` (int): counted as QEMU counts, 1 for setup, 1 at
        the end of each round (at least one: QEMU syncs before it switches)
        and 1 at completion, or the syncs done by ``max_time``;
        ``transferred`` [B]: everything sent, or what went out by ``max_time``.

    Raises
    ------
    TypeError
        ``sc`` is not a :class:`toolkit.Scenario`.
    ValueError
        Its workload (``replay``, ``phases``) has no single dirty rate.

    Examples
    --------
    >>> import toolkit as tk
    >>> from toolkit.baselines import geometric
    >>> r = geometric(tk.Scenario(ram_size="1GiB", dirty_rate=0, max_bandwidth=0))
    >>> r["converged"], r["dirty_sync_count"]
    (True, 3)
    """
    sc = _scenario(sc, "geometric")
    max_rounds = _check_rounds(max_rounds, "geometric")
    bw = precopy_bandwidth(sc)
    link = float(sc.link_bandwidth)
    ram, rate = float(sc.ram_size), float(sc.dirty_rate)
    # geometric_precopy's threshold is bandwidth x limit: a limit scaled by
    # avail / B gives avail x downtime_limit with the same rounds at B
    threshold_bw = sc.avail_switchover_bandwidth or bw
    limit = sc.downtime_limit * threshold_bw / bw
    first_round = ram / bw                                           # [s]
    cap = working_set(sc, first_round)
    pending_1 = min(ram, rate * first_round, cap)         # pending after round 0 [B]

    def read(g):
        """Rounds, precopy time [s], pending [B], sent [B] of a converged series."""
        pending = g["downtime"] / 1e3 * bw
        return g["rounds"], (g["total_time"] - g["downtime"]) / 1e3, pending, \
            g["transferred"] - pending

    g = geometric_precopy(ram, rate, bw, limit, max_rounds)
    if (g["converges"] and g["rounds"] == 0) or min(ram, rate * first_round) <= cap:
        converged = g["converges"]                # the cap does not bind: the plain series
        if converged:
            rounds, precopy, pending, sent = read(g)
    else:
        # round 0 here, then the series from the capped pending. If dirty_rate < B the
        # later rounds shrink and never meet the cap; if not, they stay at it, which is
        # the series from ram_size = cap (geometric_precopy caps at its ram_size)
        rest = geometric_precopy(cap, rate, bw, limit, max_rounds - 1)
        converged = rest["converges"]
        if converged:
            rounds, precopy, pending, sent = read(rest)
            rounds, precopy, sent = rounds + 1, precopy + first_round, sent + ram

    setup = sc.setup_overhead / 1e3 if fixed_costs else 0.0           # [s]
    if converged and setup + precopy < sc.max_time:
        downtime = pending / link
        extra = 0.0
        if fixed_costs:
            downtime += sc.vm_stop_time / 1e3 + sc.device_state_size / link
            extra = float(sc.device_state_size)
        return {"converged": True, "total_time": (setup + precopy + downtime) * 1e3,
                "downtime": downtime * 1e3, "dirty_sync_count": 2 + max(rounds, 1),
                "transferred": sent + pending + extra}
    # the syncs by max_time: setup, round 0's, then those of the rounds that fit
    budget = sc.max_time - setup
    done = 0
    if first_round < budget:
        ratio = rate / bw if rate < bw else 1.0        # at or above B, rounds stay at the cap
        done = 1 + _rounds_within(budget - first_round, pending_1, ratio, bw, max_rounds)
    return _not_converged(sc, bw, setup, 1 + done)


def simgrid(sc: Scenario, *, max_rounds: int = 10_000) -> dict:
    """Precopy as SimGrid's ``VmLiveMigration`` models it, round by round.

    After ``setup_overhead``, stage 1 sends all of RAM at the rate the
    migration thread reaches, ``min(link_bandwidth, max_bandwidth)``; the
    bandwidth is then measured as ``ram_size / stage1_duration`` and the
    threshold set to ``bandwidth x downtime_limit``. Each stage-2 round sends
    what the guest dirtied during the round before: ``dirty_rate`` times its
    length, capped at :func:`working_set` for a round that long (the
    "dp_cap"), in whole bytes as in SimGrid; after the round the bandwidth is
    measured again as ``updated_size / round_duration`` and the threshold set
    again. Rounds go on while what remains exceeds the threshold. Stage 3
    stops the VM for ``vm_stop_time`` and sends what remains plus
    ``device_state_size`` at ``link_bandwidth``.

    Assumes, as SimGrid does, that the bandwidth is what the last round
    achieved (here always the precopy rate: nothing else shares the link),
    that every write within the working set dirties a new page, and that
    syncs, zero pages and page headers cost nothing; there is no 100 ms window
    and no ``max_bandwidth``-versus-link split in the estimate. Two departures
    from SimGrid: when ``avail_switchover_bandwidth`` is set the threshold is
    ``avail_switchover_bandwidth x downtime_limit`` (our extension: SimGrid has
    no avail), and reaching ``max_time`` or ``max_rounds`` reports the run
    as not converged instead of forcing stage 3, as a cancelled QEMU run
    would be.

    Parameters
    ----------
    sc : Scenario
        The scenario: ``ram_size`` [B], ``dirty_rate`` [B/s], the workload's
        parameters, ``link_bandwidth`` and ``max_bandwidth`` [B/s],
        ``downtime_limit`` [ms], ``avail_switchover_bandwidth`` [B/s],
        ``setup_overhead`` [ms], ``vm_stop_time`` [ms], ``device_state_size``
        [B] and ``max_time`` [s].
    max_rounds : int
        Give up (not converged) after this many stage-2 rounds; the syncs
        that would have come by ``max_time`` are then counted at the last
        round's length.

    Returns
    -------
    dict
        ``converged`` (bool): switched over before ``max_time``;
        ``total_time`` [ms]: to the end of stage 3, ``max_time`` x 1000 when
        not converged; ``downtime`` [ms]: stage 3, NaN when not converged;
        ``dirty_sync_count`` (int): counted as QEMU counts, 1 for setup, 1 at
        the end of stage 1 and of each stage-2 round and 1 at completion, or
        the syncs done by ``max_time``; ``transferred`` [B]: everything sent,
        or what went out by ``max_time``.

    Raises
    ------
    TypeError, ValueError
        As :func:`geometric`.

    Examples
    --------
    >>> import toolkit as tk
    >>> from toolkit.baselines import simgrid
    >>> r = simgrid(tk.Scenario(ram_size="1GiB", dirty_rate=0, max_bandwidth=0))
    >>> r["converged"], r["dirty_sync_count"]
    (True, 3)
    """
    sc = _scenario(sc, "simgrid")
    max_rounds = _check_rounds(max_rounds, "simgrid")
    rate_bw = precopy_bandwidth(sc)
    link = float(sc.link_bandwidth)
    ram = float(sc.ram_size)
    setup = sc.setup_overhead / 1e3                                  # [s]

    def threshold_for(bandwidth):
        return (sc.avail_switchover_bandwidth or bandwidth) * sc.downtime_limit / 1e3

    # stage 1
    duration = ram / rate_bw
    clock = setup + duration
    if clock >= sc.max_time:
        return _not_converged(sc, rate_bw, setup, 1)
    rounds, sent = 1, ram                          # rounds done, stage 1 included
    threshold = threshold_for(ram / duration)
    updated = _dirtied(sc, duration)
    remaining = updated
    # stage 2
    while threshold < remaining:
        duration = updated / rate_bw
        if rounds > max_rounds:
            more = math.ceil((sc.max_time - clock) / duration) - 1   # at the last length
            return _not_converged(sc, rate_bw, setup, 1 + rounds + max(more, 0))
        if clock + duration >= sc.max_time:
            return _not_converged(sc, rate_bw, setup, 1 + rounds)
        clock += duration
        sent += updated
        rounds += 1
        threshold = threshold_for(updated / duration)
        dirtied = _dirtied(sc, duration)
        if dirtied == updated and threshold < dirtied:
            # the same round again and again: it never converges; count the rounds to max_time
            more = math.ceil((sc.max_time - clock) / duration) - 1
            return _not_converged(sc, rate_bw, setup, 1 + rounds + more)
        updated = remaining = dirtied
    # stage 3
    downtime = sc.vm_stop_time / 1e3 + (remaining + sc.device_state_size) / link
    return {"converged": True, "total_time": (clock + downtime) * 1e3,
            "downtime": downtime * 1e3, "dirty_sync_count": rounds + 2,
            "transferred": sent + remaining + sc.device_state_size}
