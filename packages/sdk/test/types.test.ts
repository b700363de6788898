// The built-in types are hand-encoded for speed; these tests pin every one of them to
// the bufbuild-generated wrapper codec (the reference encoding of types.proto), byte for
// byte, in both directions, including the edge values where hand-written codecs go wrong.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { create, type DescMessage, fromBinary, type MessageInitShape, toBinary } from "@bufbuild/protobuf";
import { encodeKafkaProducerRecord, schemas } from "@eddy/protocol";
import { type Type, types } from "@eddy/sdk";
import { z } from "zod";

const hex = (bytes: Uint8Array) => Buffer.from(bytes).toString("hex");
const fromHex = (text: string) => Uint8Array.from(Buffer.from(text.replace(/\s+/g, ""), "hex"));

/** The reference encoding: the generated wrapper message, serialized by @bufbuild/protobuf. */
function reference<Desc extends DescMessage>(schema: Desc, value: unknown): Uint8Array {
  return toBinary(schema, create(schema, { value } as unknown as MessageInitShape<Desc>));
}
function referenceValue<Desc extends DescMessage>(schema: Desc, bytes: Uint8Array): unknown {
  return (fromBinary(schema, bytes) as unknown as { value: unknown }).value;
}

interface Case<T> {
  readonly name: string;
  readonly type: Type<T>;
  readonly schema: DescMessage;
  readonly typename: string;
  /** [value written, value read back] — they differ only where the wire type is narrower (float). */
  readonly values: readonly (readonly [T, T])[];
}

const same = <T>(...values: T[]) => values.map((value) => [value, value] as const);

const INT32_MAX = 2147483647;
const INT32_MIN = -2147483648;
const INT64_MAX = 2n ** 63n - 1n;
const INT64_MIN = -(2n ** 63n);
const FLOAT32_MAX = 3.4028234663852886e38;
const FLOAT32_MIN_SUBNORMAL = 1.401298464324817e-45;

const cases = [
  {
    name: "bool",
    type: types.bool,
    schema: schemas.BooleanWrapperSchema,
    typename: "io.statefun.types/bool",
    values: same(true, false),
  },
  {
    name: "int",
    type: types.int,
    schema: schemas.IntWrapperSchema,
    typename: "io.statefun.types/int",
    values: same(0, 1, -1, 255, 256, 123_456_789, -123_456_789, INT32_MAX, INT32_MIN),
  },
  {
    name: "long",
    type: types.long,
    schema: schemas.LongWrapperSchema,
    typename: "io.statefun.types/long",
    values: same(0n, 1n, -1n, 2n ** 32n, 2n ** 53n + 1n, -(2n ** 53n) - 1n, INT64_MAX, INT64_MIN),
  },
  {
    name: "float",
    type: types.float,
    schema: schemas.FloatWrapperSchema,
    typename: "io.statefun.types/float",
    values: [
      ...same(0, 1, -1, 0.5, -2.75, FLOAT32_MAX, -FLOAT32_MAX, FLOAT32_MIN_SUBNORMAL, Number.NaN),
      ...same(Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY, -0),
      // Not representable in 32 bits: written rounded, read back as the nearest float32.
      [0.1, Math.fround(0.1)],
      [1 / 3, Math.fround(1 / 3)],
      [16_777_217, 16_777_216],
    ],
  },
  {
    name: "double",
    type: types.double,
    schema: schemas.DoubleWrapperSchema,
    typename: "io.statefun.types/double",
    values: same(0, 1, -1, 0.1, -123.456, Number.MAX_VALUE, -Number.MAX_VALUE, Number.MIN_VALUE, Number.EPSILON).concat(
      same(Number.MAX_SAFE_INTEGER, Number.NaN, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY, -0),
    ),
  },
  {
    name: "string",
    type: types.string,
    schema: schemas.StringWrapperSchema,
    typename: "io.statefun.types/string",
    values: same(
      "",
      "hi",
      " ",
      "\u0000",
      "héllo wörld",
      "日本語のテキスト",
      "emoji 🙂👍🏽 and a flag 🇳🇴",
      "x".repeat(127),
      "x".repeat(128),
      "y".repeat(20_000),
    ),
  },
] as Case<unknown>[];

