// The hot-path codec: encode/decode of every StateFun wire message, backed by the
// protobufjs static code generated from proto/ (src/fast). Decoding is a boundary:
// malformed bytes come back as an error value naming the message, never as a throw.
import "./fast/numbers.ts";
import "./fast/strings.ts";
import { io } from "./fast/wire.js";
import type {
  FromFunction,
  Init,
  KafkaProducerRecord,
  KinesisEgressRecord,
  ToFunction,
  TypedValue,
} from "./messages.ts";

const reqreply = io.statefun.sdk.reqreply;
const egress = io.statefun.sdk.egress;

export type Decoded<T> = { readonly ok: true; readonly value: T } | { readonly ok: false; readonly error: string };

interface GeneratedCodec {
  encode(message: object): { finish(): Uint8Array };
  decode(bytes: Uint8Array): unknown;
}

function decodeWith<T>(codec: GeneratedCodec, messageName: string, bytes: Uint8Array): Decoded<T> {
  try {
    return { ok: true, value: codec.decode(bytes) as T };
  } catch (cause) {
    const reason = cause instanceof Error ? cause.message : String(cause);
    return { ok: false, error: `not a valid ${messageName} (${bytes.length} bytes): ${reason}` };
  }
}

export function encodeToFunction(message: Init<ToFunction>): Uint8Array {
  return reqreply.ToFunction.encode(message as object).finish();
}

export function decodeToFunction(bytes: Uint8Array): Decoded<ToFunction> {
  return decodeWith(reqreply.ToFunction as GeneratedCodec, "ToFunction", bytes);
}

export function encodeFromFunction(message: Init<FromFunction>): Uint8Array {
  return reqreply.FromFunction.encode(message as object).finish();
}

export function decodeFromFunction(bytes: Uint8Array): Decoded<FromFunction> {
  return decodeWith(reqreply.FromFunction as GeneratedCodec, "FromFunction", bytes);
}

export function encodeTypedValue(message: Init<TypedValue>): Uint8Array {
  return reqreply.TypedValue.encode(message as object).finish();
}

export function decodeTypedValue(bytes: Uint8Array): Decoded<TypedValue> {
  return decodeWith(reqreply.TypedValue as GeneratedCodec, "TypedValue", bytes);
}

export function encodeKafkaProducerRecord(message: Init<KafkaProducerRecord>): Uint8Array {
  return egress.KafkaProducerRecord.encode(message as object).finish();
}

export function decodeKafkaProducerRecord(bytes: Uint8Array): Decoded<KafkaProducerRecord> {
  return decodeWith(egress.KafkaProducerRecord as GeneratedCodec, "KafkaProducerRecord", bytes);
}

export function encodeKinesisEgressRecord(message: Init<KinesisEgressRecord>): Uint8Array {
  return egress.KinesisEgressRecord.encode(message as object).finish();
}

export function decodeKinesisEgressRecord(bytes: Uint8Array): Decoded<KinesisEgressRecord> {
  return decodeWith(egress.KinesisEgressRecord as GeneratedCodec, "KinesisEgressRecord", bytes);
}
