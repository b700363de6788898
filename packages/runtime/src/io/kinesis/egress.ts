// StateFun's Kinesis egress (io.statefun.kinesis.v1/egress). Functions send a
// KinesisEgressRecord (stream, partition key, value bytes, optional explicit hash key).
// At-least-once, as StateFun's: Kinesis has no transactions. A record stays in Eddy's outbox
// (durable since the commit that produced it) until Kinesis acknowledged it, so a crash
// before that sends it again after the restart: nothing is lost, duplicates are possible.
// Records go out with PutRecords, one call in flight, at most 500 records, 5 MiB and
// maxOutstandingRecords per call; the entries Kinesis fails (throttling, internal errors)
// are sent again, in order, before anything newer. A record Kinesis could never take (wrong
// typename, undecodable, bad stream name, partition key or hash key, over 1 MiB, a stream
// that does not exist) becomes a dead letter with the reason. With checkpoints and
// --ack-after-checkpoint, a call goes out only once a checkpoint holds its records, so a
// restore after a lost disk never takes back work whose output Kinesis already has.
import { type KinesisClient, PutRecordsCommand, type PutRecordsRequestEntry } from "@aws-sdk/client-kinesis";
import { decodeKinesisEgressRecord, KINESIS_EGRESS_RECORD_TYPENAME } from "@eddy/protocol";
import { STREAM_NAME } from "../../config/kinesis.ts";
import type { KinesisEgressConfig } from "../../config/types.ts";
import type { KV } from "../../core/kv.ts";
import type { OutboxEntry } from "../../core/records.ts";
import type { EgressConnector, EgressSettlement } from "../../engine/ports.ts";
import { EddyError, errorCode, errorMessage, isRetriable } from "../../errors.ts";
import type { Logger } from "../../observe/logger.ts";
import type { Connector, HostOf } from "../connector.ts";
import { decodeEgressMessage } from "../egress-message.ts";
import { runSupervised, type StepResult } from "../supervised-loop.ts";
import { Wakeup } from "../wakeup.ts";
import {
  ClientProperties,
  connectorClient,
  describe,
  errorName,
  type KinesisHttpSettings,
  type Parsed,
  THROTTLING,
} from "./client.ts";

/** Kinesis's limits on one record (data plus partition key) and on one PutRecords call. */
export const RECORD_BYTES_MAX = 1024 * 1024;
const PUT_RECORDS_COUNT_MAX = 500;
const PUT_RECORDS_BYTES_MAX = 5 * 1024 * 1024;
const PARTITION_KEY_LENGTH_MAX = 256;
const HASH_KEY_MAX = 2n ** 128n - 1n;
/** The codes of the error a step fails with when Kinesis did not take every record (with a line, or quietly). */
const NOT_TAKEN = "kinesis-records-not-taken";
const NOT_TAKEN_QUIETLY = "kinesis-records-throttled";

export interface KinesisEgressSettings {
  readonly http: KinesisHttpSettings;
  /** Records per PutRecords call: the KPL's CollectionMaxCount and maxOutstandingRecords, at most 500. */
  readonly recordsPerCall: number;
  /** Bytes per PutRecords call (CollectionMaxSize), at most 5 MiB. */
  readonly bytesPerCall: number;
  /** clientConfigProperties Eddy does not use, named in a warning at start. */
  readonly ignored: readonly string[];
}

