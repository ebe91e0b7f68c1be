"""Management-layer policies: what Nova, KubeVirt, oVirt and Proxmox VE do to a running
migration.

Each policy is a small frozen dataclass with the real product's option names
and defaults (see ``../shared/reference/field.md`` and ``field-2026.md``). It
turns into the array the kernel's monitor (:mod:`toolkit.kernels.policy`)
reads: a poll period, a downtime-limit schedule (stepped on time, on Proxmox's
counter, or on new iterations), a completion timeout with its action (abort
or pause the guest), a progress timeout, and KubeVirt's stall detector. A
Scenario names its policy by a string (``"nova"``,
``"kubevirt:completion_timeout_per_gib=20"``, ``"none"``), so that sweeps can
range over policies and Datasets can store them.

A policy that permits postcopy turns on the postcopy-ram capability, as
libvirt does for them; Proxmox turns on auto-converge.
"""
from __future__ import annotations

import dataclasses
import math

import numpy as np

from .constants import GIB
from .kernels import layout as L
from .kernels.policy import ABORT, KEEP_GOING, PAUSE, POSTCOPY



TRIGGERS = {"time": 0, "counter": 1, "iteration": 2}


def _monitor_array(poll_ms, *, completion_ms=0, action="none", double_after_pause=False,
                   progress_ms=0, lowmark=False, start_on_iteration=False,
                   initial_downtime=-1, nova_switch=False, steps=(), trigger="time",
                   count=0, cooldown_ms=0, fast_poll_ms=0, stall=None) -> np.ndarray:
    pol = np.zeros(L.POL_STEPS + L.STEP_SIZE * len(steps), np.int64)
    pol[L.POL_TRIGGER] = TRIGGERS[trigger]
    pol[L.POL_COUNT] = count
    pol[L.POL_COOLDOWN_MS] = cooldown_ms
    pol[L.POL_FAST_POLL_MS] = fast_poll_ms
    if stall is not None:
        (pol[L.POL_STALL_MS], pol[L.POL_STALL_MARGIN], pol[L.POL_STALL_DOWNTIME],
         pol[L.POL_STALL_ABORT], pol[L.POL_SWITCHOVER_MS], pol[L.POL_FORCE_DOWNTIME]) = stall
    pol[L.POL_POLL_MS] = poll_ms
    pol[L.POL_COMPLETION_MS] = completion_ms
    pol[L.POL_ACTION] = {"none": KEEP_GOING, "abort": ABORT, "pause": PAUSE,
                         "postcopy": POSTCOPY}[action]
    pol[L.POL_NOVA_SWITCH] = int(nova_switch)
    pol[L.POL_DOUBLE] = int(double_after_pause)
    pol[L.POL_PROGRESS_MS] = progress_ms
    pol[L.POL_LOWMARK] = int(lowmark)
    pol[L.POL_START_ON_ITERATION] = int(start_on_iteration)
    pol[L.POL_INITIAL_DOWNTIME] = initial_downtime
    pol[L.POL_N_STEPS] = len(steps)
    for i, (t_ms, downtime) in enumerate(steps):
        pol[L.POL_STEPS + L.STEP_SIZE * i + L.STEP_TIME_MS] = t_ms
        pol[L.POL_STEPS + L.STEP_SIZE * i + L.STEP_DOWNTIME_LIMIT] = downtime
    return pol


