// StateFun's Kinesis ingress (io.statefun.kinesis.v1/ingress). Eddy reads every shard of the
// ingress's streams itself with GetRecords (one reader per shard, at most one call per shard
// every 200 ms, as Flink's consumer), without a lease table: one Eddy owns its streams.
// Each shard's position is written into the same commit as the messages its records became
// (Engine.acceptFromSource), so after a crash, or a restore from a checkpoint, reading
// resumes right after what the store holds: nothing is lost or delivered twice. A record's
// partition key is the function id; its data becomes TypedValue{valueType, raw bytes}, one
// message per target. Records the Kinesis Producer Library aggregated are split into their
// user records (aggregated-records.ts); a position inside one is its sequence number plus the
// index of the last user record taken. A record that cannot be routed (an empty partition
// key, a broken aggregated record) becomes a dead letter naming stream, shard and sequence
// number, and reading goes on. A closed shard (split or merged) is read to its end before
// its children are started.
//
// In a cluster, each stream is bound to one of the cluster's partitions (source-binding.ts) and
// read by the worker that runs it, its shards' positions rows of that partition
// (tables.kinesisSourcePosition) written in the same commit as the messages read before them,
// so they move with the partition: its next owner goes on from there. A reading of a stream
// belongs to one run of its partition (Engine.sourceRun); when the partition moved or was reset
// since, nothing it read is taken, its readers stop, and the next listing starts again from
// the rows the partition holds then.
import { setTimeout as sleep } from "node:timers/promises";
import {
  GetRecordsCommand,
  type GetRecordsCommandOutput,
  GetShardIteratorCommand,
  type GetShardIteratorCommandInput,
  type KinesisClient,
  type _Record as KinesisRecord,
  ListShardsCommand,
  type Shard,
} from "@aws-sdk/client-kinesis";
import type { FunctionTypename, KinesisIngressConfig } from "../../config/types.ts";
import type { Key, KV } from "../../core/kv.ts";
import type { RejectedRecord } from "../../core/partition-set.ts";
import type { Envelope } from "../../core/records.ts";
import { getRow, putRow, scanRows, tables } from "../../core/schema.ts";
import { COMMIT_ABORTED, type SourceBound, type SourceSink } from "../../engine/ports.ts";
import { BugError, errorCode, errorMessage, isRetriable } from "../../errors.ts";
import type { Logger } from "../../observe/logger.ts";
import type { Connector, HostOf } from "../connector.ts";
import { kinesisSourcePartition, type SourceBinding } from "../source-binding.ts";
import { runSupervised, type StepResult } from "../supervised-loop.ts";
import { deaggregate } from "./aggregated-records.ts";
import {
  ClientProperties,
  connectorClient,
  describe,
  errorName,
  type KinesisHttpSettings,
  type Parsed,
  THROTTLING,
} from "./client.ts";

/** Where a shard's position is kept: in Eddy's store, committed with the messages. */
export const positionKey = (ingress: string, stream: string, shardId: string): Key => [
  "io",
  "kinesis-ingress",
  ingress,
  stream,
  shardId,
];

/** Where reading a shard goes on from, as stored. */
export type ShardPosition =
  | { readonly at: "trim-horizon" }
  /** Records that arrived at or after `ms` (the `latest` and `date` startup positions). */
  | { readonly at: "timestamp"; readonly ms: number }
  /**
   * After the record `seq`; with `sub`, only the user records of that aggregated record after
   * index `sub` are still to be read.
   */
  | { readonly at: "after"; readonly seq: string; readonly sub?: number }
  /** The shard is closed and was read to its end. */
  | { readonly at: "end" };

/** Kinesis allows 5 GetRecords calls per second per shard, shared by all its readers; Flink's default interval. */
const GET_RECORDS_INTERVAL_MS = 200;
/** Kinesis's maximum; a response is at most 10 MiB whatever the count. */
const GET_RECORDS_LIMIT = 10_000;
const RECORDS_PER_COMMIT = 500;
const SHARD_DISCOVERY_MS = 10_000;

export interface KinesisIngressSettings {
  readonly http: KinesisHttpSettings;
  /** clientConfigProperties Eddy does not use, named in a warning at start. */
  readonly ignored: readonly string[];
}

/**
 * The AWS ClientConfiguration properties StateFun passes to Flink's consumer that mean
 * something here; their defaults are the Java client's.
 */
