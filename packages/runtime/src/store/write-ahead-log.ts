// The write-ahead log: where a group commit becomes durable. A commit is one frame
// appended to the current segment file, opened with O_DSYNC, so the write returns once the
// frame is on disk: one sequential write, about 0.2 ms here, where an LMDB commit has to
// sync every random page it touched (2–5 ms for a group commit). The store applies the
// frames to LMDB later and in bulk (logged-store.ts), then drops the segments LMDB holds.
//
// A segment is `<seq of its first frame, 16 digits>.log`; a frame is a 16-byte header
// (payload length u32, CRC-32 of the payload u32, seq u64, all little-endian) and the
// payload. Seqs rise by one from frame to frame, across segments. Only the last frame of
// the last segment can be torn (one append is in flight at a time, and a crash stops it);
// opening the log cuts such a tail off. A bad frame anywhere else is corruption, and so is
// a gap in the seqs: both are errors that name the file and offset.
import {
  closeSync,
  constants,
  fsyncSync,
  ftruncateSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  write,
} from "node:fs";
import { join } from "node:path";
import { crc32 } from "node:zlib";

/** A frame's header: payload length, CRC-32 of the payload, seq (see appendFrame). */
export const FRAME_HEADER_BYTES = 16;
const SEGMENT_NAME = /^(\d{16})\.log$/;
/** A payload larger than this is not a frame but garbage (a group commit is bounded far below it). */
const MAX_PAYLOAD_BYTES = 1 << 30;

export interface LogFrame {
  readonly seq: number;
  readonly payload: Buffer;
}

export interface WriteAheadLogOptions {
  /** A segment is closed and a new one begun once it holds this many bytes (default 64 MiB). */
  readonly segmentBytes?: number;
  /** Read without changing anything (no tail cut, no appends): for reading state while Eddy runs. */
  readonly readOnly?: boolean;
  /**
   * Frames after this seq stay in the log even when the store holds them (the next
   * checkpoint reads them, see readLogFrames); default: none beyond what the store needs.
   */
  readonly keepAfter?: number;
}

interface Segment {
  readonly path: string;
  readonly firstSeq: number;
  /** The seq of its last good frame; firstSeq - 1 when it holds none. */
  lastSeq: number;
}

export class LogCorruptError extends Error {}

const segmentName = (firstSeq: number) => `${String(firstSeq).padStart(16, "0")}.log`;

export class WriteAheadLog {
  readonly #dir: string;
  readonly #segmentBytes: number;
  readonly #readOnly: boolean;
  readonly #keepAfter: number | undefined;
  #segments: Segment[] = [];
  #fd: number | undefined;
  #currentBytes = 0;
  #lastSeq: number;
  #appending = false;
  /** Set by a failed append: what reached the disk is unknown, so nothing more may follow. */
  #broken: Error | undefined;

  /**
   * Opens the log in `dir` (created if missing) and returns the frames after `afterSeq`:
   * those the store has not applied yet. Segments whose frames are all at or before
   * `afterSeq` are deleted (unless read-only).
   */
  static open(
    dir: string,
    afterSeq: number,
    options: WriteAheadLogOptions = {},
  ): { readonly log: WriteAheadLog; readonly frames: LogFrame[] } {
    if (!options.readOnly) mkdirSync(dir, { recursive: true });
    const log = new WriteAheadLog(dir, afterSeq, options);
    const frames = log.#load(afterSeq);
    return { log, frames };
  }

  private constructor(dir: string, afterSeq: number, options: WriteAheadLogOptions) {
    this.#dir = dir;
    this.#segmentBytes = options.segmentBytes ?? 64 * 1024 * 1024;
    this.#readOnly = options.readOnly ?? false;
    this.#keepAfter = options.keepAfter;
    this.#lastSeq = afterSeq;
  }

  /** The seq of the last frame written (or of the last applied before it, when there is none). */
  get lastSeq(): number {
    return this.#lastSeq;
  }

  /** How many segment files the log holds now. */
  get segmentCount(): number {
    return this.#segments.length;
  }

  /** The seq of the oldest frame the log still holds (lastSeq + 1 when it holds none). */
  get firstSeq(): number {
    return this.#segments[0]?.firstSeq ?? this.#lastSeq + 1;
  }

