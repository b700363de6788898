// StateFun's Kafka egress (io.statefun.kafka.v1/egress). Functions send a
// KafkaProducerRecord (topic, key, value bytes); an empty key means no key.
//
// Topics: like Kafka's Java producer, which StateFun uses, the egress asks the broker to create
// a topic it does not have (a Metadata request that allows auto-creation) before the first
// record for it goes out. A broker with auto.create.topics.enable=true creates it at once. A
// broker that will not (auto-creation off, or no CREATE permission) leaves the records waiting:
// they stay in the outbox, unsettled (durable, sent again after a restart), the topic is looked
// at again with backoff (up to every TOPIC_CHECK_MS_MAX), the wait is logged once naming the
// topic, and the records go out, in order, once someone creates it. Records for other topics
// are not held up. Only records Kafka could never take become dead letters: not a
// KafkaProducerRecord, a name Kafka refuses (illegal characters, ".", "..", an internal topic
// such as __consumer_offsets, or INVALID_TOPIC_EXCEPTION from the broker), or more bytes than
// max.request.size.
//
// - none: handed to the producer and forgotten.
// - at-least-once: settled once Kafka acknowledged it (acks=all, idempotent producer); a
//   crash in between sends it again.
// - exactly-once: the record first moves from the outbox into this egress's table, in one
//   commit, numbered by the egress's own sequence. A publisher sends durable rows in Kafka
//   transactions; each transaction also commits, as a transactional consumer-group offset
//   (group `eddy-progress.<transactional id>`), the last sequence number it holds. So the
//   records and "published up to n" become visible together or not at all. At start, the
//   producer's InitProducerId aborts whatever transaction a killed Eddy left open, then the
//   progress is read back (require_stable) and rows up to it are dropped, not sent again.
//   With checkpoints and --ack-after-checkpoint, a transaction starts only once a checkpoint
//   holds its rows, so a restore never rewinds past a record Kafka already shows. A record
//   moves into the table only once its topic exists, so no transaction waits on a topic or
//   fails for lack of one: rows are published as a prefix of the sequence, and a missing topic
//   would hold up every row behind it.
import { randomUUID } from "node:crypto";
import { setTimeout as sleep } from "node:timers/promises";
import { decodeKafkaProducerRecord, KAFKA_PRODUCER_RECORD_TYPENAME } from "@eddy/protocol";
import { Admin, Consumer, findErrorBy, type MessageToProduce, Producer } from "@platformatic/kafka";
import type { KafkaEgressConfig } from "../../config/types.ts";
import type { Key, KV } from "../../core/kv.ts";
import { MESSAGE_OVERHEAD_BYTES } from "../../core/partition-core.ts";
import type { OutboxEntry } from "../../core/records.ts";
import type { EgressConnector, EgressSettlement, EgressSink } from "../../engine/ports.ts";
import type { Logger } from "../../observe/logger.ts";
import type { Connector, HostOf } from "../connector.ts";
import { decodeEgressMessage } from "../egress-message.ts";
import { type AfterFailure, runSupervised } from "../supervised-loop.ts";
import { Wakeup } from "../wakeup.ts";
import {
  describe,
  ignoredProperties,
  isUnknownTopic,
  type KafkaConnection,
  kafkaConnection,
  type Parsed,
  positiveCount,
} from "./client-options.ts";
import { javaCompatiblePartitioner } from "./partitioner.ts";
import { TRANSACTIONAL_RETRIES, transactionalRetryDelay } from "./transactional-retry.ts";

const egressTable = (egress: string): Key => ["io", "kafka-egress", egress, "out"];
/** Written out, not spread from egressTable: two keys a record, built on the hot path. */
const rowKey = (egress: string, seq: number): Key => ["io", "kafka-egress", egress, "out", seq];
const transactionalIdKey = (egress: string): Key => ["io", "kafka-egress", egress, "transactional-id"];

/** Kafka's legal topic names ("." and ".." excepted, see producerRecord). */
const TOPIC_NAME = /^[a-zA-Z0-9._-]{1,249}$/;
/**
 * Topics only the broker writes: a Produce to them fails with INVALID_TOPIC_EXCEPTION (and the
 * client, which hides internal topics from its metadata, throws on them outside any callback).
 */
