// A transaction over a base KV: writes stay in memory, reads see them, and `seal()` hands
// them to a commit. This is how the engine groups many events into one durable commit,
// and how the simulation crashes: it drops the overlay and keeps the base.
//
// Two generations of writes are readable: the pending one, which takes new writes, and
// the sealed one, handed to the commit in flight and kept readable until `release()` says
// the base has it. So the writes of a group commit are never copied from one place to
// another, and the next group gathers while the last one syncs.
//
// A generation is a trie over key parts (a Map per level). A write walks a few small maps
// whose keys are literals, numbers or strings the caller reuses (hashes V8 caches), with
// no key encoding; a scan of a prefix walks to its node and collects what lies below,
// so a scan of one address's backlog stays small however many writes a commit holds.
import { compareKeys, type Key, type KeyPart, type KeyValue, type KV, type ScanOptions } from "./kv.ts";

const DELETED = Symbol("deleted");

export interface PendingWrite {
  readonly key: Key;
  /** undefined means delete. */
  readonly value: unknown;
  /**
   * The key was absent from the base when this write began (an `insert`): a store that
   * holds writes in memory before they reach disk (the LoggedStore's memtable) may let a
   * later delete in the same batch drop both, as this overlay does within one generation.
   */
  readonly fresh?: boolean;
}

interface Write {
  readonly key: Key;
  value: unknown;
  /**
   * Inserted where the key was absent (see `insert`): a delete in the same generation
   * drops the write instead of recording a delete, so a row that is born and dies within
   * one group commit (a batch answered before its commit) costs the store nothing.
   */
  readonly fresh: boolean;
}

interface TrieNode {
  children: Map<KeyPart, TrieNode> | undefined;
  write: Write | undefined;
}

class Generation {
  readonly root: TrieNode = { children: undefined, write: undefined };
  size = 0;

  find(key: Key): TrieNode | undefined {
    let node: TrieNode | undefined = this.root;
    for (let index = 0; index < key.length && node !== undefined; index++) {
      node = node.children?.get(key[index] as KeyPart);
    }
    return node;
  }

  findOrCreate(key: Key): TrieNode {
    let node = this.root;
    for (let index = 0; index < key.length; index++) {
      const part = key[index] as KeyPart;
      if (node.children === undefined) node.children = new Map();
      let child = node.children.get(part);
      if (child === undefined) {
        child = { children: undefined, write: undefined };
        node.children.set(part, child);
      }
      node = child;
    }
    return node;
  }

  /** Every write at or below `node`, in no particular order. */
  collect(node: TrieNode | undefined, into: Write[]): Write[] {
    if (node === undefined) return into;
    if (node.write !== undefined) into.push(node.write);
    if (node.children !== undefined) for (const child of node.children.values()) this.collect(child, into);
    return into;
  }
}

const byKey = (a: Write, b: Write) => compareKeys(a.key, b.key);

export interface OverlayOptions {
  /** Where the overlay's keys live in the base: reads and sealed writes are prefixed with it. */
  readonly basePrefix?: Key;
  /** Check every insert's promise that the key is absent (a read per insert: for tests and the simulation). */
  readonly checkInserts?: boolean;
  /** A count of pending writes shared by several overlays (kept up to date by each). */
  readonly pendingTally?: PendingTally;
}

export interface PendingTally {
  count: number;
}

export class OverlayKV implements KV {
  readonly #base: KV;
  readonly #basePrefix: Key;
  readonly #checkInserts: boolean;
  readonly #tally: PendingTally;
  #pending = new Generation();
  #sealed: Generation | undefined;

  constructor(base: KV, options: OverlayOptions = {}) {
    this.#base = base;
    this.#basePrefix = options.basePrefix ?? [];
    this.#checkInserts = options.checkInserts ?? false;
    this.#tally = options.pendingTally ?? { count: 0 };
  }

  /** Writes waiting for the next seal. */
  get pendingCount(): number {
    return this.#pending.size;
  }

