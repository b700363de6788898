// Interop with the official JavaScript SDK (npm apache-flink-statefun@3.3.0). For every
// request of the corpus (interop/corpus.ts) the same function, written with Eddy's SDK
// and with the official one, must produce the same effects; each codec must read the
// other's bytes the same way; and the raw reply bytes must match except where the
// corpus says why not (google-protobuf's field order for DelayedInvocation).
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { decodeFromFunction, encodeFromFunction, encodeToFunction } from "@eddy/protocol";
import { createEndpoint, kafkaRecord, kinesisRecord, statefulFunction, type Type, types } from "@eddy/sdk";
import { corpus, describe as describeValue } from "./interop/corpus.ts";
import { decodeWithEddy, decodeWithJspb, encodeWithJspb, showReply, toHex } from "./interop/normal.ts";
import {
  generated,
  kafkaEgressMessage,
  kinesisEgressMessage,
  type OfficialType,
  officialBytes,
  officialDouble,
  officialHandle,
  officialLong,
  StateFun,
} from "./interop/official.ts";

describe("Eddy and the official JS SDK answer the corpus identically", () => {
  for (const testCase of corpus) {
    it(testCase.name, async () => {
      const request = encodeToFunction(testCase.request);
      const endpoint = createEndpoint([testCase.eddy]);
      const eddyResult = await endpoint.invoke(request);
      assert.ok(eddyResult.ok, `Eddy failed: ${eddyResult.ok ? "" : eddyResult.message}`);
      const eddyReply = eddyResult.body;
      const officialReply = await officialHandle(request, [testCase.official]);

      // The effects are the ones the case is about (so agreement is not agreement on nothing).
      const eddyView = decodeWithEddy(eddyReply);
      assert.deepEqual(showReply(eddyView), testCase.effects);

      // Same effects from the official SDK, read with Eddy's codec.
      assert.deepEqual(decodeWithEddy(officialReply), eddyView);

      // google-protobuf (the official SDK's codec) reads both replies the same way.
      assert.deepEqual(decodeWithJspb(eddyReply), eddyView);
      assert.deepEqual(decodeWithJspb(officialReply), eddyView);

      // Raw bytes: identical, or only ordered differently (re-encoding the official reply
      // with Eddy's codec, which writes field-number order, gives Eddy's bytes).
      if (testCase.bytesDiffer === undefined) {
        assert.equal(toHex(officialReply), toHex(eddyReply));
      } else {
        assert.notEqual(toHex(officialReply), toHex(eddyReply), `expected a byte difference: ${testCase.bytesDiffer}`);
        assert.equal(officialReply.length, eddyReply.length);
        const decoded = decodeFromFunction(officialReply);
        assert.ok(decoded.ok);
        assert.equal(toHex(encodeFromFunction(decoded.value)), toHex(eddyReply));
      }

      // The same request built with google-protobuf has the same bytes.
      assert.equal(toHex(encodeWithJspb(testCase.request)), toHex(request));
      // Built by google-protobuf with the state list reversed (its order is unspecified:
      // the runtime iterates a hash map), it gets the same reply from each SDK.
      const states = testCase.request.invocation?.state ?? [];
      if (new Set(states.map((entry) => entry.stateName)).size === states.length && states.length > 1) {
        const reordered = encodeWithJspb({
          invocation: { ...testCase.request.invocation, state: states.toReversed() },
        });
        assert.notEqual(toHex(reordered), toHex(request));
        assert.equal(toHex(await endpoint.handle(reordered)), toHex(eddyReply));
        assert.equal(toHex(await officialHandle(reordered, [testCase.official])), toHex(officialReply));
      }
    });
  }

  it("the corpus covers every kind of effect and both reply kinds", () => {
    const lines = corpus.flatMap((testCase) => testCase.effects);
    for (const prefix of ["missing ", "MODIFY ", "DELETE ", "send ", "delay ", "cancel ", "egress "]) {
      assert.ok(
        lines.some((line) => line.startsWith(prefix)),
        `no case produces a "${prefix.trim()}" effect`,
      );
    }
    for (const kind of [
      "kafka{key=user-1",
      "kafka{key= ",
      "explicitHashKey=3",
      "explicitHashKey=}",
      ' token "',
      "ms interop",
    ]) {
      assert.ok(
        lines.some((line) => line.includes(kind)),
        `no case produces ${kind}`,
      );
    }
  });
});

