// Interop with the official StateFun Go SDK (statefun-sdk-go v3.3.0, Go module proxy) and
// Java SDK (statefun-sdk-java 3.3.0, Maven Central), at the protocol level: the greeter and
// counter of test/e2e/official-sdks/{go,java}, as scripts/ensure-official-sdks.sh builds
// them, against twins written with Eddy's SDK. Each request is encoded by Eddy's codec and
// POSTed to the SDK's server and handed to an in-process Eddy endpoint; both replies must be
// the same bytes, or where an SDK writes what the protocol reads as absent (the Go SDK's empty
// ExpirationSpec, below), the same after interop/normal.ts's normalization.
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { isDeepStrictEqual } from "node:util";
import { encodeToFunction, type Init, type ToFunction, type TypedValue } from "@eddy/protocol";
import { createEndpoint, statefulFunction, types } from "@eddy/sdk";
import { type OfficialSdk, startOfficialSdkServer } from "../../../test/support/official-sdk-servers.ts";
import type { PortPrintingServer } from "../../../test/support/port-printing-server.ts";
import { decodeWithEddy, type NormalReply } from "./interop/normal.ts";

/** Eddy's twins of the SDK servers' functions, under the SDK's namespace. */
function twins(namespace: string) {
  return [
    statefulFunction({
      typename: `${namespace}/greeter`,
      state: { visits: types.int },
      handle(ctx) {
        const visits = (ctx.storage.visits ?? 0) + 1;
        ctx.storage.visits = visits;
        const text = visits === 1 ? `Welcome ${ctx.self.id}!` : `Welcome back ${ctx.self.id}!`;
        if (ctx.caller !== undefined) ctx.reply(text, types.string);
      },
    }),
    statefulFunction({
      typename: `${namespace}/counter`,
      state: { count: types.int },
      handle(ctx) {
        const count = (ctx.storage.count ?? 0) + 1;
        ctx.storage.count = count;
        if (ctx.caller !== undefined) ctx.reply(count, types.int);
      },
    }),
  ];
}

const int = (n: number): Init<TypedValue> => ({
  typename: types.int.typename,
  hasValue: true,
  value: types.int.serialize(n),
});
const text = (s: string): Init<TypedValue> => ({
  typename: types.string.typename,
  hasValue: true,
  value: types.string.serialize(s),
});
const caller = { namespace: "interop", type: "caller", id: "c" };

/** The requests, for the functions of `namespace`. `state`: null is an entry without a value. */
function cases(namespace: string): { name: string; request: Init<ToFunction> }[] {
  const call = (type: string, state: Record<string, Init<TypedValue> | null>, calls: number, from = true) => ({
    invocation: {
      target: { namespace, type, id: "x" },
      state: Object.entries(state).map(([stateName, stateValue]) =>
        stateValue === null ? { stateName } : { stateName, stateValue },
      ),
      invocations: Array.from({ length: calls }, () => ({ argument: text("hi"), ...(from ? { caller } : {}) })),
    },
  });
  return [
    { name: "no state sent: the greeter asks for it", request: call("greeter", {}, 1) },
    {
      name: "a first visit: state set, the greeting sent to the caller",
      request: call("greeter", { visits: null }, 1),
    },
    { name: "a later visit", request: call("greeter", { visits: int(1) }, 1) },
    { name: "a batch of three: one mutation, three replies in order", request: call("counter", { count: int(5) }, 3) },
    { name: "no caller: the state changes, nothing is sent", request: call("counter", { count: null }, 1, false) },
  ];
}

/**
 * The Go SDK writes an empty ExpirationSpec (mode NONE) into a missing state's spec where Eddy
 * and the Java SDK leave it out: StateFun's runtime reads both as NONE.
 */
function withoutNoneExpiration(reply: NormalReply): NormalReply {
  if (reply.kind !== "incomplete") return reply;
  return {
    kind: "incomplete",
    missingValues: reply.missingValues.map((spec) =>
      spec.expirationSpec?.mode === 0 && spec.expirationSpec.expireAfterMillis === 0
        ? { ...spec, expirationSpec: null }
        : spec,
    ),
  };
}

for (const sdk of ["go", "java"] satisfies OfficialSdk[]) {
  describe(`interop with the official ${sdk === "go" ? "Go" : "Java"} SDK`, { timeout: 120_000 }, () => {
    let server: PortPrintingServer;
    const endpoint = createEndpoint(twins(sdk));

    before(async () => {
      server = await startOfficialSdkServer(sdk);
    });

    after(async () => {
      await server?.close();
    });

    for (const { name, request } of cases(sdk)) {
      it(name, async () => {
        const body = encodeToFunction(request);
        const response = await fetch(server.url, {
          method: "POST",
          headers: { "content-type": "application/octet-stream" },
          body,
        });
        const theirs = new Uint8Array(await response.arrayBuffer());
        assert.equal(response.status, 200, `${Buffer.from(theirs).toString()}\n${server.log().slice(-2000)}`);
        const ours = await endpoint.invoke(body);
        assert.ok(ours.ok, ours.ok ? "" : ours.message);
        const [theirReply, ourReply] = [decodeWithEddy(theirs), decodeWithEddy(ours.body)];
        assert.deepEqual(withoutNoneExpiration(theirReply), ourReply);
        // Where no normalization was needed, the bytes are the same too.
        if (isDeepStrictEqual(theirReply, ourReply)) {
          assert.equal(Buffer.from(theirs).toString("hex"), Buffer.from(ours.body).toString("hex"), "byte for byte");
        }
      });
    }
  });
}
