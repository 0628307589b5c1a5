/*
 * A bare-metal virtio-blk IOPS meter for the throttling test (tests/blk/throttle_guest_test.ts).
 *
 * Entered through PVH (flat 32-bit protected mode, no paging) at 16 MiB. It drives the first
 * microvm virtio-mmio device, a virtio-blk disk, with a polling driver: one split queue of
 * QUEUE_SIZE entries holding IN_FLIGHT requests, each a 4 KiB read of sector 0, every one put
 * back as soon as it completes, so the device always has requests waiting (whatever the guest's
 * own hiccups, a throttle token that frees up finds a request to grant). Completions are seen in
 * the used ring (interrupts stay masked and unrequested); each is checked for status OK and for
 * the image's first bytes in its buffer.
 *
 * Its clock is the TSC, calibrated against one second of the CMOS RTC, which the VMM runs on the
 * host's clock (the RTC alone only tells whole seconds). It times completions WARM to
 * WARM + MEASURED and prints
 *   IOPS <MEASURED> requests in <us> us (TSC <kHz> kHz)
 * on the UART, then resets the machine through the i8042 so the VMM exits 0. Anything the device
 * does wrong prints a line starting with FAIL, then resets as well.
 *
 * Under kvm_pvm every instruction here runs in KVM's emulator (~1M instructions/s): the loop
 * per completion is a few dozen instructions. The code is position independent apart from the
 * fixed RAM addresses below (objcopy applies no relocations): calls and jumps are relative, and
 * each string follows its `call print_inline`.
 */
	.code32
	.text

	.set	MMIO_BASE, 0xf0100000	/* microvm virtio-mmio slot 0 */
	.set	MAGIC_VALUE, 0x000
	.set	VERSION, 0x004
	.set	DEVICE_ID, 0x008
	.set	DEVICE_FEATURES, 0x010
	.set	DEVICE_FEATURES_SEL, 0x014
	.set	DRIVER_FEATURES, 0x020
	.set	DRIVER_FEATURES_SEL, 0x024
	.set	QUEUE_SEL, 0x030
	.set	QUEUE_NUM_MAX, 0x034
	.set	QUEUE_NUM, 0x038
	.set	QUEUE_READY, 0x044
	.set	QUEUE_NOTIFY, 0x050
	.set	STATUS, 0x070
	.set	QUEUE_DESC_LOW, 0x080
	.set	QUEUE_DESC_HIGH, 0x084
	.set	QUEUE_DRIVER_LOW, 0x090
	.set	QUEUE_DRIVER_HIGH, 0x094
	.set	QUEUE_DEVICE_LOW, 0x0a0
	.set	QUEUE_DEVICE_HIGH, 0x0a4

	.set	S_ACKNOWLEDGE, 1
	.set	S_DRIVER, 2
	.set	S_DRIVER_OK, 4
	.set	S_FEATURES_OK, 8
	.set	S_NEEDS_RESET, 0x40

	.set	DESC_F_NEXT, 1
	.set	DESC_F_WRITE, 2
	.set	AVAIL_F_NO_INTERRUPT, 1

	/*
	 * Guest RAM (the VMM's boot data is below 1 MiB, this code at 16 MiB). Request i uses
	 * descriptors 2i (its header, device-readable) and 2i + 1 (data and status byte, writable:
	 * VERSION_1 lets the driver frame a request as it likes), and the slot at
	 * SLOTS + (i << SLOT_SHIFT): data (page aligned, for O_DIRECT), status, header.
	 */
	.set	QUEUE_SIZE, 256
	.set	IN_FLIGHT, QUEUE_SIZE / 2
	.set	DESC, 0x1100000		/* QUEUE_SIZE descriptors of 16 bytes */
	.set	AVAIL, 0x1101000	/* u16 flags, u16 idx, u16 ring[QUEUE_SIZE] */
	.set	USED, 0x1102000		/* u16 flags, u16 idx, {u32 id, u32 len} ring[QUEUE_SIZE] */
	.set	TSC_START, 0x1103000	/* u64 */
	.set	TSC_KHZ, 0x1103008	/* u32 */
	.set	SLOTS, 0x1200000
	.set	SLOT_SHIFT, 13		/* 8 KiB a slot */
	.set	DATA_LEN, 4096
	.set	STATUS_AT, DATA_LEN	/* in the slot */
	.set	HEADER_AT, DATA_LEN + 16 /* struct virtio_blk_outhdr: IN (0), reserved, sector 0 */
	.set	STACK_TOP, 0x1400000

	/* What the test writes at the start of the image: "SVIO", read back as a little-endian u32. */
	.set	IMAGE_MAGIC, 0x4f495653
	/*
	 * Completions timed: from the WARM-th to the (WARM + MEASURED)-th. The throttle lets request
	 * j + limit go one second after request j (its window slides), so MEASURED, a multiple of
	 * the test's limit (200), spans a whole number of throttle periods whatever the phase.
	 */
	.set	WARM, 200
	.set	MEASURED, 600

	.set	UART, 0x3f8
	.set	BOOT_MARKER_PORT, 0x3ff
	.set	RTC_INDEX, 0x70
	.set	RTC_DATA, 0x71
	.set	RTC_SECONDS, 0x00

