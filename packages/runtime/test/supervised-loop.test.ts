// The connectors' one retry loop (io/supervised-loop.ts) and its backoff (io/backoff.ts):
// retriable failures are retried after growing, jittered pauses, each cause logged once and
// the recovery once; a bug is handed to onFatal and never retried; closing cuts a pause short.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { BugError, EddyError } from "../src/errors.ts";
import { backoffMs } from "../src/io/backoff.ts";
import { REPEAT_QUIET_MS, runSupervised, type SupervisedOptions } from "../src/io/supervised-loop.ts";
import { lineLogger } from "../src/observe/logger.ts";

const FAST = { baseMs: 1, maxMs: 4 };

function options(overrides: Partial<SupervisedOptions> = {}) {
  const lines: string[] = [];
  const fatal: unknown[] = [];
  const stop = new AbortController();
  const base: SupervisedOptions = {
    log: lineLogger((line) => lines.push(line)),
    signal: stop.signal,
    onFatal: (error) => fatal.push(error),
    backoff: FAST,
    ...overrides,
  };
  return { lines, fatal, stop, options: base };
}

/** A step that fails with the given errors in turn, then succeeds `successes` times, then ends the loop. */
function scripted(failures: readonly unknown[], successes = 1) {
  let calls = 0;
  const step = async () => {
    calls++;
    if (calls <= failures.length) throw failures[calls - 1];
    return calls - failures.length >= successes ? ("done" as const) : undefined;
  };
  return { step, calls: () => calls };
}

describe("backoffMs", () => {
  it("doubles its ceiling per attempt up to the maximum, and takes a random half off", () => {
    const limits = { baseMs: 100, maxMs: 1_000 };
    assert.equal(
      backoffMs(1, limits, () => 0),
      50,
    );
    assert.equal(
      backoffMs(1, limits, () => 0.999_999),
      99.99995,
    );
    assert.equal(
      backoffMs(3, limits, () => 0),
      200,
    );
    assert.equal(
      backoffMs(3, limits, () => 0.5),
      300,
    );
    assert.equal(
      backoffMs(10, limits, () => 0),
      500,
      "capped at maxMs",
    );
    assert.equal(
      backoffMs(1_000, limits, () => 0.5),
      750,
      "a huge attempt count stays capped",
    );
  });

  it("varies between callers: the same attempt with different draws gives different pauses", () => {
    const draws = new Set(Array.from({ length: 20 }, () => backoffMs(4, { baseMs: 100, maxMs: 5_000 })));
    assert.ok(draws.size > 1, "jitter");
    for (const ms of draws) assert.ok(ms >= 400 && ms <= 800, String(ms));
  });
});

