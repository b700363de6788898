// StateFun's exactly-once e2e test with Kafka (statefun-protocol.md §6.1, the older
// exactly-once-remote variant), against a real Apache Kafka 4.4 broker: records keyed by a
// few ids go to the `invoke` topic; `e2e/counter` counts per key and forwards "<key>:<n>"
// through a function with a random id to an exactly-once Kafka egress (topic `out`). Eddy
// is killed with SIGKILL at random moments while records stream in, and restarted on its
// state directory. Kafka's own console consumer (the Java client, read_committed) must then
// see, for every key, exactly "<key>:1" … "<key>:<records sent with that key>": nothing
// lost, nothing twice, nothing from an aborted transaction.
//
// The second test is the same with checkpoints every second and --ack-after-checkpoint, and
// every other kill also deletes the state directory, as if the machine were lost: Eddy
// restores the newest checkpoint, so the ingress rewinds to the positions it holds and reads
// those records again, and the egress publishes nothing a checkpoint does not hold yet.
// Without --ack-after-checkpoint (KAFKA_E2E_ACK_AFTER_CHECKPOINT=0) it sees duplicates.
import assert from "node:assert/strict";
import { rmSync } from "node:fs";
import { describe, it, type TestContext } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { Consumer, FetchIsolationLevels, Producer } from "@platformatic/kafka";
import { type KafkaBroker, startKafka } from "../support/kafka-broker.ts";
import { logMessages } from "../support/log-records.ts";
import { EddyProcess, withEddy } from "./smoke/cluster.ts";
import { Random } from "./smoke/commands.ts";

const KEYS = 24;
const BURSTS = Number(process.env.KAFKA_E2E_BURSTS ?? 2);
const RECORDS_PER_BURST = 5_000;
const KILLS_PER_BURST = 3;
/** The disk-loss test sends its records this many at a time, with this pause after each. */
const PACED_CHUNK = 100;
const PACED_PAUSE_MS = 40;
const SEED = Number(process.env.KAFKA_E2E_SEED ?? 7);
/** KAFKA_E2E_ACK_AFTER_CHECKPOINT=0 shows what the disk-loss test guards against: duplicates. */
const ACK_AFTER_CHECKPOINT = process.env.KAFKA_E2E_ACK_AFTER_CHECKPOINT !== "0";

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

interface Run {
  /** Checkpoints, and the state directory deleted on every other kill. */
  readonly diskLoss: boolean;
  readonly seed: number;
}

async function exactlyOnceAcrossKills(t: TestContext, run: Run): Promise<void> {
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

  const checkpoints = run.diskLoss
    ? [
        "--checkpoints",
        "{{DIR}}/checkpoints",
        "--checkpoint-interval",
        "1s",
        ...(ACK_AFTER_CHECKPOINT ? ["--ack-after-checkpoint"] : []),
      ]
    : [];
  const eddy = new EddyProcess({
    moduleYaml: moduleYaml(broker.bootstrap),
    args: [
      "dev",
      "test/e2e/kafka/functions.ts",
      "--module",
      "{{MODULE}}",
      "--state-dir",
      "{{STATE_DIR}}",
      ...checkpoints,
    ],
  });
  await withEddy(eddy, async () => {
    await eddy.start();
    const random = new Random(run.seed);
    const sent = new Map<string, number>();
    const records = (count: number, label: string) =>
      Array.from({ length: count }, () => {
        const key = `k${random.int(KEYS)}`;
        sent.set(key, (sent.get(key) ?? 0) + 1);
        return { topic: "invoke", key: Buffer.from(key), value: Buffer.from(label) };
      });
    let kills = 0;
    let disasters = 0;
    const crash = async () => {
      await eddy.kill();
      kills++;
      if (run.diskLoss && kills % 2 === 1) {
        rmSync(eddy.stateDir, { recursive: true, force: true });
        disasters++;
      }
      await eddy.start();
    };
    if (!run.diskLoss) {
      // Bursts bigger than Eddy drains between two kills: every kill finds records being
      // read, committed and published.
      let published = 0;
      for (let burst = 0; burst < BURSTS; burst++) {
        const messages = records(RECORDS_PER_BURST, `burst ${burst}`);
        for (let start = 0; start < messages.length; start += 1000) {
          await producer.send({ messages: messages.slice(start, start + 1000) });
        }
        // Each kill waits until the egress has written part of the burst (counting aborted and
        // open transactions too), so it lands while records are read, committed and published.
        const fractions = Array.from({ length: KILLS_PER_BURST }, () => 0.1 + random.int(80) / 100).sort();
        for (const fraction of fractions) {
          await waitForWritten(watcher, published + fraction * RECORDS_PER_BURST, 30_000);
          await crash();
        }
        published += RECORDS_PER_BURST;
      }
    } else {
      // Records trickle in the whole time, and each kill strikes within about a second of the
      // last start: Eddy is always busy, and a lost disk takes with it work done since the
      // last checkpoint (the very first one after a start is a second away), work whose
      // results an egress that did not wait for checkpoints would already have published.
      const total = BURSTS * RECORDS_PER_BURST;
      const sending = (async () => {
        for (let start = 0; start < total; start += PACED_CHUNK) {
          await producer.send({ messages: records(Math.min(PACED_CHUNK, total - start), `chunk ${start}`) });
          await sleep(PACED_PAUSE_MS);
        }
      })();
      // The first records out mean a first checkpoint (the egress waits for one).
      await waitForWritten(watcher, 1, 30_000);
      const killTimes = new Random(run.seed + 1000);
      for (let kill = 0; kill < BURSTS * KILLS_PER_BURST; kill++) {
        await sleep(300 + killTimes.int(700));
        await crash();
      }
      await sending;
    }
    const expected = [...sent].flatMap(([key, count]) =>
      Array.from({ length: count }, (_, index) => `${key}:${index + 1}`),
    );
    const seen = await readUntil(broker, "out", expected.length, 120_000);
    // A last look after the egress had time to send more than it should.
    await sleep(2_000);
    const final = await broker.readCommitted("out", 2_000);
    t.diagnostic(
      `${expected.length} records expected, ${final.length} seen (${seen} before the last look); ${kills} kills, ${disasters} with the disk lost`,
    );
    assert.deepEqual(final.map((record) => record.value).sort(), expected.sort());
    for (const record of final) assert.equal(record.key, record.value.split(":")[0]);
    if (run.diskLoss) {
      const lines = logMessages(eddy.output);
      const restores = lines.filter((line) => line.startsWith("restored checkpoint")).length;
      // A disaster before the first checkpoint starts again from nothing, as the first start did.
      const emptyStarts = lines.filter((line) =>
        line.endsWith("holds no checkpoint; starting with empty state"),
      ).length;
      assert.ok(restores > 0, "a lost disk was restored from a checkpoint");
      assert.equal(restores + emptyStarts - 1, disasters, "every start on an empty directory restored what there was");
    }
  });
}

describe("exactly-once from Kafka through functions to Kafka, across kill -9", () => {
  it("shows a read_committed consumer every count exactly once", { timeout: 300_000 }, async (t) => {
    await exactlyOnceAcrossKills(t, { diskLoss: false, seed: SEED });
  });

  it("and again when the disk is lost and Eddy restores from checkpoints", { timeout: 300_000 }, async (t) => {
    await exactlyOnceAcrossKills(t, { diskLoss: true, seed: SEED + 1 });
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
