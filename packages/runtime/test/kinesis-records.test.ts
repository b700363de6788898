// The Kinesis connectors' pure parts: KPL aggregated records taken apart from bytes written
// out by hand, records becoming messages or dead letters with the position after each,
// egress records checked against Kinesis's limits, and client properties read (and the
// unused ones named).
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, test } from "node:test";
import type { _Record as KinesisRecord } from "@aws-sdk/client-kinesis";
import { encodeKinesisEgressRecord, KINESIS_EGRESS_RECORD_TYPENAME } from "@eddy/protocol";
import type { KinesisEgressConfig, KinesisIngressConfig } from "../src/config/types.ts";
import { AGGREGATED_MAGIC, deaggregate } from "../src/io/kinesis/aggregated-records.ts";
import { createKinesisClient } from "../src/io/kinesis/client.ts";
import { egressRecord, kinesisEgressSettings } from "../src/io/kinesis/egress.ts";
import { kinesisIngressSettings, routeRecords } from "../src/io/kinesis/ingress.ts";

/** Magic, protobuf body, MD5 of the body: an aggregated record around `body`. */
function aggregated(body: readonly number[]): Uint8Array {
  const bytes = Uint8Array.from(body);
  return Buffer.concat([AGGREGATED_MAGIC, bytes, createHash("md5").update(bytes).digest()]);
}

// AggregatedRecord, field by field:
//   partition_key_table: "a", "bb"; explicit_hash_key_table: "5";
//   records: {partition_key_index 0, data "x"},
//            {partition_key_index 1, explicit_hash_key_index 0, data "yz", tags [{key "t"}]}
const TWO_RECORDS = [
  [0x0a, 0x01, 0x61], // 1: "a"
  [0x0a, 0x02, 0x62, 0x62], // 1: "bb"
  [0x12, 0x01, 0x35], // 2: "5"
  [0x1a, 0x05, 0x08, 0x00, 0x1a, 0x01, 0x78], // 3: {1: 0, 3: "x"}
  [0x1a, 0x0d, 0x08, 0x01, 0x10, 0x00, 0x1a, 0x02, 0x79, 0x7a, 0x22, 0x03, 0x0a, 0x01, 0x74], // 3: {1: 1, 2: 0, 3: "yz", 4: {1: "t"}}
].flat();

const text = (bytes: Uint8Array) => Buffer.from(bytes).toString();

describe("KPL aggregated records", () => {
  test("the user records come out with their partition keys, hash keys and data; tags and unknown fields are skipped", () => {
    const withUnknown = [...TWO_RECORDS, 0x4d, 0x01, 0x02, 0x03, 0x04]; // 9: fixed32, unknown
    const result = deaggregate(aggregated(withUnknown));
    assert.equal(result.kind, "aggregated");
    assert.deepEqual(
      result.kind === "aggregated" &&
        result.records.map((record) => [
          record.partitionKey,
          record.explicitHashKey,
          text(record.data),
          record.problem,
        ]),
      [
        ["a", undefined, "x", undefined],
        ["bb", "5", "yz", undefined],
      ],
    );
  });

  test("data without the magic, too short, or whose MD5 does not match is an ordinary record", () => {
    assert.deepEqual(deaggregate(Buffer.from("plain data")), { kind: "plain" });
    assert.deepEqual(deaggregate(AGGREGATED_MAGIC), { kind: "plain" });
    const tampered = aggregated(TWO_RECORDS);
    tampered[tampered.length - 1] = (tampered.at(-1) as number) ^ 0xff;
    assert.deepEqual(deaggregate(tampered), { kind: "plain" });
  });

  test("a matching MD5 over bytes that are not an AggregatedRecord is malformed, with the reason", () => {
    assert.deepEqual(deaggregate(aggregated([0x0a, 0x05, 0x61])), {
      kind: "malformed",
      reason: "a field's length runs past the end of its message",
    });
    assert.deepEqual(deaggregate(aggregated([0x0a, 0x01, 0x61])), {
      kind: "malformed",
      reason: "the aggregated record holds no records",
    });
    assert.deepEqual(deaggregate(aggregated([0x0a, 0x02, 0xff, 0xfe, 0x1a, 0x02, 0x08, 0x00])), {
      kind: "malformed",
      reason: "a string field is not UTF-8",
    });
    assert.deepEqual(deaggregate(aggregated([0x1a, 0x0b, 0x08, ...new Array(10).fill(0xff)])), {
      kind: "malformed",
      reason: "a varint is longer than 10 bytes",
    });
  });

  test("a user record naming a partition key the table lacks, or without data, says so", () => {
    const result = deaggregate(
      aggregated(
        [
          [0x0a, 0x01, 0x61], // 1: "a"
          [0x1a, 0x05, 0x08, 0x03, 0x1a, 0x01, 0x78], // 3: {1: 3, 3: "x"}
          [0x1a, 0x03, 0x1a, 0x01, 0x79], // 3: {3: "y"}
          [0x1a, 0x02, 0x08, 0x00], // 3: {1: 0}
        ].flat(),
      ),
    );
    assert.deepEqual(
      result.kind === "aggregated" && result.records.map((record) => [record.partitionKey, record.problem]),
      [
        [undefined, "names partition key 3, but the table has 1"],
        [undefined, "has no partition key index"],
        ["a", "has no data"],
      ],
    );
  });
});

