// The logged store: commits are readable once durable in the log, reads merge the log's
// writes over LMDB's, applied segments go, a read-only open changes nothing, and a writer
// killed with SIGKILL at random moments loses no acknowledged commit and leaves nothing
// half-applied.
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdtempSync, readdirSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import type { Key } from "../src/core/kv.ts";
import { storeTables } from "../src/core/schema.ts";
import { EddyError } from "../src/errors.ts";
import { LmdbStore } from "../src/store/lmdb-store.ts";
import { LOG_DIRECTORY, LoggedStore, STORE_FORMAT } from "../src/store/logged-store.ts";

const root = mkdtempSync(join(tmpdir(), "eddy-logged-"));
after(() => rmSync(root, { recursive: true, force: true }));
let dirs = 0;
const freshDir = () => join(root, String(dirs++));
const NEVER = 3_600_000;
const FORMAT_KEY = storeTables.storeFormat.key();

const keysOf = (store: LoggedStore, prefix: Key) => [...store.scan(prefix)].map((entry) => entry.key);
const logFiles = (path: string) => readdirSync(join(path, LOG_DIRECTORY)).filter((name) => name.endsWith(".log"));

describe("LoggedStore", () => {
  it("reads its commits at once, merged in key order over what LMDB holds", async () => {
    const path = freshDir();
    const store = new LoggedStore({ path, applyIntervalMs: NEVER });
    await store.commit([
      { key: ["t", 1], value: "one" },
      { key: ["t", 3], value: "three" },
      { key: ["t", 5], value: "five" },
    ]);
    await store.applyAll();
    await store.commit([
      { key: ["t", 2], value: "two" },
      { key: ["t", 3], value: undefined },
      { key: ["t", 5], value: "FIVE" },
      { key: ["t", "x"], value: "ex" },
    ]);
    const expected = [
      [["t", 1], "one"],
      [["t", 2], "two"],
      [["t", 5], "FIVE"],
      [["t", "x"], "ex"],
    ];
    assert.deepEqual(
      [...store.scan(["t"])].map((entry) => [entry.key, entry.value]),
      expected,
    );
    assert.equal(store.get(["t", 3]), undefined);
    assert.deepEqual(keysOf(store, ["t"]).length, 4);
    assert.deepEqual([...store.scan(["t"], { before: ["t", 5] })].length, 2);
    assert.deepEqual([...store.scan(["t"], { limit: 3 })].length, 3);
    await store.applyAll();
    assert.deepEqual(
      [...store.scan(["t"])].map((entry) => [entry.key, entry.value]),
      expected,
    );
    await store.close();
    const reopened = new LoggedStore({ path });
    assert.deepEqual(
      [...reopened.scan(["t"])].map((entry) => [entry.key, entry.value]),
      expected,
    );
    await reopened.close();
  });

  it("replays what LMDB did not get before a stop without close, and keeps values as written", async () => {
    const path = freshDir();
    const value = { typename: "ns/t", value: Uint8Array.of(1, 2, 3), writtenAtMs: 5, invokedAtMs: 6 };
    const writer = spawn(
      process.execPath,
      [join(import.meta.dirname, "fixtures/logged-store-writer.ts"), path, "1", String(NEVER)],
      { stdio: ["ignore", "pipe", "inherit"] },
    );
    let acknowledged = 0;
    writer.stdout.on("data", (chunk: Buffer) => {
      for (const line of chunk.toString().trim().split("\n")) acknowledged = Math.max(acknowledged, Number(line));
      if (acknowledged >= 30) writer.kill("SIGKILL");
    });
    await new Promise((resolve) => writer.on("exit", resolve));
    const store = new LoggedStore({ path, applyIntervalMs: NEVER });
    const n = store.get(["n"]) as number;
    assert.ok(n >= acknowledged, `n ${n} after ${acknowledged} acknowledged`);
    const row = store.get(["row", n]) as { n: number; bytes: Uint8Array };
    assert.equal(row.n, n);
    assert.deepEqual([...row.bytes], [n % 256, 7]);
    // A state row goes through the log and through LMDB's binary form alike.
    await store.commit([{ key: ["p", 0, "state", "ns/t", "id", "s"], value }]);
    const fromLog = store.get(["p", 0, "state", "ns/t", "id", "s"]) as typeof value;
    await store.close();
    const fromLmdb = new LoggedStore({ path });
    const applied = fromLmdb.get(["p", 0, "state", "ns/t", "id", "s"]) as typeof value;
    for (const read of [fromLog, applied]) {
      assert.equal(read.typename, value.typename);
      assert.deepEqual([...read.value], [...value.value]);
      assert.equal(read.writtenAtMs, 5);
    }
    await fromLmdb.close();
  });

  it("drops the log segments LMDB has synced, and reads read-only without changing anything", async () => {
    const path = freshDir();
    const store = new LoggedStore({ path, applyIntervalMs: NEVER, segmentBytes: 512 });
    for (let index = 0; index < 60; index++) await store.commit([{ key: ["k", index], value: `value ${index}` }]);
    const segments = store.logSegmentCount;
    assert.ok(segments > 3, `${segments} segments`);
    const reader = await LoggedStore.openReadOnly(path);
    assert.equal(reader.get(["k", 59]), "value 59", "the reader sees what is only in the log");
    await assert.rejects(reader.commit([{ key: ["k"], value: 1 }]), /read-only/);
    await reader.close();
    assert.equal(logFiles(path).length, segments, "the reader changed nothing");
    await store.applyAll();
    assert.equal(store.logSegmentCount, 1, "only the segment being written stays");
    assert.equal(store.get(["k", 59]), "value 59");
    await store.close();
    assert.deepEqual(logFiles(path), [], "a clean close leaves no log to replay");
  });

  it("applies in the background, by time and by count", async () => {
    const path = freshDir();
    const byTime = new LoggedStore({ path, applyIntervalMs: 20, segmentBytes: 256 });
    for (let index = 0; index < 20; index++) await byTime.commit([{ key: ["k", index], value: index }]);
    const deadline = Date.now() + 5000;
    while (byTime.logSegmentCount > 1 && Date.now() < deadline) await new Promise((resume) => setTimeout(resume, 10));
    assert.equal(byTime.logSegmentCount, 1);
    await byTime.close();
    const byCount = new LoggedStore({ path, applyIntervalMs: NEVER, applyAtWrites: 10, segmentBytes: 256 });
    for (let index = 0; index < 40; index++) await byCount.commit([{ key: ["c", index], value: index }]);
    const until = Date.now() + 5000;
    while (byCount.logSegmentCount > 2 && Date.now() < until) await new Promise((resume) => setTimeout(resume, 10));
    assert.ok(byCount.logSegmentCount <= 2, `${byCount.logSegmentCount} segments`);
    await byCount.close();
  });

  it("applies by bytes, and a commit waits for the apply once the memtable is far past that", async () => {
    const path = freshDir();
    const applyAtBytes = 4096;
    const store = new LoggedStore({ path, applyIntervalMs: NEVER, applyAtBytes, segmentBytes: 8192 });
    const value = "v".repeat(1000);
    let memtableMax = 0;
    for (let index = 0; index < 200; index++) {
      await store.commit([{ key: ["b", index], value: `${index}${value}` }]);
      memtableMax = Math.max(memtableMax, store.memtableBytes);
    }
    // Without a byte bound nothing would be applied: no time-based apply, 200 writes ≪ 32,768.
    const deadline = Date.now() + 5000;
    while (store.logSegmentCount > 2 && Date.now() < deadline) await new Promise((resume) => setTimeout(resume, 10));
    assert.ok(store.logSegmentCount <= 2, `${store.logSegmentCount} segments: the writes were not applied`);
    assert.ok(memtableMax <= 4 * applyAtBytes + 1100, `the memtable held ${memtableMax} bytes`);
    assert.equal(store.get(["b", 199]), `199${value}`);
    await store.close();
  });

  it("logs the commits of two stores appending at the same time, each frame intact", async () => {
    const paths = [freshDir(), freshDir()];
    const stores = paths.map((path) => new LoggedStore({ path, applyIntervalMs: NEVER }));
    // Frames from a few bytes to past the reused frame buffer's size, both stores at once.
    const valueAt = (store: number, index: number) => `${store}:${index}:${"x".repeat((index * 7919) % 300_000)}`;
    await Promise.all(
      stores.map(async (store, which) => {
        for (let index = 0; index < 40; index++)
          await store.commit([{ key: ["k", index], value: valueAt(which, index) }]);
      }),
    );
    // Read back from the log alone: nothing was applied to LMDB.
    for (const [which, path] of paths.entries()) {
      const reader = await LoggedStore.openReadOnly(path);
      for (let index = 0; index < 40; index++) assert.equal(reader.get(["k", index]), valueAt(which, index));
      await reader.close();
    }
    for (const store of stores) await store.close();
  });

  it("keeps every value intact while applies to LMDB overlap the next commits", async () => {
    // LMDB's writes run off the main thread and read values where msgpackr packed them: a
    // commit must never write over bytes an apply still has to read.
    const path = freshDir();
    const store = new LoggedStore({ path, applyIntervalMs: 1, applyAtWrites: 64 });
    const valueAt = (index: number) => ({
      index,
      text: `${index}:${String(index % 10).repeat(1000 + (index % 3000))}`,
    });
    for (let index = 0; index < 4000; index++) {
      await store.commit([{ key: ["k", index], value: valueAt(index) }]);
    }
    await store.close();
    const reopened = new LoggedStore({ path, applyIntervalMs: NEVER });
    for (let index = 0; index < 4000; index++) assert.deepEqual(reopened.get(["k", index]), valueAt(index));
    await reopened.close();
  });

  it("drops a fresh write deleted before the next apply, and only that", async () => {
    const path = freshDir();
    const store = new LoggedStore({ path, applyIntervalMs: NEVER });
    await store.commit([{ key: ["base"], value: "in LMDB" }]);
    await store.applyAll();
    // Inserted where absent, deleted a commit later: LMDB never needs to hear of it.
    await store.commit([{ key: ["row", 1], value: "r1", fresh: true }]);
    await store.commit([{ key: ["row", 1], value: undefined }]);
    assert.equal(store.memtableWrites, 0, "a fresh row and its delete still wait for LMDB");
    // A plain put deleted the same way must still reach LMDB as a delete: LMDB may hold it.
    await store.commit([{ key: ["base"], value: "overwritten" }]);
    await store.commit([{ key: ["base"], value: undefined }]);
    assert.equal(store.memtableWrites, 1);
    // A fresh write over a pending delete is a put: the delete must not be lost with it.
    await store.commit([{ key: ["base"], value: "again", fresh: true }]);
    await store.commit([{ key: ["base"], value: undefined }]);
    assert.equal(store.memtableWrites, 1);
    // A fresh row that outlives an apply is deleted in LMDB as usual.
    await store.commit([{ key: ["row", 2], value: "r2", fresh: true }]);
    await store.applyAll();
    await store.commit([
      { key: ["row", 2], value: undefined },
      { key: ["row", 3], value: "r3", fresh: true },
    ]);
    await store.close();
    const reopened = new LoggedStore({ path, applyIntervalMs: NEVER });
    assert.deepEqual(
      [...reopened.scan(["row"])].map((entry) => [entry.key, entry.value]),
      [[["row", 3], "r3"]],
    );
    assert.equal(reopened.get(["base"]), undefined);
    await reopened.close();
  });

  it("records its format with its first apply, and refuses a directory a newer Eddy wrote", async () => {
    const path = freshDir();
    const store = new LoggedStore({ path, applyIntervalMs: NEVER });
    await store.close();
    const opened = new LmdbStore({ path });
    assert.equal(opened.get(FORMAT_KEY), undefined, "opening writes nothing");
    await opened.close();
    const writer = new LoggedStore({ path, applyIntervalMs: NEVER });
    await writer.commit([{ key: ["t", 1], value: "one" }]);
    await writer.close();
    const lmdb = new LmdbStore({ path });
    assert.equal(lmdb.get(FORMAT_KEY), STORE_FORMAT);
    await lmdb.commit([{ key: FORMAT_KEY, value: STORE_FORMAT + 1 }]);
    await lmdb.close();
    assert.throws(
      () => new LoggedStore({ path, readOnly: true }),
      (error: unknown) =>
        error instanceof EddyError && error.code === "state-dir-format" && error.message.includes(path),
    );
    assert.throws(() => new LoggedStore({ path }), /written by a newer Eddy/);
  });

  it("loses and half-applies nothing when the writer is killed at random moments", async () => {
    const path = freshDir();
    let next = 1;
    for (let round = 0; round < 8; round++) {
      // Alternate between applying often (kills land in LMDB's work) and rarely (in the log's).
      const applyMs = round % 2 === 0 ? 1 : 50;
      const writer = spawn(
        process.execPath,
        [join(import.meta.dirname, "fixtures/logged-store-writer.ts"), path, String(next), String(applyMs)],
        { stdio: ["ignore", "pipe", "inherit"] },
      );
      let acknowledged = next - 1;
      let started = false;
      const killAfterMs = 50 + Math.floor(Math.random() * 250);
      writer.stdout.on("data", (chunk: Buffer) => {
        for (const line of chunk.toString().trim().split("\n")) acknowledged = Math.max(acknowledged, Number(line));
        if (!started) {
          started = true;
          setTimeout(() => writer.kill("SIGKILL"), killAfterMs);
        }
      });
      await new Promise((resolve) => writer.on("exit", resolve));
      const store = new LoggedStore({ path, applyIntervalMs: NEVER });
      const n = store.get(["n"]) as number;
      assert.ok(n >= acknowledged, `round ${round}: n ${n} < ${acknowledged} acknowledged`);
      assert.ok(n <= acknowledged + 1, `round ${round}: n ${n}, only ${acknowledged} acknowledged`);
      const rows = keysOf(store, ["row"]).map((key) => key[1] as number);
      const low = Math.max(1, n - 4);
      assert.deepEqual(
        rows,
        Array.from({ length: n - low + 1 }, (_, index) => low + index),
        `round ${round}`,
      );
      const bulk = [...store.scan(["bulk"])].map((entry) => entry.value);
      const lastBulk = n - (n % 20);
      assert.deepEqual(bulk, lastBulk === 0 ? [] : new Array(3000).fill(lastBulk), `round ${round}: bulk rows`);
      await store.close();
      next = n + 1;
    }
    assert.ok(next > 40, `the writer made progress (to ${next - 1}), through several bulk rewrites`);
    assert.ok(statSync(path).isDirectory());
  });
});
