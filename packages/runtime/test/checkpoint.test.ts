// Checkpoints of the logged store to a directory blob store: a base then deltas restore to
// exactly the state at the checkpoint's commit; deltas hold the net writes only; a damaged
// or incomplete checkpoint is skipped with its bad object named; retention keeps the newest
// and every savepoint; the chain goes on across a restart and starts anew once the deltas
// outweigh the base; restores and uploads report their progress file by file.
import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { DirectoryBlobStore } from "../src/checkpoint/blob/directory-blob-store.ts";
import { readCatalog } from "../src/checkpoint/catalog.ts";
import { Checkpointer } from "../src/checkpoint/checkpointer.ts";
import {
  allFiles,
  CHECKPOINTS_PREFIX,
  type Manifest,
  type StoredFile,
  storedBytes,
} from "../src/checkpoint/manifest.ts";
import { checkpointStateDir } from "../src/checkpoint/offline.ts";
import { isEmptyStateDir, restoreCheckpoint } from "../src/checkpoint/restore.ts";
import { CHUNK_BYTES, type TransferProgress } from "../src/checkpoint/stored-files.ts";
import type { Key, KeyValue } from "../src/core/kv.ts";
import { rowWrite, storeTables } from "../src/core/schema.ts";
import { lineLogger, NOOP_LOGGER } from "../src/observe/logger.ts";
import { APPLIED_KEY, LOG_DIRECTORY, LoggedStore } from "../src/store/logged-store.ts";

const root = mkdtempSync(join(tmpdir(), "eddy-checkpoint-"));
after(() => rmSync(root, { recursive: true, force: true }));
let dirs = 0;
const freshDir = () => join(root, String(dirs++));

/** Everything but the store's own bookkeeping, in key order. */
function contents(store: LoggedStore): [Key, unknown][] {
  return [...store.scan([])]
    .filter((entry: KeyValue) => entry.key[0] !== APPLIED_KEY[0])
    .map((entry) => [entry.key, entry.value]);
}

function state(count: number, round: number): { key: Key; value: unknown }[] {
  return Array.from({ length: count }, (_, index) => ({
    key: ["p", index % 7, "t", `instance-${index}`],
    value: { round, payload: Buffer.alloc(100, index % 251) },
  }));
}

interface Setup {
  readonly path: string;
  readonly store: LoggedStore;
  readonly blobs: DirectoryBlobStore;
  readonly checkpointer: Checkpointer;
  readonly lines: string[];
}

function setup(options: { keep?: number; blobsDir?: string } = {}): Setup {
  const path = freshDir();
  const store = new LoggedStore({ path, applyIntervalMs: 5 });
  const blobs = new DirectoryBlobStore(options.blobsDir ?? freshDir());
  const lines: string[] = [];
  const checkpointer = new Checkpointer({
    store,
    blobs,
    partitionCount: 7,
    intervalMs: 0,
    log: lineLogger((line) => lines.push(line)),
    ...(options.keep === undefined ? {} : { keep: options.keep }),
  });
  return { path, store, blobs, checkpointer, lines };
}

async function restored(
  blobs: DirectoryBlobStore,
  select?: string,
): Promise<{ store: LoggedStore; lines: string[]; id: string }> {
  const stateDir = freshDir();
  const lines: string[] = [];
  const result = await restoreCheckpoint({
    store: blobs,
    stateDir,
    log: lineLogger((line) => lines.push(line)),
    ...(select === undefined ? {} : { select }),
  });
  assert.ok(result.ok, result.ok ? "" : result.error);
  return { store: new LoggedStore({ path: stateDir }), lines, id: result.manifest.id };
}

/** From zero, one call per file, the bytes growing with each, ending exactly at the totals. */
function assertProgress(seen: readonly TransferProgress[], filesTotal: number, bytesTotal: number): void {
  assert.deepEqual(seen[0], { files: 0, filesTotal, bytes: 0, bytesTotal }, "the totals come before the first file");
  for (const [index, progress] of seen.entries()) {
    assert.equal(progress.files, index, "one call per file");
    assert.deepEqual([progress.filesTotal, progress.bytesTotal], [filesTotal, bytesTotal], "the totals never change");
    if (index > 0) assert.ok(progress.bytes > (seen[index - 1] as TransferProgress).bytes, "every file adds bytes");
  }
  assert.deepEqual(seen.at(-1), { files: filesTotal, filesTotal, bytes: bytesTotal, bytesTotal });
}

