/** A kernel, initrd, command line or memory size that cannot be booted, with what is wrong. */
export class BootError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "BootError";
  }
}

export function hex(n: number): string {
  return "0x" + n.toString(16);
}
