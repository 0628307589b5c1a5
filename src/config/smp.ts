/**
 * `-smp`: vCPU count and topology. Missing topology members are computed the way StratoVirt
 * does: maxcpus from the topology product (or cpus), dies and clusters default to 1, then
 * cores, sockets and threads fill in what is left, in that order.
 */
import { Props } from "./props.ts";

export const MIN_VCPUS = 1;
export const MAX_VCPUS = 254;

export interface SmpConfig {
  /** vCPUs online at boot. */
  readonly cpus: number;
  /** vCPUs the VM can ever have (hot-plug ceiling). */
  readonly maxCpus: number;
  readonly sockets: number;
  readonly dies: number;
  readonly clusters: number;
  readonly cores: number;
  readonly threads: number;
}

export const DEFAULT_SMP: SmpConfig = {
  cpus: 1,
  maxCpus: 1,
  sockets: 1,
  dies: 1,
  clusters: 1,
  cores: 1,
  threads: 1,
};

export function parseSmp(text: string): SmpConfig {
  const p: Props = new Props("-smp", text, "cpus");
  const member = (key: string) => p.int(key, { min: 1, max: MAX_VCPUS });
  const given = {
    sockets: member("sockets"),
    dies: member("dies"),
    clusters: member("clusters"),
    cores: member("cores"),
    threads: member("threads"),
  };
  const maxGiven = p.int("maxcpus", { min: 0, max: 1 << 20 });
  const cpusText = p.str("cpus");
  p.finish();
  if (cpusText === undefined) p.fail("the number of cpus is required (-smp [cpus=]n)");
  const cpus = p.int("cpus", { min: 0, max: 1 << 20 })!;
  if (cpus < MIN_VCPUS || cpus > MAX_VCPUS) {
    p.fail(`cpus=${cpus}: the number of vCPUs must be between ${MIN_VCPUS} and ${MAX_VCPUS}`);
  }

  const dies = given.dies ?? 1;
  const clusters = given.clusters ?? 1;
  let sockets = given.sockets ?? 0;
  let cores = given.cores ?? 0;
  let threads = given.threads ?? 0;
  let maxCpus = maxGiven ?? 0;
  if (maxCpus === 0) {
    const product = sockets * dies * clusters * cores * threads;
    maxCpus = product > 0 ? product : cpus;
  }
  if (cores === 0) {
    if (sockets === 0) sockets = 1;
    if (threads === 0) threads = 1;
    cores = Math.floor(maxCpus / (sockets * dies * clusters * threads));
  } else if (sockets === 0) {
    if (threads === 0) threads = 1;
    sockets = Math.floor(maxCpus / (dies * clusters * cores * threads));
  }
  if (threads === 0) threads = Math.floor(maxCpus / (sockets * dies * clusters * cores));

  if (maxCpus < MIN_VCPUS || maxCpus > MAX_VCPUS) {
    p.fail(`maxcpus=${maxCpus}: must be between ${MIN_VCPUS} and ${MAX_VCPUS}`);
  }
  if (maxCpus < cpus) {
    p.fail(`maxcpus (${maxCpus}) must be larger than or equal to cpus (${cpus})`);
  }
  const product = sockets * dies * clusters * cores * threads;
  if (product !== maxCpus) {
    p.fail(
      `sockets(${sockets}) * dies(${dies}) * clusters(${clusters}) * cores(${cores}) * ` +
        `threads(${threads}) = ${product} must equal maxcpus (${maxCpus})`,
    );
  }
  return { cpus, maxCpus, sockets, dies, clusters, cores, threads };
}
