// A cluster worker's group commits: each one Kafka transaction of one of the worker's two
// transactional producers, which take turns (transactional ids `eddy.<name>.w.<workerId>` and
// `eddy.<name>.w.<workerId>#1`; see TRANSACTIONAL_PRODUCERS for why two), holding
// - one changelog record per partition the commit wrote (its writes frame),
// - one inbox record per message for a partition another worker runs,
// - the Kafka egress records whose outbox entries the commit settles (io/kafka/cluster-egress.ts),
// - the inbox position of EVERY partition it wrote, as the group's offsets, committed under
//   the generation and member id the worker holds (txn-offsets.ts).
// That last rule is the whole fence: a worker the group expelled cannot commit offsets, so
// its transaction is aborted, frames and messages with it; and a new owner that read the
// group's offsets with require_stable sees every frame the old owner committed.
//
// Once the transaction is committed, the writes go to the local store (the cache of the
// changelog), with each partition's changelog offset. A transaction that fails is aborted,
// and the commit is refused: the engine drops what was uncommitted and rebuilds from the
// local store. When the outcome is unknown (the commit request itself failed), the changelog
// may hold this commit after all: the local store first catches up from the changelog, so
// that what the engine rebuilds is what Kafka has.
import type { Producer } from "@platformatic/kafka";
import type { PendingWrite } from "../core/overlay-kv.ts";
import { partitionOfKey } from "../core/schema.ts";
import type { CommitBatch, CommitRefusal, CommitTarget, DurableStore } from "../engine/engine.ts";
import { BugError, failure } from "../errors.ts";
import { describe } from "../io/kafka/client-options.ts";
import { encodeWritesFrame } from "../store/writes-frame.ts";
import { catchUp, changelogOffsetWrite } from "./changelog.ts";
import type { ClusterTopicNames } from "./cluster-topics.ts";
import type { MembershipSnapshot } from "./group-machine.ts";
import { encodeInboxRecord, inboxRecordKey } from "./inbox-record.ts";
import type { KafkaLink } from "./kafka-link.ts";
import type { TopicReader } from "./topic-reader.ts";
import { addGroupToTransaction, commitTransactionalOffsets, type GroupCoordinatorCache } from "./txn-offsets.ts";

type Buffers = Buffer;

/** Between two attempts of claimWithin. */
const CLAIM_RETRY_MS = 500;

/**
 * How many transactional producers a worker's commits take in turn. Commits stay one at a
 * time, in order: a commit begins only after the one before it has ended. But a transaction's
 * end is only decided when EndTxn answers: its markers are written afterwards, and until they
 * are, the coordinator answers the transactional id's next transaction CONCURRENT_TRANSACTIONS.
 * On one producer every commit waited out the markers of the one before, about 2 ms of a
 * 5.4 ms commit on the benchmark's broker; on two, a producer's last transaction ended a whole
 * commit ago, and the wait is gone (3.0-3.3 ms a commit, docs/benchmarks.md).
 *
 * That the transactions of two producers may end out of order at the brokers changes nothing
 * a reader sees: a changelog or inbox partition holds a commit's records after the previous
 * commit's (produced after it ended), a read_committed reader stops at the first open
 * transaction's records, and the group's coordinator keeps, of two committed offsets of a
 * partition, the one written later in its log (Kafka's OffsetMetadataManager), whichever
 * transaction's markers came first.
 */
export const TRANSACTIONAL_PRODUCERS = 2;

/** The transactional id of the worker's producer number `index` (0 keeps the id of single-producer Eddy). */
export function transactionalIdOf(cluster: string, workerId: string, index: number): string {
  // '#' is in no worker id (cluster-settings.ts WORKER_ID), so no worker's ids meet another's.
  return index === 0 ? `eddy.${cluster}.w.${workerId}` : `eddy.${cluster}.w.${workerId}#${index}`;
}

export interface KafkaCommitTargetOptions {
  /**
   * A new producer for the worker's transactional id number `index`, from 0 to
   * TRANSACTIONAL_PRODUCERS - 1 (transactional, idempotent, acks=all, no producer id yet):
   * one at the start, and another whenever a transaction was left without a confirmed end
   * (see #renewProducer).
   */
  readonly createProducer: (index: number) => Producer<Buffers, Buffers, Buffers, Buffers>;
  readonly link: KafkaLink;
  readonly topics: ClusterTopicNames;
  /** The generation the worker holds now; undefined while it is between generations. */
  readonly membership: () => MembershipSnapshot | undefined;
  readonly local: DurableStore;
  /** A reader of the changelog, to catch the local store up after a commit whose outcome is unknown. */
  readonly changelogReader: TopicReader;
  /** How long such a catch-up may take before the worker gives up (and stops). */
  readonly catchUpTimeoutMs: number;
}

/** One of the worker's transactional producers. */
interface CommitProducer {
  readonly index: number;
  producer: Producer<Buffers, Buffers, Buffers, Buffers>;
  /**
   * The producer is not to be used for another transaction: one ended without the broker
   * confirming it (the abort itself failed: the client still holds it as open, and the
   * coordinator may too), or one failed in the middle. After a failed produce the producer's
   * sequence numbers may be ahead of what a partition's new leader has (a broker died with the
   * batch): every later produce to that partition would be refused as out of order, for good.
   * A new producer (InitProducerId: a new epoch) starts the sequences again, as Kafka's Java
   * producer bumps its epoch after such an error.
   */
  renewBeforeNext: boolean;
}

