// normalize*(message) must equal decode(encode(message)): the in-process path hands over
// messages without bytes, and must give functions and the runtime exactly what the wire would.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import {
  decodeFromFunction,
  decodeToFunction,
  encodeFromFunction,
  encodeToFunction,
  type FromFunction,
  type Init,
  normalizeFromFunction,
  normalizeToFunction,
  type ToFunction,
} from "../src/index.ts";

/** Plain data for comparison: Buffers and Uint8Arrays as hex, prototypes dropped. */
function plain(value: unknown): unknown {
  if (value instanceof Uint8Array) return Buffer.from(value).toString("hex");
  if (Array.isArray(value)) return value.map(plain);
  if (value !== null && typeof value === "object") {
    const out: Record<string, unknown> = {};
    for (const key of [
      "invocation",
      "target",
      "state",
      "invocations",
      "stateName",
      "stateValue",
      "caller",
      "argument",
      "typename",
      "hasValue",
      "value",
      "namespace",
      "type",
      "id",
      "invocationResult",
      "incompleteInvocationContext",
      "stateMutations",
      "outgoingMessages",
      "delayedInvocations",
      "outgoingEgresses",
      "mutationType",
      "isCancellationRequest",
      "cancellationToken",
      "delayInMs",
      "egressNamespace",
      "egressType",
      "missingValues",
      "typeTypename",
      "expirationSpec",
      "mode",
      "expireAfterMillis",
    ]) {
      if (key in (value as object)) out[key] = plain((value as Record<string, unknown>)[key]);
    }
    return out;
  }
  return value;
}

const text = (s: string) => new TextEncoder().encode(s);

describe("normalize", () => {
  const requests: Init<ToFunction>[] = [
    {},
    { invocation: { target: { namespace: "a", type: "b", id: "" } } },
    {
      invocation: {
        target: { namespace: "a", type: "b", id: "1" },
        state: [{ stateName: "s" }, { stateName: "t", stateValue: { typename: "x/y", hasValue: true } }],
        invocations: [
          { argument: { typename: "x/y", hasValue: true, value: text("v") } },
          { caller: { namespace: "c" }, argument: null },
        ],
      },
    },
  ];
  for (const [index, request] of requests.entries()) {
    it(`ToFunction ${index} matches a wire round trip`, () => {
      const decoded = decodeToFunction(encodeToFunction(request));
      assert.ok(decoded.ok);
      assert.deepEqual(plain(normalizeToFunction(request)), plain(decoded.value));
    });
  }

  const replies: Init<FromFunction>[] = [
    {},
    { invocationResult: {} },
    {
      invocationResult: {
        stateMutations: [
          { stateName: "s" },
          { mutationType: 1, stateName: "t", stateValue: { typename: "x/y", hasValue: true, value: text("") } },
        ],
        outgoingMessages: [
          { target: { namespace: "a", type: "b", id: "1" }, argument: { typename: "x/y", hasValue: true } },
        ],
        delayedInvocations: [
          { delayInMs: 5, target: { id: "2" }, argument: { typename: "x/y" } },
          { isCancellationRequest: true, cancellationToken: "t" },
        ],
        outgoingEgresses: [
          { egressNamespace: "e", egressType: "f", argument: { typename: "x/y", hasValue: true, value: text("e") } },
        ],
      },
    },
    {
      incompleteInvocationContext: {
        missingValues: [
          { stateName: "s", typeTypename: "x/y" },
          { stateName: "t", expirationSpec: { mode: 2, expireAfterMillis: 60000 } },
          { stateName: "u", expirationSpec: {} },
        ],
      },
    },
  ];
  for (const [index, reply] of replies.entries()) {
    it(`FromFunction ${index} matches a wire round trip`, () => {
      const decoded = decodeFromFunction(encodeFromFunction(reply));
      assert.ok(decoded.ok);
      assert.deepEqual(plain(normalizeFromFunction(reply)), plain(decoded.value));
    });
  }
});
