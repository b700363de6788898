// Deterministic simulation of a cluster's partitions: several workers running the real
// PartitionSet for what the group assigned them, over a shared committed store and one
// inbox per partition, with crashes, zombies (a paused worker whose partitions moved, and
// whose later commits the generation fence refuses), rebalances, commits the broker aborts
// (each undone in place by a reset), stale replies and a resending source. A failure names
// its seed; `SIM_SEED=<seed> node --test ...` replays it alone.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { runClusterSchedule } from "./sim/cluster-simulation.ts";

const SCHEDULES = Number(process.env.SIM_SCHEDULES ?? 10_000);
const FIRST_SEED = Number(process.env.SIM_SEED ?? 1);

describe("cluster simulation", () => {
  it(`${SCHEDULES} random schedules with crashes, zombies and rebalances keep every message exactly once`, () => {
    const totals = { refused: 0, fenced: 0, crashes: 0, moves: 0, inboxDeliveries: 0, staleReplies: 0, egress: 0 };
    const count = process.env.SIM_SEED === undefined ? SCHEDULES : 1;
    for (let seed = FIRST_SEED; seed < FIRST_SEED + count; seed++) {
      const report = runClusterSchedule({
        seed,
        workers: 2 + (seed % 3),
        partitions: 2 + (seed % 7),
        instances: 2 + (seed % 7),
        commands: 4 + (seed % 9),
        maxDepth: 3,
        maxBatchCount: 1 + (seed % 4),
        faultProbability: 0.03,
        refusalProbability: 0.05,
      });
      for (const name of Object.keys(totals) as (keyof typeof totals)[]) totals[name] += report[name];
    }
    // The faults must actually have happened, or the test proves nothing.
    for (const [name, total] of Object.entries(totals)) assert.ok(total > 0, `no ${name} in ${count} schedules`);
    assert.ok(totals.fenced > count / 20, `only ${totals.fenced} zombie commits fenced in ${count} schedules`);
  });

  it("a schedule is a pure function of its seed", () => {
    const options = {
      seed: 7,
      workers: 3,
      partitions: 5,
      instances: 6,
      commands: 10,
      maxDepth: 3,
      maxBatchCount: 2,
      faultProbability: 0.05,
      refusalProbability: 0.05,
    };
    assert.deepEqual(runClusterSchedule(options), runClusterSchedule(options));
  });
});