const INTERNAL_TOPICS = new Set([
  "__consumer_offsets",
  "__transaction_state",
  "__share_group_state",
  "__cluster_metadata",
]);
/** Backoff between two looks at a topic records wait for: from the first, doubling to the last. */
export const TOPIC_CHECK_MS_MIN = 100;
export const TOPIC_CHECK_MS_MAX = 5_000;
/**
 * A broker that auto-creates a topic has it within a few hundred milliseconds; one still
 * missing after this long is reported (once) as one the broker does not create.
 */
export const TOPIC_REPORT_AFTER_MS = 2_000;
const MAX_REQUEST_BYTES_DEFAULT = 1024 * 1024;
const RECORDS_PER_SEND_MAX = 1000;
/** How long close() lets a step in flight finish before it closes the clients under it. */
const CLOSE_WAIT_MS = 2_000;
const COMPRESSIONS = ["none", "gzip", "snappy", "lz4", "zstd"] as const;

const EGRESS_PROPERTIES = ["compression.type", "acks", "max.request.size", "transactional.id", "enable.idempotence"];

export interface KafkaEgressSettings {
  readonly connection: KafkaConnection;
  readonly compression: (typeof COMPRESSIONS)[number];
  /** Records above this (key + value) are refused: Kafka would refuse them later, forever. */
  readonly maxRecordBytes: number;
  readonly transactionalId: string | undefined;
  readonly ignored: readonly string[];
}

export function kafkaEgressSettings(config: KafkaEgressConfig): Parsed<KafkaEgressSettings> {
  const where = `Kafka egress ${config.id}`;
  const connection = kafkaConnection(config.bootstrapServers, config.properties, `eddy-${config.id}`, where);
  if (!connection.ok) return connection;
  const compression = (config.properties.get("compression.type") ?? "none").trim();
  if (!(COMPRESSIONS as readonly string[]).includes(compression)) {
    return {
      ok: false,
      error: `${where}: compression.type ${JSON.stringify(compression)}: expected one of ${COMPRESSIONS.join(", ")}`,
    };
  }
  const acks = config.properties.get("acks")?.trim();
  if (acks !== undefined && acks !== "all" && acks !== "-1") {
    return {
      ok: false,
      error: `${where}: acks ${JSON.stringify(acks)}: Eddy's Kafka egress always waits for all in-sync replicas (acks=all)`,
    };
  }
  const maxRequest = positiveCount(config.properties.get("max.request.size")?.trim(), "max.request.size", where);
  if (!maxRequest.ok) return maxRequest;
  const transactionalId = config.properties.get("transactional.id")?.trim();
  return {
    ok: true,
    value: {
      connection: connection.value,
      compression: compression as KafkaEgressSettings["compression"],
      maxRecordBytes: maxRequest.value ?? MAX_REQUEST_BYTES_DEFAULT,
      transactionalId: transactionalId === "" ? undefined : transactionalId,
      ignored: ignoredProperties(config.properties, EGRESS_PROPERTIES),
    },
  };
}

/** A KafkaProducerRecord ready to send, or why it can never be sent. */
export function producerRecord(
  entry: OutboxEntry,
  maxRecordBytes: number,
): { ok: true; record: StoredRecord } | { ok: false; reason: string } {
  const decoded = decodeEgressMessage(
    entry.value,
    { typename: KAFKA_PRODUCER_RECORD_TYPENAME, egress: "a Kafka egress", record: "KafkaProducerRecord" },
    decodeKafkaProducerRecord,
  );
  if (!decoded.ok) return decoded;
  const { topic, key, valueBytes } = decoded.value;
  if (!TOPIC_NAME.test(topic) || topic === "." || topic === "..") {
    return {
      ok: false,
      reason: `topic ${JSON.stringify(topic)} is not a Kafka topic name (1–249 of a-z, A-Z, 0-9, '.', '_', '-'; not "." or "..")`,
    };
  }
  if (INTERNAL_TOPICS.has(topic)) {
    return { ok: false, reason: `topic ${topic} is internal to Kafka: only the broker writes it` };
  }
  const bytes = Buffer.byteLength(key) + valueBytes.byteLength;
  if (bytes > maxRecordBytes) {
    return { ok: false, reason: `the record has ${bytes} bytes, more than max.request.size ${maxRecordBytes}` };
  }
  return { ok: true, record: { topic, key, value: valueBytes } };
}

