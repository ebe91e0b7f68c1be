"""The kernel's arrays, declared once: one field table per array.

A run's parameters, state, trace and management policy travel as plain ``int64``
(the trace ``float64``) arrays. Each array has one table below listing its fields
in slot order: name, units, long_name, description, and for the state and trace
the Dataset variable a field becomes (:mod:`toolkit.schema` reads it from here).
A field may hold one value per write stream (``length=N_STREAMS``: the per-stream
state, read as ``st[S_LOG + s]``) or, last in its table, a tail of any length.

The slot names the kernels use (``P_N_PAGES``, ``S_T``, ``W_TIME``, ``POL_POLL_MS``,
and ``N_PARAMS``, ``N_STATE``, ``N_TRACE``) are generated from the tables when this
module is imported: plain module-level ints, which numba freezes as compile-time
constants. (Measured on numba 0.68: structured records cost the same as these
slots, a structref holding the arrays is 2-3x slower, a jitclass cannot be cached.)
"""
from __future__ import annotations

from typing import NamedTuple

N_STREAMS = 2                   # the guest's write streams (see kernels.guest)


class Field(NamedTuple):
    """One field of a kernel array.

    Attributes
    ----------
    name : str
        Slot name without the array's prefix (``"T"`` is ``S_T``).
    units : str
        UDUNITS-style units of the stored value (``"1"`` for counts and flags).
    long_name, description : str
        What it is; for a field with a ``result``, the Dataset variable's attributes.
    length : int
        Slots it takes: 1, ``N_STREAMS`` (one per write stream), or 0 for a tail of
        any length (last in its table).
    dtype : str
        The value's type as read back: ``"bool"`` for a 0/1 flag, else the array's.
    result : str or None
        The Dataset variable it becomes (:func:`toolkit.schema.build_dataset`).
    """

    name: str
    units: str
    long_name: str
    description: str = ""
    length: int = 1
    dtype: str = ""
    result: str | None = None


class Table(NamedTuple):
    """The field table of one kernel array: slot prefix, array dtype, fields in order."""

    prefix: str
    dtype: str
    fields: tuple

    def slots(self) -> dict:
        """Slot number of each field by its name (a field of length 2 takes two)."""
        out, slot = {}, 0
        for f in self.fields:
            out[f.name] = slot
            slot += f.length
        return out

    @property
    def size(self) -> int:
        """Slots of the fixed part (where a tail starts)."""
        return sum(f.length for f in self.fields)

    def field(self, name: str) -> Field:
        """The field called ``name``."""
        return next(f for f in self.fields if f.name == name)

    def results(self) -> dict:
        """Fields that become Dataset variables, by variable name."""
        return {f.result: f for f in self.fields if f.result}


F = Field
PS, MS, B, ONE, PCT, PAGES = "ps", "ms", "B", "1", "%", "1"

