"""The kernel's arrays, declared once: one field table per array.

A run's parameters, state, trace, management policy, write streams and stream seeds
travel as plain ``int64`` (the trace and the streams ``float64``, the seeds
``uint64``) arrays. Each array has one table below listing its fields in slot order:
name, units, long_name, description, and for the state and trace the Dataset variable
a field becomes (:mod:`toolkit.schema` reads it from here). A field may hold one value
per write stream (``length=N_STREAMS``: the per-stream state, read as
``st[S_LOG + s]``) or, last in its table, a tail of any length: records of a table of their own
(``record``), record ``i`` at ``tail + i * size`` (``G_REPLAY + i * GR_SIZE``), each
field at its own slot in it. Several tails of one table are alternatives starting at
the same slot (the streams' replayed trace or phases: the workload says which).

The slot names the kernels use (``P_N_PAGES``, ``S_T``, ``W_TIME``, ``POL_POLL_MS``,
``G_RATE``, ``GR_PAGE``, and ``N_PARAMS``, ``N_STATE``, ``N_TRACE``, each record
table's size ``GR_SIZE``, ``GP_SIZE``, ``STEP_SIZE``) are generated from the tables
when this module is imported: plain module-level ints, which numba freezes as
compile-time constants. (Measured on numba 0.68: structured records cost the same as these
slots, a structref holding the arrays is 2-3x slower, a jitclass cannot be cached.)
"""
from __future__ import annotations

