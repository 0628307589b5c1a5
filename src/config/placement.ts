/**
 * Where devices may go. microvm: virtio-mmio devices only, at most 11 (one IRQ each in 5..15 on
 * x86_64). q35: PCI devices on pcie.0 or behind a pcie-root-port, no two at one address, slot 0
 * behind a root port, function 0 present and multifunction=on when a slot has several functions,
 * at most 32 devices on pcie.0, and slots 0 (host bridge) and 0x1f (LPC bridge) kept for the
 * machine.
 */
import { DeviceConfig } from "./device.ts";
import { RootPortConfig } from "./devices/root_port.ts";
import { MachineType } from "./machine.ts";
import { errorAt } from "./origin.ts";
import { ROOT_BUS } from "./pci.ts";

export const MAX_MMIO_DEVICES = 11;
export const MAX_ROOT_BUS_DEVICES = 32;
/** pcie.0 slots the q35 machine itself occupies: 0 = host bridge (MCH), 0x1f = LPC bridge. */
export const Q35_RESERVED_SLOTS: readonly number[] = [0x0, 0x1f];

const hex = (n: number) => `0x${n.toString(16)}`;

export function checkPlacement(machine: MachineType, devices: readonly DeviceConfig[]): void {
  if (machine === "none") {
    if (devices.length > 0) throw errorAt(devices[0], "machine type none takes no devices");
    return;
  }
  if (machine === "microvm") return checkMicrovm(devices);
  checkQ35(devices);
}

function checkMicrovm(devices: readonly DeviceConfig[]): void {
  let mmio = 0;
  for (const d of devices) {
    if (d.transport === "pci" || d.transport === "usb") {
      throw errorAt(
        d,
        `machine microvm takes only virtio-mmio devices (*-device) and virtconsole, not ${d.driver}`,
      );
    }
    if (d.transport === "mmio" && ++mmio > MAX_MMIO_DEVICES) {
      throw errorAt(
        d,
        `microvm supports at most ${MAX_MMIO_DEVICES} virtio-mmio devices on x86_64`,
      );
    }
  }
}

function checkQ35(devices: readonly DeviceConfig[]): void {
  const rootPorts = new Map<string, RootPortConfig>();
  for (const d of devices) {
    if (d.transport === "mmio") {
      throw errorAt(d, `machine q35 takes PCI devices (*-pci), not ${d.driver}`);
    }
    if (d.kind === "pcie-root-port") rootPorts.set(d.id, d);
  }
  const ports = new Map<number, RootPortConfig>();
  for (const rp of rootPorts.values()) {
    if (rp.id === ROOT_BUS || rp.id === "pci.0") {
      throw errorAt(rp, `a root port cannot be named ${rp.id}: that is the root bus`);
    }
    if (rp.pci!.bus !== ROOT_BUS) {
      throw errorAt(rp, `a pcie-root-port must sit on ${ROOT_BUS}, not ${rp.pci!.bus}`);
    }
    const other = ports.get(rp.port);
    if (other) throw errorAt(rp, `port ${hex(rp.port)} is already used by root port ${other.id}`);
    ports.set(rp.port, rp);
  }

  // bus -> slot -> function -> device
  const buses = new Map<string, Map<number, Map<number, DeviceConfig>>>();
  let onRoot = 0;
  for (const d of devices) {
    if (!d.pci) continue;
    const { bus, slot, function: fn } = d.pci;
    const where = `${bus} ${hex(slot)}.${hex(fn)}`;
    if (bus !== ROOT_BUS && !rootPorts.has(bus)) {
      const known = [ROOT_BUS, ...rootPorts.keys()].join(", ");
      throw errorAt(d, `bus ${bus} does not exist; buses: ${known}`);
    }
    if (bus === ROOT_BUS) {
      if (Q35_RESERVED_SLOTS.includes(slot)) {
        throw errorAt(
          d,
          `slot ${hex(slot)} of ${ROOT_BUS} belongs to the q35 machine; use 0x1..0x1e`,
        );
      }
      if (++onRoot > MAX_ROOT_BUS_DEVICES) {
        throw errorAt(d, `at most ${MAX_ROOT_BUS_DEVICES} devices fit on ${ROOT_BUS}`);
      }
    } else if (slot !== 0) {
      throw errorAt(d, `a device behind root port ${bus} must use slot 0 (addr=0x0.F)`);
    }
    let slots = buses.get(bus);
    if (!slots) buses.set(bus, slots = new Map());
    let fns = slots.get(slot);
    if (!fns) slots.set(slot, fns = new Map());
    const taken = fns.get(fn);
    if (taken) throw errorAt(d, `address ${where} is already used by ${taken.driver} ${taken.id}`);
    fns.set(fn, d);
  }
  for (const [bus, slots] of buses) {
    for (const [slot, fns] of slots) {
      if (fns.size === 1 && fns.has(0)) continue;
      const first = fns.get(0);
      if (!first) {
        const d = [...fns.values()][0];
        throw errorAt(
          d,
          `slot ${hex(slot)} of ${bus} has no function 0; add one with multifunction=on`,
        );
      }
      if (!first.pci!.multifunction) {
        throw errorAt(
          first,
          `slot ${hex(slot)} of ${bus} has several functions: function 0 needs multifunction=on`,
        );
      }
    }
  }
}
