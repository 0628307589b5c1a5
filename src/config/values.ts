/**
 * Scalar grammars shared by every option: StratoVirt's booleans, integers in decimal or hex, and
 * sizes with K/M/G/T suffixes. Each returns undefined on bad input; callers build the error,
 * because only they know which option and property to name.
 */

const KIB = 1024;
export const MIB = 1024 * KIB;
/** Guest memory is mapped in whole host pages. */
export const PAGE_SIZE = 4 * KIB;
export const GIB = 1024 * MIB;
const TIB = 1024 * GIB;

/** on/off, true/false, yes/no (StratoVirt's ExBool), case-insensitive. */
export function parseBool(text: string): boolean | undefined {
  switch (text.toLowerCase()) {
    case "on":
    case "true":
    case "yes":
      return true;
    case "off":
    case "false":
    case "no":
      return false;
  }
  return undefined;
}

/** A non-negative integer in decimal or 0x-hex, no larger than Number.MAX_SAFE_INTEGER. */
export function parseUint(text: string): number | undefined {
  let n: number;
  if (/^0x[0-9a-f]+$/i.test(text)) n = parseInt(text.slice(2), 16);
  else if (/^[0-9]+$/.test(text)) n = parseInt(text, 10);
  else return undefined;
  return Number.isSafeInteger(n) ? n : undefined;
}

/** A hex number with or without 0x (PCI slot/function, root port numbers). */
export function parseHex(text: string): number | undefined {
  const digits = text.replace(/^0x/i, "");
  if (!/^[0-9a-f]{1,8}$/i.test(digits)) return undefined;
  return parseInt(digits, 16);
}

/**
 * A byte size: digits with an optional K/M/G/T suffix in either case; a bare number is in
 * `defaultUnit` (StratoVirt reads `-m 256` as 256M). Returns bytes.
 */
export function parseSize(text: string, defaultUnit: "B" | "M" = "M"): number | undefined {
  const m = /^([0-9]+)([kmgt]?)(i?b)?$/i.exec(text);
  if (!m || (m[3] !== undefined && m[2] === "")) return undefined;
  const unit = m[2].toUpperCase() || defaultUnit;
  const scale = { B: 1, K: KIB, M: MIB, G: GIB, T: TIB }[unit]!;
  const n = parseInt(m[1], 10) * scale;
  return Number.isSafeInteger(n) ? n : undefined;
}

/** Shortest exact spelling of a byte count for messages: 256M, 1G, 4096K. */
export function formatSize(bytes: number): string {
  for (const [unit, scale] of [["T", TIB], ["G", GIB], ["M", MIB], ["K", KIB]] as const) {
    if (bytes >= scale && bytes % scale === 0) return `${bytes / scale}${unit}`;
  }
  return `${bytes}`;
}

/**
 * A CPU or host-node list: `0-1:4-5`, `3`, `0-3`. Ranges joined by ':' (StratoVirt's NUMA syntax);
 * returns the sorted distinct numbers, or undefined when malformed or a range runs backwards.
 */
export function parseIdList(text: string, max: number): number[] | undefined {
  const out = new Set<number>();
  for (const part of text.split(":")) {
    const m = /^([0-9]+)(?:-([0-9]+))?$/.exec(part);
    if (!m) return undefined;
    const lo = parseInt(m[1], 10);
    const hi = m[2] === undefined ? lo : parseInt(m[2], 10);
    if (lo > hi || hi > max) return undefined;
    for (let i = lo; i <= hi; i++) out.add(i);
  }
  return [...out].sort((a, b) => a - b);
}
