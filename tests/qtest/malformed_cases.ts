/**
 * The catalogue of malformed virtio-blk submissions the qtest robustness test drives through a
 * real VMM process: bad descriptor chains, bad indirect tables, a bad available ring, requests
 * the device must refuse, and bad queue setups. Each row names the case and pins what the
 * device does with it (virtio 1.2 §2.1.2: a ring it cannot trust flags DEVICE_NEEDS_RESET; a
 * well-formed request it cannot serve fails in its status byte).
 *
 * Wherever the case allows, the bad submission is a WRITE (or a discard / write-zeroes) of a
 * pattern the image does not hold, so "the disk file is unchanged" checks that nothing of it
 * reached the disk, not only that the device answered.
 */
import { QtestClient } from "./client.ts";
import { bit, BLK, BLK_F, BlkDriver, requestHeader, segment, SLOT0 } from "./blk.ts";
import {
  DESC_F_INDIRECT as INDIRECT,
  DESC_F_NEXT as NEXT,
  DESC_F_WRITE as WRITE,
  VIRTIO_F_VERSION_1,
} from "./virtio_driver.ts";

/** The VMM's guest RAM (`-m 256M`): one region from 0, so this is also where RAM ends. */
export const GUEST_RAM = 256 * 1024 * 1024;
export const IMAGE_SIZE = 1 << 20;
export const IMAGE_SECTORS = IMAGE_SIZE / 512;
/** What the image is filled with, and what every write of the cases carries instead. */
export const IMAGE_FILL = 0x5a;
export const DATA_FILL = 0xc3;
/** The ring size the cases set up (the driver chooses it; the device allows up to 256). */
export const QUEUE_SIZE = 16;

const VIRTIO_F_INDIRECT_DESC = bit(28);
/** What the driver accepts unless a case says otherwise (∩ what the device offers). */
export const WANTED = VIRTIO_F_VERSION_1 | VIRTIO_F_INDIRECT_DESC | bit(BLK_F.FLUSH) |
  bit(BLK_F.DISCARD) | bit(BLK_F.WRITE_ZEROES) | bit(BLK_F.BLK_SIZE) | bit(BLK_F.SEG_MAX);

/**
 * What the device did: refused the ring (DEVICE_NEEDS_RESET), failed the request (IOERR /
 * UNSUPP in its status), or gave the chain back unexecuted (no status byte to answer in).
 * "ok" (a malformed request served) and "accepted" (a bad queue setup taken) are bugs.
 */
export type Refusal = "needs-reset" | "ioerr" | "unsupp" | "not-executed";
export type Outcome = Refusal | "ok" | "accepted";

/** A bad submission: the commands that write it into the ring and publish it. */
export interface Submission {
  commands: string[];
  /** The status byte the request was given (preset to 0xff), whether or not a descriptor
   * still points at it. */
  statusAddr: number;
  /** The head the chain was published with. */
  head: number;
}

/** The driver's register values for queue 0 (addresses may be anything a guest can write). */
export interface QueueRegisters {
  size: number;
  desc: bigint;
  avail: bigint;
  used: bigint;
  ready: boolean;
}

/**
 * What the VMM logs for a case (with `-D` at level warn), after the prefix of its outcome
 * (REFUSAL_LOG): the check that refused it, so a case cannot pass by tripping over another one.
 */
export type Why = string | RegExp;

/** How the VMM's log line for each refusal starts (mmio.ts, request.ts, blk/device.ts). */
export const REFUSAL_LOG: Record<Refusal, string> = {
  "needs-reset": "device needs reset: ",
  ioerr: "request failed (IOERR): ",
  unsupp: "request failed (UNSUPP): ",
  "not-executed": "",
};

export interface RingCase {
  name: string;
  expect: Refusal;
  why: Why;
  /** Features the driver accepts (default WANTED). */
  wanted?: bigint;
  /** Puts the bad submission into a device set up normally. */
  build: (blk: BlkDriver) => Submission;
}

export interface QueueCase {
  name: string;
  /** A queue the device cannot use is refused when the driver sets DRIVER_OK. */
  expect: "needs-reset";
  why: Why;
  /** Spoils the registers of a good ring; `maxSize` is QueueNumMax. */
  queue: (good: QueueRegisters, maxSize: number) => Partial<QueueRegisters>;
}

