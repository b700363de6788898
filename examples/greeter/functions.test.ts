import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { types } from "@eddy/sdk";
import { harness } from "@eddy/sdk/testing";
import { EgressRecordType, type GreetRequest, GreetRequestType, greeter, person } from "./functions.ts";

describe("greeter example", () => {
  it("person counts visits and asks the greeter with the person's name as id", async () => {
    const seth = harness(person, { id: "seth" });
    for (const expectedVisits of [1, 2, 3]) {
      const outcome = await seth.invoke({ value: { name: "seth" }, type: GreetRequestType });
      assert.equal(outcome.state.visits, expectedVisits);
      assert.equal(outcome.sent.length, 1);
      assert.equal(outcome.sent[0]?.target.toString(), "example/greeter/seth");
      assert.deepEqual(outcome.sent[0]?.message.as(GreetRequestType), { name: "seth", visits: expectedVisits });
    }
  });

  it("greeter welcomes, welcomes back, then charms", async () => {
    const greeterOfSeth = harness(greeter, { id: "seth" });
    const payloads: string[] = [];
    for (const visits of [1, 2, 3]) {
      const outcome = await greeterOfSeth.invoke({
        value: { name: "seth", visits },
        type: GreetRequestType,
        caller: { typename: "example/person", id: "seth" },
      });
      assert.equal(outcome.egress.length, 1);
      assert.equal(outcome.egress[0]?.egress, "io.statefun.playground/egress");
      const record = outcome.egress[0]?.message.as(EgressRecordType);
      assert.equal(record?.topic, "greetings");
      payloads.push(record?.payload ?? "");
    }
    assert.deepEqual(payloads, ["Welcome seth!", "Welcome back seth!", "third time's the charm, seth!"]);
  });

  it("passes a waiting request's address along, and the greeter answers it with the greeting", async () => {
    const waiting = { typename: "eddy.ingress/reply", id: "req-1" };
    const seth = harness(person, { id: "seth" });
    const asked = await seth.invoke({ value: { name: "seth" }, type: GreetRequestType, caller: waiting });
    const forwarded = asked.sent[0]?.message.as(GreetRequestType);
    assert.deepEqual(forwarded, { name: "seth", visits: 1, replyTo: waiting });

    const greeterOfSeth = harness(greeter, { id: "seth" });
    const answered = await greeterOfSeth.invoke({
      value: forwarded as GreetRequest,
      type: GreetRequestType,
      caller: { typename: "example/person", id: "seth" },
    });
    assert.equal(answered.sent.length, 1);
    assert.equal(answered.sent[0]?.target.toString(), "eddy.ingress/reply/req-1");
    assert.equal(answered.sent[0]?.message.as(types.string), "Welcome seth!");
    assert.equal(answered.egress.length, 1, "the greeting still goes to the egress too");
  });
});
