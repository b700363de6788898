// The group protocol's member metadata and assignment bytes: what round-trips, the exact layout
// (so a change of format is a deliberate version bump), that every malformed buffer is a
// Failure value, never a throw, and the worker's module in the metadata: its items sent while
// they are short, left out (the fingerprint kept) when they are long, and refused when they do
// not make the fingerprint they come with.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { type ClusterModule, moduleOfItems } from "../src/cluster/cluster-module.ts";
import {
  decodeAssignment,
  decodeMemberMetadata,
  encodeAssignment,
  encodeMemberMetadata,
  MEMBERSHIP_VERSION,
  type MemberAssignment,
  MODULE_ITEMS_BYTES_MAX,
  type PartitionOwner,
} from "../src/cluster/membership-codec.ts";

const w1: PartitionOwner = { workerId: "w1", url: "http://10.0.0.5:8091" };
const w2: PartitionOwner = { workerId: "wörker-2", url: "http://10.0.0.6:8091" };
const module: ClusterModule = moduleOfItems([
  { kind: "function", name: "ce/*" },
  { kind: "ingress", name: "io.statefun.playground.v1/ingress" },
]);

function assignmentOf(partitions: number[], owners: (PartitionOwner | undefined)[]): MemberAssignment {
  return { partitions, owners };
}

