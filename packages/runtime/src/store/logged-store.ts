// The durable store the runtime runs on: a write-ahead log in front of LMDB. A group commit
// is durable once its frame is in the log (one sequential synced write); its writes then
// wait in memory, readable, and reach LMDB in bulk a little later, in the background:
// a key written by many commits meanwhile costs LMDB one write, and LMDB's own sync of
// random pages no longer sits between a request and its answer.
//
// LMDB records the seq of the last frame it holds after that frame's writes (in the last
// transaction of an apply), so after a crash the store reopens LMDB and replays the frames
// after that seq; segments go only once LMDB has synced what they hold. Writes are whole
// values (a put or a delete), so replaying a frame LMDB partly holds is harmless.
import { join } from "node:path";
import type { Key, KeyValue, ScanOptions } from "../core/kv.ts";
import { OverlayKV, type PendingWrite } from "../core/overlay-kv.ts";
import { getRow, rowWrite, storeTables } from "../core/schema.ts";
import type { DurableStore } from "../engine/engine.ts";
import { EddyError } from "../errors.ts";
import { LmdbStore } from "./lmdb-store.ts";
import { FRAME_HEADER_BYTES, LogCorruptError, WriteAheadLog } from "./write-ahead-log.ts";
import { decodeWritesFrame, encodeWritesFrame } from "./writes-frame.ts";

/** Where LMDB keeps the seq of the last log frame it holds. */
export const APPLIED_KEY: Key = storeTables.appliedLogSeq.key();
/**
 * The version of the layout (core/schema.ts, record-codec.ts) this Eddy writes and reads.
 * A state directory records it with its first apply, and one without the row is version 1
 * (the row came after the layout). Checked at open: an Eddy must refuse a directory a newer
 * one wrote rather than misread it, and the next layout change needs to know what it
 * converts, in one place (the open) instead of readers of old shapes in the core. Stored
 * with an apply, not as a commit of its own at open: opening writes nothing.
 */
export const STORE_FORMAT = 1;
export const LOG_DIRECTORY = "log";
/** The most writes one LMDB transaction of an apply holds. */
const APPLY_TRANSACTION_WRITES = 2048;
/**
 * While an apply runs, commits go on into the memtable; past this many times the apply
 * thresholds a commit waits for the apply first, so that LMDB falling behind (a slow disk,
 * a checkpoint's copy) slows commits down instead of growing the memtable without end.
 */
const MEMTABLE_HARD_FACTOR = 4;

export interface LoggedStoreOptions {
  /** The state directory: LMDB's files, and the log in `log/`. */
  readonly path: string;
  /** Writes go to LMDB at least this often (default 1 s)... */
  readonly applyIntervalMs?: number;
  /** ...and as soon as this many are waiting (default 32,768)... */
  readonly applyAtWrites?: number;
  /**
   * ...or as soon as the waiting commits' log frames add up to this many bytes (default
   * 8 MiB): the memtable is bounded in bytes too, whatever the size of the values.
   */
  readonly applyAtBytes?: number;
  /** A log segment is closed and a new one begun at this size (default 64 MiB). */
  readonly segmentBytes?: number;
  /** Read the state as it is, changing nothing (see openReadOnly). */
  readonly readOnly?: boolean;
  /** Log frames after this seq stay until keepLogAfter moves on: the next checkpoint reads them. */
  readonly keepLogAfter?: number;
  /**
   * Told when an apply takes the writes waiting in memory (every commit made so far), and when
   * LMDB shows them: a reader that keeps its own copy of recent commits (a partition thread's
   * view, threads/thread-store.ts) drops it then.
   */
  readonly onApply?: { readonly sealed: () => void; readonly released: () => void };
}

/** A commit's frame, its first FRAME_HEADER_BYTES left for the log's header (appendFrame), so the log does not copy it again. */
function encodeFrame(writes: readonly PendingWrite[]): Buffer {
  return encodeWritesFrame(writes, FRAME_HEADER_BYTES);
}