const ingress: KinesisIngressConfig = {
  kind: "io.statefun.kinesis.v1/ingress",
  id: "example/in",
  region: { type: "default" },
  credentials: { type: "default" },
  startupPosition: { type: "latest" },
  streams: [{ stream: "users", valueType: "example/User", targets: ["example/a" as never, "example/b" as never] }],
  clientConfigProperties: new Map(),
  source: { file: "module.yaml", line: 1, column: 1, field: "spec.id" },
};

const record = (seq: string, partitionKey: string, data: Uint8Array | string): KinesisRecord => ({
  SequenceNumber: seq,
  PartitionKey: partitionKey,
  Data: typeof data === "string" ? Buffer.from(data) : data,
});

describe("Kinesis records to messages", () => {
  test("the partition key is the id, the data goes as is to every target, the position follows each record", () => {
    const routed = routeRecords(ingress, "users", "shardId-000000000001", [record("101", "ana", "v1")]);
    assert.deepEqual(
      routed[0]?.envelopes.map((envelope) => [
        envelope.target.typename,
        envelope.target.id,
        envelope.argument.typename,
      ]),
      [
        ["example/a", "ana", "example/User"],
        ["example/b", "ana", "example/User"],
      ],
    );
    assert.equal(text(routed[0]?.envelopes[0]?.argument.value ?? new Uint8Array()), "v1");
    assert.deepEqual(routed[0]?.position, { at: "after", seq: "101" });
    assert.equal(routed[0]?.rejected, undefined);
  });

  test("an aggregated record's user records go to their own ids; the position holds the index until its last", () => {
    const routed = routeRecords(ingress, "users", "shardId-000000000000", [
      record("7", "outer", aggregated(TWO_RECORDS)),
      record("8", "bo", "v"),
    ]);
    assert.deepEqual(
      routed.map((one) => [one.envelopes.map((envelope) => envelope.target.id).join(","), one.position]),
      [
        ["a,a", { at: "after", seq: "7", sub: 0 }],
        ["bb,bb", { at: "after", seq: "7" }],
        ["bo,bo", { at: "after", seq: "8" }],
      ],
    );
  });

  test("resuming inside an aggregated record skips the user records already taken", () => {
    const routed = routeRecords(
      ingress,
      "users",
      "shardId-000000000000",
      [record("7", "outer", aggregated(TWO_RECORDS)), record("8", "bo", "v")],
      { seq: "7", sub: 0 },
    );
    assert.deepEqual(
      routed.map((one) => one.envelopes[0]?.target.id),
      ["bb", "bo"],
    );
  });

  test("an empty partition key or a broken aggregated record: a dead letter naming stream, shard and sequence number", () => {
    const routed = routeRecords(ingress, "users", "shardId-000000000002", [
      record("11", "", "v"),
      record("12", "k", aggregated([0x0a, 0x05, 0x61])),
      record("13", "k", aggregated([0x0a, 0x01, 0x61, 0x1a, 0x05, 0x08, 0x03, 0x1a, 0x01, 0x78])),
    ]);
    assert.ok(routed.every((one) => one.envelopes.length === 0));
    assert.deepEqual(
      routed.map((one) => [one.rejected?.ingress, one.rejected?.target.typename, one.rejected?.reason, one.position]),
      [
        [
          "example/in",
          "example/a",
          "Kinesis ingress example/in: the record at stream users shard shardId-000000000002 sequence number 11 has an empty partition key (the partition key is the function id)",
          { at: "after", seq: "11" },
        ],
        [
          "example/in",
          "example/a",
          "Kinesis ingress example/in: the record at stream users shard shardId-000000000002 sequence number 12 is an aggregated (KPL) record that does not decode: a field's length runs past the end of its message",
          { at: "after", seq: "12" },
        ],
        [
          "example/in",
          "example/a",
          "Kinesis ingress example/in: the record at stream users shard shardId-000000000002 sequence number 13 sub-record 0 names partition key 3, but the table has 1",
          { at: "after", seq: "13" },
        ],
      ],
    );
  });
});

