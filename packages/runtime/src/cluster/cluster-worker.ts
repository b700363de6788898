// One worker of a cluster on Kafka: the engine runs the partitions the group gives this
// worker, commits each group commit as one Kafka transaction (kafka-commit-target.ts), reads
// its partitions' inboxes, and hands partitions over when the group rebalances.
//
// A rebalance, as the worker sees it:
// 1. The coordinator asks members to rejoin. Before it does, the worker commits everything
//    pending under the generation it still holds and then holds commits (flushAndHold), so
//    no commit of the old generation can happen under the new one's assignment.
// 2. The new generation's assignment arrives (onAssigned). Partitions that went elsewhere are
//    released (their work is committed; the new owner sends their in-flight batches again).
//    Partitions that came here are acquired: the group's offsets are read with
//    require_stable, which waits until the previous owner's last transaction is decided, and
//    the local store catches up from the changelog to its stable end; the inbox position the
//    changelog gave must be the group's offset (the two are committed together). Only then
//    does the engine run them, and commits resume.
// 3. A worker the group expelled (paused past the session timeout) learns it lost everything
//    (onLost): the engine drops what it had not committed and runs nothing until the next
//    assignment. Whatever it tried to commit meanwhile was refused by the fence.
import { Admin, Producer } from "@platformatic/kafka";
import type { BlobStore } from "../checkpoint/blob/blob-store.ts";
import { type Address, replyAddress } from "../core/address.ts";
import { requestTime } from "../core/records.ts";
import type { CommitTarget, DurableStore, Engine } from "../engine/engine.ts";
import { errorMessage, type Failure, failure, type Result, success } from "../errors.ts";
import { describe, type KafkaConnection } from "../io/kafka/client-options.ts";
import { TRANSACTIONAL_RETRIES, transactionalRetryDelay } from "../io/kafka/transactional-retry.ts";
import type { IngressRouting } from "../io/playground/forwarding.ts";
import { runSupervised } from "../io/supervised-loop.ts";
import type { Logger } from "../observe/logger.ts";
import { assignPartitions } from "./assignor.ts";
import { catchUp, localChangelogOffset } from "./changelog.ts";
import { type ClusterModule, EMPTY_CLUSTER_MODULE } from "./cluster-module.ts";
import { type ClusterTopicNames, clusterTopicNames, ensureClusterTopics } from "./cluster-topics.ts";
import { CommitGate } from "./commit-gate.ts";
import type { MembershipSnapshot } from "./group-machine.ts";
import { GroupMember } from "./group-member.ts";
import { decodeInboxRecord } from "./inbox-record.ts";
import { readInboxTails } from "./inbox-tails.ts";
import { KafkaCommitTarget, transactionalIdOf } from "./kafka-commit-target.ts";
import { KafkaLink } from "./kafka-link.ts";
import { type MemberUrls, memberUrls } from "./member-urls.ts";
import type { PartitionOwner } from "./membership-codec.ts";
import { checkGroupModule } from "./module-check.ts";
import { restoreSnapshot } from "./partition-snapshots.ts";
import { SavepointParticipant } from "./savepoint-participant.ts";
import { Snapshotter } from "./snapshotter.ts";
import { TopicReader } from "./topic-reader.ts";
import { fetchStableOffsets } from "./txn-offsets.ts";

export interface ClusterWorkerOptions {
  readonly connection: KafkaConnection;
  /** The cluster's name: its topics, group and transactional ids derive from it. */
  readonly cluster: string;
  readonly workerId: string;
  /** Where other workers reach this one. */
  readonly advertiseUrl: string;
  /** Where other workers reach this one's admin listener (--admin-advertise); undefined without one. */
  readonly adminAdvertiseUrl?: string | undefined;
  readonly partitionCount: number;
  /** What must be the same on every worker (cluster-module.ts); default: a module that declares nothing. */
  readonly module?: ClusterModule;
  /** The worker's local store: a cache of its partitions, caught up from the changelog. */
  readonly local: DurableStore;
  /** Builds the engine over the commit target (it must own no partition at the start). */
  readonly createEngine: (commitTarget: CommitTarget) => Engine;
  readonly log: Logger;
  /** The worker cannot go on (a bug, a fenced worker id, a changelog that does not read): stop the process. */
  readonly onFatal: (reason: string) => void;
  /** Default 10 s (the broker's minimum is 6 s). */
  readonly sessionTimeoutMs?: number;
  /** Kafka's transaction timeout for the worker's transactions; default 10 s (Kafka Streams' under exactly-once). */
  readonly transactionTimeoutMs?: number;
  /** How long taking over a partition may wait for the previous owner's transaction, and read the changelog; default 60 s. */
  readonly acquireTimeoutMs?: number;
  /**
   * The partitions the engine runs changed (ascending): after a release or a loss, before any
   * acquisition; after an acquisition, once the store has caught up from the changelog. Sources
   * bound to partitions (the Kafka ingress) read exactly those.
   */
  readonly onPartitionsChanged?: (owned: readonly number[]) => void;
  /** Per-partition snapshots in the checkpoint store, and the trimming behind them (snapshotter.ts); none: the changelog keeps everything. */
  readonly snapshots?: {
    readonly blobs: BlobStore;
    /** Between two rounds of snapshots; 0: none. */
    readonly intervalMs: number;
    /** Snapshots kept per partition. */
    readonly keep: number;
  };
}

