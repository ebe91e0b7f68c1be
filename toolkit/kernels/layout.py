"""Slot numbers of the integer arrays passed between the API layer and the kernels.

Numba has no cheap mutable record that caches well, so a run's parameters and
state travel as ``int64`` arrays; these names keep the slots readable. They are
compile-time constants, not mutable globals.
"""

# --- parameters: int64 array ``p`` (filled by toolkit.encode.kernel_inputs) ---
P_N_PAGES = 0           # guest pages [pages]
P_WORKLOAD = 1          # 0 uniform, 1 hotcold, 2 sequential, 3 zipf, 4 replay, 5 phases
P_HOT_PAGES = 2         # hotcold: pages in the hot set, at the bottom of RAM; 0 otherwise [pages]
P_SEQ_START = 3         # sequential: first page of the written range [pages]
P_SEQ_PAGES = 4         # sequential: pages in the written range [pages]
P_ZERO_WORD0 = 5        # first bitmap word the zero bits of ``content`` cover (n_words: none)
P_RATE_LIMIT_MAX = 6    # max_bandwidth // 10, 0 = unlimited [B per 100 ms window]
P_DOWNTIME_LIMIT = 7    # downtime-limit [ms]
P_AVAIL_BW_PER_MS = 8   # avail_switchover_bandwidth // 1000, 0 = use the estimate [B/ms]
P_PS_NORMAL = 9         # one normal page the destination already holds (a re-send) [ps]
P_PS_ZERO = 10          # one zero page of allocated RAM (a full buffer_is_zero scan) [ps]
P_PS_SECTION = 11       # wire time of one iterate call's section header/footer/EOS [ps]
P_PS_SYNC_BASE = 12     # bitmap sync: fixed + per-GiB part [ps]
P_PS_SYNC_PAGE = 13     # bitmap sync: per page found in the dirty log [ps]
P_PS_SETUP = 14         # setup overhead before the first sync [ps]
P_PS_VM_STOP = 15       # vm_stop_force_state: pause vCPUs, drain and flush block [ps]
P_PS_DEVICE = 16        # wire time of the device state at switchover [ps]
P_DEVICE_BYTES = 17     # device state size [B]
P_PS_MAX_TIME = 18      # give up (not converged) after this [ps]
P_CHECK = 19            # 1: track page versions (no-data-lost check)
P_QEMU_RULE = 20        # switchover rule: 0 = 8.2, 1 = 9.0-10.0, 2 = 10.1 and later
P_AUTO_CONVERGE = 21    # 1: capability auto-converge
P_THROTTLE_TRIGGER = 22  # throttle-trigger-threshold [%]
P_THROTTLE_INITIAL = 23  # cpu-throttle-initial [%]
P_THROTTLE_INCREMENT = 24  # cpu-throttle-increment [%]
P_THROTTLE_TAILSLOW = 25  # 1: cpu-throttle-tailslow
P_THROTTLE_MAX = 26     # max-cpu-throttle [%]
P_PERIODIC_SYNC = 27    # 1: auto-converge's 5 s dirty-sync timer (QEMU 9.2 and later)
P_POSTCOPY_RAM = 28     # 1: capability postcopy-ram
P_POSTCOPY_START_SYNC = 29  # migrate-start-postcopy once dirty-sync-count reaches this, 0 = never
P_ZIPF_EXPONENT_MICRO = 30  # zipf: the exponent in millionths
P_DIRTY_LIMIT = 31      # 1: capability dirty-limit
P_DIRTY_QUOTA_PPM = 32  # dirty-limit: the guest's run fraction under its quota [ppm]
P_PS_FIRST_COPY = 33    # one normal page the destination receives for the first time [ps]
P_PS_ZERO_UNTOUCHED = 34  # one zero page of never-touched RAM (the shared zero page) [ps]
P_ZERO_WRITE_PPM = 35   # share of the guest's writes that write zeros [ppm]
P_PREALLOC = 36         # 1: -mem-prealloc: all RAM allocated on both sides from the start
P_SEQ_STRIDE = 37       # sequential: pages the write cursor advances per write
P_SEQ_CURSOR = 38       # sequential: offset in the range of the first write [pages]
P_WRITTEN_OFF = 39      # where the written bits start in ``content``, -1 = none [words]
P_DST_OFF = 40          # where the destination's bits start in ``content``, -1 = none: first
                        # copies cost no more than re-sends, nothing to track [words]
N_PARAMS = 41

