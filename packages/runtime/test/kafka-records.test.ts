// The Kafka connectors' pure parts: which fetched records a read_committed reader sees (an
// aborted transaction whose marker comes in a later fetch included), how records become
// messages or dead letters, and how egress records are checked.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { encodeKafkaProducerRecord, KAFKA_PRODUCER_RECORD_TYPENAME } from "@eddy/protocol";
import type { KafkaIngressConfig } from "../src/config/types.ts";
import type { Tracer, TraceSpan } from "../src/engine/tracer.ts";
import { parseJaas } from "../src/io/kafka/client-options.ts";
import { AbortedProducers, type FetchedBatch } from "../src/io/kafka/committed-records.ts";
import { producerRecord } from "../src/io/kafka/egress.ts";
import { routeRecords } from "../src/io/kafka/ingress.ts";

const TRANSACTIONAL = 0x10;
const CONTROL = 0x20;

function data(firstOffset: number, producerId: number, values: string[], transactional = true): FetchedBatch {
  return {
    firstOffset: BigInt(firstOffset),
    lastOffsetDelta: values.length - 1,
    attributes: transactional ? TRANSACTIONAL : 0,
    producerId: BigInt(producerId),
    firstTimestamp: 1000n,
    records: values.map((value, index) => ({
      offsetDelta: index,
      timestampDelta: BigInt(index),
      key: Buffer.from("k"),
      value: Buffer.from(value),
      headers: [],
    })),
  };
}

function marker(offset: number, producerId: number, commit: boolean): FetchedBatch {
  const key = Buffer.alloc(4);
  key.writeInt16BE(commit ? 1 : 0, 2);
  return {
    firstOffset: BigInt(offset),
    lastOffsetDelta: 0,
    attributes: TRANSACTIONAL | CONTROL,
    producerId: BigInt(producerId),
    firstTimestamp: 1000n,
    records: [{ offsetDelta: 0, timestampDelta: 0n, key, value: Buffer.alloc(0), headers: [] }],
  };
}

const values = (taken: ReturnType<AbortedProducers["take"]>) => taken.records.map((record) => record.value?.toString());

describe("records a read_committed reader sees", () => {
  test("an aborted transaction's records are dropped, a committed one's kept, markers never shown", () => {
    const reader = new AbortedProducers();
    const taken = reader.take(
      0n,
      [data(0, 7, ["a1", "a2"]), marker(2, 7, false), data(3, 8, ["c1"]), marker(4, 8, true), data(5, 7, ["b1"])],
      [{ producerId: 7n, firstOffset: 0n }],
    );
    assert.deepEqual(values(taken), ["c1", "b1"]);
    assert.equal(taken.nextOffset, 6n);
  });

  test("the abort marker in a later fetch than the data still drops the data", () => {
    const reader = new AbortedProducers();
    const first = reader.take(
      0n,
      [data(0, 9, ["plain"], false), data(1, 7, ["x1", "x2"])],
      [{ producerId: 7n, firstOffset: 1n }],
    );
    assert.deepEqual(values(first), ["plain"]);
    assert.equal(first.nextOffset, 3n);
    // The next fetch starts after the aborted data: its marker, then the producer's next, committed transaction.
    const second = reader.take(
      3n,
      [marker(3, 7, false), data(4, 7, ["y1"]), marker(5, 7, true)],
      [{ producerId: 7n, firstOffset: 1n }],
    );
    assert.deepEqual(values(second), ["y1"]);
    assert.equal(second.nextOffset, 6n);
  });

  test("records before the fetch offset in the first batch are skipped", () => {
    const taken = new AbortedProducers().take(2n, [data(0, 1, ["r0", "r1", "r2", "r3"], false)], []);
    assert.deepEqual(values(taken), ["r2", "r3"]);
    assert.deepEqual(
      taken.records.map((record) => record.offset),
      [2n, 3n],
    );
  });
});