  /** The bytes its segments take on disk. */
  get bytes(): number {
    let total = 0;
    for (const segment of this.#segments) total += statSync(segment.path, { throwIfNoEntry: false })?.size ?? 0;
    return total;
  }

  #load(afterSeq: number): LogFrame[] {
    let names: string[];
    try {
      names = readdirSync(this.#dir);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === "ENOENT" && this.#readOnly) return [];
      throw error;
    }
    const segments = names
      .map((name) => SEGMENT_NAME.exec(name))
      .filter((match) => match !== null)
      .map((match) => ({ path: join(this.#dir, match[0]), firstSeq: Number(match[1]), lastSeq: 0 }))
      .sort((a, b) => a.firstSeq - b.firstSeq);
    const frames: LogFrame[] = [];
    let expected: number | undefined;
    for (const [index, segment] of segments.entries()) {
      const last = index === segments.length - 1;
      const bytes = readFileSync(segment.path);
      let offset = 0;
      let seq = segment.firstSeq - 1;
      while (offset < bytes.length) {
        const frame = readFrame(bytes, offset);
        if (typeof frame === "string") {
          if (!last) throw new LogCorruptError(`write-ahead log ${segment.path}: ${frame} at byte ${offset}`);
          // The torn tail of the last append: it never completed, so no commit was acknowledged.
          if (!this.#readOnly) cutTail(segment.path, offset);
          break;
        }
        if (frame.seq !== seq + 1) {
          throw new LogCorruptError(
            `write-ahead log ${segment.path}: frame ${frame.seq} at byte ${offset} follows ${seq}`,
          );
        }
        seq = frame.seq;
        if (seq > afterSeq) frames.push(frame);
        offset += FRAME_HEADER_BYTES + frame.payload.length;
      }
      segment.lastSeq = seq;
      if (last && seq < segment.firstSeq) {
        // A crash during the segment's first append left no whole frame: the segment is
        // forgotten, or the next append would start a second one under the same name.
        if (!this.#readOnly) rmSync(segment.path, { force: true });
        segments.pop();
        break;
      }
      if (expected !== undefined && segment.firstSeq !== expected) {
        throw new LogCorruptError(
          `write-ahead log ${this.#dir}: segment ${segment.path} starts at ${segment.firstSeq}, expected ${expected}`,
        );
      }
      expected = seq + 1;
      if (last) this.#currentBytes = offset;
    }
    const first = frames[0];
    if (first !== undefined && first.seq !== afterSeq + 1) {
      throw new LogCorruptError(
        `write-ahead log ${this.#dir}: the store holds frames up to ${afterSeq}, but the log resumes at ${first.seq}`,
      );
    }
    this.#segments = segments;
    const newest = segments.at(-1);
    if (newest !== undefined && newest.lastSeq > this.#lastSeq) this.#lastSeq = newest.lastSeq;
    if (!this.#readOnly) this.dropThrough(Math.min(afterSeq, this.#keepAfter ?? afterSeq));
    return frames;
  }

  /**
   * Appends one frame with the next seq and resolves once it is on disk. One append at a
   * time: the store waits for each before the next.
   */
  append(payload: Buffer): Promise<number> {
    const frame = Buffer.allocUnsafe(FRAME_HEADER_BYTES + payload.length);
    payload.copy(frame, FRAME_HEADER_BYTES);
    return this.appendFrame(frame);
  }

  /**
   * `append` for a payload encoded after FRAME_HEADER_BYTES left free at the start of
   * `frame`: the header goes there, so a group commit's bytes are not copied once more.
   * `frame` must stay unchanged until the returned promise settles.
   */
  appendFrame(frame: Buffer): Promise<number> {
    if (this.#readOnly) throw new Error("WriteAheadLog.append: the log was opened read-only");
    if (this.#appending) throw new Error("WriteAheadLog.append: an append is already in flight");
    if (this.#broken !== undefined) return Promise.reject(this.#broken);
    if (frame.length < FRAME_HEADER_BYTES)
      throw new Error("WriteAheadLog.appendFrame: the frame has no room for its header");
    const seq = this.#lastSeq + 1;
    if (this.#fd === undefined || this.#currentBytes >= this.#segmentBytes) this.#startSegment(seq);
    const payload = frame.subarray(FRAME_HEADER_BYTES);
    frame.writeUInt32LE(payload.length, 0);
    frame.writeUInt32LE(crc32(payload), 4);
    frame.writeBigUInt64LE(BigInt(seq), 8);
    const fd = this.#fd as number;
    this.#appending = true;
    return new Promise<number>((resolve, reject) => {
      const writeFrom = (offset: number) => {
        write(fd, frame, offset, frame.length - offset, null, (error, written) => {
          if (error !== null) {
            this.#appending = false;
            this.#broken = new Error(`write-ahead log ${this.#dir}: appending frame ${seq} failed: ${error.message}`);
            reject(this.#broken);
            return;
          }
          if (offset + written < frame.length) {
            writeFrom(offset + written);
            return;
          }
          this.#appending = false;
          this.#currentBytes += frame.length;
          this.#lastSeq = seq;
          (this.#segments.at(-1) as Segment).lastSeq = seq;
          resolve(seq);
        });
      };
      writeFrom(0);
    });
  }

  /** Deletes the segments whose frames all lie at or before `seq` (the store holds them durably). */
  dropThrough(seq: number): void {
    while (this.#segments.length > 0) {
      const oldest = this.#segments[0] as Segment;
      // The segment being appended to stays, whatever it holds.
      const isCurrent = this.#segments.length === 1 && this.#fd !== undefined;
      if (oldest.lastSeq > seq || isCurrent) break;
      rmSync(oldest.path, { force: true });
      this.#segments.shift();
    }
  }

  /** Closes the current segment; segments the store holds durably should be dropped first. */
  close(): void {
    if (this.#fd !== undefined) closeSync(this.#fd);
    this.#fd = undefined;
  }

  #startSegment(firstSeq: number): void {
    if (this.#fd !== undefined) closeSync(this.#fd);
    const path = join(this.#dir, segmentName(firstSeq));
    this.#fd = openSync(path, constants.O_WRONLY | constants.O_CREAT | constants.O_APPEND | constants.O_DSYNC, 0o644);
    this.#currentBytes = 0;
    this.#segments.push({ path, firstSeq, lastSeq: firstSeq - 1 });
    // The new file's name must be durable too, or a crash could lose the whole segment.
    const dirFd = openSync(this.#dir, constants.O_RDONLY);
    try {
      fsyncSync(dirFd);
    } finally {
      closeSync(dirFd);
    }
  }
}

/** The frame at `offset`, or why there is none (an incomplete or damaged frame). */
function readFrame(bytes: Buffer, offset: number): LogFrame | string {
  if (bytes.length - offset < FRAME_HEADER_BYTES) return "an incomplete frame header";
  const length = bytes.readUInt32LE(offset);
  if (length > MAX_PAYLOAD_BYTES) return `a frame length of ${length} bytes`;
  if (bytes.length - offset - FRAME_HEADER_BYTES < length) return "an incomplete frame";
  const payload = bytes.subarray(offset + FRAME_HEADER_BYTES, offset + FRAME_HEADER_BYTES + length);
  if (crc32(payload) !== bytes.readUInt32LE(offset + 4)) return "a frame whose checksum does not match";
  return { seq: Number(bytes.readBigUInt64LE(offset + 8)), payload };
}

function cutTail(path: string, length: number): void {
  const fd = openSync(path, constants.O_RDWR);
  try {
    ftruncateSync(fd, length);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

/**
 * Reads the frames after `afterSeq` through `throughSeq` from the log in `dir`, segment by
 * segment, without changing anything, while the log may be appended to (frames up to
 * `throughSeq` were acknowledged, so they are whole). Used by checkpoints, which hold the
 * segments they need (`keepAfter`). A frame missing from that range, or a damaged one, is
 * a LogCorruptError naming where.
 */
export function* readLogFrames(dir: string, afterSeq: number, throughSeq: number): Generator<LogFrame> {
  if (throughSeq <= afterSeq) return;
  const segments = readdirSync(dir)
    .map((name) => SEGMENT_NAME.exec(name))
    .filter((match) => match !== null)
    .map((match) => ({ path: join(dir, match[0]), firstSeq: Number(match[1]) }))
    .sort((a, b) => a.firstSeq - b.firstSeq);
  let next = afterSeq + 1;
  for (const [index, segment] of segments.entries()) {
    const following = segments[index + 1];
    // Segments wholly before the range are skipped unread.
    if (following !== undefined && following.firstSeq <= next) continue;
    if (segment.firstSeq > next) {
      throw new LogCorruptError(
        `write-ahead log ${dir}: frames from ${next} are no longer in the log (it resumes at ${segment.firstSeq})`,
      );
    }
    const bytes = readFileSync(segment.path);
    let offset = 0;
    while (offset < bytes.length && next <= throughSeq) {
      const frame = readFrame(bytes, offset);
      if (typeof frame === "string") {
        throw new LogCorruptError(
          `write-ahead log ${segment.path}: ${frame} at byte ${offset}, before frame ${throughSeq}`,
        );
      }
      if (frame.seq === next) {
        yield frame;
        next++;
      } else if (frame.seq > next) {
        throw new LogCorruptError(
          `write-ahead log ${segment.path}: frame ${frame.seq} at byte ${offset}, expected ${next}`,
        );
      }
      offset += FRAME_HEADER_BYTES + frame.payload.length;
    }
    if (next > throughSeq) return;
  }
  throw new LogCorruptError(`write-ahead log ${dir}: it ends before frame ${next} (wanted up to ${throughSeq})`);
}
