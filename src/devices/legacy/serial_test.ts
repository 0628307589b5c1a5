import { assert, assertEquals } from "../../../tests/lib/assert.ts";
import { Serial8250, SERIAL_PORT_SIZE } from "./serial.ts";

// Register offsets and bits, spelled as Linux's serial_reg.h does.
const RX = 0, TX = 0, DLL = 0, IER = 1, DLM = 1, IIR = 2, FCR = 2, EFR = 2;
const LCR = 3, MCR = 4, LSR = 5, MSR = 6, SCR = 7;
const LCR_CONF_MODE_A = 0x80, LCR_CONF_MODE_B = 0xbf, LCR_WLEN8 = 0x03;
const MCR_LOOP = 0x10, MCR_OUT2 = 0x08, MCR_RTS = 0x02, MCR_DTR = 0x01;
const IER_RDI = 0x01, IER_THRI = 0x02, IER_RLSI = 0x04, IER_MSI = 0x08, IER_UUE = 0x40;
const IIR_NO_INT = 0x01, IIR_ID = 0x0e;
const FCR_ENABLE_FIFO = 0x01, FCR_CLEAR_RCVR = 0x02, FCR_CLEAR_XMIT = 0x04, FCR7_64BYTE = 0x20;
const LSR_DR = 0x01, LSR_OE = 0x02, LSR_THRE = 0x20, LSR_TEMT = 0x40;

class Harness {
  out: number[] = [];
  irq: boolean[] = [];
  uart: Serial8250;
  constructor(rxCapacity?: number) {
    this.uart = new Serial8250({
      setIrq: (level) => this.irq.push(level),
      output: (bytes) => this.out.push(...bytes),
      rxCapacity,
    });
  }
  in(reg: number): number {
    const b = new Uint8Array(1);
    this.uart.read(reg, b);
    return b[0];
  }
  outb(reg: number, value: number): void {
    this.uart.write(reg, new Uint8Array([value]));
  }
}

/**
 * The decisions of Linux's serial8250 autoconfig() and autoconfig_16550a() (drivers/tty/serial/
 * 8250/8250_port.c, with the 16550A-variants probing that distros enable), replayed against the
 * model. Returns the port type Linux would name.
 */
function linuxAutoconfig(h: Harness): string {
  // Is there a UART at all: IER must hold exactly its low four bits.
  const savedIer = h.in(IER);
  h.outb(IER, 0);
  const scratch2 = h.in(IER) & 0x0f;
  h.outb(IER, 0x0f);
  const scratch3 = h.in(IER) & 0x0f;
  h.outb(IER, savedIer);
  if (scratch2 !== 0 || scratch3 !== 0x0f) return "none (IER test)";

  const saveMcr = h.in(MCR);
  const saveLcr = h.in(LCR);
  // Loopback test: RTS|OUT2 in loopback must read back as CTS|DCD.
  h.outb(MCR, MCR_LOOP | 0x0a);
  const status1 = h.in(MSR) & 0xf0;
  h.outb(MCR, saveMcr);
  if (status1 !== 0x90) return "none (loopback test)";

  h.outb(LCR, LCR_CONF_MODE_B);
  h.outb(EFR, 0);
  h.outb(LCR, 0);
  h.outb(FCR, FCR_ENABLE_FIFO);
  const scratch = h.in(IIR) >> 6;
  let type: string;
  switch (scratch) {
    case 0:
      type = "8250";
      break;
    case 1:
      return "unknown";
    case 2:
      type = "16550";
      break;
    default:
      type = autoconfig16550a(h);
  }
  h.outb(LCR, saveLcr);
  h.outb(FCR, 0);
  h.outb(MCR, saveMcr);
  return type;
}