describe("Kinesis egress records", () => {
  const entry = (typename: string, value: Uint8Array) => ({
    seq: 1,
    egress: "example/out",
    source: { typename: "example/f" as never, id: "1" },
    value: { typename, hasValue: true, value },
  });
  const check = (fields: {
    stream?: string;
    partitionKey?: string;
    explicitHashKey?: string;
    valueBytes?: Uint8Array;
  }) =>
    egressRecord(
      entry(
        KINESIS_EGRESS_RECORD_TYPENAME,
        encodeKinesisEgressRecord({
          stream: "out",
          partitionKey: "k",
          valueBytes: Buffer.from("v"),
          explicitHashKey: "",
          ...fields,
        }),
      ),
    );
  const reason = (result: ReturnType<typeof egressRecord>) => (result.ok ? "accepted" : result.reason);

  test("a KinesisEgressRecord is read: stream, partition key, data, and the explicit hash key when given", () => {
    const good = check({ explicitHashKey: "340282366920938463463374607431768211455" });
    assert.ok(good.ok);
    assert.deepEqual(
      { ...good.record, data: text(good.record.data) },
      {
        stream: "out",
        partitionKey: "k",
        data: "v",
        explicitHashKey: "340282366920938463463374607431768211455",
        bytes: 2,
      },
    );
    const plain = check({});
    assert.equal(plain.ok && plain.record.explicitHashKey, undefined);
  });

  test("what Kinesis could never take is refused with the reason", () => {
    assert.equal(
      reason(egressRecord(entry("example/Other", new Uint8Array()))),
      `a Kinesis egress takes ${KINESIS_EGRESS_RECORD_TYPENAME}, got example/Other`,
    );
    assert.match(
      reason(egressRecord(entry(KINESIS_EGRESS_RECORD_TYPENAME, Uint8Array.of(0xff, 0xff, 0xff)))),
      /^the KinesisEgressRecord does not decode/,
    );
    assert.equal(
      reason(check({ stream: "no such stream" })),
      `stream "no such stream" is not a Kinesis stream name (1–128 of a-z, A-Z, 0-9, '_', '.', '-')`,
    );
    assert.equal(
      reason(check({ stream: "" })),
      `stream "" is not a Kinesis stream name (1–128 of a-z, A-Z, 0-9, '_', '.', '-')`,
    );
    assert.equal(reason(check({ partitionKey: "" })), "the partition key has 0 characters; Kinesis takes 1 to 256");
    assert.equal(
      reason(check({ partitionKey: "k".repeat(257) })),
      "the partition key has 257 characters; Kinesis takes 1 to 256",
    );
    assert.equal(reason(check({ partitionKey: "k".repeat(256) })), "accepted");
    assert.equal(
      reason(check({ explicitHashKey: "340282366920938463463374607431768211456" })),
      'explicit hash key "340282366920938463463374607431768211456" is not a whole number from 0 to 2^128-1',
    );
    assert.equal(
      reason(check({ explicitHashKey: "-1" })),
      'explicit hash key "-1" is not a whole number from 0 to 2^128-1',
    );
    assert.equal(
      reason(check({ partitionKey: "kk", valueBytes: new Uint8Array(1024 * 1024 - 1) })),
      "the record has 1048577 bytes (data and partition key), more than Kinesis's 1048576",
    );
    assert.equal(reason(check({ partitionKey: "k", valueBytes: new Uint8Array(1024 * 1024 - 1) })), "accepted");
  });
});

