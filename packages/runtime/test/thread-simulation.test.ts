// Deterministic simulation of partition threads (src/threads/): the real PartitionSet per
// thread and the real StoreHost over an in-memory store, with seeded schedules that crash the
// process anywhere (threads, ports, the host's queue and its unfinished write all lost) and
// restart it with 1 to 4 threads, often another count than before. Invariants: no message
// applied twice or lost across threads, never over-counted, every instance reaches its count,
// every egress record once, inbox offsets that only grow, no inbox row left behind.
// A failure names its seed; `SIM_SEED=<seed> node --test ...` replays it alone, with its whole trace.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { runThreadSchedule, type ThreadScheduleOptions } from "./sim/thread-simulation.ts";

const SCHEDULES = Number(process.env.SIM_THREAD_SCHEDULES ?? 2_500);
const FIRST_SEED = Number(process.env.SIM_SEED ?? 1);

function optionsFor(seed: number): ThreadScheduleOptions {
  return {
    seed,
    partitions: 1 + (seed % 8),
    instances: 2 + (seed % 7),
    commands: 4 + (seed % 9),
    maxDepth: 3,
    maxBatchCount: 1 + (seed % 4),
    threadsMax: 4,
    crashProbability: 0.02,
    verbose: process.env.SIM_SEED !== undefined,
  };
}

describe("partition threads simulation", () => {
  it(`${SCHEDULES} random schedules with crashes and changing thread counts keep every message exactly once`, async () => {
    const totals = {
      crashes: 0,
      threadCountChanges: 0,
      sharedWrites: 0,
      crossThreadMessages: 0,
      handedOver: 0,
      forwardedCommands: 0,
      staleReplies: 0,
      egress: 0,
    };
    const count = process.env.SIM_SEED === undefined ? SCHEDULES : 1;
    for (let seed = FIRST_SEED; seed < FIRST_SEED + count; seed++) {
      const report = await runThreadSchedule(optionsFor(seed));
      for (const name of Object.keys(totals) as (keyof typeof totals)[]) totals[name] += report[name];
    }
    if (process.env.SIM_SEED !== undefined) return;
    // The faults must actually have happened, or the test proves nothing.
    assert.ok(totals.crashes > count, `only ${totals.crashes} crashes in ${count} schedules`);
    assert.ok(
      totals.threadCountChanges > count,
      `only ${totals.threadCountChanges} restarts with another thread count`,
    );
    assert.ok(totals.crossThreadMessages > count, `only ${totals.crossThreadMessages} messages between threads`);
    assert.ok(totals.handedOver > count / 4, `only ${totals.handedOver} inbox entries handed over at a restart`);
    assert.ok(totals.sharedWrites > 0, "no store write gathered the commits of several threads");
    assert.ok(totals.forwardedCommands > 0 && totals.staleReplies > 0 && totals.egress > 0, JSON.stringify(totals));
  });

  it("a schedule is a pure function of its seed", async () => {
    const options = { ...optionsFor(42), crashProbability: 0.05, verbose: false };
    assert.deepEqual(await runThreadSchedule(options), await runThreadSchedule(options));
  });

  it("catches a restarted thread that delivers its waiting inbox entries before it recovers its partitions", async () => {
    // The order partition-thread.ts had before it started its engine first: a delivery starts a batch, then recover() finds
    // the partition running (an InvariantError), or the delivery wrote over a durable in-flight batch.
    const failures: string[] = [];
    for (let seed = 1; seed <= 20; seed++) {
      await runThreadSchedule({ ...optionsFor(seed), handOver: "before-recover", verbose: false }).catch(
        (error: unknown) => failures.push(String(error instanceof Error ? error.message : error).split("\n")[0] ?? ""),
      );
    }
    assert.ok(failures.some((failure) => failure.includes("recover() on a partition that is already running")));
    assert.ok(failures.some((failure) => failure.includes('OverlayKV.insert: key ["inflight"')));
  });
});