@dataclasses.dataclass(frozen=True)
class Nova:
    """OpenStack Nova's libvirt driver (``nova/virt/libvirt/migration.py``).

    Parameters
    ----------
    downtime : int
        ``live_migration_downtime``, the last step [ms], >= 100.
    downtime_steps : int
        ``live_migration_downtime_steps``, >= 3.
    downtime_delay : int
        ``live_migration_downtime_delay`` between steps per GiB of RAM [s/GiB], >= 3.
    completion_timeout : int
        ``live_migration_completion_timeout`` per GiB [s/GiB], 0 = none.
    timeout_action : str
        ``live_migration_timeout_action``: ``abort`` or ``force_complete``
        (switch to postcopy when permitted, else pause the guest).
    permit_post_copy : bool
        ``live_migration_permit_post_copy``: enable postcopy-ram and switch to
        it when a poll after the first iteration sees remaining fall by less
        than 10 % (``should_switch_to_postcopy``).
    """

    downtime: int = 500
    downtime_steps: int = 10
    downtime_delay: int = 75
    completion_timeout: int = 800
    timeout_action: str = "abort"
    permit_post_copy: bool = False
    name = "nova"

    @property
    def postcopy(self) -> bool:
        """Whether the policy enables postcopy-ram."""
        return self.permit_post_copy
    POLL_MS = 500           # the monitor loop sleeps 0.5 s

    def __post_init__(self):
        _check(self, "downtime", 100, 2_000_000)
        _check(self, "downtime_steps", 3, 10_000)
        _check(self, "downtime_delay", 3, 10**6)
        _check(self, "completion_timeout", 0, 10**6)
        if self.timeout_action not in ("abort", "force_complete"):
            raise ValueError(f"nova timeout_action={self.timeout_action!r}: expected 'abort' "
                             "or 'force_complete'")

    @staticmethod
    def data_gb(ram_size: int) -> float:
        """RAM in GiB, at least 2 (Nova counts small guests as 2 GiB)."""
        return max(ram_size / GIB, 2.0)

    def steps(self, ram_size: int) -> list[tuple[int, int]]:
        """``(time [s], downtime-limit [ms])`` steps: ``live_migration_downtime_steps``."""
        delay = int(self.downtime_delay * self.data_gb(ram_size))
        base = self.downtime / self.downtime_steps
        offset = (self.downtime - base) / self.downtime_steps
        return [(int(delay * i), int(base + offset * i)) for i in range(self.downtime_steps + 1)]

    def kernel_array(self, ram_size: int) -> np.ndarray:
        """The monitor array (``layout.POL_*``) for a guest of ``ram_size`` [B]."""
        steps = self.steps(ram_size)
        timeout_s = int(self.completion_timeout * self.data_gb(ram_size))
        force = "postcopy" if self.permit_post_copy else "pause"
        return _monitor_array(
            self.POLL_MS, completion_ms=timeout_s * 1000,
            action="abort" if self.timeout_action == "abort" else force,
            initial_downtime=steps[0][1], nova_switch=self.permit_post_copy,
            steps=[(t * 1000, d) for t, d in steps[1:]])


