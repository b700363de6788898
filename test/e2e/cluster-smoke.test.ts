// StateFun's smoke workload on an Eddy cluster (statefun-protocol.md §6.1–6.2): a seeded
// command generator with the expected-count model sends nested send / sendAfter / egress
// commands to 128 instances of a function served by the official `apache-flink-statefun` npm
// SDK, through the playground ingress of whichever workers run, while the cluster is put
// through everything at once: it grows online from 1 worker to 3, a random worker is killed
// with SIGKILL several times (restarted on its state directory or on an empty one, in turn),
// one worker is frozen with SIGSTOP past its session timeout and resumed (a zombie: it must
// learn that it lost its partitions, and nothing it does then counts), and it shrinks to 2
// with SIGTERM. Egress and verification records go out through the Kafka egress, inside the
// workers' own transactions.
//
// Invariants: no instance ever reports actual > expected; every instance reaches expected;
// Kafka's own console consumer (read_committed) sees every egress record exactly once; and no
// partition is held by two workers in one generation (from the line each worker logs for each
// generation it joins).
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { type KafkaBroker, startKafka } from "../support/kafka-broker.ts";
import type { EddyProcess } from "./smoke/cluster.ts";
import {
  assertEgressExactlyOnce,
  assertNoPartitionHeldTwice,
  smokeWorker,
  tailVerifications,
} from "./smoke/cluster-smoke-kit.ts";
import { EGRESS_TOPIC, generateWorkload, Random, type SourceCommand, VERIFICATION_TOPIC } from "./smoke/commands.ts";
import { type Endpoints, sendCommand, verifyAll } from "./smoke/driver.ts";
import { serveOfficial } from "./smoke/official-functions.ts";

const INSTANCES = 128;
const COMMANDS = Number(process.env.CLUSTER_SMOKE_COMMANDS ?? 600);
const KILLS = Number(process.env.CLUSTER_SMOKE_KILLS ?? 6);
const SEED = Number(process.env.CLUSTER_SMOKE_SEED ?? 11);
const KAFKA_EGRESS = "statefun.smoke.e2e/kafka-egress";
const CLUSTER = "smoke";
/** Past the group's session timeout (10 s by default): the frozen worker's partitions are taken from it. */
const FROZEN_MS = 13_000;

let broker: KafkaBroker;
/** The checkpoint store all the workers share: a partition's snapshots must be where its next owner looks. */
const checkpoints = mkdtempSync(join(tmpdir(), "eddy-smoke-checkpoints-"));
let functions: Awaited<ReturnType<typeof serveOfficial>>;
before(async () => {
  broker = await startKafka();
  await broker.createTopic(EGRESS_TOPIC, 4);
  await broker.createTopic(VERIFICATION_TOPIC, 4);
  functions = await serveOfficial(0, { kafkaEgress: KAFKA_EGRESS });
});
after(async () => {
  rmSync(checkpoints, { recursive: true, force: true });
  await functions?.close();
  await broker?.stop();
});

function worker(workerId: string): EddyProcess {
  return smokeWorker({
    functionsUrl: functions.url,
    kafkaEgress: KAFKA_EGRESS,
    bootstrap: broker.bootstrap,
    cluster: CLUSTER,
    checkpointsDir: checkpoints,
    workerId,
  });
}

describe("eddy run --cluster: the StateFun smoke workload", () => {
  it(`official JS SDK functions, 1 → 3 → 2 workers, ${KILLS} kills (half with an empty disk), a zombie: nothing lost or doubled`, async (t) => {
    const workload = generateWorkload(SEED, INSTANCES, COMMANDS);
    const all = [worker("s1"), worker("s2"), worker("s3")];
    const [s1, s2, s3] = all as [EddyProcess, EddyProcess, EddyProcess];
    /** The workers that run now (the ingress the senders use). */
    const running = new Set<EddyProcess>();
    let turn = 0;
    const endpoints: Endpoints = {
      ingressUrl: () => {
        const live = [...running];
        return (live[turn++ % Math.max(1, live.length)] ?? s1).ingressUrl();
      },
      egressUrl: () => assert.fail("the cluster's egress is Kafka"),
    };
    const verifications = await tailVerifications([broker.bootstrap]);
    const random = new Random(SEED);
    try {
      await s1.start();
      running.add(s1);
      const deadlineMs = Date.now() + 240_000;
      let acknowledged = 0;
      let next = 0;
      // Two senders, paced so that the sending spans the faults below.
      const sending = Promise.all(
        Array.from({ length: 2 }, async () => {
          while (next < workload.commands.length) {
            const position = next++;
            const command = workload.commands[position] as SourceCommand;
            await sendCommand(endpoints, `smoke-${position}`, command, deadlineMs);
            acknowledged++;
            await sleep(60);
          }
        }),
      );
      const reached = async (fraction: number) => {
        while (acknowledged < fraction * workload.commands.length && Date.now() < deadlineMs) await sleep(50);
      };
      // Grows online: 1 → 3.
      await reached(0.1);
      await s2.start();
      running.add(s2);
      await s3.start();
      running.add(s3);
      // Kills, each of a random worker, restarted at once: on its disk, or (every other) an empty one.
      for (let kill = 0; kill < KILLS; kill++) {
        await reached(0.15 + (0.5 * kill) / KILLS);
        const victim = all[random.int(all.length)] as EddyProcess;
        running.delete(victim);
        await victim.kill();
        if (kill % 2 === 1) victim.wipeState();
        await sleep(random.int(1_000));
        await victim.start();
        running.add(victim);
      }
      // A zombie: frozen past its session timeout while the others go on, then resumed.
      await reached(0.7);
      running.delete(s2);
      const frozenAt = s2.output.length;
      s2.pause();
      await sleep(FROZEN_MS);
      s2.resume();
      running.add(s2);
      // Back in the group before the cluster shrinks: otherwise its rejoin and the leave below
      // may fall into one rebalance (more likely the faster the commands go), and the scale-down
      // is not a rebalance of its own.
      const rejoined = /worker s2 holds partitions \S+ in generation \d+/;
      while (!rejoined.test(s2.output.slice(frozenAt)) && Date.now() < deadlineMs) await sleep(50);
      assert.match(s2.output.slice(frozenAt), rejoined, "the resumed zombie joins the group again");
      // Shrinks gently: 3 → 2.
      await reached(0.85);
      running.delete(s3);
      assert.equal(await s3.stop(), 0, "a worker leaves the cluster cleanly on SIGTERM");
      await sending;
      await verifyAll(endpoints, workload.expected, Date.now() + 120_000, verifications.next);
      assert.match(s2.output.slice(frozenAt), /lost partitions/, "the resumed zombie learns it lost its partitions");

      // Every egress record exactly once, as Kafka's own console consumer (read_committed) sees them.
      const wanted = new Set(workload.egressIds);
      await assertEgressExactlyOnce(() => broker.readCommitted(EGRESS_TOPIC, 2_000), wanted);
      const generations = assertNoPartitionHeldTwice(all);
      assert.ok(generations >= 5, `the group went through its rebalances (${generations} generations seen)`);
      t.diagnostic(`${workload.commands.length} commands, ${wanted.size} egress records, ${generations} generations`);
    } catch (error) {
      const outputs = all.map((eddy, index) => `--- worker s${index + 1} ---\n${eddy.output.slice(-3000)}`).join("\n");
      throw new Error(`${error instanceof Error ? error.message : String(error)}\n${outputs}`);
    } finally {
      await verifications.close();
      for (const eddy of all) await eddy.dispose();
    }
  });
});
