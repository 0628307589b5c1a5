/** main.ts end to end: exit statuses and what reaches stdout/stderr (spawns `deno run -A main.ts`). */
import { assert, assertEquals, assertMatch } from "../../tests/lib/assert.ts";
import { OPTIONS } from "./options.ts";
import { DEVICE_DRIVERS } from "./device.ts";
import { VERSION } from "../version.ts";

const MAIN = new URL("../../main.ts", import.meta.url).pathname;

function run(...args: string[]) {
  return runEnv({}, ...args);
}

async function runEnv(env: Record<string, string>, ...args: string[]) {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "--quiet", MAIN, ...args],
    env,
    stdout: "piped",
    stderr: "piped",
  }).output();
  const dec = new TextDecoder();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
}

Deno.test("main -help lists every option and exits 0", async () => {
  const r = await run("-help");
  assertEquals(r.code, 0);
  for (const o of OPTIONS) assert(r.stdout.includes(`  ${o.name}`), `help lacks ${o.name}`);
  for (const d of DEVICE_DRIVERS) assert(r.stdout.includes(`  ${d},`), `help lacks ${d}`);
});

Deno.test("main -version prints the version and exits 0", async () => {
  const r = await run("-version");
  assertEquals(r.code, 0);
  assertEquals(r.stdout, `StratoVirt ${VERSION}\n`);
});

Deno.test("main: a bad line exits 1 with one line on stderr naming option and value", async () => {
  const r = await run("-kernel", "/k", "-m", "100M");
  assertEquals(r.code, 1);
  assertEquals(r.stdout, "");
  assertEquals(r.stderr, "stratovirt: -m 100M: memory size must be between 256M and 512G\n");
});

Deno.test("main: ignored options are logged at warn level, then the machine is built", async () => {
  const log = await Deno.makeTempFile();
  try {
    const r = await runEnv(
      { STRATOVIRT_LOG_LEVEL: "warn" },
      "-kernel",
      "/nonexistent/k",
      "-nodefaults",
      "-D",
      log,
    );
    assertEquals(r.code, 1);
    assertMatch(
      await Deno.readTextFile(log),
      /:WARN: -nodefaults: ignored \(accepted for libvirt\)\n/,
    );
    // Past parsing: the machine builder runs and names the missing kernel.
    assertMatch(r.stderr, /^stratovirt: .*\/nonexistent\/k/);
  } finally {
    await Deno.remove(log);
  }
});

Deno.test("main: -help wins over the rest of the line; as another option's argument it does not", async () => {
  const r = await run("-m", "1", "-help");
  assertEquals(r.code, 0);
  const a = await run("-kernel", "/k", "-append", "-help", "-m", "1");
  assertEquals(a.code, 1);
  assertMatch(a.stderr, /-m 1: memory size must be between/);
});
