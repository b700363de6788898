// A directory as a blob store: a local disk or a network file system (NFS) mounted here.
// An object is a file; a put writes a temporary file, syncs it, renames it into place and
// syncs the directory, so an object is either absent or whole, also across a crash.
import { randomUUID } from "node:crypto";
import type { Dirent } from "node:fs";
import { mkdir, open, readdir, readFile, rename, rm } from "node:fs/promises";
import { dirname, join, relative, sep } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { type BlobStore, BlobStoreError, checkKey } from "./blob-store.ts";

const TEMPORARY_SUFFIX = ".eddy-partial";

async function syncDirectory(path: string): Promise<void> {
  const handle = await open(path, "r");
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

export class DirectoryBlobStore implements BlobStore {
  readonly url: string;
  readonly #root: string;

  constructor(root: string) {
    this.#root = root;
    this.url = pathToFileURL(root).href;
  }

  static fromUrl(url: URL): DirectoryBlobStore {
    return new DirectoryBlobStore(fileURLToPath(url));
  }

  async put(key: string, body: Uint8Array): Promise<void> {
    checkKey(key);
    const path = join(this.#root, key);
    const temporary = `${path}.${randomUUID()}${TEMPORARY_SUFFIX}`;
    try {
      await mkdir(dirname(path), { recursive: true });
      const handle = await open(temporary, "w");
      try {
        await handle.writeFile(body);
        await handle.sync();
      } finally {
        await handle.close();
      }
      await rename(temporary, path);
      await syncDirectory(dirname(path));
    } catch (error) {
      // The temporary file may not exist (the directory could not be made): the put's error is what counts.
      await rm(temporary, { force: true }).catch(() => {});
      throw this.#error("put", key, error);
    }
  }

  async get(key: string): Promise<Uint8Array | undefined> {
    checkKey(key);
    try {
      return await readFile(join(this.#root, key));
    } catch (error) {
      // ENOTDIR: a part of the key names an object, so nothing can be under it.
      const code = (error as NodeJS.ErrnoException).code;
      if (code === "ENOENT" || code === "ENOTDIR") return undefined;
      throw this.#error("get", key, error);
    }
  }

  async list(prefix: string): Promise<string[]> {
    // Walk from the deepest directory the prefix names whole; filter the rest by name.
    const start = join(this.#root, prefix.slice(0, prefix.lastIndexOf("/") + 1));
    let entries: Dirent[];
    try {
      entries = await readdir(start, { recursive: true, withFileTypes: true });
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === "ENOENT") return [];
      throw this.#error("list", prefix, error);
    }
    const keys: string[] = [];
    for (const entry of entries) {
      if (!entry.isFile() || entry.name.endsWith(TEMPORARY_SUFFIX)) continue;
      const key = relative(this.#root, join(entry.parentPath, entry.name)).split(sep).join("/");
      if (key.startsWith(prefix)) keys.push(key);
    }
    return keys;
  }

  async delete(keys: readonly string[]): Promise<void> {
    for (const key of keys) {
      checkKey(key);
      try {
        await rm(join(this.#root, key), { force: true });
      } catch (error) {
        throw this.#error("delete", key, error);
      }
    }
  }

  async close(): Promise<void> {}

  #error(operation: string, key: string, cause: unknown): BlobStoreError {
    const reason = cause instanceof Error ? cause.message : String(cause);
    return new BlobStoreError(`${this.url}: ${operation} ${key}: ${reason}`, { cause });
  }
}
