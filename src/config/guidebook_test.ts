/**
 * Acceptance: every command line of StratoVirt's guidebook (/work/shared/spec/config_guidebook.md)
 * parses to the configuration it describes, one case per example block. Synopsis lines with
 * [optional] parts are written out both with and without those parts. Lines for aarch64 give
 * the clear error instead. Microvm lines need a kernel, so K adds one.
 */
import { assertEquals, assertMatch } from "../../tests/lib/assert.ts";
import { assertPartial, parse, refuse } from "./testing/helpers.ts";
import { GIB, MIB } from "./values.ts";

const K = "-kernel /path/to/kernel";
const Q35 = "-machine q35 -kernel /path/to/kernel";

interface Case {
  section: string;
  line: string;
  expect: unknown;
}

const CASES: Case[] = [
  // 1.1 Machine Config
  {
    section: "1.1 -machine name",
    line: `-machine microvm ${K}`,
    expect: { machine: { type: "microvm", dumpGuestCore: true, memShare: false, accel: "kvm" } },
  },
  {
    section: "1.1 -machine type=name,dump-guest-core,mem-share",
    line: `-machine type=q35,dump-guest-core=off,mem-share=on -kernel /k`,
    expect: { machine: { type: "q35", dumpGuestCore: false, memShare: true, accel: "kvm" } },
  },
  {
    section: "1.1 -machine none (capabilities)",
    line: `-machine none`,
    expect: { machine: { type: "none" } },
  },
  {
    section: "1.1 accel and usb (libvirt)",
    line: `-machine q35,accel=kvm,usb=off,dump-guest-core=on ${K}`,
    expect: { machine: { type: "q35", accel: "kvm", dumpGuestCore: true } },
  },
  // 1.2 Cpu Number
  {
    section: "1.2 -smp n",
    line: `-smp 4 ${K}`,
    expect: {
      smp: { cpus: 4, maxCpus: 4, sockets: 1, dies: 1, clusters: 1, cores: 4, threads: 1 },
    },
  },
  {
    section: "1.2 -smp cpus=,maxcpus=,sockets=,dies=,clusters=,cores=,threads=",
    line: `-smp cpus=4,maxcpus=16,sockets=2,dies=2,clusters=1,cores=2,threads=2 ${K}`,
    expect: {
      smp: { cpus: 4, maxCpus: 16, sockets: 2, dies: 2, clusters: 1, cores: 2, threads: 2 },
    },
  },
  // 1.3.1 Memory Size
  { section: "1.3.1 -m 256m", line: `-m 256m ${K}`, expect: { memory: { sizeBytes: 256 * MIB } } },
  { section: "1.3.1 -m 256", line: `-m 256 ${K}`, expect: { memory: { sizeBytes: 256 * MIB } } },
  { section: "1.3.1 -m 1G", line: `-m 1G ${K}`, expect: { memory: { sizeBytes: GIB } } },
  {
    section: "1.3.1 -m size=megs",
    line: `-m size=512 ${K}`,
    expect: { memory: { sizeBytes: 512 * MIB } },
  },
  {
    section: "1.3 default memory",
    line: K,
    expect: { memory: { sizeBytes: 256 * MIB, prealloc: false, memPath: null } },
  },
  // 1.3.2 Memory Prealloc
  {
    section: "1.3.2 -mem-prealloc",
    line: `-mem-prealloc ${K}`,
    expect: { memory: { prealloc: true } },
  },
  // 1.4 Backend file of memory
  {
    section: "1.4 -mem-path file",
    line: `-mem-path /path/to/file ${K}`,
    expect: { memory: { memPath: "/path/to/file" } },
  },
  {
    section: "1.4 -mem-path dir",
    line: `-mem-path /path/to/dir ${K}`,
    expect: { memory: { memPath: "/path/to/dir" } },
  },
  {
    section: "1.4.1 hugepages",
    line: `${K} -mem-path /path/to/hugepages`,
    expect: { memory: { memPath: "/path/to/hugepages" } },
  },
  // 1.5 NUMA node
  {
    section: "1.5 NUMA items 1-3",
    line: `-m 2G -smp 2 ${K} -object memory-backend-ram,size=2G,id=mem0,policy=bind,host-nodes=0 ` +
      `-numa node,cpus=0-1,memdev=mem0 -numa dist,src=0,dst=0,val=10`,
    expect: {
      memoryBackends: [{
        kind: "memory-backend-ram",
        id: "mem0",
        sizeBytes: 2 * GIB,
        policy: "bind",
        hostNodes: [0],
      }],
      numa: { nodes: [{ nodeId: 0, cpus: [0, 1], memdev: "mem0" }], distances: [[10]] },
    },
  },
  {
    section: "1.5 NUMA example with distances",
    line: `-smp 8 -m 4G ${K} ` +
      `-object memory-backend-ram,size=2G,id=mem0,host-nodes=0-1,policy=bind ` +
      `-object memory-backend-ram,size=2G,id=mem1,host-nodes=0-1,policy=bind ` +
      `-numa node,nodeid=0,cpus=0-1:4-5,memdev=mem0 -numa node,nodeid=1,cpus=2-3:6-7,memdev=mem1 ` +
      `-numa dist,src=0,dst=0,val=10 -numa dist,src=0,dst=1,val=20 ` +
      `-numa dist,src=1,dst=0,val=20 -numa dist,src=1,dst=1,val=10`,
    expect: {
      smp: { cpus: 8 },
      memory: { sizeBytes: 4 * GIB },
      memoryBackends: [{ id: "mem0", hostNodes: [0, 1] }, { id: "mem1", policy: "bind" }],
      numa: {
        nodes: [
          { nodeId: 0, cpus: [0, 1, 4, 5], memdev: "mem0" },
          { nodeId: 1, cpus: [2, 3, 6, 7], memdev: "mem1" },
        ],
        distances: [[10, 20], [20, 10]],
      },
    },
  },
  {
    section: "1.5 NUMA example without distances (defaults)",
    line: `-smp 8 -m 4G ${K} ` +
      `-object memory-backend-ram,size=2G,id=mem0 -object memory-backend-ram,size=2G,id=mem1 ` +
      `-numa node,nodeid=0,cpus=0-1:4-5,memdev=mem0 -numa node,nodeid=1,cpus=2-3:6-7,memdev=mem1`,
    expect: { numa: { distances: [[10, 20], [20, 10]] } },
  },
  // 1.6 Kernel and Kernel Parameters
  {
    section: "1.6 -kernel -append",
    line: `-kernel /path/to/kernel ` +
      `-append "console=ttyS0 rebook=k panic=1 pci=off tsc=reliable ipv6.disable=1"`,
    expect: {
      boot: {
        kernel: "/path/to/kernel",
        append: "console=ttyS0 rebook=k panic=1 pci=off tsc=reliable ipv6.disable=1",
        initrd: null,
      },
    },
  },
  // 1.7 Initrd
  {
    section: "1.7 -initrd",
    line: `${K} -initrd /path/to/initrd`,
    expect: { boot: { initrd: "/path/to/initrd" } },
  },
  // 1.8 Global config
  {
    section: "1.8 -global",
    line: `${Q35} -global pcie-root-port.fast-unplug=1`,
    expect: { global: { pcieRootPortFastUnplug: true } },
  },
  // 1.9 Logging
  {
    section: "1.9 -D (stderr)",
    line: `-D ${K}`,
    expect: { runtime: { logging: { enabled: true, file: null } } },
  },
  {
    section: "1.9 -D file",
    line: `-D /path/to/log/file ${K}`,
    expect: { runtime: { logging: { enabled: true, file: "/path/to/log/file" } } },
  },
  // 1.10 Daemonize
  { section: "1.10 -daemonize", line: `-daemonize ${K}`, expect: { runtime: { daemonize: true } } },
  {
    section: "1.10 -pidfile",
    line: `${K} -pidfile /path/to/pidfile`,
    expect: { runtime: { pidfile: "/path/to/pidfile" } },
  },
  // 2.1 iothread
  {
    section: "2.1 iothread",
    line: `${K} -object iothread,id=iothread1 -object iothread,id=iothread2`,
    expect: { iothreads: [{ id: "iothread1" }, { id: "iothread2" }] },
  },
  // 2.2 Virtio-blk
  {
    section: "2.2 virtio mmio block device (minimal)",
    line:
      `${K} -drive id=drive_id,file=path_on_host -device virtio-blk-device,drive=drive_id,id=blkid`,
    expect: {
      drives: [{
        id: "drive_id",
        file: "path_on_host",
        readonly: false,
        direct: true,
        iopsTotal: null,
        format: "raw",
        aio: "native",
      }],
      devices: [{
        kind: "blk",
        driver: "virtio-blk-device",
        transport: "mmio",
        id: "blkid",
        drive: "drive_id",
        serial: null,
        iothread: null,
        numQueues: 1,
        bootindex: null,
        pci: null,
      }],
    },
  },
  {
    section: "2.2 virtio mmio block device (all options)",
    line: `${K} -object iothread,id=iothread1 ` +
      `-drive id=drive_id,file=path_on_host,readonly=off,direct=off,throttling.iops-total=200 ` +
      `-device virtio-blk-device,drive=drive_id,id=blkid,iothread=iothread1,serial=serial_num`,
    expect: {
      drives: [{ readonly: false, direct: false, iopsTotal: 200, aio: "off" }],
      devices: [{ iothread: "iothread1", serial: "serial_num" }],
    },
  },
  {
    section: "2.2 virtio pci block device",
    line: `${Q35} -object iothread,id=iothread1 ` +
      `-drive id=drive_id,file=path_on_host,readonly=off,direct=off,throttling.iops-total=200 ` +
      `-device virtio-blk-pci,drive=drive_id,bus=pcie.0,addr=0x3.0x0,id=blk-0,multifunction=on,` +
      `iothread=iothread1,serial=serial_num,num-queues=4,bootindex=1`,
    expect: {
      devices: [{
        kind: "blk",
        transport: "pci",
        id: "blk-0",
        pci: { bus: "pcie.0", slot: 3, function: 0, multifunction: true },
        numQueues: 4,
        bootindex: 1,
      }],
    },
  },
  // 2.3 Virtio-net
  {
    section: "2.3 virtio mmio net device",
    line: `${K} -object iothread,id=iothread1 -netdev tap,id=netdevid,ifname=host_dev_name ` +
      `-device virtio-net-device,netdev=netdevid,id=netid,iothread=iothread1,mac=12:34:56:78:9A:BC`,
    expect: {
      netdevs: [{
        type: "tap",
        id: "netdevid",
        ifname: "host_dev_name",
        fds: [],
        queues: 1,
        vhost: false,
        vhostFds: [],
      }],
      devices: [{
        kind: "net",
        transport: "mmio",
        netdev: "netdevid",
        mac: [0x12, 0x34, 0x56, 0x78, 0x9a, 0xbc],
        mq: false,
      }],
    },
  },
  {
    section: "2.3 virtio pci net device",
    line:
      `${Q35} -object iothread,id=iothread1 -netdev tap,id=netdevid,ifname=host_dev_name,queues=4 ` +
      `-device virtio-net-pci,netdev=netdevid,id=netid,bus=pcie.0,addr=0x2.0x0,multifunction=on,` +
      `iothread=iothread1,mac=12:34:56:78:9A:BC,mq=on`,
    expect: {
      netdevs: [{ queues: 4 }],
      devices: [{ transport: "pci", mq: true, pci: { slot: 2, function: 0, multifunction: true } }],
    },
  },
  {
    section: "2.3 vhost-net mmio",
    line: `${K} -netdev tap,id=netdevid,ifname=host_dev_name,vhost=on,vhostfd=2 ` +
      `-device virtio-net-device,netdev=netdevid,id=netid,mac=12:34:56:78:9A:BC`,
    expect: { netdevs: [{ vhost: true, vhostFds: [2] }] },
  },
  {
    section: "2.3 vhost-net pci",
    line: `${Q35} -netdev tap,id=netdevid,ifname=host_dev_name,vhost=on,vhostfd=2,queues=1 ` +
      `-device virtio-net-pci,netdev=netdevid,id=netid,bus=pcie.0,addr=0x2.0x0,mac=12:34:56:78:9A:BC`,
    expect: { netdevs: [{ vhost: true, vhostFds: [2], queues: 1 }] },
  },
  {
    section: "2.3 vhost-user net (pci)",
    line: `-machine q35,mem-share=on -kernel /k -mem-path /dev/hugepages ` +
      `-chardev socket,id=chardevid,path=socket_path -netdev vhost-user,id=netdevid,chardev=chardevid,` +
      `queues=2 -device virtio-net-pci,netdev=netdevid,id=netid,mac=12:34:56:78:9A:BC,bus=pci.0,` +
      `addr=0x2.0x0,mq=on`,
    expect: {
      chardevs: [{ id: "chardevid", type: "socket", path: "socket_path", server: false }],
      netdevs: [{ type: "vhost-user", id: "netdevid", chardev: "chardevid", queues: 2 }],
      devices: [{ pci: { bus: "pcie.0", slot: 2 } }],
    },
  },
  {
    section: "2.3 tap set-up (Run StratoVirt)",
    line:
      `${K} -netdev tap,id=netdevid,ifname=tap0 -device virtio-net-device,netdev=netdevid,id=net0`,
    expect: { netdevs: [{ ifname: "tap0" }] },
  },
  // 2.4 Virtio-console
  {
    section: "2.4 virtio mmio console",
    line: `${K} -device virtio-serial-device,id=virtio-serial0 ` +
      `-chardev socket,path=socket_path,id=virtioconsole1,server,nowait ` +
      `-device virtconsole,chardev=virtioconsole1,id=console_id`,
    expect: {
      chardevs: [{ id: "virtioconsole1", type: "socket", path: "socket_path", server: true }],
      devices: [
        { kind: "virtio-serial", transport: "mmio", id: "virtio-serial0" },
        { kind: "virtconsole", transport: "port", id: "console_id", chardev: "virtioconsole1" },
      ],
    },
  },
  {
    section: "2.4 virtio mmio console without serial id",
    line: `${K} -device virtio-serial-device ` +
      `-chardev socket,path=socket_path,id=virtioconsole1,server,nowait ` +
      `-device virtconsole,chardev=virtioconsole1,id=console_id`,
    expect: { devices: [{ kind: "virtio-serial" }, { kind: "virtconsole" }] },
  },
  {
    section: "2.4 virtio pci console",
    line:
      `${Q35} -device virtio-serial-pci,bus=pcie.0,addr=0x1.0x0,id=virtio-serial0,multifunction=on ` +
      `-chardev socket,path=socket_path,id=virtioconsole1,server,nowait ` +
      `-device virtconsole,chardev=virtioconsole1,id=console_id`,
    expect: {
      devices: [
        { kind: "virtio-serial", transport: "pci", pci: { bus: "pcie.0", slot: 1, function: 0 } },
        { kind: "virtconsole" },
      ],
    },
  },
  // 2.5 Virtio-vsock
  {
    section: "2.5 vsock mmio",
    line: `${K} -device vhost-vsock-device,id=vsock_id,guest-cid=3`,
    expect: {
      devices: [{ kind: "vsock", transport: "mmio", id: "vsock_id", guestCid: 3, vhostFd: null }],
    },
  },
  {
    section: "2.5 vsock pci",
    line:
      `${Q35} -device vhost-vsock-pci,id=vsock_id,guest-cid=3,bus=pcie.0,addr=0x1.0x0,multifunction=on`,
    expect: {
      devices: [{ kind: "vsock", transport: "pci", pci: { slot: 1, multifunction: true } }],
    },
  },
  // 2.6 Serial
  {
    section: "2.6 serial on a chardev",
    line:
      `${K} -chardev socket,id=chardev_id,path=/tmp/s.sock,server,nowait -serial chardev:chardev_id`,
    expect: {
      serial: {
        chardev: "chardev_id",
        backend: { type: "socket", path: "/tmp/s.sock", server: true },
      },
    },
  },
  {
    section: "2.6 -serial stdio",
    line: `${K} -serial stdio`,
    expect: { serial: { chardev: null, backend: { type: "stdio" } } },
  },
  {
    section: "2.6 -serial pty",
    line: `${K} -serial pty`,
    expect: { serial: { backend: { type: "pty" } } },
  },
  {
    section: "2.6 -serial socket",
    line: `${K} -serial socket,path=socket_path,server,nowait`,
    expect: { serial: { backend: { type: "socket", path: "socket_path", server: true } } },
  },
  {
    section: "2.6 -serial file",
    line: `${K} -serial file,path=file_path`,
    expect: { serial: { backend: { type: "file", path: "file_path" } } },
  },
  // 2.7 Virtio-balloon
  {
    section: "2.7 balloon mmio (defaults)",
    line: `${K} -device virtio-balloon-device`,
    expect: { devices: [{ kind: "balloon", deflateOnOom: false, freePageReporting: false }] },
  },
  {
    section: "2.7 balloon mmio (options)",
    line: `${K} -device virtio-balloon-device,deflate-on-oom=true,free-page-reporting=true`,
    expect: { devices: [{ kind: "balloon", deflateOnOom: true, freePageReporting: true }] },
  },
  {
    section: "2.7 balloon pci",
    line: `${Q35} -device virtio-balloon-pci,bus=pcie.0,addr=0x4.0x0,id=balloon-0,` +
      `deflate-on-oom=false,free-page-reporting=true,multifunction=off`,
    expect: {
      devices: [{
        kind: "balloon",
        id: "balloon-0",
        deflateOnOom: false,
        freePageReporting: true,
        pci: { slot: 4, multifunction: false },
      }],
    },
  },
  // 2.8 Virtio-rng
  {
    section: "2.8 rng mmio",
    line: `${K} -object rng-random,id=objrng0,filename=/path/to/random_file ` +
      `-device virtio-rng-device,rng=objrng0,max-bytes=1234,period=1000`,
    expect: {
      rngBackends: [{ id: "objrng0", filename: "/path/to/random_file" }],
      devices: [{ kind: "rng", rng: "objrng0", limit: { maxBytes: 1234, periodMs: 1000 } }],
    },
  },
  {
    section: "2.8 rng pci",
    line: `${Q35} -object rng-random,id=objrng0,filename=/path/to/random_file ` +
      `-device virtio-rng-pci,rng=objrng0,max-bytes=1234,period=1000,bus=pcie.0,addr=0x1.0x0,` +
      `id=rng-id,multifunction=on`,
    expect: { devices: [{ kind: "rng", id: "rng-id", transport: "pci", pci: { slot: 1 } }] },
  },
  // 2.9 PCIe root port
  {
    section: "2.9 pcie-root-port",
    line: `${Q35} -device pcie-root-port,port=0x1,addr=0x1,bus=pcie.0,id=pcie.1,multifunction=on`,
    expect: {
      devices: [{
        kind: "pcie-root-port",
        id: "pcie.1",
        port: 1,
        pci: { bus: "pcie.0", slot: 1, function: 0, multifunction: true },
      }],
    },
  },
  {
    section: "2.9 device behind a root port (slot 0)",
    line: `${Q35} -device pcie-root-port,port=0x1,addr=0x1,bus=pcie.0,id=pcie.1 ` +
      `-drive id=d,file=/img -device virtio-blk-pci,drive=d,id=b,bus=pcie.1,addr=0x0`,
    expect: { devices: [{ id: "pcie.1" }, { pci: { bus: "pcie.1", slot: 0, function: 0 } }] },
  },
  // 2.10 PFlash
  {
    section: "2.10 pflash",
    line: `-machine q35 -drive file=/path/to/code_storage_file,if=pflash,unit=0,readonly=true ` +
      `-drive file=/path/to/data_storage_file,if=pflash,unit=1,`,
    expect: {
      boot: { kernel: null },
      pflash: [
        { unit: 0, file: "/path/to/code_storage_file", readonly: true },
        { unit: 1, file: "/path/to/data_storage_file", readonly: false },
      ],
    },
  },
  // 2.11 VFIO
  {
    section: "2.11 vfio-pci",
    line:
      `${Q35} -device vfio-pci,host=0000:1a:00.3,id=net,bus=pcie.0,addr=0x03.0x0,multifunction=on`,
    expect: {
      devices: [{
        kind: "vfio",
        host: "0000:1a:00.3",
        sysfsdev: null,
        id: "net",
        pci: { slot: 3 },
      }],
    },
  },
  // 2.12 Chardev
  {
    section: "2.12 chardev redirect methods",
    line: `${K} -chardev stdio,id=c1 -chardev pty,id=c2 -chardev socket,id=c3,path=socket_path,` +
      `server,nowait -chardev socket,id=c4,path=socket_path2 -chardev file,id=c5,path=file_path`,
    expect: {
      chardevs: [
        { id: "c1", type: "stdio" },
        { id: "c2", type: "pty" },
        { id: "c3", type: "socket", path: "socket_path", server: true },
        { id: "c4", type: "socket", path: "socket_path2", server: false },
        { id: "c5", type: "file", path: "file_path" },
      ],
    },
  },
  // 2.13 - 2.15 USB
  {
    section: "2.13-2.15 USB controller, keyboard, tablet",
    line: `${Q35} -device nec-usb-xhci,id=xhci,bus=pcie.0,addr=0xa.0x0 -device usb-kbd,id=kbd ` +
      `-device usb-tablet,id=tablet`,
    expect: {
      devices: [
        { kind: "xhci", id: "xhci", pci: { slot: 10, function: 0 } },
        { kind: "usb-kbd", id: "kbd", transport: "usb" },
        { kind: "usb-tablet", id: "tablet", transport: "usb" },
      ],
    },
  },
  // 3 Trace
  {
    section: "3 -trace",
    line: `${K} -trace events=/path/to/events`,
    expect: { runtime: { traceEvents: "/path/to/events" } },
  },
  // 4 Seccomp
  {
    section: "4 -disable-seccomp",
    line: `${K} -disable-seccomp`,
    expect: { runtime: { seccomp: false } },
  },
  // 5.1 Restore from VM template
  {
    section: "5.1 restore from template",
    line: `-machine microvm -kernel path/to/vmlinux.bin ` +
      `-append "console=ttyS0 pci=off reboot=k quiet panic=1 root=/dev/vda" ` +
      `-drive file=path/to/rootfs,id=rootfs,readonly=off,direct=off ` +
      `-device virtio-blk-device,drive=rootfs,id=rootfs -qmp unix:path/to/socket,server,nowait ` +
      `-serial stdio -incoming file:path/to/template`,
    expect: {
      incoming: { kind: "file", path: "path/to/template" },
      qmp: [{ transport: "unix", path: "path/to/socket" }],
      drives: [{ id: "rootfs", direct: false }],
      devices: [{ id: "rootfs", drive: "rootfs" }],
    },
  },
  // 6.2 Ozone example: the arguments after `--` are StratoVirt's (with -append quoted).
  {
    section: "6.2 stratovirt arguments under ozone",
    line: `-kernel ./vmlinux.bin -append "console=ttyS0 root=/dev/vda reboot=k panic=1 rw" ` +
      `-drive file=./rootfs,id=rootfs,readonly=off -device virtio-blk-device,drive=rootfs,id=rootfs ` +
      `-qmp unix:./stratovirt.socket,server,nowait -serial stdio`,
    expect: {
      boot: { kernel: "./vmlinux.bin", append: "console=ttyS0 root=/dev/vda reboot=k panic=1 rw" },
      qmp: [{ path: "./stratovirt.socket" }],
    },
  },
  // 7 Libvirt: accepted, ignored, warned about.
  {
    section: "7 libvirt options",
    line: `${K} -cpu host -overcommit mem-lock=off -uuid 0c6a4b0e-0000-0000-0000-000000000000 ` +
      `-no-user-config -nodefaults -sandbox on -msg timestamp=on -rtc base=utc -no-shutdown ` +
      `-nographic -realtime mlock=off -display none -usb -mem-prealloc -boot strict=on`,
    expect: { runtime: { noShutdown: true }, memory: { prealloc: true } },
  },
];

