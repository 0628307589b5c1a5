import { assertEquals } from "../../../tests/lib/assert.ts";
import { I8042, I8042_PORT_BASE, I8042_PORT_SIZE } from "./i8042.ts";

const DATA = 0x60 - I8042_PORT_BASE;
const STATUS = 0x64 - I8042_PORT_BASE;
const OBF = 0x01, IBF = 0x02, AUXDATA = 0x20;

function inb(dev: I8042, offset: number): number {
  const b = new Uint8Array(1);
  dev.read(offset, b);
  return b[0];
}
function outb(dev: I8042, offset: number, value: number): void {
  dev.write(offset, new Uint8Array([value]));
}

/** Linux's i8042_command(): wait for IBF clear, send, then read the reply if OBF is set. */
function command(dev: I8042, cmd: number, param?: number): number | null {
  if (inb(dev, STATUS) & IBF) throw new Error("controller busy");
  outb(dev, STATUS, cmd);
  if (param !== undefined) outb(dev, DATA, param);
  return inb(dev, STATUS) & OBF ? inb(dev, DATA) : null;
}

Deno.test("i8042: command 0xfe pulses reset and calls onReset", () => {
  let resets = 0;
  const dev = new I8042({ onReset: () => resets++ });
  // Linux's reboot=k path: kb_wait() polls for IBF clear, then writes 0xfe.
  assertEquals(inb(dev, STATUS) & IBF, 0);
  outb(dev, STATUS, 0xfe);
  assertEquals(resets, 1);
  assertEquals(dev.resetRequests, 1);
  // 0xff pulses no line; other reads and writes do not reset.
  outb(dev, STATUS, 0xff);
  outb(dev, DATA, 0xfe);
  assertEquals(resets, 1);
  // Writing the output port with the reset bit low also resets.
  outb(dev, STATUS, 0xd1);
  outb(dev, DATA, 0x02);
  assertEquals(resets, 2);
});

Deno.test("i8042: Linux's probe sees a controller without waiting on timeouts", () => {
  const dev = new I8042();
  // i8042_flush: nothing pending.
  assertEquals(inb(dev, STATUS) & OBF, 0);
  assertEquals(command(dev, 0xaa), 0x55, "self test");
  assertEquals(inb(dev, STATUS) & 0x04, 0x04, "system flag");
  const ctr = command(dev, 0x20);
  assertEquals(ctr, 0x65);
  command(dev, 0x60, 0x47);
  assertEquals(command(dev, 0x20), 0x47, "command byte written");
  assertEquals(command(dev, 0xab), 0x00, "keyboard interface test");
  // i8042_check_aux: AUX loopback answers at once but without the AUX flag, so it fails ...
  outb(dev, STATUS, 0xd3);
  outb(dev, DATA, 0x5a);
  const status = inb(dev, STATUS);
  assertEquals(status & (OBF | AUXDATA), OBF);
  assertEquals(inb(dev, DATA), 0x5a);
  // ... and the AUX test reports a stuck clock line: no mouse port.
  assertEquals(command(dev, 0xa9), 0x01);
  // A keyboard command gets no reply (no keyboard attached).
  outb(dev, DATA, 0xf2);
  assertEquals(inb(dev, STATUS) & OBF, 0);
  // An empty buffer reads the last byte again.
  assertEquals(inb(dev, DATA), 0x01);
  assertEquals(command(dev, 0xd0), 0x03, "output port: not in reset, A20 on");
});

Deno.test("i8042: port 0x61 reads with the PIT output bit set", () => {
  const dev = new I8042();
  assertEquals(inb(dev, 1) & 0x20, 0x20);
});

Deno.test("i8042: any access at any offset and size never throws or hangs the queue", () => {
  const dev = new I8042();
  let seed = 7;
  const rand = (n: number) => {
    seed = (seed * 1103515245 + 12345) & 0x7fffffff;
    return seed % n;
  };
  for (let i = 0; i < 20000; i++) {
    const data = new Uint8Array([1, 2, 4, 8][rand(4)]).map(() => rand(256));
    const offset = rand(I8042_PORT_SIZE + 8);
    if (rand(2)) dev.write(offset, data);
    else dev.read(offset, data);
  }
  // Drain whatever the noise queued: bounded.
  let n = 0;
  while (inb(dev, STATUS) & OBF && n < 100) {
    inb(dev, DATA);
    n++;
  }
  assertEquals(inb(dev, STATUS) & OBF, 0);
  assertEquals(command(dev, 0xaa), 0x55);
});
