/**
 * Layouts of the KVM structures the VMM uses (x86_64, <linux/kvm.h>). Every offset and size here
 * is held against the kernel headers by tests/kvm/layout_test.ts through the helper's table.
 * Anonymous unions are flattened as in C: kvm_run.io, kvm_run.mmio... all start at offset 32.
 */
import { defineStruct } from "./struct.ts";

export const KVM_RUN_IO = defineStruct("kvm_run.io", 16, {
  direction: { offset: 0, type: "u8" },
  size: { offset: 1, type: "u8" },
  port: { offset: 2, type: "u16" },
  count: { offset: 4, type: "u32" },
  /** Where the data is, relative to the start of kvm_run. */
  data_offset: { offset: 8, type: "u64" },
});

export const KVM_RUN_MMIO = defineStruct("kvm_run.mmio", 24, {
  phys_addr: { offset: 0, type: "u64" },
  data: { offset: 8, count: 8, of: "u8" },
  len: { offset: 16, type: "u32" },
  is_write: { offset: 20, type: "u8" },
});

export const KVM_RUN_FAIL_ENTRY = defineStruct("kvm_run.fail_entry", 16, {
  hardware_entry_failure_reason: { offset: 0, type: "u64" },
  cpu: { offset: 8, type: "u32" },
});

export const KVM_RUN_EX = defineStruct("kvm_run.ex", 8, {
  exception: { offset: 0, type: "u32" },
  error_code: { offset: 4, type: "u32" },
});

export const KVM_RUN_HW = defineStruct("kvm_run.hw", 8, {
  hardware_exit_reason: { offset: 0, type: "u64" },
});

export const KVM_RUN_INTERNAL = defineStruct("kvm_run.internal", 136, {
  suberror: { offset: 0, type: "u32" },
  ndata: { offset: 4, type: "u32" },
  data: { offset: 8, count: 16, of: "u64" },
});

export const KVM_RUN_SYSTEM_EVENT = defineStruct("kvm_run.system_event", 136, {
  type: { offset: 0, type: "u32" },
  ndata: { offset: 4, type: "u32" },
  /** Shares its place with data[0]. */
  flags: { offset: 8, type: "u64" },
  data: { offset: 8, count: 16, of: "u64" },
});

/** The vCPU's shared run area, mmap'ed from the vCPU fd (KVM_GET_VCPU_MMAP_SIZE bytes). */
export const KVM_RUN = defineStruct("kvm_run", 2352, {
  request_interrupt_window: { offset: 0, type: "u8" },
  immediate_exit: { offset: 1, type: "u8" },
  exit_reason: { offset: 8, type: "u32" },
  ready_for_interrupt_injection: { offset: 12, type: "u8" },
  if_flag: { offset: 13, type: "u8" },
  flags: { offset: 14, type: "u16" },
  cr8: { offset: 16, type: "u64" },
  apic_base: { offset: 24, type: "u64" },
  hw: { offset: 32, struct: KVM_RUN_HW },
  fail_entry: { offset: 32, struct: KVM_RUN_FAIL_ENTRY },
  ex: { offset: 32, struct: KVM_RUN_EX },
  io: { offset: 32, struct: KVM_RUN_IO },
  mmio: { offset: 32, struct: KVM_RUN_MMIO },
  internal: { offset: 32, struct: KVM_RUN_INTERNAL },
  system_event: { offset: 32, struct: KVM_RUN_SYSTEM_EVENT },
  kvm_valid_regs: { offset: 288, type: "u64" },
  kvm_dirty_regs: { offset: 296, type: "u64" },
});

export const KVM_REGS = defineStruct("kvm_regs", 144, {
  rax: { offset: 0, type: "u64" },
  rbx: { offset: 8, type: "u64" },
  rcx: { offset: 16, type: "u64" },
  rdx: { offset: 24, type: "u64" },
  rsi: { offset: 32, type: "u64" },
  rdi: { offset: 40, type: "u64" },
  rsp: { offset: 48, type: "u64" },
  rbp: { offset: 56, type: "u64" },
  r8: { offset: 64, type: "u64" },
  r9: { offset: 72, type: "u64" },
  r10: { offset: 80, type: "u64" },
  r11: { offset: 88, type: "u64" },
  r12: { offset: 96, type: "u64" },
  r13: { offset: 104, type: "u64" },
  r14: { offset: 112, type: "u64" },
  r15: { offset: 120, type: "u64" },
  rip: { offset: 128, type: "u64" },
  rflags: { offset: 136, type: "u64" },
});

