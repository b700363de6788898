// The multi-address format, version 1: Eddy's optional extension that carries the calls of
// several addresses to one endpoint URL in one HTTP request. It is used only with a function
// server that announces it (a 2xx reply with `eddy-multi-address: 1`); every StateFun SDK that
// does not gets the standard protocol. Protobuf-compatible, hand-encoded here (field numbers
// as below; unknown fields skipped, any field order, the last of a repeated scalar wins):
//
//   message MultiAddressRequest  { repeated Call calls = 1; }        // content type below
//   message Call                 { bytes to_function = 1;             // a ToFunction, as a single request's body
//                                  string traceparent = 2; }          // W3C trace context; empty: none
//   message MultiAddressResponse { repeated Result results = 1; }     // one per call, in the calls' order
//   message Result               { oneof outcome { bytes from_function = 1;   // a FromFunction, as a single reply's body
//                                                  string error = 2; } }       // why this call failed
//
// Decoding is a boundary: every length is checked against the bytes left and every count
// against its bound, and a malformed body comes back as an error value, never a throw.
// Decoded bytes are views into the body, not copies.

/** The content type of a multi-address request and of its response. */
export const MULTI_ADDRESS_CONTENT_TYPE = "application/vnd.eddy.multi-address+protobuf";
/** The response header by which a function server announces the versions of the format it accepts. */
export const MULTI_ADDRESS_HEADER = "eddy-multi-address";
/** The version this codec reads and writes. */
export const MULTI_ADDRESS_VERSION = "1";

export interface MultiAddressCall {
  /** A serialized ToFunction. */
  readonly toFunction: Uint8Array;
  /** The call's W3C `traceparent`; undefined (empty on the wire) when tracing is off. */
  readonly traceparent?: string | undefined;
}

/** One call's outcome: its FromFunction bytes, or why the function server could not answer it. */
export type MultiAddressResult =
  | { readonly ok: true; readonly fromFunction: Uint8Array }
  | { readonly ok: false; readonly error: string };

export type MultiAddressDecoded<T> =
  | { readonly ok: true; readonly value: T }
  | { readonly ok: false; readonly code: "malformed" | "too-many"; readonly error: string };

/** Whether an announcement header's value (a comma-separated list of versions) includes this codec's version. */
export function announcesMultiAddress(headerValue: string | undefined): boolean {
  if (headerValue === undefined) return false;
  for (const version of headerValue.split(",")) if (version.trim() === MULTI_ADDRESS_VERSION) return true;
  return false;
}

const WIRE_VARINT = 0;
const WIRE_FIXED64 = 1;
const WIRE_LENGTH = 2;
const WIRE_FIXED32 = 5;
const TAG_FIELD_1 = (1 << 3) | WIRE_LENGTH; // 0x0a
const TAG_FIELD_2 = (2 << 3) | WIRE_LENGTH; // 0x12

const encoder = new TextEncoder();
const strictUtf8 = new TextDecoder("utf-8", { fatal: true });

function varintBytes(value: number): number {
  let size = 1;
  while (value >= 128) {
    value = Math.floor(value / 128);
    size++;
  }
  return size;
}

function writeVarint(out: Uint8Array, at: number, value: number): number {
  while (value >= 128) {
    out[at++] = (value % 128) | 0x80;
    value = Math.floor(value / 128);
  }
  out[at++] = value;
  return at;
}

/** A length-delimited field's size on the wire: tag, length, bytes. */
function fieldBytes(length: number): number {
  return 1 + varintBytes(length) + length;
}

function writeField(out: Uint8Array, at: number, tag: number, bytes: Uint8Array): number {
  out[at++] = tag;
  at = writeVarint(out, at, bytes.length);
  out.set(bytes, at);
  return at + bytes.length;
}

