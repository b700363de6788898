// The Kafka ingress and topics or partitions that appear after Eddy started, against a real
// Apache Kafka 4.4 broker: whatever the startup position, a partition that did not exist when
// the ingress first looked at its topic is read from its first record, also when it appeared
// while Eddy was down; a topic added to the module later still gets the startup position.
// And the fetch-session errors the client can run into (two fetches in flight on one session,
// an epoch left behind by a fetch with a partition error) are handled, not logged.
//
// A topic created after the start is made in the second between two of the ingress's looks
// for it (the test waits for a look, on the Kafka client's diagnostics channel), so that its
// records are there before the ingress sees it: the race of the Kubernetes example, every time.
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { createEndpoint, statefulFunction } from "@eddy/sdk";
import { Admin, baseMetadataChannel, consumerFetchesChannel, Producer } from "@platformatic/kafka";
import { type KafkaBroker, startKafka } from "../../../test/support/kafka-broker.ts";
import { parseModule } from "../src/config/module.ts";
import { type RunningRuntime, startRuntime } from "../src/runtime.ts";

const WAIT_MS = 20_000;
/** The ingress's client id (its default: eddy-<ingress id>). */
const INGRESS_CLIENT_ID = "eddy-test/in";

let broker: KafkaBroker;
let producer: Producer;
let admin: Admin;
const dirs: string[] = [];