export const KVM_SEGMENT = defineStruct("kvm_segment", 24, {
  base: { offset: 0, type: "u64" },
  limit: { offset: 8, type: "u32" },
  selector: { offset: 12, type: "u16" },
  type: { offset: 14, type: "u8" },
  present: { offset: 15, type: "u8" },
  dpl: { offset: 16, type: "u8" },
  db: { offset: 17, type: "u8" },
  s: { offset: 18, type: "u8" },
  l: { offset: 19, type: "u8" },
  g: { offset: 20, type: "u8" },
  avl: { offset: 21, type: "u8" },
  unusable: { offset: 22, type: "u8" },
  padding: { offset: 23, type: "u8" },
});

export const KVM_DTABLE = defineStruct("kvm_dtable", 16, {
  base: { offset: 0, type: "u64" },
  limit: { offset: 8, type: "u16" },
  padding: { offset: 10, count: 3, of: "u16" },
});

export const KVM_SREGS = defineStruct("kvm_sregs", 312, {
  cs: { offset: 0, struct: KVM_SEGMENT },
  ds: { offset: 24, struct: KVM_SEGMENT },
  es: { offset: 48, struct: KVM_SEGMENT },
  fs: { offset: 72, struct: KVM_SEGMENT },
  gs: { offset: 96, struct: KVM_SEGMENT },
  ss: { offset: 120, struct: KVM_SEGMENT },
  tr: { offset: 144, struct: KVM_SEGMENT },
  ldt: { offset: 168, struct: KVM_SEGMENT },
  gdt: { offset: 192, struct: KVM_DTABLE },
  idt: { offset: 208, struct: KVM_DTABLE },
  cr0: { offset: 224, type: "u64" },
  cr2: { offset: 232, type: "u64" },
  cr3: { offset: 240, type: "u64" },
  cr4: { offset: 248, type: "u64" },
  cr8: { offset: 256, type: "u64" },
  efer: { offset: 264, type: "u64" },
  apic_base: { offset: 272, type: "u64" },
  interrupt_bitmap: { offset: 280, count: 4, of: "u64" },
});

export const KVM_USERSPACE_MEMORY_REGION = defineStruct("kvm_userspace_memory_region", 32, {
  slot: { offset: 0, type: "u32" },
  flags: { offset: 4, type: "u32" },
  guest_phys_addr: { offset: 8, type: "u64" },
  memory_size: { offset: 16, type: "u64" },
  userspace_addr: { offset: 24, type: "u64" },
});

export const KVM_CPUID_ENTRY2 = defineStruct("kvm_cpuid_entry2", 40, {
  function: { offset: 0, type: "u32" },
  index: { offset: 4, type: "u32" },
  flags: { offset: 8, type: "u32" },
  eax: { offset: 12, type: "u32" },
  ebx: { offset: 16, type: "u32" },
  ecx: { offset: 20, type: "u32" },
  edx: { offset: 24, type: "u32" },
  padding: { offset: 28, count: 3, of: "u32" },
});

/** Header of a CPUID table; allocate with flexibleView(KVM_CPUID2, "entries", KVM_CPUID_ENTRY2, n). */
export const KVM_CPUID2 = defineStruct("kvm_cpuid2", 8, {
  nent: { offset: 0, type: "u32" },
  padding: { offset: 4, type: "u32" },
  entries: { offset: 8, count: 0, of: KVM_CPUID_ENTRY2 },
});

export const KVM_MSR_ENTRY = defineStruct("kvm_msr_entry", 16, {
  index: { offset: 0, type: "u32" },
  reserved: { offset: 4, type: "u32" },
  data: { offset: 8, type: "u64" },
});

export const KVM_MSRS = defineStruct("kvm_msrs", 8, {
  nmsrs: { offset: 0, type: "u32" },
  pad: { offset: 4, type: "u32" },
  entries: { offset: 8, count: 0, of: KVM_MSR_ENTRY },
});

/** KVM_GET_MSR_INDEX_LIST: nmsrs then `nmsrs` u32 indices. */
export const KVM_MSR_LIST = defineStruct("kvm_msr_list", 4, {
  nmsrs: { offset: 0, type: "u32" },
  indices: { offset: 4, count: 0, of: "u32" },
});

export const KVM_IRQFD = defineStruct("kvm_irqfd", 32, {
  fd: { offset: 0, type: "u32" },
  gsi: { offset: 4, type: "u32" },
  flags: { offset: 8, type: "u32" },
  resamplefd: { offset: 12, type: "u32" },
  pad: { offset: 16, count: 16, of: "u8" },
});

