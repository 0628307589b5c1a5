/*
 * 16-bit real mode, for the exit-latency benchmark: ECX (set by the harness) OUTs of AL to
 * port 0x80, then HLT. Three instructions per exit keep the emulated part small.
 */
	.code16
	.text
	.globl	_start
_start:
1:	out	%al, $0x80
	dec	%ecx
	jnz	1b
	hlt
