import { assertEquals, assertMatch } from "../../tests/lib/assert.ts";
import { mmioBus, pioBus } from "../devices/bus.ts";
import { GuestMemory } from "../memory/guest_memory.ts";
import { VirtualClock } from "./clock.ts";
import { IrqLines } from "./irq.ts";
import { QtestProtocol } from "./protocol.ts";

/** 64 KiB of RAM at 0, a 16-byte scratch register file at MMIO 0x1000_0000, a port at 0x80. */
function setup() {
  const memory = GuestMemory.anonymous(0x10000);
  const mmio = mmioBus();
  const regs = new Uint8Array(16);
  mmio.insert(0x1000_0000, 16, {
    read: (o, d) => d.set(regs.subarray(o, o + d.length)),
    write: (o, d) => regs.set(d.subarray(0, 16 - o), o),
  }, "scratch");
  const pio = pioBus();
  let port = 0;
  pio.insert(0x80, 4, {
    read: (_o, d) => d.set([port, 0, 0, 0].slice(0, d.length)),
    write: (_o, d) => port = d[0],
  }, "port80");
  const clock = new VirtualClock();
  const irqs = new IrqLines();
  const p = new QtestProtocol({ memory, mmio, pio, clock, irqs });
  const run = (line: string) => p.handleLine(line).join("|");
  return { p, run, memory, regs, clock, irqs };
}

Deno.test("qtest protocol: sized reads and writes, RAM and MMIO, little-endian", () => {
  const { run, memory, regs } = setup();
  assertEquals(run("writeq 0x100 0x1122334455667788"), "OK");
  assertEquals(memory.readU64(0x100), 0x1122334455667788n);
  assertEquals(run("readl 0x100"), "OK 0x0000000055667788");
  assertEquals(run("readb 259"), "OK 0x0000000000000055"); // decimal address
  assertEquals(run("writew 0x10000004 0xbeef"), "OK");
  assertEquals([...regs.subarray(4, 6)], [0xef, 0xbe]);
  assertEquals(run("readw 0x10000004"), "OK 0x000000000000beef");
});

Deno.test("qtest protocol: bulk read / write / b64 / memset", () => {
  const { run, memory } = setup();
  assertEquals(run("write 0x200 4 0xdeadbeef"), "OK");
  assertEquals(run("read 0x200 4"), "OK 0xdeadbeef");
  assertEquals(run("write 0x200 4 0xaa"), "OK"); // short data: the rest is zero
  assertEquals(run("read 0x200 4"), "OK 0xaa000000");
  assertEquals(run("b64write 0x300 3 AQID"), "OK");
  assertEquals([...memory.read(0x300, 3)], [1, 2, 3]);
  assertEquals(run("b64read 0x300 3"), "OK AQID");
  assertEquals(run("memset 0x400 8 0x7f"), "OK");
  assertEquals(run("read 0x400 8"), "OK 0x7f7f7f7f7f7f7f7f");
  assertEquals(run("read 0x400 0"), "OK 0x");
});

Deno.test("qtest protocol: PIO in/out; unassigned ports read all ones", () => {
  const { run } = setup();
  assertEquals(run("outb 0x80 0x42"), "OK");
  assertEquals(run("inb 0x80"), "OK 0x0042");
  assertEquals(run("inl 0x80"), "OK 0x0042");
  assertEquals(run("inw 0x300"), "OK 0xffff");
  assertEquals(run("inl 0x300"), "OK 0xffffffff");
});

Deno.test("qtest protocol: clock_step / clock_set run timers; IRQ lines once intercepted", () => {
  const { run, clock, irqs } = setup();
  clock.after(1000n, () => irqs.pulse(5));
  assertEquals(run("clock_step"), "OK 1000"); // to the next deadline; nobody intercepts yet
  assertEquals(run("query_intx 5"), "OK TRUE");
  assertEquals(run("eoi_intx 5"), "OK TRUE");
  assertEquals(run("query_intx 5"), "OK FALSE");
  assertEquals(run("irq_intercept_in ioapic"), "OK");
  clock.after(500n, () => irqs.pulse(5));
  assertEquals(run("clock_set 2000"), "IRQ raise 5|OK 2000");
  assertEquals(run("clock_step 5"), "OK 2005");
  assertEquals(run("clock_step"), "OK 2005"); // no timer: the clock stays
});

