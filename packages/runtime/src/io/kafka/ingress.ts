// StateFun's Kafka ingress (io.statefun.kafka.v1/ingress). Eddy reads every partition of
// the ingress's topics itself, from their leaders, without joining the consumer group: one
// Eddy owns its partitions, so there is no rebalance to wait for, and a restart after
// kill -9 resumes at once. Each partition's next offset is written into the same commit as
// the messages its records became (Engine.acceptFromSource), so after a crash, or a restore
// from a checkpoint, reading resumes right after what the store holds: no record is lost
// or delivered twice. A record's key (UTF-8) is the function id; its value becomes
// TypedValue{valueType, raw bytes}, one message per target, and its headers go with the
// message (in-process functions read them as Message.headers; the StateFun protocol has no
// place for them, so remote functions do not see them). A record without a key or a
// value, or with a key that is not UTF-8, becomes a dead letter naming its topic, partition
// and offset, and reading goes on. Offsets that are durable are committed to the consumer
// group (when one is configured) every few seconds, for lag monitoring and for the
// group-offsets startup position, as StateFun does on checkpoints. With checkpoints and
// --ack-after-checkpoint, only offsets a checkpoint holds: a lost disk rewinds to the last
// checkpoint, and the group must never be told of records it would then not have.
//
// Where a partition starts. A partition with a stored position resumes there, whatever the
// startup position. The startup position is for the partitions that exist when the ingress
// first looks at their topic: that first look is stored (topicLookKey), in the commit that
// stores the positions it chose, or alone when the topic did not exist yet. A partition first
// seen after that (the topic was created later, or partitions were added to it), now or after
// any number of restarts, holds only records written after the ingress started reading the
// topic, so it is read from its earliest offset, whatever the startup position:
//   - earliest: the same as at the first look.
//   - latest: everything in it is newer than the start (reading from its end when first seen
//     would skip whatever was written before the ingress noticed it: the first records of a
//     topic created after Eddy started).
//   - group-offsets: its earliest, not the group's offset: the group can hold one only from a
//     reader that overlapped with this one (Eddy's own commits are of positions the store
//     already has; after a restore from a checkpoint, a later commit would skip records whose
//     effects the restored state does not hold).
//   - specific-offsets: the listed offset if the partition is listed (the user named it),
//     else its earliest (the first look used the group, then auto.offset.reset).
//   - date: its earliest, as every record in it is newer than the start, and so than the date;
//     a date later than the first look (a start in the future) is looked up as at the first look.
// A topic whose first look is not stored (added to the module since, or a state directory
// without any position for it) gets the startup position. A topic the cluster could not be
// asked about (unreachable, not authorized) has no first look yet: it gets one, with the
// startup position, once it can be read. A topic deleted and created again keeps the stored
// positions of the deleted one (Kafka's offsets restart at 0: an offset out of range is
// reset to autoOffsetResetPosition).
//
// In a cluster (a SourceBinding given), each source partition is bound to one of the cluster's
// partitions (io/source-binding.ts) and read only by the worker that runs it, its position a row
// of that partition (tables.kafkaSourcePosition) written in the same commit as the messages read
// before it: so it is in the partition's changelog frame, fenced by the group generation, and
// the partition's next owner resumes exactly there. Messages to instances other workers run
// leave through their inbox in that same transaction. Each admission names the run of the
// partition it read for (Engine.sourceRun); when the partition moved or was reset since, nothing
// is taken, and the reader is dropped, or put back at the position the partition holds. There is
// no shared first look at a topic: a source partition without a position starts at the startup
// position, whenever its partition's owner first sees it.
import { setTimeout as sleep } from "node:timers/promises";
import { Admin, Consumer, FetchIsolationLevels, findErrorBy } from "@platformatic/kafka";
import type { FunctionTypename, KafkaIngressConfig } from "../../config/types.ts";
import type { Key, KV } from "../../core/kv.ts";
import { MESSAGE_OVERHEAD_BYTES } from "../../core/partition-core.ts";
import type { RejectedRecord } from "../../core/partition-set.ts";
import type { Envelope } from "../../core/records.ts";
import { getRow, putRow, tables } from "../../core/schema.ts";
import { COMMIT_ABORTED, type SourceAcceptResult, type SourceBound, type SourceSink } from "../../engine/ports.ts";
import type { Tracer, TraceSpan } from "../../engine/tracer.ts";
import { BugError, EddyError, errorCode, errorMessage } from "../../errors.ts";
import { errorFields, type Logger } from "../../observe/logger.ts";
import type { Connector, HostOf, SourceLag } from "../connector.ts";
import { kafkaSourcePartition, type SourceBinding } from "../source-binding.ts";
import { type AfterFailure, runSupervised, type StepResult } from "../supervised-loop.ts";
import {
  describe,
  ignoredProperties,
  isUnknownTopic,
  type KafkaConnection,
  kafkaConnection,
  type Parsed,
  positiveCount,
} from "./client-options.ts";
import { AbortedProducers, type CommittedRecord, type FetchedBatch } from "./committed-records.ts";

/** Where a partition's next offset is kept: in Eddy's store, committed with the messages. */
export const positionKey = (ingress: string, topic: string, partition: number): Key => [
  "io",
  "kafka-ingress",
  ingress,
  topic,
  partition,
];

/**
 * That the ingress has looked at `topic` (its value: when, in ms since the epoch): from then on,
 * a partition without a stored position is one created after that look.
 */
export const topicLookKey = (ingress: string, topic: string): Key => ["io", "kafka-ingress-look", ingress, topic];

/**
 * The fetch-session errors of KIP-227: the broker no longer has the session (evicted, restarted)
 * or its epoch is not the one sent. The client has dropped its session with that broker by then,
 * so fetching again opens a new one.
 */
const FETCH_SESSION_ERRORS = [
  "FETCH_SESSION_ID_NOT_FOUND",
  "INVALID_FETCH_SESSION_EPOCH",
  "FETCH_SESSION_TOPIC_ID_ERROR",
];

