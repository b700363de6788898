// Per-partition snapshots in a blob store (cluster/partition-snapshots.ts): a snapshot is the
// partition's rows as the local store holds them, named by the changelog offset it covers; a
// restore takes the newest, replaces what the local store had of the partition, and refuses a
// store that has none covering what the changelog no longer holds, or one that is not a snapshot.
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { DirectoryBlobStore } from "../src/checkpoint/blob/directory-blob-store.ts";
import { catchUp, changelogOffsetWrite } from "../src/cluster/changelog.ts";
import {
  listSnapshots,
  pruneSnapshots,
  restoreSnapshot,
  type SnapshotPlace,
  writeSnapshot,
} from "../src/cluster/partition-snapshots.ts";
import type { TopicReader } from "../src/cluster/topic-reader.ts";
import type { Key } from "../src/core/kv.ts";
import { MemoryKV } from "../src/core/kv.ts";
import type { PendingWrite } from "../src/core/overlay-kv.ts";
import { applyWrites } from "../src/core/overlay-kv.ts";
import type { DurableStore } from "../src/engine/engine.ts";

const dirs: string[] = [];
after(() => {
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

function blobStore(cluster = "c"): SnapshotPlace {
  const dir = mkdtempSync(join(tmpdir(), "eddy-snapshots-"));
  dirs.push(dir);
  return { blobs: new DirectoryBlobStore(dir), cluster };
}

/** A local store in memory that commits by applying the writes. */
function localStore(): DurableStore & MemoryKV {
  const kv = new MemoryKV() as DurableStore & MemoryKV;
  kv.commit = async (writes: readonly PendingWrite[]) => applyWrites(kv, writes);
  kv.close = async () => undefined;
  return kv;
}

const row = (partition: number, name: string): Key => ["p", partition, "test-rows", name];

function rowsOf(kv: MemoryKV, partition: number): [string, unknown][] {
  return [...kv.scan(["p", partition])].map(({ key, value }) => [JSON.stringify(key), value]);
}

describe("partition snapshots", () => {
  it("restores the newest snapshot in place of what the local store had, and leaves other partitions alone", async () => {
    const blobs = blobStore();
    const owner = localStore();
    await owner.commit([{ key: row(3, "a"), value: 1 }, { key: row(3, "b"), value: 2 }, changelogOffsetWrite(3, 10)]);
    assert.equal((await writeSnapshot(blobs, owner, 3))?.offset, 10);
    await owner.commit([
      { key: row(3, "a"), value: 5 },
      { key: row(3, "b"), value: undefined },
      changelogOffsetWrite(3, 17),
    ]);
    assert.equal((await writeSnapshot(blobs, owner, 3))?.offset, 17);

    const newcomer = localStore();
    // An old copy of partition 3 (a row the owner deleted since) and a row of partition 4.
    await newcomer.commit([{ key: row(3, "b"), value: 2 }, changelogOffsetWrite(3, 2), { key: row(4, "x"), value: 9 }]);
    const restored = await restoreSnapshot(blobs, newcomer, 3, 12);
    assert.ok(restored.ok, restored.ok ? "" : restored.message);
    assert.equal(restored.value.offset, 17);
    assert.deepEqual(rowsOf(newcomer, 3), rowsOf(owner, 3));
    assert.deepEqual(rowsOf(newcomer, 4), [[JSON.stringify(row(4, "x")), 9]]);
  });

  it("a late snapshot of an older state (a zombie's) never hides the newest", async () => {
    const blobs = blobStore();
    const owner = localStore();
    await owner.commit([{ key: row(1, "a"), value: "new" }, changelogOffsetWrite(1, 40)]);
    await writeSnapshot(blobs, owner, 1);
    const zombie = localStore();
    await zombie.commit([{ key: row(1, "a"), value: "old" }, changelogOffsetWrite(1, 25)]);
    await writeSnapshot(blobs, zombie, 1);
    const newcomer = localStore();
    const restored = await restoreSnapshot(blobs, newcomer, 1, 40);
    assert.ok(restored.ok);
    assert.equal(newcomer.get(row(1, "a")), "new");
  });

  it("refuses when no snapshot covers what the changelog no longer has", async () => {
    const blobs = blobStore();
    const owner = localStore();
    await owner.commit([{ key: row(2, "a"), value: 1 }, changelogOffsetWrite(2, 5)]);
    await writeSnapshot(blobs, owner, 2);
    const newcomer = localStore();
    const none = await restoreSnapshot(blobs, newcomer, 7, 3);
    assert.equal(none.ok, false);
    assert.match(
      none.ok ? "" : none.message,
      /partition 7: the changelog starts after offset 3, and .* has no snapshot/,
    );
    const tooOld = await restoreSnapshot(blobs, newcomer, 2, 9);
    assert.equal(tooOld.ok, false);
    assert.match(tooOld.ok ? "" : tooOld.message, /the newest covers 5/);
    assert.deepEqual(rowsOf(newcomer, 2), [], "nothing restored");
  });

  it("refuses a snapshot that is not one, or that holds rows of another partition", async () => {
    const blobs = blobStore();
    await blobs.blobs.put("clusters/c/partitions/5/0000000000000003.snapshot", new Uint8Array([1, 2, 3]));
    const garbled = await restoreSnapshot(blobs, localStore(), 5, 3);
    assert.equal(garbled.ok, false);
    assert.match(garbled.ok ? "" : garbled.message, /not a snapshot/);

    const owner = localStore();
    await owner.commit([{ key: row(6, "a"), value: 1 }, changelogOffsetWrite(6, 8)]);
    await writeSnapshot(blobs, owner, 6);
    const [written] = await listSnapshots(blobs, 6);
    const bytes = (await blobs.blobs.get(written?.key ?? "")) as Uint8Array;
    await blobs.blobs.put("clusters/c/partitions/8/0000000000000008.snapshot", bytes);
    const foreign = await restoreSnapshot(blobs, localStore(), 8, 8);
    assert.equal(foreign.ok, false);
    assert.match(foreign.ok ? "" : foreign.message, /rows of another partition/);
  });

  it("a cluster never restores another cluster's snapshots from a shared store", async () => {
    const ours = blobStore("ours");
    const theirs: SnapshotPlace = { blobs: ours.blobs, cluster: "theirs" };
    const other = localStore();
    await other.commit([{ key: row(4, "a"), value: "theirs" }, changelogOffsetWrite(4, 50)]);
    await writeSnapshot(theirs, other, 4);
    const refused = await restoreSnapshot(ours, localStore(), 4, 10);
    assert.equal(refused.ok, false);
    assert.match(refused.ok ? "" : refused.message, /has no snapshot/);
  });

  it("keeps the newest snapshots when pruning; a partition with no changelog yet has none", async () => {
    const blobs = blobStore();
    const owner = localStore();
    assert.equal(await writeSnapshot(blobs, owner, 0), undefined);
    for (const offset of [3, 9, 12, 20]) {
      await owner.commit([{ key: row(0, "n"), value: offset }, changelogOffsetWrite(0, offset)]);
      await writeSnapshot(blobs, owner, 0);
    }
    await pruneSnapshots(blobs, 0, 2);
    assert.deepEqual(
      (await listSnapshots(blobs, 0)).map((snapshot) => snapshot.offset),
      [12, 20],
    );
  });
});

describe("catching up a changelog trimmed while it is read", () => {
  it("stops with changelog-trimmed (retriable), so that the newer snapshot is restored first", async () => {
    const reader = {
      ends: async (partitions: readonly number[]) => new Map(partitions.map((p) => [p, 30n] as const)),
      seek: () => undefined,
      remove: () => undefined,
      poll: async () => [],
      trimmedPast: (partition: number) => partition === 2,
    };
    const caught = await catchUp(reader as unknown as TopicReader, localStore(), [1, 2], {
      nowMs: () => 0,
      deadlineMs: 1,
    });
    assert.equal(caught.ok, false);
    assert.equal(caught.ok ? "" : caught.code, "changelog-trimmed");
    assert.equal(caught.ok ? false : caught.retriable, true);
    assert.match(caught.ok ? "" : caught.message, /changelog partitions 2 were trimmed/);
  });
});
