/**
 * Tiny guests for the machine tests, as machine code built here: they run unchanged in the 64-bit
 * mode the bzImage and vmlinux.bin loaders enter and in PVH's flat 32-bit protected mode (every
 * instruction used encodes the same in both, and addresses are absolute and below 4 GiB), wrapped
 * in each kernel image format the loaders accept.
 */
import { fakeBzImage, fakeElf } from "../../src/boot/test_images.ts";

/** Where the flat and PVH images put their code (the loaders' 16 MiB). */
export const CODE_BASE = 0x100_0000;
/** The bzImage's body goes to code32_start (1 MiB) and is entered 0x200 bytes in. */
const BZIMAGE_BODY = 0x10_0000;
const STARTUP_64 = 0x200;

function u16(n: number): number[] {
  return [n & 0xff, (n >> 8) & 0xff];
}

function u32(n: number): number[] {
  return [n & 0xff, (n >> 8) & 0xff, (n >> 16) & 0xff, (n >>> 24) & 0xff];
}

/** What a guest does after printing its message. */
export type Ending = "reset" | "internal-error" | "triple-fault" | "count" | "echo";

/** Where the "count" guest keeps its counter (a u32 in guest RAM). */
export const COUNTER_GPA = CODE_BASE + 0x1000;

/**
 * Code at `base`: prints `message` on the UART (port 0x3f8), writes "boot complete" (2) to port
 * 0x3ff, then ends as asked.
 */
export function guestCode(base: number, message: string, ending: Ending): Uint8Array {
  const head: number[] = [];
  const text = [...new TextEncoder().encode(message), 0];
  // mov esi, <message> (patched below); mov dx, 0x3f8
  head.push(0xbe, 0, 0, 0, 0, 0x66, 0xba, ...u16(0x3f8));
  // loop: lodsb; test al, al; jz +3; out dx, al; jmp loop
  head.push(0xac, 0x84, 0xc0, 0x74, 0x03, 0xee, 0xeb, 0xf8);
  // mov dx, 0x3ff; mov al, 2; out dx, al
  head.push(0x66, 0xba, ...u16(0x3ff), 0xb0, 0x02, 0xee);
  switch (ending) {
    case "reset":
      head.push(0xb0, 0xfe, 0xe6, 0x64); // mov al, 0xfe; out 0x64, al: pulse the reset line
      break;
    case "internal-error":
      head.push(0xf3, 0x0f, 0xb8, 0xc0); // popcnt eax, eax: kvm_pvm's emulator cannot run it
      break;
    case "triple-fault":
      head.push(0x0f, 0x0b); // ud2 with an empty IDT: #UD -> #DF -> triple fault
      break;
    case "count":
      // mov edi, COUNTER_GPA; 1: inc dword [rdi]; jmp 1b — runs forever without an exit
      head.push(0xbf, ...u32(COUNTER_GPA), 0xff, 0x07, 0xeb, 0xfc);
      break;
    case "echo":
      // 1: mov dx, 0x3fd; 2: in al, dx; test al, 1; jz 2b (wait for data ready)
      head.push(0x66, 0xba, ...u16(0x3fd), 0xec, 0xa8, 0x01, 0x74, 0xfb);
      // mov dx, 0x3f8; in al, dx; out dx, al; cmp al, 'q'; jne 1b; then reset
      head.push(0x66, 0xba, ...u16(0x3f8), 0xec, 0xee, 0x3c, 0x71, 0x75, 0xed);
      head.push(0xb0, 0xfe, 0xe6, 0x64);
      break;
  }
  head.push(0xf4, 0xeb, 0xfd); // hlt; jmp back to hlt
  const code = new Uint8Array(head.length + text.length);
  code.set(head);
  code.set(text, head.length);
  new DataView(code.buffer).setUint32(1, base + head.length, true);
  return code;
}

export type ImageFormat = "bzimage" | "pvh" | "vmlinux-bin";

/**
 * An ELF kernel whose PVH entry point runs `code` at CODE_BASE, in flat 32-bit protected mode
 * (e.g. an assembled guest from tests/guests/).
 */
export function pvhKernel(code: Uint8Array): Uint8Array {
  return fakeElf({ segments: [{ paddr: CODE_BASE, data: code }], pvhEntry: CODE_BASE });
}

/** A kernel image of `format` whose entry point runs `guestCode(…, message, ending)`. */
export function tinyKernel(format: ImageFormat, message: string, ending: Ending): Uint8Array {
  switch (format) {
    case "vmlinux-bin":
      return guestCode(CODE_BASE, message, ending);
    case "pvh":
      return pvhKernel(guestCode(CODE_BASE, message, ending));
    case "bzimage": {
      const code = guestCode(BZIMAGE_BODY + STARTUP_64, message, ending);
      const bodySize = Math.ceil((STARTUP_64 + code.length) / 16) * 16;
      const image = fakeBzImage({ bodySize, code32Start: BZIMAGE_BODY });
      const setupSize = image.length - bodySize;
      image.fill(0, setupSize, setupSize + STARTUP_64);
      image.set(code, setupSize + STARTUP_64);
      return image;
    }
  }
}
