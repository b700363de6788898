// The Kinesis connectors when Kinesis answers with errors, against kinesalite with errors
// injected into the client's calls (kinesalite never throttles and its iterators expire only
// after 5 minutes): the ingress takes a fresh iterator from the stored position after an
// expired iterator, throttling or a network error, and loses or repeats nothing; the egress
// sends again only the entries PutRecords failed, retries a failed call, and finds the one
// record of a batch Kinesis refuses as invalid, which becomes a dead letter.
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import {
  ExpiredIteratorException,
  GetRecordsCommand,
  GetShardIteratorCommand,
  InternalFailureException,
  InvalidArgumentException,
  KinesisClient,
  ProvisionedThroughputExceededException,
  PutRecordsCommand,
  type PutRecordsCommandOutput,
} from "@aws-sdk/client-kinesis";
import { type AnyStatefulFunction, createEndpoint, kinesisRecord, statefulFunction, types } from "@eddy/sdk";
import { NodeHttpHandler } from "@smithy/node-http-handler";
import { type KinesisTestServer, startKinesis } from "../../../test/support/kinesis-server.ts";
import type { FunctionTypename, KinesisEgressConfig, KinesisIngressConfig } from "../src/config/types.ts";
import type { FunctionSettings } from "../src/core/partition-core.ts";
import type { EgressConnector } from "../src/engine/engine.ts";
import { Engine } from "../src/engine/engine.ts";
import { InProcessInvoker } from "../src/invoker/in-process-invoker.ts";
import { KinesisEgress, kinesisEgressSettings } from "../src/io/kinesis/egress.ts";
import { KinesisIngress, kinesisIngressSettings } from "../src/io/kinesis/ingress.ts";
import { lineLogger } from "../src/observe/logger.ts";
import { LmdbStore } from "../src/store/lmdb-store.ts";

const WAIT_MS = 10_000;

