// The storage schema: every table Eddy keeps in its store, with its key layout and its value
// type, and the one place that knows them. Moving a partition between workers means
// exporting exactly its rows and reading them back with their types; that is only safe if
// no other file builds a key by hand or casts what a read returns.
//
// A partition's tables live under the partition prefix ["p", partition]; a partition core
// sees them through an overlay that adds the prefix (keys of scope "partition" are relative
// to it). Process-wide tables (the partition count, the store's own bookkeeping, the
// connectors' positions) are whole keys of the store (scope "store"). Keys are tuples
// ordered part by part as compareKeys orders them (kv.ts); the bytes of every key and value
// are as they were before this module existed, so existing state directories and
// checkpoints still open.
//
// Keys carry their value type (a phantom brand, no runtime cost): `getRow(kv,
// tables.inflight.key(address))` is an `InflightBatch | undefined`, with no cast at the
// call site. Key builders are written out per table (no rest arguments, no spread), so a
// typed key costs the one array today's hand-written tuples cost; whole-table ranges and
// fixed keys are built once.
import type { AddressKey, FunctionTypename } from "./address.ts";
import type { Key, KeyPart, KV } from "./kv.ts";
import type { PendingWrite } from "./overlay-kv.ts";
import type {
  DeadLetter,
  DelayedMessage,
  IdempotencyRecord,
  InflightBatch,
  OutboxEntry,
  PausedType,
  RegisteredSpec,
  RequestRecord,
  StoredInvocation,
  StoredState,
} from "./records.ts";

declare const rowBrand: unique symbol;
declare const rangeBrand: unique symbol;

/**
 * Where a key is read: "partition" keys are relative to one partition's view (an overlay
 * with the partition prefix); "store" keys are whole keys of the store (see inPartition).
 */
export type Scope = "partition" | "store";

/** The key of one row whose value is a V; only a table makes one. */
export type RowKey<V, S extends Scope = Scope> = Key & {
  readonly [rowBrand]: { readonly value: V; readonly scope: S };
};

/** The leading parts of some rows of one table (all of them, or those under a first part): what scans take. */
export type RowRange<V, S extends Scope = Scope> = Key & {
  readonly [rangeBrand]: { readonly value: V; readonly scope: S };
};

export interface Row<V, S extends Scope = Scope> {
  readonly key: RowKey<V, S>;
  readonly value: V;
}

/** The kind of a variable key part. */
export type PartKind = "string" | "number";

/**
 * A key part after a table's fixed leading parts: a variable of its kind, or a fixed string
 * between variables (the Kafka egress's "out" after its egress id).
 */
export type LayoutPart = PartKind | { readonly literal: string };

/** What every table has, whatever its parts and value: for tools that walk the schema. */
export interface TableLayout {
  /** For people: the fixed leading parts joined with "/". */
  readonly name: string;
  readonly scope: Scope;
  /** The fixed leading parts every key of the table starts with. */
  readonly prefix: Key;
  /** The parts after the prefix. */
  readonly layout: readonly LayoutPart[];
  readonly key: (...parts: never) => Key;
  readonly parts: (key: Key) => readonly KeyPart[];
}

export interface Table<A extends readonly KeyPart[], V, S extends Scope> extends TableLayout {
  readonly scope: S;
  /** A row's key from its variable parts, in order. */
  readonly key: (...parts: A) => RowKey<V, S>;
  /**
   * Every row of the table, in key order. For a table with a fixed part after a variable
   * one (the Kafka egress's two tables), this range holds its sibling's rows too: scan a
   * narrower range (its `of`).
   */
  readonly all: RowRange<V, S>;
  /** The variable parts of one of its keys (allocates; for tools and tests, not hot paths). */
  readonly parts: (key: Key) => A;
  /** Variable part `index` of one of its keys, without allocating. */
  readonly part: <I extends PartIndex<A>>(key: RowKey<V, S>, index: I) => A[I];
}

/** The indexes of a tuple (0 | 1 for a pair). */
export type PartIndex<A extends readonly unknown[]> = Exclude<Partial<A>["length"], A["length"]> & number;

