// OverlayKV against MemoryKV as the reference: every read and scan of the overlay (pending
// writes, sealed writes, base) must equal the same reads of one KV that took every write,
// across seals, releases and inserted rows deleted before their commit.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { type Key, type KeyValue, MemoryKV } from "../src/core/kv.ts";
import { applyWrites, OverlayKV } from "../src/core/overlay-kv.ts";
import { Random } from "./sim/random.ts";

const scanOf = (rows: Iterable<KeyValue>) => [...rows].map(({ key, value }) => [key, value]);

function randomKey(random: Random): Key {
  const table = random.pick(["backlog", "state", "timer", "inflight"]);
  const key: (string | number)[] = [table];
  const depth = 1 + random.int(3);
  for (let part = 0; part < depth; part++) key.push(random.chance(0.5) ? random.int(4) : random.pick(["a", "b", ""]));
  return key;
}

function randomPrefix(random: Random): Key {
  const key = randomKey(random);
  return key.slice(0, random.int(key.length + 1));
}

describe("OverlayKV", () => {
  it("reads and scans like one KV that took every write, across seals and releases, with or without a base prefix", () => {
    for (let seed = 1; seed <= 300; seed++) {
      const random = new Random(seed);
      const basePrefix: Key = seed % 2 === 0 ? [] : ["p", seed % 3];
      const store = new MemoryKV();
      const reference = new MemoryKV();
      const pendingTally = { count: 0 };
      const overlay = new OverlayKV(store, { basePrefix, checkInserts: true, pendingTally });
      let sealed: ReturnType<OverlayKV["seal"]> | undefined;
      for (let step = 0; step < 200; step++) {
        const roll = random.next();
        const key = randomKey(random);
        const where = `seed ${seed} step ${step} key ${JSON.stringify(key)}`;
        if (roll < 0.3) {
          const value = `v${step}`;
          if (reference.get(key) === undefined && random.chance(0.5)) overlay.insert(key, value);
          else overlay.put(key, value);
          reference.put(key, value);
        } else if (roll < 0.5) {
          overlay.delete(key);
          reference.delete(key);
        } else if (roll < 0.6) {
          assert.equal(overlay.get(key), reference.get(key), where);
        } else if (roll < 0.8) {
          const prefix = randomPrefix(random);
          const options = {
            ...(random.chance(0.3) ? { before: randomKey(random) } : {}),
            ...(random.chance(0.3) ? { limit: random.int(4) } : {}),
          };
          assert.deepEqual(
            scanOf(overlay.scan(prefix, options)),
            scanOf(reference.scan(prefix, options)),
            `${where} scan ${JSON.stringify(prefix)} ${JSON.stringify(options)}`,
          );
        } else if (roll < 0.9) {
          if (sealed === undefined) sealed = overlay.seal();
        } else if (sealed !== undefined) {
          applyWrites(store, sealed);
          overlay.release();
          sealed = undefined;
        }
        assert.equal(pendingTally.count, overlay.pendingCount, `${where}: the shared tally follows the pending writes`);
      }
      if (sealed !== undefined) {
        applyWrites(store, sealed);
        overlay.release();
      }
      applyWrites(store, overlay.seal());
      overlay.release();
      // What reached the store is exactly the reference, under the base prefix.
      assert.deepEqual(
        scanOf(store.scan(basePrefix)).map(([key, value]) => [(key as Key).slice(basePrefix.length), value]),
        scanOf(reference.scan([])),
        `seed ${seed}: the store after the last commit`,
      );
    }
  });

  it("a row inserted and deleted before its commit never reaches the store", () => {
    const store = new MemoryKV();
    const overlay = new OverlayKV(store);
    overlay.insert(["inflight", "a"], 1);
    overlay.put(["state", "a"], 2);
    overlay.delete(["inflight", "a"]);
    assert.deepEqual(overlay.seal(), [{ key: ["state", "a"], value: 2, fresh: false }]);
  });

  it("seals an insert as fresh, so the store below may drop it with a later delete too", () => {
    const overlay = new OverlayKV(new MemoryKV(), { basePrefix: ["p", 0] });
    overlay.insert(["backlog", 1], "m1");
    overlay.put(["backlog", 1], "m1'");
    overlay.put(["state", "a"], 2);
    const sealed = overlay.seal().sort((a, b) => String(a.key).localeCompare(String(b.key)));
    assert.deepEqual(sealed, [
      { key: ["p", 0, "backlog", 1], value: "m1'", fresh: true },
      { key: ["p", 0, "state", "a"], value: 2, fresh: false },
    ]);
  });

  it("a delete of a row that was committed is written, even when the row is inserted again", () => {
    const store = new MemoryKV();
    store.put(["inflight", "a"], 1);
    const overlay = new OverlayKV(store);
    overlay.delete(["inflight", "a"]);
    overlay.insert(["inflight", "a"], 2);
    overlay.delete(["inflight", "a"]);
    assert.deepEqual(overlay.seal(), [{ key: ["inflight", "a"], value: undefined, fresh: false }]);
  });

  it("refuses to seal again before the last sealed writes are released", () => {
    const overlay = new OverlayKV(new MemoryKV());
    overlay.put(["a"], 1);
    overlay.seal();
    assert.throws(() => overlay.seal(), /not released/);
  });
});
