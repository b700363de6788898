// Taking a savepoint of a whole cluster (cluster/savepoint-coordinator.ts): the three rounds
// (hold, capture, release) run in process here, between two workers' SavepointParticipants
// over one blob store in memory, `send` calling the other worker's participant through runPhase
// as its admin API would. These check that a savepoint that succeeds is one manifest naming
// every partition from one generation, whose objects hold the workers' rows; and that one that
// fails (a bad or taken name, a rebalance, a worker that fails a round, workers of different
// generations) fails before anything is held or releases every worker and leaves no object.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { PartitionOwner } from "../src/cluster/membership-codec.ts";
import {
  type PhaseAnswer,
  type PhaseRequest,
  runPhase,
  type SavepointPhase,
  takeClusterSavepoint,
} from "../src/cluster/savepoint-coordinator.ts";
import {
  clusterSavepointManifestKey,
  decodeClusterSavepointManifest,
  decodeSavedPartition,
  sha256,
} from "../src/cluster/savepoint-format.ts";
import type { FunctionTypename } from "../src/core/address.ts";
import { inPartition, rowWrite, tables } from "../src/core/schema.ts";
import { failure } from "../src/errors.ts";
import { commitGoesThrough, type FakeWorker, fakeWorker, MemoryBlobStore, plain } from "./fixtures/savepoint-fakes.ts";

const GREETER = "example/greeter" as FunctionTypename;
const PARTITIONS = 4;

function stateRow(partition: number, id: string) {
  return rowWrite(inPartition(partition, tables.state.key(GREETER, id, "seen")), {
    typename: "example/int",
    value: Buffer.from(`${id}@${partition}`),
    writtenAtMs: 1_700_000_000_000,
    invokedAtMs: 0,
  });
}

interface Cluster {
  readonly blobs: MemoryBlobStore;
  readonly w0: FakeWorker;
  readonly w1: FakeWorker;
  owners: (PartitionOwner | undefined)[];
  /** Each phase sent to w1, in order. */
  readonly sent: { phase: SavepointPhase; request: PhaseRequest }[];
  /** Answers for w1 in place of its participant's, when it returns one. */
  intercept: (phase: SavepointPhase, request: PhaseRequest) => PhaseAnswer | undefined;
  /** Whether both gates were held when each capture reached w1. */
  readonly heldAtCapture: boolean[];
  /** Where w1's admin API is: the assignment's URL unless the group's members say newer. */
  w1AdminUrl: string;
  /** The group members' own latest URLs (member-urls.ts); none: the assignment's are used. */
  currentUrls: Map<string, { url: string; adminUrl?: string }> | undefined;
  take(name: string): ReturnType<typeof takeClusterSavepoint>;
}

/**
 * Two workers of generation 7: w0 (the one asked, partitions 0 and 1) and w1 (partitions 2 and
 * 3, reached over `send`). Partition 0 has a row; 1 nothing; 2 a row and an inbox record; 3 an
 * inbox record only.
 */
