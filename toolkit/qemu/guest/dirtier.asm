; dirtier.asm -- Switchover Lab test guest: a 512-byte boot sector that dirties
; 4 KiB guest pages at a paced rate, so that real QEMU precopy migrations can be
; run against a known workload.
;
; SeaBIOS loads it at 0x7c00 from a floppy.  It enters 32-bit protected mode
; (flat segments, no paging: it reaches RAM below the 32-bit PCI hole only),
; programs the PIT to interrupt at ~1 kHz, writes each page of the range once
; (unless p_fill is 0) and then loops forever: write burst_pages pages, then
; halt until burst_ticks PIT ticks have passed since the previous burst was due.
; A data write increments the 32-bit counter in the first word of the page, so
; source and destination memory can be compared page by page after a migration;
; a zero write clears the whole page (rep stosd), so that migration finds a
; zero page there.  Main-loop write j (counting from 1) is a zero write when
; zero_every > 0 and j % zero_every == 0.
;
; The parameter block sits at the fixed offset PARAMS (see toolkit/qemu/guest.py,
; which patches it in a copy of the image, so no rebuild per scenario):
;   +0  magic        "DRT2"
;   +4  start_page   first page index (address = start_page * 4096)
;   +8  pages        number of pages in the range, >= 1
;   +12 pattern      0 = sequential sweep, 1 = pseudo-random permutation (LCG)
;   +16 burst_pages  pages written per burst, >= 1
;   +20 burst_ticks  PIT ticks per burst (0 = unpaced: write as fast as the vCPU can)
;   +24 lcg_mask     2**k - 1 >= pages - 1 (random pattern only)
;   +28 cursor       index before the first loop write: (pages - stride) % pages
;                    (sequential) or the LCG start value, <= lcg_mask (random)
;   +32 stride       sequential step [pages], 1 <= stride < pages (or 1), coprime to pages
;   +36 zero_every   0 = data writes only, k >= 1 = every k-th loop write is a zero write
;   +40 fill         pages written once before the loop: pages or 0
;
; Sequential loop write j (from 1) goes to index (j - 1) * stride % pages.
;
; Guest-written statistics at physical address STATS (read them with QMP pmemsave):
;   +0  ticks        PIT interrupts seen (u32)
;   +4  writes       page writes done, fill included (u64)
;   +12 cursor       index in the range of the page written last (u32)
; writes and cursor are published together at the end of each burst.

PIT_DIVISOR equ 1193            ; 1193182 Hz / 1193 = 1000.15 Hz tick
IRQ_BASE    equ 0x20            ; PIC remapped above the CPU exception vectors
IDT         equ 0x600           ; IDT built at run time: IRQ_BASE + 1 gates
STATS       equ 0x500
PARAMS      equ 0x1d2           ; offset of the parameter block in the sector (510 - 44)

bits 16
org 0x7c00

start:
    cli
    xor ax, ax
    mov ds, ax
    mov es, ax
    mov ss, ax
    mov sp, 0x7c00
    in al, 0x92                 ; fast A20: pages above 1 MiB must not alias
    or al, 2
    out 0x92, al
    lgdt [gdt_desc]
    mov eax, cr0
    or al, 1
    mov cr0, eax
    jmp 0x08:pm

bits 32
pm:
    mov ax, 0x10
    mov ds, ax
    mov es, ax
    mov ss, ax
    mov esp, 0x7c00

    xor eax, eax
    mov edi, STATS
    mov ecx, 4
    rep stosd

    ; Every gate points at the tick handler: only IRQ0 is unmasked and the
    ; loop raises no exceptions, so one handler is enough.
    mov edi, IDT
    mov ecx, IRQ_BASE + 1
.gate:
    mov eax, tick_isr
    or eax, 0x08 << 16          ; selector 0x08, offset < 64 KiB
    stosd
    mov eax, 0x8e00             ; present, DPL 0, 32-bit interrupt gate
    stosd
    loop .gate
    lidt [idt_desc]

    ; Remap the 8259 PICs to IRQ_BASE and mask everything but IRQ0.
    mov al, 0x11
    out 0x20, al
    out 0xa0, al
    mov al, IRQ_BASE
    out 0x21, al
    mov al, IRQ_BASE + 8
    out 0xa1, al
    mov al, 4
    out 0x21, al
    mov al, 2
    out 0xa1, al
    mov al, 1
    out 0x21, al
    out 0xa1, al
    mov al, 0xfe
    out 0x21, al
    mov al, 0xff
    out 0xa1, al

    mov al, 0x34                ; PIT channel 0, lo/hi byte, mode 2 (rate generator)
    out 0x43, al
    mov ax, PIT_DIVISOR
    out 0x40, al
    mov al, ah
    out 0x40, al
    sti

    ; Write every page of the range once first (unless p_fill is 0), so that
    ; none of it is a zero page that migration could send as a 9-byte marker.
    mov ecx, [p_fill]           ; 0 or pages
    mov [STATS + 4], ecx        ; the fill's writes count as writes
    jecxz .filled
    mov eax, [p_start_page]
    shl eax, 12
