// A commit the engine aborts (a cluster fenced the worker, a rebalance): the `durable` promise
// of admitFromSource rejects with EddyError "commit-aborted" (retriable), and nothing of it,
// nor of the work admitted after it, was taken. The Kafka ingress puts every reader back at the
// position the store holds and reads on, with one line that says so and no "retrying" line of
// trouble with the broker. Against a real broker, with an engine that aborts chosen admissions
// before they take anything (and everything admitted after them until the ingress reads again),
// as an aborted commit leaves the store.
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { createEndpoint, statefulFunction, types } from "@eddy/sdk";
import { Admin, Producer } from "@platformatic/kafka";
import { type KafkaBroker, startKafka } from "../../../test/support/kafka-broker.ts";
import { parseModule } from "../src/config/module.ts";
import type { KafkaIngressConfig } from "../src/config/types.ts";
import type { KV } from "../src/core/kv.ts";
import type { RejectedRecord } from "../src/core/partition-set.ts";
import type { Envelope } from "../src/core/records.ts";
import { Engine } from "../src/engine/engine.ts";
import { EddyError } from "../src/errors.ts";
import { InProcessInvoker } from "../src/invoker/in-process-invoker.ts";
import { KafkaIngress, kafkaIngressSettings } from "../src/io/kafka/ingress.ts";
import { lineLogger } from "../src/observe/logger.ts";
import { LmdbStore } from "../src/store/lmdb-store.ts";

const WAIT_MS = 20_000;

let broker: KafkaBroker;
let producer: Producer;
let admin: Admin;
const dirs: string[] = [];

before(async () => {
  broker = await startKafka();
  producer = new Producer({ clientId: "test-source", bootstrapBrokers: [broker.bootstrap], idempotent: true });
  admin = new Admin({ clientId: "test-admin", bootstrapBrokers: [broker.bootstrap] });
});

after(async () => {
  await producer?.close();
  await admin?.close();
  await broker?.stop();
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

const text = (envelope: Envelope) => Buffer.from(envelope.argument.value).toString();

/**
 * An engine that aborts the admissions whose first record is one of `abortAt`, and every one
 * after it until the ingress brings back a record it aborted (it read again): as an engine does
 * when it undoes a refused commit, nothing of those was taken.
 */
class AbortingEngine extends Engine {
  readonly abortAt = new Set<string>();
  readonly #aborted = new Set<string>();
  #aborting = false;

  override async admitFromSource(
    envelopes: readonly Envelope[],
    record: (transaction: KV) => void,
    rejected: readonly RejectedRecord[] = [],
  ): ReturnType<Engine["admitFromSource"]> {
    const first = envelopes[0] === undefined ? undefined : text(envelopes[0]);
    if (first !== undefined && !this.#aborting && this.abortAt.delete(first)) {
      this.#aborting = true;
      this.#aborted.clear();
    } else if (first !== undefined && this.#aborting && this.#aborted.has(first)) this.#aborting = false;
    if (!this.#aborting || envelopes.length === 0) return super.admitFromSource(envelopes, record, rejected);
    for (const envelope of envelopes) this.#aborted.add(text(envelope));
    const durable = Promise.reject(
      new EddyError("commit-aborted", "the group moved partition 3 (test)", { retriable: true }),
    );
    // As an engine's promise: rejected later, when the ingress awaits it.
    durable.catch(() => undefined);
    return { ok: true, durable };
  }
}

describe("Kafka ingress and aborted commits", () => {
  it("puts every reader back at the position the store holds: every record once, in order, one line per abort", async () => {
    const topic = "aborts";
    await admin.createTopics({ topics: [topic], partitions: 1, replicas: 1 });
    const values = Array.from({ length: 20 }, (_, i) => `r${String(i).padStart(2, "0")}`);
    await producer.send({
      messages: values.map((value) => ({ topic, partition: 0, key: Buffer.from("k"), value: Buffer.from(value) })),
    });

    const yaml = `kind: io.statefun.kafka.v1/ingress
spec:
  id: test/aborts
  address: ${broker.bootstrap}
  startupPosition:
    type: earliest
  properties:
    - max.poll.records: 3
  topics:
    - topic: ${topic}
      valueType: test/Text
      targets:
        - test/collect
`;
    const loaded = parseModule(yaml, "module.yaml");
    if (!loaded.ok) throw new Error(loaded.errors.map((error) => error.format()).join("\n"));
    const config = loaded.module.ingresses[0] as KafkaIngressConfig;
    const settings = kafkaIngressSettings(config);
    assert.ok(settings.ok, settings.ok ? "" : settings.error);

    const dir = mkdtempSync(join(tmpdir(), "eddy-kafka-aborts-"));
    dirs.push(dir);
    const store = new LmdbStore({ path: dir });
    let state: string[] = [];
    const collect = statefulFunction({
      typename: "test/collect",
      state: { values: types.json<string[]>("test/Values") },
      handle(ctx, message) {
        const seen = [...(ctx.storage.values ?? []), Buffer.from(message.bytes).toString()];
        ctx.storage.values = seen;
        state = seen;
      },
    });
    const engine = new AbortingEngine({
      store,
      catalog: {
        functionSettings: (typename) =>
          typename === "test/collect"
            ? { maxBatchCount: 100, maxBatchBytes: 1 << 20, backlogLimit: 100, failurePolicy: "dead-letter" }
            : undefined,
        hasEgress: () => false,
      },
      invoker: new InProcessInvoker(createEndpoint([collect])),
      partitionCount: 4,
    });
    // The first chunk of all (the first fetch), and one in the middle of a later fetch's chunks.
    engine.abortAt.add("r00");
    engine.abortAt.add("r09");
    const logs: string[] = [];
    const fatal: unknown[] = [];
    const ingress = new KafkaIngress({ config, settings: settings.value, log: lineLogger((line) => logs.push(line)) });
    engine.start();
    await ingress.open({ engine, store, onFatal: (error) => fatal.push(error) });
    try {
      const deadline = Date.now() + WAIT_MS;
      while (state.length < values.length && Date.now() < deadline) await sleep(20);
      await sleep(500);
      assert.deepEqual(state, values, "each record once, in order");
      assert.equal(engine.abortAt.size, 0, "both aborts happened");
      assert.deepEqual(fatal, []);
      const aborted = logs.filter((line) => line.includes("a commit was aborted"));
      assert.deepEqual(aborted, [
        "eddy: Kafka ingress test/aborts: a commit was aborted (the group moved partition 3 (test)); reading again from the positions the store holds",
        "eddy: Kafka ingress test/aborts: a commit was aborted (the group moved partition 3 (test)); reading again from the positions the store holds",
      ]);
      assert.deepEqual(
        logs.filter((line) => line.includes("retrying")),
        [],
      );
    } finally {
      await ingress.close();
      await engine.stop();
    }
  });
});