before(async () => {
  broker = await startKafka();
  producer = new Producer({ clientId: "test-source", bootstrapBrokers: [broker.bootstrap], idempotent: true });
  admin = new Admin({ clientId: "test-admin", bootstrapBrokers: [broker.bootstrap] });
  // The first group operation of a new broker makes __consumer_offsets (see kafka-ingress.test.ts).
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

after(async () => {
  await producer?.close();
  await admin?.close();
  await broker?.stop();
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

function freshDir(): string {
  const dir = mkdtempSync(join(tmpdir(), "eddy-kafka-new-topics-"));
  dirs.push(dir);
  return join(dir, "state");
}

interface Eddy {
  readonly runtime: RunningRuntime;
  /** Every record value the sink got, in arrival order. */
  readonly seen: string[];
  /** Every line Eddy logged. */
  readonly log: string[];
}

/** Eddy with one Kafka ingress (test/in) on `topics`, every record going to a sink that notes its value. */
async function startEddy(options: {
  topics: readonly string[];
  stateDir: string;
  /** startupPosition's YAML (absent: none, which is latest). */
  startup?: string;
  resetTo?: "earliest" | "latest";
  /** The bootstrap address (default: the broker's). */
  address?: string;
}): Promise<Eddy> {
  const seen: string[] = [];
  const log: string[] = [];
  const sink = statefulFunction({
    typename: "test/sink",
    handle(_ctx, incoming) {
      seen.push(Buffer.from(incoming.bytes).toString());
    },
  });
  const indent = (text: string) =>
    text
      .split("\n")
      .map((line) => `    ${line}`)
      .join("\n");
  const yaml = `kind: io.statefun.kafka.v1/ingress
spec:
  id: test/in
  address: ${options.address ?? broker.bootstrap}
  consumerGroupId: g-${options.topics.join("-")}
${options.startup === undefined ? "" : `  startupPosition:\n${indent(options.startup)}\n`}${options.resetTo === undefined ? "" : `  autoOffsetResetPosition: ${options.resetTo}\n`}  topics:
${options.topics.map((topic) => `    - topic: ${topic}\n      valueType: test/Text\n      targets:\n        - test/sink\n`).join("")}`;
  const loaded = parseModule(yaml, "module.yaml");
  if (!loaded.ok) throw new Error(loaded.errors.map((error) => error.format()).join("\n"));
  const runtime = await startRuntime({
    module: loaded.module,
    stateDir: options.stateDir,
    inProcess: createEndpoint([sink]),
    partitionCount: 4,
    log: (line) => log.push(line),
  });
  return { runtime, seen, log };
}

/** Writes `count` records to each of `partitions` of `topic`, valued "<topic>/<partition>-<n>" from `from` on. */
async function write(topic: string, partitions: readonly number[], count: number, from = 0): Promise<string[]> {
  const messages = partitions.flatMap((partition) =>
    Array.from({ length: count }, (_, index) => ({
      topic,
      partition,
      key: Buffer.from(`k${partition}`),
      value: Buffer.from(`${topic}/${partition}-${from + index}`),
    })),
  );
  await producer.send({ messages });
  return messages.map((message) => message.value.toString());
}

/** Waits until `seen` holds `count` values (or WAIT_MS passed), then a little longer for any that should not come. */
async function collect(seen: string[], count: number): Promise<string[]> {
  const until = Date.now() + WAIT_MS;
  while (seen.length < count && Date.now() < until) await sleep(20);
  await sleep(500);
  return [...seen].sort();
}

async function waitFor(condition: () => boolean, what: string): Promise<void> {
  const until = Date.now() + WAIT_MS;
  while (!condition()) {
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

/** Resolves when the ingress has next asked the cluster for `topic` and heard that there is no such topic. */
function nextMissedLook(topic: string): Promise<void> {
  return new Promise((resolve) => {
    const onError = (message: unknown) => {
      const { client, error } = message as { client?: { clientId?: string }; error?: unknown };
      if (client?.clientId !== INGRESS_CLIENT_ID || !String(error).includes(`Unknown topic ${topic}.`)) return;
      baseMetadataChannel.error.unsubscribe(onError);
      resolve();
    };
    baseMetadataChannel.error.subscribe(onError);
  });
}

/** Creates `topic` right after the ingress last missed it, and writes `count` records to each partition before it looks again. */
async function createBehindTheIngress(topic: string, partitions: number, count: number): Promise<string[]> {
  await nextMissedLook(topic);
  await admin.createTopics({ topics: [topic], partitions, replicas: 1 });
  return write(
    topic,
    Array.from({ length: partitions }, (_, partition) => partition),
    count,
  );
}

describe("Kafka ingress: a topic created after Eddy started", () => {
  it("is read from its first record with no startup position (latest), as the Kubernetes example needs", async () => {
    const topic = "late-default";
    const eddy = await startEddy({ topics: [topic], stateDir: freshDir() });
    try {
      const written = await createBehindTheIngress(topic, 2, 3);
      assert.deepEqual(await collect(eddy.seen, written.length), written.sort(), eddy.log.join("\n"));
      assert.ok(
        eddy.log.includes(
          `eddy: Kafka ingress test/in: topic ${topic} does not exist yet; once it does, it is read from its beginning`,
        ),
        eddy.log.join("\n"),
      );
      // What comes next is read too, once.
      const more = await write(topic, [0], 2, 3);
      assert.deepEqual(await collect(eddy.seen, written.length + more.length), [...written, ...more].sort());
    } finally {
      await eddy.runtime.stop();
    }
  });

  for (const [type, topic, startup] of [
    ["earliest", "late-earliest", "type: earliest"],
    ["group-offsets (the group has no offsets)", "late-group", "type: group-offsets"],
    ["date (in the past)", "late-date", "type: date\ndate: 2020-01-01 00:00:00.000 +0000"],
    // Partition 1 is listed: it starts there. Partition 0 is not: from its beginning.
    ["specific-offsets", "late-specific", "type: specific-offsets\noffsets:\n  - late-specific/1: 2"],
  ] as const) {
    it(`is read from its first record with startup position ${type}`, async () => {
      const eddy = await startEddy({ topics: [topic], stateDir: freshDir(), startup });
      try {
        const written = await createBehindTheIngress(topic, 2, 3);
        const expected = type === "specific-offsets" ? written.filter((value) => !/\/1-[01]$/.test(value)) : written;
        assert.deepEqual(await collect(eddy.seen, expected.length), expected.sort(), eddy.log.join("\n"));
      } finally {
        await eddy.runtime.stop();
      }
    });
  }

  it("is read from its first record when it appeared while Eddy was down", async () => {
    const topic = "late-while-down";
    const stateDir = freshDir();
    const first = await startEddy({ topics: [topic], stateDir });
    await waitFor(() => first.log.some((line) => line.includes(`topic ${topic} does not exist yet`)), "the first look");
    await first.runtime.stop();
    // A second start before the topic exists, then the topic, while Eddy is down again.
    const second = await startEddy({ topics: [topic], stateDir });
    await waitFor(() => second.log.some((line) => line.includes(`topic ${topic} does not exist yet`)), "a look");
    await second.runtime.stop();
    await admin.createTopics({ topics: [topic], partitions: 2, replicas: 1 });
    const written = await write(topic, [0, 1], 3);
    const third = await startEddy({ topics: [topic], stateDir });
    try {
      assert.deepEqual(await collect(third.seen, written.length), written.sort(), third.log.join("\n"));
    } finally {
      await third.runtime.stop();
    }
  });

  it("that is added to the module later gets the startup position, like any topic at its first look", async () => {
    const [old, added] = ["module-old", "module-added"];
    await admin.createTopics({ topics: [old, added], partitions: 1, replicas: 1 });
    const before = await write(added, [0], 2);
    const stateDir = freshDir();
    const first = await startEddy({ topics: [old], stateDir });
    await waitFor(() => first.log.some((line) => line.includes(`starts ${old} at`)), "the start");
    await first.runtime.stop();
    const second = await startEddy({ topics: [old, added], stateDir });
    try {
      await waitFor(() => second.log.some((line) => line.includes(`starts ${added} at 0@2 (latest)`)), "latest");
      const after = await write(added, [0], 1, 2);
      assert.deepEqual(await collect(second.seen, 1), after, `not ${before.join(", ")}`);
    } finally {
      await second.runtime.stop();
    }
  });
});

describe("Kafka ingress: partitions added to a topic", () => {
  it("while Eddy runs, or while it is down, are read from offset 0, whatever was skipped at the start", async () => {
    const topic = "grows";
    await admin.createTopics({ topics: [topic], partitions: 1, replicas: 1 });
    const skipped = await write(topic, [0], 3);
    const stateDir = freshDir();
    const first = await startEddy({ topics: [topic], stateDir, startup: "type: latest" });
    try {
      await waitFor(() => first.log.some((line) => line.includes(`starts ${topic} at 0@3 (latest)`)), "the start");
      await admin.createPartitions({ topics: [{ name: topic, count: 2, assignments: null }] });
      const added = await write(topic, [1], 3);
      assert.deepEqual(await collect(first.seen, added.length), added.sort(), first.log.join("\n"));
    } finally {
      await first.runtime.stop();
    }
    await admin.createPartitions({ topics: [{ name: topic, count: 3, assignments: null }] });
    const addedWhileDown = await write(topic, [2], 3);
    const second = await startEddy({ topics: [topic], stateDir, startup: "type: latest" });
    try {
      assert.deepEqual(await collect(second.seen, addedWhileDown.length), addedWhileDown.sort(), second.log.join("\n"));
      assert.ok(!second.seen.some((value) => skipped.includes(value)));
    } finally {
      await second.runtime.stop();
    }
  });
});

describe("Kafka ingress fetch sessions", () => {
  it("a discovery while a fetch is in flight leaves no fetch-session error (bootstrap address ≠ advertised one)", async () => {
    const topic = "session-steady";
    await admin.createTopics({ topics: [topic], partitions: 1, replicas: 1 });
    // Through "localhost": the ingress's metadata requests go over another connection than
    // its fetches (to the advertised 127.0.0.1), as through a Kubernetes service. (Over the
    // same connection the broker would answer the fetch in flight first.)
    const address = broker.bootstrap.replace("127.0.0.1", "localhost");
    // Every fetch that failed, as the client saw it: the ingress must not even have to retry one.
    const failedFetches: string[] = [];
    const onFetchError = (message: unknown) => failedFetches.push(String((message as { error?: unknown }).error));
    consumerFetchesChannel.error.subscribe(onFetchError);
    const eddy = await startEddy({ topics: [topic], stateDir: freshDir(), address, startup: "type: earliest" });
    try {
      // A record every 300 ms, sooner than a fetch's 500 ms wait: a fetch is always in flight
      // when the ingress looks at its topics again, 10 s after the start.
      const written: string[] = [];
      for (let index = 0; index < 40; index++) {
        written.push(...(await write(topic, [0], 1, index)));
        await sleep(300);
      }
      assert.deepEqual(await collect(eddy.seen, written.length), written.sort());
      const errors = eddy.log.filter((line) => /fetch session|retrying/i.test(line));
      assert.deepEqual(errors, [], eddy.log.join("\n"));
      assert.deepEqual(failedFetches, []);
    } finally {
      consumerFetchesChannel.error.unsubscribe(onFetchError);
      await eddy.runtime.stop();
    }
  });

  it("a fetch after one with a partition error (an offset out of range) leaves no fetch-session error", async () => {
    const [steady, late] = ["oor-steady", "oor-late"];
    await admin.createTopics({ topics: [steady], partitions: 1, replicas: 1 });
    // The late topic's partition is listed at offset 5, which it will not have: out of range,
    // in a fetch of the session the steady topic opened, then reset to earliest.
    const eddy = await startEddy({
      topics: [steady, late],
      stateDir: freshDir(),
      startup: `type: specific-offsets\noffsets:\n  - ${late}/0: 5`,
      resetTo: "earliest",
    });
    try {
      const written = await write(steady, [0], 1);
      await collect(eddy.seen, 1);
      await admin.createTopics({ topics: [late], partitions: 1, replicas: 1 });
      written.push(...(await write(late, [0], 2)));
      assert.deepEqual(await collect(eddy.seen, written.length), written.sort(), eddy.log.join("\n"));
      await waitFor(() => eddy.log.some((line) => line.includes(`offset 5 of ${late}/0 is out of range`)), "the reset");
      // Keep reading a while: the fetches after the reset.
      written.push(...(await write(steady, [0], 2, 1)));
      assert.deepEqual(await collect(eddy.seen, written.length), written.sort());
      assert.deepEqual(
        eddy.log.filter((line) => /fetch session/i.test(line)),
        [],
        eddy.log.join("\n"),
      );
    } finally {
      await eddy.runtime.stop();
    }
  });
});
