; dirtier.asm -- Switchover Lab test guest: a 512-byte boot sector that dirties
; 4 KiB guest pages at a paced rate, so that real QEMU precopy migrations can be
; run against a known workload.
;
; SeaBIOS loads it at 0x7c00 from a floppy.  It enters 32-bit protected mode
; (flat segments, no paging), programs the PIT to interrupt at ~1 kHz, writes
; each page of the range once and then loops forever: write burst_pages pages,
; then halt until burst_ticks PIT ticks have passed since the previous burst
; was due.  A "write" increments the 32-bit counter in the first word of the
; page, so source and destination memory can be compared page by page after a
; migration.
;
; The parameter block sits at the fixed offset PARAMS (see toolkit/qemu/guest.py,
; which patches it in a copy of the image, so no rebuild per scenario):
;   +0  magic        "DRT1"
;   +4  start_page   first page index (address = start_page * 4096)
;   +8  pages        number of pages in the range, >= 1
;   +12 pattern      0 = sequential sweep, 1 = pseudo-random permutation (LCG)
;   +16 burst_pages  pages written per burst, >= 1
;   +20 burst_ticks  PIT ticks per burst (0 = unpaced: write as fast as the vCPU can)
;   +24 lcg_mask     2**k - 1 >= pages - 1 (random pattern only)
;   +28 seed         LCG start value (random pattern only)
;
; Guest-written statistics at physical address STATS (read them with QMP pmemsave):
;   +0  ticks        PIT interrupts seen (u32)
;   +4  writes       page writes done (u64)

PIT_DIVISOR equ 1193            ; 1193182 Hz / 1193 = 1000.15 Hz tick
IRQ_BASE    equ 0x20            ; PIC remapped above the CPU exception vectors
IDT         equ 0x600           ; IDT built at run time: IRQ_BASE + 1 gates
STATS       equ 0x500
PARAMS      equ 0x1d0           ; offset of the parameter block in the sector

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
    mov ecx, 3
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

    ; Write every page of the range once first, so that none of it is a zero
    ; page that migration could send as a 9-byte marker.
    mov ecx, [p_pages]
    mov eax, [p_start_page]
    shl eax, 12
.touch:
    inc dword [eax]
    add eax, 4096
    loop .touch
    mov eax, [p_pages]
    mov [STATS + 4], eax

    mov esi, ready              ; tell the host on COM1 that the loop starts now
    mov dx, 0x3f8
.say:
    lodsb
    test al, al
    jz .said
    out dx, al
    jmp .say
.said:

    ; esi = sequential cursor or LCG state, ebp = tick at which the next burst is due
    mov esi, [p_seed]
    and esi, [p_mask]
    xor ebp, ebp

burst:
    mov ecx, [p_burst_pages]
.page:
    cmp dword [p_pattern], 0
    jne .random
    inc esi
    cmp esi, [p_pages]
    jb .write
    xor esi, esi
    jmp .write
.random:                        ; full-period LCG mod 2**k; reject values >= pages
    imul esi, esi, 1664525
    add esi, 1013904223
    and esi, [p_mask]
    cmp esi, [p_pages]
    jae .random
.write:
    mov eax, esi
    add eax, [p_start_page]
    shl eax, 12
    inc dword [eax]
    loop .page

    mov eax, [p_burst_pages]
    add [STATS + 4], eax
    adc dword [STATS + 8], 0
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
    db "DRT1"
p_start_page:  dd 256           ; defaults: 1 MiB .. 5 MiB, sequential, unpaced
p_pages:       dd 1024
p_pattern:     dd 0
p_burst_pages: dd 1
p_burst_ticks: dd 0
p_mask:        dd 1023
p_seed:        dd 1

    times 510 - ($ - $$) db 0
    dw 0xaa55
