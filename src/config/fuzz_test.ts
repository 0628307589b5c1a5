/**
 * Fuzzing the parser with a seeded PRNG (deterministic run to run):
 * - generated valid lines must parse;
 * - mutations that are invalid by construction (unknown property, out-of-range number, duplicate
 *   id, dangling reference, missing required property, unknown option) must be refused with a
 *   ConfigError;
 * - random token soup and character-level corruption may parse or not, but nothing other than a
 *   ConfigError may ever escape.
 */
import { assert } from "../../tests/lib/assert.ts";
import { ConfigError } from "./error.ts";
import { parseCommandLine } from "./parse.ts";
import { OPTIONS } from "./options.ts";

/** mulberry32: small, fast, good enough to spread test cases. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

type Rand = () => number;
const int = (r: Rand, n: number) => Math.floor(r() * n);
const pick = <T>(r: Rand, xs: readonly T[]): T => xs[int(r, xs.length)];

interface Item {
  option: string;
  value?: string;
}

/** A valid command line, built piece by piece so mutations know what they are changing. */
function validLine(r: Rand): Item[] {
  const q35 = r() < 0.5;
  const items: Item[] = [
    {
      option: "-machine",
      value: q35 ? pick(r, ["q35", "type=q35,dump-guest-core=off"]) : "microvm",
    },
    { option: "-kernel", value: "/vmlinux" },
  ];
  const mem = pick(r, ["256M", "512m", "1G", "2g", "size=768", "1024"]);
  items.push({ option: "-m", value: mem });
  const cpus = 1 + int(r, 8);
  items.push({
    option: "-smp",
    value: r() < 0.5
      ? `${cpus}`
      : `cpus=${cpus},maxcpus=${cpus * 2},sockets=2,cores=${cpus},threads=1`,
  });
  let slot = 1;
  const placement = () => (q35 ? `,bus=pcie.0,addr=0x${(slot++).toString(16)}.0x0` : "");
  const suffix = q35 ? "pci" : "device";
  const once = new Set<string>();
  const n = int(r, q35 ? 8 : 6);
  for (let i = 0; i < n; i++) {
    const kind = pick(r, ["blk", "net", "vsock", "balloon", "rng", "console", "iothread"]);
    if (["vsock", "balloon", "rng", "console"].includes(kind)) {
      if (once.has(kind)) continue;
      once.add(kind);
    }
    switch (kind) {
      case "blk":
        items.push({
          option: "-drive",
          value: `id=drive${i},file=/img${i},direct=${pick(r, ["on", "off"])}`,
        });
        items.push({
          option: "-device",
          value: `virtio-blk-${suffix},drive=drive${i},id=blk${i},num-queues=${1 + int(r, 32)}` +
            placement(),
        });
        break;
      case "net":
        items.push({
          option: "-netdev",
          value: `tap,id=net${i},ifname=tap${i},queues=${1 + int(r, 16)}`,
        });
        items.push({
          option: "-device",
          value:
            `virtio-net-${suffix},netdev=net${i},id=nic${i},mac=52:54:00:12:34:${
              (16 + i).toString(16)
            }` +
            placement(),
        });
        break;
      case "vsock":
        items.push({
          option: "-device",
          value: `vhost-vsock-${suffix},id=vsock${i},guest-cid=${3 + int(r, 1000000)}` +
            placement(),
        });
        break;
      case "balloon":
        items.push({
          option: "-device",
          value: `virtio-balloon-${suffix},id=balloon${i}` + placement(),
        });
        break;
      case "rng":
        items.push({ option: "-object", value: `rng-random,id=rng${i},filename=/dev/urandom` });
        items.push({
          option: "-device",
          value:
            `virtio-rng-${suffix},rng=rng${i},id=vrng${i},max-bytes=${
              64 + int(r, 10000)
            },period=1000` +
            placement(),
        });
        break;
      case "console":
        items.push({
          option: "-device",
          value: `virtio-serial-${suffix},id=vser${i}` + placement(),
        });
        items.push({
          option: "-chardev",
          value: `socket,id=con${i},path=/tmp/con${i}.sock,server,nowait`,
        });
        items.push({ option: "-device", value: `virtconsole,chardev=con${i},id=vcon${i}` });
        break;
      case "iothread":
        items.push({ option: "-object", value: `iothread,id=io${i}` });
        break;
    }
  }
  if (r() < 0.5) {
    items.push({ option: "-serial", value: pick(r, ["stdio", "pty", "file,path=/tmp/s"]) });
  }
  if (r() < 0.5) items.push({ option: "-qmp", value: "unix:/tmp/qmp.sock,server,nowait" });
  // shuffle: option order must not matter
  for (let i = items.length - 1; i > 0; i--) {
    const j = int(r, i + 1);
    [items[i], items[j]] = [items[j], items[i]];
  }
  return items;
}

