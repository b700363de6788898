// Interop with the official StateFun Python SDK (PyPI apache-flink-statefun 3.3.0).
//
// scripts/ensure-python.sh installs the SDK into .tools/python; the test starts
// interop/python/server.py (the SDK's RequestReplyHandler behind a stdlib HTTP server)
// serving interop/python/functions.py, whose functions have Eddy twins in
// interop/python/functions.ts. Every case builds one ToFunction request with Eddy's
// encoder, POSTs it to the Python server and hands it to an in-process Eddy endpoint,
// decodes both replies with Eddy's decoder and compares them after normalize():
//
// * the Python SDK always writes an ExpirationSpec into a missing-state spec, mode NONE
//   when the state has no TTL; Eddy (like the official JS SDK) leaves it out. StateFun's
//   runtime reads an absent spec as NONE, so absent == {mode: NONE, expireAfterMillis: 0};
// * the Python SDK answers a batch with no effects with an empty body (an unset
//   FromFunction); Eddy sends an empty InvocationResponse. StateFun's runtime reads an
//   empty FromFunction as a successful response with no effects, so the two are equal;
// * state mutations are compared sorted by state name (their order carries no meaning);
// * bytes are compared as hex, and egress records are also decoded, for readable diffs.
//
// Where the two SDKs differ on purpose, the case says so and pins both behaviours.
import assert from "node:assert/strict";
import { resolve } from "node:path";
import { after, before, describe, it } from "node:test";
import {
  decodeFromFunction,
  decodeKafkaProducerRecord,
  decodeKinesisEgressRecord,
  encodeToFunction,
  type FromFunction,
  type Init,
  KAFKA_PRODUCER_RECORD_TYPENAME,
  KINESIS_EGRESS_RECORD_TYPENAME,
  type PersistedValue,
  type ToFunction,
  type TypedValue,
  type Address as WireAddress,
} from "@eddy/protocol";
import { createEndpoint, type Type, types } from "@eddy/sdk";
import { Agent, request } from "undici";
import { type PythonServer, startPythonServer } from "../../../test/support/python-server.ts";
import { eddyFunctions } from "./interop/python/functions.ts";

const pythonDir = resolve(import.meta.dirname, "interop/python");

// --- requests ---

function value<T>(type: Type<T>, v: T): Init<TypedValue> {
  return { typename: type.typename, hasValue: true, value: type.serialize(v) };
}
const cmd = (command: string): Init<TypedValue> => value(types.string, command);
/** A TypedValue that is there but carries no value (has_value = false). */
const noValue = (typename: string): Init<TypedValue> => ({ typename, hasValue: false });

interface Call {
  /** undefined: the invocation has no argument at all. */
  readonly arg?: Init<TypedValue>;
  readonly caller?: WireAddress;
}

/** A ToFunction batch. `state`: one entry per name; null is an entry without a value. */
function batch(
  typename: string,
  id: string,
  state: Record<string, Init<TypedValue> | null>,
  calls: readonly Call[],
): Init<ToFunction> {
  const slash = typename.lastIndexOf("/");
  return {
    invocation: {
      target: { namespace: typename.slice(0, slash), type: typename.slice(slash + 1), id },
      state: Object.entries(state).map(
        ([stateName, stateValue]): Init<PersistedValue> =>
          stateValue === null ? { stateName } : { stateName, stateValue },
      ),
      invocations: calls.map((call) => ({
        ...(call.caller === undefined ? {} : { caller: call.caller }),
        ...(call.arg === undefined ? {} : { argument: call.arg }),
      })),
    },
  };
}
const caller = (id: string): WireAddress => ({ namespace: "interop", type: "caller", id });

// --- normalized replies ---

const hex = (bytes: Uint8Array): string => Buffer.from(bytes).toString("hex");

function address(wire: WireAddress | null): object | null {
  return wire === null ? null : { namespace: wire.namespace, type: wire.type, id: wire.id };
}

function typedValue(wire: TypedValue | null): object | null {
  if (wire === null) return null;
  const out: Record<string, unknown> = { typename: wire.typename, hasValue: wire.hasValue, value: hex(wire.value) };
  if (wire.typename === KAFKA_PRODUCER_RECORD_TYPENAME) {
    const record = decodeKafkaProducerRecord(wire.value);
    out.record = record.ok
      ? { topic: record.value.topic, key: record.value.key, valueBytes: hex(record.value.valueBytes) }
      : record.error;
  } else if (wire.typename === KINESIS_EGRESS_RECORD_TYPENAME) {
    const record = decodeKinesisEgressRecord(wire.value);
    out.record = record.ok
      ? {
          stream: record.value.stream,
          partitionKey: record.value.partitionKey,
          explicitHashKey: record.value.explicitHashKey,
          valueBytes: hex(record.value.valueBytes),
        }
      : record.error;
  }
  return out;
}

