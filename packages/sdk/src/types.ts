// Types: how a value of a typename is turned into bytes and back. The built-ins are
// StateFun's (statefun-protocol.md §3): each is the proto3 encoding of a one-field
// wrapper message, so defaults (0, false, "") encode to zero bytes, and int/long are
// fixed-width. They are hand-encoded here for speed; tests pin them to the generated codec.
import { type DescMessage, fromBinary, type MessageShape, toBinary } from "@bufbuild/protobuf";
import { BuiltinTypename } from "@eddy/protocol";
import { requireTypename } from "./typename.ts";

export interface Type<T> {
  readonly typename: string;
  serialize(value: T): Uint8Array;
  deserialize(bytes: Uint8Array): T;
}

/**
 * An optional, cheaper stand-in for the bytes while a value lives in state during a batch:
 * storage takes a snapshot when a state is assigned, reads it back on the next read, and
 * turns it into bytes only for the reply. Reading a snapshot must give exactly what
 * deserialize(bytes(snapshot)) would. JSON uses its text, which skips a UTF-8 round trip
 * per assignment; types without one are snapshotted as their bytes.
 */
export interface StateSnapshot<T, S> {
  take(value: T): S;
  read(snapshot: S): T;
  bytes(snapshot: S): Uint8Array;
}

/** Where storage finds a type's snapshot codec; a symbol, so it is not part of the Type shape users write. */
export const STATE_SNAPSHOT: unique symbol = Symbol("eddy.type.stateSnapshot");

export type WithStateSnapshot<T> = Type<T> & { readonly [STATE_SNAPSHOT]?: StateSnapshot<T, unknown> };

/** The value type a Type describes. */
export type ValueOf<X> = X extends Type<infer T> ? T : never;

/** Anything with zod's `parse`: validates unknown input and returns it typed, or throws. */
export interface Schema<T> {
  parse(input: unknown): T;
}

const EMPTY = new Uint8Array(0);
const utf8Encoder = new TextEncoder();
const utf8Decoder = new TextDecoder("utf-8", { fatal: true });

/** Wire types of protobuf field keys. */
const VARINT = 0;
const FIXED64 = 1;
const LENGTH_DELIMITED = 2;
const FIXED32 = 5;

/** The field-1 payload of a wrapper message: its byte offset, or -1 when absent (the default value). */
function findWrapperField(bytes: Uint8Array, typename: string, wireType: number): number {
  let found = -1;
  let offset = 0;
  while (offset < bytes.length) {
    const [key, afterKey] = readVarint(bytes, offset, typename);
    const field = key >>> 3;
    const keyWireType = key & 7;
    if (field === 1 && keyWireType === wireType) found = afterKey;
    offset = skipField(bytes, afterKey, keyWireType, typename);
  }
  return found;
}

function readVarint(bytes: Uint8Array, start: number, typename: string): [value: number, next: number] {
  let value = 0;
  let shift = 0;
  let offset = start;
  while (offset < bytes.length) {
    const byte = bytes[offset++] as number;
    if (shift < 28) value |= (byte & 0x7f) << shift;
    else if (shift < 53) value += (byte & 0x7f) * 2 ** shift;
    if ((byte & 0x80) === 0) return [value, offset];
    shift += 7;
    if (shift > 63) break;
  }
  throw new TypeError(`malformed ${typename} value: truncated or overlong varint at byte ${start}`);
}

function skipField(bytes: Uint8Array, offset: number, wireType: number, typename: string): number {
  let next: number;
  switch (wireType) {
    case VARINT:
      next = readVarint(bytes, offset, typename)[1];
      break;
    case FIXED64:
      next = offset + 8;
      break;
    case LENGTH_DELIMITED: {
      const [length, afterLength] = readVarint(bytes, offset, typename);
      next = afterLength + length;
      break;
    }
    case FIXED32:
      next = offset + 4;
      break;
    default:
      throw new TypeError(`malformed ${typename} value: unsupported wire type ${wireType} at byte ${offset}`);
  }
  if (next > bytes.length)
    throw new TypeError(`malformed ${typename} value: field runs past the end (${bytes.length} bytes)`);
  return next;
}