/** A record as the exactly-once table keeps it. */
export interface StoredRecord {
  readonly topic: string;
  /** Empty: no key. */
  readonly key: string;
  readonly value: Uint8Array;
}

/** A row's weight against the memory budget while the egress holds it. */
function rowCost(row: Row): number {
  return row.record.value.byteLength + row.record.key.length + row.record.topic.length + MESSAGE_OVERHEAD_BYTES;
}

function toMessage(record: StoredRecord): MessageToProduce {
  return {
    topic: record.topic,
    key: record.key === "" ? (undefined as unknown as Buffer) : Buffer.from(record.key),
    value: Buffer.from(record.value.buffer, record.value.byteOffset, record.value.byteLength),
  };
}

interface Waiting {
  readonly record: StoredRecord;
  readonly settle: EgressSettlement;
}

interface Row {
  readonly seq: number;
  readonly record: StoredRecord;
}

/** A topic records wait for: the cluster did not have it when last asked. */
interface AbsentTopic {
  /** When it was first found missing. */
  readonly sinceMs: number;
  /** When to ask again. */
  nextCheckAtMs: number;
  /** The delay before the next look after this one. */
  delayMs: number;
  /** Why it cannot be written to, as last heard. */
  why: string;
  /** The wait has been logged. */
  reported: boolean;
}

/** What a look at a topic found. */
export type TopicLook =
  | { readonly state: "exists"; readonly partitions: number }
  | { readonly state: "absent" | "invalid"; readonly why: string };

/**
 * Asks the cluster for `topic`, allowing auto-creation, as Kafka's Java producer does. It
 * exists once every partition has a leader; a broker that creates it answers "unknown" at
 * first (creation is asynchronous) and has it a moment later. Other failures (the broker
 * unreachable) are thrown.
 */
export async function lookAtTopic(producer: Producer, topic: string): Promise<TopicLook> {
  try {
    const metadata = await producer.metadata({
      topics: [topic],
      autocreateTopics: true,
      forceUpdate: true,
      retries: 0,
    });
    const described = metadata.topics.get(topic);
    if (described !== undefined && described.partitionsCount > 0 && described.partitions.every((p) => p.leader >= 0)) {
      return { state: "exists", partitions: described.partitionsCount };
    }
    return { state: "absent", why: "has no leader yet" };
  } catch (thrown) {
    const error = thrown as Error;
    if (findErrorBy(error, "apiId", "INVALID_TOPIC_EXCEPTION") !== null) {
      return { state: "invalid", why: describe(error) };
    }
    if (findErrorBy(error, "apiId", "TOPIC_AUTHORIZATION_FAILED") !== null) {
      return {
        state: "absent",
        why: "cannot be described or written: the client is not authorized (TOPIC_AUTHORIZATION_FAILED)",
      };
    }
    if (isUnknownTopic(error)) {
      return {
        state: "absent",
        why: "does not exist and the broker has not created it (it creates topics only with auto.create.topics.enable=true, and for a client allowed to CREATE)",
      };
    }
    if (findErrorBy(error, "apiId", "LEADER_NOT_AVAILABLE") !== null)
      return { state: "absent", why: "has no leader yet" };
    throw error;
  }
}

export interface KafkaEgressOptions {
  readonly config: KafkaEgressConfig;
  readonly settings: KafkaEgressSettings;
  readonly log: Logger;
}