# --- parameters: filled by toolkit.encode.kernel_inputs ---
PARAMS = Table("P_", "int64", (
    F("N_PAGES", PAGES, "guest pages", "[pages]"),
    F("WORKLOAD", ONE, "workload",
      "0 uniform, 1 hotcold, 2 sequential, 3 zipf, 4 replay, 5 phases"),
    F("HOT_PAGES", PAGES, "hot set", "hotcold: pages in the hot set, at the bottom of RAM; "
      "0 otherwise [pages]"),
    F("SEQ_START", PAGES, "write range start", "sequential: first page of the written range"),
    F("SEQ_PAGES", PAGES, "write range", "sequential: pages in the written range"),
    F("ZERO_WORD0", ONE, "first zero word",
      "first bitmap word the zero bits of ``content`` cover (n_words: none)"),
    F("RATE_LIMIT_MAX", B, "window byte budget",
      "max_bandwidth // 10, 0 = unlimited [B per 100 ms window]"),
    F("DOWNTIME_LIMIT", MS, "downtime-limit"),
    F("AVAIL_BW_PER_MS", "B ms-1", "avail-switchover-bandwidth",
      "avail_switchover_bandwidth // 1000, 0 = use the estimate"),
    F("PS_NORMAL", PS, "re-send time", "one normal page the destination already holds"),
    F("PS_ZERO", PS, "zero page time",
      "one zero page of allocated RAM (a full buffer_is_zero scan)"),
    F("PS_SECTION", PS, "section time",
      "wire time of one iterate call's section header/footer/EOS"),
    F("PS_SYNC_BASE", PS, "sync time", "bitmap sync: fixed + per-GiB part"),
    F("PS_SYNC_PAGE", PS, "sync time per page", "bitmap sync: per page found in the dirty log"),
    F("PS_SETUP", PS, "setup time", "setup overhead before the first sync"),
    F("PS_VM_STOP", PS, "vm stop time",
      "vm_stop_force_state: pause vCPUs, drain and flush block"),
    F("PS_DEVICE", PS, "device state time", "wire time of the device state at switchover"),
    F("DEVICE_BYTES", B, "device state size"),
    F("PS_MAX_TIME", PS, "max_time", "give up (not converged) after this"),
    F("CHECK", ONE, "check mode", "1: track page versions (no-data-lost check)", dtype="bool"),
    F("QEMU_RULE", ONE, "switchover rule", "0 = 8.2, 1 = 9.0-10.0, 2 = 10.1 and later"),
    F("AUTO_CONVERGE", ONE, "auto-converge", "1: capability auto-converge", dtype="bool"),
    F("THROTTLE_TRIGGER", PCT, "throttle-trigger-threshold"),
    F("THROTTLE_INITIAL", PCT, "cpu-throttle-initial"),
    F("THROTTLE_INCREMENT", PCT, "cpu-throttle-increment"),
    F("THROTTLE_TAILSLOW", ONE, "cpu-throttle-tailslow", dtype="bool"),
    F("THROTTLE_MAX", PCT, "max-cpu-throttle"),
    F("PERIODIC_SYNC", ONE, "periodic dirty sync",
      "1: auto-converge's 5 s dirty-sync timer (QEMU 9.2 and later)", dtype="bool"),
    F("POSTCOPY_RAM", ONE, "postcopy-ram", "1: capability postcopy-ram", dtype="bool"),
    F("POSTCOPY_START_SYNC", ONE, "postcopy start",
      "migrate-start-postcopy once dirty-sync-count reaches this, 0 = never"),
    F("ZIPF_EXPONENT_MICRO", ONE, "zipf exponent", "zipf: the exponent in millionths"),
    F("DIRTY_LIMIT", ONE, "dirty-limit", "1: capability dirty-limit", dtype="bool"),
    F("DIRTY_QUOTA_PPM", ONE, "dirty-limit run fraction",
      "dirty-limit: the guest's run fraction under its quota [ppm]"),
    F("PS_FIRST_COPY", PS, "first copy time",
      "one normal page the destination receives for the first time"),
    F("PS_ZERO_UNTOUCHED", PS, "untouched zero page time",
      "one zero page of never-touched RAM (the shared zero page)"),
    F("ZERO_WRITE_PPM", ONE, "zero write share",
      "share of the guest's writes that write zeros [ppm]"),
    F("PREALLOC", ONE, "mem-prealloc",
      "1: all RAM allocated on both sides from the start", dtype="bool"),
    F("SEQ_STRIDE", PAGES, "write stride", "sequential: pages the cursor advances per write"),
    F("SEQ_CURSOR", PAGES, "write cursor", "sequential: offset in the range of the first write"),
    F("WRITTEN_OFF", ONE, "written bits offset",
      "where the written bits start in ``content``, -1 = none [words]"),
    F("DST_OFF", ONE, "destination bits offset",
      "where the destination's bits start in ``content``, -1 = none: first copies cost "
      "no more than re-sends, nothing to track [words]"),
))