export class LoggedStore implements DurableStore {
  readonly #lmdb: LmdbStore;
  readonly #log: WriteAheadLog;
  /** Writes durable in the log that LMDB does not hold yet; reads see them first. */
  readonly #memtable: OverlayKV;
  readonly #applyIntervalMs: number;
  readonly #applyAtWrites: number;
  readonly #applyAtBytes: number;
  /** The log bytes of the commits the memtable took since its last seal (an overwritten key counts each time). */
  #pendingBytes = 0;
  readonly #readOnly: boolean;
  readonly #path: string;
  #applying: Promise<void> | undefined;
  #applyTimer: NodeJS.Timeout | undefined;
  #closed = false;
  /** The last frame whose writes the memtable holds (or LMDB, before any). */
  #rememberedSeq: number;
  #keepLogAfter: number | undefined;
  /** The format row is not in LMDB yet: the next apply writes it. */
  #formatUnrecorded: boolean;
  readonly #onApply: LoggedStoreOptions["onApply"];

  constructor(options: LoggedStoreOptions) {
    this.#readOnly = options.readOnly ?? false;
    this.#path = options.path;
    this.#applyIntervalMs = options.applyIntervalMs ?? 1000;
    this.#applyAtWrites = options.applyAtWrites ?? 32_768;
    this.#applyAtBytes = options.applyAtBytes ?? 8 * 1024 * 1024;
    this.#keepLogAfter = options.keepLogAfter;
    this.#onApply = options.onApply;
    this.#lmdb = new LmdbStore({ path: options.path, sync: "deferred" });
    this.#memtable = new OverlayKV(this.#lmdb);
    const applied = this.#lmdbSeq();
    try {
      const { log, frames } = WriteAheadLog.open(join(options.path, LOG_DIRECTORY), applied, {
        ...(options.segmentBytes === undefined ? {} : { segmentBytes: options.segmentBytes }),
        readOnly: this.#readOnly,
        ...(options.keepLogAfter === undefined ? {} : { keepAfter: options.keepLogAfter }),
      });
      this.#log = log;
      for (const frame of frames) {
        this.#remember(decodeWritesFrame(frame.payload));
        this.#pendingBytes += frame.payload.length;
      }
      this.#rememberedSeq = log.lastSeq;
      this.#formatUnrecorded = this.#checkFormat();
    } catch (error) {
      void this.#lmdb.close();
      throw error;
    }
    this.#scheduleApply();
  }

  /**
   * Opens the state to read, changing nothing, while Eddy may be running: what it reads is
   * what was durable at the moment it opened. A running Eddy may drop log segments between
   * the moment LMDB is read and the log is: that looks like a gap, so it tries again.
   */
  static async openReadOnly(path: string): Promise<LoggedStore> {
    for (let attempt = 1; ; attempt++) {
      try {
        return new LoggedStore({ path, readOnly: true });
      } catch (error) {
        const racing = error instanceof LogCorruptError || (error as NodeJS.ErrnoException).code === "ENOENT";
        if (!racing || attempt === 5) throw error;
      }
      // LMDB reads renew their snapshot in a later event turn.
      await new Promise((resume) => setTimeout(resume, 20 * attempt));
    }
  }

  /** Refuses a directory in a newer format; whether this one still has to record its format. */
  #checkFormat(): boolean {
    const format = getRow(this.#memtable, storeTables.storeFormat.key());
    if (format !== undefined && format > STORE_FORMAT) {
      this.#log.close();
      throw new EddyError(
        "state-dir-format",
        `state directory ${this.#path} is in format ${format}, written by a newer Eddy; this one reads format ${STORE_FORMAT}`,
        { retriable: false },
      );
    }
    return format === undefined;
  }

  get(key: Key): unknown {
    return this.#memtable.get(key);
  }

  put(): void {
    throw new Error("LoggedStore.put: write through commit()");
  }

