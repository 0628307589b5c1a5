/** ozone: the sandbox launcher that starts stratovirt in a jail. Second entry point. */
import { VERSION } from "../version.ts";

if (import.meta.main) {
  if (Deno.args.includes("-version") || Deno.args.includes("--version")) {
    console.log(`ozone ${VERSION}`);
    Deno.exit(0);
  }
  console.error("ozone: not implemented yet");
  Deno.exit(1);
}
