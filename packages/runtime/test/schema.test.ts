// The storage schema against what state directories hold: every table's keys as they have
// always been written (existing directories and checkpoints must keep opening), keys that
// round-trip to their parts and sort as their parts do, a partition for every partition
// row, and no two tables that a key or a scan could confuse.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { AddressKey, FunctionTypename } from "../src/core/address.ts";
import { compareKeys, type Key, type KeyPart, MemoryKV } from "../src/core/kv.ts";
import {
  allTables,
  getRow,
  inPartition,
  isKeyOf,
  type LayoutPart,
  partitionKeyPrefix,
  partitionOfKey,
  putRow,
  scanRows,
  storeTables,
  type TableLayout,
  tableOfKey,
  tables,
} from "../src/core/schema.ts";
import { codecTable } from "../src/store/record-codec.ts";

const address = "ns/fn\u0000id" as AddressKey;
const typename = "ns/fn" as FunctionTypename;

/** Every table's key as the state directories of Eddy 0.1 hold it, written out. */
const golden: readonly [TableLayout, Key, Key][] = [
  [tables.epoch, tables.epoch.key(), ["meta", "epoch"]],
  [tables.inboxPosition, tables.inboxPosition.key(), ["meta", "inbox-position"]],
  [tables.changelogOffset, tables.changelogOffset.key(), ["meta", "changelog-offset"]],
  [tables.kafkaSourcePosition, tables.kafkaSourcePosition.key("in", "topic", 2), ["kafka-source", "in", "topic", 2]],
  [
    tables.kinesisSourcePosition,
    tables.kinesisSourcePosition.key("in", "stream", "shardId-000000000001"),
    ["kinesis-source", "in", "stream", "shardId-000000000001"],
  ],
  [tables.kinesisSourcePosition, tables.kinesisSourcePosition.of("in", "stream"), ["kinesis-source", "in", "stream"]],
  [tables.specs, tables.specs.key(typename), ["specs", "ns/fn"]],
  [tables.state, tables.state.key(typename, "id", "seen"), ["state", "ns/fn", "id", "seen"]],
  [tables.inflight, tables.inflight.key(address), ["inflight", address]],
  [tables.backlog, tables.backlog.key(address, 7), ["backlog", address, 7]],
  [tables.backlog, tables.backlog.of(address), ["backlog", address]],
  [tables.timer, tables.timer.key(100, 7), ["timer", 100, 7]],
  [tables.token, tables.token.key(address, "t"), ["token", address, "t"]],
  [tables.outbox, tables.outbox.key(7), ["outbox", 7]],
  [tables.idem, tables.idem.key(address, "k"), ["idem", address, "k"]],
  [tables.idemAt, tables.idemAt.key(100, address, "k"), ["idem-at", 100, address, "k"]],
  [tables.idemAt, tables.idemAt.before(100), ["idem-at", 100]],
  [tables.request, tables.request.key(100, "2s.u"), ["request", 100, "2s.u"]],
  [tables.request, tables.request.before(100), ["request", 100]],
  [tables.dead, tables.dead.key(7), ["dead", 7]],
  [tables.replay, tables.replay.key(7), ["replay", 7]],
  [tables.threadInbox, tables.threadInbox.key(7), ["thread-inbox", 7]],
  [tables.paused, tables.paused.key(typename), ["paused", "ns/fn"]],
  [tables.playgroundEgress, tables.playgroundEgress.key("out", 7), ["playground-egress", "out", 7]],
  [tables.playgroundEgress, tables.playgroundEgress.of("out"), ["playground-egress", "out"]],
  [tables.dead, inPartition(3, tables.dead.key(7)), ["p", 3, "dead", 7]],
  [storeTables.partitionCount, storeTables.partitionCount.key(), ["engine", "partitions"]],
  [storeTables.appliedLogSeq, storeTables.appliedLogSeq.key(), ["store", "applied-log-seq"]],
  [storeTables.storeFormat, storeTables.storeFormat.key(), ["store", "format"]],
  [storeTables.cluster, storeTables.cluster.key(), ["engine", "cluster"]],
  [
    storeTables.kafkaIngressPosition,
    storeTables.kafkaIngressPosition.key("in", "topic", 2),
    ["io", "kafka-ingress", "in", "topic", 2],
  ],
  [
    storeTables.kafkaIngressTopicLook,
    storeTables.kafkaIngressTopicLook.key("in", "topic"),
    ["io", "kafka-ingress-look", "in", "topic"],
  ],
  [
    storeTables.kinesisIngressPosition,
    storeTables.kinesisIngressPosition.key("in", "s", "shard-1"),
    ["io", "kinesis-ingress", "in", "s", "shard-1"],
  ],
  [
    storeTables.kinesisIngressPosition,
    storeTables.kinesisIngressPosition.of("in", "s"),
    ["io", "kinesis-ingress", "in", "s"],
  ],
  [
    storeTables.kafkaEgressRecord,
    storeTables.kafkaEgressRecord.key("out/x", 7),
    ["io", "kafka-egress", "out/x", "out", 7],
  ],
  [storeTables.kafkaEgressRecord, storeTables.kafkaEgressRecord.of("out/x"), ["io", "kafka-egress", "out/x", "out"]],
  [
    storeTables.kafkaEgressTransactionalId,
    storeTables.kafkaEgressTransactionalId.key("out/x"),
    ["io", "kafka-egress", "out/x", "transactional-id"],
  ],
  [
    storeTables.playgroundEgressRecord,
    storeTables.playgroundEgressRecord.key("t", 7),
    ["io", "playground-egress", "t", 7],
  ],
  [storeTables.playgroundEgressRecord, storeTables.playgroundEgressRecord.of("t"), ["io", "playground-egress", "t"]],
];