export function kinesisIngressSettings(config: KinesisIngressConfig): Parsed<KinesisIngressSettings> {
  const properties = new ClientProperties(config.clientConfigProperties, `Kinesis ingress ${config.id}`);
  const connect = properties.integer("ConnectionTimeout", 10_000, 1, 2 ** 31 - 1, " of milliseconds");
  if (!connect.ok) return connect;
  const socket = properties.integer("SocketTimeout", 50_000, 0, 2 ** 31 - 1, " of milliseconds");
  if (!socket.ok) return socket;
  const request = properties.integer("RequestTimeout", 0, 0, 2 ** 31 - 1, " of milliseconds");
  if (!request.ok) return request;
  const connections = properties.integer("MaxConnections", 50, 1, 10_000);
  if (!connections.ok) return connections;
  const retries = properties.integer("MaxErrorRetry", 0, 0, 100);
  if (!retries.ok) return retries;
  return {
    ok: true,
    value: {
      http: {
        connectTimeoutMs: connect.value,
        socketTimeoutMs: socket.value,
        requestTimeoutMs: request.value,
        maxConnections: connections.value,
        maxAttempts: retries.value + 1,
      },
      ignored: properties.unread(),
    },
  };
}

/** One user record: a plain Kinesis record, or one of an aggregated record's. */
export interface RoutedRecord {
  readonly envelopes: readonly Envelope[];
  readonly rejected: RejectedRecord | undefined;
  /** The shard's position once this record is taken. */
  readonly position: ShardPosition;
}

/** Skip the user records of `seq` up to index `sub` (resuming inside an aggregated record). */
export interface ResumeInside {
  readonly seq: string;
  readonly sub: number;
}

/**
 * Messages, or a dead letter, for each user record in `records` (read from one shard, in
 * order), each with the shard position after it.
 */
export function routeRecords(
  config: KinesisIngressConfig,
  stream: string,
  shardId: string,
  records: readonly KinesisRecord[],
  resume?: ResumeInside,
): RoutedRecord[] {
  const route = config.streams.find((candidate) => candidate.stream === stream);
  if (route === undefined)
    throw new Error(`Kinesis ingress ${config.id} read stream ${stream}, which it does not declare`);
  const routed: RoutedRecord[] = [];
  for (const record of records) {
    const seq = record.SequenceNumber as string;
    const data = record.Data ?? new Uint8Array(0);
    const unpacked = deaggregate(data);
    const users =
      unpacked.kind === "aggregated"
        ? unpacked.records.map((user, sub) => ({ ...user, sub }))
        : [
            {
              partitionKey: record.PartitionKey,
              data,
              sub: undefined,
              problem:
                unpacked.kind === "malformed"
                  ? `is an aggregated (KPL) record that does not decode: ${unpacked.reason}`
                  : undefined,
            },
          ];
    const last = users.length - 1;
    let taken = 0;
    users.forEach((user, index) => {
      if (resume !== undefined && resume.seq === seq && user.sub !== undefined && user.sub <= resume.sub) return;
      taken++;
      const position: ShardPosition =
        index === last || user.sub === undefined ? { at: "after", seq } : { at: "after", seq, sub: user.sub };
      const argument = { typename: route.valueType, hasValue: true, value: user.data };
      let problem = user.problem;
      if (problem === undefined && (user.partitionKey === undefined || user.partitionKey === "")) {
        problem = "has an empty partition key (the partition key is the function id)";
      }
      if (problem !== undefined) {
        const where = `stream ${stream} shard ${shardId} sequence number ${seq}${user.sub === undefined ? "" : ` sub-record ${user.sub}`}`;
        routed.push({
          envelopes: [],
          rejected: {
            ingress: config.id,
            target: { typename: route.targets[0] as FunctionTypename, id: user.partitionKey ?? "" },
            argument,
            reason: `Kinesis ingress ${config.id}: the record at ${where} ${problem}`,
          },
          position,
        });
        return;
      }
      const id = user.partitionKey as string;
      routed.push({
        envelopes: route.targets.map((typename) => ({ target: { typename, id }, argument })),
        rejected: undefined,
        position,
      });
    });
    // Everything of the record was taken before the restart: only the position moves.
    if (taken === 0) routed.push({ envelopes: [], rejected: undefined, position: { at: "after", seq } });
  }
  return routed;
}

