// The three-node Kafka cluster the broker-loss soak runs against (test/support/kafka-cluster.ts):
// its topics are replicated on every node, and with one node killed (SIGKILL) an acks=all
// producer and a read_committed consumer carry on; the node rejoins on its data directory.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { Producer } from "@platformatic/kafka";
import { KAFKA_CLUSTER_SIZE, type KafkaCluster, startKafkaCluster } from "../support/kafka-cluster.ts";

const TOPIC = "replicated";
const ISR_TIMEOUT_MS = 30_000;

describe("a real three-node Kafka cluster for tests", () => {
  it("takes acks=all records and serves them with one node killed, and takes the node back", async (t) => {
    const startedAt = performance.now();
    const cluster = await startKafkaCluster();
    t.diagnostic(`startKafkaCluster() took ${Math.round(performance.now() - startedAt)} ms`);
    t.after(() => cluster.stop());
    assert.equal(cluster.bootstrap.split(",").length, KAFKA_CLUSTER_SIZE);

    await cluster.createTopic(TOPIC, 2);
    const everyNode = [1, 2, 3];
    await waitForFullIsr(cluster, everyNode);
    assert.equal(await cluster.describeTopic("absent"), undefined);

    const producer = new Producer({
      clientId: "cluster-self-test",
      bootstrapBrokers: cluster.bootstrap.split(","),
      idempotent: true,
    });
    t.after(() => producer.close());
    const send = (values: readonly string[]) =>
      producer.send({
        messages: values.map((value, index) => ({
          topic: TOPIC,
          partition: index % 2,
          key: Buffer.from(value),
          value: Buffer.from(value),
        })),
      });
    await send(["a", "b"]);
    // Also makes the offsets topic while every node runs: it asks for three replicas.
    assert.deepEqual(values(await cluster.readCommitted(TOPIC, 1_000)), ["a", "b"]);

    // Kill the leader of partition 0: its partitions must be led by a survivor.
    const leaderId = (await cluster.describeTopic(TOPIC))?.[0]?.leaderId;
    assert.ok(leaderId !== null && leaderId !== undefined, "partition 0 has a leader");
    const victim = cluster.nodes[leaderId - 1];
    assert.ok(victim !== undefined && victim.nodeId === leaderId);
    const killedAt = performance.now();
    await victim.kill();
    assert.equal(victim.running, false);
    await send(["c", "d"]);
    t.diagnostic(`the first acks=all send after the kill took ${Math.round(performance.now() - killedAt)} ms`);
    assert.deepEqual(values(await cluster.readCommitted(TOPIC, 1_000)), ["a", "b", "c", "d"]);
    const survivors = everyNode.filter((nodeId) => nodeId !== leaderId);
    for (const partition of (await cluster.describeTopic(TOPIC)) ?? []) {
      assert.ok(survivors.includes(partition.leaderId ?? 0), `partition ${partition.partition} led by a survivor`);
      assert.deepEqual(partition.replicas.toSorted(), everyNode);
    }

    const restartedAt = performance.now();
    await victim.restart();
    t.diagnostic(`restart() after SIGKILL took ${Math.round(performance.now() - restartedAt)} ms`);
    await waitForFullIsr(cluster, everyNode);
    await send(["e", "f"]);
    assert.deepEqual(values(await cluster.readCommitted(TOPIC, 1_000)), ["a", "b", "c", "d", "e", "f"]);
  });
});

function values(records: readonly { value: string }[]): string[] {
  return records.map(({ value }) => value).sort();
}

/** Waits until every partition of TOPIC has all of `nodeIds` in sync (a restarted node catches up first). */
async function waitForFullIsr(cluster: KafkaCluster, nodeIds: readonly number[]): Promise<void> {
  const deadline = Date.now() + ISR_TIMEOUT_MS;
  for (;;) {
    const partitions = (await cluster.describeTopic(TOPIC)) ?? [];
    const full = partitions.length > 0 && partitions.every((p) => p.isr.toSorted().join() === nodeIds.join());
    if (full) return;
    assert.ok(Date.now() < deadline, `ISR never full: ${JSON.stringify(partitions)}`);
    await sleep(250);
  }
}