/** Sample values per part kind, chosen to sort in ways a naive encoding would get wrong. */
const STRINGS = ["", "a", "a\u0000b", "ab", "é"];
const NUMBERS = [0, 2, 10, 2 ** 32, Number.MAX_SAFE_INTEGER];

const variables = (layout: readonly LayoutPart[]) =>
  layout.filter((part): part is "string" | "number" => typeof part === "string");

/** Every combination of sample values for the table's variable parts. */
function sampleArgs(table: TableLayout): KeyPart[][] {
  let combos: KeyPart[][] = [[]];
  for (const kind of variables(table.layout)) {
    const values: readonly KeyPart[] = kind === "string" ? STRINGS : NUMBERS;
    combos = combos.flatMap((combo) => values.map((value) => [...combo, value]));
  }
  return combos;
}

const keyOf = (table: TableLayout, args: readonly KeyPart[]) => (table.key as (...parts: KeyPart[]) => Key)(...args);

/** A table's key as a whole key of the store. */
const inStore = (table: TableLayout, key: Key, partition = 5): Key =>
  table.scope === "partition" ? [...partitionKeyPrefix(partition), ...key] : key;

/** The order tuples of parts have: part by part, numbers numerically, strings by code unit. */
function compareArgs(a: readonly KeyPart[], b: readonly KeyPart[]): number {
  for (let index = 0; index < a.length; index++) {
    const x = a[index] as KeyPart;
    const y = b[index] as KeyPart;
    if (x !== y) return x < y ? -1 : 1;
  }
  return 0;
}

/** A table's keys as the store sees them: fixed strings, then kinds (a partition row starts with "p", a number). */
function storePattern(table: TableLayout): LayoutPart[] {
  const fixed = table.prefix.map((part) => ({ literal: String(part) }));
  const inPartitionPrefix: LayoutPart[] = table.scope === "partition" ? [{ literal: "p" }, "number"] : [];
  return [...inPartitionPrefix, ...fixed, ...table.layout];
}

/** Whether some key could fit both parts. */
function compatible(a: LayoutPart, b: LayoutPart): boolean {
  if (typeof a === "string" && typeof b === "string") return a === b;
  if (typeof a !== "string" && typeof b !== "string") return a.literal === b.literal;
  return (typeof a === "string" ? a : b) === "string";
}