const FETCH_WAIT_MS_DEFAULT = 500;
const FETCH_BYTES_DEFAULT = 50 * 1024 * 1024;
const PARTITION_FETCH_BYTES_DEFAULT = 1024 * 1024;
/** The least a fetch asks for, whatever the memory budget. */
const FETCH_BYTES_MIN = 64 * 1024;
const RECORDS_PER_COMMIT_DEFAULT = 500;
/** The record header that carries a W3C trace context (as OpenTelemetry's Kafka instrumentations write it). */
const TRACEPARENT_HEADER = "traceparent";
const METADATA_REFRESH_MS = 10_000;
const GROUP_COMMIT_INTERVAL_MS = 5_000;
/** Kafka's error code for a fetch offset the partition no longer (or not yet) has. */
const OFFSET_OUT_OF_RANGE = 1;
/**
 * The code of the error a step ends with when an admission found its partition moved or reset
 * (in a cluster): no trouble with Kafka, the readers are put right (#rewind) and reading goes on.
 */
const PARTITION_MOVED = "source-partition-moved";

/** The properties the ingress reads besides the connection's. */
const INGRESS_PROPERTIES = [
  "isolation.level",
  "fetch.max.wait.ms",
  "fetch.max.bytes",
  "max.partition.fetch.bytes",
  "max.poll.records",
];

export interface KafkaIngressSettings {
  readonly connection: KafkaConnection;
  readonly isolationLevel: number;
  readonly fetchWaitMs: number;
  readonly fetchBytes: number;
  readonly partitionFetchBytes: number;
  readonly recordsPerCommit: number;
  readonly ignored: readonly string[];
}

/** The ingress's client settings from its properties, or what is wrong with them. */
export function kafkaIngressSettings(config: KafkaIngressConfig): Parsed<KafkaIngressSettings> {
  const where = `Kafka ingress ${config.id}`;
  const connection = kafkaConnection(config.bootstrapServers, config.properties, `eddy-${config.id}`, where);
  if (!connection.ok) return connection;
  const isolation = (config.properties.get("isolation.level") ?? "read_committed").trim();
  if (isolation !== "read_committed" && isolation !== "read_uncommitted") {
    return {
      ok: false,
      error: `${where}: isolation.level ${JSON.stringify(isolation)}: expected read_committed or read_uncommitted`,
    };
  }
  const numbers: Record<string, number> = {};
  for (const [name, fallback] of [
    ["fetch.max.wait.ms", FETCH_WAIT_MS_DEFAULT],
    ["fetch.max.bytes", FETCH_BYTES_DEFAULT],
    ["max.partition.fetch.bytes", PARTITION_FETCH_BYTES_DEFAULT],
    ["max.poll.records", RECORDS_PER_COMMIT_DEFAULT],
  ] as const) {
    const value = positiveCount(config.properties.get(name)?.trim(), name, where);
    if (!value.ok) return value;
    numbers[name] = value.value ?? fallback;
  }
  return {
    ok: true,
    value: {
      connection: connection.value,
      isolationLevel:
        isolation === "read_committed" ? FetchIsolationLevels.READ_COMMITTED : FetchIsolationLevels.READ_UNCOMMITTED,
      fetchWaitMs: numbers["fetch.max.wait.ms"] as number,
      fetchBytes: numbers["fetch.max.bytes"] as number,
      partitionFetchBytes: numbers["max.partition.fetch.bytes"] as number,
      recordsPerCommit: numbers["max.poll.records"] as number,
      ignored: ignoredProperties(config.properties, INGRESS_PROPERTIES),
    },
  };
}

/**
 * Messages for the records that route, dead letters for those that do not. With a tracer, each
 * record that routes starts a span (in `spans`, for the caller to end once it is durable) that
 * continues its `traceparent` header, and its messages carry it.
 */
export function routeRecords(
  config: KafkaIngressConfig,
  topic: string,
  partition: number,
  records: readonly CommittedRecord[],
  tracer?: Tracer,
  spans?: TraceSpan[],
): { envelopes: Envelope[]; rejected: RejectedRecord[] } {
  const route = config.topics.find((candidate) => candidate.topic === topic);
  if (route === undefined) {
    throw new BugError(`Kafka ingress ${config.id} read topic ${topic}, which it does not declare`);
  }
  const envelopes: Envelope[] = [];
  const rejected: RejectedRecord[] = [];
  const decoder = new TextDecoder("utf-8", { fatal: true });
  // Kafka's header keys are Java strings: UTF-8 on the wire.
  const headerKeys = new TextDecoder("utf-8");
  for (const record of records) {
    const where = `topic ${topic} partition ${partition} offset ${record.offset}`;
    const argument = {
      typename: route.valueType,
      hasValue: record.value !== null,
      value: record.value === null ? new Uint8Array(0) : ownBytes(record.value),
    };
    let id: string | undefined;
    let problem: string | undefined;
    if (record.key === null) problem = "has no key (the key is the function id)";
    else {
      try {
        id = decoder.decode(record.key);
      } catch {
        problem = "has a key that is not UTF-8 (the key is the function id)";
      }
    }
    if (problem === undefined && record.value === null) problem = "has no value";
    if (problem !== undefined || id === undefined) {
      rejected.push({
        ingress: config.id,
        target: { typename: route.targets[0] as FunctionTypename, id: id ?? "" },
        argument,
        reason: `Kafka ingress ${config.id}: the record at ${where} ${problem}`,
      });
      continue;
    }
    const headers = record.headers.map(([key, value]) => ({ key: headerKeys.decode(key), value }));
    if (tracer !== undefined) {
      const parent = headers.find((header) => header.key === TRACEPARENT_HEADER)?.value;
      const span = tracer.start(
        `accept ${config.id}`,
        "consumer",
        parent === undefined || parent === null ? undefined : headerKeys.decode(parent),
        {
          "eddy.ingress": config.id,
          "messaging.system": "kafka",
          "messaging.destination.name": topic,
          "messaging.destination.partition.id": String(partition),
          "messaging.kafka.offset": Number(record.offset),
        },
      );
      spans?.push(span);
      for (const typename of route.targets) {
        envelopes.push({
          target: { typename, id },
          argument,
          ...(headers.length === 0 ? {} : { headers }),
          trace: span.traceparent,
        });
      }
      continue;
    }
    for (const typename of route.targets) {
      envelopes.push(
        headers.length === 0 ? { target: { typename, id }, argument } : { target: { typename, id }, argument, headers },
      );
    }
  }
  return { envelopes, rejected };
}

/** A record's weight against the memory budget once it is a message (as invocationCost counts it). */
function recordCost(record: CommittedRecord): number {
  return (record.value?.byteLength ?? 0) + (record.key?.byteLength ?? 0) + MESSAGE_OVERHEAD_BYTES;
}

