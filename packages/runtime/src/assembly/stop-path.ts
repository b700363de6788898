// How a running Eddy stops when it cannot go on (a function failed under the stop policy, a
// commit failed, a connector hit a bug): one line with the reason, then the embedder's onStop,
// or, without one, the runtime's own stop(), so nothing is left half-running with an address
// wedged (as `eddy dev` once was, having passed no onStop). Only the first reason stops; later
// ones are logged.
import { errorMessage } from "../errors.ts";
import type { Logger } from "../observe/logger.ts";

export class StopPath {
  readonly #log: Logger;
  readonly #onStop: ((reason: string) => void) | undefined;
  #stopRuntime: (() => Promise<void>) | undefined;
  #reason: string | undefined;

  constructor(log: Logger, onStop: ((reason: string) => void) | undefined) {
    this.#log = log;
    this.#onStop = onStop;
  }

  /** The runtime cannot go on: `reason` in one line; `detail` (a bug's stack) is logged after it. */
  readonly stop = (reason: string, detail = ""): void => {
    const stack = detail.replace(/^\n/, "");
    this.#log.error(`stopping: ${reason}`, stack === "" ? undefined : { stack });
    if (this.#reason !== undefined) return;
    this.#reason = reason;
    if (this.#onStop !== undefined) this.#onStop(reason);
    else this.#stopItself();
  };

  /** The running runtime's stop(), for when no onStop was given; a stop asked for during the start runs now. */
  started(stopRuntime: () => Promise<void>): void {
    this.#stopRuntime = stopRuntime;
    if (this.#reason !== undefined && this.#onStop === undefined) this.#stopItself();
  }

  #stopItself(): void {
    const stopRuntime = this.#stopRuntime;
    if (stopRuntime === undefined) return;
    // Not inside the engine's or a connector's call that asked: they finish their turn first.
    setImmediate(() => {
      stopRuntime().catch((error: unknown) => this.#log.error(`stopping failed: ${errorMessage(error)}`));
    });
  }
}