function cluster(): Cluster {
  const blobs = new MemoryBlobStore();
  const w0 = fakeWorker({ workerId: "w0", partitions: [0, 1], blobs });
  const w1 = fakeWorker({ workerId: "w1", partitions: [2, 3], blobs });
  for (const row of [stateRow(0, "alice")]) w0.local.put(row.key, row.value);
  for (const row of [stateRow(2, "bob")]) w1.local.put(row.key, row.value);
  w1.inbox.set(2, [{ key: null, value: Buffer.from("to-2") }]);
  w1.inbox.set(3, [{ key: Buffer.from("k"), value: Buffer.from("to-3") }]);
  const owner0: PartitionOwner = { workerId: "w0", url: "http://w0:9000", adminUrl: "http://w0:9100" };
  const owner1: PartitionOwner = { workerId: "w1", url: "http://w1:9000", adminUrl: "http://w1:9100" };
  const made: Cluster = {
    blobs,
    w0,
    w1,
    owners: [owner0, owner0, owner1, owner1],
    sent: [],
    intercept: () => undefined,
    heldAtCapture: [],
    w1AdminUrl: "http://w1:9100",
    currentUrls: undefined,
    take: (name) =>
      takeClusterSavepoint(
        {
          cluster: "c1",
          workerId: "w0",
          partitionCount: PARTITIONS,
          participant: w0.participant,
          blobs,
          owners: () => made.owners,
          currentUrls: async () => made.currentUrls ?? new Map(),
          send: async (adminUrl, phase, request) => {
            assert.equal(adminUrl, made.w1AdminUrl);
            made.sent.push({ phase, request });
            if (phase === "capture") made.heldAtCapture.push(w0.gate.held && w1.gate.held);
            return made.intercept(phase, request) ?? (await runPhase(w1.participant, phase, request));
          },
        },
        name,
      ),
  };
  return made;
}

async function assertReleased(c: Cluster): Promise<void> {
  for (const w of [c.w0, c.w1]) {
    assert.equal(w.gate.held, false, `${w.workerId}'s gate is held`);
    assert.equal(w.participant.holding, false, `${w.workerId} still holds`);
    assert.equal(await commitGoesThrough(w), true, `a commit of ${w.workerId} waits at its gate`);
  }
}

function objectsOf(c: Cluster, name: string): string[] {
  return [...c.blobs.objects.keys()].filter((key) => key.startsWith(`cluster-savepoints/${name}/`));
}

