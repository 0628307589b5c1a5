import { assertEquals } from "../../tests/lib/assert.ts";
import { buildCpuid, type CpuidEntry, PVM_MASK } from "./cpuid.ts";
import { apicId, type Topology } from "./topology.ts";

const flat = (n: number): Topology => ({ sockets: 1, dies: 1, clusters: 1, cores: n, threads: 1 });

function entry(fn: number, index = 0, regs: Partial<CpuidEntry> = {}): CpuidEntry {
  return { function: fn, index, flags: 0, eax: 0, ebx: 0, ecx: 0, edx: 0, ...regs };
}

function find(table: CpuidEntry[], fn: number, index = 0): CpuidEntry {
  const e = table.find((x) => x.function === fn && x.index === index);
  if (!e) throw new Error(`leaf ${fn.toString(16)}.${index} missing`);
  return e;
}

Deno.test("topology: apic ids pack thread, core, die and socket fields", () => {
  const t: Topology = { sockets: 2, dies: 1, clusters: 1, cores: 3, threads: 2 };
  // threads=2 -> 1 bit, cores=3 -> 2 bits, so the socket field starts at bit 3.
  assertEquals([0, 1, 2, 3, 4, 5, 6, 7].map((i) => apicId(t, i)), [0, 1, 2, 3, 4, 5, 8, 9]);
  assertEquals([0, 1, 2, 3].map((i) => apicId(flat(4), i)), [0, 1, 2, 3]);
});

Deno.test("cpuid: leaf 1 carries the apic id, logical count, hypervisor bit", () => {
  const t = buildCpuid([entry(1, 0, { ebx: 0xabcd, edx: 1 << 28 })], {
    topology: flat(4),
    cpu: 3,
    pvm: false,
  });
  const l1 = find(t, 1);
  assertEquals(l1.ebx >>> 24, 3);
  assertEquals((l1.ebx >>> 16) & 0xff, 4);
  assertEquals(l1.ebx & 0xffff, 0xabcd);
  assertEquals((l1.ecx >>> 31) & 1, 1);
  const single = find(
    buildCpuid([entry(1, 0, { edx: 1 << 28 })], {
      topology: flat(1),
      cpu: 0,
      pvm: false,
    }),
    1,
  );
  assertEquals((single.edx >>> 28) & 1, 0);
});

Deno.test("cpuid: 0xB and 0x1F describe the topology with the right shifts", () => {
  const topo: Topology = { sockets: 1, dies: 2, clusters: 1, cores: 2, threads: 2 };
  const t = buildCpuid([entry(0xb), entry(0x1f)], { topology: topo, cpu: 5, pvm: false });
  const smt = find(t, 0xb, 0);
  const core = find(t, 0xb, 1);
  const end = find(t, 0xb, 2);
  assertEquals([smt.eax, smt.ebx, smt.ecx, smt.edx], [1, 2, 0x100, apicId(topo, 5)]);
  assertEquals([core.eax, core.ebx, core.ecx], [2, 4, 0x201]);
  assertEquals([end.eax, end.ebx, (end.ecx >> 8) & 0xff], [0, 0, 0]);
  const die = find(t, 0x1f, 2);
  assertEquals([die.eax, die.ebx, die.ecx], [3, 8, 0x502]);
  assertEquals((find(t, 0x1f, 3).ecx >> 8) & 0xff, 0);
});

Deno.test("cpuid: pvm masks what kvm_pvm cannot emulate, and only then", () => {
  const supported = [
    entry(1, 0, { ecx: 0xffffffff }),
    entry(7, 0, { ebx: 0xffffffff, edx: 0xffffffff }),
    entry(0xa, 0, { eax: 0x7300403 }),
  ];
  const masked = buildCpuid(supported, { topology: flat(1), cpu: 0, pvm: true });
  assertEquals(find(masked, 1).ecx & PVM_MASK.leaf1Ecx, 0);
  assertEquals(find(masked, 7).ebx & PVM_MASK.leaf7Ebx, 0);
  assertEquals(find(masked, 7).edx & PVM_MASK.leaf7Edx, 0);
  assertEquals(find(masked, 0xa).eax, 0);
  const plain = buildCpuid(supported, { topology: flat(1), cpu: 0, pvm: false });
  assertEquals(find(plain, 7).ebx, 0xffffffff);
  assertEquals((find(plain, 1).ecx & PVM_MASK.leaf1Ecx) >>> 0, PVM_MASK.leaf1Ecx >>> 0);
});
