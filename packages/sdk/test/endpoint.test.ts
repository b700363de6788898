// Endpoint semantics at the byte level (statefun-protocol.md §1.7, §5.4): the state
// handshake, in-order batches, dirty-only mutations, DELETE vs MODIFY, absent vs empty
// values, typename checks on received state, and user errors turned into precise 500s.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import {
  decodeFromFunction,
  decodeKafkaProducerRecord,
  decodeKinesisEgressRecord,
  ExpireMode,
  encodeToFunction,
  type FromFunction,
  type Init,
  type InvocationResponse,
  MutationType,
  type PersistedValue,
  type ToFunctionInvocation,
  type TypedValue,
} from "@eddy/protocol";
import {
  address,
  type Context,
  createEndpoint,
  egressMessage,
  InvokeError,
  kafkaRecord,
  kinesisRecord,
  message,
  statefulFunction,
  type Type,
  types,
} from "@eddy/sdk";

const hex = (bytes: Uint8Array) => Buffer.from(bytes).toString("hex");
const fromHex = (text: string) => Uint8Array.from(Buffer.from(text.replace(/\s+/g, ""), "hex"));
const ascii = (text: string) => Buffer.from(text, "latin1").toString("hex");

function typed<T>(type: Type<T>, value: T): TypedValue {
  return { typename: type.typename, hasValue: true, value: type.serialize(value) };
}
const text = (value: string) => typed(types.string, value);

function request(
  target: string,
  options: { id?: string; state?: Init<PersistedValue>[]; invocations: Init<ToFunctionInvocation>[] },
): Uint8Array {
  const slash = target.lastIndexOf("/");
  return encodeToFunction({
    invocation: {
      target: { namespace: target.slice(0, slash), type: target.slice(slash + 1), id: options.id ?? "1" },
      state: options.state ?? [],
      invocations: options.invocations,
    },
  });
}

async function reply(endpoint: ReturnType<typeof createEndpoint>, body: Uint8Array): Promise<FromFunction> {
  const result = await endpoint.invoke(body);
  assert.ok(result.ok, result.ok ? "" : `${result.status} ${result.code}: ${result.message}`);
  const decoded = decodeFromFunction(result.body);
  assert.ok(decoded.ok, decoded.ok ? "" : decoded.error);
  return decoded.value;
}

async function result(endpoint: ReturnType<typeof createEndpoint>, body: Uint8Array): Promise<InvocationResponse> {
  const decoded = await reply(endpoint, body);
  assert.equal(decoded.incompleteInvocationContext, null, "expected an invocation result, got the state handshake");
  assert.ok(decoded.invocationResult, "the reply has an invocation result");
  return decoded.invocationResult;
}

