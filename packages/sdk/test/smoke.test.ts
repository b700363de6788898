import assert from "node:assert/strict";
import { it } from "node:test";
import { address, message, statefulFunction, types } from "@eddy/sdk";
import { harness } from "@eddy/sdk/testing";

const counter = statefulFunction({
  typename: "example/counter",
  state: { seen: types.int, name: { type: types.string, expireAfterWrite: 60_000 } },
  handle(ctx, msg) {
    ctx.storage.seen = (ctx.storage.seen ?? 0) + 1;
    ctx.storage.name = msg.as(types.string);
    ctx.send(message(address("example/other", "x"), ctx.storage.seen));
  },
});

it("harness smoke", async () => {
  const h = harness(counter, { id: "a" });
  const first = await h.invoke({ value: "bob" });
  assert.equal(first.roundTrips, 2);
  assert.deepEqual(first.state, { seen: 1, name: "bob" });
  const second = await h.invokeBatch([{ value: "x" }, { value: "y" }]);
  assert.equal(second.roundTrips, 1);
  assert.deepEqual(second.state, { seen: 3, name: "y" });
  assert.equal(second.sent.length, 2);
  assert.equal(second.sent[1]?.message.as(types.int), 3);
});
