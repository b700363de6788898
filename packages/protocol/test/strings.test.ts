// String fields read through src/fast/strings.ts: the same strings and the same errors as
// protobufjs's own `utf8.readStrict`, for Buffer and plain Uint8Array input alike.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import $protobuf from "protobufjs/minimal.js";
import { decodeTypedValue, encodeTypedValue } from "../src/index.ts";

const inputs = {
  Buffer: (bytes: Uint8Array) => Buffer.from(bytes),
  Uint8Array: (bytes: Uint8Array) => Uint8Array.from(bytes),
};

/** A TypedValue whose typename (field 1) is `bytes`, a 1- or 2-byte length varint before it. */
function typedValueNamed(bytes: readonly number[]): Uint8Array {
  const length = bytes.length < 0x80 ? [bytes.length] : [(bytes.length & 0x7f) | 0x80, bytes.length >> 7];
  return Uint8Array.from([0x0a, ...length, ...bytes]);
}

/** What protobufjs's own strict read gives for `bytes`: the string, or the error's message. */
function protobufjsReads(bytes: Uint8Array): string {
  try {
    return `string ${JSON.stringify($protobuf.util.utf8.readStrict(bytes, 0, bytes.length))}`;
  } catch (error) {
    return `error ${(error as Error).message}`;
  }
}

function readStringVerify(bytes: Uint8Array): string {
  try {
    return `string ${JSON.stringify(
      $protobuf.Reader.create(typedValueNamed([...bytes]))
        .skip(1)
        .stringVerify(),
    )}`;
  } catch (error) {
    return `error ${(error as Error).message}`;
  }
}

/** A seeded PRNG (mulberry32): the same cases every run. */
function prng(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 2 ** 32;
  };
}

describe("string fields", () => {
  const texts = [
    "",
    "io.statefun.types/int",
    "\u0000 and \u007f are ASCII too",
    "é",
    "日本",
    "🚀",
    "café: ASCII first, then two bytes",
    "\ufeffa byte order mark is kept",
    "type.googleapis.com/io.statefun.sdk.egress.KafkaProducerRecord/and/some/more/bytes",
    "über-".repeat(20),
    "🚀".repeat(40),
  ];
  for (const [kind, input] of Object.entries(inputs)) {
    it(`ASCII, multi-byte and astral strings, shorter and longer than 64 bytes, round-trip from a ${kind}`, () => {
      for (const text of texts) {
        for (let time = 0; time < 2; time++) {
          const decoded = decodeTypedValue(input(encodeTypedValue({ typename: text })));
          assert.ok(decoded.ok, text);
          assert.equal(decoded.value.typename, text);
        }
      }
    });
  }

  it("Buffer input gets a BufferReader, a Uint8Array a Reader, and both read strings the same way", () => {
    const fromBuffer = $protobuf.Reader.create(Buffer.of(0x0a));
    const fromArray = $protobuf.Reader.create(Uint8Array.of(0x0a));
    assert.ok(fromBuffer instanceof $protobuf.BufferReader);
    assert.ok(!(fromArray instanceof $protobuf.BufferReader));
    assert.equal(fromBuffer.stringVerify, fromArray.stringVerify);
  });

  it("two names that share a lookup slot each read back as themselves, in any order", () => {
    // Same length, first, middle and last byte: the same slot of the intern table.
    const names = ["user-4711", "user-5711", "user-4711", "user-4711", "user-5711"];
    for (const name of names) {
      const decoded = decodeTypedValue(Buffer.from(encodeTypedValue({ typename: name })));
      assert.ok(decoded.ok);
      assert.equal(decoded.value.typename, name);
    }
  });

  it("bytes that are not UTF-8 are refused with protobufjs's own error, ASCII before them or not", () => {
    const invalid = [
      [0x80],
      [0xc3, 0x28],
      [0xc0, 0xaf],
      [0xed, 0xa0, 0x80],
      [0xe6, 0x97],
      [0xf5, 0x80, 0x80, 0x80],
      [0xff, 0xfe],
      [...Buffer.from("io.statefun.types/"), 0xe9],
      [...Buffer.from("x".repeat(70)), 0xc3],
    ];
    for (const bytes of invalid) {
      const expected = protobufjsReads(Uint8Array.from(bytes));
      assert.equal(expected, "error The encoded data was not valid for encoding utf-8");
      assert.equal(readStringVerify(Uint8Array.from(bytes)), expected);
      for (const input of Object.values(inputs)) {
        const message = typedValueNamed(bytes);
        assert.deepEqual(decodeTypedValue(input(message)), {
          ok: false,
          error: `not a valid TypedValue (${message.length} bytes): The encoded data was not valid for encoding utf-8`,
        });
      }
      const reader = $protobuf.Reader.create(Buffer.from(typedValueNamed(bytes))).skip(1);
      assert.throws(() => reader.stringVerify(), { name: "TypeError", code: "ERR_ENCODING_INVALID_ENCODED_DATA" });
    }
  });

  it("a length running past the end is protobufjs's RangeError", () => {
    const bytes = Uint8Array.of(0x0a, 0x05, 0x61, 0x62);
    const expected = { name: "RangeError", message: "index out of range: 2 + 5 > 4" };
    assert.throws(() => $protobuf.Reader.create(bytes).skip(1).string(), expected);
    assert.throws(() => $protobuf.Reader.create(bytes).skip(1).stringVerify(), expected);
    assert.throws(() => $protobuf.Reader.create(Buffer.from(bytes)).skip(1).stringVerify(), expected);
  });

  it("random bytes, mostly ASCII, read exactly as protobufjs reads them (2000 seeded cases)", () => {
    const random = prng(0xedd1);
    const alphabet = [0x00, 0x2f, 0x41, 0x7f, 0x80, 0xbf, 0xc2, 0xc3, 0xe0, 0xe6, 0xed, 0xef, 0xf0, 0xf4, 0xff];
    for (let n = 0; n < 2000; n++) {
      const length = Math.floor(random() * 80);
      const bytes = Uint8Array.from({ length }, () =>
        random() < 0.9
          ? 0x20 + Math.floor(random() * 0x5f)
          : (alphabet[Math.floor(random() * alphabet.length)] as number),
      );
      assert.equal(readStringVerify(bytes), protobufjsReads(bytes), Buffer.from(bytes).toString("hex"));
    }
  });
});
