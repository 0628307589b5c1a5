import { assert, assertEquals, assertThrows } from "../../../tests/lib/assert.ts";
import { GuestMemory } from "../../memory/guest_memory.ts";
import { DescFlag, VIRTQ_AVAIL_F_NO_INTERRUPT } from "./constants.ts";
import { needEvent, Queue, QueueError } from "./queue.ts";
import { DriverRing } from "./test_support.ts";

const RAM = 0x40000;

function setup(size = 8, maxSize = 16) {
  const memory = GuestMemory.anonymous(RAM);
  const ring = DriverRing.at(memory, size, 0x1000);
  const q = new Queue(maxSize);
  q.size = size;
  q.descTable = ring.desc;
  q.availRing = ring.avail;
  q.usedRing = ring.used;
  q.ready = true;
  q.indirect = true;
  assertEquals(q.validate(memory), null);
  return { memory, ring, q };
}

Deno.test("queue: pops a chain in order with directions, then publishes used entries", () => {
  const { memory, ring, q } = setup();
  assertEquals(q.pop(memory), null);
  const head = ring.chain([
    { addr: 0x8000, len: 16 },
    { addr: 0x9000, len: 512, write: true },
    { addr: 0x9200, len: 1, write: true },
  ]);
  ring.publish(head);
  const chain = q.pop(memory)!;
  assertEquals(chain.head, head);
  assertEquals(chain.descriptors, [
    { addr: 0x8000, len: 16, writable: false },
    { addr: 0x9000, len: 512, writable: true },
    { addr: 0x9200, len: 1, writable: true },
  ]);
  assertEquals(q.pop(memory), null);
  q.addUsed(memory, head, 513);
  assertEquals(ring.usedIdx, 1);
  assertEquals(ring.usedEntry(0), { id: head, len: 513 });
});

Deno.test("queue: indirect tables are flattened into the chain", () => {
  const { memory, ring, q } = setup();
  const head = ring.indirectChain([
    { addr: 0x8000, len: 16 },
    { addr: 0x9000, len: 4096, write: true },
    { addr: 0xa000, len: 1, write: true },
  ], 0x6000);
  ring.publish(head);
  const chain = q.pop(memory)!;
  assertEquals(chain.descriptors.map((d) => [d.addr, d.len, d.writable]), [
    [0x8000, 16, false],
    [0x9000, 4096, true],
    [0xa000, 1, true],
  ]);
});

Deno.test("queue: direct descriptors followed by an indirect table form one chain", () => {
  const { memory, ring, q } = setup();
  ring.writeDesc(0, { addr: 0x8000, len: 16, flags: DescFlag.NEXT, next: 3 });
  ring.writeDesc(3, { addr: 0x6000, len: 32, flags: DescFlag.INDIRECT, next: 0 });
  ring.writeDesc(
    0,
    { addr: 0x9000, len: 8, flags: DescFlag.WRITE | DescFlag.NEXT, next: 1 },
    0x6000,
  );
  ring.writeDesc(1, { addr: 0x9100, len: 1, flags: DescFlag.WRITE, next: 0 }, 0x6000);
  ring.publish(0);
  assertEquals(q.pop(memory)!.descriptors.length, 3);
});

Deno.test("queue: 16-bit indices wrap around on both rings", () => {
  const { memory, ring, q } = setup(4, 4);
  q.nextAvail = 0xfffe;
  q.nextUsed = 0xfffe;
  ring.availIdx = 0xfffe;
  for (let i = 0; i < 4; i++) {
    const head = ring.chain([{ addr: 0x8000 + 16 * i, len: 16 }]);
    ring.publish(head);
  }
  assertEquals(ring.availIdx, 2);
  assertEquals(q.pending(memory), 4);
  const heads: number[] = [];
  for (let c = q.pop(memory); c; c = q.pop(memory)) {
    heads.push(c.head);
    q.addUsed(memory, c.head, 0);
  }
  assertEquals(heads, [0, 1, 2, 3]);
  assertEquals(q.nextAvail, 2);
  assertEquals(ring.usedIdx, 2);
  // Slot (0xfffe % 4) = 2 received the first entry.
  assertEquals(ring.usedEntry(2).id, 0);
  assertEquals(ring.usedEntry(1).id, 3);
});

Deno.test("queue: avail idx more than the queue size ahead is refused", () => {
  const { memory, ring, q } = setup(8);
  ring.setAvailIdx(8);
  assertEquals(q.pending(memory), 8);
  ring.setAvailIdx(9);
  assertThrows(() => q.pop(memory), QueueError, "more than the queue size");
  ring.setAvailIdx(0xffff); // "behind" the device is the same as far ahead
  assertThrows(() => q.pending(memory), QueueError);
});

