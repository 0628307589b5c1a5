/**
 * Interrupt lines of an `accel=test` machine, as the test client observes them. There is no
 * interrupt controller: a line is "pending" from the moment a device raises it until the client
 * acknowledges it (`eoi_intx`), or, for a level-triggered device, until the device lowers it.
 *
 * - Edge sources (virtio-mmio: an irqfd write in the KVM machine) call `pulse`: the line becomes
 *   pending and every pulse is reported, even when the line was already pending.
 * - Level sources (the 8250 UART) call `setLevel`: reported on each change only.
 *
 * Listeners (the protocol's `irq_intercept_in`) receive "raise"/"lower" as they happen.
 */

export type IrqEvent = "raise" | "lower";
export type IrqListener = (line: number, event: IrqEvent) => void;

export class IrqLines {
  readonly #pending = new Set<number>();
  readonly #level = new Set<number>();
  /** Pulses and raises per line since the machine was built. */
  readonly #counts = new Map<number, number>();
  #listener: IrqListener | null = null;

  /** Where raise / lower events go (one listener; null stops reporting). */
  setListener(listener: IrqListener | null): void {
    this.#listener = listener;
  }

  /** An edge: the line fires once. */
  pulse(line: number): void {
    this.#pending.add(line);
    this.#count(line);
    this.#listener?.(line, "raise");
  }

  /** A level-triggered device drives the line high or low. */
  setLevel(line: number, high: boolean): void {
    if (high === this.#level.has(line)) return;
    if (high) {
      this.#level.add(line);
      this.#pending.add(line);
      this.#count(line);
      this.#listener?.(line, "raise");
    } else {
      this.#level.delete(line);
      this.#pending.delete(line);
      this.#listener?.(line, "lower");
    }
  }

  /** True while the line has fired and not been acknowledged (or is held high). */
  pending(line: number): boolean {
    return this.#pending.has(line);
  }

  /**
   * End of interrupt: forgets a pending edge. A line a level device still holds high stays
   * pending (as a level interrupt re-fires after EOI). Returns whether the line was pending.
   */
  eoi(line: number): boolean {
    const was = this.#pending.has(line);
    if (!this.#level.has(line)) this.#pending.delete(line);
    return was;
  }

  /** How many times the line fired. */
  count(line: number): number {
    return this.#counts.get(line) ?? 0;
  }

  #count(line: number): void {
    this.#counts.set(line, (this.#counts.get(line) ?? 0) + 1);
  }
}
