/**
 * The host terminal's mode. The stdio backend puts stdin in raw mode (so Ctrl-C and friends reach
 * the guest); whatever ends the process must put it back, or the user's shell is left unusable.
 * `restoreTerminal` is idempotent and safe from any exit path; it also runs on the `unload`
 * event, which covers normal exit and `Deno.exit`. Signal handlers belong to the process's exit
 * path, which calls it too.
 */

let raw = false;
let unloadHooked = false;

/** Puts stdin in raw mode when it is a terminal; returns whether it did. */
export function enterRawMode(): boolean {
  if (raw) return true;
  if (!Deno.stdin.isTerminal()) return false;
  Deno.stdin.setRaw(true);
  raw = true;
  if (!unloadHooked) {
    globalThis.addEventListener("unload", restoreTerminal);
    unloadHooked = true;
  }
  return true;
}

/** Whether stdin is currently in raw mode because of us. */
export function terminalIsRaw(): boolean {
  return raw;
}

/** Puts the terminal back in the mode it had before `enterRawMode`. Never throws. */
export function restoreTerminal(): void {
  if (!raw) return;
  raw = false;
  try {
    Deno.stdin.setRaw(false);
  } catch {
    // stdin already closed or no longer a terminal: nothing to restore.
  }
}
