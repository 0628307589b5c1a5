/**
 * The KVM API as typed objects: /dev/kvm (Kvm), a VM fd (Vm) and vCPU fds (Vcpu). Mechanics
 * only: each method is one ioctl with its struct, throwing SysError on failure, except
 * Vcpu.run(), which returns -errno so the run loop sees EINTR without an exception.
 *
 * A Vcpu crosses to a Worker as numbers: create it on any thread, send `vcpu.handle()` to the
 * Worker, and `Vcpu.attach(handle)` there; both sides see the same kvm_run area.
 */
import { helper, type HelperSymbols } from "./helper.ts";
import {
  close,
  Errno,
  ioctlInt,
  ioctlPtr,
  MAP_SHARED,
  mmap,
  munmap,
  O_RDWR,
  open,
  PROT_READ,
  PROT_WRITE,
  SysError,
} from "./libc.ts";
import { kickThread } from "./kick.ts";
import { hostBytes } from "./guest_ram.ts";
import { KVM_FLAGS, KVM_IOCTL } from "./kvm_constants.ts";
import {
  KVM_CLOCK_DATA,
  KVM_COALESCED_MMIO_ZONE,
  KVM_CPUID2,
  KVM_CPUID_ENTRY2,
  KVM_ENABLE_CAP,
  KVM_FPU,
  KVM_IOEVENTFD,
  KVM_IRQ_LEVEL,
  KVM_IRQ_ROUTING,
  KVM_IRQ_ROUTING_ENTRY,
  KVM_IRQFD,
  KVM_LAPIC_STATE,
  KVM_MP_STATE,
  KVM_MSI,
  KVM_MSR_ENTRY,
  KVM_MSR_LIST,
  KVM_MSRS,
  KVM_PIT_CONFIG,
  KVM_REGS,
  KVM_RUN,
  KVM_SREGS,
  KVM_USERSPACE_MEMORY_REGION,
  KVM_VCPU_EVENTS,
  KVM_XCRS,
} from "./kvm_structs.ts";
import { type FlexibleView, flexibleView, type StructView, viewOf } from "./struct.ts";

export * from "./kvm_constants.ts";
export * from "./kvm_structs.ts";

type FieldsOf<L> = L extends { fields: infer F extends Record<string, unknown> } ? F : never;
export type KvmRun = StructView<FieldsOf<typeof KVM_RUN>>;
export type KvmRegs = StructView<FieldsOf<typeof KVM_REGS>>;
export type KvmSregs = StructView<FieldsOf<typeof KVM_SREGS>>;
export type KvmFpu = StructView<FieldsOf<typeof KVM_FPU>>;
export type KvmLapicState = StructView<FieldsOf<typeof KVM_LAPIC_STATE>>;
export type KvmVcpuEvents = StructView<FieldsOf<typeof KVM_VCPU_EVENTS>>;
export type KvmXcrs = StructView<FieldsOf<typeof KVM_XCRS>>;
export type KvmClockData = StructView<FieldsOf<typeof KVM_CLOCK_DATA>>;
export type KvmCpuid = FlexibleView<FieldsOf<typeof KVM_CPUID2>, FieldsOf<typeof KVM_CPUID_ENTRY2>>;

/** The handle on /dev/kvm. */
export class Kvm {
  private constructor(readonly fd: number) {}

  static open(path = "/dev/kvm"): Kvm {
    return new Kvm(open(path, O_RDWR));
  }

  apiVersion(): number {
    return ioctlInt(this.fd, KVM_IOCTL.GET_API_VERSION, 0, "KVM_GET_API_VERSION");
  }

  /** 0 when absent, otherwise 1 or a capability-specific number (e.g. NR_VCPUS). */
  checkExtension(cap: number): number {
    return ioctlInt(this.fd, KVM_IOCTL.CHECK_EXTENSION, cap, `KVM_CHECK_EXTENSION(${cap})`);
  }

  vcpuMmapSize(): number {
    return ioctlInt(this.fd, KVM_IOCTL.GET_VCPU_MMAP_SIZE, 0, "KVM_GET_VCPU_MMAP_SIZE");
  }

  /** The CPUID entries KVM can expose; `nent` says how many of the entries are filled. */
  getSupportedCpuid(maxEntries = 256): KvmCpuid {
    const cpuid = flexibleView(KVM_CPUID2, "entries", KVM_CPUID_ENTRY2, maxEntries);
    cpuid.header.nent = maxEntries;
    ioctlPtr(this.fd, KVM_IOCTL.GET_SUPPORTED_CPUID, cpuid.bytes, "KVM_GET_SUPPORTED_CPUID");
    return cpuid;
  }