describe("the state handshake", () => {
  let calls = 0;
  const fn = statefulFunction({
    typename: "ex/handshake",
    state: {
      plain: types.int,
      written: { type: types.string, expireAfterWrite: 1_000 },
      invoked: { type: types.json("ex/Doc"), expireAfterInvoke: 60_000 },
      flag: types.bool,
    },
    handle() {
      calls++;
    },
  });
  const endpoint = createEndpoint([fn]);

  it("answers IncompleteInvocationContext listing every missing spec with its TTL, and runs nothing", async () => {
    calls = 0;
    const decoded = await reply(
      endpoint,
      request("ex/handshake", { state: [{ stateName: "flag" }], invocations: [{ argument: text("a") }] }),
    );
    assert.equal(calls, 0, "no invocation may run before every declared state is present");
    assert.equal(decoded.invocationResult, null);
    const missing = decoded.incompleteInvocationContext?.missingValues ?? [];
    assert.deepEqual(
      missing.map((spec) => ({
        name: spec.stateName,
        typename: spec.typeTypename,
        expiration: spec.expirationSpec && { ...spec.expirationSpec },
      })),
      [
        { name: "plain", typename: "io.statefun.types/int", expiration: null },
        {
          name: "written",
          typename: "io.statefun.types/string",
          expiration: { mode: ExpireMode.AFTER_WRITE, expireAfterMillis: 1_000 },
        },
        {
          name: "invoked",
          typename: "ex/Doc",
          expiration: { mode: ExpireMode.AFTER_INVOKE, expireAfterMillis: 60_000 },
        },
      ],
    );
  });

  it("with no states at all, asks for all of them", async () => {
    const decoded = await reply(endpoint, request("ex/handshake", { invocations: [{ argument: text("a") }] }));
    assert.deepEqual(
      decoded.incompleteInvocationContext?.missingValues.map((spec) => spec.stateName),
      ["plain", "written", "invoked", "flag"],
    );
    assert.equal(calls, 0);
  });

  it("counts an entry without a value as present, and then runs the batch", async () => {
    calls = 0;
    const state = ["plain", "written", "invoked", "flag"].map((stateName) => ({ stateName }));
    const decoded = await result(
      endpoint,
      request("ex/handshake", { state, invocations: [{ argument: text("a") }, { argument: text("b") }] }),
    );
    assert.equal(calls, 2);
    assert.deepEqual(decoded.stateMutations, []);
  });

  // The worked examples of statefun-protocol.md §1.5, checked there against apache-flink-statefun@3.3.0.
  const golden = statefulFunction({
    typename: "ex/g",
    state: { seen: { type: types.int, expireAfterInvoke: 60_000 } },
    handle(ctx) {
      ctx.storage.seen = (ctx.storage.seen ?? 0) + 1;
    },
  });
  const intOne = `0a15${ascii("io.statefun.types/int")} 1001 1a05 0d01000000`;
  const target = `0a0a 0a02${ascii("ex")} 1201${ascii("g")} 1a01${ascii("1")}`;
  const invocation = `1a22 1220 ${intOne}`;

  it("replies to the 51-byte worked example with exactly the official SDK's 42 bytes", async () => {
    const body = await createEndpoint([golden]).handle(fromHex(`a20630 ${target} ${invocation}`));
    assert.equal(
      hex(body),
      hex(fromHex(`aa0627 0a25 0a04${ascii("seen")} 1206 0802 10e0d403 1a15${ascii("io.statefun.types/int")}`)),
    );
  });

  it("answers the re-sent request (with a value-less `seen`) with MODIFY seen := 1", async () => {
    const body = await createEndpoint([golden]).handle(
      fromHex(`a20638 ${target} 1206 0a04${ascii("seen")} ${invocation}`),
    );
    assert.equal(hex(body), hex(fromHex(`a2062c 0a2a 0801 1204${ascii("seen")} 1a20 ${intOne}`)));
  });
});

