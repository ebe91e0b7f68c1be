"""Facts the whole package shares, each declared once: QEMU's page and stream
sizes (x86, ``migration/ram.c``, ``migration/savevm.c``), time units and binary
size prefixes."""

PAGE_SIZE = 4096        # TARGET_PAGE_SIZE on x86 [B]
NORMAL_PAGE_WIRE = 4104  # a normal page on the wire: 8 B header + 4096 B data [B]
ZERO_PAGE_WIRE = 9       # a zero page: 8 B header (RAM_SAVE_FLAG_ZERO) + 1 fill byte [B]
THP_PAGES = 512         # a transparent huge page (x86-64 PMD, 2 MiB) in 4 KiB pages
SECTION_WIRE = 18        # an iterate section: header 5 B + footer 5 B + RAM_SAVE_FLAG_EOS 8 B [B]
MULTIFD_PAGES = 128      # pages per multifd packet: MULTIFD_PACKET_SIZE 512 KiB / 4 KiB
# a multifd packet's header on the wire: MultiFDPacket_t (320 B: magic, version, flags,
# counts, packet number, reserved words, the RAMBlock's name in 256 B) and one 8 B
# offset per page it can hold, whatever it holds (packet_len, multifd-nocomp.c) [B]
MULTIFD_HEADER_WIRE = 320 + 8 * MULTIFD_PAGES
MULTIFD_FLUSH_WIRE = 8   # RAM_SAVE_FLAG_MULTIFD_FLUSH on the main stream [B]

PS_PER_MS = 10**9        # the kernel's clock: picoseconds per millisecond
PS_PER_S = 10**12        # picoseconds per second

MIB = 2**20              # [B]
GIB = 2**30              # [B]