/** The KPL properties StateFun passes to its producer that mean something here; their defaults are the KPL's. */
export function kinesisEgressSettings(config: KinesisEgressConfig): Parsed<KinesisEgressSettings> {
  const properties = new ClientProperties(config.clientConfigProperties, `Kinesis egress ${config.id}`);
  const request = properties.integer("RequestTimeout", 6_000, 100, 600_000, " of milliseconds");
  if (!request.ok) return request;
  const connect = properties.integer("ConnectTimeout", 6_000, 100, 300_000, " of milliseconds");
  if (!connect.ok) return connect;
  const connections = properties.integer("MaxConnections", 24, 1, 256);
  if (!connections.ok) return connections;
  const count = properties.integer("CollectionMaxCount", PUT_RECORDS_COUNT_MAX, 1, PUT_RECORDS_COUNT_MAX);
  if (!count.ok) return count;
  const size = properties.integer("CollectionMaxSize", PUT_RECORDS_BYTES_MAX, 1, PUT_RECORDS_BYTES_MAX, " of bytes");
  if (!size.ok) return size;
  return {
    ok: true,
    value: {
      http: {
        connectTimeoutMs: connect.value,
        socketTimeoutMs: 0,
        requestTimeoutMs: request.value,
        maxConnections: connections.value,
        maxAttempts: 1,
      },
      recordsPerCall: Math.min(count.value, config.maxOutstandingRecords),
      bytesPerCall: size.value,
      ignored: properties.unread(),
    },
  };
}

/** A record as PutRecords takes it. */
export interface EgressRecord {
  readonly stream: string;
  readonly partitionKey: string;
  readonly data: Uint8Array;
  /** Undefined: Kinesis hashes the partition key. */
  readonly explicitHashKey: string | undefined;
  /** What the record counts against Kinesis's limits: data plus the partition key's UTF-8 bytes. */
  readonly bytes: number;
}

/** A KinesisEgressRecord ready to send, or why Kinesis could never take it. */
export function egressRecord(entry: OutboxEntry): { ok: true; record: EgressRecord } | { ok: false; reason: string } {
  const decoded = decodeEgressMessage(
    entry.value,
    { typename: KINESIS_EGRESS_RECORD_TYPENAME, egress: "a Kinesis egress", record: "KinesisEgressRecord" },
    decodeKinesisEgressRecord,
  );
  if (!decoded.ok) return decoded;
  const { stream, partitionKey, valueBytes, explicitHashKey } = decoded.value;
  if (!STREAM_NAME.test(stream)) {
    return {
      ok: false,
      reason: `stream ${JSON.stringify(stream)} is not a Kinesis stream name (1–128 of a-z, A-Z, 0-9, '_', '.', '-')`,
    };
  }
  if (partitionKey.length === 0 || partitionKey.length > PARTITION_KEY_LENGTH_MAX) {
    return {
      ok: false,
      reason: `the partition key has ${partitionKey.length} characters; Kinesis takes 1 to ${PARTITION_KEY_LENGTH_MAX}`,
    };
  }
  if (
    explicitHashKey !== "" &&
    (!/^(0|[1-9]\d{0,38})$/.test(explicitHashKey) || BigInt(explicitHashKey) > HASH_KEY_MAX)
  ) {
    return {
      ok: false,
      reason: `explicit hash key ${JSON.stringify(explicitHashKey)} is not a whole number from 0 to 2^128-1`,
    };
  }
  const bytes = valueBytes.byteLength + Buffer.byteLength(partitionKey);
  if (bytes > RECORD_BYTES_MAX) {
    return {
      ok: false,
      reason: `the record has ${bytes} bytes (data and partition key), more than Kinesis's ${RECORD_BYTES_MAX}`,
    };
  }
  return {
    ok: true,
    record: {
      stream,
      partitionKey,
      data: valueBytes,
      explicitHashKey: explicitHashKey === "" ? undefined : explicitHashKey,
      bytes,
    },
  };
}

function toEntry(record: EgressRecord): PutRecordsRequestEntry {
  return {
    PartitionKey: record.partitionKey,
    Data: record.data,
    ...(record.explicitHashKey === undefined ? {} : { ExplicitHashKey: record.explicitHashKey }),
  };
}

interface Waiting {
  readonly record: EgressRecord;
  readonly settle: EgressSettlement;
}

export interface KinesisEgressOptions {
  readonly config: KinesisEgressConfig;
  readonly settings: KinesisEgressSettings;
  readonly log: Logger;
  /** For tests: the client to call instead of one made from the config. */
  readonly client?: KinesisClient;
}

