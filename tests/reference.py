"""A slow, obviously correct pure-Python simulator of the same model as the kernel.

It shares nothing with ``toolkit.kernels`` or ``toolkit.simulate`` but the names and
order of the trace's columns (the field table ``kernels.layout.TRACE``): it reads the
:class:`toolkit.Scenario` and follows the model's rules (docs/model.md) with
Python sets, one page at a time. Tests compare it with the kernel on small
guests; the results must be identical.
"""
from __future__ import annotations

import math

from toolkit import units as tk_units
from toolkit.kernels.layout import TRACE

MASK64 = (1 << 64) - 1
PS_PER_MS = 10**9
PAGE = 4096
MULTIFD_HEADER = 320 + 8 * 128    # a multifd packet's header and page offsets [B]


def splitmix64(state: int) -> tuple[int, int]:
    """SplitMix64 (Steele, Lea, Flood 2014): next state and 64-bit output."""
    state = (state + 0x9E3779B97F4A7C15) & MASK64
    z = state
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK64
    return state, z ^ (z >> 31)


def below(z: int, n: int) -> int:
    """A page in range(n) from a 64-bit draw: the top 32 bits scaled by n."""
    return (z >> 32) * n >> 32


def zipf_rank(state: int, n: int, q: float) -> tuple[int, int]:
    """A rank in 1..n with probability proportional to rank ** -q: Hörmann and
    Derflinger's rejection-inversion, one SplitMix64 draw per try."""
    def h_int(x):
        return math.log(x) if q == 1.0 else (x ** (1.0 - q) - 1.0) / (1.0 - q)

    def h_int_inv(x):
        return math.exp(x) if q == 1.0 else (1.0 + x * (1.0 - q)) ** (1.0 / (1.0 - q))

    lo, hi = h_int(1.5) - 1.0, h_int(n + 0.5)
    s = 2.0 - h_int_inv(h_int(2.5) - 2.0 ** -q)
    while True:
        state, z = splitmix64(state)
        u = hi + (z >> 11) * (1.0 / 9007199254740992.0) * (lo - hi)
        x = h_int_inv(u)
        k = min(max(int(x + 0.5), 1), n)
        if k - x <= s or u >= h_int(k + 0.5) - float(k) ** -q:
            return state, k


def read_trace(path: str) -> tuple[list[int], list[int]]:
    """A text write trace: '<time_us> <page>' per line, '#' comments."""
    times, pages = [], []
    for line in open(path):
        if line.strip() and not line.startswith("#"):
            t, page = line.replace(",", " ").split()
            times.append(int(t))
            pages.append(int(page))
    return times, pages


def ps(seconds: float) -> int:
    return int(round(seconds * 10**12))


