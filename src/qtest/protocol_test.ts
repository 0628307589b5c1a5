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
