// A source partition bound to a partition (a cluster's Kafka ingress): which partition it is
// bound to, fixed for good; and the engine's side of it: the position written with the
// messages goes into that partition's rows, in the same commit, and an admission read for a
// run of the partition that is gone (released, or reset by a refused commit) takes nothing.
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { createEndpoint, statefulFunction, types } from "@eddy/sdk";
import type { FunctionTypename } from "../src/core/address.ts";
import type { FunctionSettings } from "../src/core/partition-core.ts";
import type { Envelope } from "../src/core/records.ts";
import { getRow, inPartition, putRow, tables } from "../src/core/schema.ts";
import { type CommitBatch, Engine } from "../src/engine/engine.ts";
import { InProcessInvoker } from "../src/invoker/in-process-invoker.ts";
import { kafkaSourcePartition, SourceBinding } from "../src/io/source-binding.ts";
import { LmdbStore } from "../src/store/lmdb-store.ts";

const dirs: string[] = [];
after(() => {
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

const PARTITIONS = 8;
const settings: FunctionSettings = {
  maxBatchCount: 100,
  maxBatchBytes: 1 << 20,
  backlogLimit: 1000,
  failurePolicy: "retry",
};
const counter = statefulFunction({
  typename: "bound/counter",
  state: { count: types.int },
  handle(ctx) {
    ctx.storage.count = (ctx.storage.count ?? 0) + 1;
  },
});

const envelope = (id: string): Envelope => ({
  target: { typename: "bound/counter" as FunctionTypename, id },
  argument: { typename: "io.statefun.types/string", hasValue: true, value: types.string.serialize("inc") },
});

describe("source binding", () => {
  it("binds a Kafka source partition to a partition by FNV-1a of ingress, topic and partition, the same forever", () => {
    // Golden values: a cluster's positions live where these say; changing them moves every position.
    assert.equal(kafkaSourcePartition("com.example/in", "orders", 0, 128), 111);
    assert.equal(kafkaSourcePartition("com.example/in", "orders", 1, 128), 92);
    assert.equal(kafkaSourcePartition("com.example/in", "orders", 5, 128), 16);
    assert.equal(kafkaSourcePartition("com.example/other", "orders", 0, 128), 2);
    // Spread: 64 source partitions of one topic land on many of the 128 partitions.
    const bound = new Set(Array.from({ length: 64 }, (_, index) => kafkaSourcePartition("in", "t", index, 128)));
    assert.ok(bound.size >= 30, `64 source partitions on ${bound.size} partitions`);
  });

  it("tells its listeners when the worker's partitions change", () => {
    const binding = new SourceBinding(8);
    const seen: boolean[] = [];
    const unsubscribe = binding.subscribe(() => seen.push(binding.runs(3)));
    binding.changed([1, 3]);
    binding.changed([1]);
    unsubscribe();
    binding.changed([3]);
    assert.deepEqual(seen, [true, false]);
    assert.equal(binding.runs(3), true);
  });
});

describe("engine admissions bound to a partition", () => {
  it("commits the position in the partition's rows with the messages; those for partitions run elsewhere leave in the same commit", async () => {
    const dir = mkdtempSync(join(tmpdir(), "eddy-bound-"));
    dirs.push(dir);
    const store = new LmdbStore({ path: dir });
    const batches: CommitBatch[] = [];
    const letterIds: string[] = [];
    const engine = new Engine({
      store,
      commitTarget: {
        async commit(batch) {
          batches.push(batch);
          await store.commit(batch.writes);
          return undefined;
        },
      },
      catalog: {
        functionSettings: (typename) => (typename === "bound/counter" ? settings : undefined),
        hasEgress: () => false,
      },
      invoker: new InProcessInvoker(createEndpoint([counter])),
      partitionCount: PARTITIONS,
      ownedPartitions: [0, 1, 2, 3],
      onDeadLetter: (_letter, id) => letterIds.push(id),
    });
    engine.start();
    const position = tables.kafkaSourcePosition.key("in", "t", 5);
    const ids = Array.from({ length: 16 }, (_, index) => `id-${index}`);
    const remote = ids.filter((id) => engine.partitionOf(envelope(id).target) >= 4);
    assert.ok(remote.length > 0);

    assert.equal(engine.sourceRun(5), undefined, "a partition run elsewhere has no run here");
    const first = engine.sourceRun(2);
    assert.ok(first !== undefined);
    const accepted = await engine.acceptFromSource(
      ids.map(envelope),
      (rows) => putRow(rows, position, 17),
      [
        {
          ingress: "in",
          target: { typename: "bound/counter" as FunctionTypename, id: remote[0] as string },
          argument: envelope("x").argument,
          reason: "a record without a key (test)",
        },
      ],
      { partition: 2, run: first.run },
    );
    assert.deepEqual(accepted, { ok: true });
    // In partition 2's rows, committed with the messages; those for partitions run elsewhere
    // left in the same commit, for their inboxes.
    assert.equal(getRow(store, inPartition(2, position)), 17);
    const holding = batches.find((batch) => batch.writes.some((write) => write.key[2] === "kafka-source"));
    assert.ok(holding !== undefined);
    assert.ok(holding.partitions.includes(2));
    assert.deepEqual(holding.outbound.map((message) => message.envelope.target.id).sort(), [...remote].sort());
    // The record no message could be made of is kept where the source is bound, its target's partition being elsewhere.
    assert.ok(holding.writes.some((write) => write.key[0] === "p" && write.key[1] === 2 && write.key[2] === "dead"));
    assert.equal(letterIds.length, 1);
    assert.match(letterIds[0] as string, /^2-/, "its id names the partition that keeps it");
    assert.equal(engine.sourceRun(2)?.run, first.run, "a commit does not start a new run");
    await engine.stop();
  });

  it("refuses an admission read for a run that was reset or released", async () => {
    const dir = mkdtempSync(join(tmpdir(), "eddy-bound-"));
    dirs.push(dir);
    const store = new LmdbStore({ path: dir });
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
        functionSettings: (typename) => (typename === "bound/counter" ? settings : undefined),
        hasEgress: () => false,
      },
      invoker: new InProcessInvoker(createEndpoint([counter])),
      partitionCount: PARTITIONS,
      ownedPartitions: [0, 1, 2, 3],
    });
    engine.start();
    const position = tables.kafkaSourcePosition.key("in", "t", 5);
    const before = engine.sourceRun(2);
    assert.ok(before !== undefined);
    refuse = 1;
    await assert.rejects(
      engine.acceptFromSource([envelope("a")], (rows) => putRow(rows, position, 1), [], {
        partition: 2,
        run: before.run,
      }),
      (error: Error & { code?: string }) => error.code === "commit-aborted",
    );
    assert.equal(getRow(store, inPartition(2, position)), undefined, "nothing of the refused commit is stored");
    const after = engine.sourceRun(2);
    assert.ok(after !== undefined && after.run !== before.run, "the reset started a new run");
    const stale = await engine.acceptFromSource([envelope("a")], (rows) => putRow(rows, position, 2), [], {
      partition: 2,
      run: before.run,
    });
    assert.equal(stale.ok, false);
    assert.equal(!stale.ok && stale.code, "moved");
    // The new run takes it.
    assert.deepEqual(
      await engine.acceptFromSource([envelope("a")], (rows) => putRow(rows, position, 3), [], {
        partition: 2,
        run: after.run,
      }),
      { ok: true },
    );
    assert.equal(getRow(store, inPartition(2, position)), 3);
    // Released: no run, and an admission for it takes nothing.
    await engine.flushAndHold();
    engine.release([2]);
    engine.resumeCommits();
    assert.equal(engine.sourceRun(2), undefined);
    const gone = await engine.acceptFromSource([envelope("a")], (rows) => putRow(rows, position, 4), [], {
      partition: 2,
      run: after.run,
    });
    assert.equal(!gone.ok && gone.code, "moved");
    assert.equal(getRow(store, inPartition(2, position)), 3);
    await engine.stop();
  });
});