describe("runSupervised", () => {
  it("retries a retriable failure after growing jittered pauses, logging each cause once and the recovery once", async () => {
    const draws: number[] = [];
    const random = () => {
      draws.push(0.5);
      return 0.5;
    };
    const refused = Object.assign(new Error("connect ECONNREFUSED 127.0.0.1:9092"), { code: "ECONNREFUSED" });
    const { step, calls } = scripted([refused, refused, refused, new Error("broker restarting"), refused], 1);
    const { lines, fatal, options: opts } = options({ random, backoff: { baseMs: 8, maxMs: 20 } });
    const pauses: number[] = [];
    let last = performance.now();
    await runSupervised(
      "Kafka ingress in",
      async () => {
        const now = performance.now();
        pauses.push(now - last);
        last = now;
        return step();
      },
      { ...opts, recovered: "reads again" },
    );
    assert.equal(calls(), 6);
    assert.deepEqual(fatal, []);
    assert.equal(draws.length, 5, "one jittered pause per failure");
    // Ceilings 8, 16, 20, 20, 20 with half taken off at 0.5: 6, 12, 15, 15, 15 ms.
    assert.ok((pauses[2] as number) >= 11, `the second pause grew (${pauses.map((ms) => ms.toFixed(1))})`);
    assert.deepEqual(lines, [
      "eddy: Kafka ingress in: connect ECONNREFUSED 127.0.0.1:9092; retrying",
      "eddy: Kafka ingress in: broker restarting; retrying",
      "eddy: Kafka ingress in reads again",
    ]);
  });

  it("hands a non-retriable error to onFatal without retrying it", async () => {
    for (const bug of [new BugError("routed to a function the module lacks"), new TypeError("x is undefined")]) {
      const { step, calls } = scripted([bug], 5);
      const { lines, fatal, options: opts } = options();
      await runSupervised("Kinesis ingress in", step, opts);
      assert.equal(calls(), 1, "not retried");
      assert.deepEqual(fatal, [bug]);
      assert.deepEqual(lines, [], "the owner's onFatal says it, not a 'retrying' line");
    }
  });

  it("hands on a bug thrown while putting a failure right", async () => {
    const bug = new BugError("reader lost");
    const { step, calls } = scripted([new Error("timeout")], 5);
    const { fatal, options: opts } = options({
      afterFailure: () => {
        throw bug;
      },
    });
    await runSupervised("x", step, opts);
    assert.equal(calls(), 1);
    assert.deepEqual(fatal, [bug]);
  });

  it("retries an error that says it is retriable, and not one that says it is not", async () => {
    const retried = scripted([new EddyError("commit-aborted", "fenced", { retriable: true })]);
    const first = options();
    await runSupervised("x", retried.step, first.options);
    assert.equal(retried.calls(), 2);
    assert.deepEqual(first.fatal, []);

    const refused = new EddyError("unauthorized", "SASL authentication failed", { retriable: false });
    const given = scripted([refused]);
    const second = options();
    await runSupervised("x", given.step, second.options);
    assert.equal(given.calls(), 1);
    assert.deepEqual(second.fatal, [refused]);
  });

  it("does not log causes its describe leaves out, nor a recovery after only those", async () => {
    const throttled = new EddyError("throttled", "slow down", { retriable: true });
    const { step } = scripted([throttled, throttled]);
    const { lines, options: opts } = options({
      describe: (error) => ((error as EddyError).code === "throttled" ? undefined : String(error)),
    });
    await runSupervised("x", step, opts);
    assert.deepEqual(lines, []);
  });

  it("lets afterFailure put things right first, retry at once, or end the loop", async () => {
    const order: string[] = [];
    const { step, calls } = scripted([new Error("expired"), new Error("gone")], 1);
    const { lines, options: opts } = options({
      backoff: { baseMs: 60_000, maxMs: 60_000 },
      afterFailure: (error) => {
        order.push((error as Error).message);
        return (error as Error).message === "expired" ? "retry-now" : "stop";
      },
      describe: () => undefined,
    });
    const started = performance.now();
    await runSupervised("x", step, opts);
    assert.ok(performance.now() - started < 5_000, "retry-now did not pause");
    assert.deepEqual(order, ["expired", "gone"]);
    assert.equal(calls(), 2, "stop ended the loop");
    assert.deepEqual(lines, []);
  });

  it("a broker that comes and goes writes one pair of lines per quiet period, not one per flap", async () => {
    let nowMs = 0;
    let calls = 0;
    const { lines, stop, options: opts } = options({ clock: () => nowMs });
    await runSupervised(
      "Kafka egress out",
      async () => {
        calls++;
        nowMs += 1_000;
        if (calls > 40) stop.abort();
        // Fails every other step: down, up, down, up…
        if (calls % 2 === 1) throw new Error("connection reset");
        return undefined;
      },
      opts,
    );
    assert.deepEqual(lines, [
      "eddy: Kafka egress out: connection reset; retrying",
      "eddy: Kafka egress out works again",
    ]);
    nowMs += REPEAT_QUIET_MS;
    const again = options({ clock: () => nowMs });
    const { step } = scripted([new Error("connection reset")]);
    await runSupervised("y", step, again.options);
    assert.equal(again.lines.length, 2, "a new loop, or the same cause after the quiet period, is logged again");
  });

  it("a cause that lasts is said again after the quiet period, with how often it came back", async () => {
    let nowMs = 0;
    let calls = 0;
    const { lines, stop, options: opts } = options({ clock: () => nowMs });
    await runSupervised(
      "Kafka egress out",
      async () => {
        calls++;
        nowMs += 1_000;
        if (calls >= 70) stop.abort();
        throw new Error("connection reset");
      },
      opts,
    );
    assert.deepEqual(lines, [
      "eddy: Kafka egress out: connection reset; retrying",
      "eddy: Kafka egress out: connection reset; retrying (it came back 59 more times in the last 60 s)",
    ]);
  });

  it("stops sleeping and ends when its signal is aborted", async () => {
    const { fatal, stop, options: opts } = options({ backoff: { baseMs: 60_000, maxMs: 60_000 } });
    let calls = 0;
    const started = performance.now();
    const running = runSupervised(
      "x",
      async () => {
        calls++;
        throw new Error("down");
      },
      opts,
    );
    await new Promise((resolve) => setTimeout(resolve, 20));
    stop.abort();
    await running;
    assert.ok(performance.now() - started < 5_000, "the 30–60 s pause was cut short");
    assert.equal(calls, 1);
    assert.deepEqual(fatal, [], "a failure while closing is not fatal");
  });
});
