/**
 * QMP bad input against the real microvm (the server tests in tests/qmp use a fake machine):
 * commands racing with a guest that shuts the VM down, and a crowd of misbehaving clients that
 * must leave no file descriptor behind in the VMM.
 */
import { assert, assertEquals } from "../lib/assert.ts";
import { kvm, testWhen } from "../lib/skip.ts";
import { tinyKernel } from "../machine/tiny_guests.ts";
import { type Json, QmpClient } from "../qmp/client.ts";
import { tickGuestCode } from "./tick_guest.ts";
import { exists, lifecycleNeeds, Monitor, startTinyVm, waitUntil } from "./vmm.ts";

const needs = [kvm, ...lifecycleNeeds];
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Every message a client got is one the protocol allows: a reply, an error or an event. */
function assertWellFormed(messages: Json[]): void {
  for (const m of messages) {
    const ok = "return" in m || "event" in m ||
      (typeof m.error?.class === "string" && typeof m.error?.desc === "string");
    assert(ok, `unexpected message: ${JSON.stringify(m)}`);
  }
}

/** The VMM's open file descriptors (by /proc, so sockets, eventfds and files all count). */
function vmmFds(pid: number): number {
  return [...Deno.readDirSync(`/proc/${pid}/fd`)].length;
}

const COMMANDS = [
  "query-status",
  "query-cpus",
  "stop",
  "cont",
  "query-block",
  "query-chardev",
  "system_powerdown",
  "query-mem",
  "no-such-command",
];

testWhen(needs, "qmp races: commands racing with a guest shutdown get answers or EOF", async () => {
  const { dir, sock, vmm } = await startTinyVm(
    tinyKernel("vmlinux-bin", "bye\n", "reset"),
    ["-S"],
  );
  try {
    const control = await Monitor.unix(sock);
    const spammers = await Promise.all(
      Array.from({ length: 4 }, async () => {
        const c = await QmpClient.unix(sock);
        await c.negotiate();
        return c;
      }),
    );
    // Each spammer writes its commands without waiting for answers, while the guest runs and
    // resets the machine (the guest ends within a few ms of cont).
    // They go on until the VMM hangs up, so commands are in flight when the guest ends it.
    let closed = 0;
    const floods = spammers.map(async (c, n) => {
      const reading = c.rest().finally(() => closed++);
      for (let i = 0; closed === 0 && i < 20_000; i++) {
        const execute = COMMANDS[(i + n) % COMMANDS.length];
        try {
          await c.send(JSON.stringify({ execute, id: i }) + "\r\n");
        } catch {
          break; // the VMM closed the connection: it is going down
        }
        if (i % 50 === 49) await sleep(1);
      }
      return await reading;
    });
    // A spammer's own cont may have won the race: then this one is refused, as it should be.
    const cont = await control.execute("cont");
    assert("return" in cont || cont.error?.class === "GenericError", JSON.stringify(cont));
    const answers = await Promise.all(floods);
    answers.forEach(assertWellFormed);
    console.log(`  answers before the VM went down: ${answers.map((a) => a.length).join(", ")}`);
    const status = await vmm.status();
    assertEquals(status.code, 0, vmm.describe());
    assert(!exists(sock), "the QMP socket file is still there");
    assert(!/Uncaught|panicked|TypeError|RangeError/.test(vmm.stderr), vmm.describe());
    for (const c of spammers) c.close();
    control.close();
  } finally {
    await vmm.cleanup();
    await Deno.remove(dir, { recursive: true });
  }
});

testWhen(needs, "qmp races: 100 misbehaving clients leave no fd behind in the VMM", async () => {
  const { dir, sock, vmm } = await startTinyVm(tickGuestCode("tick guest up\n"), []);
  try {
    const control = await Monitor.unix(sock);
    const status = async () => (await control.execute("query-status")).return?.status;
    // The socket is up before the vCPUs start (status "prelaunch" until then).
    for (let i = 0; i < 500 && await status() !== "running"; i++) await sleep(20);
    assertEquals(await status(), "running");
    const before = vmmFds(vmm.pid);
    const clients = await Promise.all(
      Array.from({ length: 100 }, () => QmpClient.unix(sock)),
    );
    // A quarter hang up at once, a quarter send half a line, a quarter send garbage, the rest
    // negotiate and ask something; then everyone disconnects.
    await Promise.all(clients.map(async (c, i) => {
      switch (i % 4) {
        case 0:
          break;
        case 1:
          await c.next();
          await c.send('{"execute":"qmp_capabil');
          break;
        case 2: {
          await c.next();
          await c.send("}}}{not json\r\n");
          const r = await c.next();
          assertEquals(r.error?.class, "GenericError", JSON.stringify(r));
          break;
        }
        default: {
          await c.negotiate();
          const r = await c.execute("query-status", undefined, i);
          assertEquals(r.return?.status, "running", JSON.stringify(r));
        }
      }
      c.close();
    }));
    const settled = await waitUntil(() => vmmFds(vmm.pid) <= before, 10_000);
    assert(settled, `the VMM holds ${vmmFds(vmm.pid)} fds, ${before} before the clients came`);
    // Still alive and still serving.
    await sleep(100);
    assertEquals(vmm.exit, null, vmm.describe());
    assertEquals((await control.execute("query-status")).return?.status, "running");
    assertEquals(await control.execute("quit"), { return: {} });
    await control.rest();
    control.close();
    assertEquals((await vmm.status()).code, 0, vmm.describe());
  } finally {
    await vmm.cleanup();
    await Deno.remove(dir, { recursive: true });
  }
});