export class KafkaEgress implements EgressConnector, Connector {
  readonly egressIds: readonly string[];
  readonly egress: EgressConnector = this;
  readonly #config: KafkaEgressConfig;
  readonly #settings: KafkaEgressSettings;
  readonly #log: Logger;
  /** Set by open(): see HostOf.checkpointed. */
  #checkpointed: (() => Promise<void>) | undefined;
  readonly #exactlyOnce: boolean;
  #engine: EgressSink | undefined;
  #producer: Producer | undefined;
  #progressGroup: Consumer | undefined;
  #coordinator: number | undefined;
  /** Records handed over and not yet settled (at-least-once, none) or not yet in the table (exactly-once). */
  #waiting: Waiting[] = [];
  /**
   * exactly-once: durable rows not yet published. They were settled (the outbox let go of
   * them), so the egress holds them against the engine's memory budget until published: a
   * slow broker makes the sources wait instead of growing this list.
   */
  #rows: Row[] = [];
  #nextSeq = 1;
  /** Topics the cluster has, with a leader for every partition (as last seen). */
  readonly #knownTopics = new Set<string>();
  /** Topics records wait for. */
  readonly #absentTopics = new Map<string, AbsentTopic>();
  #ready = false;
  #closed = false;
  readonly #wakeup = new Wakeup();
  #running: Promise<void> | undefined;
  #stop = new AbortController();
  /** Set by open(), before which nothing runs that could fail. */
  #onFatal: ((error: unknown) => void) | undefined;

  constructor(options: KafkaEgressOptions) {
    this.#config = options.config;
    this.egressIds = [options.config.id];
    this.#settings = options.settings;
    this.#log = options.log;
    this.#exactlyOnce = options.config.deliverySemantic.type === "exactly-once";
    if (options.settings.ignored.length > 0) {
      this.#log.warn(`Kafka egress ${this.#config.id} ignores properties ${options.settings.ignored.join(", ")}`);
    }
  }

  get id(): string {
    return this.#config.id;
  }

  /** Connects to the engine and starts publishing in the background (connecting is retried; a bug is fatal). */
  async open(host: HostOf<EgressSink>): Promise<{ readonly urls: readonly string[] }> {
    this.#engine = host.engine;
    this.#onFatal = host.onFatal;
    this.#checkpointed = host.checkpointed;
    this.#running = this.#run(host.store);
    return { urls: [] };
  }

