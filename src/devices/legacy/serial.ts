/**
 * 16550A UART, as StratoVirt puts it at I/O port 0x3f8 with IRQ 4 on x86.
 *
 * What Linux's 8250 driver relies on, and this model therefore does:
 * - autoconfig: IER keeps exactly its low four bits; MCR loopback routes RTS/DTR/OUT1/OUT2 to
 *   CTS/DSR/RI/DCD (the driver expects MSR & 0xf0 == 0x90 with MCR = 0x1a); with the FIFO enabled
 *   IIR reads 0xc_ in its top two bits (16550A), bit 5 stays clear (no 64-byte FIFO, so not a
 *   16750), and the "EFR" probes through LCR 0x80 / 0xbf read IIR (no EFR: not a 16650).
 * - a THRE interrupt is pending when the transmitter is empty and THRI gets enabled, and after
 *   each transmitted byte; reading IIR while it is the reported source clears it (the driver's
 *   UART_BUG_THRE test expects it to be re-asserted by toggling IER).
 * - transmission is instant: LSR always reports THRE|TEMT, bytes go to `output`.
 *
 * Host input is flow-controlled rather than lost: `receive` takes what fits and returns the
 * count, and `onRxSpace` fires once the guest has drained the buffer after a refusal, so the
 * chardev holds the rest meanwhile (`attachChardev` wires both). Bytes the guest loops back into a
 * full buffer are lost with an overrun error, as on the chip.
 *
 * Simplifications: the receive buffer is `rxCapacity` bytes deep (default 1024, like StratoVirt,
 * not 16) whether or not the FIFO is enabled, and the received-data interrupt is raised as soon as
 * one byte is there, ignoring the FIFO trigger level (so no character-timeout interrupt is
 * needed). Line-status errors only ever report an overrun.
 */
import type { Chardev } from "../../chardev/chardev.ts";
import { type BusDevice, readBytewise, writeBytewise } from "../bus.ts";

/** StratoVirt's x86 serial: COM1. */
export const SERIAL_PORT_BASE = 0x3f8;
export const SERIAL_PORT_SIZE = 8;
export const SERIAL_IRQ = 4;

// Register offsets (DLAB = 0 unless noted).
const RBR_THR_DLL = 0;
const IER_DLM = 1;
const IIR_FCR = 2;
const LCR = 3;
const MCR = 4;
const LSR = 5;
const MSR = 6;
const SCR = 7;

const IER_RDI = 0x01; // received data available
const IER_THRI = 0x02; // transmitter holding register empty
const IER_RLSI = 0x04; // receiver line status
const IER_MSI = 0x08; // modem status
const IER_MASK = 0x0f;

const IIR_NO_INT = 0x01;
const IIR_MSI = 0x00;
const IIR_THRI = 0x02;
const IIR_RDI = 0x04;
const IIR_RLSI = 0x06;
const IIR_FIFO_ENABLED = 0xc0;

const FCR_ENABLE_FIFO = 0x01;
const FCR_CLEAR_RCVR = 0x02;

const LCR_DLAB = 0x80;

const MCR_DTR = 0x01;
const MCR_RTS = 0x02;
const MCR_OUT1 = 0x04;
const MCR_OUT2 = 0x08;
const MCR_LOOP = 0x10;
const MCR_MASK = 0x1f;

const LSR_DR = 0x01;
const LSR_OE = 0x02;
const LSR_THRE = 0x20;
const LSR_TEMT = 0x40;

const MSR_DCTS = 0x01;
const MSR_DDSR = 0x02;
const MSR_TERI = 0x04;
const MSR_DDCD = 0x08;
const MSR_CTS = 0x10;
const MSR_DSR = 0x20;
const MSR_RI = 0x40;
const MSR_DCD = 0x80;
const MSR_DELTAS = MSR_DCTS | MSR_DDSR | MSR_TERI | MSR_DDCD;

/** Input clock / 16: the baud rate for a divisor of 1. */
const BAUD_BASE = 115200;

export interface SerialOptions {
  /** Interrupt line level (the machine wires it to KVM_IRQ_LINE or an irqfd). */
  setIrq?: (level: boolean) => void;
  /** Bytes the guest transmits; the buffer is reused, so copy (a chardev's `write` does). */
  output?: (bytes: Uint8Array) => void;
  /** Receive buffer depth in bytes. */
  rxCapacity?: number;
  /** The guest emptied the receive buffer after `receive` had to refuse bytes. */
  onRxSpace?: () => void;
}

export class Serial8250 implements BusDevice {
  #setIrq: (level: boolean) => void;
  #output: (bytes: Uint8Array) => void;
  #onRxSpace: () => void;
  /** `receive` refused bytes since the buffer was last empty. */
  #refused = false;
  readonly rxCapacity: number;

  // Receive buffer as a ring.
  #rx: Uint8Array;
  #rxHead = 0;
  #rxLen = 0;