# --- state: int64 array ``st`` (kernel-owned, read back as results) ---
S_T = 0                 # simulated time since `migrate` [ps]
S_WRITES = 1            # guest page writes applied so far
S_DIRTY = 2             # migration_dirty_pages [pages]
S_TRANSFERRED = 3       # migration_transferred_bytes() [B]
S_NORMAL = 4            # normal pages sent
S_ZERO = 5              # zero pages sent
S_CURSOR = 6            # last_page: the page search resumes here
S_SYNCS = 7             # dirty_sync_count
S_LAST_SYNC_MS = 8      # time_last_bitmap_sync, -1 before the first sync [ms]
S_PERIOD_PAGES = 9      # num_dirty_pages_period [pages]
S_DIRTY_RATE = 10       # dirty_pages_rate [pages/s]
S_DIRTY_BYTES_LAST_SYNC = 11  # [B]
S_RATE_START = 12       # rate_limit_start [B]
S_WIN_START_MS = 13     # iteration_start_time [ms]
S_WIN_BYTES0 = 14       # iteration_initial_bytes [B]
S_THRESHOLD = 15        # threshold_size [B]
S_EXPECTED_DOWNTIME = 16  # expected_downtime [ms]
S_N_WINDOWS = 17        # windows written to the trace
S_VM_RUNNING = 18       # 1 while the guest runs (and writes)
S_SETUP_T = 19          # end of setup [ps]
S_DOWNTIME_START = 20   # vm stop [ps], -1 if never
S_DOWNTIME_BYTES = 21   # bytes sent while the VM was stopped [B]
S_CONVERGED = 22        # 1 if switched over before max_time
S_LOST_PAGES = 23       # check mode: pages whose destination version differs, else -1
S_SWITCH_PENDING = 24   # pending at the switchover decision [B]
S_LOG_0 = 25            # stream 0: distinct pages of its range in the log, -1 while not counted
S_LOG_1 = 26            # stream 1: the same
S_SYNC_WRITES_0 = 27    # stream 0: its writes applied when the log was last cleared
S_SYNC_WRITES_1 = 28    # stream 1: the same
S_WRITES_1 = 29         # stream 1: its writes applied so far (S_WRITES counts both)
S_WRAPS = 30            # times the page search went round past the end of RAM
S_UNFLUSHED = 31        # normal pages queued in the QEMUFile since its last flush (0..31)
S_THROTTLE = 32         # cpu throttle percentage, 0 = not throttling [%]
S_HIGH_CNT = 33         # dirty_rate_high_cnt of migration_trigger_throttle
S_XFER_PREV = 34        # bytes_xfer_prev: transferred at the last rate-period close [B]
S_GUEST_BASE = 35       # guest run time at the last throttle change [ps]
S_THROTTLE_T0 = 36      # time of the last throttle change [ps]
S_TICK_NEXT = 37        # next tick of the 5 s dirty-sync timer [ps]
S_TICK_PREV = 38        # dirty_sync_count seen by the timer's previous tick
S_DOWNTIME_LIMIT = 39   # downtime-limit now (a policy may change it) [ms]
S_POLL_NEXT = 40        # next poll of the management policy's monitor [ps]
S_POL_DEADLINE_MS = 41  # the policy's completion deadline now, 0 = none [ms]
S_POL_PROGRESS_MS = 42  # when remaining last made progress [ms]
S_POL_MARK = 43         # remaining at the last poll, or its lowest value (lowmark) [B]
S_POL_LAST_REMAINING = 44  # remaining at the previous poll, -1 before the first [B]
S_POL_START_MS = 45     # when the downtime schedule started, -1 not yet [ms]
S_POL_STEP = 46         # next step of the downtime schedule
S_PAUSED_T = 47         # when the policy paused the guest, -1 never [ps]
S_ABORTED = 48          # 1 if the policy aborted the migration
S_GUEST_OFFSET = 49     # time the guest was stopped before running again (postcopy) [ps]
S_POSTCOPY_REQUESTED = 50  # 1 once migrate-start-postcopy was issued
S_POSTCOPY_T = 51       # when the destination started running (postcopy), -1 never [ps]
S_FAULTS = 52           # postcopy: pages the destination faulted on [pages]
S_DOWNTIME_END = 53     # end of the downtime [ps]
S_DIRTY_LIMIT_T = 54    # when dirty-limit started limiting the guest, -1 never [ps]
S_PHASE_IDX = 55        # phases: the phase now
S_PHASE_START = 56      # phases: when it began, on the guest's running clock [ps]
S_PHASE_DONE_0 = 57     # phases: stream 0's writes in this phase so far
S_PHASE_DONE_1 = 58     # phases: stream 1's
S_FIRST_COPIES = 59     # normal pages the destination received for the first time
S_UNTOUCHED = 60        # zero pages sent from never-touched RAM
S_LAST_BW = 61          # bandwidth of the last closed window, as query-migrate's mbps [B/s]
S_POL_PERIOD = 62       # the monitor's poll period now (Proxmox shortens it) [ms]
S_POL_POLLS = 63        # polls done so far
S_POL_LAST_TRANSFERRED = 64  # transferred at the previous poll [B]
S_POL_COUNTER = 65      # Proxmox: polls whose remaining grew or was zero, since the last step
S_POL_LAST_SYNCS = 66   # dirty_sync_count at the previous poll (a new iteration: it grew)
S_POL_STEP_MS = 67      # VEP 291: when the downtime last stepped up, -1 never [ms]
S_POL_EWMA = 68         # KubeVirt: EWMA of the reported bandwidth, -1 before a sample [B/s]
S_POL_BEST = 69         # KubeVirt: the lowest remaining at an iteration start, -1 none [B]
S_POL_STALL_PROGRESS_MS = 70  # KubeVirt: when that lowest value last fell by the margin [ms]
S_POL_STALL_MS = 71     # KubeVirt: when the stall was declared, -1 not yet [ms]
N_STATE = 72