describe("Kinesis client properties", () => {
  const egress: KinesisEgressConfig = {
    kind: "io.statefun.kinesis.v1/egress",
    id: "example/out",
    region: { type: "default" },
    credentials: { type: "default" },
    maxOutstandingRecords: 1000,
    clientConfigProperties: new Map(),
    source: { file: "module.yaml", line: 1, column: 1, field: "spec.id" },
  };

  test("the ingress reads the AWS client's timeouts, connections and retries, in either spelling; the rest is named", () => {
    const settings = kinesisIngressSettings({
      ...ingress,
      clientConfigProperties: new Map([
        ["socketTimeout", "9999"],
        ["MaxConnections", "15"],
        ["MaxErrorRetry", "2"],
        ["UserAgentPrefix", "x"],
        ["ProxyHost", "proxy"],
      ]),
    });
    assert.ok(settings.ok);
    assert.deepEqual(settings.value, {
      http: {
        connectTimeoutMs: 10_000,
        socketTimeoutMs: 9999,
        requestTimeoutMs: 0,
        maxConnections: 15,
        maxAttempts: 3,
      },
      ignored: ["ProxyHost", "UserAgentPrefix"],
    });
    const bad = kinesisIngressSettings({ ...ingress, clientConfigProperties: new Map([["SocketTimeout", "soon"]]) });
    assert.deepEqual(bad, {
      ok: false,
      error:
        'Kinesis ingress example/in: SocketTimeout "soon": expected a whole number of milliseconds from 0 to 2147483647',
    });
  });

  test("the egress reads the KPL's timeouts and call sizes, bounded by maxOutstandingRecords; the rest is named", () => {
    const settings = kinesisEgressSettings({
      ...egress,
      maxOutstandingRecords: 100,
      clientConfigProperties: new Map([
        ["ThreadingModel", "POOLED"],
        ["ThreadPoolSize", "10"],
        ["RequestTimeout", "2000"],
        ["CollectionMaxSize", "1048576"],
      ]),
    });
    assert.ok(settings.ok);
    assert.deepEqual(settings.value, {
      http: { connectTimeoutMs: 6000, socketTimeoutMs: 0, requestTimeoutMs: 2000, maxConnections: 24, maxAttempts: 1 },
      recordsPerCall: 100,
      bytesPerCall: 1048576,
      ignored: ["ThreadPoolSize", "ThreadingModel"],
    });
    assert.deepEqual(
      kinesisEgressSettings({ ...egress, clientConfigProperties: new Map([["CollectionMaxCount", "501"]]) }),
      {
        ok: false,
        error: 'Kinesis egress example/out: CollectionMaxCount "501": expected a whole number from 1 to 500',
      },
    );
  });

  test("profile credentials come from the named profile of the given file", async (t) => {
    const dir = mkdtempSync(join(tmpdir(), "eddy-aws-profile-"));
    t.after(() => rmSync(dir, { recursive: true, force: true }));
    const file = join(dir, "credentials");
    writeFileSync(
      file,
      "[default]\naws_access_key_id = DEFAULTKEY\naws_secret_access_key = d\n\n[eddy]\naws_access_key_id = EDDYKEY\naws_secret_access_key = s3cr3t\n",
    );
    const client = createKinesisClient({
      region: { type: "specific", id: "eu-west-1" },
      credentials: { type: "profile", profileName: "eddy", profilePath: file },
      http: { connectTimeoutMs: 1000, socketTimeoutMs: 0, requestTimeoutMs: 0, maxConnections: 1, maxAttempts: 1 },
    });
    t.after(() => client.destroy());
    const credentials = await client.config.credentials();
    assert.deepEqual([credentials.accessKeyId, credentials.secretAccessKey], ["EDDYKEY", "s3cr3t"]);
    assert.equal(await client.config.region(), "eu-west-1");
  });
});
