/**
 * The qtest text protocol of `-accel test` (QEMU's qtest, as StratoVirt's mod_test speaks it):
 * one command per line, one reply line per command, words separated by spaces. Numbers are
 * `0x`-prefixed hex or plain decimal. Replies start with "OK" or "FAIL <reason>"; a bad command
 * never ends the session. Interrupt reports ("IRQ raise N") arrive as extra lines, before the
 * reply of the command that caused them, once the client asked for them.
 *
 * Commands and replies:
 *   readb|readw|readl|readq ADDR       OK 0x%016x        (little-endian value)
 *   writeb|writew|writel|writeq ADDR V  OK
 *   read ADDR LEN                       OK 0x<2*LEN hex digits>
 *   write ADDR LEN 0xHEX                OK                (missing trailing bytes are zero)
 *   b64read ADDR LEN                    OK <base64>
 *   b64write ADDR LEN BASE64            OK
 *   memset ADDR LEN BYTE                OK
 *   inb|inw|inl PORT                    OK 0x%04x         (an unassigned port reads all ones)
 *   outb|outw|outl PORT V               OK
 *   clock_step [NS]                     OK <clock ns>     (no NS: to the next timer deadline)
 *   clock_set NS                        OK <clock ns>
 *   irq_intercept_in|irq_intercept_out [NAME]  OK        (then "IRQ raise N" / "IRQ lower N")
 *   query_intx N                        OK TRUE|FALSE     (line N fired and was not EOI'd)
 *   eoi_intx N                          OK TRUE|FALSE     (acknowledges; TRUE if it was pending)
 *   endianness                          OK little
 *   quit                                OK                (then the machine ends, status 0)
 *
 * A memory access goes to guest RAM when its first byte is RAM, otherwise to the MMIO bus; an
 * address that is neither answers "FAIL no RAM or device at ADDR".
 */
import { Buffer } from "node:buffer";
import type { Bus } from "../devices/bus.ts";
import type { GuestMemory } from "../memory/guest_memory.ts";
import type { VirtualClock } from "./clock.ts";
import type { IrqLines } from "./irq.ts";

/** What the protocol drives. */
export interface TestTarget {
  readonly memory: GuestMemory;
  readonly mmio: Bus;
  readonly pio: Bus;
  readonly clock: VirtualClock;
  readonly irqs: IrqLines;
  /**
   * Runs before and after each command: devices answer the I/O that finished meanwhile (their
   * interrupts are reported before the command's reply).
   */
  serviceDevices?(): void;
  /** Runs when a batch of commands arrived from the socket (see test_machine.ts, `wait`). */
  startBatch?(): void;
  /** Runs before each command that reads guest memory (see test_machine.ts, `wait`). */
  awaitDevices?(): void;
}

/** Largest transfer one command may move: keeps a typo from allocating gigabytes. */
export const MAX_TRANSFER = 64 * 1024 * 1024;

class CommandError extends Error {}

function fail(reason: string): never {
  throw new CommandError(reason);
}

const WIDTHS: Record<string, number> = { b: 1, w: 2, l: 4, q: 8 };

function hex(n: number | bigint): string {
  return "0x" + n.toString(16);
}

/** `0x`-hex or decimal, unsigned, into a bigint. */
export function parseNumber(word: string | undefined, what: string): bigint {
  if (word === undefined) fail(`missing ${what}`);
  if (/^0x[0-9a-f]+$/i.test(word) || /^[0-9]+$/.test(word)) return BigInt(word);
  fail(`${what} '${word}' is not a number (0x-hex or decimal)`);
}

function parseAddress(word: string | undefined, what = "address"): number {
  const n = parseNumber(word, what);
  if (n > BigInt(Number.MAX_SAFE_INTEGER)) fail(`${what} ${hex(n)} is too large`);
  return Number(n);
}

function parseLength(word: string | undefined): number {
  const n = parseNumber(word, "length");
  if (n > BigInt(MAX_TRANSFER)) fail(`length ${n} is over the ${MAX_TRANSFER}-byte limit`);
  return Number(n);
}

function parseValue(word: string | undefined, bytes: number): bigint {
  const v = parseNumber(word, "value");
  if (v >> BigInt(8 * bytes) !== 0n) fail(`value ${hex(v)} does not fit in ${bytes} byte(s)`);
  return v;
}