/**
 * The bytes of `view` in a buffer of their own when they are a small part of a larger one
 * (a fetch response): a message waiting in a backlog must not keep the whole response alive,
 * which the memory budget, counting the message's own bytes, would not see.
 */
function ownBytes(view: Uint8Array): Uint8Array {
  return view.byteLength * 2 >= view.buffer.byteLength ? view : view.slice();
}

interface PartitionReader {
  readonly topic: string;
  readonly partition: number;
  topicId: string;
  leader: number;
  leaderEpoch: number;
  /** The offset to fetch next. */
  next: bigint;
  /** The next offset as the store has it durably (what the group may be told). */
  durable: bigint;
  aborted: AbortedProducers;
  /** Its offset was out of range: it restarts at autoOffsetResetPosition. */
  outOfRange: boolean;
  /** In a cluster: the partition it is bound to, and the run of it its position was read from. */
  readonly bound?: SourceBound;
}

type FetchResponse = Awaited<ReturnType<Consumer["fetch"]>>;

/** A fetch's responses, and the offset it asked of each reader. */
interface Fetched {
  readonly responses: readonly FetchResponse[];
  readonly requested: ReadonlyMap<PartitionReader, bigint>;
}

export interface KafkaIngressOptions {
  readonly config: KafkaIngressConfig;
  readonly settings: KafkaIngressSettings;
  readonly log: Logger;
  /** In a cluster: read only the source partitions bound to the partitions the worker runs. */
  readonly binding?: SourceBinding | undefined;
  /** Traces: a span per record routed, continuing its `traceparent` header (engine/tracer.ts). */
  readonly tracer?: Tracer | undefined;
}

/** How long the lag metric waits for a topic's end offsets before it leaves the topic out. */
const LAG_WAIT_MS = 2_000;

export class KafkaIngress implements Connector {
  readonly #config: KafkaIngressConfig;
  readonly #settings: KafkaIngressSettings;
  readonly #log: Logger;
  readonly #tracer: Tracer | undefined;
  /** Set by open(): see HostOf.checkpointed. */
  #checkpointed: (() => Promise<void>) | undefined;
  readonly #consumer: Consumer;
  readonly #admin: Admin;
  readonly #readers = new Map<string, PartitionReader>();
  /** Topics reported missing, so each is reported once until it appears. */
  readonly #missing = new Set<string>();
  /** When the ingress first looked at each topic, as stored (undefined: looked at, time unknown). */
  readonly #looked = new Map<string, number | undefined>();
  #closed = false;
  /** Chunks admitted whose commit is not known to be durable yet: their positions are not `durable` yet. */
  #admitted: Promise<void>[] = [];
  #running: Promise<void> | undefined;
  /**
   * The fetch sent while the last records were committed. A fetch is never sent while another
   * is in flight: both would carry the same fetch-session epoch, and the broker refuses the
   * second (INVALID_FETCH_SESSION_EPOCH). On one connection the broker answers them in turn,
   * but the metadata request of a discovery goes to the bootstrap address, which need not be
   * the connection fetches use (a Kubernetes service in front of the broker, say).
   */
  #prefetch: Promise<Fetched> | undefined;
  #stop = new AbortController();
  /** Ends the pause of an idle step early: the worker's partitions changed (in a cluster). */
  #wakeup = new AbortController();
  readonly #binding: SourceBinding | undefined;
  #unsubscribe: (() => void) | undefined;
  #lastMetadataAt = 0;
  #lastGroupCommitAt = 0;
  #groupCommitted = new Map<string, bigint>();
  /** The commit to the group under way, if any. */
  #groupCommit: Promise<void> | undefined;
  #groupCommitFailures = 0;
  /** What open() was given. */
  #opened: HostOf<SourceSink> | undefined;

