// Takes checkpoints of a running Eddy: every interval (and on demand), one at a time, in
// the background while commits go on. The first checkpoint of a chain is a base (a
// compacted copy of LMDB); each one after it is a delta holding the net writes of the
// commits since the previous one, read from the write-ahead log, which keeps those frames
// until then. A new base starts a new chain once the deltas add up to the base's size
// (restore then reads at most about twice the state), or after MAX_CHAIN_DELTAS.
//
// The state directory remembers the last checkpoint it wrote or was restored from
// (checkpoint.json), so after a restart the chain goes on where it was.
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { errorFields, type Logger } from "../observe/logger.ts";
import { LOG_DIRECTORY, type LoggedStore } from "../store/logged-store.ts";
import type { BlobStore } from "./blob/blob-store.ts";
import { pruneCheckpoints } from "./catalog.ts";
import { type CheckpointSource, type WrittenCheckpoint, writeCheckpoint } from "./checkpoint-writer.ts";
import { LogFolder } from "./fold-worker.ts";
import {
  allFiles,
  checkSavepointName,
  decodeManifest,
  encodeManifest,
  type Manifest,
  manifestKey,
  storedBytes,
} from "./manifest.ts";
import type { TransferProgress } from "./stored-files.ts";

const LOCAL_STATE_FILE = "checkpoint.json";
const SNAPSHOT_DIRECTORY = "checkpoint-snapshot";
/** A restore replays at most this many deltas. */
const MAX_CHAIN_DELTAS = 100;
/** While checkpoints fail, the log keeps their frames up to this size; past it a base follows. */
const MAX_KEPT_LOG_BYTES = 2 * 1024 * 1024 * 1024;

export interface CheckpointerOptions {
  readonly store: LoggedStore;
  readonly blobs: BlobStore;
  readonly partitionCount: number;
  /** Between checkpoints (default 10 s); 0: only on demand. */
  readonly intervalMs?: number;
  /** Checkpoints kept (default 3); savepoints are never deleted. */
  readonly keep?: number;
  /** Uploads at a time (default 4). */
  readonly concurrency?: number;
  readonly log: Logger;
  /** Told how each checkpoint or savepoint went, and how long it took (metrics); not for one with nothing new. */
  readonly onTaken?: (
    seconds: number,
    outcome: { readonly ok: true; readonly uploadedBytes: number } | { readonly ok: false },
  ) => void;
}

interface LocalState {
  readonly location: string;
  readonly manifest: Manifest;
}

/** The last checkpoint `stateDir` wrote to (or was restored from) `location`, if any. */
export function readLocalCheckpoint(stateDir: string, location: string): Manifest | undefined {
  const path = join(stateDir, LOCAL_STATE_FILE);
  if (!existsSync(path)) return undefined;
  try {
    const state = JSON.parse(readFileSync(path, "utf8")) as LocalState;
    if (state.location !== location) return undefined;
    const parsed = decodeManifest(path, encodeManifest(state.manifest));
    return parsed.ok ? parsed.manifest : undefined;
  } catch {
    // Unreadable: the next checkpoint is a base, which is always correct.
    return undefined;
  }
}

export function writeLocalCheckpoint(stateDir: string, location: string, manifest: Manifest): void {
  const path = join(stateDir, LOCAL_STATE_FILE);
  const state: LocalState = { location, manifest };
  writeFileSync(`${path}.tmp`, JSON.stringify(state));
  renameSync(`${path}.tmp`, path);
}

export interface CheckpointRequest {
  /** A savepoint: a base, under this name, never deleted by retention. */
  readonly savepointName?: string;
  /** Start a new chain even when a delta would do. */
  readonly forceBase?: boolean;
}

export class Checkpointer {
  readonly #options: CheckpointerOptions;
  readonly #stateDir: string;
  #chain: Manifest | undefined;
  #queue: Promise<unknown> = Promise.resolve();
  #timer: NodeJS.Timeout | undefined;
  #closed = false;
  #running = 0;
  #soonPending = false;
  readonly #folder = new LogFolder();
  /** Callers waiting for a checkpoint that holds the commits up to a seq. */
  #waiters: { seq: number; resolve: () => void }[] = [];

