/**
 * stratovirt: a KVM virtual machine monitor that speaks StratoVirt's command line and QMP.
 * Entry point: parse the command line, build the machine, run it.
 */
import { ConfigError, helpText, parseCommandLine, VmConfig } from "./src/config/mod.ts";
import { VERSION } from "./src/version.ts";

function main(args: string[]): number {
  let config: VmConfig;
  try {
    config = parseCommandLine(args);
  } catch (e) {
    if (!(e instanceof ConfigError)) throw e;
    console.error(`stratovirt: ${e.message}`);
    return 1;
  }
  if (config.action === "help") {
    console.log(helpText());
    return 0;
  }
  if (config.action === "version") {
    console.log(`StratoVirt ${VERSION}`);
    return 0;
  }
  for (const warning of config.warnings) console.error(`stratovirt: warning: ${warning}`);

  // build and run the machine
  console.error("stratovirt: the machine builder is not there yet");
  return 1;
}

if (import.meta.main) Deno.exit(main(Deno.args));
