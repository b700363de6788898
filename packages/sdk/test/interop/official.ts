// The official JavaScript SDK (npm apache-flink-statefun@3.3.0) as the interop tests drive it:
// its byte-level handler (src/handler.ts, not in the public exports), its types, and the
// google-protobuf classes it generated from the same .proto files. Those classes register
// on a global `proto` object and ship no typings, so the few used here are typed below.
import { createRequire } from "node:module";
import { StateFun, type Type } from "apache-flink-statefun";
import { type FunctionOpts, FunctionSpec } from "apache-flink-statefun/dist/core.js";
import { handle } from "apache-flink-statefun/dist/handler.js";

export type {
  Context as OfficialContext,
  Message as OfficialMessage,
  Type as OfficialType,
} from "apache-flink-statefun";
export {
  egressMessageBuilder,
  kafkaEgressMessage,
  kinesisEgressMessage,
  messageBuilder,
  StateFun,
} from "apache-flink-statefun";
export type { FunctionOpts as OfficialFunction } from "apache-flink-statefun/dist/core.js";

/** Runs one request through the official SDK's handler: ToFunction bytes in, FromFunction bytes out. */
export async function officialHandle(request: Uint8Array, functions: readonly FunctionOpts[]): Promise<Uint8Array> {
  const specs = Object.fromEntries(functions.map((fn) => [fn.typename, FunctionSpec.fromOpts(fn)]));
  return Uint8Array.from(await handle(request, specs));
}

// --- google-protobuf, resolved from the official package so it is the instance it uses ---

interface JspbWriter {
  writeSfixed64String(field: number, value: string): void;
  getResultBuffer(): Uint8Array;
}
interface JspbReader {
  nextField(): boolean;
  isEndGroup(): boolean;
  getFieldNumber(): number;
  getWireType(): number;
  readSfixed64String(): string;
  skipField(): void;
}
interface GoogleProtobuf {
  BinaryWriter: new () => JspbWriter;
  BinaryReader: new (bytes: Uint8Array) => JspbReader;
}

/** A generated message class: `new`, setters, `serializeBinary`, `deserializeBinary`, `toObject`. */
export interface JspbMessage {
  serializeBinary(): Uint8Array;
  toObject(): unknown;
}
interface JspbClass<M extends JspbMessage> {
  new (): M;
  deserializeBinary(bytes: Uint8Array): M;
}
export interface JspbAddress extends JspbMessage {
  setNamespace(value: string): void;
  setType(value: string): void;
  setId(value: string): void;
}
export interface JspbTypedValue extends JspbMessage {
  setTypename(value: string): void;
  setHasValue(value: boolean): void;
  setValue(value: Uint8Array): void;
}
export interface JspbPersistedValue extends JspbMessage {
  setStateName(value: string): void;
  setStateValue(value: JspbTypedValue): void;
}
export interface JspbToFunctionInvocation extends JspbMessage {
  setCaller(value: JspbAddress): void;
  setArgument(value: JspbTypedValue): void;
}
export interface JspbInvocationBatchRequest extends JspbMessage {
  setTarget(value: JspbAddress): void;
  addState(value: JspbPersistedValue): void;
  addInvocations(value: JspbToFunctionInvocation): void;
}
export interface JspbToFunction extends JspbMessage {
  setInvocation(value: JspbInvocationBatchRequest): void;
}
interface JspbValueWrapper extends JspbMessage {
  setValue(value: number): void;
  getValue(): number;
}

interface GeneratedClasses {
  reqreply: {
    Address: JspbClass<JspbAddress>;
    TypedValue: JspbClass<JspbTypedValue>;
    ToFunction: JspbClass<JspbToFunction> & {
      PersistedValue: JspbClass<JspbPersistedValue>;
      Invocation: JspbClass<JspbToFunctionInvocation>;
      InvocationBatchRequest: JspbClass<JspbInvocationBatchRequest>;
    };
    FromFunction: JspbClass<JspbMessage>;
  };
  egress: { KafkaProducerRecord: JspbClass<JspbMessage>; KinesisEgressRecord: JspbClass<JspbMessage> };
  types: Record<
    "BooleanWrapper" | "IntWrapper" | "LongWrapper" | "FloatWrapper" | "DoubleWrapper" | "StringWrapper",
    JspbClass<JspbValueWrapper>
  >;
}

const officialRequire = createRequire(createRequire(import.meta.url).resolve("apache-flink-statefun"));
const googleProtobuf = officialRequire("google-protobuf") as GoogleProtobuf;
// Importing the SDK above ran its generated modules, which filled in the global.
export const generated = (globalThis as unknown as { proto: { io: { statefun: { sdk: GeneratedClasses } } } }).proto.io
  .statefun.sdk;

// --- long and double: the official JS SDK has neither, so they are custom types with the
// wrapper encodings (statefun-protocol.md §3), written by google-protobuf itself ---

/** io.statefun.types/long: LongWrapper{sfixed64 value = 1}. BinaryWriter's string variant keeps all 64 bits. */
export const officialLong: Type<bigint> = StateFun.customType<bigint>(
  "io.statefun.types/long",
  (value) => {
    if (value === 0n) return Buffer.alloc(0);
    const writer = new googleProtobuf.BinaryWriter();
    writer.writeSfixed64String(1, value.toString());
    return Buffer.from(writer.getResultBuffer());
  },
  (bytes) => {
    const reader = new googleProtobuf.BinaryReader(bytes);
    let value = 0n;
    while (reader.nextField() && !reader.isEndGroup()) {
      if (reader.getFieldNumber() === 1 && reader.getWireType() === 1) value = BigInt(reader.readSfixed64String());
      else reader.skipField();
    }
    return value;
  },
);

/** io.statefun.types/double: the DoubleWrapper class the official SDK ships. */
export const officialDouble: Type<number> = StateFun.customType<number>(
  "io.statefun.types/double",
  (value) => {
    const wrapper = new generated.types.DoubleWrapper();
    wrapper.setValue(value);
    return Buffer.from(wrapper.serializeBinary());
  },
  (bytes) => generated.types.DoubleWrapper.deserializeBinary(bytes).getValue(),
);

/** The official SDK's serialization of `value`, as a plain Uint8Array. */
export function officialBytes<T>(type: Type<T>, value: T): Uint8Array {
  return Uint8Array.from(type.serialize(value));
}