const TRANSACTION_TIMEOUT_MS_DEFAULT = 10_000;
const ACQUIRE_TIMEOUT_MS_DEFAULT = 60_000;
/** How long an inbox fetch waits for records: the latency of a message between workers when idle. */
const INBOX_WAIT_MS = 50;
const INBOX_FETCH_BYTES = 4 * 1024 * 1024;
const CHANGELOG_FETCH_BYTES = 16 * 1024 * 1024;
/** How long the check at start waits for a rebalancing group to settle before it leaves the check to the join. */
const MODULE_CHECK_WAIT_MS = 2_000;
/** How long a starting worker tries to claim its transactional id (as ensureClusterTopics waits for the topics). */
const CLAIM_WAIT_MS = 30_000;
/** How many times a partition's changelog may be trimmed under its catch-up before the worker gives up. */
const CATCH_UP_ATTEMPTS_MAX = 3;
/** How long a stopping worker waits for its batches in flight before it commits and leaves. */
const STOP_DRAIN_MS = 2_000;

export class ClusterWorker {
  readonly #options: ClusterWorkerOptions;
  readonly #topics: ClusterTopicNames;
  readonly #link: KafkaLink;
  readonly #changelogReader: TopicReader;
  readonly #inboxReader: TopicReader;
  readonly #commitTarget: KafkaCommitTarget;
  readonly #admin: Admin;
  readonly #snapshotter: Snapshotter | undefined;
  /** Every commit passes it: a savepoint holds the worker's commits there. */
  readonly #gate: CommitGate;
  /** The worker's part in savepoints of the cluster; undefined without a checkpoint store. */
  readonly savepoints: SavepointParticipant | undefined;
  /** Rebalances seen begin (a rejoin) or end (an assignment, a loss): a savepoint held across one fails. */
  #rebalances = 0;
  readonly engine: Engine;
  readonly #member: GroupMember;
  readonly #stop = new AbortController();
  /** Assignments are applied one after another, in the order they came. */
  #assigning: Promise<void> = Promise.resolve();
  #inboxLoop: Promise<void> | undefined;
  /** The engine's reset count the inbox reader's positions were last taken at. */
  #seenResets = 0;