describe("takeClusterSavepoint", () => {
  it("reaches a worker at the admin URL it last joined with, not the stale one of the assignment", async () => {
    // w1 restarted within the session timeout on another admin port: Kafka kept the generation
    // and its assignment, which still names the old port.
    const c = cluster();
    c.currentUrls = new Map([["w1", { url: "http://w1:9000", adminUrl: "http://w1:9200" }]]);
    c.w1AdminUrl = "http://w1:9200";
    const taken = await c.take("after-restart");
    assert.ok(taken.ok, taken.ok ? "" : taken.message);
    assert.equal(c.sent.length, 3);
  });

  it("writes a manifest of every partition, from both workers of one generation, with their rows", async () => {
    const c = cluster();
    const taken = await c.take("before-upgrade");
    assert.ok(taken.ok, taken.ok ? "" : taken.message);
    assert.deepEqual(c.heldAtCapture, [true], "a worker was not held when the capture began");
    assert.deepEqual(
      c.sent.map(({ phase, request }) => [phase, request.write]),
      [
        ["hold", undefined],
        ["capture", undefined],
        ["release", true],
      ],
    );
    const { value } = taken;
    assert.equal(value.name, "before-upgrade");
    assert.equal(value.cluster, "c1");
    assert.equal(value.generation, 7);
    assert.deepEqual(value.workers, ["w0", "w1"]);
    assert.equal(value.partitions, PARTITIONS);
    assert.equal(value.rows, 2);
    assert.equal(value.inboxRecords, 2);

    const body = c.blobs.objects.get(clusterSavepointManifestKey("before-upgrade"));
    assert.ok(body !== undefined, "no manifest");
    const manifest = decodeClusterSavepointManifest("manifest", body);
    assert.ok(manifest.ok, manifest.ok ? "" : manifest.message);
    const m = manifest.value;
    assert.equal(m.name, "before-upgrade");
    assert.equal(m.id, value.id);
    assert.equal(m.cluster, "c1");
    assert.equal(m.generation, 7);
    assert.equal(m.partitionCount, PARTITIONS);
    assert.deepEqual(m.workers, ["w0", "w1"]);
    assert.deepEqual(
      m.partitions.map(({ partition, rows, inboxRecords, object }) => [partition, rows, inboxRecords, object?.key]),
      [
        [0, 1, 0, `cluster-savepoints/before-upgrade/${value.id}/0.partition`],
        [1, 0, 0, undefined],
        [2, 1, 1, `cluster-savepoints/before-upgrade/${value.id}/2.partition`],
        [3, 0, 1, `cluster-savepoints/before-upgrade/${value.id}/3.partition`],
      ],
    );
    let bytes = 0;
    for (const entry of m.partitions) {
      if (entry.object === undefined) continue;
      const object = c.blobs.objects.get(entry.object.key) as Uint8Array;
      assert.equal(entry.object.sha256, sha256(object));
      bytes += object.byteLength;
      const decoded = decodeSavedPartition(entry.object.key, entry.partition, object);
      assert.ok(decoded.ok, decoded.ok ? "" : decoded.message);
      const expected =
        entry.partition === 0 ? [stateRow(0, "alice")] : entry.partition === 2 ? [stateRow(2, "bob")] : [];
      assert.deepEqual(plain(decoded.value.rows), plain(expected));
    }
    assert.equal(value.bytes, bytes);
    await assertReleased(c);

    assert.deepEqual(c.blobs.deleted, []);
    // The name is taken now.
    const taken2 = await c.take("before-upgrade");
    assert.equal(taken2.ok ? undefined : taken2.code, "savepoint-exists");
  });

  it("refuses a name a cluster or an embedded savepoint already has, before holding anyone", async () => {
    for (const key of [clusterSavepointManifestKey("taken"), "savepoints/taken.json"]) {
      const c = cluster();
      c.blobs.objects.set(key, Buffer.from("{}"));
      const taken = await c.take("taken");
      assert.equal(taken.ok, false);
      assert.equal(taken.ok ? undefined : taken.code, "savepoint-exists", key);
      assert.equal(c.sent.length, 0);
      assert.equal(c.w0.gate.held, false);
    }
  });

  it("refuses a bad name", async () => {
    for (const name of ["", "../x", "a/b", ".hidden", "x".repeat(101)]) {
      const c = cluster();
      const taken = await c.take(name);
      assert.equal(taken.ok ? undefined : taken.code, "bad-request", JSON.stringify(name));
      assert.equal(c.sent.length, 0);
    }
  });

  it("refuses while a partition has no owner", async () => {
    const c = cluster();
    c.owners[1] = undefined;
    const taken = await c.take("sp");
    assert.equal(taken.ok ? undefined : taken.code, "savepoint-rebalancing");
    assert.match(taken.ok ? "" : taken.message, /partitions 1\b/);
    assert.equal(c.sent.length, 0);
    assert.equal(c.w0.gate.held, false);

    const short = cluster();
    short.owners = short.owners.slice(0, 3);
    const refused = await short.take("sp");
    assert.equal(refused.ok ? undefined : refused.code, "savepoint-rebalancing");
  });

  it("refuses when another worker has no admin listener", async () => {
    const c = cluster();
    const { adminUrl: _, ...noAdmin } = c.owners[2] as PartitionOwner;
    c.owners[2] = noAdmin;
    c.owners[3] = noAdmin;
    const taken = await c.take("sp");
    assert.equal(taken.ok ? undefined : taken.code, "savepoint-unreachable");
    assert.equal(c.sent.length, 0);
  });

  it("fails when a worker fails its capture, releases every worker, and leaves no object", async () => {
    const c = cluster();
    c.intercept = (phase) =>
      phase === "capture" ? failure("savepoint-inbox-unread", "the inbox topic did not answer", true) : undefined;
    const taken = await c.take("sp");
    assert.equal(taken.ok ? undefined : taken.code, "savepoint-failed");
    assert.match(taken.ok ? "" : taken.message, /worker w1 \(capture\): the inbox topic did not answer/);
    assert.deepEqual(
      c.sent.map(({ phase, request }) => [phase, request.write]),
      [
        ["hold", undefined],
        ["capture", undefined],
        ["release", false],
      ],
    );
    await assertReleased(c);
    assert.deepEqual(objectsOf(c, "sp"), []);
  });

  it("fails when a worker fails its write, releases it, and deletes what the others wrote", async () => {
    const c = cluster();
    c.intercept = (phase, request) =>
      phase === "release" && request.write === true
        ? failure("savepoint-write-failed", "bucket gone", true)
        : undefined;
    const taken = await c.take("sp");
    assert.equal(taken.ok ? undefined : taken.code, "savepoint-failed");
    assert.match(taken.ok ? "" : taken.message, /worker w1 \(release\): bucket gone/);
    // w0 wrote partition 0's object as w1 failed: it is gone, and no manifest was written.
    assert.equal(c.blobs.deleted.length, 1);
    assert.match(c.blobs.deleted[0] ?? "", /^cluster-savepoints\/sp\/[^/]+\/0\.partition$/);
    await assertReleased(c);
    assert.deepEqual(objectsOf(c, "sp"), []);
  });

  it("fails when the manifest cannot be written, and deletes the partitions' objects", async () => {
    const c = cluster();
    c.blobs.failPuts.add(clusterSavepointManifestKey("sp"));
    const taken = await c.take("sp");
    assert.equal(taken.ok ? undefined : taken.code, "savepoint-failed");
    assert.match(taken.ok ? "" : taken.message, /manifest could not be written/);
    assert.deepEqual(c.blobs.deleted.map((key) => key.replace(/^cluster-savepoints\/sp\/[^/]+\//, "")).sort(), [
      "0.partition",
      "2.partition",
      "3.partition",
    ]);
    await assertReleased(c);
    assert.deepEqual(objectsOf(c, "sp"), []);
  });

  it("fails when the workers answer from different generations, and releases them", async () => {
    const c = cluster();
    c.w1.membership = { ...(c.w1.membership as NonNullable<FakeWorker["membership"]>), generationId: 8 };
    const taken = await c.take("sp");
    assert.equal(taken.ok ? undefined : taken.code, "savepoint-failed");
    assert.match(taken.ok ? "" : taken.message, /generations 7 and 8/);
    assert.equal(c.heldAtCapture.length, 0, "a capture was asked for");
    await assertReleased(c);
    assert.deepEqual(objectsOf(c, "sp"), []);
  });

  it("fails when a worker is still restoring, as the group moving (ask again), and releases the one that held", async () => {
    const c = cluster();
    c.w1.running = [2];
    const taken = await c.take("sp");
    assert.equal(taken.ok ? undefined : taken.code, "savepoint-rebalancing");
    assert.match(taken.ok ? "" : taken.message, /worker w1 \(hold\):.*restoring/);
    await assertReleased(c);
  });

  it("fails when a worker cannot be reached for its hold, and releases the one that held", async () => {
    const c = cluster();
    c.intercept = (phase) =>
      phase === "hold" ? failure("savepoint-unreachable", "connect ECONNREFUSED w1:9100", true) : undefined;
    const taken = await c.take("sp");
    assert.equal(taken.ok ? undefined : taken.code, "savepoint-failed");
    assert.match(taken.ok ? "" : taken.message, /worker w1 \(hold\): connect ECONNREFUSED/);
    await assertReleased(c);
  });

  it("fails when the workers hold fewer partitions than the cluster has", async () => {
    const c = cluster();
    // w1's generation gives it partition 2 only, though the owners seen by w0 say 2 and 3.
    c.w1.membership = { ...(c.w1.membership as NonNullable<FakeWorker["membership"]>), partitions: [2] };
    c.w1.running = [2];
    const taken = await c.take("sp");
    assert.equal(taken.ok ? undefined : taken.code, "savepoint-failed");
    assert.match(taken.ok ? "" : taken.message, /hold 3 of 4 partitions/);
    await assertReleased(c);
  });
});
