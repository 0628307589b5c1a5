/**
 * scripts/guest/cpio.sh writes newc archives without root; the initramfs images depend on it.
 * Checked against the reader in image_formats.ts and, when installed, GNU cpio.
 */
import { assertEquals } from "../lib/assert.ts";
import { command, testWhen } from "../lib/skip.ts";
import { cpioEntries, S_IFCHR, S_IFDIR, S_IFLNK, S_IFMT, S_IFREG } from "./image_formats.ts";

const root = new URL("../..", import.meta.url).pathname;

async function archiveOf(tree: string): Promise<Uint8Array> {
  const out = await new Deno.Command("bash", {
    args: [
      "-c",
      `set -euo pipefail; . "$1/scripts/lib/env.sh"; . "$1/scripts/guest/cpio.sh"
       cpio_from_tree "$2" dev/console:c:5:1:0600`,
      "cpio-test",
      root,
      tree,
    ],
    stdout: "piped",
    stderr: "piped",
  }).output();
  if (!out.success) throw new Error(new TextDecoder().decode(out.stderr));
  return out.stdout;
}

async function sampleTree(): Promise<string> {
  const tree = await Deno.makeTempDir({ prefix: "cpio-test-" });
  await Deno.mkdir(`${tree}/bin`);
  await Deno.mkdir(`${tree}/dev`);
  await Deno.writeTextFile(`${tree}/init`, "#!/bin/sh\necho odd length\n", { mode: 0o755 });
  await Deno.writeFile(`${tree}/bin/data`, new Uint8Array(1027).fill(7), { mode: 0o644 });
  await Deno.symlink("/init", `${tree}/bin/sh`);
  return tree;
}

testWhen([command("bash")], "cpio.sh archives files, dirs, symlinks and device nodes", async () => {
  const tree = await sampleTree();
  try {
    const entries = cpioEntries(await archiveOf(tree));
    const summary = entries.map((e) => [e.name, e.mode & S_IFMT, e.mode & 0o7777, e.data.length]);
    assertEquals(summary, [
      ["bin", S_IFDIR, 0o755, 0],
      ["bin/data", S_IFREG, 0o644, 1027],
      ["bin/sh", S_IFLNK, 0o777, 5],
      ["dev", S_IFDIR, 0o755, 0],
      ["init", S_IFREG, 0o755, 26],
      ["dev/console", S_IFCHR, 0o600, 0],
    ]);
    const data = entries.find((e) => e.name === "bin/data")!.data;
    assertEquals(data.every((b) => b === 7), true);
    const console = entries.find((e) => e.name === "dev/console")!;
    assertEquals([console.rdevMajor, console.rdevMinor], [5, 1]);
  } finally {
    await Deno.remove(tree, { recursive: true });
  }
});

testWhen([command("bash"), command("cpio")], "cpio.sh output is read by GNU cpio", async () => {
  const tree = await sampleTree();
  try {
    const archive = await archiveOf(tree);
    const child = new Deno.Command("cpio", {
      args: ["-t", "--quiet"],
      stdin: "piped",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    const writer = child.stdin.getWriter();
    await writer.write(archive);
    await writer.close();
    const out = await child.output();
    assertEquals(out.success, true, new TextDecoder().decode(out.stderr));
    assertEquals(new TextDecoder().decode(out.stdout).trim().split("\n"), [
      "bin",
      "bin/data",
      "bin/sh",
      "dev",
      "init",
      "dev/console",
    ]);
  } finally {
    await Deno.remove(tree, { recursive: true });
  }
});