function toLittleEndian(value: bigint, bytes: number): Uint8Array {
  const out = new Uint8Array(bytes);
  for (let i = 0; i < bytes; i++) out[i] = Number((value >> BigInt(8 * i)) & 0xffn);
  return out;
}

function fromLittleEndian(data: Uint8Array): bigint {
  let v = 0n;
  for (let i = data.length - 1; i >= 0; i--) v = (v << 8n) | BigInt(data[i]);
  return v;
}

function expectArgs(words: string[], min: number, max = min): void {
  const n = words.length - 1;
  if (n < min || n > max) {
    const want = min === max ? `${min}` : `${min} to ${max}`;
    fail(`${words[0]} takes ${want} argument(s), got ${n}`);
  }
}

/** Value of each hex digit by character code; -1 for anything else. */
const HEX_DIGIT = new Int8Array(128).fill(-1);
for (let i = 0; i < 16; i++) {
  HEX_DIGIT["0123456789abcdef".charCodeAt(i)] = i;
  HEX_DIGIT["0123456789ABCDEF".charCodeAt(i)] = i;
}

/**
 * `text[from, to)` as a 0x-hex or decimal number when it is one below 2^52, else -1: the fast
 * path then leaves the command to the general parser, which says what is wrong with it.
 */
function quickNumber(text: string, from: number, to: number): number {
  if (to <= from) return -1;
  let n = 0;
  if (to - from > 2 && text.charCodeAt(from) === 48 && (text.charCodeAt(from + 1) | 32) === 120) {
    if (to - from - 2 > 13) return -1;
    for (let i = from + 2; i < to; i++) {
      const c = text.charCodeAt(i);
      const d = c < 128 ? HEX_DIGIT[c] : -1;
      if (d < 0) return -1;
      n = n * 16 + d;
    }
    return n;
  }
  if (to - from > 15) return -1;
  for (let i = from; i < to; i++) {
    const d = text.charCodeAt(i) - 48;
    if (d < 0 || d > 9) return -1;
    n = n * 10 + d;
  }
  return n;
}

/** Hex digits `text[from, to)` (an even count) into `out`; false when one is not a hex digit. */
function decodeHexInto(text: string, from: number, to: number, out: Uint8Array): boolean {
  for (let i = from, j = 0; i < to; i += 2, j++) {
    const a = text.charCodeAt(i);
    const b = text.charCodeAt(i + 1);
    const hi = a < 128 ? HEX_DIGIT[a] : -1;
    const lo = b < 128 ? HEX_DIGIT[b] : -1;
    if (hi < 0 || lo < 0) return false;
    out[j] = (hi << 4) | lo;
  }
  return true;
}

export class QtestProtocol {
  #intercepting = false;
  #out: string[] = [];
  /** Where IRQ reports outside a command go (nobody asked for them). */
  readonly #discarded: string[] = [];
  /** Set by `quit`: the server closes the session after sending the reply. */
  quitRequested = false;

