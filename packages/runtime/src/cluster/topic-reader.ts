// Reads chosen partitions of one of the cluster's own topics (the inbox, the changelog) from
// chosen offsets, as a read_committed consumer: only what committed transactions wrote, in
// order. No consumer group: the worker's membership (group-member.ts) says which partitions
// are its own, and the positions live in its partitions' rows, committed with their effects.
//
// One poll sends one Fetch per leader with every partition it leads, and returns each
// partition's committed records with the offset after them; aborted transactions' records and
// control batches are dropped (committed-records.ts, as the Kafka ingress reads). A partition
// whose leader moved, or whose metadata is not known yet, is looked up again before the next
// poll. Errors of the world (a broker restarting) are thrown: the caller's loop retries.
import { Consumer, FetchIsolationLevels } from "@platformatic/kafka";
import type { KafkaConnection } from "../io/kafka/client-options.ts";
import { AbortedProducers, type CommittedRecord, type FetchedBatch } from "../io/kafka/committed-records.ts";
import { isFetchSessionError } from "../io/kafka/fetch-session.ts";

const READ_COMMITTED = FetchIsolationLevels.READ_COMMITTED;

type FetchResponse = Awaited<ReturnType<Consumer["fetch"]>>;

export interface TopicReaderOptions {
  readonly connection: KafkaConnection;
  readonly topic: string;
  /** How long a fetch waits for records to arrive (a long poll). */
  readonly maxWaitMs: number;
  /** The most bytes one fetch asks for, and per partition. */
  readonly fetchBytes: number;
}

interface PartitionPosition {
  next: bigint;
  readonly aborted: AbortedProducers;
}

/** One partition's records of a poll, and where it reads next. */
export interface PolledPartition {
  readonly partition: number;
  readonly records: readonly CommittedRecord[];
  readonly next: bigint;
}

/** Kafka's error code for a fetch offset outside the partition's log. */
const OFFSET_OUT_OF_RANGE = 1;

export class TopicReader {
  readonly #options: TopicReaderOptions;
  readonly #consumer: Consumer;
  readonly #positions = new Map<number, PartitionPosition>();
  #topicId: string | undefined;
  /** Per partition: its leader and the leader's epoch, from the last metadata. */
  #leaders: { readonly leader: number; readonly leaderEpoch: number }[] = [];
  #metadataStale = true;
  /** Partitions whose position the broker no longer has (DeleteRecords trimmed past it), since the last seek. */
  readonly #trimmedPast = new Set<number>();