function autoconfig16550a(h: Harness): string {
  // EFR under LCR 0x80 (ST16C650V1)?
  h.outb(LCR, LCR_CONF_MODE_A);
  if (h.in(EFR) === 0) return "16650 (EFRv1)";
  // EFR under LCR 0xbf?
  h.outb(LCR, LCR_CONF_MODE_B);
  if (h.in(EFR) === 0) return "16650V2 (EFRv2)";
  // National Semiconductor SuperIO: EXCR1 in bank 2 mirrors MCR's LOOP bit.
  h.outb(LCR, 0);
  const mcr1 = h.in(MCR);
  h.outb(LCR, 0xe0);
  let excr1 = h.in(0x02);
  if (!((excr1 ^ mcr1) & MCR_LOOP)) {
    h.outb(LCR, 0);
    h.outb(MCR, mcr1 ^ MCR_LOOP);
    h.outb(LCR, 0xe0);
    excr1 = h.in(0x02);
    h.outb(LCR, 0);
    h.outb(MCR, mcr1);
    if ((excr1 ^ mcr1) & MCR_LOOP) return "NS16550A";
  }
  // TI16750: IIR bit 5 with 64-byte FIFO mode requested under DLAB.
  h.outb(LCR, 0);
  h.outb(FCR, FCR_ENABLE_FIFO | FCR7_64BYTE);
  const s1 = h.in(IIR) & 0xe0;
  h.outb(FCR, FCR_ENABLE_FIFO);
  h.outb(LCR, LCR_CONF_MODE_A);
  h.outb(FCR, FCR_ENABLE_FIFO | FCR7_64BYTE);
  const s2 = h.in(IIR) & 0xe0;
  h.outb(FCR, FCR_ENABLE_FIFO);
  h.outb(LCR, 0);
  if (s1 === 0xc0 && s2 === 0xe0) return "16750";
  // XScale: IER bit 6 (UUE) writable.
  const iersave = h.in(IER);
  h.outb(IER, iersave & ~IER_UUE);
  if (!(h.in(IER) & IER_UUE)) {
    h.outb(IER, iersave | IER_UUE);
    if (h.in(IER) & IER_UUE) return "XScale";
  }
  h.outb(IER, iersave);
  return "16550A";
}

Deno.test("serial: Linux's 8250 autoconfig identifies a 16550A", () => {
  const h = new Harness();
  assertEquals(linuxAutoconfig(h), "16550A");
  // The probe leaves no interrupt asserted and nothing transmitted.
  assertEquals(h.uart.irqLevel, false);
  assertEquals(h.out, []);
});

Deno.test("serial: reset state matches StratoVirt's", () => {
  const h = new Harness();
  assertEquals(h.in(IER), 0);
  assertEquals(h.in(IIR), IIR_NO_INT);
  assertEquals(h.in(LCR), 0x03);
  assertEquals(h.in(MCR), MCR_OUT2);
  assertEquals(h.in(LSR), LSR_THRE | LSR_TEMT);
  assertEquals(h.in(MSR), 0xb0);
  assertEquals(h.in(SCR), 0);
  assertEquals(h.uart.baudRate, 9600);
});

Deno.test("serial: divisor latch sets the baud rate, DLAB hides RBR and IER", () => {
  const h = new Harness();
  h.outb(IER, IER_RDI);
  // serial8250_do_set_termios for 115200 8N1: DLAB on, DLL/DLM, DLAB off.
  h.outb(LCR, LCR_CONF_MODE_A | LCR_WLEN8);
  h.outb(DLL, 0x01);
  h.outb(DLM, 0x00);
  assertEquals(h.in(DLL), 0x01);
  assertEquals(h.in(DLM), 0x00);
  h.outb(LCR, LCR_WLEN8);
  assertEquals(h.uart.baudRate, 115200);
  assertEquals(h.in(IER), IER_RDI, "IER was not overwritten by the DLM write");
  h.outb(LCR, LCR_CONF_MODE_A);
  h.outb(DLM, 0x04); // 0x0401
  h.outb(LCR, LCR_WLEN8);
  assertEquals(h.uart.baudRate, Math.floor(115200 / 0x401));
  // Writing THR under DLAB never transmits.
  assertEquals(h.out, []);
});

Deno.test("serial: THRE interrupt on enable, cleared by reading IIR, re-asserted (no UART_BUG_THRE)", () => {
  const h = new Harness();
  h.outb(FCR, FCR_ENABLE_FIFO | FCR_CLEAR_RCVR | FCR_CLEAR_XMIT);
  h.outb(MCR, MCR_OUT2 | MCR_RTS | MCR_DTR);
  // serial8250_startup's THRE test.
  h.outb(IER, IER_THRI);
  assertEquals(h.uart.irqLevel, true);
  const iir1 = h.in(IIR);
  assertEquals(iir1, 0xc2, "THRE source, FIFO enabled bits");
  assertEquals(h.uart.irqLevel, false, "reading IIR acknowledged THRE");
  assertEquals(h.in(IIR) & IIR_NO_INT, IIR_NO_INT);
  h.outb(IER, 0);
  h.outb(IER, IER_THRI);
  const iir = h.in(IIR);
  h.outb(IER, 0);
  assert(!(iir1 & IIR_NO_INT) && !(iir & IIR_NO_INT), "THRE was re-asserted");
  assertEquals(h.irq, [true, false, true, false]);
});