@dataclasses.dataclass(frozen=True)
class KubeVirt:
    """KubeVirt's migration monitor (virt-launcher ``live-migration-source.go``).

    Parameters
    ----------
    completion_timeout_per_gib : int
        ``completionTimeoutPerGiB`` [s per GB of RAM, decimal, rounded up], 0 = none.
    progress_timeout : int
        ``progressTimeout`` [s]: abort when remaining did not drop for this long.
    allow_post_copy : bool
        ``allowPostCopy``: enable postcopy-ram; at the completion timeout switch
        to postcopy (``MigrateStartPostCopy``).
    allow_workload_disruption : bool
        ``allowWorkloadDisruption`` (unset: as ``allow_post_copy``): act at the
        completion timeout (postcopy if allowed, else pause the guest and double
        the timeout) instead of aborting.
    stall_detection : bool
        The migration stall detector (VEP 248, KubeVirt master from 2026-06):
        downtime-limit starts at min(``max_downtime``, QEMU's). A stall is
        judged at iteration boundaries (a new ``dirty_sync_count``, seen at the
        next poll) only, so a long first pass is never one: the remaining bytes
        after the sync that ends the first pass are the baseline; a later
        boundary whose remaining is not ``stall_margin`` below the lowest so
        far, more than ``stall_timeout`` after that lowest was set, is a stall.
        It aborts when ``remaining / EWMA`` of the reported bandwidth exceeds
        1.5 x ``max_downtime`` (postcopy instead when allowed), else raises
        downtime-limit to ``max_downtime``, and after ``switchover_timeout``
        more forces the switchover (``FORCED_DOWNTIME``). With workload
        disruption allowed, the completion timeout never pauses the guest: it
        starts postcopy when allowed, else does what a stall that fits does
        (``max_downtime`` now, ``FORCED_DOWNTIME`` after ``switchover_timeout``,
        on the stall's timer if a stall already started it); without it, it
        aborts, as on the legacy path. **Simplifications**: the first pass
        (before sync 2) sets no baseline, as its remaining bytes are the whole
        RAM; a boundary is seen at the next 0.4 s poll, and several syncs
        between two polls count as one (the last); the detector's
        ``completionTimeoutFactor`` (2; with disruption, KubeVirt's abort after
        factor x the timeout, and its check that the estimated downtime fits)
        is not modelled: a threshold of 2,000 s of bandwidth normally ends the
        migration well before it.
    downtime_tuning : bool
        VEP 291's downtime ramp: from ``initial_downtime``, ``tuning_steps``
        linear steps to ``max_downtime``, one per new iteration after
        iteration ``tuning_start_iteration``, at least ``tuning_cooldown`` apart.
    max_downtime : int
        ``maxDowntimeMs`` [ms], 1 to 2,000,000.
    stall_margin : int
        Progress margin [%].
    stall_timeout, switchover_timeout, tuning_cooldown : int
        [s].
    initial_downtime : int
        VEP 291's first downtime-limit [ms].
    tuning_steps, tuning_start_iteration : int
        VEP 291's steps and the iteration after which they start.
    """

    completion_timeout_per_gib: int = 150
    progress_timeout: int = 150
    allow_post_copy: bool = False
    allow_workload_disruption: bool | None = None
    stall_detection: bool = False
    downtime_tuning: bool = False
    max_downtime: int = 900
    stall_margin: int = 4
    stall_timeout: int = 40
    switchover_timeout: int = 60
    initial_downtime: int = 150
    tuning_steps: int = 7
    tuning_start_iteration: int = 3
    tuning_cooldown: int = 10
    name = "kubevirt"
    EWMA_ALPHA = 0.4        # of the reported bandwidth: the kernel's (4 new + 6 old) // 10
    PRECOPY_POSSIBLE_FACTOR = 1.5   # a stall aborts beyond this x max_downtime
    FORCED_DOWNTIME = 2_000_000     # the "hard" switchover's downtime-limit [ms]

    @property
    def postcopy(self) -> bool:
        """Whether the policy enables postcopy-ram."""
        return self.allow_post_copy
    POLL_MS = 400           # GetJobStats every 400 ms

    def __post_init__(self):
        _check(self, "completion_timeout_per_gib", 0, 10**6)
        _check(self, "progress_timeout", 0, 10**6)
        _check(self, "max_downtime", 1, 2_000_000)
        _check(self, "stall_margin", 0, 99)
        _check(self, "stall_timeout", 1, 10**6)
        _check(self, "switchover_timeout", 0, 10**6)
        _check(self, "initial_downtime", 0,
               self.max_downtime if self.downtime_tuning else 2_000_000)
        _check(self, "tuning_steps", 1, 10_000)
        _check(self, "tuning_start_iteration", 0, 10**6)
        _check(self, "tuning_cooldown", 0, 10**6)

    def tuning_table(self) -> list[int]:
        """VEP 291's downtime-limits [ms]: ``initial_downtime``, then ``tuning_steps``
        linear steps ending at ``max_downtime``."""
        span = self.max_downtime - self.initial_downtime
        return [self.initial_downtime + span * i // self.tuning_steps
                for i in range(self.tuning_steps + 1)]

    @staticmethod
    def data_gb(ram_size: int) -> int:
        """RAM as a Kubernetes quantity scaled to Giga: decimal GB, rounded up."""
        return math.ceil(ram_size / 1e9)

    def kernel_array(self, ram_size: int) -> np.ndarray:
        """The monitor array (``layout.POL_*``) for a guest of ``ram_size`` [B]."""
        acceptable_s = self.completion_timeout_per_gib * self.data_gb(ram_size)
        disrupt = self.allow_workload_disruption
        if disrupt is None:
            disrupt = self.allow_post_copy
        action = ("postcopy" if self.allow_post_copy else "pause") if disrupt else "abort"
        extra = {}
        if self.downtime_tuning:
            table = self.tuning_table()
            extra = dict(initial_downtime=table[0], steps=[(0, d) for d in table[1:]],
                         trigger="iteration", count=self.tuning_start_iteration,
                         cooldown_ms=self.tuning_cooldown * 1000)
        if self.stall_detection:
            extra["stall"] = (self.stall_timeout * 1000, self.stall_margin, self.max_downtime,
                              round(self.PRECOPY_POSSIBLE_FACTOR * 100),
                              self.switchover_timeout * 1000, self.FORCED_DOWNTIME)
        return _monitor_array(
            self.POLL_MS, completion_ms=acceptable_s * 1000, action=action,
            double_after_pause=True, progress_ms=self.progress_timeout * 1000, **extra)