for (const c of CASES) {
  Deno.test(`guidebook ${c.section}`, () => {
    const config = parse(c.line);
    assertPartial(config, c.expect);
    assertEquals(config.action, "run");
  });
}

Deno.test("guidebook 1.1: machine type virt (aarch64) is a clear error on x86_64", () => {
  const e = refuse("-machine virt -kernel /k");
  assertEquals(e.option, "-machine");
  assertMatch(e.message, /virt is for aarch64/);
});

Deno.test("guidebook 6.2: an unquoted -append leaves a stray word, named in the error", () => {
  const e = refuse("-kernel ./vmlinux.bin -append console=ttyS0 root=/dev/vda reboot=k");
  assertMatch(e.message, /unexpected argument 'root=\/dev\/vda'/);
});

Deno.test("guidebook 7: each libvirt option becomes one warning", () => {
  const config = parse(`${K} -cpu host -nodefaults -usb -display none`);
  assertEquals(config.warnings, [
    "-cpu host: ignored (accepted for libvirt)",
    "-nodefaults: ignored (accepted for libvirt)",
    "-usb: ignored (accepted for libvirt)",
    "-display none: ignored (accepted for libvirt)",
  ]);
});

Deno.test("guidebook 7: format and bootindex on virtio-blk, chassis on root port warn", () => {
  const c = parse(
    `${K} -drive id=d,file=/i,format=raw -device virtio-blk-device,drive=d,id=b,format=raw,bootindex=1`,
  );
  assertEquals(c.warnings.length, 2);
  assertMatch(c.warnings[0], /bootindex is ignored on microvm/);
  assertMatch(c.warnings[1], /format' is ignored/);
  const q = parse(`${Q35} -device pcie-root-port,port=0x1,addr=0x1,bus=pcie.0,id=pcie.1,chassis=1`);
  assertMatch(q.warnings[0], /chassis' is ignored/);
});

Deno.test("defaults: microvm, 1 vCPU, 256M, no devices, seccomp on", () => {
  const c = parse(K);
  assertPartial(c, {
    machine: { type: "microvm", accel: "kvm", dumpGuestCore: true, memShare: false },
    smp: { cpus: 1, maxCpus: 1, sockets: 1, dies: 1, clusters: 1, cores: 1, threads: 1 },
    memory: { sizeBytes: 256 * MIB },
    numa: null,
    serial: null,
    devices: [],
    qmp: [],
    incoming: null,
    runtime: { seccomp: true, daemonize: false, freeze: false, modTest: null },
    warnings: [],
  });
});

Deno.test("the config is deeply frozen", () => {
  const c = parse(`${K} -drive id=d,file=/i -device virtio-blk-device,drive=d,id=b`);
  assertEquals(Object.isFrozen(c), true);
  assertEquals(Object.isFrozen(c.devices), true);
  assertEquals(Object.isFrozen(c.devices[0]), true);
  assertEquals(Object.isFrozen(c.machine), true);
});
