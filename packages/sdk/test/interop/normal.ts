// One plain, comparable view of a FromFunction reply, reachable from both codecs: Eddy's
// decoded messages and google-protobuf's `toObject()`. Bytes become hex, absent
// sub-messages null, defaults explicit; state mutations are sorted by name (their order
// carries no meaning); Kafka/Kinesis egress records are decoded one level further.
import {
  type Address,
  decodeFromFunction,
  decodeKafkaProducerRecord,
  decodeKinesisEgressRecord,
  type FromFunction,
  type Init,
  KAFKA_PRODUCER_RECORD_TYPENAME,
  KINESIS_EGRESS_RECORD_TYPENAME,
  MutationType,
  type ToFunction,
  type TypedValue,
} from "@eddy/protocol";
import { type Type, types } from "@eddy/sdk";
import { generated, type JspbAddress, type JspbTypedValue } from "./official.ts";

export interface NormalAddress {
  namespace: string;
  type: string;
  id: string;
}

export interface NormalRecord {
  kind: "kafka" | "kinesis";
  fields: Record<string, string>;
}

export interface NormalTypedValue {
  typename: string;
  hasValue: boolean;
  value: string;
  /** The decoded KafkaProducerRecord / KinesisEgressRecord, for those typenames. */
  record?: NormalRecord;
}

export type NormalReply =
  | { kind: "empty" }
  | {
      kind: "incomplete";
      missingValues: {
        stateName: string;
        typeTypename: string;
        expirationSpec: { mode: number; expireAfterMillis: number } | null;
      }[];
    }
  | {
      kind: "result";
      stateMutations: { mutationType: number; stateName: string; stateValue: NormalTypedValue | null }[];
      outgoingMessages: { target: NormalAddress | null; argument: NormalTypedValue | null }[];
      delayedInvocations: {
        isCancellationRequest: boolean;
        cancellationToken: string;
        delayInMs: number;
        target: NormalAddress | null;
        argument: NormalTypedValue | null;
      }[];
      outgoingEgresses: { egressNamespace: string; egressType: string; argument: NormalTypedValue | null }[];
    };

export const toHex = (bytes: Uint8Array): string =>
  Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length).toString("hex");
const base64ToHex = (text: string): string => Buffer.from(text, "base64").toString("hex");
const byName = (a: { stateName: string }, b: { stateName: string }) =>
  a.stateName < b.stateName ? -1 : a.stateName > b.stateName ? 1 : 0;

// --- from Eddy's codec ---

function eddyAddress(address: Address | null): NormalAddress | null {
  return address === null ? null : { namespace: address.namespace, type: address.type, id: address.id };
}

function eddyRecord(value: TypedValue): NormalRecord | undefined {
  if (value.typename === KAFKA_PRODUCER_RECORD_TYPENAME) {
    const record = decodeKafkaProducerRecord(value.value);
    if (!record.ok) throw new Error(record.error);
    const { key, valueBytes, topic } = record.value;
    return { kind: "kafka", fields: { key, valueBytes: toHex(valueBytes), topic } };
  }
  if (value.typename === KINESIS_EGRESS_RECORD_TYPENAME) {
    const record = decodeKinesisEgressRecord(value.value);
    if (!record.ok) throw new Error(record.error);
    const { partitionKey, valueBytes, stream, explicitHashKey } = record.value;
    return { kind: "kinesis", fields: { partitionKey, valueBytes: toHex(valueBytes), stream, explicitHashKey } };
  }
  return undefined;
}

function eddyTypedValue(value: TypedValue | null): NormalTypedValue | null {
  if (value === null) return null;
  const normal: NormalTypedValue = { typename: value.typename, hasValue: value.hasValue, value: toHex(value.value) };
  const record = eddyRecord(value);
  if (record !== undefined) normal.record = record;
  return normal;
}

