/**
 * CPU topology: where each vCPU sits (socket, die, core, thread) and its x2APIC/xAPIC id.
 * APIC ids are packed bit fields, as the SDM's topology enumeration (CPUID 0xB / 0x1F) describes them,
 * so a guest decoding them with the shifts we report finds the topology the user asked for.
 */

export interface Topology {
  sockets: number;
  dies: number;
  /** Clusters have no x86 CPUID level: they are folded into the core count. */
  clusters: number;
  cores: number;
  threads: number;
}

/** Bits needed to number `n` items (0 for one item). */
export function bitsFor(n: number): number {
  let bits = 0;
  while ((1 << bits) < n) bits++;
  return bits;
}

export interface ApicLayout {
  threadBits: number;
  coreBits: number;
  dieBits: number;
  /** Logical processors per die / per package, as CPUID reports them. */
  threadsPerCore: number;
  coresPerDie: number;
  diesPerSocket: number;
}

export function apicLayout(t: Topology): ApicLayout {
  const coresPerDie = t.cores * t.clusters;
  return {
    threadBits: bitsFor(t.threads),
    coreBits: bitsFor(coresPerDie),
    dieBits: bitsFor(t.dies),
    threadsPerCore: t.threads,
    coresPerDie,
    diesPerSocket: t.dies,
  };
}

/** The APIC id of the vCPU with index `cpu` (0-based, in socket/die/core/thread order). */
export function apicId(t: Topology, cpu: number): number {
  const l = apicLayout(t);
  const thread = cpu % l.threadsPerCore;
  const core = Math.floor(cpu / l.threadsPerCore) % l.coresPerDie;
  const die = Math.floor(cpu / (l.threadsPerCore * l.coresPerDie)) % l.diesPerSocket;
  const socket = Math.floor(cpu / (l.threadsPerCore * l.coresPerDie * l.diesPerSocket));
  return (((socket << l.dieBits | die) << l.coreBits | core) << l.threadBits) | thread;
}
