import { assertEquals, assertThrows } from "../../tests/lib/assert.ts";
import { type MachineSpec, MachineSpecError, topologyOf, validateSpec } from "./spec.ts";

const base: MachineSpec = {
  cpus: 2,
  memory: { size: 256 << 20 },
  kernel: "/boot/vmlinux",
  cmdline: "console=ttyS0",
};

Deno.test("spec: a plain spec passes; the default topology is one core per socket", () => {
  validateSpec(base);
  assertEquals(topologyOf(base), { sockets: 2, dies: 1, clusters: 1, cores: 1, threads: 1 });
});

Deno.test("spec: bad fields are named", () => {
  const cases: [Partial<MachineSpec>, RegExp][] = [
    [{ cpus: 0 }, /cpus must be an integer in 1\.\.254, got 0/],
    [{ cpus: 1.5 }, /cpus must be/],
    [{ memory: { size: 1 << 20 } }, /memory size must be .* at least 2 MiB, got 1048576/],
    [{ memory: { size: (64 << 20) + 1 } }, /multiple of 4 KiB/],
    [{ kernel: "" }, /no kernel/],
    [{ serial: { backend: "file" } }, /serial file backend needs a path/],
    [
      { cpus: 4, topology: { sockets: 1, dies: 1, clusters: 1, cores: 2, threads: 1 } },
      /holds 2 vCPUs, fewer than cpus=4/,
    ],
  ];
  for (const [patch, message] of cases) {
    const e = assertThrows(() => validateSpec({ ...base, ...patch }), MachineSpecError);
    if (!message.test(e.message)) throw new Error(`${e.message} does not match ${message}`);
  }
});

Deno.test("spec: disks are checked: count, ids, files, queues", () => {
  const disk = {
    id: "vda",
    drive: "root",
    path: "/img/root",
    readonly: false,
    direct: true,
    serial: null,
    numQueues: 1,
    queueSize: 256,
    iopsTotal: null,
    asyncIo: true,
    iothread: null,
  };
  validateSpec({ ...base, disks: [disk] });
  const cases: [MachineSpec["disks"], RegExp][] = [
    [[1, 2, 3, 4, 5].map((i) => ({ ...disk, id: `d${i}` })), /at most 4 virtio-blk devices, got 5/],
    [[disk, { ...disk }], /two virtio-blk devices have id=vda/],
    [[{ ...disk, path: "" }], /virtio-blk vda: its drive has no file/],
    [[{ ...disk, numQueues: 0 }], /num-queues 0 is not in 1\.\.32/],
    [[{ ...disk, queueSize: 100 }], /queue-size 100 is not a power of 2/],
  ];
  for (const [disks, message] of cases) {
    const e = assertThrows(() => validateSpec({ ...base, disks }), MachineSpecError);
    if (!message.test(e.message)) throw new Error(`${e.message} does not match ${message}`);
  }
});