  constructor(options: KafkaIngressOptions) {
    this.#config = options.config;
    this.#settings = options.settings;
    this.#log = options.log;
    this.#binding = options.binding;
    this.#tracer = options.tracer;
    const connection = { ...options.settings.connection, retries: 0 };
    this.#consumer = new Consumer({
      ...connection,
      // Never used to join: Eddy assigns itself every partition (see the file comment).
      groupId: this.#config.groupId ?? `eddy-${this.#config.id}`,
      isolationLevel: options.settings.isolationLevel,
    });
    this.#admin = new Admin(connection);
    if (options.settings.ignored.length > 0) {
      this.#log.warn(`Kafka ingress ${this.#config.id} ignores properties ${options.settings.ignored.join(", ")}`);
    }
  }

  readonly egress = undefined;

  /**
   * Each partition read here, and how many records lie after what the store holds of it (after
   * what was read, before the first commit): the partitions' ends are asked now (their last
   * stable offsets under read_committed), so an ingress held back by a full budget shows its
   * lag growing rather than what its last fetch saw. A topic whose ends are not known within
   * LAG_WAIT_MS (the cluster is away) is left out.
   */
  async sourceLags(): Promise<SourceLag[]> {
    const byTopic = new Map<string, { partition: number; position: bigint }[]>();
    for (const reader of this.#readers.values()) {
      const position = reader.durable >= 0n ? reader.durable : reader.next;
      if (position < 0n) continue;
      const readers = byTopic.get(reader.topic) ?? [];
      readers.push({ partition: reader.partition, position });
      byTopic.set(reader.topic, readers);
    }
    const lags: SourceLag[] = [];
    await Promise.all(
      [...byTopic].map(async ([topic, readers]) => {
        const asked = this.#listOffsets(
          topic,
          readers.map((reader) => reader.partition),
          -1n,
        ).catch(() => undefined);
        const ends = await Promise.race([asked, sleep(LAG_WAIT_MS).then(() => undefined)]);
        for (const { partition, position } of readers) {
          const end = ends?.get(partition) ?? -1n;
          if (end < 0n) continue;
          lags.push({ ingress: this.id, topic, partition, messages: end > position ? Number(end - position) : 0 });
        }
      }),
    );
    return lags;
  }

  get id(): string {
    return this.#config.id;
  }

  /** What open() was given; a BugError before. */
  get #host(): HostOf<SourceSink> {
    if (this.#opened === undefined) throw new BugError(`Kafka ingress ${this.#config.id} is used before it is opened`);
    return this.#opened;
  }

  /** Starts reading in the background; problems with the cluster are logged and retried, a bug is fatal (onFatal). */
  async open(host: HostOf<SourceSink>): Promise<{ readonly urls: readonly string[] }> {
    this.#opened = host;
    this.#checkpointed = host.checkpointed;
    this.#unsubscribe = this.#binding?.subscribe(() => {
      // Look at the topics again at once: a partition that came may bind source partitions.
      this.#lastMetadataAt = 0;
      this.#wakeup.abort();
    });
    this.#running = this.#run();
    return { urls: [] };
  }

  async close(): Promise<void> {
    this.#closed = true;
    this.#unsubscribe?.();
    this.#stop.abort();
    await this.#running;
    // A last commit of durable offsets; with checkpoints, whatever is under way may stay
    // unfinished (the next start tells the group again).
    if (this.#checkpointed === undefined) {
      await this.#groupCommit;
      await this.#commitGroupOffsets(this.#durablePositions());
    }
    await Promise.all([this.#consumer.close(true), this.#admin.close()]).catch(() => undefined);
  }

  /**
   * Reads until closed: each step fetches, admits what it read, and waits for its commit.
   * Trouble with the cluster is retried (supervised-loop.ts) after the readers are put back
   * at their durable positions; a bug stops the runtime (onFatal).
   */
  #run(): Promise<void> {
    return runSupervised(`Kafka ingress ${this.#config.id}`, () => this.#step(), {
      log: this.#log,
      signal: this.#stop.signal,
      onFatal: this.#host.onFatal,
      // An aborted commit is no trouble with Kafka: #rewind says it in its own words.
      describe: (error) =>
        errorCode(error) === COMMIT_ABORTED || errorCode(error) === PARTITION_MOVED ? undefined : describe(error),
      recovered: "reads again",
      // A commit failed and the engine stops (it says why): reading on is for nothing.
      afterFailure: (error) => (errorCode(error) === "stopping" ? "stop" : this.#rewind(error)),
    });
  }

  async #step(): Promise<StepResult> {
    this.#followRuns();
    let fetched: Fetched | undefined;
    if (Date.now() - this.#lastMetadataAt >= METADATA_REFRESH_MS || this.#readers.size === 0) {
      // Its records are still good after the discovery: it leaves known partitions' offsets alone.
      if (this.#prefetch !== undefined) fetched = await this.#prefetch;
      this.#prefetch = undefined;
      await this.#discover();
    }
    const reset = [...this.#readers.values()].filter((reader) => reader.outOfRange);
    if (reset.length > 0) {
      if (this.#prefetch !== undefined) await this.#prefetch.catch(() => undefined);
      this.#prefetch = undefined;
      fetched = undefined;
      await this.#startPositions(reset, "reset", new Set());
    }
    if (![...this.#readers.values()].some((reader) => reader.leader >= 0 && reader.next >= 0n)) {
      // Nothing to fetch yet (no topic, no leader, no start offset): look again in a moment.
      this.#lastMetadataAt = 0;
      const signal = AbortSignal.any([this.#stop.signal, this.#wakeup.signal]);
      await sleep(1000, undefined, { signal }).catch(() => undefined);
      if (this.#wakeup.signal.aborted) this.#wakeup = new AbortController();
      return undefined;
    }
    const responses = fetched ?? (await (this.#prefetch ?? this.#fetch()));
    this.#prefetch = undefined;
    if (this.#closed) return "done";
    const moved = this.#take(responses);
    // Admitted one after another (the order keeps positions in order), each without
    // waiting for its commit: what the fetch read moves into the engine at once, where
    // the memory budget bounds it, and waits there rather than here.
    for (const chunk of moved) {
      // The engine stops for good (a failed commit, the runtime's stop): nothing more to read for.
      if (!(await this.#admit(chunk))) return "done";
    }
    // The next fetch goes out while these records commit (offsets already advanced). Not
    // before they are all admitted: while the budget holds this fetch back, no second one.
    if (moved.length > 0 && !this.#closed) this.#prefetch = this.#fetch();
    await this.#admittedDurable();
    this.#commitGroupOffsetsSoon();
    return undefined;
  }

  /**
   * After a failed step: what was read but is not durable is read again, from the durable
   * positions. A commit the engine aborted (COMMIT_ABORTED: the cluster fenced this worker, a
   * rebalance) is no trouble with Kafka: every reader goes back to the position the store
   * holds, with one line saying so.
   */
  async #rewind(error: unknown): Promise<AfterFailure> {
    // Settled before anything else is fetched (see #prefetch); its records are read again.
    if (this.#prefetch !== undefined) await this.#prefetch.catch(() => undefined);
    this.#prefetch = undefined;
    // What was admitted commits (or is aborted) whatever happened here: its positions move on with it.
    const aborted = (await this.#admittedSettled()) || errorCode(error) === COMMIT_ABORTED;
    // In a cluster, an aborted commit reset every partition: each reader starts again from its
    // partition's new run (#followRuns), as does one whose partition moved.
    if (this.#binding !== undefined) this.#followRuns();
    for (const reader of this.#readers.values()) {
      if (aborted && this.#binding === undefined) {
        const stored = this.#host.store.get(positionKey(this.#config.id, reader.topic, reader.partition));
        reader.durable = stored === undefined ? -1n : BigInt(stored as number);
      }
      if (reader.next !== reader.durable) reader.aborted = new AbortedProducers();
      reader.next = reader.durable;
    }
    this.#markOutOfRange(error);
    this.#lastMetadataAt = 0;
    if (errorCode(error) === PARTITION_MOVED && !aborted) return "retry-now";
    if (aborted) {
      this.#log.info(
        `Kafka ingress ${this.#config.id}: a commit was aborted (${errorMessage(error)}); reading again from the positions the store holds`,
      );
    }
    return "retry";
  }

  /** Finds the topics' partitions and leaders; a partition seen for the first time gets its start offset. */
  async #discover(): Promise<void> {
    const fresh: PartitionReader[] = [];
    /** Topics looked at for the first time, with partitions. */
    const firstLooks = new Set<string>();
    /** Topics looked at for the first time and found missing. */
    const absent: string[] = [];
    for (const { topic } of this.#config.topics) {
      let metadata: Awaited<ReturnType<Consumer["metadata"]>>;
      try {
        this.#consumer.topics.track(topic);
        metadata = await this.#consumer.metadata({ topics: [topic], forceUpdate: true, autocreateTopics: false });
      } catch (error) {
        this.#consumer.topics.untrack(topic);
        const missing = isUnknownTopic(error);
        if (missing && this.#binding === undefined && !this.#hasLooked(topic, 0)) absent.push(topic);
        if (!this.#missing.has(topic)) {
          if (missing) {
            this.#log.info(
              `Kafka ingress ${this.#config.id}: topic ${topic} does not exist yet; once it does, it is read from its beginning`,
            );
          } else {
            this.#log.warn(
              `Kafka ingress ${this.#config.id}: topic ${topic} cannot be read (${describe(error)}); will look again`,
              errorFields(error),
            );
          }
          this.#missing.add(topic);
        }
        continue;
      }
      this.#missing.delete(topic);
      const described = metadata.topics.get(topic);
      if (described === undefined) continue;
      // In a cluster every source partition without a position is a first look (see the file comment).
      if (this.#binding !== undefined || !this.#hasLooked(topic, described.partitions.length)) firstLooks.add(topic);
      described.partitions.forEach((state, partition) => {
        const key = `${topic}/${partition}`;
        let known = this.#readers.get(key);
        const bound = this.#boundRun(topic, partition);
        if (bound === null) {
          // Bound to a partition another worker runs.
          this.#readers.delete(key);
          return;
        }
        if (known !== undefined && bound !== undefined && known.bound?.run !== bound.run) {
          this.#readers.delete(key);
          known = undefined;
        }
        if (known !== undefined) {
          known.topicId = described.id;
          known.leader = state.leader;
          known.leaderEpoch = state.leaderEpoch;
          // Its start offset could not be settled last time (a new topic's leader not ready, say): again.
          if (known.next < 0n) fresh.push(known);
          return;
        }
        const stored =
          bound === undefined
            ? (this.#host.store.get(positionKey(this.#config.id, topic, partition)) as number | undefined)
            : getRow(bound.rows, tables.kafkaSourcePosition.key(this.#config.id, topic, partition));
        const reader: PartitionReader = {
          topic,
          partition,
          topicId: described.id,
          leader: state.leader,
          leaderEpoch: state.leaderEpoch,
          next: stored === undefined ? -1n : BigInt(stored),
          durable: stored === undefined ? -1n : BigInt(stored),
          aborted: new AbortedProducers(),
          outOfRange: false,
          ...(bound === undefined ? {} : { bound: { partition: bound.partition, run: bound.run } }),
        };
        this.#readers.set(key, reader);
        if (stored === undefined) fresh.push(reader);
      });
    }
    if (absent.length > 0) {
      // Before any of them can appear and be read: from now on, what appears is read from its beginning.
      const now = Date.now();
      await this.#host.engine.transact((transaction) => {
        for (const topic of absent) transaction.put(topicLookKey(this.#config.id, topic), now);
      });
      for (const topic of absent) this.#looked.set(topic, now);
    }
    if (fresh.length > 0) await this.#startPositions(fresh, "startup", firstLooks);
    this.#lastMetadataAt = Date.now();
  }

  /**
   * In a cluster: the partition `topic`/`partition` is bound to, with its current run and rows,
   * or null when another worker runs it; undefined in the embedded mode (nothing is bound).
   */
  #boundRun(
    topic: string,
    partition: number,
  ): { readonly partition: number; readonly run: number; readonly rows: KV } | null | undefined {
    if (this.#binding === undefined) return undefined;
    const bound = kafkaSourcePartition(this.#config.id, topic, partition, this.#binding.partitionCount);
    const run = this.#host.engine.sourceRun(bound);
    return run === undefined ? null : { partition: bound, run: run.run, rows: run.rows };
  }

  /**
   * In a cluster: drops the readers of partitions the worker no longer runs, and puts a reader
   * whose partition runs anew (a reset, or back after a move) at the position the partition
   * holds now (a new reader: records fetched for the old one are never taken, see #take). A
   * partition without a position yet gets its start at the next look at the topics.
   */
  #followRuns(): void {
    if (this.#binding === undefined) return;
    for (const [key, reader] of this.#readers) {
      const bound = this.#boundRun(reader.topic, reader.partition);
      if (bound === null || bound === undefined) {
        this.#readers.delete(key);
        continue;
      }
      if (reader.bound?.run === bound.run) continue;
      const stored = getRow(
        bound.rows,
        tables.kafkaSourcePosition.key(this.#config.id, reader.topic, reader.partition),
      );
      const position = stored === undefined ? -1n : BigInt(stored);
      this.#readers.set(key, {
        ...reader,
        next: position,
        durable: position,
        aborted: new AbortedProducers(),
        outOfRange: false,
        bound: { partition: bound.partition, run: bound.run },
      });
      if (stored === undefined) this.#lastMetadataAt = 0;
    }
  }

  /**
   * Whether the ingress has looked at `topic` before (see the file comment): its first look is
   * stored, or (a store from before first looks were) a position of one of its `partitions` is.
   */
  #hasLooked(topic: string, partitions: number): boolean {
    if (this.#looked.has(topic)) return true;
    const at = this.#host.store.get(topicLookKey(this.#config.id, topic)) as number | undefined;
    let looked = at !== undefined;
    for (let partition = 0; !looked && partition < partitions; partition++) {
      looked = this.#host.store.get(positionKey(this.#config.id, topic, partition)) !== undefined;
    }
    if (looked) this.#looked.set(topic, at);
    return looked;
  }

  /**
   * Where partitions without a stored position start (see the file comment): those of topics
   * in `firstLooks` by the startup position, the others from their earliest offset; after an
   * out-of-range offset ("reset"), by autoOffsetResetPosition. The offsets, and the first looks,
   * are committed before reading, so a restart before the first record still starts there,
   * not at a later "latest".
   */
  async #startPositions(
    readers: readonly PartitionReader[],
    why: "startup" | "reset",
    firstLooks: ReadonlySet<string>,
  ): Promise<void> {
    const startup = this.#config.startupPosition;
    const byTopic = new Map<string, PartitionReader[]>();
    for (const reader of readers) byTopic.set(reader.topic, [...(byTopic.get(reader.topic) ?? []), reader]);
    const how = new Map<string, string>();
    const chosen = new Map<PartitionReader, bigint>();
    for (const [topic, partitions] of byTopic) {
      const indexes = partitions.map((reader) => reader.partition);
      const first = why === "startup" && firstLooks.has(topic);
      // The startup position, where it applies: at the first look, or for a date later than it.
      const lookedAtMs = this.#looked.get(topic);
      const byStartup = first || (startup.type === "date" && lookedAtMs !== undefined && startup.epochMs > lookedAtMs);
      const group =
        first && (startup.type === "group-offsets" || startup.type === "specific-offsets")
          ? await this.#groupOffsets(topic, indexes)
          : new Map<number, bigint>();
      const earliest = await this.#listOffsets(topic, indexes, -2n);
      const latest = await this.#listOffsets(topic, indexes, -1n);
      const atDate =
        byStartup && startup.type === "date"
          ? await this.#listOffsets(topic, indexes, BigInt(startup.epochMs))
          : undefined;
      const reset = (partition: number) =>
        (this.#config.autoOffsetReset === "earliest" ? earliest : latest).get(partition) ?? 0n;
      for (const reader of partitions) {
        const p = reader.partition;
        const given =
          startup.type === "specific-offsets"
            ? startup.offsets.find((entry) => entry.topic === topic && entry.partition === p)
            : undefined;
        let offset: bigint;
        if (why === "reset") offset = reset(p);
        else if (given !== undefined) offset = BigInt(given.offset);
        else if (byStartup && startup.type === "latest") offset = latest.get(p) ?? 0n;
        else if (byStartup && startup.type === "date") {
          const found = atDate?.get(p) ?? -1n;
          offset = found >= 0n ? found : (latest.get(p) ?? 0n);
        } else if (first && (startup.type === "group-offsets" || startup.type === "specific-offsets")) {
          offset = group.get(p) ?? reset(p);
        } else offset = earliest.get(p) ?? 0n;
        chosen.set(reader, offset);
      }
      how.set(topic, first ? startup.type : "new since the ingress first looked at the topic: from its beginning");
    }
    const now = Date.now();
    if (this.#binding === undefined) {
      await this.#host.engine.transact((transaction) => {
        for (const [reader, offset] of chosen) {
          transaction.put(positionKey(this.#config.id, reader.topic, reader.partition), Number(offset));
        }
        for (const topic of byTopic.keys()) {
          if (firstLooks.has(topic)) transaction.put(topicLookKey(this.#config.id, topic), now);
        }
      });
    } else {
      // Each position in its own partition's rows, in one commit (admissions without messages).
      const accepted = await Promise.all(
        [...this.#byBound(chosen)].map(([bound, positions]) =>
          this.#host.engine.acceptFromSource([], (rows) => this.#recordBound(rows, positions), [], bound),
        ),
      );
      for (const result of accepted) if (!result.ok) throw this.#refusal(result);
    }
    // Only now: should anything above fail, the readers keep no position and are started again.
    for (const topic of byTopic.keys()) if (firstLooks.has(topic)) this.#looked.set(topic, now);
    for (const [reader, offset] of chosen) {
      if (why === "reset") {
        this.#log.warn(
          `Kafka ingress ${this.#config.id}: offset ${reader.next} of ${reader.topic}/${reader.partition} is out of range (removed by retention?); reading on from ${this.#config.autoOffsetReset} offset ${offset}`,
        );
      }
      reader.next = offset;
      reader.durable = offset;
      reader.outOfRange = false;
      reader.aborted = new AbortedProducers();
    }
    if (why === "startup") {
      for (const [topic, partitions] of byTopic) {
        const offsets = partitions.map((reader) => `${reader.partition}@${reader.next}`).join(", ");
        this.#log.info(`Kafka ingress ${this.#config.id} starts ${topic} at ${offsets} (${how.get(topic)})`);
      }
    }
  }

  async #groupOffsets(topic: string, partitions: readonly number[]): Promise<Map<number, bigint>> {
    const found = new Map<number, bigint>();
    if (this.#config.groupId === undefined) return found;
    const [group] = await this.#admin.listConsumerGroupOffsets({
      groups: [{ groupId: this.#config.groupId, topics: [{ name: topic, partitionIndexes: [...partitions] }] }],
      requireStable: true,
    });
    for (const described of group?.topics ?? []) {
      for (const partition of described.partitions) {
        if (partition.committedOffset >= 0n) found.set(partition.partitionIndex, partition.committedOffset);
      }
    }
    return found;
  }

  async #listOffsets(topic: string, partitions: readonly number[], timestamp: bigint): Promise<Map<number, bigint>> {
    const listed = await this.#consumer.listOffsets({
      topics: [topic],
      partitions: { [topic]: [...partitions] },
      timestamp,
      isolationLevel: this.#settings.isolationLevel,
    });
    const offsets = listed.get(topic) ?? [];
    return new Map(partitions.map((partition) => [partition, offsets[partition] ?? -1n]));
  }

  /** One fetch per leader, together. */
  #fetch(): Promise<Fetched> {
    // A fetch is held whole, as the client parsed it, until its last chunk is admitted: small
    // records take 25–45 times their wire size then (measured in bench/backlog). So a fetch
    // asks for at most 1/128 of the memory budget in wire bytes, which keeps the parsed fetch
    // to about a third of the budget (fetch.max.bytes and max.partition.fetch.bytes stay upper
    // bounds; the broker still returns a first batch larger than asked for).
    const fetchBytes = Math.min(
      this.#settings.fetchBytes,
      Math.max(FETCH_BYTES_MIN, Math.floor(this.#host.engine.admission.budgetBytes / 128)),
    );
    const byLeader = new Map<number, PartitionReader[]>();
    const requested = new Map<PartitionReader, bigint>();
    for (const reader of this.#readers.values()) {
      // No leader, or no start offset yet.
      if (reader.leader < 0 || reader.next < 0n) continue;
      byLeader.set(reader.leader, [...(byLeader.get(reader.leader) ?? []), reader]);
      requested.set(reader, reader.next);
    }
    const responses = Promise.all(
      [...byLeader].map(([node, readers]) => {
        const topics = new Map<string, PartitionReader[]>();
        for (const reader of readers) topics.set(reader.topicId, [...(topics.get(reader.topicId) ?? []), reader]);
        // Built anew for each attempt: the client changes the partitions' epochs on some errors.
        const request = () =>
          this.#consumer.fetch({
            node,
            maxWaitTime: this.#settings.fetchWaitMs,
            maxBytes: fetchBytes,
            minBytes: 1,
            isolationLevel: this.#settings.isolationLevel,
            topics: [...topics].map(([topicId, partitions]) => ({
              topicId,
              partitions: partitions.map((reader) => ({
                partition: reader.partition,
                fetchOffset: reader.next,
                partitionMaxBytes: Math.min(this.#settings.partitionFetchBytes, fetchBytes),
                currentLeaderEpoch: reader.leaderEpoch,
                lastFetchedEpoch: -1,
              })),
            })),
          });
        // A fetch-session error is no trouble with the cluster: the broker evicted the session, or
        // the client's epoch fell behind the broker's (the client moves it on only after a fetch
        // without errors, while the broker moves it on after every incremental fetch, so the
        // fetch after one with a partition error, say an offset out of range, carries a stale
        // epoch). The client has dropped the session by now: the same fetch again opens a new one.
        return request().catch((error: unknown) => {
          if (!isFetchSessionError(error)) throw error;
          return request();
        });
      }),
    );
    return responses.then((all) => ({ responses: all, requested }));
  }

  /**
   * Takes the committed records out of the responses and moves every partition's next offset
   * past them; returns them as chunks to admit in order, each with the positions it
   * completes. Records become messages only as their chunk is admitted (#admit), so a fetch
   * the budget holds back is held as the client parsed it, not twice.
   */
  #take({ responses, requested }: Fetched): Chunk[] {
    const byTopicId = new Map<string, Map<number, PartitionReader>>();
    for (const reader of this.#readers.values()) {
      const partitions = byTopicId.get(reader.topicId) ?? new Map<number, PartitionReader>();
      partitions.set(reader.partition, reader);
      byTopicId.set(reader.topicId, partitions);
    }
    const chunks: Chunk[] = [];
    let current: Chunk = { parts: [], count: 0, costBytes: 0, positions: new Map() };
    const countMax = this.#settings.recordsPerCommit;
    // A chunk larger than the memory budget could only be admitted alone, past the budget.
    const costBytesMax = Math.max(1, Math.floor(this.#host.engine.admission.budgetBytes / 4));
    for (const response of responses) {
      for (const topic of response.responses) {
        for (const fetched of topic.partitions) {
          const reader = byTopicId.get(topic.topicId)?.get(fetched.partitionIndex);
          if (reader === undefined) continue;
          // Fetched for a reader that is gone or was put back since (its partition moved, a
          // rewind): these records are not where this reader reads next.
          if (requested.get(reader) !== reader.next) continue;
          if (fetched.errorCode !== 0) {
            this.#partitionError(reader, fetched.errorCode);
            continue;
          }
          const { records, nextOffset } = reader.aborted.take(
            reader.next,
            (fetched.records ?? []) as unknown as FetchedBatch[],
            fetched.abortedTransactions,
          );
          if (nextOffset === reader.next) continue;
          const targets = this.#config.topics.find((route) => route.topic === reader.topic)?.targets.length ?? 1;
          let part: CommittedRecord[] = [];
          // The records of this partition so far go into the current chunk, which then reaches `end`.
          const closePart = (end: bigint) => {
            if (part.length > 0) current.parts.push({ reader, records: part });
            part = [];
            current.positions.set(reader, end);
          };
          for (const record of records) {
            part.push(record);
            current.count++;
            current.costBytes += targets * recordCost(record);
            if (current.count >= countMax || current.costBytes >= costBytesMax) {
              closePart(record.offset + 1n);
              chunks.push(current);
              current = { parts: [], count: 0, costBytes: 0, positions: new Map() };
            }
          }
          // Up to the next offset: it may lie past control records and aborted transactions.
          closePart(nextOffset);
          reader.next = nextOffset;
        }
      }
    }
    if (current.positions.size > 0) chunks.push(current);
    return chunks;
  }

  #partitionError(reader: PartitionReader, code: number): void {
    if (code === OFFSET_OUT_OF_RANGE) reader.outOfRange = true;
    // Otherwise leadership moved or metadata is stale: look again before the next fetch.
    else this.#lastMetadataAt = 0;
  }

  /** A failed fetch may carry partitions whose offset is out of range. */
  #markOutOfRange(error: unknown): void {
    const response = (error as { response?: FetchResponse } | undefined)?.response;
    const byTopicId = new Map<string, PartitionReader[]>();
    for (const reader of this.#readers.values()) {
      byTopicId.set(reader.topicId, [...(byTopicId.get(reader.topicId) ?? []), reader]);
    }
    for (const topic of response?.responses ?? []) {
      for (const fetched of topic.partitions) {
        if (fetched.errorCode !== OFFSET_OUT_OF_RANGE) continue;
        const reader = byTopicId
          .get(topic.topicId)
          ?.find((candidate) => candidate.partition === fetched.partitionIndex);
        if (reader !== undefined) reader.outOfRange = true;
      }
    }
  }

  /**
   * Admits a chunk into the engine (waiting while the memory budget or a backlog is full);
   * its positions become durable with its commit, tracked in #admitted. False when the
   * engine is stopping.
   */
  async #admit(chunk: Chunk): Promise<boolean> {
    if (this.#binding === undefined) return this.#admitPart(chunk.parts, chunk.positions, undefined);
    // In a cluster: one admission per partition the chunk's source partitions are bound to.
    for (const [bound, positions] of this.#byBound(chunk.positions)) {
      const parts = chunk.parts.filter(({ reader }) => positions.has(reader));
      if (!(await this.#admitPart(parts, positions, bound))) return false;
    }
    return true;
  }

  /** The positions grouped by the run of the partition their readers are bound to (in a cluster). */
  #byBound(positions: ReadonlyMap<PartitionReader, bigint>): Map<SourceBound, Map<PartitionReader, bigint>> {
    const byRun = new Map<string, { bound: SourceBound; positions: Map<PartitionReader, bigint> }>();
    for (const [reader, offset] of positions) {
      const bound = reader.bound;
      if (bound === undefined) throw new BugError(`Kafka ingress ${this.#config.id}: a reader without a partition`);
      const key = `${bound.partition}/${bound.run}`;
      const group = byRun.get(key) ?? { bound, positions: new Map() };
      group.positions.set(reader, offset);
      byRun.set(key, group);
    }
    return new Map([...byRun.values()].map(({ bound, positions: grouped }) => [bound, grouped]));
  }

  /** Writes positions into the rows of the partition their readers are bound to. */
  #recordBound(rows: KV, positions: ReadonlyMap<PartitionReader, bigint>): void {
    for (const [reader, offset] of positions) {
      putRow(rows, tables.kafkaSourcePosition.key(this.#config.id, reader.topic, reader.partition), Number(offset));
    }
  }

  /** Why an admission was refused, as the error the step ends with. */
  #refusal(refused: Exclude<SourceAcceptResult, { readonly ok: true }>): Error {
    if (refused.code === "moved") return new EddyError(PARTITION_MOVED, refused.message, { retriable: true });
    if (refused.code === "stopping") return new EddyError("stopping", refused.message, { retriable: true });
    // Targets are checked against the module at start.
    return new BugError(`Kafka ingress ${this.#config.id}: ${refused.message}`);
  }

  async #admitPart(
    parts: Chunk["parts"],
    positions: ReadonlyMap<PartitionReader, bigint>,
    bound: SourceBound | undefined,
  ): Promise<boolean> {
    const envelopes: Envelope[] = [];
    const rejected: RejectedRecord[] = [];
    const spans: TraceSpan[] | undefined = this.#tracer === undefined ? undefined : [];
    for (const { reader, records } of parts) {
      const routed = routeRecords(this.#config, reader.topic, reader.partition, records, this.#tracer, spans);
      for (const envelope of routed.envelopes) envelopes.push(envelope);
      for (const letter of routed.rejected) rejected.push(letter);
    }
    const admitted =
      bound === undefined
        ? await this.#host.engine.admitFromSource(
            envelopes,
            (transaction) => {
              for (const [reader, offset] of positions) {
                transaction.put(positionKey(this.#config.id, reader.topic, reader.partition), Number(offset));
              }
            },
            rejected,
          )
        : await this.#host.engine.admitFromSource(
            envelopes,
            (rows) => this.#recordBound(rows, positions),
            rejected,
            bound,
          );
    if (!admitted.ok) {
      for (const span of spans ?? []) span.end(admitted.message);
      if (admitted.code === "stopping") return false;
      throw this.#refusal(admitted);
    }
    const durable = admitted.durable.then(() => {
      for (const [reader, offset] of positions) reader.durable = offset;
      for (const letter of rejected) this.#log.warn(`dead letter: ${letter.reason}`);
    });
    if (spans !== undefined) {
      durable.then(
        () => {
          for (const span of spans) span.end();
        },
        (error: unknown) => {
          for (const span of spans) span.end(error instanceof Error ? error.message : String(error));
        },
      );
    }
    // Its rejection (an aborted commit) is taken by #admittedDurable; until then it is not unhandled.
    durable.catch(() => undefined);
    this.#admitted.push(durable);
    return true;
  }

  /**
   * Waits until every admitted chunk's commit is settled, durable or not; whether one was
   * aborted (anything else that failed is the engine's to report: it stops).
   */
  async #admittedSettled(): Promise<boolean> {
    let aborted = false;
    while (this.#admitted.length > 0) {
      const admitted = this.#admitted;
      this.#admitted = [];
      for (const settled of await Promise.allSettled(admitted)) {
        if (settled.status === "rejected" && errorCode(settled.reason) === COMMIT_ABORTED) aborted = true;
      }
    }
    return aborted;
  }

  /** Waits until every admitted chunk is durable (commits complete in order). */
  async #admittedDurable(): Promise<void> {
    while (this.#admitted.length > 0) {
      const admitted = this.#admitted;
      this.#admitted = [];
      await Promise.all(admitted);
    }
  }

  /**
   * Tells the consumer group the durable positions, in the background, at most every few
   * seconds; with checkpoints, once a checkpoint holds them.
   */
  #commitGroupOffsetsSoon(): void {
    if (this.#config.groupId === undefined || this.#groupCommit !== undefined) return;
    if (Date.now() - this.#lastGroupCommitAt < GROUP_COMMIT_INTERVAL_MS) return;
    this.#lastGroupCommitAt = Date.now();
    const positions = this.#durablePositions();
    const checkpointed = this.#checkpointed;
    this.#groupCommit = (async () => {
      if (checkpointed !== undefined) await checkpointed();
      if (!this.#closed) await this.#commitGroupOffsets(positions);
    })().finally(() => {
      this.#groupCommit = undefined;
    });
  }

  #durablePositions(): Map<PartitionReader, bigint> {
    const positions = new Map<PartitionReader, bigint>();
    for (const reader of this.#readers.values()) if (reader.durable >= 0n) positions.set(reader, reader.durable);
    return positions;
  }

  /** Commits `positions` to the consumer group (those it does not have yet); a failure is logged. */
  async #commitGroupOffsets(positions: Map<PartitionReader, bigint>): Promise<void> {
    const groupId = this.#config.groupId;
    if (groupId === undefined) return;
    const topics = new Map<string, { partition: number; offset: bigint }[]>();
    for (const [reader, offset] of positions) {
      const key = `${reader.topic}/${reader.partition}`;
      if (this.#groupCommitted.get(key) === offset) continue;
      topics.set(reader.topic, [...(topics.get(reader.topic) ?? []), { partition: reader.partition, offset }]);
      this.#groupCommitted.set(key, offset);
    }
    if (topics.size === 0) return;
    try {
      await this.#admin.alterConsumerGroupOffsets({
        groupId,
        topics: [...topics].map(([name, partitionOffsets]) => ({ name, partitionOffsets })),
      });
      this.#groupCommitFailures = 0;
    } catch (error) {
      // Only monitoring and the group-offsets start depend on it; reading goes on. A new
      // cluster has no group coordinator for a moment (it makes __consumer_offsets on first
      // use), so a single failure is tried again in silence; from the second on, it is logged.
      this.#groupCommitted.clear();
      this.#groupCommitFailures++;
      if (this.#groupCommitFailures >= 2) {
        this.#log.warn(
          `Kafka ingress ${this.#config.id}: committing offsets to group ${groupId} failed ${this.#groupCommitFailures} times in a row: ${describe(error)}`,
        );
      }
    }
  }
}

function isFetchSessionError(error: unknown): boolean {
  return FETCH_SESSION_ERRORS.some((id) => findErrorBy(error as Error, "apiId", id) !== null);
}

interface Chunk {
  /** The records of each partition in the chunk, in offset order. */
  readonly parts: { readonly reader: PartitionReader; readonly records: readonly CommittedRecord[] }[];
  count: number;
  /** What its records will weigh against the memory budget (recordCost, per target). */
  costBytes: number;
  readonly positions: Map<PartitionReader, bigint>;
}