const flat = (items: Item[]) =>
  items.flatMap((i) => (i.value === undefined ? [i.option] : [i.option, i.value]));

function outcome(argv: string[]): "ok" | "refused" {
  try {
    parseCommandLine(argv);
    return "ok";
  } catch (e) {
    if (e instanceof ConfigError) {
      assert(!/[\n\r]/.test(e.message), `error message spans lines: ${JSON.stringify(e.message)}`);
      return "refused";
    }
    throw new Error(`parser threw ${e} (not a ConfigError) for: ${JSON.stringify(argv)}`);
  }
}

/** Each mutation returns an invalid copy, or null when it does not apply to this line. */
const MUTATIONS: Record<string, (items: Item[], r: Rand) => Item[] | null> = {
  unknownProperty(items, r) {
    const targets = items.filter((i) =>
      ["-device", "-drive", "-netdev", "-chardev", "-object"].includes(i.option)
    );
    if (targets.length === 0) return null;
    const t = pick(r, targets);
    return items.map((i) => (i === t ? { ...i, value: `${i.value},zz-${int(r, 1000)}=1` } : i));
  },
  outOfRange(items, r) {
    const swaps: [RegExp, string][] = [
      [/num-queues=\d+/, `num-queues=${pick(r, [0, 33, 1000])}`],
      [/(?<=^|,)queues=\d+/, `queues=${pick(r, [0, 17, 99])}`],
      [/guest-cid=\d+/, `guest-cid=${pick(r, [0, 1, 2, 4294967295])}`],
      [/max-bytes=\d+/, "max-bytes=1"],
    ];
    const mem = items.find((i) => i.option === "-m");
    const candidates = items.flatMap((i) =>
      swaps.filter(([re]) => i.value !== undefined && re.test(i.value)).map((s) => [i, s] as const)
    );
    if (candidates.length === 0 || r() < 0.3) {
      return items.map((
        i,
      ) => (i === mem ? { ...i, value: pick(r, ["255M", "100", "513G", "0", "1T"]) } : i));
    }
    const [t, [re, to]] = pick(r, candidates);
    return items.map((i) => (i === t ? { ...i, value: i.value!.replace(re, to) } : i));
  },
  duplicateId(items, r) {
    const targets = items.filter((i) =>
      ["-drive", "-netdev", "-chardev"].includes(i.option) || (i.option === "-object")
    );
    if (targets.length === 0) return null;
    const t = pick(r, targets);
    return [...items, { ...t }];
  },
  danglingReference(items, r) {
    const targets = items.filter((i) =>
      i.value !== undefined && /(drive|netdev|chardev|rng)=\w+/.test(i.value) &&
      i.option === "-device"
    );
    if (targets.length === 0) return null;
    const t = pick(r, targets);
    return items.map((
      i,
    ) => (i === t
      ? { ...i, value: i.value!.replace(/(drive|netdev|chardev|rng)=(\w+)/, "$1=$2_gone") }
      : i)
    );
  },
  missingRequired(items, r) {
    const targets = items.filter((i) =>
      i.option === "-device" && /(^|,)id=/.test(i.value!) && !/balloon|serial-|rng-/.test(i.value!)
    );
    if (targets.length === 0) return null;
    const t = pick(r, targets);
    return items.map((i) => (i === t ? { ...i, value: i.value!.replace(/,id=[\w-]+/, "") } : i));
  },
  unknownOption(items, r) {
    const at = int(r, items.length + 1);
    const copy = [...items];
    copy.splice(at, 0, { option: pick(r, ["-floppy", "-hda", "--bogus", "-vnc"]), value: ":1" });
    return copy;
  },
  placementCollision(items, r) {
    const pci = items.filter((i) =>
      i.option === "-device" && /addr=0x[0-9a-f]+\.0x0/.test(i.value!)
    );
    if (pci.length < 2) return null;
    const [a, b] = [pick(r, pci), pick(r, pci)];
    if (a === b) return null;
    const addr = /addr=(0x[0-9a-f]+\.0x0)/.exec(a.value!)![1];
    return items.map((
      i,
    ) => (i === b
      ? { ...i, value: i.value!.replace(/addr=0x[0-9a-f]+\.0x0/, `addr=${addr}`) }
      : i)
    );
  },
};

