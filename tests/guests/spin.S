/*
 * 16-bit real mode: announces itself with OUT -> port 0x10, then spins until the TSC's high
 * word has advanced by ESI (set by the test; each unit is 2^32 cycles, about 1.5 s), then
 * OUT -> port 0x11 and HLT. The deadline bounds a test whose kick never arrives.
 */
	.code16
	.text
	.globl	_start
_start:
	out	%al, $0x10
	rdtsc
	mov	%edx, %ebx
	add	%esi, %ebx
1:	rdtsc
	cmp	%ebx, %edx
	jb	1b
	out	%al, $0x11
	hlt
