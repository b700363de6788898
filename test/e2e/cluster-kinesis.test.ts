// `eddy run --cluster` with the Kinesis connectors: three streams read by a 2-worker cluster,
// each stream by the worker that runs the partition it is bound to, its shards' positions
// committed with the messages in that partition's changelog; a counting function (served over
// HTTP by this test) sends every record it counts on to a Kinesis egress stream. While records
// are put, one worker is killed with SIGKILL and restarted on its own disk, then the other on
// an empty one, records are put once both run again, and the first leaves gently while they
// flow. At the end every instance has counted exactly the records put for it (read back with
// request-reply), and the egress stream holds every record at least once (the Kinesis egress is
// at-least-once, as StateFun's).
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import {
  GetRecordsCommand,
  GetShardIteratorCommand,
  KinesisClient,
  ListShardsCommand,
  PutRecordsCommand,
} from "@aws-sdk/client-kinesis";
import { createEndpoint, kinesisRecord, serve, statefulFunction, types } from "@eddy/sdk";
import { NodeHttpHandler } from "@smithy/node-http-handler";
import { type KafkaBroker, startKafka } from "../support/kafka-broker.ts";
import { type KinesisTestServer, startKinesis } from "../support/kinesis-server.ts";
import { clusterWorkerProcess, type EddyProcess, endpointAndIngressYaml, waitForExactCounts } from "./smoke/cluster.ts";

const STREAMS = ["cks-a", "cks-b", "cks-c"];
const SHARDS = 2;
const OUT = "cks-out";
const IDS = 30;
/** Records put in all, in rounds while the workers are killed and restarted. */
const ROUNDS = 14;
const PER_ROUND = 90;

/** Counts every record (type cks/Inc) and sends it on to the egress; a string "get" answers the count. */
const counter = statefulFunction({
  typename: "cks/counter",
  state: { count: types.int },
  handle(ctx, msg) {
    if (msg.is(types.string)) {
      ctx.reply(ctx.storage.count ?? 0, types.int);
      return;
    }
    ctx.storage.count = (ctx.storage.count ?? 0) + 1;
    ctx.send(kinesisRecord({ egress: "cks/out", stream: OUT, partitionKey: ctx.self.id, value: msg.bytes }));
  },
});

let broker: KafkaBroker;
let kinesis: KinesisTestServer;
let client: KinesisClient;
let functions: Awaited<ReturnType<typeof serve>>;
const checkpoints = mkdtempSync(join(tmpdir(), "eddy-cks-checkpoints-"));
before(async () => {
  broker = await startKafka();
  kinesis = await startKinesis();
  for (const stream of STREAMS) await kinesis.createStream(stream, SHARDS);
  await kinesis.createStream(OUT, SHARDS);
  client = new KinesisClient({
    endpoint: kinesis.endpoint,
    region: kinesis.region,
    credentials: kinesis.credentials,
    requestHandler: new NodeHttpHandler(),
  });
  functions = await serve(createEndpoint([counter]), { port: 0, host: "127.0.0.1" });
});
after(async () => {
  rmSync(checkpoints, { recursive: true, force: true });
  client?.destroy();
  await functions?.close();
  await kinesis?.stop();
  await broker?.stop();
});

function worker(workerId: string): EddyProcess {
  const aws = `  awsRegion: {type: custom-endpoint, endpoint: "${kinesis.endpoint}", id: ${kinesis.region}}
  awsCredentials: {type: basic, accessKeyId: ${kinesis.credentials.accessKeyId}, secretAccessKey: ${kinesis.credentials.secretAccessKey}}
`;
  return clusterWorkerProcess({
    moduleYaml: `${endpointAndIngressYaml("cks/*", functions.url)}---
kind: io.statefun.kinesis.v1/ingress
spec:
  id: cks/in
${aws}  startupPosition: {type: earliest}
  streams:
${STREAMS.map((stream) => `    - stream: ${stream}\n      valueType: cks/Inc\n      targets: [cks/counter]\n`).join("")}---
kind: io.statefun.kinesis.v1/egress
spec:
  id: cks/out
${aws}`,
    bootstrap: broker.bootstrap,
    cluster: "cks",
    workerId,
    checkpoints,
  });
}

