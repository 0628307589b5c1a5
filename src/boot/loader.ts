/**
 * Direct kernel boot on x86_64: picks the image format, checks that kernel, initrd and command
 * line fit the guest before writing anything, then loads them with the boot structures and
 * returns how the boot vCPU enters the kernel.
 *
 * Formats: a bzImage entered at its 64-bit entry (code32_start + 0x200) with a zero page; a flat
 * vmlinux.bin loaded and entered at 16 MiB the same way (StratoVirt's convention); an ELF vmlinux
 * entered through its PVH note in 32-bit protected mode with an hvm_start_info.
 */
import type { GuestMemory } from "../memory/guest_memory.ts";
import {
  BOOT_FPU,
  BOOT_MSRS,
  type BootArea,
  type BootRegs,
  type BootSregs,
  type BootState,
  EFER_LMA,
  EFER_LME,
  type KernelFormat,
  RFLAGS_RESERVED,
  X86_CR0_ET,
  X86_CR0_PE,
  X86_CR0_PG,
  X86_CR4_PAE,
} from "./boot_state.ts";
import {
  bzImageFootprint,
  looksLikeBzImage,
  parseSetupHeader,
  SETUP_HEADER_OFFSET,
  STARTUP_64_OFFSET,
} from "./bzimage.ts";
import { looksLikeElf, parseElfKernel } from "./elf.ts";
import { BootError, hex } from "./error.ts";
import { type BootGdt, longModeGdt, pvhGdt, writeGdt } from "./gdt.ts";
import {
  BOOT_STACK_POINTER,
  CMDLINE_ADDR,
  EBDA_START,
  GDT_ADDR,
  HIMEM_START,
  IDT_ADDR,
  INITRD_ADDR_MAX,
  PML4_ADDR,
  PVH_MEMMAP_ADDR,
  PVH_MODLIST_ADDR,
  PVH_START_INFO_ADDR,
  VMLINUX_BIN_START,
  x86MemoryLayout,
  ZERO_PAGE_ADDR,
} from "./layout.ts";
import { buildMpTable } from "./mptable.ts";
import { writeIdentityPageTables } from "./page_tables.ts";
import { writePvhStartInfo } from "./pvh.ts";
import { writeZeroPage, ZERO_PAGE_SIZE } from "./zero_page.ts";

export interface BootConfig {
  /** The kernel image's bytes. */
  readonly kernel: Uint8Array;
  /** Shown in error messages (e.g. the -kernel path). */
  readonly kernelName?: string;
  readonly initrd?: Uint8Array | null;
  readonly initrdName?: string;
  readonly cmdline: string;
  /** vCPUs listed in the MP table (1..254). */
  readonly cpus: number;
  /** "auto" (default) picks the loader by content. */
  readonly format?: KernelFormat | "auto";
}

/** The space between the command line and the EBDA bounds it (NUL included). */
export const CMDLINE_MAX_BYTES = EBDA_START - CMDLINE_ADDR;
const PAGE = 0x1000;

/** ELF → PVH (the note must be there), "HdrS" at 0x202 → bzImage, anything else → vmlinux.bin. */
export function detectKernelFormat(image: Uint8Array, name = "kernel"): KernelFormat {
  if (image.length === 0) throw new BootError(`${name}: the kernel image is empty`);
  if (looksLikeElf(image)) {
    if (parseElfKernel(image, name).pvhEntry === null) {
      throw new BootError(
        `${name}: ELF kernel has no PVH entry note (XEN_ELFNOTE_PHYS32_ENTRY); ` +
          `build it with CONFIG_PVH or boot its bzImage`,
      );
    }
    return "pvh";
  }
  return looksLikeBzImage(image) ? "bzimage" : "vmlinux-bin";
}

interface KernelPlan {
  readonly start: number;
  readonly end: number;
  readonly entry: number;
  /** Exclusive upper bound the kernel puts on the initrd's end. */
  readonly initrdLimit: number;
  readonly load: (mem: GuestMemory) => void;
  readonly setupHeader?: Uint8Array;
}

function planBzImage(image: Uint8Array, name: string, cmdline: Uint8Array): KernelPlan {
  const hdr = parseSetupHeader(image, name);
  if (cmdline.length > hdr.cmdlineSize) {
    throw new BootError(
      `kernel command line is ${cmdline.length} bytes, ${name} accepts at most ${hdr.cmdlineSize}`,
    );
  }
  const body = image.subarray(hdr.setupSize);
  const { start, end } = bzImageFootprint(hdr);
  return {
    start,
    end,
    entry: hdr.code32Start + STARTUP_64_OFFSET,
    initrdLimit: hdr.initrdAddrMax + 1,
    load: (mem) => mem.write(hdr.code32Start, body),
    setupHeader: image.subarray(SETUP_HEADER_OFFSET, hdr.headerEnd),
  };
}

