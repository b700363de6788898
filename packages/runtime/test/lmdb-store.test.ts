// The LMDB store against the core's KV contract: the same key order as MemoryKV's
// compareKeys (the simulation relies on it), prefix scans, commits that survive reopening.
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { compareKeys, type Key, MemoryKV } from "../src/core/kv.ts";
import { LmdbStore } from "../src/store/lmdb-store.ts";

const dir = mkdtempSync(join(tmpdir(), "eddy-lmdb-"));
after(() => rmSync(dir, { recursive: true, force: true }));

const keys: Key[] = [
  ["p", 0, "timer", 10, 2],
  ["p", 0, "timer", 2, 7],
  ["p", 0, "timer", 2, 1],
  ["p", 0, "timerz"],
  ["p", 1, "state", "a/b", "id", "n"],
  ["p", 0, "state", "a/b", "", "n"],
  ["p", 0, "state", "a/b", "id\u0000x", "n"],
  ["p", 0, "state", "a/b", "id", "n"],
  ["p", 0, "state", "a/b", "ié", "n"],
  ["p", 0, "backlog", "a/b\u0000x", 300],
  ["p", 0, "backlog", "a/b\u0000x", 20],
  ["p", 12, "inflight", "k"],
  ["p", 2, "inflight", "k"],
];

describe("LmdbStore", () => {
  it("orders keys like compareKeys and scans by prefix like MemoryKV", async () => {
    const store = new LmdbStore({ path: join(dir, "order") });
    const memory = new MemoryKV();
    await store.commit(keys.map((key, index) => ({ key, value: { index, bytes: Uint8Array.of(index) } })));
    for (const [index, key] of keys.entries()) memory.put(key, { index });
    const expected = [...keys].sort(compareKeys);
    assert.deepEqual(
      [...store.scan(["p"])].map((entry) => entry.key),
      expected,
    );
    for (const prefix of [
      ["p", 0, "timer"],
      ["p", 0, "state", "a/b"],
      ["p", 0, "backlog"],
      ["p", 2],
    ] as Key[]) {
      assert.deepEqual(
        [...store.scan(prefix)].map((entry) => entry.key),
        [...memory.scan(prefix)].map((entry) => entry.key),
        `prefix ${JSON.stringify(prefix)}`,
      );
    }
    assert.deepEqual(
      [...store.scan(["p", 0, "timer"], { before: ["p", 0, "timer", 10] })].map((entry) => entry.key),
      [
        ["p", 0, "timer", 2, 1],
        ["p", 0, "timer", 2, 7],
      ],
    );
    assert.equal([...store.scan(["p", 0, "timer"], { limit: 1 })].length, 1);
    await store.close();
  });

  it("keeps committed writes and deletes across a reopen", async () => {
    const path = join(dir, "reopen");
    const first = new LmdbStore({ path });
    await first.commit([
      { key: ["a", 1], value: { typename: "t", value: Uint8Array.of(1, 2, 3) } },
      { key: ["a", 2], value: "two" },
    ]);
    await first.commit([{ key: ["a", 2], value: undefined }]);
    await first.close();
    const second = new LmdbStore({ path });
    const stored = second.get(["a", 1]) as { typename: string; value: Uint8Array };
    assert.equal(stored.typename, "t");
    assert.deepEqual([...stored.value], [1, 2, 3]);
    assert.equal(second.get(["a", 2]), undefined);
    await second.close();
  });
});
