// The cluster's topics on a broker that limits topic settings, as managed Kafka services do:
// a real broker with a create-topic policy (a Java class compiled here, loaded by the broker's
// JVM) that refuses `index.interval.bytes` everywhere and a `max.message.bytes` above 8 MiB on
// topics of clusters named "strict…". The tuning setting is dropped and said once; a refusal of
// a setting Eddy relies on is one line naming the settings and the way out.
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { Admin, ConfigResourceTypes } from "@platformatic/kafka";
import { type KafkaBroker, requireLibs, startKafka } from "../../../test/support/kafka-broker.ts";
import { ensureClusterTopics } from "../src/cluster/cluster-topics.ts";
import { lineLogger } from "../src/observe/logger.ts";

const POLICY = `import java.util.Map;
import org.apache.kafka.common.errors.PolicyViolationException;
import org.apache.kafka.server.policy.CreateTopicPolicy;

public class ManagedServicePolicy implements CreateTopicPolicy {
  @Override public void configure(Map<String, ?> configs) {}
  @Override public void close() {}
  @Override public void validate(RequestMetadata request) {
    Map<String, String> configs = request.configs();
    if (configs.containsKey("index.interval.bytes")) {
      throw new PolicyViolationException("index.interval.bytes is not editable on this service");
    }
    String max = configs.get("max.message.bytes");
    if (request.topic().contains(".strict") && max != null && Long.parseLong(max) > 8388608L) {
      throw new PolicyViolationException("max.message.bytes may be at most 8388608");
    }
  }
}
`;

let broker: KafkaBroker;
const classes = mkdtempSync(join(tmpdir(), "eddy-topic-policy-"));

before(async () => {
  writeFileSync(join(classes, "ManagedServicePolicy.java"), POLICY);
  execFileSync("javac", ["-d", classes, "-cp", join(requireLibs(), "*"), join(classes, "ManagedServicePolicy.java")]);
  broker = await startKafka({
    properties: { "create.topic.policy.class.name": "ManagedServicePolicy" },
    classpath: [classes],
  });
});

after(async () => {
  await broker?.stop();
  rmSync(classes, { recursive: true, force: true });
});

const connection = () => ({ clientId: "eddy-cluster-topics-policy-test", bootstrapBrokers: [broker.bootstrap] });

async function topicConfig(topic: string, name: string): Promise<string | null | undefined> {
  const admin = new Admin(connection());
  try {
    const [described] = await admin.describeConfigs({
      resources: [{ resourceType: ConfigResourceTypes.TOPIC, resourceName: topic, configurationKeys: [name] }],
    });
    return described?.configs.find((config) => config.name === name)?.value;
  } finally {
    await admin.close();
  }
}

describe("ensureClusterTopics on a broker with a create-topic policy", () => {
  it("creates the topics without the index interval the policy refuses, and says so once per topic", async () => {
    const lines: string[] = [];
    const ensured = await ensureClusterTopics({
      connection: connection(),
      cluster: "managed",
      partitionCount: 4,
      log: lineLogger((line) => lines.push(line)),
    });
    assert.equal(ensured.ok, true, ensured.ok ? "" : ensured.message);
    assert.equal((await broker.describeTopic("eddy.managed.changelog"))?.partitions.length, 4);
    // Kafka's default index interval; the settings Eddy relies on are there.
    assert.equal(await topicConfig("eddy.managed.changelog", "index.interval.bytes"), "4096");
    assert.equal(await topicConfig("eddy.managed.changelog", "max.message.bytes"), String(64 * 1024 * 1024));
    assert.equal(await topicConfig("eddy.managed.inbox", "retention.ms"), "604800000");
    assert.deepEqual(
      lines.map((line) => line.replace(/127\.0\.0\.1:\d+/, "HOST")),
      ["eddy.managed.inbox", "eddy.managed.changelog"].map(
        (topic) =>
          `eddy: Kafka at HOST refused topic ${topic} with index.interval.bytes=${topic.endsWith("inbox") ? 65536 : 1048576} ` +
          "(POLICY_VIOLATION: index.interval.bytes is not editable on this service); creating it without " +
          "(Kafka's default offset index: commits cost the broker more)",
      ),
    );
  });

  it("refuses in one line, naming the settings and the way out, when a setting Eddy relies on is refused", async () => {
    const ensured = await ensureClusterTopics({ connection: connection(), cluster: "strict", partitionCount: 4 });
    assert.equal(ensured.ok, false);
    assert.equal(!ensured.ok && ensured.code, "cluster-topic-create");
    assert.equal(!ensured.ok && ensured.retriable, false);
    const message = !ensured.ok ? ensured.message : "";
    assert.doesNotMatch(message, /\n/);
    assert.match(
      message,
      /^cannot create topic eddy\.strict\.changelog \(4 partitions\) on Kafka at 127\.0\.0\.1:\d+: POLICY_VIOLATION: max\.message\.bytes may be at most 8388608\. Eddy creates it with cleanup\.policy=delete, retention\.ms=-1, max\.message\.bytes=67108864; where the broker allows less, create eddy\.strict\.changelog beforehand with 4 partitions /,
    );
    // The way out works: the topic made beforehand with what the service allows is taken.
    const admin = new Admin(connection());
    try {
      await admin.createTopics({
        topics: ["eddy.strict.changelog"],
        partitions: 4,
        replicas: 1,
        configs: [{ name: "max.message.bytes", value: String(8 * 1024 * 1024) }],
      });
    } finally {
      await admin.close();
    }
    const again = await ensureClusterTopics({ connection: connection(), cluster: "strict", partitionCount: 4 });
    assert.equal(again.ok, true, again.ok ? "" : again.message);
  });
});
