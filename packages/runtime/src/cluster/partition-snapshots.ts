// Per-partition snapshots in the checkpoint store (`--checkpoints`), so that the changelog can
// be trimmed and a partition restored without reading its whole history: a worker that takes
// over a partition (or lost its disk) places the newest snapshot in its local store and reads
// only the changelog after it.
//
// A snapshot is every row of one partition as the local store holds it, which is a committed
// prefix of the changelog: it includes the partition's `changelogOffset` row, the offset of the
// last changelog record it covers, and its `inboxPosition`. It is stored once, under a key
// named by the cluster and that offset (`clusters/<name>/partitions/<n>/<offset>.snapshot`: two
// clusters may share a checkpoint store), and never replaced: whoever
// writes one (the owner, or a zombie that has not yet learnt it lost the partition) writes a
// true prefix, and a restore takes the one with the highest offset. So a late, older snapshot
// can never hide a newer one, and the changelog is only trimmed behind a snapshot that exists.
//
// The body is the rows as one writes frame (store/writes-frame.ts), the changelog's own format.
import type { BlobStore } from "../checkpoint/blob/blob-store.ts";
import type { KV } from "../core/kv.ts";
import type { PendingWrite } from "../core/overlay-kv.ts";
import { getRow, inPartition, partitionKeyPrefix, partitionOfKey, tables } from "../core/schema.ts";
import type { DurableStore } from "../engine/engine.ts";
import { failure, type Result, success } from "../errors.ts";
import { decodeWritesFrame, encodeWritesFrame } from "../store/writes-frame.ts";
import { localChangelogOffset } from "./changelog.ts";

const OFFSET_DIGITS = 16;
const SUFFIX = ".snapshot";

/** A cluster's snapshots: the checkpoint store, and the cluster's name (its own folder there). */
export interface SnapshotPlace {
  readonly blobs: BlobStore;
  readonly cluster: string;
}

/** Where partition `partition`'s snapshots are kept. */
export function snapshotPrefix(place: SnapshotPlace, partition: number): string {
  return `clusters/${place.cluster}/partitions/${partition}/`;
}

function snapshotKey(place: SnapshotPlace, partition: number, offset: number): string {
  return `${snapshotPrefix(place, partition)}${String(offset).padStart(OFFSET_DIGITS, "0")}${SUFFIX}`;
}

/** The changelog offset a snapshot key names; undefined for a key that is not a snapshot. */
function offsetOfKey(place: SnapshotPlace, partition: number, key: string): number | undefined {
  const prefix = snapshotPrefix(place, partition);
  if (!key.startsWith(prefix) || !key.endsWith(SUFFIX)) return undefined;
  const digits = key.slice(prefix.length, key.length - SUFFIX.length);
  return /^\d{1,16}$/.test(digits) ? Number(digits) : undefined;
}

/** The snapshots of a partition, oldest first. */
export async function listSnapshots(
  place: SnapshotPlace,
  partition: number,
): Promise<{ readonly key: string; readonly offset: number }[]> {
  const keys = await place.blobs.list(snapshotPrefix(place, partition));
  const found: { key: string; offset: number }[] = [];
  for (const key of keys) {
    const offset = offsetOfKey(place, partition, key);
    if (offset !== undefined) found.push({ key, offset });
  }
  return found.sort((a, b) => a.offset - b.offset);
}

/** Every row of `partition` in `local`, as puts. */
export function partitionRows(local: KV, partition: number): PendingWrite[] {
  const rows: PendingWrite[] = [];
  for (const { key, value } of local.scan(partitionKeyPrefix(partition))) rows.push({ key, value });
  return rows;
}

/**
 * Writes a snapshot of `partition` as `local` holds it now; resolves with the changelog offset
 * it covers (its inbox position with it), or undefined when the local store holds nothing of
 * the changelog for it yet. The rows are read in one synchronous pass, between two commits of
 * the local store, so they are one committed state.
 */
export async function writeSnapshot(
  place: SnapshotPlace,
  local: KV,
  partition: number,
): Promise<{ readonly offset: number; readonly inboxPosition: number; readonly bytes: number } | undefined> {
  const offset = localChangelogOffset(local, partition);
  if (offset < 0) return undefined;
  const inboxPosition = getRow(local, inPartition(partition, tables.inboxPosition.key())) ?? 0;
  const body = encodeWritesFrame(partitionRows(local, partition));
  await place.blobs.put(snapshotKey(place, partition, offset), body);
  return { offset, inboxPosition, bytes: body.byteLength };
}

export type SnapshotFailure = "snapshot-missing" | "snapshot-malformed";

/**
 * Makes `partition` in `local` exactly the newest snapshot that covers the changelog up to at
 * least `needOffset` (the offset before the changelog's first record: what was trimmed). The
 * rows the local store had of the partition are replaced in one commit. A snapshot that is
 * not there is a failure the caller cannot cure: the changelog it needs was trimmed.
 */
export async function restoreSnapshot(
  place: SnapshotPlace,
  local: DurableStore,
  partition: number,
  needOffset: number,
): Promise<Result<{ readonly offset: number; readonly bytes: number }, SnapshotFailure>> {
  const { blobs } = place;
  const newest = (await listSnapshots(place, partition)).at(-1);
  if (newest === undefined || newest.offset < needOffset) {
    return failure(
      "snapshot-missing",
      `partition ${partition}: the changelog starts after offset ${needOffset}, and ${blobs.url} has no snapshot that covers it (${newest === undefined ? "none at all" : `the newest covers ${newest.offset}`})`,
      false,
    );
  }
  const body = await blobs.get(newest.key);
  if (body === undefined) {
    return failure(
      "snapshot-missing",
      `partition ${partition}: ${blobs.url} lost ${newest.key} while it was read`,
      true,
    );
  }
  let rows: PendingWrite[];
  try {
    rows = decodeWritesFrame(body);
  } catch (error) {
    return failure(
      "snapshot-malformed",
      `${blobs.url} ${newest.key}: not a snapshot (${error instanceof Error ? error.message : String(error)})`,
      false,
    );
  }
  if (rows.some((row) => partitionOfKey(row.key) !== partition || row.value === undefined)) {
    return failure("snapshot-malformed", `${blobs.url} ${newest.key}: holds rows of another partition`, false);
  }
  const covered = rows.find((row) => partitionOfKey(row.key) === partition && isChangelogOffset(row, partition));
  if (covered?.value !== newest.offset) {
    return failure(
      "snapshot-malformed",
      `${blobs.url} ${newest.key}: its rows do not cover offset ${newest.offset}`,
      false,
    );
  }
  // Rows the local copy has and the snapshot has not are deleted; the others are overwritten.
  const kept = new Set(rows.map((row) => JSON.stringify(row.key)));
  const stale: PendingWrite[] = partitionRows(local, partition)
    .filter(({ key }) => !kept.has(JSON.stringify(key)))
    .map(({ key }) => ({ key, value: undefined }));
  await local.commit([...stale, ...rows]);
  return success({ offset: newest.offset, bytes: body.byteLength });
}

function isChangelogOffset(row: PendingWrite, partition: number): boolean {
  const key = inPartition(partition, tables.changelogOffset.key());
  return row.key.length === key.length && row.key.every((part, index) => part === key[index]);
}

/** Deletes all but the newest `keep` snapshots of `partition`. */
export async function pruneSnapshots(place: SnapshotPlace, partition: number, keep: number): Promise<void> {
  const all = await listSnapshots(place, partition);
  const old = all.slice(0, Math.max(0, all.length - keep)).map((snapshot) => snapshot.key);
  if (old.length > 0) await place.blobs.delete(old);
}