export class KafkaCommitTarget implements CommitTarget {
  readonly wantsInboxPositions = true;
  readonly #options: KafkaCommitTargetOptions;
  /** Per inbox partition: the offset of the last message this worker's commits put there. */
  readonly #lastSent = new Map<number, bigint>();
  readonly #groupCoordinator: GroupCoordinatorCache = { nodeId: undefined };
  readonly #producers: CommitProducer[] = [];
  /** The producer the next commit takes. */
  #turn = 0;

  constructor(options: KafkaCommitTargetOptions) {
    this.#options = options;
    for (let index = 0; index < TRANSACTIONAL_PRODUCERS; index++) {
      this.#producers.push({ index, producer: options.createProducer(index), renewBeforeNext: false });
    }
  }

  /**
   * Claims the worker's transactional ids (InitProducerId each): an earlier incarnation's open
   * transactions are aborted now, and its producers fenced. Throws when the cluster cannot be
   * reached.
   */
  async claim(): Promise<void> {
    await Promise.all(this.#producers.map((slot) => claimOne(slot.producer)));
  }

  /**
   * claim(), tried again (each time on new producers: a failed InitProducerId leaves the
   * client's transaction half begun) until `waitMs` has passed: on a new Kafka cluster the
   * transaction coordinator is not there until Kafka has made its transaction-state topic,
   * which takes seconds. Throws the last failure.
   */
  async claimWithin(waitMs: number): Promise<void> {
    const deadline = performance.now() + waitMs;
    for (;;) {
      try {
        await this.claim();
        return;
      } catch (error) {
        if (performance.now() + CLAIM_RETRY_MS > deadline) throw error;
      }
      await new Promise((resume) => setTimeout(resume, CLAIM_RETRY_MS));
      for (const slot of this.#producers) {
        await slot.producer.close(true).catch(() => undefined);
        slot.producer = this.#options.createProducer(slot.index);
      }
    }
  }

  async close(): Promise<void> {
    await Promise.all(this.#producers.map((slot) => slot.producer.close()));
  }

  /** The offset of the last message this worker put in the inbox of `partition`, if any. */
  lastSentTo(partition: number): bigint | undefined {
    return this.#lastSent.get(partition);
  }

  async commit(batch: CommitBatch): Promise<CommitRefusal | undefined> {
    const { link, topics } = this.#options;
    const slot = this.#producers[this.#turn] as CommitProducer;
    this.#turn = (this.#turn + 1) % this.#producers.length;
    if (slot.renewBeforeNext) {
      const renewed = await this.#renewProducer(slot);
      if (renewed !== undefined)
        return refused(`the producer could not be renewed after a failed transaction: ${renewed}`);
    }
    const producer = slot.producer;
    const member = this.#options.membership();
    if (batch.partitions.length > 0 && member === undefined) {
      return refused("the worker is between two generations of its group");
    }
    const frames = framesByPartition(batch, member);
    const messages = [];
    for (const [partition, writes] of frames) {
      messages.push({ topic: topics.changelog, partition, value: encodeWritesFrame(writes) });
    }
    const sentTo = new Map<number, number>();
    for (const message of batch.outbound) {
      messages.push({
        topic: topics.inbox,
        partition: message.partition,
        key: inboxRecordKey(message),
        value: encodeInboxRecord(message),
      });
      sentTo.set(message.partition, (sentTo.get(message.partition) ?? 0) + 1);
    }
    for (const record of batch.published) {
      messages.push(
        record.key === undefined
          ? { topic: record.topic, partition: record.partition, value: record.value }
          : { topic: record.topic, partition: record.partition, key: record.key, value: record.value },
      );
    }
    let transaction: Awaited<ReturnType<typeof producer.beginTransaction>>;
    try {
      transaction = await producer.beginTransaction();
    } catch (error) {
      // The broker is unreachable or restarting: nothing was sent; the engine tries again later.
      return refused(`no transaction could begin: ${describe(error)}`);
    }
    let produced: Awaited<ReturnType<typeof transaction.send>>;
    let committing = false;
    try {
      // The group joins first: AddOffsetsToTxn is where a commit waits out the markers of this
      // producer's last transaction, if they are not written yet (txn-offsets.ts). Then the
      // records, then the offsets; not both at once: a
      // Produce beside a TxnOffsetCommit is refused NOT_ENOUGH_REPLICAS by the broker's
      // transaction verification (measured on Kafka 4.4), which the client retries after 1 s.
      const offsets = batch.partitions.length > 0 ? inboxOffsets(batch) : undefined;
      const fence = member as MembershipSnapshot;
      if (offsets !== undefined) {
        const added = await addGroupToTransaction(link, producer, fence);
        if (!added.ok) {
          await this.#abort(slot, transaction);
          return refused(added.message);
        }
      }
      produced = messages.length === 0 ? {} : await transaction.send({ messages });
      if (offsets !== undefined) {
        const fenced = await commitTransactionalOffsets(
          link,
          producer,
          fence,
          topics.inbox,
          offsets,
          this.#groupCoordinator,
        );
        if (!fenced.ok) {
          await this.#abort(slot, transaction);
          return refused(fenced.message);
        }
      }
      committing = true;
      await transaction.commit();
    } catch (error) {
      if (error instanceof BugError) throw error;
      await this.#abort(slot, transaction);
      slot.renewBeforeNext = true;
      if (committing) await this.#catchUpAfterUnknownOutcome(batch.partitions);
      return refused(`the transaction failed: ${describe(error)}`);
    }
    const offsetWrites: PendingWrite[] = [];
    for (const { topic, partition, offset } of produced.offsets ?? []) {
      if (topic === topics.changelog) offsetWrites.push(changelogOffsetWrite(partition, Number(offset)));
      else if (topic === topics.inbox) {
        // The batch's base offset; this commit's messages to the partition follow it.
        this.#lastSent.set(partition, offset + BigInt((sentTo.get(partition) ?? 1) - 1));
      }
    }
    if (offsetWrites.length !== frames.size) {
      throw new BugError(`the producer reported ${offsetWrites.length} changelog offsets for ${frames.size} frames`);
    }
    await this.#options.local.commit(offsetWrites.length === 0 ? batch.writes : [...batch.writes, ...offsetWrites]);
    return undefined;
  }

  /** Aborts `transaction` of `slot`; one whose abort fails is left unended (see renewBeforeNext). */
  async #abort(slot: CommitProducer, transaction: { abort(): Promise<unknown> }): Promise<void> {
    try {
      await transaction.abort();
    } catch {
      slot.renewBeforeNext = true;
    }
  }

  /**
   * A new producer for the transactional id: its InitProducerId aborts the old transaction if
   * it is still open (or finds it already ended: it committed, or timed out and was aborted),
   * and starts a new epoch, with sequence numbers from 0. Continuing on the old producer instead
   * could add the next commit to an unended transaction, whose records the engine has already
   * dropped, or send sequence numbers a new leader refuses. Returns why it could not be done
   * (the next commit tries again).
   */
  async #renewProducer(slot: CommitProducer): Promise<string | undefined> {
    await slot.producer.close(true).catch(() => undefined);
    slot.producer = this.#options.createProducer(slot.index);
    try {
      await claimOne(slot.producer);
    } catch (error) {
      return describe(error);
    }
    slot.renewBeforeNext = false;
    return undefined;
  }

