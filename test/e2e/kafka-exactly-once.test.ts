// StateFun's exactly-once e2e test with Kafka (statefun-protocol.md §6.1, the older
// exactly-once-remote variant), against a real Apache Kafka 4.4 broker: records keyed by a
// few ids go to the `invoke` topic; `e2e/counter` counts per key and forwards "<key>:<n>"
// through a function with a random id to an exactly-once Kafka egress (topic `out`). Eddy
// is killed with SIGKILL at random moments while records stream in, and restarted on its
// state directory. Kafka's own console consumer (the Java client, read_committed) must then
// see, for every key, exactly "<key>:1" … "<key>:<records sent with that key>": nothing
// lost, nothing twice, nothing from an aborted transaction.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { Consumer, FetchIsolationLevels, Producer } from "@platformatic/kafka";
import { type KafkaBroker, startKafka } from "../support/kafka-broker.ts";
import { EddyProcess, withEddy } from "./smoke/cluster.ts";
import { Random } from "./smoke/commands.ts";

const KEYS = 24;
const BURSTS = Number(process.env.KAFKA_E2E_BURSTS ?? 2);
const RECORDS_PER_BURST = 5_000;
const KILLS_PER_BURST = 3;
const SEED = Number(process.env.KAFKA_E2E_SEED ?? 7);

function moduleYaml(bootstrap: string): string {
  return `kind: io.statefun.kafka.v1/ingress
spec:
  id: e2e/in
  address: ${bootstrap}
  consumerGroupId: eddy-e2e
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
  address: ${bootstrap}
  deliverySemantic:
    type: exactly-once
    transactionTimeout: 1min
`;
}

describe("exactly-once from Kafka through functions to Kafka, across kill -9", () => {
  it("shows a read_committed consumer every count exactly once", { timeout: 300_000 }, async (t) => {
    const broker = await startKafka();
    t.after(() => broker.stop());
    await broker.createTopic("invoke", 3);
    await broker.createTopic("out", 2);
    const producer = new Producer({ clientId: "e2e-source", bootstrapBrokers: [broker.bootstrap], idempotent: true });
    t.after(() => producer.close());
    const watcher = new Consumer({
      clientId: "e2e-watcher",
      groupId: "e2e-watcher",
      bootstrapBrokers: [broker.bootstrap],
    });
    t.after(() => watcher.close());

    const eddy = new EddyProcess({
      moduleYaml: moduleYaml(broker.bootstrap),
      args: ["dev", "test/e2e/kafka/functions.ts", "--module", "{{MODULE}}", "--state-dir", "{{STATE_DIR}}"],
    });
    await withEddy(eddy, async () => {
      await eddy.start();
      const random = new Random(SEED);
      const sent = new Map<string, number>();
      // Bursts bigger than Eddy drains between two kills: every kill finds records being
      // read, committed and published.
      let published = 0;
      for (let burst = 0; burst < BURSTS; burst++) {
        const messages = Array.from({ length: RECORDS_PER_BURST }, () => {
          const key = `k${random.int(KEYS)}`;
          sent.set(key, (sent.get(key) ?? 0) + 1);
          return { topic: "invoke", key: Buffer.from(key), value: Buffer.from(`burst ${burst}`) };
        });
        for (let start = 0; start < messages.length; start += 1000) {
          await producer.send({ messages: messages.slice(start, start + 1000) });
        }
        // Each kill waits until the egress has written part of the burst (counting aborted and
        // open transactions too), so it lands while records are read, committed and published.
        const fractions = Array.from({ length: KILLS_PER_BURST }, () => 0.1 + random.int(80) / 100).sort();
        for (const fraction of fractions) {
          await waitForWritten(watcher, published + fraction * RECORDS_PER_BURST, 30_000);
          await eddy.kill();
          await eddy.start();
        }
        published += RECORDS_PER_BURST;
      }
      const expected = [...sent].flatMap(([key, count]) =>
        Array.from({ length: count }, (_, index) => `${key}:${index + 1}`),
      );
      const seen = await readUntil(broker, "out", expected.length, 120_000);
      // A last look after the egress had time to send more than it should.
      await sleep(2_000);
      const final = await broker.readCommitted("out", 2_000);
      t.diagnostic(`${expected.length} records expected, ${final.length} seen (${seen} before the last look)`);
      assert.deepEqual(final.map((record) => record.value).sort(), expected.sort());
      for (const record of final) assert.equal(record.key, record.value.split(":")[0]);
    });
  });
});

/** Waits until the `out` topic holds at least `count` records, committed or not (or the time is up). */
async function waitForWritten(watcher: Consumer, count: number, timeoutMs: number): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (Date.now() < until) {
    const offsets = await watcher.listOffsets({
      topics: ["out"],
      isolationLevel: FetchIsolationLevels.READ_UNCOMMITTED,
    });
    const written = (offsets.get("out") ?? []).reduce((sum, offset) => sum + Number(offset), 0);
    if (written >= count) return;
    await sleep(5);
  }
}

/** Reads `topic` read_committed until it holds `count` records (or the deadline); returns how many it held. */
async function readUntil(broker: KafkaBroker, topic: string, count: number, deadlineMs: number): Promise<number> {
  const until = Date.now() + deadlineMs;
  let seen = 0;
  while (Date.now() < until) {
    seen = (await broker.readCommitted(topic, 1_500)).length;
    if (seen >= count) return seen;
  }
  return seen;
}
