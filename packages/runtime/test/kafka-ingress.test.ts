// The Kafka ingress against a real Apache Kafka 4.4 broker, with Eddy running in this
// process: where a fresh start begins reading (each startup position), that a restart
// resumes where the store says and nothing is delivered twice, and what the consumer group
// is told (only offsets a checkpoint holds, when checkpoints hold the output).
import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { createEndpoint, statefulFunction } from "@eddy/sdk";
import { Admin, Consumer, Producer } from "@platformatic/kafka";
import { type KafkaBroker, startKafka } from "../../../test/support/kafka-broker.ts";
import { parseModule } from "../src/config/module.ts";
import { type CheckpointSettings, type RunningRuntime, startRuntime } from "../src/runtime.ts";

const PARTITIONS = 2;
/** Records already in the topic before any Eddy starts, per partition. */
const EARLY = 6;
const WAIT_MS = 20_000;

let broker: KafkaBroker;
let producer: Producer;
let admin: Admin;
let watcher: Consumer;

const dirs: string[] = [];
after(() => {
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

before(async () => {
  broker = await startKafka();
  // Idempotent: a retried send (a new topic's leader is not always ready) must not write twice.
  producer = new Producer({ clientId: "test-source", bootstrapBrokers: [broker.bootstrap], idempotent: true });
  admin = new Admin({ clientId: "test-admin", bootstrapBrokers: [broker.bootstrap] });
  watcher = new Consumer({ clientId: "test-watcher", groupId: "test-watcher", bootstrapBrokers: [broker.bootstrap] });
  // A new broker makes __consumer_offsets on first use, and until then no group has a
  // coordinator: the first commit of a group fails (Eddy logs it and tries again later).
  // Wait for that here, so each test's group commits work the first time.
  const until = Date.now() + WAIT_MS;
  for (;;) {
    try {
      await admin.listConsumerGroupOffsets({ groups: ["warm-up"] });
      break;
    } catch (error) {
      if (Date.now() > until) throw error;
      await sleep(200);
    }
  }
});

/**
 * A new topic with PARTITIONS partitions of EARLY records each, "p<partition>-<n>", the
 * second half written a minute after the first by their timestamps (returned: when).
 */
async function earlyTopic(name: string): Promise<number> {
  await admin.createTopics({ topics: [name], partitions: PARTITIONS, replicas: 1 });
  const secondHalfAtMs = Date.now() - 60_000;
  const early = (half: number, timestampMs: number) =>
    Array.from({ length: PARTITIONS }, (_, partition) =>
      Array.from({ length: EARLY / 2 }, (_, index) => ({
        topic: name,
        partition,
        key: Buffer.from(`p${partition}`),
        value: Buffer.from(`p${partition}-${half * (EARLY / 2) + index}`),
        timestamp: BigInt(timestampMs),
      })),
    ).flat();
  await producer.send({ messages: early(0, secondHalfAtMs - 60_000) });
  await producer.send({ messages: early(1, secondHalfAtMs) });
  return secondHalfAtMs;
}

after(async () => {
  await producer?.close();
  await admin?.close();
  await watcher?.close();
  await broker?.stop();
});

/** An Eddy whose function `test/sink` notes every message's value, in arrival order. */
interface Sink {
  readonly runtime: RunningRuntime;
  readonly seen: string[];
  /** Each message's headers as "key=value" ("key" alone for a null value), in arrival order. */
  readonly headers: string[][];
}

async function startSink(options: {
  topic: string;
  stateDir: string;
  startup: string;
  groupId: string;
  checkpoints?: CheckpointSettings;
  /** Every message waits for it before it is noted. */
  gate?: Promise<void>;
  memoryBudgetBytes?: number;
  /** With an admin listener on any free port (RunningRuntime.adminUrl). */
  admin?: boolean;
}): Promise<Sink> {
  const seen: string[] = [];
  const headers: string[][] = [];
  const sink = statefulFunction({
    typename: "test/sink",
    async handle(_ctx, incoming) {
      await options.gate;
      seen.push(Buffer.from(incoming.bytes).toString());
      headers.push(
        incoming.headers.map(({ key, value }) => (value === null ? key : `${key}=${Buffer.from(value).toString()}`)),
      );
    },
  });
  const yaml = `kind: io.statefun.kafka.v1/ingress
spec:
  id: test/in
  address: ${broker.bootstrap}
  consumerGroupId: ${options.groupId}
  startupPosition:
${options.startup
  .split("\n")
  .map((line) => `    ${line}`)
  .join("\n")}
  topics:
    - topic: ${options.topic}
      valueType: test/Text
      targets:
        - test/sink
`;
  const loaded = parseModule(yaml, "module.yaml");
  if (!loaded.ok) throw new Error(loaded.errors.map((error) => error.format()).join("\n"));
  const runtime = await startRuntime({
    module: loaded.module,
    stateDir: options.stateDir,
    inProcess: createEndpoint([sink]),
    partitionCount: 4,
    log: () => undefined,
    ...(options.checkpoints === undefined ? {} : { checkpoints: options.checkpoints }),
    ...(options.memoryBudgetBytes === undefined ? {} : { memoryBudgetBytes: options.memoryBudgetBytes }),
    ...(options.admin === true ? { admin: { port: 0 } } : {}),
  });
  return { runtime, seen, headers };
}

function freshDir(): string {
  const dir = mkdtempSync(join(tmpdir(), "eddy-kafka-ingress-"));
  dirs.push(dir);
  return join(dir, "state");
}

/** Waits until `seen` holds `count` values, then a little longer for any that should not come. */
async function collect(seen: string[], count: number): Promise<string[]> {
  const until = Date.now() + WAIT_MS;
  while (seen.length < count && Date.now() < until) await sleep(20);
  await sleep(300);
  return [...seen].sort();
}

/** The group's committed offset per partition ("<topic>/<partition>" → offset). */
async function groupOffsets(groupId: string): Promise<Map<string, bigint>> {
  const [group] = await admin.listConsumerGroupOffsets({ groups: [groupId] });
  const offsets = new Map<string, bigint>();
  for (const topic of group?.topics ?? []) {
    for (const partition of topic.partitions) {
      if (partition.committedOffset >= 0n)
        offsets.set(`${topic.name}/${partition.partitionIndex}`, partition.committedOffset);
    }
  }
  return offsets;
}

async function waitForGroupOffsets(groupId: string, expected: Map<string, bigint>): Promise<Map<string, bigint>> {
  const until = Date.now() + WAIT_MS;
  let offsets = await groupOffsets(groupId);
  while (Date.now() < until && !sameOffsets(offsets, expected)) {
    await sleep(100);
    offsets = await groupOffsets(groupId);
  }
  return offsets;
}

const sameOffsets = (a: Map<string, bigint>, b: Map<string, bigint>) =>
  a.size === b.size && [...a].every(([partition, offset]) => b.get(partition) === offset);

const values = (partition: number, from: number, to: number) =>
  Array.from({ length: to - from }, (_, index) => `p${partition}-${from + index}`);

describe("Kafka ingress startup positions", () => {
  it("earliest reads everything; a restart resumes after what the store holds", async () => {
    const topic = "earliest";
    await earlyTopic(topic);
    const stateDir = freshDir();
    const first = await startSink({ topic, stateDir, startup: "type: earliest", groupId: "g-earliest" });
    assert.deepEqual(await collect(first.seen, PARTITIONS * EARLY), [...values(0, 0, EARLY), ...values(1, 0, EARLY)]);
    await first.runtime.stop();
    // The close told the group where reading stopped.
    assert.deepEqual(await groupOffsets("g-earliest"), await endOffsets(topic));

    await producer.send({ messages: [{ topic, partition: 1, key: Buffer.from("p1"), value: Buffer.from("late") }] });
    const second = await startSink({ topic, stateDir, startup: "type: earliest", groupId: "g-earliest" });
    try {
      assert.deepEqual(await collect(second.seen, 1), ["late"], "only the record written while Eddy was down");
    } finally {
      await second.runtime.stop();
    }
  });

  it("latest skips what is there and reads what comes after the start", async () => {
    const topic = "latest";
    await earlyTopic(topic);
    const sink = await startSink({ topic, stateDir: freshDir(), startup: "type: latest", groupId: "g-latest" });
    try {
      // The start positions reach the group once they are durable: reading has begun there.
      const ends = await endOffsets(topic);
      assert.deepEqual(await waitForGroupOffsets("g-latest", ends), ends);
      await producer.send({ messages: [{ topic, partition: 0, key: Buffer.from("p0"), value: Buffer.from("new") }] });
      assert.deepEqual(await collect(sink.seen, 1), ["new"]);
    } finally {
      await sink.runtime.stop();
    }
  });

  it("specific-offsets starts each listed partition there, the others at the reset position", async () => {
    const topic = "specific";
    await earlyTopic(topic);
    const sink = await startSink({
      topic,
      stateDir: freshDir(),
      startup: `type: specific-offsets\noffsets:\n  - ${topic}/0: 4`,
      groupId: "g-specific",
    });
    try {
      // Partition 1 is not listed: it falls back to auto.offset.reset (latest by default).
      assert.deepEqual(await collect(sink.seen, 2), values(0, 4, EARLY));
    } finally {
      await sink.runtime.stop();
    }
  });

  it("date starts at the first record written at or after it", async () => {
    const topic = "date";
    const secondHalfAtMs = await earlyTopic(topic);
    const date = new Date(secondHalfAtMs).toISOString().replace("T", " ").replace("Z", " +0000");
    const sink = await startSink({
      topic,
      stateDir: freshDir(),
      startup: `type: date\ndate: ${date}`,
      groupId: "g-date",
    });
    try {
      const seen = await collect(sink.seen, EARLY);
      assert.deepEqual(seen, [...values(0, EARLY / 2, EARLY), ...values(1, EARLY / 2, EARLY)]);
    } finally {
      await sink.runtime.stop();
    }
  });

  it("group-offsets starts where the group's committed offsets say", async () => {
    const topic = "group";
    await earlyTopic(topic);
    const partitionOffsets = [
      { partition: 0, offset: 5n },
      { partition: 1, offset: 2n },
    ];
    await admin.alterConsumerGroupOffsets({ groupId: "g-group", topics: [{ name: topic, partitionOffsets }] });
    const sink = await startSink({ topic, stateDir: freshDir(), startup: "type: group-offsets", groupId: "g-group" });
    try {
      const seen = await collect(sink.seen, 1 + (EARLY - 2));
      assert.deepEqual(seen, [...values(0, 5, EARLY), ...values(1, 2, EARLY)]);
    } finally {
      await sink.runtime.stop();
    }
  });
});

describe("Kafka ingress record headers", () => {
  it("go with the message to in-process functions, repeated keys and null values included", async () => {
    const topic = "headers";
    await admin.createTopics({ topics: [topic], partitions: 1, replicas: 1 });
    const sink = await startSink({ topic, stateDir: freshDir(), startup: "type: earliest", groupId: "g-headers" });
    try {
      await producer.send({
        messages: [
          {
            topic,
            key: Buffer.from("a"),
            value: Buffer.from("with"),
            headers: new Map([
              [Buffer.from("trace-id"), Buffer.from("t-1")],
              [Buffer.from("attempt"), Buffer.from("1")],
              [Buffer.from("attempt"), Buffer.from("2")],
            ]),
          },
          { topic, key: Buffer.from("a"), value: Buffer.from("without") },
        ],
      });
      await collect(sink.seen, 2);
      assert.deepEqual(sink.seen, ["with", "without"]);
      assert.deepEqual(sink.headers, [["trace-id=t-1", "attempt=1", "attempt=2"], []]);
    } finally {
      await sink.runtime.stop();
    }
  });
});

describe("Kafka ingress offsets in the consumer group, with checkpoints holding the output", () => {
  it("tells the group only offsets a checkpoint holds", async () => {
    const topic = "checkpointed";
    await earlyTopic(topic);
    const dir = mkdtempSync(join(tmpdir(), "eddy-kafka-ingress-"));
    dirs.push(dir);
    const checkpointsDir = join(dir, "checkpoints");
    // Checkpoints cannot be written (a file where their data directory should be): records
    // are read and processed, but the group hears nothing of them.
    mkdirSync(checkpointsDir);
    writeFileSync(join(checkpointsDir, "data"), "not a directory");
    const sink = await startSink({
      topic,
      stateDir: join(dir, "state"),
      startup: "type: earliest",
      groupId: "g-checkpointed",
      checkpoints: { location: checkpointsDir, intervalMs: 0, acknowledgeAfterCheckpoint: true },
    });
    try {
      const seen = await collect(sink.seen, PARTITIONS * EARLY);
      assert.deepEqual(seen, [...values(0, 0, EARLY), ...values(1, 0, EARLY)]);
      await sleep(1_000);
      assert.deepEqual(await groupOffsets("g-checkpointed"), new Map(), "no offsets before any checkpoint");
      // Checkpoints work again: the next one holds everything, and the group hears of it.
      rmSync(join(checkpointsDir, "data"));
      const ends = await endOffsets(topic);
      assert.deepEqual(await waitForGroupOffsets("g-checkpointed", ends), ends);
    } finally {
      await sink.runtime.stop();
    }
  });
});

describe("Kafka ingress lag at /metrics", () => {
  it("counts the records after what the store holds, per partition, while the ingress is held back", async () => {
    const topic = "lagging";
    await earlyTopic(topic);
    let open: () => void = () => {};
    const gate = new Promise<void>((resolve) => {
      open = resolve;
    });
    // A budget of one byte admits one record at a time (a chunk is at most a quarter of the
    // budget): behind the function that waits for the gate, the first record stays admitted,
    // and the ingress takes nothing more into Eddy.
    const sink = await startSink({
      topic,
      stateDir: freshDir(),
      startup: "type: earliest",
      groupId: "g-lagging",
      gate,
      memoryBudgetBytes: 1,
      admin: true,
    });
    const lags = async (): Promise<number[]> => {
      const text = await (await fetch(`${sink.runtime.adminUrl}metrics`)).text();
      return Array.from({ length: PARTITIONS }, (_, partition) => {
        const prefix = `eddy_kafka_ingress_lag_messages{ingress="test/in",topic="${topic}",partition="${partition}"} `;
        const line = text.split("\n").find((candidate) => candidate.startsWith(prefix));
        return line === undefined ? Number.NaN : Number(line.slice(prefix.length));
      });
    };
    const until = async (done: (lags: number[]) => boolean): Promise<number[]> => {
      const deadline = Date.now() + WAIT_MS;
      let last = await lags();
      while (!done(last) && Date.now() < deadline) {
        await sleep(100);
        last = await lags();
      }
      return last;
    };
    const sum = (values: number[]) => values.reduce((total, value) => total + value, 0);
    try {
      const held = await until((lags) => sum(lags) === PARTITIONS * EARLY - 1);
      assert.equal(sum(held), PARTITIONS * EARLY - 1, `one early record is in, the others wait: ${held}`);
      await sleep(500);
      assert.deepEqual(await lags(), held, "nothing more is taken while the function waits");
      const later = 20;
      await producer.send({
        messages: Array.from({ length: PARTITIONS * later }, (_, index) => ({
          topic,
          partition: index % PARTITIONS,
          key: Buffer.from(`p${index % PARTITIONS}`),
          value: Buffer.from(`later-${index}`),
        })),
      });
      const grown = held.map((lag) => lag + later);
      assert.deepEqual(await until((lags) => sum(lags) === sum(grown)), grown, "the records written while held back");
      open();
      assert.deepEqual(await until((lags) => sum(lags) === 0), [0, 0], "all taken once the function goes on");
      assert.equal((await collect(sink.seen, PARTITIONS * (EARLY + later))).length, PARTITIONS * (EARLY + later));
    } finally {
      open();
      await sink.runtime.stop();
    }
  });
});

/** Each partition's end offset now ("<topic>/<partition>" → offset). */
async function endOffsets(topic: string): Promise<Map<string, bigint>> {
  const ends = (await watcher.listOffsets({ topics: [topic] })).get(topic) ?? [];
  return new Map(ends.map((offset, partition) => [`${topic}/${partition}`, offset]));
}