  constructor(options: TopicReaderOptions) {
    this.#options = options;
    this.#consumer = new Consumer({
      ...options.connection,
      // Never joins: the group id is only what the client insists on.
      groupId: `eddy-reader.${options.topic}`,
      isolationLevel: READ_COMMITTED,
    });
  }

  /** Reads `partition` from `offset` on (again, if it was read: a seek). */
  seek(partition: number, offset: bigint): void {
    this.#positions.set(partition, { next: offset, aborted: new AbortedProducers() });
    this.#trimmedPast.delete(partition);
  }

  /** Stops reading `partition`. */
  remove(partition: number): void {
    this.#positions.delete(partition);
    this.#trimmedPast.delete(partition);
  }

  /** Whether the broker answered that `partition`'s position is before its first offset (trimmed). */
  trimmedPast(partition: number): boolean {
    return this.#trimmedPast.has(partition);
  }

  get partitions(): number[] {
    return [...this.#positions.keys()].sort((a, b) => a - b);
  }

  position(partition: number): bigint | undefined {
    return this.#positions.get(partition)?.next;
  }

  /**
   * Each partition's end (its high watermark): everything written before the call, committed
   * or not. Not the last stable offset: a transaction left open (a worker killed in the middle
   * of one) holds that down at its first record, and records committed after it began (by the
   * partition's next owner) lie beyond it. A read_committed reader reaches this end once every
   * transaction open at the call has ended (committed, aborted, or timed out and aborted by the
   * coordinator), and then it has read every committed record written before the call.
   */
  async ends(partitions: readonly number[]): Promise<Map<number, bigint>> {
    const listed = await this.#consumer.listOffsets({
      topics: [this.#options.topic],
      partitions: { [this.#options.topic]: [...partitions] },
      timestamp: -1n,
      isolationLevel: FetchIsolationLevels.READ_UNCOMMITTED,
    });
    const ends = listed.get(this.#options.topic) ?? [];
    const result = new Map<number, bigint>();
    for (const partition of partitions) result.set(partition, ends[partition] ?? 0n);
    return result;
  }

  /** Each partition's first offset: where what DeleteRecords left begins (0 if nothing was trimmed). */
  async starts(partitions: readonly number[]): Promise<Map<number, bigint>> {
    const listed = await this.#consumer.listOffsets({
      topics: [this.#options.topic],
      partitions: { [this.#options.topic]: [...partitions] },
      timestamp: -2n,
      isolationLevel: READ_COMMITTED,
    });
    const starts = listed.get(this.#options.topic) ?? [];
    const result = new Map<number, bigint>();
    for (const partition of partitions) result.set(partition, starts[partition] ?? 0n);
    return result;
  }

  /** One fetch per leader; the partitions that returned records (or moved on past control batches). */
  async poll(): Promise<PolledPartition[]> {
    if (this.#positions.size === 0) return [];
    if (this.#metadataStale) await this.#refreshMetadata();
    const topicId = this.#topicId as string;
    const byLeader = new Map<number, number[]>();
    for (const partition of this.#positions.keys()) {
      const leader = this.#leaders[partition]?.leader ?? -1;
      if (leader < 0) {
        this.#metadataStale = true;
        continue;
      }
      byLeader.set(leader, [...(byLeader.get(leader) ?? []), partition]);
    }
    const responses = await Promise.all(
      [...byLeader].map(([node, partitions]) => {
        // Built anew for each attempt: the client changes the partitions' epochs on some errors.
        const request = () =>
          this.#consumer.fetch({
            node,
            maxWaitTime: this.#options.maxWaitMs,
            maxBytes: this.#options.fetchBytes,
            minBytes: 1,
            isolationLevel: READ_COMMITTED,
            topics: [
              {
                topicId,
                partitions: partitions.map((partition) => ({
                  partition,
                  fetchOffset: (this.#positions.get(partition) as PartitionPosition).next,
                  partitionMaxBytes: this.#options.fetchBytes,
                  currentLeaderEpoch: this.#leaders[partition]?.leaderEpoch ?? -1,
                  lastFetchedEpoch: -1,
                })),
              },
            ],
          });
        return request().catch((error: unknown) => {
          if (!isFetchSessionError(error)) {
            this.#metadataStale = true;
            throw error;
          }
          return request();
        });
      }),
    );
    return this.#take(responses);
  }

  #take(responses: readonly FetchResponse[]): PolledPartition[] {
    const polled: PolledPartition[] = [];
    for (const response of responses) {
      for (const topic of response.responses) {
        for (const fetched of topic.partitions) {
          const position = this.#positions.get(fetched.partitionIndex);
          if (position === undefined) continue;
          if (fetched.errorCode === OFFSET_OUT_OF_RANGE) {
            // Not a leader moving: the position is gone (trimmed). Reading on cannot cure it.
            this.#trimmedPast.add(fetched.partitionIndex);
            continue;
          }
          if (fetched.errorCode !== 0) {
            // A moved leader, a topic being created: look again before the next poll.
            this.#metadataStale = true;
            continue;
          }
          const { records, nextOffset } = position.aborted.take(
            position.next,
            (fetched.records ?? []) as unknown as FetchedBatch[],
            fetched.abortedTransactions,
          );
          if (nextOffset === position.next) continue;
          position.next = nextOffset;
          polled.push({ partition: fetched.partitionIndex, records, next: nextOffset });
        }
      }
    }
    return polled;
  }

  async #refreshMetadata(): Promise<void> {
    this.#consumer.topics.track(this.#options.topic);
    const metadata = await this.#consumer.metadata({
      topics: [this.#options.topic],
      forceUpdate: true,
      autocreateTopics: false,
    });
    const described = metadata.topics.get(this.#options.topic);
    if (described === undefined) throw new Error(`topic ${this.#options.topic} has no metadata`);
    this.#topicId = described.id;
    this.#leaders = described.partitions.map((state) => ({ leader: state.leader, leaderEpoch: state.leaderEpoch }));
    this.#metadataStale = false;
  }

  async close(): Promise<void> {
    await this.#consumer.close(true);
  }
}