@dataclasses.dataclass(frozen=True)
class OVirt:
    """oVirt's VDSM (``lib/vdsm/virt/migration.py``, without an engine schedule).

    Parameters
    ----------
    downtime : int
        ``migration_downtime``, the last step [ms].
    downtime_steps : int
        ``migration_downtime_steps``, >= 2.
    downtime_delay : int
        ``migration_downtime_delay`` [s per GiB]: the wait between steps is
        ``delay x RAM GiB / steps``, at most 60 s.
    max_time_per_gib : int
        ``migration_max_time_per_gib_mem`` [s/GiB]: abort after this, 0 = none.
    progress_timeout : int
        ``migration_progress_timeout`` [s]: abort when remaining has not gone
        below its lowest value for this long.
    monitor_interval : int
        ``migration_monitor_interval`` [s].
    """

    downtime: int = 500
    downtime_steps: int = 10
    downtime_delay: int = 75
    max_time_per_gib: int = 64
    progress_timeout: int = 240
    monitor_interval: int = 10
    name = "ovirt"
    WAIT_STEP_LIMIT_S = 60

    def __post_init__(self):
        _check(self, "downtime", 1, 2_000_000)
        _check(self, "downtime_steps", 2, 10_000)
        _check(self, "downtime_delay", 0, 10**6)
        _check(self, "max_time_per_gib", 0, 10**6)
        _check(self, "progress_timeout", 0, 10**6)
        _check(self, "monitor_interval", 1, 10**6)

    @property
    def postcopy(self) -> bool:
        """Whether the policy enables postcopy-ram: oVirt's policies here never do."""
        return False

    def downtimes(self) -> list[int]:
        """VDSM's ``exponential_downtime``: ``int(offset + base ** i)``, i = 0..steps-1."""
        offset = self.downtime / float(self.downtime_steps)
        base = (self.downtime - offset) ** (1 / float(self.downtime_steps - 1))
        return [int(offset + base ** i) for i in range(self.downtime_steps)]

    def wait_s(self, ram_size: int) -> float:
        """Wait between two steps of the downtime thread. [s]"""
        mem_mib = ram_size // 2**20
        return min(self.downtime_delay * mem_mib / (1024 * self.downtime_steps),
                   self.WAIT_STEP_LIMIT_S)

    def kernel_array(self, ram_size: int) -> np.ndarray:
        """The monitor array (``layout.POL_*``) for a guest of ``ram_size`` [B]."""
        d = self.downtimes()
        wait_ms = int(self.wait_s(ram_size) * 1000)
        max_s = (self.max_time_per_gib * (ram_size // 2**20) + 1023) // 1024
        # the first value is set when monitoring starts; the thread sets the rest,
        # one per wait, from the first new iteration the monitor sees
        return _monitor_array(
            self.monitor_interval * 1000, completion_ms=max_s * 1000, action="abort",
            progress_ms=self.progress_timeout * 1000, lowmark=True, start_on_iteration=True,
            initial_downtime=d[0], steps=[(i * wait_ms, x) for i, x in enumerate(d[1:])])


@dataclasses.dataclass(frozen=True)
class Proxmox:
    """Proxmox VE's migration loop (``src/PVE/QemuMigrate.pm``).

    It polls ``query-migrate`` every second (every 0.1 s once remaining is
    below the average bytes sent per poll) and counts the polls whose remaining
    grew or was zero; when the counter passes 5 it doubles downtime-limit and
    starts again, up to 2000 s (fix #7044). It turns on auto-converge, and sets
    max-bandwidth to :attr:`MAX_BANDWIDTH` when ``migrate_speed`` is unset
    (``toolkit.advise``'s ``proxmox`` layer does; give it with the policy
    elsewhere). **Not modelled**: xbzrle, which Proxmox also enables (cache
    10 % of RAM): the simulator sends every dirty page whole.

    Parameters
    ----------
    migrate_downtime : float
        The VM's ``migrate_downtime``, the first downtime-limit [s], 0 to 2000.
    auto_converge : bool
        Turn on QEMU's auto-converge (Proxmox always does).
    """

    migrate_downtime: float = 0.1
    auto_converge: bool = True
    name = "proxmox"
    POLL_MS = 1000
    FAST_POLL_MS = 100
    COUNTER_LIMIT = 5
    MAX_DOWNTIME = 2_000_000        # [ms]
    MAX_BANDWIDTH = 16 * GIB        # [B/s], "QEMU default 128 MiBps == 1 Gbps" is too low

    def __post_init__(self):
        value = self.migrate_downtime
        if isinstance(value, bool) or not isinstance(value, (int, float)) or \
                not 0 <= value <= self.MAX_DOWNTIME / 1000:
            raise ValueError(f"proxmox migrate_downtime={value!r} is out of range: expected "
                             f"a number of seconds in [0, {self.MAX_DOWNTIME // 1000}]")

    @property
    def postcopy(self) -> bool:
        """Whether the policy enables postcopy-ram: Proxmox's precopy path never does."""
        return False

    def downtimes(self) -> list[int]:
        """downtime-limit [ms]: ``migrate_downtime``, then doubled at each step, at most
        2000 s (one step past 0 ms stays 0: QEMU then keeps a zero limit)."""
        d = [int(self.migrate_downtime * 1000)]
        while 0 < d[-1] < self.MAX_DOWNTIME:
            d.append(min(2 * d[-1], self.MAX_DOWNTIME))
        return d

    def kernel_array(self, ram_size: int) -> np.ndarray:
        """The monitor array (``layout.POL_*``); ``ram_size`` [B] does not enter it."""
        d = self.downtimes()
        return _monitor_array(self.POLL_MS, initial_downtime=d[0],
                              steps=[(0, x) for x in d[1:]], trigger="counter",
                              count=self.COUNTER_LIMIT, fast_poll_ms=self.FAST_POLL_MS)


POLICIES = {"nova": Nova, "kubevirt": KubeVirt, "ovirt": OVirt, "proxmox": Proxmox}


def _check(policy, field: str, lo: int, hi: int) -> None:
    value = getattr(policy, field)
    if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
        raise ValueError(f"{policy.name} {field}={value!r} is out of range: expected an "
                         f"integer in [{lo}, {hi}]")


def parse(text):
    """A policy from its string (``"nova"``, ``"nova:timeout_action=force_complete"``),
    a policy object, or ``None``/``"none"`` for no policy.

    Raises
    ------
    ValueError
        Unknown policy or option, or an option out of its range.
    """
    if text is None or isinstance(text, tuple(POLICIES.values())):
        return text
    if not isinstance(text, str):
        raise TypeError(f"policy: expected a string such as 'nova' or a policy object, got "
                        f"{type(text).__name__} {text!r}")
    name, _, opts = text.strip().partition(":")
    if name == "none" and not opts:
        return None
    if name not in POLICIES:
        raise ValueError(f"policy={text!r}: expected 'none' or one of "
                         f"{', '.join(POLICIES)}, optionally with ':option=value,...'")
    cls = POLICIES[name]
    known = {f.name: f for f in dataclasses.fields(cls)}
    kwargs = {}
    for item in filter(None, (s.strip() for s in opts.split(","))):
        key, eq, value = item.partition("=")
        if not eq or key not in known:
            raise ValueError(f"policy={text!r}: {key!r} is not an option of {name}; "
                             f"options: {', '.join(known)}")
        default = known[key].default
        if isinstance(default, bool) or key == "allow_workload_disruption":
            if value not in ("true", "false"):
                raise ValueError(f"policy={text!r}: {key} expects true or false")
            kwargs[key] = value == "true"
        elif isinstance(default, int):
            try:
                kwargs[key] = int(value)
            except ValueError:
                raise ValueError(f"policy={text!r}: {key} expects an integer") from None
        elif isinstance(default, float):
            try:
                kwargs[key] = float(value)
            except ValueError:
                raise ValueError(f"policy={text!r}: {key} expects a number") from None
        else:
            kwargs[key] = value
    return cls(**kwargs)


def to_string(policy) -> str:
    """The canonical string of a policy: its name and the options that differ from
    the defaults (``"none"`` for no policy)."""
    if policy is None:
        return "none"
    changed = [f"{f.name}={str(getattr(policy, f.name)).lower()}"
               for f in dataclasses.fields(policy) if getattr(policy, f.name) != f.default]
    return policy.name + (":" + ",".join(changed) if changed else "")


def kernel_array(policy, ram_size: int) -> np.ndarray:
    """The monitor's array for the kernel; a disabled monitor for no policy."""
    if policy is None:
        return np.zeros(L.POL_STEPS, np.int64)
    return policy.kernel_array(ram_size)
