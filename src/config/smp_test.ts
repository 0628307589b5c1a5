/** -smp topology: how missing members default, the way StratoVirt computes them. */
import { assertEquals } from "../../tests/lib/assert.ts";
import { parseSmp, SmpConfig } from "./smp.ts";

const CASES: [
  string,
  Omit<SmpConfig, "dies" | "clusters"> & { dies?: number; clusters?: number },
][] = [
  ["1", { cpus: 1, maxCpus: 1, sockets: 1, cores: 1, threads: 1 }],
  ["8", { cpus: 8, maxCpus: 8, sockets: 1, cores: 8, threads: 1 }],
  ["cpus=8", { cpus: 8, maxCpus: 8, sockets: 1, cores: 8, threads: 1 }],
  ["4,maxcpus=8", { cpus: 4, maxCpus: 8, sockets: 1, cores: 8, threads: 1 }],
  ["8,sockets=2", { cpus: 8, maxCpus: 8, sockets: 2, cores: 4, threads: 1 }],
  ["8,cores=2", { cpus: 8, maxCpus: 8, sockets: 4, cores: 2, threads: 1 }],
  ["8,sockets=2,cores=2", { cpus: 8, maxCpus: 8, sockets: 2, cores: 2, threads: 2 }],
  ["8,threads=2", { cpus: 8, maxCpus: 8, sockets: 1, cores: 4, threads: 2 }],
  ["2,sockets=2,cores=2,threads=2", { cpus: 2, maxCpus: 8, sockets: 2, cores: 2, threads: 2 }],
  ["8,dies=2,clusters=2", {
    cpus: 8,
    maxCpus: 8,
    sockets: 1,
    dies: 2,
    clusters: 2,
    cores: 2,
    threads: 1,
  }],
];

for (const [text, expected] of CASES) {
  Deno.test(`-smp ${text}`, () => {
    assertEquals(parseSmp(text), { dies: 1, clusters: 1, ...expected });
  });
}
