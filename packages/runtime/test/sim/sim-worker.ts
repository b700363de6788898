// One simulated cluster worker process: what cluster/cluster-worker.ts, the engine's commit
// loop (engine/engine.ts) and cluster/kafka-commit-target.ts do, made synchronous and driven
// one step at a time by the schedule, over the simulated Kafka. It runs the real PartitionSet
// over its own local store, the real GroupMachine (through group-driver.ts) for its
// membership, and commits each group commit as one SimKafka transaction of one of its
// transactional producers, which take turns as KafkaCommitTarget's do (TRANSACTIONAL_PRODUCERS,
// each with its own transactional id), with the contents KafkaCommitTarget builds (a writes frame per
// partition written, an inbox record per outbound message, the egress records the commit
// publishes, and the inbox positions of every partition written as TxnOffsetCommit under its
// generation). A transaction takes up to four steps (begin and AddOffsetsToTxn, produce,
// TxnOffsetCommit, end), so other workers, the group and faults act between them: rebalances
// land mid-transaction, and a crash leaves the transaction open until the next incarnation or
// the broker's timeout ends it. It also snapshots its partitions to a shared snapshot store and
// trims the changelog and inbox behind them (cluster/snapshotter.ts), and restores a partition
// whose changelog was trimmed past its local copy from the newest snapshot.
//
// The schedule decides which step runs when; the process never calls back into it except
// through WorkerEnv. A process that crashes is dropped (its local store survives unless the
// disk is lost); a paused one (a zombie) keeps all its state and resumes as if nothing happened.
import type { FromFunction, Init, ToFunction } from "@eddy/protocol";
import { assignPartitions } from "../../src/cluster/assignor.ts";
import { changelogOffsetWrite, localChangelogOffset } from "../../src/cluster/changelog.ts";
import { EMPTY_CLUSTER_MODULE } from "../../src/cluster/cluster-module.ts";
import { type GroupEffect, GroupMachine, type MembershipSnapshot } from "../../src/cluster/group-machine.ts";
import { decodeInboxRecord, encodeInboxRecord, inboxRecordKey } from "../../src/cluster/inbox-record.ts";
import { TRANSACTIONAL_PRODUCERS, transactionalIdOf } from "../../src/cluster/kafka-commit-target.ts";
import { partitionRows } from "../../src/cluster/partition-snapshots.ts";
import type { Address } from "../../src/core/address.ts";
import type { MemoryKV } from "../../src/core/kv.ts";
import { applyWrites, type PendingWrite } from "../../src/core/overlay-kv.ts";
import type { Catalog } from "../../src/core/partition-core.ts";
import { type Commit, PartitionSet } from "../../src/core/partition-set.ts";
import { getRow, inPartition, partitionOfKey, tables } from "../../src/core/schema.ts";
import { decodeWritesFrame, encodeWritesFrame } from "../../src/store/writes-frame.ts";
import { commandsValue, FUNCTION_TYPE, interpret, type SourceCommand } from "./commands.ts";
import { GroupDriver } from "./group-driver.ts";
import type { KafkaFailure, ProducerIdentity, RecordInput, SimKafka } from "./kafka.ts";
import type { Random } from "./random.ts";

/** Snapshots kept per partition (--checkpoint-retain's default). */
const SNAPSHOTS_KEPT = 3;

export interface SimTopics {
  readonly changelog: string;
  readonly inbox: string;
  readonly egress: string;
  readonly group: string;
}

export interface SimTiming {
  readonly sessionTimeoutMs: number;
  readonly heartbeatIntervalMs: number;
  readonly rebalanceTimeoutMs: number;
  readonly transactionTimeoutMs: number;
  /** How long an acquisition may wait for require_stable before the worker gives up (a fatal stop). */
  readonly acquireTimeoutMs: number;
}

export interface ClusterStats {
  commits: number;
  refused: number;
  /** Refused by the TxnOffsetCommit fence (a stale generation or member). */
  fenced: number;
  /** Refused because its producer was fenced (a newer incarnation, a renewal, or the broker's timeout). */
  producerFenced: number;
  /** New producers for a transactional id after a transaction without a confirmed end. */
  producerRenewals: number;
  /** A generation ended between a transaction's begin and its end. */
  rebalancedMidTransaction: number;
  /** Transactions a crash left open. */
  leftOpen: number;
  unknownOutcomes: number;
  injectedFailures: number;
  unstableWaits: number;
  acquisitions: number;
  catchUpRecords: number;
  inboxDeliveries: number;
  staleReplies: number;
  fatalStops: number;
  /** Acquisitions refused because the changelog's inbox position was not the group's. */
  inconsistent: number;
  /** Partition snapshots written (cluster/snapshotter.ts), and DeleteRecords trims behind them. */
  snapshots: number;
  trims: number;
  /** Partitions restored from a snapshot because the changelog was trimmed past the local copy. */
  restores: number;
  /** Inbox fetches at a position trimmed away (a zombie's reader). */
  inboxTrimmedPast: number;
}

/**
 * The checkpoint store's partition snapshots (cluster/partition-snapshots.ts), shared by every
 * worker and surviving them: per partition, a writes frame per changelog offset. A key is
 * written once; two snapshots of one offset must be the same rows (each is a committed prefix).
 */
export class SimSnapshots {
  readonly #byPartition = new Map<number, Map<number, Uint8Array>>();

  /** Stores a snapshot; a different body under an offset already stored is a failure. */
  write(partition: number, offset: number, body: Uint8Array): string | undefined {
    const stored = this.#byPartition.get(partition) ?? new Map<number, Uint8Array>();
    this.#byPartition.set(partition, stored);
    const earlier = stored.get(offset);
    if (earlier !== undefined && Buffer.compare(earlier, body) !== 0) {
      return `two snapshots of partition ${partition} at changelog offset ${offset} differ`;
    }
    stored.set(offset, body);
    return undefined;
  }

  /** The snapshot with the highest offset (restoreSnapshot's choice). */
  newest(partition: number): { readonly offset: number; readonly body: Uint8Array } | undefined {
    let newest: { offset: number; body: Uint8Array } | undefined;
    for (const [offset, body] of this.#byPartition.get(partition) ?? []) {
      if (newest === undefined || offset > newest.offset) newest = { offset, body };
    }
    return newest;
  }