/** The records of one commit and the position they bring the shard to. */
interface Chunk {
  readonly envelopes: Envelope[];
  readonly rejected: RejectedRecord[];
  position: ShardPosition | undefined;
}

function chunks(routed: readonly RoutedRecord[], ended: boolean): Chunk[] {
  const result: Chunk[] = [];
  let current: Chunk = { envelopes: [], rejected: [], position: undefined };
  let count = 0;
  for (const record of routed) {
    current.envelopes.push(...record.envelopes);
    if (record.rejected !== undefined) current.rejected.push(record.rejected);
    current.position = record.position;
    if (++count >= RECORDS_PER_COMMIT) {
      result.push(current);
      current = { envelopes: [], rejected: [], position: undefined };
      count = 0;
    }
  }
  // The end is committed with the shard's last records, or alone.
  if (ended) current.position = { at: "end" };
  if (current.position !== undefined) result.push(current);
  return result;
}

/**
 * One stream's reading: for the ingress's life in the embedded mode; in a cluster, for one run
 * of the partition the stream is bound to.
 */
interface StreamReading {
  readonly stream: string;
  /** In a cluster: the partition the stream is bound to, the run read for, and its rows (where the positions are). */
  readonly bound: (SourceBound & { readonly rows: KV }) | undefined;
  /** Shards with a durable position, by id. */
  readonly shards: Map<string, ShardState>;
  /** The shards were listed once: shards that appear after that are read from their start. */
  looked: boolean;
  /** The partition moved or was reset since: its readers stop; the next listing starts a new reading. */
  dropped: boolean;
}

interface ShardState {
  readonly owner: StreamReading;
  readonly stream: string;
  readonly shardId: string;
  /** As the store has it durably. */
  position: ShardPosition;
  reading: Promise<void> | undefined;
  /**
   * The `latest` start chose this shard's position in this process: its first iterator is
   * LATEST. The stored position is the start time, so a restart before the first record
   * still reads from there (AT_TIMESTAMP), not from a later "latest".
   */
  latestFirst: boolean;
  lastCallAtMs: number;
}

/** Where a shard's reader is between two steps. */
interface ShardReading {
  iterator: string | undefined;
  /** Inside an aggregated record: the user records up to `sub` were taken already. */
  resume: ResumeInside | undefined;
  /** The next page, asked for while the last one commits. */
  prefetch: Promise<GetRecordsCommandOutput> | undefined;
}

export interface KinesisIngressOptions {
  readonly config: KinesisIngressConfig;
  readonly settings: KinesisIngressSettings;
  readonly log: Logger;
  /** For tests: the client to call instead of one made from the config. */
  readonly client?: KinesisClient;
  /** In a cluster: which partitions this worker runs; each stream is read only where its partition runs. */
  readonly binding?: SourceBinding | undefined;
}

export class KinesisIngress implements Connector {
  readonly #config: KinesisIngressConfig;
  readonly #log: Logger;
  readonly #client: KinesisClient;
  readonly #binding: SourceBinding | undefined;
  #unsubscribe: (() => void) | undefined;
  /** The current reading of each stream read here. */
  readonly #streams = new Map<string, StreamReading>();
  /** Every shard reader still running, of current readings and dropped ones. */
  readonly #readers = new Set<Promise<void>>();
  /** The last listing problem per stream, so each is reported once. */
  readonly #listErrors = new Map<string, string>();
  #closed = false;
  readonly #stop = new AbortController();
  #discovering: Promise<void> | undefined;
  #wakeDiscovery: (() => void) | undefined;
  /** A shard ended while the shards were being listed: list again at once. */
  #discoverAgain = false;
  /** What open() was given. */
  #opened: HostOf<SourceSink> | undefined;

