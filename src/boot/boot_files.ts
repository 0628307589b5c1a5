/** Reads the -kernel / -initrd files for loadLinux, turning I/O failures into BootErrors. */
import { BootError } from "./error.ts";

export interface BootFiles {
  readonly kernel: Uint8Array;
  readonly kernelName: string;
  readonly initrd: Uint8Array | null;
  readonly initrdName: string;
}

async function read(path: string, what: string): Promise<Uint8Array> {
  try {
    return await Deno.readFile(path);
  } catch (e) {
    throw new BootError(`cannot read ${what} ${path}: ${(e as Error).message}`);
  }
}

export async function readBootFiles(kernelPath: string, initrdPath?: string): Promise<BootFiles> {
  return {
    kernel: await read(kernelPath, "kernel"),
    kernelName: kernelPath,
    initrd: initrdPath ? await read(initrdPath, "initrd") : null,
    initrdName: initrdPath ?? "initrd",
  };
}