describe("built-in types match the generated wrapper codec", () => {
  for (const { name, type, schema, typename, values } of cases) {
    describe(name, () => {
      it(`has typename ${typename}`, () => {
        assert.equal(type.typename, typename);
      });

      for (const [written, read] of values) {
        const shown = typeof written === "bigint" ? `${written}n` : (JSON.stringify(written) ?? String(written));
        const label = Object.is(written, -0) ? "-0" : Number.isNaN(written) ? "NaN" : shown.slice(0, 40);
        it(`${label}: same bytes as bufbuild, and both codecs read them back`, () => {
          const bytes = type.serialize(written);
          assert.equal(hex(bytes), hex(reference(schema, written)));
          assert.equal(type.deserialize(bytes), read);
          assert.equal(referenceValue(schema, bytes), read);
        });
      }

      it("reads an empty buffer as the default value (proto3 omits defaults)", () => {
        assert.equal(type.deserialize(new Uint8Array(0)), referenceValue(schema, new Uint8Array(0)));
      });
    });
  }
});

describe("built-in types: wire details", () => {
  it("writes the example bytes of statefun-protocol.md §3", () => {
    assert.equal(hex(types.bool.serialize(true)), "0801");
    assert.equal(hex(types.bool.serialize(false)), "");
    assert.equal(hex(types.int.serialize(1)), "0d01000000");
    assert.equal(hex(types.int.serialize(-1)), "0dffffffff"); // fixed-width two's complement, not a varint
    assert.equal(hex(types.int.serialize(0)), "");
    assert.equal(hex(types.long.serialize(1n)), "090100000000000000");
    assert.equal(hex(types.long.serialize(0n)), "");
    assert.equal(hex(types.float.serialize(0)), "");
    assert.equal(hex(types.double.serialize(0)), "");
    assert.equal(hex(types.string.serialize("hi")), "0a026869");
    assert.equal(hex(types.string.serialize("")), "");
  });

  it("-0 keeps its sign for float and double (written like protobuf-es and protobuf-java), while +0 is empty", () => {
    // proto3 omits only +0: -0 is written as its bit pattern and reads back as -0.
    assert.equal(hex(types.float.serialize(-0)), "0d00000080");
    assert.equal(hex(types.double.serialize(-0)), "090000000000000080");
    assert.ok(Object.is(types.float.deserialize(types.float.serialize(-0)), -0));
    assert.ok(Object.is(types.double.deserialize(types.double.serialize(-0)), -0));
    assert.ok(Object.is(types.double.deserialize(types.double.serialize(0)), 0));
    // An int has no -0: it is the integer 0, the empty default.
    assert.equal(hex(types.int.serialize(-0)), "");
    assert.ok(Object.is(types.int.deserialize(new Uint8Array(0)), 0));
  });

  it("NaN is written as the canonical quiet NaN", () => {
    assert.equal(hex(types.float.serialize(Number.NaN)), "0d0000c07f");
    assert.equal(hex(types.double.serialize(Number.NaN)), "09000000000000f87f");
  });

  it("reads wrapper bytes with unknown fields before and after the value", () => {
    const unknownBefore = "10 96 01 1a 03 616263"; // field 2 varint 150, field 3 "abc"
    const unknownAfter = "25 01020304 29 0102030405060708 f8 01 05"; // fixed32, fixed64, field 31 varint
    const samples: [Type<unknown>, DescMessage, unknown][] = [
      [types.bool as Type<unknown>, schemas.BooleanWrapperSchema, true],
      [types.int as Type<unknown>, schemas.IntWrapperSchema, -42],
      [types.long as Type<unknown>, schemas.LongWrapperSchema, INT64_MIN],
      [types.float as Type<unknown>, schemas.FloatWrapperSchema, 2.5],
      [types.double as Type<unknown>, schemas.DoubleWrapperSchema, -0.125],
      [types.string as Type<unknown>, schemas.StringWrapperSchema, "ünïcode"],
    ];
    for (const [type, schema, value] of samples) {
      const bytes = fromHex(`${unknownBefore} ${hex(type.serialize(value))} ${unknownAfter}`);
      assert.equal(referenceValue(schema, bytes), value, `bufbuild reads ${type.typename}`);
      assert.equal(type.deserialize(bytes), value, type.typename);
      // Only unknown fields: the default value.
      assert.equal(type.deserialize(fromHex(unknownAfter)), referenceValue(schema, fromHex(unknownAfter)));
    }
  });

  it("takes the last occurrence of the value field, as protobuf parsers do", () => {
    const twice = fromHex(`${hex(types.int.serialize(7))} ${hex(types.int.serialize(9))}`);
    assert.equal(referenceValue(schemas.IntWrapperSchema, twice), 9);
    assert.equal(types.int.deserialize(twice), 9);
    const strings = fromHex(`${hex(types.string.serialize("first"))} ${hex(types.string.serialize("last"))}`);
    assert.equal(types.string.deserialize(strings), "last");
  });

  it("reads a subarray of a larger buffer at its own offset", () => {
    const framed = fromHex(`ffff ${hex(types.double.serialize(Math.PI))} ffff`);
    assert.equal(types.double.deserialize(framed.subarray(2, framed.length - 2)), Math.PI);
    const longFramed = fromHex(`aa ${hex(types.long.serialize(INT64_MAX))}`);
    assert.equal(types.long.deserialize(longFramed.subarray(1)), INT64_MAX);
  });

  it("refuses malformed wrapper bytes with an error naming the type", () => {
    for (const [type, bytes] of [
      [types.int, "0d 0100"], // fixed32 cut short
      [types.long, "09 01020304"], // fixed64 cut short
      [types.string, "0a 05 6869"], // length runs past the end
      [types.bool, "08 ff"], // varint never ends
      [types.int, "0b"], // wire type 3 (group) is not supported
    ] as const) {
      assert.throws(
        () => (type as Type<unknown>).deserialize(fromHex(bytes)),
        (error: Error) => error instanceof TypeError && error.message.includes(type.typename),
        `${type.typename} ${bytes}`,
      );
    }
    assert.throws(() => types.string.deserialize(fromHex("0a 02 c328")), TypeError); // invalid UTF-8
  });
});

