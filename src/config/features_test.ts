/** What StratoVirt users type every day beyond the guidebook's examples: each parses as described. */
import { assertEquals, assertMatch } from "../../tests/lib/assert.ts";
import { assertPartial, parse } from "./testing/helpers.ts";
import { GIB } from "./values.ts";

const K = "-kernel /k";
const Q35 = "-machine q35 -kernel /k";

const CASES: [string, string, unknown][] = [
  ["-qmp over tcp", `${K} -qmp tcp:127.0.0.1:4444,server,nowait`, {
    qmp: [{ transport: "tcp", host: "127.0.0.1", port: 4444 }],
  }],
  [
    "-mon on a socket chardev (libvirt)",
    `${K} -chardev socket,id=charmonitor,path=/run/mon.sock,server,nowait -mon chardev=charmonitor,id=monitor,mode=control`,
    { qmp: [{ transport: "unix", path: "/run/mon.sock" }] },
  ],
  ["-incoming unix", `${K} -incoming unix:/tmp/mig.sock`, {
    incoming: { kind: "unix", path: "/tmp/mig.sock" },
  }],
  ["-incoming tcp", `${K} -incoming tcp:0.0.0.0:4446`, {
    incoming: { kind: "tcp", host: "0.0.0.0", port: 4446 },
  }],
  ["-S", `${K} -S`, { runtime: { freeze: true } }],
  ["-freeze", `${K} -freeze`, { runtime: { freeze: true } }],
  ["-no-shutdown", `${K} -no-shutdown`, { runtime: { noShutdown: true } }],
  ["-name", `${K} -name vm1`, { runtime: { name: "vm1" } }],
  ["-name guest= (libvirt)", `${K} -name guest=vm1,debug-threads=on`, { runtime: { name: "vm1" } }],
  ["-accel test with -mod-test needs no kernel", `-accel test -mod-test /tmp/t.sock`, {
    machine: { type: "microvm", accel: "test" },
    runtime: { modTest: "/tmp/t.sock" },
  }],
  ["-machine accel=test agrees with -accel test", `-machine q35,accel=test -accel test`, {
    machine: { type: "q35", accel: "test" },
  }],
  [
    "memory-backend-file and -memfd",
    `${K} -m 2G -smp 2 ` +
    `-object memory-backend-file,id=m0,size=1G,mem-path=/dev/hugepages,share=on,prealloc=on ` +
    `-object memory-backend-memfd,id=m1,size=1G,host-nodes=0,policy=preferred ` +
    `-numa node,cpus=0,memdev=m0 -numa node,cpus=1,memdev=m1`,
    {
      memoryBackends: [
        {
          kind: "memory-backend-file",
          memPath: "/dev/hugepages",
          share: true,
          prealloc: true,
          sizeBytes: GIB,
        },
        { kind: "memory-backend-memfd", share: true, policy: "preferred", hostNodes: [0] },
      ],
      numa: { nodes: [{ nodeId: 0, cpus: [0] }, { nodeId: 1, cpus: [1] }] },
    },
  ],
  [
    "tap with fds and vhostfds",
    `${K} -netdev tap,id=n,fds=3:4,vhost=on,vhostfds=5:6 ` +
    `-device virtio-net-device,netdev=n,id=x,mq=on`,
    {
      netdevs: [{ ifname: null, fds: [3, 4], queues: 2, vhost: true, vhostFds: [5, 6] }],
    },
  ],
  ["tap with fd", `${K} -netdev tap,id=n,fd=9 -device virtio-net-device,netdev=n,id=x`, {
    netdevs: [{ fds: [9], queues: 1 }],
  }],
  [
    "vfio by sysfsdev",
    `${Q35} -device vfio-pci,sysfsdev=/sys/bus/pci/devices/0000:01:00.0,id=v,bus=pcie.0,addr=0x5`,
    {
      devices: [{ kind: "vfio", host: null, sysfsdev: "/sys/bus/pci/devices/0000:01:00.0" }],
    },
  ],
  ["vfio host without domain", `${Q35} -device vfio-pci,host=1A:00.3,id=v,bus=pcie.0,addr=0x5`, {
    devices: [{ host: "0000:1a:00.3" }],
  }],
  [
    "multifunction slot",
    `${Q35} -device vhost-vsock-pci,id=v,guest-cid=3,bus=pcie.0,addr=0x2.0x0,multifunction=on ` +
    `-device virtio-balloon-pci,id=b,bus=pcie.0,addr=0x2.0x1`,
    {
      devices: [{ pci: { slot: 2, function: 0, multifunction: true } }, {
        pci: { slot: 2, function: 1 },
      }],
    },
  ],
  ["serial on a stdio chardev", `${K} -chardev stdio,id=c -serial chardev:c`, {
    serial: { chardev: "c", backend: { type: "stdio" } },
  }],
  [
    "daemon logging to a file with a pty serial",
    `${K} -daemonize -D /var/log/sv.log -serial pty -pidfile /run/sv.pid`,
    {
      runtime: {
        daemonize: true,
        logging: { enabled: true, file: "/var/log/sv.log" },
        pidfile: "/run/sv.pid",
      },
    },
  ],
  [
    "readonly as a bare flag, 0x hex numbers",
    `${K} -drive id=d,file=/f,readonly,throttling.iops-total=0x100 ` +
    `-device virtio-blk-device,drive=d,id=b,num-queues=0x2`,
    {
      drives: [{ readonly: true, iopsTotal: 256 }],
      devices: [{ numQueues: 2 }],
    },
  ],
  ["--version spelling", `--version`, { action: "version" }],
  ["-help skips every other check", `-m 1 -bogus -help`, { action: "help" }],
];

