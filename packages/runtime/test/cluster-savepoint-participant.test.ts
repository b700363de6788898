// A worker's part in a cluster savepoint (cluster/savepoint-participant.ts): hold its commits,
// capture its partitions' rows and inbox tails, release and write them. These run one worker
// in process (a real CommitGate over a target the test ends by hand, a MemoryKV as its local
// store, a blob store in memory) and check the promises a consistent cluster cut rests on:
// nothing commits between hold and release, what is written is exactly the partitions' rows
// (less the worker-local changelog offset) and their inbox after the inbox position, and a
// rebalance, an expiry or a failure never leaves the gate held.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { decodeSavedPartition, partitionObjectKey, sha256 } from "../src/cluster/savepoint-format.ts";
import { SavepointParticipant } from "../src/cluster/savepoint-participant.ts";
import type { FunctionTypename } from "../src/core/address.ts";
import type { PendingWrite } from "../src/core/overlay-kv.ts";
import { inPartition, rowWrite, tables } from "../src/core/schema.ts";
import { failure } from "../src/errors.ts";
import {
  commitGoesThrough,
  type FakeWorker,
  fakeWorker,
  isSettled,
  plain,
  settle,
} from "./fixtures/savepoint-fakes.ts";

const GREETER = "example/greeter" as FunctionTypename;

function stateRow(partition: number, id: string): PendingWrite {
  return rowWrite(inPartition(partition, tables.state.key(GREETER, id, "seen")), {
    typename: "example/int",
    value: Buffer.from(`${id}@${partition}`),
    writtenAtMs: 1_700_000_000_000,
    invokedAtMs: 0,
  });
}

const record = (text: string) => ({ key: Buffer.from(`k-${text}`), value: Buffer.from(text) });

/**
 * A worker running partitions 0, 1 and 2 of generation 7. Partition 0 has rows, an inbox
 * position of 2 and a changelog offset; partition 1 has a row and no inbox position; partition
 * 2 nothing; partition 3 (another worker's) a row that is not this worker's to save.
 */
function worker(
  options: { readonly holdMs?: number } = {},
): FakeWorker & { readonly rows: Map<number, PendingWrite[]> } {
  const made = fakeWorker({ workerId: "w0", generation: 7, partitions: [0, 1, 2], ...options });
  const rows = new Map<number, PendingWrite[]>([
    [0, [rowWrite(inPartition(0, tables.inboxPosition.key()), 2), stateRow(0, "alice"), stateRow(0, "bob")]],
    [1, [stateRow(1, "carol")]],
  ]);
  for (const partitionRows of rows.values()) for (const { key, value } of partitionRows) made.local.put(key, value);
  made.local.put(inPartition(0, tables.changelogOffset.key()), 99);
  made.local.put(stateRow(3, "dave").key, stateRow(3, "dave").value);
  made.inbox.set(0, [record("a"), record("b"), record("c"), record("d"), record("e")]);
  made.inbox.set(1, [record("f")]);
  made.inbox.set(3, [record("g")]);
  return Object.assign(made, { rows });
}

function assertFailed(result: { readonly ok: boolean; readonly code?: string }, code: string): void {
  assert.equal(result.ok, false, `expected ${code}, got success`);
  assert.equal(result.code, code);
}

