// The Kafka ingress and egress specs (statefun-protocol.md §4.2–4.3) read with every option
// and StateFun's defaults, and every mistake reported at its line and field. (The kinds are
// not accepted in module files until the Kafka connector runs; this is the reader alone.)
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { LineCounter, parseDocument } from "yaml";
import type { ConfigError, ConfigWarning } from "../src/config/diagnostics.ts";
import { parseKafkaDate, parseKafkaEgress, parseKafkaIngress } from "../src/config/kafka.ts";
import { Reader } from "../src/config/reader.ts";

function read<T>(yaml: string, parse: (r: Reader, spec: NonNullable<ReturnType<Reader["map"]>>) => T) {
  const lineCounter = new LineCounter();
  const document = parseDocument(yaml, { lineCounter });
  const sink = { errors: [] as ConfigError[], warnings: [] as ConfigWarning[] };
  const r = new Reader("module.yaml", lineCounter, document, sink);
  const root = r.map({ path: "", value: document.contents, key: undefined }, "a mapping");
  const specEntry = root === undefined ? undefined : r.require(root, "spec", "a spec");
  const spec = specEntry === undefined ? undefined : r.map(specEntry, "a mapping");
  const value = spec === undefined ? undefined : parse(r, spec);
  return { value, errors: sink.errors.map((e) => e.format()), warnings: sink.warnings.map((w) => w.format()) };
}

describe("Kafka ingress spec", () => {
  test("every option, as StateFun writes them", () => {
    const { value, errors } = read(
      `kind: io.statefun.kafka.v1/ingress
spec:
  id: com.example/users-in
  address: 127.0.0.1:9092
  consumerGroupId: my-group
  topics:
    - topic: users
      valueType: com.example/User
      targets:
        - com.example.fns/greeter
        - com.example.fns/auditor
    - topic: fraud
      valueType: com.example/Fraud
      targets: [com.example.fns/counter]
  autoOffsetResetPosition: earliest
  startupPosition:
    type: specific-offsets
    offsets:
      - users/0: 91
      - users/1: 11
  properties:
    - isolation.level: read_committed
    - max.poll.records: 500
`,
      parseKafkaIngress,
    );
    assert.deepEqual(errors, []);
    assert.ok(value !== undefined);
    assert.equal(value.id, "com.example/users-in");
    assert.equal(value.bootstrapServers, "127.0.0.1:9092");
    assert.equal(value.groupId, "my-group");
    assert.deepEqual(value.topics, [
      {
        topic: "users",
        valueType: "com.example/User",
        targets: ["com.example.fns/greeter", "com.example.fns/auditor"],
      },
      { topic: "fraud", valueType: "com.example/Fraud", targets: ["com.example.fns/counter"] },
    ]);
    assert.equal(value.autoOffsetReset, "earliest");
    assert.deepEqual(value.startupPosition, {
      type: "specific-offsets",
      offsets: [
        { topic: "users", partition: 0, offset: 91 },
        { topic: "users", partition: 1, offset: 11 },
      ],
    });
    assert.deepEqual(
      [...value.properties],
      [
        ["isolation.level", "read_committed"],
        ["max.poll.records", "500"],
      ],
    );
  });

  test("defaults: latest (StateFun's code, not its docs); address and group from the properties", () => {
    const { value, errors } = read(
      `spec:
  id: com.example/in
  topics: [{topic: t, valueType: com.example/V, targets: [com.example/f]}]
  properties:
    - bootstrap.servers: broker:9092
    - group.id: g
`,
      parseKafkaIngress,
    );
    assert.deepEqual(errors, []);
    assert.equal(value?.bootstrapServers, "broker:9092");
    assert.equal(value?.groupId, "g");
    assert.deepEqual(value?.startupPosition, { type: "latest" });
    assert.equal(value?.autoOffsetReset, "latest");
    assert.equal(value?.properties.size, 0, "address and group id are taken out of the properties");
  });

  test("a date position in Java's pattern, with its zone offset", () => {
    assert.equal(parseKafkaDate("2020-02-01 04:15:00.000 +0000"), Date.UTC(2020, 1, 1, 4, 15));
    assert.equal(parseKafkaDate("2020-02-01 05:15:00.250 +0100"), Date.UTC(2020, 1, 1, 4, 15, 0, 250));
    assert.equal(parseKafkaDate("2020-02-30 04:15:00.000 +0000"), undefined);
    assert.equal(parseKafkaDate("2020-02-01T04:15:00Z"), undefined);
    const { value, errors } = read(
      `spec:
  id: com.example/in
  address: b:9092
  topics: [{topic: t, valueType: com.example/V, targets: [com.example/f]}]
  startupPosition: {type: date, date: "2020-02-01 04:15:00.000 +0000"}
`,
      parseKafkaIngress,
    );
    assert.deepEqual(errors, []);
    assert.deepEqual(value?.startupPosition, { type: "date", epochMs: Date.UTC(2020, 1, 1, 4, 15) });
  });

  test("every mistake is named at its line and field", () => {
    const { value, errors } = read(
      `spec:
  id: not-a-typename
  topics:
    - topic: users
      valueType: com.example/User
      targets: []
    - topic: users
      valueType: com.example/User
      targets: [com.example/f]
    - topic: other
      targets: [nope]
  autoOffsetResetPosition: middle
  startupPosition:
    type: specific-offsets
    offsets:
      - users: 3
      - users/0: -1
`,
      parseKafkaIngress,
    );
    assert.equal(value, undefined);
    const expected = [
      /module\.yaml:2:7: spec\.id: "not-a-typename" is not a typename/,
      /module\.yaml:1:1: spec\.address: missing required field address/,
      /module\.yaml:6:16: spec\.topics\[0\]\.targets: no targets/,
      /module\.yaml:7:14: spec\.topics\[1\]\.topic: topic users is listed twice/,
      /spec\.topics\[2\]\.valueType: missing required field valueType/,
      /module\.yaml:11:17: spec\.topics\[2\]\.targets\[0\]: "nope" is not a typename/,
      /module\.yaml:12:28: spec\.autoOffsetResetPosition: "middle" is not a reset position/,
      /spec\.startupPosition\.offsets\[0\]\.users: "users" is not <topic>\/<partition>/,
      /spec\.startupPosition\.offsets\[1\]\.users\/0: -1 is below the minimum 0/,
    ];
    for (const pattern of expected) {
      assert.ok(
        errors.some((error) => pattern.test(error)),
        `${pattern} in:\n${errors.join("\n")}`,
      );
    }
    assert.equal(errors.length, expected.length, errors.join("\n"));
  });

  test("group-offsets needs a consumer group", () => {
    const { value, errors } = read(
      `spec:
  id: com.example/in
  address: b:9092
  topics: [{topic: t, valueType: com.example/V, targets: [com.example/f]}]
  startupPosition: {type: group-offsets}
`,
      parseKafkaIngress,
    );
    assert.equal(value, undefined);
    assert.match(errors.join("\n"), /spec\.consumerGroupId: startupPosition group-offsets needs a consumer group/);
  });
});

