/**
 * `-numa node,...` and `-numa dist,...`. Each node names its vCPUs and one memory backend; the
 * cross-checks (nodes sum to -m, cover exactly the vCPUs, reference real backends) run in
 * checks.ts once the whole command line is read.
 */
import { Props } from "./props.ts";
import { parseIdList } from "./values.ts";
import { MAX_VCPUS } from "./smp.ts";

/** ACPI SRAT proximity domains the machine builder supports. */
export const MAX_NUMA_NODES = 128;
export const LOCAL_DISTANCE = 10;
export const REMOTE_DISTANCE = 20;
const MAX_DISTANCE = 255;

export interface NumaNodeConfig {
  readonly nodeId: number;
  /** vCPU indexes, sorted. */
  readonly cpus: readonly number[];
  /** Memory backend id. */
  readonly memdev: string;
}

export interface NumaDistanceConfig {
  readonly src: number;
  readonly dst: number;
  readonly val: number;
}

export interface NumaConfig {
  readonly nodes: readonly NumaNodeConfig[];
  /** Full node-to-node matrix: given distances, 10 on the diagonal, 20 elsewhere. */
  readonly distances: readonly (readonly number[])[];
}

export type NumaItem =
  | { kind: "node"; node: NumaNodeConfig; explicitId: boolean }
  | { kind: "dist"; dist: NumaDistanceConfig };

export function parseNuma(text: string, nodeIndex: number): NumaItem {
  const p: Props = new Props("-numa", text, "type");
  const type = p.choice("type", ["node", "dist"] as const);
  if (type === undefined) p.fail("the type is required: node or dist");
  if (type === "node") {
    const explicit = p.int("nodeid", { min: 0, max: MAX_NUMA_NODES - 1 });
    const cpusText = p.required("cpus");
    const cpus = parseIdList(cpusText, MAX_VCPUS - 1);
    if (cpus === undefined) {
      p.fail(`cpus=${cpusText} must be vCPU numbers or ranges joined by ':' (e.g. 0-1:4-5)`);
    }
    const memdev = p.required("memdev");
    p.finish("-numa node");
    return {
      kind: "node",
      node: { nodeId: explicit ?? nodeIndex, cpus, memdev },
      explicitId: explicit !== undefined,
    };
  }
  const src = p.int("src", { min: 0, max: MAX_NUMA_NODES - 1 });
  const dst = p.int("dst", { min: 0, max: MAX_NUMA_NODES - 1 });
  const val = p.int("val", { min: 1, max: MAX_DISTANCE });
  p.finish("-numa dist");
  if (src === undefined || dst === undefined || val === undefined) {
    p.fail("src, dst and val are all required");
  }
  if (src === dst && val !== LOCAL_DISTANCE) {
    p.fail(`the distance of a node to itself must be ${LOCAL_DISTANCE}`);
  }
  if (src !== dst && val <= LOCAL_DISTANCE) {
    p.fail(`the distance between different nodes must be more than ${LOCAL_DISTANCE}`);
  }
  return { kind: "dist", dist: { src, dst, val } };
}