// Every built-in type, encoded by each SDK and read by the other. The official JS SDK has
// no long or double; officialLong / officialDouble are custom types written by google-protobuf.
describe("built-in types: both SDKs write the same bytes and read each other's", () => {
  interface TypeCase {
    readonly eddy: Type<unknown>;
    readonly official: OfficialType<unknown>;
    readonly values: readonly unknown[];
  }
  const cases: readonly TypeCase[] = [
    { eddy: types.bool, official: StateFun.booleanType(), values: [true, false] },
    {
      eddy: types.int,
      official: StateFun.intType(),
      values: [0, 1, -1, 255, 256, 65_536, -2_147_483_648, 2_147_483_647],
    },
    {
      eddy: types.long,
      official: officialLong,
      values: [0n, 1n, -1n, 2n ** 31n, 2n ** 53n + 1n, -(2n ** 53n) - 1n, 2n ** 63n - 1n, -(2n ** 63n)],
    },
    {
      eddy: types.float,
      official: StateFun.floatType(),
      values: [
        0,
        1,
        -1,
        0.5,
        0.1,
        1.1,
        -3.75,
        3.4028234663852886e38,
        1.17549435e-38,
        1e-45,
        1e-40,
        Infinity,
        -Infinity,
      ],
    },
    {
      eddy: types.double,
      official: officialDouble,
      values: [0, 1, -1, 0.1, Math.PI, 1e300, -1e-300, 5e-324, Number.MAX_VALUE, Infinity, -Infinity],
    },
    {
      eddy: types.string,
      official: StateFun.stringType(),
      values: ["", "a", "héllo", "✓ 𝄞 日本語", "\u0000", "x".repeat(127), "x".repeat(128), "y".repeat(20_000)],
    },
    {
      eddy: types.json("interop/Doc"),
      official: StateFun.jsonType("interop/Doc"),
      values: [{ a: [1, "b", null, true] }, [], "text", 0, -1.5e-7, { "ü 𝄞": {} }],
    },
  ] as readonly TypeCase[];

  for (const { eddy, official, values } of cases) {
    it(`${eddy.typename}: ${values.length} values`, () => {
      assert.equal(eddy.typename, official.typename);
      for (const content of values) {
        const eddyBytes = eddy.serialize(content);
        const officialEncoded = officialBytes(official, content);
        assert.equal(toHex(eddyBytes), toHex(officialEncoded), `${describeValue(content)} encodes differently`);
        assert.deepEqual(eddy.deserialize(officialEncoded), official.deserialize(Buffer.from(eddyBytes)));
        assert.equal(describeValue(eddy.deserialize(officialEncoded)), describeValue(eddy.deserialize(eddyBytes)));
      }
    });
  }

  it("the generated wrapper classes shipped with the official SDK read Eddy's long and double", () => {
    const long = generated.types.LongWrapper.deserializeBinary(types.long.serialize(-(2n ** 40n) - 3n));
    assert.equal(long.getValue(), -(2 ** 40) - 3);
    const double = generated.types.DoubleWrapper.deserializeBinary(types.double.serialize(-0.1));
    assert.equal(double.getValue(), -0.1);
  });
});

describe("requests both SDKs refuse", () => {
  const eddyStrict = statefulFunction({
    typename: "interop/strict",
    state: { count: types.int },
    handle(ctx) {
      ctx.storage.count = (ctx.storage.count ?? 0) + 1;
    },
  });
  const officialStrict = {
    typename: "interop/strict",
    specs: [{ name: "count", type: StateFun.intType() }],
    fn(ctx: { storage: { count: number | null } }) {
      ctx.storage.count = (ctx.storage.count ?? 0) + 1;
    },
  };
  const target = { namespace: "interop", type: "strict", id: "s-1" };
  const ping = { argument: { typename: types.string.typename, hasValue: true, value: types.string.serialize("x") } };

  it("a request for a function type the endpoint does not serve", async () => {
    const request = encodeToFunction({ invocation: { target: { ...target, type: "unknown" }, invocations: [ping] } });
    const eddy = await createEndpoint([eddyStrict]).invoke(request);
    assert.equal(eddy.ok, false);
    assert.equal(eddy.ok ? 0 : eddy.status, 404);
    await assert.rejects(officialHandle(request, [officialStrict]), /unknown function type interop\/unknown/);
  });

  it("a state value whose typename is not the declared one (read by the function)", async () => {
    const request = encodeToFunction({
      invocation: {
        target,
        state: [
          {
            stateName: "count",
            stateValue: { typename: types.long.typename, hasValue: true, value: types.long.serialize(1n) },
          },
        ],
        invocations: [ping],
      },
    });
    const eddy = await createEndpoint([eddyStrict]).invoke(request);
    assert.equal(eddy.ok ? "ok" : eddy.code, "state-type-mismatch");
    await assert.rejects(officialHandle(request, [officialStrict]), /Type mismatch/);
  });

  it("a function that throws", async () => {
    const request = encodeToFunction({ invocation: { target, state: [{ stateName: "count" }], invocations: [ping] } });
    const failing = statefulFunction({
      typename: "interop/strict",
      state: { count: types.int },
      handle() {
        throw new Error("boom");
      },
    });
    const eddy = await createEndpoint([failing]).invoke(request);
    assert.equal(eddy.ok ? "ok" : eddy.code, "function-error");
    await assert.rejects(
      officialHandle(request, [
        {
          ...officialStrict,
          fn() {
            throw new Error("boom");
          },
        },
      ]),
      /boom/,
    );
  });
});