Deno.test("qtest protocol: every bad line is a FAIL with a reason, and quit is OK", () => {
  const { p, run } = setup();
  for (
    const [line, why] of [
      ["", /empty/],
      ["nope", /unknown command 'nope'/],
      ["readl", /takes 1 argument/],
      ["readl 0x20000", /no RAM or device at 0x20000/],
      ["readq 0xfffc", /runs past guest RAM/],
      ["writeb 0 256", /does not fit in 1 byte/],
      ["write 0 2 0x123", /pairs of hex digits/],
      ["write 0 1 0x1234", /more than 1/],
      ["memset 0 0x7fffffff 0", /limit/],
      ["readl 0x20000000000000", /too large/],
      ["inb 0x10000", /beyond 0xffff/],
      ["clock_set 0", /OK 0/],
      ["b64write 0 2 ***", /not base64/],
    ] as const
  ) {
    const reply = run(line);
    assertMatch(reply, line === "clock_set 0" ? why : new RegExp(`^FAIL .*${why.source}`), line);
  }
  assertEquals(p.quitRequested, false);
  assertEquals(run("quit"), "OK");
  assertEquals(p.quitRequested, true);
});

Deno.test("qtest protocol: the plain forms of write / read / write[bwlq] (fast path) agree with the general parser", () => {
  const { run, memory, regs } = setup();
  // Each pair: the plain form, then a form the fast path leaves to the general parser
  // (extra spaces, upper-case 0X); both must do the same thing.
  assertEquals(run("write 0x200 4 0xDeadBeef"), "OK");
  assertEquals(run("read 0x200 4"), "OK 0xdeadbeef");
  assertEquals(run("write  0x200 4 0X0102"), "OK");
  assertEquals(run("read   0x200 4"), "OK 0x01020000");
  assertEquals(run("write 512 2 0x"), "OK"); // decimal address, no data: zeroes
  assertEquals(run("read 0x200 2"), "OK 0x0000");
  assertEquals(run("read 0x200 0"), "OK 0x");
  assertEquals(run("writew 0x10000004 48879"), "OK");
  assertEquals([...regs.subarray(4, 6)], [0xef, 0xbe]);
  assertEquals(run("writeq 0x100 0xffffffffffffffff"), "OK"); // beyond 2^52: general path
  assertEquals(memory.readU64(0x100), 0xffffffffffffffffn);
  assertEquals(run("writel 0x100 0x1"), "OK");
  assertEquals(memory.readU64(0x100), 0xffffffff00000001n);
  // Errors come out as the general parser words them.
  assertEquals(run("writeb 0x100 256"), "FAIL value 0x100 does not fit in 1 byte(s)");
  assertEquals(run("write 0x200 2 0xabcdef"), "FAIL data has 3 bytes, more than 2");
  assertEquals(run("write 0x200 2 0xzz"), "FAIL data must be 0x followed by pairs of hex digits");
  assertEquals(run("write 0x200 2 0xabc"), "FAIL data must be 0x followed by pairs of hex digits");
  assertEquals(run("read 0x200 4 5"), "FAIL read takes 2 argument(s), got 3");
  assertEquals(run("write 0x200 4"), "FAIL write takes 3 argument(s), got 2");
  assertMatch(run("read 0x20000000 4"), /^FAIL no RAM or device at 0x20000000$/);
  assertMatch(run("write 0xfff0 32 0x00"), /^FAIL .*runs past guest RAM/);
  assertMatch(run("read 0x200 0x10000000"), /^FAIL length .* is over the .*-byte limit$/);
});

Deno.test("qtest protocol: handleInto appends replies and can skip servicing before a command", () => {
  const { p } = setup();
  let serviced = 0;
  (p.target as { serviceDevices?: () => void }).serviceDevices = () => void serviced++;
  const out: string[] = [];
  p.handleInto("write 0x200 1 0x01", out);
  p.handleInto("read 0x200 1", out, false);
  assertEquals(out, ["OK", "OK 0x01"]);
  assertEquals(serviced, 3); // before and after the first, after the second
});