class Reference:
    """One migration, run by :meth:`run`; results in attributes."""

    def __init__(self, sc):
        self.sc = sc
        n = self.n = sc.ram_size // PAGE
        link = sc.link_bandwidth
        # a page takes the longest of the source's, the wire's and the destination's time
        source_or_wire = max(ps(sc.page_send_time * 1e-9), ps(4104 / link))
        self.t_resend = max(source_or_wire, ps(sc.dst_copy_time * 1e-9))
        self.t_populate = ps(sc.dst_populate_time * 1e-3) if sc.dst_populates else 0

        self.t_zero = max(ps(sc.zero_page_scan_time * 1e-9), ps(9 / link))
        self.t_zero_untouched = max(ps(sc.untouched_page_scan_time * 1e-9), ps(9 / link))
        self.detect = sc.zero_page_detection != "none"
        self.t_section = ps(18 / link)
        self.t_sync = ps((sc.sync_time_fixed + sc.sync_time_per_gib * sc.ram_size / 2**30) / 1e3)
        self.t_sync_page = ps(sc.sync_time_per_dirty_page * 1e-9)
        # multifd: channels (0 = off), who finds zero pages, the costs of a packet
        self.channels = sc.multifd_channels if sc.multifd else 0
        self.mf_detect = self.channels > 0 and sc.zero_page_detection == "multifd" and \
            sc.qemu_version != "8.2"
        page_time = {"none": sc.multifd_page_time, "zlib": sc.zlib_page_time,
                     "zstd": sc.zstd_page_time}[sc.multifd_compression]
        self.mf_page_bytes = PAGE if sc.multifd_compression == "none" else \
            max(1, round(PAGE * sc.compressed_fraction))
        self.t_mf_queue = ps(sc.multifd_queue_time * 1e-9)
        self.t_mf_packet = ps(sc.multifd_packet_time * 1e-9)
        self.t_mf_page = ps(page_time * 1e-9)
        self.t_mf_zero = ps(sc.zero_page_scan_time * 1e-9)
        self.t_mf_untouched = ps(sc.untouched_page_scan_time * 1e-9)
        self.t_mf_dst_page = ps(sc.dst_copy_time * 1e-9)
        self.t_mf_header = ps(MULTIFD_HEADER / link)
        self.t_mf_page_wire = ps(self.mf_page_bytes / link)
        self.ch = [[0, 0] for _ in range(self.channels)]    # [end ps, bytes not yet counted]
        self.packet = []                 # pages queued: (normal, zero allocated, populates)
        self.link_t = 0
        self.multifd_bytes = self.mf_packets = self.mf_wait = self.mf_cpu = 0
        self.pass_ended = False          # the last page sent was RAM's last, not flushed yet
        self.main_populations = 0        # regions populated from the main stream
        self.limit = sc.max_bandwidth // 10
        self.avail_per_ms = sc.avail_switchover_bandwidth // 1000
        rate = sc.dirty_rate / PAGE / 10**12
        hotcold = sc.workload == "hotcold"
        share = sc.hot_share if hotcold else 1.0
        self.rates = [rate * share, rate * (1.0 - share)]   # write streams, per ps
        self.hot = int(round(sc.hot_fraction * n)) if sc.workload in ('hotcold', 'phases') else 0
        self.rng = list(sc.stream_seeds)
        self.replay = read_trace(sc.write_trace) if sc.workload == "replay" else None
        self.phases = None
        if sc.workload == "phases":                 # (workload, rates per ps, duration ps)
            self.phases = []
            for item in sc.phases.split(","):
                workload, rate, duration = (x.strip() for x in item.split(":"))
                per_ps = tk_units.parse_rate(rate, "rate") / PAGE / 10**12
                share = sc.hot_share if workload == "hotcold" else 1.0
                seconds = tk_units.parse_duration(duration, "duration", "s")
                self.phases.append((workload, [per_ps * share, per_ps * (1.0 - share)],
                                    int(seconds * 1e6 * 1e6)))
            self.phase, self.phase_start, self.phase_done = 0, 0, [0, 0]
        self.done = [0, 0]
        # state
        self.t = 0
        self.writes = 0
        self.running = True
        self.log: set[int] = set()
        self.dirty: set[int] = set()
        data = {q for a, b in (sc.data_page_ranges if sc.data_ranges else ()) for q in range(a, b)}
        self.nonzero = set(range(sc.zero_start)) | data       # pages holding data
        self.touched = set(range(n)) if sc.mem_prealloc else \
            set(range(sc.zero_allocated_end)) | data
        self.populated: set[int] = set()       # the destination's populated 2 MiB regions
        self.untouched = 0
        self.dst_t = 0                   # the destination has populated all it got by then
        self.dst_at = 0                  # the byte of the stream it stopped at to populate
        self.src = [0] * n
        self.dst = [-1] * n
        self.cursor = 0
        self.transferred = self.normal = self.zero = self.downtime_bytes = 0
        self.syncs = 0
        self.last_sync_ms = None
        self.period_pages = 0
        self.dirty_rate = 0
        self.dirty_bytes_last_sync = 0
        self.rate_start = 0
        self.unflushed = 0
        self.win_start_ms = 0
        self.win_bytes0 = 0
        self.threshold = 0
        self.downtime_limit = sc.downtime_limit
        self.last_bw = None             # the last window's bandwidth, as mbps reports it [B/s]
        self.aborted = False
        self.paused_at = None
        self.monitor = Monitor(sc.policy_object, sc.ram_size, self)
        policy = sc.policy_object
        self.postcopy_ram = sc.postcopy_ram or bool(getattr(policy, "postcopy", False))
        self.postcopy_requested = False
        self.postcopy_t = None
        self.faults = 0
        self.stopped_for = 0            # ps the guest did not run before running again
        self.downtime_end = None
        self.expected_downtime = self.downtime_limit
        self.trace: list[tuple] = []
        self.converged = False
        self.full_logs = self.full_hot_logs = 0   # syncs that found every (hot) page logged
        self.downtime_start = None
        self.switch_pending = 0
        # auto-converge and QEMU's release
        self.rule = {"8.2": 0, "10.1": 2}.get(sc.qemu_version, 1)
        self.auto_converge = sc.auto_converge or bool(getattr(policy, "auto_converge", False))
        self.periodic_sync = self.auto_converge and \
            sc.qemu_version in ("9.2", "10.0", "10.1")
        self.throttle = 0                   # percent, 0 = off
        self.throttle_since = 0             # ps, when the throttle last changed
        self.guest_time_then = 0            # ps of guest running time at that moment
        self.high_periods = 0
        self.xfer_prev = 0
        self.next_tick = 5000 * PS_PER_MS
        self.tick_prev_syncs = 2
        self.dirty_limit_since = None       # ps, when dirty-limit began
        quota = sc.vcpus * sc.vcpu_dirty_limit * 2**20
        self.quota_ppm = 1_000_000 if sc.dirty_rate <= quota else round(1e6 * quota / sc.dirty_rate)
        self.timer_syncs = 0

    # --- the guest ---
    def stream_pages(self, s: int, workload=None) -> tuple[int, int]:
        """First page and number of pages that write stream ``s`` writes to."""
        sc = self.sc
        workload = workload or sc.workload
        if workload == "sequential":
            return sc.write_range_start // PAGE, max(1, sc.write_range // PAGE)
        if workload == "hotcold":
            return (0, self.hot) if s == 0 else (self.hot, self.n - self.hot)
        return 0, self.n

    def phase_pages(self, guest_time: int) -> list[int]:
        """phases: the pages of the writes due by ``guest_time``, phase after phase."""
        pages = []
        while True:
            workload, rates, duration = self.phases[self.phase]
            end = self.phase_start + duration
            for s in (0, 1):
                if rates[s] == 0:
                    continue
                lo, size = self.stream_pages(s, workload)
                due = int(float(min(guest_time, end) - self.phase_start) * rates[s])
                while self.phase_done[s] < due:
                    k = self.phase_done[s]
                    pages.append((self.next_page(s, lo, size, workload, k), self.zero_write(k)))
                    self.phase_done[s] += 1
                    self.writes += 1
            if guest_time < end:
                return pages
            self.phase = (self.phase + 1) % len(self.phases)
            self.phase_start, self.phase_done = end, [0, 0]

    def next_page(self, s: int, lo: int, size: int, workload=None, k=None) -> int:
        """The page of stream ``s``'s next write (its count is the caller's)."""
        workload = workload or self.sc.workload
        if workload == "sequential":
            k = self.done[s] if k is None else k
            return lo + (self.sc.write_cursor + k * self.sc.write_stride) % size
        if workload == "zipf":
            self.rng[s], rank = zipf_rank(self.rng[s], size, self.sc.zipf_exponent)
            return lo + rank - 1
        self.rng[s], z = splitmix64(self.rng[s])
        return lo + below(z, size)

    def guest_time(self) -> int:
        """Running time of the vCPUs so far: under a throttle of p %, each period of
        10 ms / (1 - p/100) starts with its sleep and ends with 10 ms of running."""
        if self.throttle == 0 and self.dirty_limit_since is not None:
            elapsed = self.t - self.throttle_since
            return self.guest_time_then + elapsed * self.quota_ppm // 10**6
        if self.throttle == 0:
            return self.t - self.stopped_for
        slice_ps = 10 * PS_PER_MS
        period = slice_ps * 100 // (100 - self.throttle)
        elapsed = self.t - self.throttle_since
        ran = 0
        while elapsed >= period:            # whole periods, one by one
            ran += slice_ps
            elapsed -= period
        ran += max(0, elapsed - (period - slice_ps))
        return self.guest_time_then + ran

    def replay_due(self, guest_time: int) -> list[int]:
        """Pages of the replayed writes due by ``guest_time`` [ps] not yet applied."""
        times, pages = self.replay
        due = self.done[0]
        while due < len(times) and float(times[due]) <= guest_time / 1e6:
            due += 1
        new = [(pages[k], self.zero_write(k)) for k in range(self.done[0], due)]
        self.done[0] = due
        self.writes = due
        return new

    def due_pages(self, guest_time: int) -> list[int]:
        """The pages of the writes due by ``guest_time`` [ps] not yet applied, in order."""
        if self.phases is not None:
            return self.phase_pages(guest_time)
        if self.replay is not None:
            return self.replay_due(guest_time)
        pages = []
        for s in (0, 1):
            if self.rates[s] == 0:
                continue
            lo, size = self.stream_pages(s)
            due = int(float(guest_time) * self.rates[s])
            while self.done[s] < due:
                k = self.done[s]
                pages.append((self.next_page(s, lo, size), self.zero_write(k)))
                self.done[s] += 1
        self.writes = sum(self.done)
        return pages

    def zero_write(self, k: int) -> bool:
        """Whether a stream's write ``k`` writes zeros: zero_write_share of them,
        evenly spread (k is one when floor((k + 1) q) > floor(k q))."""
        q = round(self.sc.zero_write_share * 10**6)
        return (k + 1) * q // 10**6 > k * q // 10**6

    def catch_up_writes(self):
        if not self.running:
            return
        for page, zero in self.due_pages(self.guest_time()):
            self.log.add(page)
            self.touched.add(page)
            if zero:
                self.nonzero.discard(page)
            else:
                self.nonzero.add(page)
            self.src[page] += 1

    # --- the migration thread ---
    def now_ms(self) -> int:
        return self.t // PS_PER_MS

    def exceeded(self) -> bool:
        # the check sees a normal page once the QEMUFile flushes, every 32 of them
        return self.limit != 0 and self.visible_bytes() - self.rate_start > self.limit

    def sync(self):
        self.catch_up_writes()
        self.syncs += 1
        if self.last_sync_ms is None:
            self.last_sync_ms = self.now_ms()
        logged = len(self.log)
        self.full_logs += logged == self.n
        self.full_hot_logs += self.hot > 0 and all(p in self.log for p in range(self.hot))
        new = len(self.log - self.dirty)
        self.dirty |= self.log
        self.log = set()
        self.period_pages += new
        self.dirty_bytes_last_sync = len(self.dirty) * PAGE
        self.t += self.t_sync + logged * self.t_sync_page
        end = self.now_ms()
        if end > self.last_sync_ms + 1000:
            self.trigger_throttle()
            self.dirty_rate = self.period_pages * 1000 // (end - self.last_sync_ms)
            self.last_sync_ms = end
            self.period_pages = 0
            self.xfer_prev = self.visible_bytes()

    def visible_bytes(self) -> int:
        return self.transferred - self.unflushed * 4104 - self.in_flight()

    def in_flight(self) -> int:
        """multifd: bytes handed to channels whose packet is not written yet (those
        written by now are counted in multifd_bytes, for good)."""
        for ch in self.ch:
            if ch[1] and ch[0] <= self.t:
                self.multifd_bytes += ch[1]
                ch[1] = 0
        return sum(ch[1] for ch in self.ch)

    def trigger_throttle(self):
        """Every second rate period whose new dirty bytes exceed the threshold share
        of the bytes sent in it throttles the guest more (auto-converge)."""
        sent = self.visible_bytes() - self.xfer_prev
        dirtied = self.period_pages * PAGE
        limit = sent * self.sc.throttle_trigger_threshold // 100
        if dirtied <= limit:
            return
        self.high_periods += 1
        if self.high_periods < 2:
            return
        self.high_periods = 0
        if self.sc.dirty_limit and self.dirty_limit_since is None:
            self.guest_time_then = self.guest_time()
            self.throttle_since = self.t
            self.dirty_limit_since = self.t
        if not self.auto_converge:
            return
        sc = self.sc
        if self.throttle == 0:
            new = sc.cpu_throttle_initial
        else:
            step = sc.cpu_throttle_increment
            if sc.cpu_throttle_tailslow:
                cpu_now = 100 - self.throttle
                cpu_ideal = int(cpu_now * (limit / dirtied))
                step = min(cpu_now - cpu_ideal, step)
            new = min(self.throttle + step, sc.max_cpu_throttle)
        new = max(1, min(99, new))
        self.guest_time_then = self.guest_time()
        self.throttle_since = self.t
        self.throttle = new

    def timer_tick(self):
        """auto-converge's 5 s dirty-sync timer (QEMU 9.2+)."""
        if self.syncs > 1 and self.syncs == self.tick_prev_syncs:
            self.sync()
            self.timer_syncs += 1
        self.tick_prev_syncs = self.syncs
        self.next_tick += 5000 * PS_PER_MS

    def send(self, page: int):
        if self.channels and (page in self.nonzero or not self.detect or self.mf_detect):
            return self.queue(page)
        self.dirty.remove(page)
        if page in self.nonzero or not self.detect:
            nbytes, self.normal = 4104, self.normal + 1
            self.unflushed = (self.unflushed + 1) % 32
            self.t += self.t_resend
            if self.t_populate and page // 512 not in self.populated:
                self.populated.add(page // 512)    # the destination's work: see batch()
                self.main_populations += 1
        else:
            nbytes, self.zero = 9, self.zero + 1
            if page in self.touched:
                self.t += self.t_zero
            else:
                self.t += self.t_zero_untouched
                self.untouched += 1
        self.add_bytes(nbytes)
        self.dst[page] = self.src[page]
        self.cursor = 0 if page + 1 == self.n else page + 1
        self.pass_ended = self.pass_ended or page + 1 == self.n

    # --- multifd
    def queue(self, page: int):
        """The page into the packet; the packet to a channel once it holds 128."""
        self.dirty.remove(page)
        normal = page in self.nonzero or not self.detect
        populates = False
        if normal:
            self.normal += 1
            if self.t_populate and page // 512 not in self.populated:
                self.populated.add(page // 512)
                populates = True
        else:
            self.zero += 1
            if page not in self.touched:
                self.untouched += 1
        self.packet.append((normal, page in self.touched, populates))
        self.t += self.t_mf_queue
        self.dst[page] = self.src[page]
        self.cursor = 0 if page + 1 == self.n else page + 1
        self.pass_ended = self.pass_ended or page + 1 == self.n
        if len(self.packet) == 128:
            self.mf_send()

    def mf_send(self):
        """To the channel free first (the lowest-numbered of those free as soon)."""
        c = min(range(self.channels), key=lambda i: self.ch[i][0])
        if self.ch[c][0] > self.t:
            self.mf_wait += self.ch[c][0] - self.t
            self.t = self.ch[c][0]
        self.in_flight()
        normal = sum(1 for q in self.packet if q[0])
        zero_alloc = sum(1 for q in self.packet if not q[0] and q[1])
        untouched = sum(1 for q in self.packet if not q[0] and not q[1])
        populations = sum(1 for q in self.packet if q[2])
        cpu = self.t_mf_packet + normal * self.t_mf_page
        if self.mf_detect:
            cpu += zero_alloc * self.t_mf_zero + untouched * self.t_mf_untouched
        self.link_t = max(self.link_t, self.t) + self.t_mf_header + normal * self.t_mf_page_wire
        dst = normal * self.t_mf_dst_page + populations * self.t_populate
        nbytes = MULTIFD_HEADER + normal * self.mf_page_bytes
        self.ch[c] = [max(self.t + cpu, self.link_t, self.t + dst), nbytes]
        self.mf_cpu += cpu
        self.add_bytes(nbytes)
        self.mf_packets += 1
        self.packet = []

    def mf_sync(self):
        """Flush the packet, a sync packet on every channel after its work, wait for
        all, then the flush flag (8 B) on the main stream."""
        if self.packet:
            self.mf_send()
        t0 = self.t
        done = t0
        for ch in self.ch:
            end = max(t0, ch[0]) + max(self.t_mf_packet, self.t_mf_header)
            self.multifd_bytes += ch[1] + MULTIFD_HEADER
            self.add_bytes(MULTIFD_HEADER)
            ch[:] = [end, 0]
            self.mf_cpu += self.t_mf_packet
            done = max(done, end)
        self.mf_wait += done - t0
        self.t = done
        self.add_bytes(8)
        self.pass_ended = False

    def add_bytes(self, nbytes: int):
        self.transferred += nbytes
        if not self.running:
            self.downtime_bytes += nbytes

    def batch(self, pages, check=None):
        """Send ``pages`` (one batch) in order, stopping before a page where ``check()``
        is true; then the destination populates the regions the batch brought,
        behind the source, reading nothing meanwhile."""
        # multifd: the search went round the end of RAM; QEMU checks before it searches,
        # so the page it found then goes unchecked
        flushed = self.channels and pages and (pages[0] < self.cursor or
                                               (self.cursor == 0 and self.pass_ended))
        if flushed:
            self.mf_sync()
        t0, bytes0, populations = self.t, self.transferred, self.main_populations
        for i, q in enumerate(pages):
            if check is not None and not (flushed and i == 0) and check():
                break
            self.send(q)
        if self.main_populations > populations:
            if t0 >= self.dst_t:
                self.dst_at = bytes0
            self.dst_t = max(self.dst_t, t0) + (self.main_populations - populations) * \
                self.t_populate
        self.wait_for_destination()

    def wait_for_destination(self):
        """Once the socket buffers are full, the source waits for the destination."""
        if self.t < self.dst_t and self.transferred - self.dst_at > self.sc.socket_buffer_size:
            self.t = self.dst_t

    def next_dirty(self) -> int:
        """First dirty page at or after the cursor, going round once."""
        for i in range(self.n):
            page = (self.cursor + i) % self.n
            if page in self.dirty:
                return page
        raise AssertionError("called with no dirty page")

    def iterate(self):
        # max_time cuts the call: no page starts at or after it, the one in flight ends there
        cut = max(self.t, ps(self.sc.max_time))
        self.add_bytes(18)
        self.t += self.t_section
        t0 = self.t
        while not self.exceeded() and self.dirty and self.t < cut:
            self.catch_up_writes()
            first = self.next_dirty()
            # a batch: the next (up to) 64 dirty pages in address order, not past the end of RAM
            batch = [q for q in range(first, self.n) if q in self.dirty][:64]
            # QEMU checks the rate limit before every page
            self.batch(batch, lambda: self.exceeded() or self.t >= cut)
            if (self.t - t0) // PS_PER_MS > 50:
                break
        self.unflushed = 0              # qemu_fflush after the end-of-section marker
        if self.t > cut:
            self.mf_wait = max(0, self.mf_wait - (self.t - cut))
            self.t = cut

    def update_counters(self):
        now = self.now_ms()
        if now < self.win_start_ms + 100:
            return
        current = self.transferred - self.in_flight()
        transferred = current - self.win_bytes0
        spent = now - self.win_start_ms
        bandwidth = transferred / spent
        self.last_bw = transferred * 1000 // spent
        expected = float(self.avail_per_ms) if self.avail_per_ms else bandwidth
        self.threshold = min(int(expected * self.downtime_limit), 2**63 - 1)   # saturates
        mbps = ((transferred * 8.0) / (spent / 1000.0)) / 1e6
        if self.dirty_rate != 0 and transferred > 10000 and expected > 0:
            self.expected_downtime = int(self.dirty_bytes_last_sync / expected)
        self.rate_start = current
        self.win_start_ms = now
        self.win_bytes0 = current
        row = dict(TIME=now, TIME_SPENT=spent, BYTES=transferred, BANDWIDTH=bandwidth,
                   THRESHOLD=self.threshold, PENDING=len(self.dirty) * PAGE,
                   TRANSFERRED=self.transferred, SYNCS=self.syncs,
                   EXPECTED_DOWNTIME=self.expected_downtime, MBPS=mbps,
                   DIRTY_RATE=self.dirty_rate, THROTTLE=self.throttle,
                   DOWNTIME_LIMIT=self.downtime_limit)
        self.trace.append(tuple(row[f.name] for f in TRACE.fields))

    def complete(self):
        self.catch_up_writes()
        self.downtime_start = self.t
        self.running = False
        self.t += ps(self.sc.vm_stop_time * 1e-3)
        self.sync()
        self.add_bytes(18)
        self.t += self.t_section
        while self.dirty:
            first = self.next_dirty()
            self.batch([q for q in range(first, self.n) if q in self.dirty][:64])
        if self.channels:
            self.mf_sync()
        self.add_bytes(self.sc.device_state_size)
        self.t += ps(self.sc.device_state_size / self.sc.link_bandwidth)
        self.wait_for_destination()
        self.downtime_end = self.t
        self.converged = True

    def postcopy(self):
        """Stop, final sync, device state; then the destination runs: its first
        touch of a page still on the source fetches it at once, while the source
        sends the rest word by word from the cursor."""
        self.catch_up_writes()
        self.downtime_start = self.t
        guest_stopped = self.guest_time()
        self.running = False
        self.t += ps(self.sc.vm_stop_time * 1e-3)
        self.sync()
        self.add_bytes(18)
        self.t += self.t_section
        self.add_bytes(self.sc.device_state_size)
        self.t += ps(self.sc.device_state_size / self.sc.link_bandwidth)
        self.wait_for_destination()
        self.downtime_end = self.postcopy_t = self.t
        self.throttle = 0
        self.dirty_limit_since = None
        self.stopped_for = self.t - guest_stopped
        self.running = True
        while self.dirty:
            for page in self.destination_writes():
                if page in self.dirty:          # a fault: sent at once
                    self.faults += 1
                    self.dst[page] = self.src[page]
                    self.dirty.remove(page)
                    self.add_bytes(4104)
                    self.normal += 1
                    self.t += self.t_resend
            if not self.dirty:
                break
            first = self.next_dirty()
            word_end = (first // 64 + 1) * 64
            self.batch([q for q in range(first, min(word_end, self.n)) if q in self.dirty])
        self.destination_writes()       # the rest of the writes, on the destination
        self.running = False
        self.converged = True

    def destination_writes(self):
        """The pages of the guest's writes due by now, in order, without logging them."""
        return [page for page, _ in self.due_pages(self.guest_time())]

    def run(self) -> "Reference":
        self.t = ps(self.sc.setup_overhead * 1e-3)
        self.dirty = set(range(self.n))
        self.sync()
        self.setup_t = self.t
        while self.t < ps(self.sc.max_time):
            if self.periodic_sync and self.t >= self.next_tick:
                self.timer_tick()
            if self.monitor.due():
                action = self.monitor.poll()
                if action == "abort":
                    self.aborted = True
                    break
                if action == "postcopy":
                    self.postcopy_requested = True
                if action == "pause":
                    self.catch_up_writes()
                    self.running = False
                    self.paused_at = self.t
            if not self.exceeded():
                pending = len(self.dirty) * PAGE
                # with postcopy-ram nothing of RAM is must-precopy; 8.2 then asks for
                # the exact pending on every pass, but RAM syncs only below the
                # threshold, as 9.0 does: the same syncs
                if pending < self.threshold:
                    self.sync()
                    pending = len(self.dirty) * PAGE
                if self.sc.postcopy_start_sync and self.syncs >= self.sc.postcopy_start_sync:
                    self.postcopy_requested = True
                must = 0 if self.postcopy_ram else pending
                postcopy = self.postcopy_ram and self.postcopy_requested and \
                    must <= self.threshold
                ready = (pending <= self.threshold) if self.rule == 2 else \
                    (pending == 0 or pending < self.threshold)
                if ready and not (postcopy and self.rule == 2):
                    self.switch_pending = pending
                    self.complete()
                    break
                if postcopy:
                    self.switch_pending = pending
                    self.postcopy()
                    break
                self.iterate()
            self.update_counters()
            if self.exceeded():        # the sleep ends at max_time, where the run is given up
                self.t = max(self.t, min((self.win_start_ms + 100) * PS_PER_MS,
                                         ps(self.sc.max_time)))
        self.catch_up_writes()          # the writes due by the end
        self.in_flight()                # what the channels wrote by the end
        return self

    def lost_pages(self) -> int:
        return sum(1 for a, b in zip(self.src, self.dst) if a != b)


class Monitor:
    """A management policy's monitor, written from the products' descriptions:
    polled every ``period`` ms from the migrate command (at the thread's next pass)."""

    def __init__(self, policy, ram_size, run):
        self.run = run
        self.policy = policy
        self.period = 0
        if policy is None:
            return
        gib = ram_size / 2**30
        self.steps = []                     # (ms after the schedule starts, downtime-limit)
        self.progress_ms = 0
        self.lowmark = False
        self.schedule_start = 0
        self.double = False
        self.nova_switch = False
        self.trigger = "time"
        self.fast_period = 0
        self.stall = None
        if policy.name == "nova":
            self.period = 500
            data_gb = max(gib, 2.0)
            table = policy.steps(ram_size)
            run.downtime_limit = table[0][1]
            self.steps = [(t * 1000, d) for t, d in table[1:]]
            self.deadline = int(policy.completion_timeout * data_gb) * 1000
            forced = "postcopy" if policy.permit_post_copy else "pause"
            self.action = "abort" if policy.timeout_action == "abort" else forced
            self.nova_switch = policy.permit_post_copy
        elif policy.name == "kubevirt":
            self.period = 400
            self.deadline = policy.completion_timeout_per_gib * -(-ram_size // 10**9) * 1000
            disrupt = policy.allow_workload_disruption
            if disrupt is None:
                disrupt = policy.allow_post_copy
            self.action = ("postcopy" if policy.allow_post_copy else "pause") if disrupt \
                else "abort"
            self.double = True
            self.progress_ms = policy.progress_timeout * 1000
            if policy.downtime_tuning:      # VEP 291: linear steps, one per new iteration
                span = policy.max_downtime - policy.initial_downtime
                ramp = [policy.initial_downtime + span * i // policy.tuning_steps
                        for i in range(policy.tuning_steps + 1)]
                run.downtime_limit = ramp[0]
                self.steps = ramp[1:]
                self.trigger = "iteration"
                self.after_iteration = policy.tuning_start_iteration
                self.cooldown = policy.tuning_cooldown * 1000
                self.last_step = None
            if policy.stall_detection:      # VEP 248
                run.downtime_limit = min(run.downtime_limit, policy.max_downtime)
                self.stall = policy
                self.ewma = None
                self.best = None
                self.best_at = 0
                self.stalled_at = None
        elif policy.name == "proxmox":
            self.period = 1000
            self.fast_period = 100
            downtime = int(policy.migrate_downtime * 1000)
            run.downtime_limit = downtime
            self.steps = []
            while 0 < downtime < 2_000_000:
                downtime = min(2 * downtime, 2_000_000)
                self.steps.append(downtime)
            self.trigger = "counter"
            self.counter = 0
            self.deadline = 0
            self.action = None
        else:                               # ovirt
            self.period = policy.monitor_interval * 1000
            downtimes = policy.downtimes()
            run.downtime_limit = downtimes[0]
            wait = int(policy.wait_s(ram_size) * 1000)
            self.steps = [(i * wait, d) for i, d in enumerate(downtimes[1:])]
            mem_mib = ram_size // 2**20
            self.deadline = (policy.max_time_per_gib * mem_mib + 1023) // 1024 * 1000
            self.action = "abort"
            self.progress_ms = policy.progress_timeout * 1000
            self.lowmark = True
            self.schedule_start = None      # at the first new iteration seen
        self.next_poll = self.period
        self.last_remaining = None
        self.mark = None
        self.last_progress = 0
        self.polls = 0
        self.last_transferred = 0
        self.last_syncs = 0

    def due(self) -> bool:
        return self.period > 0 and self.run.t >= self.next_poll * PS_PER_MS

    def poll(self):
        now = self.next_poll
        self.next_poll += self.period
        remaining = len(self.run.dirty) * PAGE
        due = self.deadline and now > self.deadline
        if due and self.stall is not None and self.action == "pause":
            # VEP 248 does not pause: maxDowntimeMs, the forced switchover after the
            # switchover timeout
            self.deadline = 0
            self.run.downtime_limit = max(self.run.downtime_limit, self.stall.max_downtime)
            if self.stalled_at is None:
                self.stalled_at = now
        elif due:
            if self.action == "postcopy" and not self.run.postcopy_requested:
                self.deadline = 0
                return "postcopy"
            if self.action == "pause" and self.run.paused_at is None:
                self.deadline = 2 * self.deadline if self.double else 0
                return "pause"
            if self.action == "abort" or self.double:
                return "abort"
        progressed = self.last_remaining is None or remaining < (
            self.mark if self.lowmark else self.last_remaining)
        if progressed:
            self.last_progress = now
            self.mark = remaining
        elif self.progress_ms and now - self.last_progress > self.progress_ms:
            return "abort"
        if self.schedule_start is None and self.last_remaining is not None and \
                remaining > self.last_remaining:
            self.schedule_start = now
        previous = self.last_remaining
        # nova's should_switch_to_postcopy, at each poll after the first iteration
        switch = self.nova_switch and previous is not None and previous > 0 and \
            self.run.syncs > 1 and not self.run.postcopy_requested and \
            round((previous - remaining) * 100 / previous) < 10
        self.last_remaining = remaining
        # Proxmox: 0.1 s polls once remaining is below the average sent per poll
        self.polls += 1
        if self.fast_period and self.period != self.fast_period and \
                0 < self.last_transferred // self.polls and \
                remaining < self.last_transferred // self.polls:
            self.period = self.fast_period
            self.next_poll = now + self.fast_period
        self.last_transferred = self.run.transferred
        new_iteration = self.run.syncs > self.last_syncs
        self.last_syncs = self.run.syncs
        self.downtime_steps(now, remaining, previous, new_iteration)
        if self.stall is not None:
            return self.stall_poll(now, remaining, new_iteration)
        return "postcopy" if switch else None

    def downtime_steps(self, now, remaining, previous, new_iteration):
        """Steps on time (Nova, oVirt), on Proxmox's counter of polls whose remaining
        grew or was zero (doubling once it passes 5), or on a new iteration after
        iteration N and a cooldown (VEP 291); the last two never lower the limit."""
        if self.trigger == "time":
            while self.schedule_start is not None and self.steps and \
                    now >= self.schedule_start + self.steps[0][0]:
                self.run.downtime_limit = self.steps.pop(0)[1]
        elif self.trigger == "counter":
            if (previous is not None and previous > 0 and remaining > previous) or \
                    remaining == 0:
                self.counter += 1
            if self.counter > 5 and self.steps:
                self.counter = 0
                self.run.downtime_limit = max(self.run.downtime_limit, self.steps.pop(0))
        elif new_iteration and self.run.syncs > self.after_iteration and self.steps and \
                (self.last_step is None or now - self.last_step >= self.cooldown):
            self.run.downtime_limit = max(self.run.downtime_limit, self.steps.pop(0))
            self.last_step = now

    def stall_poll(self, now, remaining, new_iteration):
        """KubeVirt's stall detector: EWMA (alpha 0.4) of the last window's rate;
        judged at the iterations after the first pass only: a stall is such an
        iteration starting more than 40 s after remaining at an iteration start last
        fell 4 % below its lowest (the first such start sets it); then abort beyond
        1.5 x maxDowntimeMs of estimated downtime, else maxDowntimeMs, and the
        forced switchover 60 s later."""
        kv = self.stall
        if self.run.last_bw is not None:
            bw = self.run.last_bw
            self.ewma = bw if self.ewma is None else (4 * bw + 6 * self.ewma) // 10
        if self.stalled_at is not None:
            if now - self.stalled_at > kv.switchover_timeout * 1000:
                self.run.downtime_limit = 2_000_000
            return None
        if not new_iteration or self.run.syncs < 2:
            return None
        start = self.run.dirty_bytes_last_sync      # remaining when the iteration began
        if self.best is None or start * 100 < self.best * (100 - kv.stall_margin):
            self.best = start
            self.best_at = now
        elif now - self.best_at > kv.stall_timeout * 1000:
            self.stalled_at = now
            if not self.ewma or self.ewma < 0 or \
                    remaining * 1000 // self.ewma * 100 > 150 * kv.max_downtime:
                if self.action == "postcopy":
                    return None if self.run.postcopy_requested else "postcopy"
                return "abort"
            self.run.downtime_limit = max(self.run.downtime_limit, kv.max_downtime)
        return None