let kinesis: KinesisTestServer;
const dirs: string[] = [];
before(async () => {
  kinesis = await startKinesis();
});
after(async () => {
  await kinesis?.stop();
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

/** A client of the test server whose calls go through `intercept` first. */
function interceptedClient(
  intercept: (command: { input: unknown }, send: (command: never) => Promise<unknown>) => Promise<unknown>,
): KinesisClient {
  const client = new KinesisClient({
    endpoint: kinesis.endpoint,
    region: kinesis.region,
    credentials: kinesis.credentials,
    requestHandler: new NodeHttpHandler(),
    maxAttempts: 1,
  });
  const send = client.send.bind(client) as (command: never, options?: unknown) => Promise<unknown>;
  client.send = ((command: never, options?: unknown) =>
    intercept(command, (passed) => send(passed, options))) as typeof client.send;
  return client;
}

const metadata = { $metadata: {} };
/** No fault injected here is a bug: a connector that gives up fails the test. */
const failOnFatal = (error: unknown) => assert.fail(`the connector stopped: ${String(error)}`);
const settings: FunctionSettings = {
  maxBatchCount: 1000,
  maxBatchBytes: 4 << 20,
  backlogLimit: 1000,
  failurePolicy: "dead-letter",
};

function startEngine(functions: AnyStatefulFunction[], egress: EgressConnector[] = []) {
  const dir = mkdtempSync(join(tmpdir(), "eddy-kinesis-faults-"));
  dirs.push(dir);
  const store = new LmdbStore({ path: dir });
  const typenames = new Set<string>(functions.map((fn) => fn.typename));
  const deadLetters: string[] = [];
  const engine = new Engine({
    store,
    catalog: {
      functionSettings: (typename: FunctionTypename) => (typenames.has(typename) ? settings : undefined),
      hasEgress: (id) => egress.some((connector) => connector.egressIds.includes(id)),
    },
    invoker: new InProcessInvoker(createEndpoint(functions)),
    partitionCount: 4,
    egress,
    onDeadLetter: (letter) => deadLetters.push(letter.reason),
  });
  return { engine, store, deadLetters };
}

const aws = () => ({
  region: { type: "custom-endpoint" as const, endpoint: kinesis.endpoint, id: kinesis.region },
  credentials: { type: "basic" as const, ...kinesis.credentials },
});

async function until(condition: () => boolean, what: string): Promise<void> {
  const deadline = Date.now() + WAIT_MS;
  while (!condition()) {
    if (Date.now() > deadline) assert.fail(`timed out waiting until ${what}`);
    await sleep(20);
  }
}

describe("Kinesis ingress under errors", () => {
  it("after an expired iterator, throttling or a network error it reads on from the stored position: nothing lost, nothing twice", async () => {
    await kinesis.createStream("faults", 1);
    const reads: string[] = [];
    let getRecordsCalls = 0;
    let iterators = 0;
    const client = interceptedClient(async (command, send) => {
      if (command instanceof GetShardIteratorCommand) iterators++;
      if (command instanceof GetRecordsCommand) {
        getRecordsCalls++;
        if (getRecordsCalls === 1) throw new ExpiredIteratorException({ message: "Iterator expired", ...metadata });
        if (getRecordsCalls === 4) {
          throw new ProvisionedThroughputExceededException({ message: "Rate exceeded", ...metadata });
        }
        if (getRecordsCalls === 6) throw Object.assign(new Error("socket hang up"), { code: "ECONNRESET" });
        const answer = (await send(command as never)) as { Records?: unknown[] };
        reads.push(`${getRecordsCalls}:${answer.Records?.length ?? 0}`);
        return answer;
      }
      return send(command as never);
    });
    const seen = new Map<string, string[]>();
    const collect = statefulFunction({
      typename: "test/collect",
      state: { values: types.json<string[]>("test/Values") },
      handle(ctx, message) {
        const values = [...(ctx.storage.values ?? []), Buffer.from(message.bytes).toString()];
        ctx.storage.values = values;
        seen.set(ctx.self.id, values);
      },
    });
    const { engine, store } = startEngine([collect]);
    const config: KinesisIngressConfig = {
      kind: "io.statefun.kinesis.v1/ingress",
      id: "test/faults",
      ...aws(),
      startupPosition: { type: "earliest" },
      streams: [{ stream: "faults", valueType: "test/Text", targets: ["test/collect" as FunctionTypename] }],
      clientConfigProperties: new Map(),
      source: { file: "module.yaml", line: 1, column: 1, field: "spec.id" },
    };
    const parsed = kinesisIngressSettings(config);
    assert.ok(parsed.ok);
    const logs: string[] = [];
    const ingress = new KinesisIngress({
      config,
      settings: parsed.value,
      log: lineLogger((line) => logs.push(line)),
      client,
    });
    engine.start();
    await ingress.open({ engine, store, onFatal: failOnFatal });
    const writer = new KinesisClient({
      endpoint: kinesis.endpoint,
      region: kinesis.region,
      credentials: kinesis.credentials,
      requestHandler: new NodeHttpHandler(),
    });
    try {
      const values = Array.from({ length: 12 }, (_, i) => `d${i}`);
      // Written in three parts while the ingress reads, so the failures fall between records.
      for (const part of [values.slice(0, 4), values.slice(4, 8), values.slice(8)]) {
        await writer.send(
          new PutRecordsCommand({
            StreamName: "faults",
            Records: part.map((value) => ({ PartitionKey: "f", Data: Buffer.from(value) })),
          }),
        );
        await until(() => (seen.get("f") ?? []).includes(part.at(-1) as string), `${part.at(-1)} is read`);
      }
      await until(() => getRecordsCalls > 8, "a few more reads");
      assert.deepEqual(seen.get("f"), values);
      assert.ok(iterators >= 4, `a fresh iterator after each of the 3 failures (${iterators} taken)`);
      assert.deepEqual(logs, [
        "eddy: Kinesis ingress test/faults: stream faults shard shardId-000000000000: ECONNRESET: socket hang up; retrying",
        "eddy: Kinesis ingress test/faults: stream faults shard shardId-000000000000 reads again",
      ]);
    } finally {
      writer.destroy();
      await ingress.close();
      await engine.stop();
    }
  });
});

describe("Kinesis egress under errors", () => {
  function egressConfig(maxOutstandingRecords: number): KinesisEgressConfig {
    return {
      kind: "io.statefun.kinesis.v1/egress",
      id: "test/out",
      ...aws(),
      maxOutstandingRecords,
      clientConfigProperties: new Map(),
      source: { file: "module.yaml", line: 1, column: 1, field: "spec.id" },
    };
  }

  const emit = statefulFunction({
    typename: "test/emit",
    handle(ctx, message) {
      const value = Buffer.from(message.bytes).toString();
      ctx.send(kinesisRecord({ egress: "test/out", stream: "partial", partitionKey: value, value }));
    },
  });

  async function readAll(stream: string): Promise<string[]> {
    const reader = new KinesisClient({
      endpoint: kinesis.endpoint,
      region: kinesis.region,
      credentials: kinesis.credentials,
      requestHandler: new NodeHttpHandler(),
    });
    try {
      const { ShardIterator } = await reader.send(
        new GetShardIteratorCommand({
          StreamName: stream,
          ShardId: "shardId-000000000000",
          ShardIteratorType: "TRIM_HORIZON",
        }),
      );
      const page = await reader.send(new GetRecordsCommand({ ShardIterator }));
      return (page.Records ?? []).map((record) => Buffer.from(record.Data ?? []).toString());
    } finally {
      reader.destroy();
    }
  }

  it("sends again only the entries PutRecords failed, retries a failed call, and dead-letters the one record Kinesis refuses", async () => {
    await kinesis.createStream("partial", 1);
    const calls: string[] = [];
    const client = interceptedClient(async (command, send) => {
      if (!(command instanceof PutRecordsCommand)) return send(command as never);
      const entries = command.input.Records ?? [];
      const values = entries.map((entry) => Buffer.from(entry.Data ?? []).toString());
      calls.push(values.join(","));
      if (values.includes("poison")) {
        throw new InvalidArgumentException({ message: "1 validation error detected", ...metadata });
      }
      if (calls.length === 2) throw new InternalFailureException({ message: "Internal service failure", ...metadata });
      if (calls.length > 3) return send(command as never);
      // The first and third calls: every second entry is throttled.
      const taken = entries.filter((_, index) => index % 2 === 0);
      const answer = (await send(
        new PutRecordsCommand({ StreamName: command.input.StreamName, Records: taken }) as never,
      )) as PutRecordsCommandOutput;
      const results = answer.Records ?? [];
      return {
        ...answer,
        FailedRecordCount: entries.length - taken.length,
        Records: entries.map((_, index) =>
          index % 2 === 0
            ? results[index / 2]
            : { ErrorCode: "ProvisionedThroughputExceededException", ErrorMessage: "Rate exceeded for shard" },
        ),
      };
    });
    const config = egressConfig(4);
    const parsed = kinesisEgressSettings(config);
    assert.ok(parsed.ok);
    const logs: string[] = [];
    const egress = new KinesisEgress({
      config,
      settings: parsed.value,
      log: lineLogger((line) => logs.push(line)),
      client,
    });
    const { engine, store, deadLetters } = startEngine([emit], [egress]);
    await egress.open({ engine, store, onFatal: failOnFatal });
    engine.start();
    try {
      const values = ["v0", "v1", "v2", "v3", "v4", "poison", "v6"];
      for (const value of values) {
        const accepted = await engine.accept({
          target: { typename: "test/emit" as FunctionTypename, id: value },
          argument: { typename: "test/Text", hasValue: true, value: Buffer.from(value) },
        });
        assert.ok(accepted.ok);
      }
      await until(() => deadLetters.length === 1, "the poison record is a dead letter");
      const deadline = Date.now() + WAIT_MS;
      while ((await readAll("partial")).length < values.length - 1) {
        assert.ok(Date.now() < deadline, "the other records did not all reach the stream");
        await sleep(50);
      }
      await sleep(300);
      const written = await readAll("partial");
      assert.deepEqual([...written].sort(), values.filter((value) => value !== "poison").sort(), "each once");
      assert.deepEqual(deadLetters, [
        "egress test/out refused the message: Kinesis refused the record: InvalidArgumentException: 1 validation error detected",
      ]);
      // At most 4 per call (maxOutstandingRecords); after the throttled and failed calls, the
      // refused batch is sent one record per call until the poison is found.
      assert.ok(
        calls.every((call) => call.split(",").length <= 4),
        calls.join(" | "),
      );
      assert.ok(calls.includes("poison"), calls.join(" | "));
      assert.deepEqual(
        logs.filter((line) => !line.includes("ignores")),
        [
          "eddy: Kinesis egress test/out: PutRecords to partial: InternalFailureException: Internal service failure; retrying",
          "eddy: Kinesis egress test/out publishes again",
        ],
      );
    } finally {
      await egress.close();
      await engine.stop();
    }
  });
});