for (const [name, line, expect] of CASES) {
  Deno.test(`feature: ${name}`, () => assertPartial(parse(line), expect));
}

Deno.test("feature: bus=pci.0 is taken as pcie.0, with a warning", () => {
  const c = parse(`${Q35} -device virtio-balloon-pci,id=b,bus=pci.0,addr=0x4`);
  assertEquals(c.devices[0].pci?.bus, "pcie.0");
  assertMatch(c.warnings[0], /bus=pci.0 taken as pcie.0/);
});

Deno.test("feature: unused drives, netdevs and chardevs are warned about", () => {
  const c = parse(`${K} -drive id=d,file=/f -netdev tap,id=n,ifname=t -chardev pty,id=c`);
  assertEquals(c.warnings.length, 3);
  assertMatch(c.warnings[0], /-drive id=d,file=\/f: no device uses it/);
});

Deno.test("feature: balloon together with vfio-pci is warned about (guidebook 2.7)", () => {
  const c = parse(
    `${Q35} -device virtio-balloon-pci,id=b,bus=pcie.0,addr=0x4 ` +
      `-device vfio-pci,host=0000:1a:00.3,id=v,bus=pcie.0,addr=0x5`,
  );
  assertEquals(c.warnings.length, 1);
  assertMatch(c.warnings[0], /avoid balloon together with vfio-pci/);
});

Deno.test("feature: a libvirt-style q35 line", () => {
  const c = parse(
    "-name guest=vm1,debug-threads=on -machine q35,accel=kvm,usb=off,dump-guest-core=off,mem-share=on " +
      "-m 1024 -overcommit mem-lock=off -smp 2,sockets=2,cores=1,threads=1 " +
      "-uuid 1b4e28ba-2fa1-11d2-883f-0016d3cca427 -no-user-config -nodefaults " +
      "-chardev socket,id=charmonitor,path=/var/lib/libvirt/qemu/vm1.monitor,server,nowait " +
      "-mon chardev=charmonitor,id=monitor,mode=control -rtc base=utc -no-shutdown -boot strict=on " +
      '-kernel /var/lib/vm1/vmlinux -append "console=ttyS0 root=/dev/vda" ' +
      "-device pcie-root-port,port=0x8,chassis=1,id=pci.1,bus=pcie.0,multifunction=on,addr=0x1 " +
      "-device pcie-root-port,port=0x9,chassis=2,id=pci.2,bus=pcie.0,addr=0x1.0x1 " +
      "-drive file=/var/lib/vm1/disk.img,format=raw,if=none,id=drive-virtio-disk0 " +
      "-device virtio-blk-pci,bus=pci.1,addr=0x0,drive=drive-virtio-disk0,id=virtio-disk0,bootindex=1 " +
      "-netdev tap,fd=27,id=hostnet0 " +
      "-device virtio-net-pci,netdev=hostnet0,id=net0,mac=52:54:00:9b:0e:12,bus=pci.2,addr=0x0 " +
      "-chardev pty,id=charserial0 -serial chardev:charserial0 " +
      "-device virtio-balloon-pci,id=balloon0,bus=pcie.0,addr=0x2",
  );
  assertPartial(c, {
    machine: { type: "q35", memShare: true, dumpGuestCore: false },
    smp: { cpus: 2, sockets: 2, cores: 1, threads: 1 },
    memory: { sizeBytes: 1024 * 1024 * 1024 },
    qmp: [{ transport: "unix", path: "/var/lib/libvirt/qemu/vm1.monitor" }],
    runtime: { name: "vm1", noShutdown: true },
    serial: { chardev: "charserial0", backend: { type: "pty" } },
  });
  assertEquals(c.devices.map((d) => `${d.id}@${d.pci?.bus}:${d.pci?.slot}.${d.pci?.function}`), [
    "pci.1@pcie.0:1.0",
    "pci.2@pcie.0:1.1",
    "virtio-disk0@pci.1:0.0",
    "net0@pci.2:0.0",
    "balloon0@pcie.0:2.0",
  ]);
  // -overcommit, -uuid, -no-user-config, -nodefaults, -rtc, -boot, two chassis, debug-threads
  assertEquals(c.warnings.length, 9, c.warnings.join("\n"));
});
