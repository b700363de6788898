// A transaction over a base KV: writes stay in memory, reads see them, `takeWrites()`
// hands them to the commit. This is how the engine groups many events into one durable
// commit, and how the simulation crashes: it drops the overlay and keeps the base.
import { compareKeys, encodeKey, type Key, type KeyValue, type KV, startsWith } from "./kv.ts";

const DELETED = Symbol("deleted");

export interface PendingWrite {
  readonly key: Key;
  /** undefined means delete. */
  readonly value: unknown;
}

interface Write {
  readonly key: Key;
  value: unknown;
}

/**
 * Scans look only at the pending writes under their prefix: every write is indexed under
 * its prefixes of INDEXED_LENGTHS parts (["p", 3, "backlog"], ["p", 3, "backlog", address]:
 * the tables of a partition, and one address's rows), so a scan of a small range stays
 * small however many writes a group commit holds. Other prefixes scan every pending write.
 */
const INDEXED_LENGTHS = [3, 4];
const INDEXED_LENGTH_MAX = 4;

export class OverlayKV implements KV {
  readonly #base: KV;
  #writes = new Map<string, Write>();
  #byPrefix = new Map<string, Map<string, Write>>();

  constructor(base: KV) {
    this.#base = base;
  }

  get pendingCount(): number {
    return this.#writes.size;
  }

  get(key: Key): unknown {
    const pending = this.#writes.get(encodeKey(key));
    if (pending === undefined) return this.#base.get(key);
    return pending.value === DELETED ? undefined : pending.value;
  }

  put(key: Key, value: unknown): void {
    this.#write(key, value);
  }

  delete(key: Key): void {
    this.#write(key, DELETED);
  }

  #write(key: Key, value: unknown): void {
    const encoded = encodeKey(key);
    const existing = this.#writes.get(encoded);
    if (existing !== undefined) {
      existing.value = value;
      return;
    }
    const write: Write = { key, value };
    this.#writes.set(encoded, write);
    // Parts are separated by NUL in the encoding (NUL inside a string part is escaped), so
    // a prefix's encoding is the key's encoding up to a separator.
    let end = -1;
    for (let length = 1; length <= Math.min(key.length, INDEXED_LENGTH_MAX); length++) {
      end = length === key.length ? encoded.length : encoded.indexOf("\u0000", end + 1);
      if (!INDEXED_LENGTHS.includes(length)) continue;
      const prefix = encoded.slice(0, end);
      let writes = this.#byPrefix.get(prefix);
      if (writes === undefined) {
        writes = new Map();
        this.#byPrefix.set(prefix, writes);
      }
      writes.set(encoded, write);
    }
  }

  /** The pending writes a scan of `prefix` must merge, from the index when the prefix is indexed. */
  #pendingUnder(prefix: Key): Iterable<Write> {
    if (INDEXED_LENGTHS.includes(prefix.length)) return this.#byPrefix.get(encodeKey(prefix))?.values() ?? [];
    return this.#writes.values();
  }

  *scan(prefix: Key, options: { readonly before?: Key; readonly limit?: number } = {}): Iterable<KeyValue> {
    const inRange = (key: Key) =>
      startsWith(key, prefix) && (options.before === undefined || compareKeys(key, options.before) < 0);
    const pending = [...this.#pendingUnder(prefix)]
      .filter((write) => inRange(write.key))
      .sort((a, b) => compareKeys(a.key, b.key));
    const base = this.#base
      .scan(prefix, options.before === undefined ? {} : { before: options.before })
      [Symbol.iterator]();
    // Always close the base iterator: an LMDB range holds a read transaction until closed.
    try {
      let next = base.next();
      let index = 0;
      let count = 0;
      const limit = options.limit ?? Number.POSITIVE_INFINITY;
      while (count < limit) {
        const write = pending[index];
        if (next.done && write === undefined) return;
        const order = next.done ? 1 : write === undefined ? -1 : compareKeys(next.value.key, write.key);
        if (order < 0) {
          yield next.value;
          next = base.next();
          count++;
          continue;
        }
        if (order === 0) next = base.next(); // the pending write shadows the base entry
        index++;
        if ((write as { value: unknown }).value !== DELETED) {
          yield { key: (write as { key: Key }).key, value: (write as { value: unknown }).value };
          count++;
        }
      }
    } finally {
      base.return?.();
    }
  }

  /** The writes since the last call, in no particular order, leaving the overlay empty. */
  takeWrites(): PendingWrite[] {
    const writes = [...this.#writes.values()].map((write) => ({
      key: write.key,
      value: write.value === DELETED ? undefined : write.value,
    }));
    this.#writes = new Map();
    this.#byPrefix = new Map();
    return writes;
  }

  /** Forgets every pending write (a crash before the commit). */
  discard(): void {
    this.#writes = new Map();
    this.#byPrefix = new Map();
  }
}

/** Applies writes to a KV (the in-memory stand-in for a durable commit). */
export function applyWrites(kv: KV, writes: readonly PendingWrite[]): void {
  for (const write of writes) {
    if (write.value === undefined) kv.delete(write.key);
    else kv.put(write.key, write.value);
  }
}
