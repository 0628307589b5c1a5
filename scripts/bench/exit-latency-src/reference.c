/*
 * Exit-latency reference in C: the same VM and guest (tests/guests/out_loop.S) as deno_loop.ts,
 * set up the same way, with the same run loop (read exit_reason, check the port, count).
 * Usage: reference GUEST.bin EXITS  -> prints nanoseconds per exit.
 */
#include <fcntl.h>
#include <linux/kvm.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#define RAM_SIZE (512 * 1024)
#define ENTRY 0x1000

static void fail(const char *what) {
	perror(what);
	exit(1);
}

int main(int argc, char **argv) {
	if (argc != 3) {
		fprintf(stderr, "usage: %s GUEST.bin EXITS\n", argv[0]);
		return 2;
	}
	long exits_wanted = atol(argv[2]);
	int kvm = open("/dev/kvm", O_RDWR | O_CLOEXEC);
	if (kvm < 0) fail("open /dev/kvm");
	int vm = ioctl(kvm, KVM_CREATE_VM, 0);
	if (vm < 0) fail("KVM_CREATE_VM");
	if (ioctl(vm, KVM_SET_TSS_ADDR, 0xfffbd000) < 0) fail("KVM_SET_TSS_ADDR");
	uint64_t identity = 0xfffbc000;
	if (ioctl(vm, KVM_SET_IDENTITY_MAP_ADDR, &identity) < 0) fail("KVM_SET_IDENTITY_MAP_ADDR");
	uint8_t *ram = mmap(NULL, RAM_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (ram == MAP_FAILED) fail("mmap ram");
	struct kvm_userspace_memory_region region = {
		.slot = 0, .guest_phys_addr = 0, .memory_size = RAM_SIZE, .userspace_addr = (uint64_t)ram};
	if (ioctl(vm, KVM_SET_USER_MEMORY_REGION, &region) < 0) fail("KVM_SET_USER_MEMORY_REGION");
	FILE *f = fopen(argv[1], "rb");
	if (!f) fail(argv[1]);
	fread(ram + ENTRY, 1, RAM_SIZE - ENTRY, f);
	fclose(f);

	int vcpu = ioctl(vm, KVM_CREATE_VCPU, 0);
	if (vcpu < 0) fail("KVM_CREATE_VCPU");
	int run_size = ioctl(kvm, KVM_GET_VCPU_MMAP_SIZE, 0);
	struct kvm_run *run = mmap(NULL, run_size, PROT_READ | PROT_WRITE, MAP_SHARED, vcpu, 0);
	if (run == MAP_FAILED) fail("mmap kvm_run");
	struct kvm_sregs sregs;
	if (ioctl(vcpu, KVM_GET_SREGS, &sregs) < 0) fail("KVM_GET_SREGS");
	sregs.cs.base = 0;
	sregs.cs.selector = 0;
	if (ioctl(vcpu, KVM_SET_SREGS, &sregs) < 0) fail("KVM_SET_SREGS");
	struct kvm_regs regs;
	if (ioctl(vcpu, KVM_GET_REGS, &regs) < 0) fail("KVM_GET_REGS");
	regs.rip = ENTRY;
	regs.rflags = 2;
	regs.rcx = exits_wanted;
	if (ioctl(vcpu, KVM_SET_REGS, &regs) < 0) fail("KVM_SET_REGS");

	long exits = 0;
	struct timespec t0, t1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (;;) {
		if (ioctl(vcpu, KVM_RUN, 0) < 0) fail("KVM_RUN");
		if (run->exit_reason == KVM_EXIT_IO && run->io.port == 0x80) {
			exits++;
			continue;
		}
		if (run->exit_reason == KVM_EXIT_HLT) break;
		fprintf(stderr, "unexpected exit %u\n", run->exit_reason);
		return 1;
	}
	clock_gettime(CLOCK_MONOTONIC, &t1);
	if (exits != exits_wanted) {
		fprintf(stderr, "counted %ld exits, wanted %ld\n", exits, exits_wanted);
		return 1;
	}
	double ns = (t1.tv_sec - t0.tv_sec) * 1e9 + (t1.tv_nsec - t0.tv_nsec);
	printf("%.1f\n", ns / exits);
	return 0;
}
