/**
 * `-drive`: a block backend (`if=none`, used by a virtio-blk device through `drive=ID`) or a
 * pflash image (`if=pflash,unit=0|1`, the firmware code and variables of a q35 machine).
 */
import { Props } from "./props.ts";

export type AioMode = "native" | "io_uring" | "off";
const AIO_MODES: readonly AioMode[] = ["native", "io_uring", "off"];

export interface DriveConfig {
  readonly id: string;
  readonly file: string;
  readonly readonly: boolean;
  /** Open with O_DIRECT (default on). */
  readonly direct: boolean;
  /** IO operations per second allowed, or null for no limit. */
  readonly iopsTotal: number | null;
  readonly format: "raw";
  readonly aio: AioMode;
}

export interface PflashConfig {
  readonly unit: 0 | 1;
  readonly file: string;
  readonly readonly: boolean;
  readonly id: string | null;
}

export type DriveItem = { kind: "block"; drive: DriveConfig } | {
  kind: "pflash";
  pflash: PflashConfig;
};

export function parseDrive(text: string): DriveItem {
  const p: Props = new Props("-drive", text);
  const iface = p.choice("if", ["none", "pflash"] as const, "none");
  const file = p.required("file");
  const format = p.choice("format", ["raw"] as const, "raw");
  const readonly = p.bool("readonly", false);
  if (iface === "pflash") {
    const unitNum = p.int("unit", { min: 0, max: 1 });
    if (unitNum === undefined) p.fail("property 'unit' is required for if=pflash (0 or 1)");
    const id = p.str("id") ?? null;
    p.finish("-drive if=pflash");
    return { kind: "pflash", pflash: { unit: unitNum as 0 | 1, file, readonly, id } };
  }
  const id = p.required("id");
  const direct = p.bool("direct", true);
  const iopsTotal = p.int("throttling.iops-total", { min: 1 }) ?? null;
  const aioGiven = p.choice("aio", AIO_MODES);
  if (aioGiven === "native" && !direct) {
    p.fail("aio=native needs direct=on (Linux AIO is asynchronous only with O_DIRECT)");
  }
  // Without O_DIRECT, Linux AIO would block, so the default follows `direct`.
  const aio = aioGiven ?? (direct ? "native" : "off");
  p.finish("-drive");
  return {
    kind: "block",
    drive: {
      id,
      file,
      readonly,
      direct,
      iopsTotal,
      format,
      aio,
    },
  };
}
