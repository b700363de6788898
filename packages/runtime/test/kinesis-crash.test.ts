// The Kinesis ingress and egress across kill -9, against kinesalite: Eddy runs in a child
// process (this file, started with EDDY_KINESIS_CRASH_CHILD set), reading a two-shard stream
// into a function that keeps every value it received and writes that whole list to the
// Kinesis egress after each message. The child is killed with SIGKILL three times while
// records are written, and started again on the same state directory. Every list that reaches
// the output stream must be a prefix of what was written for its key (a record delivered twice,
// lost or out of order would break that), and each key's longest list must be all of it.
// Lists written twice are fine: the egress is at-least-once.
//
// The second test is the same with checkpoints to a directory every second and
// --ack-after-checkpoint, more kills, each about a second after a start, and every other kill
// also deletes the state directory, as if the machine were lost: Eddy restores the newest
// checkpoint, whose shard positions go with the state it holds, so the ingress rewinds to them
// and reads those records again. The final lists must still be exactly what was written.
import assert from "node:assert/strict";
import { type ChildProcess, spawn } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it, type TestContext } from "node:test";
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
import { logMessages } from "../../../test/support/log-records.ts";
import { openBlobStore } from "../src/checkpoint/blob/open-blob-store.ts";
import { readCatalog } from "../src/checkpoint/catalog.ts";
import { parseModule } from "../src/config/module.ts";
import { startRuntime } from "../src/runtime.ts";

const CHILD = "EDDY_KINESIS_CRASH_CHILD";
const KEYS = 10;
/** Records written at least; writing goes on until the last kill. */
const RECORDS = 300;
const BATCH = 20;
const BATCH_EVERY_MS = 120;
const WAIT_MS = 20_000;
/** The last disaster waits at most this long for a first checkpoint (one is taken every second). */
const CHECKPOINT_WAIT_MS = 10_000;

interface ChildSettings {
  readonly endpoint: string;
  readonly region: string;
  readonly credentials: { readonly accessKeyId: string; readonly secretAccessKey: string };
  readonly stateDir: string;
  readonly input: string;
  readonly output: string;
  /** Checkpoints to this directory every second, with --ack-after-checkpoint. */
  readonly checkpoints?: string;
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
    - stream: ${settings.input}
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
          stream: settings.output,
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
    ...(settings.checkpoints === undefined
      ? {}
      : { checkpoints: { location: settings.checkpoints, intervalMs: 1000, acknowledgeAfterCheckpoint: true } }),
  });
  process.once("SIGTERM", () => {
    void runtime.stop().then(() => process.exit(0));
  });
  process.stdout.write("started\n");
}

const childSettings = process.env[CHILD];
if (childSettings !== undefined) await runChild(JSON.parse(childSettings) as ChildSettings);
else defineTests();