const ingress: KafkaIngressConfig = {
  kind: "io.statefun.kafka.v1/ingress",
  id: "example/in",
  bootstrapServers: "127.0.0.1:9092",
  groupId: undefined,
  topics: [{ topic: "users", valueType: "example/User", targets: ["example/a" as never, "example/b" as never] }],
  autoOffsetReset: "latest",
  startupPosition: { type: "earliest" },
  properties: new Map(),
  source: { file: "module.yaml", line: 1, column: 1, field: "spec" },
};

describe("Kafka records to messages", () => {
  test("the key is the id, the value goes as is to every target", () => {
    const routed = routeRecords(ingress, "users", 0, [
      { offset: 5n, timestamp: 0n, key: Buffer.from("ana"), value: Buffer.from([1, 2]), headers: [] },
    ]);
    assert.deepEqual(
      routed.envelopes.map((envelope) => [envelope.target.typename, envelope.target.id, envelope.argument.typename]),
      [
        ["example/a", "ana", "example/User"],
        ["example/b", "ana", "example/User"],
      ],
    );
    assert.deepEqual([...(routed.envelopes[0]?.argument.value ?? [])], [1, 2]);
    assert.equal(routed.rejected.length, 0);
  });

  test("with tracing, each record starts a span continuing its traceparent header, and its messages carry it", () => {
    const started: { name: string; kind: string; parent: string | undefined }[] = [];
    const tracer: Tracer = {
      start(name, kind, parent) {
        started.push({ name, kind, parent });
        return { traceparent: `00-${"1".repeat(32)}-${String(started.length).padStart(16, "0")}-01`, end() {} };
      },
    };
    const spans: TraceSpan[] = [];
    const parent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    const routed = routeRecords(
      ingress,
      "users",
      0,
      [
        {
          offset: 5n,
          timestamp: 0n,
          key: Buffer.from("ana"),
          value: Buffer.from("v"),
          headers: [[Buffer.from("traceparent"), Buffer.from(parent)]],
        },
        { offset: 6n, timestamp: 0n, key: Buffer.from("bo"), value: Buffer.from("v"), headers: [] },
        { offset: 7n, timestamp: 0n, key: null, value: Buffer.from("v"), headers: [] },
      ],
      tracer,
      spans,
    );
    // One span per record that routes (not per target, not for the dead letter).
    assert.deepEqual(started, [
      { name: "accept example/in", kind: "consumer", parent },
      { name: "accept example/in", kind: "consumer", parent: undefined },
    ]);
    assert.equal(spans.length, 2);
    assert.deepEqual(
      routed.envelopes.map((envelope) => [envelope.target.typename, envelope.target.id, envelope.trace]),
      [
        ["example/a", "ana", spans[0]?.traceparent],
        ["example/b", "ana", spans[0]?.traceparent],
        ["example/a", "bo", spans[1]?.traceparent],
        ["example/b", "bo", spans[1]?.traceparent],
      ],
    );
    // Without a tracer, no message carries a context.
    const plain = routeRecords(ingress, "users", 0, [
      { offset: 5n, timestamp: 0n, key: Buffer.from("ana"), value: Buffer.from("v"), headers: [] },
    ]);
    assert.ok(plain.envelopes.every((envelope) => !("trace" in envelope)));
  });

  test("no key, a key that is not UTF-8, or no value: a dead letter naming topic, partition and offset", () => {
    const routed = routeRecords(ingress, "users", 2, [
      { offset: 7n, timestamp: 0n, key: null, value: Buffer.from("v"), headers: [] },
      { offset: 8n, timestamp: 0n, key: Buffer.from([0xff, 0xfe]), value: Buffer.from("v"), headers: [] },
      { offset: 9n, timestamp: 0n, key: Buffer.from("bo"), value: null, headers: [] },
    ]);
    assert.equal(routed.envelopes.length, 0);
    assert.deepEqual(
      routed.rejected.map((letter) => [letter.ingress, letter.target.typename, letter.target.id, letter.reason]),
      [
        [
          "example/in",
          "example/a",
          "",
          "Kafka ingress example/in: the record at topic users partition 2 offset 7 has no key (the key is the function id)",
        ],
        [
          "example/in",
          "example/a",
          "",
          "Kafka ingress example/in: the record at topic users partition 2 offset 8 has a key that is not UTF-8 (the key is the function id)",
        ],
        [
          "example/in",
          "example/a",
          "bo",
          "Kafka ingress example/in: the record at topic users partition 2 offset 9 has no value",
        ],
      ],
    );
  });
});