function planVmlinuxBin(image: Uint8Array): KernelPlan {
  return {
    start: VMLINUX_BIN_START,
    end: VMLINUX_BIN_START + image.length,
    entry: VMLINUX_BIN_START,
    initrdLimit: INITRD_ADDR_MAX,
    load: (mem) => mem.write(VMLINUX_BIN_START, image),
  };
}

function planPvh(image: Uint8Array, name: string, mem: GuestMemory): KernelPlan {
  const elf = parseElfKernel(image, name);
  if (elf.pvhEntry === null) {
    throw new BootError(`${name}: ELF kernel has no PVH entry note (XEN_ELFNOTE_PHYS32_ENTRY)`);
  }
  let start = Infinity;
  let end = 0;
  for (const s of elf.segments) {
    if (s.paddr < HIMEM_START || !mem.contains(s.paddr, s.memSize)) {
      throw new BootError(
        `${name}: segment ${s.index} at ${hex(s.paddr)}+${hex(s.memSize)} lies outside ` +
          `guest RAM above 1 MiB`,
      );
    }
    start = Math.min(start, s.paddr);
    end = Math.max(end, s.paddr + s.memSize);
  }
  const entry = elf.pvhEntry;
  if (!elf.segments.some((s) => entry >= s.paddr && entry < s.paddr + s.memSize)) {
    throw new BootError(`${name}: PVH entry ${hex(entry)} is not inside a loaded segment`);
  }
  return {
    start,
    end,
    entry,
    initrdLimit: INITRD_ADDR_MAX,
    load: (m) => {
      for (const s of elf.segments) {
        m.write(s.paddr, image.subarray(s.fileOffset, s.fileOffset + s.fileSize));
        m.fill(s.paddr + s.fileSize, s.memSize - s.fileSize);
      }
    },
  };
}

/**
 * Where the initrd goes: as high as allowed (below INITRD_ADDR_MAX, the kernel's own limit and
 * the end of low RAM), page aligned, above the kernel.
 */
export function placeInitrd(
  size: number,
  kernelEnd: number,
  limit: number,
  name = "initrd",
): number {
  if (size === 0) throw new BootError(`${name}: the initrd is empty`);
  const gpa = Math.floor((limit - size) / PAGE) * PAGE;
  if (gpa < kernelEnd) {
    throw new BootError(
      `${name}: ${size} bytes do not fit between the kernel's end ${hex(kernelEnd)} and ` +
        `${hex(limit)}: kernel + initrd need more RAM`,
    );
  }
  return gpa;
}

