// A commit the engine aborts (a cluster fenced the worker, a rebalance): acceptFromSource
// rejects with EddyError "commit-aborted" (retriable) and nothing of it was taken. The
// Kinesis ingress goes back to the position the store holds and reads on, with one line that
// says so and no "retrying" line of trouble with Kinesis. Against kinesalite, with an engine
// that aborts chosen commits before they take anything, as an aborted commit leaves the store.
// A commit that fails (the engine stops, code "stopping") ends the reading instead, quietly:
// the runtime is stopping and says why itself.
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { KinesisClient, PutRecordsCommand } from "@aws-sdk/client-kinesis";
import { createEndpoint, statefulFunction, types } from "@eddy/sdk";
import { NodeHttpHandler } from "@smithy/node-http-handler";
import { type KinesisTestServer, startKinesis } from "../../../test/support/kinesis-server.ts";
import type { FunctionTypename, KinesisIngressConfig } from "../src/config/types.ts";
import type { KV } from "../src/core/kv.ts";
import type { RejectedRecord } from "../src/core/partition-set.ts";
import type { Envelope } from "../src/core/records.ts";
import { Engine, type SourceAcceptResult } from "../src/engine/engine.ts";
import { EddyError } from "../src/errors.ts";
import { InProcessInvoker } from "../src/invoker/in-process-invoker.ts";
import { KinesisIngress, kinesisIngressSettings } from "../src/io/kinesis/ingress.ts";
import { lineLogger } from "../src/observe/logger.ts";
import { LmdbStore } from "../src/store/lmdb-store.ts";

const WAIT_MS = 15_000;

