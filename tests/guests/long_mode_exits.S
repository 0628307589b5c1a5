/*
 * 64-bit long mode: the test enters it directly through KVM_SET_SREGS (paging on, identity
 * mapped 2 MiB pages over the first 1 GiB) with RIP at this code.
 * Exits, in order: OUT 0xcafe0042 (4 bytes) -> port 0x10; an 8-byte MMIO write of
 * 0x1122334455667788 to 0x30000000; HLT.
 */
	.code64
	.text
	.globl	_start
_start:
	mov	$0xcafe0042, %eax
	out	%eax, $0x10
	movabs	$0x1122334455667788, %rax
	mov	%rax, 0x30000000
	hlt
