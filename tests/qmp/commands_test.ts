/** Every command over the socket, with good and bad arguments, against the fake machine. */
import { assert, assertEquals, assertMatch } from "../lib/assert.ts";
import { VERSION } from "../../src/version.ts";
import { COMMANDS } from "../../src/qmp/commands.ts";
import { FakeMachine } from "../../src/qmp/testing/fake_machine.ts";
import { type Json, QmpClient, startServer, stopServer } from "./client.ts";

async function session(machine = new FakeMachine(), log?: (m: string) => void) {
  const t = await startServer({ log }, machine);
  const c = await QmpClient.unix(t.path);
  await c.negotiate();
  return {
    c,
    t,
    run: (execute: string, args?: Json) => c.execute(execute, args),
    async done() {
      c.close();
      await stopServer(t);
    },
  };
}

const generic = (desc: string) => ({ error: { class: "GenericError", desc } });

Deno.test("qmp commands: commands without arguments refuse arguments, naming them", async () => {
  const s = await session();
  const noArgs = [
    "stop",
    "cont",
    "system_powerdown",
    "system_reset",
    "quit",
    "query-status",
    "query-cpus",
    "query-hotpluggable-cpus",
    "query-version",
    "query-commands",
    "query-target",
    "query-kvm",
    "query-machines",
    "query-events",
    "query-iothreads",
    "query-block",
    "query-chardev",
    "query-mem",
    "query-migrate-capabilities",
    "query-command-line-options",
  ];
  for (const name of noArgs) {
    assertEquals(await s.run(name, { bogus: 1 }), generic("Parameter 'bogus' is unexpected"), name);
  }
  assertEquals(s.t.machine.calls, []);
  assertEquals(await s.run("query-status", {}), {
    return: { running: true, singlestep: false, status: "running" },
  });
  await s.done();
});

Deno.test("qmp commands: malformed requests name the member at fault", async () => {
  const s = await session();
  const cases: [string, Json][] = [
    ['{"arguments":{}}', generic("QMP input lacks member 'execute'")],
    ['{"execute":5}', generic("QMP input member 'execute' must be a string")],
    [
      '{"execute":"stop","arguments":[1]}',
      generic("QMP input member 'arguments' must be an object"),
    ],
    [
      '{"execute":"stop","arguments":"isdf"}',
      generic("QMP input member 'arguments' must be an object"),
    ],
    [
      '{"execute":"stop","arguments":null}',
      generic("QMP input member 'arguments' must be an object"),
    ],
    ['{"execute":"stop","extra":1}', generic("QMP input member 'extra' is unexpected")],
    ['{"execute":"stop","exec-oob":"x"}', generic("QMP input member 'exec-oob' is unexpected")],
    ['{"execute":"bogus-cmd"}', {
      error: { class: "CommandNotFound", desc: "The command bogus-cmd has not been found" },
    }],
    ['{"execute":"query-cpu-definitions"}', {
      error: {
        class: "CommandNotFound",
        desc: "The command query-cpu-definitions has not been found",
      },
    }],
  ];
  for (const [text, expected] of cases) {
    await s.c.send(text + "\r\n");
    assertEquals(await s.c.next(), expected, text);
  }
  assertEquals(s.t.machine.status(), "running");
  await s.done();
});

Deno.test("qmp commands: query-status in every lifecycle state", async () => {
  const created = await session(new FakeMachine("created"));
  assertEquals((await created.run("query-status")).return, {
    running: false,
    singlestep: false,
    status: "prelaunch",
  });
  await created.done();
  const paused = await session(new FakeMachine("paused"));
  assertEquals((await paused.run("query-status")).return.status, "paused");
  await paused.done();
});

Deno.test("qmp commands: system_powerdown / system_reset reach the machine", async () => {
  const s = await session();
  assertEquals(await s.run("system_powerdown"), { return: {} });
  assertEquals(await s.run("system_reset"), { return: {} });
  assertEquals(s.t.machine.calls, ["powerdown", "reset"]);
  await s.done();
});

