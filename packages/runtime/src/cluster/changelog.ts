// The changelog topic (`eddy.<name>.changelog`) is where a cluster's partitions are durable:
// one record per partition per group commit, holding that partition's writes (a writes frame,
// store/writes-frame.ts), written in the same Kafka transaction as everything else the commit
// did. A worker's local store is a cache of it: each partition's rows plus the offset of the
// last changelog record they include (`changelogOffset`). Catching up reads the records after
// that offset, up to what is stable now, and applies them in order: a partition taken over
// from another worker, a restart on an old disk, or an empty disk (from offset 0).
import type { KV } from "../core/kv.ts";
import type { PendingWrite } from "../core/overlay-kv.ts";
import { getRow, inPartition, partitionOfKey, rowWrite, tables } from "../core/schema.ts";
import type { DurableStore } from "../engine/engine.ts";
import { failure, type Result, success } from "../errors.ts";
import { decodeWritesFrame } from "../store/writes-frame.ts";
import type { TopicReader } from "./topic-reader.ts";

/** The local store's record of the changelog offset it holds of `partition`, as a write. */
export function changelogOffsetWrite(partition: number, offset: number): PendingWrite {
  return rowWrite(inPartition(partition, tables.changelogOffset.key()), offset);
}

/** The offset of the last changelog record of `partition` the local store holds; -1 for none. */
export function localChangelogOffset(local: KV, partition: number): number {
  return getRow(local, inPartition(partition, tables.changelogOffset.key())) ?? -1;
}

/** The most records applied to the local store in one of its commits while catching up. */
const RECORDS_PER_APPLY_MAX = 256;

export type CatchUpFailure = "changelog-malformed" | "changelog-stalled" | "changelog-trimmed";

/**
 * Brings the local store's copy of `partitions` up to the changelog's end as it is now,
 * committed records only. The caller makes sure nobody else commits to them meanwhile (the
 * group gave them to this worker). A transaction a killed worker left open is waited out (the
 * coordinator aborts it after the transaction timeout): reading only to the last stable offset
 * would stop at its first record and miss what later owners committed after it. `deadlineMs`
 * (on `nowMs`'s clock) bounds a reader that makes no progress.
 */
export async function catchUp(
  reader: TopicReader,
  local: DurableStore,
  partitions: readonly number[],
  options: { readonly deadlineMs: number; readonly nowMs: () => number },
): Promise<Result<{ readonly records: number }, CatchUpFailure>> {
  if (partitions.length === 0) return success({ records: 0 });
  const ends = await reader.ends(partitions);
  const left = new Set<number>();
  for (const partition of partitions) {
    const from = BigInt(localChangelogOffset(local, partition) + 1);
    if (from < (ends.get(partition) ?? 0n)) {
      reader.seek(partition, from);
      left.add(partition);
    }
  }
  let records = 0;
  try {
    while (left.size > 0) {
      if (options.nowMs() > options.deadlineMs) {
        return failure(
          "changelog-stalled",
          `changelog partitions ${[...left].join(", ")} were not read to their end in time`,
          true,
        );
      }
      const polledNow = await reader.poll();
      const trimmed = [...left].filter((partition) => reader.trimmedPast(partition));
      if (trimmed.length > 0) {
        // Another worker snapshotted these and trimmed their changelog while they were read:
        // the caller restores the newest snapshot and catches up again.
        return failure(
          "changelog-trimmed",
          `changelog partitions ${trimmed.join(", ")} were trimmed past the records being read`,
          true,
        );
      }
      for (const polled of polledNow) {
        if (!left.has(polled.partition)) continue;
        const writes: PendingWrite[] = [];
        let applied = 0;
        for (const record of polled.records) {
          if (record.value === null) continue;
          let frame: PendingWrite[];
          try {
            frame = decodeWritesFrame(record.value);
          } catch (error) {
            return failure(
              "changelog-malformed",
              `changelog partition ${polled.partition} offset ${record.offset}: not a writes frame (${error instanceof Error ? error.message : String(error)})`,
              false,
            );
          }
          for (const write of frame) {
            if (partitionOfKey(write.key) !== polled.partition) {
              return failure(
                "changelog-malformed",
                `changelog partition ${polled.partition} offset ${record.offset} writes a row of another partition`,
                false,
              );
            }
            writes.push(write);
          }
          writes.push(changelogOffsetWrite(polled.partition, Number(record.offset)));
          records++;
          if (++applied >= RECORDS_PER_APPLY_MAX) {
            await local.commit(writes.splice(0));
            applied = 0;
          }
        }
        if (writes.length > 0) await local.commit(writes);
        if (polled.next >= (ends.get(polled.partition) ?? 0n)) left.delete(polled.partition);
      }
    }
  } finally {
    for (const partition of partitions) reader.remove(partition);
  }
  return success({ records });
}