export const KVM_IOEVENTFD = defineStruct("kvm_ioeventfd", 64, {
  datamatch: { offset: 0, type: "u64" },
  addr: { offset: 8, type: "u64" },
  len: { offset: 16, type: "u32" },
  fd: { offset: 20, type: "i32" },
  flags: { offset: 24, type: "u32" },
  pad: { offset: 28, count: 36, of: "u8" },
});

export const KVM_LAPIC_STATE = defineStruct("kvm_lapic_state", 1024, {
  regs: { offset: 0, count: 1024, of: "u8" },
});

export const KVM_FPU = defineStruct("kvm_fpu", 416, {
  /** 8 x87 registers of 16 bytes. */
  fpr: { offset: 0, count: 128, of: "u8" },
  fcw: { offset: 128, type: "u16" },
  fsw: { offset: 130, type: "u16" },
  ftwx: { offset: 132, type: "u8" },
  pad1: { offset: 133, type: "u8" },
  last_opcode: { offset: 134, type: "u16" },
  last_ip: { offset: 136, type: "u64" },
  last_dp: { offset: 144, type: "u64" },
  /** 16 XMM registers of 16 bytes. */
  xmm: { offset: 152, count: 256, of: "u8" },
  mxcsr: { offset: 408, type: "u32" },
  pad2: { offset: 412, type: "u32" },
});

export const KVM_PIT_CONFIG = defineStruct("kvm_pit_config", 64, {
  flags: { offset: 0, type: "u32" },
  pad: { offset: 4, count: 15, of: "u32" },
});

export const KVM_IRQ_LEVEL = defineStruct("kvm_irq_level", 8, {
  irq: { offset: 0, type: "u32" },
  /** KVM_IRQ_LINE_STATUS's answer, in the place of irq. */
  status: { offset: 0, type: "i32" },
  level: { offset: 4, type: "u32" },
});

export const KVM_IRQ_ROUTING_IRQCHIP = defineStruct("kvm_irq_routing_irqchip", 8, {
  irqchip: { offset: 0, type: "u32" },
  pin: { offset: 4, type: "u32" },
});

export const KVM_IRQ_ROUTING_MSI = defineStruct("kvm_irq_routing_msi", 16, {
  address_lo: { offset: 0, type: "u32" },
  address_hi: { offset: 4, type: "u32" },
  data: { offset: 8, type: "u32" },
  devid: { offset: 12, type: "u32" },
});

export const KVM_IRQ_ROUTING_ENTRY_U = defineStruct("kvm_irq_routing_entry.u", 32, {
  irqchip: { offset: 0, struct: KVM_IRQ_ROUTING_IRQCHIP },
  msi: { offset: 0, struct: KVM_IRQ_ROUTING_MSI },
});

export const KVM_IRQ_ROUTING_ENTRY = defineStruct("kvm_irq_routing_entry", 48, {
  gsi: { offset: 0, type: "u32" },
  type: { offset: 4, type: "u32" },
  flags: { offset: 8, type: "u32" },
  pad: { offset: 12, type: "u32" },
  u: { offset: 16, struct: KVM_IRQ_ROUTING_ENTRY_U },
});

export const KVM_IRQ_ROUTING = defineStruct("kvm_irq_routing", 8, {
  nr: { offset: 0, type: "u32" },
  flags: { offset: 4, type: "u32" },
  entries: { offset: 8, count: 0, of: KVM_IRQ_ROUTING_ENTRY },
});

export const KVM_MSI = defineStruct("kvm_msi", 32, {
  address_lo: { offset: 0, type: "u32" },
  address_hi: { offset: 4, type: "u32" },
  data: { offset: 8, type: "u32" },
  flags: { offset: 12, type: "u32" },
  devid: { offset: 16, type: "u32" },
  pad: { offset: 20, count: 12, of: "u8" },
});

export const KVM_MP_STATE = defineStruct("kvm_mp_state", 4, {
  mp_state: { offset: 0, type: "u32" },
});

export const KVM_VCPU_EVENTS_EXCEPTION = defineStruct("kvm_vcpu_events.exception", 8, {
  injected: { offset: 0, type: "u8" },
  nr: { offset: 1, type: "u8" },
  has_error_code: { offset: 2, type: "u8" },
  pending: { offset: 3, type: "u8" },
  error_code: { offset: 4, type: "u32" },
});

export const KVM_VCPU_EVENTS_INTERRUPT = defineStruct("kvm_vcpu_events.interrupt", 4, {
  injected: { offset: 0, type: "u8" },
  nr: { offset: 1, type: "u8" },
  soft: { offset: 2, type: "u8" },
  shadow: { offset: 3, type: "u8" },
});