/** Eddy's decoded view, read field by field (the decoder keeps defaults on prototypes). */
export function fromEddy(message: FromFunction): NormalReply {
  const incomplete = message.incompleteInvocationContext;
  if (incomplete !== null) {
    return {
      kind: "incomplete",
      missingValues: incomplete.missingValues.map((spec) => ({
        stateName: spec.stateName,
        typeTypename: spec.typeTypename,
        expirationSpec:
          spec.expirationSpec === null
            ? null
            : { mode: spec.expirationSpec.mode, expireAfterMillis: spec.expirationSpec.expireAfterMillis },
      })),
    };
  }
  const result = message.invocationResult;
  if (result === null) return { kind: "empty" };
  return {
    kind: "result",
    stateMutations: result.stateMutations
      .map((mutation) => ({
        mutationType: mutation.mutationType,
        stateName: mutation.stateName,
        stateValue: eddyTypedValue(mutation.stateValue),
      }))
      .sort(byName),
    outgoingMessages: result.outgoingMessages.map((sent) => ({
      target: eddyAddress(sent.target),
      argument: eddyTypedValue(sent.argument),
    })),
    delayedInvocations: result.delayedInvocations.map((delayed) => ({
      isCancellationRequest: delayed.isCancellationRequest,
      cancellationToken: delayed.cancellationToken,
      delayInMs: delayed.delayInMs,
      target: eddyAddress(delayed.target),
      argument: eddyTypedValue(delayed.argument),
    })),
    outgoingEgresses: result.outgoingEgresses.map((egress) => ({
      egressNamespace: egress.egressNamespace,
      egressType: egress.egressType,
      argument: eddyTypedValue(egress.argument),
    })),
  };
}

/** Decodes reply bytes with Eddy's codec and normalizes them; throws if they do not decode. */
export function decodeWithEddy(bytes: Uint8Array): NormalReply {
  const decoded = decodeFromFunction(bytes);
  if (!decoded.ok) throw new Error(`Eddy's codec rejected a reply: ${decoded.error}`);
  return fromEddy(decoded.value);
}

// --- from google-protobuf's toObject() ---

interface JspbAddressObject {
  namespace: string;
  type: string;
  id: string;
}
interface JspbTypedValueObject {
  typename: string;
  hasValue: boolean;
  value: string;
}
interface JspbFromFunctionObject {
  invocationResult?: {
    stateMutationsList: { mutationType: number; stateName: string; stateValue?: JspbTypedValueObject }[];
    outgoingMessagesList: { target?: JspbAddressObject; argument?: JspbTypedValueObject }[];
    delayedInvocationsList: {
      isCancellationRequest: boolean;
      cancellationToken: string;
      delayInMs: number;
      target?: JspbAddressObject;
      argument?: JspbTypedValueObject;
    }[];
    outgoingEgressesList: { egressNamespace: string; egressType: string; argument?: JspbTypedValueObject }[];
  };
  incompleteInvocationContext?: {
    missingValuesList: {
      stateName: string;
      typeTypename: string;
      expirationSpec?: { mode: number; expireAfterMillis: number };
    }[];
  };
}

function jspbAddress(address: JspbAddressObject | undefined): NormalAddress | null {
  return address === undefined ? null : { namespace: address.namespace, type: address.type, id: address.id };
}

function jspbRecord(typename: string, bytes: Uint8Array): NormalRecord | undefined {
  if (typename === KAFKA_PRODUCER_RECORD_TYPENAME) {
    const record = generated.egress.KafkaProducerRecord.deserializeBinary(bytes).toObject() as {
      key: string;
      valueBytes: string;
      topic: string;
    };
    return {
      kind: "kafka",
      fields: { key: record.key, valueBytes: base64ToHex(record.valueBytes), topic: record.topic },
    };
  }
  if (typename === KINESIS_EGRESS_RECORD_TYPENAME) {
    const record = generated.egress.KinesisEgressRecord.deserializeBinary(bytes).toObject() as {
      partitionKey: string;
      valueBytes: string;
      stream: string;
      explicitHashKey: string;
    };
    return {
      kind: "kinesis",
      fields: {
        partitionKey: record.partitionKey,
        valueBytes: base64ToHex(record.valueBytes),
        stream: record.stream,
        explicitHashKey: record.explicitHashKey,
      },
    };
  }
  return undefined;
}