describe("member metadata", () => {
  it("round-trips, with owned partitions sorted ascending", () => {
    const bytes = encodeMemberMetadata({ workerId: "w1", url: w1.url, owned: [5, 0, 127], module });
    const decoded = decodeMemberMetadata(bytes);
    assert.deepEqual(decoded, {
      ok: true,
      value: {
        workerId: "w1",
        url: w1.url,
        version: MEMBERSHIP_VERSION,
        owned: [0, 5, 127],
        module: { fingerprint: module.fingerprint, items: module.items },
      },
    });
    const withAdmin = decodeMemberMetadata(
      encodeMemberMetadata({ workerId: "w1", url: w1.url, adminUrl: "http://10.0.0.5:8093", owned: [], module }),
    );
    assert.equal(withAdmin.ok && withAdmin.value.adminUrl, "http://10.0.0.5:8093");
  });

  it("reads version 2's metadata, which has no admin URL", () => {
    const one = moduleOfItems([{ kind: "egress", name: "e" }]);
    const fingerprint = [...Buffer.from(one.fingerprint, "hex")];
    const v2 = Buffer.from([2, 0, 1, 0x77, 0, 1, 0x75, 0, 0, 0, 1, 0, 0, 0, 3, ...fingerprint, 1, 0, 1, 3, 0, 1, 0x65]);
    assert.deepEqual(decodeMemberMetadata(v2), {
      ok: true,
      value: {
        workerId: "w",
        url: "u",
        version: 2,
        owned: [3],
        module: { fingerprint: one.fingerprint, items: one.items },
      },
    });
  });

  it("has the documented layout", () => {
    const one = moduleOfItems([{ kind: "egress", name: "e" }]);
    const bytes = encodeMemberMetadata({ workerId: "w", url: "u", adminUrl: "a", owned: [3], module: one });
    const fingerprint = [...Buffer.from(one.fingerprint, "hex")];
    assert.equal(fingerprint.length, 8);
    assert.equal(MEMBERSHIP_VERSION, 3);
    assert.deepEqual(
      [...bytes],
      [3, 0, 1, 0x77, 0, 1, 0x75, 0, 1, 0x61, 0, 0, 0, 1, 0, 0, 0, 3, ...fingerprint, 1, 0, 1, 3, 0, 1, 0x65],
    );
    // No admin listener: an empty admin URL.
    const none = encodeMemberMetadata({ workerId: "w", url: "u", owned: [], module: one });
    assert.deepEqual([...none.subarray(0, 13)], [3, 0, 1, 0x77, 0, 1, 0x75, 0, 0, 0, 0, 0, 0]);
    assert.equal(
      decodeMemberMetadata(none).ok && "adminUrl" in (decodeMemberMetadata(none) as { value: object }).value,
      false,
    );
  });

  it("leaves out items longer than the bound, keeping the fingerprint", () => {
    const long = moduleOfItems(
      Array.from({ length: 200 }, (_, index) => ({ kind: "function" as const, name: `com.example/function-${index}` })),
    );
    const bytes = encodeMemberMetadata({ workerId: "w1", url: w1.url, owned: [], module: long });
    assert.ok(bytes.length < MODULE_ITEMS_BYTES_MAX, `${bytes.length} bytes`);
    const decoded = decodeMemberMetadata(bytes);
    assert.deepEqual(decoded.ok && decoded.value.module, { fingerprint: long.fingerprint, items: undefined });
    const nameTooLong = moduleOfItems([{ kind: "function", name: `ns/${"x".repeat(1100)}` }]);
    const leftOut = decodeMemberMetadata(
      encodeMemberMetadata({ workerId: "w1", url: "", owned: [], module: nameTooLong }),
    );
    assert.deepEqual(leftOut.ok && leftOut.value.module, { fingerprint: nameTooLong.fingerprint, items: undefined });
  });

  it("refuses items that do not make the fingerprint they come with, an unknown kind and an empty name", () => {
    const bytes = encodeMemberMetadata({
      workerId: "w",
      url: "",
      owned: [],
      module: moduleOfItems([{ kind: "egress", name: "e" }]),
    });
    const itemsAt = bytes.length - 6;
    const otherName = Buffer.from(bytes);
    otherName[otherName.length - 1] = 0x66;
    assert.match(
      messageOf(decodeMemberMetadata(otherName)),
      /module items make fingerprint [0-9a-f]{16}, the metadata says [0-9a-f]{16}/,
    );
    const otherKind = Buffer.from(bytes);
    otherKind[itemsAt + 2] = 9;
    assert.match(messageOf(decodeMemberMetadata(otherKind)), /module item 0 has kind 9/);
    const emptyName = Buffer.concat([bytes.subarray(0, itemsAt), Buffer.from([0, 1, 3, 0, 0])]);
    assert.match(messageOf(decodeMemberMetadata(emptyName)), /module item 0 is empty/);
    const described = Buffer.from(bytes);
    described[itemsAt - 1] = 2;
    assert.match(messageOf(decodeMemberMetadata(described)), /module described is 2, not 0 or 1/);
  });

  it("refuses an unknown version, precisely", () => {
    const bytes = encodeMemberMetadata({ workerId: "w1", url: w1.url, owned: [], module });
    bytes[0] = 1;
    const decoded = decodeMemberMetadata(bytes);
    assert.equal(decoded.ok, false);
    assert.equal(!decoded.ok && decoded.code, "membership-version-unsupported");
    assert.equal(!decoded.ok && decoded.retriable, false);
    assert.match(!decoded.ok ? decoded.message : "", /version 1; this Eddy reads versions 2 to 3/);
    bytes[0] = 4;
    assert.match(messageOf(decodeMemberMetadata(bytes)), /version 4; this Eddy reads versions 2 to 3/);
  });

  it("refuses every truncation of a valid buffer, and trailing bytes", () => {
    const bytes = encodeMemberMetadata({ workerId: "w1", url: w1.url, owned: [1, 2, 3], module });
    for (let length = 0; length < bytes.length; length++) {
      const decoded = decodeMemberMetadata(bytes.subarray(0, length));
      assert.equal(decoded.ok, false, `truncated to ${length} bytes`);
      assert.equal(!decoded.ok && decoded.code, "membership-malformed");
    }
    const longer = decodeMemberMetadata(Buffer.concat([bytes, Buffer.from([0])]));
    assert.match(!longer.ok ? longer.message : "", /1 bytes after the end/);
  });

  it("refuses an empty worker id, bad UTF-8, partitions out of order, and a huge count without allocating", () => {
    const empty = decodeMemberMetadata(encodeMemberMetadata({ workerId: "w1", url: "", owned: [], module }));
    assert.equal(empty.ok, true, "an empty URL is allowed (a worker without an ingress)");
    const noId = Buffer.from([MEMBERSHIP_VERSION, 0, 0, 0, 0, 0, 0, 0, 0]);
    assert.match(messageOf(decodeMemberMetadata(noId)), /workerId is empty/);
    const badUtf8 = Buffer.from([MEMBERSHIP_VERSION, 0, 1, 0xff, 0, 0, 0, 0, 0, 0]);
    assert.match(messageOf(decodeMemberMetadata(badUtf8)), /workerId is not UTF-8/);
    // version | workerId "w" | url "" | adminUrl "" | owned …
    const descending = Buffer.from([MEMBERSHIP_VERSION, 0, 1, 0x77, 0, 0, 0, 0, 0, 0, 0, 2, 0, 0, 0, 5, 0, 0, 0, 4]);
    assert.match(messageOf(decodeMemberMetadata(descending)), /not strictly ascending \(4 after 5\)/);
    const repeated = Buffer.from([MEMBERSHIP_VERSION, 0, 1, 0x77, 0, 0, 0, 0, 0, 0, 0, 2, 0, 0, 0, 5, 0, 0, 0, 5]);
    assert.match(messageOf(decodeMemberMetadata(repeated)), /not strictly ascending/);
    const huge = Buffer.from([MEMBERSHIP_VERSION, 0, 1, 0x77, 0, 0, 0, 0, 0, 0, 0xff, 0xff]);
    assert.match(messageOf(decodeMemberMetadata(huge)), /owned needs 262140 bytes, 0 are left/);
    const tooMany = Buffer.from([MEMBERSHIP_VERSION, 0, 1, 0x77, 0, 0, 0, 0, 0x7f, 0xff, 0xff, 0xff]);
    assert.match(messageOf(decodeMemberMetadata(tooMany)), /2147483647 owned, at most 65535/);
  });

  it("never throws on random bytes", () => {
    let seed = 42;
    const next = () => {
      seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
      return seed >>> 24;
    };
    for (let round = 0; round < 2_000; round++) {
      const bytes = Buffer.from(Array.from({ length: next() % 40 }, next));
      if (round % 2 === 0 && bytes.length > 0) bytes[0] = MEMBERSHIP_VERSION;
      const metadata = decodeMemberMetadata(bytes);
      const assignment = decodeAssignment(bytes);
      assert.equal(typeof metadata.ok, "boolean");
      assert.equal(typeof assignment.ok, "boolean");
    }
  });

  it("refuses to encode what could not be decoded (a bug in the caller)", () => {
    assert.throws(() => encodeMemberMetadata({ workerId: "x".repeat(256), url: "", owned: [], module }), RangeError);
    assert.throws(() => encodeMemberMetadata({ workerId: "w", url: "", owned: [1, 1], module }), /listed twice/);
    assert.throws(() => encodeMemberMetadata({ workerId: "w", url: "", owned: [-1], module }), RangeError);
    assert.throws(
      () => encodeMemberMetadata({ workerId: "w", url: "", owned: [], module: { fingerprint: "abc", items: [] } }),
      /module fingerprint "abc" is not 8 bytes of hex/,
    );
  });
});