/** Loads the kernel, initrd, command line and boot structures; returns the boot vCPU state. */
export function loadLinux(mem: GuestMemory, config: BootConfig): BootState {
  const layout = x86MemoryLayout(mem.size);
  for (const r of layout.ramRegions) {
    if (!mem.contains(r.gpa, r.size)) {
      throw new BootError(
        `guest memory does not follow the x86 layout for ${hex(mem.size)} bytes: ` +
          `no RAM at ${hex(r.gpa)}+${hex(r.size)}`,
      );
    }
  }
  const lowRamEnd = layout.ramRegions[0].gpa + layout.ramRegions[0].size;
  const name = config.kernelName ?? "kernel";
  const format = !config.format || config.format === "auto"
    ? detectKernelFormat(config.kernel, name)
    : config.format;
  if (config.kernel.length === 0) throw new BootError(`${name}: the kernel image is empty`);

  const cmdline = new TextEncoder().encode(config.cmdline);
  if (cmdline.includes(0)) throw new BootError("kernel command line contains a NUL byte");
  if (cmdline.length + 1 > CMDLINE_MAX_BYTES) {
    throw new BootError(
      `kernel command line is ${cmdline.length} bytes, at most ${CMDLINE_MAX_BYTES - 1} fit`,
    );
  }

  const plan = format === "bzimage"
    ? planBzImage(config.kernel, name, cmdline)
    : format === "pvh"
    ? planPvh(config.kernel, name, mem)
    : planVmlinuxBin(config.kernel);
  if (plan.end > lowRamEnd) {
    throw new BootError(
      `${name}: the kernel needs RAM up to ${hex(plan.end)}, the guest has ${hex(lowRamEnd)} ` +
        `below the MMIO hole`,
    );
  }

  let initrd: { gpa: number; size: number } | null = null;
  if (config.initrd) {
    const limit = Math.min(INITRD_ADDR_MAX, lowRamEnd, plan.initrdLimit);
    const gpa = placeInitrd(config.initrd.length, plan.end, limit, config.initrdName ?? "initrd");
    initrd = { gpa, size: config.initrd.length };
  }
  const mptable = buildMpTable(config.cpus, { gpa: EBDA_START });

  // Everything is known to fit: write guest memory.
  const areas: BootArea[] = [];
  plan.load(mem);
  areas.push({ name: "kernel", gpa: plan.start, size: plan.end - plan.start });
  if (initrd && config.initrd) {
    mem.write(initrd.gpa, config.initrd);
    areas.push({ name: "initrd", ...initrd });
  }
  mem.write(CMDLINE_ADDR, cmdline);
  mem.writeU8(CMDLINE_ADDR + cmdline.length, 0);
  areas.push({ name: "cmdline", gpa: CMDLINE_ADDR, size: cmdline.length + 1 });
  mem.write(EBDA_START, mptable);
  areas.push({ name: "mptable", gpa: EBDA_START, size: mptable.length });

  const long = format !== "pvh";
  const gdt = long ? longModeGdt() : pvhGdt();
  writeGdt(mem, gdt);
  areas.push({ name: "gdt", gpa: GDT_ADDR, size: gdt.gdt.limit + 1 });
  areas.push({ name: "idt", gpa: IDT_ADDR, size: gdt.idt.limit + 1 });

  let regs: BootRegs;
  let sregs: BootSregs;
  if (long) {
    writeZeroPage(mem, ZERO_PAGE_ADDR, {
      setupHeader: plan.setupHeader,
      cmdlinePtr: CMDLINE_ADDR,
      cmdlineLength: cmdline.length,
      initrd,
      e820: layout.e820,
    });
    areas.push({ name: "zero-page", gpa: ZERO_PAGE_ADDR, size: ZERO_PAGE_SIZE });
    const cr3 = writeIdentityPageTables(mem);
    areas.push({ name: "page-tables", gpa: PML4_ADDR, size: 3 * PAGE });
    regs = {
      rip: plan.entry,
      rsp: BOOT_STACK_POINTER,
      rbp: BOOT_STACK_POINTER,
      rsi: ZERO_PAGE_ADDR,
      rbx: 0,
      rflags: RFLAGS_RESERVED,
    };
    sregs = {
      ...segments(gdt),
      tr: null,
      cr0: (X86_CR0_PE | X86_CR0_ET | X86_CR0_PG) >>> 0,
      cr3,
      cr4: X86_CR4_PAE,
      efer: EFER_LME | EFER_LMA,
    };
  } else {
    areas.push(...writePvhStartInfo(mem, {
      startInfoAddr: PVH_START_INFO_ADDR,
      modlistAddr: PVH_MODLIST_ADDR,
      memmapAddr: PVH_MEMMAP_ADDR,
      cmdlinePtr: CMDLINE_ADDR,
      initrd,
      memmap: layout.e820,
    }));
    regs = {
      rip: plan.entry,
      rsp: BOOT_STACK_POINTER,
      rbp: BOOT_STACK_POINTER,
      rsi: 0,
      rbx: PVH_START_INFO_ADDR,
      rflags: RFLAGS_RESERVED,
    };
    sregs = {
      ...segments(gdt),
      tr: gdt.tss,
      cr0: X86_CR0_PE | X86_CR0_ET,
      cr3: 0,
      cr4: 0,
      efer: 0,
    };
  }

  return {
    format,
    mode: long ? "long64" : "protected32",
    regs,
    sregs,
    fpu: BOOT_FPU,
    msrs: BOOT_MSRS,
    kernel: { start: plan.start, end: plan.end, entry: plan.entry },
    initrd,
    cmdline: { gpa: CMDLINE_ADDR, size: cmdline.length + 1 },
    zeroPage: long ? ZERO_PAGE_ADDR : null,
    pvhStartInfo: long ? null : PVH_START_INFO_ADDR,
    mptable: { gpa: EBDA_START, size: mptable.length },
    e820: layout.e820,
    areas,
  };
}

function segments(gdt: BootGdt) {
  const d = gdt.data;
  return { cs: gdt.code, ds: d, es: d, fs: d, gs: d, ss: d, gdt: gdt.gdt, idt: gdt.idt };
}