  /** MSR indices KVM saves and restores (KVM_GET_MSR_INDEX_LIST). */
  getMsrIndexList(max = 1024): number[] {
    const buf = new Uint8Array(KVM_MSR_LIST.size + 4 * max);
    const dv = new DataView(buf.buffer);
    dv.setUint32(0, max, true);
    ioctlPtr(this.fd, KVM_IOCTL.GET_MSR_INDEX_LIST, buf, "KVM_GET_MSR_INDEX_LIST");
    const n = dv.getUint32(0, true);
    return Array.from(
      { length: n },
      (_, i) => dv.getUint32(KVM_MSR_LIST.fields.indices.offset + 4 * i, true),
    );
  }

  createVm(type = 0): Vm {
    const fd = ioctlInt(this.fd, KVM_IOCTL.CREATE_VM, type, "KVM_CREATE_VM");
    return new Vm(this, fd);
  }

  close(): void {
    close(this.fd);
  }
}

export interface MemoryRegion {
  readonly slot: number;
  readonly guestPhysAddr: number | bigint;
  /** Size in bytes; 0 deletes the slot. */
  readonly memorySize: number | bigint;
  readonly userspaceAddr: bigint;
  /** KVM_MEM_LOG_DIRTY_PAGES | KVM_MEM_READONLY. */
  readonly flags?: number;
}

export interface IrqfdRequest {
  readonly fd: number;
  readonly gsi: number;
  /** KVM_IRQFD_FLAG_DEASSIGN | KVM_IRQFD_FLAG_RESAMPLE. */
  readonly flags?: number;
  readonly resamplefd?: number;
}

export interface IoeventfdRequest {
  readonly fd: number;
  /** Guest physical (MMIO) or port (with KVM_IOEVENTFD_FLAG_PIO) address. */
  readonly addr: number | bigint;
  /** Access width that matches: 1, 2, 4 or 8 (0 for any, with KVM_CAP_IOEVENTFD_ANY_LENGTH). */
  readonly len: number;
  /** Matched value when KVM_IOEVENTFD_FLAG_DATAMATCH is set. */
  readonly datamatch?: bigint;
  /** KVM_IOEVENTFD_FLAG_DATAMATCH | _PIO | _DEASSIGN. */
  readonly flags?: number;
}

export interface MsiMessage {
  readonly addressLo: number;
  readonly addressHi: number;
  readonly data: number;
  readonly flags?: number;
  readonly devid?: number;
}

export type GsiRoute =
  | {
    readonly gsi: number;
    readonly kind: "irqchip";
    readonly irqchip: number;
    readonly pin: number;
  }
  | ({ readonly gsi: number; readonly kind: "msi" } & MsiMessage);

/** A VM fd. */
export class Vm {
  constructor(readonly kvm: Kvm, readonly fd: number) {}

  /** KVM_CHECK_EXTENSION on the VM (some answers are per VM). */
  checkExtension(cap: number): number {
    return ioctlInt(this.fd, KVM_IOCTL.CHECK_EXTENSION, cap, `KVM_CHECK_EXTENSION(${cap})`);
  }

  /** Three pages of guest physical space KVM may use for the TSS (needed before running). */
  setTssAddr(addr: number): void {
    ioctlInt(this.fd, KVM_IOCTL.SET_TSS_ADDR, addr, "KVM_SET_TSS_ADDR");
  }

  /** One page of guest physical space for the identity map (EPT real mode). */
  setIdentityMapAddr(addr: number | bigint): void {
    const buf = new BigUint64Array([BigInt(addr)]);
    ioctlPtr(this.fd, KVM_IOCTL.SET_IDENTITY_MAP_ADDR, buf, "KVM_SET_IDENTITY_MAP_ADDR");
  }

  /** In-kernel PIC, IOAPIC and LAPICs. */
  createIrqchip(): void {
    ioctlInt(this.fd, KVM_IOCTL.CREATE_IRQCHIP, 0, "KVM_CREATE_IRQCHIP");
  }

  /** In-kernel PIT; flags KVM_PIT_SPEAKER_DUMMY makes port 0x61 read-only-zero in KVM. */
  createPit2(flags = 0): void {
    const cfg = viewOf(KVM_PIT_CONFIG);
    cfg.flags = flags;
    ioctlPtr(this.fd, KVM_IOCTL.CREATE_PIT2, cfg.bytes, "KVM_CREATE_PIT2");
  }

