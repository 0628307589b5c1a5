/** The -help synopsis of each device driver lists only properties the driver really takes. */
import { assert, assertEquals } from "../../tests/lib/assert.ts";
import { DEVICE_DRIVERS, deviceSynopses, parseDevice } from "./device.ts";
import { ConfigError } from "./error.ts";

const PCI = ",bus=pcie.0,addr=0x2";
/** A complete, valid property list per driver (references are checked later, not here). */
const SAMPLES: Record<string, string> = {
  "virtio-blk-device": "drive=d,id=b",
  "virtio-blk-pci": "drive=d,id=b" + PCI,
  "virtio-net-device": "netdev=n,id=x",
  "virtio-net-pci": "netdev=n,id=x" + PCI,
  "virtio-serial-device": "id=s",
  "virtio-serial-pci": "id=s" + PCI,
  "virtconsole": "chardev=c,id=v",
  "vhost-vsock-device": "id=v,guest-cid=3",
  "vhost-vsock-pci": "id=v,guest-cid=3" + PCI,
  "virtio-balloon-device": "id=b",
  "virtio-balloon-pci": "id=b" + PCI,
  "virtio-rng-device": "rng=r",
  "virtio-rng-pci": "rng=r" + PCI,
  "pcie-root-port": "id=p,port=0x1" + PCI,
  "vfio-pci": "host=0000:01:00.0,id=v" + PCI,
  "nec-usb-xhci": "id=x" + PCI,
  "usb-kbd": "id=k",
  "usb-tablet": "id=t",
};

/** The error (or null) from parsing one -device argument. */
function attempt(text: string): ConfigError | null {
  try {
    parseDevice(text, { warn: () => {} });
    return null;
  } catch (e) {
    if (e instanceof ConfigError) return e;
    throw e;
  }
}

Deno.test("every driver has a valid sample, and an unknown key on it is refused", () => {
  assertEquals(Object.keys(SAMPLES).sort(), [...DEVICE_DRIVERS].sort());
  for (const [driver, props] of Object.entries(SAMPLES)) {
    assertEquals(attempt(`${driver},${props}`), null, driver);
    const e = attempt(`${driver},${props},zz=@`);
    assert(e?.message.includes("unknown property 'zz'"), `${driver}: ${e?.message}`);
  }
});

Deno.test("every property in a device synopsis is known to its driver", () => {
  for (const line of deviceSynopses()) {
    const [driver, ...rest] = line.split(",");
    const keys = [...rest.join(",").matchAll(/([a-z][a-z0-9-]*)=/g)].map((m) => m[1]);
    const sample = SAMPLES[driver];
    for (const key of keys) {
      if (new RegExp(`(^|,)${key}=`).test(sample)) continue; // the sample already uses it
      const e = attempt(`${driver},${sample},${key}=@`);
      assert(!e?.message.includes(`unknown property '${key}'`), `${driver}: ${e?.message}`);
    }
  }
});

Deno.test("an unknown property's error lists what the driver takes", () => {
  const e = attempt("vhost-vsock-device,id=v,guest-cid=3,colour=red");
  assert(e?.message.endsWith("allowed: driver, guest-cid, id, vhostfd"), e?.message);
});
