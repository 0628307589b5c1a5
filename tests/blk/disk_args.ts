/** Command-line arguments shared by the Linux guest tests that attach virtio-blk disks. */

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
