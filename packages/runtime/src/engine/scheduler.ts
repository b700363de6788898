// Time and deferred work, as the engine sees them. The engine never calls setTimeout,
// setImmediate or Date.now itself: it asks a Scheduler, so a simulation can run it on a
// simulated clock and decide the order in which its timers fire (TigerBeetle's simulator
// owns time the same way). Microtasks (promise continuations) stay the runtime's: their
// order is already deterministic.

/** Cancels what `after` or `soon` scheduled; harmless once it ran. */
export type Cancel = () => void;

export interface Scheduler {
  /** Milliseconds since the epoch: what delayed messages and retention are measured in. */
  now(): number;
  /** A monotonic clock in milliseconds, for deadlines that a clock jump must not move. */
  monotonicMs(): number;
  /**
   * Calls `run` after `delayMs`. A `background` timer does not keep the process alive (a
   * periodic sweep); others do (a commit, a retry, a reply's deadline).
   */
  after(delayMs: number, run: () => void, options?: { readonly background?: boolean }): Cancel;
  /** Calls `run` once the current event-loop turn is done (after pending I/O callbacks). */
  soon(run: () => void): Cancel;
}

/** setTimeout holds at most 2^31-1 ms (~24.8 days); a later timer just wakes up early and is set again. */
const TIMEOUT_MS_MAX = 2 ** 31 - 1;

/** The process's own timers, with `clock` for the time of day (default Date.now; tests move their own). */
export function systemScheduler(clock: () => number = Date.now): Scheduler {
  return {
    now: clock,
    monotonicMs: () => performance.now(),
    after(delayMs, run, options) {
      const timer = setTimeout(run, Math.min(Math.max(0, delayMs), TIMEOUT_MS_MAX));
      if (options?.background === true) timer.unref();
      return () => clearTimeout(timer);
    },
    soon(run) {
      const immediate = setImmediate(run);
      return () => clearImmediate(immediate);
    },
  };
}
