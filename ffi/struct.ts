/**
 * Declarative C struct layouts and typed views over bytes. A layout lists each member's offset
 * and type; a view reads and writes those members in place (little-endian, as on x86_64), over a
 * Uint8Array that may be a plain buffer or an FFI view of kernel-shared memory (kvm_run).
 * Layouts are plain data so tests can hold every offset against the kernel headers.
 */

export type Scalar = "u8" | "u16" | "u32" | "u64" | "i32" | "i64";

/** A single integer member. u64/i64 read as bigint, the rest as number. */
export interface ScalarField {
  readonly offset: number;
  readonly type: Scalar;
}
/** An embedded struct or union member (its layout's offsets are relative to it). */
export interface NestedField {
  readonly offset: number;
  readonly struct: StructLayout;
}
/** An array member: `count` elements of a scalar (a typed array) or a struct (views). */
export interface ArrayField {
  readonly offset: number;
  readonly count: number;
  readonly of: Scalar | StructLayout;
}

export type Field = ScalarField | NestedField | ArrayField;
export type Fields = Readonly<Record<string, Field>>;

export interface StructLayout<F extends Fields = Fields> {
  /** The C name ("kvm_regs"), or a member path for anonymous parts ("kvm_run.io"). */
  readonly name: string;
  readonly size: number;
  readonly fields: F;
}

export const SCALAR_SIZE: Readonly<Record<Scalar, number>> = {
  u8: 1,
  u16: 2,
  u32: 4,
  u64: 8,
  i32: 4,
  i64: 8,
};

export function defineStruct<const F extends Fields>(
  name: string,
  size: number,
  fields: F,
): StructLayout<F> {
  for (const [key, f] of Object.entries(fields)) {
    const end = f.offset + fieldSize(f);
    if (f.offset < 0 || end > size) {
      throw new RangeError(
        `${name}.${key} (offset ${f.offset}, end ${end}) lies outside ${size} bytes`,
      );
    }
  }
  return Object.freeze({ name, size, fields: Object.freeze(fields) });
}

/** Size in bytes of a member. */
export function fieldSize(f: Field): number {
  if ("type" in f) return SCALAR_SIZE[f.type];
  if ("struct" in f) return f.struct.size;
  const elem = typeof f.of === "string" ? SCALAR_SIZE[f.of] : f.of.size;
  return f.count * elem;
}

type TypedArrayOf<S extends Scalar> = S extends "u8" ? Uint8Array
  : S extends "u16" ? Uint16Array
  : S extends "u32" ? Uint32Array
  : S extends "i32" ? Int32Array
  : S extends "u64" ? BigUint64Array
  : BigInt64Array;

type ValueOf<F> = F extends { type: "u64" | "i64" } ? bigint
  : F extends { type: Scalar } ? number
  : F extends { struct: StructLayout<infer G> } ? StructView<G>
  : F extends { of: infer S extends Scalar } ? TypedArrayOf<S>
  : F extends { of: StructLayout<infer G> } ? readonly StructView<G>[]
  : never;

type ScalarKeys<F extends Fields> = {
  [K in keyof F]: F[K] extends ScalarField ? K : never;
}[keyof F];

/** Members as properties: scalars read/write, nested structs and arrays read-only views. */
export type StructView<F extends Fields = Fields> =
  & { -readonly [K in ScalarKeys<F>]: ValueOf<F[K]> }
  & { readonly [K in Exclude<keyof F, ScalarKeys<F>>]: ValueOf<F[K]> }
  & {
    /** The struct's bytes (a subarray of the backing memory). */
    readonly bytes: Uint8Array<ArrayBuffer>;
    readonly layout: StructLayout<F>;
  };

const ARRAY_CTOR = {
  u8: Uint8Array,
  u16: Uint16Array,
  u32: Uint32Array,
  i32: Int32Array,
  u64: BigUint64Array,
  i64: BigInt64Array,
} as const;

interface ViewState {
  readonly bytes: Uint8Array<ArrayBuffer>;
  readonly dv: DataView<ArrayBuffer>;
  readonly nested: Record<string, unknown>;
}