.touch:
    inc dword [eax]
    add eax, 4096
    loop .touch
.filled:

    mov esi, ready              ; tell the host on COM1 that the loop starts now
    mov dx, 0x3f8
.say:
    lodsb
    test al, al
    jz .said
    out dx, al
    jmp .say
.said:

    ; esi = cursor (sequential) or LCG state (random): the index of the page
    ; written last; ebx = writes left until the next zero write;
    ; ebp = tick at which the next burst is due
    mov esi, [p_cursor]
    mov ebx, [p_zero_every]
    xor ebp, ebp

burst:
    mov ecx, [p_burst_pages]
.page:
    cmp dword [p_pattern], 0
    jne .random
    add esi, [p_stride]         ; stride < pages, so one wrap at most
    cmp esi, [p_pages]
    jb .write
    sub esi, [p_pages]
    jmp .write
.random:                        ; full-period LCG mod 2**k; reject values >= pages
    imul esi, esi, 1664525
    add esi, 1013904223
    and esi, [p_mask]
    cmp esi, [p_pages]
    jae .random
.write:
    mov edi, esi
    add edi, [p_start_page]
    shl edi, 12
    mov eax, [p_zero_every]     ; write j (from 1) is a zero write when j % k == 0
    test eax, eax
    jz .data
    dec ebx
    jnz .data
    mov ebx, eax
    push ecx                    ; zero write: clear the whole page
    xor eax, eax
    mov ecx, 1024
    rep stosd
    pop ecx
    jmp .next
.data:
    inc dword [edi]             ; data write: the page's first word counts up
.next:
    loop .page

    ; Publish the count and the cursor together at the end of each burst.  No
    ; branch between the stores: TCG pauses a vCPU between translated blocks
    ; only, so the host reads the three words of a paused guest as one pair.
    mov eax, [p_burst_pages]
    add [STATS + 4], eax
    adc dword [STATS + 8], 0
    mov [STATS + 12], esi
    mov eax, [p_burst_ticks]
    test eax, eax
    jz burst
    add ebp, eax
.wait:
    cli                         ; check-then-halt must not miss the tick in between
    mov eax, [STATS]
    sub eax, ebp
    jns .due
    sti                         ; sti; hlt is atomic: the tick wakes the hlt
    hlt
    jmp .wait
.due:
    sti
    ; Running late (the vCPU is slower than the pace asked for): start afresh
    ; from now rather than bursting to catch up.
    jz burst
    mov ebp, [STATS]
    jmp burst

tick_isr:
    push eax
    inc dword [STATS]
    mov al, 0x20                ; EOI to the master PIC
    out 0x20, al
    pop eax
    iret

align 8
gdt:
    dq 0
    dq 0x00cf9a000000ffff       ; 0x08: code, base 0, limit 4 GiB, 32-bit
    dq 0x00cf92000000ffff       ; 0x10: data, base 0, limit 4 GiB
gdt_desc:
    dw $ - gdt - 1
    dd gdt
idt_desc:
    dw (IRQ_BASE + 1) * 8 - 1
    dd IDT
ready:
    db "dirtier ready", 13, 10, 0   ; == READY_MARK in guest.py

    times PARAMS - ($ - $$) db 0
params:
    db "DRT2"
p_start_page:  dd 256           ; defaults: 1 MiB .. 5 MiB, sequential, unpaced
p_pages:       dd 1024
p_pattern:     dd 0
p_burst_pages: dd 1
p_burst_ticks: dd 0
p_mask:        dd 1023
p_cursor:      dd 1023
p_stride:      dd 1
p_zero_every:  dd 0
p_fill:        dd 1024

    times 510 - ($ - $$) db 0
    dw 0xaa55
