/** The `file` backend: guest output appended to a host file; no input. */
import { ChardevBase } from "./base.ts";
import { ChardevError, type ChardevLog } from "./chardev.ts";

export class FileChardev extends ChardevBase {
  readonly #file: Deno.FsFile;

  constructor(id: string, readonly path: string, log: ChardevLog) {
    let file: Deno.FsFile;
    try {
      file = Deno.openSync(path, { write: true, append: true, create: true });
    } catch (e) {
      throw new ChardevError(
        `chardev '${id}': cannot open file '${path}': ${(e as Error).message}`,
      );
    }
    super(id, "file", log, (bytes) => file.write(bytes));
    this.#file = file;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    await this.output.flush();
    this.closed = true;
    this.#file.close();
  }
}
