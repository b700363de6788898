// A delta: the net writes of a run of commits, read back from the write-ahead log. A key
// written many times between two checkpoints is stored once, with its last value (or as
// deleted), so a delta's size follows what changed, not how often. Rows are msgpack
// `[key]` (deleted) or `[key, value]`, the same form as a log frame's, concatenated; they
// are sorted by LMDB's key order, so a restore writes them in order.
import { Packr } from "msgpackr";
import { toBufferKey } from "ordered-binary";
import type { Key } from "../core/kv.ts";
import { readLogFrames } from "../store/write-ahead-log.ts";
import { CHUNK_BYTES } from "./stored-files.ts";

/** Same settings as the log's frames: self-describing, no shared structures. */
const packr = new Packr({ useRecords: false });

export type DeltaRow = readonly [Key] | readonly [Key, unknown];

/**
 * Folds the frames after `afterSeq` through `throughSeq` of the log in `logDir` into net
 * writes: encoded rows in LMDB's key order. Throws LogCorruptError when the log no longer
 * holds them all.
 */
export function foldLog(logDir: string, afterSeq: number, throughSeq: number): Buffer[] {
  // Most rows are overwritten before the checkpoint (a batch in flight, a backlog row, a
  // state written many times): they are only decoded and kept by a cheap identity; the
  // survivors alone are encoded, keyed in LMDB's order and sorted.
  const latest = new Map<string, DeltaRow>();
  for (const frame of readLogFrames(logDir, afterSeq, throughSeq)) {
    const rows = packr.unpack(frame.payload) as DeltaRow[];
    for (const row of rows) latest.set(identity(row[0]), row);
  }
  const sorted = [...latest.values()].map((row) => ({ order: toBufferKey(row[0] as never).toString("latin1"), row }));
  // latin1 strings compare as their bytes do: LMDB's order.
  sorted.sort((a, b) => (a.order < b.order ? -1 : a.order > b.order ? 1 : 0));
  return sorted.map(({ row }) => packr.pack(row));
}

/**
 * A string that tells keys apart: a string part is tagged and length-prefixed, so no part's
 * content can pass for a boundary; a number part is tagged, so 1 and "1" differ.
 */
function identity(key: Key): string {
  let text = "";
  for (const part of key) text += typeof part === "string" ? `s${part.length}:${part}` : `n${part};`;
  return text;
}

/** The rows in chunks of about CHUNK_BYTES, for upload. */
export function* deltaChunks(rows: readonly Buffer[], chunkBytes = CHUNK_BYTES): Generator<Buffer> {
  let batch: Buffer[] = [];
  let bytes = 0;
  for (const row of rows) {
    batch.push(row);
    bytes += row.length;
    if (bytes >= chunkBytes) {
      yield Buffer.concat(batch, bytes);
      batch = [];
      bytes = 0;
    }
  }
  if (batch.length > 0) yield Buffer.concat(batch, bytes);
}

/** The rows of one downloaded chunk. */
export function decodeDeltaChunk(bytes: Buffer): DeltaRow[] {
  return packr.unpackMultiple(bytes) as DeltaRow[];
}
