/**
 * MC146818 CMOS RTC at ports 0x70 (index, bit 7 = NMI disable) and 0x71 (data), so the guest
 * reads the host's date. The clock registers are computed from a host clock plus an offset the
 * guest moves by setting the time; the rest of the 128 bytes is CMOS RAM, where the machine
 * stores the memory sizes as StratoVirt does (`setMemory`).
 *
 * Register B selects BCD or binary (DM) and 12/24-hour mode; its SET bit freezes the clock while
 * the guest writes a new time. Register A reports update-in-progress during the last 244 µs of
 * each second, as the chip does, which is what Linux waits out before reading the time. This RTC
 * raises no interrupts: register C always reads 0.
 */
import { type BusDevice, readBytewise, writeBytewise } from "../bus.ts";

export const RTC_PORT_BASE = 0x70;
export const RTC_PORT_SIZE = 2;
export const RTC_IRQ = 8;

const INDEX = 0;
const DATA = 1;

const SECONDS = 0x00;
const MINUTES = 0x02;
const HOURS = 0x04;
const DAY_OF_WEEK = 0x06;
const DAY_OF_MONTH = 0x07;
const MONTH = 0x08;
const YEAR = 0x09;
const REG_A = 0x0a;
const REG_B = 0x0b;
const REG_C = 0x0c;
const REG_D = 0x0d;
const CENTURY = 0x32;

const REG_A_UIP = 0x80;
const REG_B_SET = 0x80;
const REG_B_DM_BINARY = 0x04;
const REG_B_24H = 0x02;
const REG_D_VRT = 0x80;
const HOUR_PM = 0x80;

/** UIP is held for the last 244 µs of every second (8 cycles of the 32.768 kHz clock). */
const UIP_HOLD_MS = 8 * 1000 / 32768;

// CMOS RAM bytes holding memory sizes (the layout StratoVirt and SeaBIOS use).
const CMOS_BASE_MEM = 0x15; // and 0x16: KiB below 1 MiB
const CMOS_EXT_MEM = 0x17; // and 0x18: KiB between 1 MiB and 64 MiB
const CMOS_ACTUAL_EXT_MEM = 0x30; // and 0x31: same
const CMOS_MEM_BELOW_4G = 0x34; // and 0x35: 64 KiB units between 16 MiB and 4 GiB
const CMOS_MEM_ABOVE_4G = 0x5b; // and 0x5c, 0x5d: 64 KiB units above 4 GiB

const KiB = 1024;
const MiB = 1024 * KiB;

export interface RtcOptions {
  /** Host clock in milliseconds since the Unix epoch, with a fraction (default: performance). */
  now?: () => number;
  /** Guest RAM size in bytes, for the CMOS memory-size bytes. */
  memSize?: number;
  /** Start of the hole below 4 GiB: RAM beyond it is mapped above 4 GiB. */
  gapStart?: number;
}

function toBcd(n: number): number {
  return ((Math.floor(n / 10) % 10) << 4) | (n % 10);
}

function fromBcd(b: number): number {
  return (b >> 4) * 10 + (b & 0x0f);
}

export class CmosRtc implements BusDevice {
  readonly #cmos = new Uint8Array(128);
  #index = 0;
  /** Bit 7 of the last index write: the guest asked for NMIs to be masked. */
  nmiDisabled = false;
  #now: () => number;
  /** Guest clock = host clock + offset (ms); the guest moves it by setting the time. */
  #offsetMs = 0;

  constructor(options: RtcOptions = {}) {
    this.#now = options.now ?? (() => performance.timeOrigin + performance.now());
    this.#cmos[REG_A] = 0x26; // 32.768 kHz time base, 1.024 kHz periodic rate
    this.#cmos[REG_B] = REG_B_24H; // 24-hour, BCD
    this.#cmos[REG_D] = REG_D_VRT; // RAM and time valid
    if (options.memSize !== undefined) {
      this.setMemory(options.memSize, options.gapStart ?? options.memSize);
    }
  }

  /** Writes the memory-size bytes of CMOS RAM for `memSize` bytes of RAM, split at `gapStart`. */
  setMemory(memSize: number, gapStart: number): void {
    const below4g = Math.min(memSize, gapStart);
    const above4g = Math.max(0, memSize - gapStart);
    this.#setLe(CMOS_BASE_MEM, 640, 2);
    // StratoVirt reports the full 63 MiB of extended memory below 64 MiB.
    const extKiB = Math.min(Math.max(0, Math.floor((below4g - MiB) / KiB)), 63 * KiB);
    this.#setLe(CMOS_EXT_MEM, extKiB, 2);
    this.#setLe(CMOS_ACTUAL_EXT_MEM, extKiB, 2);
    const chunks = Math.floor(Math.max(0, below4g - 16 * MiB) / (64 * KiB));
    this.#setLe(CMOS_MEM_BELOW_4G, Math.min(chunks, 0xffff), 2);
    this.#setLe(CMOS_MEM_ABOVE_4G, Math.min(Math.floor(above4g / (64 * KiB)), 0xffffff), 3);
  }

  /** A byte of CMOS RAM as the guest would read it (tests, debugging). */
  readCmos(index: number): number {
    const saved = this.#index;
    this.#index = index & 0x7f;
    const value = this.#readData();
    this.#index = saved;
    return value;
  }

  read(offset: number, data: Uint8Array): void {
    readBytewise(offset, data, RTC_PORT_SIZE, (o) => o === DATA ? this.#readData() : 0xff);
  }

  write(offset: number, data: Uint8Array): void {
    writeBytewise(offset, data, RTC_PORT_SIZE, (o, v) => {
      if (o === INDEX) {
        this.#index = v & 0x7f;
        this.nmiDisabled = (v & 0x80) !== 0;
      } else {
        this.#writeData(v);
      }
    });
  }

  #setLe(at: number, value: number, bytes: number): void {
    for (let i = 0; i < bytes; i++) this.#cmos[at + i] = (value >>> (8 * i)) & 0xff;
  }

