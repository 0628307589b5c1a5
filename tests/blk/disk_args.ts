/** Command-line arguments shared by the Linux guest tests that attach virtio-blk disks. */
import { GUEST, guestCmdline } from "./vmm.ts";

/**
 * A 256 MiB microvm of `cpus` vCPUs booting the guest kernel with its root on /dev/vda,
 * `append` added to its command line, the serial console on stdio.
 */
export function microvmArgs(cpus: number, append: string): string[] {
  return [
    "-machine",
    "microvm",
    "-m",
    "256",
    "-smp",
    String(cpus),
    "-kernel",
    `${GUEST}/vmlinux`,
    "-append",
    `${guestCmdline()} root=/dev/vda rw ${append}`,
    "-serial",
    "stdio",
  ];
}

/** `-drive id=DRIVE,file=FILE…` and its `-device virtio-blk-device,drive=DRIVE,id=DEVICE…`. */
export function disk(
  drive: string,
  file: string,
  device: string,
  extra = "",
  driveExtra = "",
): string[] {
  return [
    "-drive",
    `id=${drive},file=${file}${driveExtra}`,
    "-device",
    `virtio-blk-device,drive=${drive},id=${device}${extra}`,
  ];
}