describe("a batch", () => {
  const seenBy: string[] = [];
  const log = statefulFunction({
    typename: "ex/log",
    state: { log: types.string, untouched: types.int, readOnly: types.int },
    async handle(ctx, msg) {
      // An await between the read and the write: invocations must still run one after another.
      const before = ctx.storage.log;
      await new Promise((resolve) => setTimeout(resolve, msg.as(types.string) === "a" ? 15 : 0));
      seenBy.push(`${msg.as(types.string)} saw ${JSON.stringify(before)} from ${ctx.caller?.toString() ?? "ingress"}`);
      ctx.storage.log = before === undefined ? msg.as(types.string) : `${before},${msg.as(types.string)}`;
      void ctx.storage.readOnly;
    },
  });
  const endpoint = createEndpoint([log]);

  it("runs invocations in order, each seeing the state the previous ones left, with its own caller", async () => {
    seenBy.length = 0;
    const decoded = await result(
      endpoint,
      request("ex/log", {
        state: [
          { stateName: "log" },
          { stateName: "untouched", stateValue: typed(types.int, 5) },
          { stateName: "readOnly", stateValue: typed(types.int, 7) },
        ],
        invocations: [
          { argument: text("a"), caller: { namespace: "ex", type: "sender", id: "s1" } },
          { argument: text("b") },
          { argument: text("c"), caller: { namespace: "ex", type: "other", id: "o/2" } },
        ],
      }),
    );
    assert.deepEqual(seenBy, [
      "a saw undefined from ex/sender/s1",
      'b saw "a" from ingress',
      'c saw "a,b" from ex/other/o/2',
    ]);
    // One mutation for the whole batch, with the final value; unassigned states are not reported.
    assert.equal(decoded.stateMutations.length, 1);
    const [mutation] = decoded.stateMutations;
    assert.equal(mutation?.stateName, "log");
    assert.equal(mutation?.mutationType, MutationType.MODIFY);
    assert.equal(types.string.deserialize(mutation?.stateValue?.value ?? new Uint8Array(0)), "a,b,c");
  });

  it("handleMessage answers a batch of plain handlers as a value, and goes async from the first awaiting one", async () => {
    const order: string[] = [];
    const mixed = statefulFunction({
      typename: "ex/mixed",
      state: { n: types.int },
      handle(ctx, msg) {
        const step = msg.as(types.string);
        ctx.storage.n = (ctx.storage.n ?? 0) + 1;
        order.push(`${step}:${ctx.storage.n}`);
        if (step !== "wait") return;
        return new Promise<void>((resolve) => setTimeout(resolve, 5)).then(() => {
          order.push("waited");
        });
      },
    });
    const mixedEndpoint = createEndpoint([mixed]);
    const batch = (...steps: string[]) => ({
      invocation: {
        target: { namespace: "ex", type: "mixed", id: "1" },
        state: [{ stateName: "n", stateValue: null }],
        invocations: steps.map((step) => ({ caller: null, argument: text(step) })),
      },
    });

    const plain = mixedEndpoint.handleMessage(batch("a", "b"));
    assert.ok(!(plain instanceof Promise), "no handler awaited: the reply is a plain value");
    assert.ok(plain.ok);
    assert.deepEqual(order, ["a:1", "b:2"]);

    order.length = 0;
    const later = mixedEndpoint.handleMessage(batch("a", "wait", "c"));
    assert.ok(later instanceof Promise, "a handler returned a promise: so does the batch");
    assert.deepEqual(order, ["a:1", "wait:2"], "the rest waits for the awaiting handler");
    const settled = await later;
    assert.deepEqual(order, ["a:1", "wait:2", "waited", "c:3"]);
    assert.ok(settled.ok);
    const [mutation] = settled.response.invocationResult?.stateMutations ?? [];
    assert.equal(types.int.deserialize(mutation?.stateValue?.value ?? new Uint8Array(0)), 3);
  });

  it("reports nothing for a batch that only reads", async () => {
    const reader = statefulFunction({
      typename: "ex/reader",
      state: { count: types.int },
      handle(ctx) {
        assert.equal(ctx.storage.count, 3);
      },
    });
    const decoded = await result(
      createEndpoint([reader]),
      request("ex/reader", {
        state: [{ stateName: "count", stateValue: typed(types.int, 3) }],
        invocations: [{ argument: text("x") }],
      }),
    );
    assert.deepEqual(decoded.stateMutations, []);
  });

  it("ignores states the function no longer declares, whatever their type", async () => {
    seenBy.length = 0;
    const decoded = await result(
      endpoint,
      request("ex/log", {
        state: [
          {
            stateName: "retired",
            stateValue: { typename: "old/Thing", hasValue: true, value: Uint8Array.of(1, 2, 3) },
          },
          { stateName: "log", stateValue: text("x") },
          { stateName: "untouched" },
          { stateName: "readOnly" },
        ],
        invocations: [{ argument: text("y") }],
      }),
    );
    assert.deepEqual(
      decoded.stateMutations.map((mutation) => mutation.stateName),
      ["log"],
    );
    assert.deepEqual(seenBy, ['y saw "x" from ingress']);
  });
});