describe("built-in types refuse values they cannot represent", () => {
  it("int: outside 32 bits or not an integer is a RangeError", () => {
    for (const value of [INT32_MAX + 1, INT32_MIN - 1, 2 ** 53, 1.5, Number.NaN, Number.POSITIVE_INFINITY]) {
      assert.throws(() => types.int.serialize(value), RangeError, String(value));
    }
    assert.throws(
      () => types.int.serialize(INT32_MAX + 1),
      /io\.statefun\.types\/int: 2147483648 is not a 32-bit integer/,
    );
  });

  it("long: outside 64 bits is a RangeError", () => {
    assert.throws(() => types.long.serialize(INT64_MAX + 1n), RangeError);
    assert.throws(() => types.long.serialize(INT64_MIN - 1n), RangeError);
    assert.throws(() => types.long.serialize(2n ** 64n), /is not a 64-bit integer/);
  });

  it("float: a finite value beyond the float32 range becomes ±Infinity, like a (float) cast (bufbuild refuses it)", () => {
    assert.equal(hex(types.float.serialize(1e39)), "0d0000807f");
    assert.equal(types.float.deserialize(types.float.serialize(-Number.MAX_VALUE)), Number.NEGATIVE_INFINITY);
    assert.throws(() => reference(schemas.FloatWrapperSchema, 1e39), /invalid float32/);
  });

  it("non-numbers and non-strings are TypeErrors", () => {
    assert.throws(() => types.float.serialize("1" as unknown as number), TypeError);
    assert.throws(() => types.double.serialize(1n as unknown as number), TypeError);
    assert.throws(() => types.string.serialize(5 as unknown as string), TypeError);
  });
});

