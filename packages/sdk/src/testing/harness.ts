// A test harness for one function: no runtime, no HTTP. It keeps the instance's state
// the way a runtime would, sends each message through the real request path
// (ToFunction bytes -> endpoint -> FromFunction bytes, state handshake included) and
// hands back what the function did, decoded.
import {
  decodeFromFunction,
  decodeKafkaProducerRecord,
  decodeKinesisEgressRecord,
  encodeToFunction,
  type FromFunction,
  type Init,
  KAFKA_PRODUCER_RECORD_TYPENAME,
  KINESIS_EGRESS_RECORD_TYPENAME,
  MutationType,
  type ToFunctionInvocation,
  type TypedValue,
} from "@eddy/protocol";
import { Address, address } from "../address.ts";
import { createEndpoint, type Endpoint } from "../endpoint.ts";
import type { StateDeclarations, StatefulFunction, StateSpec, Storage } from "../function.ts";
import { Message, type Target, typedValue } from "../message.ts";
import type { Type } from "../types.ts";

/** A message a harness invocation delivers. Without a type, strings, booleans, bigints and 32-bit ints are inferred. */
export interface Input<T = unknown> {
  readonly value: T;
  readonly type?: Type<T>;
  /** The sender; absent means the message came from an ingress. */
  readonly caller?: Target;
}

/** A message the function sent to another function. */
export interface SentMessage {
  readonly target: Address;
  readonly message: Message;
}

export interface DelayedMessage extends SentMessage {
  readonly delayMs: number;
  readonly cancellationToken: string | undefined;
}

export interface EgressRecord {
  readonly egress: string;
  readonly message: Message;
  /** Set when the message is a Kafka producer record. */
  readonly kafka?: { readonly topic: string; readonly key: string; readonly value: Uint8Array };
  /** Set when the message is a Kinesis egress record. */
  readonly kinesis?: {
    readonly stream: string;
    readonly partitionKey: string;
    readonly explicitHashKey: string;
    readonly value: Uint8Array;
  };
}

export type StateChange = { readonly kind: "modified"; readonly value: unknown } | { readonly kind: "deleted" };

export interface InvocationOutcome<S extends StateDeclarations> {
  readonly sent: readonly SentMessage[];
  readonly delayed: readonly DelayedMessage[];
  readonly cancelled: readonly string[];
  readonly egress: readonly EgressRecord[];
  /** Only the states the batch changed. */
  readonly changes: Readonly<Partial<Record<keyof S & string, StateChange>>>;
  /** The whole state after the batch. */
  readonly state: Readonly<Partial<Storage<S>>>;
  /** How many request round trips the batch took (2 when the state handshake ran). */
  readonly roundTrips: number;
}

export interface HarnessOptions<S extends StateDeclarations> {
  /** The instance id; default "test". */
  readonly id?: string;
  readonly state?: Partial<Storage<S>>;
}

export class FunctionHarness<S extends StateDeclarations> {
  readonly self: Address;
  readonly #fn: StatefulFunction<S>;
  readonly #endpoint: Endpoint;
  /** The runtime's view: registered state names and their stored values. */
  readonly #registered = new Set<string>();
  readonly #stored = new Map<string, TypedValue>();

  constructor(fn: StatefulFunction<S>, options: HarnessOptions<S> = {}) {
    this.#fn = fn;
    this.#endpoint = createEndpoint([fn]);
    this.self = address(fn.typename, options.id ?? "test");
    for (const [name, value] of Object.entries(options.state ?? {})) {
      if (value === undefined) continue;
      const spec = this.#spec(name);
      this.#stored.set(name, { typename: spec.type.typename, hasValue: true, value: spec.type.serialize(value) });
    }
  }

  /** The current state, decoded. */
  get state(): Readonly<Partial<Storage<S>>> {
    const state: Record<string, unknown> = {};
    for (const spec of this.#fn.specs) {
      const stored = this.#stored.get(spec.name);
      if (stored !== undefined) state[spec.name] = spec.type.deserialize(stored.value);
    }
    return state as Partial<Storage<S>>;
  }

  /** Delivers one message. */
  invoke<T>(input: Input<T>): Promise<InvocationOutcome<S>> {
    return this.invokeBatch([input as Input]);
  }