  #ier = 0;
  #lcr = 0x03; // 8N1, as StratoVirt resets it
  #mcr = MCR_OUT2;
  #lsr = LSR_THRE | LSR_TEMT;
  /** Modem lines when not in loopback: a terminal is always connected. */
  #msr = MSR_DCD | MSR_DSR | MSR_CTS;
  #scr = 0;
  #divisor = 0x0c; // 9600 baud
  #fifoEnabled = false;
  #thrInterruptPending = false;
  #irqLevel = false;
  readonly #txByte = new Uint8Array(1);

  /** Looped-back bytes lost because the receive buffer was full. */
  overruns = 0;

  constructor(options: SerialOptions = {}) {
    this.#setIrq = options.setIrq ?? (() => {});
    this.#output = options.output ?? (() => {});
    this.#onRxSpace = options.onRxSpace ?? (() => {});
    this.rxCapacity = Math.max(1, Math.floor(options.rxCapacity ?? 1024));
    this.#rx = new Uint8Array(this.rxCapacity);
  }

  /** Routes output elsewhere (e.g. once the chardev is up). */
  setOutput(output: (bytes: Uint8Array) => void): void {
    this.#output = output;
  }

  /**
   * Connects a chardev: guest output goes to it, its input comes here with flow control.
   * Input is ignored while the guest has the UART in loopback, as on hardware.
   */
  attachChardev(chardev: Pick<Chardev, "write" | "onInput" | "resumeInput">): void {
    this.#output = (bytes) => chardev.write(bytes);
    this.#onRxSpace = () => chardev.resumeInput();
    chardev.onInput((bytes) => (this.#mcr & MCR_LOOP) ? bytes.length : this.receive(bytes));
  }

  /** Rewires the interrupt line; the new callback is told the current level. */
  setIrqHandler(setIrq: (level: boolean) => void): void {
    this.#setIrq = setIrq;
    setIrq(this.#irqLevel);
  }

  /** The current interrupt line level. */
  get irqLevel(): boolean {
    return this.#irqLevel;
  }

  /** Baud rate the guest programmed (informational: transmission is instant). */
  get baudRate(): number {
    return this.#divisor === 0 ? 0 : Math.floor(BAUD_BASE / this.#divisor);
  }

  /** Free space in the receive buffer, for a backend that wants to hold input back. */
  rxFree(): number {
    return this.rxCapacity - this.#rxLen;
  }

  /**
   * Input from the host. Returns how many bytes fit; the caller keeps the rest until `onRxSpace`.
   * While the guest has the UART in loopback it is disconnected from the line: nothing is taken.
   */
  receive(bytes: Uint8Array): number {
    if (this.#mcr & MCR_LOOP) return 0;
    const taken = Math.min(bytes.length, this.rxCapacity - this.#rxLen);
    this.#pushRx(taken === bytes.length ? bytes : bytes.subarray(0, taken));
    if (taken < bytes.length) this.#refused = true;
    this.#update();
    return taken;
  }

  read(offset: number, data: Uint8Array): void {
    readBytewise(offset, data, SERIAL_PORT_SIZE, (o) => this.#readRegister(o));
  }

  write(offset: number, data: Uint8Array): void {
    writeBytewise(offset, data, SERIAL_PORT_SIZE, (o, v) => this.#writeRegister(o, v));
  }

  #readRegister(offset: number): number {
    switch (offset) {
      case RBR_THR_DLL:
        if (this.#lcr & LCR_DLAB) return this.#divisor & 0xff;
        return this.#popRx();
      case IER_DLM:
        if (this.#lcr & LCR_DLAB) return this.#divisor >> 8;
        return this.#ier;
      case IIR_FCR: {
        const iir = this.#interruptIdentification();
        // Reading IIR acknowledges a THRE interrupt when that is what it reports.
        if (iir === IIR_THRI) {
          this.#thrInterruptPending = false;
          this.#update();
        }
        return iir | (this.#fifoEnabled ? IIR_FIFO_ENABLED : 0);
      }
      case LCR:
        return this.#lcr;
      case MCR:
        return this.#mcr;
      case LSR: {
        const lsr = this.#lsr;
        // Error bits clear on read.
        if (lsr & LSR_OE) {
          this.#lsr &= ~LSR_OE;
          this.#update();
        }
        return lsr;
      }
      case MSR: {
        const msr = this.#modemStatus();
        if (this.#msr & MSR_DELTAS) {
          this.#msr &= ~MSR_DELTAS;
          this.#update();
        }
        return msr;
      }
      case SCR:
        return this.#scr;
      default:
        return 0xff;
    }
  }

  #writeRegister(offset: number, value: number): void {
    switch (offset) {
      case RBR_THR_DLL:
        if (this.#lcr & LCR_DLAB) {
          this.#divisor = (this.#divisor & 0xff00) | value;
        } else {
          this.#transmit(value);
        }
        break;
      case IER_DLM:
        if (this.#lcr & LCR_DLAB) {
          this.#divisor = (this.#divisor & 0x00ff) | (value << 8);
        } else {
          const enabling = value & ~this.#ier & IER_MASK;
          this.#ier = value & IER_MASK;
          // Enabling THRI with the transmitter empty raises a THRE interrupt at once.
          if ((enabling & IER_THRI) && (this.#lsr & LSR_THRE)) this.#thrInterruptPending = true;
          this.#update();
        }
        break;
      case IIR_FCR:
        this.#writeFifoControl(value);
        break;
      case LCR:
        this.#lcr = value;
        break;
      case MCR:
        this.#writeModemControl(value & MCR_MASK);
        break;
      case LSR:
      case MSR:
        // Read-only on a 16550A (factory test registers): ignore.
        break;
      case SCR:
        this.#scr = value;
        break;
    }
  }

  #transmit(value: number): void {
    if (this.#mcr & MCR_LOOP) {
      this.#txByte[0] = value;
      this.#pushRx(this.#txByte);
    } else {
      this.#txByte[0] = value;
      try {
        this.#output(this.#txByte);
      } catch {
        // A failing backend must not take the vCPU down; the byte is lost, as on a dead line.
      }
    }
    // The byte left at once: the holding register is empty again.
    this.#thrInterruptPending = true;
    this.#update();
  }

  #writeFifoControl(value: number): void {
    const enable = (value & FCR_ENABLE_FIFO) !== 0;
    // Switching the FIFO on or off clears it, as does the explicit clear bit.
    if (enable !== this.#fifoEnabled || (enable && (value & FCR_CLEAR_RCVR))) {
      this.#rxHead = 0;
      this.#rxLen = 0;
      this.#lsr &= ~LSR_DR;
    }
    this.#fifoEnabled = enable;
    this.#update();
  }

  #writeModemControl(value: number): void {
    const before = this.#modemStatus();
    this.#mcr = value;
    const after = this.#modemStatus();
    const changed = before ^ after;
    let deltas = 0;
    if (changed & MSR_CTS) deltas |= MSR_DCTS;
    if (changed & MSR_DSR) deltas |= MSR_DDSR;
    if (changed & MSR_DCD) deltas |= MSR_DDCD;
    // TERI: ring indicator went from on to off.
    if ((before & MSR_RI) && !(after & MSR_RI)) deltas |= MSR_TERI;
    this.#msr |= deltas;
    this.#update();
  }

  /** MSR as the guest sees it: in loopback the outputs of MCR drive the modem inputs. */
  #modemStatus(): number {
    const deltas = this.#msr & MSR_DELTAS;
    if (!(this.#mcr & MCR_LOOP)) return this.#msr;
    let lines = 0;
    if (this.#mcr & MCR_RTS) lines |= MSR_CTS;
    if (this.#mcr & MCR_DTR) lines |= MSR_DSR;
    if (this.#mcr & MCR_OUT1) lines |= MSR_RI;
    if (this.#mcr & MCR_OUT2) lines |= MSR_DCD;
    return lines | deltas;
  }

  #pushRx(bytes: Uint8Array): number {
    let taken = 0;
    for (; taken < bytes.length && this.#rxLen < this.rxCapacity; taken++) {
      this.#rx[(this.#rxHead + this.#rxLen) % this.rxCapacity] = bytes[taken];
      this.#rxLen++;
    }
    if (taken > 0) this.#lsr |= LSR_DR;
    if (taken < bytes.length) {
      this.overruns += bytes.length - taken;
      this.#lsr |= LSR_OE;
    }
    return taken;
  }

  #popRx(): number {
    if (this.#rxLen === 0) return 0;
    const value = this.#rx[this.#rxHead];
    this.#rxHead = (this.#rxHead + 1) % this.rxCapacity;
    this.#rxLen--;
    if (this.#rxLen === 0) this.#lsr &= ~LSR_DR;
    this.#update();
    if (this.#rxLen === 0 && this.#refused) {
      this.#refused = false;
      // May re-enter `receive`: the state above is already consistent.
      this.#onRxSpace();
    }
    return value;
  }

  /** The highest-priority pending interrupt source, or IIR_NO_INT. */
  #interruptIdentification(): number {
    if ((this.#ier & IER_RLSI) && (this.#lsr & LSR_OE)) return IIR_RLSI;
    if ((this.#ier & IER_RDI) && (this.#lsr & LSR_DR)) return IIR_RDI;
    if ((this.#ier & IER_THRI) && this.#thrInterruptPending) return IIR_THRI;
    if ((this.#ier & IER_MSI) && (this.#msr & MSR_DELTAS)) return IIR_MSI;
    return IIR_NO_INT;
  }

  /**
   * Drives the interrupt line from the pending sources. OUT2 gates the line on PC serial ports,
   * but Linux's 8250 driver sets it on every port it opens, and StratoVirt ignores it; so do we.
   */
  #update(): void {
    const level = this.#interruptIdentification() !== IIR_NO_INT;
    if (level !== this.#irqLevel) {
      this.#irqLevel = level;
      this.#setIrq(level);
    }
  }
}
