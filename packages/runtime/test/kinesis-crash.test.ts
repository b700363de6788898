// The Kinesis ingress and egress across kill -9, against kinesalite: Eddy runs in a child
// process (this file, started with EDDY_KINESIS_CRASH_CHILD set), reading a two-shard stream
// into a function that keeps every value it received and writes that whole list to the
// Kinesis egress after each message. The child is killed with SIGKILL three times while
// records are written, and started again on the same state directory. Every list that reaches
// the output stream must be a prefix of what was written for its key (a record delivered twice,
// lost or out of order would break that), and each key's longest list must be all of it.
// Lists written twice are fine: the egress is at-least-once.
import assert from "node:assert/strict";
import { type ChildProcess, spawn } from "node:child_process";
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
import { createEndpoint, kinesisRecord, statefulFunction, types } from "@eddy/sdk";
import { NodeHttpHandler } from "@smithy/node-http-handler";
import { type KinesisTestServer, startKinesis } from "../../../test/support/kinesis-server.ts";
import { parseModule } from "../src/config/module.ts";
import { startRuntime } from "../src/runtime.ts";

const CHILD = "EDDY_KINESIS_CRASH_CHILD";
const KEYS = 10;
const RECORDS = 300;
const BATCH = 20;
const BATCH_EVERY_MS = 120;
const KILLS = 3;
const WAIT_MS = 20_000;

interface ChildSettings {
  readonly endpoint: string;
  readonly region: string;
  readonly credentials: { readonly accessKeyId: string; readonly secretAccessKey: string };
  readonly stateDir: string;
}

/** The child: Eddy with the Kinesis ingress and egress, until it is killed. */
async function runChild(settings: ChildSettings): Promise<void> {
  const aws = `  awsRegion: {type: custom-endpoint, endpoint: "${settings.endpoint}", id: ${settings.region}}
  awsCredentials: {type: basic, accessKeyId: ${settings.credentials.accessKeyId}, secretAccessKey: ${settings.credentials.secretAccessKey}}
`;
  const loaded = parseModule(
    `kind: io.statefun.kinesis.v1/ingress
spec:
  id: test/in
${aws}  startupPosition: {type: earliest}
  streams:
    - stream: crash-in
      valueType: test/Text
      targets: [test/keep]
---
kind: io.statefun.kinesis.v1/egress
spec:
  id: test/out
${aws}`,
    "module.yaml",
  );
  if (!loaded.ok) throw new Error(loaded.errors.map((error) => error.format()).join("\n"));
  const keep = statefulFunction({
    typename: "test/keep",
    state: { values: types.json<string[]>("test/Values") },
    handle(ctx, message) {
      const values = [...(ctx.storage.values ?? []), Buffer.from(message.bytes).toString()];
      ctx.storage.values = values;
      ctx.send(
        kinesisRecord({
          egress: "test/out",
          stream: "crash-out",
          partitionKey: ctx.self.id,
          value: JSON.stringify(values),
        }),
      );
    },
  });
  const runtime = await startRuntime({
    module: loaded.module,
    stateDir: settings.stateDir,
    inProcess: createEndpoint([keep]),
    partitionCount: 4,
  });
  process.once("SIGTERM", () => {
    void runtime.stop().then(() => process.exit(0));
  });
  process.stdout.write("started\n");
}

const childSettings = process.env[CHILD];
if (childSettings !== undefined) await runChild(JSON.parse(childSettings) as ChildSettings);
else defineTests();

