/**
 * -daemonize through the real program (`deno run -A main.ts`): the foreground process returns 0
 * once the daemon's VM is built; the daemon runs on in its own session with stdio on /dev/null,
 * its pid in -pidfile, answering QMP; QMP quit ends it and removes the pidfile. A daemon that
 * cannot build its VM makes the foreground process print its error and exit 1.
 *
 * Waits are bounded guards (a daemon left running is killed by pid at the end), not assertions
 * about speed.
 */
import { assert, assertEquals, assertMatch } from "../lib/assert.ts";
import { kvm, testWhen } from "../lib/skip.ts";
import { exists, helperBuilt, Monitor, waitUntil } from "../lifecycle/vmm.ts";
import { tinyKernel } from "./tiny_guests.ts";

const MAIN = new URL("../../main.ts", import.meta.url).pathname;

async function stratovirt(args: string[]): Promise<{ code: number; stderr: string }> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "--quiet", MAIN, ...args],
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
    env: { STRATOVIRT_LOG_LEVEL: "info" },
  }).output();
  return { code: out.code, stderr: new TextDecoder().decode(out.stderr) };
}

/** The process's state letter and session id from /proc, or null once it is gone. */
function procState(pid: number): { state: string; sid: number } | null {
  try {
    const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
    // pid (comm) state ppid pgrp session ...: comm may hold spaces, so split after its ")".
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return { state: fields[0], sid: Number(fields[3]) };
  } catch {
    return null;
  }
}

/** Gone, or a zombie waiting for whoever adopted it to reap it. */
function ended(pid: number): boolean {
  const s = procState(pid);
  return s === null || s.state === "Z";
}

testWhen(
  [kvm, helperBuilt],
  "-daemonize: the foreground process returns, the daemon answers QMP, quit ends it and removes the pidfile",
  async () => {
    const dir = await Deno.makeTempDir({ prefix: "sv-daemon-" });
    const pidfile = `${dir}/vm.pid`;
    const qmp = `${dir}/qmp.sock`;
    const logFile = `${dir}/vm.log`;
    const serialFile = `${dir}/serial.out`;
    let daemonPid = 0;
    try {
      const kernel = `${dir}/kernel`;
      // Prints, then counts in guest RAM forever: the VM runs until QMP quit.
      await Deno.writeFile(kernel, tinyKernel("pvh", "daemon guest\n", "count"));
      const r = await stratovirt([
        ...["-machine", "microvm", "-m", "256M", "-kernel", kernel],
        ...["-serial", `file,path=${serialFile}`, "-D", logFile],
        ...["-qmp", `unix:${qmp},server,nowait`, "-pidfile", pidfile, "-daemonize"],
      ]);
      assertEquals(r.code, 0, r.stderr);
      assertEquals(r.stderr, "", "the foreground process prints nothing when the daemon starts");

      // The pidfile is written before the VM is built, so it is there when the parent returns.
      daemonPid = Number(Deno.readTextFileSync(pidfile).trim());
      assert(daemonPid > 0, `pidfile holds a pid: ${Deno.readTextFileSync(pidfile)}`);
      const proc = procState(daemonPid);
      assert(proc !== null && proc.state !== "Z", `daemon ${daemonPid} is running`);
      assertEquals(proc.sid, daemonPid, "the daemon leads its own session (setsid)");
      for (const fd of [0, 1, 2]) {
        assertEquals(Deno.readLinkSync(`/proc/${daemonPid}/fd/${fd}`), "/dev/null", `fd ${fd}`);
      }

      const monitor = await Monitor.unix(qmp);
      try {
        const status = await monitor.client.execute("query-status");
        assertEquals(status.return?.status, "running", JSON.stringify(status));
        assertEquals(status.return?.running, true);
        // The guest writes its line a byte at a time: wait for the newline.
        const printed = () =>
          exists(serialFile) && Deno.readTextFileSync(serialFile).endsWith("\n");
        assert(await waitUntil(printed), "the daemon's guest printed on its serial file");
        assertEquals(Deno.readTextFileSync(serialFile), "daemon guest\n");
        const quit = await monitor.client.execute("quit");
        assertEquals(quit, { return: {} });
      } finally {
        monitor.client.close();
      }
      assert(await waitUntil(() => ended(daemonPid)), `daemon ${daemonPid} ended after quit`);
      assert(await waitUntil(() => !exists(pidfile)), "the daemon removed its pidfile");
      assert(!exists(qmp), "the daemon removed its QMP socket");
      assertMatch(Deno.readTextFileSync(logFile), /VM ends/);
    } finally {
      if (daemonPid > 0 && !ended(daemonPid)) {
        try {
          Deno.kill(daemonPid, "SIGKILL");
        } catch { /* gone already */ }
      }
      await Deno.remove(dir, { recursive: true });
    }
  },
);

testWhen(
  [helperBuilt],
  "-daemonize: a daemon that cannot build its VM makes the foreground process print why and exit 1",
  async () => {
    const dir = await Deno.makeTempDir({ prefix: "sv-daemon-" });
    try {
      const pidfile = `${dir}/vm.pid`;
      const r = await stratovirt([
        ...["-machine", "microvm", "-m", "256M", "-kernel", `${dir}/no-such-kernel`],
        ...["-D", `${dir}/vm.log`, "-pidfile", pidfile, "-daemonize"],
      ]);
      assertEquals(r.code, 1, r.stderr);
      assertMatch(r.stderr, /^stratovirt: cannot read kernel .*no-such-kernel.*\n$/);
      // The daemon reports first and cleans up after: give it the moment that takes.
      assert(await waitUntil(() => !exists(pidfile)), "the failed daemon removed its pidfile");
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
);

testWhen(
  [],
  "-daemonize: refused with a stdio serial before anything starts",
  async () => {
    const r = await stratovirt([
      ...["-machine", "microvm", "-kernel", "/dev/null", "-serial", "stdio", "-daemonize"],
    ]);
    assertEquals(r.code, 1);
    assertMatch(r.stderr, /-daemonize: a daemon cannot bind the serial port to stdio/);
  },
);