type Normalized =
  | { readonly kind: "incomplete"; readonly missing: object[] }
  | {
      readonly kind: "result";
      readonly stateMutations: object[];
      readonly outgoingMessages: object[];
      readonly delayedInvocations: object[];
      readonly outgoingEgresses: object[];
    };

function normalize(reply: FromFunction): Normalized {
  const incomplete = reply.incompleteInvocationContext;
  if (incomplete !== null) {
    return {
      kind: "incomplete",
      missing: incomplete.missingValues.map((spec) => ({
        stateName: spec.stateName,
        typeTypename: spec.typeTypename,
        // Python always sends the spec (mode NONE without a TTL); Eddy leaves it out then.
        expirationSpec: {
          mode: spec.expirationSpec?.mode ?? 0,
          expireAfterMillis: Number(spec.expirationSpec?.expireAfterMillis ?? 0),
        },
      })),
    };
  }
  // Neither member set (Python's reply to a batch without effects) = success, no effects.
  const result = reply.invocationResult ?? {
    stateMutations: [],
    outgoingMessages: [],
    delayedInvocations: [],
    outgoingEgresses: [],
  };
  return {
    kind: "result",
    stateMutations: [...result.stateMutations]
      .sort((a, b) => (a.stateName < b.stateName ? -1 : a.stateName > b.stateName ? 1 : 0))
      .map((m) => ({ mutationType: m.mutationType, stateName: m.stateName, stateValue: typedValue(m.stateValue) })),
    outgoingMessages: result.outgoingMessages.map((m) => ({
      target: address(m.target),
      argument: typedValue(m.argument),
    })),
    delayedInvocations: result.delayedInvocations.map((d) => ({
      isCancellationRequest: d.isCancellationRequest,
      cancellationToken: d.cancellationToken,
      delayInMs: Number(d.delayInMs),
      target: address(d.target),
      argument: typedValue(d.argument),
    })),
    outgoingEgresses: result.outgoingEgresses.map((e) => ({
      egressNamespace: e.egressNamespace,
      egressType: e.egressType,
      argument: typedValue(e.argument),
    })),
  };
}

// --- the two sides ---

type Outcome =
  | { readonly ok: true; readonly reply: Normalized; readonly raw: FromFunction }
  | { readonly ok: false; readonly detail: string };

function decodeReply(side: string, body: Uint8Array): Outcome {
  const decoded = decodeFromFunction(body);
  assert.ok(decoded.ok, `${side}: the reply is not a FromFunction: ${decoded.ok ? "" : decoded.error}`);
  return { ok: true, reply: normalize(decoded.value), raw: decoded.value };
}

let server: PythonServer | undefined;
let baseUrl = "";
const agent = new Agent({ connections: 4 });
const endpoint = createEndpoint(eddyFunctions);

async function viaPython(body: Uint8Array): Promise<Outcome> {
  const response = await request(baseUrl, {
    method: "POST",
    body,
    headers: { "content-type": "application/octet-stream" },
    dispatcher: agent,
  });
  const reply = new Uint8Array(await response.body.arrayBuffer());
  if (response.statusCode !== 200) {
    return { ok: false, detail: `HTTP ${response.statusCode}: ${Buffer.from(reply).toString("utf8")}` };
  }
  assert.equal(response.headers["content-type"], "application/octet-stream");
  return decodeReply("python", reply);
}

async function viaEddy(body: Uint8Array): Promise<Outcome> {
  const result = await endpoint.invoke(body);
  if (!result.ok) return { ok: false, detail: `${result.status} ${result.code}: ${result.message}` };
  return decodeReply("eddy", result.body);
}

/** Both sides answer with a reply (not an error); fails with the error otherwise. */
function bothSucceed(python: Outcome, eddy: Outcome): asserts python is Outcome & { ok: true } {
  if (!python.ok)
    assert.fail(`the Python SDK failed: ${python.detail}\n--- server log ---\n${server?.log().slice(-4000)}`);
  if (!eddy.ok) assert.fail(`Eddy failed: ${eddy.detail}`);
}

// --- cases ---