/** Builds a table from its written-out key builder (which the schema test checks against the layout). */
function table<A extends readonly KeyPart[], V, S extends Scope = "partition">(
  scope: S,
  prefix: Key,
  layout: readonly LayoutPart[],
  key: (...parts: A) => Key,
): Table<A, V, S> {
  /** Where each variable part sits in a key. */
  const positions: number[] = [];
  for (let index = 0; index < layout.length; index++) {
    if (typeof layout[index] === "string") positions.push(prefix.length + index);
  }
  return {
    name: prefix.join("/"),
    scope,
    prefix,
    layout,
    key: key as (...parts: A) => RowKey<V, S>,
    all: prefix as RowRange<V, S>,
    parts: (whole) => positions.map((position) => whole[position]) as unknown as A,
    part: (whole, index) => whole[positions[index] as number] as A[typeof index],
  };
}

/** A range (leading parts) of rows of V. */
function range<V, S extends Scope = "partition">(key: Key): RowRange<V, S> {
  return key as RowRange<V, S>;
}

/** The pending delayed message a cancellation token names: its timer key's parts. */
export type TimerRef = readonly [fireAtMs: number, seq: number];

/** Fixed keys, built once. */
const EPOCH: Key = ["meta", "epoch"];
const INBOX_POSITION: Key = ["meta", "inbox-position"];
const CHANGELOG_OFFSET: Key = ["meta", "changelog-offset"];

/**
 * A partition's tables (keys relative to the partition prefix). Each row's key names its
 * table in its first part.
 */
