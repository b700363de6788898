// PartitionSet.stateIds, the admin API's list of ids holding state: over many partitions, every
// page (by prefix, after a cursor, of any size) is exactly the smallest ids a full sort would
// give, though it stops reading each partition early (checked against that full sort).
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { addressKey, type FunctionTypename } from "../src/core/address.ts";
import { MemoryKV } from "../src/core/kv.ts";
import type { Catalog } from "../src/core/partition-core.ts";
import { PartitionSet } from "../src/core/partition-set.ts";
import { partitionOf } from "../src/core/partitioning.ts";
import { partitionKeyPrefix, tables } from "../src/core/schema.ts";

const TYPE = "shop/cart" as FunctionTypename;
const PARTITIONS = 16;

/** A deterministic pseudo-random sequence (a test must fail the same way twice). */
function random(seed: number): () => number {
  let state = seed;
  return () => {
    state = (state * 1_103_515_245 + 12_345) % 2 ** 31;
    return state / 2 ** 31;
  };
}

describe("state ids", () => {
  it("pages through ids held in many partitions exactly as a full sort would", () => {
    const next = random(7);
    const store = new MemoryKV();
    const ids = new Set<string>();
    const letters = "abcé";
    while (ids.size < 600) {
      let id = "";
      for (let length = 1 + Math.floor(next() * 5); length > 0; length--) id += letters[Math.floor(next() * 4)];
      ids.add(id);
    }
    for (const id of ids) {
      const partition = partitionOf(addressKey({ typename: TYPE, id }), PARTITIONS);
      // Two states per id: an id is listed once.
      for (const name of ["items", "total"]) {
        store.put([...partitionKeyPrefix(partition), ...tables.state.key(TYPE, id, name)], {
          typename: "io.statefun.types/int",
          value: new Uint8Array(),
          writtenAtMs: 0,
          invokedAtMs: 0,
        });
      }
    }
    // Another type's rows around it are never listed.
    store.put([...partitionKeyPrefix(0), ...tables.state.key("shop/carts" as FunctionTypename, "a", "n")], {
      typename: "t",
      value: new Uint8Array(),
      writtenAtMs: 0,
      invokedAtMs: 0,
    });
    const catalog: Catalog = { functionSettings: () => undefined, hasEgress: () => false };
    const set = new PartitionSet({
      store,
      catalog,
      partitionCount: PARTITIONS,
      listeners: { invoke: () => undefined, backpressure: () => undefined },
    });
    const sorted = [...ids].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
    for (let round = 0; round < 300; round++) {
      const limit = 1 + Math.floor(next() * 40);
      const prefix = next() < 0.5 ? "" : (letters[Math.floor(next() * 4)] as string);
      const after = next() < 0.5 ? undefined : sorted[Math.floor(next() * sorted.length)];
      const expected = sorted
        .filter((id) => id.startsWith(prefix) && (after === undefined || id > after))
        .slice(0, limit);
      const page = set.stateIds(TYPE, {
        limit,
        ...(prefix === "" ? {} : { prefix }),
        ...(after === undefined ? {} : { after }),
      });
      assert.deepEqual(page, expected, JSON.stringify({ limit, prefix, after }));
    }
    // Walking with the cursor lists every id once, in order.
    const walked: string[] = [];
    for (let after: string | undefined; ; ) {
      const page = set.stateIds(TYPE, { limit: 25, ...(after === undefined ? {} : { after }) });
      walked.push(...page);
      if (page.length < 25) break;
      after = page.at(-1);
    }
    assert.deepEqual(walked, sorted);
  });
});
