// The Kinesis ingress and egress against a real Kinesis-compatible server (kinesalite), with
// Eddy running in this process and its functions in-process: every shard read and a restart
// resuming after what the store holds (nothing lost, nothing twice, checked against each
// function's durable state), the startup positions, a stream that appears after the start,
// split and merged shards, KPL aggregated records (also resuming inside one), dead letters
// for records that cannot be routed, and the egress writing records that read back from the
// stream, with a dead letter for each record Kinesis could never take.
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import {
  GetRecordsCommand,
  GetShardIteratorCommand,
  KinesisClient,
  ListShardsCommand,
  MergeShardsCommand,
  PutRecordsCommand,
  SplitShardCommand,
} from "@aws-sdk/client-kinesis";
import { createEndpoint, egressMessage, kinesisRecord, statefulFunction, types } from "@eddy/sdk";
import { NodeHttpHandler } from "@smithy/node-http-handler";
import { type KinesisTestServer, startKinesis } from "../../../test/support/kinesis-server.ts";
import { parseModule } from "../src/config/module.ts";
import { listDeadLetters } from "../src/dead-letters.ts";
import { AGGREGATED_MAGIC } from "../src/io/kinesis/aggregated-records.ts";
import { positionKey } from "../src/io/kinesis/ingress.ts";
import { type RunningRuntime, StartupError, startRuntime } from "../src/runtime.ts";
import { LoggedStore } from "../src/store/logged-store.ts";

const WAIT_MS = 10_000;

let kinesis: KinesisTestServer;
let client: KinesisClient;
const dirs: string[] = [];