export const tables = {
  /** The partition's current sequence epoch (see PartitionCore): its start's high bits. */
  epoch: table<[], number>("partition", EPOCH, [], () => EPOCH),
  /** Where the partition's inbox is read from next (scale-out; written by PartitionSet). */
  inboxPosition: table<[], number>("partition", INBOX_POSITION, [], () => INBOX_POSITION),
  /**
   * In a cluster worker's local store only: the offset of the partition's last changelog
   * record it holds (the changelog is the truth; this store a cache caught up from it).
   */
  changelogOffset: table<[], number>("partition", CHANGELOG_OFFSET, [], () => CHANGELOG_OFFSET),
  /** The state specs a function type registered through the handshake. */
  specs: table<[typename: FunctionTypename], readonly RegisteredSpec[]>(
    "partition",
    ["specs"],
    ["string"],
    (typename) => ["specs", typename],
  ),
  /** State values: per function type, instance id and state name. */
  state: {
    ...table<[typename: FunctionTypename, id: string, name: string], StoredState>(
      "partition",
      ["state"],
      ["string", "string", "string"],
      (typename, id, name) => ["state", typename, id, name],
    ),
    /** One address's states. */
    of: (typename: FunctionTypename, id: string) => range<StoredState>(["state", typename, id]),
    /** The states of every address of one function type. */
    ofType: (typename: FunctionTypename) => range<StoredState>(["state", typename]),
  },
  /** The one batch in flight per address; present exactly while the address is active. */
  inflight: table<[address: AddressKey], InflightBatch>("partition", ["inflight"], ["string"], (address) => [
    "inflight",
    address,
  ]),
  /** Messages waiting for their address's batch to finish, in arrival order (by sequence number). */
  backlog: {
    ...table<[address: AddressKey, seq: number], StoredInvocation>(
      "partition",
      ["backlog"],
      ["string", "number"],
      (address, seq) => ["backlog", address, seq],
    ),
    /** One address's backlog. */
    of: (address: AddressKey) => range<StoredInvocation>(["backlog", address]),
  },
  /** Delayed messages by fire time. */
  timer: table<[fireAtMs: number, seq: number], DelayedMessage>(
    "partition",
    ["timer"],
    ["number", "number"],
    (fireAtMs, seq) => ["timer", fireAtMs, seq],
  ),
  /** Cancellation tokens of pending delayed messages, per sender: the timer row they name. */
  token: table<[sender: AddressKey, token: string], TimerRef>(
    "partition",
    ["token"],
    ["string", "string"],
    (sender, token) => ["token", sender, token],
  ),
  /** Egress messages committed and not yet settled by their connector. */
  outbox: table<[seq: number], OutboxEntry>("partition", ["outbox"], ["number"], (seq) => ["outbox", seq]),
  /** Ingress idempotency keys per target address, for the retention. */
  idem: table<[target: AddressKey, key: string], IdempotencyRecord>(
    "partition",
    ["idem"],
    ["string", "string"],
    (target, key) => ["idem", target, key],
  ),
  /** The time index of `idem`, to expire it by a range scan. */
  idemAt: {
    ...table<[atMs: number, target: AddressKey, key: string], true>(
      "partition",
      ["idem-at"],
      ["number", "string", "string"],
      (atMs, target, key) => ["idem-at", atMs, target, key],
    ),
    /** A bound for scans: the keys accepted before `atMs` sort before it. */
    before: (atMs: number) => range<true>(["idem-at", atMs]),
  },
  /** Requests waiting for (or holding) their reply, in order of acceptance (see makeRequestId). */
  request: {
    ...table<[atMs: number, requestId: string], RequestRecord>(
      "partition",
      ["request"],
      ["number", "string"],
      (atMs, requestId) => ["request", atMs, requestId],
    ),
    /** A bound for scans: the requests accepted before `atMs` sort before it. */
    before: (atMs: number) => range<RequestRecord>(["request", atMs]),
  },
  /** Dead letters, by sequence number. */
  dead: table<[seq: number], DeadLetter>("partition", ["dead"], ["number"], (seq) => ["dead", seq]),
  /**
   * Messages from partitions another thread of the process ran, each an inbox record
   * (cluster/inbox-record.ts) at the offset the store host gave it (threads/store-host.ts);
   * kept until the partition's inbox position passes it.
   */
  threadInbox: table<[offset: number], Uint8Array>("partition", ["thread-inbox"], ["number"], (offset) => [
    "thread-inbox",
    offset,
  ]),
  /**
   * In a cluster: a Kafka ingress's next offset of a source partition bound to this partition
   * (io/kafka/source-binding.ts), committed with the messages read before it, so it moves with
   * the partition. The embedded mode keeps positions in the store table kafkaIngressPosition.
   */
  kafkaSourcePosition: table<[ingress: string, topic: string, partition: number], number>(
    "partition",
    ["kafka-source"],
    ["string", "string", "number"],
    (ingress, topic, partition) => ["kafka-source", ingress, topic, partition],
  ),
  /**
   * In a cluster: a Kinesis ingress's position in a shard of a stream bound to this partition
   * (io/source-binding.ts), committed with the messages read before it, so it moves with the
   * partition. The embedded mode keeps positions in the store table kinesisIngressPosition.
   */
  kinesisSourcePosition: {
    ...table<[ingress: string, stream: string, shardId: string], KinesisShardPosition>(
      "partition",
      ["kinesis-source"],
      ["string", "string", "string"],
      (ingress, stream, shardId) => ["kinesis-source", ingress, stream, shardId],
    ),
    /** The shards of one stream. */
    of: (ingress: string, stream: string) => range<KinesisShardPosition>(["kinesis-source", ingress, stream]),
  },
  /**
   * In a cluster: the playground egress's records that this partition's functions sent (the
   * payload text), by topic and the seq of the outbox entry that sent each (unique and rising
   * in a partition), committed with that entry's settlement, so they move with the partition;
   * popped by a GET on any worker (io/playground/egress.ts). The embedded mode keeps them in
   * the store table playgroundEgressRecord.
   */
  playgroundEgress: {
    ...table<[topic: string, seq: number], string>(
      "partition",
      ["playground-egress"],
      ["string", "number"],
      (topic, seq) => ["playground-egress", topic, seq],
    ),
    /** One topic's records, oldest first. */
    of: (topic: string) => range<string>(["playground-egress", topic]),
  },
  /** Dead letters queued for replay (by `eddy dead-letters replay`), delivered at the next start. */
  replay: table<[seq: number], DeadLetter>("partition", ["replay"], ["number"], (seq) => ["replay", seq]),
  /**
   * Function types paused by an operator (the admin API): their batches wait, durably, until
   * resumed. Kept in every partition, so the pause moves with a partition and survives restarts.
   */
  paused: table<[typename: FunctionTypename], PausedType>("partition", ["paused"], ["string"], (typename) => [
    "paused",
    typename,
  ]),
} as const;

/** The first key part of every partition row. */
export const PARTITION_TAG = "p";

/** Where partition `partition`'s rows live in the store. */
export function partitionKeyPrefix(partition: number): Key {
  return [PARTITION_TAG, partition];
}

/** The partition a store key belongs to, or undefined for a process-wide row. */
export function partitionOfKey(key: Key): number | undefined {
  const partition = key[1];
  return key[0] === PARTITION_TAG && typeof partition === "number" ? partition : undefined;
}