Deno.test("qmp commands: query-cpus lists present vCPUs in StratoVirt's shape", async () => {
  const s = await session();
  const r = await s.run("query-cpus");
  assertEquals(r.return, [
    {
      CPU: 0,
      arch: "x86",
      current: true,
      halted: false,
      props: { "core-id": 0, die_id: 0, "socket-id": 0, "thread-id": 0 },
      qom_path: "/machine/unattached/device[0]",
      thread_id: 4242,
    },
    {
      CPU: 1,
      arch: "x86",
      current: true,
      halted: true,
      props: { "core-id": 1, die_id: 0, "socket-id": 0, "thread-id": 0 },
      qom_path: "/machine/unattached/device[1]",
      thread_id: 4243,
    },
  ]);
  await s.done();
});

Deno.test("qmp commands: query-hotpluggable-cpus lists every slot, qom-path only if present", async () => {
  const s = await session();
  const r = (await s.run("query-hotpluggable-cpus")).return as Json[];
  assertEquals(r.length, 4);
  assertEquals(r[0], {
    props: { "core-id": 0, die_id: 0, "socket-id": 0, "thread-id": 0 },
    "qom-path": "/machine/unattached/device[0]",
    type: "host-x86-cpu",
    "vcpus-count": 1,
  });
  assertEquals(r[3], {
    props: { "core-id": 1, die_id: 0, "socket-id": 1, "thread-id": 0 },
    type: "host-x86-cpu",
    "vcpus-count": 1,
  });
  await s.done();
});

Deno.test("qmp commands: version, target, kvm, machines, events, commands", async () => {
  const s = await session();
  assertEquals((await s.run("query-version")).return, {
    package: `StratoVirt-${VERSION}`,
    qemu: { major: 5, micro: 1, minor: 0 },
  });
  assertEquals((await s.run("query-target")).return, { arch: "x86_64" });
  assertEquals((await s.run("query-kvm")).return, { enabled: true, present: true });
  const machines = (await s.run("query-machines")).return as Json[];
  assertEquals(machines.map((m) => m.name), ["none", "microvm", "q35"]);
  assertEquals(machines[1], {
    "cpu-max": 255,
    deprecated: false,
    "hotpluggable-cpus": false,
    name: "microvm",
    "numa-mem-supported": false,
  });
  const events = ((await s.run("query-events")).return as Json[]).map((e) => e.name);
  for (const e of ["SHUTDOWN", "RESET", "STOP", "RESUME", "POWERDOWN", "DEVICE_DELETED"]) {
    assert(events.includes(e), e);
  }
  const commands = ((await s.run("query-commands")).return as Json[]).map((c) => c.name);
  assertEquals(commands, Object.keys(COMMANDS));
  // Every listed command exists on the wire (none answers CommandNotFound).
  for (const name of commands) {
    if (name === "quit" || name === "qmp_capabilities") continue;
    const r = await s.run(name, {});
    assert(r.error?.class !== "CommandNotFound", `${name}: ${JSON.stringify(r)}`);
  }
  await s.done();
});

Deno.test("qmp commands: iothreads, block, chardev, mem", async () => {
  const logged: string[] = [];
  const s = await session(undefined, (m) => logged.push(m));
  assertEquals((await s.run("query-iothreads")).return, [
    { id: "iothread0", "poll-grow": 0, "poll-max-ns": 0, "poll-shrink": 0, "thread-id": 5151 },
  ]);
  const block = (await s.run("query-block")).return as Json[];
  assertEquals(block.length, 1);
  assertEquals(block[0].device, "rootfs");
  assertEquals(block[0].qdev, "blk0");
  assertEquals(block[0].inserted.file, "/images/rootfs.ext4");
  assertEquals(block[0].inserted.ro, false);
  assertEquals(block[0].inserted.cache.direct, true);
  assertEquals((await s.run("query-chardev")).return, [
    { filename: "pty:/dev/pts/7", "frontend-open": true, label: "serial0" },
  ]);
  assertEquals(await s.run("query-mem"), { return: {} });
  assert(logged.some((l) => l.includes("134217728 bytes")), logged.join("\n"));
  await s.done();
});

