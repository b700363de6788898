// The Kinesis ingress as a cluster worker runs it, in one process against kinesalite: an engine
// that owns some partitions (as a worker does) and a SourceBinding that tells the ingress when
// they change. A stream is read only while the partition it is bound to runs here, its shards'
// positions are rows of that partition, and reading stops when the partition is released and
// goes on from those rows when it comes back, or after a refused commit reset it: every record
// is in the functions' state exactly once.
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
import { parseModule } from "../src/config/module.ts";
import type { KinesisIngressConfig } from "../src/config/types.ts";
import type { FunctionTypename } from "../src/core/address.ts";
import type { FunctionSettings } from "../src/core/partition-core.ts";
import { getRow, inPartition, tables } from "../src/core/schema.ts";
import { Engine } from "../src/engine/engine.ts";
import { InProcessInvoker } from "../src/invoker/in-process-invoker.ts";
import { KinesisIngress, kinesisIngressSettings } from "../src/io/kinesis/ingress.ts";
import { kinesisSourcePartition, SourceBinding } from "../src/io/source-binding.ts";
import { lineLogger } from "../src/observe/logger.ts";
import { LmdbStore } from "../src/store/lmdb-store.ts";

const PARTITIONS = 8;
const STREAM = "bound-orders";
const INGRESS = "kb/in";
const WAIT_MS = 15_000;
const settings: FunctionSettings = {
  maxBatchCount: 100,
  maxBatchBytes: 1 << 20,
  backlogLimit: 1000,
  failurePolicy: "retry",
};

let kinesis: KinesisTestServer;
let client: KinesisClient;
const dirs: string[] = [];

