/**
 * stratovirt: a KVM virtual machine monitor that speaks StratoVirt's command line and QMP.
 * Entry point: parse the command line, build the machine, run it.
 */
import { VERSION } from "./src/version.ts";

function main(args: string[]): number {
  if (args.includes("-version") || args.includes("--version")) {
    console.log(`StratoVirt ${VERSION}`);
    return 0;
  }
  console.error("stratovirt: the machine builder is not there yet");
  return 1;
}

if (import.meta.main) Deno.exit(main(Deno.args));
