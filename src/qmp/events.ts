/**
 * QMP events: `{"event":NAME,"data":{...},"timestamp":{"seconds","microseconds"}}`, sent to every
 * client that has negotiated capabilities. The names and data shapes are StratoVirt's.
 */

/** Events this VMM emits (query-events lists them). */
export const QMP_EVENTS = [
  "SHUTDOWN",
  "RESET",
  "STOP",
  "RESUME",
  "POWERDOWN",
  "DEVICE_DELETED",
  "BALLOON_CHANGED",
] as const;

export type QmpEventName = typeof QMP_EVENTS[number];

/** Why the VM shut down (SHUTDOWN's `reason`, QEMU's ShutdownCause names). */
export type ShutdownReason =
  | "host-qmp-quit"
  | "host-qmp-system-reset"
  | "host-signal"
  | "host-ui"
  | "guest-shutdown"
  | "guest-reset"
  | "guest-panic"
  | "subsystem-reset";

/** Data each event carries. */
export interface QmpEventData {
  SHUTDOWN: { guest: boolean; reason: ShutdownReason };
  RESET: { guest: boolean };
  STOP: Record<string, never>;
  RESUME: Record<string, never>;
  POWERDOWN: Record<string, never>;
  DEVICE_DELETED: { device?: string; path: string };
  BALLOON_CHANGED: { actual: number };
}

export interface QmpTimestamp {
  seconds: number;
  microseconds: number;
}

/** Wall-clock time with microseconds (Date.now() has only milliseconds). */
export function qmpTimestamp(): QmpTimestamp {
  const micros = Math.floor((performance.timeOrigin + performance.now()) * 1000);
  return { seconds: Math.floor(micros / 1e6), microseconds: micros % 1e6 };
}

/** The wire text of one event, without the line ending. */
export function encodeEvent<E extends QmpEventName>(
  name: E,
  data: QmpEventData[E],
  timestamp: QmpTimestamp = qmpTimestamp(),
): string {
  return JSON.stringify({ event: name, data, timestamp });
}

/** DEVICE_DELETED's data for a device removed by id (StratoVirt's path form). */
export function deviceDeletedData(id: string): QmpEventData["DEVICE_DELETED"] {
  return { device: id, path: `/machine/peripheral/${id}` };
}
