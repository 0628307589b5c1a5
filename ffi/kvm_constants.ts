/**
 * KVM ioctl numbers, exit reasons, capabilities and flags (x86_64, <linux/kvm.h>). Ioctl numbers
 * are built as the kernel's _IO/_IOR/_IOW/_IOWR macros build them, from the struct sizes in
 * kvm_structs.ts; tests/kvm/layout_test.ts checks every value here against the headers.
 */
import {
  KVM_CLOCK_DATA,
  KVM_COALESCED_MMIO_ZONE,
  KVM_CPUID2,
  KVM_ENABLE_CAP,
  KVM_FPU,
  KVM_IOEVENTFD,
  KVM_IRQ_LEVEL,
  KVM_IRQ_ROUTING,
  KVM_IRQFD,
  KVM_LAPIC_STATE,
  KVM_MP_STATE,
  KVM_MSI,
  KVM_MSR_LIST,
  KVM_MSRS,
  KVM_PIT_CONFIG,
  KVM_REGS,
  KVM_SREGS,
  KVM_USERSPACE_MEMORY_REGION,
  KVM_VCPU_EVENTS,
  KVM_XCRS,
} from "./kvm_structs.ts";

export const KVMIO = 0xae;
export const KVM_API_VERSION = 12;

const IOC_WRITE = 1;
const IOC_READ = 2;

// The ioctl encoding: direction in bits 30-31, argument size in 16-29, type 8-15, number 0-7.
// Multiplication instead of << keeps values above 2^31 positive.
function ioc(dir: number, nr: number, size: number): number {
  return dir * 2 ** 30 + size * 2 ** 16 + KVMIO * 2 ** 8 + nr;
}
const io = (nr: number) => ioc(0, nr, 0);
const ior = (nr: number, size: number) => ioc(IOC_READ, nr, size);
const iow = (nr: number, size: number) => ioc(IOC_WRITE, nr, size);
const iowr = (nr: number, size: number) => ioc(IOC_READ | IOC_WRITE, nr, size);

// Sizes of structs the VMM passes through without looking inside.
const SIZEOF_U64 = 8;
const SIZEOF_KVM_DIRTY_LOG = 16;
const SIZEOF_KVM_PIT_STATE2 = 112;
const SIZEOF_KVM_XSAVE = 4096;
const SIZEOF_KVM_DEBUGREGS = 128;
const SIZEOF_KVM_GUEST_DEBUG = 72;
const SIZEOF_KVM_INTERRUPT = 4;
const SIZEOF_KVM_SIGNAL_MASK = 4;

