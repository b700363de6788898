// Deterministic simulation of a cluster on a simulated Kafka (sim/cluster-simulation.ts):
// worker processes with their own local stores, transactional producers and group
// memberships run the real PartitionSet and GroupMachine; every commit is a Kafka transaction
// fenced by the group generation. Crashes (mid-transaction too), lost disks, zombies, a
// zombie's worker id restarted elsewhere, leaves and rejoins, broker aborts, failed calls and
// lost commit answers. A failure names its seed and the last events before it;
// `SIM_SEED=<seed> SIM_VERBOSE=1 node --test ...` replays it alone, with every event traced.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { type ClusterScheduleOptions, runClusterSchedule } from "./sim/cluster-simulation.ts";

const SCHEDULES = Number(process.env.SIM_SCHEDULES ?? 10_000);
const FIRST_SEED = Number(process.env.SIM_SEED ?? 1);

function optionsOf(seed: number): ClusterScheduleOptions {
  return {
    seed,
    workers: 2 + (seed % 3),
    partitions: 2 + (seed % 7),
    instances: 2 + (seed % 7),
    commands: 4 + (seed % 9),
    maxDepth: 3,
    maxBatchCount: 1 + (seed % 4),
    faultProbability: 0.03,
    callFailureProbability: 0.03,
    verbose: process.env.SIM_VERBOSE === "1",
  };
}

/** The seeds of `seeds` whose schedule fails, with the first line of each failure. */
function failingSeeds(seeds: Iterable<number>, options: Partial<ClusterScheduleOptions> = {}): string[] {
  const failures: string[] = [];
  for (const seed of seeds) {
    try {
      runClusterSchedule({ ...optionsOf(seed), ...options });
    } catch (error) {
      failures.push((error instanceof Error ? error.message : String(error)).split("\n")[0] as string);
    }
  }
  return failures;
}

describe("cluster simulation", () => {
  // Seeds 474, 639, 4565, 5878, 7423, 8020 and 9506 once failed here: the changelog catch-up
  // read only up to the last stable offset, which a transaction left open by a crashed or paused
  // worker holds below frames committed after it (changelog.ts now reads to the end).
  it(`${SCHEDULES} random schedules over a simulated Kafka keep every message exactly once`, () => {
    const totals = {
      refused: 0,
      fenced: 0,
      producerFenced: 0,
      producerRenewals: 0,
      crashes: 0,
      lostDisks: 0,
      pauses: 0,
      replaced: 0,
      leaves: 0,
      brokerAborts: 0,
      rebalancedMidTransaction: 0,
      leftOpen: 0,
      unknownOutcomes: 0,
      unstableWaits: 0,
      catchUpRecords: 0,
      inboxDeliveries: 0,
      staleReplies: 0,
      egress: 0,
      snapshots: 0,
      trims: 0,
      restores: 0,
      inboxTrimmedPast: 0,
    };
    const count = process.env.SIM_SEED === undefined ? SCHEDULES : 1;
    const failures: string[] = [];
    for (let seed = FIRST_SEED; seed < FIRST_SEED + count; seed++) {
      try {
        const report = runClusterSchedule(optionsOf(seed));
        for (const name of Object.keys(totals) as (keyof typeof totals)[]) totals[name] += report[name];
      } catch (error) {
        if (process.env.SIM_SEED !== undefined) throw error;
        failures.push((error instanceof Error ? error.message : String(error)).split("\n")[0] as string);
      }
    }
    assert.deepEqual(failures, [], `${failures.length} of ${count} schedules failed:\n${failures.join("\n")}`);
    // The faults must actually have happened, or the test proves nothing.
    for (const [name, total] of Object.entries(totals)) assert.ok(total > 0, `no ${name} in ${count} schedules`);
  });

  // Found by a run of 40,000 schedules: a worker's trim behind its snapshot deleted committed
  // frames that read_committed had not shown yet, because a zombie's transaction left open below
  // them held the last stable offset, and the oracle, which had not read them, failed on the
  // trimmed offset. Eddy was right (the zombie's transaction can only abort); the oracle now
  // reads what a trim deletes before it goes, and checks that no such open transaction commits.
  it("seeds 31411 and 33330: a trim above a zombie's open transaction deletes nothing the oracle has not read", () => {
    for (const seed of [31411, 33330]) runClusterSchedule(optionsOf(seed));
  });

  it("a broken fence fails schedules, by the oracle's check and by the end state alone", () => {
    const seeds = Array.from({ length: 60 }, (_, index) => index + 1);
    // TxnOffsetCommit without generation and member: the coordinator accepts a zombie's offsets.
    const caught = failingSeeds(seeds, { breakFence: true });
    assert.ok(caught.length >= 10, `only ${caught.length} of ${seeds.length} schedules caught a broken fence`);
    assert.ok(caught.some((failure) => failure.includes("is visible")));
    const damaged = failingSeeds(seeds, { breakFence: true, checkFence: false });
    assert.ok(damaged.length >= 3, `only ${damaged.length} of ${seeds.length} schedules showed the damage`);
  });

  it("a schedule is a pure function of its seed", () => {
    const options = { ...optionsOf(7), workers: 3, partitions: 5, instances: 6, commands: 10, faultProbability: 0.05 };
    assert.deepEqual(runClusterSchedule(options), runClusterSchedule(options));
  });
});