# --- trace: float64 array ``trace[window, column]``, one row per closed window ---
W_TIME = 0              # window close, since `migrate` [ms]
W_TIME_SPENT = 1        # window length [ms]
W_BYTES = 2             # bytes queued in the window [B]
W_BANDWIDTH = 3         # bytes / time_spent [B/ms]
W_THRESHOLD = 4         # threshold_size [B]
W_PENDING = 5           # migration_dirty_pages * 4096 at window close [B]
W_TRANSFERRED = 6       # cumulative bytes [B]
W_SYNCS = 7             # dirty_sync_count
W_EXPECTED_DOWNTIME = 8 # [ms]
W_MBPS = 9              # this window, decimal Mbit/s
W_DIRTY_RATE = 10       # dirty_pages_rate [pages/s]
W_THROTTLE = 11         # cpu throttle percentage [%]
W_DOWNTIME_LIMIT = 12   # downtime-limit [ms]
N_TRACE = 13

# --- management policy: int64 array ``pol`` (toolkit.policies), read by kernels.policy ---
POL_POLL_MS = 0         # poll period of the monitor, 0 = no policy [ms]
POL_COMPLETION_MS = 1   # completion timeout, 0 = none [ms]
POL_ACTION = 2          # at the completion timeout: 0 none, 1 abort, 2 pause the guest, 3 postcopy
POL_DOUBLE = 3          # 1: after pausing, the timeout doubles (then aborts)
POL_PROGRESS_MS = 4     # abort when remaining made no progress for this long, 0 = never [ms]
POL_LOWMARK = 5         # 1: progress = below its lowest value; 0: below the previous poll
POL_START_ON_ITERATION = 6  # 1: the schedule starts at the first new iteration seen
POL_INITIAL_DOWNTIME = 7  # downtime-limit set at the start, -1 = keep [ms]
POL_NOVA_SWITCH = 8     # 1: Nova's switch to postcopy when an iteration made < 10 % progress
POL_TRIGGER = 9         # what moves the downtime schedule on: 0 time (the pairs' times), 1 a
                        # counter of polls whose remaining grew or was zero passing POL_COUNT
                        # (Proxmox), 2 a new iteration after iteration POL_COUNT, at most one
                        # step per POL_COOLDOWN_MS (KubeVirt VEP 291)
POL_COUNT = 10          # trigger 1: the counter's limit; trigger 2: the first iteration that steps
POL_COOLDOWN_MS = 11    # trigger 2: the least time between two steps [ms]
POL_FAST_POLL_MS = 12   # poll period once remaining < average transferred per poll, 0 = keep [ms]
POL_STALL_MS = 13       # KubeVirt stall detector: no progress at iteration starts this long
                        # declares a stall, 0 = no detector [ms]
POL_STALL_MARGIN = 14   # progress: the lowest remaining at an iteration start fell by > this [%]
POL_STALL_DOWNTIME = 15  # downtime-limit set at a stall (maxDowntimeMs) [ms]
POL_STALL_ABORT = 16    # at a stall: abort (postcopy if allowed) when remaining / EWMA exceeds
                        # this share of POL_STALL_DOWNTIME [%]
POL_SWITCHOVER_MS = 17  # after a stall, force the switchover after this [ms]
POL_FORCE_DOWNTIME = 18  # downtime-limit that forces it [ms]
POL_N_STEPS = 19        # steps of the downtime schedule
POL_STEPS = 20          # then (time after the schedule's start [ms], downtime-limit [ms]) pairs

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