export type MalformedCase = RingCase | QueueCase;

/** [addr, len, flags, next]: one raw descriptor. */
type Desc = [addr: number | bigint, len: number, flags: number, next: number];

const hex = (n: number | bigint) => `0x${n.toString(16)}`;

/** A request's parts in guest RAM: header, `data` (or DATA_FILL bytes), a status byte of 0xff. */
function parts(
  blk: BlkDriver,
  o: { type?: number; sector?: bigint; dataLen?: number; data?: Uint8Array } = {},
) {
  const data = o.data ?? new Uint8Array(o.dataLen ?? 512).fill(DATA_FILL);
  const hdr = blk.alloc.alloc(16);
  const dataAddr = blk.alloc.alloc(data.length);
  const status = blk.alloc.alloc(1);
  const commands = [
    QtestClient.writeCmd(hdr, requestHeader(o.type ?? BLK.OUT, o.sector ?? 0n)),
    `writeb ${hex(status)} 0xff`,
  ];
  if (data.length > 0) commands.push(QtestClient.writeCmd(dataAddr, data));
  return { hdr, data: dataAddr, dataLen: data.length, status, commands };
}

type Parts = ReturnType<typeof parts>;

/** Writes `descs` as descriptors 0, 1, ... of the ring and publishes `head`. */
function publish(
  blk: BlkDriver,
  p: Parts,
  descs: Desc[],
  o: { head?: number; availIdx?: number } = {},
): Submission {
  const commands = [...p.commands];
  descs.forEach(([addr, len, flags, next], i) =>
    commands.push(...blk.ring.descCommands(i, addr, len, flags, next))
  );
  const head = o.head ?? 0;
  commands.push(...blk.ring.publishCommands(head));
  if (o.availIdx !== undefined) {
    commands.push(QtestClient.cmd("writew", blk.ring.avail + 2, o.availIdx));
  }
  return { commands, statusAddr: p.status, head };
}

/** The usual three descriptors of a request: header, data (`dataWrite`: device-writable), status. */
function threeDescs(p: Parts, dataWrite = false): Desc[] {
  return [
    [p.hdr, 16, NEXT, 1],
    [p.data, p.dataLen, NEXT | (dataWrite ? WRITE : 0), 2],
    [p.status, 1, WRITE, 0],
  ];
}

/** A 512-byte write of DATA_FILL to sector 0 whose descriptors `spoil` edits. */
function spoiledWrite(
  spoil: (d: Desc[], p: Parts) => void,
  o: { head?: number; availIdx?: number } = {},
): (blk: BlkDriver) => Submission {
  return (blk) => {
    const p = parts(blk);
    const d = threeDescs(p);
    spoil(d, p);
    return publish(blk, p, d, o);
  };
}

/** A good 512-byte write of DATA_FILL to sector 0 (the queue-setup cases submit it). */
export const goodWrite: (blk: BlkDriver) => Submission = spoiledWrite(() => {});

/** A well-formed chain (header, data, status) for a request the device must refuse. */
function request(
  o: { type?: number; sector?: bigint; dataLen?: number; data?: Uint8Array; dataWrite?: boolean },
): (blk: BlkDriver) => Submission {
  return (blk) => {
    const p = parts(blk, o);
    const d: Desc[] = p.dataLen > 0
      ? threeDescs(p, o.dataWrite)
      : [[p.hdr, 16, NEXT, 1], [p.status, 1, WRITE, 0]];
    return publish(blk, p, d);
  };
}

/** `entries` as the bytes of a `count`-entry descriptor table (the rest zero). */
function tableBytes(entries: Desc[], count: number): Uint8Array {
  const bytes = new Uint8Array(16 * count);
  const v = new DataView(bytes.buffer);
  entries.forEach(([addr, len, flags, next], i) => {
    v.setBigUint64(16 * i, BigInt(addr), true);
    v.setUint32(16 * i + 8, len >>> 0, true);
    v.setUint16(16 * i + 12, flags, true);
    v.setUint16(16 * i + 14, next, true);
  });
  return bytes;
}

