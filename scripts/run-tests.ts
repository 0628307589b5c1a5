/**
 * Runs the whole Deno test suite, then prints the closing line `N passed, N failed, N skipped`
 * and, for every skipped test, why it was skipped (recorded by tests/lib/skip.ts).
 * Extra arguments are passed to `deno test` (e.g. a file or `--filter`).
 */
const skipLog = await Deno.makeTempFile({ prefix: "stratovirt-skips-" });
const cmd = new Deno.Command(Deno.execPath(), {
  args: ["test", "-A", ...Deno.args],
  env: { STRATOVIRT_SKIP_LOG: skipLog, NO_COLOR: "1" },
  stdout: "piped",
  stderr: "inherit",
});
const child = cmd.spawn();
const decoder = new TextDecoder();
let tail = "";
for await (const chunk of child.stdout) {
  await Deno.stdout.write(chunk);
  tail = (tail + decoder.decode(chunk, { stream: true })).slice(-4096);
}
const status = await child.status;

// deno test's own summary: "ok | 12 passed | 0 failed | 3 ignored (1s)" (or "FAILED | ...").
// NO_COLOR keeps it free of escape sequences.
const plain = tail;
const m = [
  ...plain.matchAll(
    /(\d+) passed(?: \((\d+) steps?\))? \| (\d+) failed(?: \(\d+ steps?\))?(?: \| (\d+) ignored)?/g,
  ),
]
  .at(-1);
const passed = m ? Number(m[1]) : 0;
const failed = m ? Number(m[3]) : (status.success ? 0 : 1);
const ignored = m && m[4] ? Number(m[4]) : 0;

const skips = (await Deno.readTextFile(skipLog)).split("\n").filter(Boolean).map((l) =>
  JSON.parse(l) as { name: string; reason: string }
);
await Deno.remove(skipLog);
if (skips.length > 0) {
  const byReason = new Map<string, string[]>();
  for (const s of skips) byReason.set(s.reason, [...(byReason.get(s.reason) ?? []), s.name]);
  console.log("\nskipped:");
  for (const [reason, names] of byReason) {
    console.log(`  ${names.length} because ${reason}: ${names.join("; ")}`);
  }
}
// Tests ignored without a recorded reason would be silent skips: count them, name the problem.
if (ignored > skips.length) {
  console.log(`  ${ignored - skips.length} ignored without a reason (use tests/lib/skip.ts)`);
}
console.log(`\n${passed} passed, ${failed} failed, ${ignored} skipped`);
Deno.exit(status.success && failed === 0 ? 0 : 1);