  constructor(options: CheckpointerOptions) {
    this.#options = options;
    this.#stateDir = options.store.path;
    this.#chain = readLocalCheckpoint(this.#stateDir, options.blobs.url);
    const interval = options.intervalMs ?? 10_000;
    if (interval > 0) this.#schedule(interval);
  }

  /** The last complete checkpoint of the current chain. */
  get latest(): Manifest | undefined {
    return this.#chain;
  }

  /**
   * Takes a checkpoint now (after any in progress). Resolves with it, or with undefined
   * when nothing was committed since the last one. `onProgress` hears how its upload goes
   * (see WriteCheckpointOptions), and nothing when there is nothing to upload.
   */
  checkpoint(
    request: CheckpointRequest = {},
    onProgress?: (progress: TransferProgress) => void,
  ): Promise<WrittenCheckpoint | undefined> {
    const run = this.#queue.then(() => this.#timed(request, onProgress));
    this.#queue = run.catch(() => undefined);
    return run;
  }

  async #timed(
    request: CheckpointRequest,
    onProgress: ((progress: TransferProgress) => void) | undefined,
  ): Promise<WrittenCheckpoint | undefined> {
    const onTaken = this.#options.onTaken;
    if (onTaken === undefined) return this.#take(request, onProgress);
    const startedAt = performance.now();
    const seconds = () => (performance.now() - startedAt) / 1000;
    let written: WrittenCheckpoint | undefined;
    try {
      written = await this.#take(request, onProgress);
    } catch (error) {
      onTaken(seconds(), { ok: false });
      throw error;
    }
    if (written !== undefined) onTaken(seconds(), { ok: true, uploadedBytes: written.uploadedBytes });
    return written;
  }

  /**
   * Resolves once a checkpoint holds every commit up to `seq` (--ack-after-checkpoint).
   * Someone waiting brings the next checkpoint forward: checkpoints then follow each other
   * (deltas, cheap), so the wait is about one checkpoint's duration, not the interval.
   */
  covered(seq: number): Promise<void> {
    if (this.#chain !== undefined && this.#chain.seq >= seq) return Promise.resolve();
    const waiting = new Promise<void>((resolve) => this.#waiters.push({ seq, resolve }));
    this.#soon();
    return waiting;
  }

  /** Everything committed so far, checkpointed: see covered(). */
  coveredNow(): Promise<void> {
    return this.covered(this.#options.store.lastSeq);
  }

  #soon(): void {
    if (this.#soonPending || this.#closed) return;
    this.#soonPending = true;
    const take = async () => {
      this.#soonPending = false;
      if (this.#closed || this.#waiters.length === 0) return;
      try {
        await this.checkpoint();
      } catch (error) {
        this.#failed(error);
        // Waiters stay; try again a little later.
        await new Promise((resume) => setTimeout(resume, 1000).unref());
      }
      if (this.#waiters.length > 0) this.#soon();
    };
    // A few milliseconds' pause lets the commits of a burst join the same checkpoint.
    setTimeout(() => void take(), 5).unref();
  }

  /** Stops taking checkpoints; waits for the one in progress. */
  async close(): Promise<void> {
    this.#closed = true;
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    await this.#queue;
    await this.#folder.close();
  }

  #schedule(interval: number): void {
    this.#timer = setTimeout(async () => {
      if (this.#closed) return;
      if (this.#running === 0) {
        try {
          await this.checkpoint();
        } catch (error) {
          this.#failed(error);
        }
      }
      if (!this.#closed) this.#schedule(interval);
    }, interval);
    this.#timer.unref();
  }

  async #take(
    request: CheckpointRequest,
    onProgress: ((progress: TransferProgress) => void) | undefined,
  ): Promise<WrittenCheckpoint | undefined> {
    const { store, blobs } = this.#options;
    const toSeq = store.lastSeq;
    const chain = this.#chain;
    const savepoint = request.savepointName !== undefined;
    if (request.savepointName !== undefined) {
      const problem = checkSavepointName(request.savepointName);
      if (problem !== undefined) throw new Error(problem);
      const key = manifestKey({ kind: "savepoint", id: "", name: request.savepointName });
      if ((await blobs.get(key)) !== undefined) {
        throw new Error(
          `savepoint ${request.savepointName} already exists in ${blobs.url} (${key}); choose another name`,
        );
      }
    }
    if (!savepoint && !request.forceBase && chain !== undefined && chain.seq === toSeq) return undefined;
    this.#running++;
    const snapshotDir = join(this.#stateDir, SNAPSHOT_DIRECTORY);
    try {
      let source: CheckpointSource;
      if (savepoint || request.forceBase || (await this.#needsBase(chain))) {
        rmSync(snapshotDir, { recursive: true, force: true });
        mkdirSync(snapshotDir);
        const seq = await store.snapshot(snapshotDir);
        // From now on the log keeps what the delta after this base will need.
        if (!savepoint) store.keepLogAfter(chain === undefined ? seq : Math.min(seq, chain.seq));
        source = { kind: "base", dir: snapshotDir, seq };
      } else {
        source = {
          kind: "delta",
          logDir: join(this.#stateDir, LOG_DIRECTORY),
          previous: chain as Manifest,
          toSeq,
          folder: this.#folder,
        };
      }
      const written = await writeCheckpoint({
        store: blobs,
        source,
        partitionCount: this.#options.partitionCount,
        ...(request.savepointName === undefined ? {} : { savepointName: request.savepointName }),
        ...(this.#options.concurrency === undefined ? {} : { concurrency: this.#options.concurrency }),
        ...(onProgress === undefined ? {} : { onProgress }),
      });
      if (!savepoint) {
        this.#chain = written.manifest;
        writeLocalCheckpoint(this.#stateDir, blobs.url, written.manifest);
        store.keepLogAfter(written.manifest.seq);
        this.#wake(written.manifest.seq);
        try {
          await pruneCheckpoints(blobs, this.#options.keep ?? 3);
        } catch (error) {
          this.#options.log.warn(`deleting old checkpoints in ${blobs.url} failed: ${(error as Error).message}`, {
            blobs: blobs.url,
            ...errorFields(error),
          });
        }
      }
      return written;
    } finally {
      this.#running--;
      rmSync(snapshotDir, { recursive: true, force: true });
    }
  }

  async #needsBase(chain: Manifest | undefined): Promise<boolean> {
    if (chain === undefined) return true;
    if (chain.deltas.length >= MAX_CHAIN_DELTAS) return true;
    // The log must still hold every frame after the chain's end.
    if (this.#options.store.logFirstSeq > chain.seq + 1) return true;
    const baseBytes = storedBytes(chain.base.files);
    if (storedBytes(allFiles(chain)) - baseBytes >= baseBytes) return true;
    // The chain must still be in the store (someone may have emptied it): a delta on a
    // chain that is gone would not restore.
    return (await this.#options.blobs.get(manifestKey(chain))) === undefined;
  }

  #wake(seq: number): void {
    const ready = this.#waiters.filter((waiter) => waiter.seq <= seq);
    this.#waiters = this.#waiters.filter((waiter) => waiter.seq > seq);
    for (const waiter of ready) waiter.resolve();
  }

  /**
   * A checkpoint failed: say so, and should the log have grown too large waiting for one,
   * let it go (the next checkpoint is then a base).
   */
  #failed(error: unknown): void {
    const blobs = this.#options.blobs.url;
    this.#options.log.warn(`checkpoint to ${blobs} failed: ${(error as Error).message}`, {
      blobs,
      ...errorFields(error),
    });
    this.#releaseLogIfTooLarge();
  }

  #releaseLogIfTooLarge(): void {
    if (this.#options.store.logBytes > MAX_KEPT_LOG_BYTES) {
      this.#options.log.warn(
        `the write-ahead log holds over ${MAX_KEPT_LOG_BYTES / 2 ** 30} GiB waiting for a checkpoint; letting it go (the next checkpoint is a full one)`,
      );
      this.#options.store.keepLogAfter(undefined);
    }
  }
}