export class KinesisEgress implements EgressConnector, Connector {
  readonly egressIds: readonly string[];
  readonly egress: EgressConnector = this;
  readonly #config: KinesisEgressConfig;
  readonly #settings: KinesisEgressSettings;
  readonly #log: Logger;
  readonly #client: KinesisClient;
  /** Set by open(): see HostOf.checkpointed. */
  #checkpointed: (() => Promise<void>) | undefined;
  /** Records handed over and not yet acknowledged by Kinesis (their outbox entries hold them durably). */
  #waiting: Waiting[] = [];
  /**
   * Records at the head of #waiting to send one per call: Kinesis refused a whole call as
   * invalid, and sending them alone finds the one it will never take.
   */
  #isolating = 0;
  #closed = false;
  readonly #wakeup = new Wakeup();
  #running: Promise<void> | undefined;
  readonly #stop = new AbortController();
  /** Set by open(), before which nothing runs that could fail. */
  #onFatal: ((error: unknown) => void) | undefined;

  constructor(options: KinesisEgressOptions) {
    this.#config = options.config;
    this.egressIds = [options.config.id];
    this.#settings = options.settings;
    this.#log = options.log;
    this.#client = connectorClient(
      `Kinesis egress ${options.config.id}`,
      options.config,
      options.settings,
      options.log,
      options.client,
    );
  }

  get id(): string {
    return this.#config.id;
  }

  /** Starts publishing in the background (failures are logged and retried; a bug is fatal). It keeps nothing in Eddy's store. */
  async open(host: HostOf<unknown>): Promise<{ readonly urls: readonly string[] }> {
    this.#onFatal = host.onFatal;
    this.#checkpointed = host.checkpointed;
    this.#running = this.#run();
    return { urls: [] };
  }

  deliver(entry: OutboxEntry, _transaction: KV, settle: EgressSettlement): void {
    const checked = egressRecord(entry);
    if (!checked.ok) {
      settle.rejected(checked.reason);
      return;
    }
    this.#waiting.push({ record: checked.record, settle });
    this.#wakeup.wake();
  }

  async close(): Promise<void> {
    this.#closed = true;
    this.#stop.abort();
    this.#wakeup.wake();
    await this.#running;
    this.#client.destroy();
  }

  /**
   * Sends until closed, one call at a time. Records Kinesis did not take go first in line
   * again and the step fails, so the supervised loop (supervised-loop.ts) backs off before
   * the next call; a bug stops the runtime (onFatal).
   */
  #run(): Promise<void> {
    return runSupervised(`Kinesis egress ${this.#config.id}`, () => this.#step(), {
      log: this.#log,
      signal: this.#stop.signal,
      onFatal: (error) => this.#onFatal?.(error),
      recovered: "publishes again",
      // Throttled records are Kinesis working as it should: they wait, without a line.
      describe: (error) => (errorCode(error) === NOT_TAKEN_QUIETLY ? undefined : errorMessage(error)),
    });
  }

  async #step(): Promise<StepResult> {
    await this.#idle();
    if (this.#checkpointed !== undefined) await this.#checkpointed();
    if (this.#closed) return "done";
    const batch = this.#takeBatch();
    let retry: NotTaken;
    try {
      retry = await this.#put(batch);
    } catch (error) {
      if (this.#closed) return "done";
      retry = this.#callFailed(batch, error);
    }
    if (retry.records.length === 0) return undefined;
    // Not acknowledged: first in line again, in their order.
    this.#waiting.unshift(...retry.records);
    throw retry.cause === undefined
      ? new EddyError(NOT_TAKEN_QUIETLY, "throttled", { retriable: true })
      : new EddyError(NOT_TAKEN, retry.cause, { retriable: true });
  }

  async #idle(): Promise<void> {
    if (this.#waiting.length > 0 || this.#closed) return;
    await this.#wakeup.wait();
  }

  /**
   * Takes the next call's records out of #waiting: the oldest record's stream, in order, up to
   * the call's count and bytes (one record alone when isolating). A record of that stream
   * that does not fit ends the batch, so none overtakes another of its stream.
   */
  #takeBatch(): Waiting[] {
    const stream = (this.#waiting[0] as Waiting).record.stream;
    const maxCount = this.#isolating > 0 ? 1 : this.#settings.recordsPerCall;
    const batch: Waiting[] = [];
    const rest: Waiting[] = [];
    let bytes = 0;
    let full = false;
    for (const waiting of this.#waiting) {
      if (full || waiting.record.stream !== stream) {
        rest.push(waiting);
        continue;
      }
      if (
        batch.length > 0 &&
        (batch.length >= maxCount || bytes + waiting.record.bytes > this.#settings.bytesPerCall)
      ) {
        full = true;
        rest.push(waiting);
        continue;
      }
      batch.push(waiting);
      bytes += waiting.record.bytes;
    }
    this.#waiting = rest;
    if (this.#isolating > 0) this.#isolating--;
    return batch;
  }

  /** One PutRecords call; returns the records Kinesis did not take, to send again, and why. */
  async #put(batch: readonly Waiting[]): Promise<NotTaken> {
    const stream = (batch[0] as Waiting).record.stream;
    const answer = await this.#client.send(
      new PutRecordsCommand({ StreamName: stream, Records: batch.map((waiting) => toEntry(waiting.record)) }),
      { abortSignal: this.#stop.signal },
    );
    const results = answer.Records ?? [];
    if (results.length !== batch.length) {
      throw new Error(`PutRecords to ${stream} answered ${results.length} results for ${batch.length} records`);
    }
    const failed: Waiting[] = [];
    let firstFailure: string | undefined;
    batch.forEach((waiting, index) => {
      const result = results[index];
      if (result?.ErrorCode === undefined) {
        waiting.settle.delivered();
        return;
      }
      failed.push(waiting);
      if (!THROTTLING.has(result.ErrorCode)) firstFailure ??= `${result.ErrorCode}: ${result.ErrorMessage ?? ""}`;
    });
    if (firstFailure === undefined) return { records: failed, cause: undefined };
    return {
      records: failed,
      cause: `${failed.length} of ${batch.length} records to ${stream} failed (${firstFailure})`,
    };
  }

  /** A whole call failed: what to send again (the rest was refused as dead letters), and why. */
  #callFailed(batch: readonly Waiting[], error: unknown): NotTaken {
    if (!isRetriable(error)) throw error;
    const stream = (batch[0] as Waiting).record.stream;
    const name = errorName(error);
    if (name === "ResourceNotFoundException") {
      // Sending would fail forever; the letters can be replayed once the stream exists.
      const refused = [...batch, ...this.#waiting.filter((waiting) => waiting.record.stream === stream)];
      this.#waiting = this.#waiting.filter((waiting) => waiting.record.stream !== stream);
      for (const waiting of refused) waiting.settle.rejected(`stream ${stream} does not exist (${describe(error)})`);
      return { records: [], cause: undefined };
    }
    if (name === "InvalidArgumentException" || name === "ValidationException") {
      if (batch.length === 1) {
        (batch[0] as Waiting).settle.rejected(`Kinesis refused the record: ${describe(error)}`);
        return { records: [], cause: undefined };
      }
      // Sent again one per call to find the one Kinesis will never take: no trouble to report.
      this.#isolating = batch.length;
      return { records: [...batch], cause: undefined };
    }
    const cause = THROTTLING.has(name ?? "") ? undefined : `PutRecords to ${stream}: ${describe(error)}`;
    return { records: [...batch], cause };
  }
}

/** Records a call did not get out, and the trouble to report (undefined: throttling, or nothing to report). */
interface NotTaken {
  readonly records: Waiting[];
  readonly cause: string | undefined;
}
