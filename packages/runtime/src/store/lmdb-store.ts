// The durable local store: one LMDB environment. Reads are synchronous (memory-mapped),
// which suits the partition core; writes arrive as whole group commits, and commit()
// resolves only once LMDB has synced the transaction to disk. State values, in-flight
// batches and backlog rows are stored in a compact binary form (record-codec.ts); every
// other value as lmdb-js's msgpack.
import { type Key as LmdbKey, open, type RootDatabase } from "lmdb";
import { MAXIMUM_KEY } from "ordered-binary";
import type { Key, KeyValue, KV } from "../core/kv.ts";
import type { PendingWrite } from "../core/overlay-kv.ts";
import { codecTable, decodeRecord, encodeRecord } from "./record-codec.ts";

/** A stored value as the core sees it: a codec table's row decoded (a row from before the codec is already an object). */
function fromStore(key: Key, value: unknown): unknown {
  return value instanceof Uint8Array && codecTable(key) !== undefined ? decodeRecord(value) : value;
}

export interface LmdbStoreOptions {
  /** The state directory. */
  readonly path: string;
}

export class LmdbStore implements KV {
  readonly #db: RootDatabase<unknown, LmdbKey>;

  constructor(options: LmdbStoreOptions) {
    // Durability comes from syncing every commit; group commit amortizes the sync. lmdb-js
    // by default syncs after the commit (overlappingSync), so a transaction's promise would
    // mean visible, not durable; with it off, the promise resolves once the commit is synced.
    this.#db = open<unknown, LmdbKey>({
      path: options.path,
      compression: false,
      noSync: false,
      overlappingSync: false,
      noMemInit: true,
    });
  }

  get(key: Key): unknown {
    return fromStore(key, this.#db.get(key as LmdbKey));
  }

  /** Direct writes are not how the store changes: everything goes through commit(). */
  put(): void {
    throw new Error("LmdbStore.put: write through commit()");
  }

  insert(): void {
    throw new Error("LmdbStore.insert: write through commit()");
  }

  delete(): void {
    throw new Error("LmdbStore.delete: write through commit()");
  }

  *scan(prefix: Key, options: { readonly before?: Key; readonly limit?: number } = {}): Iterable<KeyValue> {
    const range = this.#db.getRange({
      start: prefix as LmdbKey,
      end: (options.before ?? [...prefix, MAXIMUM_KEY]) as LmdbKey,
      ...(options.limit === undefined ? {} : { limit: options.limit }),
    });
    for (const { key, value } of range) yield { key: key as Key, value: fromStore(key as Key, value) };
  }

  /** Writes one group commit in one transaction; resolves when it is durable. */
  async commit(writes: readonly PendingWrite[]): Promise<void> {
    if (writes.length === 0) return;
    await this.#db.transaction(() => {
      for (const write of writes) {
        if (write.value === undefined) {
          this.#db.removeSync(write.key as LmdbKey);
          continue;
        }
        const table = codecTable(write.key);
        this.#db.putSync(write.key as LmdbKey, table === undefined ? write.value : encodeRecord(table, write.value));
      }
    });
  }

  async close(): Promise<void> {
    await this.#db.close();
  }
}
