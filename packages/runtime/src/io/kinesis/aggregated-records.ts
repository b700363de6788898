// De-aggregation of records the Kinesis Producer Library packs several user records into,
// as the KCL (and so Flink's Kinesis consumer, under StateFun) does: the data is the magic
// F3 89 9A C2, a protobuf AggregatedRecord, then the MD5 of that protobuf. Data that does
// not start with the magic, or whose MD5 does not match, is an ordinary record (the KCL's
// rule: a plain record may start with those bytes by chance). A matching MD5 over bytes that
// do not decode is a broken aggregated record, reported as such. A small hand-written
// protobuf reader: three message types, unknown fields skipped.
import { createHash } from "node:crypto";

export const AGGREGATED_MAGIC = Uint8Array.of(0xf3, 0x89, 0x9a, 0xc2);
const MD5_BYTES = 16;

/** One user record of an aggregated record. */
export interface SubRecord {
  /** Undefined when the record names a partition key the table does not have (`problem` says which). */
  readonly partitionKey: string | undefined;
  readonly explicitHashKey: string | undefined;
  readonly data: Uint8Array;
  readonly problem: string | undefined;
}

export type Deaggregated =
  | { readonly kind: "plain" }
  | { readonly kind: "aggregated"; readonly records: readonly SubRecord[] }
  | { readonly kind: "malformed"; readonly reason: string };

export function deaggregate(data: Uint8Array): Deaggregated {
  if (data.byteLength < AGGREGATED_MAGIC.byteLength + MD5_BYTES) return { kind: "plain" };
  for (let i = 0; i < AGGREGATED_MAGIC.byteLength; i++) {
    if (data[i] !== AGGREGATED_MAGIC[i]) return { kind: "plain" };
  }
  const body = data.subarray(AGGREGATED_MAGIC.byteLength, data.byteLength - MD5_BYTES);
  const digest = createHash("md5").update(body).digest();
  if (!digest.equals(data.subarray(data.byteLength - MD5_BYTES))) return { kind: "plain" };
  try {
    return { kind: "aggregated", records: readAggregatedRecord(body) };
  } catch (error) {
    if (error instanceof MalformedProtobuf) return { kind: "malformed", reason: error.message };
    throw error;
  }
}

class MalformedProtobuf extends Error {}

const WIRE_VARINT = 0;
const WIRE_FIXED64 = 1;
const WIRE_LEN = 2;
const WIRE_FIXED32 = 5;

/** A cursor over protobuf bytes; every read checks its bounds and throws MalformedProtobuf. */
class ProtobufReader {
  readonly #bytes: Uint8Array;
  #at: number;
  readonly #end: number;

  constructor(bytes: Uint8Array, start = 0, end = bytes.byteLength) {
    this.#bytes = bytes;
    this.#at = start;
    this.#end = end;
  }

  get done(): boolean {
    return this.#at >= this.#end;
  }