# --- state: kernel-owned, zero on entry, read back as results ---
STATE = Table("S_", "int64", (
    F("T", PS, "total time", "query-migrate total-time: migrate command to completion "
      "(to max_time if not converged)", result="total_time"),
    F("WRITES", ONE, "guest page writes", "page writes the guest issued [pages]",
      result="guest_writes"),
    F("DIRTY", PAGES, "migration_dirty_pages", "pages dirty in the migration bitmap [pages]"),
    F("TRANSFERRED", B, "bytes transferred", "query-migrate ram.transferred plus device state",
      result="transferred"),
    F("NORMAL", ONE, "normal pages sent", "query-migrate ram.normal [pages]",
      result="normal_pages"),
    F("ZERO", ONE, "zero pages sent", "query-migrate ram.duplicate [pages]",
      result="zero_pages"),
    F("CURSOR", ONE, "page the search resumes at",
      "ram.c last_page at the end: in the first pass, how far it got [pages]",
      result="last_page"),
    F("SYNCS", ONE, "dirty bitmap syncs", "query-migrate dirty-sync-count",
      result="dirty_sync_count"),
    F("LAST_SYNC_MS", MS, "time_last_bitmap_sync", "-1 before the first sync"),
    F("PERIOD_PAGES", PAGES, "num_dirty_pages_period", "[pages]"),
    F("DIRTY_RATE", "s-1", "dirty pages rate",
      "query-migrate ram.dirty-pages-rate: newly dirty pages per second",
      result="dirty_pages_rate"),
    F("DIRTY_BYTES_LAST_SYNC", B, "pending at the last sync",
      "dirty pages x 4096 right after the last bitmap sync "
      "(mig_stats dirty_bytes_last_sync: the last exact pending)",
      result="dirty_bytes_last_sync"),
    F("RATE_START", B, "rate_limit_start"),
    F("WIN_START_MS", MS, "iteration_start_time"),
    F("WIN_BYTES0", B, "iteration_initial_bytes"),
    F("THRESHOLD", B, "threshold at switchover",
      "threshold_size when the switchover was decided (the last one if not converged)",
      result="switchover_threshold"),
    F("EXPECTED_DOWNTIME", MS, "expected downtime",
      "query-migrate expected-downtime at the last closed window", dtype="float64",
      result="expected_downtime"),
    F("N_WINDOWS", ONE, "windows", "windows written to the trace"),
    F("VM_RUNNING", ONE, "vm running", "1 while the guest runs (and writes)", dtype="bool"),
    F("SETUP_T", PS, "setup time", "query-migrate setup-time", result="setup_time"),
    F("DOWNTIME_START", PS, "vm stop", "-1 if never"),
    F("DOWNTIME_BYTES", B, "bytes sent during downtime",
      "query-migrate ram.downtime-bytes plus device state", result="downtime_bytes"),
    F("CONVERGED", ONE, "switched over before max_time",
      "1 if QEMU's switchover test passed before max_time, else 0", dtype="bool",
      result="converged"),
    F("LOST_PAGES", ONE, "pages lost",
      "check mode: pages whose destination copy is not the source's last "
      "version [pages]; -1 when not checked", result="lost_pages"),
    F("SWITCH_PENDING", B, "pending at switchover",
      "pending at the switchover decision (see schema's switchover_pending)"),
    # per stream: distinct pages of its range in the log, -1 while not counted
    F("LOG", PAGES, "logged pages", "stream s: distinct pages of its range in the dirty log, "
      "-1 while not counted", length=N_STREAMS),
    F("SYNC_WRITES", ONE, "writes at the last sync",
      "stream s: its writes applied when the log was last cleared", length=N_STREAMS),
    F("STREAM_WRITES", ONE, "stream writes",
      "stream s: its writes applied so far (WRITES counts all)", length=N_STREAMS),
    F("WRAPS", ONE, "passes over RAM completed",
      "times the page search went round past the end of RAM: 0 while in the first "
      "pass (see toolkit.verdict)", result="passes"),
    F("UNFLUSHED", PAGES, "unflushed pages",
      "normal pages queued in the QEMUFile since its last flush (0..31)"),
    F("THROTTLE", PCT, "CPU throttle at the end",
      "query-migrate cpu-throttle-percentage (auto-converge); 0 when not throttling",
      result="cpu_throttle_percentage"),
    F("HIGH_CNT", ONE, "dirty_rate_high_cnt", "of migration_trigger_throttle"),
    F("XFER_PREV", B, "bytes_xfer_prev", "transferred at the last rate-period close"),
    F("GUEST_BASE", PS, "guest run time base", "guest run time at the last throttle change"),
    F("THROTTLE_T0", PS, "throttle change", "time of the last throttle change"),
    F("TICK_NEXT", PS, "next dirty-sync tick", "next tick of the 5 s dirty-sync timer"),
    F("TICK_PREV", ONE, "syncs at the previous tick",
      "dirty_sync_count seen by the timer's previous tick"),
    F("DOWNTIME_LIMIT", MS, "downtime-limit at the end",
      "the downtime-limit in force at the end (a policy may raise it)",
      result="final_downtime_limit"),
    F("POLL_NEXT", PS, "next poll", "next poll of the management policy's monitor"),
    F("POL_DEADLINE_MS", MS, "policy deadline",
      "the policy's completion deadline now, 0 = none"),
    F("POL_PROGRESS_MS", MS, "policy progress", "when remaining last made progress"),
    F("POL_MARK", B, "policy mark", "remaining at the last poll, or its lowest value (lowmark)"),
    F("POL_LAST_REMAINING", B, "remaining at the previous poll", "-1 before the first"),
    F("POL_START_MS", MS, "schedule start", "when the downtime schedule started, -1 not yet"),
    F("POL_STEP", ONE, "schedule step", "next step of the downtime schedule"),
    F("PAUSED_T", PS, "guest paused at",
      "when the management policy paused the guest; NaN if it never did",
      result="pause_time"),
    F("ABORTED", ONE, "aborted by the policy",
      "1 if the management policy cancelled the migration (migrate_cancel)", dtype="bool",
      result="aborted"),
    F("GUEST_OFFSET", PS, "guest stopped time",
      "time the guest was stopped before running again (postcopy)"),
    F("POSTCOPY_REQUESTED", ONE, "postcopy requested",
      "1 once migrate-start-postcopy was issued", dtype="bool"),
    F("POSTCOPY_T", PS, "postcopy started at",
      "when the destination started running in postcopy (the downtime ended); NaN if the "
      "migration never switched to postcopy", result="postcopy_start_time"),
    F("FAULTS", ONE, "postcopy page faults",
      "pages the destination's guest touched before they arrived [pages]",
      result="postcopy_faults"),
    F("DOWNTIME_END", PS, "end of the downtime"),
    F("DIRTY_LIMIT_T", PS, "dirty-limit started at",
      "when dirty-limit began holding the vCPUs to their quota; NaN if it never did",
      result="dirty_limit_start_time"),
    F("PHASE_IDX", ONE, "phase", "phases: the phase now"),
    F("PHASE_START", PS, "phase start", "phases: when it began, on the guest's running clock"),
    F("PHASE_DONE", ONE, "phase writes", "phases: stream s's writes in this phase so far",
      length=N_STREAMS),
    F("FIRST_COPIES", ONE, "first copies on the destination",
      "normal pages the destination did not hold yet (counted only when a "
      "first copy costs more than a re-send) [pages]", result="first_copy_pages"),
    F("UNTOUCHED", ONE, "zero pages of never-touched RAM",
      "zero pages sent from RAM never allocated (the cheaper scan) [pages]",
      result="untouched_zero_pages"),
    F("LAST_BW", "B s-1", "last bandwidth",
      "bandwidth of the last closed window, as query-migrate's mbps"),
    F("POL_PERIOD", MS, "poll period", "the monitor's poll period now (Proxmox shortens it)"),
    F("POL_POLLS", ONE, "polls", "polls done so far"),
    F("POL_LAST_TRANSFERRED", B, "transferred at the previous poll"),
    F("POL_COUNTER", ONE, "Proxmox counter",
      "Proxmox: polls whose remaining grew or was zero, since the last step"),
    F("POL_LAST_SYNCS", ONE, "syncs at the previous poll",
      "dirty_sync_count at the previous poll (a new iteration: it grew)"),
    F("POL_STEP_MS", MS, "last step", "VEP 291: when the downtime last stepped up, -1 never"),
    F("POL_EWMA", "B s-1", "bandwidth EWMA",
      "KubeVirt: EWMA of the reported bandwidth, -1 before a sample"),
    F("POL_BEST", B, "lowest remaining",
      "KubeVirt: the lowest remaining at an iteration start, -1 none"),
    F("POL_STALL_PROGRESS_MS", MS, "stall progress",
      "KubeVirt: when that lowest value last fell by the margin"),
    F("POL_STALL_MS", MS, "stall declared", "KubeVirt: when the stall was declared, -1 not yet"),
))