const rawBytes = (files: readonly StoredFile[]) => files.reduce((sum, file) => sum + file.rawBytes, 0);

describe("checkpoints", () => {
  it("restore only into a directory with no state: neither LMDB's file nor a write-ahead log", async () => {
    const { store, blobs, checkpointer } = setup();
    await store.commit(state(5, 1));
    await checkpointer.checkpoint();
    await checkpointer.close();
    await store.close();
    const logOnly = freshDir();
    mkdirSync(join(logOnly, LOG_DIRECTORY), { recursive: true });
    writeFileSync(join(logOnly, LOG_DIRECTORY, "0000000000000007.log"), "");
    assert.equal(isEmptyStateDir(logOnly), false);
    const refused = await restoreCheckpoint({ store: blobs, stateDir: logOnly, log: NOOP_LOGGER });
    assert.ok(!refused.ok);
    assert.match(refused.error, /already holds state/);
    assert.equal(isEmptyStateDir(freshDir()), true, "a directory that does not exist yet is empty");
  });

  it("restore a base and its deltas to exactly the state of the checkpoint's commit", async () => {
    const { store, blobs, checkpointer } = setup();
    await store.commit(state(500, 1));
    const first = await checkpointer.checkpoint();
    assert.equal(first?.manifest.deltas.length, 0, "the first checkpoint is a base");
    await store.commit(state(40, 2));
    await store.commit([
      { key: ["p", 1, "t", "instance-1"], value: undefined },
      { key: ["p", 9, "timer", 5], value: "fires" },
      // A row of the record codec's tables: the log, so the delta, holds it encoded.
      {
        key: ["p", 4, "state", "counter", "a", "count"],
        value: { typename: "io.statefun.types/int", writtenAtMs: 7, invokedAtMs: 8, value: new Uint8Array([8, 42]) },
      },
    ]);
    await store.commit([{ key: ["p", 9, "timer", 5], value: undefined }]);
    const second = await checkpointer.checkpoint();
    assert.equal(second?.manifest.deltas.length, 1, "the next is a delta");
    assert.equal(second?.manifest.seq, store.lastSeq);
    const expected = contents(store);
    // Commits after the checkpoint are not in it.
    await store.commit([{ key: ["p", 2, "t", "later"], value: "not in the checkpoint" }]);

    const copy = await restored(blobs);
    assert.equal(copy.id, second?.manifest.id);
    assert.deepEqual(contents(copy.store), expected);
    assert.equal(copy.store.lastSeq, second?.manifest.seq, "the restored log goes on after the checkpoint's seq");
    assert.ok(
      copy.lines.some((line) => line.includes("100%")),
      "progress is reported",
    );
    // The restored store takes commits, and they survive a reopen.
    await copy.store.commit([{ key: ["p", 3, "t", "after"], value: "restored and going on" }]);
    await copy.store.close();
    await checkpointer.close();
    await store.close();
  });

  it("skip nothing-new checkpoints and keep deltas to the net change", async () => {
    const { store, checkpointer } = setup();
    await store.commit(state(10_000, 1));
    await checkpointer.checkpoint();
    assert.equal(await checkpointer.checkpoint(), undefined, "nothing committed since");
    // 1% of the instances change, each written five times: the delta holds each once.
    const changed = state(100, 2);
    for (let time = 0; time < 5; time++) await store.commit(changed);
    const delta = await checkpointer.checkpoint();
    const changedBytes = changed.length * 130;
    assert.ok(delta !== undefined);
    assert.ok(
      delta.uploadedBytes <= 3 * changedBytes,
      `uploaded ${delta.uploadedBytes} bytes for ${changedBytes} bytes changed`,
    );
    await checkpointer.close();
    await store.close();
  });

  it("fall back to the previous checkpoint when the newest is damaged, naming the bad object", async () => {
    const { store, blobs, checkpointer } = setup();
    await store.commit(state(200, 1));
    await checkpointer.checkpoint();
    await store.commit(state(20, 2));
    const good = await checkpointer.checkpoint();
    const goodState = contents(store);
    await store.commit(state(30, 3));
    const damaged = await checkpointer.checkpoint();
    assert.ok(good !== undefined && damaged !== undefined);
    const last = damaged.manifest.deltas.at(-1)?.files[0];
    assert.ok(last !== undefined);
    const filePath = join(blobsRoot(blobs), last.key);
    const bytes = readFileSync(filePath);
    bytes[bytes.length >> 1] = (bytes[bytes.length >> 1] as number) ^ 0xff;
    writeFileSync(filePath, bytes);

    const copy = await restored(blobs);
    assert.equal(copy.id, good.manifest.id);
    assert.deepEqual(contents(copy.store), goodState);
    assert.ok(
      copy.lines.some(
        (line) => line.includes("skipping checkpoint") && line.includes(last.key) && line.includes(damaged.manifest.id),
      ),
      copy.lines.join("\n"),
    );
    await copy.store.close();

    // A truncated manifest is skipped too, named.
    const manifestPath = join(blobsRoot(blobs), damaged.key);
    writeFileSync(manifestPath, readFileSync(manifestPath).subarray(0, 100));
    const again = await restored(blobs);
    assert.equal(again.id, good.manifest.id);
    assert.ok(
      again.lines.some((line) => line.includes(damaged.key)),
      again.lines.join("\n"),
    );
    await again.store.close();

    // A missing data object: also skipped, named.
    rmSync(join(blobsRoot(blobs), good.manifest.deltas[0]?.files[0]?.key as string));
    const third = await restored(blobs);
    assert.notEqual(third.id, good.manifest.id);
    assert.ok(
      third.lines.some((line) => line.includes("missing")),
      third.lines.join("\n"),
    );
    await third.store.close();
    await checkpointer.close();
    await store.close();
  });

  it("keep the newest checkpoints and every savepoint, and delete the data no one needs", async () => {
    const { store, blobs, checkpointer } = setup({ keep: 2 });
    await store.commit(state(100, 0));
    await checkpointer.checkpoint();
    await store.commit(state(10, 1));
    const savepoint = await checkpointer.checkpoint({ savepointName: "before-upgrade" });
    const savedState = contents(store);
    for (let round = 2; round < 7; round++) {
      await store.commit(state(10, round));
      await checkpointer.checkpoint({ forceBase: round % 2 === 0 });
    }
    const catalog = await readCatalog(blobs);
    assert.equal(catalog.checkpoints.length, 2);
    assert.deepEqual(
      catalog.savepoints.map((entry) => entry.manifest.name),
      ["before-upgrade"],
    );
    const needed = new Set(
      [...catalog.checkpoints, ...catalog.savepoints].flatMap((entry) =>
        [...entry.manifest.base.files, ...entry.manifest.deltas.flatMap((delta) => delta.files)].map(
          (file) => file.key,
        ),
      ),
    );
    const data = await blobs.list("data/");
    assert.deepEqual(
      data.filter((key) => !needed.has(key)),
      [],
      "no unneeded data is left",
    );
    assert.equal((await blobs.list(CHECKPOINTS_PREFIX)).length, 2);

    // A store with savepoints only: a start on an empty directory does not take one by itself, and says how.
    const savepointsOnly = new DirectoryBlobStore(freshDir());
    for (const key of [...(savepoint?.manifest.base.files.map((file) => file.key) ?? []), savepoint?.key ?? ""]) {
      await savepointsOnly.put(key, (await blobs.get(key)) as Uint8Array);
    }
    const none = await restoreCheckpoint({ store: savepointsOnly, stateDir: freshDir(), log: NOOP_LOGGER });
    assert.ok(!none.ok && none.reason === "none");
    assert.match(none.error, /savepoints before-upgrade are restored only by name/);

    const copy = await restored(blobs, "before-upgrade");
    assert.equal(copy.id, savepoint?.manifest.id);
    assert.deepEqual(contents(copy.store), savedState);
    await copy.store.close();
    await assert.rejects(checkpointer.checkpoint({ savepointName: "../bad" }), /savepoint name/);
    await assert.rejects(checkpointer.checkpoint({ savepointName: "before-upgrade" }), /already exists/);
    await checkpointer.close();
    await store.close();
  });

  it("a restore tells its progress from zero to exactly the manifest's files and stored bytes, and logs none then", async () => {
    const { store, blobs, checkpointer } = setup();
    for (let round = 1; round <= 3; round++) {
      await store.commit(state(200, round));
      await checkpointer.checkpoint();
    }
    await checkpointer.close();
    await store.close();
    const newest = (await readCatalog(blobs)).checkpoints[0]?.manifest;
    assert.equal(newest?.deltas.length, 2, "a base and two deltas");
    const files = allFiles(newest);
    assert.equal(files.length, 3);

    const seen: TransferProgress[] = [];
    const lines: string[] = [];
    const result = await restoreCheckpoint({
      store: blobs,
      stateDir: freshDir(),
      log: lineLogger((line) => lines.push(line)),
      onProgress: (progress) => seen.push(progress),
    });
    assert.ok(result.ok, result.ok ? "" : result.error);
    assertProgress(seen, files.length, storedBytes(files));
    assert.equal(result.bytes, storedBytes(files), "the progress ends at what the result says was restored");
    assert.deepEqual(
      lines.filter((line) => line.includes("%")),
      [],
      "the caller shows the progress, not the log",
    );
  });

  it("an upload from a stopped Eddy tells its progress, base and delta, ending at exactly the files written", async () => {
    const path = freshDir();
    const location = freshDir();
    // Over one chunk of state, so the base is two files.
    const bigValues = Array.from({ length: 36 }, (_, index) => ({
      key: ["p", index % 7, "t", `big-${index}`],
      value: Buffer.alloc(512 * 1024, index),
    }));
    let store = new LoggedStore({ path });
    await store.commit([rowWrite(storeTables.partitionCount.key(), 7), ...bigValues]);
    await store.close();
    const take = async () => {
      const seen: TransferProgress[] = [];
      const result = await checkpointStateDir(path, location, {}, NOOP_LOGGER, (progress) => seen.push(progress));
      assert.ok(result.ok, result.ok ? "" : result.error);
      return { written: result.written, seen };
    };

    const base = await take();
    const baseFiles = base.written?.manifest.base.files ?? [];
    assert.equal(baseFiles.length, 2, `${rawBytes(baseFiles)} bytes in chunks of ${CHUNK_BYTES}`);
    assert.deepEqual(allFiles(base.written?.manifest as Manifest), baseFiles);
    assertProgress(base.seen, baseFiles.length, rawBytes(baseFiles));

    store = new LoggedStore({ path, keepLogAfter: base.written?.manifest.seq as number });
    await store.commit(state(50, 2));
    await store.close();
    const delta = await take();
    const deltaFiles = delta.written?.manifest.deltas[0]?.files ?? [];
    assert.equal(deltaFiles.length, 1, "a delta on the base");
    assertProgress(delta.seen, deltaFiles.length, rawBytes(deltaFiles));

    const nothing = await take();
    assert.equal(nothing.written, undefined);
    assert.deepEqual(nothing.seen, [], "nothing to upload, nothing told");
  });

  it("go on with deltas after a restart, and start a new base once the deltas outweigh the base", async () => {
    const first = setup();
    await first.store.commit(state(300, 1));
    await first.checkpointer.checkpoint();
    await first.store.commit(state(30, 2));
    await first.checkpointer.close();
    await first.store.close();

    const blobs = first.blobs;
    const store = new LoggedStore({
      path: first.path,
      applyIntervalMs: 5,
      keepLogAfter: (await readCatalog(blobs)).checkpoints[0]?.manifest.seq as number,
    });
    const checkpointer = new Checkpointer({ store, blobs, partitionCount: 7, intervalMs: 0, log: NOOP_LOGGER });
    const delta = await checkpointer.checkpoint();
    assert.equal(delta?.manifest.deltas.length, 1, "the chain goes on after the restart");
    // Rewrite everything a few times: the deltas soon outweigh the base.
    let rebased = false;
    for (let round = 3; round < 8 && !rebased; round++) {
      await store.commit(state(300, round));
      const written = await checkpointer.checkpoint();
      rebased = written?.manifest.deltas.length === 0;
    }
    assert.ok(rebased, "a new base once the deltas outweigh the old one");
    // The store emptied behind Eddy's back: the next checkpoint is a base again, not a delta on a chain that is gone.
    await blobs.delete(await blobs.list(""));
    await store.commit(state(3, 99));
    assert.equal((await checkpointer.checkpoint())?.manifest.deltas.length, 0);
    const expected = contents(store);
    const copy = await restored(blobs);
    assert.deepEqual(contents(copy.store), expected);
    await copy.store.close();
    await checkpointer.close();
    await store.close();
  });
});

function blobsRoot(blobs: DirectoryBlobStore): string {
  return new URL(blobs.url).pathname;
}
