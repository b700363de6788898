// A long operation's progress on a terminal: one line on stderr, rewritten in place (`\r`)
// at most ten times a second, and ended with a newline. Only when stderr is a terminal:
// scripts and tests that read stderr see none of it.

/** Between two rewrites of the line: at most ten a second, however fast progress comes. */
const REWRITE_INTERVAL_MS = 100;

export interface Terminal {
  readonly isTTY?: boolean;
  write(text: string): unknown;
}

export interface ProgressLine {
  /** Shows `text`: now, or, when the line was rewritten less than 100 ms ago, at the next rewrite or at end(). */
  show(text: string): void;
  /** Shows the newest text if it was held back and ends the line; does nothing when nothing is shown. */
  end(): void;
}

/** Undefined when `terminal` is not a TTY: the caller then shows no progress at all. */
export function progressLine(
  terminal: Terminal = process.stderr,
  nowMs: () => number = () => performance.now(),
): ProgressLine | undefined {
  if (terminal.isTTY !== true) return undefined;
  let shownAtMs = Number.NEGATIVE_INFINITY;
  let onScreen = false;
  let shownLength = 0;
  let held: string | undefined;
  const write = (text: string) => {
    // Spaces over what a longer line before left behind.
    terminal.write(`\r${text.padEnd(shownLength)}`);
    onScreen = true;
    shownLength = text.length;
    held = undefined;
  };
  return {
    show(text) {
      const now = nowMs();
      if (now - shownAtMs < REWRITE_INTERVAL_MS) {
        held = text;
        return;
      }
      shownAtMs = now;
      write(text);
    },
    end() {
      if (held !== undefined) write(held);
      if (onScreen) terminal.write("\n");
      onScreen = false;
      shownLength = 0;
      shownAtMs = Number.NEGATIVE_INFINITY;
    },
  };
}
