// The playground egress's rows with partition threads: each record's row carries the partition
// of its sender, so two threads counting sequence numbers of their own never write the same row,
// and each thread pops only its own partitions' rows (rows from before the partition was in the
// key: thread 0).
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
