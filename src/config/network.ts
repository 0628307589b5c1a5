/** `-netdev tap|vhost-user`: the host side of a virtio-net device. */
import { Props } from "./props.ts";

export const MAX_NET_QUEUE_PAIRS = 16;

export interface TapNetdevConfig {
  readonly type: "tap";
  readonly id: string;
  /** Host tap interface to open; wins over fd/fds when both are given. */
  readonly ifname: string | null;
  /** Already-open tap fds, one per queue pair (from fd= or fds=). */
  readonly fds: readonly number[];
  /** Queue pairs. */
  readonly queues: number;
  readonly vhost: boolean;
  /** Already-open /dev/vhost-net fds, one per queue pair; empty means open it ourselves. */
  readonly vhostFds: readonly number[];
}

export interface VhostUserNetdevConfig {
  readonly type: "vhost-user";
  readonly id: string;
  /** Socket chardev connected to the vhost-user backend. */
  readonly chardev: string;
  readonly queues: number;
}

export type NetdevConfig = TapNetdevConfig | VhostUserNetdevConfig;

function fdList(p: Props, single: string, multi: string): number[] {
  const one = p.int(single, { min: 0, max: 0x7fffffff });
  const manyText = p.str(multi);
  if (one !== undefined && manyText !== undefined) {
    p.fail(`give either ${single} or ${multi}, not both`);
  }
  if (one !== undefined) return [one];
  if (manyText === undefined) return [];
  const fds = manyText.split(":").map((t) => (/^[0-9]+$/.test(t) ? parseInt(t, 10) : NaN));
  if (fds.some((n) => !Number.isSafeInteger(n) || n > 0x7fffffff)) {
    p.fail(`${multi}=${manyText} must be file descriptor numbers joined by ':'`);
  }
  return fds;
}

export function parseNetdev(text: string): NetdevConfig {
  const p: Props = new Props("-netdev", text, "type");
  const type = p.choice("type", ["tap", "vhost-user"] as const);
  if (type === undefined) p.fail("the type is required: tap or vhost-user");
  const id = p.required("id");
  const queuesGiven = p.int("queues", { min: 1, max: MAX_NET_QUEUE_PAIRS });
  if (type === "vhost-user") {
    const chardev = p.required("chardev");
    p.finish("-netdev vhost-user");
    return { type, id, chardev, queues: queuesGiven ?? 1 };
  }
  const ifname = p.str("ifname") ?? null;
  if (ifname !== null && ifname.length > 15) {
    p.fail(`ifname=${ifname} is longer than 15 characters`);
  }
  const fds = fdList(p, "fd", "fds");
  if (ifname === null && fds.length === 0) p.fail("a tap netdev needs ifname=, fd= or fds=");
  if (fds.length > MAX_NET_QUEUE_PAIRS) p.fail(`at most ${MAX_NET_QUEUE_PAIRS} fds`);
  if (queuesGiven !== undefined && fds.length > 1 && queuesGiven !== fds.length) {
    p.fail(`queues=${queuesGiven} does not match the ${fds.length} fds given`);
  }
  const queues = queuesGiven ?? Math.max(1, fds.length);
  const vhost = p.bool("vhost", false);
  const vhostFds = fdList(p, "vhostfd", "vhostfds");
  if (!vhost && vhostFds.length > 0) p.fail("vhostfd/vhostfds need vhost=on");
  if (vhostFds.length > 0 && vhostFds.length !== queues) {
    p.fail(
      `${vhostFds.length} vhost fds given for ${queues} queue pair(s); give one per queue pair`,
    );
  }
  p.finish("-netdev tap");
  return { type, id, ifname, fds, queues, vhost, vhostFds };
}
