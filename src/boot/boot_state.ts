/**
 * How to enter the guest once a kernel is loaded: the register, segment, control-register, FPU
 * and MSR values the vCPU layer applies with KVM_SET_REGS / SREGS / FPU / MSRS on the boot vCPU,
 * plus what the loader put where. All numbers are plain (they fit in 2^53).
 */
import type { E820Entry } from "./layout.ts";

export type KernelFormat = "bzimage" | "pvh" | "vmlinux-bin";

/** A segment register as struct kvm_segment holds it; `limit` is in bytes (already scaled by g). */
export interface KvmSegment {
  readonly base: number;
  readonly limit: number;
  readonly selector: number;
  readonly type: number;
  readonly present: number;
  readonly dpl: number;
  readonly db: number;
  readonly s: number;
  readonly l: number;
  readonly g: number;
  readonly avl: number;
  readonly unusable: number;
}

export interface DescriptorTable {
  readonly base: number;
  readonly limit: number;
}

export interface BootRegs {
  readonly rip: number;
  readonly rsp: number;
  readonly rbp: number;
  /** Linux 64-bit boot protocol: the zero page. */
  readonly rsi: number;
  /** PVH: the hvm_start_info. */
  readonly rbx: number;
  readonly rflags: number;
}

export interface BootSregs {
  readonly cs: KvmSegment;
  readonly ds: KvmSegment;
  readonly es: KvmSegment;
  readonly fs: KvmSegment;
  readonly gs: KvmSegment;
  readonly ss: KvmSegment;
  /** Task register; null keeps KVM's reset value (a busy TSS at base 0), as StratoVirt does. */
  readonly tr: KvmSegment | null;
  readonly gdt: DescriptorTable;
  readonly idt: DescriptorTable;
  /** Complete values to set (not bits to OR into the reset state). */
  readonly cr0: number;
  readonly cr3: number;
  readonly cr4: number;
  readonly efer: number;
}

export interface BootMsr {
  readonly index: number;
  readonly value: number;
}

/** A guest memory range the loader wrote. */
export interface BootArea {
  readonly name: string;
  readonly gpa: number;
  readonly size: number;
}

export interface BootState {
  readonly format: KernelFormat;
  /** "long64": paging + PAE + long mode; "protected32": PVH's flat 32-bit mode, paging off. */
  readonly mode: "long64" | "protected32";
  readonly regs: BootRegs;
  readonly sregs: BootSregs;
  readonly fpu: { readonly fcw: number; readonly mxcsr: number };
  readonly msrs: readonly BootMsr[];
  /** [start, end) of the loaded kernel (for a bzImage: what it will occupy once decompressed). */
  readonly kernel: { readonly start: number; readonly end: number; readonly entry: number };
  readonly initrd: { readonly gpa: number; readonly size: number } | null;
  readonly cmdline: { readonly gpa: number; readonly size: number };
  /** boot_params address (bzImage, vmlinux.bin), else null. */
  readonly zeroPage: number | null;
  /** hvm_start_info address (PVH), else null. */
  readonly pvhStartInfo: number | null;
  readonly mptable: { readonly gpa: number; readonly size: number };
  readonly e820: readonly E820Entry[];
  readonly areas: readonly BootArea[];
}

export const X86_CR0_PE = 0x1;
export const X86_CR0_ET = 0x10;
export const X86_CR0_PG = 0x8000_0000;
export const X86_CR4_PAE = 0x20;
export const EFER_LME = 0x100;
export const EFER_LMA = 0x400;
/** Bit 1 of RFLAGS is reserved and always set; interrupts off. */
export const RFLAGS_RESERVED = 0x2;

/** x87 control word and MXCSR at their power-on defaults (StratoVirt sets these). */
export const BOOT_FPU = Object.freeze({ fcw: 0x37f, mxcsr: 0x1f80 });

export const MSR_IA32_TSC = 0x10;
export const MSR_IA32_SYSENTER_CS = 0x174;
export const MSR_IA32_SYSENTER_ESP = 0x175;
export const MSR_IA32_SYSENTER_EIP = 0x176;
export const MSR_IA32_MISC_ENABLE = 0x1a0;
export const MSR_STAR = 0xc000_0081;
export const MSR_LSTAR = 0xc000_0082;
export const MSR_CSTAR = 0xc000_0083;
export const MSR_SYSCALL_MASK = 0xc000_0084;
export const MSR_KERNEL_GS_BASE = 0xc000_0102;
const MISC_ENABLE_FAST_STRING = 0x1;

/** The MSRs StratoVirt clears on the boot vCPU; fast strings on. */
export const BOOT_MSRS: readonly BootMsr[] = Object.freeze([
  { index: MSR_IA32_SYSENTER_CS, value: 0 },
  { index: MSR_IA32_SYSENTER_ESP, value: 0 },
  { index: MSR_IA32_SYSENTER_EIP, value: 0 },
  { index: MSR_STAR, value: 0 },
  { index: MSR_CSTAR, value: 0 },
  { index: MSR_KERNEL_GS_BASE, value: 0 },
  { index: MSR_SYSCALL_MASK, value: 0 },
  { index: MSR_LSTAR, value: 0 },
  { index: MSR_IA32_TSC, value: 0 },
  { index: MSR_IA32_MISC_ENABLE, value: MISC_ENABLE_FAST_STRING },
]);
