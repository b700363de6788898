// The inbox record: a message between workers survives the bytes whole, and bytes that are
// not an inbox record are a Failure naming what is wrong, never a throw.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { Packr } from "msgpackr";
import { decodeInboxRecord, encodeInboxRecord, inboxRecordKey } from "../src/cluster/inbox-record.ts";
import { addressKey, type FunctionTypename } from "../src/core/address.ts";

const target = { typename: "shop/cart" as FunctionTypename, id: "ann" };
const argument = { typename: "shop/Add", hasValue: true, value: new Uint8Array([1, 2, 3]) };

describe("inbox record", () => {
  it("carries a message with its caller, headers and idempotency key, and one with none of them", () => {
    const full = {
      envelope: {
        target,
        caller: { typename: "shop/user" as FunctionTypename, id: "u1" },
        argument,
        headers: [
          { key: "trace", value: new Uint8Array([9]) },
          { key: "empty", value: null },
        ],
      },
      idempotencyKey: "k-1",
    };
    assert.deepEqual(decodeInboxRecord(encodeInboxRecord(full)), { ok: true, value: full });
    const bare = { envelope: { target, argument: { typename: "t", hasValue: false, value: new Uint8Array() } } };
    assert.deepEqual(decodeInboxRecord(encodeInboxRecord(bare)), { ok: true, value: bare });
    // In a trace: an eleventh field, and a record without one is as it always was (ten fields).
    const traced = { envelope: { target, argument, trace: "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01" } };
    assert.deepEqual(decodeInboxRecord(encodeInboxRecord(traced)), { ok: true, value: traced });
    assert.equal((new Packr({ useRecords: false }).unpack(encodeInboxRecord(bare)) as unknown[]).length, 10);
    assert.equal(inboxRecordKey(bare).toString(), addressKey(target));
  });

  it("refuses bytes that are not an inbox record, saying why", () => {
    const packr = new Packr({ useRecords: false });
    const cases: [Uint8Array, RegExp][] = [
      [new Uint8Array([0x9a, 0x01]), /not msgpack/], // an array of 10 cut after one
      [packr.pack({ a: 1 }), /not an array of 10 or 11 fields/],
      [packr.pack([1, "a", "b", null, null, "t", true, new Uint8Array(), null, null, 5]), /trace context/],
      [packr.pack([2, "a", "b", null, null, "t", true, new Uint8Array(), null, null]), /version 2, this Eddy reads 1/],
      [packr.pack([1, "a", 5, null, null, "t", true, new Uint8Array(), null, null]), /no target address/],
      [packr.pack([1, "a", "b", "c", null, "t", true, new Uint8Array(), null, null]), /half a caller address/],
      [packr.pack([1, "a", "b", null, null, "t", "yes", new Uint8Array(), null, null]), /no typed argument/],
      [packr.pack([1, "a", "b", null, null, "t", true, new Uint8Array(), [["h", 3]], null]), /a header that is not/],
      [packr.pack([1, "a", "b", null, null, "t", true, new Uint8Array(), null, 7]), /idempotency key/],
    ];
    for (const [bytes, why] of cases) {
      const decoded = decodeInboxRecord(bytes);
      assert.equal(decoded.ok, false);
      if (!decoded.ok) {
        assert.equal(decoded.code, "inbox-record-malformed");
        assert.match(decoded.message, why);
      }
    }
  });
});
