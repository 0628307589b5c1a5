/**
 * Synthetic kernel images for the boot tests: a bzImage with a chosen setup header, a small ELF64
 * with PT_LOAD segments and notes, and a flat blob. Test-only.
 */

export interface FakeBzImageOptions {
  setupSects?: number;
  version?: number;
  loadflags?: number;
  xloadflags?: number;
  code32Start?: number;
  initrdAddrMax?: number;
  kernelAlignment?: number;
  relocatable?: number;
  cmdlineSize?: number;
  prefAddress?: number;
  initSize?: number;
  bodySize?: number;
  magic?: number;
  bootFlag?: number;
  /** Declared syssize (16-byte units); default matches the body. */
  syssize?: number;
  /** Cut the file to this many bytes. */
  truncateTo?: number;
}

/** Byte i of a protected-mode kernel body: a pattern that shows misplaced copies. */
export function bodyByte(i: number): number {
  return (i * 7 + 3) & 0xff;
}

export function fakeBzImage(o: FakeBzImageOptions = {}): Uint8Array {
  const setupSects = o.setupSects ?? 4;
  const setupSize = ((setupSects === 0 ? 4 : setupSects) + 1) * 512;
  const bodySize = o.bodySize ?? 0x2000;
  const image = new Uint8Array(setupSize + bodySize);
  const v = new DataView(image.buffer);
  image[0x1f1] = setupSects;
  v.setUint32(0x1f4, o.syssize ?? Math.ceil(bodySize / 16), true);
  v.setUint16(0x1fa, 0x0f04, true); // vid_mode as a kernel ships it; the loader overrides it
  v.setUint16(0x1fe, o.bootFlag ?? 0xaa55, true);
  image[0x200] = 0xeb; // jmp short: the offset byte gives the header's length
  image[0x201] = 0x6a;
  v.setUint32(0x202, o.magic ?? 0x5372_6448, true);
  v.setUint16(0x206, o.version ?? 0x20f, true);
  image[0x211] = o.loadflags ?? 0x01;
  v.setUint32(0x214, o.code32Start ?? 0x10_0000, true);
  v.setUint32(0x22c, o.initrdAddrMax ?? 0x7fff_ffff, true);
  v.setUint32(0x230, o.kernelAlignment ?? 0x20_0000, true);
  image[0x234] = o.relocatable ?? 1;
  v.setUint16(0x236, o.xloadflags ?? 0x03, true);
  v.setUint32(0x238, o.cmdlineSize ?? 2047, true);
  v.setBigUint64(0x258, BigInt(o.prefAddress ?? 0x100_0000), true);
  v.setUint32(0x260, o.initSize ?? 0x40_0000, true);
  for (let i = 0; i < bodySize; i++) image[setupSize + i] = bodyByte(i);
  return o.truncateTo === undefined ? image : image.slice(0, o.truncateTo);
}

export interface FakeSegment {
  paddr: number;
  data: Uint8Array;
  memSize?: number;
}

export interface FakeElfOptions {
  segments?: FakeSegment[];
  /** PVH entry; null leaves the note out. */
  pvhEntry?: number | null;
  /** Bytes of the PVH note's value (Linux writes 8 on x86_64). */
  pvhDescSize?: 4 | 8;
  elfClass?: number;
  machine?: number;
}

function note(owner: string, type: number, desc: Uint8Array): Uint8Array {
  const name = new TextEncoder().encode(owner + "\0");
  const pad = (n: number) => (n + 3) & ~3;
  const out = new Uint8Array(12 + pad(name.length) + pad(desc.length));
  const v = new DataView(out.buffer);
  v.setUint32(0, name.length, true);
  v.setUint32(4, desc.length, true);
  v.setUint32(8, type, true);
  out.set(name, 12);
  out.set(desc, 12 + pad(name.length));
  return out;
}

export const DEFAULT_ELF_SEGMENTS: FakeSegment[] = [
  { paddr: 0x100_0000, data: new Uint8Array(0x3000).map((_, i) => bodyByte(i)) },
  { paddr: 0x110_0000, data: new Uint8Array(0x800).fill(0xcc), memSize: 0x2000 },
];

/** An ELF64 x86_64 executable: program headers, a GNU note then the Xen PVH note, the data. */
export function fakeElf(o: FakeElfOptions = {}): Uint8Array {
  const segments = o.segments ?? DEFAULT_ELF_SEGMENTS;
  const pvhEntry = o.pvhEntry === undefined ? 0x100_0200 : o.pvhEntry;
  const descSize = o.pvhDescSize ?? 8;
  const notes: Uint8Array[] = [note("GNU", 3, new Uint8Array(20).fill(0xab))];
  if (pvhEntry !== null) {
    const desc = new Uint8Array(descSize);
    const dv = new DataView(desc.buffer);
    if (descSize === 4) dv.setUint32(0, pvhEntry, true);
    else dv.setBigUint64(0, BigInt(pvhEntry), true);
    notes.push(note("Xen", 18, desc));
  }
  const noteBytes = new Uint8Array(notes.reduce((s, n) => s + n.length, 0));
  notes.reduce((at, n) => (noteBytes.set(n, at), at + n.length), 0);

  const phnum = segments.length + 1;
  const noteOffset = 64 + phnum * 56;
  let dataOffset = Math.ceil((noteOffset + noteBytes.length) / 0x1000) * 0x1000;
  const offsets = segments.map((s) => {
    const at = dataOffset;
    dataOffset += Math.ceil(s.data.length / 0x1000) * 0x1000 || 0x1000;
    return at;
  });
  const image = new Uint8Array(dataOffset);
  const v = new DataView(image.buffer);
  image.set([0x7f, 0x45, 0x4c, 0x46, o.elfClass ?? 2, 1, 1]);
  v.setUint16(16, 2, true); // ET_EXEC
  v.setUint16(18, o.machine ?? 62, true);
  v.setUint32(20, 1, true);
  v.setBigUint64(24, BigInt(segments[0]?.paddr ?? 0), true);
  v.setBigUint64(32, 64n, true);
  v.setUint16(52, 64, true);
  v.setUint16(54, 56, true);
  v.setUint16(56, phnum, true);
  segments.forEach((s, i) => {
    const ph = 64 + i * 56;
    v.setUint32(ph, 1, true); // PT_LOAD
    v.setUint32(ph + 4, 7, true);
    v.setBigUint64(ph + 8, BigInt(offsets[i]), true);
    v.setBigUint64(ph + 16, BigInt(0xffff_ffff_8000_0000n + BigInt(s.paddr)), true);
    v.setBigUint64(ph + 24, BigInt(s.paddr), true);
    v.setBigUint64(ph + 32, BigInt(s.data.length), true);
    v.setBigUint64(ph + 40, BigInt(s.memSize ?? s.data.length), true);
    image.set(s.data, offsets[i]);
  });
  const ph = 64 + segments.length * 56;
  v.setUint32(ph, 4, true); // PT_NOTE
  v.setBigUint64(ph + 8, BigInt(noteOffset), true);
  v.setBigUint64(ph + 32, BigInt(noteBytes.length), true);
  v.setBigUint64(ph + 40, BigInt(noteBytes.length), true);
  image.set(noteBytes, noteOffset);
  return image;
}

/** A flat vmlinux.bin stand-in: patterned bytes, no headers. */
export function fakeVmlinuxBin(size = 0x5000): Uint8Array {
  return new Uint8Array(size).map((_, i) => bodyByte(i + 1));
}
