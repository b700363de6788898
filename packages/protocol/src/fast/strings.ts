// Makes the protobufjs runtime read string fields without garbage. The generated decoder
// reads every string with `reader.stringVerify()`, and protobufjs 8 builds a string of fewer
// than 64 bytes there one `String.fromCharCode` at a time, for a Buffer too (BufferReader
// overrides only `string()`). Those strings are type names, namespaces, function types, state
// names and ids, and most repeat from message to message, so an ASCII string of up to
// INTERN_BYTES_MAX bytes is looked up in a small direct-mapped table first (a hit allocates
// nothing), and otherwise copied out in one native call. A string with any byte >= 0x80 goes
// through a fatal TextDecoder with protobufjs's own options, so one that is not UTF-8 fails
// with the same TypeError as before. codec.ts imports this before wire.js.
import $protobuf from "protobufjs/minimal.js";

type Latin1Slice = (this: Uint8Array, start: number, end: number) => string;

// Node's native Buffer method; it reads any Uint8Array, so plain-array Readers use it too.
const latin1Slice = (Buffer.prototype as unknown as { latin1Slice?: Latin1Slice }).latin1Slice ?? missingLatin1Slice();
// protobufjs's strict decoder, with its options: fatal, and a leading BOM kept as U+FEFF.
const strictDecoder = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

/** Longer strings are not interned: they are rarer, and comparing them costs more. */
const INTERN_BYTES_MAX = 64;
/** A power of two; at most INTERN_SLOTS * INTERN_BYTES_MAX bytes of strings stay referenced. */
const INTERN_SLOTS = 1024;
const INTERN_SLOT_SHIFT = 32 - Math.log2(INTERN_SLOTS);
/** Slot i holds the last ASCII string read that hashed to i: "" until then. */
const interned: string[] = new Array<string>(INTERN_SLOTS).fill("");

interface ReaderInternals {
  buf: Uint8Array;
  pos: number;
  len: number;
  size(): number;
}

function readStringVerified(this: ReaderInternals): string {
  const length = this.size();
  const start = this.pos;
  const end = start + length;
  if (end > this.len) {
    // protobufjs's own message for a length running past the end.
    throw RangeError(`index out of range: ${this.pos} + ${length || 1} > ${this.len}`);
  }
  this.pos = end;
  if (length === 0) return "";
  const buf = this.buf;
  let slot = -1;
  if (length <= INTERN_BYTES_MAX) {
    // Length and three sampled bytes: names sharing a prefix ("io.statefun.types/") differ at the end.
    const sample = length ^ (buf[start] as number) ^ ((buf[start + (length >> 1)] as number) << 8);
    slot = Math.imul(sample ^ ((buf[end - 1] as number) << 16), 0x9e3779b1) >>> INTERN_SLOT_SHIFT;
    const candidate = interned[slot] as string;
    if (candidate.length === length) {
      // The candidate is ASCII, so equal code units mean equal bytes and valid UTF-8.
      let i = 0;
      while (i < length && candidate.charCodeAt(i) === buf[start + i]) i++;
      if (i === length) return candidate;
    }
  }
  let bits = 0;
  for (let i = start; i < end; i++) bits |= buf[i] as number;
  if (bits >= 0x80) return strictDecoder.decode(buf.subarray(start, end));
  const text = latin1Slice.call(buf, start, end);
  if (slot >= 0) interned[slot] = text;
  return text;
}

function missingLatin1Slice(): never {
  throw new Error("Buffer.prototype.latin1Slice is missing: @eddy/protocol reads strings with Node's Buffer");
}

$protobuf.Reader.prototype.stringVerify = readStringVerified as unknown as () => string;
// Buffer input gets a BufferReader: it must inherit the override, not shadow it.
if ($protobuf.BufferReader.prototype.stringVerify !== $protobuf.Reader.prototype.stringVerify) {
  throw new Error("protobufjs's BufferReader has its own stringVerify: the fast string read would go unused");
}
