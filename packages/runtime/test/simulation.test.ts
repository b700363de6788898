// Deterministic simulation of the partition core (TigerBeetle/FoundationDB style): seeded
// schedules with a simulated clock, network and disk, crashes at arbitrary steps, stale
// and duplicate replies, retries, an operator pausing and resuming the function type. Invariants: never over-counted, every instance reaches
// its expected count, every egress exactly once, cancelled messages never delivered.
// A failure names its seed; `SIM_SEED=<seed> node --test ...` replays it alone.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { runSchedule } from "./sim/simulation.ts";

const SCHEDULES = Number(process.env.SIM_SCHEDULES ?? 10_000);
const FIRST_SEED = Number(process.env.SIM_SEED ?? 1);

describe("partition core simulation", () => {
  it(`${SCHEDULES} random schedules with crashes keep every message exactly once`, () => {
    let crashes = 0;
    let staleReplies = 0;
    let egress = 0;
    let pauses = 0;
    const count = process.env.SIM_SEED === undefined ? SCHEDULES : 1;
    for (let seed = FIRST_SEED; seed < FIRST_SEED + count; seed++) {
      const report = runSchedule({
        seed,
        partitions: 1 + (seed % 4),
        instances: 2 + (seed % 7),
        commands: 4 + (seed % 9),
        maxDepth: 3,
        crashProbability: 0.02,
        maxBatchCount: 1 + (seed % 4),
      });
      crashes += report.crashes;
      staleReplies += report.staleReplies;
      egress += report.egress;
      pauses += report.pauses;
    }
    // The faults must actually have happened, or the test proves nothing.
    assert.ok(crashes > count / 2, `only ${crashes} crashes in ${count} schedules`);
    assert.ok(staleReplies > 0 && egress > 0 && pauses > count / 2);
  });

  it("a schedule is a pure function of its seed", () => {
    const options = {
      seed: 42,
      partitions: 3,
      instances: 5,
      commands: 10,
      maxDepth: 3,
      crashProbability: 0.05,
      maxBatchCount: 2,
    };
    assert.deepEqual(runSchedule(options), runSchedule(options));
  });
});