describe("storage schema", () => {
  it("builds every table's keys exactly as state directories hold them", () => {
    for (const [, built, expected] of golden) assert.deepEqual(built, expected);
    const covered = new Set(golden.map(([table]) => table));
    for (const table of allTables) assert.ok(covered.has(table), `no golden key for ${table.name}`);
  });

  it("round-trips every table's keys through their parts, and finds the table and partition of each", () => {
    for (const table of allTables) {
      for (const args of sampleArgs(table)) {
        const key = keyOf(table, args);
        assert.ok(isKeyOf(table, key), `${table.name}: ${JSON.stringify(key)} fits its layout`);
        assert.deepEqual(key.slice(0, table.prefix.length), table.prefix);
        assert.deepEqual(table.parts(key), args);
        for (const [index, value] of args.entries()) {
          const part = (table as unknown as { part: (key: Key, index: number) => KeyPart }).part(key, index);
          assert.equal(part, value);
        }
        const found = tableOfKey(inStore(table, key, 5));
        assert.equal(found?.table, table, `${JSON.stringify(key)} belongs to ${table.name} alone`);
        assert.equal(found?.partition, table.scope === "partition" ? 5 : undefined);
      }
    }
  });

  it("orders every table's keys as their parts, in compareKeys and in a KV's scans", () => {
    for (const table of allTables) {
      const samples = sampleArgs(table);
      for (const a of samples) {
        for (const b of samples) {
          assert.equal(Math.sign(compareKeys(keyOf(table, a), keyOf(table, b))), compareArgs(a, b));
        }
      }
      const kv = new MemoryKV();
      for (const [index, args] of [...samples].reverse().entries()) kv.put(keyOf(table, args), index);
      const scanned = [...kv.scan(table.prefix)].map(({ key }) => table.parts(key));
      assert.deepEqual(scanned, [...samples].sort(compareArgs), table.name);
    }
  });

  it("tells a store key's partition, and none for a process-wide row", () => {
    const key = tables.backlog.key(address, 3);
    for (const partition of [0, 1, 127, 4095]) {
      const whole = inPartition(partition, key);
      assert.equal(partitionOfKey(whole), partition);
      assert.deepEqual(whole.slice(0, 2), partitionKeyPrefix(partition));
      assert.deepEqual(whole.slice(2), key);
    }
    assert.equal(partitionOfKey(storeTables.partitionCount.key()), undefined);
    assert.equal(partitionOfKey(storeTables.kafkaIngressPosition.key("p", "t", 1)), undefined);
    assert.equal(partitionOfKey(key), undefined, "a partition-relative key is not a store key");
    assert.equal(tableOfKey(["p", 1, "nonsense"]), undefined);
    assert.equal(tableOfKey(["p", 1, "dead", "7"]), undefined, "a part of the wrong kind");
  });

  it("never lets two tables share a key prefix", () => {
    for (const [index, a] of allTables.entries()) {
      for (const b of allTables.slice(index + 1)) {
        const x = storePattern(a);
        const y = storePattern(b);
        const length = Math.min(x.length, y.length);
        const overlapping = x.slice(0, length).every((part, at) => compatible(part, y[at] as LayoutPart));
        assert.ok(!overlapping, `${a.name} and ${b.name} could share keys`);
      }
    }
  });

  it("scans exactly one table's rows, or one owner's, under each range", () => {
    const kv = new MemoryKV();
    for (const table of allTables) for (const args of sampleArgs(table)) kv.put(inStore(table, keyOf(table, args)), 0);
    for (const table of allTables) {
      // A fixed part after a variable one: the range of the whole prefix holds a sibling table too.
      if (table.layout.some((part) => typeof part !== "string")) continue;
      const rows = [...kv.scan(inStore(table, table.prefix))];
      assert.equal(rows.length, sampleArgs(table).length, table.name);
    }
    const rowsOf = (range: Key) => [...kv.scan(range)].map(({ key }) => tableOfKey(key)?.table);
    for (const [range, table, count] of [
      [inPartition(5, tables.backlog.of(STRINGS[1] as AddressKey)), tables.backlog, NUMBERS.length],
      [storeTables.kafkaEgressRecord.of("a"), storeTables.kafkaEgressRecord, NUMBERS.length],
      [storeTables.kinesisIngressPosition.of("a", "ab"), storeTables.kinesisIngressPosition, STRINGS.length],
      [storeTables.playgroundEgressRecord.of("a"), storeTables.playgroundEgressRecord, NUMBERS.length],
    ] as const) {
      assert.deepEqual(rowsOf(range), Array(count).fill(table));
    }
    const before = [
      ...kv.scan(inPartition(5, tables.request.all), { before: inPartition(5, tables.request.before(10)) }),
    ];
    assert.deepEqual(
      before.map(({ key }) => key[3]),
      [0, 0, 0, 0, 0, 2, 2, 2, 2, 2],
      "requests accepted before 10",
    );
  });

  it("reads and writes rows typed by their keys", () => {
    const kv = new MemoryKV();
    putRow(kv, tables.token.key(address, "t"), [100, 7]);
    const ref = getRow(kv, tables.token.key(address, "t"));
    assert.deepEqual(ref, [100, 7]);
    putRow(kv, tables.epoch.key(), 3);
    const epoch: number | undefined = getRow(kv, tables.epoch.key());
    assert.equal(epoch, 3);
    const timers = [...scanRows(kv, tables.token.all)].map(({ value }) => value[0]);
    assert.deepEqual(timers, [100]);
  });

  it("agrees with the record codec on which rows have a binary form", () => {
    const binary = new Map<TableLayout, string>([
      [tables.state, "state"],
      [tables.inflight, "inflight"],
      [tables.backlog, "backlog"],
    ]);
    for (const table of allTables) {
      const [args] = sampleArgs(table);
      assert.equal(codecTable(inStore(table, keyOf(table, args ?? []))), binary.get(table), table.name);
    }
  });
});