/**
 * The write's three descriptors in an indirect table (descriptor 0 points at it); `spoil` edits
 * the entries and the table descriptor [addr, len, flags, next].
 */
function spoiledIndirect(
  spoil: (entries: Desc[], table: Desc, p: Parts, blk: BlkDriver) => void,
  tableEntries = 3,
): (blk: BlkDriver) => Submission {
  return (blk) => {
    const p = parts(blk);
    const entries = threeDescs(p);
    const tableAddr = blk.alloc.alloc(16 * tableEntries);
    const table: Desc = [tableAddr, 16 * entries.length, INDIRECT, 0];
    spoil(entries, table, p, blk);
    p.commands.push(QtestClient.writeCmd(tableAddr, tableBytes(entries, tableEntries)));
    return publish(blk, p, [table]);
  };
}

/** A DISCARD / WRITE_ZEROES request carrying `payload` (its segments, possibly spoilt). */
const ranged = (type: number, payload: Uint8Array, dataWrite = false) =>
  request({ type, data: payload, dataWrite });

function segments(...s: [sector: bigint, sectors: number, flags?: number][]): Uint8Array {
  const out = new Uint8Array(16 * s.length);
  s.forEach(([sector, n, flags], i) => out.set(segment(sector, n, flags ?? 0), 16 * i));
  return out;
}

const RESET = "needs-reset" as const;
const END = GUEST_RAM;
const HOLE = SLOT0.base;
const NEAR_2_64 = 0xffff_ffff_ffff_f000n;

