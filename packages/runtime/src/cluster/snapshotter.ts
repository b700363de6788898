// The owner of a partition snapshots it to the checkpoint store every interval (the
// `--checkpoint-interval`, default 10 s) when its changelog moved since the last snapshot, then
// trims what the snapshot made unnecessary (DeleteRecords, as Restate trims its log behind
// snapshots): the partition's changelog up to the snapshot's offset, and its inbox up to the
// inbox position the snapshot holds (every record before it was delivered and committed). Old
// snapshots are pruned, the newest `keep` kept. So the changelog and the inbox stay about one
// interval long, and restoring a partition reads one snapshot and that much of the changelog.
//
// Trimming is safe whoever does it: a snapshot is written before anything it covers is
// trimmed, and a restore takes the newest snapshot there is (partition-snapshots.ts).
import type { Admin } from "@platformatic/kafka";
import type { KV } from "../core/kv.ts";
import { describe } from "../io/kafka/client-options.ts";
import type { Logger } from "../observe/logger.ts";
import { localChangelogOffset } from "./changelog.ts";
import type { ClusterTopicNames } from "./cluster-topics.ts";
import { pruneSnapshots, type SnapshotPlace, writeSnapshot } from "./partition-snapshots.ts";

export interface SnapshotterOptions {
  readonly place: SnapshotPlace;
  readonly local: KV;
  readonly admin: Admin;
  readonly topics: ClusterTopicNames;
  readonly intervalMs: number;
  /** Snapshots kept per partition (at least 1). */
  readonly keep: number;
  /** The partitions this worker runs now. */
  readonly owned: () => readonly number[];
  readonly log: Logger;
}

/** One round's work, for the log and tests. */
export interface SnapshotRound {
  readonly partitions: number;
  readonly bytes: number;
}

export class Snapshotter {
  readonly #options: SnapshotterOptions;
  /** Per partition: the changelog offset of the last snapshot written here. */
  readonly #snapshotted = new Map<number, number>();
  #timer: ReturnType<typeof setTimeout> | undefined;
  #round: Promise<unknown> | undefined;
  #stopped = false;
  /** The last failure logged, so that one that repeats is logged once. */
  #lastFailure: string | undefined;

  constructor(options: SnapshotterOptions) {
    this.#options = options;
  }

  start(): void {
    if (this.#options.intervalMs <= 0) return;
    this.#schedule();
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    clearTimeout(this.#timer);
    await this.#round;
  }

  /** Snapshots (and trims) every owned partition whose changelog moved since its last snapshot here. */
  async snapshotNow(): Promise<SnapshotRound> {
    const { place, local, keep } = this.#options;
    let partitions = 0;
    let bytes = 0;
    const changelogTrims: { partition: number; offset: bigint }[] = [];
    const inboxTrims: { partition: number; offset: bigint }[] = [];
    for (const partition of this.#options.owned()) {
      if (this.#stopped) break;
      const offset = localChangelogOffset(local, partition);
      if (offset < 0 || offset === this.#snapshotted.get(partition)) continue;
      const written = await writeSnapshot(place, local, partition);
      if (written === undefined) continue;
      this.#snapshotted.set(partition, written.offset);
      partitions++;
      bytes += written.bytes;
      changelogTrims.push({ partition, offset: BigInt(written.offset + 1) });
      if (written.inboxPosition > 0) inboxTrims.push({ partition, offset: BigInt(written.inboxPosition) });
      await pruneSnapshots(place, partition, Math.max(1, keep));
    }
    // Only what this worker still runs: a partition it released during the round is its next
    // owner's to trim (which may be reading the changelog right now).
    const stillOwned = new Set(this.#options.owned());
    const owned = (trim: { partition: number }) => stillOwned.has(trim.partition);
    changelogTrims.splice(0, changelogTrims.length, ...changelogTrims.filter(owned));
    inboxTrims.splice(0, inboxTrims.length, ...inboxTrims.filter(owned));
    const topics = [];
    if (changelogTrims.length > 0) topics.push({ name: this.#options.topics.changelog, partitions: changelogTrims });
    if (inboxTrims.length > 0) topics.push({ name: this.#options.topics.inbox, partitions: inboxTrims });
    if (topics.length > 0) await this.#options.admin.deleteRecords({ topics });
    return { partitions, bytes };
  }

  #schedule(): void {
    if (this.#stopped) return;
    this.#timer = setTimeout(() => {
      this.#round = this.snapshotNow().then(
        () => {
          if (this.#lastFailure !== undefined) this.#options.log.info("partition snapshots work again");
          this.#lastFailure = undefined;
        },
        (error: unknown) => {
          // The blob store or the cluster is away: the changelog keeps everything meanwhile.
          const message = describe(error);
          if (message !== this.#lastFailure) {
            this.#options.log.warn(`partition snapshots failed (${message}); the changelog keeps everything meanwhile`);
          }
          this.#lastFailure = message;
        },
      );
      void this.#round.then(() => this.#schedule());
    }, this.#options.intervalMs);
    this.#timer.unref?.();
  }
}
