/**
 * The single-binary build (scripts/build.sh, fallback launcher): builds into temp dirs, never
 * touching ./stratovirt, and runs the result with private cache directories.
 * Two programs are packaged: the real tree (for `-version` of both entry points) and a small
 * fixture program that reports its arguments, stdin, environment and a Worker's answer, so
 * pass-through is checked without depending on what main.ts does today.
 */
import { assert, assertEquals, assertMatch, assertNotEquals } from "../lib/assert.ts";
import { file, testWhen } from "../lib/skip.ts";

const ROOT = new URL("../../", import.meta.url).pathname;
const needs = [
  file(`${ROOT}.tools/deno/deno`, "the pinned Deno runtime (scripts/setup.sh)"),
  file(`${ROOT}.tools/zig/zig`, "the pinned Zig (scripts/setup.sh)"),
];
const decoder = new TextDecoder();

interface Result {
  code: number;
  signal: Deno.Signal | null;
  stdout: string;
  stderr: string;
}

async function run(
  cmd: string,
  args: string[],
  env: Record<string, string> = {},
  stdin?: string,
): Promise<Result> {
  const child = new Deno.Command(cmd, {
    args,
    env,
    stdin: stdin === undefined ? "null" : "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  if (stdin !== undefined) {
    const writer = child.stdin.getWriter();
    await writer.write(new TextEncoder().encode(stdin));
    await writer.close();
  }
  const out = await child.output();
  return {
    code: out.code,
    signal: out.signal,
    stdout: decoder.decode(out.stdout),
    stderr: decoder.decode(out.stderr),
  };
}

/** Runs scripts/build.sh in launcher mode; fails the test when the build fails. */
async function build(out: string, src = ROOT): Promise<Result> {
  const result = await run("bash", [`${ROOT}scripts/build.sh`, out], {
    STRATOVIRT_BUILD_MODE: "launcher",
    STRATOVIRT_BUILD_SRC: src,
  });
  assertEquals(result.code, 0, `build failed: ${result.stderr}`);
  return result;
}

const FIXTURE: Record<string, string> = {
  "deno.json": "{}\n",
  "main.ts": `
const [mode, ...rest] = Deno.args;
if (mode === "args") console.log(JSON.stringify(rest));
if (mode === "exit") Deno.exit(Number(rest[0]));
if (mode === "stdin") {
  const chunks = [];
  for await (const c of Deno.stdin.readable) chunks.push(new TextDecoder().decode(c));
  console.log("got:" + chunks.join(""));
}
if (mode === "stderr") console.error("to stderr");
// Bytes this process has read so far, the launcher's reads included (execve keeps the counters).
if (mode === "read-bytes") {
  console.log(/rchar: (\\d+)/.exec(Deno.readTextFileSync("/proc/self/io"))[1]);
}
if (mode === "signal") Deno.kill(Deno.pid, "SIGTERM");
if (mode === "env") {
  const helper = Deno.env.get("STRATOVIRT_HELPER");
  console.log(JSON.stringify({
    helper: helper ?? null,
    helperText: helper ? Deno.readTextFileSync(helper) : null,
    exe: Deno.env.get("STRATOVIRT_EXE") ?? null,
    denoDir: Deno.env.get("DENO_DIR") ?? null,
    execPath: Deno.execPath(),
    main: Deno.mainModule,
  }));
}
if (mode === "dlopen") {
  Deno.dlopen(Deno.env.get("STRATOVIRT_HELPER"), {}).close();
  console.log("loaded");
}
if (mode === "worker") {
  const w = new Worker(new URL("./src/double.ts", import.meta.url), { type: "module" });
  w.onmessage = (e) => {
    console.log("worker:" + e.data);
    w.terminate();
  };
  w.postMessage(21);
}
`,
  "src/double.ts": `self.onmessage = (e) => self.postMessage(e.data * 2);\n`,
  "src/double_test.ts": `// test files stay out of the payload\n`,
  "src/ozone/main.ts": `console.log("ozone entry " + JSON.stringify(Deno.args));\n`,
};
const HELPER_PATH = "helper/zig-out/lib/libstratovirt_helper.so";
const HELPER_TEXT = "stand-in for the helper library\n";

async function writeFixture(dir: string, withHelper: boolean): Promise<void> {
  const files = withHelper ? { ...FIXTURE, [HELPER_PATH]: HELPER_TEXT } : FIXTURE;
  for (const [path, text] of Object.entries(files)) {
    await Deno.mkdir(`${dir}/${path}`.replace(/\/[^/]+$/, ""), { recursive: true });
    await Deno.writeTextFile(`${dir}/${path}`, text);
  }
}
const REAL_HELPER = `${ROOT}${HELPER_PATH}`;

// Built once, shared by the tests below; every test uses its own cache directory.
const scratch = await Deno.makeTempDir({ prefix: "stratovirt-build-test-" });
let fixtureBin: Promise<string> | undefined;
function fixtureBinary(): Promise<string> {
  fixtureBin ??= (async () => {
    await writeFixture(`${scratch}/fixture`, true);
    await build(`${scratch}/fixture-out`, `${scratch}/fixture`);
    return `${scratch}/fixture-out/stratovirt`;
  })();
  return fixtureBin;
}
let caches = 0;
async function freshCache(): Promise<string> {
  const dir = `${scratch}/cache-${caches++}`;
  await Deno.mkdir(dir);
  return dir;
}

/** Names under `<cache>/run`, sorted. */
async function cacheEntries(cache: string): Promise<string[]> {
  const names = [];
  for await (const e of Deno.readDir(`${cache}/run`)) names.push(e.name);
  return names.sort();
}

/** The extracted runtime and program trees (the test fails unless there is exactly one each). */
async function extracted(cache: string): Promise<{ runtime: string; app: string }> {
  const names = await cacheEntries(cache);
  assertEquals(names.length, 2, `expected one runtime and one app tree, found ${names}`);
  assertMatch(names[0], /^app-[0-9a-f]{32}$/);
  assertMatch(names[1], /^deno-[0-9a-f]{32}$/);
  return { app: `${cache}/run/${names[0]}`, runtime: `${cache}/run/${names[1]}` };
}

testWhen(needs, "build: the real tree's stratovirt and ozone answer -version", async () => {
  const out = `${scratch}/real`;
  await build(out);
  const cache = await freshCache();
  const env = { STRATOVIRT_CACHE: cache };
  const version = await run(`${out}/stratovirt`, ["-version"], env);
  assertEquals(version.code, 0, version.stderr);
  assertMatch(version.stdout, /^StratoVirt \S+\n$/);
  const direct = await run(Deno.execPath(), ["run", "-A", "--quiet", `${ROOT}main.ts`, "-version"]);
  assertEquals(version.stdout, direct.stdout);

  const ozone = await run(`${out}/ozone`, ["-version"], env);
  assertEquals(ozone.code, 0, ozone.stderr);
  assertMatch(ozone.stdout, /^ozone \S+\n$/);

  const bad = await run(`${out}/stratovirt`, ["-no-such-option"], env);
  assertEquals(bad.code, 1);
  assertEquals(bad.signal, null);
});

testWhen(
  needs,
  "build: arguments, stdin, stdout, stderr and exit status pass through",
  async () => {
    const bin = await fixtureBinary();
    const env = { STRATOVIRT_CACHE: await freshCache() };
    const tricky = ["-drive", "file=/a b,if=none", "", "ü ∂ \\ ' \"", "--", "-A"];
    const args = await run(bin, ["args", ...tricky], env);
    assertEquals(args.code, 0, args.stderr);
    assertEquals(JSON.parse(args.stdout), tricky);
    assertEquals(args.stderr, "");

    const stdin = await run(bin, ["stdin"], env, "hello\nworld");
    assertEquals(stdin.stdout, "got:hello\nworld\n");

    const stderr = await run(bin, ["stderr"], env);
    assertEquals([stderr.stdout, stderr.stderr], ["", "to stderr\n"]);

    assertEquals((await run(bin, ["exit", "42"], env)).code, 42);
    const killed = await run(bin, ["signal"], env);
    assertEquals(killed.signal, "SIGTERM");
  },
);

testWhen(
  needs,
  "build: Workers load from the extracted tree; helper and DENO_DIR live in the cache",
  async () => {
    const bin = await fixtureBinary();
    const cache = await freshCache();
    const worker = await run(bin, ["worker"], { STRATOVIRT_CACHE: cache });
    assertEquals(worker.stdout, "worker:42\n", worker.stderr);

    const { runtime, app: dir } = await extracted(cache);
    const env = JSON.parse((await run(bin, ["env"], { STRATOVIRT_CACHE: cache })).stdout);
    assertEquals(env.execPath, `${runtime}/deno`);
    assertEquals(env.helper, `${dir}/${HELPER_PATH}`);
    assertEquals(env.helperText, HELPER_TEXT);
    assertEquals(env.exe, await Deno.realPath(bin));
    assertEquals(env.denoDir, `${dir}/deno_dir`);
    assertEquals(env.main, `file://${dir}/main.ts`);
    // Test files are not shipped.
    await Deno.stat(`${dir}/src/double.ts`);
    let shipped = true;
    await Deno.stat(`${dir}/src/double_test.ts`).catch(() => shipped = false);
    assertEquals(shipped, false);
  },
);

testWhen(needs, "build: the second start reuses the cache without extracting again", async () => {
  const bin = await fixtureBinary();
  const cache = await freshCache();
  const env = { STRATOVIRT_CACHE: cache };
  const payloadSize = (await Deno.stat(bin)).size;
  const first = await run(bin, ["read-bytes"], env);
  assert(Number(first.stdout) > payloadSize / 2, `first run read ${first.stdout} bytes`);
  const { runtime, app } = await extracted(cache);
  const paths = [runtime, app, `${runtime}/deno`, `${app}/main.ts`];
  const before = await Promise.all(paths.map((p) => Deno.stat(p)));
  const second = await run(bin, ["read-bytes"], env);
  // The payload is tens of MB (the Deno runtime); a cached start must not read it again.
  assert(Number(second.stdout) < payloadSize / 4, `second run read ${second.stdout} bytes`);
  assertEquals(await extracted(cache), { runtime, app });
  const after = await Promise.all(paths.map((p) => Deno.stat(p)));
  assertEquals(after.map((s) => s.ino), before.map((s) => s.ino));
  assertEquals(
    after.slice(2).map((s) => s.mtime?.getTime()),
    before.slice(2).map((s) => s.mtime?.getTime()),
  );
});

testWhen(
  needs,
  "build: concurrent first runs all succeed and leave one extracted tree",
  async () => {
    const bin = await fixtureBinary();
    const cache = await freshCache();
    const results = await Promise.all(
      [1, 2, 3].map((n) => run(bin, ["args", String(n)], { STRATOVIRT_CACHE: cache })),
    );
    assertEquals(results.map((r) => r.stdout), ['["1"]\n', '["2"]\n', '["3"]\n']);
    await extracted(cache); // one tree each: no temp dir left behind
  },
);

testWhen(needs, "build: an interrupted extraction's temp dir is cleaned up", async () => {
  const bin = await fixtureBinary();
  const cache = await freshCache();
  const dead = new Deno.Command("true").spawn();
  await dead.status; // a pid that no longer exists
  const stale = `${cache}/run/.tmp-deno-00000000000000000000000000000000-${dead.pid}`;
  await Deno.mkdir(stale, { recursive: true });
  await Deno.writeTextFile(`${stale}/deno`, "half written");
  const result = await run(bin, ["args", "ok"], { STRATOVIRT_CACHE: cache });
  assertEquals(result.stdout, '["ok"]\n', result.stderr);
  await extracted(cache);
});

testWhen(
  needs,
  "build: falls back to a private temp dir when the cache is not writable",
  async () => {
    const bin = await fixtureBinary();
    const tmp = await freshCache();
    const result = await run(bin, ["args", "x"], {
      STRATOVIRT_CACHE: "/dev/null/cache",
      TMPDIR: tmp,
    });
    assertEquals(result.stdout, '["x"]\n', result.stderr);
    const userDir = `${tmp}/stratovirt-${Deno.uid()}`;
    assertEquals((await Deno.stat(userDir)).mode! & 0o777, 0o700);
    await extracted(userDir);
  },
);

testWhen(needs, "build: a corrupted or truncated payload gives a clear error", async () => {
  const bin = await fixtureBinary();
  const bytes = await Deno.readFile(bin);

  // One byte flipped inside the runtime, then inside the last file of the program tree.
  for (const [at, section] of [[1_000_000, "deno"], [bytes.length - 128 - 8, "app"]] as const) {
    const corrupt = bytes.slice();
    corrupt[at] ^= 0xff;
    await Deno.writeFile(`${scratch}/corrupt`, corrupt, { mode: 0o755 });
    const cache = await freshCache();
    const bad = await run(`${scratch}/corrupt`, ["args"], { STRATOVIRT_CACHE: cache });
    assertEquals(bad.code, 1);
    assertMatch(bad.stderr, new RegExp(`payload .* is corrupted \\(${section} section`));
    assertEquals(bad.stdout, "");
    const left = (await cacheEntries(cache)).filter((n) => !n.startsWith("deno-"));
    assertEquals(left, [], "nothing half-extracted stays in the cache");
  }

  for (const cut of [1, 1000, Math.floor(bytes.length / 2)]) {
    await Deno.writeFile(`${scratch}/truncated`, bytes.subarray(0, bytes.length - cut), {
      mode: 0o755,
    });
    const t = await run(`${scratch}/truncated`, ["args"], { STRATOVIRT_CACHE: await freshCache() });
    assertEquals(t.code, 1, `cut ${cut}`);
    assertMatch(t.stderr, /truncated/);
  }
});

testWhen(needs, "build: started under the name ozone it runs src/ozone/main.ts", async () => {
  const bin = await fixtureBinary();
  const env = { STRATOVIRT_CACHE: await freshCache() };
  const copy = await run(`${scratch}/fixture-out/ozone`, ["-version"], env);
  assertEquals(copy.stdout, 'ozone entry ["-version"]\n', copy.stderr);
  await Deno.mkdir(`${scratch}/links`, { recursive: true });
  await Deno.symlink(bin, `${scratch}/links/ozone`);
  const link = await run(`${scratch}/links/ozone`, ["a"], env);
  assertEquals(link.stdout, 'ozone entry ["a"]\n', link.stderr);
});

testWhen(
  needs,
  "build: warns without the helper, is quiet when nothing changed, rebuilds on change",
  async () => {
    const src = `${scratch}/incremental`;
    const out = `${scratch}/incremental-out`;
    await writeFixture(src, false);
    const first = await build(out, src);
    assertMatch(first.stderr, /warning: .*libstratovirt_helper\.so is missing/);
    const built = await Deno.stat(`${out}/stratovirt`);
    const env = JSON.parse(
      (await run(`${out}/stratovirt`, ["env"], {
        STRATOVIRT_CACHE: await freshCache(),
      })).stdout,
    );
    assertEquals(env.helper, null);

    const again = await build(out, src);
    assertEquals([again.stdout, again.stderr], ["", ""]);
    assertEquals((await Deno.stat(`${out}/stratovirt`)).ino, built.ino);

    await Deno.mkdir(`${src}/helper/zig-out/lib`, { recursive: true });
    await Deno.writeTextFile(`${src}/${HELPER_PATH}`, HELPER_TEXT);
    const rebuilt = await build(out, src);
    assert(!rebuilt.stderr.includes("warning"), rebuilt.stderr);
    assertNotEquals((await Deno.stat(`${out}/stratovirt`)).ino, built.ino);
  },
);

testWhen(
  [...needs, file(REAL_HELPER, "the helper library (scripts/build-helper.sh)")],
  "build: the packaged helper library loads from the cache",
  async () => {
    const src = `${scratch}/with-real-helper`;
    await writeFixture(src, false);
    await Deno.mkdir(`${src}/helper/zig-out/lib`, { recursive: true });
    await Deno.copyFile(REAL_HELPER, `${src}/${HELPER_PATH}`);
    await build(`${scratch}/with-real-helper-out`, src);
    const cache = await freshCache();
    const result = await run(`${scratch}/with-real-helper-out/stratovirt`, ["dlopen"], {
      STRATOVIRT_CACHE: cache,
      STRATOVIRT_HELPER: "/nonexistent/set-by-the-caller.so", // the launcher sets its own
    });
    assertEquals(result.stdout, "loaded\n", result.stderr);
    const { app } = await extracted(cache);
    assertEquals(await Deno.readFile(`${app}/${HELPER_PATH}`), await Deno.readFile(REAL_HELPER));
  },
);

globalThis.addEventListener("unload", () => {
  Deno.removeSync(scratch, { recursive: true });
});