/** Encodes a request: the calls' messages, each a field 1 of the outer message. */
export function encodeMultiAddressRequest(calls: readonly MultiAddressCall[]): Uint8Array {
  const traceparents: (Uint8Array | undefined)[] = new Array(calls.length);
  const callSizes: number[] = new Array(calls.length);
  let total = 0;
  for (let index = 0; index < calls.length; index++) {
    const call = calls[index] as MultiAddressCall;
    const traceparent =
      call.traceparent === undefined || call.traceparent === "" ? undefined : encoder.encode(call.traceparent);
    traceparents[index] = traceparent;
    const size = fieldBytes(call.toFunction.length) + (traceparent === undefined ? 0 : fieldBytes(traceparent.length));
    callSizes[index] = size;
    total += fieldBytes(size);
  }
  const out = new Uint8Array(total);
  let at = 0;
  for (let index = 0; index < calls.length; index++) {
    const call = calls[index] as MultiAddressCall;
    out[at++] = TAG_FIELD_1;
    at = writeVarint(out, at, callSizes[index] as number);
    at = writeField(out, at, TAG_FIELD_1, call.toFunction);
    const traceparent = traceparents[index];
    if (traceparent !== undefined) at = writeField(out, at, TAG_FIELD_2, traceparent);
  }
  return out;
}

/** Encodes a response: each result a field 1 of the outer message, its outcome always written (oneof presence). */
export function encodeMultiAddressResponse(results: readonly MultiAddressResult[]): Uint8Array {
  const payloads: Uint8Array[] = new Array(results.length);
  let total = 0;
  for (let index = 0; index < results.length; index++) {
    const result = results[index] as MultiAddressResult;
    const payload = result.ok ? result.fromFunction : encoder.encode(result.error);
    payloads[index] = payload;
    total += fieldBytes(fieldBytes(payload.length));
  }
  const out = new Uint8Array(total);
  let at = 0;
  for (let index = 0; index < results.length; index++) {
    const payload = payloads[index] as Uint8Array;
    out[at++] = TAG_FIELD_1;
    at = writeVarint(out, at, fieldBytes(payload.length));
    at = writeField(out, at, (results[index] as MultiAddressResult).ok ? TAG_FIELD_1 : TAG_FIELD_2, payload);
  }
  return out;
}

/** Why a body did not parse; thrown only inside this module and turned into a value at its edge. */
class Malformed {
  readonly reason: string;
  constructor(reason: string) {
    this.reason = reason;
  }
}

/** Reads protobuf fields from bytes[start, end), checking every length against what is left. */
class FieldReader {
  readonly #bytes: Uint8Array;
  readonly #end: number;
  #at: number;
  /** The field number and wire type of the field read last. */
  field = 0;
  wireType = 0;

  constructor(bytes: Uint8Array, start: number, end: number) {
    this.#bytes = bytes;
    this.#at = start;
    this.#end = end;
  }

  get offset(): number {
    return this.#at;
  }

