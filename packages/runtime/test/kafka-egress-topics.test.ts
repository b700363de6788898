// The Kafka egress and topics that do not exist yet, against real Apache Kafka 4.4 brokers:
// one that creates topics on demand (auto.create.topics.enable=true, as every StateFun example
// broker) and one that does not (test/support/kafka-broker.ts's default). Eddy runs in this
// process with an at-least-once and an exactly-once egress; a function turns each input record
// (JSON: topic, value, or size for a value of that many bytes) into one record to each.
//
// - A broker that creates topics: the records go out, none becomes a dead letter.
// - A broker that does not: the records wait (reported, naming the topic), across a restart,
//   while records for other topics go out; once the topic is created they go out, once each.
//   What Kafka could never take (an illegal name, an internal topic, a record over
//   max.request.size) becomes a dead letter.
// - The exactly-once egress across kill -9 while its topic does not exist yet, then while the
//   first transactions into the newly created topic are committed: Kafka's own read_committed
//   console consumer sees every record once.
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { createEndpoint, kafkaRecord, statefulFunction } from "@eddy/sdk";
import { Admin, Consumer, Producer } from "@platformatic/kafka";
import { EddyProcess, withEddy } from "../../../test/e2e/smoke/cluster.ts";
import { type KafkaBroker, startKafka } from "../../../test/support/kafka-broker.ts";
import { parseModule } from "../src/config/module.ts";
import { type RunningRuntime, startRuntime } from "../src/runtime.ts";

const WAIT_MS = 30_000;
/** More than max.request.size (1 MiB by default): a record Kafka could never take. */
const TOO_BIG = 2 * 1024 * 1024;

/** A broker with auto.create.topics.enable=true, and one without (the support broker's default). */
let creating: KafkaBroker;
let refusing: KafkaBroker;
/** Closes every Kafka client a test made. */
const closers: (() => Promise<void>)[] = [];
const dirs: string[] = [];

before(async () => {
  [creating, refusing] = await Promise.all([
    startKafka({ properties: { "auto.create.topics.enable": "true", "num.partitions": "2" } }),
    startKafka(),
  ]);
});