describe("record values both SDKs refuse to build", () => {
  it("an untyped integer outside 32 bits, for Kafka and Kinesis", () => {
    for (const value of [2 ** 31, -(2 ** 31) - 1, 2 ** 40]) {
      assert.throws(() => kafkaRecord({ egress: "interop/kafka", topic: "t", value }), /32-bit integers/);
      assert.throws(() => kafkaEgressMessage({ typename: "interop/kafka", topic: "t", value }), RangeError);
      assert.throws(
        () => kinesisRecord({ egress: "interop/kinesis", stream: "s", partitionKey: "p", value }),
        /32-bit integers/,
      );
      assert.throws(
        () => kinesisEgressMessage({ typename: "interop/kinesis", stream: "s", partitionKey: "p", value }),
        RangeError,
      );
    }
  });

  it("the 32-bit extremes are written by both, big-endian", () => {
    for (const value of [2 ** 31 - 1, -(2 ** 31)]) {
      const eddy = kafkaRecord({ egress: "interop/kafka", topic: "t", value });
      const official = kafkaEgressMessage({ typename: "interop/kafka", topic: "t", value });
      assert.equal(toHex(eddy.value.value), toHex(official.typedValue.getValue_asU8()));
    }
  });
});

// Where the two SDKs legitimately differ. Pinned so that a change on either side shows up.
describe("documented differences", () => {
  const officialFloat = StateFun.floatType();

  it("float ties: google-protobuf rounds half up, Eddy (like Java and Python) rounds half to even", () => {
    // 1 + 2^-24 lies exactly between the float32 values 1 and 1 + 2^-23. google-protobuf's
    // splitFloat32 uses Math.round (half up); IEEE 754 (Math.fround, DataView, Java's
    // (float) cast, Python's struct.pack) rounds to even. Ties are rare: random doubles in
    // range never hit one; both SDKs read either encoding.
    const tie = 1 + 2 ** -24;
    assert.equal(toHex(types.float.serialize(tie)), "0d0000803f");
    assert.equal(toHex(officialBytes(officialFloat, tie)), "0d0100803f");
    assert.equal(types.float.deserialize(types.float.serialize(tie)), Math.fround(tie));
  });

  it("float out of range: google-protobuf throws, Eddy writes ±Infinity like a (float) cast", () => {
    assert.equal(types.float.deserialize(types.float.serialize(1e39)), Infinity);
    assert.throws(() => officialBytes(officialFloat, 1e39), /Assertion failed/);
  });

  it("NaN: both write a quiet NaN, with different payload bits", () => {
    assert.equal(toHex(types.float.serialize(Number.NaN)), "0d0000c07f");
    assert.equal(toHex(officialBytes(officialFloat, Number.NaN)), "0dffffff7f");
    assert.ok(Number.isNaN(types.float.deserialize(officialBytes(officialFloat, Number.NaN))));
    assert.equal(toHex(types.double.serialize(Number.NaN)), "09000000000000f87f");
    assert.equal(toHex(officialBytes(officialDouble, Number.NaN)), "09ffffffffffffff7f");
    assert.ok(Number.isNaN(types.double.deserialize(officialBytes(officialDouble, Number.NaN))));
  });

  it("a mistyped state the function never reads: Eddy refuses the batch, the official SDK only fails on read", async () => {
    const request = encodeToFunction({
      invocation: {
        target: { namespace: "interop", type: "lazy", id: "l-1" },
        state: [
          {
            stateName: "count",
            stateValue: { typename: types.long.typename, hasValue: true, value: new Uint8Array() },
          },
        ],
        invocations: [{ argument: { typename: types.string.typename, hasValue: true } }],
      },
    });
    const eddy = await createEndpoint([
      statefulFunction({ typename: "interop/lazy", state: { count: types.int }, handle() {} }),
    ]).invoke(request);
    assert.equal(eddy.ok ? "ok" : eddy.code, "state-type-mismatch");
    const official = await officialHandle(request, [
      { typename: "interop/lazy", specs: [{ name: "count", type: StateFun.intType() }], fn() {} },
    ]);
    assert.deepEqual(showReply(decodeWithEddy(official)), []);
  });
});
