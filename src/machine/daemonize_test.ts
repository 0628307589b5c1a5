import { assertEquals } from "../../tests/lib/assert.ts";
import { selfCommand } from "./daemonize.ts";

function withEnv(name: string, value: string | undefined, fn: () => void): void {
  const old = Deno.env.get(name);
  if (value === undefined) Deno.env.delete(name);
  else Deno.env.set(name, value);
  try {
    fn();
  } finally {
    if (old === undefined) Deno.env.delete(name);
    else Deno.env.set(name, old);
  }
}

Deno.test("selfCommand: under the single-binary launcher, runs the launcher again", () => {
  withEnv("STRATOVIRT_EXE", "/opt/sv/stratovirt", () => {
    assertEquals(selfCommand(["-m", "1G", "a b"]), {
      command: "/opt/sv/stratovirt",
      args: ["-m", "1G", "a b"],
    });
  });
});

Deno.test("selfCommand: under `deno run`, runs the same entry point with the same arguments", () => {
  withEnv("STRATOVIRT_EXE", undefined, () => {
    const { command, args } = selfCommand(["-daemonize", "-m", "1G"]);
    assertEquals(command, Deno.execPath());
    assertEquals(args[0], "run");
    // The entry point (this test file here) comes right before the program's own arguments.
    assertEquals(args.slice(-4), [new URL(Deno.mainModule).pathname, "-daemonize", "-m", "1G"]);
    // A deno.json beside the entry point is named, so one in the working directory cannot win.
    assertEquals(args.includes("--config") || args.includes("--no-config"), true);
  });
});
