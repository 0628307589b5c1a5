/**
 * The virtual clock of an `accel=test` machine. Nothing moves it but the test client
 * (`clock_step`, `clock_set`), so every timer-driven behaviour (the block throttle's retry, the
 * RTC) happens at the instant the test chooses: deterministic, and as fast as the host runs.
 */

export class VirtualClockError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "VirtualClockError";
  }
}

interface Timer {
  readonly deadlineNs: bigint;
  /** Insertion order: timers with the same deadline fire first come, first served. */
  readonly seq: number;
  readonly fire: () => void;
}

export class VirtualClock {
  #nowNs = 0n;
  #timers: Timer[] = [];
  #seq = 0;

  /** Nanoseconds since the machine was built. */
  get nowNs(): bigint {
    return this.#nowNs;
  }

  /** Milliseconds, with a fraction (what the device models' `now` callbacks take). */
  nowMs(): number {
    return Number(this.#nowNs) / 1e6;
  }

  /** Runs `fire` once the clock reaches `nowNs + delayNs` (at once on the next step if <= 0). */
  after(delayNs: bigint, fire: () => void): void {
    const deadlineNs = this.#nowNs + (delayNs > 0n ? delayNs : 0n);
    this.#timers.push({ deadlineNs, seq: this.#seq++, fire });
  }

  /** Nanoseconds until the earliest timer, or null when none is pending. */
  nextDeadlineDelta(): bigint | null {
    let min: bigint | null = null;
    for (const t of this.#timers) if (min === null || t.deadlineNs < min) min = t.deadlineNs;
    return min === null ? null : (min > this.#nowNs ? min - this.#nowNs : 0n);
  }

  get pendingTimers(): number {
    return this.#timers.length;
  }

  /**
   * Moves the clock to `targetNs`, stopping at each timer deadline on the way so a timer sees
   * the clock at its own deadline (and timers it arms for earlier than the target fire too).
   * A target in the past is refused: the clock never runs backwards.
   */
  advanceTo(targetNs: bigint): void {
    if (targetNs < this.#nowNs) {
      throw new VirtualClockError(
        `cannot set the clock back from ${this.#nowNs} ns to ${targetNs} ns`,
      );
    }
    for (;;) {
      const due = this.#earliestDue(targetNs);
      if (!due) break;
      this.#timers.splice(this.#timers.indexOf(due), 1);
      if (due.deadlineNs > this.#nowNs) this.#nowNs = due.deadlineNs;
      due.fire();
    }
    this.#nowNs = targetNs;
  }

  #earliestDue(limitNs: bigint): Timer | undefined {
    let best: Timer | undefined;
    for (const t of this.#timers) {
      if (t.deadlineNs > limitNs) continue;
      if (
        !best || t.deadlineNs < best.deadlineNs ||
        (t.deadlineNs === best.deadlineNs && t.seq < best.seq)
      ) {
        best = t;
      }
    }
    return best;
  }
}
