/** `-object memory-backend-ram|memory-backend-file|memory-backend-memfd`: one NUMA memory zone. */
import { Props } from "./props.ts";
import { PAGE_SIZE, parseIdList } from "./values.ts";
import { MAX_MEMORY } from "./memory.ts";

export type MemoryBackendKind =
  | "memory-backend-ram"
  | "memory-backend-file"
  | "memory-backend-memfd";
export type HostNodePolicy = "default" | "preferred" | "bind" | "interleave";

export const MEMORY_BACKEND_KINDS: readonly MemoryBackendKind[] = [
  "memory-backend-ram",
  "memory-backend-file",
  "memory-backend-memfd",
];
const POLICIES: readonly HostNodePolicy[] = ["default", "preferred", "bind", "interleave"];
/** Linux's MAX_NUMNODES on x86_64 with the largest NODES_SHIFT. */
export const MAX_HOST_NODE = 1023;

export interface MemoryBackendConfig {
  readonly kind: MemoryBackendKind;
  readonly id: string;
  readonly sizeBytes: number;
  /** Host NUMA nodes for the policy, sorted. */
  readonly hostNodes: readonly number[];
  readonly policy: HostNodePolicy;
  /** Shared with other processes (MAP_SHARED). memfd and file are shareable; ram is not. */
  readonly share: boolean;
  /** memory-backend-file: the file or hugetlbfs directory. */
  readonly memPath: string | null;
  readonly prealloc: boolean;
  readonly dump: boolean;
}

export function parseMemoryBackend(kind: MemoryBackendKind, p: Props): MemoryBackendConfig {
  const id = p.required("id");
  const sizeBytes = p.size("size", { min: 1, max: MAX_MEMORY });
  if (sizeBytes === undefined) p.fail("property 'size' is required (e.g. size=2G)");
  if (sizeBytes % PAGE_SIZE !== 0) p.fail("size must be a multiple of 4K (the page size)");
  const nodesText = p.str("host-nodes");
  const hostNodes = nodesText === undefined ? [] : parseIdList(nodesText, MAX_HOST_NODE);
  if (hostNodes === undefined) {
    p.fail(`host-nodes=${nodesText} must be node numbers or ranges (0-1:3) up to ${MAX_HOST_NODE}`);
  }
  const policy = p.choice("policy", POLICIES, "default");
  if ((policy === "bind" || policy === "interleave") && hostNodes.length === 0) {
    p.fail(`policy=${policy} needs host-nodes`);
  }
  if (policy === "default" && hostNodes.length > 0) {
    p.fail("host-nodes needs a policy (preferred, bind or interleave)");
  }
  const share = p.bool("share", kind === "memory-backend-memfd");
  const prealloc = p.bool("prealloc", false);
  const dump = p.bool("dump", true);
  let memPath: string | null = null;
  if (kind === "memory-backend-file") {
    memPath = p.required("mem-path", "is required for memory-backend-file");
    if (!memPath.startsWith("/")) p.fail(`mem-path=${memPath} must be an absolute path`);
  } else if (kind === "memory-backend-ram" && share) {
    p.fail("memory-backend-ram cannot be shared; use memory-backend-memfd or -file");
  }
  p.finish(kind);
  return { kind, id, sizeBytes, hostNodes, policy, share, memPath, prealloc, dump };
}