describe("assignment", () => {
  it("round-trips the member's partitions and the whole owner map, naming each worker once", () => {
    const owners = [w1, w2, w1, undefined, w2, w2, w1, w1];
    const bytes = encodeAssignment(assignmentOf([6, 0, 2, 7], owners));
    const decoded = decodeAssignment(bytes);
    assert.ok(decoded.ok);
    assert.deepEqual(decoded.value.partitions, [0, 2, 6, 7]);
    assert.deepEqual(decoded.value.owners, owners);
    // Two workers' ids, URLs and (empty) admin URLs once each, then two bytes per partition.
    const header = 1 + 4 + 4 * 4 + 4 + 2;
    const workers = [w1, w2].reduce((sum, w) => sum + 6 + Buffer.byteLength(w.workerId) + Buffer.byteLength(w.url), 0);
    assert.equal(bytes.length, header + workers + 2 * owners.length);
  });

  it("carries each worker's admin URL, and leaves them out in version 2 (for a member that reads only that)", () => {
    const a1 = { ...w1, adminUrl: "http://10.0.0.5:8093" };
    const a2 = { ...w2, adminUrl: "http://10.0.0.6:8093" };
    const owners = [a1, a2, a1, undefined];
    const v3 = decodeAssignment(encodeAssignment(assignmentOf([0, 2], owners)));
    assert.deepEqual(v3, { ok: true, value: { partitions: [0, 2], owners } });
    const v2bytes = encodeAssignment(assignmentOf([0, 2], owners), 2);
    assert.equal(v2bytes[0], 2);
    assert.deepEqual(decodeAssignment(v2bytes), {
      ok: true,
      value: { partitions: [0, 2], owners: [w1, w2, w1, undefined] },
    });
    assert.throws(() => encodeAssignment(assignmentOf([], []), 1), /version 1 is not one this Eddy writes/);
  });

  it("round-trips an empty assignment of a member that gets nothing", () => {
    const decoded = decodeAssignment(encodeAssignment(assignmentOf([], [w1, w1])));
    assert.deepEqual(decoded, { ok: true, value: { partitions: [], owners: [w1, w1] } });
  });

  it("refuses every truncation, an owner index past the workers, and a partition past the count", () => {
    const bytes = encodeAssignment(assignmentOf([1], [w2, w1]));
    for (let length = 0; length < bytes.length; length++) {
      const decoded = decodeAssignment(bytes.subarray(0, length));
      assert.equal(!decoded.ok && decoded.code, "membership-malformed", `truncated to ${length} bytes`);
    }
    const badOwner = Buffer.from(bytes);
    badOwner.writeUInt16BE(7, badOwner.length - 2);
    assert.match(messageOf(decodeAssignment(badOwner)), /partition 1's owner is worker 7 of 2/);
    // version | 1 partition: 5 | partition count 2 | no workers | 2 × no owner
    const beyond = Buffer.from([MEMBERSHIP_VERSION, 0, 0, 0, 1, 0, 0, 0, 5, 0, 0, 0, 2, 0, 0, 0xff, 0xff, 0xff, 0xff]);
    assert.match(messageOf(decodeAssignment(beyond)), /partition 5 is not below the partition count 2/);
  });

  it("refuses an unknown version", () => {
    const bytes = encodeAssignment(assignmentOf([], []));
    bytes[0] = 0;
    assert.equal(codeOf(decodeAssignment(bytes)), "membership-version-unsupported");
  });
});

function messageOf(result: { ok: boolean; message?: string }): string {
  assert.equal(result.ok, false, "expected a Failure");
  return result.message as string;
}

function codeOf(result: { ok: boolean; code?: string }): string {
  assert.equal(result.ok, false, "expected a Failure");
  return result.code as string;
}
