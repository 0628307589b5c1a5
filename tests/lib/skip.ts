/**
 * Tests that need something the machine may lack (KVM, a guest image, a Debian tool) register
 * through `needs`: the test runs when the requirement holds, and otherwise is registered as
 * ignored with its reason recorded, so the test run can print how many were skipped and why.
 */

/** A requirement: `null` when it holds, otherwise the reason it does not. */
export type Requirement = () => string | null;

const SKIP_LOG = Deno.env.get("STRATOVIRT_SKIP_LOG");

function recordSkip(name: string, reason: string): void {
  if (!SKIP_LOG) return;
  Deno.writeTextFileSync(SKIP_LOG, JSON.stringify({ name, reason }) + "\n", { append: true });
}

/** Registers a Deno test that runs only when every requirement holds. */
export function testWhen(
  requirements: Requirement[],
  name: string,
  fn: (t: Deno.TestContext) => void | Promise<void>,
  options: Omit<Deno.TestDefinition, "name" | "fn" | "ignore"> = {},
): void {
  let reason: string | null = null;
  for (const req of requirements) {
    reason = req();
    if (reason) break;
  }
  if (reason) recordSkip(name, reason);
  Deno.test({ ...options, name, fn, ignore: reason !== null });
}

/** /dev/kvm exists and can be opened read-write. */
export const kvm: Requirement = () => {
  try {
    const f = Deno.openSync("/dev/kvm", { read: true, write: true });
    f.close();
    return null;
  } catch (e) {
    return `no usable /dev/kvm (${(e as Error).message})`;
  }
};

/** A host command is on PATH. */
export function command(name: string): Requirement {
  return () => {
    for (const dir of (Deno.env.get("PATH") ?? "").split(":")) {
      try {
        if (Deno.statSync(`${dir}/${name}`).isFile) return null;
      } catch { /* not in this dir */ }
    }
    return `${name} is not installed`;
  };
}

/** A file exists (e.g. a built guest image named by an environment variable). */
export function file(path: string | undefined, what: string): Requirement {
  return () => {
    if (!path) return `${what} was not built (run scripts/test.sh)`;
    try {
      Deno.statSync(path);
      return null;
    } catch {
      return `${what} not found at ${path}`;
    }
  };
}

/** Running as root (tap devices, namespaces, hugetlbfs). */
export const root: Requirement = () =>
  Deno.uid() === 0 ? null : "needs root (tap devices, namespaces)";