# --- trace: ``trace[window, column]``, one row per closed window ---
TRACE = Table("W_", "float64", (
    F("TIME", MS, "time since migrate (window close)", result="time"),
    F("TIME_SPENT", MS, "window length", result="time_spent"),
    F("BYTES", B, "bytes queued in the window", result="window_bytes"),
    F("BANDWIDTH", "B ms-1", "estimated bandwidth (one window, migration_update_counters)",
      "bytes / time_spent", result="bandwidth"),
    F("THRESHOLD", B, "switchover threshold (threshold_size)", result="threshold"),
    F("PENDING", B, "pending dirty bytes at window close",
      "migration_dirty_pages * 4096", result="pending"),
    F("TRANSFERRED", B, "bytes transferred since migrate", result="cumulative_transferred"),
    F("SYNCS", ONE, "dirty-sync-count at window close", result="syncs"),
    F("EXPECTED_DOWNTIME", MS, "expected downtime", result="window_expected_downtime"),
    F("MBPS", "Mbit s-1", "throughput of the window (query-migrate mbps)", "decimal Mbit/s",
      result="window_mbps"),
    F("DIRTY_RATE", "s-1", "dirty pages rate", result="window_dirty_pages_rate"),
    F("THROTTLE", PCT, "CPU throttle at window close (auto-converge)",
      result="window_cpu_throttle_percentage"),
    F("DOWNTIME_LIMIT", MS, "downtime-limit at window close", result="window_downtime_limit"),
))

