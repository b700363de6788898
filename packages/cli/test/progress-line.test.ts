// The progress line of long commands: nothing without a terminal; on one, at most one
// rewrite per 100 ms, the newest text shown at the end, a shorter line covering a longer
// one, and a newline only when something was shown.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { progressLine } from "../src/progress-line.ts";

function terminal(isTTY: boolean) {
  const written: string[] = [];
  let nowMs = 0;
  return {
    written,
    tick: (ms: number) => {
      nowMs += ms;
    },
    line: () => progressLine({ isTTY, write: (text: string) => written.push(text) }, () => nowMs),
  };
}

describe("progressLine", () => {
  it("shows nothing when stderr is not a terminal", () => {
    assert.equal(terminal(false).line(), undefined);
  });

  it("rewrites the line at most every 100 ms and shows the newest text at the end", () => {
    const screen = terminal(true);
    const progress = screen.line();
    assert.ok(progress !== undefined);
    progress.show("1 of 4");
    screen.tick(30);
    progress.show("2 of 4");
    screen.tick(30);
    progress.show("3 of 4");
    assert.deepEqual(screen.written, ["\r1 of 4"], "held back within 100 ms");
    screen.tick(40);
    progress.show("4 of 4, done");
    progress.show("4 of 4");
    progress.end();
    assert.deepEqual(screen.written, ["\r1 of 4", "\r4 of 4, done", "\r4 of 4      ", "\n"]);
  });

  it("ends a line only once something is on it, and starts afresh after", () => {
    const screen = terminal(true);
    const progress = screen.line();
    progress?.end();
    assert.deepEqual(screen.written, []);
    progress?.show("a longer line");
    progress?.end();
    progress?.show("short");
    progress?.end();
    assert.deepEqual(screen.written, ["\ra longer line", "\n", "\rshort", "\n"]);
  });
});