/* Prints a literal string on the UART. */
.macro PRINT text:req
	call	print_inline
	.asciz	"\text"
.endm

	.globl	_start
_start:
	cli
	mov	$STACK_TOP, %esp
	mov	$MMIO_BASE, %ebp
	mov	$2, %al			/* "boot complete": the VMM logs when the guest got here */
	mov	$BOOT_MARKER_PORT, %dx
	out	%al, %dx
	PRINT	"virtio-blk iops guest\n"

	/* Is slot 0 a virtio-mmio version 2 block device? */
	cmpl	$0x74726976, MAGIC_VALUE(%ebp)
	jne	no_device
	cmpl	$2, VERSION(%ebp)
	jne	no_device
	cmpl	$2, DEVICE_ID(%ebp)
	jne	no_device

	/* Reset, ACKNOWLEDGE, DRIVER; accept VERSION_1 (bit 32) alone; FEATURES_OK and read back. */
	movl	$0, STATUS(%ebp)
	movl	$S_ACKNOWLEDGE, STATUS(%ebp)
	movl	$S_ACKNOWLEDGE | S_DRIVER, STATUS(%ebp)
	movl	$1, DEVICE_FEATURES_SEL(%ebp)
	testl	$1, DEVICE_FEATURES(%ebp)
	jz	no_version_1
	movl	$1, DRIVER_FEATURES_SEL(%ebp)
	movl	$1, DRIVER_FEATURES(%ebp)
	movl	$0, DRIVER_FEATURES_SEL(%ebp)
	movl	$0, DRIVER_FEATURES(%ebp)
	movl	$S_ACKNOWLEDGE | S_DRIVER | S_FEATURES_OK, STATUS(%ebp)
	testl	$S_FEATURES_OK, STATUS(%ebp)
	jz	features_refused

	/* The rings (guest RAM starts zeroed; the indexes are written anyway) and the requests. */
	movw	$AVAIL_F_NO_INTERRUPT, AVAIL
	movw	$0, AVAIL + 2
	movw	$0, USED + 2
	xor	%ecx, %ecx		/* request i */
