/**
 * The one error the command-line parser throws. Its message is the whole user-facing line after
 * the program name: the option, the value given, and what is allowed, e.g.
 * `-m 100M: memory size must be between 256M and 512G`.
 */

/** Control characters (a newline in -append, say) would break the one-line promise: escape them. */
function oneLine(text: string): string {
  let out = "";
  for (const c of text) {
    const code = c.charCodeAt(0);
    out += code < 0x20 || code === 0x7f ? `\\x${code.toString(16).padStart(2, "0")}` : c;
  }
  return out;
}

export class ConfigError extends Error {
  constructor(
    /** The option at fault, with its dash (`-m`, `-device`), or "" for whole-line problems. */
    readonly option: string,
    /** The value given to that option ("" when the option takes none). */
    readonly value: string,
    /** What is wrong and what is allowed. */
    readonly reason: string,
  ) {
    super(
      oneLine(`${option}${value === "" ? "" : " " + value}${option === "" ? "" : ": "}${reason}`),
    );
    this.name = "ConfigError";
  }
}
