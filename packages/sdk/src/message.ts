// Messages in and out of a function. An incoming Message is a typed value with a
// typename; outgoing ones are built with message(), egressMessage(), kafkaRecord() and
// kinesisRecord() and handed to ctx.send().
import {
  encodeKafkaProducerRecord,
  encodeKinesisEgressRecord,
  KAFKA_PRODUCER_RECORD_TYPENAME,
  KINESIS_EGRESS_RECORD_TYPENAME,
  type MessageHeader,
  type TypedValue,
} from "@eddy/protocol";
import { Address, address } from "./address.ts";

export type { MessageHeader };

import { requireTypename } from "./typename.ts";
import { type Type, types } from "./types.ts";

/** A message as a function receives it. */
export class Message {
  readonly typename: string;
  readonly hasValue: boolean;
  /** The serialized value, as it came over the wire. Read-only: an in-process runtime hands over the bytes it stores. */
  readonly bytes: Uint8Array;
  /**
   * The headers of the Kafka record this message came from, in record order (keys may
   * repeat). Only functions run inside Eddy's process see them: the StateFun protocol that
   * remote functions speak has no place for headers. Empty for every other message.
   */
  readonly headers: readonly MessageHeader[];

  constructor(typename: string, hasValue: boolean, bytes: Uint8Array, headers: readonly MessageHeader[] = []) {
    this.typename = typename;
    this.hasValue = hasValue;
    this.bytes = bytes;
    this.headers = headers;
  }

  static fromWire(value: TypedValue | null, headers: readonly MessageHeader[] = []): Message {
    return value === null
      ? new Message("", false, new Uint8Array(0), headers)
      : new Message(value.typename, value.hasValue, value.value, headers);
  }

  /** The value of the last header named `key` (as Kafka's lastHeader), as UTF-8 text; undefined if none or null. */
  header(key: string): string | undefined {
    for (let index = this.headers.length - 1; index >= 0; index--) {
      const header = this.headers[index] as MessageHeader;
      if (header.key === key) return header.value === null ? undefined : new TextDecoder().decode(header.value);
    }
    return undefined;
  }

  is(type: Type<unknown>): boolean {
    return this.typename === type.typename;
  }

  /** The value as `type`; throws if the message is of another type, since that is a bug in the caller. */
  as<T>(type: Type<T>): T {
    if (this.typename !== type.typename) {
      throw new TypeError(`message is of type ${this.typename || "(none)"}, not ${type.typename}`);
    }
    if (!this.hasValue) throw new TypeError(`message of type ${this.typename} has no value`);
    return type.deserialize(this.bytes);
  }
}

/** A message to a function, built by message(). */
export interface OutgoingMessage {
  readonly kind: "message";
  readonly target: Address;
  readonly value: TypedValue;
}

/** A message to an egress, built by egressMessage(), kafkaRecord() or kinesisRecord(). */
export interface EgressMessage {
  readonly kind: "egress";
  /** The egress id as declared in module.yaml, "namespace/name". */
  readonly egress: string;
  readonly value: TypedValue;
}

export type Target = Address | { readonly typename: string; readonly id: string };

function toAddress(target: Target): Address {
  return target instanceof Address ? target : address(target.typename, target.id);
}

/** The type a value gets when none is given, as the official JS SDK infers it. */
function inferType(value: unknown, where: string): Type<unknown> {
  switch (typeof value) {
    case "string":
      return types.string as Type<unknown>;
    case "boolean":
      return types.bool as Type<unknown>;
    case "bigint":
      return types.long as Type<unknown>;
    case "number":
      if (Number.isInteger(value) && (value as number) >= -2147483648 && (value as number) <= 2147483647) {
        return types.int as Type<unknown>;
      }
  }
  throw new TypeError(
    `${where}: give a type for ${String(value)}; only strings, booleans, bigints and 32-bit integers are inferred`,
  );
}

/** A value as a TypedValue, with `type` or the inferred one. */
export function typedValue<T>(value: T, type: Type<T> | undefined, where: string): TypedValue {
  const chosen = type ?? (inferType(value, where) as Type<T>);
  return { typename: chosen.typename, hasValue: true, value: chosen.serialize(value) };
}

/**
 * A message to the function at `target`.
 * `message(address("example/greeter", "seth"), request, GreetRequest)`; strings, booleans,
 * bigints and 32-bit integers may leave out the type.
 */
export function message<T>(target: Target, value: T, type?: Type<T>): OutgoingMessage {
  return { kind: "message", target: toAddress(target), value: typedValue(value, type, "message()") };
}

/** A message to any egress; the value is passed through as a TypedValue. */
export function egressMessage<T>(egress: string, value: T, type?: Type<T>): EgressMessage {
  requireTypename(egress, "egressMessage()");
  return { kind: "egress", egress, value: typedValue(value, type, "egressMessage()") };
}

/**
 * Bytes of a record value as the official SDKs write an untyped one: strings as UTF-8,
 * bytes as they are, 32-bit integers as 4-byte big-endian (larger ones are refused, as the
 * official SDKs refuse them, rather than silently wrapped). With a type, its serialization.
 */
function recordValueBytes<T>(value: T, type: Type<T> | undefined, where: string): Uint8Array {
  if (type !== undefined) return type.serialize(value);
  if (typeof value === "string") return new TextEncoder().encode(value);
  if (value instanceof Uint8Array) return value;
  if (typeof value === "number" && Number.isInteger(value) && value >= -2147483648 && value <= 2147483647) {
    const bytes = new Uint8Array(4);
    new DataView(bytes.buffer).setInt32(0, value, false);
    return bytes;
  }
  throw new TypeError(
    `${where}: give a type for ${String(value)}; only strings, bytes and 32-bit integers are written untyped`,
  );
}

export interface KafkaRecordOptions<T> {
  /** The Kafka egress id from module.yaml. */
  readonly egress: string;
  readonly topic: string;
  /** Empty or absent: a record without a key. */
  readonly key?: string;
  readonly value: T;
  readonly type?: Type<T>;
}

/** A record for a Kafka egress (a KafkaProducerRecord, as StateFun's Kafka egress expects). */
export function kafkaRecord<T>(options: KafkaRecordOptions<T>): EgressMessage {
  requireTypename(options.egress, "kafkaRecord()");
  const record = encodeKafkaProducerRecord({
    key: options.key ?? "",
    valueBytes: recordValueBytes(options.value, options.type, "kafkaRecord()"),
    topic: options.topic,
  });
  return {
    kind: "egress",
    egress: options.egress,
    value: { typename: KAFKA_PRODUCER_RECORD_TYPENAME, hasValue: true, value: record },
  };
}

export interface KinesisRecordOptions<T> {
  /** The Kinesis egress id from module.yaml. */
  readonly egress: string;
  readonly stream: string;
  readonly partitionKey: string;
  readonly explicitHashKey?: string;
  readonly value: T;
  readonly type?: Type<T>;
}

/** A record for a Kinesis egress (a KinesisEgressRecord, as StateFun's Kinesis egress expects). */
export function kinesisRecord<T>(options: KinesisRecordOptions<T>): EgressMessage {
  requireTypename(options.egress, "kinesisRecord()");
  const record = encodeKinesisEgressRecord({
    partitionKey: options.partitionKey,
    valueBytes: recordValueBytes(options.value, options.type, "kinesisRecord()"),
    stream: options.stream,
    explicitHashKey: options.explicitHashKey ?? "",
  });
  return {
    kind: "egress",
    egress: options.egress,
    value: { typename: KINESIS_EGRESS_RECORD_TYPENAME, hasValue: true, value: record },
  };
}
