// The StateFun smoke test, reimplemented (statefun-protocol.md §6.1–6.2): a seeded
// command generator with the expected-count model sends nested send / sendAfter / egress
// commands to 128 instances through the real `eddy run`, which is killed with SIGKILL at
// random moments and restarted on the same state directory. Invariants: no instance ever
// reports actual > expected, every instance reaches expected, every egress record arrives
// exactly once. Run with functions on the official StateFun JS SDK over HTTP, with Eddy's
// SDK over HTTP (directly, on partition threads whose count changes at every restart, and
// through a proxy that answers 503, stalls, cuts connections and takes the function server
// down), and with Eddy's SDK in-process (`eddy dev`, on the main thread and on 2 partition
// threads).
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { createEndpoint, serve } from "@eddy/sdk";
import { EddyProcess, playgroundYaml, smokeEndpointYaml, withEddy } from "./smoke/cluster.ts";
import { EGRESS_TOPIC, generateWorkload, Random } from "./smoke/commands.ts";
import { pop, sendAll, verifyAll } from "./smoke/driver.ts";
import { commandInterpreter } from "./smoke/eddy-functions.ts";
import { flakyProxy } from "./smoke/flaky-proxy.ts";
import { serveOfficial } from "./smoke/official-functions.ts";

const INSTANCES = 128;
const COMMANDS = Number(process.env.SMOKE_COMMANDS ?? 400);
const KILLS = Number(process.env.SMOKE_KILLS ?? 5);
const SEED = Number(process.env.SMOKE_SEED ?? 7);

const ioYaml = playgroundYaml(["verification", EGRESS_TOPIC]);

/**
 * Kills the runtime exactly KILLS times with SIGKILL, at random moments while `work` runs
 * (and after it, should it finish first), restarting it on the same state directory each time.
 */
async function withRandomKills(
  eddy: EddyProcess,
  seed: number,
  work: Promise<void>,
  restartArgs: (restart: number) => readonly string[] = () => [],
): Promise<number> {
  const random = new Random(seed);
  let failure: { error: unknown } | undefined;
  const finished = work.catch((error: unknown) => {
    failure = { error };
  });
  let kills = 0;
  while (kills < KILLS && failure === undefined) {
    await sleep(150 + random.int(600));
    await eddy.kill();
    kills++;
    await eddy.start(restartArgs(kills));
  }
  await finished;
  if (failure !== undefined) throw failure.error;
  return kills;
}

async function drainEgress(eddy: EddyProcess, expectedIds: readonly string[], deadlineMs: number): Promise<void> {
  const seen = new Map<string, number>();
  while (seen.size < expectedIds.length && Date.now() < deadlineMs) {
    const record = await pop(eddy, EGRESS_TOPIC);
    if (record === undefined) {
      await sleep(20);
      continue;
    }
    seen.set(record, (seen.get(record) ?? 0) + 1);
  }
  const duplicates = [...seen].filter(([, count]) => count > 1).map(([id]) => id);
  assert.deepEqual(duplicates, [], "egress records delivered more than once");
  const missing = expectedIds.filter((id) => !seen.has(id));
  assert.deepEqual(missing, [], "egress records never delivered");
  // Nothing beyond the expected set.
  assert.equal(await pop(eddy, EGRESS_TOPIC), undefined);
}

const runArgs = ["run", "{{MODULE}}", "--state-dir", "{{STATE_DIR}}"];

/** `restartArgs`: arguments added at the start after the n-th kill (0: the first start). */
async function smoke(
  moduleYaml: string,
  args: readonly string[],
  seed: number,
  restartArgs: (restart: number) => readonly string[] = () => [],
): Promise<void> {
  const workload = generateWorkload(seed, INSTANCES, COMMANDS);
  const eddy = new EddyProcess({ moduleYaml, args });
  await eddy.start(restartArgs(0));
  const deadlineMs = Date.now() + 120_000 + KILLS * 5_000 + COMMANDS * 50;
  await withEddy(eddy, async () => {
    const sendAndVerify = async () => {
      await sendAll(eddy, workload, 8, deadlineMs);
      await verifyAll(eddy, workload.expected, deadlineMs);
    };
    assert.equal(await withRandomKills(eddy, seed, sendAndVerify(), restartArgs), KILLS);
    // Once more after the last restart: the counts are final and still exact.
    await verifyAll(eddy, workload.expected, deadlineMs);
    await drainEgress(eddy, workload.egressIds, deadlineMs);
    assert.equal(await eddy.stop(), 0, "clean shutdown on SIGTERM");
  });
}

describe("StateFun smoke test under kill -9", { timeout: 3_600_000 }, () => {
  it("with the official StateFun JS SDK over HTTP", async () => {
    const server = await serveOfficial(0);
    try {
      await smoke(smokeEndpointYaml(server.url) + ioYaml, runArgs, SEED);
    } finally {
      await server.close();
    }
  });

  it("with Eddy's SDK over HTTP", async () => {
    const server = await serve(createEndpoint([commandInterpreter]), { port: 0 });
    try {
      await smoke(smokeEndpointYaml(server.url) + ioYaml, runArgs, SEED + 1);
    } finally {
      await server.close();
    }
  });

  it("with Eddy's SDK over HTTP, the partitions on threads, their count changing at every restart (--threads 2, 3, 1, 2, …)", async () => {
    const server = await serve(createEndpoint([commandInterpreter]), { port: 0 });
    // The same state directory opened with each count in turn: inboxes between threads, egress
    // rows and in-flight batches written with one count are taken up with the next.
    const counts = [2, 3, 1];
    const threads = (restart: number) => ["--threads", String(counts[restart % counts.length])];
    try {
      await smoke(smokeEndpointYaml(server.url) + ioYaml, [...runArgs, "--admin-port", "off"], SEED + 4, threads);
    } finally {
      await server.close();
    }
  });

  it("with Eddy's SDK over HTTP through a function server that fails, stalls and goes down", async () => {
    const server = await serve(createEndpoint([commandInterpreter]), { port: 0 });
    const proxy = await flakyProxy(server.url, SEED + 3);
    const outages = setInterval(() => proxy.takeDown(300), 2_000);
    try {
      await smoke(smokeEndpointYaml(proxy.url) + ioYaml, runArgs, SEED + 3);
      const { unavailable, stalled, cut, down } = proxy.counts;
      assert.ok(
        unavailable > 0 && stalled > 0 && cut > 0 && down > 0,
        `faults injected: ${JSON.stringify(proxy.counts)}`,
      );
    } finally {
      clearInterval(outages);
      await proxy.close();
      await server.close();
    }
  });

  it("with Eddy's SDK in-process (eddy dev)", async () => {
    const args = ["dev", "test/e2e/smoke/eddy-functions.ts", "--module", "{{MODULE}}", "--state-dir", "{{STATE_DIR}}"];
    await smoke(ioYaml, args, SEED + 2);
  });

  it("with Eddy's SDK in-process, the partitions on 2 threads (eddy dev --threads 2)", async () => {
    const args = ["dev", "test/e2e/smoke/eddy-functions.ts", "--module", "{{MODULE}}", "--state-dir", "{{STATE_DIR}}"];
    await smoke(ioYaml, [...args, "--threads", "2", "--admin-port", "off"], SEED + 5);
  });
});
