// Writes one checkpoint to a blob store: the data first (a base, or a delta extending the
// previous checkpoint's chain), the manifest last. Nothing here touches the running
// store: the caller hands over a snapshot directory or a range of log frames, both fixed.
import { open, stat } from "node:fs/promises";
import { join } from "node:path";
import type { BlobStore } from "./blob/blob-store.ts";
import type { LogFolder } from "./fold-worker.ts";
import {
  type BasePart,
  checkpointId,
  DATA_PREFIX,
  type DeltaPart,
  encodeManifest,
  MANIFEST_FORMAT,
  type Manifest,
  manifestKey,
  type StoredFile,
  storedBytes,
} from "./manifest.ts";
import { CHUNK_BYTES, countTransfer, type TransferProgress, uploadChunks } from "./stored-files.ts";

export type CheckpointSource =
  /** A compacted LMDB copy (`data.mdb` in `dir`) holding every commit up to `seq`. */
  | { readonly kind: "base"; readonly dir: string; readonly seq: number }
  /** The log frames after `previous.seq` through `toSeq`, on top of `previous`'s chain. */
  | {
      readonly kind: "delta";
      readonly logDir: string;
      readonly previous: Manifest;
      readonly toSeq: number;
      /** Folds the frames off the main thread. */
      readonly folder: LogFolder;
    };

export interface WriteCheckpointOptions {
  readonly store: BlobStore;
  readonly source: CheckpointSource;
  readonly partitionCount: number;
  readonly savepointName?: string;
  /** Uploads at a time (default 4). */
  readonly concurrency?: number;
  readonly now?: Date;
  /**
   * Told of the totals at the start, then after each data file is stored. Its bytes are
   * raw (before compression): what will be stored is known only once it is compressed.
   */
  readonly onProgress?: (progress: TransferProgress) => void;
}

export interface WrittenCheckpoint {
  readonly manifest: Manifest;
  readonly key: string;
  /** What this checkpoint uploaded (the manifest included), stored and raw. */
  readonly uploadedBytes: number;
  readonly rawBytes: number;
}

/** The file in chunks of CHUNK_BYTES, all full but the last: n bytes are ceil(n / CHUNK_BYTES) chunks. */
async function* fileChunks(path: string): AsyncGenerator<Uint8Array> {
  const handle = await open(path, "r");
  try {
    for (;;) {
      const chunk = Buffer.allocUnsafe(CHUNK_BYTES);
      let filled = 0;
      for (;;) {
        const { bytesRead } = await handle.read(chunk, filled, CHUNK_BYTES - filled, null);
        filled += bytesRead;
        if (bytesRead === 0 || filled === CHUNK_BYTES) break;
      }
      if (filled > 0) yield chunk.subarray(0, filled);
      if (filled < CHUNK_BYTES) return;
    }
  } finally {
    await handle.close();
  }
}

export async function writeCheckpoint(options: WriteCheckpointOptions): Promise<WrittenCheckpoint> {
  const { store, source } = options;
  const now = options.now ?? new Date();
  const concurrency = options.concurrency ?? 4;
  const seq = source.kind === "base" ? source.seq : source.toSeq;
  const id = checkpointId(now, seq);
  let base: BasePart;
  let deltas: DeltaPart[];
  let files: StoredFile[];
  if (source.kind === "base") {
    const path = join(source.dir, "data.mdb");
    const { size } = await stat(path);
    const uploaded = countTransfer(options.onProgress, Math.ceil(size / CHUNK_BYTES), size);
    files = await uploadChunks(store, `${DATA_PREFIX}${id}/base`, fileChunks(path), concurrency, (file) =>
      uploaded?.(file.rawBytes),
    );
    base = { seq: source.seq, files };
    deltas = [];
  } else {
    const { previous } = source;
    const folded = await source.folder.fold(source.logDir, previous.seq, source.toSeq);
    const size = folded.chunks.reduce((sum, chunk) => sum + chunk.length, 0);
    const uploaded = countTransfer(options.onProgress, folded.chunks.length, size);
    files = await uploadChunks(store, `${DATA_PREFIX}${id}/delta`, folded.chunks, concurrency, (file) =>
      uploaded?.(file.rawBytes),
    );
    base = previous.base;
    deltas = [...previous.deltas, { fromSeq: previous.seq, toSeq: source.toSeq, files }];
  }
  const stored = storedBytes(files);
  const raw = files.reduce((sum, file) => sum + file.rawBytes, 0);
  const manifest: Manifest = {
    format: MANIFEST_FORMAT,
    id,
    kind: options.savepointName === undefined ? "checkpoint" : "savepoint",
    ...(options.savepointName === undefined ? {} : { name: options.savepointName }),
    seq,
    createdAt: now.toISOString(),
    partitionCount: options.partitionCount,
    base,
    deltas,
  };
  const key = manifestKey(manifest);
  const body = encodeManifest(manifest);
  await store.put(key, body);
  return { manifest, key, uploadedBytes: stored + body.length, rawBytes: raw + body.length };
}