describe("state values", () => {
  const observed: unknown[] = [];
  const cell = statefulFunction({
    typename: "ex/cell",
    state: { s: types.string, n: types.int, b: types.bool, l: types.long },
    handle(ctx, msg) {
      const command = msg.as(types.string);
      observed.push([ctx.storage.s, ctx.storage.n, ctx.storage.b, ctx.storage.l]);
      if (command === "empty") {
        ctx.storage.s = "";
        ctx.storage.n = 0;
        ctx.storage.b = false;
        ctx.storage.l = 0n;
      } else if (command === "delete") {
        ctx.storage.s = undefined;
        ctx.storage.n = undefined;
      } else if (command === "set-then-delete") {
        ctx.storage.s = "short-lived";
        ctx.storage.s = undefined;
      } else if (command === "delete-then-set") {
        ctx.storage.s = undefined;
        ctx.storage.s = "back";
      }
    },
  });
  const endpoint = createEndpoint([cell]);
  const allAbsent = ["s", "n", "b", "l"].map((stateName) => ({ stateName }));

  it("reads has_value with zero bytes as the empty value: '', 0, false, 0n are present", async () => {
    observed.length = 0;
    const state = [
      { stateName: "s", stateValue: { typename: types.string.typename, hasValue: true } },
      { stateName: "n", stateValue: { typename: types.int.typename, hasValue: true } },
      { stateName: "b", stateValue: { typename: types.bool.typename, hasValue: true } },
      { stateName: "l", stateValue: { typename: types.long.typename, hasValue: true } },
    ];
    await result(endpoint, request("ex/cell", { state, invocations: [{ argument: text("read") }] }));
    assert.deepEqual(observed, [["", 0, false, 0n]]);
  });

  it("reads an entry without a value, or with has_value=false, as absent (undefined)", async () => {
    observed.length = 0;
    const state = [
      { stateName: "s" },
      { stateName: "n", stateValue: { typename: types.int.typename, hasValue: false } },
      { stateName: "b", stateValue: { typename: types.bool.typename, hasValue: false, value: Uint8Array.of(8, 1) } },
      { stateName: "l" },
    ];
    await result(endpoint, request("ex/cell", { state, invocations: [{ argument: text("read") }] }));
    assert.deepEqual(observed, [[undefined, undefined, undefined, undefined]]);
  });

  it("writes empty values as MODIFY with has_value=true and zero bytes", async () => {
    const decoded = await result(
      endpoint,
      request("ex/cell", { state: allAbsent, invocations: [{ argument: text("empty") }] }),
    );
    assert.deepEqual(
      decoded.stateMutations.map((mutation) => ({
        name: mutation.stateName,
        type: mutation.mutationType,
        typename: mutation.stateValue?.typename,
        hasValue: mutation.stateValue?.hasValue,
        bytes: mutation.stateValue?.value.length,
      })),
      [
        { name: "s", type: MutationType.MODIFY, typename: "io.statefun.types/string", hasValue: true, bytes: 0 },
        { name: "n", type: MutationType.MODIFY, typename: "io.statefun.types/int", hasValue: true, bytes: 0 },
        { name: "b", type: MutationType.MODIFY, typename: "io.statefun.types/bool", hasValue: true, bytes: 0 },
        { name: "l", type: MutationType.MODIFY, typename: "io.statefun.types/long", hasValue: true, bytes: 0 },
      ],
    );
  });

  it("writes undefined as DELETE, with no value on the wire", async () => {
    const state = [
      { stateName: "s", stateValue: text("old") },
      { stateName: "n", stateValue: typed(types.int, 4) },
      { stateName: "b" },
      { stateName: "l" },
    ];
    const decoded = await result(endpoint, request("ex/cell", { state, invocations: [{ argument: text("delete") }] }));
    assert.deepEqual(
      decoded.stateMutations.map((mutation) => [mutation.stateName, mutation.mutationType, mutation.stateValue]),
      [
        ["s", MutationType.DELETE, null],
        ["n", MutationType.DELETE, null],
      ],
    );
  });

  it("reports the last assignment of a batch: set-then-delete is DELETE, delete-then-set is MODIFY", async () => {
    const state = [
      { stateName: "s", stateValue: text("old") },
      { stateName: "n" },
      { stateName: "b" },
      { stateName: "l" },
    ];
    const deleted = await result(
      endpoint,
      request("ex/cell", { state, invocations: [{ argument: text("set-then-delete") }] }),
    );
    assert.deepEqual(
      deleted.stateMutations.map((mutation) => [mutation.stateName, mutation.mutationType]),
      [["s", MutationType.DELETE]],
    );
    const modified = await result(
      endpoint,
      request("ex/cell", { state, invocations: [{ argument: text("delete-then-set") }] }),
    );
    assert.equal(modified.stateMutations[0]?.mutationType, MutationType.MODIFY);
    assert.equal(types.string.deserialize(modified.stateMutations[0]?.stateValue?.value ?? new Uint8Array(0)), "back");
  });

  it("refuses a stored value whose typename differs from the declared one: 500 state-type-mismatch, nothing run", async () => {
    observed.length = 0;
    const state = [
      { stateName: "s" },
      { stateName: "n", stateValue: typed(types.long, 7n) },
      { stateName: "b" },
      { stateName: "l" },
    ];
    const failed = await endpoint.invoke(
      request("ex/cell", { id: "user-9", state, invocations: [{ argument: text("read") }] }),
    );
    assert.equal(failed.ok, false);
    assert.ok(!failed.ok);
    assert.equal(failed.status, 500);
    assert.equal(failed.code, "state-type-mismatch");
    assert.match(failed.message, /ex\/cell/);
    assert.match(failed.message, /user-9/);
    assert.match(failed.message, /state "n"/);
    assert.match(failed.message, /io\.statefun\.types\/long/);
    assert.match(failed.message, /declares io\.statefun\.types\/int/);
    assert.deepEqual(observed, [], "the function must not run on a mistyped state");
  });

  it("refuses a mistyped value even when the function would not read that state", async () => {
    const state = [
      { stateName: "s" },
      { stateName: "n" },
      { stateName: "b", stateValue: text("true") },
      { stateName: "l" },
    ];
    const failed = await endpoint.invoke(request("ex/cell", { state, invocations: [{ argument: text("noop") }] }));
    assert.ok(!failed.ok);
    assert.equal(failed.code, "state-type-mismatch");
    assert.match(failed.message, /state "b" holds a value of type io\.statefun\.types\/string/);
  });

  it("reports stored bytes that do not decode as the declared type as a function error naming the state", async () => {
    const state = [
      { stateName: "s", stateValue: { typename: types.string.typename, hasValue: true, value: fromHex("0a05 6869") } },
      { stateName: "n" },
      { stateName: "b" },
      { stateName: "l" },
    ];
    const failed = await endpoint.invoke(request("ex/cell", { state, invocations: [{ argument: text("read") }] }));
    assert.ok(!failed.ok);
    assert.equal(failed.status, 500);
    assert.equal(failed.code, "function-error");
    assert.match(failed.message, /state "s" could not be read as io\.statefun\.types\/string/);
  });
});