  deliver(entry: OutboxEntry, _transaction: KV, settle: EgressSettlement): void {
    const checked = producerRecord(entry, this.#settings.maxRecordBytes);
    if (!checked.ok) {
      settle.rejected(checked.reason);
      return;
    }
    if (this.#config.deliverySemantic.type === "none") settle.delivered();
    this.#waiting.push({ record: checked.record, settle });
    this.#wakeup.wake();
  }

  async close(): Promise<void> {
    this.#closed = true;
    this.#stop.abort();
    this.#wakeup.wake();
    // A step may be deep in the client's retries against a broker that refuses it (minutes).
    // Leaving it is safe: the next start fences and aborts an unfinished transaction, and
    // records not yet acknowledged are still in the outbox, so they go out again.
    await Promise.race([this.#running, sleep(CLOSE_WAIT_MS, undefined, { ref: false })]);
    await Promise.all([this.#producer?.close(true), this.#progressGroup?.close(true)]).catch(() => undefined);
  }

  /** Publishes until closed; trouble with the cluster is retried (supervised-loop.ts), a bug stops the runtime. */
  #run(store: KV): Promise<void> {
    return runSupervised(
      `Kafka egress ${this.#config.id}`,
      async () => {
        if (!this.#ready) await this.#connect(store);
        if (this.#exactlyOnce) await this.#exactlyOnceStep();
        else await this.#sendStep();
        return undefined;
      },
      {
        log: this.#log,
        signal: this.#stop.signal,
        onFatal: (error) => this.#onFatal?.(error),
        describe,
        recovered: "publishes again",
        afterFailure: async (): Promise<AfterFailure> => {
          // A topic may have gone (deleted) since it was looked at: look at each again before sending.
          this.#knownTopics.clear();
          if (this.#exactlyOnce) {
            // The transaction's fate is for InitProducerId to settle: start over from the progress.
            await this.#producer?.close(true).catch(() => undefined);
            this.#producer = undefined;
            this.#ready = false;
          }
          return "retry";
        },
      },
    );
  }

  /**
   * Waits until there is something to do (records or rows whose topic exists, a topic to look
   * at, the egress closing), a new record arrives, or the next look at a missing topic is due.
   */
  async #idle(): Promise<void> {
    if (this.#closed) return;
    const waitMs = this.#nextWorkInMs();
    if (waitMs === 0) return;
    await this.#wakeup.wait(waitMs);
  }

  /** 0 when there is work now, else how long until a missing topic is due a look (undefined: none). */
  #nextWorkInMs(): number | undefined {
    const firstRow = this.#rows[0];
    if (firstRow !== undefined && this.#knownTopics.has(firstRow.record.topic)) return 0;
    let soonest: number | undefined;
    for (const topic of this.#pendingTopics()) {
      if (this.#knownTopics.has(topic)) return 0;
      const absent = this.#absentTopics.get(topic);
      if (absent === undefined) return 0;
      const inMs = Math.max(0, absent.nextCheckAtMs - Date.now());
      if (inMs === 0) return 0;
      soonest = Math.min(soonest ?? inMs, inMs);
    }
    return soonest;
  }

  async #connect(store: KV): Promise<void> {
    const engine = this.#engine as EgressSink;
    const connection = { ...this.#settings.connection, retries: 3 };
    if (!this.#exactlyOnce) {
      this.#producer = new Producer({
        ...connection,
        idempotent: this.#config.deliverySemantic.type === "at-least-once",
        acks: this.#config.deliverySemantic.type === "none" ? 1 : -1,
        compression: this.#settings.compression,
        autocreateTopics: false,
        partitioner: javaCompatiblePartitioner(),
      });
      this.#ready = true;
      return;
    }
    const semantic = this.#config.deliverySemantic as { transactionTimeoutMs: number };
    let transactionalId = this.#settings.transactionalId ?? (store.get(transactionalIdKey(this.#config.id)) as string);
    if (transactionalId === undefined) {
      // Unique per state directory, and restored with it from a checkpoint: two Eddys never fence each other.
      transactionalId = `eddy-${this.#config.id}-${randomUUID()}`;
      const chosen = transactionalId;
      await engine.transact((transaction) => transaction.put(transactionalIdKey(this.#config.id), chosen));
    }
    const producer = new Producer({
      ...connection,
      retries: TRANSACTIONAL_RETRIES,
      retryDelay: transactionalRetryDelay,
      transactionalId,
      idempotent: true,
      acks: -1,
      compression: this.#settings.compression,
      autocreateTopics: false,
      partitioner: javaCompatiblePartitioner(),
      // InitProducerId's transaction timeout is the client's `timeout`.
      timeout: semantic.transactionTimeoutMs,
      // A new producer for the transactional id (the client would otherwise claim id 0, epoch 0, and be fenced).
      producerId: -1n,
      producerEpoch: -1,
    });
    this.#producer = producer;
    // InitProducerId, sent by the first beginTransaction, fences a killed Eddy's producer and
    // aborts (or finishes) the transaction it left open; this one is dropped unused.
    await (await producer.beginTransaction()).cancel();
    const groupId = `eddy-progress.${transactionalId}`;
    this.#progressGroup ??= new Consumer({ ...connection, groupId });
    this.#coordinator = await this.#progressGroup.findGroupCoordinator();
    const published = await this.#readProgress(groupId, connection);
    const rows: Row[] = [];
    const stale: number[] = [];
    for (const { key, value } of store.scan(egressTable(this.#config.id))) {
      const seq = key.at(-1) as number;
      if (seq <= published) stale.push(seq);
      else rows.push({ seq, record: value as StoredRecord });
    }
    // Rows written since this store was last read are already in #rows (never before #connect finished).
    const last = Math.max(published, rows.at(-1)?.seq ?? 0, stale.at(-1) ?? 0);
    this.#nextSeq = Math.max(this.#nextSeq, last + 1);
    if (stale.length > 0) {
      await engine.transact((transaction) => {
        for (const seq of stale) transaction.delete(rowKey(this.#config.id, seq));
      });
    }
    this.#setRows(rows);
    this.#ready = true;
  }

  #setRows(rows: Row[]): void {
    this.#dropRows(this.#rows.length);
    this.#addRows(rows);
  }

  #addRows(rows: readonly Row[]): void {
    let bytes = 0;
    for (const row of rows) {
      this.#rows.push(row);
      bytes += rowCost(row);
    }
    this.#engine?.holdWork(bytes);
  }

  /** The first `count` rows are published: they leave the list and the budget. */
  #dropRows(count: number): void {
    let bytes = 0;
    for (const row of this.#rows.splice(0, count)) bytes += rowCost(row);
    this.#engine?.releaseWork(bytes);
  }

  /** The last sequence number a committed transaction published, 0 when none. */
  async #readProgress(groupId: string, connection: KafkaConnection & { retries: number }): Promise<number> {
    const admin = new Admin(connection);
    try {
      const [group] = await admin.listConsumerGroupOffsets({ groups: [groupId], requireStable: true });
      let committed = 0n;
      for (const topic of group?.topics ?? []) {
        for (const partition of topic.partitions) {
          if (partition.committedOffset > committed) committed = partition.committedOffset;
        }
      }
      // addOffset commits "the next offset": the sequence number plus one.
      return committed > 0n ? Number(committed - 1n) : 0;
    } finally {
      await admin.close();
    }
  }

  /**
   * Looks at the topics that records (and, exactly-once, the first unpublished row) are for and
   * that are not known to exist: each missing one is asked for with auto-creation, on its
   * backoff. Records for a topic Kafka refuses by name become dead letters; records for a
   * topic that is missing wait. A cluster that cannot be asked is an error (retried by #run).
   */
  async #checkTopics(): Promise<void> {
    for (const topic of this.#pendingTopics()) {
      if (this.#knownTopics.has(topic)) continue;
      const absent = this.#absentTopics.get(topic);
      if (absent !== undefined && absent.nextCheckAtMs > Date.now()) continue;
      const look = await this.#lookAt(topic);
      if (this.#closed) return;
      if (look.state === "exists") {
        this.#knownTopics.add(topic);
        this.#absentTopics.delete(topic);
        if (absent?.reported) {
          this.#log.info(
            `Kafka egress ${this.#config.id}: topic ${topic} exists now; sending the ${this.#waitingFor(topic)} records that waited for it`,
          );
        }
      } else if (look.state === "invalid") {
        this.#absentTopics.delete(topic);
        const refused = this.#waiting.filter((waiting) => waiting.record.topic === topic);
        this.#waiting = this.#waiting.filter((waiting) => waiting.record.topic !== topic);
        // Rows are only written for topics that existed, so none is for this one.
        for (const waiting of refused) waiting.settle.rejected(`Kafka refuses topic ${topic}: ${look.why}`);
      } else this.#stillAbsent(topic, absent, look.why);
    }
  }

  /**
   * The topics to make sure of: those of the records handed over, and (exactly-once) of the
   * first row whose topic is not known, which holds up the rows behind it.
   */
  #pendingTopics(): Set<string> {
    const topics = new Set(this.#waiting.map((waiting) => waiting.record.topic));
    const row = this.#rows.find((candidate) => !this.#knownTopics.has(candidate.record.topic));
    if (row !== undefined) topics.add(row.record.topic);
    return topics;
  }

  /** Notes another look that did not find `topic`: the next look is due later, and a long wait is reported once. */
  #stillAbsent(topic: string, absent: AbsentTopic | undefined, why: string): void {
    const now = Date.now();
    const state: AbsentTopic = absent ?? {
      sinceMs: now,
      nextCheckAtMs: now,
      delayMs: TOPIC_CHECK_MS_MIN,
      why,
      reported: false,
    };
    state.why = why;
    state.nextCheckAtMs = now + state.delayMs;
    state.delayMs = Math.min(state.delayMs * 2, TOPIC_CHECK_MS_MAX);
    this.#absentTopics.set(topic, state);
    if (!state.reported && now - state.sinceMs >= TOPIC_REPORT_AFTER_MS) {
      state.reported = true;
      this.#log.warn(
        `Kafka egress ${this.#config.id}: topic ${topic} ${why}; ${this.#waitingFor(topic)} records wait for it (none is dropped), looking again every ${TOPIC_CHECK_MS_MAX / 1000} s`,
      );
    }
  }

  /** How many records wait for `topic` (handed over, and exactly-once rows). */
  #waitingFor(topic: string): number {
    const waiting = this.#waiting.filter((entry) => entry.record.topic === topic).length;
    return waiting + this.#rows.filter((row) => row.record.topic === topic).length;
  }

  #lookAt(topic: string): Promise<TopicLook> {
    return lookAtTopic(this.#producer as Producer, topic);
  }

  /** at-least-once and none: one send in flight, with everything waiting whose topic exists. */
  async #sendStep(): Promise<void> {
    await this.#idle();
    if (this.#closed) return;
    await this.#checkTopics();
    if (this.#closed) return;
    // In order: a topic's records all wait or all go, so each topic keeps its order.
    const sending = this.#waiting
      .filter((waiting) => this.#knownTopics.has(waiting.record.topic))
      .slice(0, RECORDS_PER_SEND_MAX);
    if (sending.length === 0) return;
    await (this.#producer as Producer).send({ messages: sending.map((waiting) => toMessage(waiting.record)) });
    // Closed meanwhile (close() stops waiting for a slow step): the engine may be gone, and the
    // outbox still holds these, so the next start sends them again.
    if (this.#closed) return;
    const sent = new Set(sending);
    this.#waiting = this.#waiting.filter((waiting) => !sent.has(waiting));
    if (this.#config.deliverySemantic.type === "at-least-once") {
      for (const waiting of sending) waiting.settle.delivered();
    }
  }

  /** exactly-once: records waiting go into the table; durable rows go out in one transaction. */
  async #exactlyOnceStep(): Promise<void> {
    await this.#idle();
    if (this.#closed) return;
    const engine = this.#engine as EgressSink;
    await this.#checkTopics();
    if (this.#closed) return;
    // Records whose topic is missing stay unsettled in the outbox until it exists.
    const moving = this.#waiting.filter((waiting) => this.#knownTopics.has(waiting.record.topic));
    if (moving.length > 0) {
      const moved = new Set(moving);
      this.#waiting = this.#waiting.filter((waiting) => !moved.has(waiting));
      const rows = await engine.transact((transaction) => {
        const written: Row[] = [];
        for (const { record, settle } of moving) {
          const seq = this.#nextSeq++;
          // Insert: seqs only grow past every row the store holds (#connect), and a row
          // published before the store's next apply then never reaches LMDB.
          transaction.insert(rowKey(this.#config.id, seq), record);
          written.push({ seq, record });
          // Settled in the same commit: the outbox entry and the row swap atomically.
          settle.delivered();
        }
        return written;
      });
      this.#addRows(rows);
    }
    // Rows go out in sequence (the progress is "published up to n"): the rows up to the first
    // whose topic is missing (one written before a restart, its topic since deleted) go now.
    const blocked = this.#rows.findIndex((row) => !this.#knownTopics.has(row.record.topic));
    const publishing = this.#rows.slice(0, Math.min(blocked < 0 ? this.#rows.length : blocked, RECORDS_PER_SEND_MAX));
    if (publishing.length === 0) return;
    if (this.#checkpointed !== undefined) await this.#checkpointed();
    const lastSeq = (publishing.at(-1) as Row).seq;
    const producer = this.#producer as Producer;
    const transaction = await producer.beginTransaction();
    try {
      await transaction.send({ messages: publishing.map((row) => toMessage(row.record)) });
      await transaction.addConsumer(this.#progressGroup as Consumer);
      await transaction.addOffset({
        topic: publishing[0]?.record.topic as string,
        partition: 0,
        offset: BigInt(lastSeq),
        metadata: {
          consumer: {
            groupId: (this.#progressGroup as Consumer).groupId,
            generationId: -1,
            memberId: "",
            coordinatorId: this.#coordinator as number,
          },
        },
      } as unknown as Parameters<typeof transaction.addOffset>[0]);
      await transaction.commit();
    } catch (error) {
      await transaction.abort().catch(() => undefined);
      throw error;
    }
    this.#dropRows(publishing.length);
    // Closed meanwhile: the next start reads the progress and drops these rows itself.
    if (this.#closed) return;
    // Not awaited: the progress in Kafka already says these are out. Should that commit be
    // aborted, the rows stay, and the next start drops them by the progress.
    engine
      .transact((table) => {
        for (const row of publishing) table.delete(rowKey(this.#config.id, row.seq));
      })
      .catch(() => undefined);
  }
}