  setUserMemoryRegion(r: MemoryRegion): void {
    const m = viewOf(KVM_USERSPACE_MEMORY_REGION);
    m.slot = r.slot;
    m.flags = r.flags ?? 0;
    m.guest_phys_addr = BigInt(r.guestPhysAddr);
    m.memory_size = BigInt(r.memorySize);
    m.userspace_addr = r.userspaceAddr;
    ioctlPtr(
      this.fd,
      KVM_IOCTL.SET_USER_MEMORY_REGION,
      m.bytes,
      `KVM_SET_USER_MEMORY_REGION(slot ${r.slot})`,
    );
  }

  /** Writes to eventfd `fd` raise `gsi` (or, with DEASSIGN, stop doing so). */
  irqfd(r: IrqfdRequest): void {
    const v = viewOf(KVM_IRQFD);
    v.fd = r.fd;
    v.gsi = r.gsi;
    v.flags = r.flags ?? 0;
    v.resamplefd = r.resamplefd ?? 0;
    ioctlPtr(this.fd, KVM_IOCTL.IRQFD, v.bytes, `KVM_IRQFD(gsi ${r.gsi})`);
  }

  /** Guest writes to `addr` signal eventfd `fd` in the kernel, without an exit. */
  ioeventfd(r: IoeventfdRequest): void {
    const v = viewOf(KVM_IOEVENTFD);
    v.datamatch = r.datamatch ?? 0n;
    v.addr = BigInt(r.addr);
    v.len = r.len;
    v.fd = r.fd;
    v.flags = r.flags ?? 0;
    ioctlPtr(this.fd, KVM_IOCTL.IOEVENTFD, v.bytes, `KVM_IOEVENTFD(0x${r.addr.toString(16)})`);
  }

  /** Sets interrupt line `irq` (a GSI) to `level` (0 or 1). */
  irqLine(irq: number, level: number): void {
    const v = viewOf(KVM_IRQ_LEVEL);
    v.irq = irq;
    v.level = level;
    ioctlPtr(this.fd, KVM_IOCTL.IRQ_LINE, v.bytes, `KVM_IRQ_LINE(${irq})`);
  }

  /** Injects an MSI; returns >0 delivered, 0 blocked by the guest. */
  signalMsi(m: MsiMessage): number {
    const v = viewOf(KVM_MSI);
    v.address_lo = m.addressLo;
    v.address_hi = m.addressHi;
    v.data = m.data;
    v.flags = m.flags ?? 0;
    v.devid = m.devid ?? 0;
    return ioctlPtr(this.fd, KVM_IOCTL.SIGNAL_MSI, v.bytes, "KVM_SIGNAL_MSI");
  }

  /** Replaces the whole GSI routing table. */
  setGsiRouting(routes: readonly GsiRoute[]): void {
    const table = flexibleView(KVM_IRQ_ROUTING, "entries", KVM_IRQ_ROUTING_ENTRY, routes.length);
    table.header.nr = routes.length;
    routes.forEach((r, i) => {
      const e = table.entries[i];
      e.gsi = r.gsi;
      if (r.kind === "irqchip") {
        e.type = KVM_FLAGS.KVM_IRQ_ROUTING_IRQCHIP;
        e.u.irqchip.irqchip = r.irqchip;
        e.u.irqchip.pin = r.pin;
      } else {
        e.type = KVM_FLAGS.KVM_IRQ_ROUTING_MSI;
        e.flags = r.flags ?? 0;
        e.u.msi.address_lo = r.addressLo;
        e.u.msi.address_hi = r.addressHi;
        e.u.msi.data = r.data;
        e.u.msi.devid = r.devid ?? 0;
      }
    });
    ioctlPtr(this.fd, KVM_IOCTL.SET_GSI_ROUTING, table.bytes, "KVM_SET_GSI_ROUTING");
  }

  /** Writes to [addr, addr+size) are queued in the coalesced ring instead of exiting. */
  registerCoalescedZone(addr: number | bigint, size: number, pio = false): void {
    const z = viewOf(KVM_COALESCED_MMIO_ZONE);
    z.addr = BigInt(addr);
    z.size = size;
    z.pio = pio ? 1 : 0;
    ioctlPtr(this.fd, KVM_IOCTL.REGISTER_COALESCED_MMIO, z.bytes, "KVM_REGISTER_COALESCED_MMIO");
  }

  getClock(): KvmClockData {
    const c = viewOf(KVM_CLOCK_DATA);
    ioctlPtr(this.fd, KVM_IOCTL.GET_CLOCK, c.bytes, "KVM_GET_CLOCK");
    return c;
  }