export const MALFORMED_CASES: MalformedCase[] = [
  // --- direct chains: the device cannot trust the ring and asks for a reset ---
  {
    name: "chain that loops on itself",
    expect: RESET,
    why: "chain at head 0 is longer than the queue size 16",
    build: spoiledWrite((d) => d[1][3] = 1),
  },
  {
    name: "two-descriptor loop back to the head",
    expect: RESET,
    why: "chain at head 0 is longer than the queue size 16",
    build: spoiledWrite((d) => d[1][3] = 0),
  },
  {
    name: "next index past the queue",
    expect: RESET,
    why: "descriptor 1 (head 0): next 999 is not below the queue size 16",
    build: spoiledWrite((d) => d[1][3] = 999),
  },
  {
    name: "next index equal to the queue size",
    expect: RESET,
    why: "descriptor 1 (head 0): next 16 is not below the queue size 16",
    build: spoiledWrite((d) => d[1][3] = QUEUE_SIZE),
  },
  {
    name: "chain through every descriptor and back (longer than the queue)",
    expect: RESET,
    why: "chain at head 0 is longer than the queue size 16",
    build: spoiledWrite((d, p) => {
      d.length = 0;
      for (let i = 0; i < QUEUE_SIZE; i++) d.push([p.data, 512, NEXT, (i + 1) % QUEUE_SIZE]);
      d[0] = [p.hdr, 16, NEXT, 1];
    }),
  },
  {
    name: "data buffer outside guest RAM",
    expect: RESET,
    why: "descriptor 1 (head 0): buffer 0x10001000+0x200 is outside guest RAM",
    build: spoiledWrite((d) => d[1][0] = END + 0x1000),
  },
  {
    name: "data buffer straddling the end of RAM",
    expect: RESET,
    why: "descriptor 1 (head 0): buffer 0xfffff00+0x200 is outside guest RAM",
    build: spoiledWrite((d) => d[1][0] = END - 256),
  },
  {
    name: "data buffer in the MMIO hole",
    expect: RESET,
    why: "descriptor 1 (head 0): buffer 0xf0100000+0x200 is outside guest RAM",
    build: spoiledWrite((d) => d[1][0] = HOLE),
  },
  {
    name: "descriptor address near 2^64",
    expect: RESET,
    why: "descriptor 1 (head 0): buffer 0xfffffffffffff000+0x200 is outside",
    build: spoiledWrite((d) => d[1][0] = NEAR_2_64),
  },
  {
    name: "data buffer wrapping past 2^64",
    expect: RESET,
    why: "descriptor 1 (head 0): buffer 0xffffffffffffff00+0x200 is outside",
    build: spoiledWrite((d) => d[1][0] = 0xffff_ffff_ffff_ff00n),
  },
  {
    name: "data address just above 2^53 (not exact as a double)",
    expect: RESET,
    why: "descriptor 1 (head 0): buffer 0x20000000000001+0x200 is outside",
    build: spoiledWrite((d) => d[1][0] = (1n << 53n) + 1n),
  },
  {
    name: "data buffer length 0xffffffff",
    expect: RESET,
    why: /descriptor 1 \(head 0\): buffer 0x[0-9a-f]+\+0xffffffff is outside/,
    build: spoiledWrite((d) => d[1][1] = 0xffff_ffff),
  },
  {
    name: "header length 0xffffffff",
    expect: RESET,
    why: /descriptor 0 \(head 0\): buffer 0x[0-9a-f]+\+0xffffffff is outside/,
    build: spoiledWrite((d) => d[0][1] = 0xffff_ffff),
  },
  {
    name: "status byte outside guest RAM (after good data)",
    expect: RESET,
    why: "descriptor 2 (head 0): buffer 0x10000000+0x1 is outside guest RAM",
    build: spoiledWrite((d) => d[2][0] = END),
  },
  {
    name: "status byte in the MMIO hole",
    expect: RESET,
    why: "descriptor 2 (head 0): buffer 0xf0100070+0x1 is outside guest RAM",
    build: spoiledWrite((d) => d[2][0] = HOLE + 0x70),
  },
  {
    name: "readable data after the writable status byte",
    expect: RESET,
    why: "descriptor 2 (head 0): a device-readable buffer follows a device-writable one",
    build: spoiledWrite((d, p) => {
      d[1] = [p.status, 1, NEXT | WRITE, 2];
      d[2] = [p.data, 512, 0, 0];
    }),
  },
  {
    name: "status descriptor not writable after writable data",
    expect: RESET,
    why: "descriptor 2 (head 0): a device-readable buffer follows a device-writable one",
    build: spoiledWrite((d) => (d[1][2] |= WRITE, d[2][2] = 0)),
  },
  {
    // Both chains come with one notify: the device must stop at the first.
    name: "good write queued behind a malformed chain",
    expect: RESET,
    why: "descriptor 1 (head 0): buffer 0x10001000+0x200 is outside guest RAM",
    build: (blk) => {
      const bad = spoiledWrite((d) => d[1][0] = END + 0x1000)(blk);
      const good = parts(blk);
      const commands = [...bad.commands, ...good.commands];
      threeDescs(good).forEach(([addr, len, flags, next], i) =>
        commands.push(...blk.ring.descCommands(3 + i, addr, len, flags, next + 3))
      );
      commands.push(...blk.ring.publishCommands(3));
      return { ...bad, commands };
    },
  },

  // --- direct chains the device can answer (or give back) without touching the disk ---
  {
    name: "header shorter than 16 bytes",
    expect: "ioerr",
    why: "request header is 8 bytes, not 16",
    build: (blk) => {
      const p = parts(blk, { dataLen: 0 });
      return publish(blk, p, [[p.hdr, 8, NEXT, 1], [p.status, 1, WRITE, 0]]);
    },
  },
  {
    name: "8-byte header descriptor followed by data",
    expect: "ioerr",
    why: "OUT length 504 is not whole sectors",
    build: spoiledWrite((d) => d[0][1] = 8),
  },
  {
    name: "no readable descriptor at all",
    expect: "ioerr",
    why: "request header is 0 bytes, not 16",
    build: (blk) => {
      const p = parts(blk, { dataLen: 0 });
      return publish(blk, p, [[p.status, 1, WRITE, 0]]);
    },
  },
  {
    name: "no status byte (nothing writable)",
    expect: "not-executed",
    why: "request 0 has no writable status byte; not executed",
    build: spoiledWrite((d) => (d[1][2] = 0, d.length = 2)),
  },
  {
    name: "zero-length status descriptor",
    expect: "not-executed",
    why: "request 0 has no writable status byte; not executed",
    build: spoiledWrite((d) => d[2][1] = 0),
  },

  // --- indirect tables ---
  {
    name: "INDIRECT without VIRTIO_F_INDIRECT_DESC negotiated",
    expect: RESET,
    why: "descriptor 0 (head 0): INDIRECT without VIRTIO_F_INDIRECT_DESC",
    wanted: WANTED & ~VIRTIO_F_INDIRECT_DESC,
    build: spoiledIndirect(() => {}),
  },
  {
    name: "INDIRECT combined with NEXT",
    expect: RESET,
    why: "descriptor 0 (head 0): INDIRECT combined with NEXT",
    build: spoiledIndirect((_e, t) => (t[2] |= NEXT, t[3] = 1)),
  },
  {
    name: "indirect table of length 0",
    expect: RESET,
    why: "indirect table length 0 is not a multiple of 16",
    build: spoiledIndirect((_e, t) => t[1] = 0),
  },
  {
    name: "indirect table length not a multiple of 16",
    expect: RESET,
    why: "indirect table length 40 is not a multiple of 16",
    build: spoiledIndirect((_e, t) => t[1] = 40),
  },
  {
    name: "indirect table of odd length",
    expect: RESET,
    why: "indirect table length 49 is not a multiple of 16",
    build: spoiledIndirect((_e, t) => t[1] = 49),
  },
  {
    name: "indirect table longer than the queue",
    expect: RESET,
    why: "indirect table has 17 entries, more than the queue size 16",
    build: spoiledIndirect((_e, t) => t[1] = 16 * (QUEUE_SIZE + 1), QUEUE_SIZE + 1),
  },
  {
    name: "indirect table outside guest RAM",
    expect: RESET,
    why: "indirect table 0x10010000+0x30 is outside RAM",
    build: spoiledIndirect((_e, t) => t[0] = END + 0x10000),
  },
  {
    name: "indirect table straddling the end of RAM",
    expect: RESET,
    why: "indirect table 0xfffffe0+0x30 is outside RAM",
    build: spoiledIndirect((_e, t) => t[0] = END - 32),
  },
  {
    name: "indirect table address near 2^64",
    expect: RESET,
    why: "indirect table 0xfffffffffffff000+0x30 is outside RAM",
    build: spoiledIndirect((_e, t) => t[0] = NEAR_2_64),
  },
  {
    name: "indirect table in the MMIO hole",
    expect: RESET,
    why: "indirect table 0xf0100000+0x30 is outside RAM",
    build: spoiledIndirect((_e, t) => t[0] = HOLE),
  },
  {
    name: "nested indirect table",
    expect: RESET,
    why: "indirect entry 0: nested indirect table",
    build: spoiledIndirect((e, _t, p, blk) => {
      // The entries go into an inner table; the outer one holds one INDIRECT entry for it.
      const inner = blk.alloc.alloc(48);
      p.commands.push(QtestClient.writeCmd(inner, tableBytes(e, 3)));
      e.length = 0;
      e.push([inner, 48, INDIRECT, 0], [0, 0, 0, 0], [0, 0, 0, 0]);
    }),
  },
  {
    name: "indirect entry next outside the table",
    expect: RESET,
    why: "indirect entry 1: next 3 is outside the 3-entry table",
    build: spoiledIndirect((e) => e[1][3] = 3),
  },
  {
    name: "indirect table loop",
    expect: RESET,
    why: "descriptor 0 (head 0): indirect table chain loops",
    build: spoiledIndirect((e) => e[1][3] = 0),
  },
  {
    name: "indirect entry buffer outside guest RAM",
    expect: RESET,
    why: "indirect entry 1: buffer 0x10000000+0x200 is outside guest RAM",
    build: spoiledIndirect((e) => e[1][0] = END),
  },
  {
    name: "indirect status entry outside guest RAM (after good data)",
    expect: RESET,
    why: "indirect entry 2: buffer 0x10001000+0x1 is outside guest RAM",
    build: spoiledIndirect((e) => e[2][0] = END + 0x1000),
  },
  {
    name: "indirect entry length 0xffffffff",
    expect: RESET,
    why: /indirect entry 1: buffer 0x[0-9a-f]+\+0xffffffff is outside/,
    build: spoiledIndirect((e) => e[1][1] = 0xffff_ffff),
  },
  {
    name: "indirect entries readable after writable",
    expect: RESET,
    why: "indirect entry 2: a device-readable buffer follows a device-writable one",
    build: spoiledIndirect((e) => (e[1][2] |= WRITE, e[2][2] = 0)),
  },

  // --- the available ring ---
  {
    name: "avail head past the queue",
    expect: RESET,
    why: "chain head 200 is not below the queue size 16",
    build: spoiledWrite(() => {}, { head: 200 }),
  },
  {
    name: "avail head equal to the queue size",
    expect: RESET,
    why: "chain head 16 is not below the queue size 16",
    build: spoiledWrite(() => {}, { head: QUEUE_SIZE }),
  },
  {
    name: "avail head 0xffff",
    expect: RESET,
    why: "chain head 65535 is not below the queue size 16",
    build: spoiledWrite(() => {}, { head: 0xffff }),
  },
  {
    // A good write sits in slot 0: the device must refuse the index before taking any chain.
    name: "avail idx one past the queue size (good write in slot 0)",
    expect: RESET,
    why: "avail idx 17 is 17 ahead of the device's 0, more than the queue size 16",
    build: spoiledWrite(() => {}, { availIdx: QUEUE_SIZE + 1 }),
  },
  {
    name: "avail idx jumps beyond the queue size",
    expect: RESET,
    why: "avail idx 1000 is 1000 ahead",
    build: spoiledWrite(() => {}, { availIdx: 1000 }),
  },
  {
    name: "avail idx jumps by 0x8000",
    expect: RESET,
    why: "avail idx 32768 is 32768 ahead",
    build: spoiledWrite(() => {}, { availIdx: 0x8000 }),
  },
  {
    name: "avail idx moves backwards",
    expect: RESET,
    why: "avail idx 65535 is 65535 ahead",
    build: spoiledWrite(() => {}, { availIdx: 0xffff }),
  },

  // --- well-formed chains carrying requests the device must fail ---
  {
    name: "write past the disk end",
    expect: "ioerr",
    why: "OUT of 512 bytes at sector 2048 is past the disk end",
    build: request({ sector: BigInt(IMAGE_SECTORS) }),
  },
  {
    name: "write straddling the disk end",
    expect: "ioerr",
    why: "OUT of 1024 bytes at sector 2047 is past the disk end",
    build: request({ sector: BigInt(IMAGE_SECTORS - 1), dataLen: 1024 }),
  },
  {
    name: "write at sector 2^64-1",
    expect: "ioerr",
    why: "OUT of 512 bytes at sector 18446744073709551615 is past the disk end",
    build: request({ sector: (1n << 64n) - 1n }),
  },
  {
    name: "write at sector 2^55 (byte offset overflows 64 bits)",
    expect: "ioerr",
    why: "OUT of 512 bytes at sector 36028797018963968 is past",
    build: request({ sector: 1n << 55n }),
  },
  {
    name: "write at sector 2^53 + 1 (not exact as a double)",
    expect: "ioerr",
    why: "OUT of 512 bytes at sector 9007199254740993 is past",
    build: request({ sector: (1n << 53n) + 1n }),
  },
  {
    name: "write of a partial sector",
    expect: "ioerr",
    why: "OUT length 500 is not whole sectors",
    build: request({ dataLen: 500 }),
  },
  {
    name: "write of 513 bytes",
    expect: "ioerr",
    why: "OUT length 513 is not whole sectors",
    build: request({ dataLen: 513 }),
  },
  {
    // The buffer is untouched RAM (zeroes): a device that wrote it would zero the image.
    name: "write of 128 MiB (the whole buffer in RAM, past the disk end)",
    expect: "ioerr",
    why: "OUT of 134217728 bytes at sector 0 is past the disk end",
    build: spoiledWrite((d) => (d[1][0] = 0x0100_0000, d[1][1] = 0x0800_0000)),
  },
  {
    name: "write with device-writable data (wrong direction)",
    expect: "ioerr",
    why: "OUT request with device-writable data",
    build: request({ dataWrite: true }),
  },
  {
    name: "read with device-readable data (wrong direction)",
    expect: "ioerr",
    why: "IN request with device-readable data",
    build: request({ type: BLK.IN }),
  },
  {
    name: "read past the disk end",
    expect: "ioerr",
    why: "IN of 512 bytes at sector 2048 is past the disk end",
    build: request({ type: BLK.IN, sector: BigInt(IMAGE_SECTORS), dataWrite: true }),
  },
  {
    name: "unknown request type",
    expect: "unsupp",
    why: "request type 119 is not supported",
    build: request({ type: 0x77 }),
  },
  {
    name: "unknown request type with the OUT bit set",
    expect: "unsupp",
    why: "request type 2147483649 is not supported",
    build: request({ type: 0x8000_0001 }),
  },
  {
    name: "GET_LIFETIME is not offered",
    expect: "unsupp",
    why: "request type 10 is not supported",
    build: request({ type: 10 }),
  },
  {
    name: "SECURE_ERASE is not offered",
    expect: "unsupp",
    why: "request type 14 is not supported",
    build: request({ type: 14 }),
  },

  // --- discard / write-zeroes segments ---
  {
    name: "discard with the unmap flag",
    expect: "unsupp",
    why: "DISCARD flags 0x1",
    build: ranged(BLK.DISCARD, segments([0n, 8, 1])),
  },
  {
    name: "write-zeroes with an unknown flag",
    expect: "unsupp",
    why: "WRITE_ZEROES flags 0x2",
    build: ranged(BLK.WRITE_ZEROES, segments([0n, 8, 2])),
  },
  {
    name: "discard with two segments (max_discard_seg 1)",
    expect: "unsupp",
    why: "DISCARD with 2 segments (at most 1)",
    build: ranged(BLK.DISCARD, segments([0n, 1], [4n, 1])),
  },
  {
    name: "write-zeroes with two segments (max_write_zeroes_seg 1)",
    expect: "unsupp",
    why: "WRITE_ZEROES with 2 segments (at most 1)",
    build: ranged(BLK.WRITE_ZEROES, segments([0n, 1], [4n, 1])),
  },
  {
    name: "discard payload of 8 bytes",
    expect: "ioerr",
    why: "DISCARD payload of 8 bytes is not whole segments",
    build: ranged(BLK.DISCARD, new Uint8Array(8)),
  },
  {
    name: "write-zeroes payload of 24 bytes",
    expect: "ioerr",
    why: "WRITE_ZEROES payload of 24 bytes is not whole segments",
    build: ranged(BLK.WRITE_ZEROES, segments([0n, 1], [1n, 1]).subarray(0, 24)),
  },
  {
    name: "write-zeroes without a payload",
    expect: "ioerr",
    why: "WRITE_ZEROES payload of 0 bytes is not whole segments",
    build: ranged(BLK.WRITE_ZEROES, new Uint8Array(0)),
  },
  {
    name: "write-zeroes with a device-writable payload",
    expect: "ioerr",
    why: "WRITE_ZEROES with device-writable data",
    build: ranged(BLK.WRITE_ZEROES, segments([0n, 8]), true),
  },
  {
    name: "write-zeroes straddling the disk end",
    expect: "ioerr",
    why: "WRITE_ZEROES of 2 sectors at 2047 is past the disk end",
    build: ranged(BLK.WRITE_ZEROES, segments([BigInt(IMAGE_SECTORS - 1), 2])),
  },
  {
    name: "discard past the disk end",
    expect: "ioerr",
    why: "DISCARD of 1 sectors at 2048 is past the disk end",
    build: ranged(BLK.DISCARD, segments([BigInt(IMAGE_SECTORS), 1])),
  },
  {
    name: "write-zeroes at sector 2^64-16 (sector + count wraps)",
    expect: "ioerr",
    why: "WRITE_ZEROES of 32 sectors at 18446744073709551600 is past",
    build: ranged(BLK.WRITE_ZEROES, segments([(1n << 64n) - 16n, 32])),
  },
  {
    name: "discard of more than max_discard_sectors",
    expect: "ioerr",
    why: "DISCARD of 8388608 sectors (at most 8388607)",
    build: ranged(BLK.DISCARD, segments([0n, Math.floor(0xffff_ffff / 512) + 1])),
  },
  {
    name: "write-zeroes of 0xffffffff sectors",
    expect: "ioerr",
    why: "WRITE_ZEROES of 4294967295 sectors (at most 8388607)",
    build: ranged(BLK.WRITE_ZEROES, segments([0n, 0xffff_ffff])),
  },
  {
    name: "write-zeroes not negotiated",
    expect: "unsupp",
    why: "WRITE_ZEROES was not negotiated",
    wanted: WANTED & ~bit(BLK_F.WRITE_ZEROES),
    build: ranged(BLK.WRITE_ZEROES, segments([0n, 8])),
  },
  {
    name: "discard not negotiated",
    expect: "unsupp",
    why: "DISCARD was not negotiated",
    wanted: WANTED & ~bit(BLK_F.DISCARD),
    build: ranged(BLK.DISCARD, segments([0n, 8])),
  },

  // --- queue setup: refused at DRIVER_OK ---
  {
    name: "descriptor table outside guest RAM",
    expect: RESET,
    why: "queue 0: descriptor table 0x10001000+0x100 is outside guest RAM",
    queue: () => ({ desc: BigInt(END + 0x1000) }),
  },
  {
    name: "descriptor table straddling the end of RAM",
    expect: RESET,
    why: "queue 0: descriptor table 0xfffff80+0x100 is outside guest RAM",
    queue: () => ({ desc: BigInt(END - 128) }),
  },
  {
    name: "descriptor table in the MMIO hole",
    expect: RESET,
    why: "queue 0: descriptor table 0xfff00000+0x100 is outside guest RAM",
    queue: () => ({ desc: 0xfff0_0000n }),
  },
  {
    name: "descriptor table above 4 GiB (high word set)",
    expect: RESET,
    why: "queue 0: descriptor table 0x100100000+0x100 is outside guest RAM",
    queue: (g) => ({ desc: g.desc + (1n << 32n) }),
  },
  {
    name: "descriptor table near 2^64",
    expect: RESET,
    why: "queue 0: descriptor table 0xfffffffffffff000+0x100 is outside",
    queue: () => ({ desc: NEAR_2_64 }),
  },
  {
    name: "descriptor table not 16-byte aligned",
    expect: RESET,
    why: "queue 0: descriptor table address 0x100008 is not aligned to 16",
    queue: (g) => ({ desc: g.desc + 8n }),
  },
  {
    name: "available ring outside guest RAM",
    expect: RESET,
    why: "queue 0: available ring 0x10000000+0x26 is outside guest RAM",
    queue: () => ({ avail: BigInt(END) }),
  },
  {
    name: "available ring at an odd address",
    expect: RESET,
    why: "queue 0: available ring address 0x101001 is not aligned to 2",
    queue: (g) => ({ avail: g.avail + 1n }),
  },
  {
    name: "used ring outside guest RAM",
    expect: RESET,
    why: "queue 0: used ring 0xf0100000+0x86 is outside guest RAM",
    queue: () => ({ used: BigInt(HOLE) }),
  },
  {
    name: "used ring straddling the end of RAM",
    expect: RESET,
    why: "queue 0: used ring 0xfffffc0+0x86 is outside guest RAM",
    queue: () => ({ used: BigInt(END - 64) }),
  },
  {
    name: "used ring not 4-byte aligned",
    expect: RESET,
    why: "queue 0: used ring address 0x102002 is not aligned to 4",
    queue: (g) => ({ used: g.used + 2n }),
  },
  {
    name: "queue size not a power of two",
    expect: RESET,
    why: "queue 0: queue size 24 is not a power of 2 in 1..256",
    queue: () => ({ size: 24 }),
  },
  {
    name: "queue size above QUEUE_NUM_MAX",
    expect: RESET,
    why: "queue 0: queue size 512 is not a power of 2 in 1..256",
    queue: (_g, max) => ({ size: max * 2 }),
  },
  {
    name: "queue size 0",
    expect: RESET,
    why: "queue 0: queue size 0 is not a power of 2 in 1..256",
    queue: () => ({ size: 0 }),
  },
  {
    name: "queue size 0xffffffff",
    expect: RESET,
    why: "queue 0: queue size 4294967295 is not a power of 2 in 1..256",
    queue: () => ({ size: 0xffff_ffff }),
  },
  {
    name: "DRIVER_OK with no queue ready",
    expect: RESET,
    why: "activation failed: no queue is ready",
    queue: () => ({ ready: false }),
  },
];
