// Catching up a partition's changelog on a real broker when a transaction was left open in it
// (a worker killed in the middle of a commit) and a later owner committed after it began: the
// last stable offset is held down at the open transaction's first record, so a catch-up that
// stopped there would miss the later owner's commit. It must wait for the open transaction to
// end (here it is fenced, as the killed worker's restart does; else the coordinator aborts it
// after its timeout) and then read what was committed after it.
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { Producer } from "@platformatic/kafka";
import { type KafkaBroker, startKafka } from "../../../test/support/kafka-broker.ts";
import { catchUp, localChangelogOffset } from "../src/cluster/changelog.ts";
import { TopicReader } from "../src/cluster/topic-reader.ts";
import { MemoryKV } from "../src/core/kv.ts";
import { applyWrites, type PendingWrite } from "../src/core/overlay-kv.ts";
import type { DurableStore } from "../src/engine/engine.ts";
import { encodeWritesFrame } from "../src/store/writes-frame.ts";

const TOPIC = "eddy.cl.changelog";

let broker: KafkaBroker;
before(async () => {
  broker = await startKafka();
  await broker.createTopic(TOPIC, 1);
});
after(async () => {
  await broker?.stop();
});

function transactionalProducer(transactionalId: string): Producer<Buffer, Buffer, Buffer, Buffer> {
  return new Producer({
    clientId: transactionalId,
    bootstrapBrokers: [broker.bootstrap],
    transactionalId,
    idempotent: true,
    acks: -1,
    autocreateTopics: false,
    producerId: -1n,
    producerEpoch: -1,
  });
}

const frame = (name: string, value: number) =>
  encodeWritesFrame([{ key: ["p", 0, "test-rows", name], value }] satisfies PendingWrite[]);

describe("changelog catch-up", () => {
  it("waits out a transaction left open, and reads what was committed after it began", async () => {
    // The killed worker: a frame sent in a transaction that is never ended.
    const killed = transactionalProducer("eddy.cl.w.killed");
    const open = await killed.beginTransaction();
    await open.send({ messages: [{ topic: TOPIC, partition: 0, value: frame("lost", 1) }] });
    // The partition's next owner commits a frame after it.
    const next = transactionalProducer("eddy.cl.w.next");
    const committed = await next.beginTransaction();
    await committed.send({ messages: [{ topic: TOPIC, partition: 0, value: frame("kept", 2) }] });
    await committed.commit();

    const local = new MemoryKV() as MemoryKV & DurableStore;
    local.commit = async (writes) => applyWrites(local, writes);
    local.close = async () => undefined;
    const reader = new TopicReader({
      connection: { clientId: "eddy-cl-reader", bootstrapBrokers: [broker.bootstrap] },
      topic: TOPIC,
      maxWaitMs: 50,
      fetchBytes: 1 << 20,
    });
    const startedAt = Date.now();
    const catching = catchUp(reader, local, [0], { nowMs: Date.now, deadlineMs: Date.now() + 30_000 });
    // The killed worker restarts: its InitProducerId aborts the open transaction.
    await sleep(1_000);
    const restarted = transactionalProducer("eddy.cl.w.killed");
    await (await restarted.beginTransaction()).cancel();
    const caught = await catching;
    assert.ok(caught.ok, caught.ok ? "" : caught.message);
    assert.equal(local.get(["p", 0, "test-rows", "kept"]), 2, "the later owner's commit was read");
    assert.equal(local.get(["p", 0, "test-rows", "lost"]), undefined, "the aborted frame was not");
    assert.ok(Date.now() - startedAt >= 900, "it waited for the open transaction");
    assert.equal(localChangelogOffset(local, 0), 1);
    await Promise.all([reader.close(), killed.close(true), next.close(), restarted.close()]);
  });
});
