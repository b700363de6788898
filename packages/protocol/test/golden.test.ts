// Golden byte vectors from statefun-protocol.md §1.5 and §3 (checked there against the
// official npm SDK). Both generated codecs must produce exactly these bytes and read each other.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import {
  decodeFromFunction,
  decodeKafkaProducerRecord,
  decodeToFunction,
  ExpireMode,
  encodeFromFunction,
  encodeKafkaProducerRecord,
  encodeToFunction,
  schemas,
} from "../src/index.ts";

function hex(text: string): Uint8Array {
  return Uint8Array.from(Buffer.from(text.replace(/\s+/g, ""), "hex"));
}
const ascii = (text: string) => Buffer.from(text, "latin1").toString("hex");
/** Compares bytes as hex: the fast codec hands out Buffers, bufbuild plain Uint8Arrays. */
function assertBytes(actual: Uint8Array, expected: Uint8Array): void {
  assert.equal(Buffer.from(actual).toString("hex"), Buffer.from(expected).toString("hex"));
}

const intOne = { typename: "io.statefun.types/int", hasValue: true, value: hex("0d01000000") };
const requestHex = `a20630 0a0a 0a02${ascii("ex")} 1201${ascii("g")} 1a01${ascii("1")} 1a22 1220 0a15${ascii("io.statefun.types/int")} 1001 1a05 0d01000000`;
const incompleteHex = `aa0627 0a25 0a04${ascii("seen")} 1206 0802 10e0d403 1a15${ascii("io.statefun.types/int")}`;

describe("ToFunction golden bytes", () => {
  const request = {
    invocation: { target: { namespace: "ex", type: "g", id: "1" }, invocations: [{ argument: intOne }] },
  };

  it("the fast codec encodes the 51-byte worked example exactly", () => {
    const bytes = encodeToFunction(request);
    assert.equal(bytes.length, 51);
    assertBytes(bytes, hex(requestHex));
  });

  it("Eddy's own invocation headers never reach the wire: the same 51 bytes", () => {
    const withHeaders = {
      invocation: {
        ...request.invocation,
        invocations: [{ argument: intOne, headers: [{ key: "trace-id", value: Uint8Array.of(1, 2) }] }],
      },
    };
    assertBytes(encodeToFunction(withHeaders), hex(requestHex));
  });

  it("the bufbuild codec encodes the same bytes", () => {
    const message = create(schemas.ToFunctionSchema, {
      request: {
        case: "invocation",
        value: { target: request.invocation.target, invocations: [{ argument: intOne }] },
      },
    });
    assertBytes(toBinary(schemas.ToFunctionSchema, message), hex(requestHex));
  });

  it("decodes with no caller and no states", () => {
    const decoded = decodeToFunction(hex(requestHex));
    assert.ok(decoded.ok);
    const batch = decoded.value.invocation;
    assert.ok(batch);
    assert.equal(batch.target?.id, "1");
    assert.equal(batch.state.length, 0);
    assert.equal(batch.invocations[0]?.caller, null);
    assert.deepEqual([...(batch.invocations[0]?.argument?.value ?? [])], [0x0d, 1, 0, 0, 0]);
  });
});

