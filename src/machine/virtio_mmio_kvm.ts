/**
 * The KVM side of a virtio-mmio slot: the data path that never exits to TypeScript.
 * - Queue notifications: one eventfd per queue, registered with KVM_IOEVENTFD on the window's
 *   QueueNotify register with the queue index as datamatch. The guest's write completes in the
 *   kernel; the device Worker, asleep in epoll_wait, wakes on the eventfd.
 * - Interrupts: one eventfd registered with KVM_IRQFD on the slot's GSI (IRQ 5 + slot). A write
 *   from the device Worker pulses the line in the in-kernel IOAPIC (edge, as the ISA IRQs are).
 *
 * Everything here runs on the main thread, before the vCPUs start; the fds cross to the device
 * Worker as numbers (fds are per process).
 */
import { eventfd } from "../../ffi/events.ts";
import { KVM_FLAGS, type Vm } from "../../ffi/kvm.ts";
import { close } from "../../ffi/libc.ts";
import { kernelCmdlineArg, microvmMmioSlot, MmioReg } from "../devices/virtio/mmio.ts";

/** A wired slot: where it is and the eventfds the device Worker serves. */
export interface KvmMmioSlot {
  readonly index: number;
  readonly base: number;
  readonly irq: number;
  /** queueFds[q] is signalled when the guest writes q to QueueNotify. */
  readonly queueFds: readonly number[];
  /** Writing 1 here raises the slot's interrupt. */
  readonly irqFd: number;
  /** `virtio_mmio.device=512@0x...:IRQ` for the kernel command line. */
  readonly cmdlineArg: string;
}

function ioeventfdOf(base: number, queue: number, fd: number, deassign = false) {
  return {
    fd,
    addr: base + MmioReg.QUEUE_NOTIFY,
    len: 4,
    datamatch: BigInt(queue),
    flags: KVM_FLAGS.KVM_IOEVENTFD_FLAG_DATAMATCH |
      (deassign ? KVM_FLAGS.KVM_IOEVENTFD_FLAG_DEASSIGN : 0),
  };
}

/**
 * Creates and registers the eventfds of slot `index` for a device with `numQueues` queues.
 * On failure, what was registered is undone before the error escapes.
 */
export function wireKvmMmioSlot(vm: Vm, index: number, numQueues: number): KvmMmioSlot {
  const { base, irq } = microvmMmioSlot(index);
  const queueFds: number[] = [];
  let irqFd = -1;
  try {
    irqFd = eventfd();
    vm.irqfd({ fd: irqFd, gsi: irq });
    for (let q = 0; q < numQueues; q++) {
      const fd = eventfd();
      queueFds.push(fd);
      vm.ioeventfd(ioeventfdOf(base, q, fd));
    }
  } catch (e) {
    unwireKvmMmioSlot(vm, { index, base, irq, queueFds, irqFd, cmdlineArg: "" });
    throw e;
  }
  return { index, base, irq, queueFds, irqFd, cmdlineArg: kernelCmdlineArg(base, irq) };
}

/** Deregisters and closes the slot's eventfds (best effort: this runs at teardown). */
export function unwireKvmMmioSlot(vm: Vm, slot: KvmMmioSlot): void {
  slot.queueFds.forEach((fd, q) => {
    try {
      vm.ioeventfd(ioeventfdOf(slot.base, q, fd, true));
    } catch { /* never registered */ }
    try {
      close(fd);
    } catch { /* already closed */ }
  });
  if (slot.irqFd >= 0) {
    try {
      vm.irqfd({ fd: slot.irqFd, gsi: slot.irq, flags: KVM_FLAGS.KVM_IRQFD_FLAG_DEASSIGN });
    } catch { /* never registered */ }
    try {
      close(slot.irqFd);
    } catch { /* already closed */ }
  }
}
