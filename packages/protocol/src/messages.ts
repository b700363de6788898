// Plain-object shapes of the StateFun wire messages, as the fast codec decodes them.
// Decoded scalars are always present (proto3 defaults); sub-messages are null when absent.
// `Init<T>` is the looser shape the encoders accept: every field optional, defaults omitted.

export interface Address {
  namespace: string;
  type: string;
  id: string;
}

export interface TypedValue {
  typename: string;
  hasValue: boolean;
  value: Uint8Array;
}

export interface PersistedValue {
  stateName: string;
  stateValue: TypedValue | null;
}

export interface ToFunctionInvocation {
  caller: Address | null;
  argument: TypedValue | null;
  /**
   * Eddy's own, never on the wire (the StateFun protocol has no field for it, and the
   * encoder writes only the protocol's fields): the headers of the Kafka record the message
   * came from, for functions run in Eddy's process.
   */
  headers?: readonly MessageHeader[];
}

/** A Kafka record header: keys may repeat, and a value may be null. */
export interface MessageHeader {
  readonly key: string;
  readonly value: Uint8Array | null;
}

export interface InvocationBatchRequest {
  target: Address | null;
  state: PersistedValue[];
  invocations: ToFunctionInvocation[];
}

export interface ToFunction {
  invocation: InvocationBatchRequest | null;
}

export const MutationType = { DELETE: 0, MODIFY: 1 } as const;
export type MutationType = (typeof MutationType)[keyof typeof MutationType];

export interface PersistedValueMutation {
  mutationType: MutationType;
  stateName: string;
  stateValue: TypedValue | null;
}

export interface FromFunctionInvocation {
  target: Address | null;
  argument: TypedValue | null;
}

export interface DelayedInvocation {
  isCancellationRequest: boolean;
  cancellationToken: string;
  delayInMs: number;
  target: Address | null;
  argument: TypedValue | null;
}

export interface EgressMessage {
  egressNamespace: string;
  egressType: string;
  argument: TypedValue | null;
}

export interface InvocationResponse {
  stateMutations: PersistedValueMutation[];
  outgoingMessages: FromFunctionInvocation[];
  delayedInvocations: DelayedInvocation[];
  outgoingEgresses: EgressMessage[];
}

export const ExpireMode = { NONE: 0, AFTER_WRITE: 1, AFTER_INVOKE: 2 } as const;
export type ExpireMode = (typeof ExpireMode)[keyof typeof ExpireMode];

export interface ExpirationSpec {
  mode: ExpireMode;
  expireAfterMillis: number;
}

export interface PersistedValueSpec {
  stateName: string;
  expirationSpec: ExpirationSpec | null;
  typeTypename: string;
}

export interface IncompleteInvocationContext {
  missingValues: PersistedValueSpec[];
}

/** At most one of the two is set; neither set means "success with no effects" (as StateFun's runtime reads it). */
export interface FromFunction {
  invocationResult: InvocationResponse | null;
  incompleteInvocationContext: IncompleteInvocationContext | null;
}

export interface KafkaProducerRecord {
  key: string;
  valueBytes: Uint8Array;
  topic: string;
}

export interface KinesisEgressRecord {
  partitionKey: string;
  valueBytes: Uint8Array;
  stream: string;
  explicitHashKey: string;
}

/** The encoder-side shape: any field may be left out (and is then not written). */
export type Init<T> = {
  [K in keyof T]?: T[K] extends readonly (infer E)[]
    ? Init<E>[]
    : T[K] extends Uint8Array
      ? Uint8Array
      : NonNullable<T[K]> extends object
        ? Init<NonNullable<T[K]>> | null
        : T[K];
};