# --- management policy: built by toolkit.policies, read by kernels.policy ---
POLICY = Table("POL_", "int64", (
    F("POLL_MS", MS, "poll period", "poll period of the monitor, 0 = no policy"),
    F("COMPLETION_MS", MS, "completion timeout", "0 = none"),
    F("ACTION", ONE, "timeout action",
      "at the completion timeout: 0 none, 1 abort, 2 pause the guest, 3 postcopy"),
    F("DOUBLE", ONE, "double after pause",
      "1: after pausing, the timeout doubles (then aborts)", dtype="bool"),
    F("PROGRESS_MS", MS, "progress timeout",
      "abort when remaining made no progress for this long, 0 = never"),
    F("LOWMARK", ONE, "lowmark",
      "1: progress = below its lowest value; 0: below the previous poll", dtype="bool"),
    F("START_ON_ITERATION", ONE, "start on iteration",
      "1: the schedule starts at the first new iteration seen", dtype="bool"),
    F("INITIAL_DOWNTIME", MS, "initial downtime-limit", "set at the start, -1 = keep"),
    F("NOVA_SWITCH", ONE, "Nova postcopy switch",
      "1: switch to postcopy when an iteration made < 10 % progress", dtype="bool"),
    F("TRIGGER", ONE, "schedule trigger",
      "what moves the downtime schedule on: 0 time (the pairs' times), 1 a counter of polls "
      "whose remaining grew or was zero passing POL_COUNT (Proxmox), 2 a new iteration after "
      "iteration POL_COUNT, at most one step per POL_COOLDOWN_MS (KubeVirt VEP 291)"),
    F("COUNT", ONE, "trigger count",
      "trigger 1: the counter's limit; trigger 2: the first iteration that steps"),
    F("COOLDOWN_MS", MS, "cooldown", "trigger 2: the least time between two steps"),
    F("FAST_POLL_MS", MS, "fast poll period",
      "poll period once remaining < average transferred per poll, 0 = keep"),
    F("STALL_MS", MS, "stall timeout",
      "KubeVirt stall detector: no progress at iteration starts this long declares a "
      "stall, 0 = no detector"),
    F("STALL_MARGIN", PCT, "stall margin",
      "progress: the lowest remaining at an iteration start fell by more than this"),
    F("STALL_DOWNTIME", MS, "stall downtime-limit", "set at a stall (maxDowntimeMs)"),
    F("STALL_ABORT", PCT, "stall abort share",
      "at a stall: abort (postcopy if allowed) when remaining / EWMA exceeds this share "
      "of POL_STALL_DOWNTIME"),
    F("SWITCHOVER_MS", MS, "switchover timeout", "after a stall, force the switchover after this"),
    F("FORCE_DOWNTIME", MS, "forcing downtime-limit", "downtime-limit that forces it"),
    F("N_STEPS", ONE, "schedule steps", "steps of the downtime schedule"),
    F("STEPS", MS, "downtime schedule",
      "(time after the schedule's start [ms], downtime-limit [ms]) pairs", length=0),
))

TABLES = {"params": PARAMS, "state": STATE, "trace": TRACE, "policy": POLICY}

# the slot names, generated: P_N_PAGES = 0, ..., and N_PARAMS, N_STATE, N_TRACE
for _table in TABLES.values():
    globals().update({_table.prefix + name: slot for name, slot in _table.slots().items()})
N_PARAMS, N_STATE, N_TRACE = PARAMS.size, STATE.size, TRACE.size
del _table

# --- workloads ---
UNIFORM = 0
HOTCOLD = 1
SEQUENTIAL = 2
ZIPF = 3
REPLAY = 4
PHASES = 5

# --- the guest's write streams: float64 array ``streams`` ---
G_REPLAY = 2            # after the two rates [1/ps]: replay pairs of (time [us], page)
G_PHASES = 2            # or phases: (duration [us], workload, rate 0, rate 1 [1/ps]) each
