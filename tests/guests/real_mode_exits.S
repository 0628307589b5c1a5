/*
 * 16-bit real mode, loaded at guest physical 0x1000 with CS base 0 (the test sets IP = 0x1000).
 * Exits, in order: OUT 0x42 -> port 0x10; OUT 0x1234 (2 bytes) -> port 0x11; IN from port 0x12;
 * the byte read echoed by OUT -> port 0x13; a 4-byte MMIO write of 0xdeadbeef to 0xd0010; HLT.
 */
	.code16
	.text
	.globl	_start
_start:
	mov	$0x42, %al
	out	%al, $0x10
	mov	$0x1234, %ax
	out	%ax, $0x11
	in	$0x12, %al
	out	%al, $0x13
	mov	$0xd000, %ax
	mov	%ax, %ds
	movl	$0xdeadbeef, 0x10
	hlt
