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

/** A row of the shape its table holds (state, in-flight and backlog rows have a binary form). */
function sampleRow(key: Key, index: number): unknown {
  const argument = { typename: "t/x", hasValue: true, value: Uint8Array.of(index) };
  switch (key[2]) {
    case "state":
      return { typename: "t/s", value: Uint8Array.of(index, 1), writtenAtMs: index, invokedAtMs: index + 1 };
    case "inflight":
      return {
        target: { typename: "a/b", id: String(index) },
        batchId: index,
        invocations: [{ argument }],
        failedAttempts: 0,
      };
    case "backlog":
      return { caller: { typename: "c/d", id: "é" }, argument };
    default:
      return { index, bytes: Uint8Array.of(index) };
  }
}

/** Values with every byte array as a plain array, to compare what was written with what is read. */
function plain(value: unknown): unknown {
  if (value instanceof Uint8Array) return [...value];
  if (Array.isArray(value)) return value.map(plain);
  if (typeof value === "object" && value !== null) {
    return Object.fromEntries(Object.entries(value).map(([name, field]) => [name, plain(field)]));
  }
  return value;
}

describe("LmdbStore", () => {
  it("orders keys like compareKeys and scans by prefix like MemoryKV", async () => {
    const store = new LmdbStore({ path: join(dir, "order") });
    const memory = new MemoryKV();
    await store.commit(keys.map((key, index) => ({ key, value: sampleRow(key, index) })));
    for (const [index, key] of keys.entries()) {
      assert.deepEqual(plain(store.get(key)), plain(sampleRow(key, index)), `value of ${JSON.stringify(key)}`);
    }
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

describe("record codec", () => {
  it("round-trips state values, in-flight batches and backlog rows of every shape", async () => {
    const { decodeRecord, encodeRecord } = await import("../src/store/record-codec.ts");
    const argument = (text: string, hasValue = true) => ({
      typename: "ns/type",
      hasValue,
      value: new TextEncoder().encode(text),
    });
    const caller = { typename: "ns/caller", id: "id with ünïcode and \u0000 nul" };
    const cases: [Parameters<typeof encodeRecord>[0], unknown][] = [
      [
        "state",
        { typename: "io.statefun.types/int", value: Uint8Array.of(8, 1), writtenAtMs: 1764000000123, invokedAtMs: 0 },
      ],
      ["state", { typename: "t/empty", value: new Uint8Array(0), writtenAtMs: 1, invokedAtMs: 2 }],
      ["backlog", { argument: argument("x") }],
      ["backlog", { caller, argument: argument("", false) }],
      [
        "backlog",
        {
          argument: argument("from Kafka"),
          headers: [
            { key: "trace-id", value: Uint8Array.of(1, 2, 3) },
            { key: "trace-id", value: new Uint8Array(0) },
            { key: "ключ", value: null },
          ],
        },
      ],
      ["backlog", { caller, argument: argument("y"), headers: [] }],
      // A message in a trace, with and without headers and a caller.
      ["backlog", { argument: argument("traced"), trace: "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01" }],
      [
        "backlog",
        {
          caller,
          argument: argument("traced"),
          headers: [{ key: "k", value: Uint8Array.of(7) }],
          trace: "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-00",
        },
      ],
      [
        "inflight",
        {
          target: { typename: "ns/fn", id: "😀" },
          batchId: 2 ** 40 + 7,
          invocations: [{ argument: argument("a") }, { caller, argument: argument("b".repeat(70_000)) }],
          failedAttempts: 3,
        },
      ],
      ["inflight", { target: { typename: "ns/fn", id: "" }, batchId: 1, invocations: [], failedAttempts: 0 }],
    ];
    for (const [table, value] of cases) {
      assert.deepEqual(
        plain(decodeRecord(encodeRecord(table, value))),
        plain(value),
        `${table} ${JSON.stringify(plain(value)).slice(0, 80)}`,
      );
    }
    assert.throws(() => decodeRecord(Uint8Array.of(99)), /unknown kind 99/);
  });

  it("still reads rows written before the codec (msgpack maps)", async () => {
    const path = join(dir, "legacy");
    const { open } = await import("lmdb");
    const legacy = open({ path, compression: false });
    const state = { typename: "t/s", value: Uint8Array.of(1, 2), writtenAtMs: 5, invokedAtMs: 6 };
    await legacy.put(["p", 0, "state", "a/b", "id", "n"], state);
    await legacy.close();
    const store = new LmdbStore({ path });
    assert.deepEqual(plain(store.get(["p", 0, "state", "a/b", "id", "n"])), plain(state));
    await store.commit([{ key: ["p", 0, "state", "a/b", "id", "m"], value: state }]);
    assert.deepEqual(
      [...store.scan(["p", 0, "state"])].map(({ value }) => plain(value)),
      [plain(state), plain(state)],
    );
    await store.close();
  });
});
