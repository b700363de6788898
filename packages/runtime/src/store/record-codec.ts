// A compact binary form for the rows written most (state values, in-flight batches, backlog
// rows): fixed field order, no field names, strings and bytes length-prefixed. msgpack spends
// 2–4 µs per such record on this machine; this takes a fraction of that. Every other table
// keeps lmdb-js's msgpack. The store wraps these bytes as a msgpack binary value, so a row
// written before this codec existed (a msgpack map) still reads: a Uint8Array is ours.
//
// Layout: a kind byte, then per kind
//   state:     typename, writtenAtMs (f64), invokedAtMs (f64), value (rest of the bytes)
//   inflight:  target typename, target id, batchId (f64), failedAttempts (f64), count (u32), invocations
//   backlog:   one invocation
// invocation: flags (1 = has caller, 2 = argument has a value, 4 = has headers, 8 = has a trace),
//             [caller typename, caller id], argument typename, argument bytes (u32 length + bytes),
//             [header count (u32), per header: key, value (u32 length, 0xffffffff = null, + bytes)],
//             [trace context (a traceparent string)]
// strings: u32 byte length + UTF-8.
import type { MessageHeader, TypedValue } from "@eddy/protocol";
import type { Address, FunctionTypename } from "../core/address.ts";
import type { InflightBatch, StoredInvocation, StoredState } from "../core/records.ts";
import { PARTITION_TAG } from "../core/schema.ts";

const KIND_STATE = 1;
const KIND_INFLIGHT = 2;
const KIND_BACKLOG = 3;

/**
 * The tables whose rows use this codec: the first part of their keys in the partition
 * (core/schema.ts's tables.state, .inflight, .backlog; the schema test checks they agree).
 */
export type CodecTable = "state" | "inflight" | "backlog";

/** The codec table of a whole store key: a partition row (`["p", partition, table, …]`) of one of them. */
export function codecTable(key: readonly (string | number)[]): CodecTable | undefined {
  if (key[0] !== PARTITION_TAG) return undefined;
  const table = key[2];
  return table === "state" || table === "inflight" || table === "backlog" ? table : undefined;
}

class Writer {
  readonly buffer: Buffer;
  offset = 0;

  constructor(size: number) {
    this.buffer = Buffer.allocUnsafe(size);
  }

  byte(value: number): void {
    this.buffer[this.offset++] = value;
  }

  u32(value: number): void {
    this.buffer.writeUInt32LE(value, this.offset);
    this.offset += 4;
  }

  f64(value: number): void {
    this.buffer.writeDoubleLE(value, this.offset);
    this.offset += 8;
  }

  /** The UTF-8 bytes after a 4-byte length slot, then the slot (the caller sized the buffer with byteLength). */
  string(value: string): void {
    const written = this.buffer.write(value, this.offset + 4, "utf8");
    this.u32(written);
    this.offset += written;
  }

  bytes(value: Uint8Array): void {
    this.buffer.set(value, this.offset);
    this.offset += value.length;
  }
}

function invocationSize(invocation: StoredInvocation): number {
  const caller = invocation.caller;
  let size =
    1 +
    (caller === undefined ? 0 : 8 + Buffer.byteLength(caller.typename) + Buffer.byteLength(caller.id)) +
    8 +
    Buffer.byteLength(invocation.argument.typename) +
    invocation.argument.value.length;
  if (invocation.headers !== undefined) {
    size += 4;
    for (const header of invocation.headers)
      size += 4 + Buffer.byteLength(header.key) + 4 + (header.value?.length ?? 0);
  }
  if (invocation.trace !== undefined) size += 4 + Buffer.byteLength(invocation.trace);
  return size;
}

/** Flags of a stored invocation: which optional parts follow. Records without HEADERS predate headers, without TRACE traces. */
const CALLER = 1;
const HAS_VALUE = 2;
const HEADERS = 4;
const TRACE = 8;
/** A header value's length that stands for null. */
const NULL_LENGTH = 0xffffffff;

function writeInvocation(writer: Writer, invocation: StoredInvocation): void {
  const { caller, argument, headers, trace } = invocation;
  writer.byte(
    (caller === undefined ? 0 : CALLER) |
      (argument.hasValue ? HAS_VALUE : 0) |
      (headers === undefined ? 0 : HEADERS) |
      (trace === undefined ? 0 : TRACE),
  );
  if (caller !== undefined) {
    writer.string(caller.typename);
    writer.string(caller.id);
  }
  writer.string(argument.typename);
  writer.u32(argument.value.length);
  writer.bytes(argument.value);
  if (headers !== undefined) {
    writer.u32(headers.length);
    for (const header of headers) {
      writer.string(header.key);
      writer.u32(header.value === null ? NULL_LENGTH : header.value.length);
      if (header.value !== null) writer.bytes(header.value);
    }
  }
  if (trace !== undefined) writer.string(trace);
}

