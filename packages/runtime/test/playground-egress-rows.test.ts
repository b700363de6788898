// The playground egress's rows with partition threads: each record's row carries the partition
// of its sender, so two threads counting sequence numbers of their own never write the same row,
// and each thread pops only its own partitions' rows (rows from before the partition was in the
// key: thread 0). On a cluster worker a record is a row of its sender's partition, popped from
// the partitions in turn, and a GET with none asks the other workers (test/e2e has the real one).
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { TypedValue } from "@eddy/protocol";
import { addressKey, type FunctionTypename } from "../src/core/address.ts";
import { type KV, MemoryKV } from "../src/core/kv.ts";
import { partitionOf } from "../src/core/partitioning.ts";
import type { OutboxEntry } from "../src/core/records.ts";
import type { EgressSettlement, EgressSink } from "../src/engine/ports.ts";
import { EGRESS_RECORD_TYPENAME, PlaygroundEgress } from "../src/io/playground/egress.ts";

const PARTITIONS = 8;
const SENDER = "example/sender" as FunctionTypename;
const THREADS = 2;

/** An engine port over one in-memory store: a transaction applies at once. */
function sinkOver(store: KV): EgressSink {
  return {
    transact: async (work: (transaction: KV) => unknown) => work(store),
    holdWork: () => {},
    releaseWork: () => {},
  } as unknown as EgressSink;
}

function entry(id: string, payload: string, seq: number): OutboxEntry {
  const record = JSON.stringify({ topic: "out", payload });
  return {
    seq,
    egress: "io.statefun.playground/egress",
    value: { typename: EGRESS_RECORD_TYPENAME, hasValue: true, value: Buffer.from(record) } as TypedValue,
    source: { typename: SENDER, id },
  };
}

const settled: EgressSettlement = {
  delivered: () => {},
  rejected: (reason: string) => assert.fail(reason),
} as unknown as EgressSettlement;

/** An id whose address falls in a partition of `thread`. */
function idOnThread(thread: number, start: number): string {
  for (let n = start; ; n++) {
    const id = `id-${n}`;
    if (partitionOf(addressKey({ typename: SENDER, id }), PARTITIONS) % THREADS === thread) return id;
  }
}

function threadEgress(store: KV, thread: number): PlaygroundEgress {
  const egress = new PlaygroundEgress({ port: 0, host: "127.0.0.1", topics: ["out"] });
  egress.attach(sinkOver(store), store, PARTITIONS, {
    owns: (partition) => partition % THREADS === thread,
    ownsUnpartitioned: thread === 0,
  });
  return egress;
}

describe("the playground egress on partition threads", () => {
  it("keeps two threads' records apart though both count from the same sequence number, each popping its own in order", async () => {
    const store = new MemoryKV();
    const [zero, one] = [threadEgress(store, 0), threadEgress(store, 1)];
    const onZero = [idOnThread(0, 0), idOnThread(0, 100)];
    const onOne = [idOnThread(1, 0), idOnThread(1, 100)];
    zero.deliver(entry(onZero[0] as string, "zero-a", 1), store, settled);
    one.deliver(entry(onOne[0] as string, "one-a", 1), store, settled);
    zero.deliver(entry(onZero[1] as string, "zero-b", 2), store, settled);
    one.deliver(entry(onOne[1] as string, "one-b", 2), store, settled);
    // Four rows: the same sequence numbers twice, told apart by the partition.
    assert.equal([...store.scan(["io", "playground-egress", "out"])].length, 4);
    assert.equal(await one.popOldest("out"), "one-a");
    assert.equal(await zero.popOldest("out"), "zero-a");
    assert.equal(await zero.popOldest("out"), "zero-b");
    assert.equal(await zero.popOldest("out"), undefined, "thread 0 never takes thread 1's record");
    assert.equal(await one.popOldest("out"), "one-b");
    assert.equal(await one.popOldest("out"), undefined);
  });

  it("hands rows written without a partition to thread 0 only, and a new writer starts past every stored sequence number", async () => {
    const store = new MemoryKV();
    store.put(["io", "playground-egress", "out", 7], "from before");
    const [zero, one] = [threadEgress(store, 0), threadEgress(store, 1)];
    assert.equal(await one.popOldest("out"), undefined);
    one.deliver(entry(idOnThread(1, 0), "after", 1), store, settled);
    const keys = [...store.scan(["io", "playground-egress", "out"])].map(({ key }) => key);
    assert.equal(keys.at(-1)?.[3], 8, "the sequence continues past the stored 7");
    assert.equal(await zero.popOldest("out"), "from before");
    assert.equal(await one.popOldest("out"), "after");
  });

  it("without an owner (one thread, the embedded runtime) pops every row, oldest first", async () => {
    const store = new MemoryKV();
    store.put(["io", "playground-egress", "out", 1], "old");
    const egress = new PlaygroundEgress({ port: 0, host: "127.0.0.1", topics: ["out"] });
    egress.attach(sinkOver(store), store, PARTITIONS);
    egress.deliver(entry(idOnThread(1, 0), "new", 1), store, settled);
    assert.equal(await egress.popOldest("out"), "old");
    assert.equal(await egress.popOldest("out"), "new");
    assert.equal(await egress.popOldest("out"), undefined);
  });
});

