// Which records of a fetched partition a read_committed consumer may see. The broker bounds a
// read_committed fetch by the last stable offset, so every transaction in it is decided, and
// lists the aborted ones overlapping the fetch (producer id, first offset). A producer's
// batches from that offset on belong to its aborted transaction until its abort marker. The
// marker may be in a later fetch than the data (a response is cut at its byte limit), so
// which producers are inside an aborted transaction is carried from one fetch to the next.
// (@platformatic/kafka drops an aborted range only when its marker is in the same response;
// this filter runs after it and also drops the rest.) Control batches never reach functions.

/** A record batch as @platformatic/kafka decodes it (the fields read here). */
export interface FetchedBatch {
  readonly firstOffset: bigint;
  readonly lastOffsetDelta: number;
  readonly attributes: number;
  readonly producerId: bigint;
  readonly firstTimestamp: bigint;
  readonly records: readonly FetchedBatchRecord[];
}

export interface FetchedBatchRecord {
  readonly offsetDelta: number;
  readonly timestampDelta: bigint;
  readonly key: Buffer | null | undefined;
  readonly value: Buffer | null | undefined;
  readonly headers: readonly (readonly [Buffer, Buffer | null | undefined])[] | undefined;
}

export interface AbortedTransaction {
  readonly producerId: bigint;
  readonly firstOffset: bigint;
}

/** A record a function may see, with its partition offset. */
export interface CommittedRecord {
  readonly offset: bigint;
  readonly timestamp: bigint;
  readonly key: Buffer | null;
  readonly value: Buffer | null;
  readonly headers: readonly (readonly [Buffer, Buffer | null])[];
}

const TRANSACTIONAL = 0x10;
const CONTROL = 0x20;
const ABORT_MARKER = 0;

/** Per partition: producers whose aborted transaction's marker has not been read yet. */
export class AbortedProducers {
  readonly #open = new Set<bigint>();

  /**
   * The records at or after `fetchOffset` a read_committed consumer sees, and the offset to
   * fetch next (after the last batch, control batches included; `fetchOffset` when there
   * were none).
   */
  take(
    fetchOffset: bigint,
    batches: readonly FetchedBatch[],
    aborted: readonly AbortedTransaction[] | null | undefined,
  ): { readonly records: CommittedRecord[]; readonly nextOffset: bigint } {
    const pending = [...(aborted ?? [])].sort((a, b) => (a.firstOffset < b.firstOffset ? -1 : 1));
    const records: CommittedRecord[] = [];
    let nextOffset = fetchOffset;
    for (const batch of batches) {
      const lastOffset = batch.firstOffset + BigInt(batch.lastOffsetDelta);
      while (pending.length > 0 && (pending[0] as AbortedTransaction).firstOffset <= lastOffset) {
        this.#open.add((pending.shift() as AbortedTransaction).producerId);
      }
      if (lastOffset >= nextOffset) nextOffset = lastOffset + 1n;
      if ((batch.attributes & CONTROL) !== 0) {
        const key = batch.records[0]?.key;
        if (key !== null && key !== undefined && key.length >= 4 && key.readInt16BE(2) === ABORT_MARKER) {
          this.#open.delete(batch.producerId);
        }
        continue;
      }
      if ((batch.attributes & TRANSACTIONAL) !== 0 && this.#open.has(batch.producerId)) continue;
      for (const record of batch.records) {
        const offset = batch.firstOffset + BigInt(record.offsetDelta);
        if (offset < fetchOffset) continue;
        records.push({
          offset,
          timestamp: batch.firstTimestamp + record.timestampDelta,
          key: record.key ?? null,
          value: record.value ?? null,
          headers: (record.headers ?? []).map(([name, value]) => [name, value ?? null] as const),
        });
      }
    }
    return { records, nextOffset };
  }
}
