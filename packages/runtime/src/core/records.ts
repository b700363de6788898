// What the partition core persists: the records of its tables. Everything a partition needs
// to resume after a crash is here: state values, registered state specs, per-address
// in-flight batches and backlogs, delayed messages and their token index, dead letters.
// Which table holds which record, under which key, is schema.ts.
import type { MessageHeader, TypedValue } from "@eddy/protocol";
import type { Address, AddressKey, FunctionTypename } from "./address.ts";
import type { Key } from "./kv.ts";
import { tables } from "./schema.ts";

/** A message on its way to an address. */
export interface Envelope {
  readonly target: Address;
  /** Absent for messages from an ingress. */
  readonly caller?: Address;
  readonly argument: TypedValue;
  /** The headers of the Kafka record it came from; only in-process functions see them. */
  readonly headers?: readonly MessageHeader[];
  /**
   * The trace context it travels in (a W3C `traceparent`: the span of the ingress or the
   * invocation that sent it); only set while tracing is on (engine/tracer.ts).
   */
  readonly trace?: string;
}

/** One invocation as stored in a backlog or an in-flight batch. */
export interface StoredInvocation {
  readonly caller?: Address;
  readonly argument: TypedValue;
  readonly headers?: readonly MessageHeader[];
  /** As Envelope's. */
  readonly trace?: string;
}

export interface InflightBatch {
  readonly target: Address;
  /** Unique in the partition (its sequence), so a late reply to any earlier batch is recognized and ignored. */
  readonly batchId: number;
  readonly invocations: readonly StoredInvocation[];
  /** Attempts so far after a final failure under the retry-forever policy. */
  readonly failedAttempts: number;
}

export const ExpiryMode = { NONE: 0, AFTER_WRITE: 1, AFTER_INVOKE: 2 } as const;
export type ExpiryMode = (typeof ExpiryMode)[keyof typeof ExpiryMode];

export interface RegisteredSpec {
  readonly name: string;
  readonly typename: string;
  readonly expiryMode: ExpiryMode;
  readonly expireAfterMs: number;
}

/** A function type's pause (schema tables.paused): when it was paused. */
export interface PausedType {
  readonly atMs: number;
}

export interface StoredState {
  readonly typename: string;
  readonly value: Uint8Array;
  readonly writtenAtMs: number;
  /** Only tracked for AFTER_INVOKE states. */
  readonly invokedAtMs: number;
}

export interface DelayedMessage {
  readonly envelope: Envelope;
  readonly fireAtMs: number;
  readonly seq: number;
  /** Token and sender, when the message can be cancelled. */
  readonly cancellationToken?: string;
}

/** An egress message committed but not yet confirmed delivered by its connector. */
export interface OutboxEntry {
  readonly seq: number;
  readonly egress: string;
  readonly value: TypedValue;
  readonly source: Address;
  /** The trace context of the invocation that sent it (tracing on only). */
  readonly trace?: string;
}

/**
 * Sequence numbers of one partition: a start's epoch times this, plus a count (see
 * PartitionCore). Numbers repeat across partitions, never within one.
 */
export const SEQ_EPOCH_SPAN = 2 ** 32;

/**
 * A dead letter's name for users, unique in the state directory: `<partition>-<epoch>-<count>`
 * (`2-1-5`), the three parts of its key (partition, and its sequence number split at the
 * epoch). Small numbers a user can type and read, with no character a shell treats
 * specially, derived from the key, so every letter ever stored has one.
 */
export function deadLetterId(partition: number, seq: number): string {
  return `${partition}-${Math.floor(seq / SEQ_EPOCH_SPAN)}-${seq % SEQ_EPOCH_SPAN}`;
}

/** The partition and sequence number a dead letter id names, or undefined when `text` is not one. */
export function parseDeadLetterId(text: string): { partition: number; seq: number } | undefined {
  const match = /^(\d{1,9})-(\d{1,7})-(\d{1,10})$/.exec(text);
  if (match === null) return undefined;
  const [partition, epoch, count] = match.slice(1).map(Number) as [number, number, number];
  if (count >= SEQ_EPOCH_SPAN || epoch >= 2 ** 21) return undefined;
  return { partition, seq: epoch * SEQ_EPOCH_SPAN + count };
}

