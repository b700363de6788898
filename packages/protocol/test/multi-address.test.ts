// The multi-address framing (src/multi-address.ts): recorded bytes, round trips, protobuf
// compatibility (protobufjs's generic reader and writer agree with it), and a decoder that
// refuses every truncated or malformed body, and bodies over its bound, with a value.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import $protobuf from "protobufjs/minimal.js";
import {
  announcesMultiAddress,
  decodeMultiAddressRequest,
  decodeMultiAddressResponse,
  encodeMultiAddressRequest,
  encodeMultiAddressResponse,
  type MultiAddressCall,
  type MultiAddressResult,
} from "../src/index.ts";

const hex = (bytes: Uint8Array) => Buffer.from(bytes).toString("hex");
const fromHex = (text: string) => Uint8Array.from(Buffer.from(text.replace(/\s+/g, ""), "hex"));
const ascii = (text: string) => Buffer.from(text, "latin1").toString("hex");

const TRACEPARENT = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";

/** Plain copies, so results compare by content and not by the views the decoder hands out. */
function plainCalls(calls: readonly MultiAddressCall[]) {
  return calls.map((call) => ({ toFunction: hex(call.toFunction), traceparent: call.traceparent }));
}
function plainResults(results: readonly MultiAddressResult[]) {
  return results.map((result) => (result.ok ? { fromFunction: hex(result.fromFunction) } : { error: result.error }));
}

describe("multi-address request", () => {
  it("encodes to the recorded bytes: each call a field 1, its traceparent only when given", () => {
    const bytes = encodeMultiAddressRequest([
      { toFunction: fromHex("a20600") },
      { toFunction: fromHex("a206"), traceparent: "t" },
      { toFunction: new Uint8Array(0), traceparent: "" },
    ]);
    assert.equal(hex(bytes), `0a05 0a03a20600 0a07 0a02a206 1201${ascii("t")} 0a02 0a00`.replace(/\s+/g, ""));
  });

  it("round trips, with the traceparent undefined when absent", () => {
    const calls: MultiAddressCall[] = [
      { toFunction: Uint8Array.from({ length: 300 }, (_, index) => index % 256), traceparent: TRACEPARENT },
      { toFunction: fromHex("a206020a00") },
      { toFunction: new Uint8Array(0) },
    ];
    const decoded = decodeMultiAddressRequest(encodeMultiAddressRequest(calls), 64);
    assert.ok(decoded.ok, decoded.ok ? "" : decoded.error);
    assert.deepEqual(plainCalls(decoded.value), plainCalls(calls));
    assert.deepEqual(
      decoded.value.map((call) => call.traceparent),
      [TRACEPARENT, undefined, undefined],
    );
  });

  it("an empty body is a request with no calls", () => {
    const decoded = decodeMultiAddressRequest(new Uint8Array(0), 64);
    assert.deepEqual(decoded, { ok: true, value: [] });
  });

  it("is what a generic protobuf writer produces, fields in any order and unknown fields skipped", () => {
    const writer = $protobuf.Writer.create();
    writer.uint32((7 << 3) | 0).uint64(123456789); // an unknown varint field before the calls
    writer.uint32((1 << 3) | 2).fork();
    writer.uint32((2 << 3) | 2).string(TRACEPARENT); // traceparent before to_function
    writer.uint32((9 << 3) | 5).fixed32(7); // unknown fixed32 inside the call
    writer.uint32((1 << 3) | 2).bytes(fromHex("a20600"));
    writer.ldelim();
    writer.uint32((8 << 3) | 1).fixed64(1); // unknown fixed64
    writer.uint32((1 << 3) | 2).fork();
    writer.uint32((1 << 3) | 2).bytes(fromHex("01"));
    writer.uint32((1 << 3) | 2).bytes(fromHex("02")); // a repeated scalar: the last wins, as in protobuf
    writer.ldelim();
    const decoded = decodeMultiAddressRequest(writer.finish(), 64);
    assert.ok(decoded.ok, decoded.ok ? "" : decoded.error);
    assert.deepEqual(plainCalls(decoded.value), [
      { toFunction: "a20600", traceparent: TRACEPARENT },
      { toFunction: "02", traceparent: undefined },
    ]);
  });

  it("is what a generic protobuf reader reads", () => {
    const bytes = encodeMultiAddressRequest([{ toFunction: fromHex("a20600"), traceparent: TRACEPARENT }]);
    const outer = $protobuf.Reader.create(bytes);
    assert.equal(outer.uint32(), (1 << 3) | 2);
    const call = $protobuf.Reader.create(outer.bytes());
    assert.equal(outer.pos, bytes.length);
    assert.equal(call.uint32(), (1 << 3) | 2);
    assert.equal(hex(call.bytes()), "a20600");
    assert.equal(call.uint32(), (2 << 3) | 2);
    assert.equal(call.string(), TRACEPARENT);
    assert.equal(call.pos, call.len);
  });

  it("refuses every truncation of a request", () => {
    const calls: MultiAddressCall[] = [
      { toFunction: Uint8Array.from({ length: 200 }, (_, index) => index), traceparent: TRACEPARENT },
      { toFunction: fromHex("a20600"), traceparent: TRACEPARENT },
    ];
    const bytes = encodeMultiAddressRequest(calls);
    // Cutting between two whole calls leaves a valid, shorter request; every other cut is refused.
    const callBoundaries = new Set([0, encodeMultiAddressRequest(calls.slice(0, 1)).length]);
    for (let length = 0; length < bytes.length; length++) {
      const decoded = decodeMultiAddressRequest(bytes.subarray(0, length), 64);
      if (callBoundaries.has(length)) {
        assert.ok(decoded.ok, `cut at ${length}: ${decoded.ok ? "" : decoded.error}`);
        continue;
      }
      assert.equal(decoded.ok, false, `cut at ${length} of ${bytes.length} was accepted`);
      assert.equal(decoded.ok ? "" : decoded.code, "malformed");
      assert.match(decoded.ok ? "" : decoded.error, /^not a valid multi-address request \(\d+ bytes\): /);
    }
  });

  it("refuses a request over its bound without reading past it", () => {
    const calls = Array.from({ length: 5 }, () => ({ toFunction: fromHex("a20600") }));
    const bytes = encodeMultiAddressRequest(calls);
    assert.equal(decodeMultiAddressRequest(bytes, 5).ok, true);
    const over = decodeMultiAddressRequest(bytes, 4);
    assert.deepEqual(over, {
      ok: false,
      code: "too-many",
      error: "a multi-address request holds more than 4 calls, the most accepted",
    });
    // The call past the bound is garbage: the bound is checked first.
    const garbageTail = Uint8Array.from([...encodeMultiAddressRequest(calls.slice(0, 4)), 0x0a, 0xff]);
    assert.equal((decodeMultiAddressRequest(garbageTail, 4) as { code: string }).code, "too-many");
  });

  it("refuses lengths past the end, wrong wire types, groups, field 0, overlong varints and invalid UTF-8", () => {
    const cases: [string, string, RegExp][] = [
      ["length past the end", "0a05 0a03a206", /call 0 at byte 1 is 5 bytes long, but only 4 are left/],
      ["huge length", "0affffffff0f 00", /call 0 at byte 1 is 4294967295 bytes long, but only 1 are left/],
      ["call as a varint", "0801", /call 0 has wire type 0; expected 2/],
      ["to_function as fixed32", "0a05 0d01020304", /to_function of call 0 has wire type 5; expected 2/],
      ["a group", "1b 1c", /field 3 has wire type 3, which is not supported/],
      ["field number 0", "0201 00", /field number 0 at byte 0/],
      ["an 11-byte varint", "28 ffffffffffffffffffff01", /field 5 at byte 1 is a varint longer than 10 bytes/],
      ["a cut-off key", "8a", /a field key at byte 0 is cut off/],
      ["fixed64 cut off", "2104000000", /field 4 needs 8 bytes, but only 4 are left/],
      ["traceparent not UTF-8", "0a04 1202c328", /traceparent of call 0 is not valid UTF-8/],
    ];
    for (const [name, body, reason] of cases) {
      const decoded = decodeMultiAddressRequest(fromHex(body), 64);
      assert.equal(decoded.ok, false, `${name}: accepted`);
      if (decoded.ok) continue;
      assert.equal(decoded.code, "malformed", name);
      assert.match(decoded.error, reason, name);
    }
  });
});

