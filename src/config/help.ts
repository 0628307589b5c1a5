/** The -help text, generated from the option table so it always lists every option. */
import { OPTIONS } from "./options.ts";
import { deviceSynopses } from "./device.ts";
import { VERSION } from "../version.ts";

export function helpText(): string {
  const lines = [
    `StratoVirt ${VERSION}: a KVM virtual machine monitor`,
    "",
    "Usage: stratovirt [OPTION]...",
    "",
    "Options:",
  ];
  for (const o of OPTIONS) {
    const head = o.synopsis ? `${o.name} ${o.synopsis}` : o.name;
    lines.push(`  ${head}`);
    lines.push(`      ${o.help}${o.repeat && !o.ignored ? " (may be repeated)" : ""}`);
  }
  lines.push("");
  lines.push("Devices (-device DRIVER,PROPERTIES):");
  for (const line of deviceSynopses()) lines.push(`  ${line}`);
  lines.push("");
  lines.push("Environment: STRATOVIRT_LOG_LEVEL=trace|debug|info|warn|error (default error)");
  return lines.join("\n");
}