1:	mov	%ecx, %ebx
	shl	$SLOT_SHIFT, %ebx
	add	$SLOTS, %ebx		/* EBX: its slot */
	mov	%ecx, %edi
	shl	$5, %edi
	add	$DESC, %edi		/* EDI: descriptor 2i */
	lea	HEADER_AT(%ebx), %eax
	mov	%eax, 0(%edi)		/* header: 16 bytes, device-readable, then 2i + 1 */
	movl	$0, 4(%edi)
	movl	$16, 8(%edi)
	movw	$DESC_F_NEXT, 12(%edi)
	lea	1(,%ecx,2), %eax
	mov	%ax, 14(%edi)
	mov	%ebx, 16(%edi)		/* data and status: DATA_LEN + 1 bytes, device-writable */
	movl	$0, 20(%edi)
	movl	$DATA_LEN + 1, 24(%edi)
	movw	$DESC_F_WRITE, 28(%edi)
	movw	$0, 30(%edi)
	movl	$0, HEADER_AT(%ebx)
	movl	$0, HEADER_AT + 4(%ebx)
	movl	$0, HEADER_AT + 8(%ebx)
	movl	$0, HEADER_AT + 12(%ebx)
	movl	$0, (%ebx)
	movb	$0xff, STATUS_AT(%ebx)
	lea	(,%ecx,2), %eax
	mov	%ax, AVAIL + 4(,%ecx,2)	/* avail ring entry i: head 2i */
	inc	%ecx
	cmp	$IN_FLIGHT, %ecx
	jne	1b

	movl	$0, QUEUE_SEL(%ebp)
	cmpl	$QUEUE_SIZE, QUEUE_NUM_MAX(%ebp)
	jb	queue_too_small
	movl	$QUEUE_SIZE, QUEUE_NUM(%ebp)
	movl	$DESC, QUEUE_DESC_LOW(%ebp)
	movl	$0, QUEUE_DESC_HIGH(%ebp)
	movl	$AVAIL, QUEUE_DRIVER_LOW(%ebp)
	movl	$0, QUEUE_DRIVER_HIGH(%ebp)
	movl	$USED, QUEUE_DEVICE_LOW(%ebp)
	movl	$0, QUEUE_DEVICE_HIGH(%ebp)
	movl	$1, QUEUE_READY(%ebp)
	movl	$S_ACKNOWLEDGE | S_DRIVER | S_FEATURES_OK | S_DRIVER_OK, STATUS(%ebp)
	testl	$S_NEEDS_RESET, STATUS(%ebp)
	jnz	needs_reset
	PRINT	"driver ok\n"

	/*
	 * The clock: calibrate the TSC over one RTC second, boundary to boundary, each boundary seen
	 * within one poll (tens of microseconds). The RTC index register stays at "seconds", so each
	 * clock read is one IN.
	 */
	mov	$RTC_SECONDS, %al
	out	%al, $RTC_INDEX
	call	wait_rtc_second
	rdtsc
	mov	%eax, TSC_START
	mov	%edx, TSC_START + 4
	call	wait_rtc_second
	rdtsc
	sub	TSC_START, %eax
	sbb	TSC_START + 4, %edx
	mov	$1000, %ecx
	div	%ecx			/* TSC kHz: fits 32 bits below 4 THz */
	mov	%eax, TSC_KHZ

	/*
	 * Go: make the IN_FLIGHT requests available. Then, for each used entry: check it, put its
	 * chain back on the avail ring, count it; publish and notify once per batch of entries.
	 * ESI: the driver's avail idx; ECX: used entries seen; EDI: completions counted.
	 * The TSC is read at completion WARM and again at completion WARM + MEASURED.
	 */
	mov	$IN_FLIGHT, %esi
	xor	%ecx, %ecx
	xor	%edi, %edi
publish:
	movw	%si, AVAIL + 2		/* x86 keeps stores in order: the entries are visible first */
	movl	$0, QUEUE_NOTIFY(%ebp)
poll:
	movzwl	USED + 2, %eax
	cmp	%cx, %ax
	je	poll