function view(bytes: Uint8Array): DataView {
  return new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

const bool: Type<boolean> = {
  typename: BuiltinTypename.bool,
  serialize: (value) => (value ? Uint8Array.of(0x08, 0x01) : EMPTY),
  deserialize(bytes) {
    const at = findWrapperField(bytes, this.typename, VARINT);
    return at >= 0 && readVarint(bytes, at, this.typename)[0] !== 0;
  },
};

function checkInt32(typename: string, value: number): number {
  if (!Number.isInteger(value) || value < -2147483648 || value > 2147483647) {
    throw new RangeError(`${typename}: ${value} is not a 32-bit integer`);
  }
  return value;
}

function checkNumber(typename: string, value: number): number {
  if (typeof value !== "number") throw new TypeError(`${typename}: ${String(value)} is not a number`);
  return value;
}

function checkString(typename: string, value: string): string {
  if (typeof value !== "string") throw new TypeError(`${typename}: ${String(value)} is not a string`);
  return value;
}

const int: Type<number> = {
  typename: BuiltinTypename.int,
  serialize(value) {
    checkInt32(this.typename, value);
    if (value === 0) return EMPTY;
    // Little-endian by hand: a DataView over a small new array costs ~15× more (V8 must
    // move its on-heap backing store out to give it an ArrayBuffer).
    const bytes = new Uint8Array(5);
    bytes[0] = 0x0d;
    bytes[1] = value;
    bytes[2] = value >> 8;
    bytes[3] = value >> 16;
    bytes[4] = value >> 24;
    return bytes;
  },
  deserialize(bytes) {
    const at = findWrapperField(bytes, this.typename, FIXED32);
    if (at < 0) return 0;
    // skipField has checked the 4 bytes are there; `|` makes the result a signed 32-bit integer.
    return (
      (bytes[at] as number) |
      ((bytes[at + 1] as number) << 8) |
      ((bytes[at + 2] as number) << 16) |
      ((bytes[at + 3] as number) << 24)
    );
  },
};

const long: Type<bigint> = {
  typename: BuiltinTypename.long,
  serialize(value) {
    const big = BigInt(value);
    if (big < -(2n ** 63n) || big >= 2n ** 63n)
      throw new RangeError(`${this.typename}: ${value} is not a 64-bit integer`);
    if (big === 0n) return EMPTY;
    const bytes = new Uint8Array(9);
    bytes[0] = 0x09;
    view(bytes).setBigInt64(1, big, true);
    return bytes;
  },
  deserialize(bytes) {
    const at = findWrapperField(bytes, this.typename, FIXED64);
    return at < 0 ? 0n : view(bytes).getBigInt64(at, true);
  },
};

const float: Type<number> = {
  typename: BuiltinTypename.float,
  serialize(value) {
    checkNumber(this.typename, value);
    if (Object.is(value, 0)) return EMPTY; // -0 keeps its sign bit, as protobuf-java and protobuf-es write it
    const bytes = new Uint8Array(5);
    bytes[0] = 0x0d;
    view(bytes).setFloat32(1, value, true);
    return bytes;
  },
  deserialize(bytes) {
    const at = findWrapperField(bytes, this.typename, FIXED32);
    return at < 0 ? 0 : view(bytes).getFloat32(at, true);
  },
};

const double: Type<number> = {
  typename: BuiltinTypename.double,
  serialize(value) {
    checkNumber(this.typename, value);
    if (Object.is(value, 0)) return EMPTY; // -0 keeps its sign bit, as protobuf-java and protobuf-es write it
    const bytes = new Uint8Array(9);
    bytes[0] = 0x09;
    view(bytes).setFloat64(1, value, true);
    return bytes;
  },
  deserialize(bytes) {
    const at = findWrapperField(bytes, this.typename, FIXED64);
    return at < 0 ? 0 : view(bytes).getFloat64(at, true);
  },
};

function encodeVarint(value: number, into: Uint8Array, offset: number): number {
  let rest = value;
  let at = offset;
  while (rest > 0x7f) {
    into[at++] = (rest & 0x7f) | 0x80;
    rest >>>= 7;
  }
  into[at++] = rest;
  return at;
}

const string: Type<string> = {
  typename: BuiltinTypename.string,
  serialize(value) {
    if (typeof value !== "string") throw new TypeError(`${this.typename}: ${String(value)} is not a string`);
    if (value.length === 0) return EMPTY;
    const text = utf8Encoder.encode(value);
    const bytes = new Uint8Array(1 + 5 + text.length);
    bytes[0] = 0x0a;
    const start = encodeVarint(text.length, bytes, 1);
    bytes.set(text, start);
    return bytes.subarray(0, start + text.length);
  },
  deserialize(bytes) {
    const at = findWrapperField(bytes, this.typename, LENGTH_DELIMITED);
    if (at < 0) return "";
    const [length, start] = readVarint(bytes, at, this.typename);
    return utf8Decoder.decode(bytes.subarray(start, start + length));
  },
};

/**
 * Built-in values are snapshotted as the value itself, normalized exactly as a round trip
 * through the wire encoding would (float rounded to 32 bits, -0 and NaN kept, strings made
 * well-formed as UTF-8 makes them): no bytes until the reply.
 */
function valueSnapshot<T>(type: Type<T>, take: (value: T) => T): void {
  const snapshot: StateSnapshot<T, T> = { take, read: (value) => value, bytes: (value) => type.serialize(value) };
  (type as { [STATE_SNAPSHOT]?: StateSnapshot<T, unknown> })[STATE_SNAPSHOT] = snapshot as StateSnapshot<T, unknown>;
}

/** Node's Buffer where there is one (Node, Bun); undefined on Workers and Deno. */
const NodeBuffer = (globalThis as { Buffer?: typeof Buffer }).Buffer;

/**
 * UTF-8 bytes of a string, as TextEncoder.encode gives them, as a plain Uint8Array. Under
 * Node, small strings are written into the Buffer pool (as Buffer.from does) instead of a
 * fresh ArrayBuffer each, which is ~6× faster for a few hundred bytes; the result is then
 * a view of that shared pool, like any small Buffer.
 */
function utf8Encode(text: string): Uint8Array {
  if (NodeBuffer === undefined) return utf8Encoder.encode(text);
  const pooled = NodeBuffer.from(text, "utf8");
  return new Uint8Array(pooled.buffer, pooled.byteOffset, pooled.byteLength);
}

/** JSON as UTF-8 text, optionally validated on the way in by a schema (zod or anything with `parse`). */
function json<T = unknown>(typename: string, schema?: Schema<T>): Type<T> {
  requireTypename(typename, "types.json()");
  const toText = (value: T): string => {
    const text = JSON.stringify(value);
    if (text === undefined) throw new TypeError(`${typename}: ${String(value)} cannot be written as JSON`);
    return text;
  };
  const fromText = (text: string): T => {
    const parsed: unknown = JSON.parse(text);
    return schema === undefined ? (parsed as T) : schema.parse(parsed);
  };
  // JSON.stringify escapes lone surrogates, so the text and its UTF-8 bytes carry the same value.
  const snapshot: StateSnapshot<T, string> = { take: toText, read: fromText, bytes: utf8Encode };
  const type: WithStateSnapshot<T> = {
    typename,
    serialize: (value) => utf8Encode(toText(value)),
    deserialize: (bytes) => fromText(utf8Decoder.decode(bytes)),
    [STATE_SNAPSHOT]: snapshot as StateSnapshot<T, unknown>,
  };
  return type;
}

/** Raw bytes under a typename of your choice. */
function bytes(typename: string): Type<Uint8Array> {
  requireTypename(typename, "types.bytes()");
  return { typename, serialize: (value) => value, deserialize: (value) => value };
}

/**
 * A protobuf message type (@bufbuild/protobuf generated schema). The typename defaults to
 * the convention every StateFun SDK uses: `type.googleapis.com/<full message name>`.
 */
function protobuf<Desc extends DescMessage>(schema: Desc, typename?: string): Type<MessageShape<Desc>> {
  const name = typename ?? `type.googleapis.com/${schema.typeName}`;
  requireTypename(name, "types.protobuf()");
  return {
    typename: name,
    serialize: (value) => toBinary(schema, value),
    deserialize: (bytes) => fromBinary(schema, bytes),
  };
}

/** A type with your own serializer. */
function custom<T>(
  typename: string,
  serialize: (value: T) => Uint8Array,
  deserialize: (bytes: Uint8Array) => T,
): Type<T> {
  requireTypename(typename, "types.custom()");
  return { typename, serialize, deserialize };
}

valueSnapshot(bool, (value) => Boolean(value));
valueSnapshot(int, (value) => checkInt32(int.typename, value));
valueSnapshot(float, (value) => Math.fround(checkNumber(float.typename, value)));
valueSnapshot(double, (value) => checkNumber(double.typename, value));
valueSnapshot(string, (value) => checkString(string.typename, value).toWellFormed());

export const types = { bool, int, long, float, double, string, json, protobuf, bytes, custom } as const;
