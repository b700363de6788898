// The ordered key-value view the partition core reads and writes. Keys are tuples of
// strings and non-negative integers, ordered part by part (numbers before strings);
// values are structured data (records, strings, numbers, Uint8Arrays). The engine
// provides a transactional view over the durable store; tests use MemoryKV.

export type KeyPart = string | number;
export type Key = readonly KeyPart[];

export interface KeyValue {
  readonly key: Key;
  readonly value: unknown;
}

export interface KV {
  get(key: Key): unknown;
  put(key: Key, value: unknown): void;
  delete(key: Key): void;
  /** Entries whose key starts with `prefix`, in key order; `before` bounds the scan (exclusive). */
  scan(prefix: Key, options?: { readonly before?: Key; readonly limit?: number }): Iterable<KeyValue>;
}

/** Compares tuple keys part by part: numbers before strings, numbers numerically, strings by code unit. */
export function compareKeys(a: Key, b: Key): number {
  const length = Math.min(a.length, b.length);
  for (let index = 0; index < length; index++) {
    const x = a[index] as KeyPart;
    const y = b[index] as KeyPart;
    if (x === y) continue;
    if (typeof x !== typeof y) return typeof x === "number" ? -1 : 1;
    return x < y ? -1 : 1;
  }
  return a.length - b.length;
}

export function startsWith(key: Key, prefix: Key): boolean {
  if (key.length < prefix.length) return false;
  for (let index = 0; index < prefix.length; index++) if (key[index] !== prefix[index]) return false;
  return true;
}

/** A string that sorts like the tuple, for map keys. */
export function encodeKey(key: Key): string {
  return key
    .map((part) =>
      typeof part === "number"
        ? `\u0001${part.toString(16).padStart(14, "0")}`
        : `\u0002${part.replaceAll("\u0000", "\u0000\u0003")}`,
    )
    .join("\u0000");
}

/** An in-memory KV for tests and simulation. Values are cloned on the way in and out, as a real store would copy them. */
export class MemoryKV implements KV {
  readonly #entries = new Map<string, KeyValue>();

  get size(): number {
    return this.#entries.size;
  }

  get(key: Key): unknown {
    const entry = this.#entries.get(encodeKey(key));
    return entry === undefined ? undefined : structuredClone(entry.value);
  }

  put(key: Key, value: unknown): void {
    this.#entries.set(encodeKey(key), { key: [...key], value: structuredClone(value) });
  }

  delete(key: Key): void {
    this.#entries.delete(encodeKey(key));
  }

  *scan(prefix: Key, options: { readonly before?: Key; readonly limit?: number } = {}): Iterable<KeyValue> {
    const matches = [...this.#entries.values()]
      .filter((entry) => startsWith(entry.key, prefix))
      .filter((entry) => options.before === undefined || compareKeys(entry.key, options.before) < 0)
      .sort((a, b) => compareKeys(a.key, b.key));
    let count = 0;
    for (const entry of matches) {
      if (options.limit !== undefined && count++ >= options.limit) return;
      yield { key: entry.key, value: structuredClone(entry.value) };
    }
  }

  /** A deep copy: what survives a crash when this KV plays the durable store. */
  clone(): MemoryKV {
    const copy = new MemoryKV();
    for (const entry of this.#entries.values()) copy.put(entry.key, entry.value);
    return copy;
  }
}

/** A view of `kv` under a key prefix: how partitions share one store without seeing each other's keys. */
export class PrefixedKV implements KV {
  readonly #kv: KV;
  readonly #prefix: Key;

  constructor(kv: KV, prefix: Key) {
    this.#kv = kv;
    this.#prefix = prefix;
  }

  get(key: Key): unknown {
    return this.#kv.get([...this.#prefix, ...key]);
  }

  put(key: Key, value: unknown): void {
    this.#kv.put([...this.#prefix, ...key], value);
  }

  delete(key: Key): void {
    this.#kv.delete([...this.#prefix, ...key]);
  }

  *scan(prefix: Key, options: { readonly before?: Key; readonly limit?: number } = {}): Iterable<KeyValue> {
    const scoped =
      options.before === undefined ? { ...options } : { ...options, before: [...this.#prefix, ...options.before] };
    for (const entry of this.#kv.scan([...this.#prefix, ...prefix], scoped)) {
      yield { key: entry.key.slice(this.#prefix.length), value: entry.value };
    }
  }
}
