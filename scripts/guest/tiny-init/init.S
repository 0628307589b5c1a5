/*
 * The whole userspace of initramfs-tiny.cpio: a libc-free static /init for boot tests that
 * must not pay for unpacking busybox. It prints "BOOT-OK tiny-init", writes byte 2 to I/O
 * port 0x3ff (StratoVirt's boot-complete marker; ioperm first), and restarts the machine
 * (reboot(RESTART): with reboot=k an i8042 reset, which ends the VM).
 * Build: gcc -nostdlib -static -o init init.S
 */
#define SYS_write	1
#define SYS_reboot	169
#define SYS_ioperm	173
#define BOOT_COMPLETE_PORT	0x3ff
#define BOOT_COMPLETE_VALUE	2
#define LINUX_REBOOT_MAGIC1	0xfee1dead
#define LINUX_REBOOT_MAGIC2	672274793
#define LINUX_REBOOT_CMD_RESTART	0x01234567

	.section .rodata
message:
	.ascii "BOOT-OK tiny-init\n"
message_end:

	.text
	.globl _start
_start:
	/* write(1, message, length): the kernel opened /dev/console as fds 0-2. */
	mov	$SYS_write, %eax
	mov	$1, %edi
	lea	message(%rip), %rsi
	mov	$(message_end - message), %edx
	syscall

	/* ioperm(0x3ff, 1, 1), then outb 2 -> 0x3ff. */
	mov	$SYS_ioperm, %eax
	mov	$BOOT_COMPLETE_PORT, %edi
	mov	$1, %esi
	mov	$1, %edx
	syscall
	test	%eax, %eax
	jnz	restart
	mov	$BOOT_COMPLETE_PORT, %dx
	mov	$BOOT_COMPLETE_VALUE, %al
	outb	%al, %dx

restart:
	mov	$SYS_reboot, %eax
	mov	$LINUX_REBOOT_MAGIC1, %edi
	mov	$LINUX_REBOOT_MAGIC2, %esi
	mov	$LINUX_REBOOT_CMD_RESTART, %edx
	xor	%r10d, %r10d
	syscall

	/* Only reached if the restart failed: PID 1 must never exit (that panics). */
hang:
	pause
	jmp	hang
