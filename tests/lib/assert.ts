/** Assertions for tests: node:assert underneath (deno std is not reachable here). */
import assert from "node:assert/strict";

export function assertEquals<T>(actual: T, expected: T, message?: string): void {
  assert.deepStrictEqual(actual, expected, message);
}

export function assertNotEquals<T>(actual: T, expected: T, message?: string): void {
  assert.notDeepStrictEqual(actual, expected, message);
}

export function assert_(cond: unknown, message?: string): asserts cond {
  assert.ok(cond, message);
}
export { assert_ as assert };

export function assertMatch(actual: string, re: RegExp, message?: string): void {
  assert.match(actual, re, message);
}

// deno-lint-ignore no-explicit-any
type ErrorClass = new (...args: any[]) => Error;

/** Asserts fn throws (an instance of cls, whose message includes `includes`); returns the error. */
export function assertThrows(fn: () => unknown, cls?: ErrorClass, includes?: string): Error {
  try {
    fn();
  } catch (e) {
    if (cls && !(e instanceof cls)) {
      throw new assert.AssertionError({
        message: `expected ${cls.name}, got ${(e as Error)?.constructor?.name}: ${e}`,
      });
    }
    if (includes && !String((e as Error).message).includes(includes)) {
      throw new assert.AssertionError({
        message: `error message "${(e as Error).message}" does not include "${includes}"`,
      });
    }
    return e as Error;
  }
  throw new assert.AssertionError({ message: "expected function to throw" });
}

export async function assertRejects(
  fn: () => Promise<unknown>,
  cls?: ErrorClass,
  includes?: string,
): Promise<Error> {
  try {
    await fn();
  } catch (e) {
    if (cls && !(e instanceof cls)) {
      throw new assert.AssertionError({ message: `expected ${cls.name}, got ${e}` });
    }
    if (includes && !String((e as Error).message).includes(includes)) {
      throw new assert.AssertionError({
        message: `error message "${(e as Error).message}" does not include "${includes}"`,
      });
    }
    return e as Error;
  }
  throw new assert.AssertionError({ message: "expected promise to reject" });
}