/** An engine port over per-partition rows, as a cluster worker's engine gives them (Engine.transactOwned). */
function clusterSink(rows: Map<number, KV>): EgressSink {
  return {
    transact: async () => assert.fail("a cluster's playground egress writes only partitions' rows"),
    transactOwned: async (work: (owned: readonly number[], rowsOf: (partition: number) => KV) => unknown) =>
      work([...rows.keys()], (partition) => rows.get(partition) as KV),
    holdWork: () => {},
    releaseWork: () => {},
  } as unknown as EgressSink;
}

/** Answers POST /playground-egress/<topic> as another worker would: its records, then 404 (or always `status`). */
async function peerServer(records: string[], status?: number): Promise<{ url: string; close(): Promise<void> }> {
  const { createServer } = await import("node:http");
  const server = createServer((req, res) => {
    if (req.method !== "POST" || req.url !== "/playground-egress/out") {
      res.writeHead(400).end(`unexpected ${req.method} ${req.url}`);
      return;
    }
    const next = status === undefined ? records.shift() : undefined;
    if (next === undefined) res.writeHead(status ?? 404).end(status === undefined ? "none" : "broken");
    else res.writeHead(200).end(next);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const address = server.address() as { port: number };
  return {
    url: `http://127.0.0.1:${address.port}/`,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}

describe("the playground egress on a cluster worker", () => {
  it("keeps each record in its sender's partition rows, by the outbox seq, and pops the partitions in turn, each oldest first", async () => {
    const rows = new Map<number, KV>([
      [2, new MemoryKV()],
      [5, new MemoryKV()],
    ]);
    const egress = new PlaygroundEgress({ port: 0, host: "127.0.0.1", topics: ["out"], inCluster: true });
    assert.equal(egress.rowsInSourcePartition, true);
    // What the engine hands deliver in a cluster: the sending partition's rows; a worker's engine
    // may hand records out before the connector's HTTP side is attached.
    egress.deliver(entry("a", "two-late", 9), rows.get(2) as KV, settled);
    egress.deliver(entry("a", "two-early", 4), rows.get(2) as KV, settled);
    egress.attach(clusterSink(rows), new MemoryKV(), PARTITIONS);
    egress.deliver(entry("b", "five", 1), rows.get(5) as KV, settled);
    assert.deepEqual(
      [...(rows.get(2) as KV).scan(["playground-egress", "out"])].map(({ key }) => key),
      [
        ["playground-egress", "out", 4],
        ["playground-egress", "out", 9],
      ],
    );
    assert.equal(await egress.popOldest("out"), "two-early");
    assert.equal(await egress.popOldest("out"), "five", "the next pop starts at the next partition");
    assert.equal(await egress.popOldest("out"), "two-late");
    assert.equal(await egress.popOldest("out"), undefined);
    await egress.close();
  });

  it("a GET with no record here asks the other workers in turn; 404 only when none had one, 503 when one could not say", async () => {
    const egress = new PlaygroundEgress({ port: 0, host: "127.0.0.1", topics: ["out"], inCluster: true });
    egress.attach(clusterSink(new Map([[1, new MemoryKV()]])), new MemoryKV(), PARTITIONS);
    const empty = await peerServer([]);
    const holding = await peerServer(["from a peer"]);
    const broken = await peerServer([], 500);
    let peers = [empty.url, holding.url];
    egress.attachPeers(() => peers);
    const url = await egress.listen();
    try {
      const first = await fetch(`${url}out`);
      assert.equal(first.status, 200);
      assert.equal(await first.text(), "from a peer");
      const none = await fetch(`${url}out`);
      assert.equal(none.status, 404, await none.text());
      peers = [broken.url, empty.url];
      const unsure = await fetch(`${url}out`);
      const text = await unsure.text();
      assert.equal(unsure.status, 503, text);
      assert.match(text, new RegExp(`not every worker could be asked: ${broken.url.replaceAll(".", "\\.")}: HTTP 500`));
    } finally {
      await egress.close();
      await Promise.all([empty.close(), holding.close(), broken.close()]);
    }
  });
});

describe("the ingress route of a cluster's playground egress", () => {
  it("is exactly two path segments, so a function whose namespace is playground-egress keeps its path", async () => {
    const { isEgressPopPath } = await import("../src/io/playground/egress-routes.ts");
    assert.equal(isEgressPopPath("/playground-egress/out"), true);
    assert.equal(isEgressPopPath("/playground-egress/a%2Fb?x=1"), true);
    assert.equal(isEgressPopPath("/playground-egress/fn/id"), false, "a function's path: /<namespace>/<type>/<id>");
    assert.equal(isEgressPopPath("/playground-egress/"), false);
    assert.equal(isEgressPopPath("/greeter/person/ada"), false);
  });
});