function jspbTypedValue(value: JspbTypedValueObject | undefined): NormalTypedValue | null {
  if (value === undefined) return null;
  const normal: NormalTypedValue = {
    typename: value.typename,
    hasValue: value.hasValue,
    value: base64ToHex(value.value),
  };
  const record = jspbRecord(value.typename, Buffer.from(value.value, "base64"));
  if (record !== undefined) normal.record = record;
  return normal;
}

/** google-protobuf's view of reply bytes (FromFunction.deserializeBinary(...).toObject()), normalized. */
export function decodeWithJspb(bytes: Uint8Array): NormalReply {
  const object = generated.reqreply.FromFunction.deserializeBinary(bytes).toObject() as JspbFromFunctionObject;
  const incomplete = object.incompleteInvocationContext;
  if (incomplete !== undefined) {
    return {
      kind: "incomplete",
      missingValues: incomplete.missingValuesList.map((spec) => ({
        stateName: spec.stateName,
        typeTypename: spec.typeTypename,
        expirationSpec:
          spec.expirationSpec === undefined
            ? null
            : { mode: spec.expirationSpec.mode, expireAfterMillis: spec.expirationSpec.expireAfterMillis },
      })),
    };
  }
  const result = object.invocationResult;
  if (result === undefined) return { kind: "empty" };
  return {
    kind: "result",
    stateMutations: result.stateMutationsList
      .map((mutation) => ({
        mutationType: mutation.mutationType,
        stateName: mutation.stateName,
        stateValue: jspbTypedValue(mutation.stateValue),
      }))
      .sort(byName),
    outgoingMessages: result.outgoingMessagesList.map((sent) => ({
      target: jspbAddress(sent.target),
      argument: jspbTypedValue(sent.argument),
    })),
    delayedInvocations: result.delayedInvocationsList.map((delayed) => ({
      isCancellationRequest: delayed.isCancellationRequest,
      cancellationToken: delayed.cancellationToken,
      delayInMs: delayed.delayInMs,
      target: jspbAddress(delayed.target),
      argument: jspbTypedValue(delayed.argument),
    })),
    outgoingEgresses: result.outgoingEgressesList.map((egress) => ({
      egressNamespace: egress.egressNamespace,
      egressType: egress.egressType,
      argument: jspbTypedValue(egress.argument),
    })),
  };
}

// --- requests encoded by google-protobuf ---

function jspbAddressOf(address: Init<Address>): JspbAddress {
  const pb = new generated.reqreply.Address();
  pb.setNamespace(address.namespace ?? "");
  pb.setType(address.type ?? "");
  pb.setId(address.id ?? "");
  return pb;
}

function jspbTypedValueOf(value: Init<TypedValue>): JspbTypedValue {
  const pb = new generated.reqreply.TypedValue();
  pb.setTypename(value.typename ?? "");
  pb.setHasValue(value.hasValue ?? false);
  pb.setValue(value.value ?? new Uint8Array(0));
  return pb;
}

/** The same request as Eddy's `encodeToFunction(request)`, built and serialized with google-protobuf. */
export function encodeWithJspb(request: Init<ToFunction>): Uint8Array {
  const toFunction = new generated.reqreply.ToFunction();
  const batch = request.invocation;
  if (batch !== undefined && batch !== null) {
    const pbBatch = new generated.reqreply.ToFunction.InvocationBatchRequest();
    if (batch.target) pbBatch.setTarget(jspbAddressOf(batch.target));
    for (const entry of batch.state ?? []) {
      const pbEntry = new generated.reqreply.ToFunction.PersistedValue();
      pbEntry.setStateName(entry.stateName ?? "");
      if (entry.stateValue) pbEntry.setStateValue(jspbTypedValueOf(entry.stateValue));
      pbBatch.addState(pbEntry);
    }
    for (const invocation of batch.invocations ?? []) {
      const pbInvocation = new generated.reqreply.ToFunction.Invocation();
      if (invocation.caller) pbInvocation.setCaller(jspbAddressOf(invocation.caller));
      if (invocation.argument) pbInvocation.setArgument(jspbTypedValueOf(invocation.argument));
      pbBatch.addInvocations(pbInvocation);
    }
    toFunction.setInvocation(pbBatch);
  }
  return toFunction.serializeBinary();
}

