/**
 * StratoVirt's QMP flow control: a leaky bucket per client that holds `capacity` commands and
 * drains `capacity` per second. A command that finds it full is answered with OperationThrottled
 * ("More than 100 requests received during 1 second") and not run.
 */
export class LeakBucket {
  #level = 0;
  #last: number;

  /** `now` gives milliseconds (injectable so tests need no real time). */
  constructor(readonly capacity: number, readonly now: () => number = () => performance.now()) {
    this.#last = now();
  }

  /** Counts one command; true when it must be refused. */
  throttled(): boolean {
    const t = this.now();
    this.#level = Math.max(0, this.#level - ((t - this.#last) / 1000) * this.capacity);
    this.#last = t;
    if (this.#level + 1 > this.capacity) return true;
    this.#level += 1;
    return false;
  }
}
