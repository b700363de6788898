// A state directory last run on partition threads may hold messages between threads that were
// made durable and not yet delivered (store-host.ts): a crash, or a stop while a thread sent to
// one that had stopped already. The embedded engine runs every partition and has no store host,
// so at its start it delivers them itself, in offset order and before anything else, exactly
// as a partition thread would (the inbox position commits with the delivery), and deletes the
// rows in the same commit. A directory that never ran on threads has none: this reads one
// empty range per partition.
import { decodeInboxRecord } from "../cluster/inbox-record.ts";
import type { KV } from "../core/kv.ts";
import type { InboxMessage } from "../core/partition-set.ts";
import { getRow, inPartition, scanRows, tables } from "../core/schema.ts";
import type { Engine } from "../engine/engine.ts";

/** Delivers every partition's leftover inbox messages; resolves with how many were delivered, once durable. */
export async function deliverLeftoverInboxes(engine: Engine, store: KV, partitionCount: number): Promise<number> {
  let delivered = 0;
  for (let partition = 0; partition < partitionCount; partition++) {
    const position = getRow(store, inPartition(partition, tables.inboxPosition.key())) ?? 0;
    const rows = [...scanRows(store, inPartition(partition, tables.threadInbox.all))];
    if (rows.length === 0) continue;
    const records: { message: InboxMessage; offset: number }[] = [];
    for (const { key, value } of rows) {
      const offset = key[key.length - 1] as number;
      if (offset < position) continue;
      const decoded = decodeInboxRecord(value);
      if (!decoded.ok) throw new Error(`partition ${partition}, thread inbox offset ${offset}: ${decoded.message}`);
      records.push({ message: decoded.value, offset });
    }
    if (records.length > 0) {
      const outcome = await engine.admitFromInbox(partition, records, engine.resets);
      if (outcome !== "admitted")
        throw new Error(`partition ${partition}: its leftover inbox was not delivered (${outcome})`);
      delivered += records.length;
    }
    // With the delivery (the same pending commit): the rows are passed, and no thread host trims them here.
    await engine.transact((transaction) => {
      for (const { key } of rows) transaction.delete(key);
    });
  }
  return delivered;
}
