// One LMDB environment. Reads are synchronous (memory-mapped), which suits the partition
// core; writes arrive as whole batches. Synced, commit() resolves only once LMDB has synced
// the transaction to disk; deferred (under the write-ahead log, logged-store.ts), it
// resolves once the writes are visible, and flushed() says when they are on disk. State values, in-flight
// batches and backlog rows are stored in a compact binary form (record-codec.ts); every
// other value as lmdb-js's msgpack.
import { type Key as LmdbKey, open, type RootDatabase } from "lmdb";
import { MAXIMUM_KEY } from "ordered-binary";
import type { Key, KeyValue, KV, ScanOptions } from "../core/kv.ts";
import type { PendingWrite } from "../core/overlay-kv.ts";
import { decodeRow, encodeRow } from "./record-codec.ts";

export interface LmdbStoreOptions {
  /** The state directory. */
  readonly path: string;
  /**
   * `synced` (default): a commit resolves once it is on disk. `deferred`: once it is
   * visible; LMDB syncs it right after, overlapped with what follows, and keeps its
   * integrity through a crash meanwhile (it falls back to the last synced transaction).
   */
  readonly sync?: "synced" | "deferred";
}

export class LmdbStore implements KV {
  readonly #db: RootDatabase<unknown, LmdbKey>;
  readonly #deferred: boolean;

  constructor(options: LmdbStoreOptions) {
    // lmdb-js by default syncs after the commit (overlappingSync), so a write's promise
    // means visible, not durable; synced mode turns that off, so it means durable.
    this.#deferred = options.sync === "deferred";
    this.#db = open<unknown, LmdbKey>({
      path: options.path,
      compression: false,
      noSync: false,
      overlappingSync: this.#deferred,
      noMemInit: true,
    });
  }

  /**
   * Copies the environment, compacted, into `dir` as `data.mdb`: a consistent copy of the
   * last committed transaction, taken off the main thread while writes go on.
   */
  async backup(dir: string): Promise<void> {
    await this.#db.backup(dir, true);
  }

  /**
   * Reads from now on see every transaction committed so far, also those another thread
   * committed. lmdb-js renews its read snapshot on a timer (setTimeout 0) after a read, and at
   * once only after a write of its own: a thread that only reads (a partition thread,
   * threads/thread-store.ts) can otherwise read, for the rest of a busy turn, a snapshot from
   * before writes it was told are done.
   */
  renewReads(): void {
    this.#db.resetReadTxn();
  }

  /** Resolves once every commit so far is on disk. */
  async flushed(): Promise<void> {
    await this.#db.flushed;
  }

  get(key: Key): unknown {
    return decodeRow(key, this.#db.get(key as LmdbKey));
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

  *scan(prefix: Key, options: ScanOptions = {}): Iterable<KeyValue> {
    const range = this.#db.getRange({
      start: (options.from ?? prefix) as LmdbKey,
      end: (options.before ?? [...prefix, MAXIMUM_KEY]) as LmdbKey,
      ...(options.limit === undefined ? {} : { limit: options.limit }),
    });
    for (const { key, value } of range) yield { key: key as Key, value: decodeRow(key as Key, value) };
  }

  /**
   * Writes a batch in one transaction, in order; resolves when it is durable (synced) or
   * visible (deferred). Deferred writes are queued for lmdb-js's write thread, which does
   * the B-tree work off the main thread; writes queued in one event turn share a transaction.
   */
  async commit(writes: readonly PendingWrite[]): Promise<void> {
    if (writes.length === 0) return;
    if (this.#deferred) {
      const written: Promise<boolean>[] = new Array(writes.length);
      for (let index = 0; index < writes.length; index++) {
        const write = writes[index] as PendingWrite;
        const key = write.key as LmdbKey;
        if (write.value === undefined) written[index] = this.#db.remove(key);
        else {
          written[index] = this.#db.put(key, encodeRow(write.key, write.value));
        }
      }
      // All of them, so a failed transaction is one error here, not an unhandled rejection per write.
      await Promise.all(written);
      return;
    }
    await this.#db.transaction(() => {
      for (const write of writes) {
        if (write.value === undefined) {
          this.#db.removeSync(write.key as LmdbKey);
          continue;
        }
        this.#db.putSync(write.key as LmdbKey, encodeRow(write.key, write.value));
      }
    });
  }

  async close(): Promise<void> {
    await this.#db.close();
  }
}