before(async () => {
  kinesis = await startKinesis();
  await kinesis.createStream(STREAM, 2);
  client = new KinesisClient({
    endpoint: kinesis.endpoint,
    region: kinesis.region,
    credentials: kinesis.credentials,
    requestHandler: new NodeHttpHandler(),
  });
});
after(async () => {
  client?.destroy();
  await kinesis?.stop();
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

function ingressConfig(): KinesisIngressConfig {
  const parsed = parseModule(
    `kind: io.statefun.kinesis.v1/ingress
spec:
  id: ${INGRESS}
  awsRegion: {type: custom-endpoint, endpoint: "${kinesis.endpoint}", id: ${kinesis.region}}
  awsCredentials: {type: basic, accessKeyId: ${kinesis.credentials.accessKeyId}, secretAccessKey: ${kinesis.credentials.secretAccessKey}}
  startupPosition: {type: earliest}
  streams:
    - stream: ${STREAM}
      valueType: kb/Text
      targets: [kb/collector]
`,
    "module.yaml",
  );
  if (!parsed.ok) throw new Error(parsed.errors.map((error) => error.format()).join("\n"));
  return parsed.module.ingresses[0] as KinesisIngressConfig;
}

/** Keeps every value it received in its state and shows that state in `seen`: a record taken twice shows twice. */
function collector(seen: Map<string, string[]>) {
  return statefulFunction({
    typename: "kb/collector",
    state: { values: types.json<string[]>("kb/Values") },
    handle(ctx, message) {
      const values = [...(ctx.storage.values ?? []), Buffer.from(message.bytes).toString()];
      ctx.storage.values = values;
      seen.set(ctx.self.id, values);
    },
  });
}

async function put(from: number, count: number, ids: readonly string[]): Promise<void> {
  const records = Array.from({ length: count }, (_, index) => {
    const n = from + index;
    return { PartitionKey: ids[n % ids.length] as string, Data: Buffer.from(`r${n}`) };
  });
  const answer = await client.send(new PutRecordsCommand({ StreamName: STREAM, Records: records }));
  assert.equal(answer.FailedRecordCount ?? 0, 0);
}

const taken = (seen: Map<string, string[]>) => [...seen.values()].flat();

async function until(condition: () => boolean, what: string): Promise<void> {
  const deadline = Date.now() + WAIT_MS;
  while (!condition()) {
    if (Date.now() > deadline) assert.fail(`timed out waiting until ${what}`);
    await sleep(20);
  }
}

describe("the Kinesis ingress bound to a partition", () => {
  it("reads while its partition runs here, stops when it leaves, and goes on from its rows after a move or a reset", async () => {
    const dir = mkdtempSync(join(tmpdir(), "eddy-kinesis-bound-"));
    dirs.push(dir);
    const store = new LmdbStore({ path: dir });
    const seen = new Map<string, string[]>();
    let refuse = 0;
    const engine = new Engine({
      store,
      commitTarget: {
        async commit(batch) {
          if (refuse > 0) {
            refuse--;
            return { ok: false, code: "commit-aborted", message: "the group moved partitions (test)", retriable: true };
          }
          await store.commit(batch.writes);
          return undefined;
        },
      },
      catalog: {
        functionSettings: (typename) => (typename === "kb/collector" ? settings : undefined),
        hasEgress: () => false,
      },
      invoker: new InProcessInvoker(createEndpoint([collector(seen)])),
      partitionCount: PARTITIONS,
      ownedPartitions: [],
    });
    engine.start();
    const bound = kinesisSourcePartition(INGRESS, STREAM, PARTITIONS);
    // The functions' instances stay here throughout: only the stream's partition moves.
    const ids = Array.from({ length: 40 }, (_, index) => `id-${index}`).filter(
      (id) => engine.partitionOf({ typename: "kb/collector" as FunctionTypename, id }) !== bound,
    );
    const others = Array.from({ length: PARTITIONS }, (_, partition) => partition).filter((p) => p !== bound);
    const binding = new SourceBinding(PARTITIONS);
    const logs: string[] = [];
    const config = ingressConfig();
    const settingsParsed = kinesisIngressSettings(config);
    assert.ok(settingsParsed.ok);
    const ingress = new KinesisIngress({
      config,
      settings: settingsParsed.value,
      log: lineLogger((line) => logs.push(line)),
      binding,
    });
    const runAll = () => {
      engine.own([bound, ...others].filter((partition) => engine.sourceRun(partition) === undefined));
      binding.changed([bound, ...others]);
    };
    try {
      engine.own(others);
      binding.changed(others);
      await ingress.open({ engine, store, onFatal: (error) => assert.fail(`fatal: ${String(error)}`) });
      await put(0, 60, ids);
      await sleep(1_000);
      assert.equal(taken(seen).length, 0, "nothing is read while the stream's partition runs elsewhere");
      // The partition comes here: the stream is read from the start (earliest), every record once.
      runAll();
      await until(() => taken(seen).length >= 60, "the first 60 records are taken");
      const position = getRow(
        store,
        inPartition(bound, tables.kinesisSourcePosition.key(INGRESS, STREAM, "shardId-000000000000")),
      );
      assert.ok(position !== undefined, "the shard's position is a row of the stream's partition");
      // It leaves (a planned move): reading stops.
      await engine.flushAndHold();
      engine.release([bound]);
      engine.resumeCommits();
      binding.changed(others);
      await until(
        () => logs.some((line) => line.includes(`stream ${STREAM} stops here (partition ${bound}`)),
        "the ingress says it stopped",
      );
      await put(60, 40, ids);
      await sleep(1_000);
      assert.equal(taken(seen).length, 60, "nothing is read once the partition left");
      // It comes back: reading goes on from the positions in its rows.
      runAll();
      await until(() => taken(seen).length >= 100, "the next 40 records are taken");
      // A refused commit resets the partitions: the reading starts again from what is committed.
      refuse = 1;
      await put(100, 40, ids);
      await until(() => taken(seen).length >= 140, "the records after the reset are taken");
      assert.equal(engine.commitsRefused, 1, "a commit was refused and undone");
      await sleep(1_000);
      const values = taken(seen).sort();
      const expected = Array.from({ length: 140 }, (_, n) => `r${n}`).sort();
      assert.deepEqual(values, expected, "every record in the state exactly once");
      assert.equal(
        logs.filter((line) => line.includes(`reading stream ${STREAM} here (partition ${bound})`)).length,
        2,
        `the ingress said twice that it reads the stream: ${JSON.stringify(logs)}`,
      );
    } finally {
      await ingress.close();
      await engine.stop();
    }
  });
});
