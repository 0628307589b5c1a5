/**
 * QMP and the VM lifecycle through the real program: `deno run -A main.ts -machine microvm ...`
 * with a tiny guest, driven over its QMP sockets. The tick guest prints a character every few
 * TSC-timed milliseconds, so whether its vCPU runs shows on the serial output; the others print a
 * line, then pulse the i8042 reset line or triple-fault.
 *
 * Nothing here is timed: "does not advance while stopped" compares tick counts across a generous
 * wait, "resumes" waits (bounded) for a count to grow.
 */
import { assert, assertEquals, assertMatch } from "../lib/assert.ts";
import { kvm, testWhen } from "../lib/skip.ts";
import { tinyKernel } from "../machine/tiny_guests.ts";
import { scmLibc, unixListen } from "../../src/qmp/scm_libc.ts";
import { tickGuestCode, ticksIn } from "./tick_guest.ts";
import {
  exists,
  freeTcpPort,
  lifecycleNeeds,
  Monitor,
  startTinyVm,
  Vmm,
  waitUntil,
} from "./vmm.ts";

const BANNER = "tick guest up\n";
const GUEST_MESSAGE = "tiny guest says bye\n";
const needs = [kvm, ...lifecycleNeeds];
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface Vm {
  readonly dir: string;
  /** The -qmp unix socket. */
  readonly sock: string;
  readonly vmm: Vmm;
}

/**
 * Boots a tiny guest (the tick guest, or one of tiny_guests.ts that ends at once) with a QMP unix socket in a fresh directory, runs `fn`,
 * then makes sure the VMM is gone and the directory removed. `args` come after the defaults.
 */
async function withVm(
  guest: "tick" | "reset" | "triple-fault",
  args: string[],
  fn: (vm: Vm) => Promise<void>,
  serial = "stdio",
): Promise<void> {
  const code = guest === "tick"
    ? tickGuestCode(BANNER)
    : tinyKernel("vmlinux-bin", GUEST_MESSAGE, guest);
  const { dir, sock, vmm } = await startTinyVm(code, ["-D", ...args], serial);
  try {
    await fn({ dir, sock, vmm });
  } finally {
    await vmm.cleanup();
    await Deno.remove(dir, { recursive: true });
  }
}

/** Waits (bounded) until the guest has printed more than `n` ticks; returns the count. */
async function ticksAbove(vmm: Vmm, n: number): Promise<number> {
  await waitUntil(() => ticksIn(vmm.stdout, BANNER) > n);
  return ticksIn(vmm.stdout, BANNER);
}

/**
 * The tick count once two readings 500 ms apart agree (bounded: a guest that keeps ticking
 * returns its latest count, and the caller's comparison then fails).
 */
async function settledTicks(vmm: Vmm): Promise<number> {
  let last = -1;
  for (let i = 0; i < 20; i++) {
    const now = ticksIn(vmm.stdout, BANNER);
    if (now === last) return now;
    last = now;
    await sleep(500);
  }
  return last;
}

testWhen(needs, "lifecycle: greeting, negotiation and query-status running", async () => {
  await withVm("tick", [], async ({ sock, vmm }) => {
    const mon = await Monitor.unix(sock);
    const qmp = mon.greeting.QMP;
    assert(qmp?.version?.qemu && Array.isArray(qmp.capabilities), JSON.stringify(mon.greeting));
    await ticksAbove(vmm, 0);
    assertEquals(await mon.execute("query-status"), {
      return: { running: true, singlestep: false, status: "running" },
    });
    assertEquals(await mon.execute("query-kvm"), { return: { enabled: true, present: true } });
    assertEquals(await mon.execute("quit"), { return: {} });
    mon.close();
    assertEquals((await vmm.status()).code, 0, vmm.describe());
  });
});

testWhen(needs, "lifecycle: stop really pauses the vCPUs, cont resumes them", async () => {
  await withVm("tick", [], async ({ sock, vmm }) => {
    const mon = await Monitor.unix(sock);
    const before = await ticksAbove(vmm, 3);
    assert(before > 3, `the guest never ticked\n${vmm.describe()}`);

    assertEquals(await mon.execute("stop"), { return: {} });
    assertEquals((await mon.event("STOP")).data, {});
    assertEquals(await mon.execute("query-status"), {
      return: { running: false, singlestep: false, status: "paused" },
    });
    // Output already in the serial queue may still arrive: let it settle, then compare.
    const stopped = await settledTicks(vmm);
    await sleep(2000);
    const stillStopped = ticksIn(vmm.stdout, BANNER);
    assertEquals(stillStopped, stopped, "the guest ticked while stopped");

    const again = await mon.execute("stop");
    assertEquals(again.error?.class, "GenericError", JSON.stringify(again));

    assertEquals(await mon.execute("cont"), { return: {} });
    assertEquals((await mon.event("RESUME")).data, {});
    const resumed = await ticksAbove(vmm, stillStopped + 3);
    assert(resumed > stillStopped + 3, `no ticks after cont\n${vmm.describe()}`);
    assertEquals((await mon.execute("query-status")).return.status, "running");

    const cont = await mon.execute("cont");
    assertEquals(cont.error?.class, "GenericError", JSON.stringify(cont));
    await mon.execute("quit");
    mon.close();
    assertEquals((await vmm.status()).code, 0, vmm.describe());
  });
});