  /** Reads the next field's key; false at the end. */
  next(): boolean {
    if (this.#at >= this.#end) return false;
    const at = this.#at;
    const key = this.#varint("a field key");
    this.field = Math.floor(key / 8);
    this.wireType = key % 8;
    if (this.field === 0 || this.field > 0x1fffffff) throw new Malformed(`field number ${this.field} at byte ${at}`);
    return true;
  }

  /** The bytes of a length-delimited field, as a view. */
  lengthDelimited(what: string): { start: number; end: number } {
    if (this.wireType !== WIRE_LENGTH) {
      throw new Malformed(`${what} has wire type ${this.wireType}; expected ${WIRE_LENGTH} (length-delimited)`);
    }
    const lengthAt = this.#at;
    const length = this.#varint(`the length of ${what}`);
    const left = this.#end - this.#at;
    if (length > left) {
      throw new Malformed(`${what} at byte ${lengthAt} is ${length} bytes long, but only ${left} are left`);
    }
    const start = this.#at;
    this.#at += length;
    return { start, end: this.#at };
  }

  /** Skips a field this version does not know (forward compatibility). */
  skip(): void {
    switch (this.wireType) {
      case WIRE_VARINT:
        this.#varint(`field ${this.field}`);
        return;
      case WIRE_FIXED64:
        this.#fixed(8);
        return;
      case WIRE_LENGTH:
        this.lengthDelimited(`field ${this.field}`);
        return;
      case WIRE_FIXED32:
        this.#fixed(4);
        return;
      default:
        throw new Malformed(`field ${this.field} has wire type ${this.wireType}, which is not supported`);
    }
  }

  #fixed(size: number): void {
    if (this.#end - this.#at < size) {
      throw new Malformed(`field ${this.field} needs ${size} bytes, but only ${this.#end - this.#at} are left`);
    }
    this.#at += size;
  }

  /** A varint of at most 10 bytes, as a number (lengths and keys are far below 2^53). */
  #varint(what: string): number {
    const start = this.#at;
    let value = 0;
    let scale = 1;
    for (let index = 0; index < 10; index++) {
      if (this.#at >= this.#end) throw new Malformed(`${what} at byte ${start} is cut off`);
      const byte = this.#bytes[this.#at++] as number;
      value += (byte & 0x7f) * scale;
      if (byte < 0x80) return value;
      scale *= 128;
    }
    throw new Malformed(`${what} at byte ${start} is a varint longer than 10 bytes`);
  }
}

function utf8(bytes: Uint8Array, what: string): string {
  try {
    return strictUtf8.decode(bytes);
  } catch {
    throw new Malformed(`${what} is not valid UTF-8`);
  }
}

/**
 * Reads the outer message's `repeated <item> = 1` field, refusing more than `itemsMax`
 * items before reading the one past the bound.
 */
function decodeRepeated<T>(
  bytes: Uint8Array,
  messageName: string,
  itemName: string,
  itemsMax: number,
  decodeItem: (reader: FieldReader, index: number) => T,
): MultiAddressDecoded<T[]> {
  const items: T[] = [];
  try {
    const outer = new FieldReader(bytes, 0, bytes.length);
    while (outer.next()) {
      if (outer.field !== 1) {
        outer.skip();
        continue;
      }
      if (items.length === itemsMax) {
        return {
          ok: false,
          code: "too-many",
          error: `a ${messageName} holds more than ${itemsMax} ${itemName}s, the most accepted`,
        };
      }
      const { start, end } = outer.lengthDelimited(`${itemName} ${items.length}`);
      items.push(decodeItem(new FieldReader(bytes, start, end), items.length));
    }
  } catch (cause) {
    if (!(cause instanceof Malformed)) throw cause;
    return {
      ok: false,
      code: "malformed",
      error: `not a valid ${messageName} (${bytes.length} bytes): ${cause.reason}`,
    };
  }
  return { ok: true, value: items };
}

const EMPTY: Uint8Array = new Uint8Array(0);

/** Decodes a request, refusing (code "too-many") one with more than `callsMax` calls. */
export function decodeMultiAddressRequest(
  bytes: Uint8Array,
  callsMax: number,
): MultiAddressDecoded<MultiAddressCall[]> {
  return decodeRepeated(bytes, "multi-address request", "call", callsMax, (reader, index) => {
    let toFunction = EMPTY;
    let traceparent: string | undefined;
    while (reader.next()) {
      if (reader.field === 1) {
        const { start, end } = reader.lengthDelimited(`to_function of call ${index}`);
        toFunction = bytes.subarray(start, end);
      } else if (reader.field === 2) {
        const { start, end } = reader.lengthDelimited(`traceparent of call ${index}`);
        const text = utf8(bytes.subarray(start, end), `traceparent of call ${index}`);
        traceparent = text === "" ? undefined : text;
      } else reader.skip();
    }
    return { toFunction, traceparent };
  });
}

/** Decodes a response, refusing (code "too-many") one with more than `resultsMax` results. */
export function decodeMultiAddressResponse(
  bytes: Uint8Array,
  resultsMax: number,
): MultiAddressDecoded<MultiAddressResult[]> {
  return decodeRepeated(bytes, "multi-address response", "result", resultsMax, (reader, index) => {
    let result: MultiAddressResult | undefined;
    const resultAt = reader.offset;
    while (reader.next()) {
      if (reader.field === 1) {
        const { start, end } = reader.lengthDelimited(`from_function of result ${index}`);
        result = { ok: true, fromFunction: bytes.subarray(start, end) };
      } else if (reader.field === 2) {
        const { start, end } = reader.lengthDelimited(`error of result ${index}`);
        result = { ok: false, error: utf8(bytes.subarray(start, end), `error of result ${index}`) };
      } else reader.skip();
    }
    if (result === undefined) {
      throw new Malformed(`result ${index} at byte ${resultAt} has neither from_function (1) nor error (2)`);
    }
    return result;
  });
}