  /** pruneSnapshots: all but the newest `keep`. */
  prune(partition: number, keep: number): void {
    const stored = this.#byPartition.get(partition);
    if (stored === undefined) return;
    const offsets = [...stored.keys()].sort((a, b) => a - b);
    for (const offset of offsets.slice(0, Math.max(0, offsets.length - keep))) stored.delete(offset);
  }
}

/** What a committed transaction made visible, for the oracle. */
export interface CommittedTransaction {
  readonly workerId: string;
  readonly changelogPartitions: readonly number[];
  readonly egressRecords: number;
  /** Inbox records a function sent (an ingress forward carries an idempotency key and needs no fence). */
  readonly routedInboxRecords: number;
  readonly fence: FenceNote | undefined;
}

/** The oracle's view of a TxnOffsetCommit when it was sent: did the worker own those partitions then? */
export interface FenceNote {
  /** The group's generation and the worker's member id when the offsets were sent. */
  readonly generationId: number;
  readonly memberId: string;
  readonly legit: boolean;
  readonly why: string;
}

export interface WorkerEnv {
  readonly kafka: SimKafka;
  readonly random: Random;
  readonly catalog: Catalog;
  readonly partitionCount: number;
  readonly topics: SimTopics;
  readonly timing: SimTiming;
  readonly stats: ClusterStats;
  readonly snapshots: SimSnapshots;
  /** Before a trim of `partition`'s changelog below `before`: the oracle reads what is about to go. */
  beforeTrim(partition: number, before: number): void;
  /** Per transaction call: the call fails as a broken connection would (the worker aborts). */
  readonly callFailureProbability: number;
  /** Per EndTxn(commit): it commits, but the answer is lost (the worker must catch up). */
  readonly unknownOutcomeProbability: number;
  /** The test's broken fence: TxnOffsetCommit without generation and member (must make seeds fail). */
  readonly breakFence: boolean;
  /** Trace every count and idempotency key a commit writes, and every outbound message. */
  readonly verbose: boolean;
  now(): number;
  fail(message: string): never;
  /** A line for the failing seed's trace. */
  note(line: string): void;
  /** Source positions a commit made durable; `byOwner` those the owner took first-hand. */
  acked(positions: readonly number[], byOwner: readonly number[]): void;
  /** Source positions that must be sent again. */
  dropped(positions: readonly number[]): void;
  noteOffsetCommit(member: MembershipSnapshot, partitions: readonly number[]): FenceNote;
  committed(transaction: CommittedTransaction): void;
  /** Right after a commit with nothing pending since: the admitted bytes against the local store. */
  checkAdmitted(worker: SimWorker): void;
}

interface InflightRequest {
  readonly target: Address;
  readonly batchId: number;
  readonly incarnation: number;
  readonly request: Init<ToFunction>;
}

interface EgressHandout {
  readonly source: Address;
  readonly seq: number;
  readonly value: Uint8Array;
  readonly resets: number;
}

interface Transaction {
  phase: "join-group" | "produce" | "offsets" | "end" | "catch-up";
  /** In "catch-up" (an end whose outcome is unknown): the changelog ends to read to, when, and the refusal to make then. */
  catchUp?: {
    readonly ends: ReadonlyMap<number, number>;
    readonly sinceMs: number;
    readonly why: string;
    readonly failure?: { readonly code?: string };
  };
  readonly batch: Commit;
  readonly acks: number[];
  readonly ownerAcks: number[];
  readonly member: MembershipSnapshot | undefined;
  readonly frames: Map<number, PendingWrite[]>;
  readonly published: readonly RecordInput[];
  readonly generationAtBegin: number;
  /** Which of the worker's producers runs it. */
  readonly lane: number;
  readonly producer: ProducerIdentity;
  changelogOffsets: Map<number, number>;
  inboxLast: Map<number, number>;
  fence: FenceNote | undefined;
}

type OwnershipChange = { readonly kind: "assigned"; readonly snapshot: MembershipSnapshot } | { readonly kind: "lost" };

const FLUSH_ROUNDS_MAX = 16;

/** The simulated worker's transactional id number `index` (kafka-commit-target.ts transactionalIdOf). */
export function simTransactionalId(workerId: string, index: number): string {
  return transactionalIdOf("sim", workerId, index);
}
const FENCED_PRODUCER = new Set(["PRODUCER_FENCED", "INVALID_PRODUCER_EPOCH", "INVALID_PRODUCER_ID_MAPPING"]);

export class SimWorker {
  readonly workerId: string;
  /** Which process of this worker id: the schedule may start a new one while an old one is paused. */
  readonly incarnation: number;
  readonly local: MemoryKV;
  readonly set: PartitionSet;
  readonly #env: WorkerEnv;
  readonly #group: GroupDriver;
  /** KafkaCommitTarget's producers, which commits take in turn (TRANSACTIONAL_PRODUCERS). */
  readonly #producers: ProducerIdentity[] = [];
  /**
   * KafkaCommitTarget's renewBeforeNext, per producer: a transaction ended without the broker
   * confirming it; that producer's next commit renews it.
   */
  readonly #unended: boolean[] = [];
  /** The producer the next commit takes. */
  #turn = 0;
  /** running; dead (crashed or stopped on a fatal error); left (it left the group and stopped). */
  state: "running" | "dead" | "left" = "running";
  paused = false;
  network: InflightRequest[] = [];
  answered: InflightRequest[] = [];
  #acks: number[] = [];
  #ownerAcks: number[] = [];
  #published: RecordInput[] = [];
  #egress: EgressHandout[] = [];
  #resets = 0;
  #commitsHeld = false;
  #txn: Transaction | undefined;
  #flushRounds: number | undefined;
  #leaving = false;
  readonly #changes: OwnershipChange[] = [];
  #acquireSince: number | undefined;
  #acquireWaited = false;
  /** changelog.ts catchUp: the changelog's ends (high watermarks) when the acquisition's catch-up began. */
  #acquireEnds: Map<number, number> | undefined;
  /** Why the process stopped on its own (a fatal error), for a failing seed's trace. */
  stopReason: string | undefined;
  /** Per inbox partition: the offset of the last record this process's commits put there. */
  readonly #lastSent = new Map<number, number>();
  /** Per inbox partition read: the next offset to fetch. */
  readonly #reader = new Map<number, number>();
  /** Snapshotter: the changelog offset of each partition's last snapshot here, and the trims behind them still to do. */
  readonly #snapshotted = new Map<number, number>();
  readonly #pendingTrims: { partition: number; changelogBefore: number; inboxBefore: number }[] = [];
  #seenResets = 0;