/** Record n goes to instance n mod IDS, on stream n mod 3. */
async function putRound(round: number): Promise<void> {
  for (const [index, stream] of STREAMS.entries()) {
    const records = [];
    for (let offset = 0; offset < PER_ROUND; offset++) {
      const n = round * PER_ROUND + offset;
      if (n % STREAMS.length !== index) continue;
      records.push({ PartitionKey: String(n % IDS), Data: Buffer.from(`inc-${n}`) });
    }
    const answer = await client.send(new PutRecordsCommand({ StreamName: stream, Records: records }));
    assert.equal(answer.FailedRecordCount ?? 0, 0, `Kinesis refused records of ${stream}`);
  }
}

/** Every record's data in `stream`, all shards from their start. */
async function readAll(stream: string): Promise<string[]> {
  const listed = await client.send(new ListShardsCommand({ StreamName: stream }));
  const values: string[] = [];
  for (const shard of listed.Shards ?? []) {
    let iterator = (
      await client.send(
        new GetShardIteratorCommand({ StreamName: stream, ShardId: shard.ShardId, ShardIteratorType: "TRIM_HORIZON" }),
      )
    ).ShardIterator;
    while (iterator !== undefined) {
      const page = await client.send(new GetRecordsCommand({ ShardIterator: iterator, Limit: 10_000 }));
      const records = page.Records ?? [];
      for (const record of records) values.push(Buffer.from(record.Data ?? new Uint8Array()).toString());
      if (records.length === 0) break;
      iterator = page.NextShardIterator;
    }
  }
  return values;
}

describe("eddy run --cluster with the Kinesis connectors", () => {
  it("reads every record once and sends each on at least once, through kill -9 (own disk and empty) and a gentle leave", async () => {
    const w1 = worker("w1");
    const w2 = worker("w2");
    const all = [w1, w2];
    try {
      await w1.start();
      await w2.start();
      let round = 0;
      const put = async (rounds: number) => {
        for (let left = 0; left < rounds; left++) {
          await putRound(round++);
          await sleep(200);
        }
      };
      await put(2);
      // kill -9 while records flow; back on its own disk (within the session timeout: the same partitions).
      const flowing = put(4);
      await sleep(300);
      await w1.kill();
      await w1.start();
      await flowing;
      // kill -9 and a lost disk: its partitions, the shards' positions among their rows, are
      // restored from the changelog, and the other worker reads its streams meanwhile.
      const flowing2 = put(4);
      await sleep(300);
      await w2.kill();
      w2.wipeState();
      await w2.start();
      await flowing2;
      // Both back: the streams whose partitions moved back are read by their owner again, and only by it.
      await put(2);
      // A planned move: the first leaves (SIGTERM) while records flow; the other reads on from its rows.
      const flowing3 = put(2);
      await sleep(200);
      assert.equal(await w1.stop(), 0);
      await flowing3;
      assert.equal(round, ROUNDS);
      await waitForExactCounts([w2], "cks/counter", IDS, ROUNDS * PER_ROUND);
      const wanted = Array.from({ length: ROUNDS * PER_ROUND }, (_, n) => `inc-${n}`);
      let sent: string[] = [];
      const deadline = Date.now() + 30_000;
      for (;;) {
        sent = await readAll(OUT);
        const seen = new Set(sent);
        const missing = wanted.filter((value) => !seen.has(value));
        if (missing.length === 0) break;
        assert.ok(Date.now() < deadline, `the egress stream lacks ${missing.length} records, e.g. ${missing[0]}`);
        await sleep(500);
      }
      assert.ok(
        sent.every((value) => /^inc-\d+$/.test(value) && Number(value.slice(4)) < ROUNDS * PER_ROUND),
        "the egress stream holds only records that were put",
      );
      // Each stream was read, and each worker says which it reads.
      for (const stream of STREAMS) {
        assert.ok(
          all.some((eddy) => eddy.output.includes(`Kinesis ingress cks/in: reading stream ${stream} here (partition `)),
          `no worker said it reads ${stream}`,
        );
      }
    } catch (error) {
      const tails = all.map((eddy, index) => `--- w${index + 1} ---\n${eddy.output.slice(-3000)}`).join("\n");
      throw new Error(`${error instanceof Error ? error.message : String(error)}\n${tails}`);
    } finally {
      for (const eddy of all) await eddy.dispose();
    }
  });
});