testWhen(needs, "lifecycle: -S creates the vCPUs but runs nothing until cont", async () => {
  await withVm("tick", ["-S"], async ({ sock, vmm }) => {
    const mon = await Monitor.unix(sock);
    // QMP listens before the VM is built: "prelaunch" until then.
    for (let i = 0; i < 1500; i++) {
      if ((await mon.execute("query-status")).return.status !== "prelaunch") break;
      await sleep(20);
    }
    assertEquals(await mon.execute("query-status"), {
      return: { running: false, singlestep: false, status: "paused" },
    });
    // The vCPU thread exists (its Worker reports its thread id) but has not entered the guest.
    let cpus: { CPU: number; thread_id: number }[] = [];
    for (let i = 0; i < 500 && !(cpus.length === 1 && cpus[0].thread_id > 0); i++) {
      cpus = (await mon.execute("query-cpus")).return;
      await sleep(20);
    }
    assertEquals(cpus.length, 1, JSON.stringify(cpus));
    assert(exists(`/proc/${vmm.pid}/task/${cpus[0].thread_id}`), JSON.stringify(cpus));
    await sleep(2000);
    assertEquals(vmm.stdout, "", "the guest ran before cont");

    const stop = await mon.execute("stop");
    assertEquals(stop.error?.class, "GenericError", JSON.stringify(stop));
    assertEquals(await mon.execute("cont"), { return: {} });
    await mon.event("RESUME");
    assert(await ticksAbove(vmm, 2) > 2, `nothing ran after cont\n${vmm.describe()}`);
    assertEquals((await mon.execute("query-status")).return.status, "running");
    await mon.execute("quit");
    mon.close();
    assertEquals((await vmm.status()).code, 0, vmm.describe());
  });
});

testWhen(
  needs,
  "lifecycle: quit sends SHUTDOWN host-qmp-quit, exits 0 and removes the socket",
  async () => {
    await withVm("tick", [], async ({ sock, vmm }) => {
      const mon = await Monitor.unix(sock);
      assertEquals((Deno.statSync(sock).mode ?? 0) & 0o777, 0o600);
      assertEquals(await mon.execute("quit"), { return: {} });
      const events = await mon.rest();
      const shutdown = events.find((e) => e.event === "SHUTDOWN");
      assertEquals(shutdown?.data, { guest: false, reason: "host-qmp-quit" }, mon.names().join());
      mon.close();
      assertEquals((await vmm.status()).code, 0, vmm.describe());
      assert(!exists(sock), "the QMP socket file is still there");
    });
  },
);

for (const [signal, number] of [["SIGTERM", 15], ["SIGINT", 2]] as const) {
  testWhen(needs, `lifecycle: ${signal} sends SHUTDOWN host-signal and cleans up`, async () => {
    await withVm("tick", [], async ({ sock, vmm }) => {
      const mon = await Monitor.unix(sock);
      await ticksAbove(vmm, 0);
      vmm.kill(signal);
      const shutdown = await mon.event("SHUTDOWN");
      assertEquals(shutdown.data, { guest: false, reason: "host-signal" });
      await mon.rest();
      mon.close();
      // StratoVirt exits 1 when a signal ends it.
      assertEquals((await vmm.status()).code, 1, vmm.describe());
      assertMatch(vmm.stderr, new RegExp(`Received kill signal, signal number: ${number}`));
      assert(!exists(sock), "the QMP socket file is still there");
    });
  });
}

// How the guest ends, and the SHUTDOWN reason it gives (a triple fault is reported by KVM as a
// shutdown exit).
const GUEST_ENDINGS = [["reset", "guest-reset"], ["triple-fault", "guest-shutdown"]] as const;