  constructor(options: KinesisIngressOptions) {
    this.#config = options.config;
    this.#log = options.log;
    this.#binding = options.binding;
    this.#client = connectorClient(
      `Kinesis ingress ${options.config.id}`,
      options.config,
      options.settings,
      options.log,
      options.client,
    );
  }

  readonly egress = undefined;

  get id(): string {
    return this.#config.id;
  }

  /** What open() was given; a BugError before. */
  get #host(): HostOf<SourceSink> {
    if (this.#opened === undefined)
      throw new BugError(`Kinesis ingress ${this.#config.id} is used before it is opened`);
    return this.#opened;
  }

  /** Starts reading in the background; problems with Kinesis are logged and retried, a bug is fatal (onFatal). */
  async open(host: HostOf<SourceSink>): Promise<{ readonly urls: readonly string[] }> {
    this.#opened = host;
    // A partition this worker now runs (or no longer runs): look at once.
    this.#unsubscribe = this.#binding?.subscribe(() => this.#lookAgain());
    this.#discovering = this.#discoverLoop();
    return { urls: [] };
  }

  async close(): Promise<void> {
    this.#closed = true;
    this.#unsubscribe?.();
    this.#stop.abort();
    this.#wakeDiscovery?.();
    await this.#discovering;
    await Promise.all([...this.#readers]);
    this.#client.destroy();
  }

  /** Lists the shards again at once (or right after the listing under way). */
  #lookAgain(): void {
    this.#discoverAgain = true;
    this.#wakeDiscovery?.();
  }

  /**
   * The stream's current reading, undefined when the stream is bound to a partition another
   * worker runs. In a cluster a reading whose partition moved or was reset since is dropped
   * here, and a new one starts from the rows the partition holds now.
   */
  #currentReading(stream: string): StreamReading | undefined {
    const current = this.#streams.get(stream);
    if (this.#binding === undefined) {
      if (current !== undefined) return current;
      const reading: StreamReading = { stream, bound: undefined, shards: new Map(), looked: false, dropped: false };
      this.#streams.set(stream, reading);
      return reading;
    }
    const partition = kinesisSourcePartition(this.#config.id, stream, this.#binding.partitionCount);
    const run = this.#host.engine.sourceRun(partition);
    if (current !== undefined && !current.dropped && run !== undefined && current.bound?.run === run.run)
      return current;
    if (current !== undefined) {
      current.dropped = true;
      this.#streams.delete(stream);
      if (run === undefined) {
        this.#log.info(
          `Kinesis ingress ${this.#config.id}: stream ${stream} stops here (partition ${partition} runs elsewhere now)`,
        );
      }
    }
    if (run === undefined) return undefined;
    if (current === undefined) {
      this.#log.info(
        `Kinesis ingress ${this.#config.id}: reading stream ${stream} here (partition ${partition}), from the positions it holds`,
      );
    }
    const reading: StreamReading = {
      stream,
      bound: { partition, run: run.run, rows: run.rows },
      shards: new Map(),
      looked: false,
      dropped: false,
    };
    this.#streams.set(stream, reading);
    return reading;
  }

  /** A shard's position as the store (or in a cluster, the partition's rows) holds it. */
  #storedPosition(reading: StreamReading, shardId: string): ShardPosition | undefined {
    if (reading.bound === undefined) {
      return this.#host.store.get(positionKey(this.#config.id, reading.stream, shardId)) as ShardPosition | undefined;
    }
    return getRow(reading.bound.rows, tables.kinesisSourcePosition.key(this.#config.id, reading.stream, shardId));
  }

  /** Whether any shard of the stream has a stored position. */
  #hasPositions(reading: StreamReading): boolean {
    const stored =
      reading.bound === undefined
        ? this.#host.store.scan(["io", "kinesis-ingress", this.#config.id, reading.stream], { limit: 1 })
        : scanRows(reading.bound.rows, tables.kinesisSourcePosition.of(this.#config.id, reading.stream), { limit: 1 });
    return [...stored].length > 0;
  }

  /** Writes a shard's position into `kv`: the commit's connector tables, or in a cluster the partition's rows. */
  #putPosition(reading: StreamReading, shardId: string, position: ShardPosition, kv: KV): void {
    if (reading.bound === undefined) kv.put(positionKey(this.#config.id, reading.stream, shardId), position);
    else putRow(kv, tables.kinesisSourcePosition.key(this.#config.id, reading.stream, shardId), position);
  }

  /** What admitFromSource checks the partition's run against (undefined in the embedded mode). */
  #sourceBound(reading: StreamReading): SourceBound | undefined {
    return reading.bound === undefined ? undefined : { partition: reading.bound.partition, run: reading.bound.run };
  }

  async #discoverLoop(): Promise<void> {
    while (!this.#closed) {
      this.#discoverAgain = false;
      for (const { stream } of this.#config.streams) {
        if (this.#closed) return;
        try {
          await this.#discover(stream);
          if (this.#listErrors.delete(stream)) {
            this.#log.info(`Kinesis ingress ${this.#config.id}: stream ${stream} is readable again`);
          }
        } catch (error) {
          // Closing, or a commit failed and the engine stops (it says why): nothing more to look for.
          if (this.#closed || errorCode(error) === "stopping") return;
          if (!isRetriable(error)) {
            this.#host.onFatal(error);
            return;
          }
          // The new shards' positions were not committed: the next listing finds them new again.
          if (errorCode(error) === COMMIT_ABORTED) {
            this.#discoverAgain = true;
            continue;
          }
          const message = describe(error);
          if (errorName(error) === "ResourceNotFoundException") {
            const reading = this.#streams.get(stream);
            if (reading !== undefined) reading.looked = true;
          }
          if (this.#listErrors.get(stream) !== message) {
            this.#log.warn(
              `Kinesis ingress ${this.#config.id}: cannot list the shards of stream ${stream} (${message}); will look again`,
            );
            this.#listErrors.set(stream, message);
          }
        }
      }
      if (this.#discoverAgain) continue;
      await new Promise<void>((wake) => {
        const timer = setTimeout(wake, this.#listErrors.size > 0 ? 1_000 : SHARD_DISCOVERY_MS);
        this.#wakeDiscovery = () => {
          clearTimeout(timer);
          this.#wakeDiscovery = undefined;
          wake();
        };
      });
    }
  }

  /**
   * Lists the stream's shards. A shard without a stored position gets one, committed before
   * it is read: the startup position on the first listing of a stream Eddy has no position
   * for, else its start (a child of a split or merge). Shards whose parents are read to their
   * end (or are gone from the stream) are started.
   */
  async #discover(stream: string): Promise<void> {
    if (this.#currentReading(stream) === undefined) return;
    const shards = await this.#listShards(stream);
    // Taken after the listing: what the partition's rows hold now (it may have moved meanwhile).
    const reading = this.#currentReading(stream);
    if (reading === undefined) return;
    const startupApplies = !reading.looked && !this.#hasPositions(reading);
    const nowMs = Date.now();
    const fresh: ShardState[] = [];
    for (const shard of shards) {
      const shardId = shard.ShardId as string;
      if (reading.shards.has(shardId)) continue;
      const stored = this.#storedPosition(reading, shardId);
      const state: ShardState = {
        owner: reading,
        stream,
        shardId,
        position: stored ?? (startupApplies ? this.#startupPosition(shard, nowMs) : { at: "trim-horizon" }),
        reading: undefined,
        latestFirst: stored === undefined && startupApplies && this.#config.startupPosition.type === "latest",
        lastCallAtMs: 0,
      };
      if (stored === undefined) fresh.push(state);
      else reading.shards.set(shardId, state);
    }
    if (fresh.length > 0) {
      if (!(await this.#recordFresh(reading, fresh))) return;
      for (const state of fresh) reading.shards.set(state.shardId, state);
    }
    reading.looked = true;
    const listed = new Set(shards.map((shard) => shard.ShardId as string));
    for (const shard of shards) {
      const state = reading.shards.get(shard.ShardId as string);
      if (state === undefined || state.position.at === "end" || state.reading !== undefined || this.#closed) continue;
      const parents = [shard.ParentShardId, shard.AdjacentParentShardId].filter((id) => id !== undefined);
      const ready = parents.every((parent) => !listed.has(parent) || reading.shards.get(parent)?.position.at === "end");
      if (!ready) continue;
      const reader = this.#read(state).finally(() => {
        state.reading = undefined;
        this.#readers.delete(reader);
      });
      state.reading = reader;
      this.#readers.add(reader);
    }
  }

  /**
   * Commits the first positions of shards new to the reading; false when nothing was taken
   * (the runtime is stopping, or in a cluster the partition moved: the next listing looks again).
   */
  async #recordFresh(reading: StreamReading, fresh: readonly ShardState[]): Promise<boolean> {
    const record = (kv: KV) => {
      for (const state of fresh) this.#putPosition(reading, state.shardId, state.position, kv);
    };
    if (reading.bound === undefined) {
      await this.#host.engine.transact(record);
      return true;
    }
    const accepted = await this.#host.engine.acceptFromSource([], record, [], this.#sourceBound(reading));
    if (accepted.ok) return true;
    if (accepted.code === "moved") reading.dropped = true;
    else if (accepted.code !== "stopping")
      throw new BugError(`Kinesis ingress ${this.#config.id}: ${accepted.message}`);
    return false;
  }

  /** Where a shard listed at the first start begins; a closed shard has nothing after `latest`. */
  #startupPosition(shard: Shard, nowMs: number): ShardPosition {
    const startup = this.#config.startupPosition;
    if (startup.type === "earliest") return { at: "trim-horizon" };
    if (startup.type === "date") return { at: "timestamp", ms: startup.epochMs };
    return shard.SequenceNumberRange?.EndingSequenceNumber === undefined
      ? { at: "timestamp", ms: nowMs }
      : { at: "end" };
  }

  async #listShards(stream: string): Promise<Shard[]> {
    const shards: Shard[] = [];
    let nextToken: string | undefined;
    do {
      const page = await this.#client.send(
        new ListShardsCommand(nextToken === undefined ? { StreamName: stream } : { NextToken: nextToken }),
        { abortSignal: this.#stop.signal },
      );
      shards.push(...(page.Shards ?? []));
      nextToken = page.NextToken;
    } while (nextToken !== undefined);
    return shards.sort((a, b) => ((a.ShardId as string) < (b.ShardId as string) ? -1 : 1));
  }

  /**
   * Reads one shard until it ends, the ingress closes, or the shard is gone. Failures are
   * retried (supervised-loop.ts) from a fresh iterator at the durable position; a bug stops
   * the runtime (onFatal).
   */
  #read(state: ShardState): Promise<void> {
    const where = `Kinesis ingress ${this.#config.id}: stream ${state.stream} shard ${state.shardId}`;
    const reading: ShardReading = { iterator: undefined, resume: undefined, prefetch: undefined };
    return runSupervised(where, () => this.#readStep(state, reading), {
      log: this.#log,
      signal: this.#stop.signal,
      onFatal: this.#host.onFatal,
      recovered: "reads again",
      // Throttling, an expired iterator and an aborted commit are not trouble with Kinesis: no "retrying" line.
      describe: (error) => {
        const name = errorName(error) ?? "";
        const code = errorCode(error);
        const quiet =
          THROTTLING.has(name) || name === "ExpiredIteratorException" || code === COMMIT_ABORTED || code === "stopping";
        return quiet ? undefined : describe(error);
      },
      afterFailure: (error) => {
        reading.prefetch = undefined;
        // A commit failed and the engine stops (it says why): reading on is for nothing.
        if (errorCode(error) === "stopping") return "stop";
        if (errorCode(error) === COMMIT_ABORTED && state.owner.bound !== undefined) {
          // The partition was reset: this reading is over; the next listing starts from its rows.
          state.owner.dropped = true;
          this.#lookAgain();
          return "stop";
        }
        if (errorCode(error) === COMMIT_ABORTED) {
          // The engine undid the commit (a fence, a rebalance): back to the position the store holds.
          const stored = this.#host.store.get(positionKey(this.#config.id, state.stream, state.shardId));
          if (stored !== undefined) state.position = stored as ShardPosition;
          reading.iterator = undefined;
          this.#log.info(
            `${where}: a commit was aborted (${errorMessage(error)}); reading again from the position the store holds`,
          );
          return "retry";
        }
        const name = errorName(error);
        if (name === "ResourceNotFoundException") {
          this.#log.warn(`${where}: ${describe(error)}; looking for the stream's shards again`);
          return "stop";
        }
        // What was read but is not durable is read again, from a fresh iterator.
        reading.iterator = undefined;
        return name === "ExpiredIteratorException" ? "retry-now" : "retry";
      },
    });
  }

  /** One page of a shard: read, committed with the shard's new position. */
  async #readStep(state: ShardState, reading: ShardReading): Promise<StepResult> {
    if (state.owner.dropped) return "done";
    if (reading.iterator === undefined) {
      const start = this.#iteratorStart(state);
      reading.resume = start.resume;
      reading.iterator = await this.#shardIterator(state, start.input);
    }
    const page = await (reading.prefetch ?? this.#getRecords(state, reading.iterator));
    reading.prefetch = undefined;
    if (this.#closed || state.owner.dropped) return "done";
    const records = page.Records ?? [];
    const next = page.NextShardIterator ?? undefined;
    const routed = routeRecords(this.#config, state.stream, state.shardId, records, reading.resume);
    // Kinesis may answer a page without records before the one holding the record resumed in.
    if (records.length > 0) reading.resume = undefined;
    // The next read goes out while these records commit.
    if (next !== undefined && records.length > 0) {
      reading.prefetch = this.#getRecords(state, next);
      reading.prefetch.catch(() => undefined);
    }
    for (const chunk of chunks(routed, next === undefined)) {
      if (!(await this.#accept(state, chunk))) return "done";
    }
    if (next === undefined) {
      // Closed and read to its end: its children may start now.
      this.#discoverAgain = true;
      this.#wakeDiscovery?.();
      return "done";
    }
    reading.iterator = next;
    return undefined;
  }

  /** The GetShardIterator request for the shard's durable position. */
  #iteratorStart(state: ShardState): { input: GetShardIteratorCommandInput; resume: ResumeInside | undefined } {
    const base = { StreamName: state.stream, ShardId: state.shardId };
    const position = state.position;
    if (state.latestFirst && position.at === "timestamp") {
      state.latestFirst = false;
      return { input: { ...base, ShardIteratorType: "LATEST" }, resume: undefined };
    }
    switch (position.at) {
      case "trim-horizon":
        return { input: { ...base, ShardIteratorType: "TRIM_HORIZON" }, resume: undefined };
      case "timestamp":
        return {
          input: { ...base, ShardIteratorType: "AT_TIMESTAMP", Timestamp: new Date(position.ms) },
          resume: undefined,
        };
      case "after":
        return position.sub === undefined
          ? {
              input: { ...base, ShardIteratorType: "AFTER_SEQUENCE_NUMBER", StartingSequenceNumber: position.seq },
              resume: undefined,
            }
          : {
              input: { ...base, ShardIteratorType: "AT_SEQUENCE_NUMBER", StartingSequenceNumber: position.seq },
              resume: { seq: position.seq, sub: position.sub },
            };
      case "end":
        throw new BugError(`${state.stream}/${state.shardId} is read to its end; it has no iterator`);
    }
  }

  async #shardIterator(state: ShardState, input: GetShardIteratorCommandInput): Promise<string> {
    const answer = await this.#client.send(new GetShardIteratorCommand(input), { abortSignal: this.#stop.signal });
    if (answer.ShardIterator === undefined)
      throw new Error(`GetShardIterator for ${state.shardId} returned no iterator`);
    return answer.ShardIterator;
  }

  /** One GetRecords call, at most one per GET_RECORDS_INTERVAL_MS per shard. */
  async #getRecords(state: ShardState, iterator: string): Promise<GetRecordsCommandOutput> {
    const waitMs = state.lastCallAtMs + GET_RECORDS_INTERVAL_MS - Date.now();
    if (waitMs > 0) await sleep(waitMs, undefined, { signal: this.#stop.signal });
    state.lastCallAtMs = Date.now();
    return this.#client.send(new GetRecordsCommand({ ShardIterator: iterator, Limit: GET_RECORDS_LIMIT }), {
      abortSignal: this.#stop.signal,
    });
  }

  /** Commits a chunk with the shard's new position; false when nothing more is to be read here (stopping, moved). */
  async #accept(state: ShardState, chunk: Chunk): Promise<boolean> {
    const position = chunk.position as ShardPosition;
    const owner = state.owner;
    const accepted = await this.#host.engine.acceptFromSource(
      chunk.envelopes,
      (kv) => this.#putPosition(owner, state.shardId, position, kv),
      chunk.rejected,
      this.#sourceBound(owner),
    );
    if (!accepted.ok) {
      if (accepted.code === "stopping") return false;
      if (accepted.code === "moved") {
        // The partition moved or was reset since this reading began: its next reading goes on from its rows.
        owner.dropped = true;
        this.#lookAgain();
        return false;
      }
      // Targets are checked against the module at start.
      throw new BugError(`Kinesis ingress ${this.#config.id}: ${accepted.message}`);
    }
    state.position = position;
    for (const letter of chunk.rejected) this.#log.warn(`dead letter: ${letter.reason}`);
    return true;
  }
}