Deno.test("serial: transmitting sends the byte out and raises THRE again", () => {
  const h = new Harness();
  h.outb(IER, IER_THRI | IER_RDI);
  h.in(IIR);
  assertEquals(h.uart.irqLevel, false);
  for (const c of new TextEncoder().encode("ok\r\n")) {
    assert(h.in(LSR) & LSR_THRE);
    h.outb(TX, c);
    assertEquals(h.uart.irqLevel, true);
    assertEquals(h.in(IIR) & IIR_ID, 0x02);
  }
  assertEquals(new TextDecoder().decode(new Uint8Array(h.out)), "ok\r\n");
  // The driver stops TX by clearing THRI: the line drops.
  h.outb(TX, 0x41);
  h.outb(IER, IER_RDI);
  assertEquals(h.uart.irqLevel, false);
});

Deno.test("serial: received bytes raise RDI until drained, in order", () => {
  const h = new Harness();
  h.outb(FCR, FCR_ENABLE_FIFO);
  h.outb(IER, IER_RDI);
  assertEquals(h.uart.receive(new TextEncoder().encode("abc")), 3);
  assertEquals(h.uart.irqLevel, true);
  assertEquals(h.in(IIR), 0xc4);
  const got: number[] = [];
  while (h.in(LSR) & LSR_DR) got.push(h.in(RX));
  assertEquals(new TextDecoder().decode(new Uint8Array(got)), "abc");
  assertEquals(h.uart.irqLevel, false);
  assertEquals(h.in(IIR), 0xc1);
  // RDI outranks THRE.
  h.outb(IER, IER_RDI | IER_THRI);
  h.uart.receive(new Uint8Array([0x7a]));
  assertEquals(h.in(IIR), 0xc4);
  assertEquals(h.in(RX), 0x7a);
  assertEquals(h.in(IIR), 0xc2);
  assertEquals(h.uart.irqLevel, false);
});

Deno.test("serial: input held before interrupts are enabled raises RDI when they are", () => {
  const h = new Harness();
  h.uart.receive(new Uint8Array([1]));
  assertEquals(h.uart.irqLevel, false);
  h.outb(IER, IER_RDI);
  assertEquals(h.uart.irqLevel, true);
});

Deno.test("serial: loopback routes TX to RX and MCR to MSR, and ignores the host", () => {
  const h = new Harness();
  h.outb(MCR, MCR_LOOP);
  assertEquals(h.in(MSR) & 0xf0, 0);
  h.outb(MCR, MCR_LOOP | 0x0f);
  assertEquals(h.in(MSR) & 0xf0, 0xf0);
  h.outb(MCR, MCR_LOOP | MCR_DTR);
  assertEquals(h.in(MSR) & 0xf0, 0x20);
  h.outb(TX, 0x55);
  h.outb(TX, 0xaa);
  assertEquals(h.out, [], "loopback bytes do not reach the host");
  assertEquals(h.uart.receive(new Uint8Array([1, 2])), 0, "host input is ignored in loopback");
  assertEquals(h.in(LSR) & LSR_DR, LSR_DR);
  assertEquals([h.in(RX), h.in(RX)], [0x55, 0xaa]);
  assertEquals(h.in(LSR) & LSR_DR, 0);
  h.outb(MCR, MCR_OUT2);
  assertEquals(h.in(MSR) & 0xf0, 0xb0, "out of loopback the modem lines are back");
});

Deno.test("serial: modem status changes raise an MSI interrupt when enabled", () => {
  const h = new Harness();
  h.in(MSR);
  h.outb(IER, IER_MSI);
  assertEquals(h.uart.irqLevel, false);
  h.outb(MCR, MCR_LOOP | MCR_RTS); // CTS changes from 1 to 1, DSR 1 -> 0, DCD 1 -> 0
  assertEquals(h.uart.irqLevel, true);
  assertEquals(h.in(IIR) & 0x0f, 0x00);
  const msr = h.in(MSR);
  assertEquals(msr & 0x0f, 0x02 | 0x08, "delta DSR and delta DCD");
  assertEquals(h.uart.irqLevel, false);
  assertEquals(h.in(MSR) & 0x0f, 0, "deltas clear on read");
});

Deno.test("serial: loopback into a full buffer loses bytes with an overrun and an RLS interrupt", () => {
  const h = new Harness(4);
  h.outb(MCR, MCR_LOOP);
  h.outb(IER, IER_RDI | IER_RLSI);
  for (const b of [1, 2, 3, 4, 5, 6]) h.outb(TX, b);
  assertEquals(h.uart.overruns, 2);
  assertEquals(h.uart.rxFree(), 0);
  assertEquals(h.in(IIR) & 0x0f, 0x06, "line status outranks data");
  const lsr = h.in(LSR);
  assertEquals(lsr & (LSR_OE | LSR_DR), LSR_OE | LSR_DR);
  assertEquals(h.in(LSR) & LSR_OE, 0, "OE clears on read");
  assertEquals(h.in(IIR) & 0x0f, 0x04);
  assertEquals([h.in(RX), h.in(RX), h.in(RX), h.in(RX)], [1, 2, 3, 4]);
  assertEquals(h.in(RX), 0, "reading an empty RBR is harmless");
  assertEquals(h.uart.irqLevel, false);
});