describe("FromFunction golden bytes", () => {
  it("encodes the 42-byte incomplete-context reply exactly, with both codecs", () => {
    const missing = {
      stateName: "seen",
      typeTypename: "io.statefun.types/int",
      expirationSpec: { mode: ExpireMode.AFTER_INVOKE, expireAfterMillis: 60000 },
    };
    const fast = encodeFromFunction({ incompleteInvocationContext: { missingValues: [missing] } });
    assert.equal(fast.length, 42);
    assertBytes(fast, hex(incompleteHex));
    const viaBufbuild = toBinary(
      schemas.FromFunctionSchema,
      create(schemas.FromFunctionSchema, {
        response: {
          case: "incompleteInvocationContext",
          value: {
            missingValues: [{ ...missing, expirationSpec: { mode: 2, expireAfterMillis: 60000n } }],
          },
        },
      }),
    );
    assertBytes(viaBufbuild, fast);
  });

  it("omits proto3 defaults: a DELETE mutation is just the state name", () => {
    const bytes = encodeFromFunction({
      invocationResult: { stateMutations: [{ mutationType: 0, stateName: "seen" }] },
    });
    assertBytes(bytes, hex(`a20608 0a06 1204${ascii("seen")}`));
  });

  it("reads DelayedInvocation fields in any order (the JS SDK writes #11 before #1)", () => {
    const delayed = `5a03${ascii("tok")} 0805 1207 0a02${ascii("ex")}1201${ascii("g")}`;
    const inner = `1a${(delayed.replace(/\s+/g, "").length / 2).toString(16).padStart(2, "0")}${delayed}`;
    const body = inner.replace(/\s+/g, "");
    const bytes = hex(`a206${(body.length / 2).toString(16).padStart(2, "0")}${body}`);
    const decoded = decodeFromFunction(bytes);
    assert.ok(decoded.ok);
    const d = decoded.value.invocationResult?.delayedInvocations[0];
    assert.equal(d?.cancellationToken, "tok");
    assert.equal(d?.delayInMs, 5);
    assert.equal(d?.target?.type, "g");
    const viaBufbuild = fromBinary(schemas.FromFunctionSchema, bytes);
    assert.equal(viaBufbuild.response.case, "invocationResult");
  });

  it("an empty body is a FromFunction with neither response set", () => {
    const decoded = decodeFromFunction(new Uint8Array(0));
    assert.ok(decoded.ok);
    assert.equal(decoded.value.invocationResult, null);
    assert.equal(decoded.value.incompleteInvocationContext, null);
  });

  it("truncated bytes are an error value naming the message", () => {
    const decoded = decodeFromFunction(hex(incompleteHex).subarray(0, 20));
    assert.equal(decoded.ok, false);
    assert.match(decoded.ok ? "" : decoded.error, /not a valid FromFunction \(20 bytes\)/);
  });
});

describe("KafkaProducerRecord golden bytes", () => {
  it("key, value_bytes, topic as the JS SDK writes them", () => {
    const bytes = encodeKafkaProducerRecord({ key: "k", valueBytes: new TextEncoder().encode("v"), topic: "t" });
    assertBytes(bytes, hex(`0a01${ascii("k")} 1201${ascii("v")} 1a01${ascii("t")}`));
    const back = decodeKafkaProducerRecord(bytes);
    assert.ok(back.ok);
    assert.equal(back.value.topic, "t");
    assertBytes(
      toBinary(
        schemas.KafkaProducerRecordSchema,
        create(schemas.KafkaProducerRecordSchema, { key: "k", valueBytes: new TextEncoder().encode("v"), topic: "t" }),
      ),
      bytes,
    );
  });
});

describe("built-in wrapper types (statefun-protocol.md §3)", () => {
  const cases: [string, Uint8Array, string][] = [
    ["int 1", toBinary(schemas.IntWrapperSchema, create(schemas.IntWrapperSchema, { value: 1 })), "0d01000000"],
    ["int -1", toBinary(schemas.IntWrapperSchema, create(schemas.IntWrapperSchema, { value: -1 })), "0dffffffff"],
    ["int 0", toBinary(schemas.IntWrapperSchema, create(schemas.IntWrapperSchema, { value: 0 })), ""],
    [
      "long 1",
      toBinary(schemas.LongWrapperSchema, create(schemas.LongWrapperSchema, { value: 1n })),
      "090100000000000000",
    ],
    [
      "bool true",
      toBinary(schemas.BooleanWrapperSchema, create(schemas.BooleanWrapperSchema, { value: true })),
      "0801",
    ],
    ["bool false", toBinary(schemas.BooleanWrapperSchema, create(schemas.BooleanWrapperSchema, { value: false })), ""],
    [
      "string hi",
      toBinary(schemas.StringWrapperSchema, create(schemas.StringWrapperSchema, { value: "hi" })),
      "0a026869",
    ],
    ["double 0", toBinary(schemas.DoubleWrapperSchema, create(schemas.DoubleWrapperSchema, { value: 0 })), ""],
  ];
  for (const [name, actual, expected] of cases) {
    it(name, () => assert.equal(Buffer.from(actual).toString("hex"), expected));
  }
});