  private constructor(options: ClusterWorkerOptions, topics: ClusterTopicNames) {
    this.#options = options;
    this.#topics = topics;
    this.#link = new KafkaLink(options.connection, { requestTimeoutMs: 30_000 });
    this.#changelogReader = new TopicReader({
      connection: options.connection,
      topic: topics.changelog,
      maxWaitMs: 100,
      fetchBytes: CHANGELOG_FETCH_BYTES,
    });
    this.#inboxReader = new TopicReader({
      connection: options.connection,
      topic: topics.inbox,
      maxWaitMs: INBOX_WAIT_MS,
      fetchBytes: INBOX_FETCH_BYTES,
    });
    const createProducer = (index: number) =>
      new Producer<Buffer, Buffer, Buffer, Buffer>({
        ...options.connection,
        transactionalId: transactionalIdOf(options.cluster, options.workerId, index),
        // Not the client's 1 s after CONCURRENT_TRANSACTIONS, which a transaction right after the last one often hears.
        retries: TRANSACTIONAL_RETRIES,
        retryDelay: transactionalRetryDelay,
        idempotent: true,
        acks: -1,
        autocreateTopics: false,
        // InitProducerId's transaction timeout is the client's `timeout`.
        timeout: options.transactionTimeoutMs ?? TRANSACTION_TIMEOUT_MS_DEFAULT,
        // A new producer for the transactional id (the client would otherwise claim id 0, epoch 0, and be fenced).
        producerId: -1n,
        producerEpoch: -1,
      });
    this.#commitTarget = new KafkaCommitTarget({
      createProducer,
      link: this.#link,
      topics,
      membership: () => this.#member.current(),
      local: options.local,
      changelogReader: this.#changelogReader,
      catchUpTimeoutMs: options.acquireTimeoutMs ?? ACQUIRE_TIMEOUT_MS_DEFAULT,
    });
    this.#gate = new CommitGate(this.#commitTarget);
    this.engine = options.createEngine(this.#gate);
    this.#admin = new Admin(options.connection);
    this.#snapshotter =
      options.snapshots === undefined
        ? undefined
        : new Snapshotter({
            place: { blobs: options.snapshots.blobs, cluster: options.cluster },
            local: options.local,
            admin: this.#admin,
            topics,
            intervalMs: options.snapshots.intervalMs,
            keep: options.snapshots.keep,
            owned: () => this.engine.ownedPartitions,
            log: options.log,
          });
    this.savepoints =
      options.snapshots === undefined
        ? undefined
        : new SavepointParticipant({
            workerId: options.workerId,
            gate: this.#gate,
            membership: () => this.#member.current(),
            running: () => this.engine.ownedPartitions,
            rebalances: () => this.#rebalances,
            local: options.local,
            blobs: options.snapshots.blobs,
            readInboxTails: async (from, deadlineMs) => {
              // A reader of its own: the inbox loop's reader goes on at its positions.
              const reader = new TopicReader({
                connection: options.connection,
                topic: topics.inbox,
                maxWaitMs: INBOX_WAIT_MS,
                fetchBytes: INBOX_FETCH_BYTES,
              });
              try {
                return await readInboxTails(reader, from, deadlineMs);
              } finally {
                await reader.close().catch(() => undefined);
              }
            },
          });
    this.#member = new GroupMember({
      connection: options.connection,
      groupId: topics.group,
      workerId: options.workerId,
      url: options.advertiseUrl,
      adminUrl: options.adminAdvertiseUrl,
      partitionCount: options.partitionCount,
      module: options.module ?? EMPTY_CLUSTER_MODULE,
      ...(options.sessionTimeoutMs === undefined ? {} : { sessionTimeoutMs: options.sessionTimeoutMs }),
      assign: assignPartitions,
      hooks: {
        beforeRejoin: async () => {
          this.#rebalances++;
          // A savepoint's hold would keep the flush below waiting: the savepoint fails instead.
          this.savepoints?.close();
          await this.engine.flushAndHold();
        },
        onAssigned: (snapshot) => {
          // One line per generation: an operator (and the cluster tests) can see who ran what.
          this.#options.log.info(
            `worker ${options.workerId} holds partitions ${partitionRanges(snapshot.partitions)} in generation ${snapshot.generationId}`,
          );
          this.#rebalances++;
          this.#inOrder(() => this.#assign(snapshot));
        },
        onLost: (previous, cause) => {
          this.#rebalances++;
          this.#options.log.warn(
            `worker ${options.workerId} lost partitions ${previous.partitions.join(", ") || "(none)"} of generation ${previous.generationId}: ${cause.message}`,
          );
          this.#inOrder(() => {
            this.engine.lose(`the worker left generation ${previous.generationId}: ${cause.message}`);
            for (const partition of this.#inboxReader.partitions) this.#inboxReader.remove(partition);
            this.#options.onPartitionsChanged?.(this.engine.ownedPartitions);
          });
        },
        onStopped: (cause) => {
          if (cause !== undefined && !this.#stop.signal.aborted) this.#options.onFatal(cause.message);
        },
        onWarning: (message) => this.#options.log.warn(`worker ${options.workerId}: ${message}`),
      },
    });
  }

  /**
   * Makes sure of the cluster's topics, fences any earlier incarnation of this worker id (its
   * open transaction is aborted), and joins the group. Resolves once the worker has joined,
   * not once it holds partitions.
   */
  static async start(options: ClusterWorkerOptions): Promise<Result<ClusterWorker>> {
    const topics = clusterTopicNames(options.cluster);
    if (!topics.ok) return topics;
    const ensured = await ensureClusterTopics({
      connection: options.connection,
      cluster: options.cluster,
      partitionCount: options.partitionCount,
      log: options.log,
    });
    if (!ensured.ok) return ensured;
    const moduleRefused = await refuseAnotherModule(options, topics.value.group);
    if (moduleRefused !== undefined) return moduleRefused;
    const worker = new ClusterWorker(options, topics.value);
    try {
      // InitProducerId, sent by the first beginTransaction: a killed incarnation's open
      // transaction is aborted now rather than after its timeout. As long as the cluster's
      // topics may take to appear: a new Kafka makes its transaction-state topic first.
      await worker.#commitTarget.claimWithin(CLAIM_WAIT_MS);
    } catch (error) {
      await worker.#closeClients();
      // The caller names the cluster.
      return failure("cluster-unreachable", `its transactional id cannot be claimed: ${errorMessage(error)}`, true);
    }
    worker.engine.start();
    worker.#member.start();
    worker.#snapshotter?.start();
    worker.#inboxLoop = runSupervised(`worker ${options.workerId}'s inbox`, () => worker.#readInbox(), {
      log: options.log,
      signal: worker.#stop.signal,
      onFatal: (error) => options.onFatal(`inbox reader: ${errorMessage(error)}`),
      describe,
    });
    return success(worker);
  }

  /**
   * Runs a change of ownership after those before it. One that throws is a bug (an ownership
   * invariant broke): the worker stops, rather than run on with partitions it half took.
   */
  #inOrder(change: () => void | Promise<void>): void {
    this.#assigning = this.#assigning
      .then(change)
      .catch((error: unknown) =>
        this.#options.onFatal(
          `changing its partitions: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`,
        ),
      );
  }

  /** The generation this worker holds now. */
  get membership(): MembershipSnapshot | undefined {
    return this.#member.current();
  }

  /** What the worker is doing, for reports and tests. */
  get status(): {
    readonly generation: number | undefined;
    readonly owned: readonly number[];
    readonly inbox: readonly (readonly [partition: number, position: string | undefined])[];
    readonly commitsRefused: number;
    readonly resets: number;
    readonly invocationsInFlight: number;
  } {
    return {
      generation: this.#member.current()?.generationId,
      owned: this.engine.ownedPartitions,
      inbox: this.#inboxReader.partitions.map((partition) => [
        partition,
        this.#inboxReader.position(partition)?.toString(),
      ]),
      commitsRefused: this.engine.commitsRefused,
      resets: this.engine.resets,
      invocationsInFlight: this.engine.invocationsInFlight,
    };
  }

  /**
   * Which worker an HTTP ingress sends a request to: this one (undefined), another (its
   * advertised URL), or nobody yet (null: between generations, or a partition nobody holds).
   * A partition assigned here but still being restored counts as here: the engine answers
   * for it (a request that waits for a reply gets 503 until the partition runs).
   */
  readonly routing: IngressRouting = {
    ownerOfTarget: (target) => this.#ownerOf(this.engine.partitionOf(target)),
    ownerOfRequest: (requestId) => {
      if (requestTime(requestId) === undefined) return undefined;
      return this.#ownerOf(this.engine.partitionOf(replyAddress(requestId)));
    },
  };

  #ownerOf(partition: number): string | null | undefined {
    const membership = this.#member.current();
    if (membership === undefined) return null;
    const owner = membership.owners[partition];
    if (owner === undefined) return null;
    return owner.workerId === this.#options.workerId ? undefined : owner.url;
  }

  /**
   * Indexed by partition: the worker that runs it in the current generation, with its admin URL
   * (the admin API asks it, observe/cluster-admin.ts); undefined everywhere between generations.
   */
  partitionOwners(): readonly (PartitionOwner | undefined)[] {
    return this.#member.current()?.owners ?? new Array<undefined>(this.#options.partitionCount).fill(undefined);
  }

  /** Where each worker of the group is reached now, by its own latest word (member-urls.ts). */
  memberUrls(): Promise<Map<string, MemberUrls>> {
    return memberUrls(this.#link, this.#topics.group);
  }

  /** Whether this worker runs the partition of `address` now. */
  owns(address: Address): boolean {
    return this.engine.ownedPartitions.includes(this.engine.partitionOf(address));
  }

  async #assign(snapshot: MembershipSnapshot): Promise<void> {
    if (this.#stop.signal.aborted) return;
    const held = new Set(snapshot.partitions);
    const owned = this.engine.ownedPartitions;
    const lost = owned.filter((partition) => !held.has(partition));
    const gained = snapshot.partitions.filter((partition) => !owned.includes(partition));
    this.engine.release(lost);
    for (const partition of lost) this.#inboxReader.remove(partition);
    if (lost.length > 0) this.#options.onPartitionsChanged?.(this.engine.ownedPartitions);
    if (gained.length > 0) {
      const acquired = await this.#acquire(gained, snapshot);
      if (!acquired.ok) {
        this.#options.onFatal(`worker ${this.#options.workerId}: ${acquired.message}`);
        return;
      }
      this.#options.onPartitionsChanged?.(this.engine.ownedPartitions);
    }
    // A later generation came meanwhile: its own assignment resumes commits.
    if (this.#member.current()?.generationId !== snapshot.generationId) return;
    this.engine.resumeCommits();
  }

  /**
   * Takes over `partitions`: waits for their previous owner's last transaction (require_stable),
   * catches the local store up from the changelog, checks that the inbox position it holds is
   * the group's offset, and runs them.
   */
  async #acquire(partitions: readonly number[], snapshot: MembershipSnapshot): Promise<Result<void>> {
    const timeoutMs = this.#options.acquireTimeoutMs ?? ACQUIRE_TIMEOUT_MS_DEFAULT;
    const stable = await fetchStableOffsets(this.#link, this.#topics.group, this.#topics.inbox, partitions, timeoutMs);
    if (!stable.ok) return stable;
    const now = () => performance.now();
    const deadlineMs = now() + timeoutMs;
    // Trimmed while being read (the previous owner, not yet aware it lost them, snapshotted
    // them meanwhile): restore the newer snapshot and read again, a few times at most.
    for (let attempt = 1; ; attempt++) {
      const restored = await this.#restoreTrimmed(partitions);
      if (!restored.ok) return restored;
      const caught = await catchUp(this.#changelogReader, this.#options.local, partitions, { nowMs: now, deadlineMs });
      if (caught.ok) break;
      if (caught.code !== "changelog-trimmed" || attempt >= CATCH_UP_ATTEMPTS_MAX) return caught;
    }
    // Messages this worker sent to these partitions may wait in their inboxes: later ones go
    // there too until the reader has passed them (per-sender order, as StateFun keeps it).
    const sentBefore = new Set(
      partitions.filter((partition) => this.#commitTarget.lastSentTo(partition) !== undefined),
    );
    this.engine.own(partitions, sentBefore);
    for (const partition of partitions) {
      const group = stable.value.get(partition) ?? -1n;
      const position = this.engine.inboxPosition(partition);
      if ((group < 0n ? 0 : Number(group)) !== position) {
        return failure(
          "cluster-inconsistent",
          `partition ${partition} of generation ${snapshot.generationId}: the changelog says its inbox is read up to ${position}, the group says ${group}`,
          false,
        );
      }
      const sent = this.#commitTarget.lastSentTo(partition);
      if (sent !== undefined && sent < BigInt(position)) this.engine.inboxCaughtUp(partition);
      this.#inboxReader.seek(partition, BigInt(position));
    }
    return success(undefined);
  }

  /**
   * For each of `partitions` whose changelog was trimmed past what the local store holds of it
   * (another worker snapshotted it meanwhile, or the disk is new): the newest snapshot first,
   * so that the catch-up reads only the changelog after it.
   */
  async #restoreTrimmed(partitions: readonly number[]): Promise<Result<void>> {
    const starts = await this.#changelogReader.starts(partitions);
    for (const partition of partitions) {
      const start = Number(starts.get(partition) ?? 0n);
      if (localChangelogOffset(this.#options.local, partition) + 1 >= start) continue;
      const blobs = this.#options.snapshots?.blobs;
      if (blobs === undefined) {
        return failure(
          "snapshot-missing",
          `partition ${partition}: the changelog starts at offset ${start}, and this worker has no checkpoint store to restore the rest from`,
          false,
        );
      }
      const startedAt = performance.now();
      const place = { blobs, cluster: this.#options.cluster };
      const restored = await restoreSnapshot(place, this.#options.local, partition, start - 1);
      if (!restored.ok) return restored;
      this.#options.log.info(
        `worker ${this.#options.workerId} restored partition ${partition} from its snapshot at changelog offset ${restored.value.offset} (${(restored.value.bytes / 1024).toFixed(1)} KiB, ${Math.round(performance.now() - startedAt)} ms)`,
      );
    }
    return success(undefined);
  }

  /** One inbox poll: delivers what came, in order, at the positions the partitions expect. */
  async #readInbox(): Promise<undefined> {
    if (this.engine.resets !== this.#seenResets) {
      // Deliveries not committed were dropped: read again from where the store says.
      this.#seenResets = this.engine.resets;
      for (const partition of this.#inboxReader.partitions) {
        if (this.engine.ownedPartitions.includes(partition)) {
          this.#inboxReader.seek(partition, BigInt(this.engine.inboxPosition(partition)));
        } else this.#inboxReader.remove(partition);
      }
    }
    if (this.#inboxReader.partitions.length === 0) {
      await new Promise((resume) => setTimeout(resume, INBOX_WAIT_MS));
      return undefined;
    }
    const resets = this.engine.resets;
    for (const polled of await this.#inboxReader.poll()) {
      if (this.engine.resets !== resets) break;
      const records = [];
      for (const record of polled.records) {
        if (record.value === null) continue;
        const decoded = decodeInboxRecord(record.value);
        if (!decoded.ok) {
          throw new Error(`inbox partition ${polled.partition} offset ${record.offset}: ${decoded.message}`);
        }
        records.push({ message: decoded.value, offset: Number(record.offset) });
      }
      const outcome =
        records.length === 0 ? "admitted" : await this.engine.admitFromInbox(polled.partition, records, resets);
      if (outcome === "seek") {
        this.#inboxReader.seek(polled.partition, BigInt(this.engine.inboxPosition(polled.partition)));
      } else if (outcome === "not-owned") this.#inboxReader.remove(polled.partition);
      else if (outcome === "admitted") {
        const sent = this.#commitTarget.lastSentTo(polled.partition);
        if (sent === undefined || polled.next > sent) this.engine.inboxCaughtUp(polled.partition);
      }
    }
    return undefined;
  }

  /**
   * Leaves the cluster gently: stops reading, lets the batches in flight finish (up to 2 s),
   * commits what is pending, leaves the group (the others take the partitions at once), and
   * closes the engine and the local store.
   */
  async stop(): Promise<void> {
    this.#stop.abort();
    this.savepoints?.close();
    await this.#snapshotter?.stop();
    await this.#inboxLoop;
    await this.#assigning;
    // A planned move re-sends nothing: batches in flight get a moment to finish and commit.
    const deadline = performance.now() + STOP_DRAIN_MS;
    while (this.engine.invocationsInFlight > 0 && performance.now() < deadline) {
      await new Promise((resume) => setTimeout(resume, 10));
    }
    await this.engine.flushAndHold();
    await this.#member.leave();
    this.engine.lose("the worker is stopping");
    await this.engine.stop();
    await this.#closeClients();
  }

  /** Stops as a crash would, without committing or leaving (for tests of a lost worker). */
  async abandon(): Promise<void> {
    this.#stop.abort();
    this.savepoints?.close();
    await this.#snapshotter?.stop();
    await this.#member.close();
    await this.#closeClients();
  }

  async #closeClients(): Promise<void> {
    await Promise.allSettled([
      this.#commitTarget.close(),
      this.#changelogReader.close(),
      this.#inboxReader.close(),
      this.#link.close(),
      this.#admin.close(),
    ]);
  }
}

/**
 * Refuses to start when the group's members run another module (module-check.ts), before
 * anything is opened. Advisory: when the group cannot say within a moment (it is rebalancing),
 * the worker goes on, and the coordinator refuses its JoinGroup if the modules differ.
 */
async function refuseAnotherModule(
  options: ClusterWorkerOptions,
  groupId: string,
): Promise<Failure<"cluster-module-mismatch"> | undefined> {
  const link = new KafkaLink(options.connection, { requestTimeoutMs: MODULE_CHECK_WAIT_MS });
  try {
    const check = await checkGroupModule({
      link,
      groupId,
      workerId: options.workerId,
      module: options.module ?? EMPTY_CLUSTER_MODULE,
      settleWaitMs: MODULE_CHECK_WAIT_MS,
    });
    return check.kind === "different" ? failure("cluster-module-mismatch", check.message, false) : undefined;
  } finally {
    await link.close();
  }
}

export type { Failure };

/** Partitions as ascending ranges, "0-41,86,90-127"; "none" for none. */
export function partitionRanges(partitions: readonly number[]): string {
  const ranges: string[] = [];
  let start: number | undefined;
  let end = -2;
  for (const partition of partitions) {
    if (partition === end + 1) {
      end = partition;
      continue;
    }
    if (start !== undefined) ranges.push(start === end ? `${start}` : `${start}-${end}`);
    start = partition;
    end = partition;
  }
  if (start !== undefined) ranges.push(start === end ? `${start}` : `${start}-${end}`);
  return ranges.length === 0 ? "none" : ranges.join(",");
}
