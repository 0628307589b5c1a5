import { assertEquals, assertMatch, assertThrows } from "../../tests/lib/assert.ts";
import { testWhen } from "../../tests/lib/skip.ts";
import { helperAvailable } from "../../ffi/helper.ts";
import { guestMemoryOf, GuestRam, GuestRamError } from "./guest_ram.ts";

const helperBuilt = () => helperAvailable() ? "the helper library is not built" : null;
const MiB = 1 << 20;

testWhen([helperBuilt], "guest RAM: regions share one mapping, back to back", () => {
  const ram = GuestRam.allocate([{ gpa: 0, size: 2 * MiB }, { gpa: 0x1_0000_0000, size: MiB }]);
  try {
    assertEquals(ram.totalSize, 3 * MiB);
    assertEquals(ram.regions.map((r) => [r.slot, r.gpa, r.size]), [
      [0, 0, 2 * MiB],
      [1, 0x1_0000_0000, MiB],
    ]);
    assertEquals(ram.regions[1].hostAddress - ram.regions[0].hostAddress, BigInt(2 * MiB));
    // Two views (as two isolates would make) see each other's writes.
    const a = guestMemoryOf(ram.regions);
    const b = guestMemoryOf(ram.regions);
    a.writeU32(0x1_0000_0010, 0xcafef00d);
    assertEquals(b.readU32(0x1_0000_0010), 0xcafef00d);
  } finally {
    ram.unmap();
  }
});

testWhen([helperBuilt], "guest RAM: a file backing is created and sized, shared", () => {
  const dir = Deno.makeTempDirSync();
  try {
    const path = `${dir}/ram`;
    const ram = GuestRam.allocate([{ gpa: 0, size: 2 * MiB }], { path });
    try {
      assertEquals(Deno.statSync(path).size, 2 * MiB);
      guestMemoryOf(ram.regions).write(0x1000, new TextEncoder().encode("ram!"));
      const f = Deno.readFileSync(path);
      assertEquals(new TextDecoder().decode(f.subarray(0x1000, 0x1004)), "ram!");
    } finally {
      ram.unmap();
    }
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});

testWhen([helperBuilt], "guest RAM: an unusable mem-path is a GuestRamError naming it", () => {
  const e = assertThrows(
    () => GuestRam.allocate([{ gpa: 0, size: 2 * MiB }], { path: "/nonexistent/dir/ram" }),
    GuestRamError,
  );
  assertMatch(e.message, /cannot open memory backing \/nonexistent\/dir\/ram/);
});