/** A batch (or an egress message) that could not be processed, kept with the reason until replayed. */
export interface DeadLetter {
  readonly seq: number;
  /** The address the messages were for; for an egress message, the function that sent it. */
  readonly target: Address;
  /** Set when the letter is a message to this egress rather than messages to `target`. */
  readonly egress?: string;
  /**
   * Set when the letter is a record this ingress could not route (a Kafka record without a
   * key, say): `target` is then the first function it would have gone to, with an empty id
   * when it had none. Such a letter is for inspection; replay leaves it listed.
   */
  readonly ingress?: string;
  readonly invocations: readonly StoredInvocation[];
  readonly reason: string;
  readonly atMs: number;
}

/**
 * An ingress request that waits for its function's reply (HTTP request-reply): stored
 * under the reply address's partition when the request is accepted, answered by the first
 * message sent to that address.
 */
export interface RequestRecord {
  readonly reply?: TypedValue;
  readonly answeredAtMs?: number;
}

/**
 * Request ids carry their acceptance time: "<ms since the epoch in base 36>.<unique part>".
 * So requests are stored in time order and expire by a range scan, with no index row to
 * write per request (a request costs one row: recorded, then answered, usually within the
 * same group commit).
 */
export function makeRequestId(atMs: number, unique: string): string {
  return `${atMs.toString(36)}.${unique}`;
}

/** The acceptance time in a request id; undefined for a string that is not one. */
export function requestTime(requestId: string): number | undefined {
  const dot = requestId.indexOf(".");
  const time = dot > 0 ? requestId.slice(0, dot) : "";
  if (!/^[0-9a-z]{1,11}$/.test(time)) return undefined;
  const atMs = Number.parseInt(time, 36);
  return Number.isSafeInteger(atMs) ? atMs : undefined;
}

/**
 * An ingress idempotency key as remembered: when it was accepted and, for a request that
 * waits for a reply, the request it started (a retry gets that request's answer).
 */
export interface IdempotencyRecord {
  readonly atMs: number;
  readonly requestId?: string;
}

/**
 * The partition tables' keys as plain tuples, for the callers not yet on the schema
 * (partition-set.ts, the simulation, test/support, bench/checkpoint). New code uses
 * schema.ts, whose keys carry their value types; these build the same keys.
 */
export const keys = {
  meta: (name: string): Key => ["meta", name],
  specs: (typename: FunctionTypename): Key => tables.specs.key(typename),
  state: (address: Address, name: string): Key => tables.state.key(address.typename, address.id, name),
  inflight: (address: AddressKey): Key => tables.inflight.key(address),
  inflightAll: (): Key => tables.inflight.all,
  backlog: (address: AddressKey, seq: number): Key => tables.backlog.key(address, seq),
  backlogOf: (address: AddressKey): Key => tables.backlog.of(address),
  timer: (fireAtMs: number, seq: number): Key => tables.timer.key(fireAtMs, seq),
  timersAll: (): Key => tables.timer.all,
  token: (sender: AddressKey, token: string): Key => tables.token.key(sender, token),
  outbox: (seq: number): Key => tables.outbox.key(seq),
  outboxAll: (): Key => tables.outbox.all,
  ingressKey: (target: AddressKey, key: string): Key => tables.idem.key(target, key),
  ingressKeyAt: (atMs: number, target: AddressKey, key: string): Key => tables.idemAt.key(atMs, target, key),
  ingressKeysBefore: (atMs: number): Key => tables.idemAt.before(atMs),
  ingressKeysAt: (): Key => tables.idemAt.all,
  request: (atMs: number, requestId: string): Key => tables.request.key(atMs, requestId),
  requestsBefore: (atMs: number): Key => tables.request.before(atMs),
  requestsAll: (): Key => tables.request.all,
  deadLetter: (seq: number): Key => tables.dead.key(seq),
  deadLettersAll: (): Key => tables.dead.all,
  replay: (seq: number): Key => tables.replay.key(seq),
  replayAll: (): Key => tables.replay.all,
} as const;