after(async () => {
  for (const close of closers) await close().catch(() => undefined);
  await Promise.all([creating?.stop(), refusing?.stop()]);
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

function admin(broker: KafkaBroker): Admin {
  const client = new Admin({ clientId: "test-admin", bootstrapBrokers: [broker.bootstrap] });
  closers.push(() => client.close());
  return client;
}

function producer(broker: KafkaBroker): Producer {
  const client = new Producer({ clientId: "test-source", bootstrapBrokers: [broker.bootstrap], idempotent: true });
  closers.push(() => client.close());
  return client;
}

/** What the function is asked to send: to `topic`, "<egress>:<value>", or `size` bytes. */
interface Order {
  readonly topic: string;
  readonly value?: string;
  readonly size?: number;
}

interface Eddy {
  readonly runtime: RunningRuntime;
  readonly log: string[];
  readonly deadLetters: () => string[];
}

/**
 * Eddy on `broker`: a Kafka ingress on `input` whose records are orders for test/route, which
 * sends each to the at-least-once egress test/alo and the exactly-once egress test/eo.
 */
async function startEddy(broker: KafkaBroker, input: string, stateDir: string): Promise<Eddy> {
  const route = statefulFunction({
    typename: "test/route",
    handle(ctx, incoming) {
      const order = JSON.parse(Buffer.from(incoming.bytes).toString()) as Order;
      for (const egress of ["alo", "eo"]) {
        const value = order.size === undefined ? `${egress}:${order.value}` : Buffer.alloc(order.size);
        ctx.send(kafkaRecord({ egress: `test/${egress}`, topic: order.topic, key: ctx.self.id, value }));
      }
    },
  });
  const egress = (id: string, semantic: string) => `---
kind: io.statefun.kafka.v1/egress
spec:
  id: test/${id}
  address: ${broker.bootstrap}
  deliverySemantic:
    type: ${semantic}
${semantic === "exactly-once" ? "    transactionTimeout: 1min\n" : ""}`;
  const yaml = `kind: io.statefun.kafka.v1/ingress
spec:
  id: test/in
  address: ${broker.bootstrap}
  startupPosition:
    type: earliest
  topics:
    - topic: ${input}
      valueType: test/Order
      targets:
        - test/route
${egress("alo", "at-least-once")}${egress("eo", "exactly-once")}`;
  const loaded = parseModule(yaml, "module.yaml");
  if (!loaded.ok) throw new Error(loaded.errors.map((error) => error.format()).join("\n"));
  const log: string[] = [];
  const runtime = await startRuntime({
    module: loaded.module,
    stateDir,
    inProcess: createEndpoint([route]),
    partitionCount: 4,
    log: (line) => log.push(line),
  });
  return { runtime, log, deadLetters: () => log.filter((line) => line.includes("dead letter")) };
}

function freshDir(): string {
  const dir = mkdtempSync(join(tmpdir(), "eddy-kafka-egress-topics-"));
  dirs.push(dir);
  return join(dir, "state");
}

async function order(source: Producer, input: string, orders: readonly Order[]): Promise<void> {
  await source.send({
    messages: orders.map((entry, index) => ({
      topic: input,
      key: Buffer.from(`id${index}`),
      value: Buffer.from(JSON.stringify(entry)),
    })),
  });
}

async function waitFor(condition: () => boolean | Promise<boolean>, what: string, log?: string[]): Promise<void> {
  const until = Date.now() + WAIT_MS;
  while (!(await condition())) {
    if (Date.now() > until)
      throw new Error(`timed out waiting for ${what}${log ? `; Eddy logged:\n${log.join("\n")}` : ""}`);
    await sleep(50);
  }
}

/** Whether `topic` exists, asked without creating it. */
async function exists(client: Admin, topic: string): Promise<boolean> {
  try {
    await client.metadata({ topics: [topic], autocreateTopics: false, forceUpdate: true });
    return true;
  } catch {
    return false;
  }
}

/**
 * The values of `topic` that Kafka's own read_committed console consumer sees, once there
 * are at least `count` (or WAIT_MS passed), after a last look for any that should not be there.
 */
async function committedValues(broker: KafkaBroker, topic: string, count: number): Promise<string[]> {
  const until = Date.now() + WAIT_MS;
  let values = (await broker.readCommitted(topic, 1_000)).map((record) => record.value);
  while (values.length < count && Date.now() < until) {
    await sleep(500);
    values = (await broker.readCommitted(topic, 1_000)).map((record) => record.value);
  }
  await sleep(1_000);
  return (await broker.readCommitted(topic, 1_000)).map((record) => record.value).sort();
}

const sent = (values: readonly string[]) => values.flatMap((value) => [`alo:${value}`, `eo:${value}`]).sort();

describe("Kafka egress to a topic that does not exist yet", () => {
  it("on a broker that creates topics: the topic is created and every record goes out, none a dead letter", async () => {
    const [input, topic] = ["orders-a", "greets"];
    const client = admin(creating);
    await client.createTopics({ topics: [input], partitions: 2, replicas: 1 });
    assert.equal(await exists(client, topic), false);
    const eddy = await startEddy(creating, input, freshDir());
    try {
      const values = ["v1", "v2", "v3"];
      await order(
        producer(creating),
        input,
        values.map((value) => ({ topic, value })),
      );
      await waitFor(() => exists(client, topic), `topic ${topic}`, eddy.log);
      assert.deepEqual(await committedValues(creating, topic, 6), sent(values), eddy.log.join("\n"));
      assert.deepEqual(eddy.deadLetters(), []);
    } finally {
      await eddy.runtime.stop();
    }
  });

  it("on a broker that does not: the records wait, reported, across a restart, and go out once the topic is created", async () => {
    const [input, missing, present] = ["orders-b", "waits", "present"];
    const client = admin(refusing);
    await client.createTopics({ topics: [input, present], partitions: 1, replicas: 1 });
    const source = producer(refusing);
    const stateDir = freshDir();
    const first = await startEddy(refusing, input, stateDir);
    const waiting = ["w1", "w2", "w3"];
    try {
      await order(source, input, [
        ...waiting.map((value) => ({ topic: missing, value })),
        { topic: present, value: "p1" },
        { topic: "..", value: "illegal" },
        { topic: "__consumer_offsets", value: "internal" },
        { topic: present, size: TOO_BIG },
      ]);
      // Other topics are not held up.
      assert.deepEqual(await committedValues(refusing, present, 2), sent(["p1"]), first.log.join("\n"));
      for (const egress of ["alo", "eo"]) {
        const report = `eddy: Kafka egress test/${egress}: topic ${missing} does not exist and the broker has not created it`;
        await waitFor(() => first.log.some((line) => line.startsWith(report)), `the report of ${egress}`, first.log);
      }
      // Only what Kafka could never take is a dead letter: twice (each egress) each.
      await waitFor(() => first.deadLetters().length >= 6, "the dead letters", first.log);
      const letters = first.deadLetters();
      assert.equal(letters.length, 6, letters.join("\n"));
      assert.equal(letters.filter((line) => line.includes('topic ".." is not a Kafka topic name')).length, 2);
      assert.equal(letters.filter((line) => line.includes("topic __consumer_offsets is internal to Kafka")).length, 2);
      assert.equal(letters.filter((line) => line.includes("more than max.request.size")).length, 2);
      assert.equal(await exists(client, missing), false, "Eddy did not create the topic");
    } finally {
      await first.runtime.stop();
    }

    // The records are still in the outbox after a restart: they wait again.
    const second = await startEddy(refusing, input, stateDir);
    try {
      for (const egress of ["alo", "eo"]) {
        const report = `eddy: Kafka egress test/${egress}: topic ${missing} does not exist`;
        await waitFor(() => second.log.some((line) => line.startsWith(report)), `${egress}'s report`, second.log);
      }
      await client.createTopics({ topics: [missing], partitions: 2, replicas: 1 });
      // Exactly once each: the at-least-once egress sent nothing twice without a crash either.
      assert.deepEqual(await committedValues(refusing, missing, 6), sent(waiting), second.log.join("\n"));
      for (const egress of ["alo", "eo"]) {
        const line = `eddy: Kafka egress test/${egress}: topic ${missing} exists now; sending the 3 records that waited for it`;
        assert.ok(second.log.includes(line), second.log.join("\n"));
      }
      assert.deepEqual(second.deadLetters(), []);
      assert.deepEqual(
        [...first.deadLetters(), ...second.deadLetters()].filter((line) => line.includes(missing)),
        [],
      );
    } finally {
      await second.runtime.stop();
    }
  });
});

describe("the exactly-once Kafka egress and a topic created after Eddy started", () => {
  it("shows a read_committed consumer every record once across kill -9, before and after the topic appears", {
    timeout: 240_000,
  }, async (t) => {
    // StateFun's exactly-once e2e functions (test/e2e/kafka): e2e/counter counts per key and
    // forwards "<key>:<n>" to the exactly-once egress, topic `out`, which does not exist yet.
    const client = admin(refusing);
    await client.createTopics({ topics: ["invoke"], partitions: 3, replicas: 1 });
    const source = producer(refusing);
    const watcher = new Consumer({ clientId: "watcher", groupId: "watcher", bootstrapBrokers: [refusing.bootstrap] });
    closers.push(() => watcher.close(true));
    const eddy = new EddyProcess({
      moduleYaml: `kind: io.statefun.kafka.v1/ingress
spec:
  id: e2e/in
  address: ${refusing.bootstrap}
  startupPosition:
    type: earliest
  topics:
    - topic: invoke
      valueType: e2e/Invoke
      targets:
        - e2e/counter
---
kind: io.statefun.kafka.v1/egress
spec:
  id: e2e/out
  address: ${refusing.bootstrap}
  deliverySemantic:
    type: exactly-once
    transactionTimeout: 1min
`,
      args: ["dev", "test/e2e/kafka/functions.ts", "--module", "{{MODULE}}", "--state-dir", "{{STATE_DIR}}"],
    });
    const counts = new Map<string, number>();
    const records = (count: number) =>
      Array.from({ length: count }, (_, index) => {
        const key = `k${index % 12}`;
        counts.set(key, (counts.get(key) ?? 0) + 1);
        return { topic: "invoke", key: Buffer.from(key), value: Buffer.from("x") };
      });
    const waitReport = async () => {
      const reports = () => eddy.output.split("\n").filter((line) => line.includes("topic out does not exist")).length;
      const before = reports();
      await waitFor(() => reports() > before, "the report that records wait for topic out");
    };
    await withEddy(eddy, async () => {
      await eddy.start();
      await source.send({ messages: records(500) });
      await waitReport();
      await eddy.kill();
      await eddy.start();
      // Again after the kill: they still wait (in the outbox, none was put in a transaction).
      await waitReport();
      await client.createTopics({ topics: ["out"], partitions: 2, replicas: 1 });
      for (let burst = 0; burst < 4; burst++) await source.send({ messages: records(1000) });
      // A kill while the first transactions into the new topic are written.
      await waitFor(async () => {
        const ends = (await watcher.listOffsets({ topics: ["out"] })).get("out") ?? [];
        return ends.reduce((sum, end) => sum + end, 0n) > 300n;
      }, "records in out");
      await eddy.kill();
      await eddy.start();
      const expected = [...counts].flatMap(([key, count]) =>
        Array.from({ length: count }, (_, index) => `${key}:${index + 1}`),
      );
      const seen = await committedValues(refusing, "out", expected.length);
      t.diagnostic(`${expected.length} records expected, ${seen.length} seen`);
      assert.deepEqual(seen, expected.sort());
      assert.ok(!eddy.output.includes("dead letter"), "no dead letter");
    });
  });
});
