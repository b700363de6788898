// Restores a checkpoint into an empty state directory: the base's chunks become LMDB's
// data.mdb, the deltas' rows are written over it in order, and LMDB records the
// checkpoint's seq as the last commit it holds, so the write-ahead log starts after it.
// Every chunk is checked (size, SHA-256) before it is used; a checkpoint that fails is
// skipped with a warning naming the bad object, and the one before it is tried.
import { existsSync, mkdirSync, readdirSync, renameSync, rmSync } from "node:fs";
import { open } from "node:fs/promises";
import { join } from "node:path";
import type { PendingWrite } from "../core/overlay-kv.ts";
import type { Logger } from "../observe/logger.ts";
import { LmdbStore } from "../store/lmdb-store.ts";
import { APPLIED_KEY, LOG_DIRECTORY } from "../store/logged-store.ts";
import type { BlobStore } from "./blob/blob-store.ts";
import { type CatalogEntry, readCatalog } from "./catalog.ts";
import { decodeDeltaChunk } from "./delta.ts";
import { allFiles, type Manifest, type StoredFile, storedBytes } from "./manifest.ts";
import { countTransfer, downloadInOrder, type TransferProgress } from "./stored-files.ts";

const RESTORE_TRANSACTION_WRITES = 2048;
const RESTORING_DIRECTORY = ".restoring";

export interface RestoreOptions {
  readonly store: BlobStore;
  /** Must hold no state (no data.mdb); created if missing. */
  readonly stateDir: string;
  /** A checkpoint id or a savepoint name; default: the newest checkpoint that restores. */
  readonly select?: string;
  readonly log: Logger;
  /** Downloads at a time (default 4). */
  readonly concurrency?: number;
  /**
   * Told of the totals (the files of the checkpoint and the bytes they take in the store)
   * as a checkpoint's restore starts, then after each file is downloaded, checked and
   * written; from zero again for the next checkpoint tried should one fail. When given,
   * the log carries no progress lines: the caller shows progress its own way.
   */
  readonly onProgress?: (progress: TransferProgress) => void;
}

export type RestoreResult =
  | {
      readonly ok: true;
      readonly manifest: Manifest;
      readonly key: string;
      readonly bytes: number;
      readonly ms: number;
    }
  /** none: the store holds no checkpoint at all; failed: none of those asked for could be restored. */
  | { readonly ok: false; readonly reason: "none" | "failed"; readonly error: string };

/**
 * True when `stateDir` holds no state yet: no LMDB data file and no write-ahead log segment
 * (a log alone is damaged state, not an empty directory: restoring under it would mix the two).
 */
export function isEmptyStateDir(stateDir: string): boolean {
  if (existsSync(join(stateDir, "data.mdb"))) return false;
  const logDir = join(stateDir, LOG_DIRECTORY);
  return !existsSync(logDir) || !readdirSync(logDir).some((name) => name.endsWith(".log"));
}

export async function restoreCheckpoint(options: RestoreOptions): Promise<RestoreResult> {
  const { store, stateDir, log } = options;
  if (!isEmptyStateDir(stateDir))
    return {
      ok: false,
      reason: "failed",
      error: `${stateDir} already holds state; restore needs an empty state directory`,
    };
  const catalog = await readCatalog(store);
  let candidates: CatalogEntry[];
  if (options.select === undefined) {
    for (const { error } of catalog.unreadable) log.warn(`skipping ${error}`, { blobs: store.url });
    candidates = [...catalog.checkpoints];
    if (candidates.length === 0) {
      if (catalog.unreadable.length === 0) {
        const savepoints = catalog.savepoints.map((entry) => entry.manifest.name).join(", ");
        const hint =
          savepoints === ""
            ? ""
            : ` (savepoints ${savepoints} are restored only by name: eddy checkpoints restore <name>)`;
        return { ok: false, reason: "none", error: `${store.url} holds no checkpoint${hint}` };
      }
      return { ok: false, reason: "failed", error: `${store.url} holds no checkpoint that can be read` };
    }
  } else {
    const chosen = [...catalog.checkpoints, ...catalog.savepoints].find(
      (entry) => entry.manifest.id === options.select || entry.manifest.name === options.select,
    );
    if (chosen === undefined) {
      const bad = catalog.unreadable.find((entry) => entry.key.includes(options.select as string));
      return {
        ok: false,
        reason: "failed",
        error: bad?.error ?? `${store.url} holds no checkpoint or savepoint ${JSON.stringify(options.select)}`,
      };
    }
    candidates = [chosen];
  }
  const failures: string[] = [];
  for (const candidate of candidates) {
    const started = performance.now();
    const error = await restoreInto(options, candidate);
    if (error === undefined) {
      const bytes = storedBytes(allFiles(candidate.manifest));
      return { ok: true, manifest: candidate.manifest, key: candidate.key, bytes, ms: performance.now() - started };
    }
    failures.push(error);
    if (options.select === undefined)
      log.warn(`skipping checkpoint ${candidate.manifest.id}: ${error}`, {
        checkpoint: candidate.manifest.id,
        blobs: store.url,
      });
  }
  return {
    ok: false,
    reason: "failed",
    error: `no checkpoint in ${store.url} could be restored: ${failures.join("; ")}`,
  };
}

