// A publishing loop's pause while it has nothing to do: it ends when someone hands the loop
// work (wake()), or after a time (a missing topic due another look). One waiter at a time:
// the loop that owns it.

export class Wakeup {
  #wake: (() => void) | undefined;

  /** Resolves at the next wake(), or after `waitMs` (undefined: only at a wake()). */
  wait(waitMs?: number): Promise<void> {
    return new Promise<void>((resume) => {
      let timer: NodeJS.Timeout | undefined;
      const done = () => {
        clearTimeout(timer);
        this.#wake = undefined;
        resume();
      };
      if (waitMs !== undefined) timer = setTimeout(done, waitMs);
      this.#wake = done;
    });
  }

  /** Ends the pause in progress, if any. */
  wake(): void {
    this.#wake?.();
  }
}
