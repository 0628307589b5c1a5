/**
 * The Linux guest the boot tests run: the project's guest build ($STRATOVIRT_GUEST_DIR, made by
 * scripts/test.sh) when it has a vmlinux, else the reference build in /work/shared/guest.
 */
import { file, type Requirement } from "../lib/skip.ts";

const REFERENCE_GUEST_DIR = "/work/shared/guest";

function pickGuestDir(): string {
  const built = Deno.env.get("STRATOVIRT_GUEST_DIR");
  try {
    if (built && Deno.statSync(`${built}/vmlinux`).isFile) return built;
  } catch { /* not built: use the reference guest */ }
  return REFERENCE_GUEST_DIR;
}

export const GUEST_DIR = pickGuestDir();

/** The command line the reference guest's README gives for kvm_pvm hosts. */
const PVM_CMDLINE = "console=ttyS0 panic=-1 noxsave no_int3_selftest " +
  "clearcpuid=popcnt,fsgsbase,invpcid,pcid,erms,fsrm,cx16,bmi1,bmi2,smap,rep_good " +
  "pvm_syscall_fixup rodata=off percpu_alloc=page quiet";

/** The guest build's kernel command line (its `cmdline` file), without reboot/halt switches. */
export function guestCmdline(): string {
  try {
    return Deno.readTextFileSync(`${GUEST_DIR}/cmdline`).trim();
  } catch {
    return PVM_CMDLINE;
  }
}

/** Path of a file of the guest build. */
export function guestPath(name: string): string {
  return `${GUEST_DIR}/${name}`;
}

/** The guest build has `name`. */
export function guestFile(name: string): Requirement {
  return file(guestPath(name), `guest ${name}`);
}

/** objcopy can make a vmlinux.bin when the guest build has none. */
export const vmlinuxBinAvailable: Requirement = () => {
  if (guestFile("vmlinux.bin")() === null) return null;
  for (const dir of (Deno.env.get("PATH") ?? "").split(":")) {
    try {
      if (Deno.statSync(`${dir}/objcopy`).isFile) return null;
    } catch { /* not here */ }
  }
  return `no ${guestPath("vmlinux.bin")} and no objcopy to make one from vmlinux`;
};

/**
 * The flat vmlinux.bin: the guest build's, or `objcopy -O binary vmlinux` into `tempDir`.
 */
export async function vmlinuxBin(tempDir: string): Promise<string> {
  const built = guestPath("vmlinux.bin");
  try {
    if (Deno.statSync(built).isFile) return built;
  } catch { /* make one */ }
  const out = `${tempDir}/vmlinux.bin`;
  const r = await new Deno.Command("objcopy", {
    args: ["-O", "binary", guestPath("vmlinux"), out],
    stdout: "null",
    stderr: "piped",
  }).output();
  if (!r.success) {
    throw new Error(`objcopy -O binary vmlinux failed: ${new TextDecoder().decode(r.stderr)}`);
  }
  return out;
}
