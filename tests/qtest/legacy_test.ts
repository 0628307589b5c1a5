/**
 * The legacy devices of the `accel=test` microvm through the qtest protocol's port I/O: the RTC
 * follows the virtual clock (and only it), the UART's scratch register and interrupt line, the
 * i8042 status port.
 */
import { assertEquals } from "../lib/assert.ts";
import { QtestClient } from "./client.ts";

const bcd = (b: number) => (b >> 4) * 10 + (b & 0xf);

async function rtcSeconds(qt: QtestClient): Promise<number> {
  const reg = async (r: number) => {
    await qt.outb(0x70, r);
    return bcd(await qt.inb(0x71));
  };
  return (await reg(4)) * 3600 + (await reg(2)) * 60 + (await reg(0));
}

Deno.test("qtest legacy: the RTC moves with clock_step and not with host time", async () => {
  const qt = await QtestClient.start([]);
  try {
    // Only the virtual clock moves the guest's time, so a read never straddles a second.
    const t0 = await rtcSeconds(qt);
    await new Promise((r) => setTimeout(r, 1100)); // host time passes; the guest's does not
    assertEquals(await rtcSeconds(qt), t0);
    await qt.clockStep(5_000_000_000n);
    assertEquals((await rtcSeconds(qt) - t0 + 86400) % 86400, 5);
  } finally {
    assertEquals((await qt.close()).code, 0);
  }
});

Deno.test("qtest legacy: UART scratch register, THR-empty interrupt on IRQ 4, i8042 status", async () => {
  const qt = await QtestClient.start([]);
  try {
    await qt.ok("irq_intercept_in ioapic");
    await qt.outb(0x3ff, 0x5a); // scratch register
    assertEquals(await qt.inb(0x3ff), 0x5a);
    assertEquals(await qt.queryIntx(4), false);
    await qt.outb(0x3fc, 0x08); // MCR: OUT2 gates the interrupt onto the line
    await qt.outb(0x3f9, 0x02); // IER: transmitter-empty interrupt
    assertEquals(await qt.queryIntx(4), true);
    assertEquals(await qt.inb(0x3fa) & 0x0f, 0x02); // IIR: THR empty
    await qt.outb(0x3f9, 0x00);
    assertEquals(await qt.queryIntx(4), false);
    assertEquals(qt.irqEvents, ["IRQ raise 4", "IRQ lower 4"]);
    assertEquals(await qt.inb(0x64) & 0x04, 0x04); // system flag: self-test passed
  } finally {
    assertEquals((await qt.close()).code, 0);
  }
});