  setClock(clock: bigint, flags = 0): void {
    const c = viewOf(KVM_CLOCK_DATA);
    c.clock = clock;
    c.flags = flags;
    ioctlPtr(this.fd, KVM_IOCTL.SET_CLOCK, c.bytes, "KVM_SET_CLOCK");
  }

  enableCap(cap: number, args: readonly bigint[] = [], flags = 0): void {
    const v = viewOf(KVM_ENABLE_CAP);
    v.cap = cap;
    v.flags = flags;
    args.forEach((a, i) => (v.args[i] = a));
    ioctlPtr(this.fd, KVM_IOCTL.ENABLE_CAP, v.bytes, `KVM_ENABLE_CAP(${cap})`);
  }

  /** Creates vCPU `id` and maps its kvm_run area. */
  createVcpu(id: number): Vcpu {
    const fd = ioctlInt(this.fd, KVM_IOCTL.CREATE_VCPU, id, `KVM_CREATE_VCPU(${id})`);
    const size = this.kvm.vcpuMmapSize();
    const runAddress = mmap(0n, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    return new Vcpu({ id, fd, runAddress, runSize: size });
  }

  close(): void {
    close(this.fd);
  }
}

/** What identifies a vCPU across Workers (structured-clone safe). */
export interface VcpuHandle {
  readonly id: number;
  readonly fd: number;
  /** Host address of the mmap'ed kvm_run area. */
  readonly runAddress: bigint;
  readonly runSize: number;
}

/** A vCPU fd and its kvm_run area, as seen from the isolate that made this object. */
export class Vcpu {
  readonly id: number;
  readonly fd: number;
  readonly runAddress: bigint;
  readonly runSize: number;
  /** The whole mmap'ed run area (kvm_run, then PIO data, then the coalesced ring page). */
  readonly runBytes: Uint8Array<ArrayBuffer>;
  /** kvm_run as a typed view. */
  readonly kvmRun: KvmRun;
  readonly #sym: HelperSymbols;
  readonly #regs = viewOf(KVM_REGS);
  readonly #sregs = viewOf(KVM_SREGS);

  constructor(h: VcpuHandle) {
    this.id = h.id;
    this.fd = h.fd;
    this.runAddress = h.runAddress;
    this.runSize = h.runSize;
    this.runBytes = hostBytes(h.runAddress, h.runSize);
    this.kvmRun = viewOf(KVM_RUN, this.runBytes);
    this.#sym = helper();
  }

  /** This vCPU in another isolate (a Worker): same fd, same kvm_run memory. */
  static attach(h: VcpuHandle): Vcpu {
    return new Vcpu(h);
  }

  handle(): VcpuHandle {
    return { id: this.id, fd: this.fd, runAddress: this.runAddress, runSize: this.runSize };
  }

  /**
   * KVM_RUN, synchronously: the exit reason (KVM_EXIT_*) or -errno (-EINTR when kicked or when
   * immediate_exit was set). Blocks the calling isolate while the guest runs.
   */
  run(): number {
    return this.#sym.sv_kvm_run(this.fd, this.runAddress);
  }

  /** The bytes of the current KVM_EXIT_IO's data (size * count), in the run area. */
  ioData(): Uint8Array<ArrayBuffer> {
    const io = this.kvmRun.io;
    const start = Number(io.data_offset);
    return this.runBytes.subarray(start, start + io.size * io.count);
  }

  /**
   * Makes the vCPU leave KVM_RUN: immediate_exit = 1 (a KVM_RUN about to start returns EINTR at
   * once), then the kick signal to `tid`, the thread running this vCPU (a blocked KVM_RUN returns
   * EINTR). The vCPU thread clears immediate_exit before running again.
   */
  kick(tid: number): void {
    this.kvmRun.immediate_exit = 1;
    kickThread(tid);
  }