  constructor(env: WorkerEnv, workerId: string, incarnation: number, local: MemoryKV) {
    this.#env = env;
    this.workerId = workerId;
    this.incarnation = incarnation;
    this.local = local;
    this.set = new PartitionSet({
      store: local,
      catalog: env.catalog,
      partitionCount: env.partitionCount,
      listeners: {
        invoke: (effect, runIncarnation) =>
          this.network.push({
            target: effect.target,
            batchId: effect.batchId,
            incarnation: runIncarnation,
            request: effect.request,
          }),
      },
      overlay: { checkInserts: true },
      owned: [],
    });
    // ClusterWorker.start: InitProducerId first for each transactional id, which aborts an
    // earlier incarnation's open transactions.
    for (let index = 0; index < TRANSACTIONAL_PRODUCERS; index++) {
      const id = simTransactionalId(workerId, index);
      const producer = env.kafka.initProducerId(env.now(), id, env.timing.transactionTimeoutMs);
      this.#producers.push(producer.ok ? producer.value : env.fail(`${id}: InitProducerId: ${producer.message}`));
      this.#unended.push(false);
    }
    const machine = new GroupMachine({
      groupId: env.topics.group,
      workerId,
      url: `http://${workerId}`,
      partitionCount: env.partitionCount,
      module: EMPTY_CLUSTER_MODULE,
      sessionTimeoutMs: env.timing.sessionTimeoutMs,
      rebalanceTimeoutMs: env.timing.rebalanceTimeoutMs,
      heartbeatIntervalMs: env.timing.heartbeatIntervalMs,
      retryBackoffMs: 2,
      retryBackoffMsMax: 20,
      assign: assignPartitions,
    });
    this.#group = new GroupDriver(env.kafka, machine, env.topics.group);
    this.#handle(this.#group.start(env.now()));
  }

