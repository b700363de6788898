// One partition's log in the simulated Kafka: offsets, transaction markers, the last stable
// offset and the log start offset. It is what read_committed readers see that makes EOS work:
// records of an open transaction hold the LSO back, aborted records are skipped, and every
// commit or abort marker takes an offset of its own, as in Kafka, so offsets have gaps and a
// reader must continue from the position the fetch reports, not from last offset + 1.
import { type KafkaResult, kafkaError, ok } from "./kafka-errors.ts";

export interface RecordHeader {
  readonly key: string;
  readonly value: Uint8Array;
}

/** A record as a producer sends it. */
export interface RecordInput {
  readonly key: Uint8Array | null;
  readonly value: Uint8Array | null;
  readonly headers?: readonly RecordHeader[];
}

/** A record as a consumer reads it. */
export interface FetchedRecord {
  readonly offset: number;
  readonly timestampMs: number;
  readonly key: Uint8Array | null;
  readonly value: Uint8Array | null;
  readonly headers: readonly RecordHeader[];
  /** -1 for a producer without an id (plain produce). */
  readonly producerId: number;
  readonly transactional: boolean;
}

export type Isolation = "read_committed" | "read_uncommitted";

/** Shared by every record of one transaction, so ending it is one assignment, not a walk over the log. */
export interface TxnMark {
  outcome: "open" | "committed" | "aborted";
}

export interface FetchResponse {
  readonly records: readonly FetchedRecord[];
  /** Where the next fetch starts: past the last record returned and any markers or aborted records after it. */
  readonly nextOffset: number;
  readonly highWatermark: number;
  readonly lastStableOffset: number;
  readonly logStartOffset: number;
}

interface Entry {
  readonly control: boolean;
  readonly record: RecordInput | null;
  readonly timestampMs: number;
  readonly producerId: number;
  readonly txn: TxnMark | null;
}

const NO_HEADERS: readonly RecordHeader[] = [];

export class PartitionLog {
  // #entries[i] has offset #logStartOffset + i: every offset, markers included, has an entry.
  #entries: Entry[] = [];
  #logStartOffset = 0;
  /** First offset in this partition of each open transaction that wrote here (the LSO is their minimum). */
  readonly #openFirstOffsets = new Map<TxnMark, number>();

  get logStartOffset(): number {
    return this.#logStartOffset;
  }

  /** One broker, no replication: the high watermark is the log end offset. */
  get highWatermark(): number {
    return this.#logStartOffset + this.#entries.length;
  }

  get lastStableOffset(): number {
    let lso = this.highWatermark;
    for (const first of this.#openFirstOffsets.values()) lso = Math.min(lso, first);
    return lso;
  }

  /** Appends records and returns the first one's offset. */
  append(records: readonly RecordInput[], nowMs: number, producerId: number, txn: TxnMark | null): number {
    const baseOffset = this.highWatermark;
    if (txn !== null && !this.#openFirstOffsets.has(txn)) this.#openFirstOffsets.set(txn, baseOffset);
    for (const record of records) this.#entries.push({ control: false, record, timestampMs: nowMs, producerId, txn });
    return baseOffset;
  }

  /** The commit or abort marker of a transaction that wrote here: it ends the hold on the LSO. */
  appendMarker(txn: TxnMark, nowMs: number, producerId: number): void {
    this.#openFirstOffsets.delete(txn);
    this.#entries.push({ control: true, record: null, timestampMs: nowMs, producerId, txn });
  }

  fetch(offset: number, isolation: Isolation, maxRecords: number): KafkaResult<FetchResponse> {
    if (!Number.isSafeInteger(offset) || offset < this.#logStartOffset || offset > this.highWatermark) {
      return kafkaError(
        "OFFSET_OUT_OF_RANGE",
        `offset ${offset} is outside [${this.#logStartOffset}, ${this.highWatermark}] of this partition`,
      );
    }
    const bound = isolation === "read_committed" ? this.lastStableOffset : this.highWatermark;
    const records: FetchedRecord[] = [];
    let next = offset;
    for (; next < bound && records.length < maxRecords; next++) {
      const entry = this.#entries[next - this.#logStartOffset] as Entry;
      if (entry.control || entry.record === null) continue;
      if (isolation === "read_committed" && entry.txn !== null && entry.txn.outcome === "aborted") continue;
      records.push({
        offset: next,
        timestampMs: entry.timestampMs,
        key: entry.record.key,
        value: entry.record.value,
        headers: entry.record.headers ?? NO_HEADERS,
        producerId: entry.producerId,
        transactional: entry.txn !== null,
      });
    }
    return ok({
      records,
      nextOffset: next,
      highWatermark: this.highWatermark,
      lastStableOffset: this.lastStableOffset,
      logStartOffset: this.#logStartOffset,
    });
  }

  /**
   * Not a Kafka API: the simulation's oracle looks at the records in [from, before) as they
   * are, each with its transaction (null: not transactional), whatever the last stable offset.
   * It reads what a trim is about to delete, which may lie above an open transaction.
   */
  inspect(
    from: number,
    before: number,
  ): { readonly offset: number; readonly value: Uint8Array | null; readonly txn: TxnMark | null }[] {
    const found = [];
    for (let offset = Math.max(from, this.#logStartOffset); offset < Math.min(before, this.highWatermark); offset++) {
      const entry = this.#entries[offset - this.#logStartOffset] as Entry;
      if (entry.control || entry.record === null) continue;
      found.push({ offset, value: entry.record.value, txn: entry.txn });
    }
    return found;
  }

  /** Kafka's DeleteRecords: moves the log start offset up to `beforeOffset` (never back, never past the high watermark). */
  deleteRecords(beforeOffset: number): KafkaResult<number> {
    if (!Number.isSafeInteger(beforeOffset) || beforeOffset < 0 || beforeOffset > this.highWatermark) {
      return kafkaError(
        "OFFSET_OUT_OF_RANGE",
        `cannot delete before ${beforeOffset}: high watermark ${this.highWatermark}`,
      );
    }
    if (beforeOffset > this.#logStartOffset) {
      this.#entries = this.#entries.slice(beforeOffset - this.#logStartOffset);
      this.#logStartOffset = beforeOffset;
    }
    return ok(this.#logStartOffset);
  }
}