/** Restores one checkpoint; undefined when it worked, else why not (the state directory is left as it was). */
async function restoreInto(options: RestoreOptions, entry: CatalogEntry): Promise<string | undefined> {
  const { store, stateDir, log, onProgress } = options;
  const concurrency = options.concurrency ?? 4;
  const { manifest } = entry;
  const files = allFiles(manifest);
  const total = files.reduce((sum, file) => sum + file.rawBytes, 0);
  const unit = total < 1e6 ? { name: "kB", size: 1e3 } : { name: "MB", size: 1e6 };
  const amount = (bytes: number) => (bytes / unit.size).toFixed(1);
  const fields = { checkpoint: manifest.id, blobs: store.url };
  log.info(
    `restoring ${manifest.kind} ${manifest.name ?? manifest.id} (commits up to ${manifest.seq}; ${files.length} files, ${amount(total)} ${unit.name}) from ${store.url}`,
    fields,
  );
  const downloaded = countTransfer(onProgress, files.length, storedBytes(files));
  let done = 0;
  let reported = 0;
  let lastReportAt = performance.now();
  const advance = (file: StoredFile) => {
    downloaded?.(file.bytes);
    if (onProgress !== undefined) return;
    done += file.rawBytes;
    const now = performance.now();
    if (done === total || now - lastReportAt >= 1000 || done - reported >= total / 10) {
      log.info(
        `restoring ${manifest.name ?? manifest.id}: ${Math.floor((100 * done) / Math.max(total, 1))}% (${amount(done)} of ${amount(total)} ${unit.name})`,
        fields,
      );
      reported = done;
      lastReportAt = now;
    }
  };
  const work = join(stateDir, RESTORING_DIRECTORY);
  rmSync(work, { recursive: true, force: true });
  mkdirSync(work, { recursive: true });
  try {
    const dataFile = await open(join(work, "data.mdb"), "w");
    let baseError: string | undefined;
    try {
      baseError = await downloadInOrder(store, manifest.base.files, concurrency, async (bytes, file) => {
        await dataFile.write(bytes);
        advance(file);
      });
      await dataFile.sync();
    } finally {
      await dataFile.close();
    }
    if (baseError !== undefined) return baseError;
    const lmdb = new LmdbStore({ path: work, sync: "deferred" });
    try {
      for (const delta of manifest.deltas) {
        const deltaError = await downloadInOrder(store, delta.files, concurrency, async (bytes, file) => {
          let rows: ReturnType<typeof decodeDeltaChunk>;
          try {
            rows = decodeDeltaChunk(bytes);
          } catch (error) {
            throw new Error(`a delta chunk of ${manifest.id} does not decode: ${(error as Error).message}`);
          }
          for (let start = 0; start < rows.length; start += RESTORE_TRANSACTION_WRITES) {
            const writes: PendingWrite[] = rows
              .slice(start, start + RESTORE_TRANSACTION_WRITES)
              .map((row) => ({ key: row[0], value: row.length === 1 ? undefined : row[1] }));
            await lmdb.commit(writes);
          }
          advance(file);
        });
        if (deltaError !== undefined) return deltaError;
      }
      await lmdb.commit([{ key: APPLIED_KEY, value: manifest.seq }]);
      await lmdb.flushed();
    } finally {
      await lmdb.close();
    }
    // LMDB's data file moves into place last: a crash before this leaves the directory empty.
    renameSync(join(work, "data.mdb"), join(stateDir, "data.mdb"));
    return undefined;
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}
