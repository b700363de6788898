// The test harness as a user meets it: start an instance with some state, deliver
// messages one by one or as a batch, and inspect what the function sent, scheduled,
// cancelled, wrote to egresses and changed — all decoded.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { address, egressMessage, kafkaRecord, kinesisRecord, message, statefulFunction, types } from "@eddy/sdk";
import { harness } from "@eddy/sdk/testing";

const Order = types.json<{ id: string; total: number }>("shop/Order");

const cart = statefulFunction({
  typename: "shop/cart",
  state: {
    items: types.int,
    owner: types.string,
    lastOrder: { type: Order, expireAfterWrite: 86_400_000 },
  },
  handle(ctx, msg) {
    if (msg.is(types.int)) {
      ctx.storage.items = (ctx.storage.items ?? 0) + msg.as(types.int);
      ctx.send(message(address("shop/inventory", "main"), msg.as(types.int)));
      return;
    }
    if (msg.is(Order)) {
      const order = msg.as(Order);
      ctx.storage.lastOrder = order;
      ctx.storage.items = 0;
      ctx.send(egressMessage("shop/receipts", order, Order));
      ctx.send(kafkaRecord({ egress: "shop/kafka", topic: "orders", key: order.id, value: JSON.stringify(order) }));
      ctx.send(
        kinesisRecord({
          egress: "shop/kinesis",
          stream: "audit",
          partitionKey: ctx.self.id,
          explicitHashKey: "42",
          value: Uint8Array.of(1, 2, 3),
        }),
      );
      ctx.cancelDelayedMessage(`reminder-${ctx.self.id}`);
      return;
    }
    const command = msg.as(types.string);
    if (command === "remind") {
      ctx.sendAfter(60_000, message(ctx.self, "reminder"), { cancellationToken: `reminder-${ctx.self.id}` });
      ctx.sendAfter(5, message({ typename: "shop/metrics", id: "m" }, 1n));
    } else if (command === "forget") {
      ctx.storage.owner = undefined;
    } else if (command === "whoami") {
      ctx.reply(`you are ${ctx.caller?.id}; I belong to ${ctx.storage.owner ?? "nobody"}`);
    } else if (command === "fail") {
      throw new Error("cart refuses to fail quietly");
    }
  },
});

