// The cluster's internal topics against a real broker: made when missing, accepted when they
// exist with the cluster's partition count, refused in one precise line when they do not, and
// a broker that cannot be reached is refused after a bounded wait, naming the servers.
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { Admin, ConfigResourceTypes } from "@platformatic/kafka";
import { type KafkaBroker, startKafka } from "../../../test/support/kafka-broker.ts";
import { freePorts } from "../../../test/support/ports.ts";
import { clusterTopicNames, ensureClusterTopics } from "../src/cluster/cluster-topics.ts";

let broker: KafkaBroker;

before(async () => {
  broker = await startKafka();
});

after(async () => {
  await broker?.stop();
});

const connection = () => ({ clientId: "eddy-cluster-topics-test", bootstrapBrokers: [broker.bootstrap] });

/** The values of `names` in a topic's configuration, as the broker describes it. */
async function topicConfigs(
  topic: string,
  names: readonly string[],
): Promise<Record<string, string | null | undefined>> {
  const admin = new Admin(connection());
  try {
    const [described] = await admin.describeConfigs({
      resources: [{ resourceType: ConfigResourceTypes.TOPIC, resourceName: topic, configurationKeys: [...names] }],
    });
    return Object.fromEntries((described?.configs ?? []).map((config) => [config.name, config.value]));
  } finally {
    await admin.close();
  }
}

describe("ensureClusterTopics", () => {
  it("creates both topics with the cluster's partition count, and accepts them on the next start", async () => {
    const first = await ensureClusterTopics({ connection: connection(), cluster: "fresh", partitionCount: 8 });
    assert.deepEqual(first, {
      ok: true,
      value: { inbox: "eddy.fresh.inbox", changelog: "eddy.fresh.changelog", group: "eddy.fresh", partitionCount: 8 },
    });
    assert.equal((await broker.describeTopic("eddy.fresh.inbox"))?.partitions.length, 8);
    assert.equal((await broker.describeTopic("eddy.fresh.changelog"))?.partitions.length, 8);
    // The sparser offset index (see cluster-topics.ts) and the retention each topic is made with.
    assert.deepEqual(await topicConfigs("eddy.fresh.inbox", ["index.interval.bytes", "retention.ms"]), {
      "index.interval.bytes": "65536",
      "retention.ms": "604800000",
    });
    assert.deepEqual(await topicConfigs("eddy.fresh.changelog", ["index.interval.bytes", "retention.ms"]), {
      "index.interval.bytes": "1048576",
      "retention.ms": "-1",
    });
    const again = await ensureClusterTopics({ connection: connection(), cluster: "fresh", partitionCount: 8 });
    assert.equal(again.ok, true);
  });

  it("creates the one topic that is missing, with 128 partitions by default", async () => {
    await broker.createTopic("eddy.half.inbox", 128);
    const ensured = await ensureClusterTopics({ connection: connection(), cluster: "half" });
    assert.equal(ensured.ok, true);
    assert.equal((await broker.describeTopic("eddy.half.changelog"))?.partitions.length, 128);
  });

  it("two workers starting together both succeed (one of them hears TOPIC_ALREADY_EXISTS)", async () => {
    const both = await Promise.all([
      ensureClusterTopics({ connection: connection(), cluster: "race", partitionCount: 4 }),
      ensureClusterTopics({ connection: connection(), cluster: "race", partitionCount: 4 }),
    ]);
    assert.deepEqual(
      both.map((result) => result.ok),
      [true, true],
    );
  });

  it("refuses an existing topic with another partition count, in one line naming the topic and both counts", async () => {
    await broker.createTopic("eddy.wrong.inbox", 64);
    const ensured = await ensureClusterTopics({ connection: connection(), cluster: "wrong", partitionCount: 128 });
    assert.equal(ensured.ok, false);
    assert.equal(!ensured.ok && ensured.code, "cluster-topic-partitions");
    assert.equal(!ensured.ok && ensured.retriable, false);
    const message = !ensured.ok ? ensured.message : "";
    assert.match(message, /^topic eddy\.wrong\.inbox has 64 partitions, the cluster has 128: /);
    assert.doesNotMatch(message, /\n/);
  });

  it("refuses a broker it cannot reach after the bounded wait, naming the bootstrap servers", async () => {
    const [port] = await freePorts(1);
    const started = Date.now();
    const ensured = await ensureClusterTopics({
      connection: { clientId: "eddy-cluster-topics-test", bootstrapBrokers: [`127.0.0.1:${port}`] },
      cluster: "nowhere",
      reachTimeoutMs: 1_500,
    });
    const tookMs = Date.now() - started;
    assert.equal(!ensured.ok && ensured.code, "kafka-unreachable");
    assert.equal(!ensured.ok && ensured.retriable, true);
    assert.match(
      !ensured.ok ? ensured.message : "",
      new RegExp(`on Kafka at 127\\.0\\.0\\.1:${port} within 1500 ms: `),
    );
    assert.ok(tookMs >= 1_000 && tookMs < 8_000, `took ${tookMs} ms`);
  });
});

describe("clusterTopicNames", () => {
  it("refuses a name Kafka could not take", () => {
    assert.equal(clusterTopicNames("prod-1.eu").ok, true);
    for (const bad of ["", "a/b", "with space", "..", "x".repeat(201)]) {
      const names = clusterTopicNames(bad);
      assert.equal(!names.ok && names.code, "cluster-name-invalid", bad);
    }
  });
});
