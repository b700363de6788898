// The cluster soak with a Kafka broker lost under load: StateFun's smoke workload (official JS
// SDK functions, egress and verification records through the Kafka egress inside the workers'
// own transactions) on 3 Eddy workers against a 3-node Kafka cluster (replication factor 3,
// min.insync.replicas 2, test/support/kafka-cluster.ts). While the commands flow a random
// broker is killed with SIGKILL and restarted a while later on its data directory (more than
// once with SOAK_BROKER_KILLS), and a random worker is killed with SIGKILL again and again
// (SOAK_WORKER_KILLS), restarted at once on its state directory or, every other time, on an
// empty one — some of those kills fall while a broker is down.
//
// Invariants: no instance ever reports actual > expected; every instance reaches expected;
// Kafka's own console consumer (read_committed) sees every egress record exactly once; no
// partition is held by two workers in one generation.
//
// Not in `npm test` (its name is not *.test.ts): test/soak/cluster-brokers.sh runs it.
import assert from "node:assert/strict";
import { cpSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { Producer } from "@platformatic/kafka";
import type { EddyProcess } from "../e2e/smoke/cluster.ts";
import {
  assertEgressExactlyOnce,
  assertNoPartitionHeldTwice,
  smokeWorker,
  tailVerifications,
} from "../e2e/smoke/cluster-smoke-kit.ts";
import {
  EGRESS_TOPIC,
  generateWorkload,
  Random,
  type SourceCommand,
  VERIFICATION_TOPIC,
} from "../e2e/smoke/commands.ts";
import { type Endpoints, sendCommand, verifyAll } from "../e2e/smoke/driver.ts";
import { serveOfficial } from "../e2e/smoke/official-functions.ts";
import { type KafkaCluster, type KafkaClusterNode, startKafkaCluster } from "../support/kafka-cluster.ts";

const INSTANCES = 128;
const WORKER_KILLS = positiveInteger("SOAK_WORKER_KILLS", 5);
const BROKER_KILLS = positiveInteger("SOAK_BROKER_KILLS", 1);
/** Enough commands that the sending outlasts the kills: each costs a rebalance or two. */
const COMMANDS = positiveInteger("SOAK_COMMANDS", Math.max(600, 60 * WORKER_KILLS));
const SEED = positiveInteger("SOAK_SEED", 23);
const KAFKA_EGRESS = "statefun.smoke.e2e/kafka-egress";
const CLUSTER = "brokers-soak";
const WORKERS = 3;
const SENDERS = 2;
const SEND_PACE_MS = 60;
/** Failures keep the brokers' and workers' output here. */
const KEPT_LOGS_DIR = join(tmpdir(), `eddy-brokers-soak-${process.pid}`);

function positiveInteger(name: string, fallback: number): number {
  const text = process.env[name];
  if (text === undefined || text === "") return fallback;
  const value = Number(text);
  assert.ok(Number.isInteger(value) && value >= 0, `${name}=${text}: expected a non-negative integer`);
  return value;
}

let kafka: KafkaCluster;
const checkpointsDir = mkdtempSync(join(tmpdir(), "eddy-brokers-soak-checkpoints-"));
let functions: Awaited<ReturnType<typeof serveOfficial>>;
before(async () => {
  kafka = await startKafkaCluster();
  await kafka.createTopic(EGRESS_TOPIC, 4);
  await kafka.createTopic(VERIFICATION_TOPIC, 4);
  await makeInternalTopics(kafka);
  functions = await serveOfficial(0, { kafkaEgress: KAFKA_EGRESS });
});
after(async () => {
  rmSync(checkpointsDir, { recursive: true, force: true });
  await functions?.close();
  await kafka?.stop();
});

describe("eddy run --cluster on a 3-node Kafka cluster: the StateFun smoke workload", () => {
  it(`${WORKERS} workers, ${WORKER_KILLS} worker kills (half with an empty disk), ${BROKER_KILLS} broker kill(s) under load: nothing lost or doubled`, async (t) => {
    const workload = generateWorkload(SEED, INSTANCES, COMMANDS);
    const workers = Array.from({ length: WORKERS }, (_, index) =>
      smokeWorker({
        functionsUrl: functions.url,
        kafkaEgress: KAFKA_EGRESS,
        bootstrap: kafka.bootstrap,
        cluster: CLUSTER,
        checkpointsDir,
        workerId: `w${index + 1}`,
      }),
    );
    /** The workers that run now (the ingress the senders use). */
    const running = new Set<EddyProcess>();
    let turn = 0;
    const endpoints: Endpoints = {
      ingressUrl: () => {
        const live = [...running];
        return (live[turn++ % Math.max(1, live.length)] ?? (workers[0] as EddyProcess)).ingressUrl();
      },
      egressUrl: () => assert.fail("the cluster's egress is Kafka"),
    };
    const random = new Random(SEED);
    const startedAt = Date.now();
    const log = (line: string) => t.diagnostic(`${((Date.now() - startedAt) / 1000).toFixed(1)} s: ${line}`);
    const deadlineMs = startedAt + 300_000 + WORKER_KILLS * 15_000 + BROKER_KILLS * 60_000;
    try {
      for (const eddy of workers) {
        await eddy.start();
        running.add(eddy);
      }
      log(`${WORKERS} workers run`);
      let acknowledged = 0;
      let next = 0;
      const sending = Promise.all(
        Array.from({ length: SENDERS }, async () => {
          while (next < workload.commands.length) {
            const position = next++;
            const command = workload.commands[position] as SourceCommand;
            await sendCommand(endpoints, `smoke-${position}`, command, deadlineMs);
            acknowledged++;
            await sleep(SEND_PACE_MS);
          }
        }),
      );
      const reached = async (fraction: number) => {
        while (acknowledged < fraction * workload.commands.length && Date.now() < deadlineMs) await sleep(50);
      };

      // Brokers: each outage spans a share of the sending, during which workers die too.
      const firstBrokerVictim = random.int(kafka.nodes.length);
      const brokerChaos = (async () => {
        for (let kill = 0; kill < BROKER_KILLS; kill++) {
          await reached(0.15 + (0.7 * kill) / BROKER_KILLS);
          // In turn from a random one: three outages take every node down once (the controller
          // leader, the group's and the transactions' coordinators among them).
          const victim = kafka.nodes[(firstBrokerVictim + kill) % kafka.nodes.length] as KafkaClusterNode;
          const before = acknowledged;
          const downAt = Date.now();
          await victim.kill();
          log(`broker ${victim.nodeId} killed at ${before} commands acknowledged`);
          await reached(0.15 + (0.7 * (kill + 0.5)) / BROKER_KILLS);
          log(`${acknowledged - before} commands acknowledged with broker ${victim.nodeId} down`);
          await victim.restart();
          log(`broker ${victim.nodeId} back after ${((Date.now() - downAt) / 1000).toFixed(1)} s down`);
        }
      })();
      // Workers: each kill of a random worker, restarted at once on its disk or (every other) an empty one.
      const workerChaos = (async () => {
        for (let kill = 0; kill < WORKER_KILLS; kill++) {
          await reached(0.1 + (0.8 * kill) / WORKER_KILLS);
          const victim = random.pick(workers);
          running.delete(victim);
          await victim.kill();
          if (kill % 2 === 1) victim.wipeState();
          await sleep(random.int(1_000));
          await victim.start();
          running.add(victim);
          if ((kill + 1) % 5 === 0 || kill + 1 === WORKER_KILLS) {
            log(`${kill + 1} worker kills, ${acknowledged} commands acknowledged`);
          }
        }
      })();
      await Promise.all([brokerChaos, workerChaos, sending]);
      log(`all ${workload.commands.length} commands acknowledged; verifying`);

      const verifications = await tailVerifications(kafka.bootstrap.split(","));
      try {
        await verifyAll(endpoints, workload.expected, Date.now() + 180_000, verifications.next);
      } finally {
        await verifications.close();
      }
      log(`every instance reached its expected count, none over`);
      const egressRecords = await assertEgressExactlyOnce(
        () => kafka.readCommitted(EGRESS_TOPIC, 2_000),
        new Set(workload.egressIds),
      );
      // A worker restarted within its session timeout keeps its member id (static membership)
      // and rejoins its generation: the growth to WORKERS is what surely makes generations.
      const generations = assertNoPartitionHeldTwice(workers);
      assert.ok(generations >= WORKERS, `the group went through its rebalances (${generations} generations seen)`);
      const outputs = workers.map((eddy) => eddy.output).join("");
      const refusedCommits = outputs.match(/a commit was refused/g)?.length ?? 0;
      const joins = outputs.match(/worker \S+ holds partitions/g)?.length ?? 0;
      log(
        `${workload.commands.length} commands, ${egressRecords} egress records exactly once, ` +
          `${generations} generations (${joins} joins), no partition held twice; ${refusedCommits} commits refused and undone`,
      );
    } catch (error) {
      keepLogs(workers);
      const outputs = workers.map((eddy, index) => `--- worker w${index + 1} ---\n${eddy.output.slice(-3000)}`);
      throw new Error(
        `${error instanceof Error ? error.message : String(error)}\n(full logs in ${KEPT_LOGS_DIR})\n${outputs.join("\n")}`,
      );
    } finally {
      for (const eddy of workers) await eddy.dispose();
    }
  });
});

/** Copies every worker's and broker's output out of the directories the run removes. */
function keepLogs(workers: readonly EddyProcess[]): void {
  mkdirSync(KEPT_LOGS_DIR, { recursive: true });
  for (const [index, eddy] of workers.entries()) {
    writeFileSync(join(KEPT_LOGS_DIR, `worker-w${index + 1}.log`), eddy.output);
  }
  for (const node of kafka.nodes) {
    cpSync(node.outputPath, join(KEPT_LOGS_DIR, `broker-${node.nodeId}.log`));
  }
}

/**
 * Makes Kafka's transaction-state and offsets topics, as a cluster in service has had them for
 * long: made on demand by the first worker instead, while the brokers also create the cluster's
 * 768 replicas, they can take longer to lead than a starting worker waits for its transaction
 * coordinator (see the report of this soak: that start-up exits "findCoordinator failed 5 times").
 */
async function makeInternalTopics(cluster: KafkaCluster): Promise<void> {
  const producer = new Producer({
    clientId: "brokers-soak-warm-up",
    bootstrapBrokers: cluster.bootstrap.split(","),
    transactionalId: "brokers-soak-warm-up",
    idempotent: true,
    acks: -1,
    retries: 60,
    retryDelay: 500,
  });
  try {
    // Aborted, so no read_committed consumer sees it; an empty transaction cannot be ended.
    const transaction = await producer.beginTransaction();
    await transaction.send({
      messages: [{ topic: VERIFICATION_TOPIC, key: Buffer.from("warm-up"), value: Buffer.from("warm-up") }],
    });
    await transaction.abort();
  } finally {
    await producer.close();
  }
  await cluster.readCommitted(VERIFICATION_TOPIC, 500);
}
