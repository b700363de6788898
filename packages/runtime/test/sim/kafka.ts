// A simulated Apache Kafka for Eddy's deterministic cluster simulation: the broker semantics
// Eddy's cluster mode relies on for exactly-once, as pure in-memory state driven by method
// calls. Every call carries the current time; nothing happens between calls except what time
// makes happen (expire()). No timers and no randomness inside: the simulation's seeded random
// decides faults from outside (which calls are made, lost, delayed, or never made).
//
// The API follows Kafka's protocol operations (InitProducerId, Produce, AddOffsetsToTxn,
// TxnOffsetCommit, EndTxn, Fetch, ListOffsets, DeleteRecords, OffsetFetch, JoinGroup, SyncGroup,
// Heartbeat, LeaveGroup), so that an implementation over @platformatic/kafka can share its shape.
// Protocol errors are values with Kafka's error names and its retriable flags (kafka-errors.ts);
// a throw is a caller's bug (time going backwards, producing outside a transaction…).
//
// Modelled:
// - topics of N partitions; offsets; one log per partition (kafka-log.ts) where commit/abort
//   markers take an offset each;
// - plain produce (no producer id) and transactional produce, only inside a transaction;
// - InitProducerId per transactional id: a producer id and an epoch; a new call bumps the epoch and
//   aborts the open transaction of the previous incarnation, whose later calls fail PRODUCER_FENCED
//   (at the transaction coordinator) or INVALID_PRODUCER_EPOCH (at the partition leader, Produce);
// - transactions: the first Produce (AddPartitionsToTxn is folded into it) or AddOffsetsToTxn
//   starts the broker-side transaction and its timeout; records are invisible to read_committed
//   readers until the commit; a partition's last stable offset stops at the first record of its
//   earliest open transaction; aborted records are skipped by read_committed readers;
// - TxnOffsetCommit checked as Kafka's group coordinator does (FENCED_INSTANCE_ID, UNKNOWN_MEMBER_ID,
//   ILLEGAL_GENERATION, generation -1 / member "" skip the check); pending offsets become the group's
//   committed offsets at commit and vanish at abort;
// - a transaction in which a call failed can only be aborted: EndTxn(commit) answers
//   INVALID_TXN_STATE (as Kafka's Java client does) and is listed in clientErrors(), since a real
//   coordinator would commit it and a committer that tries is a bug;
// - transaction timeout: the broker aborts a transaction open longer than its timeout (at the
//   deadline, or at the next sweep when transactionAbortSweepMs is set) and bumps the epoch, so the
//   producer's next call fails fenced; abortTransaction() injects the same abort as a fault;
// - Fetch (read_committed up to the LSO, read_uncommitted up to the high watermark), ListOffsets
//   (earliest, latest per isolation), DeleteRecords (log start offset moves; fetching below it
//   fails OFFSET_OUT_OF_RANGE);
// - OffsetFetch with require_stable: UNSTABLE_OFFSET_COMMIT (retriable) per partition with a pending
//   transactional offset until that transaction ends;
// - a classic consumer group (kafka-group.ts): MEMBER_ID_REQUIRED for new dynamic members, join
//   rounds that complete when every member rejoined or the rebalance timeout passed (the absent are
//   dropped), a leader that receives every member's metadata and hands out assignments in
//   SyncGroup, generations, heartbeats answering REBALANCE_IN_PROGRESS during a round, session
//   timeouts, LeaveGroup, static membership (a rejoin with the same instance id replaces the member
//   id and fences the old one with FENCED_INSTANCE_ID, with no rebalance in a stable group).
//
// Deliberately left out: replication, ISR, acks and leader elections (one broker: high watermark =
// log end offset); several brokers and coordinator lookup (FindCoordinator, NOT_COORDINATOR); the
// network (a lost or slow request is the simulation not calling, or calling later); idempotent
// producer sequence numbers and duplicates; CONCURRENT_TRANSACTIONS while an abort completes
// (aborts complete at once); markers written after EndTxn answers (an end is written whole at
// once, so the transactions of a worker's two producers never end out of order here; the
// group's rule for that case is modelled all the same, in kafka-group.ts endTransaction); epoch
// exhaustion; quotas, throttling, byte limits, compression, record batches, compaction and
// time-based retention; the initial rebalance delay; several protocols per member (one name,
// chosen by the first member); plain OffsetCommit; KIP-848 groups; ACLs.
import { BugError } from "../../src/errors.ts";
import { type KafkaFailure, type KafkaResult, kafkaError, ok } from "./kafka-errors.ts";
import {
  ConsumerGroup,
  type GenerationRecord,
  type JoinGroupFailure,
  type JoinGroupRequest,
  type JoinGroupResponse,
  type MemberRequest,
  type OffsetFetchPartition,
  type PartitionOffset,
  type SyncGroupRequest,
  type SyncGroupResponse,
  type TopicPartition,
  tpKey,
} from "./kafka-group.ts";
import { type FetchResponse, type Isolation, PartitionLog, type RecordInput, type TxnMark } from "./kafka-log.ts";

