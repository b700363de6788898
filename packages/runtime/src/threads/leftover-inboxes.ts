// A state directory last run on partition threads may hold messages between threads that were
// made durable and not yet delivered (store-host.ts): a crash, or a stop while a thread sent to
// one that had stopped already. The embedded engine runs every partition and has no store host,
// so at its start it delivers them itself, in offset order and before anything else, exactly
// as a partition thread would (the inbox position commits with the delivery), and deletes the
// rows in the same commit. A directory that never ran on threads has none: this reads one
// row and one empty range per partition.
import type { KV } from "../core/kv.ts";
import { inPartition, tables } from "../core/schema.ts";
import type { Engine } from "../engine/engine.ts";
import { decodeEntries, readInbox } from "./thread-inbox.ts";

/** Delivers every partition's leftover inbox messages; resolves with how many were delivered, once durable. */
export async function deliverLeftoverInboxes(engine: Engine, store: KV, partitionCount: number): Promise<number> {
  let delivered = 0;
  for (let partition = 0; partition < partitionCount; partition++) {
    const { offsets, waiting } = readInbox(store, partition);
    if (offsets.length === 0) continue;
    if (waiting.length > 0) {
      const outcome = await engine.admitFromInbox(partition, decodeEntries(partition, waiting), engine.resets);
      if (outcome !== "admitted") {
        throw new Error(`partition ${partition}: its leftover inbox was not delivered (${outcome})`);
      }
      delivered += waiting.length;
    }
    // With the delivery (the same pending commit): the rows are passed, and no store host trims them here.
    await engine.transact((transaction) => {
      for (const offset of offsets) transaction.delete(inPartition(partition, tables.threadInbox.key(offset)));
    });
  }
  return delivered;
}
