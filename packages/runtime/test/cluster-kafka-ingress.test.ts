// The Kafka ingress in a cluster, in one process against a real Kafka 4.4 broker: each source
// partition is read by the worker that runs the partition it is bound to, and its position
// moves with that partition. Workers join, leave gently, and crash (their engine and ingress
// going on without their Kafka clients) while a 6-partition topic is read; every
// record is counted exactly once by the instance its key names, and each source partition's
// position, a row of its bound partition, ends at the topic's end offset.
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { createEndpoint, statefulFunction, types } from "@eddy/sdk";
import { Producer } from "@platformatic/kafka";
import { type KafkaBroker, startKafka } from "../../../test/support/kafka-broker.ts";
import { ClusterWorker } from "../src/cluster/cluster-worker.ts";
import { parseModule } from "../src/config/module.ts";
import type { KafkaIngressConfig } from "../src/config/types.ts";
import type { FunctionTypename } from "../src/core/address.ts";
import type { FunctionSettings } from "../src/core/partition-core.ts";
import { getRow, inPartition, tables } from "../src/core/schema.ts";
import { Engine } from "../src/engine/engine.ts";
import { InProcessInvoker } from "../src/invoker/in-process-invoker.ts";
import { KafkaIngress, kafkaIngressSettings } from "../src/io/kafka/ingress.ts";
import { kafkaSourcePartition, SourceBinding } from "../src/io/source-binding.ts";
import { lineLogger } from "../src/observe/logger.ts";
import { LoggedStore } from "../src/store/logged-store.ts";

const PARTITIONS = 8;
const SOURCE_PARTITIONS = 6;
const IDS = 24;
const INGRESS = "ki/in";
const TOPIC = "ki-source";
const settings: FunctionSettings = {
  maxBatchCount: 100,
  maxBatchBytes: 1 << 20,
  backlogLimit: 1000,
  failurePolicy: "retry",
};

/** Counts every record it is sent (type ki/Inc); a string "get" answers the count. */
const counter = statefulFunction({
  typename: "ki/counter",
  state: { count: types.int },
  handle(ctx, msg) {
    if (msg.is(types.string)) {
      ctx.reply(ctx.storage.count ?? 0, types.int);
      return;
    }
    ctx.storage.count = (ctx.storage.count ?? 0) + 1;
  },
});

