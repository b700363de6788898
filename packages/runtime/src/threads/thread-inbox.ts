// A partition's thread inbox as it is stored (schema tables.threadInbox): read by the store host
// at its start (store-host.ts) and by the embedded runtime for what a threaded run left
// (leftover-inboxes.ts), and decoded for Engine.admitFromInbox by whoever delivers it.
import { decodeInboxRecord } from "../cluster/inbox-record.ts";
import type { KV } from "../core/kv.ts";
import type { InboxMessage } from "../core/partition-set.ts";
import { getRow, inPartition, scanRows, tables } from "../core/schema.ts";
import type { InboxEntry } from "./thread-protocol.ts";

/** A partition's inbox rows as the store holds them, and the position its delivery has reached. */
export interface StoredInbox {
  readonly position: number;
  /** Every row's offset, ascending: those before `position` are delivered and await their delete. */
  readonly offsets: readonly number[];
  /** The rows at or past `position`: not delivered yet. */
  readonly waiting: readonly InboxEntry[];
}

export function readInbox(store: KV, partition: number): StoredInbox {
  const position = getRow(store, inPartition(partition, tables.inboxPosition.key())) ?? 0;
  const offsets: number[] = [];
  const waiting: InboxEntry[] = [];
  for (const { key, value } of scanRows(store, inPartition(partition, tables.threadInbox.all))) {
    const offset = key[key.length - 1] as number;
    offsets.push(offset);
    if (offset >= position) waiting.push({ offset, record: value });
  }
  return { position, offsets, waiting };
}

/** Entries decoded for Engine.admitFromInbox; a record that does not decode names its partition and offset. */
export function decodeEntries(
  partition: number,
  entries: readonly InboxEntry[],
): { readonly message: InboxMessage; readonly offset: number }[] {
  return entries.map(({ offset, record }) => {
    const decoded = decodeInboxRecord(record);
    if (!decoded.ok) throw new Error(`partition ${partition}, thread inbox offset ${offset}: ${decoded.message}`);
    return { message: decoded.value, offset };
  });
}
