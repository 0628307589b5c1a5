/**
 * QMP error classes as StratoVirt (and QEMU) put them on the wire: `{"error":{"class","desc"}}`.
 * Anything the machine throws that is not a QmpError (a LifecycleError, a config error) is
 * answered as a GenericError carrying its message.
 */

export type QmpErrorClass =
  | "GenericError"
  | "CommandNotFound"
  | "DeviceNotActive"
  | "DeviceNotFound"
  | "KVMMissingCap"
  | "OperationThrottled";

export class QmpError extends Error {
  constructor(readonly errorClass: QmpErrorClass, desc: string) {
    super(desc);
    this.name = "QmpError";
  }
}

/** The wire form of any thrown value. */
export function toWireError(e: unknown): { class: QmpErrorClass; desc: string } {
  if (e instanceof QmpError) return { class: e.errorClass, desc: e.message };
  if (e instanceof Error) return { class: "GenericError", desc: e.message };
  return { class: "GenericError", desc: String(e) };
}
