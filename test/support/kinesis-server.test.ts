// The Kinesis-compatible server the connector tests run against (test/support/kinesis-server.ts):
// streams with shards, records routed to shards by the MD5 of their partition key as Kinesis
// does, and each shard read back in order through the shard-iterator calls the ingress uses.
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { connect } from "node:net";
import { describe, it } from "node:test";
import {
  GetRecordsCommand,
  GetShardIteratorCommand,
  type GetShardIteratorCommandInput,
  KinesisClient,
  type _Record as KinesisRecord,
  ListShardsCommand,
  PutRecordsCommand,
} from "@aws-sdk/client-kinesis";
import { NodeHttpHandler } from "@smithy/node-http-handler";
import { startKinesis } from "./kinesis-server.ts";

const STREAM = "eddy-ingress";
const RECORDS = 40;
/** Small, so that reading a shard takes several GetRecords calls. */
const GET_RECORDS_LIMIT = 7;

describe("a Kinesis-compatible server for tests", () => {
  it("keeps each shard's records in order, routed by partition key, readable from TRIM_HORIZON, LATEST and after a sequence number", async (t) => {
    const startedAt = performance.now();
    const kinesis = await startKinesis();
    t.diagnostic(`startKinesis() took ${Math.round(performance.now() - startedAt)} ms`);
    t.after(() => kinesis.stop());
    assert.match(kinesis.endpoint, /^http:\/\/127\.0\.0\.1:\d+$/);

    const createdAt = performance.now();
    await kinesis.createStream(STREAM, 2);
    t.diagnostic(`createStream(2 shards) took ${Math.round(performance.now() - createdAt)} ms`);
    await assert.rejects(kinesis.createStream(STREAM, 1), /ResourceInUseException/);

    const client = new KinesisClient({
      endpoint: kinesis.endpoint,
      region: kinesis.region,
      credentials: kinesis.credentials,
      // kinesalite has no HTTP/2, the SDK's default for Kinesis.
      requestHandler: new NodeHttpHandler(),
      maxAttempts: 1,
    });
    t.after(() => client.destroy());

    const { Shards: shards = [] } = await client.send(new ListShardsCommand({ StreamName: STREAM }));
    assert.deepEqual(
      shards.map((shard) => shard.ShardId),
      ["shardId-000000000000", "shardId-000000000001"],
    );
    const ranges = shards.map((shard) => ({
      id: shard.ShardId as string,
      start: BigInt(shard.HashKeyRange?.StartingHashKey ?? "-1"),
      end: BigInt(shard.HashKeyRange?.EndingHashKey ?? "-1"),
    }));
    assert.equal(ranges[0]?.start, 0n);
    assert.equal(ranges[1]?.end, 2n ** 128n - 1n, "the shards cover the whole hash key space");
    assert.equal((ranges[0]?.end ?? 0n) + 1n, ranges[1]?.start);

    // Two PutRecords calls: order within a shard holds across requests too.
    const sent = Array.from({ length: RECORDS }, (_, i) => ({ key: `user-${i % 13}`, data: `value ${i} ✓` }));
    const sequenceNumbers: { shardId: string; sequenceNumber: string }[] = [];
    for (const batch of [sent.slice(0, RECORDS / 2), sent.slice(RECORDS / 2)]) {
      const put = await client.send(
        new PutRecordsCommand({
          StreamName: STREAM,
          Records: batch.map(({ key, data }) => ({ PartitionKey: key, Data: Buffer.from(data) })),
        }),
      );
      assert.equal(put.FailedRecordCount, 0);
      for (const entry of put.Records ?? []) {
        sequenceNumbers.push({ shardId: entry.ShardId as string, sequenceNumber: entry.SequenceNumber as string });
      }
    }
    assert.equal(sequenceNumbers.length, RECORDS);

    // Each record is on the shard whose hash key range holds the MD5 of its partition key.
    const expectedByShard = new Map<string, { key: string; data: string; sequenceNumber: string }[]>();
    sent.forEach(({ key, data }, i) => {
      const hash = BigInt(`0x${createHash("md5").update(key).digest("hex")}`);
      const shard = ranges.find((range) => range.start <= hash && hash <= range.end);
      assert.equal(sequenceNumbers[i]?.shardId, shard?.id, `record ${i} (key ${key}) on the wrong shard`);
      const list = expectedByShard.get(shard?.id as string) ?? [];
      list.push({ key, data, sequenceNumber: sequenceNumbers[i]?.sequenceNumber as string });
      expectedByShard.set(shard?.id as string, list);
    });
    assert.equal(expectedByShard.size, 2, "the partition keys spread over both shards");

    const decode = (records: KinesisRecord[]) =>
      records.map((record) => ({
        key: record.PartitionKey as string,
        data: Buffer.from(record.Data ?? new Uint8Array()).toString(),
        sequenceNumber: record.SequenceNumber as string,
      }));

    /** Every record from the iterator `input` names, following NextShardIterator until a read comes back empty. */
    async function readShard(input: GetShardIteratorCommandInput): Promise<KinesisRecord[]> {
      let iterator = (await client.send(new GetShardIteratorCommand(input))).ShardIterator;
      const records: KinesisRecord[] = [];
      while (iterator !== undefined) {
        const page = await client.send(new GetRecordsCommand({ ShardIterator: iterator, Limit: GET_RECORDS_LIMIT }));
        assert.ok((page.Records ?? []).length <= GET_RECORDS_LIMIT);
        if ((page.Records ?? []).length === 0) break;
        records.push(...(page.Records ?? []));
        iterator = page.NextShardIterator;
      }
      return records;
    }

    for (const [shardId, expected] of expectedByShard) {
      const records = await readShard({ StreamName: STREAM, ShardId: shardId, ShardIteratorType: "TRIM_HORIZON" });
      assert.deepEqual(decode(records), expected, `shard ${shardId} from TRIM_HORIZON`);
      const numbers = records.map((record) => BigInt(record.SequenceNumber as string));
      assert.ok(
        numbers.every((n, i) => i === 0 || (numbers[i - 1] as bigint) < n),
        `sequence numbers grow on ${shardId}`,
      );

      const after = expected[2]?.sequenceNumber as string;
      const rest = await readShard({
        StreamName: STREAM,
        ShardId: shardId,
        ShardIteratorType: "AFTER_SEQUENCE_NUMBER",
        StartingSequenceNumber: after,
      });
      assert.deepEqual(decode(rest), expected.slice(3), `shard ${shardId} after ${after}`);
    }

    // LATEST sees only what is put after the iterator was taken.
    const [firstShard] = shards;
    const latest = await client.send(
      new GetShardIteratorCommand({
        StreamName: STREAM,
        ShardId: firstShard?.ShardId as string,
        ShardIteratorType: "LATEST",
      }),
    );
    const pinned = await client.send(
      new PutRecordsCommand({
        StreamName: STREAM,
        // ExplicitHashKey 0 puts it on the first shard, whatever the partition key hashes to.
        Records: [{ PartitionKey: "late", Data: Buffer.from("after LATEST"), ExplicitHashKey: "0" }],
      }),
    );
    assert.equal(pinned.Records?.[0]?.ShardId, firstShard?.ShardId);
    const fresh = await client.send(new GetRecordsCommand({ ShardIterator: latest.ShardIterator as string }));
    assert.deepEqual(
      decode(fresh.Records ?? []).map(({ key, data }) => ({ key, data })),
      [{ key: "late", data: "after LATEST" }],
    );

    await kinesis.stop();
    await assert.rejects(
      client.send(new ListShardsCommand({ StreamName: STREAM })),
      /ECONNREFUSED/,
      "a stopped server still answers",
    );
  });

  it("survives a client that hangs up in the middle of a request, as Kinesis does", async (t) => {
    const kinesis = await startKinesis();
    t.after(() => kinesis.stop());
    const socket = connect({ host: "127.0.0.1", port: Number(new URL(kinesis.endpoint).port) });
    await new Promise((resolve, reject) => socket.once("connect", resolve).once("error", reject));
    await new Promise<void>((resolve) =>
      socket.write(
        'POST / HTTP/1.1\r\nHost: kinesis\r\nContent-Type: application/x-amz-json-1.1\r\nContent-Length: 100\r\n\r\n{"Strea',
        () => resolve(),
      ),
    );
    await new Promise((resolve) => setTimeout(resolve, 50));
    await new Promise((resolve) => socket.destroy().once("close", resolve));
    await kinesis.createStream("after-hang-up", 1);
  });
});