/** Ioctl numbers, keyed by the C name without "KVM_". */
export const KVM_IOCTL = {
  // on /dev/kvm
  GET_API_VERSION: io(0x00),
  CREATE_VM: io(0x01),
  GET_MSR_INDEX_LIST: iowr(0x02, KVM_MSR_LIST.size),
  CHECK_EXTENSION: io(0x03),
  GET_VCPU_MMAP_SIZE: io(0x04),
  GET_SUPPORTED_CPUID: iowr(0x05, KVM_CPUID2.size),
  GET_EMULATED_CPUID: iowr(0x09, KVM_CPUID2.size),
  GET_MSR_FEATURE_INDEX_LIST: iowr(0x0a, KVM_MSR_LIST.size),
  // on a VM fd
  CREATE_VCPU: io(0x41),
  GET_DIRTY_LOG: iow(0x42, SIZEOF_KVM_DIRTY_LOG),
  SET_USER_MEMORY_REGION: iow(0x46, KVM_USERSPACE_MEMORY_REGION.size),
  SET_TSS_ADDR: io(0x47),
  SET_IDENTITY_MAP_ADDR: iow(0x48, SIZEOF_U64),
  CREATE_IRQCHIP: io(0x60),
  IRQ_LINE: iow(0x61, KVM_IRQ_LEVEL.size),
  REGISTER_COALESCED_MMIO: iow(0x67, KVM_COALESCED_MMIO_ZONE.size),
  IRQ_LINE_STATUS: iowr(0x67, KVM_IRQ_LEVEL.size),
  UNREGISTER_COALESCED_MMIO: iow(0x68, KVM_COALESCED_MMIO_ZONE.size),
  SET_GSI_ROUTING: iow(0x6a, KVM_IRQ_ROUTING.size),
  IRQFD: iow(0x76, KVM_IRQFD.size),
  CREATE_PIT2: iow(0x77, KVM_PIT_CONFIG.size),
  SET_BOOT_CPU_ID: io(0x78),
  IOEVENTFD: iow(0x79, KVM_IOEVENTFD.size),
  SET_CLOCK: iow(0x7b, KVM_CLOCK_DATA.size),
  GET_CLOCK: ior(0x7c, KVM_CLOCK_DATA.size),
  GET_PIT2: ior(0x9f, SIZEOF_KVM_PIT_STATE2),
  SET_PIT2: iow(0xa0, SIZEOF_KVM_PIT_STATE2),
  ENABLE_CAP: iow(0xa3, KVM_ENABLE_CAP.size),
  SIGNAL_MSI: iow(0xa5, KVM_MSI.size),
  // on a vCPU fd
  RUN: io(0x80),
  GET_REGS: ior(0x81, KVM_REGS.size),
  SET_REGS: iow(0x82, KVM_REGS.size),
  GET_SREGS: ior(0x83, KVM_SREGS.size),
  SET_SREGS: iow(0x84, KVM_SREGS.size),
  INTERRUPT: iow(0x86, SIZEOF_KVM_INTERRUPT),
  GET_MSRS: iowr(0x88, KVM_MSRS.size),
  SET_MSRS: iow(0x89, KVM_MSRS.size),
  SET_SIGNAL_MASK: iow(0x8b, SIZEOF_KVM_SIGNAL_MASK),
  GET_FPU: ior(0x8c, KVM_FPU.size),
  SET_FPU: iow(0x8d, KVM_FPU.size),
  GET_LAPIC: ior(0x8e, KVM_LAPIC_STATE.size),
  SET_LAPIC: iow(0x8f, KVM_LAPIC_STATE.size),
  SET_CPUID2: iow(0x90, KVM_CPUID2.size),
  GET_CPUID2: iowr(0x91, KVM_CPUID2.size),
  GET_MP_STATE: ior(0x98, KVM_MP_STATE.size),
  SET_MP_STATE: iow(0x99, KVM_MP_STATE.size),
  NMI: io(0x9a),
  SET_GUEST_DEBUG: iow(0x9b, SIZEOF_KVM_GUEST_DEBUG),
  GET_VCPU_EVENTS: ior(0x9f, KVM_VCPU_EVENTS.size),
  SET_VCPU_EVENTS: iow(0xa0, KVM_VCPU_EVENTS.size),
  GET_DEBUGREGS: ior(0xa1, SIZEOF_KVM_DEBUGREGS),
  SET_DEBUGREGS: iow(0xa2, SIZEOF_KVM_DEBUGREGS),
  SET_TSC_KHZ: io(0xa2),
  GET_TSC_KHZ: io(0xa3),
  GET_XSAVE: ior(0xa4, SIZEOF_KVM_XSAVE),
  SET_XSAVE: iow(0xa5, SIZEOF_KVM_XSAVE),
  GET_XCRS: ior(0xa6, KVM_XCRS.size),
  SET_XCRS: iow(0xa7, KVM_XCRS.size),
  KVMCLOCK_CTRL: io(0xad),
} as const;

/** kvm_run.exit_reason values, keyed by the C name without "KVM_EXIT_". */
export const KVM_EXIT = {
  UNKNOWN: 0,
  EXCEPTION: 1,
  IO: 2,
  HYPERCALL: 3,
  DEBUG: 4,
  HLT: 5,
  MMIO: 6,
  IRQ_WINDOW_OPEN: 7,
  SHUTDOWN: 8,
  FAIL_ENTRY: 9,
  INTR: 10,
  SET_TPR: 11,
  TPR_ACCESS: 12,
  NMI: 16,
  INTERNAL_ERROR: 17,
  SYSTEM_EVENT: 24,
  IOAPIC_EOI: 26,
  X86_RDMSR: 29,
  X86_WRMSR: 30,
  DIRTY_RING_FULL: 31,
  NOTIFY: 37,
} as const;

/** Names of exit reasons, for messages ("KVM_EXIT_INTERNAL_ERROR"). */
export function exitReasonName(reason: number): string {
  for (const [k, v] of Object.entries(KVM_EXIT)) if (v === reason) return `KVM_EXIT_${k}`;
  return `exit reason ${reason}`;
}

