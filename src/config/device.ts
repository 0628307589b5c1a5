/** `-device DRIVER,...`: dispatches on the driver name to its device family. */
import { Props } from "./props.ts";
import { DeviceContext } from "./devices/common.ts";
import { BlkDeviceConfig, parseBlk } from "./devices/blk.ts";
import { NetDeviceConfig, parseNet } from "./devices/net.ts";
import {
  parseVirtconsole,
  parseVirtioSerial,
  VirtconsoleConfig,
  VirtioSerialConfig,
} from "./devices/console.ts";
import { parseVsock, VsockDeviceConfig } from "./devices/vsock.ts";
import { BalloonDeviceConfig, parseBalloon } from "./devices/balloon.ts";
import { parseRng, RngDeviceConfig } from "./devices/rng.ts";
import { parseRootPort, RootPortConfig } from "./devices/root_port.ts";
import { parseVfio, VfioDeviceConfig } from "./devices/vfio.ts";
import { parseUsbInput, parseXhci, UsbInputConfig, XhciConfig } from "./usb.ts";

export type DeviceConfig =
  | BlkDeviceConfig
  | NetDeviceConfig
  | VirtioSerialConfig
  | VirtconsoleConfig
  | VsockDeviceConfig
  | BalloonDeviceConfig
  | RngDeviceConfig
  | RootPortConfig
  | VfioDeviceConfig
  | XhciConfig
  | UsbInputConfig;

type Parser = (driver: string, p: Props, ctx: DeviceContext) => DeviceConfig;

interface Driver {
  readonly parse: Parser;
  /** Properties, for -help. */
  readonly synopsis: string;
}

const PCI = "bus=,addr=SLOT[.FN][,multifunction=on|off]";
const BLK = "drive=,id=[,iothread=][,serial=][,num-queues=1..32][,queue-size=4..1024]";
const NET = "netdev=,id=[,mac=][,mq=on|off][,iothread=][,queue-size=256..4096]";
const RNG = "rng=[,id=][,max-bytes=,period=ms]";

const DRIVERS: Record<string, Driver> = {
  "virtio-blk-device": { parse: parseBlk, synopsis: BLK },
  "virtio-blk-pci": { parse: parseBlk, synopsis: `${BLK}[,bootindex=0..255],${PCI}` },
  "virtio-net-device": { parse: parseNet, synopsis: NET },
  "virtio-net-pci": { parse: parseNet, synopsis: `${NET},${PCI}` },
  "virtio-serial-device": { parse: parseVirtioSerial, synopsis: "[id=]" },
  "virtio-serial-pci": { parse: parseVirtioSerial, synopsis: `[id=],${PCI}` },
  "virtconsole": { parse: (_d, p, ctx) => parseVirtconsole(p, ctx), synopsis: "chardev=,id=" },
  "vhost-vsock-device": { parse: parseVsock, synopsis: "id=,guest-cid=3..[,vhostfd=]" },
  "vhost-vsock-pci": { parse: parseVsock, synopsis: `id=,guest-cid=3..[,vhostfd=],${PCI}` },
  "virtio-balloon-device": {
    parse: parseBalloon,
    synopsis: "[id=][,deflate-on-oom=][,free-page-reporting=]",
  },
  "virtio-balloon-pci": {
    parse: parseBalloon,
    synopsis: `[id=][,deflate-on-oom=][,free-page-reporting=],${PCI}`,
  },
  "virtio-rng-device": { parse: parseRng, synopsis: RNG },
  "virtio-rng-pci": { parse: parseRng, synopsis: `${RNG},${PCI}` },
  "pcie-root-port": {
    parse: (_d, p, ctx) => parseRootPort(p, ctx),
    synopsis: `id=,port=[,chassis=],${PCI}`,
  },
  "vfio-pci": {
    parse: (_d, p, ctx) => parseVfio(p, ctx),
    synopsis: `host=DDDD:BB:SS.F|sysfsdev=PATH,id=,${PCI}`,
  },
  "nec-usb-xhci": { parse: (_d, p, ctx) => parseXhci(p, ctx), synopsis: `id=,${PCI}` },
  "usb-kbd": { parse: (_d, p, ctx) => parseUsbInput("usb-kbd", p, ctx), synopsis: "id=" },
  "usb-tablet": { parse: (_d, p, ctx) => parseUsbInput("usb-tablet", p, ctx), synopsis: "id=" },
};

export const DEVICE_DRIVERS: readonly string[] = Object.keys(DRIVERS);

/** `driver,properties` lines for -help. */
export function deviceSynopses(): string[] {
  return DEVICE_DRIVERS.map((d) => `${d},${DRIVERS[d].synopsis}`);
}

export function parseDevice(text: string, ctx: DeviceContext): DeviceConfig {
  const p: Props = new Props("-device", text, "driver");
  const driver = p.str("driver");
  if (driver === undefined) p.fail("the driver is required (first item)");
  if (!Object.hasOwn(DRIVERS, driver)) {
    p.fail(`unknown device driver '${driver}'; allowed: ${DEVICE_DRIVERS.join(", ")}`);
  }
  return DRIVERS[driver].parse(driver, p, ctx);
}
