// State snapshots: an assigned value is taken as it is at the assignment, and a later read
// in the same batch sees exactly what the reply will store, whatever the type's snapshot
// (JSON text, a built-in's normalized value, or bytes).
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { statefulFunction, types } from "@eddy/sdk";
import { harness } from "@eddy/sdk/testing";

describe("state assigned during a batch", () => {
  it("JSON: changing the object after the assignment changes neither later reads nor what is stored", async () => {
    const seen: unknown[] = [];
    const fn = statefulFunction({
      typename: "test/json",
      state: { doc: types.json<{ n: number; when?: unknown }>("test/Doc") },
      handle(ctx) {
        const doc = ctx.storage.doc ?? { n: 0 };
        doc.n += 1;
        ctx.storage.doc = doc;
        doc.n = 1000; // after the assignment: must not count
        doc.when = new Date(0); // a value JSON turns into text
        seen.push(structuredClone(ctx.storage.doc));
      },
    });
    const outcome = await harness(fn).invokeBatch([{ value: "a" }, { value: "b" }]);
    assert.deepEqual(seen, [{ n: 1 }, { n: 2 }]);
    assert.deepEqual(outcome.state.doc, { n: 2 });
  });

  it("float: a later read sees the value rounded to 32 bits, as it will be stored", async () => {
    const reads: number[] = [];
    const fn = statefulFunction({
      typename: "test/float",
      state: { x: types.float },
      handle(ctx, msg) {
        ctx.storage.x = (ctx.storage.x ?? 0) + msg.as(types.double);
        reads.push(ctx.storage.x as number);
      },
    });
    const outcome = await harness(fn).invokeBatch([
      { value: 1e-9, type: types.double },
      { value: 1, type: types.double },
      { value: -1, type: types.double },
    ]);
    assert.deepEqual(reads, [Math.fround(1e-9), Math.fround(1 + Math.fround(1e-9)), 0]);
    assert.equal(outcome.state.x, 0);
  });

  it("int: an out-of-range value fails at the assignment, naming the state", async () => {
    const fn = statefulFunction({
      typename: "test/int",
      state: { count: types.int },
      handle(ctx) {
        ctx.storage.count = 2 ** 31;
      },
    });
    await assert.rejects(
      harness(fn).invoke({ value: "x" }),
      /state "count" could not be written as io\.statefun\.types\/int: .*2147483648 is not a 32-bit integer/,
    );
  });

  it("string: a lone surrogate reads back as U+FFFD, as UTF-8 stores it", async () => {
    let read: string | undefined;
    const fn = statefulFunction({
      typename: "test/string",
      state: { text: types.string },
      handle(ctx) {
        ctx.storage.text = "a\ud800b";
        read = ctx.storage.text;
      },
    });
    const outcome = await harness(fn).invoke({ value: "x" });
    assert.equal(read, "a\ufffdb");
    assert.equal(outcome.state.text, "a\ufffdb");
  });
});
