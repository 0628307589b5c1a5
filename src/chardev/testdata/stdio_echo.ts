/**
 * Test helper for the stdio backend: echoes its first input line upper-cased between < and >,
 * then exits.
 * With --tty it reports the terminal mode while raw and after restoreTerminal().
 */
import { createChardev } from "../create.ts";
import type { StdioChardev } from "../stdio.ts";
import { restoreTerminal } from "../terminal.ts";

const dev = createChardev({ backend: "stdio", id: "console" }) as StdioChardev;
const enc = new TextEncoder();
dev.write(enc.encode(`raw=${dev.rawMode}\n`));
if (Deno.args.includes("--tty")) {
  const mode = () => {
    const stty = new Deno.Command("stty", { args: ["-a"], stdin: "inherit", stdout: "piped" });
    return new TextDecoder().decode(stty.outputSync().stdout).match(/-?icanon/)?.[0];
  };
  dev.write(enc.encode(`\r\nin raw: ${mode()}\r\n`));
  await dev.flush();
  restoreTerminal();
  dev.write(enc.encode(`restored: ${mode()}\n`));
  await dev.flush();
  Deno.exit(0);
}
// Echo the first line once it is complete.
let buffered = "";
const line = new Promise<void>((resolve) => {
  dev.onInput((bytes) => {
    buffered += new TextDecoder().decode(bytes);
    if (buffered.endsWith("\n")) resolve();
  });
});
await line;
dev.write(enc.encode(`<${buffered.toUpperCase()}>`));
await dev.close();
Deno.exit(0);