/** A partition's key (or range) as a whole key of the store. */
export function inPartition<V>(partition: number, key: RowKey<V, "partition">): RowKey<V, "store">;
export function inPartition<V>(partition: number, key: RowRange<V, "partition">): RowRange<V, "store">;
export function inPartition(partition: number, key: Key): Key {
  return [PARTITION_TAG, partition, ...key];
}

const PARTITION_COUNT: Key = ["engine", "partitions"];
const APPLIED_LOG_SEQ: Key = ["store", "applied-log-seq"];
const STORE_FORMAT: Key = ["store", "format"];
const CLUSTER: Key = ["engine", "cluster"];

/** A record as the Kafka egress's exactly-once table keeps it (io/kafka/egress.ts). */
export interface KafkaEgressRecord {
  readonly topic: string;
  /** Empty: no key. */
  readonly key: string;
  readonly value: Uint8Array;
}

/** Where reading a Kinesis shard goes on from, as stored (io/kinesis/ingress.ts). */
export type KinesisShardPosition =
  | { readonly at: "trim-horizon" }
  /** Records that arrived at or after `ms` (the `latest` and `date` startup positions). */
  | { readonly at: "timestamp"; readonly ms: number }
  /** After the record `seq`; with `sub`, only the user records of that aggregated record after index `sub`. */
  | { readonly at: "after"; readonly seq: string; readonly sub?: number }
  /** The shard is closed and was read to its end. */
  | { readonly at: "end" };

/** What a cluster worker's state directory records of its cluster (storeTables.cluster). */
export interface ClusterMembershipRecord {
  readonly name: string;
  /** The bootstrap servers it was started with, `host:port,…`: for a message's ready-made command. */
  readonly brokers: string;
}

/**
 * Process-wide tables: whole keys of the store. The connectors' tables (first part "io")
 * commit with the partitions' writes through PartitionSet's connector overlay; they belong
 * to no partition yet.
 */
export const storeTables = {
  /** How many partitions the state directory was made with (fixed for its life). */
  partitionCount: table<[], number, "store">("store", PARTITION_COUNT, [], () => PARTITION_COUNT),
  /** The seq of the last write-ahead-log frame LMDB holds (store/logged-store.ts). */
  appliedLogSeq: table<[], number, "store">("store", APPLIED_LOG_SEQ, [], () => APPLIED_LOG_SEQ),
  /** The version of this layout the state directory is written in (store/logged-store.ts). */
  storeFormat: table<[], number, "store">("store", STORE_FORMAT, [], () => STORE_FORMAT),
  /**
   * Set in a cluster worker's state directory (assembly/start-cluster-runtime.ts): the cluster it
   * is a worker of. Such a directory is only a cache of the partitions the worker runs, so the
   * tools that read or write a state directory directly refuse it (dead-letters.ts).
   */
  cluster: table<[], ClusterMembershipRecord, "store">("store", CLUSTER, [], () => CLUSTER),
  /** A Kafka ingress's next offset per topic partition. */
  kafkaIngressPosition: table<[ingress: string, topic: string, partition: number], number, "store">(
    "store",
    ["io", "kafka-ingress"],
    ["string", "string", "number"],
    (ingress, topic, partition) => ["io", "kafka-ingress", ingress, topic, partition],
  ),
  /** When (ms since the epoch) a Kafka ingress first looked at a topic. */
  kafkaIngressTopicLook: table<[ingress: string, topic: string], number, "store">(
    "store",
    ["io", "kafka-ingress-look"],
    ["string", "string"],
    (ingress, topic) => ["io", "kafka-ingress-look", ingress, topic],
  ),
  /** A Kinesis ingress's position per shard. */
  kinesisIngressPosition: {
    ...table<[ingress: string, stream: string, shardId: string], KinesisShardPosition, "store">(
      "store",
      ["io", "kinesis-ingress"],
      ["string", "string", "string"],
      (ingress, stream, shardId) => ["io", "kinesis-ingress", ingress, stream, shardId],
    ),
    /** The shards of one stream. */
    of: (ingress: string, stream: string) =>
      range<KinesisShardPosition, "store">(["io", "kinesis-ingress", ingress, stream]),
  },
  /** The Kafka egress's records waiting for their transaction, by its own sequence. */
  kafkaEgressRecord: {
    ...table<[egress: string, seq: number], KafkaEgressRecord, "store">(
      "store",
      ["io", "kafka-egress"],
      ["string", { literal: "out" }, "number"],
      (egress, seq) => ["io", "kafka-egress", egress, "out", seq],
    ),
    /** One egress's records. */
    of: (egress: string) => range<KafkaEgressRecord, "store">(["io", "kafka-egress", egress, "out"]),
  },
  /** The transactional id a Kafka egress chose once, kept for its life. */
  kafkaEgressTransactionalId: table<[egress: string], string, "store">(
    "store",
    ["io", "kafka-egress"],
    ["string", { literal: "transactional-id" }],
    (egress) => ["io", "kafka-egress", egress, "transactional-id"],
  ),
  /** The playground egress's records per topic (the payload text), oldest first. */
  playgroundEgressRecord: {
    ...table<[topic: string, seq: number], string, "store">(
      "store",
      ["io", "playground-egress"],
      ["string", "number"],
      (topic, seq) => ["io", "playground-egress", topic, seq],
    ),
    /** One topic's records. */
    of: (topic: string) => range<string, "store">(["io", "playground-egress", topic]),
  },
} as const;