describe("Kafka egress records", () => {
  const entry = (typename: string, value: Uint8Array) => ({
    seq: 1,
    egress: "example/out",
    source: { typename: "example/f" as never, id: "1" },
    value: { typename, hasValue: true, value },
  });

  test("a KafkaProducerRecord is read; anything else is refused with the reason", () => {
    const good = producerRecord(
      entry(
        KAFKA_PRODUCER_RECORD_TYPENAME,
        encodeKafkaProducerRecord({ topic: "out", key: "k", valueBytes: Buffer.from("v") }),
      ),
      1024,
    );
    assert.deepEqual(good.ok && { ...good.record, value: Buffer.from(good.record.value).toString() }, {
      topic: "out",
      key: "k",
      value: "v",
    });
    const wrongType = producerRecord(entry("example/Other", new Uint8Array()), 1024);
    assert.equal(
      !wrongType.ok && wrongType.reason,
      `a Kafka egress takes ${KAFKA_PRODUCER_RECORD_TYPENAME}, got example/Other`,
    );
    const badTopic = producerRecord(
      entry(
        KAFKA_PRODUCER_RECORD_TYPENAME,
        encodeKafkaProducerRecord({ topic: "a b", key: "", valueBytes: new Uint8Array() }),
      ),
      1024,
    );
    assert.match(!badTopic.ok ? badTopic.reason : "", /topic "a b" is not a Kafka topic name/);
    const tooBig = producerRecord(
      entry(
        KAFKA_PRODUCER_RECORD_TYPENAME,
        encodeKafkaProducerRecord({ topic: "out", key: "", valueBytes: new Uint8Array(2000) }),
      ),
      1024,
    );
    assert.equal(!tooBig.ok && tooBig.reason, "the record has 2000 bytes, more than max.request.size 1024");
    const garbage = producerRecord(entry(KAFKA_PRODUCER_RECORD_TYPENAME, Uint8Array.from([0xff, 0xff, 0xff])), 1024);
    assert.match(!garbage.ok ? garbage.reason : "", /^the KafkaProducerRecord does not decode/);
  });

  test("topics Kafka could never take are refused; any other name is Kafka's to have or create", () => {
    const toTopic = (topic: string) =>
      producerRecord(
        entry(
          KAFKA_PRODUCER_RECORD_TYPENAME,
          encodeKafkaProducerRecord({ topic, key: "k", valueBytes: new Uint8Array() }),
        ),
        1024,
      );
    const reason = (topic: string) => {
      const checked = toTopic(topic);
      return checked.ok ? undefined : checked.reason;
    };
    for (const topic of [".", "..", "", "x".repeat(250), "a/b", "é"]) {
      assert.match(reason(topic) ?? "", /is not a Kafka topic name/, JSON.stringify(topic));
    }
    for (const topic of ["__consumer_offsets", "__transaction_state", "__share_group_state", "__cluster_metadata"]) {
      assert.equal(reason(topic), `topic ${topic} is internal to Kafka: only the broker writes it`);
    }
    for (const topic of ["greets", "...", ".a", "a.b_c-D9", "__mine", "x".repeat(249)]) {
      assert.equal(reason(topic), undefined, topic);
    }
  });

  test("SASL credentials come from sasl.jaas.config", () => {
    assert.deepEqual(
      parseJaas(
        'org.apache.kafka.common.security.plain.PlainLoginModule required username="eddy" password="s3\\"cret";',
      ),
      { module: "org.apache.kafka.common.security.plain.PlainLoginModule", username: "eddy", password: 's3"cret' },
    );
  });
});
