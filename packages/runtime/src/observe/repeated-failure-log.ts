// Says that something keeps failing without saying it on every failure: the first failure
// of a key (an endpoint URL, an address) is reported at once, repeats are counted and
// reported at most once per interval ("failed 57 more times in the last 30 s"), and the first
// success after failures is reported with their count. Summaries come with the next failure
// after the interval (no timer runs), and flush() reports what is still unreported (at a
// stop), so no count is lost. It decides when to report and hands over a report as data, so
// a structured log can take it as it is. The keys it remembers are bounded (the oldest is
// dropped for a new one), and a key that stayed healthy for an interval is forgotten.
//
// An endpoint that flaps (fails now and then between successes) is reported once when it
// first fails and once when it first recovers; failures after that recovery, within the
// interval, are not reported at once but counted into the next summary, so a flaky
// endpoint costs at most one line per interval.

export type FailureReport<Context> =
  /** The first failure of the key (or the first after it was forgotten). */
  | { readonly kind: "failing"; readonly key: string; readonly cause: string; readonly context: Context }
  /** `count` more failures in the last `periodMs`; `lastCause` and `context` are the latest one's. */
  | {
      readonly kind: "repeated";
      readonly key: string;
      readonly count: number;
      readonly periodMs: number;
      readonly lastCause: string;
      readonly context: Context;
    }
  /** A success after `failedCount` failures since the `failing` report (or the last `recovered` one). */
  | { readonly kind: "recovered"; readonly key: string; readonly failedCount: number };

export interface RepeatedFailureLogOptions<Context> {
  readonly report: (report: FailureReport<Context>) => void;
  /** Milliseconds, any origin; injectable so tests move time instead of sleeping. */
  readonly clock?: () => number;
  /** Repeats are summarized at most this often per key. Default 30 s. */
  readonly summaryIntervalMs?: number;
  /** At most this many keys are remembered; the oldest is dropped for a new one. Default 1024. */
  readonly keysMax?: number;
}

interface KeyState<Context> {
  /** When this key's last report was made. */
  reportedAtMs: number;
  /** Failures not yet in a report. */
  unreported: number;
  /** Failures since the `failing` (or the last `recovered`) report, for the next `recovered` report. */
  failedSinceFailing: number;
  lastCause: string;
  lastContext: Context;
  /** The latest call failed. */
  down: boolean;
  /** Recovered once already: new failures wait for the next summary instead of a `failing` report. */
  recovered: boolean;
}

export const SUMMARY_INTERVAL_MS_DEFAULT = 30_000;
const KEYS_MAX_DEFAULT = 1024;

export class RepeatedFailureLog<Context> {
  readonly #report: (report: FailureReport<Context>) => void;
  readonly #clock: () => number;
  readonly #intervalMs: number;
  readonly #keysMax: number;
  readonly #keys = new Map<string, KeyState<Context>>();

  constructor(options: RepeatedFailureLogOptions<Context>) {
    this.#report = options.report;
    this.#clock = options.clock ?? Date.now;
    this.#intervalMs = options.summaryIntervalMs ?? SUMMARY_INTERVAL_MS_DEFAULT;
    this.#keysMax = options.keysMax ?? KEYS_MAX_DEFAULT;
  }

  failed(key: string, cause: string, context: Context): void {
    const nowMs = this.#clock();
    const state = this.#keys.get(key);
    if (state === undefined) {
      if (this.#keys.size >= this.#keysMax) {
        const oldest = this.#keys.keys().next();
        if (oldest.done !== true) this.#keys.delete(oldest.value);
      }
      this.#keys.set(key, {
        reportedAtMs: nowMs,
        unreported: 0,
        failedSinceFailing: 1,
        lastCause: cause,
        lastContext: context,
        down: true,
        recovered: false,
      });
      this.#report({ kind: "failing", key, cause, context });
      return;
    }
    state.unreported++;
    state.failedSinceFailing++;
    state.lastCause = cause;
    state.lastContext = context;
    state.down = true;
    // Reported while down: the next success is news again.
    if (this.#summarizeIfDue(key, state, nowMs)) state.recovered = false;
  }

  succeeded(key: string): void {
    if (this.#keys.size === 0) return; // the common case: nothing is failing
    const state = this.#keys.get(key);
    if (state === undefined) return;
    const nowMs = this.#clock();
    if (state.down && !state.recovered) {
      this.#report({ kind: "recovered", key, failedCount: state.failedSinceFailing });
      state.recovered = true;
      state.reportedAtMs = nowMs;
      state.unreported = 0;
      state.failedSinceFailing = 0;
      state.down = false;
      return;
    }
    state.down = false;
    if (this.#summarizeIfDue(key, state, nowMs)) return;
    if (state.unreported === 0 && nowMs - state.reportedAtMs >= this.#intervalMs) this.#keys.delete(key);
  }

  /** Reports every key's unreported failures now, whatever the interval: the owner is closing. */
  flush(): void {
    const nowMs = this.#clock();
    for (const [key, state] of this.#keys) this.#summarize(key, state, nowMs);
  }

  /** Reports the unreported failures if the interval since the last report has passed. */
  #summarizeIfDue(key: string, state: KeyState<Context>, nowMs: number): boolean {
    if (nowMs - state.reportedAtMs < this.#intervalMs) return false;
    return this.#summarize(key, state, nowMs);
  }

  #summarize(key: string, state: KeyState<Context>, nowMs: number): boolean {
    if (state.unreported === 0) return false;
    const { unreported: count, lastCause, lastContext: context } = state;
    this.#report({ kind: "repeated", key, count, periodMs: nowMs - state.reportedAtMs, lastCause, context });
    state.unreported = 0;
    state.reportedAtMs = nowMs;
    return true;
  }
}