before(async () => {
  kinesis = await startKinesis();
  client = new KinesisClient({
    endpoint: kinesis.endpoint,
    region: kinesis.region,
    credentials: kinesis.credentials,
    requestHandler: new NodeHttpHandler(),
    maxAttempts: 1,
  });
});
after(async () => {
  client?.destroy();
  await kinesis?.stop();
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

function freshDir(): string {
  const dir = mkdtempSync(join(tmpdir(), "eddy-kinesis-"));
  dirs.push(dir);
  return join(dir, "state");
}

/** awsRegion and awsCredentials for the test server, as a module file writes them. */
const aws = () => `  awsRegion: {type: custom-endpoint, endpoint: "${kinesis.endpoint}", id: ${kinesis.region}}
  awsCredentials: {type: basic, accessKeyId: ${kinesis.credentials.accessKeyId}, secretAccessKey: ${kinesis.credentials.secretAccessKey}}
`;

function ingressYaml(id: string, stream: string, target: string, startup = "{type: earliest}"): string {
  return `kind: io.statefun.kinesis.v1/ingress
spec:
  id: ${id}
${aws()}  startupPosition: ${startup}
  streams:
    - stream: ${stream}
      valueType: test/Text
      targets: [${target}]
`;
}

/**
 * A function that keeps every value it received in its state, and shows that state in
 * `seen` (id → values) after each message: `seen` is what the store holds, so a record
 * delivered twice shows as a value twice, whatever invocations were repeated.
 */
function collector(typename: string, seen: Map<string, string[]>) {
  return statefulFunction({
    typename,
    state: { values: types.json<string[]>("test/Values") },
    handle(ctx, message) {
      const values = [...(ctx.storage.values ?? []), Buffer.from(message.bytes).toString()];
      ctx.storage.values = values;
      seen.set(ctx.self.id, values);
    },
  });
}

interface Eddy {
  readonly runtime: RunningRuntime;
  readonly logs: string[];
}

async function startEddy(
  stateDir: string,
  documents: readonly string[],
  functions: Parameters<typeof createEndpoint>[0],
): Promise<Eddy> {
  const loaded = parseModule(documents.join("---\n"), "module.yaml");
  if (!loaded.ok) throw new Error(loaded.errors.map((error) => error.format()).join("\n"));
  const logs: string[] = [];
  const runtime = await startRuntime({
    module: loaded.module,
    stateDir,
    inProcess: createEndpoint(functions),
    partitionCount: 4,
    log: (line) => logs.push(line),
  });
  return { runtime, logs };
}

async function until(condition: () => boolean, what: string): Promise<void> {
  const deadline = Date.now() + WAIT_MS;
  while (!condition()) {
    if (Date.now() > deadline) assert.fail(`timed out waiting until ${what}`);
    await sleep(20);
  }
}

const total = (seen: Map<string, string[]>) => [...seen.values()].reduce((sum, values) => sum + values.length, 0);

interface Put {
  readonly key: string;
  readonly data: string | Uint8Array;
  readonly explicitHashKey?: string;
}

/** PutRecords, all or fail; the sequence numbers in order. */
async function put(stream: string, records: readonly Put[]): Promise<string[]> {
  const answer = await client.send(
    new PutRecordsCommand({
      StreamName: stream,
      Records: records.map(({ key, data, explicitHashKey }) => ({
        PartitionKey: key,
        Data: typeof data === "string" ? Buffer.from(data) : data,
        ...(explicitHashKey === undefined ? {} : { ExplicitHashKey: explicitHashKey }),
      })),
    }),
  );
  assert.equal(answer.FailedRecordCount, 0);
  return (answer.Records ?? []).map((record) => record.SequenceNumber as string);
}

/** Every record of every shard of `stream`, from the start: shard id → [partition key, data]. */
async function readStream(stream: string): Promise<Map<string, [string, string][]>> {
  const { Shards: shards = [] } = await client.send(new ListShardsCommand({ StreamName: stream }));
  const result = new Map<string, [string, string][]>();
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
    const records: [string, string][] = [];
    while (iterator !== undefined) {
      const page = await client.send(new GetRecordsCommand({ ShardIterator: iterator }));
      if ((page.Records ?? []).length === 0) break;
      for (const record of page.Records ?? []) {
        records.push([record.PartitionKey as string, Buffer.from(record.Data ?? []).toString()]);
      }
      iterator = page.NextShardIterator;
    }
    result.set(shard.ShardId as string, records);
  }
  return result;
}

/** The test's own KPL encoder: an AggregatedRecord of `records`; a record may name a partition key index the table lacks. */
function aggregate(records: readonly { key: string | number; data: string }[]): Uint8Array {
  const varint = (value: number) => {
    const bytes: number[] = [];
    for (let rest = value; ; rest = Math.floor(rest / 128)) {
      if (rest < 128) return [...bytes, rest];
      bytes.push((rest % 128) | 0x80);
    }
  };
  const field = (number: number, content: readonly number[]) => [number * 8 + 2, ...varint(content.length), ...content];
  const keys = [...new Set(records.flatMap(({ key }) => (typeof key === "string" ? [key] : [])))];
  const body = Uint8Array.from([
    ...keys.flatMap((key) => field(1, [...Buffer.from(key)])),
    ...records.flatMap(({ key, data }) =>
      field(3, [
        0x08,
        ...varint(typeof key === "string" ? keys.indexOf(key) : key),
        ...field(3, [...Buffer.from(data)]),
      ]),
    ),
  ]);
  return Buffer.concat([AGGREGATED_MAGIC, body, createHash("md5").update(body).digest()]);
}

describe("Kinesis ingress", () => {
  it("reads every shard, and a restart resumes after what the store holds: nothing lost, nothing twice", async () => {
    await kinesis.createStream("resume", 2);
    const records = (from: number, to: number) =>
      Array.from({ length: to - from }, (_, i) => ({ key: `u${(from + i) % 5}`, data: `r${from + i}` }));
    await put("resume", records(0, 30));
    const stateDir = freshDir();
    const seen = new Map<string, string[]>();
    const module = [ingressYaml("test/resume", "resume", "test/collect")];
    const first = await startEddy(stateDir, module, [collector("test/collect", seen)]);
    await until(() => total(seen) === 30, "the first 30 records are in the functions' state");
    await first.runtime.stop();

    await put("resume", records(30, 50));
    const second = await startEddy(stateDir, module, [collector("test/collect", seen)]);
    try {
      await put("resume", records(50, 60));
      await until(() => total(seen) >= 60, "all 60 records are in the functions' state");
      // A few more reads of every shard: anything delivered twice would show now.
      await sleep(600);
      for (let key = 0; key < 5; key++) {
        const expected = records(0, 60)
          .filter((record) => record.key === `u${key}`)
          .map((record) => record.data);
        assert.deepEqual(seen.get(`u${key}`), expected, `u${key}: every record once, in order`);
      }
      assert.deepEqual(second.logs, []);
    } finally {
      await second.runtime.stop();
    }
  });

  it("latest starts at the start, date at the date; a stream that appears later is read from its start", async () => {
    await kinesis.createStream("startup", 1);
    await put("startup", [
      { key: "k", data: "a0" },
      { key: "k", data: "a1" },
    ]);
    await sleep(20);
    const dateMs = Date.now();
    await sleep(20);
    await put("startup", [
      { key: "k", data: "b0" },
      { key: "k", data: "b1" },
    ]);
    const date = new Date(dateMs).toISOString().replace("T", " ").replace("Z", " +0000");
    const latest = new Map<string, string[]>();
    const dated = new Map<string, string[]>();
    const appeared = new Map<string, string[]>();
    const eddy = await startEddy(
      freshDir(),
      [
        ingressYaml("test/latest", "startup", "test/latest", "{type: latest}"),
        ingressYaml("test/dated", "startup", "test/dated", `{type: date, date: "${date}"}`),
        ingressYaml("test/appears", "appears", "test/appears", "{type: latest}"),
      ],
      [collector("test/latest", latest), collector("test/dated", dated), collector("test/appears", appeared)],
    );
    try {
      // Probes until one arrives: from then on, `latest` reads.
      for (let probe = 0; !latest.has("probe"); probe++) {
        assert.ok(probe < 50, "no probe reached the latest ingress");
        await put("startup", [{ key: "probe", data: `p${probe}` }]);
        await sleep(100);
      }
      await put("startup", [
        { key: "k", data: "c0" },
        { key: "k", data: "c1" },
      ]);
      await until(() => latest.get("k")?.length === 2, "the latest ingress read c0 and c1");
      await until(() => dated.get("k")?.length === 4, "the dated ingress read b0 to c1");
      assert.deepEqual(latest.get("k"), ["c0", "c1"]);
      assert.deepEqual(dated.get("k"), ["b0", "b1", "c0", "c1"]);

      await until(
        () => eddy.logs.some((line) => line.includes("cannot list the shards of stream appears")),
        "the missing stream is reported",
      );
      await kinesis.createStream("appears", 1);
      await put("appears", [
        { key: "n", data: "first" },
        { key: "n", data: "second" },
      ]);
      await until(() => appeared.get("n")?.length === 2, "the stream that appeared is read");
      assert.deepEqual(appeared.get("n"), ["first", "second"]);
    } finally {
      await eddy.runtime.stop();
    }
  });

  it("takes aggregated records apart; a record that cannot be routed is a dead letter naming stream, shard and sequence number", async () => {
    await kinesis.createStream("mixed", 1);
    const [, , broken] = await put("mixed", [
      { key: "g", data: "good-1" },
      {
        key: "outer",
        data: aggregate([
          { key: "agg-a", data: "s0" },
          { key: "agg-b", data: "s1" },
          { key: "agg-a", data: "s2" },
        ]),
      },
      {
        key: "outer",
        data: aggregate([
          { key: "agg-c", data: "fine" },
          { key: 5, data: "no key" },
        ]),
      },
      { key: "g", data: "good-2" },
    ]);
    const stateDir = freshDir();
    const seen = new Map<string, string[]>();
    const eddy = await startEddy(
      stateDir,
      [ingressYaml("test/mixed", "mixed", "test/collect")],
      [collector("test/collect", seen)],
    );
    try {
      await until(() => seen.get("g")?.length === 2, "both plain records are read");
      assert.deepEqual(Object.fromEntries(seen), {
        g: ["good-1", "good-2"],
        "agg-a": ["s0", "s2"],
        "agg-b": ["s1"],
        "agg-c": ["fine"],
      });
    } finally {
      await eddy.runtime.stop();
    }
    const letters = await listDeadLetters(stateDir);
    assert.deepEqual(
      letters.map(({ letter }) => [
        letter.ingress,
        letter.target.typename,
        letter.reason,
        Buffer.from(letter.invocations[0]?.argument.value ?? []).toString(),
      ]),
      [
        [
          "test/mixed",
          "test/collect",
          `Kinesis ingress test/mixed: the record at stream mixed shard shardId-000000000000 sequence number ${broken} sub-record 1 names partition key 5, but the table has 1`,
          "no key",
        ],
      ],
    );
  });

  it("resumes inside an aggregated record from the index the store holds", async () => {
    await kinesis.createStream("inside", 1);
    const [packed] = await put("inside", [
      {
        key: "outer",
        data: aggregate(["x0", "x1", "x2", "x3"].map((data) => ({ key: "x", data }))),
      },
      { key: "x", data: "x4" },
    ]);
    // As a commit in the middle of the aggregated record leaves it: its user records 0 and 1 taken.
    const stateDir = freshDir();
    mkdirSync(stateDir, { recursive: true });
    const store = new LoggedStore({ path: stateDir });
    await store.commit([
      {
        key: positionKey("test/inside", "inside", "shardId-000000000000"),
        value: { at: "after", seq: packed, sub: 1 },
      },
    ]);
    await store.close();
    const seen = new Map<string, string[]>();
    const eddy = await startEddy(
      stateDir,
      [ingressYaml("test/inside", "inside", "test/collect")],
      [collector("test/collect", seen)],
    );
    try {
      await until(() => seen.get("x")?.includes("x4") === true, "the record after the aggregated one is read");
      assert.deepEqual(seen.get("x"), ["x2", "x3", "x4"]);
    } finally {
      await eddy.runtime.stop();
    }
  });

  it("reads a split shard to its end before its children, and both parents of a merge before their child", async () => {
    await kinesis.createStream("reshard", 1);
    const records = (from: number, to: number) =>
      Array.from({ length: to - from }, (_, i) => ({ key: `k${(from + i) % 4}`, data: `s${from + i}` }));
    await put("reshard", records(0, 5));
    const seen = new Map<string, string[]>();
    const eddy = await startEddy(
      freshDir(),
      [ingressYaml("test/reshard", "reshard", "test/collect")],
      [collector("test/collect", seen)],
    );
    try {
      await until(() => total(seen) === 5, "the first records are read");
      await client.send(
        new SplitShardCommand({
          StreamName: "reshard",
          ShardToSplit: "shardId-000000000000",
          NewStartingHashKey: (2n ** 127n).toString(),
        }),
      );
      await shardCount("reshard", 3);
      await put("reshard", records(5, 15));
      await until(() => total(seen) === 15, "the records written to the split's children are read");
      await client.send(
        new MergeShardsCommand({
          StreamName: "reshard",
          ShardToMerge: "shardId-000000000001",
          AdjacentShardToMerge: "shardId-000000000002",
        }),
      );
      await shardCount("reshard", 4);
      await put("reshard", records(15, 20));
      await until(() => total(seen) === 20, "the records written to the merged shard are read");
      await sleep(600);
      for (let key = 0; key < 4; key++) {
        const expected = records(0, 20)
          .filter((record) => record.key === `k${key}`)
          .map((record) => record.data);
        assert.deepEqual(seen.get(`k${key}`), expected, `k${key}: every record once, in order`);
      }
    } finally {
      await eddy.runtime.stop();
    }
  });

  it("a fresh start on a split and merged stream reads every parent to its end before its children", async () => {
    await kinesis.createStream("resharded", 1);
    // Each phase's records for a key land on a later shard than the phase before's.
    const records = (from: number, to: number) =>
      Array.from({ length: to - from }, (_, i) => ({ key: `k${(from + i) % 4}`, data: `s${from + i}` }));
    await put("resharded", records(0, 8));
    await client.send(
      new SplitShardCommand({
        StreamName: "resharded",
        ShardToSplit: "shardId-000000000000",
        NewStartingHashKey: (2n ** 127n).toString(),
      }),
    );
    await shardCount("resharded", 3);
    await put("resharded", records(8, 16));
    await client.send(
      new MergeShardsCommand({
        StreamName: "resharded",
        ShardToMerge: "shardId-000000000001",
        AdjacentShardToMerge: "shardId-000000000002",
      }),
    );
    await shardCount("resharded", 4);
    await put("resharded", records(16, 24));
    const seen = new Map<string, string[]>();
    const eddy = await startEddy(
      freshDir(),
      [ingressYaml("test/resharded", "resharded", "test/collect")],
      [collector("test/collect", seen)],
    );
    try {
      await until(() => total(seen) >= 24, "every record of the four shards is read");
      await sleep(400);
      for (let key = 0; key < 4; key++) {
        const expected = records(0, 24)
          .filter((record) => record.key === `k${key}`)
          .map((record) => record.data);
        assert.deepEqual(seen.get(`k${key}`), expected, `k${key}: parents' records before their children's`);
      }
    } finally {
      await eddy.runtime.stop();
    }
  });
});

async function shardCount(stream: string, count: number): Promise<void> {
  const deadline = Date.now() + WAIT_MS;
  for (;;) {
    const { Shards: shards = [] } = await client.send(new ListShardsCommand({ StreamName: stream }));
    if (shards.length === count) return;
    if (Date.now() > deadline) assert.fail(`${stream} has ${shards.length} shards, not ${count}`);
    await sleep(20);
  }
}

describe("Kinesis egress", () => {
  /** What `test/emit` is told to send, as the ingress record's JSON data. */
  interface Command {
    readonly stream: string;
    readonly key: string;
    readonly value?: string;
    readonly bytes?: number;
    readonly hash?: string;
    readonly notARecord?: boolean;
  }

  it("writes records that read back from the stream; what Kinesis could never take becomes a dead letter", async () => {
    await kinesis.createStream("commands", 1);
    await kinesis.createStream("out", 2);
    const emit = statefulFunction({
      typename: "test/emit",
      handle(ctx, message) {
        const command = JSON.parse(Buffer.from(message.bytes).toString()) as Command;
        if (command.notARecord === true) {
          ctx.send(egressMessage("test/out", "plain text", types.string));
          return;
        }
        ctx.send(
          kinesisRecord({
            egress: "test/out",
            stream: command.stream,
            partitionKey: command.key,
            value: command.bytes === undefined ? (command.value ?? "") : new Uint8Array(command.bytes),
            ...(command.hash === undefined ? {} : { explicitHashKey: command.hash }),
          }),
        );
      },
    });
    const good: Command[] = ["a", "b", "c", "d", "e", "f"].map((key) => ({ stream: "out", key, value: `to ${key}` }));
    const bad: Command[] = [
      { stream: "not a name", key: "k", value: "v" },
      { stream: "out", key: "", value: "v" },
      { stream: "out", key: "k".repeat(257), value: "v" },
      { stream: "out", key: "big", bytes: 1024 * 1024 },
      { stream: "out", key: "k", value: "v", hash: "x" },
      { stream: "missing", key: "k", value: "v" },
      { stream: "out", key: "k", notARecord: true },
    ];
    const commands = [...good, { stream: "out", key: "pinned", value: "on shard 0", hash: "0" }, ...bad];
    await put(
      "commands",
      commands.map((command, index) => ({ key: `c${index}`, data: JSON.stringify(command) })),
    );
    const stateDir = freshDir();
    const eddy = await startEddy(
      stateDir,
      [
        ingressYaml("test/commands", "commands", "test/emit"),
        `kind: io.statefun.kinesis.v1/egress
spec:
  id: test/out
${aws()}  maxOutstandingRecords: 4
  clientConfigProperties:
    - ThreadingModel: POOLED
    - RequestTimeout: 5000
`,
      ],
      [emit],
    );
    try {
      assert.deepEqual(eddy.logs, ["eddy: Kinesis egress test/out ignores clientConfigProperties ThreadingModel"]);
      let shards = new Map<string, [string, string][]>();
      const deadline = Date.now() + WAIT_MS;
      while ([...shards.values()].flat().length < good.length + 1) {
        assert.ok(Date.now() < deadline, "the good records did not all reach the stream");
        await sleep(100);
        shards = await readStream("out");
      }
      assert.deepEqual(
        [...shards.values()].flat().sort(),
        [
          ...good.map((command): [string, string] => [command.key, command.value as string]),
          ["pinned", "on shard 0"],
        ].sort(),
      );
      assert.ok(
        shards.get("shardId-000000000000")?.some(([key]) => key === "pinned"),
        "explicit hash key 0 puts the record on the first shard",
      );
      const until = Date.now() + WAIT_MS;
      let letters = await listDeadLetters(stateDir);
      while (letters.length < bad.length && Date.now() < until) {
        await sleep(100);
        letters = await listDeadLetters(stateDir);
      }
      const refused = "egress test/out refused the message: ";
      assert.ok(letters.every(({ letter }) => letter.egress === "test/out" && letter.target.typename === "test/emit"));
      const reasons = letters.map(({ letter }) => letter.reason.replace(refused, ""));
      const missing = reasons.filter((reason) => reason.startsWith("stream missing does not exist"));
      assert.equal(missing.length, 1, reasons.join("\n"));
      assert.match(missing[0] as string, /ResourceNotFoundException/);
      assert.deepEqual(
        reasons.filter((reason) => !missing.includes(reason)).sort(),
        [
          `stream "not a name" is not a Kinesis stream name (1–128 of a-z, A-Z, 0-9, '_', '.', '-')`,
          "the partition key has 0 characters; Kinesis takes 1 to 256",
          "the partition key has 257 characters; Kinesis takes 1 to 256",
          "the record has 1048579 bytes (data and partition key), more than Kinesis's 1048576",
          'explicit hash key "x" is not a whole number from 0 to 2^128-1',
          `a Kinesis egress takes type.googleapis.com/io.statefun.sdk.egress.KinesisEgressRecord, got io.statefun.types/string`,
        ].sort(),
      );
    } finally {
      await eddy.runtime.stop();
    }
  });
});

describe("Kinesis configuration at start", () => {
  it("names the file and line of an ingress whose target nothing serves, or of a bad client property", async () => {
    const unserved = parseModule(ingressYaml("test/x", "s", "test/nobody"), "module.yaml");
    assert.ok(unserved.ok);
    await assert.rejects(
      startRuntime({ module: unserved.module, stateDir: freshDir(), log: () => undefined }),
      (error: unknown) =>
        error instanceof StartupError &&
        error.message ===
          "module.yaml:3:7: Kinesis ingress test/x routes stream s to test/nobody, which no endpoint in the module serves",
    );
    const badProperty = parseModule(
      `${ingressYaml("test/x", "s", "test/sink")}  clientConfigProperties:\n    - SocketTimeout: soon\n`,
      "module.yaml",
    );
    assert.ok(badProperty.ok);
    await assert.rejects(
      startRuntime({
        module: badProperty.module,
        stateDir: freshDir(),
        inProcess: createEndpoint([collector("test/sink", new Map())]),
        log: () => undefined,
      }),
      (error: unknown) =>
        error instanceof StartupError &&
        error.message ===
          'module.yaml:3:7: Kinesis ingress test/x: SocketTimeout "soon": expected a whole number of milliseconds from 0 to 2147483647',
    );
  });
});