interface Run {
  /** Names this run's streams and directory. */
  readonly name: string;
  /** Checkpoints every second, more kills, and the state directory deleted on every other kill. */
  readonly diskLoss: boolean;
  readonly kills: number;
  /** How long after a start its kill strikes: at least this, plus up to `killAfterMsSpread` more. */
  readonly killAfterMsMin: number;
  readonly killAfterMsSpread: number;
}

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
  async function startChild(settings: ChildSettings, output: string[]): Promise<ChildProcess> {
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

  /** Every list the egress wrote to `stream`, per key, in the order the stream holds them. */
  async function outputLists(stream: string): Promise<Map<string, string[][]>> {
    const lists = new Map<string, string[][]>();
    const { Shards: shards = [] } = await client.send(new ListShardsCommand({ StreamName: stream }));
    for (const shard of shards) {
      let iterator = (
        await client.send(
          new GetShardIteratorCommand({
            StreamName: stream,
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

  /** True once `location` holds a checkpoint. */
  async function holdsCheckpoint(location: string): Promise<boolean> {
    const opened = await openBlobStore(location);
    if (!opened.ok) throw new Error(opened.error);
    try {
      return (await readCatalog(opened.store)).checkpoints.length > 0;
    } finally {
      await opened.store.close();
    }
  }

  /**
   * Writes records while the child is killed `run.kills` times, starts it once more, and checks
   * every list in the output stream is a prefix of what was written and each key's is complete.
   */
  async function acrossKills(t: TestContext, run: Run): Promise<void> {
    const runDir = join(dir, run.name);
    mkdirSync(runDir);
    const settings: ChildSettings = {
      endpoint: kinesis.endpoint,
      region: kinesis.region,
      credentials: kinesis.credentials,
      stateDir: join(runDir, "state"),
      input: `${run.name}-in`,
      output: `${run.name}-out`,
      ...(run.diskLoss ? { checkpoints: join(runDir, "checkpoints") } : {}),
    };
    await kinesis.createStream(settings.input, 2);
    await kinesis.createStream(settings.output, 1);
    const expected = new Map<string, string[]>();
    let written = 0;
    let killing = true;
    const writing = (async () => {
      while (killing || written < RECORDS) {
        const batch = Array.from({ length: BATCH }, (_, i) => ({
          key: `u${(written + i) % KEYS}`,
          value: `r${written + i}`,
        }));
        await client.send(
          new PutRecordsCommand({
            StreamName: settings.input,
            Records: batch.map(({ key, value }) => ({ PartitionKey: key, Data: Buffer.from(value) })),
          }),
        );
        for (const { key, value } of batch) expected.set(key, [...(expected.get(key) ?? []), value]);
        written += BATCH;
        await sleep(BATCH_EVERY_MS);
      }
    })();
    const output: string[] = [];
    let disasters = 0;
    let waitedForCheckpoint = false;
    try {
      for (let kills = 1; kills <= run.kills; kills++) {
        const disaster = run.diskLoss && kills % 2 === 1;
        const child = await startChild(settings, output);
        try {
          await sleep(run.killAfterMsMin + Math.random() * run.killAfterMsSpread);
          // Earlier kills may all strike before a first checkpoint; the last disaster does not, so
          // at least one start restores one.
          const lastDisaster = disaster && kills + 2 > run.kills;
          if (lastDisaster && settings.checkpoints !== undefined) {
            const deadline = Date.now() + CHECKPOINT_WAIT_MS;
            while (!(await holdsCheckpoint(settings.checkpoints))) {
              assert.ok(Date.now() < deadline, `no checkpoint after ${CHECKPOINT_WAIT_MS} ms:\n${output.join("")}`);
              waitedForCheckpoint = true;
              await sleep(100);
            }
          }
        } finally {
          await kill(child, "SIGKILL");
        }
        if (disaster) {
          rmSync(settings.stateDir, { recursive: true, force: true });
          disasters++;
        }
      }
    } finally {
      killing = false;
    }
    const last = await startChild(settings, output);
    try {
      await writing;
      const deadline = Date.now() + WAIT_MS;
      let lists = await outputLists(settings.output);
      const complete = () =>
        [...expected].every(([key, values]) => (lists.get(key) ?? []).some((list) => list.length === values.length));
      while (!complete()) {
        assert.ok(Date.now() < deadline, `not every key's list reached the output:\n${output.join("")}`);
        await sleep(200);
        lists = await outputLists(settings.output);
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
      assert.equal([...expected.values()].flat().length, written);
      const messages = logMessages(output.join(""));
      const restores = messages.filter((message) => message.startsWith("restored checkpoint")).length;
      const emptyStarts = messages.filter((message) =>
        message.endsWith("holds no checkpoint; starting with empty state"),
      ).length;
      t.diagnostic(
        `${written} records written, ${[...lists.values()].flat().length} lists read; ${run.kills} kills, ${disasters} with the disk lost${waitedForCheckpoint ? " (the last after waiting for a checkpoint)" : ""}, ${restores} restores`,
      );
      if (run.diskLoss) {
        assert.ok(restores > 0, `a lost disk was restored from a checkpoint:\n${output.join("")}`);
        // The first start is on an empty directory too; a disaster before the first checkpoint starts from nothing.
        assert.equal(
          restores + emptyStarts,
          disasters + 1,
          "every start on an empty directory restored what there was",
        );
      }
    } finally {
      await kill(last, "SIGTERM");
    }
  }

  describe("Kinesis connectors across kill -9", () => {
    it("a killed Eddy resumes reading where its store says and writes out what it committed: nothing lost, nothing twice", async (t) => {
      await acrossKills(t, { name: "crash", diskLoss: false, kills: 3, killAfterMsMin: 300, killAfterMsSpread: 500 });
    });

    it("and again when the disk is lost: a restored checkpoint rewinds the shards to the positions it holds", async (t) => {
      await acrossKills(t, {
        name: "disk-loss",
        diskLoss: true,
        kills: 4,
        killAfterMsMin: 600,
        killAfterMsSpread: 1000,
      });
    });
  });
}
