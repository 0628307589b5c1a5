/**
 * DEVELOPERS.md's development entry point: `deno task run -- ARGS` runs main.ts with ARGS (deno
 * task passes the "--" through, and the program must not take it for an option).
 */
import { assertEquals, assertMatch } from "../lib/assert.ts";

const ROOT = new URL("../../", import.meta.url).pathname;

Deno.test("deno task run -- -version prints the version and exits 0", async () => {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["task", "--quiet", "run", "--", "-version"],
    cwd: ROOT,
    stdout: "piped",
    stderr: "piped",
  }).output();
  const stdout = new TextDecoder().decode(out.stdout);
  assertEquals(out.code, 0, new TextDecoder().decode(out.stderr));
  assertMatch(stdout, /^StratoVirt \d+\.\d+\.\d+/m);
});