import hashlib
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
        any length (last in its table; several tails are alternatives at one slot).
    dtype : str
        The value's type as read back: ``"bool"`` for a 0/1 flag, else the array's.
    result : str or None
        The Dataset variable it becomes (:func:`toolkit.schema.build_dataset`).
    record : Table or None
        A tail's records: each takes ``record.size`` slots, laid out by that table.
    """

    name: str
    units: str
    long_name: str
    description: str = ""
    length: int = 1
    dtype: str = ""
    result: str | None = None
    record: Table | None = None


class Table(NamedTuple):
    """The field table of one kernel array: slot prefix, array dtype, fields in order."""

    prefix: str
    dtype: str
    fields: tuple

    def slots(self) -> dict:
        """Slot number of each field by its name (a field of length 2 takes two; tails
        all start at :attr:`size`)."""
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

    def digest(self) -> str:
        """A short hash of the slots (names and lengths in order): stored kernel state
        of another layout does not match it."""
        text = repr([(f.name, f.length) for f in self.fields])
        return hashlib.sha256(text.encode()).hexdigest()[:12]


_F = Field
_PS, _MS, _B, _ONE, _PCT, _PAGES = "ps", "ms", "B", "1", "%", "1"

# --- parameters: filled by toolkit.encode.kernel_inputs ---
PARAMS = Table("P_", "int64", (
    _F("N_PAGES", _PAGES, "guest pages", "[pages]"),
    _F("WORKLOAD", _ONE, "workload",
      "0 uniform, 1 hotcold, 2 sequential, 3 zipf, 4 replay, 5 phases"),
    _F("HOT_PAGES", _PAGES, "hot set", "hotcold: pages in the hot set, at the bottom of RAM; "
      "0 otherwise [pages]"),
    _F("SEQ_START", _PAGES, "write range start", "sequential: first page of the written range"),
    _F("SEQ_PAGES", _PAGES, "write range", "sequential: pages in the written range"),
    _F("ZERO_WORD0", _ONE, "first zero word",
      "first bitmap word the zero bits of ``content`` cover (n_words: none)"),
    _F("RATE_LIMIT_MAX", _B, "window byte budget",
      "max_bandwidth // 10, 0 = unlimited [B per 100 ms window]"),
    _F("DOWNTIME_LIMIT", _MS, "downtime-limit"),
    _F("AVAIL_BW_PER_MS", "B ms-1", "avail-switchover-bandwidth",
      "avail_switchover_bandwidth // 1000, 0 = use the estimate"),
    _F("PS_NORMAL", _PS, "re-send time", "one normal page the destination already holds"),
    _F("PS_ZERO", _PS, "zero page time",
      "one zero page of allocated RAM (a full buffer_is_zero scan)"),
    _F("PS_SECTION", _PS, "section time",
      "wire time of one iterate call's section header/footer/EOS"),
    _F("PS_SYNC_BASE", _PS, "sync time", "bitmap sync: fixed + per-GiB part"),
    _F("PS_SYNC_PAGE", _PS, "sync time per page", "bitmap sync: per page found in the dirty log"),
    _F("PS_SETUP", _PS, "setup time", "setup overhead before the first sync"),
    _F("PS_VM_STOP", _PS, "vm stop time",
      "vm_stop_force_state: pause vCPUs, drain and flush block"),
    _F("PS_DEVICE", _PS, "device state time", "wire time of the device state at switchover"),
    _F("DEVICE_BYTES", _B, "device state size"),
    _F("PS_MAX_TIME", _PS, "max_time", "give up (not converged) after this"),
    _F("CHECK", _ONE, "check mode", "1: track page versions (no-data-lost check)", dtype="bool"),
    _F("QEMU_RULE", _ONE, "switchover rule", "0 = 8.2, 1 = 9.0-10.0, 2 = 10.1 and later"),
    _F("AUTO_CONVERGE", _ONE, "auto-converge", "1: capability auto-converge", dtype="bool"),
    _F("THROTTLE_TRIGGER", _PCT, "throttle-trigger-threshold"),
    _F("THROTTLE_INITIAL", _PCT, "cpu-throttle-initial"),
    _F("THROTTLE_INCREMENT", _PCT, "cpu-throttle-increment"),
    _F("THROTTLE_TAILSLOW", _ONE, "cpu-throttle-tailslow", dtype="bool"),
    _F("THROTTLE_MAX", _PCT, "max-cpu-throttle"),
    _F("PERIODIC_SYNC", _ONE, "periodic dirty sync",
      "1: auto-converge's 5 s dirty-sync timer (QEMU 9.2 and later)", dtype="bool"),
    _F("POSTCOPY_RAM", _ONE, "postcopy-ram", "1: capability postcopy-ram", dtype="bool"),
    _F("POSTCOPY_START_SYNC", _ONE, "postcopy start",
      "migrate-start-postcopy once dirty-sync-count reaches this, 0 = never"),
    _F("ZIPF_EXPONENT_MICRO", _ONE, "zipf exponent", "zipf: the exponent in millionths"),
    _F("DIRTY_LIMIT", _ONE, "dirty-limit", "1: capability dirty-limit", dtype="bool"),
    _F("DIRTY_QUOTA_PPM", _ONE, "dirty-limit run fraction",
      "dirty-limit: the guest's run fraction under its quota [ppm]"),
    _F("PS_POPULATE", _PS, "populate time",
      "the destination populates one 2 MiB region (a transparent huge page) at the "
      "first normal page it receives there"),
    _F("SOCKET_BUFFER", _B, "socket buffer",
      "bytes the source may queue ahead of a destination busy populating"),
    _F("PS_ZERO_UNTOUCHED", _PS, "untouched zero page time",
      "one zero page of never-touched RAM (the shared zero page)"),
    _F("ZERO_WRITE_PPM", _ONE, "zero write share",
      "share of the guest's writes that write zeros [ppm]"),
    _F("PREALLOC", _ONE, "mem-prealloc",
      "1: all RAM allocated on both sides from the start", dtype="bool"),
    _F("SEQ_STRIDE", _PAGES, "write stride", "sequential: pages the cursor advances per write"),
    _F("SEQ_CURSOR", _PAGES, "write cursor", "sequential: offset in the range of the first write"),
    _F("WRITTEN_OFF", _ONE, "written bits offset",
      "where the written bits start in ``content``, -1 = none [words]"),
    _F("DST_OFF", _ONE, "destination bits offset",
      "where the destination's bits start in ``content`` (a word's bits all set once "
      "its 2 MiB region is populated), -1 = none: populating costs nothing, nothing "
      "to track [words]"),
    # multifd (migration/multifd.c, multifd-nocomp.c, multifd-zlib.c, multifd-zstd.c)
    _F("MULTIFD_CHANNELS", _ONE, "multifd-channels", "sender threads; 0 = multifd off"),
    _F("MF_DETECT", _ONE, "zero detection in the channels",
      "1: zero-page-detection=multifd with multifd on (QEMU 9.0+): the channels scan "
      "the pages; 0: the migration thread does (legacy)", dtype="bool"),
    _F("PS_MF_QUEUE", _PS, "queue time",
      "migration thread: one page queued into the packet (multifd_queue_page)"),
    _F("PS_MF_PACKET", _PS, "packet time", "channel: CPU time per packet (fill, writev)"),
    _F("PS_MF_PAGE", _PS, "channel page time",
      "channel: CPU time per normal page (sent as is, or compressed)"),
    _F("PS_MF_ZERO", _PS, "channel zero page time",
      "channel: scan of a zero page of allocated RAM (zero detection there)"),
    _F("PS_MF_UNTOUCHED", _PS, "channel untouched zero page time",
      "channel: scan of a zero page of never-touched RAM"),
    _F("PS_MF_DST_PAGE", _PS, "destination page time",
      "destination receive thread: per normal page (copy)"),
    _F("PS_MF_HEADER_WIRE", _PS, "packet header wire time",
      "wire time of a packet's header and page offsets"),
    _F("PS_MF_PAGE_WIRE", _PS, "packet page wire time",
      "wire time of one normal page's data in a packet (compressed: its share)"),
    _F("MF_PAGE_BYTES", _B, "packet page bytes",
      "bytes of one normal page's data in a packet (4096, or compressed)"),
))

# --- state: kernel-owned, zero on entry, read back as results ---
CHANNEL = Table("CH_", "int64", (      # a record of STATE's multifd channels
    _F("END", _PS, "packet end", "when the channel's last packet is written"),
    _F("BYTES", _B, "bytes in flight",
      "that packet's bytes, until multifd_bytes counts them (0 once counted)"),
))
STATE = Table("S_", "int64", (
    _F("T", _PS, "total time", "query-migrate total-time: migrate command to completion "
      "(to max_time if not converged)", result="total_time"),
    _F("WRITES", _ONE, "guest page writes", "page writes the guest issued [pages]",
      result="guest_writes"),
    _F("DIRTY", _PAGES, "migration_dirty_pages", "pages dirty in the migration bitmap [pages]"),
    _F("TRANSFERRED", _B, "bytes transferred", "query-migrate ram.transferred plus device state",
      result="transferred"),
    _F("NORMAL", _ONE, "normal pages sent", "query-migrate ram.normal [pages]",
      result="normal_pages"),
    _F("ZERO", _ONE, "zero pages sent", "query-migrate ram.duplicate [pages]",
      result="zero_pages"),
    _F("CURSOR", _ONE, "page the search resumes at",
      "ram.c last_page at the end: in the first pass, how far it got [pages]",
      result="last_page"),
    _F("SYNCS", _ONE, "dirty bitmap syncs", "query-migrate dirty-sync-count",
      result="dirty_sync_count"),
    _F("LAST_SYNC_MS", _MS, "time_last_bitmap_sync", "-1 before the first sync"),
    _F("PERIOD_PAGES", _PAGES, "num_dirty_pages_period", "[pages]"),
    _F("DIRTY_RATE", "s-1", "dirty pages rate",
      "query-migrate ram.dirty-pages-rate: newly dirty pages per second",
      result="dirty_pages_rate"),
    _F("DIRTY_BYTES_LAST_SYNC", _B, "pending at the last sync",
      "dirty pages x 4096 right after the last bitmap sync "
      "(mig_stats dirty_bytes_last_sync: the last exact pending)",
      result="dirty_bytes_last_sync"),
    _F("RATE_START", _B, "rate_limit_start"),
    _F("WIN_START_MS", _MS, "iteration_start_time"),
    _F("WIN_BYTES0", _B, "iteration_initial_bytes"),
    _F("THRESHOLD", _B, "threshold at switchover",
      "threshold_size when the switchover was decided (the last one if not converged)",
      result="switchover_threshold"),
    _F("EXPECTED_DOWNTIME", _MS, "expected downtime",
      "query-migrate expected-downtime at the last closed window", dtype="float64",
      result="expected_downtime"),
    _F("N_WINDOWS", _ONE, "windows", "windows written to the trace"),
    _F("VM_RUNNING", _ONE, "vm running", "1 while the guest runs (and writes)", dtype="bool"),
    _F("SETUP_T", _PS, "setup time", "query-migrate setup-time", result="setup_time"),
    _F("DOWNTIME_START", _PS, "vm stop", "-1 if never"),
    _F("DOWNTIME_BYTES", _B, "bytes sent during downtime",
      "query-migrate ram.downtime-bytes plus device state", result="downtime_bytes"),
    _F("CONVERGED", _ONE, "switched over before max_time",
      "1 if QEMU's switchover test passed before max_time, else 0", dtype="bool",
      result="converged"),
    _F("LOST_PAGES", _ONE, "pages lost",
      "check mode: pages whose destination copy is not the source's last "
      "version [pages]; -1 when not checked", result="lost_pages"),
    _F("SWITCH_PENDING", _B, "pending at switchover",
      "pending at the switchover decision (see schema's switchover_pending)"),
    # per stream: distinct pages of its range in the log, -1 while not counted
    _F("LOG", _PAGES, "logged pages", "stream s: distinct pages of its range in the dirty log, "
      "-1 while not counted", length=N_STREAMS),
    _F("SYNC_WRITES", _ONE, "writes at the last sync",
      "stream s: its writes applied when the log was last cleared", length=N_STREAMS),
    _F("STREAM_WRITES", _ONE, "stream writes",
      "stream s: its writes applied so far (WRITES counts all)", length=N_STREAMS),
    _F("WRAPS", _ONE, "passes over RAM completed",
      "times the page search went round past the end of RAM: 0 while in the first "
      "pass (see toolkit.verdict)", result="passes"),
    _F("UNFLUSHED", _PAGES, "unflushed pages",
      "normal pages queued in the QEMUFile since its last flush (0..31)"),
    _F("THROTTLE", _PCT, "CPU throttle at the end",
      "query-migrate cpu-throttle-percentage (auto-converge); 0 when not throttling",
      result="cpu_throttle_percentage"),
    _F("HIGH_CNT", _ONE, "dirty_rate_high_cnt", "of migration_trigger_throttle"),
    _F("XFER_PREV", _B, "bytes_xfer_prev", "transferred at the last rate-period close"),
    _F("GUEST_BASE", _PS, "guest run time base", "guest run time at the last throttle change"),
    _F("THROTTLE_T0", _PS, "throttle change", "time of the last throttle change"),
    _F("TICK_NEXT", _PS, "next dirty-sync tick", "next tick of the 5 s dirty-sync timer"),
    _F("TICK_PREV", _ONE, "syncs at the previous tick",
      "dirty_sync_count seen by the timer's previous tick"),
    _F("DOWNTIME_LIMIT", _MS, "downtime-limit at the end",
      "the downtime-limit in force at the end (a policy may raise it)",
      result="final_downtime_limit"),
    _F("POLL_NEXT", _PS, "next poll", "next poll of the management policy's monitor"),
    _F("POL_DEADLINE_MS", _MS, "policy deadline",
      "the policy's completion deadline now, 0 = none"),
    _F("POL_PROGRESS_MS", _MS, "policy progress", "when remaining last made progress"),
    _F("POL_MARK", _B, "policy mark", "remaining at the last poll, or its lowest value (lowmark)"),
    _F("POL_LAST_REMAINING", _B, "remaining at the previous poll", "-1 before the first"),
    _F("POL_START_MS", _MS, "schedule start", "when the downtime schedule started, -1 not yet"),
    _F("POL_STEP", _ONE, "schedule step", "next step of the downtime schedule"),
    _F("PAUSED_T", _PS, "guest paused at",
      "when the management policy paused the guest; NaN if it never did",
      result="pause_time"),
    _F("ABORTED", _ONE, "aborted by the policy",
      "1 if the management policy cancelled the migration (migrate_cancel)", dtype="bool",
      result="aborted"),
    _F("GUEST_OFFSET", _PS, "guest stopped time",
      "time the guest was stopped before running again (postcopy)"),
    _F("POSTCOPY_REQUESTED", _ONE, "postcopy requested",
      "1 once migrate-start-postcopy was issued", dtype="bool"),
    _F("POSTCOPY_T", _PS, "postcopy started at",
      "when the destination started running in postcopy (the downtime ended); NaN if the "
      "migration never switched to postcopy", result="postcopy_start_time"),
    _F("FAULTS", _ONE, "postcopy page faults",
      "pages the destination's guest touched before they arrived [pages]",
      result="postcopy_faults"),
    _F("DOWNTIME_END", _PS, "end of the downtime"),
    _F("DST_T", _PS, "destination busy until",
      "when the destination has populated the regions it was sent so far"),
    _F("DST_AT", _B, "destination stuck at",
      "the stream's byte where the destination began populating while it is busy"),
    _F("DIRTY_LIMIT_T", _PS, "dirty-limit started at",
      "when dirty-limit began holding the vCPUs to their quota; NaN if it never did",
      result="dirty_limit_start_time"),
    _F("PHASE_IDX", _ONE, "phase", "phases: the phase now"),
    _F("PHASE_START", _PS, "phase start", "phases: when it began, on the guest's running clock"),
    _F("PHASE_DONE", _ONE, "phase writes", "phases: stream s's writes in this phase so far",
      length=N_STREAMS),
    _F("POPULATED", _ONE, "regions the destination populated",
      "2 MiB regions of guest RAM the destination populated during the migration "
      "(counted only when populating costs time) [regions]", result="populated_regions"),
    _F("UNTOUCHED", _ONE, "zero pages of never-touched RAM",
      "zero pages sent from RAM never allocated (the cheaper scan) [pages]",
      result="untouched_zero_pages"),
    _F("LAST_BW", "B s-1", "last bandwidth",
      "bandwidth of the last closed window, as query-migrate's mbps"),
    _F("POL_PERIOD", _MS, "poll period", "the monitor's poll period now (Proxmox shortens it)"),
    _F("POL_POLLS", _ONE, "polls", "polls done so far"),
    _F("POL_LAST_TRANSFERRED", _B, "transferred at the previous poll"),
    _F("POL_COUNTER", _ONE, "Proxmox counter",
      "Proxmox: polls whose remaining grew or was zero, since the last step"),
    _F("POL_LAST_SYNCS", _ONE, "syncs at the previous poll",
      "dirty_sync_count at the previous poll (a new iteration: it grew)"),
    _F("POL_STEP_MS", _MS, "last step", "VEP 291: when the downtime last stepped up, -1 never"),
    _F("POL_EWMA", "B s-1", "bandwidth EWMA",
      "KubeVirt: EWMA of the reported bandwidth, -1 before a sample"),
    _F("POL_BEST", _B, "lowest remaining",
      "KubeVirt: the lowest remaining at an iteration start, -1 none"),
    _F("POL_STALL_PROGRESS_MS", _MS, "stall progress",
      "KubeVirt: when that lowest value last fell by the margin"),
    _F("POL_STALL_MS", _MS, "stall declared", "KubeVirt: when the stall was declared, -1 not yet"),
    # multifd: the packet being filled, the channels' work in flight, the link
    _F("MF_FILL", _PAGES, "packet pages", "pages queued in the packet being filled (0..127)"),
    _F("MF_NORMAL", _PAGES, "packet normal pages", "of them normal pages"),
    _F("MF_ZERO", _PAGES, "packet zero pages", "of them zero pages of allocated RAM"),
    _F("MF_UNTOUCHED", _PAGES, "packet untouched zero pages",
      "of them zero pages of never-touched RAM"),
    _F("MF_POPULATED", _ONE, "packet populations",
      "2 MiB regions the packet's normal pages populate on the destination"),
    _F("MF_INFLIGHT", _B, "multifd bytes in flight",
      "bytes handed to channels not yet written (multifd_bytes counts them after)"),
    _F("MF_NEXT_END", _PS, "next packet end",
      "when the earliest packet in flight is written, INT64_MAX if none"),
    _F("LINK_T", _PS, "link busy until", "multifd: the channels' packets share the link"),
    _F("MF_FLUSHED", _ONE, "passes flushed",
      "passes over RAM whose end multifd_ram_flush_and_sync has handled"),
    _F("MULTIFD_BYTES", _B, "multifd bytes", "query-migrate ram.multifd-bytes: bytes the "
      "channels wrote (packets and sync packets)", result="multifd_bytes"),
    _F("MF_PACKETS", _ONE, "multifd packets", "packets of pages the channels sent",
      result="multifd_packets"),
    _F("MF_WAIT", _PS, "waited for a channel",
      "time the migration thread waited for a free channel or a channel sync "
      "(multifd_send, multifd_send_sync_main)", result="multifd_wait_time"),
    _F("MF_CPU", _PS, "channel CPU time",
      "CPU time of the channel threads for the packets and sync packets handed to them "
      "(all channels together: over the total time, the cores they keep busy)",
      result="multifd_cpu_time"),
    _F("CHANNELS", _ONE, "channels", "multifd: per channel, records of CHANNEL",
      length=0, record=CHANNEL),
))

# --- trace: ``trace[window, column]``, one row per closed window ---
TRACE = Table("W_", "float64", (
    _F("TIME", _MS, "time since migrate (window close)", result="time"),
    _F("TIME_SPENT", _MS, "window length", result="time_spent"),
    _F("BYTES", _B, "bytes queued in the window", result="window_bytes"),
    _F("BANDWIDTH", "B ms-1", "estimated bandwidth (one window, migration_update_counters)",
      "bytes / time_spent", result="bandwidth"),
    _F("THRESHOLD", _B, "switchover threshold (threshold_size)", result="threshold"),
    _F("PENDING", _B, "pending dirty bytes at window close",
      "migration_dirty_pages * 4096", result="pending"),
    _F("TRANSFERRED", _B, "bytes transferred since migrate", result="cumulative_transferred"),
    _F("SYNCS", _ONE, "dirty-sync-count at window close", result="syncs"),
    _F("EXPECTED_DOWNTIME", _MS, "expected downtime", result="window_expected_downtime"),
    _F("MBPS", "Mbit s-1", "throughput of the window (query-migrate mbps)", "decimal Mbit/s",
      result="window_mbps"),
    _F("DIRTY_RATE", "s-1", "dirty pages rate", result="window_dirty_pages_rate"),
    _F("THROTTLE", _PCT, "CPU throttle at window close (auto-converge)",
      result="window_cpu_throttle_percentage"),
    _F("DOWNTIME_LIMIT", _MS, "downtime-limit at window close", result="window_downtime_limit"),
))

# --- management policy: built by toolkit.policies, read by kernels.policy ---
STEP = Table("STEP_", "int64", (       # a record of POLICY's downtime schedule
    _F("TIME_MS", _MS, "step time", "time after the schedule's start"),
    _F("DOWNTIME_LIMIT", _MS, "step downtime-limit", "the downtime-limit the step sets"),
))
POLICY = Table("POL_", "int64", (
    _F("POLL_MS", _MS, "poll period", "poll period of the monitor, 0 = no policy"),
    _F("COMPLETION_MS", _MS, "completion timeout", "0 = none"),
    _F("ACTION", _ONE, "timeout action",
      "at the completion timeout: 0 none, 1 abort, 2 pause the guest, 3 postcopy"),
    _F("DOUBLE", _ONE, "double after pause",
      "1: after pausing, the timeout doubles (then aborts)", dtype="bool"),
    _F("PROGRESS_MS", _MS, "progress timeout",
      "abort when remaining made no progress for this long, 0 = never"),
    _F("LOWMARK", _ONE, "lowmark",
      "1: progress = below its lowest value; 0: below the previous poll", dtype="bool"),
    _F("START_ON_ITERATION", _ONE, "start on iteration",
      "1: the schedule starts at the first new iteration seen", dtype="bool"),
    _F("INITIAL_DOWNTIME", _MS, "initial downtime-limit", "set at the start, -1 = keep"),
    _F("NOVA_SWITCH", _ONE, "Nova postcopy switch",
      "1: switch to postcopy when an iteration made < 10 % progress", dtype="bool"),
    _F("TRIGGER", _ONE, "schedule trigger",
      "what moves the downtime schedule on: 0 time (the pairs' times), 1 a counter of polls "
      "whose remaining grew or was zero passing POL_COUNT (Proxmox), 2 a new iteration after "
      "iteration POL_COUNT, at most one step per POL_COOLDOWN_MS (KubeVirt VEP 291)"),
    _F("COUNT", _ONE, "trigger count",
      "trigger 1: the counter's limit; trigger 2: the first iteration that steps"),
    _F("COOLDOWN_MS", _MS, "cooldown", "trigger 2: the least time between two steps"),
    _F("FAST_POLL_MS", _MS, "fast poll period",
      "poll period once remaining < average transferred per poll, 0 = keep"),
    _F("STALL_MS", _MS, "stall timeout",
      "KubeVirt stall detector: no progress at iteration starts this long declares a "
      "stall, 0 = no detector"),
    _F("STALL_MARGIN", _PCT, "stall margin",
      "progress: the lowest remaining at an iteration start fell by more than this"),
    _F("STALL_DOWNTIME", _MS, "stall downtime-limit", "set at a stall (maxDowntimeMs)"),
    _F("STALL_ABORT", _PCT, "stall abort share",
      "at a stall: abort (postcopy if allowed) when remaining / EWMA exceeds this share "
      "of POL_STALL_DOWNTIME"),
    _F("SWITCHOVER_MS", _MS, "switchover timeout",
       "after a stall, force the switchover after this"),
    _F("FORCE_DOWNTIME", _MS, "forcing downtime-limit", "downtime-limit that forces it"),
    _F("N_STEPS", _ONE, "schedule steps", "steps of the downtime schedule"),
    _F("STEPS", _MS, "downtime schedule", "POL_N_STEPS records of STEP", length=0,
      record=STEP),
))

# --- the guest's write streams: float64, built by toolkit.encode, read by kernels.guest ---
REPLAY_WRITE = Table("GR_", "float64", (    # a record of STREAMS' replayed trace
    _F("TIME", "us", "write time", "when the write is due, on the guest's running clock"),
    _F("PAGE", _PAGES, "written page"),
))
PHASE = Table("GP_", "float64", (           # a record of STREAMS' phases
    _F("DURATION", "us", "phase duration", "on the guest's running clock"),
    _F("WORKLOAD", _ONE, "phase workload", "as P_WORKLOAD (not replay or phases)"),
    _F("RATE", "ps-1", "phase write rate", "stream s: page writes per picosecond in the "
      "phase, 0 = unused", length=N_STREAMS),
))
STREAMS = Table("G_", "float64", (
    _F("RATE", "ps-1", "write rate", "stream s: page writes per picosecond (hotcold: "
      "stream 0 the hot set, 1 the rest; else stream 0 alone); 0 for replay and phases, "
      "whose tails hold the writes", length=N_STREAMS),
    _F("REPLAY", "1", "replayed trace", "replay: the trace's writes in time order, records "
      "of REPLAY_WRITE", length=0, record=REPLAY_WRITE),
    _F("PHASES", "1", "phases", "phases: the phases in order (the list cycles), records "
      "of PHASE", length=0, record=PHASE),
))

# --- the streams' random sequences: uint64, from Scenario.stream_seeds, advanced in place ---
SEEDS = Table("R_", "uint64", (
    _F("STATE", _ONE, "SplitMix64 state", "stream s: its random sequence's state now",
      length=N_STREAMS),
))

TABLES = {"params": PARAMS, "state": STATE, "trace": TRACE, "policy": POLICY,
          "streams": STREAMS, "seeds": SEEDS}
#: the tables of a tail's records, by the tail's table and field
RECORDS = {(key, f.name): f.record for key, table in TABLES.items() for f in table.fields
           if f.record is not None}

# the slot names, generated: P_N_PAGES = 0, ..., N_PARAMS, N_STATE, N_TRACE, and a
# record table's size (GR_SIZE = 2)
for _table in (*TABLES.values(), *RECORDS.values()):
    globals().update({_table.prefix + name: slot for name, slot in _table.slots().items()})
for _table in RECORDS.values():
    globals()[_table.prefix + "SIZE"] = _table.size
N_PARAMS, N_STATE, N_TRACE = PARAMS.size, STATE.size, TRACE.size
del _table

# --- workloads ---
UNIFORM = 0
HOTCOLD = 1
SEQUENTIAL = 2
ZIPF = 3
REPLAY = 4
PHASES = 5