/** Every table, partition-scoped first: for tools that walk the whole schema (export, tests). */
export const allTables: readonly TableLayout[] = [...Object.values(tables), ...Object.values(storeTables)];

/** Whether `key` is a key of `of` (its prefix, then parts of its layout's kinds, nothing more). */
export function isKeyOf(of: TableLayout, key: Key): boolean {
  const { prefix, layout } = of;
  if (key.length !== prefix.length + layout.length) return false;
  for (let index = 0; index < prefix.length; index++) if (key[index] !== prefix[index]) return false;
  for (let index = 0; index < layout.length; index++) {
    const part = key[prefix.length + index];
    const expected = layout[index] as LayoutPart;
    if (typeof expected === "string" ? typeof part !== expected : part !== expected.literal) return false;
  }
  return true;
}

/**
 * The table a store key belongs to, and its partition for a partition row; undefined for a
 * key no table has (a damaged or newer state directory).
 */
export function tableOfKey(key: Key): { readonly table: TableLayout; readonly partition?: number } | undefined {
  const partition = partitionOfKey(key);
  if (partition !== undefined) {
    const relative = key.slice(2);
    for (const candidate of Object.values(tables) as TableLayout[]) {
      if (isKeyOf(candidate, relative)) return { table: candidate, partition };
    }
    return undefined;
  }
  for (const candidate of Object.values(storeTables) as TableLayout[]) {
    if (isKeyOf(candidate, key)) return { table: candidate };
  }
  return undefined;
}

/** A write of a whole store key for a commit, typed by its key: a delete when `value` is undefined. */
export function rowWrite<V>(key: RowKey<V, "store">, value: V | undefined): PendingWrite {
  return { key, value };
}

// Typed access. Each is the KV call itself with its result typed by the key: the casts of
// the whole runtime's store reads live here, once.

export function getRow<V>(kv: KV, key: RowKey<V>): V | undefined {
  return kv.get(key) as V | undefined;
}

export function putRow<V>(kv: KV, key: RowKey<V>, value: V): void {
  kv.put(key, value);
}

/** A put of a row the caller knows is absent (see KV.insert). */
export function insertRow<V>(kv: KV, key: RowKey<V>, value: V): void {
  kv.insert(key, value);
}

export function deleteRow(kv: KV, key: RowKey<unknown>): void {
  kv.delete(key);
}

/**
 * Rows under `from`, in key order; `before` bounds the scan (exclusive); `start` (a key or
 * range under `from`, whole or cut short) is where it begins, for reading page by page.
 */
export function scanRows<V, S extends Scope>(
  kv: KV,
  from: RowRange<V, S>,
  options?: {
    readonly start?: Key;
    readonly before?: RowKey<V, S> | RowRange<V, S>;
    readonly limit?: number;
  },
): Iterable<Row<V, S>> {
  if (options?.start !== undefined) {
    const { start, ...rest } = options;
    return kv.scan(from, { ...rest, from: start }) as Iterable<Row<V, S>>;
  }
  return kv.scan(from, options) as Iterable<Row<V, S>>;
}