  constructor(readonly target: TestTarget) {
    target.irqs.setListener((line, event) => {
      if (this.#intercepting) this.#out.push(`IRQ ${event} ${line}`);
    });
  }

  /** Runs one command line; returns the lines to send: IRQ reports, then the reply. */
  handleLine(line: string): string[] {
    const out: string[] = [];
    this.handleInto(line, out);
    return out;
  }

  /**
   * Runs one command line and appends the lines to send (IRQ reports, then the reply) to `out`.
   * Devices are serviced before and after the command; `serviceBefore` false skips the first
   * when the caller has just run another command (whose "after" already did it).
   */
  handleInto(line: string, out: string[], serviceBefore = true): void {
    this.#out = out;
    let reply: string;
    try {
      if (serviceBefore) this.target.serviceDevices?.();
      reply = this.#fast(line) ??
        this.#execute(line.trim().split(/\s+/).filter((w) => w !== ""));
      this.target.serviceDevices?.();
    } catch (e) {
      const reason = e instanceof CommandError
        ? e.message
        : `internal error: ${(e as Error).message}`;
      reply = `FAIL ${reason}`;
    }
    out.push(reply);
    this.#out = this.#discarded;
    this.#discarded.length = 0;
  }

  /**
   * The commands a driver sends most (`write`, `read`, `write[bwlq]`) in their plain form (one
   * space between words, numbers below 2^52), parsed without splitting, regular expressions or
   * bigints. Returns the reply, or null (nothing done yet) for the general parser.
   */
  #fast(line: string): string | null {
    const s1 = line.indexOf(" ");
    if (s1 < 4 || s1 > 6) return null;
    const s2 = line.indexOf(" ", s1 + 1);
    if (s2 < 0) return this.#fastRead(line, s1);
    const addr = quickNumber(line, s1 + 1, s2);
    if (addr < 0) return null;
    const s3 = line.indexOf(" ", s2 + 1);
    const end2 = s3 < 0 ? line.length : s3;
    const arg = quickNumber(line, s2 + 1, end2);
    if (arg < 0) return null;
    const cmd = line.slice(0, s1);
    if (cmd === "write") {
      // write ADDR LEN 0xHEX
      if (s3 < 0 || arg > MAX_TRANSFER || line.indexOf(" ", s3 + 1) >= 0) return null;
      const digits = line.length - s3 - 3;
      if (digits < 0 || digits % 2 !== 0 || digits > 2 * arg) return null;
      if (line.charCodeAt(s3 + 1) !== 48 || (line.charCodeAt(s3 + 2) | 32) !== 120) return null;
      const data = new Uint8Array(arg);
      if (!decodeHexInto(line, s3 + 3, line.length, data)) return null;
      this.#write(addr, data);
      return "OK";
    }
    if (s3 >= 0) return null;
    if (cmd === "read") {
      if (arg > MAX_TRANSFER) return null;
      const data = this.#read(addr, arg);
      return `OK 0x${Buffer.from(data.buffer, data.byteOffset, data.byteLength).toString("hex")}`;
    }
    if (cmd.length !== 6 || !cmd.startsWith("write")) return null;
    const width = WIDTHS[cmd[5]];
    if (width === undefined || (width < 8 && arg >= 2 ** (8 * width))) return null;
    const data = new Uint8Array(width);
    for (let i = 0, v = arg; i < width; i++, v = Math.floor(v / 256)) data[i] = v % 256;
    this.#write(addr, data);
    return "OK";
  }