describe("Kafka egress spec", () => {
  test("exactly-once with its transaction timeout; at-least-once by default", () => {
    const exactly = read(
      `spec:
  id: com.example/greets
  address: 127.0.0.1:9092
  deliverySemantic:
    type: exactly-once
    transactionTimeout: 15min
  properties:
    - compression.type: lz4
`,
      parseKafkaEgress,
    );
    assert.deepEqual(exactly.errors, []);
    assert.deepEqual(exactly.value?.deliverySemantic, { type: "exactly-once", transactionTimeoutMs: 900_000 });
    assert.deepEqual([...(exactly.value?.properties ?? [])], [["compression.type", "lz4"]]);
    const plain = read("spec:\n  id: com.example/out\n  address: b:9092\n", parseKafkaEgress);
    assert.deepEqual(plain.value?.deliverySemantic, { type: "at-least-once" });
    const legacy = read(
      "spec:\n  id: com.example/out\n  address: b:9092\n  deliverySemantic: {type: exactly-once, transactionTimeout: 1min, transactionTimeoutMillis: 5000}\n",
      parseKafkaEgress,
    );
    assert.deepEqual(
      legacy.value?.deliverySemantic,
      { type: "exactly-once", transactionTimeoutMs: 5000 },
      "the millis form wins",
    );
  });

  test("exactly-once without a timeout, an unknown semantic, a timeout the broker would refuse", () => {
    const missing = read(
      "spec:\n  id: com.example/out\n  address: b:9092\n  deliverySemantic: {type: exactly-once}\n",
      parseKafkaEgress,
    );
    assert.equal(missing.value, undefined);
    assert.match(
      missing.errors.join("\n"),
      /spec\.deliverySemantic\.transactionTimeout: missing required field transactionTimeout/,
    );
    const unknown = read(
      "spec:\n  id: com.example/out\n  address: b:9092\n  deliverySemantic: {type: twice}\n",
      parseKafkaEgress,
    );
    assert.match(unknown.errors.join("\n"), /spec\.deliverySemantic\.type: "twice" is not a delivery semantic/);
    const long = read(
      "spec:\n  id: com.example/out\n  address: b:9092\n  deliverySemantic: {type: exactly-once, transactionTimeout: 1h}\n",
      parseKafkaEgress,
    );
    assert.deepEqual(long.errors, []);
    assert.match(long.warnings.join("\n"), /above 15min, Kafka's default transaction\.max\.timeout\.ms/);
  });
});