  /** Delivers several messages as one batch, as a runtime does with a backlog. */
  async invokeBatch(inputs: readonly Input[]): Promise<InvocationOutcome<S>> {
    const invocations: Init<ToFunctionInvocation>[] = inputs.map((input, index) => ({
      caller: input.caller === undefined ? null : toWireAddress(input.caller),
      argument: typedValue(input.value, input.type, `invoke() message ${index}`),
    }));
    for (let roundTrips = 1; roundTrips <= 2; roundTrips++) {
      const reply = await this.#roundTrip(invocations);
      const missing = reply.incompleteInvocationContext?.missingValues ?? [];
      if (missing.length === 0) return this.#apply(reply, roundTrips);
      for (const spec of missing) this.#registered.add(spec.stateName);
    }
    throw new Error(`${this.#fn.typename}: the function still reports missing state after the handshake`);
  }

  async #roundTrip(invocations: Init<ToFunctionInvocation>[]): Promise<FromFunction> {
    const state = [...this.#registered].map((name) => ({
      stateName: name,
      stateValue: this.#stored.get(name) ?? null,
    }));
    const request = encodeToFunction({ invocation: { target: this.self.toWire(), state, invocations } });
    const reply = await this.#endpoint.invoke(request);
    if (!reply.ok) throw new Error(reply.message);
    const decoded = decodeFromFunction(reply.body);
    if (!decoded.ok) throw new Error(decoded.error);
    return decoded.value;
  }

  #apply(reply: FromFunction, roundTrips: number): InvocationOutcome<S> {
    const result = reply.invocationResult;
    const changes: Record<string, StateChange> = {};
    for (const mutation of result?.stateMutations ?? []) {
      const spec = this.#spec(mutation.stateName);
      if (mutation.mutationType === MutationType.DELETE) {
        this.#stored.delete(spec.name);
        changes[spec.name] = { kind: "deleted" };
      } else {
        const value = mutation.stateValue;
        if (value === null || value.typename !== spec.type.typename) {
          throw new Error(
            `${this.#fn.typename}: MODIFY of "${spec.name}" carries type ${value?.typename}, declared ${spec.type.typename}`,
          );
        }
        this.#stored.set(spec.name, value);
        changes[spec.name] = { kind: "modified", value: spec.type.deserialize(value.value) };
      }
    }
    const sent = (result?.outgoingMessages ?? []).map((out) => ({
      target: Address.fromWire(required(out.target, "outgoing message target")),
      message: Message.fromWire(out.argument),
    }));
    const delayed: DelayedMessage[] = [];
    const cancelled: string[] = [];
    for (const entry of result?.delayedInvocations ?? []) {
      if (entry.isCancellationRequest) {
        cancelled.push(entry.cancellationToken);
      } else {
        delayed.push({
          target: Address.fromWire(required(entry.target, "delayed message target")),
          message: Message.fromWire(entry.argument),
          delayMs: entry.delayInMs,
          cancellationToken: entry.cancellationToken === "" ? undefined : entry.cancellationToken,
        });
      }
    }
    const egress = (result?.outgoingEgresses ?? []).map((out) =>
      egressRecord(`${out.egressNamespace}/${out.egressType}`, Message.fromWire(out.argument)),
    );
    return {
      sent,
      delayed,
      cancelled,
      egress,
      changes: changes as InvocationOutcome<S>["changes"],
      state: this.state,
      roundTrips,
    };
  }

  #spec(name: string): StateSpec {
    const spec = this.#fn.specs.find((candidate) => candidate.name === name);
    if (spec === undefined) throw new Error(`${this.#fn.typename} declares no state "${name}"`);
    return spec;
  }
}

function required<T>(value: T | null, what: string): T {
  if (value === null) throw new Error(`the function's reply has no ${what}`);
  return value;
}

function toWireAddress(target: Target) {
  return (target instanceof Address ? target : address(target.typename, target.id)).toWire();
}

function egressRecord(egress: string, message: Message): EgressRecord {
  if (message.typename === KAFKA_PRODUCER_RECORD_TYPENAME) {
    const record = decodeKafkaProducerRecord(message.bytes);
    if (!record.ok) throw new Error(record.error);
    return {
      egress,
      message,
      kafka: { topic: record.value.topic, key: record.value.key, value: record.value.valueBytes },
    };
  }
  if (message.typename === KINESIS_EGRESS_RECORD_TYPENAME) {
    const record = decodeKinesisEgressRecord(message.bytes);
    if (!record.ok) throw new Error(record.error);
    const { stream, partitionKey, explicitHashKey, valueBytes } = record.value;
    return { egress, message, kinesis: { stream, partitionKey, explicitHashKey, value: valueBytes } };
  }
  return { egress, message };
}

/** `harness(fn, { id, state })`: a FunctionHarness for one instance of `fn`. */
export function harness<S extends StateDeclarations>(
  fn: StatefulFunction<S>,
  options?: HarnessOptions<S>,
): FunctionHarness<S> {
  return new FunctionHarness(fn, options);
}