let broker: KafkaBroker;
let producer: Producer;
const dirs: string[] = [];
/** Workers not stopped yet: a failed test leaves none running (their engines would keep the process alive). */
const running = new Set<Started>();
before(async () => {
  broker = await startKafka();
  await broker.createTopic(TOPIC, SOURCE_PARTITIONS);
  producer = new Producer({ clientId: "ki-source", bootstrapBrokers: [broker.bootstrap], idempotent: true });
});
after(async () => {
  for (const started of running) {
    await started.ingress.close().catch(() => undefined);
    await started.worker.abandon().catch(() => undefined);
    await started.worker.engine.stop().catch(() => undefined);
  }
  await producer?.close();
  await broker?.stop();
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

function ingressConfig(): KafkaIngressConfig {
  const yaml = `kind: io.statefun.kafka.v1/ingress
spec:
  id: ${INGRESS}
  address: ${broker.bootstrap}
  startupPosition:
    type: earliest
  properties:
    - max.poll.records: 7
    - fetch.max.wait.ms: 50
  topics:
    - topic: ${TOPIC}
      valueType: ki/Inc
      targets:
        - ki/counter
`;
  const loaded = parseModule(yaml, "module.yaml");
  if (!loaded.ok) throw new Error(loaded.errors.map((error) => error.format()).join("\n"));
  return loaded.module.ingresses[0] as KafkaIngressConfig;
}

/** A worker with the Kafka ingress bound to its partitions. */
async function startWorker(cluster: string, workerId: string, dir?: string) {
  const stateDir = dir ?? mkdtempSync(join(tmpdir(), `eddy-ki-${workerId}-`));
  if (dir === undefined) dirs.push(stateDir);
  const local = new LoggedStore({ path: stateDir });
  const fatal: string[] = [];
  const logs: string[] = [];
  const log = (line: string) => {
    logs.push(line);
    if (process.env.KI_DEBUG !== undefined) console.error(workerId, line);
  };
  const binding = new SourceBinding(PARTITIONS);
  const started = await ClusterWorker.start({
    connection: { clientId: `eddy-ki-${workerId}`, bootstrapBrokers: [broker.bootstrap] },
    cluster,
    workerId,
    advertiseUrl: `http://${workerId}.invalid`,
    partitionCount: PARTITIONS,
    local,
    sessionTimeoutMs: 6_000,
    onPartitionsChanged: (owned) => binding.changed(owned),
    createEngine: (commitTarget) =>
      new Engine({
        store: local,
        commitTarget,
        catalog: {
          functionSettings: (typename) => (typename === "ki/counter" ? settings : undefined),
          hasEgress: () => false,
        },
        invoker: new InProcessInvoker(createEndpoint([counter])),
        partitionCount: PARTITIONS,
        ownedPartitions: [],
      }),
    log: lineLogger(log),
    onFatal: (reason) => {
      log(`FATAL ${reason}`);
      fatal.push(reason);
    },
  });
  assert.ok(started.ok, started.ok ? "" : started.message);
  const worker = started.value;
  const config = ingressConfig();
  const ingressSettings = kafkaIngressSettings(config);
  assert.ok(ingressSettings.ok);
  const ingress = new KafkaIngress({ config, settings: ingressSettings.value, log: lineLogger(log), binding });
  await ingress.open({ engine: worker.engine, store: local, onFatal: (error) => fatal.push(String(error)) });
  const parts = { worker, ingress, local, stateDir, fatal, logs };
  running.add(parts);
  return parts;
}

type Started = Awaited<ReturnType<typeof startWorker>>;

const target = (id: number) => ({ typename: "ki/counter" as FunctionTypename, id: `user-${id}` });

/** Produces `count` records from `from` on, record i to instance i mod IDS, spread over the source partitions. */
async function produce(from: number, count: number): Promise<void> {
  const messages = Array.from({ length: count }, (_, index) => {
    const n = from + index;
    return {
      topic: TOPIC,
      partition: n % SOURCE_PARTITIONS,
      key: Buffer.from(target(n % IDS).id),
      value: Buffer.from(`inc-${n}`),
    };
  });
  for (let start = 0; start < messages.length; start += 100) {
    await producer.send({ messages: messages.slice(start, start + 100) });
  }
}

async function waitFor(what: string, condition: () => boolean, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}`);
    await sleep(50);
  }
}

/** Each instance's count, read on the worker that runs it; undefined while one is not run or does not answer. */
async function counts(workers: readonly Started[]): Promise<number[] | undefined> {
  const found: number[] = [];
  for (let id = 0; id < IDS; id++) {
    const owner = workers.find((started) => started.worker.owns(target(id)));
    if (owner === undefined) return undefined;
    const accepted = await owner.worker.engine.accept(
      {
        target: target(id),
        argument: { typename: "io.statefun.types/string", hasValue: true, value: types.string.serialize("get") },
      },
      { expectReply: true },
    );
    if (!accepted.ok || accepted.requestId === undefined) return undefined;
    const reply = await owner.worker.engine.awaitReply(accepted.requestId, 5_000);
    if (reply.state !== "answered") return undefined;
    found.push(types.int.deserialize(reply.value.value));
  }
  return found;
}

/** Waits until every instance counted exactly what was produced for it; fails at once on a count above it. */
async function waitForCounts(workers: readonly Started[], produced: number): Promise<void> {
  const expected = Array.from({ length: IDS }, (_, id) => Math.floor(produced / IDS) + (id < produced % IDS ? 1 : 0));
  let last: number[] | undefined;
  const deadline = Date.now() + 90_000;
  while (Date.now() < deadline) {
    last = await counts(workers);
    if (last !== undefined) {
      for (const [id, count] of last.entries()) {
        assert.ok(
          count <= (expected[id] as number),
          `user-${id} counted ${count}, more than the ${expected[id]} produced`,
        );
      }
      if (last.every((count, id) => count === expected[id])) return;
    }
    await sleep(200);
  }
  assert.fail(`counts ${JSON.stringify(last)}, expected ${JSON.stringify(expected)}`);
}

/** Each source partition's stored position, read in the partition it is bound to on the worker running it. */
function positions(workers: readonly Started[]): (number | undefined)[] {
  return Array.from({ length: SOURCE_PARTITIONS }, (_, partition) => {
    const bound = kafkaSourcePartition(INGRESS, TOPIC, partition, PARTITIONS);
    const owner = workers.find((started) => started.worker.engine.ownedPartitions.includes(bound));
    return owner === undefined
      ? undefined
      : getRow(owner.local, inPartition(bound, tables.kafkaSourcePosition.key(INGRESS, TOPIC, partition)));
  });
}

async function stop(started: Started): Promise<void> {
  running.delete(started);
  await started.ingress.close();
  await started.worker.stop();
}

describe("the Kafka ingress in a cluster", () => {
  it("reads each source partition on the worker that runs its partition, moving with it: every record counted once", async () => {
    const cluster = "ki1";
    const a = await startWorker(cluster, "a");
    await waitFor("a to run every partition", () => a.worker.engine.ownedPartitions.length === PARTITIONS);
    let produced = 0;
    await produce(produced, 240);
    produced += 240;
    await waitForCounts([a], produced);

    // A second worker joins while records flow: half the partitions, and their source partitions, move to it.
    const b = await startWorker(cluster, "b");
    await produce(produced, 480);
    produced += 480;
    await waitFor(
      "the partitions to be split",
      () =>
        a.worker.engine.ownedPartitions.length === PARTITIONS / 2 &&
        b.worker.engine.ownedPartitions.length === PARTITIONS / 2,
    );
    await produce(produced, 240);
    produced += 240;
    await waitForCounts([a, b], produced);

    // a crashes while records flow (its Kafka clients closed, its engine and ingress going on,
    // every commit of theirs refused); a third worker with an empty disk joins; b and c take
    // what a ran after the session timeout.
    const flowing = produce(produced, 600);
    produced += 600;
    await sleep(100);
    await a.worker.abandon();
    const c = await startWorker(cluster, "c");
    await flowing;
    await waitFor(
      "b and c to run every partition",
      () => b.worker.engine.ownedPartitions.length + c.worker.engine.ownedPartitions.length === PARTITIONS,
      60_000,
    );
    await waitForCounts([b, c], produced);

    // b leaves gently; c runs everything, from its own disk caught up from the changelog.
    await stop(b);
    await waitFor("c to run every partition", () => c.worker.engine.ownedPartitions.length === PARTITIONS);
    await produce(produced, 120);
    produced += 120;
    await waitForCounts([c], produced);
    // Every record of every source partition was read: each position is at the partition's end.
    const perPartition = produced / SOURCE_PARTITIONS;
    await waitFor("the positions to reach the end", () =>
      positions([c]).every((position) => position === perPartition),
    );
    assert.deepEqual([...b.fatal, ...c.fatal], []);
    await stop(c);
    // The crashed worker's engine and ingress, which went on without their Kafka clients: its
    // commits were refused (backing off up to 5 s) or failed (a closed client), and its ingress
    // still closes. It once waited forever for the records of a failed commit (3 of 9 runs);
    // bounded here so that a return of that bug fails the test rather than hanging the suite.
    running.delete(a);
    const closed = await Promise.race([a.ingress.close().then(() => "closed"), sleep(20_000, "open", { ref: false })]);
    assert.equal(closed, "closed", "the crashed worker's ingress closes");
    await a.worker.engine.stop();
  });
});