for (const [ending, reason] of GUEST_ENDINGS) {
  testWhen(needs, `lifecycle: a guest ${ending} ends the VM with SHUTDOWN ${reason}`, async () => {
    // -S so the client is connected before the guest (which ends at once) runs.
    await withVm(ending, ["-S"], async ({ sock, vmm }) => {
      const mon = await Monitor.unix(sock);
      assertEquals(await mon.execute("cont"), { return: {} });
      const shutdown = await mon.event("SHUTDOWN");
      assertEquals(shutdown.data, { guest: true, reason });
      await mon.rest();
      mon.close();
      assertEquals((await vmm.status()).code, 0, vmm.describe());
      assertEquals(vmm.stdout, GUEST_MESSAGE);
      assert(!mon.names().includes("STOP"), mon.names().join());
      assert(!exists(sock), "the QMP socket file is still there");
    });
  });

  testWhen(needs, `lifecycle: with -no-shutdown a guest ${ending} pauses the VM`, async () => {
    await withVm(ending, ["-S", "-no-shutdown"], async ({ sock, vmm }) => {
      const mon = await Monitor.unix(sock);
      assertEquals(await mon.execute("cont"), { return: {} });
      assertEquals((await mon.event("SHUTDOWN")).data, { guest: true, reason });
      await mon.event("STOP");
      assertEquals(mon.names().slice(-2), ["SHUTDOWN", "STOP"]);
      assertEquals(await mon.execute("query-status"), {
        return: { running: false, singlestep: false, status: "paused" },
      });
      await sleep(500);
      assertEquals(vmm.exit, null, `the VMM exited\n${vmm.describe()}`);
      const cont = await mon.execute("cont");
      assertEquals(cont.error?.class, "GenericError", JSON.stringify(cont));
      assertEquals(await mon.execute("quit"), { return: {} });
      mon.close();
      assertEquals((await vmm.status()).code, 0, vmm.describe());
      assertEquals(vmm.stdout, GUEST_MESSAGE);
    });
  });
}

testWhen(
  needs,
  "lifecycle: system_reset ends a microvm (SHUTDOWN host-qmp-system-reset)",
  async () => {
    await withVm("tick", [], async ({ sock, vmm }) => {
      const mon = await Monitor.unix(sock);
      await ticksAbove(vmm, 0);
      assertEquals(await mon.execute("system_reset"), { return: {} });
      const shutdown = await mon.event("SHUTDOWN");
      assertEquals(shutdown.data, { guest: false, reason: "host-qmp-system-reset" });
      await mon.rest();
      mon.close();
      assertEquals((await vmm.status()).code, 0, vmm.describe());
      assert(!exists(sock), "the QMP socket file is still there");
    });
  },
);

testWhen(
  needs,
  "lifecycle: system_powerdown sends POWERDOWN and ends a running microvm",
  async () => {
    await withVm("tick", [], async ({ sock, vmm }) => {
      const mon = await Monitor.unix(sock);
      await ticksAbove(vmm, 0);
      await mon.execute("stop");
      const refused = await mon.execute("system_powerdown");
      assertEquals(refused.error?.class, "GenericError", JSON.stringify(refused));
      await mon.execute("cont");
      assertEquals(await mon.execute("system_powerdown"), { return: {} });
      await mon.event("POWERDOWN");
      assertEquals((await mon.event("SHUTDOWN")).data, { guest: false, reason: "host-qmp-quit" });
      await mon.rest();
      mon.close();
      assertEquals((await vmm.status()).code, 0, vmm.describe());
    });
  },
);

