/**
 * i8042 keyboard controller, enough for a guest to reset the machine (`reboot=k`: command 0xfe on
 * port 0x64) and for Linux's i8042 driver to probe it without waiting on timeouts.
 *
 * The device covers ports 0x60..0x64 (as Firecracker registers it): 0x60 data, 0x64 status on
 * read and command on write, and 0x61 (system control port B) reads 0x20 like StratoVirt's,
 * because Linux's PIT calibration polls its bit 5 when no in-kernel PIT answers it.
 *
 * No keyboard or mouse is attached: the controller answers its own commands (self-test, interface
 * test, command byte), reports the AUX port as failed, and bytes written for the keyboard go
 * nowhere. It has no interrupt line, so nothing it queues is unsolicited.
 */
import { type BusDevice, readBytewise, writeBytewise } from "../bus.ts";

export const I8042_PORT_BASE = 0x60;
export const I8042_PORT_SIZE = 5;

const DATA = 0; // port 0x60
const PORT_B = 1; // port 0x61
const STATUS_COMMAND = 4; // port 0x64

// Status register.
const STR_OBF = 0x01; // output buffer full: a byte waits at 0x60
const STR_SYSFLAG = 0x04; // self-test passed
const STR_CMDDAT = 0x08; // last write was to the command port
const STR_KEYLOCK = 0x10; // keyboard not inhibited
const STR_AUXDATA = 0x20; // the waiting byte came from the AUX port

// Controller command byte (CTR).
const CTR_KBDDIS = 0x10;
const CTR_AUXDIS = 0x20;
/** Keyboard interrupt on, system flag, AUX disabled, scancode translation: what firmware leaves. */
const CTR_DEFAULT = 0x01 | 0x04 | CTR_AUXDIS | 0x40;

const CMD_READ_CTR = 0x20;
const CMD_WRITE_CTR = 0x60;
const CMD_AUX_DISABLE = 0xa7;
const CMD_AUX_ENABLE = 0xa8;
const CMD_AUX_TEST = 0xa9;
const CMD_SELF_TEST = 0xaa;
const CMD_KBD_TEST = 0xab;
const CMD_KBD_DISABLE = 0xad;
const CMD_KBD_ENABLE = 0xae;
const CMD_READ_OUTPUT_PORT = 0xd0;
const CMD_WRITE_OUTPUT_PORT = 0xd1;
const CMD_WRITE_KBD_OUTBUF = 0xd2;
const CMD_WRITE_AUX_OUTBUF = 0xd3;
const CMD_WRITE_AUX = 0xd4;
/** 0xf0..0xff pulse output-port lines low for 6 µs; bit 0 is the CPU reset line. */
const CMD_PULSE_BASE = 0xf0;

const SELF_TEST_OK = 0x55;
const KBD_TEST_OK = 0x00;
/** AUX interface test result "clock line stuck low": tells Linux there is no usable AUX port. */
const AUX_TEST_FAILED = 0x01;
/** Output port: bit 0 = CPU not held in reset, bit 1 = A20 enabled. */
const OUTPUT_PORT_DEFAULT = 0x03;
/** Port B bit 5: PIT channel 2 output, which PIT calibration waits to see set. */
const PORT_B_VALUE = 0x20;

const OUTPUT_QUEUE_MAX = 16;

export interface I8042Options {
  /** The guest pulsed the reset line: the machine ends (or resets) the VM. */
  onReset?: () => void;
}

export class I8042 implements BusDevice {
  #onReset: () => void;
  #ctr = CTR_DEFAULT;
  #status = STR_SYSFLAG | STR_KEYLOCK;
  #outputPort = OUTPUT_PORT_DEFAULT;
  /** Command waiting for its data byte at 0x60, or 0. */
  #pendingCommand = 0;
  #queue: { value: number; aux: boolean }[] = [];
  #lastData = 0;
  /** How many reset requests the guest made (for tests and logs). */
  resetRequests = 0;