  insert(): void {
    throw new Error("LoggedStore.insert: write through commit()");
  }

  delete(): void {
    throw new Error("LoggedStore.delete: write through commit()");
  }

  scan(prefix: Key, options?: ScanOptions): Iterable<KeyValue> {
    return this.#memtable.scan(prefix, options);
  }

  /** Makes one group commit durable (in the log), then readable. One at a time. */
  async commit(writes: readonly PendingWrite[]): Promise<void> {
    if (this.#readOnly) throw new Error("LoggedStore.commit: the store was opened read-only");
    if (writes.length === 0) return;
    while (this.#applying !== undefined && this.#memtableFull(MEMTABLE_HARD_FACTOR)) await this.#applying;
    const frame = encodeFrame(writes);
    const seq = await this.#log.appendFrame(frame);
    this.#remember(writes);
    this.#pendingBytes += frame.length - FRAME_HEADER_BYTES;
    this.#rememberedSeq = seq;
    this.#scheduleApply();
  }

  /** The log bytes of the writes waiting in memory for the next apply (for tests and diagnostics). */
  get memtableBytes(): number {
    return this.#pendingBytes;
  }

  /** How many writes wait in memory for the next apply (for tests and diagnostics). */
  get memtableWrites(): number {
    return this.#memtable.pendingCount;
  }

  /** How many segment files the log holds (for tests and diagnostics). */
  get logSegmentCount(): number {
    return this.#log.segmentCount;
  }

  /** The state directory. */
  get path(): string {
    return this.#path;
  }

  /** The seq of the last durable commit: the state as of a checkpoint is named by it. */
  get lastSeq(): number {
    return this.#rememberedSeq;
  }

  /** The oldest frame the log still holds, and the bytes it takes (checkpoints read the log). */
  get logFirstSeq(): number {
    return this.#log.firstSeq;
  }

  get logBytes(): number {
    return this.#log.bytes;
  }

  /**
   * Keeps the log's frames after `seq` (undefined: none beyond what LMDB needs) until told
   * otherwise: the next incremental checkpoint reads them (readLogFrames).
   */
  keepLogAfter(seq: number | undefined): void {
    this.#keepLogAfter = seq;
    if (!this.#readOnly && !this.#closed && this.#applying === undefined) this.#dropLog(this.#lmdbSeq());
  }

  /**
   * Copies LMDB, compacted, into `dir` (which must exist and hold no data.mdb) holding
   * exactly the commits up to the seq returned: everything waiting is applied first, and no
   * apply runs until the copy is done. Commits go on meanwhile, into the memtable.
   */
  async snapshot(dir: string): Promise<number> {
    if (this.#readOnly || this.#closed) throw new Error("LoggedStore.snapshot: the store is closed or read-only");
    while (this.#applying !== undefined) await this.#applying;
    let seq = 0;
    const taking = (async () => {
      try {
        await this.#applyWaiting();
        seq = this.#lmdbSeq();
        await this.#lmdb.backup(dir);
      } finally {
        this.#applying = undefined;
      }
    })();
    this.#applying = taking;
    await taking;
    this.#scheduleApply();
    return seq;
  }

  /** Hands everything waiting to LMDB and waits until LMDB has it on disk. */
  async applyAll(): Promise<void> {
    while (this.#applying !== undefined) await this.#applying;
    await this.#apply();
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    if (this.#applyTimer !== undefined) clearTimeout(this.#applyTimer);
    if (!this.#readOnly) await this.applyAll();
    this.#log.close();
    // LMDB has synced everything now: the segment last written to goes as well (unless a
    // checkpoint still needs it).
    if (!this.#readOnly) this.#dropLog(this.#rememberedSeq);
    await this.#lmdb.close();
  }

  #remember(writes: readonly PendingWrite[]): void {
    for (const write of writes) {
      if (write.value === undefined) this.#memtable.delete(write.key);
      // The committer promised the key was absent (from this store too): a row that is
      // inserted and deleted before the next apply (a backlog row, an outbox entry, an
      // egress row) then never reaches LMDB. A replayed frame has no such promise: put.
      else if (write.fresh === true) this.#memtable.insert(write.key, write.value);
      else this.#memtable.put(write.key, write.value);
    }
  }

  /** Whether the writes waiting for the next apply reach `factor` times a threshold. */
  #memtableFull(factor: number): boolean {
    return (
      this.#memtable.pendingCount >= this.#applyAtWrites * factor || this.#pendingBytes >= this.#applyAtBytes * factor
    );
  }

  #scheduleApply(): void {
    if (this.#readOnly || this.#closed || this.#applying !== undefined) return;
    if (this.#memtableFull(1)) {
      if (this.#applyTimer !== undefined) clearTimeout(this.#applyTimer);
      this.#applyTimer = undefined;
      void this.#applyInBackground();
      return;
    }
    if (this.#applyTimer !== undefined || this.#memtable.pendingCount === 0) return;
    this.#applyTimer = setTimeout(() => {
      this.#applyTimer = undefined;
      void this.#applyInBackground();
    }, this.#applyIntervalMs);
    this.#applyTimer.unref();
  }

  /**
   * A failed apply leaves the log in place (nothing acknowledged is lost) but the store
   * cannot go on: the error ends the process, naming the state directory.
   */
  async #applyInBackground(): Promise<void> {
    // A snapshot (or applyAll) may hold the apply; it schedules the next when done.
    if (this.#closed || this.#applying !== undefined) return;
    try {
      await this.#apply();
    } catch (error) {
      throw new Error(
        `state directory ${this.#path}: applying the write-ahead log to LMDB failed: ${(error as Error).message}`,
        { cause: error },
      );
    }
    this.#scheduleApply();
  }

  /**
   * Moves the waiting writes to LMDB: they stay readable here until LMDB shows them, and
   * the log segments that hold them go once LMDB has synced them.
   */
  async #apply(): Promise<void> {
    const applying = (async () => {
      try {
        await this.#applyWaiting();
      } finally {
        this.#applying = undefined;
      }
    })();
    this.#applying = applying;
    await applying;
  }

  /** The body of an apply; the caller holds #applying. */
  async #applyWaiting(): Promise<void> {
    const upTo = this.#rememberedSeq;
    const writes = this.#memtable.seal();
    this.#onApply?.sealed();
    this.#pendingBytes = 0;
    if (writes.length === 0) {
      this.#memtable.release();
      this.#onApply?.released();
      return;
    }
    const recordingFormat = this.#formatUnrecorded;
    if (recordingFormat) writes.push(rowWrite(storeTables.storeFormat.key(), STORE_FORMAT));
    // The seq goes last: should LMDB hold only part of the writes, it does not claim them.
    writes.push(rowWrite(storeTables.appliedLogSeq.key(), upTo));
    // In transactions of a bounded size: LMDB keeps a buffer for every page a transaction
    // dirtied, at its peak, for reuse; one huge transaction over a big store would keep
    // tens of MB (bench/idle).
    for (let start = 0; start < writes.length; start += APPLY_TRANSACTION_WRITES) {
      await this.#lmdb.commit(writes.slice(start, start + APPLY_TRANSACTION_WRITES));
    }
    this.#memtable.release();
    this.#onApply?.released();
    if (recordingFormat) this.#formatUnrecorded = false;
    await this.#lmdb.flushed();
    this.#dropLog(upTo);
  }

  /** The seq of the last frame LMDB holds. */
  #lmdbSeq(): number {
    return getRow(this.#lmdb, storeTables.appliedLogSeq.key()) ?? 0;
  }

  /** Drops the log segments LMDB holds (through `synced`) that no checkpoint still needs. */
  #dropLog(synced: number): void {
    this.#log.dropThrough(Math.min(synced, this.#keepLogAfter ?? synced));
  }
}