Deno.test("qmp commands: libvirt probes get StratoVirt's answers", async () => {
  const s = await session();
  assertEquals((await s.run("query-migrate-capabilities")).return, []);
  const opts = (await s.run("query-command-line-options")).return as Json[];
  assertEquals(opts[0].option, "drive");
  assertEquals(opts[0].parameters.map((p: Json) => p.name), ["discard", "detect-zeroes"]);
  const types = (await s.run("qom-list-types")).return as Json[];
  assert(types.some((t) => t.name === "pcie-root-port" && t.parent === "pcie-root-port-base"));
  assertEquals((await s.run("device-list-properties", { typename: "virtio-blk-pci" })).return, [
    { name: "disable-legacy", type: "OnOffAuto" },
    { name: "num-queues", type: "uint16" },
  ]);
  assertEquals(await s.run("device-list-properties"), generic("Parameter 'typename' is missing"));
  assertEquals(
    await s.run("device-list-properties", { typename: 3 }),
    generic("Invalid parameter type for 'typename', expected: string"),
  );
  assertEquals((await s.run("qom-list", { path: "/machine" })).return, []);
  assertEquals((await s.run("qom-get", { path: "/machine", property: "type" })).return, []);
  assertEquals(
    await s.run("qom-get", { path: 1 }),
    generic("Invalid parameter type for 'path', expected: string"),
  );
  await s.done();
});

Deno.test("qmp commands: device_add / device_del with DEVICE_DELETED", async () => {
  const s = await session();
  const add = {
    id: "net0",
    driver: "virtio-net-pci",
    netdev: "tap0",
    addr: "0x2",
    "num-queues": 2,
  };
  assertEquals(await s.run("device_add", add), { return: {} });
  assertEquals(s.t.machine.devices.get("net0"), add);
  assertEquals(await s.run("device_add", add), generic("Device id 'net0' is already in use"));
  assertEquals(
    await s.run("device_add", { id: "x", driver: "e1000" }),
    generic("Failed to add device: Driver e1000 is not support"),
  );
  assertEquals(await s.run("device_add", { id: "x" }), generic("Parameter 'driver' is missing"));
  assertEquals(
    await s.run("device_add", { id: "x", driver: "virtio-blk-pci", drvie: "d" }),
    generic("Parameter 'drvie' is unexpected"),
  );
  assertEquals(
    await s.run("device_add", { id: "x", driver: "virtio-blk-pci", "num-queues": 70000 }),
    generic("Invalid parameter type for 'num-queues', expected: uint16"),
  );
  assertEquals(
    await s.run("device_add", { id: "x", driver: "virtio-blk-pci", multifunction: "on" }),
    generic("Invalid parameter type for 'multifunction', expected: boolean"),
  );
  await s.c.send('{"execute":"device_del","arguments":{"id":"net0"},"id":9}\r\n');
  // The event may overtake the reply (StratoVirt's own documentation shows it first).
  const got = [await s.c.next(), await s.c.next()];
  const reply = got.find((m) => m.event === undefined);
  const event = got.find((m) => m.event !== undefined);
  assertEquals(reply, { return: {}, id: 9 });
  assertEquals(event.event, "DEVICE_DELETED");
  assertEquals(event.data, { device: "net0", path: "/machine/peripheral/net0" });
  assertEquals(await s.run("device_del", { id: "net0" }), {
    error: { class: "DeviceNotFound", desc: "Device 'net0' not found" },
  });
  assertEquals(await s.run("device_del", {}), generic("Parameter 'id' is missing"));
  await s.done();
});

Deno.test("qmp commands: blockdev-add / blockdev-del, nested arguments named with dots", async () => {
  const s = await session();
  const add = {
    "node-name": "drive-1",
    file: { driver: "file", filename: "/tmp/disk.img", aio: "native" },
    cache: { direct: true },
    "read-only": true,
  };
  assertEquals(await s.run("blockdev-add", add), { return: {} });
  const block = (await s.run("query-block")).return as Json[];
  assertEquals(block[1].device, "drive-1");
  assertEquals(block[1].inserted.ro, true);
  assertEquals(await s.run("blockdev-add", add), generic("Drive drive-1 already exists"));
  assertEquals(
    await s.run("blockdev-add", { "node-name": "d2", file: { driver: "file" } }),
    generic("Parameter 'file.filename' is missing"),
  );
  assertEquals(
    await s.run("blockdev-add", { "node-name": "d2", file: "/tmp/x" }),
    generic("Invalid parameter type for 'file', expected: object"),
  );
  assertEquals(
    await s.run("blockdev-add", {
      "node-name": "d2",
      file: { driver: "file", filename: "/x" },
      cache: { direct: "yes" },
    }),
    generic("Invalid parameter type for 'cache.direct', expected: boolean"),
  );
  assertEquals(
    await s.run("blockdev-add", { file: {} }),
    generic("Parameter 'node-name' is missing"),
  );
  assertEquals(await s.run("blockdev-del", { "node-name": "drive-1" }), { return: {} });
  assertEquals(
    await s.run("blockdev-del", { "node-name": "drive-1" }),
    generic("Drive drive-1 not found"),
  );
  assertEquals(
    await s.run("blockdev-del", { node_name: "x" }),
    generic("Parameter 'node_name' is unexpected"),
  );
  assertEquals(s.t.machine.calls, ["addBlockdev:drive-1", "delBlockdev:drive-1"]);
  await s.done();
});

