// Keeps bench/sdk honest: Eddy's and the official SDK's handlers must answer the bench
// request with the same state mutations, and the right ones, or the comparison is moot.
// Behaviour only; the speed is measured by run.ts, never asserted in a test.
import assert from "node:assert/strict";
import { it } from "node:test";
import { decodeToFunction } from "@eddy/protocol";
import { expectedMutations, summarize } from "./equivalence.ts";
import { buildRequest, HANDLERS } from "./workload.ts";

it("both SDKs answer the bench request with the same state mutations", async () => {
  const request = buildRequest();
  const expected = expectedMutations();
  for (const name of ["eddy", "official"] as const) {
    const handler = HANDLERS[name]();
    const first = await handler(request);
    assert.deepEqual(summarize(name, first), expected, name);
    // The handler keeps nothing between requests: the same request gets the same reply.
    assert.deepEqual(await handler(request), first, `${name}, second call`);
  }
});

it("the bench request is a 10-invocation batch with two states", () => {
  const decoded = decodeToFunction(buildRequest());
  assert.ok(decoded.ok);
  const batch = decoded.value.invocation;
  assert.ok(batch !== null);
  assert.equal(batch.invocations.length, 10);
  assert.deepEqual(
    batch.state.map((state) => state.stateName),
    ["seen", "profile"],
  );
  assert.ok(batch.invocations.every((invocation) => invocation.caller !== null));
});