describe("SavepointParticipant", () => {
  it("holds the gate once the commit in flight ends, and answers its generation and partitions", async () => {
    const w = worker();
    const inFlight = w.gate.commit({ writes: [], partitions: [], outbound: [], published: [] });
    await settle();
    const holding = w.participant.hold("id1", "sp");
    assert.equal(await isSettled(holding), false, "hold answered while a commit was in flight");
    w.target.end();
    await inFlight;
    assert.deepEqual(await holding, { ok: true, value: { workerId: "w0", generation: 7, partitions: [0, 1, 2] } });
    assert.equal(w.participant.holding, true);
    assert.equal(w.gate.held, true);
    assert.equal(await commitGoesThrough(w), false, "a commit went through while held");
    // Asked again (a retried request), the same savepoint answers the same.
    assert.deepEqual(await w.participant.hold("id1", "sp"), {
      ok: true,
      value: { workerId: "w0", generation: 7, partitions: [0, 1, 2] },
    });
    w.participant.close();
  });

  it("answers a repeated hold, asked while the commit in flight runs, only once that commit ended", async () => {
    const w = worker();
    const inFlight = w.gate.commit({ writes: [], partitions: [], outbound: [], published: [] });
    await settle();
    const first = w.participant.hold("id1", "sp");
    const repeated = w.participant.hold("id1", "sp");
    assert.equal(await isSettled(repeated), false, "the repeated hold answered while a commit was in flight");
    w.target.end();
    await inFlight;
    assert.equal((await first).ok, true);
    assert.equal((await repeated).ok, true);
    w.participant.close();
  });

  it("keeps a new savepoint's hold when one ended by a rebalance finds its commit in flight over", async () => {
    const w = worker();
    const inFlight = w.gate.commit({ writes: [], partitions: [], outbound: [], published: [] });
    await settle();
    const first = w.participant.hold("id1", "sp1");
    // A rebalance begins: the worker ends the hold, and the next savepoint asks at once.
    w.rebalances++;
    w.participant.close();
    const second = w.participant.hold("id2", "sp2");
    w.target.end();
    await inFlight;
    assertFailed(await first, "savepoint-rebalancing");
    assert.equal((await second).ok, true);
    assert.equal(w.gate.held, true, "the first hold's end released the second's gate");
    assert.equal(await commitGoesThrough(w), false, "a commit went through while the second held");
    w.participant.close();
  });

  it("fails a hold that expired while the commit in flight ran", async () => {
    const w = worker({ holdMs: 20 });
    const inFlight = w.gate.commit({ writes: [], partitions: [], outbound: [], published: [] });
    await settle();
    const holding = w.participant.hold("id1", "sp");
    await new Promise((resume) => setTimeout(resume, 60));
    w.target.end();
    await inFlight;
    assertFailed(await holding, "savepoint-expired");
    assert.equal(w.gate.held, false);
  });

  it("refuses to hold while between generations or restoring a partition, and leaves the gate open", async () => {
    const w = worker();
    w.membership = undefined;
    assertFailed(await w.participant.hold("id1", "sp"), "savepoint-rebalancing");
    assert.equal(w.gate.held, false);

    const restoring = worker();
    restoring.running = [0, 2];
    const refused = await restoring.participant.hold("id1", "sp");
    assertFailed(refused, "savepoint-rebalancing");
    assert.match(refused.ok ? "" : refused.message, /restoring partitions 1 of generation 7/);
    assert.equal(restoring.gate.held, false);
    assert.equal(restoring.participant.holding, false);

    const extra = worker();
    extra.running = [0, 1, 2, 3];
    assertFailed(await extra.participant.hold("id1", "sp"), "savepoint-rebalancing");
    assert.equal(extra.gate.held, false);
  });

  it("refuses a second savepoint while one is held", async () => {
    const w = worker();
    assert.equal((await w.participant.hold("id1", "first")).ok, true);
    const busy = await w.participant.hold("id2", "second");
    assertFailed(busy, "savepoint-busy");
    assert.match(busy.ok ? "" : busy.message, /first/);
    // The first is still held, and still the one capture knows.
    assert.equal(w.gate.held, true);
    assertFailed(await w.participant.capture("id2"), "savepoint-unknown");
    assert.equal((await w.participant.capture("id1")).ok, true);
    w.participant.close();
    assert.equal(w.gate.held, false);
  });

  it("captures every row but the changelog offset, and each partition's inbox from its inbox position", async () => {
    const w = worker();
    await w.participant.hold("id1", "sp");
    const captured = await w.participant.capture("id1");
    // Rows: 3 of partition 0 (not its changelog offset), 1 of partition 1; inbox: c, d, e of 0 and f of 1.
    assert.deepEqual(captured, { ok: true, value: { workerId: "w0", rows: 4, inboxRecords: 4 } });
    assert.deepEqual(w.tailReads, [
      new Map([
        [0, 2],
        [1, 0],
        [2, 0],
      ]),
    ]);
    // A second capture answers what the first captured, without reading again.
    assert.deepEqual(await w.participant.capture("id1"), captured);
    assert.equal(w.tailReads.length, 1);
    w.participant.close();
  });

  it("answers a capture of a savepoint it does not hold with savepoint-unknown", async () => {
    assertFailed(await worker().participant.capture("nope"), "savepoint-unknown");
  });

  it("passes on a failure to read the inbox tails", async () => {
    const made = fakeWorker({ workerId: "w0", partitions: [0] });
    const unread = failure("savepoint-inbox-unread", "the inbox topic is gone", true);
    const participant = new SavepointParticipant({
      workerId: "w0",
      gate: made.gate,
      membership: () => made.membership,
      running: () => made.running,
      rebalances: () => 0,
      local: made.local,
      readInboxTails: async () => unread,
      blobs: made.blobs,
    });
    await participant.hold("id1", "sp");
    assert.deepEqual(await participant.capture("id1"), unread);
    participant.close();
    assert.equal(made.gate.held, false);
  });

  it("releases, then writes one object per partition that holds anything, which decodes to what was captured", async () => {
    const w = worker();
    await w.participant.hold("id1", "sp");
    await w.participant.capture("id1");
    // Rows committed after the capture are not in the savepoint (nothing commits while held; this
    // writes the local store directly to show the capture is what is written).
    w.local.put(stateRow(1, "late").key, stateRow(1, "late").value);
    const released = await w.participant.release("id1", true);
    assert.ok(released.ok, released.ok ? "" : released.message);
    assert.equal(w.gate.held, false);
    assert.equal(w.participant.holding, false);
    assert.equal(await commitGoesThrough(w), true, "a commit still waits after release");

    const keys = [...w.blobs.objects.keys()].sort();
    assert.deepEqual(keys, [partitionObjectKey("sp", "id1", 0), partitionObjectKey("sp", "id1", 1)]);
    const listed = released.value.partitions ?? [];
    assert.deepEqual(
      listed.map(({ partition, rows, inboxRecords, object }) => ({ partition, rows, inboxRecords, key: object?.key })),
      [
        { partition: 0, rows: 3, inboxRecords: 3, key: keys[0] },
        { partition: 1, rows: 1, inboxRecords: 1, key: keys[1] },
        { partition: 2, rows: 0, inboxRecords: 0, key: undefined },
      ],
    );
    assert.equal("object" in (listed[2] ?? {}), false);

    const expectedInbox = new Map([
      [0, [record("c"), record("d"), record("e")]],
      [1, [record("f")]],
    ]);
    for (const entry of listed.slice(0, 2)) {
      const body = w.blobs.objects.get(entry.object?.key ?? "") as Uint8Array;
      assert.equal(entry.object?.bytes, body.byteLength);
      assert.equal(entry.object?.sha256, sha256(body));
      const decoded = decodeSavedPartition("test", entry.partition, body);
      assert.ok(decoded.ok, decoded.ok ? "" : decoded.message);
      assert.deepEqual(plain(decoded.value.rows), plain(w.rows.get(entry.partition)));
      assert.deepEqual(plain(decoded.value.inbox), plain(expectedInbox.get(entry.partition)));
    }
  });

  it("fails a write when the group rebalanced between hold and release, and still releases the gate", async () => {
    const w = worker();
    await w.participant.hold("id1", "sp");
    await w.participant.capture("id1");
    w.rebalances += 1;
    const released = await w.participant.release("id1", true);
    assertFailed(released, "savepoint-rebalancing");
    assert.equal(released.ok ? undefined : released.retriable, true);
    assert.equal(w.gate.held, false);
    assert.equal(await commitGoesThrough(w), true);
    assert.equal(w.blobs.objects.size, 0, "a savepoint across a rebalance was written");
  });

  it("fails a capture after a rebalance, or a new generation", async () => {
    const w = worker();
    await w.participant.hold("id1", "sp");
    w.rebalances += 1;
    assertFailed(await w.participant.capture("id1"), "savepoint-rebalancing");
    assert.equal(w.tailReads.length, 0);
    w.participant.close();

    const next = worker();
    await next.participant.hold("id1", "sp");
    next.membership = { ...(next.membership as NonNullable<FakeWorker["membership"]>), generationId: 8 };
    assertFailed(await next.participant.capture("id1"), "savepoint-rebalancing");
    assertFailed(await next.participant.release("id1", true), "savepoint-rebalancing");
    assert.equal(next.gate.held, false);
  });

  it("fails a hold whose generation changed while it waited for the commit in flight, and releases the gate", async () => {
    const w = worker();
    const inFlight = w.gate.commit({ writes: [], partitions: [], outbound: [], published: [] });
    await settle();
    const holding = w.participant.hold("id1", "sp");
    await settle();
    w.rebalances += 1;
    w.target.end();
    await inFlight;
    assertFailed(await holding, "savepoint-rebalancing");
    assert.equal(w.gate.held, false);
    assert.equal(w.participant.holding, false);
  });

  it("lets an expired hold go by itself, and fails its capture and its write", async () => {
    const w = worker({ holdMs: 30 });
    await w.participant.hold("id1", "sp");
    const waiting = w.gate.commit({ writes: [], partitions: [], outbound: [], published: [] });
    await settle();
    assert.equal(w.target.received.length, 0);
    await new Promise((resolve) => setTimeout(resolve, 60));
    await settle();
    assert.equal(w.gate.held, false);
    assert.equal(w.participant.holding, false);
    assert.equal(w.target.received.length, 1, "the waiting commit did not go through after the hold expired");
    w.target.end();
    await waiting;
    assertFailed(await w.participant.capture("id1"), "savepoint-expired");
    assert.equal(w.tailReads.length, 0, "an expired savepoint read the inbox");
    assertFailed(await w.participant.release("id1", true), "savepoint-expired");
    assert.equal(w.blobs.objects.size, 0);
    // Once expired, another savepoint may hold.
    assert.equal((await w.participant.hold("id2", "sp2")).ok, true);
    assert.equal(w.gate.held, true);
    w.participant.close();
  });

  it("fails the write of a hold that expired after its capture", async () => {
    const w = worker({ holdMs: 30 });
    await w.participant.hold("id1", "sp");
    assert.equal((await w.participant.capture("id1")).ok, true);
    await new Promise((resolve) => setTimeout(resolve, 60));
    assert.equal(w.gate.held, false);
    assertFailed(await w.participant.release("id1", true), "savepoint-expired");
    assert.equal(w.blobs.objects.size, 0);
  });

  it("releases without writing a savepoint it does not hold, but refuses to write one", async () => {
    const w = worker();
    assert.deepEqual(await w.participant.release("nope", false), { ok: true, value: { workerId: "w0" } });
    assertFailed(await w.participant.release("nope", true), "savepoint-unknown");
    await w.participant.hold("id1", "sp");
    // Another id's release leaves this one held.
    assert.deepEqual(await w.participant.release("other", false), { ok: true, value: { workerId: "w0" } });
    assert.equal(w.gate.held, true);
    assert.deepEqual(await w.participant.release("id1", false), { ok: true, value: { workerId: "w0" } });
    assert.equal(w.gate.held, false);
    assert.equal(w.blobs.objects.size, 0, "a release without write wrote");
  });

  it("refuses to write what it did not capture, and releases the gate", async () => {
    const w = worker();
    await w.participant.hold("id1", "sp");
    assertFailed(await w.participant.release("id1", true), "savepoint-unknown");
    assert.equal(w.gate.held, false);
    assert.equal(w.blobs.objects.size, 0);
  });

  it("answers a write the blob store refused with savepoint-write-failed, after releasing the gate", async () => {
    const w = worker();
    w.blobs.failPuts.add(partitionObjectKey("sp", "id1", 1));
    await w.participant.hold("id1", "sp");
    await w.participant.capture("id1");
    const released = await w.participant.release("id1", true);
    assertFailed(released, "savepoint-write-failed");
    assert.match(released.ok ? "" : released.message, /memory:\/\/savepoints.*refused/);
    assert.equal(w.gate.held, false);
  });
});