interface Case {
  readonly name: string;
  readonly request: Init<ToFunction>;
  /** Default: both succeed with equal normalized replies. */
  readonly check?: (python: Outcome, eddy: Outcome) => void;
}

function same(python: Outcome, eddy: Outcome): void {
  bothSucceed(python, eddy);
  assert.ok(eddy.ok);
  assert.deepEqual(eddy.reply, python.reply);
}

function bothFail(python: Outcome, eddy: Outcome): void {
  assert.equal(python.ok, false, "the Python SDK should refuse this request");
  assert.equal(eddy.ok, false, "Eddy should refuse this request");
}

const H = "interop/handshake";
const S = "interop/state";
const P = "interop/presence";
const T = "interop/types";
const M = "interop/messaging";
const allState = (names: string[]): Record<string, null> => Object.fromEntries(names.map((name) => [name, null]));
const typesState = allState(["i", "l", "f", "d", "b", "s"]);
const messagingCall = (command: string, from?: WireAddress): Call =>
  from === undefined ? { arg: cmd(command) } : { arg: cmd(command), caller: from };

const cases: Case[] = [
  // --- handshake ---
  {
    name: "handshake: no state sent -> all specs missing (no TTL, expire after write, expire after call)",
    request: batch(H, "h", {}, [{ arg: cmd("go") }]),
  },
  {
    name: "handshake: some states sent -> only the missing ones, in declaration order; unknown states ignored",
    request: batch(H, "h", { by_write: null, stale: value(types.int, 3) }, [{ arg: cmd("go") }]),
  },
  {
    name: "handshake: every state present without a value -> the batch runs",
    request: batch(H, "h", allState(["plain", "by_write", "by_call"]), [{ arg: cmd("go") }]),
  },
  {
    name: "handshake: a state entry whose TypedValue has has_value=false counts as present (and as no value)",
    request: batch(H, "h", { plain: noValue(types.int.typename), by_write: null, by_call: null }, [{ arg: cmd("go") }]),
  },
  {
    name: "handshake: present values are read, extra states ignored, two invocations",
    request: batch(
      H,
      "h",
      {
        extra: value(types.string, "x"),
        by_call: value(types.long, 5n),
        plain: value(types.int, 41),
        by_write: value(types.string, "w"),
      },
      [{ arg: cmd("go") }, { arg: cmd("again") }],
    ),
  },
  // --- state ---
  {
    name: "state: MODIFY of a state that had no value",
    request: batch(S, "s", allState(["counter", "label", "flag"]), [{ arg: cmd("incr") }]),
  },
  {
    name: "state: a counter over a multi-invocation batch reports only the final value",
    request: batch(S, "s", { counter: value(types.int, 5), label: null, flag: null }, [
      { arg: cmd("incr") },
      { arg: cmd("incr") },
      { arg: cmd("label:first") },
      { arg: cmd("incr") },
      { arg: cmd("label:second") },
    ]),
  },
  {
    name: "state: DELETE of a present value",
    request: batch(S, "s", { counter: value(types.int, 1), label: value(types.string, "old"), flag: null }, [
      { arg: cmd("del-label") },
    ]),
  },
  {
    name: "state: DELETE of a state that had no value is still reported",
    request: batch(S, "s", allState(["counter", "label", "flag"]), [{ arg: cmd("del-counter") }]),
  },
  {
    name: "state: reading without writing reports no mutation",
    request: batch(
      S,
      "s",
      { counter: value(types.int, 9), label: value(types.string, "l"), flag: value(types.bool, true) },
      [{ arg: cmd("read") }],
    ),
  },
  {
    name: "state: set then delete in one invocation -> DELETE",
    request: batch(S, "s", { counter: null, label: value(types.string, "old"), flag: null }, [
      { arg: cmd("set-then-del") },
    ]),
  },
  {
    name: "state: delete then set in one invocation -> MODIFY",
    request: batch(S, "s", { counter: null, label: value(types.string, "old"), flag: null }, [
      { arg: cmd("del-then-set") },
    ]),
  },
  {
    name: "state: deletes and writes across a batch, last one wins",
    request: batch(S, "s", { counter: value(types.int, 2), label: value(types.string, "old"), flag: null }, [
      { arg: cmd("del-label") },
      { arg: cmd("label:again") },
      { arg: cmd("del-counter") },
      { arg: cmd("incr") },
      { arg: cmd("label:final") },
      { arg: cmd("del-label") },
    ]),
  },
  {
    name: "state: the empty string is a present value (MODIFY, has_value, zero bytes)",
    request: batch(S, "s", allState(["counter", "label", "flag"]), [{ arg: cmd("label:") }]),
  },
  {
    name: "state: false is a present value (MODIFY, has_value, zero bytes)",
    request: batch(S, "s", { counter: null, label: null, flag: value(types.bool, true) }, [{ arg: cmd("toggle") }]),
  },
  {
    name: "state: a state value of another type than declared, read by the function -> both refuse",
    request: batch(S, "s", { counter: value(types.string, "7"), label: null, flag: null }, [{ arg: cmd("incr") }]),
    check: bothFail,
  },
  {
    // Python (and the official JS SDK) check the typename only when the state is read;
    // Eddy checks every received state before running anything (endpoint.ts), so a
    // mismatched state the function never touches fails the batch in Eddy only.
    name: "state: a state value of another type, not read by the function -> Python runs it, Eddy refuses (stricter)",
    request: batch(S, "s", { counter: value(types.string, "7"), label: null, flag: null }, [{ arg: cmd("label:x") }]),
    check(python, eddy) {
      assert.equal(python.ok, true, python.ok ? "" : python.detail);
      assert.equal(eddy.ok, false);
      assert.match(eddy.ok ? "" : eddy.detail, /state-type-mismatch/);
    },
  },
  {
    name: "state: the function throws -> both refuse",
    request: batch(S, "s", allState(["counter", "label", "flag"]), [{ arg: cmd("incr") }, { arg: cmd("no-such") }]),
    check: bothFail,
  },
  // --- null vs empty ---
  {
    name: "presence: states without values, message with the empty string",
    request: batch(P, "p", { s: null, i: null }, [{ arg: value(types.string, "") }]),
  },
  {
    name: "presence: states holding the defaults (empty string, 0) as zero bytes; message without a value",
    request: batch(P, "p", { s: value(types.string, ""), i: value(types.int, 0) }, [
      { arg: noValue(types.string.typename) },
    ]),
  },
  {
    name: "presence: states with values; one invocation without an argument, one with a value",
    request: batch(P, "p", { s: value(types.string, "x"), i: value(types.int, -5) }, [{}, { arg: cmd("y") }]),
  },
  // --- built-in types ---
  {
    name: "types: int state and message (negative, near the int32 limit)",
    request: batch(T, "t", { ...typesState, i: value(types.int, 2_147_483_000) }, [
      { arg: value(types.int, 600) },
      { arg: value(types.int, -2_147_483_000) },
      { arg: value(types.int, -600) },
    ]),
  },
  {
    name: "types: int overflow -> both refuse",
    request: batch(T, "t", { ...typesState, i: value(types.int, 2_147_483_647) }, [{ arg: value(types.int, 1) }]),
    check: bothFail,
  },
  {
    name: "types: long state and message (beyond 2^53, negative)",
    request: batch(T, "t", { ...typesState, l: value(types.long, 2n ** 62n) }, [
      { arg: value(types.long, 2n ** 53n + 1n) },
      { arg: value(types.long, -(2n ** 63n) + 1n) },
    ]),
  },
  {
    name: "types: float state and message",
    request: batch(T, "t", { ...typesState, f: value(types.float, 0.1) }, [{ arg: value(types.float, 0.2) }]),
  },
  {
    // Float state read back after a write within one batch: the official SDKs store the
    // serialized value, so the next invocation sees it rounded to 32 bits.
    name: "types: float sums over a batch round to 32 bits after every write",
    request: batch(T, "t", typesState, [
      { arg: value(types.float, 1e-9) },
      { arg: value(types.float, 1) },
      { arg: value(types.float, -1) },
    ]),
  },
  {
    name: "types: double state and message",
    request: batch(T, "t", { ...typesState, d: value(types.double, 0.1) }, [
      { arg: value(types.double, 0.2) },
      { arg: value(types.double, -1e300) },
    ]),
  },
  {
    name: "types: bool state and message (true, then false as zero bytes)",
    request: batch(T, "t", { ...typesState, b: value(types.bool, false) }, [
      { arg: value(types.bool, true) },
      { arg: value(types.bool, false) },
    ]),
  },
  {
    name: "types: string state and message (non-ASCII, astral plane, empty)",
    request: batch(T, "t", { ...typesState, s: value(types.string, "héllo ") }, [
      { arg: value(types.string, "wörld ✓ 😀") },
      { arg: value(types.string, "") },
    ]),
  },
  {
    name: "types: every type in one batch, states present with values",
    request: batch(
      T,
      "t",
      {
        i: value(types.int, 1),
        l: value(types.long, 1n),
        f: value(types.float, 1.5),
        d: value(types.double, 1.5),
        b: value(types.bool, true),
        s: value(types.string, "a"),
      },
      [
        { arg: value(types.string, "b") },
        { arg: value(types.int, -2) },
        { arg: value(types.double, 2.25) },
        { arg: value(types.long, -3n) },
        { arg: value(types.bool, false) },
        { arg: value(types.float, -0.75) },
        { arg: value(types.int, 1) },
      ],
    ),
  },
  // --- messaging ---
  {
    name: "messaging: sends to other functions, every built-in type and a JSON value",
    request: batch(M, "m", {}, [messagingCall("send")]),
  },
  {
    name: "messaging: replies to the caller of each invocation (none for an ingress message)",
    request: batch(M, "m", {}, [
      messagingCall("reply", caller("a")),
      messagingCall("reply"),
      messagingCall("reply", caller("b")),
    ]),
  },
  {
    name: "messaging: send_after without a cancellation token (and with a zero delay)",
    request: batch(M, "m", {}, [messagingCall("delay")]),
  },
  {
    name: "messaging: send_after with a cancellation token",
    request: batch(M, "m", {}, [messagingCall("delay-token")]),
  },
  {
    name: "messaging: cancel_delayed_message",
    request: batch(M, "m", {}, [messagingCall("cancel")]),
  },
  {
    name: "messaging: send_after with a token then its cancellation, in one batch",
    request: batch(M, "m", {}, [messagingCall("delay-token", caller("c")), messagingCall("cancel")]),
  },
  {
    name: "egress: Kafka records with and without key, untyped string/bytes/int values and a typed value",
    request: batch(M, "m", {}, [messagingCall("kafka")]),
  },
  {
    name: "egress: an untyped Kafka value beyond int32 -> both refuse",
    request: batch(M, "m", {}, [messagingCall("kafka-int-overflow")]),
    check: bothFail,
  },
  {
    name: "egress: Kinesis records with and without explicit hash key, untyped and typed values",
    request: batch(M, "m", {}, [messagingCall("kinesis")]),
  },
  {
    name: "egress: generic egress messages (string, long, bool false)",
    request: batch(M, "m", {}, [messagingCall("egress")]),
  },
  {
    // Not a protocol difference, but one a consumer of the bytes sees: Python's
    // json.dumps separates with ", " and ": ", JSON.stringify adds no spaces. Both are
    // the same JSON value; the runtime carries the bytes untouched.
    name: "egress: a JSON value -> equal JSON, different bytes (Python's json.dumps adds spaces)",
    request: batch(M, "m", {}, [messagingCall("json")]),
    check(python, eddy) {
      bothSucceed(python, eddy);
      assert.ok(eddy.ok);
      const argument = (outcome: Outcome & { ok: true }): TypedValue => {
        const egress = outcome.raw.invocationResult?.outgoingEgresses[0]?.argument;
        assert.ok(egress, "an egress message");
        return egress;
      };
      const [fromPython, fromEddy] = [argument(python), argument(eddy)];
      assert.equal(fromPython.typename, fromEddy.typename);
      assert.equal(Buffer.from(fromPython.value).toString("utf8"), '{"a": 1, "b": [true, null, "é"]}');
      assert.equal(Buffer.from(fromEddy.value).toString("utf8"), '{"a":1,"b":[true,null,"é"]}');
      const parsed = (tv: TypedValue): unknown => JSON.parse(Buffer.from(tv.value).toString("utf8"));
      assert.deepEqual(parsed(fromEddy), parsed(fromPython));
    },
  },
  // --- errors ---
  {
    name: "an unknown function type -> both refuse",
    request: batch("interop/nobody", "x", {}, [messagingCall("send")]),
    check: bothFail,
  },
];

describe("interop with the official StateFun Python SDK (apache-flink-statefun 3.3.0)", () => {
  before(async () => {
    server = await startPythonServer(resolve(pythonDir, "server.py"), { args: ["0"], cwd: pythonDir });
    baseUrl = server.url;
  });

  after(async () => {
    await agent.close();
    await server?.close();
  });

  for (const testCase of cases) {
    it(testCase.name, async () => {
      const body = encodeToFunction(testCase.request);
      const [python, eddy] = await Promise.all([viaPython(body), viaEddy(body)]);
      (testCase.check ?? same)(python, eddy);
    });
  }
});
