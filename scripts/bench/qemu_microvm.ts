/**
 * The QEMU side of the benchmarks that boot a guest on both VMMs: one command line for QEMU's
 * microvm, so every comparison runs QEMU the same way.
 */

/** QEMU microvm with KVM, `memMiB` of RAM and `cpus` vCPUs, serial on stdio; no kernel yet. */
export function qemuMicrovmArgs(memMiB: number, cpus: number): string[] {
  return [
    "-M",
    "microvm,x-option-roms=off,rtc=off,acpi=off",
    "-enable-kvm",
    // kvm_pvm refuses QEMU's MSR_IA32_ARCH_CAPABILITIES write.
    "-cpu",
    "host,-arch-capabilities",
    "-m",
    `${memMiB}M`,
    "-smp",
    String(cpus),
    "-nodefaults",
    "-no-user-config",
    "-nographic",
    "-serial",
    "stdio",
    // Our microvm has an i8042 for reboot=k; QEMU's needs it added. A reset ends QEMU.
    "-device",
    "i8042",
    "-no-reboot",
  ];
}
