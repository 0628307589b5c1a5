/**
 * A tiny guest that proves whether its vCPU runs: it prints a banner over the UART, marks boot
 * complete on port 0x3ff, then prints one TICK character every TICK_CYCLES TSC cycles, forever.
 * The delay is timed by rdtsc, not by counting instructions: under kvm_pvm the guest kernel's
 * code is emulated at ~1M instructions/s, so a counting loop would say nothing about time.
 *
 * Every instruction encodes the same in 32-bit protected mode and 64-bit mode, so the flat image
 * runs wherever the loaders enter it (see tests/machine/tiny_guests.ts).
 */
import { CODE_BASE } from "../machine/tiny_guests.ts";

/** What the guest prints once per period. */
export const TICK = ".";
/** TSC cycles between two ticks (~10-30 ms on 2-6 GHz hosts). */
export const TICK_CYCLES = 0x0400_0000;

function u16(n: number): number[] {
  return [n & 0xff, (n >> 8) & 0xff];
}

function u32(n: number): number[] {
  return [n & 0xff, (n >> 8) & 0xff, (n >> 16) & 0xff, (n >>> 24) & 0xff];
}

/** The guest's code, to be loaded and entered at `base`. */
export function tickGuestCode(banner: string, base = CODE_BASE): Uint8Array {
  const code: number[] = [];
  // mov esi, <banner> (patched below); mov dx, 0x3f8
  code.push(0xbe, 0, 0, 0, 0, 0x66, 0xba, ...u16(0x3f8));
  // 1: lodsb; test al, al; jz 2f; out dx, al; jmp 1b; 2:
  code.push(0xac, 0x84, 0xc0, 0x74, 0x03, 0xee, 0xeb, 0xf8);
  // mov dx, 0x3ff; mov al, 2; out dx, al (boot complete)
  code.push(0x66, 0xba, ...u16(0x3ff), 0xb0, 0x02, 0xee);
  // tick: rdtsc; mov ebx, eax; mov ecx, edx (the period's start)
  code.push(0x0f, 0x31, 0x89, 0xc3, 0x89, 0xd1);
  // wait: rdtsc; sub eax, ebx; sbb edx, ecx (elapsed in edx:eax); jnz done (>= 2^32 cycles)
  code.push(0x0f, 0x31, 0x29, 0xd8, 0x19, 0xca, 0x75, 0x07);
  // cmp eax, TICK_CYCLES; jb wait
  code.push(0x3d, ...u32(TICK_CYCLES), 0x72, 0xf1);
  // done: mov dx, 0x3f8; mov al, TICK; out dx, al; jmp tick
  code.push(0x66, 0xba, ...u16(0x3f8), 0xb0, TICK.charCodeAt(0), 0xee, 0xeb, 0xe2);
  const text = [...new TextEncoder().encode(banner), 0];
  const image = new Uint8Array(code.length + text.length);
  image.set(code);
  image.set(text, code.length);
  new DataView(image.buffer).setUint32(1, base + code.length, true);
  return image;
}

/** Ticks printed after `banner` in `output` (0 when the banner has not appeared). */
export function ticksIn(output: string, banner: string): number {
  const at = output.indexOf(banner);
  if (at < 0) return 0;
  let n = 0;
  for (const ch of output.slice(at + banner.length)) if (ch === TICK) n++;
  return n;
}
