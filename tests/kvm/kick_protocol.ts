/** The shared-memory protocol between kick_test.ts and kick_worker.ts (an Int32Array). */

/** Slots. */
export const STATE = 0, TID = 1, RESULT = 2;
/** Values of STATE: the worker started, the guest is spinning, KVM_RUN returned. */
export const READY = 1, SPINNING = 2, DONE = 3;
