// Where checkpoints go: plain blob storage behind one small interface. A checkpoint is a
// set of immutable data objects plus a manifest written last (see ../manifest.ts), so a
// store needs no more than put, get, list and delete of whole objects; objects are at most
// a chunk (tens of MiB), so bodies are buffers, never streams.
//
// Keys are relative paths with `/` separators ("data/…", "checkpoints/…"); a store puts
// them under the prefix its URL names.

export interface BlobStore {
  /** The URL the store was opened from, without credentials: every error message names it. */
  readonly url: string;
  /** Stores `body` under `key`, replacing any object there. Resolves once the object is durable. */
  put(key: string, body: Uint8Array): Promise<void>;
  /** The object's bytes, or undefined when there is no object under `key`. */
  get(key: string): Promise<Uint8Array | undefined>;
  /** Every key that starts with `prefix`, in no particular order. */
  list(prefix: string): Promise<string[]>;
  /** Deletes the objects; a key with no object is no error. */
  delete(keys: readonly string[]): Promise<void>;
  close(): Promise<void>;
}

/** A blob store operation failed; the message names the store's URL, the operation and the key. */
export class BlobStoreError extends Error {}

/** Rejects keys that could escape the store's prefix or that stores spell differently. */
export function checkKey(key: string): void {
  if (
    key === "" ||
    key.startsWith("/") ||
    key.endsWith("/") ||
    key.split("/").some((part) => part === "" || part === "." || part === "..")
  ) {
    throw new Error(`blob key ${JSON.stringify(key)}: expected a relative path of non-empty parts`);
  }
}