export const KVM_VCPU_EVENTS_NMI = defineStruct("kvm_vcpu_events.nmi", 4, {
  injected: { offset: 0, type: "u8" },
  pending: { offset: 1, type: "u8" },
  masked: { offset: 2, type: "u8" },
  pad: { offset: 3, type: "u8" },
});

export const KVM_VCPU_EVENTS_SMI = defineStruct("kvm_vcpu_events.smi", 4, {
  smm: { offset: 0, type: "u8" },
  pending: { offset: 1, type: "u8" },
  smm_inside_nmi: { offset: 2, type: "u8" },
  latched_init: { offset: 3, type: "u8" },
});

export const KVM_VCPU_EVENTS_TRIPLE_FAULT = defineStruct("kvm_vcpu_events.triple_fault", 1, {
  pending: { offset: 0, type: "u8" },
});

export const KVM_VCPU_EVENTS = defineStruct("kvm_vcpu_events", 64, {
  exception: { offset: 0, struct: KVM_VCPU_EVENTS_EXCEPTION },
  interrupt: { offset: 8, struct: KVM_VCPU_EVENTS_INTERRUPT },
  nmi: { offset: 12, struct: KVM_VCPU_EVENTS_NMI },
  sipi_vector: { offset: 16, type: "u32" },
  flags: { offset: 20, type: "u32" },
  smi: { offset: 24, struct: KVM_VCPU_EVENTS_SMI },
  triple_fault: { offset: 28, struct: KVM_VCPU_EVENTS_TRIPLE_FAULT },
  exception_has_payload: { offset: 55, type: "u8" },
  exception_payload: { offset: 56, type: "u64" },
});

export const KVM_XCR = defineStruct("kvm_xcr", 16, {
  xcr: { offset: 0, type: "u32" },
  reserved: { offset: 4, type: "u32" },
  value: { offset: 8, type: "u64" },
});

export const KVM_XCRS = defineStruct("kvm_xcrs", 392, {
  nr_xcrs: { offset: 0, type: "u32" },
  flags: { offset: 4, type: "u32" },
  xcrs: { offset: 8, count: 16, of: KVM_XCR },
  padding: { offset: 264, count: 16, of: "u64" },
});

export const KVM_CLOCK_DATA = defineStruct("kvm_clock_data", 48, {
  clock: { offset: 0, type: "u64" },
  flags: { offset: 8, type: "u32" },
  pad0: { offset: 12, type: "u32" },
  realtime: { offset: 16, type: "u64" },
  host_tsc: { offset: 24, type: "u64" },
  pad: { offset: 32, count: 4, of: "u32" },
});

export const KVM_ENABLE_CAP = defineStruct("kvm_enable_cap", 104, {
  cap: { offset: 0, type: "u32" },
  flags: { offset: 4, type: "u32" },
  args: { offset: 8, count: 4, of: "u64" },
  pad: { offset: 40, count: 64, of: "u8" },
});

export const KVM_COALESCED_MMIO_ZONE = defineStruct("kvm_coalesced_mmio_zone", 16, {
  addr: { offset: 0, type: "u64" },
  size: { offset: 8, type: "u32" },
  /** 1 for a port I/O zone (shares its place with pad). */
  pio: { offset: 12, type: "u32" },
});

/** struct epoll_event, packed on x86_64 (12 bytes): sv_epoll_wait fills arrays of these. */
export const EPOLL_EVENT = defineStruct("epoll_event", 12, {
  events: { offset: 0, type: "u32" },
  data: { offset: 4, type: "u64" },
});

/** Every layout above, for the layout test. */
export const ALL_LAYOUTS = [
  KVM_RUN,
  KVM_REGS,
  KVM_SEGMENT,
  KVM_DTABLE,
  KVM_SREGS,
  KVM_USERSPACE_MEMORY_REGION,
  KVM_CPUID_ENTRY2,
  KVM_CPUID2,
  KVM_MSR_ENTRY,
  KVM_MSRS,
  KVM_MSR_LIST,
  KVM_IRQFD,
  KVM_IOEVENTFD,
  KVM_LAPIC_STATE,
  KVM_FPU,
  KVM_PIT_CONFIG,
  KVM_IRQ_LEVEL,
  KVM_IRQ_ROUTING_IRQCHIP,
  KVM_IRQ_ROUTING_MSI,
  KVM_IRQ_ROUTING_ENTRY,
  KVM_IRQ_ROUTING,
  KVM_MSI,
  KVM_MP_STATE,
  KVM_VCPU_EVENTS,
  KVM_XCR,
  KVM_XCRS,
  KVM_CLOCK_DATA,
  KVM_ENABLE_CAP,
  KVM_COALESCED_MMIO_ZONE,
  EPOLL_EVENT,
] as const;