describe("effects", () => {
  const greeter = statefulFunction({
    typename: "ex/effects",
    handle(ctx) {
      ctx.send(message(address("ex/friend", "f1"), "hello"));
      ctx.sendAfter(250, message({ typename: "ex/friend", id: "f2" }, 42n), { cancellationToken: "tok-1" });
      ctx.sendAfter(0, message(address("ex/friend", "f3"), true));
      ctx.cancelDelayedMessage("tok-0");
      ctx.send(egressMessage("ex/out", { ok: true }, types.json("ex/Result")));
      ctx.send(kafkaRecord({ egress: "ex/kafka", topic: "t", key: "k", value: "v" }));
      ctx.send(kinesisRecord({ egress: "ex/kinesis", stream: "s", partitionKey: "p", value: Uint8Array.of(1, 2) }));
      ctx.reply(7);
    },
  });

  it("are reported in call order, in wire form", async () => {
    const decoded = await result(
      createEndpoint([greeter]),
      request("ex/effects", {
        invocations: [{ argument: text("go"), caller: { namespace: "ex", type: "asker", id: "a" } }],
      }),
    );
    assert.deepEqual(
      decoded.outgoingMessages.map((out) => [
        out.target?.namespace,
        out.target?.type,
        out.target?.id,
        out.argument?.typename,
      ]),
      [
        ["ex", "friend", "f1", "io.statefun.types/string"],
        ["ex", "asker", "a", "io.statefun.types/int"],
      ],
    );
    const [later, now, cancel] = decoded.delayedInvocations;
    assert.equal(later?.delayInMs, 250);
    assert.equal(later?.cancellationToken, "tok-1");
    assert.equal(later?.isCancellationRequest, false);
    assert.equal(types.long.deserialize(later?.argument?.value ?? new Uint8Array(0)), 42n);
    assert.equal(now?.delayInMs, 0);
    assert.equal(now?.cancellationToken, "", "no token: the field is left empty");
    assert.equal(now?.target?.id, "f3");
    assert.deepEqual([cancel?.isCancellationRequest, cancel?.cancellationToken, cancel?.target], [true, "tok-0", null]);

    const [json, kafka, kinesis] = decoded.outgoingEgresses;
    assert.deepEqual([json?.egressNamespace, json?.egressType, json?.argument?.typename], ["ex", "out", "ex/Result"]);
    assert.equal(Buffer.from(json?.argument?.value ?? []).toString(), '{"ok":true}');
    assert.equal(kafka?.argument?.typename, "type.googleapis.com/io.statefun.sdk.egress.KafkaProducerRecord");
    // The bytes statefun-protocol.md §1.5 recorded from the official JS SDK's kafkaEgressMessage.
    assert.equal(
      hex(kafka?.argument?.value ?? new Uint8Array(0)),
      `0a01${ascii("k")}1201${ascii("v")}1a01${ascii("t")}`,
    );
    const kafkaDecoded = decodeKafkaProducerRecord(kafka?.argument?.value ?? new Uint8Array(0));
    assert.ok(kafkaDecoded.ok);
    assert.equal(kinesis?.argument?.typename, "type.googleapis.com/io.statefun.sdk.egress.KinesisEgressRecord");
    const kinesisDecoded = decodeKinesisEgressRecord(kinesis?.argument?.value ?? new Uint8Array(0));
    assert.ok(kinesisDecoded.ok);
    assert.deepEqual(
      [kinesisDecoded.value.stream, kinesisDecoded.value.partitionKey, [...kinesisDecoded.value.valueBytes]],
      ["s", "p", [1, 2]],
    );
  });
});