/** The bytes of a row of `table`; throws on a value of the wrong shape (a bug, not input). */
export function encodeRecord(table: CodecTable, value: unknown): Buffer {
  switch (table) {
    case "state": {
      const state = value as StoredState;
      const typenameBytes = Buffer.byteLength(state.typename);
      const writer = new Writer(1 + 4 + typenameBytes + 16 + state.value.length);
      writer.byte(KIND_STATE);
      writer.string(state.typename);
      writer.f64(state.writtenAtMs);
      writer.f64(state.invokedAtMs);
      writer.bytes(state.value);
      return writer.buffer;
    }
    case "inflight": {
      const batch = value as InflightBatch;
      let size = 1 + 8 + Buffer.byteLength(batch.target.typename) + Buffer.byteLength(batch.target.id) + 16 + 4;
      for (const invocation of batch.invocations) size += invocationSize(invocation);
      const writer = new Writer(size);
      writer.byte(KIND_INFLIGHT);
      writer.string(batch.target.typename);
      writer.string(batch.target.id);
      writer.f64(batch.batchId);
      writer.f64(batch.failedAttempts);
      writer.u32(batch.invocations.length);
      for (const invocation of batch.invocations) writeInvocation(writer, invocation);
      return writer.buffer;
    }
    case "backlog": {
      const invocation = value as StoredInvocation;
      const writer = new Writer(1 + invocationSize(invocation));
      writer.byte(KIND_BACKLOG);
      writeInvocation(writer, invocation);
      return writer.buffer;
    }
  }
}

class Reader {
  readonly #buffer: Buffer;
  offset = 0;

  constructor(bytes: Uint8Array) {
    this.#buffer = Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length);
  }

  byte(): number {
    return this.#buffer[this.offset++] as number;
  }

  u32(): number {
    const value = this.#buffer.readUInt32LE(this.offset);
    this.offset += 4;
    return value;
  }

  f64(): number {
    const value = this.#buffer.readDoubleLE(this.offset);
    this.offset += 8;
    return value;
  }

  string(): string {
    const length = this.u32();
    const value = this.#buffer.toString("utf8", this.offset, this.offset + length);
    this.offset += length;
    return value;
  }

  bytes(length: number): Uint8Array {
    const value = this.#buffer.subarray(this.offset, this.offset + length);
    this.offset += length;
    return value;
  }

  rest(): Uint8Array {
    return this.bytes(this.#buffer.length - this.offset);
  }
}

function readInvocation(reader: Reader): StoredInvocation {
  const flags = reader.byte();
  let caller: Address | undefined;
  if ((flags & CALLER) !== 0) caller = { typename: reader.string() as FunctionTypename, id: reader.string() };
  const typename = reader.string();
  const argument: TypedValue = { typename, hasValue: (flags & HAS_VALUE) !== 0, value: reader.bytes(reader.u32()) };
  if ((flags & (HEADERS | TRACE)) === 0) return caller === undefined ? { argument } : { caller, argument };
  let headers: MessageHeader[] | undefined;
  if ((flags & HEADERS) !== 0) {
    headers = [];
    for (let count = reader.u32(); count > 0; count--) {
      const key = reader.string();
      const length = reader.u32();
      headers.push({ key, value: length === NULL_LENGTH ? null : reader.bytes(length) });
    }
  }
  const trace = (flags & TRACE) === 0 ? undefined : reader.string();
  return {
    ...(caller === undefined ? {} : { caller }),
    argument,
    ...(headers === undefined ? {} : { headers }),
    ...(trace === undefined ? {} : { trace }),
  };
}

/** The record in `bytes` (made by encodeRecord). */
export function decodeRecord(bytes: Uint8Array): unknown {
  const reader = new Reader(bytes);
  const kind = reader.byte();
  switch (kind) {
    case KIND_STATE: {
      const typename = reader.string();
      const writtenAtMs = reader.f64();
      const invokedAtMs = reader.f64();
      const state: StoredState = { typename, value: reader.rest(), writtenAtMs, invokedAtMs };
      return state;
    }
    case KIND_INFLIGHT: {
      const target: Address = { typename: reader.string() as FunctionTypename, id: reader.string() };
      const batchId = reader.f64();
      const failedAttempts = reader.f64();
      const count = reader.u32();
      const invocations: StoredInvocation[] = [];
      for (let index = 0; index < count; index++) invocations.push(readInvocation(reader));
      const batch: InflightBatch = { target, batchId, invocations, failedAttempts };
      return batch;
    }
    case KIND_BACKLOG:
      return readInvocation(reader);
    default:
      throw new Error(`stored record has unknown kind ${kind}: the state directory is damaged or newer than this Eddy`);
  }
}

/**
 * A row's value as the store keeps it (in LMDB and in the log's frames): a codec table's
 * record as its bytes. Bytes pass as they are: a delta restored from a checkpoint, or a frame,
 * holds such rows encoded already.
 */
export function encodeRow(key: readonly (string | number)[], value: unknown): unknown {
  const table = codecTable(key);
  if (table === undefined || value instanceof Uint8Array) return value;
  return encodeRecord(table, value);
}

/** A stored row's value as the core sees it: a codec table's row decoded (a row from before the codec is already an object). */
export function decodeRow(key: readonly (string | number)[], value: unknown): unknown {
  return value instanceof Uint8Array && codecTable(key) !== undefined ? decodeRecord(value) : value;
}
