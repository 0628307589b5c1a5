/**
 * The microvm end to end with tiny guests: each kernel loader path boots code that prints over
 * the UART and resets through the i8042 (status 0, output seen); a guest running an instruction
 * KVM cannot execute ends with a clear error (non-zero); a triple fault ends the VM as a guest
 * shutdown (status 0, logged).
 */
import { assert, assertEquals, assertMatch } from "../lib/assert.ts";
import { kvm, testWhen } from "../lib/skip.ts";
import type { MachineSpec } from "../../src/machine/spec.ts";
import { type Ending, type ImageFormat, tinyKernel } from "./tiny_guests.ts";
import { helperBuilt, PAUSE_CHECK, type RunOptions, runVm, type VmRun } from "./run_vm.ts";

function describe(r: VmRun): string {
  return `exit ${r.code}${r.killed ? " (killed: hung)" : ""}\n--- stdout\n${r.stdout}\n` +
    `--- stderr\n${r.stderr}`;
}

async function bootTiny(
  format: ImageFormat,
  message: string,
  ending: Ending,
  extra: Partial<MachineSpec> = {},
  options: RunOptions = {},
): Promise<VmRun> {
  const dir = await Deno.makeTempDir({ prefix: "sv-machine-" });
  try {
    const kernel = `${dir}/kernel-${format}`;
    await Deno.writeFile(kernel, tinyKernel(format, message, ending));
    return await runVm({
      cpus: 1,
      memory: { size: 64 * 1024 * 1024 },
      kernel,
      cmdline: "console=ttyS0",
      serial: { backend: "stdio" },
      ...extra,
    }, { env: { STRATOVIRT_TEST_LOG: "", STRATOVIRT_LOG_LEVEL: "info" }, ...options });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

for (const format of ["bzimage", "pvh", "vmlinux-bin"] as const) {
  testWhen(
    [kvm, helperBuilt],
    `microvm: ${format} guest prints over the UART and resets through the i8042 (status 0)`,
    async () => {
      const message = `hello from ${format}\n`;
      const r = await bootTiny(format, message, "reset");
      assertEquals(r.code, 0, describe(r));
      assertEquals(r.stdout, message, describe(r));
      // The vCPU thread answered the boot-complete marker the guest wrote to port 0x3ff.
      assertMatch(r.stderr, /Kernel boot complete: [\d.]+ ms since the VMM started/);
      assertMatch(r.stderr, /VM ends: guest reset through the i8042 reset line/);
    },
  );
}

testWhen(
  [kvm, helperBuilt],
  "microvm: 2 vCPUs (the AP waits for a SIPI) and RAM above 4 GiB boot the guest",
  async () => {
    const r = await bootTiny("pvh", "smp\n", "reset", {
      cpus: 2,
      memory: { size: 0x1_0800_0000 }, // 4 GiB + 128 MiB: 1 GiB of it lands above 4 GiB
    });
    assertEquals(r.code, 0, describe(r));
    assertEquals(r.stdout, "smp\n", describe(r));
  },
);

testWhen(
  [kvm, helperBuilt],
  "microvm: an instruction KVM cannot execute ends the VM with an error naming exit and RIP",
  async () => {
    const r = await bootTiny("pvh", "about to fail\n", "internal-error");
    assert(!r.killed, describe(r));
    assertEquals(r.code, 1, describe(r));
    assertEquals(r.stdout, "about to fail\n");
    assertMatch(
      r.stderr,
      /vCPU 0: KVM_EXIT_INTERNAL_ERROR \(suberror \d+: [a-z ]+\) at RIP 0x1000/,
    );
  },
);

testWhen(
  [kvm, helperBuilt],
  "microvm: a triple fault ends the VM as a guest shutdown (status 0, logged)",
  async () => {
    const r = await bootTiny("vmlinux-bin", "faulting\n", "triple-fault");
    assert(!r.killed, describe(r));
    assertEquals(r.code, 0, describe(r));
    assertEquals(r.stdout, "faulting\n");
    assertMatch(r.stderr, /KVM_EXIT_SHUTDOWN \(triple fault\)/);
  },
);

testWhen(
  [kvm, helperBuilt],
  "microvm: an unreadable kernel is a clear error, status 1",
  async () => {
    const r = await runVm({
      cpus: 1,
      memory: { size: 64 * 1024 * 1024 },
      kernel: "/nonexistent/vmlinux",
      cmdline: "",
      serial: null,
    });
    assertEquals(r.code, 1, describe(r));
    assertMatch(r.stderr, /cannot read kernel \/nonexistent\/vmlinux/);
  },
);

testWhen(
  [kvm, helperBuilt],
  "microvm: pause holds every vCPU out of KVM_RUN, resume lets the guest go on",
  async () => {
    const dir = await Deno.makeTempDir({ prefix: "sv-machine-" });
    try {
      const kernel = `${dir}/kernel`;
      await Deno.writeFile(kernel, tinyKernel("pvh", "", "count"));
      const r = await runVm(
        { cpus: 2, memory: { size: 64 << 20 }, kernel, cmdline: "", serial: null },
        { script: PAUSE_CHECK },
      );
      assertEquals(r.code, 0, describe(r));
      for (const step of ["running", "paused", "resumed"]) {
        assertMatch(r.stdout, new RegExp(`PAUSE-CHECK ${step} ok`));
      }
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
);

testWhen(
  [kvm, helperBuilt],
  "microvm: host input on stdin reaches a guest polling the UART",
  async () => {
    const dir = await Deno.makeTempDir({ prefix: "sv-machine-" });
    try {
      const kernel = `${dir}/kernel`;
      await Deno.writeFile(kernel, tinyKernel("bzimage", "echo>", "echo"));
      const r = await runVm(
        {
          cpus: 1,
          memory: { size: 64 << 20 },
          kernel,
          cmdline: "",
          serial: { backend: "stdio" },
        },
        { stdin: "abcq" },
      );
      assertEquals(r.code, 0, describe(r));
      assertEquals(r.stdout, "echo>abcq");
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
);

testWhen(
  [kvm, helperBuilt],
  "microvm: SIGTERM stops a guest spinning in KVM_RUN and ends the process (status 1)",
  async () => {
    const r = await bootTiny("vmlinux-bin", "spinning\n", "count", {}, {
      signal: "SIGTERM",
      signalAfter: "BOOT-EVENT boot-complete",
    });
    assert(!r.killed, describe(r));
    assertEquals(r.code, 1, describe(r));
    assertEquals(r.stdout, "spinning\n");
    assertMatch(r.stderr, /Received kill signal, signal number: 15/);
  },
);

testWhen(
  [kvm, helperBuilt],
  "microvm: file-backed RAM (mem-path directory, prealloc) and a file serial backend",
  async () => {
    const dir = await Deno.makeTempDir({ prefix: "sv-machine-" });
    try {
      const kernel = `${dir}/kernel`;
      await Deno.writeFile(kernel, tinyKernel("pvh", "to a file\n", "reset"));
      const r = await runVm({
        cpus: 1,
        memory: { size: 32 << 20, path: dir, prealloc: true },
        kernel,
        cmdline: "",
        serial: { backend: "file", path: `${dir}/console.log` },
      });
      assertEquals(r.code, 0, describe(r));
      assertEquals(await Deno.readTextFile(`${dir}/console.log`), "to a file\n");
      // The RAM file made inside the directory was unlinked at once.
      const left = [...Deno.readDirSync(dir)].map((e) => e.name).sort();
      assertEquals(left, ["console.log", "kernel"]);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
);
