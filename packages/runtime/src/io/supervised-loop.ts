// The one retry loop of the connectors (the Kafka and Kinesis ingresses and egresses): it runs
// a step again and again until its owner closes. A step that fails with an error that may go
// away (errors.ts isRetriable: a broker restarting, throttling, a reset connection, a commit
// the engine aborted) is run again after a jittered exponential backoff; one that cannot (a
// BugError, a TypeError) is never retried: it goes to onFatal, which stops the runtime, so a
// bug is seen as a bug and not as an outage that never ends.
//
// The log gets one line per distinct cause (its code and message) while the trouble lasts,
// and one when a step succeeds again. A cause already reported within REPEAT_QUIET_MS is not
// reported again even after a recovery, only counted: its next line, once the quiet period is
// over, says how often it came back meanwhile. A recovery is reported only after a reported
// failure: a broker that comes and goes every few seconds writes two lines a minute, not two
// per flap.
import { setTimeout as sleep } from "node:timers/promises";
import { errorCode, errorMessage, isRetriable } from "../errors.ts";
import { errorFields, type Logger } from "../observe/logger.ts";
import { type Backoff, backoffMs, CONNECTOR_BACKOFF } from "./backoff.ts";

/** What the loop does after a retriable failure: pause and retry (default), retry at once, or end. */
export type AfterFailure = "retry" | "retry-now" | "stop";

/** What a step returns: "done" ends the loop (a shard read to its end), anything else runs it again. */
export type StepResult = "done" | undefined;

export interface SupervisedOptions {
  readonly log: Logger;
  /** The owner closes: the loop ends after the current step, and a pause is cut short. */
  readonly signal: AbortSignal;
  /** A failure that retrying cannot cure: the loop has ended, and the owner stops the runtime. */
  readonly onFatal: (error: unknown) => void;
  readonly backoff?: Backoff;
  /** For tests: the jitter's randomness (see backoffMs). */
  readonly random?: () => number;
  /** For tests: the clock the log's quiet period is measured on; default performance.now. */
  readonly clock?: () => number;
  /**
   * The cause as the log line says it; default the error's message. Undefined: a failure not
   * worth a line (throttling, an expired iterator): it is retried in silence.
   */
  readonly describe?: (error: unknown) => string | undefined;
  /**
   * Puts right what a failed step left behind (rewinds readers, drops a client) and says how
   * to go on; runs before the pause. An error it throws is handled as the step's would be.
   */
  readonly afterFailure?: (error: unknown) => AfterFailure | undefined | Promise<AfterFailure | undefined>;
  /** The words of the recovery line after the name; default "works again". */
  readonly recovered?: string;
}

/** How long a cause (or a recovery) already logged stays unlogged when it comes back. */
export const REPEAT_QUIET_MS = 60_000;
/** Causes remembered for that: the oldest is forgotten past this many. */
const CAUSES_REMEMBERED_MAX = 32;

/**
 * Runs `step` until `signal` is aborted, the step returns "done", a failure handler says
 * "stop", or a failure is not retriable (then onFatal). Resolves when the loop has ended;
 * never rejects.
 */
export async function runSupervised(
  name: string,
  step: () => Promise<StepResult>,
  options: SupervisedOptions,
): Promise<void> {
  const backoff = options.backoff ?? CONNECTOR_BACKOFF;
  const report = new CauseLog(name, options);
  let attempt = 0;
  while (!options.signal.aborted) {
    let failed: unknown;
    try {
      const result = await step();
      attempt = 0;
      report.succeeded();
      if (result === "done") return;
      continue;
    } catch (error) {
      failed = error;
    }
    if (options.signal.aborted) return;
    let then: AfterFailure = "retry";
    if (isRetriable(failed) && options.afterFailure !== undefined) {
      try {
        then = (await options.afterFailure(failed)) ?? "retry";
      } catch (error) {
        failed = error;
      }
    }
    if (options.signal.aborted) return;
    if (!isRetriable(failed)) {
      options.onFatal(failed);
      return;
    }
    if (then === "stop") return;
    report.failed(failed);
    if (then === "retry-now") continue;
    attempt++;
    await sleep(backoffMs(attempt, backoff, options.random), undefined, { signal: options.signal }).catch(
      () => undefined,
    );
  }
}

/** The loop's log lines: each cause once while it lasts (and not again within the quiet period), then the recovery. */
class CauseLog {
  readonly #name: string;
  readonly #log: Logger;
  readonly #describe: (error: unknown) => string | undefined;
  readonly #clock: () => number;
  readonly #recovered: string;
  /** When each cause was last logged, and how often it came back unlogged since. */
  readonly #logged = new Map<string, { atMs: number; unlogged: number }>();
  /** A failure line was written since the last recovery line (only then is a recovery news). */
  #failing = false;

  constructor(name: string, options: SupervisedOptions) {
    this.#name = name;
    this.#log = options.log;
    this.#describe = options.describe ?? errorMessage;
    this.#clock = options.clock ?? (() => performance.now());
    this.#recovered = options.recovered ?? "works again";
  }

  failed(error: unknown): void {
    const cause = this.#describe(error);
    if (cause === undefined) return;
    const key = `${errorCode(error)}\u0000${cause}`;
    const now = this.#clock();
    const last = this.#logged.get(key);
    if (last !== undefined && now - last.atMs < REPEAT_QUIET_MS) {
      last.unlogged++;
      return;
    }
    this.#logged.delete(key);
    this.#logged.set(key, { atMs: now, unlogged: 0 });
    if (this.#logged.size > CAUSES_REMEMBERED_MAX) {
      this.#logged.delete(this.#logged.keys().next().value as string);
    }
    if (last === undefined || last.unlogged === 0) {
      this.#log.warn(`${this.#name}: ${cause}; retrying`, errorFields(error));
    } else {
      const periodMs = Math.round(now - last.atMs);
      this.#log.warn(
        `${this.#name}: ${cause}; retrying (it came back ${last.unlogged} more time${last.unlogged === 1 ? "" : "s"} in the last ${Math.round(periodMs / 1000)} s)`,
        { ...errorFields(error), repeated: last.unlogged, periodMs },
      );
    }
    this.#failing = true;
  }

  succeeded(): void {
    if (!this.#failing) return;
    this.#failing = false;
    this.#log.info(`${this.#name} ${this.#recovered}`);
  }
}
