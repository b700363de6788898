// In a cluster, each partition of an external source (a Kafka topic partition of an ingress,
// a Kinesis stream) is bound to one of the cluster's partitions by a stable hash, and is read by the worker that
// runs that partition, with its position kept among that partition's rows: the position then
// commits in the partition's writes (its changelog frame, fenced by the group generation) and
// moves with the partition, so its next owner resumes exactly where the last commit left it.
// The group assigns only the cluster's partitions; which worker reads a source partition
// follows from that (a group assigning the source partitions themselves would keep their
// positions in __consumer_offsets, a second source of truth beside the changelog).
//
// The binding is fixed for the cluster's life: it depends on the partition count, which is
// fixed too, and the hash is the one addresses use (FNV-1a, core/partitioning.ts).
import { partitionOf } from "../core/partitioning.ts";

/**
 * The partition a Kafka ingress's source partition is bound to:
 * FNV-1a("kafka\0<ingress>\0<topic>\0<partition>") mod `partitionCount`. NUL separates the parts
 * (none of them can hold one: Kafka topic names are [a-zA-Z0-9._-], ingress ids are module ids).
 */
export function kafkaSourcePartition(
  ingress: string,
  topic: string,
  partition: number,
  partitionCount: number,
): number {
  return partitionOf(`kafka\0${ingress}\0${topic}\0${partition}`, partitionCount);
}

/**
 * The partition a Kinesis ingress's stream is bound to: FNV-1a("kinesis\0<ingress>\0<stream>")
 * mod `partitionCount`. A whole stream, not each shard: a shard may start only once its parents
 * are read to their end (a split or a merge), which only the reader of the parents' positions
 * knows, so every shard of a stream is read by one worker.
 */
export function kinesisSourcePartition(ingress: string, stream: string, partitionCount: number): number {
  return partitionOf(`kinesis\0${ingress}\0${stream}`, partitionCount);
}

/**
 * What a cluster worker tells the sources bound to its partitions: the partition count and the
 * partitions it runs now (ClusterWorker's onPartitionsChanged). Sources read only the source
 * partitions bound to those; a listener is woken on every change so a source picks up a new
 * partition at once. The engine (SourceSink.sourceRun) stays the truth of what runs here: a
 * source checks it at every admission.
 */
export class SourceBinding {
  readonly partitionCount: number;
  #owned: ReadonlySet<number> = new Set();
  readonly #listeners = new Set<() => void>();

  constructor(partitionCount: number) {
    this.partitionCount = partitionCount;
  }

  /** Whether the worker runs `partition`, as last told. */
  runs(partition: number): boolean {
    return this.#owned.has(partition);
  }

  /** The worker's partitions changed: `owned` are those it runs now. */
  changed(owned: readonly number[]): void {
    this.#owned = new Set(owned);
    for (const listener of this.#listeners) listener();
  }

  /** Calls `listener` after every change; returns its removal. */
  subscribe(listener: () => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }
}