describe("types.json", () => {
  const Person = z.object({ name: z.string(), age: z.number().int().nonnegative() });
  const person = types.json("example/Person", Person);

  it("writes UTF-8 JSON and reads it back, validated by the schema", () => {
    const value = { name: "Zoë 🙂", age: 41 };
    const bytes = person.serialize(value);
    assert.equal(Buffer.from(bytes).toString("utf8"), '{"name":"Zoë 🙂","age":41}');
    const read: { name: string; age: number } = person.deserialize(bytes);
    assert.deepEqual(read, value);
    assert.equal(person.typename, "example/Person");
  });

  it("a stored value that fails the schema throws the schema's error", () => {
    const bad = new TextEncoder().encode('{"name":"Bob","age":-3}');
    assert.throws(
      () => person.deserialize(bad),
      (error: unknown) => error instanceof z.ZodError && error.issues[0]?.path.join(".") === "age",
    );
    assert.throws(() => person.deserialize(new TextEncoder().encode('{"name":1}')), z.ZodError);
  });

  it("the schema's output is what is returned (defaults and transforms apply)", () => {
    const withDefault = types.json("example/Settings", z.object({ volume: z.number().default(5) }));
    assert.deepEqual(withDefault.deserialize(new TextEncoder().encode("{}")), { volume: 5 });
  });

  it("without a schema any JSON reads back; text that is not JSON is a SyntaxError", () => {
    const loose = types.json("example/Anything");
    assert.deepEqual(loose.deserialize(loose.serialize({ list: [1, "two", null], nested: { ok: true } })), {
      list: [1, "two", null],
      nested: { ok: true },
    });
    assert.throws(() => loose.deserialize(new TextEncoder().encode("{nope")), SyntaxError);
  });

  it("refuses values JSON cannot hold, and malformed typenames", () => {
    const loose = types.json("example/Anything");
    assert.throws(() => loose.serialize(undefined), /cannot be written as JSON/);
    assert.throws(() => loose.serialize(() => 1), /cannot be written as JSON/);
    assert.throws(() => types.json("no-slash"), /"no-slash" is not a typename/);
    assert.throws(() => types.json("trailing/"), TypeError);
  });
});

describe("types.protobuf", () => {
  const kafkaRecord = types.protobuf(schemas.KafkaProducerRecordSchema);

  it("uses the type.googleapis.com/<full name> typename every StateFun SDK uses", () => {
    assert.equal(kafkaRecord.typename, "type.googleapis.com/io.statefun.sdk.egress.KafkaProducerRecord");
    assert.equal(types.protobuf(schemas.IntWrapperSchema, "example/Counter").typename, "example/Counter");
    assert.throws(() => types.protobuf(schemas.IntWrapperSchema, "bad"), TypeError);
  });

  it("round-trips a message, with the same bytes as the fast codec", () => {
    const value = create(schemas.KafkaProducerRecordSchema, {
      key: "user-7",
      valueBytes: Uint8Array.of(0, 1, 2, 255),
      topic: "greetings",
    });
    const bytes = kafkaRecord.serialize(value);
    assert.equal(
      hex(bytes),
      hex(encodeKafkaProducerRecord({ key: "user-7", valueBytes: Uint8Array.of(0, 1, 2, 255), topic: "greetings" })),
    );
    const read = kafkaRecord.deserialize(bytes);
    assert.equal(read.key, "user-7");
    assert.equal(read.topic, "greetings");
    assert.deepEqual([...read.valueBytes], [0, 1, 2, 255]);
    assert.equal(read.$typeName, "io.statefun.sdk.egress.KafkaProducerRecord");
  });

  it("an empty message is zero bytes and reads back as all defaults", () => {
    const empty = kafkaRecord.serialize(create(schemas.KafkaProducerRecordSchema));
    assert.equal(empty.length, 0);
    const read = kafkaRecord.deserialize(empty);
    assert.equal(read.key, "");
    assert.equal(read.valueBytes.length, 0);
  });
});

describe("types.bytes and types.custom", () => {
  it("bytes passes the bytes through under its typename", () => {
    const raw = types.bytes("example/Blob");
    const value = Uint8Array.of(9, 8, 7);
    assert.equal(raw.typename, "example/Blob");
    assert.deepEqual([...raw.deserialize(raw.serialize(value))], [9, 8, 7]);
  });

  it("custom uses the given serializer in both directions", () => {
    const point = types.custom<{ x: number; y: number }>(
      "example/Point",
      ({ x, y }) => Uint8Array.of(x, y),
      (bytes) => ({ x: bytes[0] ?? 0, y: bytes[1] ?? 0 }),
    );
    assert.equal(hex(point.serialize({ x: 3, y: 4 })), "0304");
    assert.deepEqual(point.deserialize(fromHex("0506")), { x: 5, y: 6 });
    assert.throws(
      () =>
        types.custom(
          "nope",
          () => new Uint8Array(0),
          () => 0,
        ),
      TypeError,
    );
  });
});
