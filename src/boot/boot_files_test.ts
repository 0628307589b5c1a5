import { assertEquals, assertRejects } from "../../tests/lib/assert.ts";
import { readBootFiles } from "./boot_files.ts";
import { BootError } from "./error.ts";

Deno.test("boot files: read into bytes, names kept for messages", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await Deno.writeFile(`${dir}/k`, new Uint8Array([1, 2, 3]));
    await Deno.writeFile(`${dir}/rd`, new Uint8Array([9]));
    const f = await readBootFiles(`${dir}/k`, `${dir}/rd`);
    assertEquals(f, {
      kernel: new Uint8Array([1, 2, 3]),
      kernelName: `${dir}/k`,
      initrd: new Uint8Array([9]),
      initrdName: `${dir}/rd`,
    });
    assertEquals((await readBootFiles(`${dir}/k`)).initrd, null);
    await assertRejects(() => readBootFiles(`${dir}/missing`), BootError, "cannot read kernel");
    await assertRejects(
      () => readBootFiles(`${dir}/k`, `${dir}/nope`),
      BootError,
      `cannot read initrd ${dir}/nope`,
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
