// Reads what waits in partitions' inboxes for a savepoint (savepoint-participant.ts): each
// partition from its inbox position up to the topic's end (its high watermark) as it is when
// asked, committed records only. While the cluster holds its commits the end does not move, so
// this is every message sent to the partition and not yet taken. A transaction a killed worker
// left open keeps a read_committed reader short of the end until Kafka aborts it (the
// transaction timeout): then the deadline passes, and the savepoint fails, saying so.
import { failure, type Result, success } from "../errors.ts";
import type { SavedInboxRecord } from "./savepoint-format.ts";
import type { TopicReader } from "./topic-reader.ts";

export async function readInboxTails(
  reader: TopicReader,
  from: ReadonlyMap<number, number>,
  deadlineMs: number,
  nowMs: () => number = () => performance.now(),
): Promise<Result<Map<number, SavedInboxRecord[]>, "savepoint-inbox-unread">> {
  const tails = new Map<number, SavedInboxRecord[]>();
  const partitions = [...from.keys()];
  if (partitions.length === 0) return success(tails);
  const ends = await reader.ends(partitions);
  const left = new Set<number>();
  for (const [partition, position] of from) {
    tails.set(partition, []);
    if (BigInt(position) < (ends.get(partition) ?? 0n)) {
      reader.seek(partition, BigInt(position));
      left.add(partition);
    }
  }
  try {
    while (left.size > 0) {
      if (nowMs() > deadlineMs) {
        return failure(
          "savepoint-inbox-unread",
          `inbox partitions ${[...left].join(", ")} could not be read to their end in time (a transaction left open by a killed worker holds them until Kafka aborts it); try again`,
          true,
        );
      }
      const trimmed = [...left].filter((partition) => reader.trimmedPast(partition));
      if (trimmed.length > 0) {
        return failure(
          "savepoint-inbox-unread",
          `inbox partitions ${trimmed.join(", ")} were trimmed past their position`,
          false,
        );
      }
      for (const polled of await reader.poll()) {
        if (!left.has(polled.partition)) continue;
        const end = ends.get(polled.partition) ?? 0n;
        const tail = tails.get(polled.partition) as SavedInboxRecord[];
        for (const record of polled.records) {
          if (record.value === null || record.offset >= end) continue;
          tail.push({
            key: record.key === null ? null : new Uint8Array(record.key),
            value: new Uint8Array(record.value),
          });
        }
        if (polled.next >= end) left.delete(polled.partition);
      }
    }
  } finally {
    for (const partition of partitions) reader.remove(partition);
  }
  return success(tails);
}