Deno.test("qmp commands: netdev_add / netdev_del", async () => {
  const s = await session();
  assertEquals(await s.run("netdev_add", { id: "net-0", ifname: "tap0", queues: 2 }), {
    return: {},
  });
  assertEquals(s.t.machine.netdevs.get("net-0"), { id: "net-0", ifname: "tap0", queues: 2 });
  assertEquals(
    await s.run("netdev_add", { id: "net-1", vhost: "on" }),
    generic("Invalid parameter type for 'vhost', expected: boolean"),
  );
  assertEquals(
    await s.run("netdev_add", { id: "net-1", queues: -1 }),
    generic("Invalid parameter type for 'queues', expected: uint16"),
  );
  assertEquals(await s.run("netdev_add", { ifname: "tap1" }), generic("Parameter 'id' is missing"));
  assertEquals(await s.run("netdev_del", { id: "net-0" }), { return: {} });
  assertEquals(await s.run("netdev_del", { id: "net-0" }), generic("Netdev net-0 not found"));
  assertEquals(
    await s.run("netdev_del", { id: 0 }),
    generic("Invalid parameter type for 'id', expected: string"),
  );
  await s.done();
});

Deno.test("qmp commands: getfd without an fd says so; with bad arguments names them", async () => {
  const s = await session();
  const r = await s.run("getfd", { fdname: "tap-fd" });
  assertEquals(r.error.class, "GenericError");
  assertMatch(r.error.desc, /^Invalid SCM message: no file descriptor came with getfd/);
  assertEquals(await s.run("getfd"), generic("Parameter 'fdname' is missing"));
  assertEquals(
    await s.run("getfd", { fdname: 1 }),
    generic("Invalid parameter type for 'fdname', expected: string"),
  );
  assertEquals(s.t.machine.calls, []);
  await s.done();
});

Deno.test("qmp commands: balloon without a balloon device is DeviceNotActive", async () => {
  const s = await session();
  const notActive = {
    error: { class: "DeviceNotActive", desc: "No balloon device has been activated" },
  };
  assertEquals(await s.run("query-balloon"), notActive);
  assertEquals(await s.run("balloon", { value: 1 << 30 }), notActive);
  assertEquals(
    await s.run("balloon", { value: "1G" }),
    generic("Invalid parameter type for 'value', expected: uint64"),
  );
  await s.done();
});

Deno.test("qmp commands: human-monitor-command info subset", async () => {
  const s = await session();
  const hmp = (line: string) => s.run("human-monitor-command", { "command-line": line });
  assertEquals((await hmp("info status")).return, "VM status: running\r\n");
  assertEquals(
    (await hmp("info cpus")).return,
    "* CPU #0: thread_id=4242\r\n  CPU #1: thread_id=4243 (halted)\r\n",
  );
  assertEquals((await hmp("info version")).return, `5.0.1 (StratoVirt-${VERSION})\r\n`);
  assertMatch((await hmp("info block")).return, /^rootfs: \/images\/rootfs\.ext4 \(raw\)\r\n/);
  assertEquals((await hmp("info chardev")).return, "serial0: filename=pty:/dev/pts/7\r\n");
  assertMatch((await hmp("info registers")).error.desc, /^Unsupported command: info registers/);
  assertEquals(await hmp("info"), generic("Invalid number of arguments"));
  assertEquals(await hmp("savevm x"), generic("Unsupported command: savevm"));
  assertEquals(await hmp(""), generic("Unsupported command: "));
  await s.run("blockdev-add", { "node-name": "d1", file: { driver: "file", filename: "/x" } });
  assertEquals(await hmp("drive_del d1"), { return: "" });
  assertEquals(await hmp("drive_del d1"), generic("Drive d1 not found"));
  assertEquals(s.t.machine.calls, ["addBlockdev:d1", "delBlockdev:d1"]);
  assertEquals(
    await s.run("human-monitor-command", {}),
    generic("Parameter 'command-line' is missing"),
  );
  await s.done();
});