describe("errors in user code become 500 function-error with a clear message", () => {
  type Step = (ctx: Context) => void | Promise<void>;
  const cases: [string, Step, RegExp][] = [
    [
      "a thrown Error",
      () => {
        throw new Error("kaboom");
      },
      /kaboom/,
    ],
    [
      "a thrown string",
      () => {
        throw "plain string";
      },
      /plain string/,
    ],
    [
      "a rejected promise",
      async () => {
        await Promise.resolve();
        throw new RangeError("late failure");
      },
      /late failure/,
    ],
    [
      "sendAfter with a negative delay",
      (ctx) => ctx.sendAfter(-5, message(address("ex/x", "1"), "m")),
      /sendAfter\(\): the delay must be a non-negative whole number of milliseconds, got -5/,
    ],
    ["sendAfter with a fractional delay", (ctx) => ctx.sendAfter(1.5, message(address("ex/x", "1"), "m")), /got 1\.5/],
    [
      "sendAfter with an empty cancellation token",
      (ctx) => ctx.sendAfter(10, message(address("ex/x", "1"), "m"), { cancellationToken: "" }),
      /sendAfter\(\): a cancellation token must be a non-empty string/,
    ],
    [
      "sendAfter with an egress message",
      (ctx) => ctx.sendAfter(10, egressMessage("ex/out", "m") as never),
      /sendAfter\(\): expected a message built by message\(\)/,
    ],
    [
      "cancelDelayedMessage with an empty token",
      (ctx) => ctx.cancelDelayedMessage(""),
      /cancelDelayedMessage\(\): the cancellation token must be a non-empty string/,
    ],
    [
      "send with a plain object",
      (ctx) => ctx.send({ target: "ex/x" } as never),
      /send\(\): expected a message built by message\(\), egressMessage\(\)/,
    ],
    ["send with undefined", (ctx) => ctx.send(undefined as never), /send\(\): expected a message built by/],
    [
      "a message whose type cannot be inferred",
      (ctx) => ctx.send(message(address("ex/x", "1"), 1.5)),
      /message\(\): give a type for 1\.5/,
    ],
    [
      "an egress id that is not a typename",
      (ctx) => ctx.send(egressMessage("no-slash", "m")),
      /egressMessage\(\): "no-slash" is not a typename/,
    ],
    [
      "a Kafka record with an untyped object value",
      (ctx) => ctx.send(kafkaRecord({ egress: "ex/k", topic: "t", value: { a: 1 } })),
      /kafkaRecord\(\): give a type/,
    ],
    [
      "an address with a bad function type",
      (ctx) => ctx.send(message(address("nope", "1"), "m")),
      /address\(\): "nope" is not a typename/,
    ],
    [
      "reply() to a message from an ingress",
      (ctx) => ctx.reply("hi"),
      /reply\(\): the message to ex\/faulty\/7 has no caller/,
    ],
  ];

  for (const [name, step, expected] of cases) {
    it(name, async () => {
      const faulty = statefulFunction({ typename: "ex/faulty", handle: (ctx) => step(ctx) });
      const endpoint = createEndpoint([faulty]);
      const failed = await endpoint.invoke(request("ex/faulty", { id: "7", invocations: [{ argument: text("x") }] }));
      assert.ok(!failed.ok, "the request must fail");
      assert.equal(failed.status, 500);
      assert.equal(failed.code, "function-error");
      assert.match(failed.message, /^ex\/faulty \(id 7\)/);
      assert.match(failed.message, expected);
      await assert.rejects(
        endpoint.handle(request("ex/faulty", { id: "7", invocations: [{ argument: text("x") }] })),
        (error: unknown) => error instanceof InvokeError && error.status === 500 && expected.test(error.message),
      );
    });
  }

  it("a state value that cannot be encoded fails the batch and names the type", async () => {
    const bad = statefulFunction({
      typename: "ex/bad-state",
      state: { count: types.int },
      handle(ctx) {
        ctx.storage.count = 1.5;
      },
    });
    const failed = await createEndpoint([bad]).invoke(
      request("ex/bad-state", { state: [{ stateName: "count" }], invocations: [{ argument: text("x") }] }),
    );
    assert.ok(!failed.ok);
    assert.equal(failed.code, "function-error");
    assert.match(failed.message, /io\.statefun\.types\/int: 1\.5 is not a 32-bit integer/);
  });

  it("a failure in the middle of a batch fails the whole batch (no partial reply), and the endpoint keeps serving", async () => {
    const effects: string[] = [];
    const picky = statefulFunction({
      typename: "ex/picky",
      handle(ctx, msg) {
        const value = msg.as(types.string);
        if (value === "bad") throw new Error(`refusing ${value}`);
        effects.push(value);
        ctx.send(message(address("ex/x", "1"), value));
      },
    });
    const endpoint = createEndpoint([picky]);
    const failed = await endpoint.invoke(
      request("ex/picky", {
        invocations: [{ argument: text("one") }, { argument: text("bad") }, { argument: text("three") }],
      }),
    );
    assert.ok(!failed.ok);
    assert.match(failed.message, /refusing bad/);
    assert.deepEqual(effects, ["one"], "invocations after the failing one do not run");
    const decoded = await result(endpoint, request("ex/picky", { invocations: [{ argument: text("fine") }] }));
    assert.equal(decoded.outgoingMessages.length, 1);
  });
});