/** Capabilities for KVM_CHECK_EXTENSION, keyed by the C name without "KVM_CAP_". */
export const KVM_CAP = {
  IRQCHIP: 0,
  HLT: 1,
  USER_MEMORY: 3,
  SET_TSS_ADDR: 4,
  EXT_CPUID: 7,
  NR_VCPUS: 9,
  NR_MEMSLOTS: 10,
  MP_STATE: 14,
  COALESCED_MMIO: 15,
  IRQ_ROUTING: 25,
  IRQFD: 32,
  PIT2: 33,
  PIT_STATE2: 35,
  IOEVENTFD: 36,
  SET_IDENTITY_MAP_ADDR: 37,
  ADJUST_CLOCK: 39,
  VCPU_EVENTS: 41,
  DEBUGREGS: 50,
  XSAVE: 55,
  XCRS: 56,
  TSC_CONTROL: 60,
  GET_TSC_KHZ: 61,
  MAX_VCPUS: 66,
  KVMCLOCK_CTRL: 76,
  SIGNAL_MSI: 77,
  READONLY_MEM: 81,
  IRQFD_RESAMPLE: 82,
  SPLIT_IRQCHIP: 121,
  IOEVENTFD_ANY_LENGTH: 122,
  MAX_VCPU_ID: 128,
  X2APIC_API: 129,
  IMMEDIATE_EXIT: 136,
  MSR_PLATFORM_INFO: 159,
  COALESCED_PIO: 162,
  MANUAL_DIRTY_LOG_PROTECT2: 168,
  X86_USER_SPACE_MSR: 188,
  X86_MSR_FILTER: 189,
  DIRTY_LOG_RING: 192,
} as const;

/** Flags and enumerations, keyed by their full C names. */
export const KVM_FLAGS = {
  KVM_EXIT_IO_IN: 0,
  KVM_EXIT_IO_OUT: 1,
  KVM_INTERNAL_ERROR_EMULATION: 1,
  KVM_INTERNAL_ERROR_SIMUL_EX: 2,
  KVM_INTERNAL_ERROR_DELIVERY_EV: 3,
  KVM_INTERNAL_ERROR_UNEXPECTED_EXIT_REASON: 4,
  KVM_SYSTEM_EVENT_SHUTDOWN: 1,
  KVM_SYSTEM_EVENT_RESET: 2,
  KVM_SYSTEM_EVENT_CRASH: 3,
  KVM_MEM_LOG_DIRTY_PAGES: 1,
  KVM_MEM_READONLY: 2,
  KVM_IRQFD_FLAG_DEASSIGN: 1,
  KVM_IRQFD_FLAG_RESAMPLE: 2,
  KVM_IOEVENTFD_FLAG_DATAMATCH: 1,
  KVM_IOEVENTFD_FLAG_PIO: 2,
  KVM_IOEVENTFD_FLAG_DEASSIGN: 4,
  KVM_IRQ_ROUTING_IRQCHIP: 1,
  KVM_IRQ_ROUTING_MSI: 2,
  KVM_IRQCHIP_PIC_MASTER: 0,
  KVM_IRQCHIP_PIC_SLAVE: 1,
  KVM_IRQCHIP_IOAPIC: 2,
  KVM_PIT_SPEAKER_DUMMY: 1,
  KVM_MP_STATE_RUNNABLE: 0,
  KVM_MP_STATE_UNINITIALIZED: 1,
  KVM_MP_STATE_INIT_RECEIVED: 2,
  KVM_MP_STATE_HALTED: 3,
  KVM_MP_STATE_SIPI_RECEIVED: 4,
  KVM_VCPUEVENT_VALID_NMI_PENDING: 1,
  KVM_VCPUEVENT_VALID_SIPI_VECTOR: 2,
  KVM_VCPUEVENT_VALID_SHADOW: 4,
  KVM_VCPUEVENT_VALID_SMM: 8,
  KVM_CPUID_FLAG_SIGNIFCANT_INDEX: 1,
  KVM_CLOCK_TSC_STABLE: 2,
  KVM_MSI_VALID_DEVID: 1,
  KVM_NR_INTERRUPTS: 256,
  KVM_MAX_XCRS: 16,
  KVM_GUESTDBG_ENABLE: 1,
  KVM_GUESTDBG_SINGLESTEP: 2,
} as const;