  /** `read[bwl] ADDR` (a driver polling a ring index or a register), or null. */
  #fastRead(line: string, s1: number): string | null {
    if (s1 !== 5 || !line.startsWith("read")) return null;
    const width = WIDTHS[line[4]];
    if (width === undefined || width === 8) return null;
    const addr = quickNumber(line, 6, line.length);
    if (addr < 0) return null;
    const data = this.#read(addr, width);
    let value = 0;
    for (let i = width - 1; i >= 0; i--) value = value * 256 + data[i];
    return `OK 0x${value.toString(16).padStart(16, "0")}`;
  }

  #execute(words: string[]): string {
    const cmd = words[0];
    if (cmd === undefined) fail("empty command");
    const width = WIDTHS[cmd.slice(-1)];
    if (/^read[bwlq]$/.test(cmd)) {
      expectArgs(words, 1);
      const data = this.#read(parseAddress(words[1]), width);
      return `OK 0x${fromLittleEndian(data).toString(16).padStart(16, "0")}`;
    }
    if (/^write[bwlq]$/.test(cmd)) {
      expectArgs(words, 2);
      const addr = parseAddress(words[1]);
      this.#write(addr, toLittleEndian(parseValue(words[2], width), width));
      return "OK";
    }
    if (/^in[bwl]$/.test(cmd)) {
      expectArgs(words, 1);
      const port = this.#port(words[1]);
      const data = new Uint8Array(width);
      if (!this.target.pio.read(port, data)) data.fill(0xff);
      return `OK 0x${fromLittleEndian(data).toString(16).padStart(4, "0")}`;
    }
    if (/^out[bwl]$/.test(cmd)) {
      expectArgs(words, 2);
      const port = this.#port(words[1]);
      this.target.pio.write(port, toLittleEndian(parseValue(words[2], width), width));
      return "OK";
    }
    switch (cmd) {
      case "read": {
        expectArgs(words, 2);
        const data = this.#read(parseAddress(words[1]), parseLength(words[2]));
        return `OK 0x${Buffer.from(data).toString("hex")}`;
      }
      case "write": {
        expectArgs(words, 3);
        const addr = parseAddress(words[1]);
        const len = parseLength(words[2]);
        this.#write(addr, this.#hexData(words[3], len));
        return "OK";
      }
      case "b64read": {
        expectArgs(words, 2);
        const data = this.#read(parseAddress(words[1]), parseLength(words[2]));
        return `OK ${Buffer.from(data).toString("base64")}`;
      }
      case "b64write": {
        expectArgs(words, 3);
        const addr = parseAddress(words[1]);
        const len = parseLength(words[2]);
        if (!/^[A-Za-z0-9+/]*={0,2}$/.test(words[3])) fail("data is not base64");
        const decoded = Buffer.from(words[3], "base64");
        if (decoded.length > len) fail(`data has ${decoded.length} bytes, more than ${len}`);
        const data = new Uint8Array(len);
        data.set(decoded);
        this.#write(addr, data);
        return "OK";
      }
      case "memset": {
        expectArgs(words, 3);
        const addr = parseAddress(words[1]);
        const len = parseLength(words[2]);
        const value = Number(parseValue(words[3], 1));
        this.#write(addr, new Uint8Array(len).fill(value));
        return "OK";
      }
      case "clock_step": {
        expectArgs(words, 0, 1);
        const clock = this.target.clock;
        const step = words[1] === undefined
          ? clock.nextDeadlineDelta() ?? 0n
          : parseNumber(words[1], "nanoseconds");
        clock.advanceTo(clock.nowNs + step);
        return `OK ${clock.nowNs}`;
      }
      case "clock_set": {
        expectArgs(words, 1);
        const clock = this.target.clock;
        const target = parseNumber(words[1], "nanoseconds");
        if (target < clock.nowNs) fail(`the clock is at ${clock.nowNs} ns and cannot go back`);
        clock.advanceTo(target);
        return `OK ${clock.nowNs}`;
      }
      case "irq_intercept_in":
      case "irq_intercept_out":
        expectArgs(words, 0, 1);
        this.#intercepting = true;
        return "OK";
      case "query_intx": {
        expectArgs(words, 1);
        return this.target.irqs.pending(this.#irqLine(words[1])) ? "OK TRUE" : "OK FALSE";
      }
      case "eoi_intx": {
        expectArgs(words, 1);
        return this.target.irqs.eoi(this.#irqLine(words[1])) ? "OK TRUE" : "OK FALSE";
      }
      case "endianness":
        expectArgs(words, 0);
        return "OK little";
      case "quit":
        expectArgs(words, 0);
        this.quitRequested = true;
        return "OK";
      default:
        fail(`unknown command '${cmd}'`);
    }
  }

  #port(word: string | undefined): number {
    const port = parseAddress(word, "port");
    if (port > 0xffff) fail(`port ${hex(port)} is beyond 0xffff`);
    return port;
  }

  #irqLine(word: string | undefined): number {
    const n = parseAddress(word, "irq");
    if (n > 1023) fail(`irq ${n} is beyond 1023`);
    return n;
  }

  #hexData(word: string | undefined, len: number): Uint8Array {
    if (word === undefined) fail("missing data");
    if (!/^0x([0-9a-f]{2})*$/i.test(word)) fail("data must be 0x followed by pairs of hex digits");
    const digits = word.slice(2);
    if (digits.length > 2 * len) fail(`data has ${digits.length / 2} bytes, more than ${len}`);
    const data = new Uint8Array(len);
    data.set(Buffer.from(digits, "hex"));
    return data;
  }

  #read(addr: number, len: number): Uint8Array {
    this.target.awaitDevices?.();
    const { memory, mmio } = this.target;
    if (len === 0) return new Uint8Array(0);
    if (memory.contains(addr, 1)) {
      if (!memory.contains(addr, len)) this.#spanCheck(addr, len);
      return memory.read(addr, len);
    }
    const data = new Uint8Array(len);
    if (!mmio.read(addr, data)) fail(`no RAM or device at ${hex(addr)}`);
    return data;
  }

  #write(addr: number, data: Uint8Array): void {
    const { memory, mmio } = this.target;
    if (data.length === 0) return;
    if (memory.contains(addr, 1)) {
      if (!memory.contains(addr, data.length)) this.#spanCheck(addr, data.length);
      memory.write(addr, data);
      return;
    }
    if (!mmio.write(addr, data)) fail(`no RAM or device at ${hex(addr)}`);
  }

  /** A RAM access running past the end of RAM (or into a hole) is refused as a whole. */
  #spanCheck(addr: number, len: number): void {
    let at = addr;
    const end = addr + len;
    while (at < end) {
      const r = this.target.memory.regions.find((r) => at >= r.gpa && at < r.gpa + r.size);
      if (!r) fail(`${hex(addr)}+${hex(len)} runs past guest RAM at ${hex(at)}`);
      at = r.gpa + r.size;
    }
  }
}