function defineScalar(proto: object, key: string, offset: number, type: Scalar): void {
  const desc: PropertyDescriptor = (() => {
    switch (type) {
      case "u8":
        return {
          get(this: ViewState) {
            return this.dv.getUint8(offset);
          },
          set(this: ViewState, v: number) {
            this.dv.setUint8(offset, v);
          },
        };
      case "u16":
        return {
          get(this: ViewState) {
            return this.dv.getUint16(offset, true);
          },
          set(this: ViewState, v: number) {
            this.dv.setUint16(offset, v, true);
          },
        };
      case "u32":
        return {
          get(this: ViewState) {
            return this.dv.getUint32(offset, true);
          },
          set(this: ViewState, v: number) {
            this.dv.setUint32(offset, v, true);
          },
        };
      case "i32":
        return {
          get(this: ViewState) {
            return this.dv.getInt32(offset, true);
          },
          set(this: ViewState, v: number) {
            this.dv.setInt32(offset, v, true);
          },
        };
      case "u64":
        return {
          get(this: ViewState) {
            return this.dv.getBigUint64(offset, true);
          },
          set(this: ViewState, v: bigint) {
            this.dv.setBigUint64(offset, BigInt.asUintN(64, v), true);
          },
        };
      case "i64":
        return {
          get(this: ViewState) {
            return this.dv.getBigInt64(offset, true);
          },
          set(this: ViewState, v: bigint) {
            this.dv.setBigInt64(offset, BigInt.asIntN(64, v), true);
          },
        };
    }
  })();
  Object.defineProperty(proto, key, { ...desc, enumerable: true });
}

// One prototype per layout, built on first use: property access stays a plain accessor call.
const prototypes = new WeakMap<StructLayout, object>();

function prototypeFor(layout: StructLayout): object {
  let proto = prototypes.get(layout);
  if (proto) return proto;
  proto = { layout };
  for (const [key, f] of Object.entries(layout.fields)) {
    if ("type" in f) {
      defineScalar(proto, key, f.offset, f.type);
    } else if ("struct" in f) {
      const sub = f.struct;
      // Made once per view and kept: run loops read kvm_run.io.port on every exit.
      Object.defineProperty(proto, key, {
        enumerable: true,
        get(this: ViewState) {
          return this.nested[key] ??= viewOf(sub, this.bytes, f.offset);
        },
      });
    } else {
      const { of, count, offset } = f;
      Object.defineProperty(proto, key, {
        enumerable: true,
        get(this: ViewState) {
          const base = this.bytes.byteOffset + offset;
          if (typeof of === "string") return new ARRAY_CTOR[of](this.bytes.buffer, base, count);
          return Array.from(
            { length: count },
            (_, i) => viewOf(of, this.bytes, offset + i * of.size),
          );
        },
      });
    }
  }
  prototypes.set(layout, proto);
  return proto;
}

/**
 * A view of `layout` at `offset` in `memory` (a fresh zeroed buffer when omitted). Writes go
 * straight to the memory, so an FFI call passed `view.bytes` sees them.
 */
export function viewOf<F extends Fields>(
  layout: StructLayout<F>,
  memory: Uint8Array<ArrayBuffer> = new Uint8Array(layout.size),
  offset = 0,
): StructView<F> {
  if (offset < 0 || offset + layout.size > memory.byteLength) {
    throw new RangeError(
      `${layout.name} (${layout.size} bytes) at offset ${offset} exceeds ${memory.byteLength} bytes`,
    );
  }
  const bytes = memory.subarray(offset, offset + layout.size);
  const view = Object.create(prototypeFor(layout)) as ViewState;
  Object.defineProperties(view, {
    bytes: { value: bytes },
    dv: { value: new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength) },
    nested: { value: {} },
  });
  return view as unknown as StructView<F>;
}

/** A struct ending in a flexible array member, with room for `count` elements. */
export interface FlexibleView<F extends Fields, E extends Fields> {
  readonly header: StructView<F>;
  readonly entries: readonly StructView<E>[];
  /** The whole allocation: header plus entries, to pass to the kernel. */
  readonly bytes: Uint8Array<ArrayBuffer>;
}

/**
 * Allocates `layout` followed by `count` elements of its flexible array member `member`
 * (declared with count 0), e.g. kvm_cpuid2 with its entries.
 */
export function flexibleView<F extends Fields, E extends Fields>(
  layout: StructLayout<F>,
  member: keyof F & string,
  entry: StructLayout<E>,
  count: number,
): FlexibleView<F, E> {
  const f = layout.fields[member];
  if (!f || !("of" in f) || f.of !== entry || f.count !== 0) {
    throw new TypeError(`${layout.name}.${member} is not a flexible array of ${entry.name}`);
  }
  if (!Number.isInteger(count) || count < 0) throw new RangeError(`bad element count ${count}`);
  const bytes = new Uint8Array(Math.max(layout.size, f.offset + count * entry.size));
  const entries = Array.from(
    { length: count },
    (_, i) => viewOf(entry, bytes, f.offset + i * entry.size),
  );
  return { header: viewOf(layout, bytes), entries, bytes };
}
