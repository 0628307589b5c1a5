/**
 * The VM's lifecycle, shared by QMP, signals and the guest:
 *   created → running ⇄ paused → shutdown   (created → paused with -S, any state → shutdown)
 * Transitions that make no sense (stop when paused, cont when running) are refused with a
 * LifecycleError whose message QMP returns as a GenericError.
 */

export type VmState = "created" | "running" | "paused" | "shutdown";

export class LifecycleError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "LifecycleError";
  }
}

export type StateListener = (from: VmState, to: VmState, reason: string) => void;

const ALLOWED: Record<VmState, VmState[]> = {
  created: ["running", "paused", "shutdown"],
  running: ["paused", "shutdown"],
  paused: ["running", "shutdown"],
  shutdown: [],
};

export class Lifecycle {
  #state: VmState = "created";
  readonly #listeners: StateListener[] = [];

  get state(): VmState {
    return this.#state;
  }

  onChange(listener: StateListener): void {
    this.#listeners.push(listener);
  }

  /** Moves to `to`; throws LifecycleError when the move is not allowed from the current state. */
  transition(to: VmState, reason = ""): void {
    const from = this.#state;
    if (!ALLOWED[from].includes(to)) {
      throw new LifecycleError(`VM is ${describe(from)}, cannot ${verb(to)}`);
    }
    this.#state = to;
    for (const l of this.#listeners) l(from, to, reason);
  }
}

function describe(s: VmState): string {
  return s === "shutdown" ? "shut down" : s === "created" ? "not started" : s;
}

function verb(to: VmState): string {
  return { created: "be created", running: "run", paused: "pause", shutdown: "shut down" }[to];
}
