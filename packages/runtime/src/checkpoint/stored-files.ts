// Moving checkpoint data to and from a blob store in chunks: each chunk is compressed
// (zstd, fast level), hashed (SHA-256 of the stored bytes) and uploaded as one object, a
// bounded number at a time; downloads check size and hash before decompressing, so a
// truncated or altered object is named, never restored.
import { webcrypto } from "node:crypto";
import { promisify } from "node:util";
import { constants, zstdCompress, zstdDecompress } from "node:zlib";
import type { BlobStore } from "./blob/blob-store.ts";
import type { StoredFile } from "./manifest.ts";

const compress = promisify(zstdCompress);
const decompress = promisify(zstdDecompress);

/** Raw bytes per chunk: small enough to hold a few in memory, large enough to keep object counts low. */
export const CHUNK_BYTES = 16 * 1024 * 1024;

/** SHA-256 in hex, computed on libuv's thread pool (WebCrypto), not on the main thread: a 16 MiB chunk takes ~20 ms. */
async function sha256(bytes: Uint8Array): Promise<string> {
  return Buffer.from(await webcrypto.subtle.digest("SHA-256", bytes)).toString("hex");
}

/** How far a transfer of checkpoint files is: files done of all, and their bytes done of all. */
export interface TransferProgress {
  readonly files: number;
  readonly filesTotal: number;
  readonly bytes: number;
  readonly bytesTotal: number;
}

/**
 * Counts a transfer for `onProgress`: tells it of the totals at once (so a long first file
 * shows something), then after each file `done` is given the bytes of. Undefined when no
 * one listens, so a transfer without a listener counts nothing.
 */
export function countTransfer(
  onProgress: ((progress: TransferProgress) => void) | undefined,
  filesTotal: number,
  bytesTotal: number,
): ((bytes: number) => void) | undefined {
  if (onProgress === undefined) return undefined;
  let files = 0;
  let bytes = 0;
  onProgress({ files, filesTotal, bytes, bytesTotal });
  return (fileBytes) => {
    files++;
    bytes += fileBytes;
    onProgress({ files, filesTotal, bytes, bytesTotal });
  };
}

/**
 * Uploads the chunks `source` yields as `<keyPrefix>-<n>.zst`, at most `concurrency` at a
 * time (the source is read only as fast as uploads finish), and returns them in order.
 * `uploaded` hears of each file once it is stored, in the order they finish.
 */
export async function uploadChunks(
  store: BlobStore,
  keyPrefix: string,
  source: AsyncIterable<Uint8Array> | Iterable<Uint8Array>,
  concurrency: number,
  uploaded?: (file: StoredFile) => void,
): Promise<StoredFile[]> {
  const files: StoredFile[] = [];
  const running = new Set<Promise<void>>();
  let failure: { error: unknown } | undefined;
  let index = 0;
  for await (const chunk of source) {
    if (failure !== undefined) break;
    const position = index++;
    const key = `${keyPrefix}-${String(position + 1).padStart(5, "0")}.zst`;
    const task = (async () => {
      const stored = await compress(chunk, { params: { [constants.ZSTD_c_compressionLevel]: 1 } });
      const file: StoredFile = { key, bytes: stored.length, sha256: await sha256(stored), rawBytes: chunk.length };
      files[position] = file;
      await store.put(key, stored);
      uploaded?.(file);
    })().catch((error: unknown) => {
      failure ??= { error };
    });
    running.add(task);
    void task.finally(() => running.delete(task));
    if (running.size >= concurrency) await Promise.race(running);
  }
  await Promise.all(running);
  if (failure !== undefined) throw failure.error;
  return files;
}

export type DownloadedFile =
  | { readonly ok: true; readonly bytes: Buffer }
  | { readonly ok: false; readonly error: string };

/** Downloads one stored file, checks it, and returns its raw bytes, or why they cannot be trusted. */
export async function downloadFile(store: BlobStore, file: StoredFile): Promise<DownloadedFile> {
  const where = `${store.url} ${file.key}`;
  let stored: Uint8Array | undefined;
  try {
    stored = await store.get(file.key);
  } catch (error) {
    return { ok: false, error: `${where}: ${(error as Error).message}` };
  }
  if (stored === undefined) return { ok: false, error: `${where}: missing` };
  if (stored.length !== file.bytes) {
    return {
      ok: false,
      error: `${where}: ${stored.length} bytes, the manifest says ${file.bytes} (truncated or replaced)`,
    };
  }
  if ((await sha256(stored)) !== file.sha256)
    return { ok: false, error: `${where}: its SHA-256 does not match the manifest (altered)` };
  let raw: Buffer;
  try {
    raw = await decompress(stored);
  } catch (error) {
    return { ok: false, error: `${where}: does not decompress: ${(error as Error).message}` };
  }
  if (raw.length !== file.rawBytes) {
    return { ok: false, error: `${where}: decompresses to ${raw.length} bytes, the manifest says ${file.rawBytes}` };
  }
  return { ok: true, bytes: raw };
}

/**
 * Downloads `files` in order with `concurrency` downloads ahead, handing each chunk's raw
 * bytes to `consume` in order. Stops at the first file that cannot be trusted and returns why.
 */
export async function downloadInOrder(
  store: BlobStore,
  files: readonly StoredFile[],
  concurrency: number,
  consume: (bytes: Buffer, file: StoredFile) => Promise<void> | void,
): Promise<string | undefined> {
  const pending: Promise<DownloadedFile>[] = [];
  let next = 0;
  const fill = () => {
    while (next < files.length && pending.length < concurrency)
      pending.push(downloadFile(store, files[next++] as StoredFile));
  };
  fill();
  for (const file of files) {
    const result = await (pending.shift() as Promise<DownloadedFile>);
    if (!result.ok) {
      // Let the downloads already started settle before returning (no stray rejections).
      await Promise.allSettled(pending);
      return result.error;
    }
    fill();
    await consume(result.bytes, file);
  }
  return undefined;
}