export type { KafkaErrorCode, KafkaFailure, KafkaResult } from "./kafka-errors.ts";
export type {
  GenerationRecord,
  JoinGroupFailure,
  JoinGroupMember,
  JoinGroupRequest,
  JoinGroupResponse,
  MemberRequest,
  OffsetFetchPartition,
  PartitionOffset,
  SyncGroupRequest,
  SyncGroupResponse,
  TopicPartition,
} from "./kafka-group.ts";
export type { FetchedRecord, FetchResponse, Isolation, RecordHeader, RecordInput } from "./kafka-log.ts";

export interface SimKafkaOptions {
  /** group.min.session.timeout.ms (Kafka's default 6,000). */
  readonly sessionTimeoutMsMin?: number;
  /** group.max.session.timeout.ms (Kafka's default 1,800,000). */
  readonly sessionTimeoutMsMax?: number;
  /** transaction.max.timeout.ms (Kafka's default 900,000). */
  readonly transactionTimeoutMsMax?: number;
  /** transaction.abort.timed.out.transaction.cleanup.interval.ms; 0 (default) aborts exactly at the deadline. */
  readonly transactionAbortSweepMs?: number;
  /** Records per fetch when the request names no limit. */
  readonly fetchRecordsMax?: number;
}

/** What a transactional producer sends with every request. */
export interface ProducerIdentity {
  readonly transactionalId: string;
  readonly producerId: number;
  readonly producerEpoch: number;
}

export interface OffsetCommitRecord {
  readonly groupId: string;
  readonly generationId: number;
  readonly memberId: string;
  readonly offsets: readonly PartitionOffset[];
}

export interface TransactionPartition extends TopicPartition {
  readonly firstOffset: number;
  readonly recordCount: number;
}

/** One ended transaction, for the simulation's invariant checks. */
export interface TransactionRecord {
  readonly transactionalId: string;
  readonly producerId: number;
  readonly producerEpoch: number;
  readonly outcome: "committed" | "aborted";
  /** client: EndTxn; timeout: the broker's sweep; fenced: a newer InitProducerId; injected: abortTransaction(). */
  readonly endedBy: "client" | "timeout" | "fenced" | "injected";
  readonly startedAtMs: number;
  readonly endedAtMs: number;
  readonly records: readonly TransactionPartition[];
  /** Accepted TxnOffsetCommits, each with the generation it was checked against. */
  readonly offsetCommits: readonly OffsetCommitRecord[];
  /** Each group's generation when the transaction ended (it may have moved on since the check). */
  readonly groupGenerationsAtEnd: ReadonlyMap<string, number>;
}

interface OpenTransaction {
  readonly mark: TxnMark;
  readonly startedAtMs: number;
  readonly partitions: Map<
    string,
    { log: PartitionLog; topic: string; partition: number; firstOffset: number; recordCount: number }
  >;
  readonly groups: Set<string>;
  readonly offsetCommits: OffsetCommitRecord[];
}