let kinesis: KinesisTestServer;
const dirs: string[] = [];
before(async () => {
  kinesis = await startKinesis();
});
after(async () => {
  await kinesis?.stop();
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

/** An engine whose commits number `abort` (counting those that carry messages) are aborted before taking anything. */
class AbortingEngine extends Engine {
  abort = new Set<number>();
  #carrying = 0;

  override async acceptFromSource(
    envelopes: readonly Envelope[],
    record: (transaction: KV) => void,
    rejected: readonly RejectedRecord[] = [],
  ): Promise<SourceAcceptResult> {
    if (envelopes.length > 0 && this.abort.has(++this.#carrying)) {
      throw new EddyError("commit-aborted", "the group moved partition 3 (test)", { retriable: true });
    }
    return super.acceptFromSource(envelopes, record, rejected);
  }
}

async function until(condition: () => boolean, what: string): Promise<void> {
  const deadline = Date.now() + WAIT_MS;
  while (!condition()) {
    if (Date.now() > deadline) assert.fail(`timed out waiting until ${what}`);
    await sleep(20);
  }
}

describe("Kinesis ingress and aborted commits", () => {
  it("reads again from the position the store holds: every record once, in order, one line per abort", async () => {
    await kinesis.createStream("aborts", 1);
    const dir = mkdtempSync(join(tmpdir(), "eddy-kinesis-aborts-"));
    dirs.push(dir);
    const store = new LmdbStore({ path: dir });
    let state: string[] = [];
    const collect = statefulFunction({
      typename: "test/collect",
      state: { values: types.json<string[]>("test/Values") },
      handle(ctx, message) {
        const values = [...(ctx.storage.values ?? []), Buffer.from(message.bytes).toString()];
        ctx.storage.values = values;
        state = values;
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
    engine.abort = new Set([1, 3]);
    const config: KinesisIngressConfig = {
      kind: "io.statefun.kinesis.v1/ingress",
      id: "test/aborts",
      region: { type: "custom-endpoint", endpoint: kinesis.endpoint, id: kinesis.region },
      credentials: { type: "basic", ...kinesis.credentials },
      startupPosition: { type: "earliest" },
      streams: [{ stream: "aborts", valueType: "test/Text", targets: ["test/collect" as FunctionTypename] }],
      clientConfigProperties: new Map(),
      source: { file: "module.yaml", line: 1, column: 1, field: "spec.id" },
    };
    const parsed = kinesisIngressSettings(config);
    assert.ok(parsed.ok);
    const logs: string[] = [];
    const fatal: unknown[] = [];
    const ingress = new KinesisIngress({ config, settings: parsed.value, log: lineLogger((line) => logs.push(line)) });
    const writer = new KinesisClient({
      endpoint: kinesis.endpoint,
      region: kinesis.region,
      credentials: kinesis.credentials,
      requestHandler: new NodeHttpHandler(),
    });
    engine.start();
    await ingress.open({ engine, store, onFatal: (error) => fatal.push(error) });
    try {
      const values = Array.from({ length: 9 }, (_, i) => `a${i}`);
      // Three pages, so the aborts fall on the first page and on a later one.
      for (const part of [values.slice(0, 3), values.slice(3, 6), values.slice(6)]) {
        await writer.send(
          new PutRecordsCommand({
            StreamName: "aborts",
            Records: part.map((value) => ({ PartitionKey: "k", Data: Buffer.from(value) })),
          }),
        );
        await until(() => state.includes(part.at(-1) as string), `${part.at(-1)} is read`);
      }
      await sleep(500);
      assert.deepEqual(state, values, "each record once, in order");
      assert.deepEqual(fatal, []);
      const where = "eddy: Kinesis ingress test/aborts: stream aborts shard shardId-000000000000";
      assert.deepEqual(logs, [
        `${where}: a commit was aborted (the group moved partition 3 (test)); reading again from the position the store holds`,
        `${where}: a commit was aborted (the group moved partition 3 (test)); reading again from the position the store holds`,
      ]);
    } finally {
      writer.destroy();
      await ingress.close();
      await engine.stop();
    }
  });

  it("stops reading, without a line, once a commit failed and the engine stops", async () => {
    await kinesis.createStream("fails", 1);
    const dir = mkdtempSync(join(tmpdir(), "eddy-kinesis-fails-"));
    dirs.push(dir);
    const store = new LmdbStore({ path: dir });
    const stops: string[] = [];
    const engine = new Engine({
      store,
      commitTarget: {
        async commit(batch) {
          // The first commit that holds the record's message fails (a full disk, say): the engine stops.
          if (batch.writes.some((write) => JSON.stringify(write.key).includes("test/count"))) {
            throw new Error("the disk is full (test)");
          }
          await store.commit(batch.writes);
          return undefined;
        },
      },
      catalog: {
        functionSettings: (typename) =>
          typename === "test/count"
            ? { maxBatchCount: 100, maxBatchBytes: 1 << 20, backlogLimit: 100, failurePolicy: "dead-letter" }
            : undefined,
        hasEgress: () => false,
      },
      invoker: new InProcessInvoker(
        createEndpoint([
          statefulFunction({
            typename: "test/count",
            state: { count: types.int },
            handle(ctx) {
              ctx.storage.count = (ctx.storage.count ?? 0) + 1;
            },
          }),
        ]),
      ),
      partitionCount: 4,
      onStop: (reason) => stops.push(reason),
    });
    const config: KinesisIngressConfig = {
      kind: "io.statefun.kinesis.v1/ingress",
      id: "test/fails",
      region: { type: "custom-endpoint", endpoint: kinesis.endpoint, id: kinesis.region },
      credentials: { type: "basic", ...kinesis.credentials },
      startupPosition: { type: "earliest" },
      streams: [{ stream: "fails", valueType: "test/Text", targets: ["test/count" as FunctionTypename] }],
      clientConfigProperties: new Map(),
      source: { file: "module.yaml", line: 1, column: 1, field: "spec.id" },
    };
    const parsed = kinesisIngressSettings(config);
    assert.ok(parsed.ok);
    const logs: string[] = [];
    const fatal: unknown[] = [];
    const ingress = new KinesisIngress({ config, settings: parsed.value, log: lineLogger((line) => logs.push(line)) });
    const writer = new KinesisClient({
      endpoint: kinesis.endpoint,
      region: kinesis.region,
      credentials: kinesis.credentials,
      requestHandler: new NodeHttpHandler(),
    });
    engine.start();
    await ingress.open({ engine, store, onFatal: (error) => fatal.push(error) });
    try {
      await writer.send(
        new PutRecordsCommand({ StreamName: "fails", Records: [{ PartitionKey: "k", Data: Buffer.from("one") }] }),
      );
      await until(() => stops.length > 0, "the engine asks to be stopped");
      assert.ok(
        [...store.scan(["io", "kinesis-ingress", "test/fails", "fails"])].length > 0,
        "the shard's first position was committed before: the reader was reading",
      );
      // Long enough for several retries (100 ms doubling) had the reader gone on.
      await sleep(1_500);
      assert.deepEqual(logs, [], "the runtime says why it stops; the ingress adds nothing");
      assert.deepEqual(fatal, []);
      assert.match(stops[0] as string, /the disk is full \(test\)/);
    } finally {
      writer.destroy();
      await ingress.close();
      await engine.stop();
    }
  });
});