  /** A varint as a number; values above 2^53 come back as Infinity (no index or length is that large). */
  varint(): number {
    let value = 0;
    let scale = 1;
    for (let i = 0; i < 10; i++) {
      if (this.#at >= this.#end) throw new MalformedProtobuf("a varint runs past the end of its message");
      const byte = this.#bytes[this.#at++] as number;
      value += (byte & 0x7f) * scale;
      if ((byte & 0x80) === 0) return Number.isSafeInteger(value) ? value : Number.POSITIVE_INFINITY;
      scale *= 128;
    }
    throw new MalformedProtobuf("a varint is longer than 10 bytes");
  }

  /** The bounds of a length-delimited field's content, which the cursor skips. */
  lengthDelimited(): { readonly start: number; readonly end: number } {
    const length = this.varint();
    if (length > this.#end - this.#at) throw new MalformedProtobuf("a field's length runs past the end of its message");
    const start = this.#at;
    this.#at += length;
    return { start, end: this.#at };
  }

  bytes(): Uint8Array {
    const { start, end } = this.lengthDelimited();
    return this.#bytes.subarray(start, end);
  }

  string(): string {
    try {
      return new TextDecoder("utf-8", { fatal: true }).decode(this.bytes());
    } catch (error) {
      if (error instanceof MalformedProtobuf) throw error;
      throw new MalformedProtobuf("a string field is not UTF-8");
    }
  }

  message(): ProtobufReader {
    const { start, end } = this.lengthDelimited();
    return new ProtobufReader(this.#bytes, start, end);
  }

  /** The next field's number and wire type. */
  tag(): { readonly field: number; readonly wire: number } {
    const tag = this.varint();
    const field = Math.floor(tag / 8);
    if (field === 0 || !Number.isFinite(tag)) throw new MalformedProtobuf("a field number is 0 or too large");
    return { field, wire: tag % 8 };
  }

  skip(wire: number): void {
    if (wire === WIRE_VARINT) this.varint();
    else if (wire === WIRE_LEN) this.lengthDelimited();
    else if (wire === WIRE_FIXED64 || wire === WIRE_FIXED32) {
      const size = wire === WIRE_FIXED64 ? 8 : 4;
      if (size > this.#end - this.#at)
        throw new MalformedProtobuf("a fixed-size field runs past the end of its message");
      this.#at += size;
    } else throw new MalformedProtobuf(`wire type ${wire} is not used by AggregatedRecord`);
  }
}

/** AggregatedRecord: 1 partition_key_table (string), 2 explicit_hash_key_table (string), 3 records (Record). */
function readAggregatedRecord(body: Uint8Array): SubRecord[] {
  const reader = new ProtobufReader(body);
  const partitionKeys: string[] = [];
  const explicitHashKeys: string[] = [];
  const records: RawRecord[] = [];
  while (!reader.done) {
    const { field, wire } = reader.tag();
    if (field === 1 && wire === WIRE_LEN) partitionKeys.push(reader.string());
    else if (field === 2 && wire === WIRE_LEN) explicitHashKeys.push(reader.string());
    else if (field === 3 && wire === WIRE_LEN) records.push(readRecord(reader.message()));
    else reader.skip(wire);
  }
  if (records.length === 0) throw new MalformedProtobuf("the aggregated record holds no records");
  return records.map((record) => {
    let problem: string | undefined;
    const partitionKey = partitionKeys[record.partitionKeyIndex ?? -1];
    if (record.partitionKeyIndex === undefined) problem = "has no partition key index";
    else if (partitionKey === undefined) {
      problem = `names partition key ${record.partitionKeyIndex}, but the table has ${partitionKeys.length}`;
    }
    if (problem === undefined && record.data === undefined) problem = "has no data";
    const explicitHashKey =
      record.explicitHashKeyIndex === undefined ? undefined : explicitHashKeys[record.explicitHashKeyIndex];
    return {
      partitionKey,
      explicitHashKey,
      data: record.data ?? new Uint8Array(0),
      problem,
    };
  });
}

interface RawRecord {
  readonly partitionKeyIndex: number | undefined;
  readonly explicitHashKeyIndex: number | undefined;
  readonly data: Uint8Array | undefined;
}

/** Record: 1 partition_key_index (uint64), 2 explicit_hash_key_index (uint64), 3 data (bytes), 4 tags (skipped). */
function readRecord(reader: ProtobufReader): RawRecord {
  let partitionKeyIndex: number | undefined;
  let explicitHashKeyIndex: number | undefined;
  let data: Uint8Array | undefined;
  while (!reader.done) {
    const { field, wire } = reader.tag();
    if (field === 1 && wire === WIRE_VARINT) partitionKeyIndex = reader.varint();
    else if (field === 2 && wire === WIRE_VARINT) explicitHashKeyIndex = reader.varint();
    else if (field === 3 && wire === WIRE_LEN) data = reader.bytes();
    else reader.skip(wire);
  }
  return { partitionKeyIndex, explicitHashKeyIndex, data };
}