Deno.test("fuzz: generated valid lines parse", () => {
  const r = prng(1);
  for (let n = 0; n < 2000; n++) {
    const argv = flat(validLine(r));
    assert(outcome(argv) === "ok", `should parse: ${argv.join(" ")}`);
  }
});

Deno.test("fuzz: invalid-by-construction mutations are refused", () => {
  const r = prng(2);
  const applied = new Map<string, number>();
  for (let n = 0; n < 4000; n++) {
    const items = validLine(r);
    const name = pick(r, Object.keys(MUTATIONS));
    const mutated = MUTATIONS[name](items, r);
    if (mutated === null) continue;
    applied.set(name, (applied.get(name) ?? 0) + 1);
    const argv = flat(mutated);
    assert(outcome(argv) === "refused", `${name} should be refused: ${argv.join(" ")}`);
  }
  // every mutation really ran many times, or this test would prove little
  for (const name of Object.keys(MUTATIONS)) {
    assert(
      (applied.get(name) ?? 0) > 50,
      `mutation ${name} applied only ${applied.get(name) ?? 0} times`,
    );
  }
});

const WORDS = [
  ...OPTIONS.map((o) => o.name).filter((n) => n !== "-help" && n !== "-version"),
  "q35",
  "microvm",
  "none",
  "virt",
  "1G",
  "256",
  "0",
  "-1",
  "0x10",
  "",
  ",",
  ",,",
  "=",
  "id=",
  "id=a",
  "virtio-blk-pci,drive=a,id=b,bus=pcie.0,addr=0x2",
  "tap,id=a,ifname=t",
  "socket,id=c,path=/s,server,nowait",
  "stdio",
  "chardev:c",
  "unix:/q,server,nowait",
  "node,cpus=0,memdev=m",
  "memory-backend-ram,id=m,size=1G",
  "id=a,file=/f",
  "file=/f,if=pflash,unit=0",
  "cpus=4,maxcpus=2",
  "\u0000",
  "é",
  "a".repeat(5000),
  "id=a\nb",
  "line\r\nbreak",
];

Deno.test("fuzz: random token soup only ever raises ConfigError", () => {
  const r = prng(3);
  for (let n = 0; n < 5000; n++) {
    const argv = Array.from({ length: int(r, 12) }, () => pick(r, WORDS));
    outcome(argv);
  }
});

Deno.test("fuzz: character-level corruption of valid lines only ever raises ConfigError", () => {
  const r = prng(4);
  const alphabet = ",=.:-_0123456789abcxyzGM \u0000\n";
  for (let n = 0; n < 3000; n++) {
    const argv = flat(validLine(r));
    const k = int(r, argv.length);
    const w = argv[k];
    const at = int(r, w.length + 1);
    switch (int(r, 3)) {
      case 0:
        argv[k] = w.slice(0, at) + pick(r, [...alphabet]) + w.slice(at);
        break;
      case 1:
        argv[k] = w.slice(0, at) + w.slice(at + 1);
        break;
      default:
        argv.splice(k, 1);
    }
    outcome(argv);
  }
});
