// A group commit's writes as one self-describing byte string: the write-ahead log's frame in
// the embedded mode, a changelog record's value in a cluster. Rows are `[key]` (a delete) or
// `[key, value]`, whole keys and values; the rows written most (state values, in-flight
// batches, backlog rows) in the record codec, as LMDB holds them (msgpack would spell out
// every field name of every row, the largest cost of a commit). Frames written before the
// codec hold those rows as maps, and still decode.
import { Packr, RESERVE_START_SPACE } from "msgpackr";
import type { Key } from "../core/kv.ts";
import type { PendingWrite } from "../core/overlay-kv.ts";
import { decodeRow, encodeRow } from "./record-codec.ts";

/** No shared structures, so any frame decodes on its own. */
const packr = new Packr({ useRecords: false });

/**
 * The frame of `writes`, with its first `reserveStartBytes` left free for a header the caller
 * writes there (the log's), so the frame is not copied again. It lies in msgpackr's buffer,
 * which msgpackr never writes over: it moves on, and lmdb-js packs values there too and hands
 * LMDB's write thread pointers into it. So this packs where msgpackr chooses; reusing a buffer
 * of our own (`useBuffer`) would write over values an apply has not yet read.
 */
export function encodeWritesFrame(writes: readonly PendingWrite[], reserveStartBytes = 0): Buffer {
  const rows: unknown[] = new Array(writes.length);
  for (let index = 0; index < writes.length; index++) {
    const { key, value } = writes[index] as PendingWrite;
    rows[index] = value === undefined ? [key] : [key, encodeRow(key, value)];
  }
  return reserveStartBytes === 0 ? packr.pack(rows) : packr.pack(rows, RESERVE_START_SPACE | reserveStartBytes);
}

/** A frame's writes; codec-table rows come back as records. Throws on bytes that are not a frame. */
export function decodeWritesFrame(payload: Uint8Array): PendingWrite[] {
  const rows = packr.unpack(payload) as ([Key] | [Key, unknown])[];
  return rows.map((row) => ({ key: row[0], value: row.length === 1 ? undefined : decodeRow(row[0], row[1]) }));
}