  /**
   * The commit request failed without an answer: the transaction may have committed. The
   * local store takes whatever the changelog has before the engine rebuilds from it. A
   * changelog that cannot be read is a failure of the commit itself: the worker stops.
   */
  async #catchUpAfterUnknownOutcome(partitions: readonly number[]): Promise<void> {
    const now = () => performance.now();
    const caught = await catchUp(this.#options.changelogReader, this.#options.local, partitions, {
      nowMs: now,
      deadlineMs: now() + this.#options.catchUpTimeoutMs,
    });
    if (!caught.ok) throw new Error(`after a commit of unknown outcome: ${caught.message}`);
  }
}

/**
 * The commit's writes per partition, in partition order. Every write belongs to a partition
 * the worker holds in its generation: anything else is a bug here, which the fence would not
 * catch (the generation is right), so it stops the worker.
 */
function framesByPartition(batch: CommitBatch, member: MembershipSnapshot | undefined): Map<number, PendingWrite[]> {
  const frames = new Map<number, PendingWrite[]>();
  for (const partition of batch.partitions) frames.set(partition, []);
  for (const write of batch.writes) {
    const partition = partitionOfKey(write.key);
    const frame = partition === undefined ? undefined : frames.get(partition);
    if (frame === undefined) {
      throw new BugError(`a cluster commit writes ${JSON.stringify(write.key)}, outside the partitions it names`);
    }
    frame.push(write);
  }
  if (member !== undefined) {
    const held = new Set(member.partitions);
    const foreign = batch.partitions.filter((partition) => !held.has(partition));
    if (foreign.length > 0) {
      throw new BugError(
        `a commit writes partitions ${foreign.join(", ")}, which generation ${member.generationId} gave to others`,
      );
    }
  }
  return frames;
}

/** InitProducerId for `producer`'s transactional id, sent by the client's first beginTransaction. */
async function claimOne(producer: Producer<Buffers, Buffers, Buffers, Buffers>): Promise<void> {
  await (await producer.beginTransaction()).cancel();
}

function refused(message: string): CommitRefusal {
  return failure("commit-aborted", message, true);
}

/** The inbox position of every partition the commit writes, as the group's offsets of the inbox topic. */
function inboxOffsets(batch: CommitBatch): Map<number, bigint> {
  const positions = batch.inboxPositions;
  if (positions === undefined) throw new BugError("a cluster commit without its partitions' inbox positions");
  return new Map(batch.partitions.map((partition, index) => [partition, BigInt(positions[index] as number)] as const));
}