Deno.test("serial: host input beyond the buffer is refused, then asked for once drained", () => {
  let spaceCalls = 0;
  const uart = new Serial8250({ rxCapacity: 4, onRxSpace: () => spaceCalls++ });
  const rx = (): number => {
    const b = new Uint8Array(1);
    uart.read(RX, b);
    return b[0];
  };
  assertEquals(uart.receive(new Uint8Array([1, 2, 3, 4, 5, 6])), 4);
  const lsr = new Uint8Array(1);
  uart.read(LSR, lsr);
  assertEquals(lsr[0] & LSR_OE, 0, "refused input is not an overrun: nothing was lost");
  assertEquals([rx(), rx(), rx()], [1, 2, 3]);
  assertEquals(spaceCalls, 0);
  assertEquals(rx(), 4);
  assertEquals(spaceCalls, 1);
  // The ring wraps.
  assertEquals(uart.receive(new Uint8Array([9, 8, 7])), 3);
  assertEquals([rx(), rx(), rx()], [9, 8, 7]);
  assertEquals(spaceCalls, 1, "no refusal, no call");
});

Deno.test("serial: attached to a chardev, no input byte is lost however much arrives", () => {
  // A chardev stand-in with the flow control of ChardevBase: held input is offered on resume.
  let receiver: (bytes: Uint8Array) => number | void = () => {};
  let held: Uint8Array = new Uint8Array(0);
  const written: number[] = [];
  const chardev = {
    write: (bytes: Uint8Array) => written.push(...bytes),
    onInput: (r: typeof receiver) => receiver = r,
    resumeInput: () => {
      const taken = receiver(held);
      held = held.subarray(typeof taken === "number" ? taken : held.length);
    },
  };
  const uart = new Serial8250({ rxCapacity: 16 });
  uart.attachChardev(chardev);
  const input = new Uint8Array(100).map((_, i) => i);
  held = input;
  chardev.resumeInput();
  const got: number[] = [];
  const b = new Uint8Array(1);
  for (let guard = 0; guard < 1000; guard++) {
    uart.read(LSR, b);
    if (!(b[0] & LSR_DR)) break;
    uart.read(RX, b);
    got.push(b[0]);
  }
  assertEquals(got, [...input]);
  uart.write(TX, new Uint8Array([0x42]));
  assertEquals(written, [0x42]);
});

Deno.test("serial: FCR clears the receive FIFO", () => {
  const h = new Harness();
  h.outb(FCR, FCR_ENABLE_FIFO);
  h.uart.receive(new Uint8Array([1, 2, 3]));
  h.outb(FCR, FCR_ENABLE_FIFO | FCR_CLEAR_RCVR);
  assertEquals(h.in(LSR) & LSR_DR, 0);
  assertEquals(h.in(IIR), 0xc1);
  h.outb(FCR, 0);
  assertEquals(h.in(IIR), 0x01, "FIFO off: top IIR bits clear");
});

Deno.test("serial: scratch register and wide accesses", () => {
  const h = new Harness();
  h.outb(SCR, 0x5a);
  assertEquals(h.in(SCR), 0x5a);
  // A 2-byte write at LCR hits LCR and MCR, as the ISA bus splits it.
  h.uart.write(LCR, new Uint8Array([0x1b, 0x0b]));
  assertEquals(h.in(LCR), 0x1b);
  assertEquals(h.in(MCR), 0x0b);
  const wide = new Uint8Array(4);
  h.uart.read(6, wide);
  assertEquals([wide[1], wide[2], wide[3]], [0x5a, 0xff, 0xff]);
});

Deno.test("serial: any access at any offset and size never throws", () => {
  const h = new Harness(8);
  let seed = 12345;
  const rand = (n: number) => {
    seed = (seed * 1103515245 + 12345) & 0x7fffffff;
    return seed % n;
  };
  for (let i = 0; i < 20000; i++) {
    const size = [1, 2, 4, 8][rand(4)];
    const offset = rand(SERIAL_PORT_SIZE + 16);
    const data = new Uint8Array(size).map(() => rand(256));
    if (rand(2)) h.uart.write(offset, data);
    else h.uart.read(offset, data);
    if (rand(50) === 0) h.uart.receive(new Uint8Array(rand(20)));
  }
  // Still a working UART afterwards.
  h.outb(MCR, MCR_OUT2);
  h.outb(LCR, LCR_WLEN8);
  h.out.length = 0;
  h.outb(TX, 0x21);
  assertEquals(h.out, [0x21]);
});
