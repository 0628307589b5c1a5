import { assertEquals } from "../../tests/lib/assert.ts";
import { IrqLines } from "./irq.ts";

Deno.test("irq lines: edges stay pending until EOI; every edge is reported", () => {
  const irqs = new IrqLines();
  const events: string[] = [];
  irqs.setListener((line, e) => events.push(`${e} ${line}`));
  irqs.pulse(5);
  irqs.pulse(5);
  assertEquals(events, ["raise 5", "raise 5"]);
  assertEquals(irqs.pending(5), true);
  assertEquals(irqs.count(5), 2);
  assertEquals(irqs.eoi(5), true);
  assertEquals(irqs.pending(5), false);
  assertEquals(irqs.eoi(5), false);
});

Deno.test("irq lines: a level line reports changes only and survives EOI while high", () => {
  const irqs = new IrqLines();
  const events: string[] = [];
  irqs.setListener((line, e) => events.push(`${e} ${line}`));
  irqs.setLevel(4, true);
  irqs.setLevel(4, true);
  assertEquals(irqs.eoi(4), true);
  assertEquals(irqs.pending(4), true);
  irqs.setLevel(4, false);
  assertEquals(irqs.pending(4), false);
  assertEquals(events, ["raise 4", "lower 4"]);
});
