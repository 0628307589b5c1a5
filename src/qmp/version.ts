/**
 * The version QMP reports. StratoVirt poses as QEMU 5.0.1 (`qemu` = micro 1, minor 0, major 5)
 * so that libvirt's version checks pass, and names itself in `package`.
 */
import { VERSION } from "../version.ts";

export interface QmpVersion {
  qemu: { micro: number; minor: number; major: number };
  package: string;
}

export function qmpVersion(): QmpVersion {
  return { qemu: { micro: 1, minor: 0, major: 5 }, package: `StratoVirt-${VERSION}` };
}

/** The greeting sent when a client connects (no capabilities offered, as StratoVirt). */
export function qmpGreeting(): { QMP: { version: QmpVersion; capabilities: string[] } } {
  return { QMP: { version: qmpVersion(), capabilities: [] } };
}
