// The Kafka error codes the simulated broker answers with, named as Kafka names them, with the
// "Retriable" column of Kafka's protocol error table (kafka.apache.org/44/generated/protocol_errors.html),
// so code written against the simulation branches the way it must against a real broker.
import { type Failure, failure } from "../../src/errors.ts";

const RETRIABLE = {
  OFFSET_OUT_OF_RANGE: false,
  UNKNOWN_TOPIC_OR_PARTITION: true,
  COORDINATOR_NOT_AVAILABLE: true,
  ILLEGAL_GENERATION: false,
  INCONSISTENT_GROUP_PROTOCOL: false,
  UNKNOWN_MEMBER_ID: false,
  INVALID_SESSION_TIMEOUT: false,
  REBALANCE_IN_PROGRESS: false,
  TOPIC_ALREADY_EXISTS: false,
  INVALID_PARTITIONS: false,
  INVALID_PRODUCER_EPOCH: false,
  INVALID_TXN_STATE: false,
  INVALID_PRODUCER_ID_MAPPING: false,
  INVALID_TRANSACTION_TIMEOUT: false,
  MEMBER_ID_REQUIRED: false,
  FENCED_INSTANCE_ID: false,
  PRODUCER_FENCED: false,
  UNSTABLE_OFFSET_COMMIT: true,
} as const;

export type KafkaErrorCode = keyof typeof RETRIABLE;

export type KafkaFailure = Failure<KafkaErrorCode>;

export type KafkaResult<T> = { readonly ok: true; readonly value: T } | KafkaFailure;

export function kafkaError(code: KafkaErrorCode, message: string): KafkaFailure {
  return failure(code, message, RETRIABLE[code]);
}

export function ok<T>(value: T): { readonly ok: true; readonly value: T } {
  return { ok: true, value };
}
