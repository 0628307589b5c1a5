/**
 * Writes the fallback single binary: the Zig launcher, then two payload sections (the Deno
 * runtime; the program's tree), then a trailer. The format is described at the top of
 * scripts/build/launcher.zig, which reads it back.
 *
 * Usage: deno run -A scripts/build/pack.ts LAUNCHER OUTPUT RUNTIME ARCHIVE_PATH=SOURCE_PATH...
 * The output is written beside OUTPUT and renamed over it, so a running binary is never
 * modified in place.
 */
import { createHash } from "node:crypto";
import { crc32 } from "node:zlib";

const MAGIC = "SVPAYLD2";
const TRAILER_LEN = 128;
const SECTION_RECORD_LEN = 40;

export interface PayloadEntry {
  /** Path inside the extracted tree, relative, `/`-separated. */
  path: string;
  /** File on disk whose bytes and executable bit are packed. */
  source: string;
}

interface SectionRecord {
  offset: number;
  length: number;
  crc: number;
  entries: number;
  key: Uint8Array;
}

function entryHeader(pathBytes: Uint8Array, mode: number, size: number): Uint8Array {
  const header = new Uint8Array(16 + pathBytes.length);
  const view = new DataView(header.buffer);
  view.setUint32(0, pathBytes.length, true);
  view.setUint32(4, mode, true);
  view.setBigUint64(8, BigInt(size), true);
  header.set(pathBytes, 16);
  return header;
}

async function writeAll(file: Deno.FsFile, bytes: Uint8Array): Promise<void> {
  let done = 0;
  while (done < bytes.length) done += await file.write(bytes.subarray(done));
}

/** Appends one section at `offset`; its key hashes `keyPrefix` then the section's bytes. */
async function writeSection(
  file: Deno.FsFile,
  offset: number,
  entries: PayloadEntry[],
  keyPrefix: Uint8Array,
): Promise<SectionRecord> {
  const sha = createHash("sha256").update(keyPrefix);
  const encoder = new TextEncoder();
  let crc = 0;
  let length = 0;
  for (const entry of entries) {
    const data = await Deno.readFile(entry.source);
    const executable = ((await Deno.stat(entry.source)).mode ?? 0) & 0o111;
    const header = entryHeader(encoder.encode(entry.path), executable ? 0o755 : 0o644, data.length);
    for (const part of [header, data]) {
      sha.update(part);
      crc = crc32(part, crc);
      length += part.length;
      await writeAll(file, part);
    }
  }
  const key = new Uint8Array(sha.digest().subarray(0, 16));
  return { offset, length, crc: crc >>> 0, entries: entries.length, key };
}

function trailer(sections: SectionRecord[]): Uint8Array {
  const bytes = new Uint8Array(TRAILER_LEN);
  const view = new DataView(bytes.buffer);
  bytes.set(new TextEncoder().encode(MAGIC), 0);
  sections.forEach((s, i) => {
    const at = 8 + i * SECTION_RECORD_LEN;
    view.setBigUint64(at, BigInt(s.offset), true);
    view.setBigUint64(at + 8, BigInt(s.length), true);
    view.setUint32(at + 16, s.crc, true);
    view.setUint32(at + 20, s.entries, true);
    bytes.set(s.key, at + 24);
  });
  return bytes;
}

const hex = (b: Uint8Array) => Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");

/**
 * Packs the runtime and `entries` behind `launcher` into `output`; returns the cache directory
 * names the launcher will use (`deno-<key>`, `app-<key>`).
 */
export async function packBinary(
  launcher: string,
  output: string,
  runtime: string,
  entries: PayloadEntry[],
): Promise<string[]> {
  const temp = `${output}.tmp-${Deno.pid}`;
  const file = await Deno.open(temp, { write: true, create: true, truncate: true, mode: 0o755 });
  try {
    const launcherBytes = await Deno.readFile(launcher);
    await writeAll(file, launcherBytes);
    const runtimeSection = await writeSection(
      file,
      launcherBytes.length,
      [{ path: "deno", source: runtime }],
      new Uint8Array(),
    );
    // The app key covers the runtime too: its transpile cache belongs to that runtime.
    const appSection = await writeSection(
      file,
      runtimeSection.offset + runtimeSection.length,
      entries,
      runtimeSection.key,
    );
    await writeAll(file, trailer([runtimeSection, appSection]));
    file.close();
    await Deno.chmod(temp, 0o755);
    await Deno.rename(temp, output);
    return [`deno-${hex(runtimeSection.key)}`, `app-${hex(appSection.key)}`];
  } catch (e) {
    try {
      file.close();
    } catch { /* already closed */ }
    await Deno.remove(temp).catch(() => {});
    throw e;
  }
}

if (import.meta.main) {
  const [launcher, output, runtime, ...pairs] = Deno.args;
  if (!launcher || !output || !runtime) {
    console.error("usage: pack.ts LAUNCHER OUTPUT RUNTIME ARCHIVE_PATH=SOURCE_PATH...");
    Deno.exit(2);
  }
  const entries = pairs.map((pair) => {
    const eq = pair.indexOf("=");
    if (eq <= 0) {
      console.error(`pack.ts: expected ARCHIVE_PATH=SOURCE_PATH, got "${pair}"`);
      Deno.exit(2);
    }
    return { path: pair.slice(0, eq), source: pair.slice(eq + 1) };
  });
  console.log((await packBinary(launcher, output, runtime, entries)).join(" "));
}
