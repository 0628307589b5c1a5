/**
 * The test side of `-accel test`: starts the VMM with `-mod-test SOCKET` (listening on SOCKET
 * first, as StratoVirt's and QEMU's harnesses do, so the VMM connects to us), speaks the qtest
 * protocol, and carries a small virtio-mmio driver that programs a device the way Linux's
 * virtio_mmio does, with its rings in guest RAM reached through the protocol.
 */
import { Buffer } from "node:buffer";

const encoder = new TextEncoder();
const decoder = new TextDecoder();
const MAIN_TS = new URL("../../main.ts", import.meta.url).pathname;

export class QtestFailure extends Error {
  constructor(readonly command: string, readonly reply: string) {
    super(`${command.slice(0, 80)}: ${reply}`);
    this.name = "QtestFailure";
  }
}

export interface VmmExit {
  code: number;
  stderr: string;
}

export class QtestClient {
  /** "IRQ raise N" / "IRQ lower N" lines received so far (after irq_intercept_in). */
  readonly irqEvents: string[] = [];
  #buffered = "";
  readonly #buf = new Uint8Array(1 << 20);
  #stderr: Promise<string>;

  private constructor(
    readonly conn: Deno.Conn,
    readonly child: Deno.ChildProcess,
    readonly dir: string,
    readonly socketPath: string,
  ) {
    this.#stderr = new Response(child.stderr).text();
  }

  /**
   * Starts `main.ts -machine microvm,accel=test -mod-test SOCK -m 256M ...args` and waits for
   * it to connect. Rejects with the VMM's stderr when it exits first.
   */
  static async start(args: string[], options: { memory?: string } = {}): Promise<QtestClient> {
    const dir = await Deno.makeTempDir({ prefix: "qtest-" });
    const socketPath = `${dir}/qtest.sock`;
    const listener = Deno.listen({ transport: "unix", path: socketPath });
    const child = new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "-A",
        "--quiet",
        MAIN_TS,
        "-machine",
        "microvm,accel=test",
        "-mod-test",
        socketPath,
        "-m",
        options.memory ?? "256M",
        ...args,
      ],
      stdin: "null",
      stdout: "null",
      stderr: "piped",
    }).spawn();
    try {
      const exited = child.status.then((s) => s);
      const first = await Promise.race([listener.accept(), exited]);
      if (!("code" in first)) return new QtestClient(first, child, dir, socketPath);
      const stderr = await new Response(child.stderr).text();
      await Deno.remove(dir, { recursive: true });
      throw new Error(`the VMM exited (${first.code}) before connecting: ${stderr}`);
    } finally {
      listener.close();
    }
  }

  /** Sends lines in one write and returns their replies in order (IRQ lines set aside). */
  async pipeline(lines: string[]): Promise<string[]> {
    if (lines.length === 0) return [];
    const data = encoder.encode(lines.join("\n") + "\n");
    let done = 0;
    while (done < data.length) done += await this.conn.write(data.subarray(done));
    const replies: string[] = [];
    while (replies.length < lines.length) {
      const line = await this.#line();
      if (line.startsWith("IRQ ")) this.irqEvents.push(line);
      else replies.push(line);
    }
    return replies;
  }

  /** The raw reply to one command ("OK ...", "FAIL ..."). */
  async raw(line: string): Promise<string> {
    return (await this.pipeline([line]))[0];
  }

  /** Runs commands and throws QtestFailure on the first reply that is not OK. */
  async ok(...lines: string[]): Promise<string[]> {
    const replies = await this.pipeline(lines);
    replies.forEach((r, i) => {
      if (r !== "OK" && !r.startsWith("OK ")) throw new QtestFailure(lines[i], r);
    });
    return replies.map((r) => r.slice(3));
  }

  async #line(): Promise<string> {
    for (;;) {
      const nl = this.#buffered.indexOf("\n");
      if (nl >= 0) {
        const line = this.#buffered.slice(0, nl);
        this.#buffered = this.#buffered.slice(nl + 1);
        return line;
      }
      const n = await this.conn.read(this.#buf);
      if (n === null) throw new Error("the VMM closed the qtest socket");
      this.#buffered += decoder.decode(this.#buf.subarray(0, n), { stream: true });
    }
  }

  async #readValue(cmd: string, addr: number): Promise<bigint> {
    const [v] = await this.ok(`${cmd} 0x${addr.toString(16)}`);
    return BigInt(v);
  }
  async readb(addr: number): Promise<number> {
    return Number(await this.#readValue("readb", addr));
  }
  async readw(addr: number): Promise<number> {
    return Number(await this.#readValue("readw", addr));
  }
  async readl(addr: number): Promise<number> {
    return Number(await this.#readValue("readl", addr));
  }
  async readq(addr: number): Promise<bigint> {
    return await this.#readValue("readq", addr);
  }
  static cmd(name: string, addr: number, value: number | bigint): string {
    return `${name} 0x${addr.toString(16)} 0x${value.toString(16)}`;
  }
  async writeb(addr: number, v: number): Promise<void> {
    await this.ok(QtestClient.cmd("writeb", addr, v));
  }
  async writew(addr: number, v: number): Promise<void> {
    await this.ok(QtestClient.cmd("writew", addr, v));
  }
  async writel(addr: number, v: number): Promise<void> {
    await this.ok(QtestClient.cmd("writel", addr, v));
  }
  async writeq(addr: number, v: bigint): Promise<void> {
    await this.ok(QtestClient.cmd("writeq", addr, v));
  }
  /** Guest bytes (b64read). */
  async read(addr: number, len: number): Promise<Uint8Array> {
    const [b64] = await this.ok(`b64read 0x${addr.toString(16)} ${len}`);
    return new Uint8Array(Buffer.from(b64 ?? "", "base64"));
  }
  /** The command writing `data` at `addr` (b64write). */
  static writeCmd(addr: number, data: Uint8Array): string {
    return `b64write 0x${addr.toString(16)} ${data.length} ${Buffer.from(data).toString("base64")}`;
  }
  async write(addr: number, data: Uint8Array): Promise<void> {
    await this.ok(QtestClient.writeCmd(addr, data));
  }
  async memset(addr: number, len: number, value: number): Promise<void> {
    await this.ok(`memset 0x${addr.toString(16)} ${len} 0x${value.toString(16)}`);
  }
  async inb(port: number): Promise<number> {
    const [v] = await this.ok(`inb 0x${port.toString(16)}`);
    return Number(v);
  }
  async outb(port: number, v: number): Promise<void> {
    await this.ok(`outb 0x${port.toString(16)} 0x${v.toString(16)}`);
  }
  async clockStep(ns?: bigint): Promise<bigint> {
    const [v] = await this.ok(ns === undefined ? "clock_step" : `clock_step ${ns}`);
    return BigInt(v);
  }
  async queryIntx(irq: number): Promise<boolean> {
    const [v] = await this.ok(`query_intx ${irq}`);
    return v === "TRUE";
  }
  async eoiIntx(irq: number): Promise<boolean> {
    const [v] = await this.ok(`eoi_intx ${irq}`);
    return v === "TRUE";
  }

  /** True while the VMM answers a harmless command. */
  async alive(): Promise<boolean> {
    return (await this.raw("endianness")) === "OK little";
  }

  /** Hangs up and waits for the VMM to exit. */
  async close(): Promise<VmmExit> {
    try {
      this.conn.close();
    } catch { /* closed already */ }
    const status = await this.child.status;
    const stderr = await this.#stderr;
    await Deno.remove(this.dir, { recursive: true });
    return { code: status.code, stderr };
  }
}