/** The transaction coordinator's entry for one transactional id, plus its current client's transaction state. */
interface TransactionalProducer {
  readonly transactionalId: string;
  readonly producerId: number;
  epoch: number;
  timeoutMs: number;
  /** The current incarnation called beginTransaction and has not ended it. */
  inTransaction: boolean;
  /** The first failed call of the current transaction: only an abort may follow. */
  failed: KafkaFailure | null;
  open: OpenTransaction | null;
}

const NO_PRODUCER = -1;
const EXPIRE_STEPS_MAX = 1_000_000;

export class SimKafka {
  readonly #options: Required<SimKafkaOptions>;
  #nowMs = 0;
  readonly #topics = new Map<string, PartitionLog[]>();
  readonly #producers = new Map<string, TransactionalProducer>();
  readonly #groups = new Map<string, ConsumerGroup>();
  readonly #ended: TransactionRecord[] = [];
  readonly #clientErrors: string[] = [];
  #nextProducerId = 1000;

  constructor(options: SimKafkaOptions = {}) {
    this.#options = {
      sessionTimeoutMsMin: options.sessionTimeoutMsMin ?? 6_000,
      sessionTimeoutMsMax: options.sessionTimeoutMsMax ?? 1_800_000,
      transactionTimeoutMsMax: options.transactionTimeoutMsMax ?? 900_000,
      transactionAbortSweepMs: options.transactionAbortSweepMs ?? 0,
      fetchRecordsMax: options.fetchRecordsMax ?? 500,
    };
  }

  get nowMs(): number {
    return this.#nowMs;
  }

  /**
   * Lets time pass to `nowMs`: transactions past their timeout abort, members past their session
   * timeout leave, rounds past their rebalance timeout complete, each at its own moment in order.
   * Every other call does this first with its own time.
   */
  expire(nowMs: number): void {
    if (!Number.isFinite(nowMs) || nowMs < this.#nowMs) {
      throw new BugError(`SimKafka: time went from ${this.#nowMs} back to ${nowMs}`);
    }
    for (let step = 0; ; step++) {
      if (step >= EXPIRE_STEPS_MAX) throw new BugError("SimKafka.expire: no progress");
      const dueMs = this.#nextDeadlineMs();
      if (dueMs > nowMs) break;
      this.#nowMs = Math.max(this.#nowMs, dueMs);
      for (const producer of this.#producers.values()) {
        if (producer.open !== null && this.#transactionDeadlineMs(producer) <= this.#nowMs) {
          this.#fence(producer, "timeout");
        }
      }
      for (const group of this.#groups.values()) if (group.nextDeadlineMs() <= this.#nowMs) group.expire(this.#nowMs);
    }
    this.#nowMs = nowMs;
  }

  // ---- topics ----

  createTopic(nowMs: number, topic: string, partitions: number): KafkaResult<void> {
    this.expire(nowMs);
    if (this.#topics.has(topic)) return kafkaError("TOPIC_ALREADY_EXISTS", `topic ${topic} already exists`);
    if (!Number.isSafeInteger(partitions) || partitions < 1) {
      return kafkaError("INVALID_PARTITIONS", `a topic needs at least one partition, not ${partitions}`);
    }
    this.#topics.set(
      topic,
      Array.from({ length: partitions }, () => new PartitionLog()),
    );
    return ok(undefined);
  }

  /** Metadata: the topic's partition count, or null when it does not exist. */
  partitionCount(topic: string): number | null {
    return this.#topics.get(topic)?.length ?? null;
  }

  // ---- producers and transactions ----

  initProducerId(nowMs: number, transactionalId: string, transactionTimeoutMs: number): KafkaResult<ProducerIdentity> {
    this.expire(nowMs);
    if (!(transactionTimeoutMs > 0) || transactionTimeoutMs > this.#options.transactionTimeoutMsMax) {
      return kafkaError(
        "INVALID_TRANSACTION_TIMEOUT",
        `transaction timeout ${transactionTimeoutMs} ms outside (0, ${this.#options.transactionTimeoutMsMax}]`,
      );
    }
    let producer = this.#producers.get(transactionalId);
    if (producer === undefined) {
      producer = {
        transactionalId,
        producerId: this.#nextProducerId++,
        epoch: 0,
        timeoutMs: transactionTimeoutMs,
        inTransaction: false,
        failed: null,
        open: null,
      };
      this.#producers.set(transactionalId, producer);
    } else {
      this.#fence(producer, "fenced");
      producer.timeoutMs = transactionTimeoutMs;
    }
    return ok({ transactionalId, producerId: producer.producerId, producerEpoch: producer.epoch });
  }

  /** Client-side in Kafka; here it also tells a fenced incarnation at once (a real one learns at its first request). */
  beginTransaction(nowMs: number, identity: ProducerIdentity): KafkaResult<void> {
    this.expire(nowMs);
    const checked = this.#checkProducer(identity, true);
    if (!checked.ok) return checked;
    const producer = checked.value;
    if (producer.inTransaction)
      throw new BugError(`${identity.transactionalId}: beginTransaction inside a transaction`);
    producer.inTransaction = true;
    producer.failed = null;
    return ok(undefined);
  }

  /** Produce to one partition: transactional with a producer identity, plain without. Returns the base offset. */
  produce(
    nowMs: number,
    request: {
      readonly producer: ProducerIdentity | null;
      readonly topic: string;
      readonly partition: number;
      readonly records: readonly RecordInput[];
    },
  ): KafkaResult<{ readonly baseOffset: number }> {
    this.expire(nowMs);
    if (request.records.length === 0) throw new BugError("produce: no records");
    const { producer: identity, topic, partition } = request;
    if (identity === null) {
      const log = this.#log(topic, partition);
      if (!log.ok) return log;
      return ok({ baseOffset: log.value.append(request.records, this.#nowMs, NO_PRODUCER, null) });
    }
    const checked = this.#checkProducer(identity, false);
    if (!checked.ok) return checked;
    const producer = this.#inTransaction(checked.value, "produce");
    if (producer.failed !== null) return this.#mustAbort(producer);
    const log = this.#log(topic, partition);
    if (!log.ok) return this.#fail(producer, log);
    const open = this.#openTransaction(producer);
    const baseOffset = log.value.append(request.records, this.#nowMs, producer.producerId, open.mark);
    const key = tpKey(topic, partition);
    const touched = open.partitions.get(key);
    if (touched === undefined) {
      open.partitions.set(key, {
        log: log.value,
        topic,
        partition,
        firstOffset: baseOffset,
        recordCount: request.records.length,
      });
    } else {
      touched.recordCount += request.records.length;
    }
    return ok({ baseOffset });
  }

  addOffsetsToTxn(nowMs: number, identity: ProducerIdentity, groupId: string): KafkaResult<void> {
    this.expire(nowMs);
    const checked = this.#checkProducer(identity, true);
    if (!checked.ok) return checked;
    const producer = this.#inTransaction(checked.value, "addOffsetsToTxn");
    if (producer.failed !== null) return this.#mustAbort(producer);
    this.#openTransaction(producer).groups.add(groupId);
    return ok(undefined);
  }

  txnOffsetCommit(
    nowMs: number,
    identity: ProducerIdentity,
    request: {
      readonly groupId: string;
      readonly generationId: number;
      readonly memberId: string;
      readonly groupInstanceId: string | null;
      readonly offsets: readonly PartitionOffset[];
    },
  ): KafkaResult<void> {
    this.expire(nowMs);
    const checked = this.#checkProducer(identity, true);
    if (!checked.ok) return checked;
    const producer = this.#inTransaction(checked.value, "txnOffsetCommit");
    if (producer.open === null || !producer.open.groups.has(request.groupId)) {
      throw new BugError(`${identity.transactionalId}: txnOffsetCommit for ${request.groupId} without addOffsetsToTxn`);
    }
    if (producer.failed !== null) return this.#mustAbort(producer);
    const group = this.#group(request.groupId);
    const fence = group.checkTxnOffsetCommit(request.generationId, request.memberId, request.groupInstanceId);
    if (!fence.ok) return this.#fail(producer, fence);
    group.addPendingOffsets(producer.producerId, request.offsets);
    producer.open.offsetCommits.push({
      groupId: request.groupId,
      generationId: request.generationId,
      memberId: request.memberId,
      offsets: request.offsets.map(({ topic, partition, offset }) => ({ topic, partition, offset })),
    });
    return ok(undefined);
  }

  endTxn(nowMs: number, identity: ProducerIdentity, result: "commit" | "abort"): KafkaResult<void> {
    this.expire(nowMs);
    const checked = this.#checkProducer(identity, true);
    if (!checked.ok) return checked;
    const producer = this.#inTransaction(checked.value, "endTxn");
    if (result === "commit" && producer.failed !== null) {
      this.#clientErrors.push(
        `${producer.transactionalId} epoch ${producer.epoch} tried to commit at ${this.#nowMs} ms after ${producer.failed.code}`,
      );
      return kafkaError("INVALID_TXN_STATE", `the transaction had a failed call (${producer.failed.code}): abort it`);
    }
    if (producer.open !== null) this.#end(producer, result === "commit" ? "committed" : "aborted", "client");
    producer.inTransaction = false;
    producer.failed = null;
    return ok(undefined);
  }

  /** A fault from outside: the broker aborts the transactional id's open transaction and bumps its epoch. */
  abortTransaction(nowMs: number, transactionalId: string): boolean {
    this.expire(nowMs);
    const producer = this.#producers.get(transactionalId);
    if (producer === undefined || producer.open === null) return false;
    this.#fence(producer, "injected");
    return true;
  }

  // ---- consumers ----

  fetch(
    nowMs: number,
    request: {
      readonly topic: string;
      readonly partition: number;
      readonly offset: number;
      readonly isolation: Isolation;
      readonly maxRecords?: number;
    },
  ): KafkaResult<FetchResponse> {
    this.expire(nowMs);
    const maxRecords = request.maxRecords ?? this.#options.fetchRecordsMax;
    if (!Number.isSafeInteger(maxRecords) || maxRecords < 1) throw new BugError(`fetch: maxRecords ${maxRecords}`);
    const log = this.#log(request.topic, request.partition);
    if (!log.ok) return log;
    return log.value.fetch(request.offset, request.isolation, maxRecords);
  }

  listOffsets(
    nowMs: number,
    request: {
      readonly topic: string;
      readonly partition: number;
      readonly timestamp: "earliest" | "latest";
      readonly isolation: Isolation;
    },
  ): KafkaResult<number> {
    this.expire(nowMs);
    const log = this.#log(request.topic, request.partition);
    if (!log.ok) return log;
    if (request.timestamp === "earliest") return ok(log.value.logStartOffset);
    return ok(request.isolation === "read_committed" ? log.value.lastStableOffset : log.value.highWatermark);
  }

  /** Not a Kafka API: the oracle's look at records in [from, before) (PartitionLog.inspect). */
  inspect(topic: string, partition: number, from: number, before: number): ReturnType<PartitionLog["inspect"]> {
    const log = this.#log(topic, partition);
    if (!log.ok) throw new BugError(`inspect: ${log.message}`);
    return log.value.inspect(from, before);
  }

  /** Kafka's DeleteRecords: the new log start offset. `beforeOffset` -1 means the high watermark. */
  deleteRecords(nowMs: number, topic: string, partition: number, beforeOffset: number): KafkaResult<number> {
    this.expire(nowMs);
    const log = this.#log(topic, partition);
    if (!log.ok) return log;
    return log.value.deleteRecords(beforeOffset === -1 ? log.value.highWatermark : beforeOffset);
  }

  offsetFetch(
    nowMs: number,
    request: {
      readonly groupId: string;
      readonly partitions: readonly TopicPartition[];
      readonly requireStable: boolean;
    },
  ): readonly OffsetFetchPartition[] {
    this.expire(nowMs);
    return this.#group(request.groupId).fetchOffsets(request.partitions, request.requireStable);
  }

  // ---- the group coordinator ----

  joinGroup(nowMs: number, request: JoinGroupRequest): KafkaResult<JoinGroupResponse> | JoinGroupFailure {
    this.expire(nowMs);
    return this.#group(request.groupId).joinGroup(this.#nowMs, request);
  }

  syncGroup(nowMs: number, request: SyncGroupRequest): KafkaResult<SyncGroupResponse> {
    this.expire(nowMs);
    return this.#group(request.groupId).syncGroup(this.#nowMs, request);
  }

  heartbeat(nowMs: number, request: MemberRequest): KafkaResult<void> {
    this.expire(nowMs);
    return this.#group(request.groupId).heartbeat(this.#nowMs, request);
  }

  leaveGroup(nowMs: number, request: Omit<MemberRequest, "generationId">): KafkaResult<void> {
    this.expire(nowMs);
    return this.#group(request.groupId).leaveGroup(this.#nowMs, request);
  }

  /** The group as the coordinator sees it (DescribeGroups, reduced). */
  describeGroup(groupId: string): {
    readonly state: string;
    readonly generationId: number;
    readonly leader: string | null;
    readonly members: readonly string[];
  } {
    const group = this.#group(groupId);
    return { state: group.state, generationId: group.generationId, leader: group.leaderId, members: group.memberIds() };
  }

  // ---- for the simulation's checks ----

  /** Every ended transaction, in the order they ended. */
  transactions(): readonly TransactionRecord[] {
    return this.#ended;
  }

  committedTransactions(): readonly TransactionRecord[] {
    return this.#ended.filter((transaction) => transaction.outcome === "committed");
  }

  /** Transactional ids with an open transaction, and since when. */
  openTransactions(): readonly { readonly transactionalId: string; readonly startedAtMs: number }[] {
    const open = [];
    for (const producer of this.#producers.values()) {
      if (producer.open !== null)
        open.push({ transactionalId: producer.transactionalId, startedAtMs: producer.open.startedAtMs });
    }
    return open;
  }

  /** Every completed round of a group, with the leader's assignments once it synced. */
  generations(groupId: string): readonly GenerationRecord[] {
    return this.#group(groupId).history();
  }

  /** Calls a correct client never makes (committing a transaction after one of its calls failed). */
  clientErrors(): readonly string[] {
    return this.#clientErrors;
  }

  // ---- internals ----

  #nextDeadlineMs(): number {
    let next = Number.POSITIVE_INFINITY;
    for (const producer of this.#producers.values()) {
      if (producer.open !== null) next = Math.min(next, this.#transactionDeadlineMs(producer));
    }
    for (const group of this.#groups.values()) next = Math.min(next, group.nextDeadlineMs());
    return next;
  }

  #transactionDeadlineMs(producer: TransactionalProducer): number {
    const deadlineMs = (producer.open as OpenTransaction).startedAtMs + producer.timeoutMs;
    const sweepMs = this.#options.transactionAbortSweepMs;
    return sweepMs > 0 ? Math.ceil(deadlineMs / sweepMs) * sweepMs : deadlineMs;
  }

  #group(groupId: string): ConsumerGroup {
    let group = this.#groups.get(groupId);
    if (group === undefined) {
      group = new ConsumerGroup(groupId, {
        sessionTimeoutMsMin: this.#options.sessionTimeoutMsMin,
        sessionTimeoutMsMax: this.#options.sessionTimeoutMsMax,
      });
      this.#groups.set(groupId, group);
    }
    return group;
  }

  #log(topic: string, partition: number): KafkaResult<PartitionLog> {
    const log = this.#topics.get(topic)?.[partition];
    if (log === undefined) return kafkaError("UNKNOWN_TOPIC_OR_PARTITION", `no partition ${topic}-${partition}`);
    return ok(log);
  }

  /** The coordinator answers a stale epoch PRODUCER_FENCED; a partition leader, INVALID_PRODUCER_EPOCH. */
  #checkProducer(identity: ProducerIdentity, atCoordinator: boolean): KafkaResult<TransactionalProducer> {
    const producer = this.#producers.get(identity.transactionalId);
    if (producer === undefined || producer.producerId !== identity.producerId) {
      return kafkaError(
        "INVALID_PRODUCER_ID_MAPPING",
        `${identity.transactionalId} has no producer ${identity.producerId}`,
      );
    }
    if (identity.producerEpoch > producer.epoch) {
      throw new BugError(`${identity.transactionalId}: epoch ${identity.producerEpoch} was never handed out`);
    }
    if (identity.producerEpoch < producer.epoch) {
      const message = `${identity.transactionalId} epoch ${identity.producerEpoch} is fenced by epoch ${producer.epoch}`;
      return kafkaError(atCoordinator ? "PRODUCER_FENCED" : "INVALID_PRODUCER_EPOCH", message);
    }
    return ok(producer);
  }

  #inTransaction(producer: TransactionalProducer, call: string): TransactionalProducer {
    if (!producer.inTransaction) throw new BugError(`${producer.transactionalId}: ${call} outside a transaction`);
    return producer;
  }

  #mustAbort(producer: TransactionalProducer): KafkaFailure {
    return kafkaError("INVALID_TXN_STATE", `the transaction had a failed call (${producer.failed?.code}): abort it`);
  }

  #fail(producer: TransactionalProducer, failed: KafkaFailure): KafkaFailure {
    producer.failed = failed;
    return failed;
  }

  #openTransaction(producer: TransactionalProducer): OpenTransaction {
    if (producer.open === null) {
      producer.open = {
        mark: { outcome: "open" },
        startedAtMs: this.#nowMs,
        partitions: new Map(),
        groups: new Set(),
        offsetCommits: [],
      };
    }
    return producer.open;
  }

  /** Aborts the open transaction, if any, and bumps the epoch: the current incarnation is fenced. */
  #fence(producer: TransactionalProducer, endedBy: "timeout" | "fenced" | "injected"): void {
    if (producer.open !== null) this.#end(producer, "aborted", endedBy);
    producer.epoch++;
    producer.inTransaction = false;
    producer.failed = null;
  }

  #end(producer: TransactionalProducer, outcome: "committed" | "aborted", endedBy: TransactionRecord["endedBy"]): void {
    const open = producer.open as OpenTransaction;
    open.mark.outcome = outcome;
    for (const { log } of open.partitions.values()) log.appendMarker(open.mark, this.#nowMs, producer.producerId);
    const groupGenerationsAtEnd = new Map<string, number>();
    for (const groupId of open.groups) {
      const group = this.#group(groupId);
      group.endTransaction(producer.producerId, outcome === "committed");
      groupGenerationsAtEnd.set(groupId, group.generationId);
    }
    this.#ended.push({
      transactionalId: producer.transactionalId,
      producerId: producer.producerId,
      producerEpoch: producer.epoch,
      outcome,
      endedBy,
      startedAtMs: open.startedAtMs,
      endedAtMs: this.#nowMs,
      records: [...open.partitions.values()].map(({ topic, partition, firstOffset, recordCount }) => ({
        topic,
        partition,
        firstOffset,
        recordCount,
      })),
      offsetCommits: open.offsetCommits,
      groupGenerationsAtEnd,
    });
    producer.open = null;
  }
}