describe("requests the endpoint cannot serve", () => {
  const endpoint = createEndpoint([
    statefulFunction({ typename: "ex/a", handle() {} }),
    statefulFunction({ typename: "ex/b", handle() {} }),
  ]);

  it("an unknown function type is 404 unknown-function, naming it and what is served", async () => {
    const failed = await endpoint.invoke(request("ex/zzz", { invocations: [{ argument: text("x") }] }));
    assert.ok(!failed.ok);
    assert.deepEqual([failed.status, failed.code], [404, "unknown-function"]);
    assert.equal(failed.message, "unknown function type ex/zzz; this endpoint serves ex/a, ex/b");
  });

  it("malformed bodies are 400 malformed-request", async () => {
    for (const [body, expected] of [
      [new Uint8Array(0), /no invocation batch \(field 100\) in 0 bytes/],
      [fromHex("a2 06 05 0a"), /not a valid ToFunction \(4 bytes\)/],
      [fromHex("ff ff ff"), /request body is not a ToFunction/],
      [encodeToFunction({ invocation: { invocations: [{ argument: text("x") }] } }), /has no target address/],
    ] as const) {
      const failed = await endpoint.invoke(body);
      assert.ok(!failed.ok);
      assert.deepEqual([failed.status, failed.code], [400, "malformed-request"]);
      assert.match(failed.message, expected);
    }
  });

  it("an endpoint refuses duplicate function types and things that are not functions", () => {
    const fn = statefulFunction({ typename: "ex/dup", handle() {} });
    assert.throws(() => createEndpoint([fn, fn]), /ex\/dup is defined twice/);
    assert.throws(
      () => createEndpoint([{ typename: "ex/fake" } as never]),
      /expected functions made by statefulFunction\(\)/,
    );
    assert.deepEqual(createEndpoint([fn]).typenames, ["ex/dup"]);
  });
});
