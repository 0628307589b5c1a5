/** Reads the -kernel / -initrd files for loadLinux, turning I/O failures into BootErrors. */
import { BootError } from "./error.ts";

export interface BootFiles {
  readonly kernel: Uint8Array;
  readonly kernelName: string;
  readonly initrd: Uint8Array | null;
  readonly initrdName: string;
}

/**
 * One buffer of the file's size, filled in place: Deno.readFile would build the bytes in a
 * growing buffer and copy them out, holding a vmlinux (~17 MiB) twice for a moment.
 */
function read(path: string, what: string): Uint8Array {
  let file: Deno.FsFile | undefined;
  try {
    file = Deno.openSync(path);
    const size = file.statSync().size;
    // Not a regular file's size (a pipe, /dev/stdin): read to the end instead.
    if (size === 0) return Deno.readFileSync(path);
    const bytes = new Uint8Array(size);
    let done = 0;
    while (done < size) {
      const n = file.readSync(bytes.subarray(done));
      if (n === null) break;
      done += n;
    }
    return done === size ? bytes : bytes.slice(0, done);
  } catch (e) {
    throw new BootError(`cannot read ${what} ${path}: ${(e as Error).message}`);
  } finally {
    file?.close();
  }
}

/** Reads both files (synchronously: a buffer filled in place beats a copy on another thread). */
export function readBootFiles(kernelPath: string, initrdPath?: string): Promise<BootFiles> {
  try {
    return Promise.resolve({
      kernel: read(kernelPath, "kernel"),
      kernelName: kernelPath,
      initrd: initrdPath ? read(initrdPath, "initrd") : null,
      initrdName: initrdPath ?? "initrd",
    });
  } catch (e) {
    return Promise.reject(e);
  }
}