completion:
	mov	%ecx, %eax
	and	$QUEUE_SIZE - 1, %eax
	mov	USED + 4(,%eax,8), %eax	/* the head descriptor: 2i */
	mov	%eax, %ebx
	shl	$SLOT_SHIFT - 1, %ebx
	add	$SLOTS, %ebx		/* EBX: slot i */
	cmpb	$0, STATUS_AT(%ebx)
	jne	io_error
	cmpl	$IMAGE_MAGIC, (%ebx)
	jne	wrong_data
	movl	$0, (%ebx)		/* so a read that does not happen cannot pass the check */
	movb	$0xff, STATUS_AT(%ebx)
	mov	%esi, %edx
	and	$QUEUE_SIZE - 1, %edx
	mov	%ax, AVAIL + 4(,%edx,2)
	inc	%esi
	inc	%ecx
	inc	%edi
	cmp	$WARM, %edi
	jne	2f
	rdtsc
	mov	%eax, TSC_START
	mov	%edx, TSC_START + 4
2:	cmp	$WARM + MEASURED, %edi
	je	measured
	movzwl	USED + 2, %eax
	cmp	%cx, %ax
	jne	completion
	jmp	publish

measured:
	rdtsc
	sub	TSC_START, %eax
	sbb	TSC_START + 4, %edx
	mov	%edx, %ecx		/* ticks * 1000 / kHz = microseconds */
	mov	$1000, %ebx
	mul	%ebx
	imul	$1000, %ecx
	add	%ecx, %edx
	divl	TSC_KHZ			/* fits 32 bits below 71 minutes */
	mov	%eax, %edi
	/* "IOPS <MEASURED> requests in <us> us (TSC <kHz> kHz)" */
	PRINT	"IOPS "
	mov	$MEASURED, %eax
	call	print_decimal
	PRINT	" requests in "
	mov	%edi, %eax
	call	print_decimal
	PRINT	" us (TSC "
	mov	TSC_KHZ, %eax
	call	print_decimal
	PRINT	" kHz)\n"
	jmp	reset

no_device:
	PRINT	"FAIL: no virtio-mmio block device at 0xf0100000\n"
	jmp	reset
no_version_1:
	PRINT	"FAIL: the device does not offer VERSION_1\n"
	jmp	reset
features_refused:
	PRINT	"FAIL: the device refused FEATURES_OK\n"
	jmp	reset
queue_too_small:
	PRINT	"FAIL: QueueNumMax is below 256\n"
	jmp	reset
needs_reset:
	PRINT	"FAIL: the device wants a reset after DRIVER_OK\n"
	jmp	reset
io_error:
	PRINT	"FAIL: a read completed with a non-zero status\n"
	jmp	reset
wrong_data:
	PRINT	"FAIL: a read completed without the image's first bytes in its buffer\n"
	jmp	reset

reset:
	mov	$0xfe, %al		/* pulse the reset line through the i8042 */
	out	%al, $0x64
3:	hlt
	jmp	3b

/* Returns once the RTC's seconds register changed (the index register must select it). */
wait_rtc_second:
	in	$RTC_DATA, %al
	mov	%al, %bl
4:	in	$RTC_DATA, %al
	cmp	%al, %bl
	je	4b
	ret

/* Prints the NUL-terminated string that follows the call, and returns past it. */
print_inline:
	pop	%esi
	push	%eax
	push	%edx
	mov	$UART, %dx
5:	lodsb
	test	%al, %al
	jz	6f
	out	%al, %dx
	jmp	5b
6:	pop	%edx
	pop	%eax
	jmp	*%esi

/* Prints EAX in decimal on the UART. Clobbers EAX, ECX, EDX. */
print_decimal:
	push	%ebx
	mov	$10, %ecx
	xor	%ebx, %ebx
7:	xor	%edx, %edx
	div	%ecx
	push	%edx
	inc	%ebx
	test	%eax, %eax
	jnz	7b
	mov	$UART, %dx
8:	pop	%eax
	add	$'0', %al
	out	%al, %dx
	dec	%ebx
	jnz	8b
	pop	%ebx
	ret
