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
  /**
   * A put of a key the caller knows is absent. Stores may use the promise (an overlay
   * drops an inserted row that is deleted before its commit); a broken promise is a bug.
   */
  insert(key: Key, value: unknown): void;
  delete(key: Key): void;
  /** Entries whose key starts with `prefix`, in key order (see ScanOptions). */
  scan(prefix: Key, options?: ScanOptions): Iterable<KeyValue>;
}

export interface ScanOptions {
  /** Where the scan starts (inclusive): a key under the prefix, for reading a range page by page. */
  readonly from?: Key;
  /** Where the scan ends (exclusive). */
  readonly before?: Key;
  readonly limit?: number;
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

/**
 * A string that sorts like the tuple under compareKeys: parts joined by NUL (below every
 * other character of an encoded part). A number is tagged \u0001, then one character for
 * its count of decimal digits, then the digits (so fewer digits sort first, as smaller
 * numbers must); a string is tagged \u0002, with NUL and \u0001 escaped. Numbers must be
 * integers in [0, 2^53). MemoryKV's index key only, never stored.
 */
export function encodeKey(key: Key): string {
  let encoded = "";
  for (let index = 0; index < key.length; index++) {
    const part = key[index] as KeyPart;
    if (index > 0) encoded += "\u0000";
    if (typeof part === "number") {
      if (!Number.isSafeInteger(part) || part < 0)
        throw new RangeError(`key part ${part} is not a non-negative integer`);
      const digits = String(part);
      encoded += `\u0001${String.fromCharCode(0x40 + digits.length)}${digits}`;
    } else if (part.includes("\u0000") || part.includes("\u0001")) {
      encoded += `\u0002${part.replaceAll("\u0001", "\u0001\u0002").replaceAll("\u0000", "\u0001\u0001")}`;
    } else {
      encoded += `\u0002${part}`;
    }
  }
  return encoded;
}

/**
 * An in-memory KV for tests and simulation. Values are cloned on the way in, as a real
 * store serializes them; reads hand out the stored copy, which callers treat as read-only.
 */
export class MemoryKV implements KV {
  readonly #entries = new Map<string, KeyValue>();
  /** Encoded keys in order. */
  readonly #sorted: string[] = [];

  get size(): number {
    return this.#entries.size;
  }

  get(key: Key): unknown {
    return this.#entries.get(encodeKey(key))?.value;
  }

  put(key: Key, value: unknown): void {
    const encoded = encodeKey(key);
    if (!this.#entries.has(encoded)) this.#sorted.splice(this.#lowerBound(encoded), 0, encoded);
    this.#entries.set(encoded, { key: [...key], value: structuredClone(value) });
  }

  /** Checks the promise that the key is absent, so tests and the simulation catch a broken one. */
  insert(key: Key, value: unknown): void {
    if (this.#entries.has(encodeKey(key))) throw new Error(`MemoryKV.insert: key ${JSON.stringify(key)} is present`);
    this.put(key, value);
  }

  delete(key: Key): void {
    const encoded = encodeKey(key);
    if (!this.#entries.delete(encoded)) return;
    this.#sorted.splice(this.#lowerBound(encoded), 1);
  }

  *scan(prefix: Key, options: ScanOptions = {}): Iterable<KeyValue> {
    const start = encodeKey(prefix);
    const from = options.from === undefined ? start : encodeKey(options.from);
    const before = options.before === undefined ? undefined : encodeKey(options.before);
    const limit = options.limit ?? Number.POSITIVE_INFINITY;
    let count = 0;
    // Copy the range first: callers may write while iterating.
    const range: string[] = [];
    // Strings, so no Math.max: the later of the prefix and `from`.
    let begin = start;
    if (from > start) begin = from;
    for (let index = this.#lowerBound(begin); index < this.#sorted.length; index++) {
      const encoded = this.#sorted[index] as string;
      if (!encoded.startsWith(start)) break;
      if (before !== undefined && encoded >= before) break;
      // Same prefix string but a longer last part ("ab" under prefix "a") is not under the prefix.
      if (prefix.length > 0 && encoded.length > start.length && encoded[start.length] !== "\u0000") continue;
      if (count++ >= limit) break;
      range.push(encoded);
    }
    for (const encoded of range) {
      const entry = this.#entries.get(encoded) as KeyValue;
      yield entry;
    }
  }

  #lowerBound(encoded: string): number {
    let low = 0;
    let high = this.#sorted.length;
    while (low < high) {
      const middle = (low + high) >>> 1;
      if ((this.#sorted[middle] as string) < encoded) low = middle + 1;
      else high = middle;
    }
    return low;
  }
}