  constructor(options: I8042Options = {}) {
    this.#onReset = options.onReset ?? (() => {});
  }

  read(offset: number, data: Uint8Array): void {
    readBytewise(offset, data, I8042_PORT_SIZE, (o) => this.#readRegister(o));
  }

  write(offset: number, data: Uint8Array): void {
    writeBytewise(offset, data, I8042_PORT_SIZE, (o, v) => this.#writeRegister(o, v));
  }

  #readRegister(offset: number): number {
    switch (offset) {
      case DATA: {
        const next = this.#queue.shift();
        // An empty buffer reads the last byte again, as real controllers do.
        if (next) this.#lastData = next.value;
        return this.#lastData;
      }
      case PORT_B:
        return PORT_B_VALUE;
      case STATUS_COMMAND: {
        let status = this.#status;
        const head = this.#queue[0];
        if (head) status |= STR_OBF | (head.aux ? STR_AUXDATA : 0);
        return status;
      }
      default:
        return 0xff;
    }
  }

  #writeRegister(offset: number, value: number): void {
    if (offset === DATA) {
      this.#status &= ~STR_CMDDAT;
      this.#writeData(value);
    } else if (offset === STATUS_COMMAND) {
      this.#status |= STR_CMDDAT;
      this.#command(value);
    }
    // Port B writes (speaker gate) have nothing to drive here.
  }

  #command(cmd: number): void {
    this.#pendingCommand = 0;
    switch (cmd) {
      case CMD_READ_CTR:
        this.#push(this.#ctr);
        break;
      case CMD_WRITE_CTR:
      case CMD_WRITE_OUTPUT_PORT:
      case CMD_WRITE_KBD_OUTBUF:
      case CMD_WRITE_AUX_OUTBUF:
      case CMD_WRITE_AUX:
        this.#pendingCommand = cmd;
        break;
      case CMD_AUX_DISABLE:
        this.#ctr |= CTR_AUXDIS;
        break;
      case CMD_AUX_ENABLE:
        this.#ctr &= ~CTR_AUXDIS;
        break;
      case CMD_AUX_TEST:
        this.#push(AUX_TEST_FAILED);
        break;
      case CMD_SELF_TEST:
        this.#status |= STR_SYSFLAG;
        this.#push(SELF_TEST_OK);
        break;
      case CMD_KBD_TEST:
        this.#push(KBD_TEST_OK);
        break;
      case CMD_KBD_DISABLE:
        this.#ctr |= CTR_KBDDIS;
        break;
      case CMD_KBD_ENABLE:
        this.#ctr &= ~CTR_KBDDIS;
        break;
      case CMD_READ_OUTPUT_PORT:
        this.#push(this.#outputPort);
        break;
      default:
        if (cmd >= CMD_PULSE_BASE && !(cmd & 0x01)) this.#requestReset();
        // Other commands (password, test inputs, pulses of other lines) are accepted and ignored.
    }
  }

  #writeData(value: number): void {
    const cmd = this.#pendingCommand;
    this.#pendingCommand = 0;
    switch (cmd) {
      case CMD_WRITE_CTR:
        this.#ctr = value;
        break;
      case CMD_WRITE_OUTPUT_PORT:
        this.#outputPort = value | 0x01;
        if (!(value & 0x01)) this.#requestReset();
        break;
      case CMD_WRITE_KBD_OUTBUF:
        this.#push(value);
        break;
      case CMD_WRITE_AUX_OUTBUF:
        // Echoed without the AUX flag: Linux's AUX loopback test then fails at once instead of
        // waiting for a timeout, and the AUX test below confirms there is no mouse port.
        this.#push(value);
        break;
      default:
        // For the keyboard (or, after 0xd4, the mouse): none attached, so no reply.
        break;
    }
  }

  #push(value: number, aux = false): void {
    if (this.#queue.length < OUTPUT_QUEUE_MAX) this.#queue.push({ value, aux });
  }

  #requestReset(): void {
    this.resetRequests++;
    this.#onReset();
  }
}
