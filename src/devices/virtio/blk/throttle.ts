/**
 * `throttling.iops-total`: at most `limit` requests in any one-second window.
 *
 * A token bucket of `limit` tokens in which each spent token comes back exactly one second
 * after it was spent. Unlike a bucket refilled at a constant rate, that never lets a burst
 * plus the refill exceed the limit inside a window. Grants are counted per millisecond of the
 * injected clock over the last 1001 milliseconds (any real 1 s window touches at most 1001
 * whole milliseconds), so memory stays constant whatever the limit. Pure and deterministic.
 */

const SLOTS = 1001;

function slot(ms: number): number {
  return ((ms % SLOTS) + SLOTS) % SLOTS;
}

export class IopsThrottle {
  readonly #counts = new Float64Array(SLOTS);
  #inWindow = 0;
  /** The millisecond of the newest slot, or -Infinity before the first use. */
  #newest = -Infinity;

  /**
   * @param limit operations allowed per second (a positive integer)
   * @param now a clock in milliseconds; it may stand still but should not go backwards
   */
  constructor(readonly limit: number, private readonly now: () => number) {
    if (!Number.isSafeInteger(limit) || limit < 1) {
      throw new RangeError(`iops limit ${limit} must be a positive integer`);
    }
  }

  /** Drops the grants that have left the window ending at millisecond `ms`. */
  #advance(ms: number): void {
    if (ms <= this.#newest) return;
    if (ms - this.#newest >= SLOTS) {
      this.#counts.fill(0);
      this.#inWindow = 0;
    } else {
      for (let t = this.#newest + 1; t <= ms; t++) {
        const i = slot(t);
        this.#inWindow -= this.#counts[i];
        this.#counts[i] = 0;
      }
    }
    this.#newest = ms;
  }

  #ms(): number {
    return Math.max(Math.floor(this.now()), this.#newest);
  }

  /** Takes one token if there is one. */
  tryAcquire(): boolean {
    const ms = this.#ms();
    this.#advance(ms);
    if (this.#inWindow >= this.limit) return false;
    this.#counts[slot(ms)] += 1;
    this.#inWindow += 1;
    return true;
  }

  /** Milliseconds until `tryAcquire` can succeed (0 when it can now). */
  delayMs(): number {
    const ms = this.#ms();
    this.#advance(ms);
    if (this.#inWindow < this.limit) return 0;
    // Walk from the oldest millisecond until enough grants have expired to free one token.
    let freed = 0;
    for (let t = ms - SLOTS + 1; t <= ms; t++) {
      freed += this.#counts[slot(t)];
      if (this.#inWindow - freed < this.limit) return t + SLOTS - ms;
    }
    return SLOTS;
  }
}