// --- a readable one-line-per-effect summary, for the corpus's expectations ---

const BUILTIN_NAMES: Record<string, Type<unknown>> = {
  [types.bool.typename]: types.bool,
  [types.int.typename]: types.int,
  [types.long.typename]: types.long,
  [types.float.typename]: types.float,
  [types.double.typename]: types.double,
  [types.string.typename]: types.string,
};
const utf8 = new TextDecoder("utf-8", { fatal: true });

/** A value as `int 42`, `string "x"`, `long 7n`, `interop/Doc {"a":1}` or `ns/T 0x…`. */
export function showValue(value: NormalTypedValue | null): string {
  if (value === null) return "(no argument)";
  if (!value.hasValue) return `${value.typename} (no value)`;
  const bytes = Buffer.from(value.value, "hex");
  if (value.record !== undefined) {
    const fields = Object.entries(value.record.fields).map(([name, field]) =>
      name === "valueBytes" ? `value=0x${field}` : `${name}=${field}`,
    );
    return `${value.record.kind}{${fields.join(" ")}}`;
  }
  const builtin = BUILTIN_NAMES[value.typename];
  if (builtin !== undefined) {
    const decoded = builtin.deserialize(bytes);
    const shown =
      typeof decoded === "bigint"
        ? `${decoded}n`
        : typeof decoded === "string"
          ? JSON.stringify(decoded)
          : String(decoded);
    return `${value.typename.slice("io.statefun.types/".length)} ${shown}`;
  }
  try {
    return `${value.typename} ${utf8.decode(bytes)}`;
  } catch {
    return `${value.typename} 0x${value.value}`;
  }
}

const showAddress = (address: NormalAddress | null): string =>
  address === null ? "(no address)" : `${address.namespace}/${address.type}:${address.id}`;
const MODES = ["none", "after-write", "after-invoke"];

/** One line per effect, in reply order (mutations by name). */
export function showReply(reply: NormalReply): string[] {
  if (reply.kind === "empty") return ["(empty reply)"];
  if (reply.kind === "incomplete") {
    return reply.missingValues.map(({ stateName, typeTypename, expirationSpec }) => {
      const ttl = expirationSpec === null ? "" : ` ${MODES[expirationSpec.mode]} ${expirationSpec.expireAfterMillis}ms`;
      return `missing ${stateName}: ${typeTypename}${ttl}`;
    });
  }
  return [
    ...reply.stateMutations.map(({ mutationType, stateName, stateValue }) =>
      mutationType === MutationType.DELETE
        ? `DELETE ${stateName}${stateValue === null ? "" : ` (with ${showValue(stateValue)})`}`
        : `MODIFY ${stateName} = ${showValue(stateValue)}`,
    ),
    ...reply.outgoingMessages.map(({ target, argument }) => `send ${showAddress(target)} ${showValue(argument)}`),
    ...reply.delayedInvocations.map((delayed) =>
      delayed.isCancellationRequest
        ? `cancel ${JSON.stringify(delayed.cancellationToken)}${delayed.target === null ? "" : " (with a target)"}`
        : `delay ${delayed.delayInMs}ms${delayed.cancellationToken === "" ? "" : ` token ${JSON.stringify(delayed.cancellationToken)}`} ${showAddress(delayed.target)} ${showValue(delayed.argument)}`,
    ),
    ...reply.outgoingEgresses.map(
      ({ egressNamespace, egressType, argument }) => `egress ${egressNamespace}/${egressType} ${showValue(argument)}`,
    ),
  ];
}