  #inBase(key: Key): Key {
    // concat allocates the exact size; a spread grows an array part by part (seal runs this
    // for every write of every commit).
    return this.#basePrefix.length === 0 ? key : this.#basePrefix.concat(key);
  }

  get(key: Key): unknown {
    const write = this.#pending.find(key)?.write ?? this.#sealed?.find(key)?.write;
    if (write === undefined) return this.#base.get(this.#inBase(key));
    return write.value === DELETED ? undefined : write.value;
  }

  put(key: Key, value: unknown): void {
    const node = this.#pending.findOrCreate(key);
    if (node.write !== undefined) node.write.value = value;
    else this.#add(node, { key, value, fresh: false });
  }

  /**
   * A put of a key the caller knows is absent (a new backlog row, the first in-flight
   * batch of an idle address). The promise lets a delete in the same generation vanish
   * instead of becoming a write; breaking it would leave a stale row in the store.
   */
  insert(key: Key, value: unknown): void {
    if (this.#checkInserts && this.get(key) !== undefined) {
      throw new Error(`OverlayKV.insert: key ${JSON.stringify(key)} is present`);
    }
    const node = this.#pending.findOrCreate(key);
    // A pending delete of the key means the base may have it: a plain put, then.
    if (node.write !== undefined) node.write.value = value;
    else this.#add(node, { key, value, fresh: true });
  }

  delete(key: Key): void {
    const node = this.#pending.findOrCreate(key);
    const existing = node.write;
    if (existing === undefined) this.#add(node, { key, value: DELETED, fresh: false });
    else if (existing.fresh) {
      node.write = undefined;
      this.#pending.size--;
      this.#tally.count--;
    } else existing.value = DELETED;
  }

  #add(node: TrieNode, write: Write): void {
    node.write = write;
    this.#pending.size++;
    this.#tally.count++;
  }

  *scan(prefix: Key, options: ScanOptions = {}): Iterable<KeyValue> {
    const { before, from } = options;
    const inRange = (write: Write) =>
      (before === undefined || compareKeys(write.key, before) < 0) &&
      (from === undefined || compareKeys(write.key, from) >= 0);
    const pending = this.#pending.collect(this.#pending.find(prefix), []).filter(inRange).sort(byKey);
    const sealed =
      this.#sealed === undefined ? [] : this.#sealed.collect(this.#sealed.find(prefix), []).filter(inRange).sort(byKey);
    const strip = this.#basePrefix.length;
    const base = this.#base
      .scan(this.#inBase(prefix), {
        ...(before === undefined ? {} : { before: this.#inBase(before) }),
        ...(from === undefined ? {} : { from: this.#inBase(from) }),
      })
      [Symbol.iterator]();
    /** The base's next entry, its key relative to this overlay. */
    const nextBase = (): KeyValue | undefined => {
      const next = base.next();
      if (next.done) return undefined;
      return strip === 0 ? next.value : { key: next.value.key.slice(strip), value: next.value.value };
    };
    // Always close the base iterator: an LMDB range holds a read transaction until closed.
    try {
      let baseEntry = nextBase();
      let p = 0;
      let s = 0;
      let count = 0;
      const limit = options.limit ?? Number.POSITIVE_INFINITY;
      while (count < limit) {
        // The smallest key of the three; on a tie pending shadows sealed shadows base.
        let write = pending[p];
        const sealedWrite = sealed[s];
        if (sealedWrite !== undefined) {
          const order = write === undefined ? -1 : compareKeys(sealedWrite.key, write.key);
          if (order < 0) write = sealedWrite;
          else if (order === 0) s++; // shadowed by the pending write
        }
        if (baseEntry !== undefined && (write === undefined || compareKeys(baseEntry.key, write.key) < 0)) {
          yield baseEntry;
          baseEntry = nextBase();
          count++;
          continue;
        }
        if (write === undefined) return;
        if (baseEntry !== undefined && compareKeys(baseEntry.key, write.key) === 0) baseEntry = nextBase(); // shadowed
        if (write === sealedWrite) s++;
        else p++;
        if (write.value !== DELETED) {
          yield { key: write.key, value: write.value };
          count++;
        }
      }
    } finally {
      base.return?.();
    }
  }

  /**
   * Seals the pending writes for a commit and returns them (keys prefixed for the base),
   * in no particular order. They stay readable until `release()`; writes from now on go to
   * a new generation. One sealed generation at a time: release it before sealing the next.
   */
  seal(): PendingWrite[] {
    const sealed = this.#sealPending();
    if (sealed === undefined) return [];
    const collected = sealed.collect(sealed.root, []);
    const writes: PendingWrite[] = new Array(collected.length);
    for (let index = 0; index < collected.length; index++) {
      const write = collected[index] as Write;
      const value = write.value === DELETED ? undefined : write.value;
      writes[index] = { key: this.#inBase(write.key), value, fresh: write.fresh };
    }
    return writes;
  }

  /**
   * Seals the pending writes as seal() does, without handing them out: for a reader's copy of
   * commits someone else writes to the base (threads/thread-store.ts).
   */
  sealInPlace(): void {
    this.#sealPending();
  }

  /** The pending generation made the sealed one; undefined when it held nothing. */
  #sealPending(): Generation | undefined {
    if (this.#sealed !== undefined) throw new Error("OverlayKV.seal: the last sealed writes are not released yet");
    const sealed = this.#pending;
    this.#pending = new Generation();
    this.#tally.count -= sealed.size;
    if (sealed.size === 0) return undefined;
    this.#sealed = sealed;
    return sealed;
  }

  /** The sealed writes are in the base now: stop keeping them. */
  release(): void {
    this.#sealed = undefined;
  }
}

/** Applies writes to a KV (the in-memory stand-in for a durable commit). */
export function applyWrites(kv: KV, writes: readonly PendingWrite[]): void {
  for (const write of writes) {
    if (write.value === undefined) kv.delete(write.key);
    else kv.put(write.key, write.value);
  }
}
