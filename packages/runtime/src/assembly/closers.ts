// The unwinding stack of a start: each part that opens registers how it closes, and a start
// that fails closes what it had opened, last first (ingresses before the engine they feed,
// the engine before its store, the state directory's lock last). A start that succeeds moves
// the stack into the running runtime, whose stop() is that same unwinding. Node's
// AsyncDisposableStack does the same, but it stops at nothing and reports a SuppressedError
// chain; here every closer runs even when one before it fails, and each failure is logged
// with the name of what failed to close.
import { BugError, errorMessage } from "../errors.ts";
import { errorFields, type Logger } from "../observe/logger.ts";

interface Closer {
  readonly name: string;
  readonly close: () => Promise<void> | void;
}

export class Closers {
  #closers: Closer[] = [];
  #closed = false;
  /** The one closing, which every closeAll() after the first waits for too. */
  #closing: Promise<void> | undefined;

  /** Registers how to close what was just opened; closed before everything registered earlier. */
  defer(name: string, close: () => Promise<void> | void): void {
    if (this.#closed) throw new BugError(`Closers: ${name} registered after the stack was closed`);
    this.#closers.push({ name, close });
  }

  /** Takes every closer into a new stack (the running runtime's) and leaves this one empty. */
  move(): Closers {
    const moved = new Closers();
    moved.#closers = this.#closers;
    this.#closers = [];
    return moved;
  }

  /**
   * Closes everything, last registered first. A closer that throws is logged and the rest still
   * run; the first failure is rethrown at the end. Closing twice closes once: a second call
   * waits for the first (a running runtime's stop() is this, and may be called again).
   */
  closeAll(log: Logger): Promise<void> {
    this.#closing ??= this.#closeAll(log);
    return this.#closing;
  }

  async #closeAll(log: Logger): Promise<void> {
    this.#closed = true;
    let firstFailure: { error: unknown } | undefined;
    for (const closer of this.#closers.reverse()) {
      try {
        await closer.close();
      } catch (error) {
        log.error(`closing ${closer.name} failed: ${errorMessage(error)}`, errorFields(error));
        firstFailure ??= { error };
      }
    }
    this.#closers = [];
    if (firstFailure !== undefined) throw firstFailure.error;
  }
}