  getRegs(): KvmRegs {
    ioctlPtr(this.fd, KVM_IOCTL.GET_REGS, this.#regs.bytes, "KVM_GET_REGS");
    return viewOf(KVM_REGS, this.#regs.bytes.slice());
  }

  setRegs(regs: KvmRegs): void {
    ioctlPtr(this.fd, KVM_IOCTL.SET_REGS, regs.bytes, "KVM_SET_REGS");
  }

  getSregs(): KvmSregs {
    ioctlPtr(this.fd, KVM_IOCTL.GET_SREGS, this.#sregs.bytes, "KVM_GET_SREGS");
    return viewOf(KVM_SREGS, this.#sregs.bytes.slice());
  }

  setSregs(sregs: KvmSregs): void {
    ioctlPtr(this.fd, KVM_IOCTL.SET_SREGS, sregs.bytes, "KVM_SET_SREGS");
  }

  setCpuid2(cpuid: KvmCpuid): void {
    ioctlPtr(this.fd, KVM_IOCTL.SET_CPUID2, cpuid.bytes, "KVM_SET_CPUID2");
  }

  /** Reads the MSRs `indices`; returns index -> value for those KVM returned. */
  getMsrs(indices: readonly number[]): Map<number, bigint> {
    const msrs = flexibleView(KVM_MSRS, "entries", KVM_MSR_ENTRY, indices.length);
    msrs.header.nmsrs = indices.length;
    indices.forEach((idx, i) => (msrs.entries[i].index = idx));
    const n = ioctlPtr(this.fd, KVM_IOCTL.GET_MSRS, msrs.bytes, "KVM_GET_MSRS");
    return new Map(msrs.entries.slice(0, n).map((e) => [e.index, e.data]));
  }

  /** Writes MSRs; throws naming the first MSR KVM refused (it stops there). */
  setMsrs(entries: readonly { readonly index: number; readonly data: bigint }[]): void {
    const msrs = flexibleView(KVM_MSRS, "entries", KVM_MSR_ENTRY, entries.length);
    msrs.header.nmsrs = entries.length;
    entries.forEach((e, i) => {
      msrs.entries[i].index = e.index;
      msrs.entries[i].data = e.data;
    });
    const n = ioctlPtr(this.fd, KVM_IOCTL.SET_MSRS, msrs.bytes, "KVM_SET_MSRS");
    if (n !== entries.length) {
      throw new SysError(`KVM_SET_MSRS(MSR 0x${entries[n].index.toString(16)})`, Errno.EINVAL);
    }
  }

  getFpu(): KvmFpu {
    const f = viewOf(KVM_FPU);
    ioctlPtr(this.fd, KVM_IOCTL.GET_FPU, f.bytes, "KVM_GET_FPU");
    return f;
  }

  setFpu(fpu: KvmFpu): void {
    ioctlPtr(this.fd, KVM_IOCTL.SET_FPU, fpu.bytes, "KVM_SET_FPU");
  }

  /** The LAPIC register page (needs an in-kernel irqchip). */
  getLapic(): KvmLapicState {
    const l = viewOf(KVM_LAPIC_STATE);
    ioctlPtr(this.fd, KVM_IOCTL.GET_LAPIC, l.bytes, "KVM_GET_LAPIC");
    return l;
  }

  setLapic(lapic: KvmLapicState): void {
    ioctlPtr(this.fd, KVM_IOCTL.SET_LAPIC, lapic.bytes, "KVM_SET_LAPIC");
  }

  getMpState(): number {
    const v = viewOf(KVM_MP_STATE);
    ioctlPtr(this.fd, KVM_IOCTL.GET_MP_STATE, v.bytes, "KVM_GET_MP_STATE");
    return v.mp_state;
  }

  setMpState(state: number): void {
    const v = viewOf(KVM_MP_STATE);
    v.mp_state = state;
    ioctlPtr(this.fd, KVM_IOCTL.SET_MP_STATE, v.bytes, "KVM_SET_MP_STATE");
  }

  getVcpuEvents(): KvmVcpuEvents {
    const v = viewOf(KVM_VCPU_EVENTS);
    ioctlPtr(this.fd, KVM_IOCTL.GET_VCPU_EVENTS, v.bytes, "KVM_GET_VCPU_EVENTS");
    return v;
  }

  setVcpuEvents(events: KvmVcpuEvents): void {
    ioctlPtr(this.fd, KVM_IOCTL.SET_VCPU_EVENTS, events.bytes, "KVM_SET_VCPU_EVENTS");
  }

  getXcrs(): KvmXcrs {
    const v = viewOf(KVM_XCRS);
    ioctlPtr(this.fd, KVM_IOCTL.GET_XCRS, v.bytes, "KVM_GET_XCRS");
    return v;
  }

  setXcrs(xcrs: KvmXcrs): void {
    ioctlPtr(this.fd, KVM_IOCTL.SET_XCRS, xcrs.bytes, "KVM_SET_XCRS");
  }

  /** Guest TSC frequency in kHz. */
  getTscKhz(): number {
    return ioctlInt(this.fd, KVM_IOCTL.GET_TSC_KHZ, 0, "KVM_GET_TSC_KHZ");
  }

  /** Unmaps the run area and closes the fd. Only the isolate that owns the vCPU does this. */
  close(): void {
    munmap(this.runAddress, this.runSize);
    close(this.fd);
  }
}

/** Whether a run() result is an error: `-Errno.EINTR` is the kick. */
export function isRunError(result: number): boolean {
  return result < 0;
}
