// The heap governor: the growing factor it picks for a live size and a target, and that it
// re-picks after a real full collection (forced here) and hands the factor back on stop.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { getHeapStatistics, setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";
import { growingPercentFor, heapTargetBytes, startHeapGovernor } from "../src/heap-governor.ts";

const MiB = 1024 * 1024;

describe("heap governor", () => {
  it("puts the next limit on the target, within V8's factors 1.1 to 4", () => {
    assert.equal(growingPercentFor(32 * MiB, 64 * MiB), 100);
    assert.equal(growingPercentFor(50 * MiB, 64 * MiB), 28);
    assert.equal(growingPercentFor(4 * MiB, 64 * MiB), 300, "at most 4×");
    assert.equal(growingPercentFor(100 * MiB, 64 * MiB), 10, "over the target: 1.1×, growing slowly");
    assert.equal(growingPercentFor(0, 64 * MiB), 300);
  });

  it("aims at four times the memory budget, at least 64 MiB", () => {
    assert.equal(heapTargetBytes(16 * MiB), 64 * MiB);
    assert.equal(heapTargetBytes(1 * MiB), 64 * MiB);
    assert.equal(heapTargetBytes(64 * MiB), 256 * MiB);
  });

  it("steers again after a full collection, and gives the factor back when stopped", async () => {
    setFlagsFromString("--expose-gc");
    const gc = runInNewContext("gc") as () => void;
    gc();
    const target = 2 * getHeapStatistics().used_heap_size;
    const governor = startHeapGovernor(target);
    try {
      assert.equal(governor.targetBytes, target);
      assert.ok(governor.growingPercent >= 50, `started at ${governor.growingPercent}%`);
      // Several times the target live (objects of 24 bytes and a slot of 8 each): the next
      // collection must leave the factor at its minimum.
      const live = Array.from({ length: Math.ceil(target / 8) }, (_, index) => ({ index }));
      gc();
      for (let waited = 0; governor.growingPercent !== 10 && waited < 5000; waited += 20) await sleep(20);
      assert.ok(getHeapStatistics().used_heap_size > target * 1.1 && live.length > 0, "the test's own premise");
      assert.equal(governor.growingPercent, 10, "after a full collection with more than the target live");
    } finally {
      governor.stop();
    }
    assert.equal(governor.growingPercent, 0);
  });
});
