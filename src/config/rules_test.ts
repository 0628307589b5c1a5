/**
 * Every rule of the command line has a case here: a line that breaks it is refused with a
 * ConfigError naming the option (and its value) and saying what is wrong.
 */
import { assertEquals, assertMatch } from "../../tests/lib/assert.ts";
import { refuse } from "./testing/helpers.ts";

const K = "-kernel /k";
const Q35 = "-machine q35 -kernel /k";
const BLK = "-drive id=d,file=/img";
const RNG = "-object rng-random,id=r,filename=/dev/urandom";

/** [rule, line, option the error must name, what the message must say] */
const RULES: [string, string, string, RegExp][] = [
  // memory
  [
    "memory below 256M",
    `${K} -m 100M`,
    "-m",
    /^-m 100M: memory size must be between 256M and 512G$/,
  ],
  ["memory above 512G", `${K} -m 513G`, "-m", /between 256M and 512G/],
  ["memory not a size", `${K} -m lots`, "-m", /not a size/],
  ["memory unknown property", `${K} -m size=1G,slots=2`, "-m", /unknown property 'slots'/],
  ["memory not page aligned", `${K} -m 262145K`, "-m", /multiple of 4K/],
  [
    "memory backend not page aligned",
    `${K} -object memory-backend-ram,id=m,size=1025K`,
    "-object",
    /multiple of 4K/,
  ],
  ["-mem-path relative", `${K} -mem-path hugepages`, "-mem-path", /absolute/],
  // vCPUs and topology
  ["zero vCPUs", `${K} -smp 0`, "-smp", /between 1 and 254/],
  ["255 vCPUs", `${K} -smp 255`, "-smp", /between 1 and 254/],
  [
    "maxcpus below cpus",
    `${K} -smp 4,maxcpus=2`,
    "-smp",
    /maxcpus \(2\) must be larger than or equal to cpus \(4\)/,
  ],
  [
    "maxcpus above 254",
    `${K} -smp 4,maxcpus=255`,
    "-smp",
    /maxcpus=255: must be between 1 and 254/,
  ],
  [
    "topology product differs from maxcpus",
    `${K} -smp 4,maxcpus=8,sockets=2,cores=2,threads=1`,
    "-smp",
    /= 4 must equal maxcpus \(8\)/,
  ],
  ["topology does not divide", `${K} -smp 6,sockets=4`, "-smp", /must equal maxcpus \(6\)/],
  ["topology member 0", `${K} -smp 2,sockets=0`, "-smp", /sockets=0 must be an integer between 1/],
  ["smp without cpus", `${K} -smp sockets=1`, "-smp", /number of cpus is required/],
  // NUMA
  [
    "NUMA memory does not add up to -m",
    `${K} -m 4G -smp 2 -object memory-backend-ram,size=2G,id=m0 -numa node,cpus=0-1,memdev=m0`,
    "-numa",
    /adds up to 2G but -m is 4G/,
  ],
  [
    "NUMA nodes leave a vCPU out",
    `${K} -m 2G -smp 2 -object memory-backend-ram,size=2G,id=m0 -numa node,cpus=0,memdev=m0`,
    "-numa",
    /vCPU 1 is in none/,
  ],
  [
    "NUMA node names a vCPU that does not exist",
    `${K} -m 2G -smp 2 -object memory-backend-ram,size=2G,id=m0 -numa node,cpus=0-2,memdev=m0`,
    "-numa",
    /vCPU 2 does not exist/,
  ],
  [
    "NUMA nodes overlap",
    `${K} -m 2G -smp 2 -object memory-backend-ram,size=1G,id=m0 -object memory-backend-ram,size=1G,id=m1 ` +
    `-numa node,cpus=0-1,memdev=m0 -numa node,cpus=1,memdev=m1`,
    "-numa",
    /vCPU 1 is already in NUMA node 0/,
  ],
  [
    "NUMA memdev unknown",
    `${K} -m 2G -smp 1 -numa node,cpus=0,memdev=nope`,
    "-numa",
    /memory backend 'nope' does not exist/,
  ],
  [
    "NUMA memdev used twice",
    `${K} -m 2G -smp 2 -object memory-backend-ram,size=1G,id=m0 ` +
    `-numa node,cpus=0,memdev=m0 -numa node,cpus=1,memdev=m0`,
    "-numa",
    /memdev m0 is already used/,
  ],
  [
    "NUMA node ids have a gap",
    `${K} -m 2G -smp 2 -object memory-backend-ram,size=1G,id=m0 -object memory-backend-ram,size=1G,id=m1 ` +
    `-numa node,nodeid=0,cpus=0,memdev=m0 -numa node,nodeid=2,cpus=1,memdev=m1`,
    "-numa",
    /must be 0..1; 1 is missing/,
  ],
  [
    "NUMA policy unknown",
    `${K} -object memory-backend-ram,size=1G,id=m0,policy=spread`,
    "-object",
    /policy=spread is not supported; allowed: default, preferred, bind, interleave/,
  ],
  [
    "NUMA bind without host-nodes",
    `${K} -object memory-backend-ram,size=1G,id=m0,policy=bind`,
    "-object",
    /needs host-nodes/,
  ],
  [
    "memory backend without size",
    `${K} -object memory-backend-ram,id=m0`,
    "-object",
    /'size' is required/,
  ],
  [
    "memory-backend-file without mem-path",
    `${K} -object memory-backend-file,id=m0,size=1G`,
    "-object",
    /'mem-path' is required/,
  ],
  [
    "NUMA distance to self not 10",
    `${K} -numa dist,src=0,dst=0,val=20`,
    "-numa",
    /itself must be 10/,
  ],
  ["NUMA remote distance 10", `${K} -numa dist,src=0,dst=1,val=10`, "-numa", /more than 10/],
  [
    "NUMA distance to an unknown node",
    `${K} -m 2G -object memory-backend-ram,size=2G,id=m0 -numa node,cpus=0,memdev=m0 -numa dist,src=0,dst=3,val=20`,
    "-numa",
    /NUMA node 3 does not exist/,
  ],
  [
    "NUMA distance given twice",
    `${K} -m 2G -smp 2 -object memory-backend-ram,size=1G,id=m0 -object memory-backend-ram,size=1G,id=m1 ` +
    `-numa node,cpus=0,memdev=m0 -numa node,cpus=1,memdev=m1 -numa dist,src=0,dst=1,val=20 -numa dist,src=0,dst=1,val=30`,
    "-numa",
    /given twice/,
  ],
  ["NUMA type unknown", `${K} -numa cpu,node-id=0`, "-numa", /allowed: node, dist/],
  [
    "NUMA distance without nodes",
    `${K} -numa dist,src=0,dst=1,val=20`,
    "-numa",
    /needs -numa node/,
  ],
  // unique ids
  [
    "duplicate drive id",
    `${K} ${BLK} ${BLK}`,
    "-drive",
    /drive id 'd' is already used by -drive id=d,file=\/img/,
  ],
  [
    "duplicate device id",
    `${K} ${BLK} -drive id=e,file=/i2 -device virtio-blk-device,drive=d,id=x -device virtio-blk-device,drive=e,id=x`,
    "-device",
    /device id 'x' is already used/,
  ],
  [
    "duplicate netdev id",
    `${K} -netdev tap,id=n,ifname=t0 -netdev tap,id=n,ifname=t1`,
    "-netdev",
    /netdev id 'n'/,
  ],
  [
    "duplicate chardev id",
    `${K} -chardev pty,id=c -chardev stdio,id=c`,
    "-chardev",
    /chardev id 'c'/,
  ],
  [
    "duplicate object id",
    `${K} -object iothread,id=o ${RNG.replace("id=r", "id=o")}`,
    "-object",
    /object id 'o'/,
  ],
  // references
  [
    "drive= unknown",
    `${K} -device virtio-blk-device,drive=nope,id=b`,
    "-device",
    /drive 'nope' does not exist/,
  ],
  [
    "drive used by two devices",
    `${K} ${BLK} -device virtio-blk-device,drive=d,id=a -device virtio-blk-device,drive=d,id=b`,
    "-device",
    /drive d is already used by -device virtio-blk-device,drive=d,id=a/,
  ],
  [
    "netdev= unknown",
    `${K} -device virtio-net-device,netdev=nope,id=n`,
    "-device",
    /netdev 'nope' does not exist/,
  ],
  [
    "chardev= unknown (virtconsole)",
    `${K} -device virtio-serial-device -device virtconsole,chardev=nope,id=c`,
    "-device",
    /chardev 'nope'/,
  ],
  [
    "chardev: unknown (serial)",
    `${K} -serial chardev:nope`,
    "-serial",
    /chardev 'nope' does not exist/,
  ],
  ["chardev= unknown (-mon)", `${K} -mon chardev=nope,mode=control`, "-mon", /chardev 'nope'/],
  [
    "chardev= unknown (vhost-user)",
    `-machine q35,mem-share=on -kernel /k -netdev vhost-user,id=n,chardev=nope`,
    "-netdev",
    /chardev 'nope'/,
  ],
  [
    "iothread= unknown",
    `${K} ${BLK} -device virtio-blk-device,drive=d,id=b,iothread=io9`,
    "-device",
    /iothread 'io9' does not exist/,
  ],
  [
    "rng= unknown",
    `${K} -device virtio-rng-device,rng=nope`,
    "-device",
    /rng object 'nope' does not exist/,
  ],
  [
    "bus= unknown",
    `${Q35} -device vhost-vsock-pci,id=v,guest-cid=3,bus=pcie.9,addr=0x2`,
    "-device",
    /bus pcie.9 does not exist/,
  ],
  [
    "chardev used twice",
    `${K} -chardev pty,id=c -serial chardev:c -device virtio-serial-device -device virtconsole,id=v,chardev=c`,
    "-serial",
    /chardev c is already used by -device virtconsole,id=v,chardev=c/,
  ],
  // ranges
  [
    "num-queues 0",
    `${K} ${BLK} -device virtio-blk-device,drive=d,id=b,num-queues=0`,
    "-device",
    /num-queues=0 must be an integer between 1 and 32/,
  ],
  [
    "num-queues 33",
    `${Q35} ${BLK} -device virtio-blk-pci,drive=d,id=b,bus=pcie.0,addr=0x2,num-queues=33`,
    "-device",
    /between 1 and 32/,
  ],
  [
    "net queues 0",
    `${K} -netdev tap,id=n,ifname=t,queues=0`,
    "-netdev",
    /queues=0 must be an integer between 1 and 16/,
  ],
  ["net queues 17", `${K} -netdev tap,id=n,ifname=t,queues=17`, "-netdev", /between 1 and 16/],
  [
    "bootindex 256",
    `${Q35} ${BLK} -device virtio-blk-pci,drive=d,id=b,bus=pcie.0,addr=0x2,bootindex=256`,
    "-device",
    /bootindex=256 must be an integer between 0 and 255/,
  ],
  [
    "bootindex used twice",
    `${Q35} ${BLK} -drive id=e,file=/j -device virtio-blk-pci,drive=d,id=a,bus=pcie.0,addr=0x2,bootindex=1 ` +
    `-device virtio-blk-pci,drive=e,id=b,bus=pcie.0,addr=0x3,bootindex=1`,
    "-device",
    /bootindex 1 is already used by a/,
  ],
  [
    "net queue-size below 256",
    `${K} -netdev tap,id=n,ifname=t -device virtio-net-device,netdev=n,id=x,queue-size=128`,
    "-device",
    /queue-size=128 must be an integer between 256 and 4096/,
  ],
  [
    "net queue-size not a power of 2",
    `${K} -netdev tap,id=n,ifname=t -device virtio-net-device,netdev=n,id=x,queue-size=300`,
    "-device",
    /power of 2/,
  ],
  [
    "blk queue-size above 1024",
    `${K} ${BLK} -device virtio-blk-device,drive=d,id=b,queue-size=2048`,
    "-device",
    /between 4 and 1024/,
  ],
  [
    "only raw format",
    `${K} -drive id=d,file=/img,format=qcow2`,
    "-drive",
    /format=qcow2 is not supported; allowed: raw/,
  ],
  [
    "vsock cid 2",
    `${K} -device vhost-vsock-device,id=v,guest-cid=2`,
    "-device",
    /3 <= guest-cid < 4294967295/,
  ],
  [
    "vsock cid u32 max",
    `${K} -device vhost-vsock-device,id=v,guest-cid=4294967295`,
    "-device",
    /3 <= guest-cid/,
  ],
  [
    "rng rate below 64 B/s",
    `${K} ${RNG} -device virtio-rng-device,rng=r,max-bytes=1,period=1000`,
    "-device",
    /rate .* must be >= 64/,
  ],
  [
    "rng rate at 1e9 B/s",
    `${K} ${RNG} -device virtio-rng-device,rng=r,max-bytes=1000000000,period=1000`,
    "-device",
    /< 1000000000/,
  ],
  [
    "rng max-bytes without period",
    `${K} ${RNG} -device virtio-rng-device,rng=r,max-bytes=100`,
    "-device",
    /given together/,
  ],
  [
    "rng period 0",
    `${K} ${RNG} -device virtio-rng-device,rng=r,max-bytes=100,period=0`,
    "-device",
    /period=0 must be an integer between 1/,
  ],
  [
    "pflash unit 2",
    `-machine q35 -drive file=/f,if=pflash,unit=2`,
    "-drive",
    /unit=2 must be an integer between 0 and 1/,
  ],
  ["pflash without unit", `-machine q35 -drive file=/f,if=pflash`, "-drive", /'unit' is required/],
  [
    "pflash unit twice",
    `-machine q35 -drive file=/f,if=pflash,unit=0 -drive file=/g,if=pflash,unit=0`,
    "-drive",
    /unit 0 is given twice/,
  ],
  [
    "pflash on microvm",
    `${K} -drive file=/f,if=pflash,unit=0`,
    "-drive",
    /pflash needs machine q35/,
  ],
  [
    "aio=native without O_DIRECT",
    `${K} -drive id=d,file=/f,direct=off,aio=native`,
    "-drive",
    /aio=native needs direct=on/,
  ],
  [
    "aio unknown",
    `${K} -drive id=d,file=/f,aio=threads`,
    "-drive",
    /allowed: native, io_uring, off/,
  ],
  [
    "drive if unknown",
    `${K} -drive id=d,file=/f,if=scsi`,
    "-drive",
    /if=scsi is not supported; allowed: none, pflash/,
  ],
  // machine placement
  [
    "microvm refuses PCI devices",
    `${K} ${BLK} -device virtio-blk-pci,drive=d,id=b,bus=pcie.0,addr=0x2`,
    "-device",
    /microvm takes only virtio-mmio devices/,
  ],
  [
    "microvm takes at most 11 devices",
    `${K} ` +
    [...Array(12).keys()].map((i) =>
      `-netdev tap,id=n${i},ifname=t${i} -device virtio-net-device,netdev=n${i},id=x${i}`
    ).join(" "),
    "-device",
    /at most 11 virtio-mmio devices/,
  ],
  [
    "q35 refuses mmio devices",
    `${Q35} ${BLK} -device virtio-blk-device,drive=d,id=b`,
    "-device",
    /q35 takes PCI devices \(\*-pci\), not virtio-blk-device/,
  ],
  [
    "q35 takes at most 32 devices on pcie.0",
    `${Q35} ` +
    [...Array(33).keys()].map((i) =>
      `-device vfio-pci,host=0000:01:00.${i % 8},id=v${i},bus=pcie.0,addr=0x${
        (1 + (i >> 3)).toString(16)
      }.${i % 8}` +
      (i % 8 === 0 ? ",multifunction=on" : "")
    ).join(" "),
    "-device",
    /at most 32 devices fit on pcie.0/,
  ],
  [
    "slot 0 behind a root port",
    `${Q35} -device pcie-root-port,port=0x1,addr=0x1,bus=pcie.0,id=pcie.1 -device vhost-vsock-pci,id=v,guest-cid=3,bus=pcie.1,addr=0x1`,
    "-device",
    /behind root port pcie.1 must use slot 0/,
  ],
  [
    "single-function net at function 1",
    `${Q35} -netdev tap,id=n,ifname=t -device virtio-net-pci,netdev=n,id=x,bus=pcie.0,addr=0x2.0x1`,
    "-device",
    /single-function device/,
  ],
  [
    "single-function rng at function 1",
    `${Q35} ${RNG} -device virtio-rng-pci,rng=r,bus=pcie.0,addr=0x2.0x1`,
    "-device",
    /single-function device/,
  ],
  [
    "two devices at one address",
    `${Q35} -device vhost-vsock-pci,id=v,guest-cid=3,bus=pcie.0,addr=0x2 -device virtio-balloon-pci,id=b,bus=pcie.0,addr=0x2.0x0`,
    "-device",
    /address pcie.0 0x2.0x0 is already used by vhost-vsock-pci v/,
  ],
  [
    "several functions without multifunction",
    `${Q35} -device vhost-vsock-pci,id=v,guest-cid=3,bus=pcie.0,addr=0x2 -device virtio-balloon-pci,id=b,bus=pcie.0,addr=0x2.0x1`,
    "-device",
    /function 0 needs multifunction=on/,
  ],
  [
    "function without function 0",
    `${Q35} -device virtio-balloon-pci,id=b,bus=pcie.0,addr=0x2.0x3`,
    "-device",
    /has no function 0/,
  ],
  [
    "slot 0 of pcie.0 is the host bridge",
    `${Q35} -device virtio-balloon-pci,id=b,bus=pcie.0,addr=0x0`,
    "-device",
    /belongs to the q35 machine/,
  ],
  [
    "addr out of range",
    `${Q35} -device virtio-balloon-pci,id=b,bus=pcie.0,addr=0x20`,
    "-device",
    /addr=0x20 must be SLOT\[.FUNCTION\]/,
  ],
  [
    "pci device without bus",
    `${Q35} -device virtio-balloon-pci,id=b,addr=0x2`,
    "-device",
    /'bus' is required/,
  ],
  [
    "pci device without addr",
    `${Q35} -device virtio-balloon-pci,id=b,bus=pcie.0`,
    "-device",
    /'addr' is required/,
  ],
  [
    "root port numbers unique",
    `${Q35} -device pcie-root-port,port=0x1,addr=0x1,bus=pcie.0,id=pcie.1 -device pcie-root-port,port=0x1,addr=0x2,bus=pcie.0,id=pcie.2`,
    "-device",
    /port 0x1 is already used by root port pcie.1/,
  ],
  [
    "machine none takes no devices",
    `-machine none -device virtio-balloon-device`,
    "-device",
    /none takes no devices/,
  ],
  // one of a kind
  ["one serial", `${K} -serial pty -serial stdio`, "-serial", /given more than once/],
  [
    "one vsock",
    `${K} -device vhost-vsock-device,id=a,guest-cid=3 -device vhost-vsock-device,id=b,guest-cid=4`,
    "-device",
    /only one vsock device/,
  ],
  [
    "one console on q35",
    `${Q35} -device virtio-serial-pci,bus=pcie.0,addr=0x2,id=s -chardev pty,id=c1 -chardev pty,id=c2 ` +
    `-device virtconsole,chardev=c1,id=v1 -device virtconsole,chardev=c2,id=v2`,
    "-device",
    /only one virtconsole on q35/,
  ],
  [
    "one USB controller",
    `${Q35} -device nec-usb-xhci,id=a,bus=pcie.0,addr=0x2 -device nec-usb-xhci,id=b,bus=pcie.0,addr=0x3`,
    "-device",
    /only one USB controller/,
  ],
  [
    "one keyboard",
    `${Q35} -device nec-usb-xhci,id=a,bus=pcie.0,addr=0x2 -device usb-kbd,id=k1 -device usb-kbd,id=k2`,
    "-device",
    /only one USB keyboard/,
  ],
  [
    "one tablet",
    `${Q35} -device nec-usb-xhci,id=a,bus=pcie.0,addr=0x2 -device usb-tablet,id=t1 -device usb-tablet,id=t2`,
    "-device",
    /only one USB tablet/,
  ],
  [
    "one balloon",
    `${K} -device virtio-balloon-device -device virtio-balloon-device,id=b2`,
    "-device",
    /only one balloon/,
  ],
  [
    "usb-kbd needs a controller",
    `${Q35} -device usb-kbd,id=k`,
    "-device",
    /needs a USB controller/,
  ],
  [
    "virtconsole needs virtio-serial",
    `${K} -chardev pty,id=c -device virtconsole,chardev=c,id=v`,
    "-device",
    /needs a virtio-serial device/,
  ],
  [
    "at most 8 virtconsoles on microvm",
    `${K} -device virtio-serial-device ` +
    [...Array(9).keys()].map((i) =>
      `-chardev pty,id=c${i} -device virtconsole,chardev=c${i},id=v${i}`
    ).join(" "),
    "-device",
    /at most 8 virtconsoles/,
  ],
  [
    "one virtio-serial",
    `${K} -device virtio-serial-device -device virtio-serial-device,id=s2`,
    "-device",
    /only one virtio-serial/,
  ],
  [
    "one rng",
    `${K} ${RNG} -object rng-random,id=r2,filename=/dev/random -device virtio-rng-device,rng=r -device virtio-rng-device,rng=r2,id=g2`,
    "-device",
    /only one rng device/,
  ],
  // unknown things
  ["unknown option", `${K} -floppy /f`, "-floppy", /unknown option/],
  [
    "unknown device property",
    `${K} ${BLK} -device virtio-blk-device,drive=d,id=b,bogus=1`,
    "-device",
    /unknown property 'bogus' for virtio-blk-device; allowed: .*drive/,
  ],
  [
    "unknown drive property",
    `${K} -drive id=d,file=/i,cache=none`,
    "-drive",
    /unknown property 'cache'/,
  ],
  [
    "unknown machine property",
    `-machine q35,kernel-irqchip=on ${K}`,
    "-machine",
    /unknown property 'kernel-irqchip'/,
  ],
  [
    "unknown netdev property",
    `${K} -netdev tap,id=n,ifname=t,script=no`,
    "-netdev",
    /unknown property 'script'/,
  ],
  [
    "unknown chardev flag",
    `${K} -chardev socket,id=c,path=/s,server,nowait,telnet`,
    "-chardev",
    /unknown property 'telnet'/,
  ],
  ["unknown device driver", `${K} -device e1000,id=n`, "-device", /unknown device driver 'e1000'/],
  ["unknown object type", `${K} -object secret,id=s`, "-object", /unknown object type 'secret'/],
  [
    "unknown machine type",
    `-machine pc ${K}`,
    "-machine",
    /unknown machine type 'pc'; allowed: none, microvm, q35/,
  ],
  [
    "unknown -global",
    `${K} -global virtio-blk.scsi=off`,
    "-global",
    /allowed: pcie-root-port.fast-unplug/,
  ],
  ["property given twice", `${K} -drive id=d,id=e,file=/i`, "-drive", /property 'id' given twice/],
  ["option given twice", `${K} -m 1G -m 2G`, "-m", /given more than once/],
  ["option without its argument", `${K} -m`, "-m", /needs an argument/],
  // required properties
  [
    "device without drive=",
    `${K} -device virtio-blk-device,id=b`,
    "-device",
    /'drive' is required/,
  ],
  [
    "device without id",
    `${K} ${BLK} -device virtio-blk-device,drive=d`,
    "-device",
    /'id' is required/,
  ],
  [
    "net device without netdev=",
    `${K} -device virtio-net-device,id=n`,
    "-device",
    /'netdev' is required/,
  ],
  [
    "virtconsole without chardev=",
    `${K} -device virtconsole,id=c`,
    "-device",
    /'chardev' is required/,
  ],
  ["netdev without id", `${K} -netdev tap,ifname=t`, "-netdev", /'id' is required/],
  ["tap without ifname or fd", `${K} -netdev tap,id=n`, "-netdev", /needs ifname=, fd= or fds=/],
  [
    "socket chardev without path",
    `${K} -chardev socket,id=c,server,nowait`,
    "-chardev",
    /'path' is required/,
  ],
  ["file chardev without path", `${K} -chardev file,id=c`, "-chardev", /'path' is required/],
  ["drive without file", `${K} -drive id=d`, "-drive", /'file' is required/],
  ["drive without id", `${K} -drive file=/i`, "-drive", /'id' is required/],
  [
    "vsock without guest-cid",
    `${K} -device vhost-vsock-device,id=v`,
    "-device",
    /'guest-cid' is required/,
  ],
  [
    "rng-random without filename",
    `${K} -object rng-random,id=r`,
    "-object",
    /'filename' is required/,
  ],
  ["iothread without id", `${K} -object iothread`, "-object", /'id' is required/],
  ["empty id", `${K} -object iothread,id=`, "-object", /'id' is empty/],
  // sockets
  [
    "-qmp without server",
    `${K} -qmp unix:/q.sock,nowait`,
    "-qmp",
    /server and nowait are required/,
  ],
  [
    "-qmp without nowait",
    `${K} -qmp unix:/q.sock,server`,
    "-qmp",
    /server and nowait are required/,
  ],
  ["-qmp bad address", `${K} -qmp /q.sock,server,nowait`, "-qmp", /unix:PATH or tcp:HOST:PORT/],
  [
    "server socket without nowait",
    `${K} -chardev socket,id=c,path=/s,server`,
    "-chardev",
    /needs nowait/,
  ],
  ["serial socket not a server", `${K} -serial socket,path=/s`, "-serial", /must be server,nowait/],
  [
    "-mon on a client socket",
    `${K} -chardev socket,id=c,path=/s -mon chardev=c,mode=control`,
    "-mon",
    /server,nowait for QMP/,
  ],
  [
    "-mon without mode=control",
    `${K} -chardev socket,id=c,path=/s,server,nowait -mon chardev=c`,
    "-mon",
    /mode=control is required/,
  ],
  [
    "virtconsole on a client socket",
    `${K} -chardev socket,id=c,path=/s -device virtio-serial-device -device virtconsole,id=v,chardev=c`,
    "-device",
    /must be a server socket/,
  ],
  // daemonize
  [
    "daemonize with stdio serial",
    `${K} -daemonize -serial stdio`,
    "-daemonize",
    /cannot bind the serial port to stdio/,
  ],
  [
    "daemonize with a stdio chardev",
    `${K} -daemonize -chardev stdio,id=c`,
    "-chardev",
    /cannot use a stdio chardev/,
  ],
  ["daemonize logging to stderr", `${K} -daemonize -D`, "-D", /cannot log to stderr/],
  // boot
  ["microvm needs -kernel", `-machine microvm`, "-machine", /microvm needs -kernel/],
  ["q35 needs -kernel or pflash", `-machine q35`, "-machine", /q35 needs -kernel or firmware/],
  [
    "-initrd without -kernel",
    `-machine q35 -drive file=/f,if=pflash,unit=0 -initrd /i`,
    "-initrd",
    /needs -kernel/,
  ],
  [
    "-append without -kernel",
    `-machine q35 -drive file=/f,if=pflash,unit=0 -append quiet`,
    "-append",
    /needs -kernel/,
  ],
  ["virt is aarch64", `-machine virt ${K}`, "-machine", /aarch64/],
  ["usb=on", `-machine q35,usb=on ${K}`, "-machine", /only usb=off/],
  // network details
  [
    "mac malformed",
    `${K} -netdev tap,id=n,ifname=t -device virtio-net-device,netdev=n,id=x,mac=12:34:56:78:9A`,
    "-device",
    /mac=12:34:56:78:9A must be six hex bytes/,
  ],
  [
    "mac multicast",
    `${K} -netdev tap,id=n,ifname=t -device virtio-net-device,netdev=n,id=x,mac=01:00:5e:00:00:01`,
    "-device",
    /unicast/,
  ],
  [
    "vhostfd without vhost=on",
    `${K} -netdev tap,id=n,ifname=t,vhostfd=3`,
    "-netdev",
    /need vhost=on/,
  ],
  [
    "fds and queues disagree",
    `${K} -netdev tap,id=n,fds=3:4,queues=4`,
    "-netdev",
    /does not match the 2 fds/,
  ],
  ["fd and fds together", `${K} -netdev tap,id=n,fd=3,fds=4:5`, "-netdev", /either fd or fds/],
  [
    "vhostfds count",
    `${K} -netdev tap,id=n,fds=3:4,vhost=on,vhostfds=5`,
    "-netdev",
    /one per queue pair/,
  ],
  [
    "vhost-user on a mmio device",
    `-machine microvm,mem-share=on ${K} -chardev socket,id=c,path=/s -netdev vhost-user,id=n,chardev=c -device virtio-net-device,netdev=n,id=x`,
    "-device",
    /only with virtio-net-pci/,
  ],
  [
    "vhost-user without shared memory",
    `${Q35} -chardev socket,id=c,path=/s -netdev vhost-user,id=n,chardev=c -device virtio-net-pci,netdev=n,id=x,bus=pcie.0,addr=0x2`,
    "-netdev",
    /mem-share=on/,
  ],
  [
    "vhost-user on a non-socket chardev",
    `-machine q35,mem-share=on -kernel /k -chardev pty,id=c -netdev vhost-user,id=n,chardev=c`,
    "-netdev",
    /must be a socket/,
  ],
  // vfio, balloon, misc
  [
    "vfio without host or sysfsdev",
    `${Q35} -device vfio-pci,id=v,bus=pcie.0,addr=0x2`,
    "-device",
    /exactly one of host= or sysfsdev=/,
  ],
  [
    "vfio with both",
    `${Q35} -device vfio-pci,id=v,host=0000:1a:00.3,sysfsdev=/sys/bus/pci/devices/0000:1a:00.3,bus=pcie.0,addr=0x2`,
    "-device",
    /exactly one/,
  ],
  [
    "vfio host malformed",
    `${Q35} -device vfio-pci,id=v,host=1a:00,bus=pcie.0,addr=0x2`,
    "-device",
    /host=1a:00 must be a host PCI address/,
  ],
  [
    "vfio sysfsdev relative",
    `${Q35} -device vfio-pci,id=v,sysfsdev=sys/x,bus=pcie.0,addr=0x2`,
    "-device",
    /absolute/,
  ],
  [
    "balloon bad boolean",
    `${K} -device virtio-balloon-device,deflate-on-oom=maybe`,
    "-device",
    /not a boolean/,
  ],
  ["-mod-test without -accel test", `${K} -mod-test /tmp/t.sock`, "-mod-test", /needs -accel test/],
  [
    "accelerators disagree",
    `-machine microvm,accel=kvm -accel test ${K}`,
    "-accel",
    /contradicts -machine/,
  ],
  ["-accel unknown", `-accel tcg ${K}`, "-accel", /allowed: kvm, test/],
  [
    "-incoming malformed",
    `${K} -incoming defer`,
    "-incoming",
    /file:PATH, unix:PATH or tcp:HOST:PORT/,
  ],
  ["-trace without events", `${K} -trace file=/t`, "-trace", /'events' is required/],
  ["-trace unknown property", `${K} -trace events=/e,file=/t`, "-trace", /unknown property 'file'/],
  ["stray word", `${K} vmlinux`, "", /unexpected argument 'vmlinux'/],
];

for (const [rule, line, option, reason] of RULES) {
  Deno.test(`rule: ${rule}`, () => {
    const e = refuse(line);
    assertEquals(e.option, option, `option named by: ${e.message}`);
    assertMatch(e.message, reason);
    if (option !== "") assertEquals(e.message.startsWith(option), true, e.message);
  });
}
