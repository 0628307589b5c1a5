/**
 * The CPUID table a vCPU gets: KVM's supported entries, with this vCPU's APIC id and the user's
 * topology written into leaves 0x1, 0x4, 0xB and 0x1F, no PMU, the hypervisor bit, and (on kvm_pvm
 * hosts) the features its instruction emulator cannot run masked out.
 */
import { apicId, apicLayout, type Topology } from "./topology.ts";

export interface CpuidEntry {
  function: number;
  index: number;
  flags: number;
  eax: number;
  ebx: number;
  ecx: number;
  edx: number;
}

/** kvm_cpuid_entry2.flags: the entry depends on ECX (the sub-leaf index). */
export const KVM_CPUID_FLAG_SIGNIFCANT_INDEX = 1;

const LEAF_FEATURES = 0x1;
const LEAF_CACHE = 0x4;
const LEAF_PMU = 0xa;
const LEAF_EXT_FEATURES = 0x7;
const LEAF_TOPOLOGY = 0xb;
const LEAF_TOPOLOGY_V2 = 0x1f;

const ECX_HYPERVISOR = 1 << 31;
const ECX_TSC_DEADLINE = 1 << 24;
const EDX_HTT = 1 << 28;

/** Topology level types of CPUID 0xB / 0x1F (ECX[15:8]). */
const LEVEL_SMT = 1;
const LEVEL_CORE = 2;
const LEVEL_DIE = 5;

/**
 * Features kvm_pvm's emulator cannot execute for guest kernel code (measured: see ARCHITECTURE.md
 * "Booting Linux here"). Masking them is right for emulated CPUID; natively executed CPUID still
 * shows the host's bits, so the guest command line also clears them.
 */
export const PVM_MASK = {
  leaf1Ecx: (1 << 13) | (1 << 17) | (1 << 23) | (1 << 26) | (1 << 27), // cx16 pcid popcnt xsave osxsave
  leaf7Ebx: (1 << 0) | (1 << 3) | (1 << 8) | (1 << 9) | (1 << 10) | (1 << 20), // fsgsbase bmi1 bmi2 erms invpcid smap
  leaf7Edx: 1 << 4, // fsrm
};

export interface CpuidOptions {
  topology: Topology;
  /** Index of the vCPU this table is for. */
  cpu: number;
  /** Mask what kvm_pvm cannot emulate. */
  pvm: boolean;
}

function topologyLevels(
  t: Topology,
  withDie: boolean,
): { type: number; shift: number; count: number }[] {
  const l = apicLayout(t);
  const levels = [
    { type: LEVEL_SMT, shift: l.threadBits, count: l.threadsPerCore },
    {
      type: LEVEL_CORE,
      shift: l.threadBits + l.coreBits,
      count: l.threadsPerCore * l.coresPerDie,
    },
  ];
  if (withDie) {
    levels.push({
      type: LEVEL_DIE,
      shift: l.threadBits + l.coreBits + l.dieBits,
      count: l.threadsPerCore * l.coresPerDie * l.diesPerSocket,
    });
  }
  return levels;
}

/** Builds the vCPU's CPUID table from KVM's supported entries (which are not modified). */
export function buildCpuid(supported: readonly CpuidEntry[], opts: CpuidOptions): CpuidEntry[] {
  const t = opts.topology;
  const apic = apicId(t, opts.cpu);
  const l = apicLayout(t);
  const perPackage = l.threadsPerCore * l.coresPerDie * l.diesPerSocket;
  const out: CpuidEntry[] = [];
  for (const s of supported) {
    const e = { ...s };
    switch (e.function) {
      case LEAF_FEATURES:
        e.ebx = (e.ebx & 0x0000ffff) | ((Math.min(perPackage, 255) & 0xff) << 16) |
          ((apic & 0xff) << 24);
        e.ecx |= ECX_HYPERVISOR | ECX_TSC_DEADLINE;
        e.edx = perPackage > 1 ? e.edx | EDX_HTT : e.edx & ~EDX_HTT;
        if (opts.pvm) e.ecx &= ~PVM_MASK.leaf1Ecx;
        break;
      case LEAF_CACHE: {
        const level = (e.eax >> 5) & 0x7;
        const sharing = level >= 3 ? perPackage : l.threadsPerCore;
        const coresPerPackage = l.coresPerDie * l.diesPerSocket;
        e.eax = (e.eax & 0x3fff) | ((Math.min(sharing, 4096) - 1) << 14) |
          ((Math.min(coresPerPackage, 64) - 1) << 26);
        break;
      }
      case LEAF_EXT_FEATURES:
        if (opts.pvm && e.index === 0) {
          e.ebx &= ~PVM_MASK.leaf7Ebx;
          e.edx &= ~PVM_MASK.leaf7Edx;
        }
        break;
      case LEAF_PMU:
        e.eax =
          e.ebx =
          e.ecx =
          e.edx =
            0; // no virtual PMU
        break;
      case LEAF_TOPOLOGY:
      case LEAF_TOPOLOGY_V2: {
        const levels = topologyLevels(t, e.function === LEAF_TOPOLOGY_V2);
        const level = levels[e.index];
        e.eax = level ? level.shift : 0;
        e.ebx = level ? level.count : 0;
        e.ecx = (level ? level.type << 8 : 0) | (e.index & 0xff);
        e.edx = apic;
        break;
      }
    }
    out.push(e);
  }
  // KVM lists only the sub-leaves the host has: make sure every topology level is present.
  for (const fn of [LEAF_TOPOLOGY, LEAF_TOPOLOGY_V2]) {
    if (!supported.some((s) => s.function === fn)) continue;
    const levels = topologyLevels(t, fn === LEAF_TOPOLOGY_V2);
    for (let index = 0; index <= levels.length; index++) {
      if (out.some((e) => e.function === fn && e.index === index)) continue;
      const level = levels[index];
      out.push({
        function: fn,
        index,
        flags: KVM_CPUID_FLAG_SIGNIFCANT_INDEX,
        eax: level ? level.shift : 0,
        ebx: level ? level.count : 0,
        ecx: (level ? level.type << 8 : 0) | index,
        edx: apic,
      });
    }
  }
  return out.map((e) => ({
    ...e,
    eax: e.eax >>> 0,
    ebx: e.ebx >>> 0,
    ecx: e.ecx >>> 0,
    edx: e.edx >>> 0,
  }));
}