describe("multi-address response", () => {
  const results: MultiAddressResult[] = [
    { ok: true, fromFunction: fromHex("a20600") },
    { ok: false, error: "example/person (id 2) failed: boom ✗" },
    { ok: true, fromFunction: new Uint8Array(0) },
  ];

  it("encodes to the recorded bytes: an empty from_function is still written (oneof presence)", () => {
    assert.equal(
      hex(
        encodeMultiAddressResponse([
          results[0] as MultiAddressResult,
          { ok: false, error: "no" },
          results[2] as MultiAddressResult,
        ]),
      ),
      `0a05 0a03a20600 0a04 1202${ascii("no")} 0a02 0a00`.replace(/\s+/g, ""),
    );
  });

  it("round trips results and errors in order", () => {
    const decoded = decodeMultiAddressResponse(encodeMultiAddressResponse(results), 3);
    assert.ok(decoded.ok, decoded.ok ? "" : decoded.error);
    assert.deepEqual(plainResults(decoded.value), plainResults(results));
  });

  it("refuses every truncation of a response that does not end between results", () => {
    const bytes = encodeMultiAddressResponse(results);
    const lengths = [0, 1, 2].map((count) => encodeMultiAddressResponse(results.slice(0, count)).length);
    for (let length = 0; length < bytes.length; length++) {
      const decoded = decodeMultiAddressResponse(bytes.subarray(0, length), 3);
      if (lengths.includes(length)) {
        assert.ok(decoded.ok, `cut at ${length}`);
        continue;
      }
      assert.equal(decoded.ok, false, `cut at ${length} of ${bytes.length} was accepted`);
      assert.equal(decoded.ok ? "" : decoded.code, "malformed");
    }
  });

  it("refuses a result with neither outcome, and more results than calls", () => {
    const empty = decodeMultiAddressResponse(fromHex("0a00"), 1);
    assert.deepEqual(empty, {
      ok: false,
      code: "malformed",
      error:
        "not a valid multi-address response (2 bytes): result 0 at byte 2 has neither from_function (1) nor error (2)",
    });
    const over = decodeMultiAddressResponse(encodeMultiAddressResponse(results), 2);
    assert.equal(over.ok ? "" : over.code, "too-many");
  });
});

describe("multi-address announcement", () => {
  it("accepts a header that lists version 1, alone or among others", () => {
    assert.equal(announcesMultiAddress("1"), true);
    assert.equal(announcesMultiAddress(" 2, 1 "), true);
    assert.equal(announcesMultiAddress("2"), false);
    assert.equal(announcesMultiAddress("10"), false);
    assert.equal(announcesMultiAddress(""), false);
    assert.equal(announcesMultiAddress(undefined), false);
  });
});
