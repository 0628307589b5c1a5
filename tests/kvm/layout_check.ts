/**
 * Compares TypeScript layouts and constants with the helper's table, which comes from the kernel
 * headers. Returns one line per difference, so a test can show them all at once.
 */
import { cString, helper } from "../../ffi/helper.ts";
import { fieldSize, type StructLayout } from "../../ffi/struct.ts";

const UNKNOWN = -(2n ** 63n);

/** The header value named `name`, or null when the helper has no such entry. */
export function headerValue(name: string): bigint | null {
  const v = BigInt(helper().sv_layout(cString(name)));
  return v === UNKNOWN ? null : v;
}

/** Every name in the helper's table. */
export function headerNames(): string[] {
  const h = helper();
  const names: string[] = [];
  for (let i = 0; i < h.sv_layout_count(); i++) {
    names.push(Deno.UnsafePointerView.getCString(h.sv_layout_name(i)!));
  }
  return names;
}

function compare(out: string[], name: string, ours: number): void {
  const theirs = headerValue(name);
  if (theirs === null) out.push(`${name}: not in the kernel headers (ours: ${ours})`);
  else if (theirs !== BigInt(ours)) out.push(`${name}: headers say ${theirs}, ours ${ours}`);
}

/**
 * Checks the size of `layout` and the offset and size of every member, recursively; `path` is
 * the C member path of `layout` ("kvm_run.io"), `base` its offset inside the outermost struct.
 */
export function layoutDifferences(layout: StructLayout, path = layout.name, base = 0): string[] {
  const out: string[] = [];
  compare(out, `sizeof ${path}`, layout.size);
  for (const [key, f] of Object.entries(layout.fields)) {
    const member = `${path}.${key}`;
    compare(out, `offsetof ${member}`, base + f.offset);
    // A flexible array member (count 0) has no size of its own in C.
    if ("of" in f && f.count === 0) continue;
    compare(out, `sizeof ${member}`, fieldSize(f));
    if ("struct" in f) {
      // The nested layout's own size was just compared as this member's size.
      const nested = layoutDifferences(f.struct, member, base + f.offset);
      out.push(...nested.filter((d) => !d.startsWith(`sizeof ${member}:`)));
    }
  }
  return out;
}

/** Checks constants keyed by `prefix + key` ("KVM_" + "RUN"). */
export function constantDifferences(
  values: Readonly<Record<string, number>>,
  prefix = "",
): string[] {
  const out: string[] = [];
  for (const [key, v] of Object.entries(values)) compare(out, prefix + key, v);
  return out;
}