  get #frozen(): boolean {
    return (this.#cmos[REG_B] & REG_B_SET) !== 0;
  }

  #readData(): number {
    const index = this.#index;
    if (isClockRegister(index) && !this.#frozen) this.#latchClock();
    switch (index) {
      case REG_A: {
        let a = this.#cmos[REG_A] & ~REG_A_UIP;
        if (!this.#frozen && this.#updateInProgress()) a |= REG_A_UIP;
        return a;
      }
      case REG_C:
        return 0;
      default:
        return this.#cmos[index];
    }
  }

  #writeData(value: number): void {
    const index = this.#index;
    switch (index) {
      case REG_A:
        this.#cmos[REG_A] = value & ~REG_A_UIP;
        return;
      case REG_B: {
        const wasFrozen = this.#frozen;
        // Freeze the current time into the registers; the guest overwrites them, then thaws.
        if (!wasFrozen && (value & REG_B_SET)) this.#latchClock();
        this.#cmos[REG_B] = value;
        if (wasFrozen && !(value & REG_B_SET)) this.#adoptRegisters();
        return;
      }
      case REG_C:
      case REG_D:
        return; // read-only
    }
    if (isClockRegister(index)) {
      if (this.#frozen) {
        this.#cmos[index] = value;
      } else {
        // Setting one field of a running clock: keep the others as they are now.
        const fraction = ((this.#guestTimeMs() % 1000) + 1000) % 1000;
        this.#latchClock();
        this.#cmos[index] = value;
        this.#adoptRegisters(fraction);
      }
      return;
    }
    this.#cmos[index] = value;
  }

  #guestTimeMs(): number {
    return this.#now() + this.#offsetMs;
  }

  #updateInProgress(): boolean {
    const t = this.#guestTimeMs();
    const intoSecond = ((t % 1000) + 1000) % 1000;
    return intoSecond >= 1000 - UIP_HOLD_MS;
  }

  /** Writes the guest clock's current time into the clock registers, in the guest's format. */
  #latchClock(): void {
    const d = new Date(Math.floor(this.#guestTimeMs()));
    if (Number.isNaN(d.getTime())) return;
    const enc = (n: number) => this.#encode(n);
    const year = d.getUTCFullYear();
    this.#cmos[SECONDS] = enc(d.getUTCSeconds());
    this.#cmos[MINUTES] = enc(d.getUTCMinutes());
    this.#cmos[HOURS] = this.#encodeHour(d.getUTCHours());
    this.#cmos[DAY_OF_WEEK] = enc(d.getUTCDay() + 1);
    this.#cmos[DAY_OF_MONTH] = enc(d.getUTCDate());
    this.#cmos[MONTH] = enc(d.getUTCMonth() + 1);
    this.#cmos[YEAR] = enc(year % 100);
    this.#cmos[CENTURY] = enc(Math.floor(year / 100) % 100);
  }

  /**
   * Takes the time the guest wrote into the clock registers as the new guest clock, `fraction`
   * ms into that second (0 when the guest thaws the clock: the chip starts the second then).
   */
  #adoptRegisters(fraction = 0): void {
    const field = (i: number, min: number, max: number) => {
      const n = this.#decode(this.#cmos[i]);
      return n >= min && n <= max ? n : NaN;
    };
    const hour = this.#decodeHour(this.#cmos[HOURS]);
    const year = field(CENTURY, 0, 99) * 100 + field(YEAR, 0, 99);
    const month = field(MONTH, 1, 12);
    const day = field(DAY_OF_MONTH, 1, 31);
    const minute = field(MINUTES, 0, 59);
    const second = field(SECONDS, 0, 59);
    // Garbage from the guest (bad BCD, a 25th hour) leaves the clock where it was.
    if ([year, month, day, minute, second].some(Number.isNaN) || !(hour >= 0 && hour <= 23)) {
      return;
    }
    // setUTCFullYear, unlike Date.UTC, does not map years 0..99 to 1900..1999.
    const d = new Date(0);
    d.setUTCFullYear(year, month - 1, day);
    d.setUTCHours(hour, minute, second, 0);
    this.#offsetMs = d.getTime() + fraction - this.#now();
  }

  #binary(): boolean {
    return (this.#cmos[REG_B] & REG_B_DM_BINARY) !== 0;
  }

  #encode(n: number): number {
    return this.#binary() ? n & 0xff : toBcd(n);
  }

  /** A register's number, or NaN when it is not valid BCD in BCD mode. */
  #decode(b: number): number {
    if (this.#binary()) return b;
    return (b >> 4) > 9 || (b & 0x0f) > 9 ? NaN : fromBcd(b);
  }

  #encodeHour(hour: number): number {
    if (this.#cmos[REG_B] & REG_B_24H) return this.#encode(hour);
    const h12 = hour % 12 === 0 ? 12 : hour % 12;
    return this.#encode(h12) | (hour >= 12 ? HOUR_PM : 0);
  }

  #decodeHour(b: number): number {
    if (this.#cmos[REG_B] & REG_B_24H) return this.#decode(b);
    const h12 = this.#decode(b & ~HOUR_PM) % 12;
    return (b & HOUR_PM) ? h12 + 12 : h12;
  }
}

function isClockRegister(index: number): boolean {
  return index === SECONDS || index === MINUTES || index === HOURS || index === DAY_OF_WEEK ||
    index === DAY_OF_MONTH || index === MONTH || index === YEAR || index === CENTURY;
}