testWhen(
  needs,
  "lifecycle: -qmp unix, -qmp tcp and -mon serve at once; a stale socket is replaced",
  async () => {
    const port = freeTcpPort();
    const dir = await Deno.makeTempDir({ prefix: "sv-lifecycle-mon-" });
    const monPath = `${dir}/mon.sock`;
    // A socket file left behind by an earlier run: bound, then closed without unlinking.
    const staleFd = unixListen(monPath);
    assert(staleFd >= 0, `cannot make a stale socket: errno ${-staleFd}`);
    scmLibc()!.close(staleFd);
    assert(Deno.lstatSync(monPath).isSocket, "no stale socket file to replace");
    try {
      await withVm("tick", [
        "-qmp",
        `tcp:127.0.0.1:${port},server,nowait`,
        "-chardev",
        `socket,id=mon0,path=${monPath},server,nowait`,
        "-mon",
        "chardev=mon0,id=monitor0,mode=control",
      ], async ({ sock, vmm }) => {
        const unix = await Monitor.unix(sock);
        const tcp = await Monitor.tcp(port);
        const mon = await Monitor.unix(monPath);
        assertEquals((Deno.statSync(monPath).mode ?? 0) & 0o777, 0o600);
        await ticksAbove(vmm, 0);
        assertEquals(await tcp.execute("stop"), { return: {} });
        for (const m of [unix, tcp, mon]) await m.event("STOP");
        assertEquals((await mon.execute("query-status")).return.status, "paused");
        assertEquals(await unix.execute("cont"), { return: {} });
        for (const m of [unix, tcp, mon]) await m.event("RESUME");
        assertEquals(await mon.execute("quit"), { return: {} });
        for (const m of [unix, tcp, mon]) {
          await m.rest();
          assert(m.names().includes("SHUTDOWN"), m.names().join());
          m.close();
        }
        assertEquals((await vmm.status()).code, 0, vmm.describe());
        assert(!exists(sock) && !exists(monPath), "a QMP socket file is still there");
      });
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
);

testWhen(needs, "lifecycle: query-cpus, query-chardev (pty), query-mem", async () => {
  await withVm("tick", ["-smp", "2"], async ({ sock, vmm }) => {
    const mon = await Monitor.unix(sock);
    // Both vCPUs' Workers publish their thread ids once started.
    let cpus: { CPU: number; thread_id: number; props: Record<string, number> }[] = [];
    for (let i = 0; i < 500; i++) {
      cpus = (await mon.execute("query-cpus")).return;
      if (cpus.length === 2 && cpus.every((c) => c.thread_id > 0)) break;
      await sleep(20);
    }
    assertEquals(cpus.map((c) => c.CPU), [0, 1]);
    assert(cpus[0].thread_id !== cpus[1].thread_id, JSON.stringify(cpus));
    for (const c of cpus) {
      assert(exists(`/proc/${vmm.pid}/task/${c.thread_id}`), `no thread ${c.thread_id}`);
      assert(c.thread_id !== vmm.pid, "a vCPU reported the main thread");
    }
    const chardevs = (await mon.execute("query-chardev")).return;
    assertEquals(chardevs.length, 1, JSON.stringify(chardevs));
    assertEquals(chardevs[0].label, "serial0");
    assertMatch(chardevs[0].filename, /^pty:\/dev\/pts\/\d+$/);
    const pty = chardevs[0].filename.slice(4);
    assert(exists(pty), `${pty} does not exist`);
    assertMatch(vmm.stderr, new RegExp(`Pty path is: "${pty}"`));

    // The AP waits for a SIPI inside KVM_RUN: stop must still get both vCPUs out.
    assertEquals(await mon.execute("stop"), { return: {} });
    assertEquals(await mon.execute("cont"), { return: {} });

    assertEquals(await mon.execute("query-mem"), { return: {} });
    await waitUntil(() => vmm.stderr.includes("guest memory: 268435456 bytes"));
    assertMatch(vmm.stderr, /guest memory: 268435456 bytes/);
    await mon.execute("quit");
    mon.close();
    assertEquals((await vmm.status()).code, 0, vmm.describe());
  }, "pty");
});

testWhen(needs, "lifecycle: query-iothreads names each iothread's host thread", async () => {
  // No disk names them: StratoVirt still makes the threads, and so do we.
  const objects = ["-object", "iothread,id=io0", "-object", "iothread,id=io1"];
  await withVm("tick", objects, async ({ sock, vmm }) => {
    const mon = await Monitor.unix(sock);
    let threads: { id: string; "thread-id": number }[] = [];
    for (let i = 0; i < 500; i++) {
      threads = (await mon.execute("query-iothreads")).return;
      if (threads.length === 2 && threads.every((t) => t["thread-id"] > 0)) break;
      await sleep(20);
    }
    assertEquals(threads.map((t) => t.id), ["io0", "io1"]);
    assert(threads[0]["thread-id"] !== threads[1]["thread-id"], JSON.stringify(threads));
    for (const t of threads) {
      const tid = t["thread-id"];
      assert(exists(`/proc/${vmm.pid}/task/${tid}`), `no thread ${tid}`);
      assert(tid !== vmm.pid, "an iothread reported the main thread");
    }
    await mon.execute("quit");
    mon.close();
    assertEquals((await vmm.status()).code, 0, vmm.describe());
  });
});

testWhen(needs, "lifecycle: a bad command line creates no QMP socket", async () => {
  const dir = await Deno.makeTempDir({ prefix: "sv-lifecycle-bad-" });
  try {
    const sock = `${dir}/qmp.sock`;
    const bad = Vmm.start([
      "-machine",
      "microvm",
      "-m",
      "not-a-size",
      "-kernel",
      `${dir}/none`,
      "-qmp",
      `unix:${sock},server,nowait`,
    ]);
    assertEquals((await bad.status()).code, 1, bad.describe());
    assertMatch(bad.stderr, /-m/);
    assert(!exists(sock), "a socket was made for a bad command line");

    // A good command line whose kernel is missing fails after QMP listened: the file goes too.
    const missing = Vmm.start([
      "-machine",
      "microvm",
      "-m",
      "256M",
      "-kernel",
      `${dir}/none`,
      "-qmp",
      `unix:${sock},server,nowait`,
    ]);
    assertEquals((await missing.status()).code, 1, missing.describe());
    assertMatch(missing.stderr, /none/);
    assert(!exists(sock), "the QMP socket outlived a failed start");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