Deno.test("queue: ring validation refuses bad sizes, misalignment and addresses outside RAM", () => {
  const cases: [string, (q: Queue) => void, string][] = [
    ["not ready", (q) => (q.ready = false), "not ready"],
    ["size 0", (q) => (q.size = 0), "power of 2"],
    ["size 12", (q) => (q.size = 12), "power of 2"],
    ["size above max", (q) => (q.size = 32), "power of 2"],
    ["desc unaligned", (q) => (q.descTable += 8), "aligned to 16"],
    ["avail unaligned", (q) => (q.availRing += 1), "aligned to 2"],
    ["used unaligned", (q) => (q.usedRing += 2), "aligned to 4"],
    ["desc outside", (q) => (q.descTable = RAM - 16), "outside guest RAM"],
    ["avail outside", (q) => (q.availRing = RAM), "outside guest RAM"],
    ["used straddles end", (q) => (q.usedRing = RAM - 8), "outside guest RAM"],
    ["used above 2^53", (q) => (q.usedRing = 2 ** 60), "outside guest RAM"],
  ];
  for (const [name, spoil, message] of cases) {
    const { memory, q } = setup();
    spoil(q);
    const problem = q.validate(memory);
    assert(problem?.includes(message), `${name}: ${problem}`);
  }
});

Deno.test("queue: vring_need_event arithmetic, wrap-around included", () => {
  assert(needEvent(0, 1, 0));
  assert(!needEvent(1, 1, 0)); // driver wants an interrupt after entry 1, only 0 was added
  assert(needEvent(4, 10, 2));
  assert(!needEvent(10, 10, 2));
  assert(needEvent(0xffff, 1, 0xfffe));
  assert(!needEvent(1, 1, 0xfffe));
});

Deno.test("queue: EVENT_IDX suppresses interrupts until used_event is passed", () => {
  const { memory, ring, q } = setup();
  q.eventIdx = true;
  const complete = () => {
    const head = ring.chain([{ addr: 0x8000, len: 1, write: true }]);
    ring.publish(head);
    const c = q.pop(memory)!;
    q.addUsed(memory, c.head, 1);
  };
  complete();
  assert(q.needsNotification(memory), "first completion always interrupts");
  ring.setUsedEvent(3); // interrupt when entry 3 is used (idx goes to 4)
  complete(); // used idx 2
  assert(!q.needsNotification(memory));
  complete(); // 3
  assert(!q.needsNotification(memory));
  complete(); // 4: passes used_event 3
  assert(q.needsNotification(memory));
  assert(!q.needsNotification(memory), "nothing new since the last interrupt");
  // enableNotification publishes avail_event = next slot the device will take.
  assertEquals(q.enableNotification(memory), false);
  assertEquals(ring.availEvent, 4);
});

Deno.test("queue: without EVENT_IDX the NO_INTERRUPT flag suppresses interrupts", () => {
  const { memory, ring, q } = setup();
  ring.publish(ring.chain([{ addr: 0x8000, len: 1, write: true }]));
  q.addUsed(memory, q.pop(memory)!.head, 1);
  ring.setAvailFlags(VIRTQ_AVAIL_F_NO_INTERRUPT);
  assert(!q.needsNotification(memory));
  ring.publish(ring.chain([{ addr: 0x8000, len: 1, write: true }]));
  q.addUsed(memory, q.pop(memory)!.head, 1);
  ring.setAvailFlags(0);
  assert(q.needsNotification(memory));
});

Deno.test("queue: reset forgets the driver's setup", () => {
  const { q } = setup();
  q.nextAvail = 5;
  q.reset();
  assertEquals([q.ready, q.size, q.descTable, q.nextAvail, q.nextUsed], [false, 16, 0, 0, 0]);
});

Deno.test("queue: constructor refuses sizes that are not powers of 2", () => {
  assertThrows(() => new Queue(0), RangeError);
  assertThrows(() => new Queue(100), RangeError);
  assertThrows(() => new Queue(65536), RangeError);
});

Deno.test("queue: rings moved or resized by the driver are read at their new place", () => {
  // The queue keeps views of the rings between accesses; they must follow every change.
  const { memory, ring, q } = setup();
  ring.publish(ring.chain([{ addr: 0x8000, len: 16 }, { addr: 0x9000, len: 1, write: true }]));
  assertEquals(q.pop(memory)!.descriptors[0].addr, 0x8000);
  q.reset();
  const moved = DriverRing.at(memory, 4, 0x20000);
  q.size = 4;
  q.descTable = moved.desc;
  q.availRing = moved.avail;
  q.usedRing = moved.used;
  q.ready = true;
  assertEquals(q.validate(memory), null);
  const head = moved.chain([{ addr: 0xa000, len: 16 }, { addr: 0xb000, len: 1, write: true }]);
  moved.publish(head);
  const chain = q.pop(memory)!;
  assertEquals([chain.head, chain.descriptors[0].addr], [head, 0xa000]);
  q.addUsed(memory, head, 1);
  assertEquals([moved.usedIdx, ring.usedIdx], [1, 0]);
  // Another memory object (a device thread's own view of RAM) is read through, too.
  const other = new GuestMemory(memory.regions.map((r) => ({ ...r })));
  moved.publish(moved.chain([{ addr: 0xc000, len: 16 }, { addr: 0xd000, len: 1, write: true }]));
  assertEquals(q.pop(other)!.descriptors[0].addr, 0xc000);
});