  get #name(): string {
    return `${this.workerId}#${this.incarnation}`;
  }

  get membership(): MembershipSnapshot | undefined {
    return this.#group.machine.snapshot;
  }

  get alive(): boolean {
    return this.state === "running" && !this.paused;
  }

  get inTransaction(): boolean {
    return this.#txn !== undefined;
  }

  /** Source positions this process holds unacknowledged (taken since its last commit, or in its open one). */
  get unacknowledged(): number[] {
    return [...(this.#txn?.acks ?? []), ...this.#acks];
  }

  /** Nothing left to do here: no transaction, no pending work, no ownership change under way. */
  get settled(): boolean {
    return (
      this.#txn === undefined &&
      this.#changes.length === 0 &&
      this.#flushRounds === undefined &&
      this.set.pendingWrites === 0 &&
      this.set.heldEffects === 0 &&
      this.set.outboundMessages === 0 &&
      this.#acks.length === 0 &&
      this.#egress.length === 0 &&
      this.network.length === 0
    );
  }

  /** What runs on its own in a real worker (the group member, the assignment chain, a before-rejoin flush). */
  background(): void {
    if (!this.alive) return;
    const now = this.#env.now();
    this.#handle(this.#group.pump(now));
    if (this.alive) this.#changeOwnership();
    if (this.alive && this.#flushRounds !== undefined) this.#flushStep();
  }

  // ---- the group ----

  #handle(effects: readonly GroupEffect[]): void {
    for (const effect of effects) {
      if (this.state !== "running") return;
      switch (effect.kind) {
        case "before-rejoin":
          // beforeRejoin → engine.flushAndHold(): commit what is pending under this generation.
          this.#flushRounds = 0;
          break;
        case "assigned":
          this.#changes.push({ kind: "assigned", snapshot: effect.snapshot });
          break;
        case "lost":
          this.#changes.push({ kind: "lost" });
          break;
        case "stopped":
          if (effect.cause !== undefined) this.#fatal(`group: ${effect.cause.message}`);
          else this.state = "left";
          break;
        default:
          break;
      }
    }
  }

  /** Graceful scale-in (ClusterWorker.stop): commit everything, leave the group, stop. */
  leave(): void {
    this.#leaving = true;
    this.#flushRounds ??= 0;
  }

  #flushStep(): void {
    const rounds = this.#flushRounds as number;
    if (this.#txn !== undefined) {
      this.#advanceCommit();
      return;
    }
    const clean =
      this.set.pendingWrites === 0 &&
      this.set.heldEffects === 0 &&
      this.set.outboundMessages === 0 &&
      this.#acks.length === 0;
    if (!clean && rounds < FLUSH_ROUNDS_MAX) {
      this.#flushRounds = rounds + 1;
      this.#startCommit();
      return;
    }
    this.#flushRounds = undefined;
    this.#commitsHeld = true;
    const now = this.#env.now();
    if (this.#leaving) {
      this.#dropUncommitted([], []);
      this.#handle(this.#group.leave(now));
      // LeaveGroup goes out with the next pump; the process is gone either way.
      this.#group.pump(now);
      this.state = "left";
      return;
    }
    this.#handle(this.#group.rejoinReady(now));
  }

  /** ClusterWorker's #inOrder chain: one change at a time, an acquisition may wait for require_stable. */
  #changeOwnership(): void {
    while (this.#changes.length > 0 && this.alive) {
      const change = this.#changes[0] as OwnershipChange;
      if (change.kind === "lost") {
        this.#dropUncommitted([], []);
        this.#reader.clear();
        this.#changes.shift();
        continue;
      }
      if (!this.#assign(change.snapshot)) return;
      this.#changes.shift();
    }
  }

  /** ClusterWorker.#assign; false while the acquisition waits for a stable offset fetch. */
  #assign(snapshot: MembershipSnapshot): boolean {
    const held = new Set(snapshot.partitions);
    const owned = this.set.owned;
    if (this.#acquireSince === undefined) {
      const lost = owned.filter((partition) => !held.has(partition));
      this.#release(lost);
      for (const partition of lost) this.#reader.delete(partition);
      this.#acquireSince = this.#env.now();
      this.#acquireWaited = false;
      this.#acquireEnds = undefined;
    }
    const gained = snapshot.partitions.filter((partition) => !this.set.owns(partition));
    if (gained.length > 0 && !this.#acquire(gained, snapshot)) return false;
    this.#acquireSince = undefined;
    if (this.membership?.generationId === snapshot.generationId) this.#commitsHeld = false;
    return true;
  }

  /** Engine.release: partitions whose work is all committed; anything pending drops everything uncommitted. */
  #release(partitions: readonly number[]): void {
    if (partitions.length === 0) return;
    if (this.set.pendingWrites > 0 || this.set.outboundMessages > 0 || this.#acks.length > 0) {
      const keep = this.set.owned.filter((partition) => !partitions.includes(partition));
      this.#dropUncommitted([], keep);
      return;
    }
    for (const partition of partitions) this.set.release(partition);
  }

  /** ClusterWorker.#acquire: require_stable, catch-up from the changelog, the inbox position check. */
  #acquire(partitions: readonly number[], snapshot: MembershipSnapshot): boolean {
    const env: WorkerEnv = this.#env;
    const now = env.now();
    const fetched = env.kafka.offsetFetch(now, {
      groupId: env.topics.group,
      partitions: partitions.map((partition) => ({ topic: env.topics.inbox, partition })),
      requireStable: true,
    });
    if (fetched.some((answer) => answer.error !== null)) {
      if (!this.#acquireWaited) env.stats.unstableWaits++;
      this.#acquireWaited = true;
      if (now - (this.#acquireSince as number) > env.timing.acquireTimeoutMs) {
        this.#fatal(`partitions ${partitions.join(", ")}: require_stable did not settle`);
      }
      return false;
    }
    // changelog.ts catchUp reads to the ends as they were when it began, read_committed: it
    // waits for every transaction open then (a killed worker's, a zombie's) to end.
    this.#acquireEnds ??= new Map(partitions.map((partition) => [partition, this.#end(partition, "read_uncommitted")]));
    if (!this.#changelogReadable(this.#acquireEnds)) {
      if (now - (this.#acquireSince as number) > env.timing.acquireTimeoutMs) {
        this.#fatal(`partitions ${partitions.join(", ")}: the changelog's open transactions did not end`);
      }
      return false;
    }
    this.#acquireEnds = undefined;
    env.stats.acquisitions++;
    const fromOffsets = partitions.map((partition) => localChangelogOffset(this.local, partition) + 1);
    if (!this.catchUp(partitions, true)) return true;
    env.note(
      `${this.#name} acquires ${partitions.join(",")} in generation ${snapshot.generationId} (changelog from ${fromOffsets.join(",")} to ${partitions.map((partition) => localChangelogOffset(this.local, partition) + 1).join(",")} of ${partitions.map((partition) => this.#logEnd(partition)).join(",")} committed, group offsets ${fetched.map((answer) => answer.offset).join(",")})`,
    );
    const sentBefore = new Set(partitions.filter((partition) => this.#lastSent.has(partition)));
    for (const partition of partitions) this.set.own(partition, now, { viaInbox: sentBefore.has(partition) });
    for (const answer of fetched) {
      const group = answer.offset ?? 0;
      const position = this.set.inboxPosition(answer.partition);
      if (group !== position) {
        env.stats.inconsistent++;
        this.#fatal(
          `partition ${answer.partition} of generation ${snapshot.generationId}: the changelog says its inbox is read up to ${position}, the group says ${group}`,
        );
        return true;
      }
      const sent = this.#lastSent.get(answer.partition);
      if (sent !== undefined && sent < position) this.set.inboxCaughtUp(answer.partition);
      this.#reader.set(answer.partition, position);
    }
    return true;
  }

  /** Whether a read_committed reader can read each changelog partition up to its end in `ends`. */
  #changelogReadable(ends: ReadonlyMap<number, number>): boolean {
    for (const [partition, end] of ends) if (this.#end(partition, "read_committed") < end) return false;
    return true;
  }

  #end(partition: number, isolation: "read_committed" | "read_uncommitted"): number {
    const listed = this.#env.kafka.listOffsets(this.#env.now(), {
      topic: this.#env.topics.changelog,
      partition,
      timestamp: "latest",
      isolation,
    });
    return listed.ok ? listed.value : -1;
  }

  /** "high watermark" or "last stable offset<high watermark" of a changelog partition, for the trace. */
  #logEnd(partition: number): string {
    const stable = this.#end(partition, "read_committed");
    const high = this.#end(partition, "read_uncommitted");
    return stable === high ? `${high}` : `${stable}<${high}`;
  }

  /**
   * changelog.ts catchUp, synchronous: the local store takes the changelog's records up to the
   * stable end. An acquisition first restores a partition whose changelog was trimmed past the
   * local copy from its newest snapshot (ClusterWorker.#restoreTrimmed); anywhere else such a
   * changelog stops the worker, as catchUp's "changelog-trimmed" does after a commit of unknown
   * outcome. Returns false when the worker stopped.
   */
  catchUp(partitions: readonly number[], restoreIfTrimmed = false): boolean {
    const env: WorkerEnv = this.#env;
    for (const partition of partitions) {
      const start = env.kafka.listOffsets(env.now(), {
        topic: env.topics.changelog,
        partition,
        timestamp: "earliest",
        isolation: "read_uncommitted",
      });
      if (!start.ok) env.fail(`changelog ${partition}: ${start.message}`);
      if (localChangelogOffset(this.local, partition) + 1 < start.value) {
        if (!restoreIfTrimmed) {
          this.#fatal(`changelog ${partition} was trimmed to ${start.value}, past the local copy`);
          return false;
        }
        this.#restoreSnapshot(partition, start.value - 1);
      }
      const end = env.kafka.listOffsets(env.now(), {
        topic: env.topics.changelog,
        partition,
        timestamp: "latest",
        isolation: "read_committed",
      });
      if (!end.ok) env.fail(`changelog ${partition}: ${end.message}`);
      let next = localChangelogOffset(this.local, partition) + 1;
      while (next < end.value) {
        const fetched = env.kafka.fetch(env.now(), {
          topic: env.topics.changelog,
          partition,
          offset: next,
          isolation: "read_committed",
        });
        if (!fetched.ok) env.fail(`changelog ${partition} at ${next}: ${fetched.message}`);
        const writes: PendingWrite[] = [];
        for (const record of fetched.value.records) {
          for (const write of decodeWritesFrame(record.value as Uint8Array)) {
            if (partitionOfKey(write.key) !== partition) {
              env.fail(`changelog ${partition} offset ${record.offset} writes a row of another partition`);
            }
            writes.push(write);
          }
          writes.push(changelogOffsetWrite(partition, record.offset));
          env.stats.catchUpRecords++;
        }
        applyWrites(this.local, writes);
        if (fetched.value.nextOffset <= next) break;
        next = fetched.value.nextOffset;
      }
    }
    return true;
  }

  /** restoreSnapshot: the local copy of `partition` becomes its newest snapshot, which must cover `needOffset`. */
  #restoreSnapshot(partition: number, needOffset: number): void {
    const env: WorkerEnv = this.#env;
    const newest = env.snapshots.newest(partition);
    if (newest === undefined || newest.offset < needOffset) {
      env.fail(
        `partition ${partition}: the changelog starts after offset ${needOffset} and no snapshot covers it (newest: ${newest?.offset ?? "none"})`,
      );
    }
    const rows = decodeWritesFrame(newest.body);
    const offsetKey = JSON.stringify(inPartition(partition, tables.changelogOffset.key()));
    if (rows.find((row) => JSON.stringify(row.key) === offsetKey)?.value !== newest.offset) {
      env.fail(`partition ${partition}: the snapshot at ${newest.offset} does not cover its own offset`);
    }
    const kept = new Set(rows.map((row) => JSON.stringify(row.key)));
    const stale = partitionRows(this.local, partition)
      .filter(({ key }) => !kept.has(JSON.stringify(key)))
      .map(({ key }): PendingWrite => ({ key, value: undefined }));
    applyWrites(this.local, [...stale, ...rows]);
    env.stats.restores++;
    env.note(`${this.#name} restores partition ${partition} from its snapshot at ${newest.offset}`);
  }

  // ---- snapshots and trimming (cluster/snapshotter.ts) ----

  /**
   * Snapshotter.snapshotNow, in two steps so that the group and other workers act between
   * them: first a snapshot of every partition run here whose changelog moved since its last
   * one (and old snapshots pruned), then, at a later step, the trims behind them (DeleteRecords
   * of the changelog to the snapshot's offset + 1 and of the inbox to its inbox position), for
   * the partitions still run here. A zombie does both, as a real one would.
   */
  snapshotStep(): void {
    const env: WorkerEnv = this.#env;
    if (this.#pendingTrims.length > 0) {
      const owned = new Set(this.set.owned);
      for (const trim of this.#pendingTrims.splice(0)) {
        if (!owned.has(trim.partition)) continue;
        env.beforeTrim(trim.partition, trim.changelogBefore);
        const changelog = env.kafka.deleteRecords(
          env.now(),
          env.topics.changelog,
          trim.partition,
          trim.changelogBefore,
        );
        if (!changelog.ok) env.fail(`DeleteRecords changelog ${trim.partition}: ${changelog.message}`);
        if (trim.inboxBefore > 0) {
          const inbox = env.kafka.deleteRecords(env.now(), env.topics.inbox, trim.partition, trim.inboxBefore);
          if (!inbox.ok) env.fail(`DeleteRecords inbox ${trim.partition}: ${inbox.message}`);
        }
        env.stats.trims++;
        env.note(
          `${this.#name} trims partition ${trim.partition}: changelog before ${trim.changelogBefore}, inbox before ${trim.inboxBefore}`,
        );
      }
      return;
    }
    for (const partition of this.set.owned) {
      const offset = localChangelogOffset(this.local, partition);
      if (offset < 0 || this.#snapshotted.get(partition) === offset) continue;
      const problem = env.snapshots.write(partition, offset, encodeWritesFrame(partitionRows(this.local, partition)));
      if (problem !== undefined) env.fail(problem);
      env.snapshots.prune(partition, SNAPSHOTS_KEPT);
      this.#snapshotted.set(partition, offset);
      env.stats.snapshots++;
      const inboxPosition = getRow(this.local, inPartition(partition, tables.inboxPosition.key())) ?? 0;
      this.#pendingTrims.push({ partition, changelogBefore: offset + 1, inboxBefore: inboxPosition });
    }
  }

  // ---- the commit path (Engine.#commitNow + KafkaCommitTarget.commit) ----

  /** A commit step: starts a group commit, or takes the open one a step further. */
  commitStep(): void {
    if (this.#txn !== undefined) this.#advanceCommit();
    else if (!this.#commitsHeld && this.#flushRounds === undefined) this.#startCommit();
  }

  /** The whole of a commit at once (the quiet end of a schedule). */
  commitFully(): void {
    if (this.#commitsHeld || this.#flushRounds !== undefined) return;
    if (this.#txn === undefined) this.#startCommit();
    while (this.#txn !== undefined && this.alive) {
      // A catch-up waiting for open transactions to end waits for time to pass: not here.
      const catchUp = this.#txn.phase === "catch-up" ? this.#txn.catchUp : undefined;
      if (catchUp !== undefined && !this.#changelogReadable(catchUp.ends)) return;
      this.#advanceCommit();
    }
  }

  #startCommit(): void {
    const env: WorkerEnv = this.#env;
    const batch = this.set.takeCommit({ inboxPositions: true });
    const acks = this.#acks;
    const ownerAcks = this.#ownerAcks;
    const published = this.#published;
    this.#acks = [];
    this.#ownerAcks = [];
    this.#published = [];
    if (batch.writes.length === 0 && batch.effects.length === 0 && batch.outbound.length === 0 && acks.length === 0) {
      return;
    }
    const lane = this.#turn;
    this.#turn = (this.#turn + 1) % this.#producers.length;
    if (this.#unended[lane] === true) {
      // KafkaCommitTarget.#renewProducer: InitProducerId settles the old transaction (and fences
      // whichever producer held the id, a zombie's successor included).
      const id = simTransactionalId(this.workerId, lane);
      const renewed = env.kafka.initProducerId(env.now(), id, env.timing.transactionTimeoutMs);
      if (!renewed.ok) env.fail(`${id}: InitProducerId: ${renewed.message}`);
      this.#producers[lane] = renewed.value;
      this.#unended[lane] = false;
      env.stats.producerRenewals++;
    }
    const producer = this.#producers[lane] as ProducerIdentity;
    const member = this.membership;
    const txn: Transaction = {
      phase: batch.partitions.length > 0 ? "join-group" : "produce",
      batch,
      acks,
      ownerAcks,
      member,
      frames: new Map(),
      published,
      generationAtBegin: env.kafka.describeGroup(env.topics.group).generationId,
      lane,
      producer,
      changelogOffsets: new Map(),
      inboxLast: new Map(),
      fence: undefined,
    };
    if (batch.partitions.length > 0 && member === undefined) {
      this.#refuse(txn, "the worker is between two generations of its group");
      return;
    }
    // framesByPartition: every write in a partition the commit names, and held in the generation.
    for (const partition of batch.partitions) txn.frames.set(partition, []);
    for (const write of batch.writes) {
      const partition = partitionOfKey(write.key);
      const frame = partition === undefined ? undefined : txn.frames.get(partition);
      if (frame === undefined) env.fail(`a commit writes ${JSON.stringify(write.key)}, outside its partitions`);
      frame.push(write);
    }
    if (member !== undefined) {
      const foreign = batch.partitions.filter((partition) => !member.partitions.includes(partition));
      if (foreign.length > 0) {
        env.fail(
          `worker ${this.workerId} commits partitions ${foreign.join(", ")}, which generation ${member.generationId} gave to others`,
        );
      }
    }
    const begun = env.kafka.beginTransaction(env.now(), producer);
    if (!begun.ok) {
      // The real client learns of a fenced producer at its first request; its abort then fails.
      if (FENCED_PRODUCER.has(begun.code)) this.#unended[lane] = true;
      this.#refuse(txn, `no transaction could begin: ${begun.message}`, begun);
      return;
    }
    this.#txn = txn;
  }

  #advanceCommit(): void {
    const txn = this.#txn as Transaction;
    const env: WorkerEnv = this.#env;
    const kafka = env.kafka;
    if (txn.phase === "catch-up") {
      const { ends, sinceMs, why, failure } = txn.catchUp as NonNullable<Transaction["catchUp"]>;
      if (!this.#changelogReadable(ends)) {
        if (env.now() - sinceMs > env.timing.acquireTimeoutMs)
          this.#fatal(`after ${why}: the changelog's open transactions did not end`);
        return;
      }
      if (!this.catchUp(txn.batch.partitions)) return;
      env.note(
        `${this.#name} caught up to ${txn.batch.partitions.map((partition) => localChangelogOffset(this.local, partition)).join(",")} after ${why}`,
      );
      this.#refuse(txn, why, failure);
      return;
    }
    if (txn.phase === "join-group") {
      // KafkaCommitTarget: AddOffsetsToTxn first, then the records, then TxnOffsetCommit.
      if (env.random.chance(env.callFailureProbability)) {
        env.stats.injectedFailures++;
        this.#abortAndRefuse(txn, { message: "AddOffsetsToTxn: the connection broke" }, true);
        return;
      }
      const added = kafka.addOffsetsToTxn(env.now(), txn.producer, env.topics.group);
      if (!added.ok) {
        this.#abortAndRefuse(txn, added);
        return;
      }
      txn.phase = "produce";
      return;
    }
    if (txn.phase === "produce") {
      const produced = this.#produce(txn);
      if (produced !== undefined) {
        this.#abortAndRefuse(txn, produced, true);
        return;
      }
      if (env.verbose) {
        for (const write of txn.batch.writes) {
          if (write.key.includes("state") && write.key.includes("count")) {
            const value = (write.value as { value?: Uint8Array } | undefined)?.value;
            env.note(
              `${this.#name}   count ${JSON.stringify(write.key)} = ${value === undefined ? "-" : new TextDecoder().decode(value)}`,
            );
          }
          if (write.key.includes("idem"))
            env.note(`${this.#name}   ${JSON.stringify(write.key)} ${write.value === undefined ? "deleted" : "set"}`);
        }
        for (const message of txn.batch.outbound)
          env.note(
            `${this.#name}   out -> ${message.partition} ${message.envelope.target.id} ${message.idempotencyKey ?? ""}`,
          );
      }
      if (txn.changelogOffsets.size > 0) {
        env.note(
          `${this.#name} produces ${[...txn.changelogOffsets].map(([partition, offset]) => `${partition}@${offset}`).join(",")} (${txn.producer.transactionalId} epoch ${txn.producer.producerEpoch})`,
        );
      }
      txn.phase = txn.batch.partitions.length > 0 ? "offsets" : "end";
      return;
    }
    if (txn.phase === "offsets") {
      if (env.random.chance(env.callFailureProbability)) {
        env.stats.injectedFailures++;
        this.#abortAndRefuse(txn, { message: "TxnOffsetCommit: the connection broke" }, true);
        return;
      }
      const member = txn.member as MembershipSnapshot;
      const positions = txn.batch.inboxPositions as number[];
      txn.fence = env.noteOffsetCommit(member, txn.batch.partitions);
      const offsets = txn.batch.partitions.map((partition, index) => ({
        topic: env.topics.inbox,
        partition,
        offset: positions[index] as number,
      }));
      const fenced = kafka.txnOffsetCommit(
        env.now(),
        txn.producer,
        env.breakFence
          ? { groupId: env.topics.group, generationId: -1, memberId: "", groupInstanceId: null, offsets }
          : {
              groupId: env.topics.group,
              generationId: member.generationId,
              memberId: member.memberId,
              groupInstanceId: member.groupInstanceId,
              offsets,
            },
      );
      if (!fenced.ok) {
        if (["ILLEGAL_GENERATION", "UNKNOWN_MEMBER_ID", "FENCED_INSTANCE_ID"].includes(fenced.code)) env.stats.fenced++;
        this.#abortAndRefuse(txn, fenced);
        return;
      }
      txn.phase = "end";
      return;
    }
    const ended = kafka.endTxn(env.now(), txn.producer, "commit");
    if (kafka.describeGroup(env.topics.group).generationId !== txn.generationAtBegin) {
      env.stats.rebalancedMidTransaction++;
    }
    if (!ended.ok) {
      // The commit request failed: the outcome is unknown to the worker; the changelog says.
      this.#abort(txn);
      this.#unended[txn.lane] = true;
      this.#startCatchUp(txn, `the transaction failed: ${ended.message}`, ended);
      return;
    }
    if (env.random.chance(env.unknownOutcomeProbability)) {
      // Committed, but the answer was lost: the worker catches its store up and rebuilds from it.
      env.stats.unknownOutcomes++;
      this.#reportCommitted(txn);
      // The client aborts a transaction the broker committed: its end is not settled.
      this.#unended[txn.lane] = true;
      env.note(
        `${this.#name} committed ${[...txn.changelogOffsets].map(([partition, offset]) => `${partition}@${offset}`).join(",")} but heard no answer`,
      );
      this.#startCatchUp(txn, "EndTxn: no answer");
      return;
    }
    this.#reportCommitted(txn);
    env.note(
      `${this.#name} commits ${[...txn.changelogOffsets].map(([partition, offset]) => `${partition}@${offset}`).join(",")} in generation ${txn.member?.generationId} (begun in ${txn.generationAtBegin})`,
    );
    this.#committed(txn);
  }

  /** Every record of the commit, in KafkaCommitTarget's order; a failure, or undefined. */
  #produce(txn: Transaction): { readonly message: string; readonly code?: string } | undefined {
    const env: WorkerEnv = this.#env;
    if (env.random.chance(env.callFailureProbability)) {
      env.stats.injectedFailures++;
      return { message: "Produce: the connection broke" };
    }
    const send = (topic: string, partition: number, records: RecordInput[]): number | KafkaFailure => {
      const produced = env.kafka.produce(env.now(), { producer: txn.producer, topic, partition, records });
      return produced.ok ? produced.value.baseOffset : produced;
    };
    for (const [partition, writes] of txn.frames) {
      const offset = send(env.topics.changelog, partition, [{ key: null, value: encodeWritesFrame(writes) }]);
      if (typeof offset !== "number") return offset;
      txn.changelogOffsets.set(partition, offset);
    }
    for (const message of txn.batch.outbound) {
      const offset = send(env.topics.inbox, message.partition, [
        { key: inboxRecordKey(message), value: encodeInboxRecord(message) },
      ]);
      if (typeof offset !== "number") return offset;
      txn.inboxLast.set(message.partition, offset);
    }
    for (const record of txn.published) {
      const offset = send(env.topics.egress, 0, [record]);
      if (typeof offset !== "number") return offset;
    }
    return undefined;
  }

  #reportCommitted(txn: Transaction): void {
    this.#env.committed({
      workerId: this.workerId,
      changelogPartitions: [...txn.frames.keys()],
      egressRecords: txn.published.length,
      routedInboxRecords: txn.batch.outbound.filter((message) => message.idempotencyKey === undefined).length,
      fence: txn.fence,
    });
  }

  /** The transaction committed: the local store takes the writes, then the engine acts on the commit. */
  #committed(txn: Transaction): void {
    const env: WorkerEnv = this.#env;
    this.#txn = undefined;
    const offsetWrites = [...txn.changelogOffsets].map(([partition, offset]) =>
      changelogOffsetWrite(partition, offset),
    );
    applyWrites(this.local, txn.batch.writes);
    applyWrites(this.local, offsetWrites);
    for (const [partition, offset] of txn.inboxLast) this.#lastSent.set(partition, offset);
    this.set.committed();
    env.stats.commits++;
    env.acked(txn.acks, txn.ownerAcks);
    if (this.set.pendingWrites === 0 && this.set.outboundMessages === 0 && this.set.heldEffects === 0) {
      env.checkAdmitted(this);
    }
    for (const effect of txn.batch.effects) {
      switch (effect.kind) {
        case "egress":
          this.#egress.push({
            source: effect.entry.source,
            seq: effect.entry.seq,
            value: effect.entry.value.value,
            resets: this.#resets,
          });
          break;
        case "dead-letter":
          env.fail(`unexpected dead letter: ${effect.letter.reason}`);
          break;
        case "reply":
          env.fail("a reply without a request");
          break;
        case "stop":
          env.fail(`unexpected stop: ${effect.reason}`);
          break;
      }
    }
  }

  /**
   * KafkaCommitTarget.#catchUpAfterUnknownOutcome: the local store takes what the changelog
   * has before the commit is refused, read to the ends as they are now (changelog.ts), so the
   * worker waits while a transaction open now holds the last stable offset below them.
   */
  #startCatchUp(txn: Transaction, why: string, failure?: { readonly code?: string }): void {
    const ends = new Map(
      txn.batch.partitions.map((partition) => [partition, this.#end(partition, "read_uncommitted")]),
    );
    txn.phase = "catch-up";
    txn.catchUp =
      failure === undefined
        ? { ends, sinceMs: this.#env.now(), why }
        : { ends, sinceMs: this.#env.now(), why, failure };
  }

  /** KafkaCommitTarget.#abort: an abort that fails leaves the transaction unended. */
  #abort(txn: Transaction): void {
    const aborted = this.#env.kafka.endTxn(this.#env.now(), txn.producer, "abort");
    if (!aborted.ok) this.#unended[txn.lane] = true;
  }

  /**
   * KafkaCommitTarget's refusals: after a failed call (`renew`: the catch path) the next commit
   * runs on a new producer, as after an abort that failed; after a fence refusal it does not.
   */
  #abortAndRefuse(
    txn: Transaction,
    failure: { readonly message: string; readonly code?: string },
    renew = false,
  ): void {
    this.#abort(txn);
    if (renew) this.#unended[txn.lane] = true;
    this.#refuse(txn, failure.message, failure);
  }

  /** Engine.#undoCommit: everything uncommitted is dropped and the partitions rebuilt from the local store. */
  #refuse(txn: Transaction, why: string, failure?: { readonly code?: string }): void {
    const env: WorkerEnv = this.#env;
    this.#txn = undefined;
    env.stats.refused++;
    env.note(`${this.#name} refused: ${why}`);
    this.#dropUncommitted(txn.acks, this.set.owned);
    if (failure?.code !== undefined && FENCED_PRODUCER.has(failure.code)) env.stats.producerFenced++;
  }

  /** Engine.#dropUncommitted. */
  #dropUncommitted(refusedAcks: readonly number[], keep: readonly number[]): void {
    this.#resets++;
    this.#published = [];
    this.#env.dropped([...refusedAcks, ...this.#acks]);
    this.#acks = [];
    this.#ownerAcks = [];
    this.set.reset(this.#env.now(), keep);
  }

  #fatal(why: string): void {
    this.#env.stats.fatalStops++;
    this.stopReason = why;
    this.#env.note(`${this.#name} stops: ${why}`);
    this.crash();
  }

  /** kill -9: the process is gone; its open transaction stays open in Kafka. */
  crash(): void {
    if (this.state !== "running") return;
    if (this.#txn !== undefined) this.#env.stats.leftOpen++;
    this.state = "dead";
    this.#env.dropped(this.unacknowledged);
    this.#txn = undefined;
    this.#acks = [];
    this.#ownerAcks = [];
  }

  // ---- inputs ----

  /** The HTTP ingress of this worker takes a source's command (with its idempotency key). */
  accept(
    position: number,
    command: SourceCommand,
    nowMs: number,
  ): { readonly duplicate: boolean; readonly owned: boolean } {
    const target = { typename: FUNCTION_TYPE, id: String(command.target) } as Address;
    const owned = this.set.ownsAddress(target);
    const accepted = this.set.accept(
      { target, argument: commandsValue(command.cmds) },
      { idempotencyKey: `command-${position}` },
      nowMs,
    );
    this.#acks.push(position);
    if (owned) this.#ownerAcks.push(position);
    return { duplicate: accepted.duplicate, owned };
  }

  reply(index: number, nowMs: number): void {
    const [request] = this.network.splice(index, 1) as [InflightRequest];
    const response: FromFunction = interpret(request.request);
    this.set.complete(request.target, request.batchId, response, nowMs, request.incarnation);
    this.answered.push(request);
    if (this.answered.length > 16) this.answered.shift();
  }

  timeout(index: number, nowMs: number): void {
    const [lost] = this.network.splice(index, 1) as [InflightRequest];
    this.set.fail(lost.target, lost.batchId, "simulated timeout", nowMs, lost.incarnation);
  }

  staleReply(old: InflightRequest, nowMs: number): void {
    this.#env.stats.staleReplies++;
    this.set.complete(old.target, old.batchId, interpret(old.request), nowMs, old.incarnation);
  }

  /** The egress connector settles one record it was handed: published with the next commit. */
  settleEgress(): boolean {
    const handout = this.#egress.shift();
    if (handout === undefined) return false;
    // Engine.#settleOutbox: a settlement from before a reset, or of an entry settled or moved, changes nothing.
    if (handout.resets === this.#resets && this.set.egressDelivered(handout.source, handout.seq)) {
      this.#published.push({ key: null, value: handout.value });
    }
    return true;
  }

  /** One fetch of one inbox partition (ClusterWorker.#readInbox + Engine.admitFromInbox); false if nothing came. */
  readInbox(maxRecords: number): boolean {
    const env: WorkerEnv = this.#env;
    if (this.#resets !== this.#seenResets) {
      this.#seenResets = this.#resets;
      for (const partition of [...this.#reader.keys()]) {
        if (this.set.owns(partition)) this.#reader.set(partition, this.set.inboxPosition(partition));
        else this.#reader.delete(partition);
      }
    }
    if (this.#reader.size === 0) return false;
    const partitions = [...this.#reader.keys()];
    const partition = env.random.pick(partitions);
    const offset = this.#reader.get(partition) as number;
    const fetched = env.kafka.fetch(env.now(), {
      topic: env.topics.inbox,
      partition,
      offset,
      isolation: "read_committed",
      maxRecords,
    });
    if (!fetched.ok) {
      // TopicReader: a position trimmed away is skipped (trimmedPast), never read around. Only a
      // zombie meets one: trims stop at a snapshot's inbox position, which no owner is behind.
      if (fetched.code === "OFFSET_OUT_OF_RANGE") {
        env.stats.inboxTrimmedPast++;
        return false;
      }
      env.fail(`inbox ${partition} at ${offset}: ${fetched.message}`);
    }
    if (fetched.value.nextOffset === offset) return false;
    if (!this.set.owns(partition)) {
      this.#reader.delete(partition);
      return false;
    }
    const nowMs = env.now();
    for (const record of fetched.value.records) {
      const decoded = decodeInboxRecord(record.value as Uint8Array);
      if (!decoded.ok) env.fail(`inbox ${partition} offset ${record.offset}: ${decoded.message}`);
      if (record.offset < this.set.inboxPosition(partition)) continue;
      this.set.deliverFromInbox(partition, decoded.value, record.offset, nowMs);
      env.stats.inboxDeliveries++;
    }
    this.#reader.set(partition, fetched.value.nextOffset);
    const sent = this.#lastSent.get(partition);
    if (sent === undefined || fetched.value.nextOffset > sent) this.set.inboxCaughtUp(partition);
    return true;
  }

  /** Whether every inbox partition read here is read to its stable end. */
  inboxReadToEnd(): boolean {
    const env: WorkerEnv = this.#env;
    for (const [partition, offset] of this.#reader) {
      const end = env.kafka.listOffsets(env.now(), {
        topic: env.topics.inbox,
        partition,
        timestamp: "latest",
        isolation: "read_committed",
      });
      if (end.ok && offset < end.value) return false;
    }
    return true;
  }
}
