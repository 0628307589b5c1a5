/** `-m`, `-mem-prealloc`, `-mem-path`. */
import { ConfigError } from "./error.ts";
import { Props } from "./props.ts";
import { formatSize, GIB, MIB, PAGE_SIZE, parseSize } from "./values.ts";

export const MIN_MEMORY = 256 * MIB;
export const MAX_MEMORY = 512 * GIB;
export const DEFAULT_MEMORY = 256 * MIB;

export interface MemoryConfig {
  /** Guest RAM in bytes. */
  readonly sizeBytes: number;
  /** Touch every page at start (`-mem-prealloc`). */
  readonly prealloc: boolean;
  /** Backing file or hugetlbfs directory (`-mem-path`), absolute. */
  readonly memPath: string | null;
}

/** `-m [size=]N[K|M|G]`, a bare number meaning megabytes. */
export function parseMemorySize(text: string): number {
  const p: Props = new Props("-m", text, "size");
  const given = p.str("size");
  p.finish();
  if (given === undefined) p.fail("a size is required, e.g. -m 1G");
  const bytes = parseSize(given);
  if (bytes === undefined) p.fail("not a size; use N, NM, NG (e.g. 512M, 2G)");
  if (bytes < MIN_MEMORY || bytes > MAX_MEMORY) {
    p.fail(`memory size must be between ${formatSize(MIN_MEMORY)} and ${formatSize(MAX_MEMORY)}`);
  }
  if (bytes % PAGE_SIZE !== 0) p.fail("memory size must be a multiple of 4K (the page size)");
  return bytes;
}

export function parseMemPath(text: string): string {
  if (!text.startsWith("/")) {
    throw new ConfigError("-mem-path", text, "the path must be absolute");
  }
  return text;
}