function defineTests(): void {
  let kinesis: KinesisTestServer;
  let client: KinesisClient;
  let dir = "";
  before(async () => {
    kinesis = await startKinesis();
    client = new KinesisClient({
      endpoint: kinesis.endpoint,
      region: kinesis.region,
      credentials: kinesis.credentials,
      requestHandler: new NodeHttpHandler(),
      maxAttempts: 1,
    });
    dir = mkdtempSync(join(tmpdir(), "eddy-kinesis-crash-"));
  });
  after(async () => {
    client?.destroy();
    await kinesis?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  /** Starts the child and resolves once its runtime runs. */
  async function startChild(output: string[]): Promise<ChildProcess> {
    const settings: ChildSettings = {
      endpoint: kinesis.endpoint,
      region: kinesis.region,
      credentials: kinesis.credentials,
      stateDir: join(dir, "state"),
    };
    const child = spawn(process.execPath, [import.meta.filename], {
      env: { ...process.env, [CHILD]: JSON.stringify(settings) },
      stdio: ["ignore", "pipe", "pipe"],
    });
    child.stderr?.on("data", (chunk: Buffer) => output.push(chunk.toString()));
    await new Promise<void>((resolve, reject) => {
      child.stdout?.on("data", (chunk: Buffer) => {
        if (chunk.toString().includes("started")) resolve();
      });
      child.once("exit", (code, signal) =>
        reject(new Error(`the child exited (${code ?? signal}):\n${output.join("")}`)),
      );
    });
    return child;
  }

  async function kill(child: ChildProcess, signal: NodeJS.Signals): Promise<void> {
    if (child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise((resolve) => child.once("exit", resolve));
    child.kill(signal);
    await exited;
  }

  /** Every list the egress wrote, per key, in the order the output stream holds them. */
  async function outputLists(): Promise<Map<string, string[][]>> {
    const lists = new Map<string, string[][]>();
    const { Shards: shards = [] } = await client.send(new ListShardsCommand({ StreamName: "crash-out" }));
    for (const shard of shards) {
      let iterator = (
        await client.send(
          new GetShardIteratorCommand({
            StreamName: "crash-out",
            ShardId: shard.ShardId as string,
            ShardIteratorType: "TRIM_HORIZON",
          }),
        )
      ).ShardIterator;
      while (iterator !== undefined) {
        const page = await client.send(new GetRecordsCommand({ ShardIterator: iterator }));
        if ((page.Records ?? []).length === 0) break;
        for (const record of page.Records ?? []) {
          const key = record.PartitionKey as string;
          lists.set(key, [...(lists.get(key) ?? []), JSON.parse(Buffer.from(record.Data ?? []).toString())]);
        }
        iterator = page.NextShardIterator;
      }
    }
    return lists;
  }

  describe("Kinesis connectors across kill -9", () => {
    it("a killed Eddy resumes reading where its store says and writes out what it committed: nothing lost, nothing twice", async () => {
      await kinesis.createStream("crash-in", 2);
      await kinesis.createStream("crash-out", 1);
      const expected = new Map<string, string[]>();
      const writing = (async () => {
        for (let from = 0; from < RECORDS; from += BATCH) {
          const batch = Array.from({ length: BATCH }, (_, i) => ({
            key: `u${(from + i) % KEYS}`,
            value: `r${from + i}`,
          }));
          await client.send(
            new PutRecordsCommand({
              StreamName: "crash-in",
              Records: batch.map(({ key, value }) => ({ PartitionKey: key, Data: Buffer.from(value) })),
            }),
          );
          for (const { key, value } of batch) expected.set(key, [...(expected.get(key) ?? []), value]);
          await sleep(BATCH_EVERY_MS);
        }
      })();
      const output: string[] = [];
      for (let kills = 0; kills < KILLS; kills++) {
        const child = await startChild(output);
        await sleep(300 + Math.random() * 500);
        await kill(child, "SIGKILL");
      }
      const last = await startChild(output);
      try {
        await writing;
        const deadline = Date.now() + WAIT_MS;
        let lists = await outputLists();
        const complete = () =>
          [...expected].every(([key, values]) => (lists.get(key) ?? []).some((list) => list.length === values.length));
        while (!complete()) {
          assert.ok(Date.now() < deadline, `not every key's list reached the output:\n${output.join("")}`);
          await sleep(200);
          lists = await outputLists();
        }
        for (const [key, values] of expected) {
          for (const list of lists.get(key) ?? []) {
            assert.deepEqual(
              list,
              values.slice(0, list.length),
              `${key}: a list that is not a prefix of what was written`,
            );
          }
        }
        assert.equal([...expected.values()].flat().length, RECORDS);
      } finally {
        await kill(last, "SIGTERM");
      }
    });
  });
}
