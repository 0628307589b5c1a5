/**
 * Measures start-to-exit time of `-version`: the built single binary (cached runs, the first run
 * with an empty cache, and the first run of a rebuilt program whose runtime is already cached)
 * against `deno run main.ts`. Steady-state commands are interleaved run by run so a busy
 * machine disturbs them alike. The numbers in docs/build.md come from here.
 *
 * Usage: deno run -A scripts/build/measure-startup.ts [BINARY] [RUNS]
 * BINARY defaults to ./stratovirt; build it first with scripts/build.sh.
 */
const root = new URL("../../", import.meta.url).pathname;
const binary = Deno.args[0] ?? `${root}stratovirt`;
const runs = Number(Deno.args[1] ?? 30);
const firstRuns = Math.max(3, Math.floor(runs / 6));

interface Case {
  label: string;
  cmd: string;
  args: string[];
  /** Prepares one run (e.g. empties a cache) and returns its environment. */
  setup: () => Promise<Record<string, string>>;
  samples: number[];
}

async function timeOnce(c: Case): Promise<number> {
  const env = await c.setup();
  const start = performance.now();
  const out = await new Deno.Command(c.cmd, { args: c.args, env, stdout: "null", stderr: "piped" })
    .output();
  const elapsed = performance.now() - start;
  if (!out.success) {
    throw new Error(`${c.label} failed: ${new TextDecoder().decode(out.stderr)}`);
  }
  return elapsed;
}

function summary(samples: number[]): string {
  const sorted = [...samples].sort((a, b) => a - b);
  const median = sorted[Math.floor(sorted.length / 2)];
  const mean = sorted.reduce((a, b) => a + b, 0) / sorted.length;
  return `min ${sorted[0].toFixed(1)} ms, median ${median.toFixed(1)} ms, ` +
    `mean ${mean.toFixed(1)} ms (${sorted.length} runs)`;
}

/** Runs every case `count` times, round-robin, after one unmeasured warm-up run each. */
async function measure(cases: Case[], count: number): Promise<void> {
  for (const c of cases) await timeOnce(c);
  for (let i = 0; i < count; i++) {
    for (const c of cases) c.samples.push(await timeOnce(c));
  }
  for (const c of cases) console.log(`${c.label.padEnd(48)} ${summary(c.samples)}`);
}

const scratch = await Deno.makeTempDir({ prefix: "stratovirt-startup-" });
try {
  const cached = `${scratch}/cached`;
  const deno = Deno.execPath();
  const plain = () => Promise.resolve({});
  const cachedEnv = () => Promise.resolve({ STRATOVIRT_CACHE: cached });
  const main = `${root}main.ts`;
  await measure(
    [
      { label: "deno run main.ts -version", cmd: deno, args: ["run", main, "-version"] },
      {
        label: "deno run -A --quiet main.ts -version",
        cmd: deno,
        args: ["run", "-A", "--quiet", main, "-version"],
      },
      { label: "stratovirt -version (cached)", cmd: binary, args: ["-version"], setup: cachedEnv },
    ].map((c) => ({ setup: plain, ...c, samples: [] })),
    runs,
  );

  await measure([{
    label: "stratovirt -version (first run, empty cache)",
    cmd: binary,
    args: ["-version"],
    setup: async () => {
      await Deno.remove(`${scratch}/fresh`, { recursive: true }).catch(() => {});
      return { STRATOVIRT_CACHE: `${scratch}/fresh` };
    },
    samples: [],
  }, {
    label: "stratovirt -version (rebuilt, runtime cached)",
    cmd: binary,
    args: ["-version"],
    setup: async () => {
      // What a rebuild costs: only the program tree is extracted again.
      for await (const e of Deno.readDir(`${cached}/run`)) {
        if (e.name.startsWith("app-")) {
          await Deno.remove(`${cached}/run/${e.name}`, { recursive: true });
        }
      }
      return { STRATOVIRT_CACHE: cached };
    },
    samples: [],
  }], firstRuns);
} finally {
  await Deno.remove(scratch, { recursive: true });
}
