/**
 * VMM memory without guest RAM, from /proc/PID/smaps (shared by the boot benchmarks).
 */

/** Rss and anonymous kB of a process, each without its guest RAM mappings. */
export function vmmMemory(
  pid: number,
  guestBytes: number,
): { rssKb: number; anonKb: number } | null {
  let text: string;
  try {
    text = Deno.readTextFileSync(`/proc/${pid}/smaps`);
  } catch {
    return null; // exited
  }
  let rss = 0, anon = 0, isGuest = false;
  for (const line of text.split("\n")) {
    const head = line.match(/^([0-9a-f]+)-([0-9a-f]+) (\S+) \S+ \S+ (\d+)\s*(.*)$/);
    if (head) {
      const size = Number(BigInt(`0x${head[2]}`) - BigInt(`0x${head[1]}`));
      const anonymous = head[4] === "0" && head[5] === "";
      isGuest = anonymous && head[3].startsWith("rw") && size >= guestBytes;
      continue;
    }
    if (isGuest) continue;
    const field = line.match(/^(Rss|Anonymous):\s+(\d+) kB/);
    if (field?.[1] === "Rss") rss += Number(field[2]);
    else if (field?.[1] === "Anonymous") anon += Number(field[2]);
  }
  return { rssKb: rss, anonKb: anon };
}