describe("harness()", () => {
  it("starts from the given state and runs the state handshake on the first call", async () => {
    const h = harness(cart, { id: "c1", state: { owner: "ada", items: 2 } });
    assert.equal(h.self.toString(), "shop/cart/c1");
    assert.deepEqual(h.state, { owner: "ada", items: 2 });
    const first = await h.invoke({ value: 3 });
    assert.equal(first.roundTrips, 2, "first call: IncompleteInvocationContext, then the re-sent batch");
    assert.deepEqual(first.changes, { items: { kind: "modified", value: 5 } });
    assert.deepEqual(first.state, { owner: "ada", items: 5 });
    const second = await h.invoke({ value: 1 });
    assert.equal(second.roundTrips, 1, "the states are registered now");
    assert.deepEqual(second.state, { owner: "ada", items: 6 });
  });

  it("delivers a batch in order; later messages see earlier changes; changes hold only what changed", async () => {
    const h = harness(cart, { state: { owner: "bob" } });
    const outcome = await h.invokeBatch([{ value: 1 }, { value: 2 }, { value: 4 }]);
    assert.deepEqual(outcome.changes, { items: { kind: "modified", value: 7 } });
    assert.deepEqual(
      outcome.sent.map((sent) => [sent.target.toString(), sent.message.as(types.int)]),
      [
        ["shop/inventory/main", 1],
        ["shop/inventory/main", 2],
        ["shop/inventory/main", 4],
      ],
    );
    assert.deepEqual(outcome.delayed, []);
    assert.deepEqual(outcome.egress, []);
  });

  it("reports deletions as { kind: 'deleted' } and drops the value from the state", async () => {
    const h = harness(cart, { state: { owner: "cy", items: 1 } });
    const outcome = await h.invoke({ value: "forget" });
    assert.deepEqual(outcome.changes, { owner: { kind: "deleted" } });
    assert.deepEqual(outcome.state, { items: 1 });
    assert.deepEqual(h.state, { items: 1 });
  });

  it("passes the caller, and reply() goes back to it", async () => {
    const h = harness(cart, { state: { owner: "dee" } });
    const outcome = await h.invoke({ value: "whoami", caller: { typename: "shop/user", id: "u7" } });
    assert.equal(outcome.sent.length, 1);
    assert.equal(outcome.sent[0]?.target.toString(), "shop/user/u7");
    assert.equal(outcome.sent[0]?.message.as(types.string), "you are u7; I belong to dee");
    assert.deepEqual(outcome.changes, {});
  });

  it("decodes delayed messages with their delay and token", async () => {
    const outcome = await harness(cart, { id: "c9" }).invoke({ value: "remind" });
    assert.deepEqual(
      outcome.delayed.map((delayed) => ({
        target: delayed.target.toString(),
        delayMs: delayed.delayMs,
        token: delayed.cancellationToken,
        typename: delayed.message.typename,
      })),
      [
        { target: "shop/cart/c9", delayMs: 60_000, token: "reminder-c9", typename: "io.statefun.types/string" },
        { target: "shop/metrics/m", delayMs: 5, token: undefined, typename: "io.statefun.types/long" },
      ],
    );
    assert.equal(outcome.delayed[1]?.message.as(types.long), 1n);
    assert.deepEqual(outcome.cancelled, []);
  });

  it("decodes egress messages, Kafka and Kinesis records, and cancellations", async () => {
    const h = harness(cart, { id: "c3", state: { items: 9 } });
    const order = { id: "o-1", total: 12.5 };
    const outcome = await h.invoke({ value: order, type: Order });
    assert.deepEqual(outcome.cancelled, ["reminder-c3"]);
    assert.deepEqual(
      outcome.egress.map((record) => record.egress),
      ["shop/receipts", "shop/kafka", "shop/kinesis"],
    );
    const [receipt, kafka, kinesis] = outcome.egress;
    assert.deepEqual(receipt?.message.as(Order), order);
    assert.equal(receipt?.kafka, undefined);
    assert.equal(kafka?.message.typename, "type.googleapis.com/io.statefun.sdk.egress.KafkaProducerRecord");
    assert.deepEqual(
      { topic: kafka?.kafka?.topic, key: kafka?.kafka?.key, value: Buffer.from(kafka?.kafka?.value ?? []).toString() },
      { topic: "orders", key: "o-1", value: JSON.stringify(order) },
    );
    assert.deepEqual(
      {
        stream: kinesis?.kinesis?.stream,
        partitionKey: kinesis?.kinesis?.partitionKey,
        explicitHashKey: kinesis?.kinesis?.explicitHashKey,
        value: [...(kinesis?.kinesis?.value ?? [])],
      },
      { stream: "audit", partitionKey: "c3", explicitHashKey: "42", value: [1, 2, 3] },
    );
    assert.deepEqual(outcome.changes, {
      lastOrder: { kind: "modified", value: order },
      items: { kind: "modified", value: 0 },
    });
  });

  it("takes explicit types for values that are not inferred", async () => {
    const echo = statefulFunction({
      typename: "ex/echo",
      handle(ctx, msg) {
        ctx.send(message(address("ex/sink", "1"), msg.bytes, types.bytes(msg.typename)));
      },
    });
    const h = harness(echo);
    const outcome = await h.invoke({ value: 2.25, type: types.double });
    assert.equal(outcome.sent[0]?.message.typename, "io.statefun.types/double");
    assert.equal(types.double.deserialize(outcome.sent[0]?.message.bytes ?? new Uint8Array(0)), 2.25);
    await assert.rejects(h.invoke({ value: 2.25 }), /invoke\(\) message 0: give a type for 2\.25/);
  });

  it("rejects with the function's error, and the instance is usable afterwards", async () => {
    const h = harness(cart, { state: { items: 1 } });
    await assert.rejects(h.invoke({ value: "fail" }), /shop\/cart \(id test\) failed: cart refuses to fail quietly/);
    assert.deepEqual(h.state, { items: 1 }, "a failed batch changes nothing");
    const outcome = await h.invoke({ value: 1 });
    assert.deepEqual(outcome.state, { items: 2 });
  });

  it("refuses initial state the function does not declare", () => {
    assert.throws(() => harness(cart, { state: { nope: 1 } as never }), /shop\/cart declares no state "nope"/);
  });
});
