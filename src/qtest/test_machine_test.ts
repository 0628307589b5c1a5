/**
 * How the accel=test machine hands asynchronous block completions to the client: `settle`
 * answers a QueueNotify's requests before its reply, `poll` only what finished, the rest on
 * later commands.
 */
import { assert, assertEquals } from "../../tests/lib/assert.ts";
import { testWhen } from "../../tests/lib/skip.ts";
import { helperAvailable } from "../../ffi/helper.ts";
import { parseCommandLine } from "../config/parse.ts";
import { QtestProtocol } from "./protocol.ts";
import { buildTestMachine, type QtestIoMode } from "./test_machine.ts";

const BASE = 0xf010_0000;
const RING = 0x10_0000;
const QUEUE_SIZE = 32;

/** Drives virtio-mmio slot 0 to DRIVER_OK with queue 0 at RING, through the protocol. */
function setUp(p: QtestProtocol): void {
  const run = (line: string) => {
    const [reply] = p.handleLine(line).slice(-1);
    assert(reply.startsWith("OK"), `${line}: ${reply}`);
    return reply;
  };
  const w = (off: number, v: number) => run(`writel 0x${(BASE + off).toString(16)} ${v}`);
  w(0x70, 0);
  w(0x70, 1);
  w(0x70, 3);
  w(0x24, 1);
  w(0x20, 1); // VIRTIO_F_VERSION_1 (bit 32)
  w(0x70, 11);
  w(0x30, 0);
  w(0x38, QUEUE_SIZE);
  const [desc, avail, used] = [RING, RING + 0x1000, RING + 0x2000];
  w(0x80, desc);
  w(0x84, 0);
  w(0x90, avail);
  w(0x94, 0);
  w(0xa0, used);
  w(0xa4, 0);
  w(0x44, 1);
  w(0x70, 15);
  // Eight reads of one sector: header, data, status, chained through descriptors 3k..3k+2.
  for (let k = 0; k < 8; k++) {
    const hdr = 0x20_0000 + 32 * k;
    run(`writel 0x${hdr.toString(16)} 0`);
    run(`writeq 0x${(hdr + 8).toString(16)} ${k * 8}`);
    const descs: [number, number, number, number][] = [
      [hdr, 16, 1, 3 * k + 1],
      [0x30_0000 + 4096 * k, 4096, 3, 3 * k + 2],
      [hdr + 16, 1, 2, 0],
    ];
    descs.forEach(([addr, len, flags, next], i) => {
      const at = desc + 16 * (3 * k + i);
      run(`writeq 0x${at.toString(16)} ${addr}`);
      run(`writel 0x${(at + 8).toString(16)} ${len}`);
      run(`writew 0x${(at + 12).toString(16)} ${flags}`);
      run(`writew 0x${(at + 14).toString(16)} ${next}`);
    });
    run(`writew 0x${(avail + 4 + 2 * k).toString(16)} ${3 * k}`);
  }
  run(`writew 0x${(avail + 2).toString(16)} 8`);
}

function machine(mode: QtestIoMode, image: string) {
  const config = parseCommandLine([
    "-machine",
    "microvm,accel=test",
    "-m",
    "256M",
    "-drive",
    `id=d0,file=${image},direct=off`,
    "-device",
    "virtio-blk-device,id=b0,drive=d0",
  ]);
  return buildTestMachine(config, () => {}, mode);
}

function usedIdx(p: QtestProtocol): number {
  const [reply] = p.handleLine(`readw 0x${(RING + 0x2002).toString(16)}`).slice(-1);
  return Number(reply.slice(3));
}

for (const mode of ["settle", "poll"] as const) {
  testWhen([() => helperAvailable()], `accel=test io ${mode}: every request is answered`, () => {
    const image = Deno.makeTempFileSync({ suffix: ".img" });
    Deno.writeFileSync(image, new Uint8Array(1 << 20).map((_, i) => i >> 12));
    const m = machine(mode, image);
    try {
      const p = new QtestProtocol(m);
      setUp(p);
      p.handleLine(`writel 0x${(BASE + 0x50).toString(16)} 0`); // QueueNotify
      if (mode === "settle") {
        assertEquals(usedIdx(p), 8, "answered before the notify's reply");
      } else {
        // Each command takes what finished; polling gets every answer in the end (a bound
        // on the commands, far above what 8 reads need, so a lost answer fails, not hangs).
        let polls = 0;
        while (usedIdx(p) < 8 && polls < 1_000_000) polls++;
        assertEquals(usedIdx(p), 8, `answered within ${polls} polls`);
      }
      for (let k = 0; k < 8; k++) {
        const [st] = p.handleLine(`readb 0x${(0x20_0000 + 32 * k + 16).toString(16)}`);
        assertEquals(Number(st.slice(3)), 0, `request ${k} status`);
        const [b] = p.handleLine(`readb 0x${(0x30_0000 + 4096 * k).toString(16)}`);
        assertEquals(Number(b.slice(3)), k, `request ${k} data`);
      }
    } finally {
      m.close();
      Deno.removeSync(image);
    }
  });
}

testWhen(
  [() => helperAvailable()],
  "accel=test -mem-path with mem-share=on: guest RAM is that file, both ways",
  () => {
    const dir = Deno.makeTempDirSync({ prefix: "qtest-ram-" });
    const ramFile = `${dir}/guest.ram`;
    const m = buildTestMachine(
      parseCommandLine([
        "-machine",
        "microvm,accel=test,mem-share=on",
        "-m",
        "256M",
        "-mem-path",
        ramFile,
      ]),
      () => {},
      "settle",
    );
    try {
      const p = new QtestProtocol(m);
      assertEquals(p.handleLine("writel 0x123000 0xcafe0001"), ["OK"]);
      const file = Deno.openSync(ramFile, { read: true, write: true });
      try {
        assertEquals(file.statSync().size, 256 << 20);
        // What the protocol wrote is in the file at the guest-physical address...
        const got = new Uint8Array(4);
        file.seekSync(0x123000, Deno.SeekMode.Start);
        file.readSync(got);
        assertEquals([...got], [0x01, 0x00, 0xfe, 0xca]);
        // ...and what another process writes in the file, the machine reads.
        file.seekSync(0x2000, Deno.SeekMode.Start);
        file.writeSync(new Uint8Array([0x5a, 0xa5]));
      } finally {
        file.close();
      }
      assertEquals(p.handleLine("readw 0x2000"), ["OK 0x000000000000a55a"]);
    } finally {
      m.close();
      Deno.removeSync(dir, { recursive: true });
    }
  },
);
