// The interop corpus: requests (encoded by Eddy's codec), each with the same function
// written twice, once with Eddy's SDK and once with the official JS SDK, and the effects
// the reply must carry. The test runs both and compares their replies.
import type { Address, Init, PersistedValue, ToFunction, ToFunctionInvocation, TypedValue } from "@eddy/protocol";
import {
  type AnyStatefulFunction,
  address,
  egressMessage,
  kafkaRecord,
  kinesisRecord,
  message,
  statefulFunction,
  type Type,
  types,
} from "@eddy/sdk";
import {
  egressMessageBuilder,
  kafkaEgressMessage,
  kinesisEgressMessage,
  messageBuilder,
  type OfficialContext,
  type OfficialFunction,
  type OfficialMessage,
  type OfficialType,
  officialBytes,
  officialDouble,
  officialLong,
  StateFun,
} from "./official.ts";

export interface InteropCase {
  readonly name: string;
  readonly request: Init<ToFunction>;
  readonly eddy: AnyStatefulFunction;
  readonly official: OfficialFunction;
  /** The reply's effects, one line each (see showReply); both SDKs must produce them. */
  readonly effects: readonly string[];
  /** Why the two replies' raw bytes differ although they decode identically; absent: byte-identical. */
  readonly bytesDiffer?: string;
}

// google-protobuf (the official SDK) writes a message's fields in .proto declaration order;
// DelayedInvocation declares is_cancellation_request (#10) and cancellation_token (#11)
// before delay_in_ms (#1), target (#2) and argument (#3). Eddy writes field-number order,
// like protobuf-java and Python's protobuf. Both orders are valid protobuf.
const DELAYED_FIELD_ORDER =
  "google-protobuf writes DelayedInvocation fields in declaration order (#10, #11 before #1, #2, #3); Eddy in field-number order";

// --- request building ---

/** A TypedValue as Eddy's SDK serializes it. */
function value<T>(type: Type<T>, content: T): Init<TypedValue> {
  return { typename: type.typename, hasValue: true, value: type.serialize(content) };
}
/** A TypedValue as the official SDK serializes it. */
function officialValue<T>(type: OfficialType<T>, content: T): Init<TypedValue> {
  return { typename: type.typename, hasValue: true, value: officialBytes(type, content) };
}
const fnAddress = (typename: string, id: string): Init<Address> => {
  const slash = typename.lastIndexOf("/");
  return { namespace: typename.slice(0, slash), type: typename.slice(slash + 1), id };
};
/** A state entry: with a value, or (no second argument) registered but without one. */
function state(stateName: string, stateValue?: Init<TypedValue>): Init<PersistedValue> {
  return stateValue === undefined ? { stateName } : { stateName, stateValue };
}
const fromIngress = (argument: Init<TypedValue>): Init<ToFunctionInvocation> => ({ argument });
const fromFunction = (caller: Init<Address>, argument: Init<TypedValue>): Init<ToFunctionInvocation> => ({
  caller,
  argument,
});
function batch(
  target: Init<Address>,
  states: Init<PersistedValue>[],
  invocations: Init<ToFunctionInvocation>[],
): Init<ToFunction> {
  return { invocation: { target, state: states, invocations } };
}
const text = (content: string) => value(types.string, content);
const int = (content: number) => value(types.int, content);

/** The same rendering of a decoded value on both sides; missing (undefined / null) is "absent". */
export function describe(content: unknown): string {
  if (content === undefined || content === null) return "absent";
  if (typeof content === "bigint") return `${content}n`;
  if (typeof content === "number") return Object.is(content, -0) ? "-0" : String(content);
  return JSON.stringify(content);
}

const otherFn = fnAddress("interop/other", "o-1");
const sink = "interop/sink";

// --- greeter: three states covering every TTL kind, for the handshake ---

const GREETER = "interop/greeter";
const greeterSelf = fnAddress(GREETER, "g-1");
const eddyGreeter = statefulFunction({
  typename: GREETER,
  state: {
    seen: types.int,
    greeting: { type: types.string, expireAfterWrite: 86_400_000 },
    visits: { type: types.int, expireAfterInvoke: 60_000 },
  },
  handle(ctx, msg) {
    const seen = (ctx.storage.seen ?? 0) + 1;
    ctx.storage.seen = seen;
    ctx.storage.visits = (ctx.storage.visits ?? 0) + 1;
    ctx.storage.greeting = `hello ${msg.as(types.string)} #${seen}`;
    ctx.send(message(address(sink, "greetings"), `${ctx.self.id}: ${ctx.storage.greeting}`));
  },
});
const officialGreeter: OfficialFunction = {
  typename: GREETER,
  specs: [
    { name: "seen", type: StateFun.intType() },
    { name: "greeting", type: StateFun.stringType(), expireAfterWrite: 86_400_000 },
    { name: "visits", type: StateFun.intType(), expireAfterCall: 60_000 },
  ],
  fn(ctx, msg) {
    const seen = (ctx.storage.seen ?? 0) + 1;
    ctx.storage.seen = seen;
    ctx.storage.visits = (ctx.storage.visits ?? 0) + 1;
    ctx.storage.greeting = `hello ${msg.asString()} #${seen}`;
    ctx.send(messageBuilder({ typename: sink, id: "greetings", value: `${ctx.self.id}: ${ctx.storage.greeting}` }));
  },
};
const greeter = { eddy: eddyGreeter, official: officialGreeter };
const ALL_GREETER_SPECS = [
  "missing seen: io.statefun.types/int",
  "missing greeting: io.statefun.types/string after-write 86400000ms",
  "missing visits: io.statefun.types/int after-invoke 60000ms",
];

// --- profile: MODIFY and DELETE driven by string commands ---

interface Tags {
  tags: string[];
}
const PROFILE = "interop/profile";
const profileSelf = fnAddress(PROFILE, "p-1");
const eddyTagsType = types.json<Tags>("interop/Tags");
const officialTagsType = StateFun.jsonType<Tags>("interop/Tags");
const eddyProfile = statefulFunction({
  typename: PROFILE,
  state: { name: types.string, visits: types.int, tags: eddyTagsType },
  handle(ctx, msg) {
    const command = msg.as(types.string);
    const before = `name=${describe(ctx.storage.name)} visits=${describe(ctx.storage.visits)} tags=${describe(ctx.storage.tags)}`;
    if (command.startsWith("rename:")) ctx.storage.name = command.slice("rename:".length);
    else if (command === "forget-name") ctx.storage.name = undefined;
    else if (command === "tag-and-forget") {
      ctx.storage.tags = { tags: [...(ctx.storage.tags?.tags ?? []), "x"] };
      ctx.storage.name = undefined;
      ctx.storage.visits = undefined;
    } else if (command !== "read") throw new Error(`unknown command ${command}`);
    ctx.send(message(address(sink, "profile"), `${command}: ${before}`));
  },
});
const officialProfile: OfficialFunction = {
  typename: PROFILE,
  specs: [
    { name: "name", type: StateFun.stringType() },
    { name: "visits", type: StateFun.intType() },
    { name: "tags", type: officialTagsType },
  ],
  fn(ctx, msg) {
    const command = msg.asString() ?? "";
    const before = `name=${describe(ctx.storage.name)} visits=${describe(ctx.storage.visits)} tags=${describe(ctx.storage.tags)}`;
    if (command.startsWith("rename:")) ctx.storage.name = command.slice("rename:".length);
    else if (command === "forget-name") ctx.storage.name = null;
    else if (command === "tag-and-forget") {
      ctx.storage.tags = { tags: [...(ctx.storage.tags?.tags ?? []), "x"] };
      ctx.storage.name = null;
      ctx.storage.visits = null;
    } else if (command !== "read") throw new Error(`unknown command ${command}`);
    ctx.send(messageBuilder({ typename: sink, id: "profile", value: `${command}: ${before}` }));
  },
};
const profile = { eddy: eddyProfile, official: officialProfile };
const tagsValue = (tags: string[]) => value(eddyTagsType, { tags });

// --- router: messages to functions, with and without a caller ---

interface Point {
  x: number;
  y: number;
}
const ROUTER = "interop/router";
const routerSelf = fnAddress(ROUTER, "r-1");
const eddyPointType = types.json<Point>("interop/Point");
const officialPointType = StateFun.jsonType<Point>("interop/Point");
const eddyRouter = statefulFunction({
  typename: ROUTER,
  handle(ctx, msg) {
    const command = msg.as(types.string);
    const caller = ctx.caller === undefined ? "none" : `${ctx.caller.typename}:${ctx.caller.id}`;
    if (command === "who") {
      if (ctx.caller === undefined)
        ctx.send(message(address(sink, "callers"), `${ctx.self.typename} caller ${caller}`));
      else ctx.reply(`${ctx.self.typename} caller ${caller}`);
    } else if (command === "fan-out") {
      ctx.send(message(address("interop/other", "o-1"), 7));
      ctx.send(message({ typename: "interop/other", id: "o-2" }, "seven"));
      ctx.send(message(address("interop/other", "o-3"), true, types.bool));
      ctx.send(message(address("interop/other", "o-4"), 0.5, types.float));
      ctx.send(message(address("interop/other", "o-5"), { x: 1, y: -2 }, eddyPointType));
      ctx.send(message(address("com.example.deep/nested/fn", "ünï cødé/1"), "deep"));
      ctx.send(message(address("interop/other", "o-6"), new Uint8Array([0, 255, 1]), types.bytes("interop/Blob")));
    } else throw new Error(`unknown command ${command}`);
  },
});
const officialBlobType = StateFun.customType<Uint8Array>(
  "interop/Blob",
  (bytes) => Buffer.from(bytes),
  (bytes) => Uint8Array.from(bytes),
);
const officialRouter: OfficialFunction = {
  typename: ROUTER,
  fn(ctx, msg) {
    const command = msg.asString();
    const caller = ctx.caller === null ? "none" : `${ctx.caller.typename}:${ctx.caller.id}`;
    if (command === "who") {
      const report = `${ctx.self.typename} caller ${caller}`;
      if (ctx.caller === null) ctx.send(messageBuilder({ typename: sink, id: "callers", value: report }));
      else ctx.send(messageBuilder({ typename: ctx.caller.typename, id: ctx.caller.id, value: report }));
    } else if (command === "fan-out") {
      ctx.send(messageBuilder({ typename: "interop/other", id: "o-1", value: 7 }));
      ctx.send(messageBuilder({ typename: "interop/other", id: "o-2", value: "seven" }));
      ctx.send(
        messageBuilder({ typename: "interop/other", id: "o-3", value: true, valueType: StateFun.booleanType() }),
      );
      ctx.send(messageBuilder({ typename: "interop/other", id: "o-4", value: 0.5, valueType: StateFun.floatType() }));
      ctx.send(
        messageBuilder({ typename: "interop/other", id: "o-5", value: { x: 1, y: -2 }, valueType: officialPointType }),
      );
      ctx.send(messageBuilder({ typename: "com.example.deep/nested/fn", id: "ünï cødé/1", value: "deep" }));
      ctx.send(
        messageBuilder({
          typename: "interop/other",
          id: "o-6",
          value: new Uint8Array([0, 255, 1]),
          valueType: officialBlobType,
        }),
      );
    } else throw new Error(`unknown command ${command}`);
  },
};
const router = { eddy: eddyRouter, official: officialRouter };

// --- timer: delayed messages and cancellation ---

const TIMER = "interop/timer";
const timerSelf = fnAddress(TIMER, "t-1");
const eddyTimer = statefulFunction({
  typename: TIMER,
  handle(ctx, msg) {
    const command = msg.as(types.string);
    const target = address("interop/other", "o-1");
    if (command === "later") ctx.sendAfter(5_000, message(target, "ping"));
    else if (command === "later-with-token") {
      ctx.sendAfter(60_000, message(target, 1), { cancellationToken: "reminder-1" });
    } else if (command === "cancel") ctx.cancelDelayedMessage("reminder-1");
    else if (command === "mixed") {
      ctx.sendAfter(0, message(target, "now-ish"));
      ctx.sendAfter(86_400_000 * 30, message(target, "in a month"), { cancellationToken: "month" });
      ctx.cancelDelayedMessage("month");
      ctx.sendAfter(1, message(target, { x: 0, y: 0 }, eddyPointType), { cancellationToken: "tökèn ✓" });
    } else throw new Error(`unknown command ${command}`);
  },
});
const officialTimer: OfficialFunction = {
  typename: TIMER,
  fn(ctx, msg) {
    const command = msg.asString();
    const ping = (content: unknown, valueType?: OfficialType<unknown>) =>
      messageBuilder({ typename: "interop/other", id: "o-1", value: content, valueType });
    if (command === "later") ctx.sendAfter(5_000, ping("ping"));
    else if (command === "later-with-token") ctx.sendAfter(60_000, ping(1), "reminder-1");
    else if (command === "cancel") ctx.cancelDelayedMessage("reminder-1");
    else if (command === "mixed") {
      ctx.sendAfter(0, ping("now-ish"));
      ctx.sendAfter(86_400_000 * 30, ping("in a month"), "month");
      ctx.cancelDelayedMessage("month");
      ctx.sendAfter(1, ping({ x: 0, y: 0 }, officialPointType), "tökèn ✓");
    } else throw new Error(`unknown command ${command}`);
  },
};
const timer = { eddy: eddyTimer, official: officialTimer };

// --- emitter: Kafka, Kinesis and generic egress ---

const EMITTER = "interop/emitter";
const emitterSelf = fnAddress(EMITTER, "e-1");
const eddyEmitter = statefulFunction({
  typename: EMITTER,
  handle(ctx, msg) {
    const command = msg.as(types.string);
    if (command === "kafka-keyed") {
      ctx.send(kafkaRecord({ egress: "interop/kafka", topic: "greetings", key: "user-1", value: "hello" }));
    } else if (command === "kafka-unkeyed") {
      ctx.send(kafkaRecord({ egress: "interop/kafka", topic: "numbers", value: 258 }));
      ctx.send(kafkaRecord({ egress: "interop/kafka", topic: "numbers", key: "", value: -1 }));
    } else if (command === "kafka-typed") {
      ctx.send(
        kafkaRecord({ egress: "interop/kafka", topic: "points", key: "p", value: { x: 3, y: 4 }, type: eddyPointType }),
      );
      ctx.send(kafkaRecord({ egress: "interop/kafka", topic: "raw", value: new Uint8Array([1, 2, 3]) }));
      ctx.send(kafkaRecord({ egress: "interop/kafka", topic: "ints", key: "k", value: 5, type: types.int }));
    } else if (command === "kinesis-hashed") {
      ctx.send(
        kinesisRecord({
          egress: "interop/kinesis",
          stream: "events",
          partitionKey: "pk-1",
          explicitHashKey: "340282366920938463463374607431768211455",
          value: "payload",
        }),
      );
    } else if (command === "kinesis-unhashed") {
      ctx.send(kinesisRecord({ egress: "interop/kinesis", stream: "events", partitionKey: "pk-2", value: 9 }));
      ctx.send(
        kinesisRecord({
          egress: "interop/kinesis",
          stream: "points",
          partitionKey: "pk-3",
          value: { x: -1, y: 1 },
          type: eddyPointType,
        }),
      );
    } else if (command === "generic") {
      ctx.send(egressMessage("interop/out", "inferred string"));
      ctx.send(egressMessage("interop/out", "typed string", types.string));
      ctx.send(egressMessage("interop/out", { x: 5, y: 6 }, eddyPointType));
      ctx.send(egressMessage("interop/out", -7, types.int));
      ctx.send(egressMessage("com.example/sub/out", false, types.bool));
    } else throw new Error(`unknown command ${command}`);
  },
});
const officialEmitter: OfficialFunction = {
  typename: EMITTER,
  fn(ctx, msg) {
    const command = msg.asString();
    if (command === "kafka-keyed") {
      ctx.send(kafkaEgressMessage({ typename: "interop/kafka", topic: "greetings", key: "user-1", value: "hello" }));
    } else if (command === "kafka-unkeyed") {
      ctx.send(kafkaEgressMessage({ typename: "interop/kafka", topic: "numbers", value: 258 }));
      ctx.send(kafkaEgressMessage({ typename: "interop/kafka", topic: "numbers", key: "", value: -1 }));
    } else if (command === "kafka-typed") {
      ctx.send(
        kafkaEgressMessage({
          typename: "interop/kafka",
          topic: "points",
          key: "p",
          value: { x: 3, y: 4 },
          valueType: officialPointType,
        }),
      );
      ctx.send(kafkaEgressMessage({ typename: "interop/kafka", topic: "raw", value: new Uint8Array([1, 2, 3]) }));
      ctx.send(
        kafkaEgressMessage({
          typename: "interop/kafka",
          topic: "ints",
          key: "k",
          value: 5,
          valueType: StateFun.intType(),
        }),
      );
    } else if (command === "kinesis-hashed") {
      ctx.send(
        kinesisEgressMessage({
          typename: "interop/kinesis",
          stream: "events",
          partitionKey: "pk-1",
          hashKey: "340282366920938463463374607431768211455",
          value: "payload",
        }),
      );
    } else if (command === "kinesis-unhashed") {
      ctx.send(kinesisEgressMessage({ typename: "interop/kinesis", stream: "events", partitionKey: "pk-2", value: 9 }));
      ctx.send(
        kinesisEgressMessage({
          typename: "interop/kinesis",
          stream: "points",
          partitionKey: "pk-3",
          value: { x: -1, y: 1 },
          valueType: officialPointType,
        }),
      );
    } else if (command === "generic") {
      ctx.send(
        egressMessageBuilder({ typename: "interop/out", value: "inferred string", valueType: StateFun.stringType() }),
      );
      ctx.send(
        egressMessageBuilder({ typename: "interop/out", value: "typed string", valueType: StateFun.stringType() }),
      );
      ctx.send(egressMessageBuilder({ typename: "interop/out", value: { x: 5, y: 6 }, valueType: officialPointType }));
      ctx.send(egressMessageBuilder({ typename: "interop/out", value: -7, valueType: StateFun.intType() }));
      ctx.send(
        egressMessageBuilder({ typename: "com.example/sub/out", value: false, valueType: StateFun.booleanType() }),
      );
    } else throw new Error(`unknown command ${command}`);
  },
};
const emitter = { eddy: eddyEmitter, official: officialEmitter };

// --- counter: batches, where each invocation sees the writes of the ones before ---

const COUNTER = "interop/counter";
const counterSelf = fnAddress(COUNTER, "c-1");
const eddyCounter = statefulFunction({
  typename: COUNTER,
  state: { count: types.int, label: types.string },
  handle(ctx, msg) {
    const caller = ctx.caller === undefined ? "ingress" : ctx.caller.toString();
    if (msg.is(types.int)) {
      const count = (ctx.storage.count ?? 0) + msg.as(types.int);
      ctx.storage.count = count;
      ctx.send(message(address(sink, "counts"), `${caller} -> ${count}`));
      if (count % 2 === 0) ctx.sendAfter(count, message(address(sink, "even"), count));
      else ctx.send(egressMessage("interop/out", count, types.int));
    } else {
      const command = msg.as(types.string);
      if (command === "drop") ctx.storage.count = undefined;
      else if (command === "drop-label") ctx.storage.label = undefined;
      else ctx.storage.label = command;
      ctx.send(message(address(sink, "counts"), `${caller} ${command}: count ${describe(ctx.storage.count)}`));
    }
  },
});
const officialCounter: OfficialFunction = {
  typename: COUNTER,
  specs: [
    { name: "count", type: StateFun.intType() },
    { name: "label", type: StateFun.stringType() },
  ],
  fn(ctx, msg) {
    const caller = ctx.caller === null ? "ingress" : `${ctx.caller.typename}/${ctx.caller.id}`;
    if (msg.isInt()) {
      const count = (ctx.storage.count ?? 0) + (msg.asInt() ?? 0);
      ctx.storage.count = count;
      ctx.send(messageBuilder({ typename: sink, id: "counts", value: `${caller} -> ${count}` }));
      if (count % 2 === 0) ctx.sendAfter(count, messageBuilder({ typename: sink, id: "even", value: count }));
      else ctx.send(egressMessageBuilder({ typename: "interop/out", value: count, valueType: StateFun.intType() }));
    } else {
      const command = msg.asString();
      if (command === "drop") ctx.storage.count = null;
      else if (command === "drop-label") ctx.storage.label = null;
      else ctx.storage.label = command;
      ctx.send(
        messageBuilder({
          typename: sink,
          id: "counts",
          value: `${caller} ${command}: count ${describe(ctx.storage.count)}`,
        }),
      );
    }
  },
};
const counter = { eddy: eddyCounter, official: officialCounter };

// --- types: every built-in type, as state and as message ---

interface Doc {
  title: string;
  tags: string[];
  n: number;
}
const TYPES = "interop/types";
const typesSelf = fnAddress(TYPES, "ty-1");
const eddyDocType = types.json<Doc>("interop/Doc");
const officialDocType = StateFun.jsonType<Doc>("interop/Doc");
/** State name → type, in declaration order; one state per built-in type. */
const EDDY_TYPES: Record<string, Type<unknown>> = {
  flag: types.bool,
  count: types.int,
  big: types.long,
  ratio: types.float,
  precise: types.double,
  text: types.string,
  doc: eddyDocType,
} as Record<string, Type<unknown>>;
const OFFICIAL_TYPES: Record<string, OfficialType<unknown>> = {
  flag: StateFun.booleanType(),
  count: StateFun.intType(),
  big: officialLong,
  ratio: StateFun.floatType(),
  precise: officialDouble,
  text: StateFun.stringType(),
  doc: officialDocType,
} as Record<string, OfficialType<unknown>>;

/** Stores the message in the state of its type, echoes it (same type) and reports old -> new. */
const eddyTypes = statefulFunction({
  typename: TYPES,
  state: {
    flag: types.bool,
    count: types.int,
    big: types.long,
    ratio: types.float,
    precise: types.double,
    text: types.string,
    doc: eddyDocType,
  },
  handle(ctx, msg) {
    const storage = ctx.storage as Record<string, unknown>;
    for (const [name, type] of Object.entries(EDDY_TYPES)) {
      if (!msg.is(type)) continue;
      const before = storage[name];
      const received = msg.as(type);
      storage[name] = received;
      ctx.send(message(address(sink, name), received, type));
      ctx.send(message(address(sink, "report"), `${name}: ${describe(before)} -> ${describe(received)}`));
      return;
    }
    throw new Error(`no state holds ${msg.typename}`);
  },
});
function officialTypesFn(ctx: OfficialContext, msg: OfficialMessage): void {
  for (const [name, type] of Object.entries(OFFICIAL_TYPES)) {
    if (!msg.is(type)) continue;
    const before = ctx.storage[name];
    const received = msg.as(type);
    ctx.storage[name] = received;
    ctx.send(messageBuilder({ typename: sink, id: name, value: received, valueType: type }));
    ctx.send(
      messageBuilder({ typename: sink, id: "report", value: `${name}: ${describe(before)} -> ${describe(received)}` }),
    );
    return;
  }
  throw new Error(`no state holds ${msg.valueTypeName}`);
}
const officialTypes: OfficialFunction = {
  typename: TYPES,
  specs: Object.entries(OFFICIAL_TYPES).map(([name, type]) => ({ name, type })),
  fn: officialTypesFn,
};
const typesPair = { eddy: eddyTypes, official: officialTypes };
/** Entries for all seven states, without values except those given. */
function typesState(values: Record<string, Init<TypedValue>> = {}): Init<PersistedValue>[] {
  return Object.keys(EDDY_TYPES).map((name) => state(name, values[name]));
}
/** The two sends each typed message produces. */
const echoed = (name: string, shown: string, report: string) => [
  `send interop/sink:${name} ${shown}`,
  `send interop/sink:report string ${JSON.stringify(`${name}: ${report}`)}`,
];

// --- snapshot: a state holds what was assigned, encoded at the assignment ---

const SNAPSHOT = "interop/snapshot";
const snapshotSelf = fnAddress(SNAPSHOT, "s-1");
const eddyCountType = types.json<{ n: number }>("interop/N");
const officialCountType = StateFun.jsonType<{ n: number }>("interop/N");
const eddySnapshot = statefulFunction({
  typename: SNAPSHOT,
  state: { doc: eddyCountType, ratio: types.float },
  handle(ctx) {
    const doc = { n: (ctx.storage.doc?.n ?? 0) + 1 };
    ctx.storage.doc = doc;
    doc.n = 100; // after the assignment: not stored
    ctx.storage.ratio = 1.1; // stored, and read back, as the nearest float32
    ctx.send(
      message(address(sink, "snapshot"), `doc ${describe(ctx.storage.doc)} ratio ${describe(ctx.storage.ratio)}`),
    );
  },
});
const officialSnapshot: OfficialFunction = {
  typename: SNAPSHOT,
  specs: [
    { name: "doc", type: officialCountType },
    { name: "ratio", type: StateFun.floatType() },
  ],
  fn(ctx) {
    const doc = { n: (ctx.storage.doc?.n ?? 0) + 1 };
    ctx.storage.doc = doc;
    doc.n = 100;
    ctx.storage.ratio = 1.1;
    ctx.send(
      messageBuilder({
        typename: sink,
        id: "snapshot",
        value: `doc ${describe(ctx.storage.doc)} ratio ${describe(ctx.storage.ratio)}`,
      }),
    );
  },
};
const snapshot = { eddy: eddySnapshot, official: officialSnapshot };

// --- the corpus ---

export const corpus: readonly InteropCase[] = [
  // Handshake
  {
    name: "handshake: no state sent -> IncompleteInvocationContext with every spec (no TTL, after-write, after-invoke)",
    ...greeter,
    request: batch(greeterSelf, [], [fromIngress(text("ann"))]),
    effects: ALL_GREETER_SPECS,
  },
  {
    name: "handshake: only the specs absent from the state list are reported missing",
    ...greeter,
    request: batch(greeterSelf, [state("seen", int(4))], [fromIngress(text("ann"))]),
    effects: ALL_GREETER_SPECS.slice(1),
  },
  {
    name: "handshake: a spec with a TTL missing alone is reported with its expiration spec",
    ...greeter,
    request: batch(greeterSelf, [state("visits"), state("seen")], [fromIngress(text("ann"))]),
    effects: [ALL_GREETER_SPECS[1] as string],
  },
  {
    name: "handshake: every state present without a value -> the batch runs and MODIFY writes them all",
    ...greeter,
    request: batch(greeterSelf, [state("seen"), state("greeting"), state("visits")], [fromIngress(text("ann"))]),
    effects: [
      'MODIFY greeting = string "hello ann #1"',
      "MODIFY seen = int 1",
      "MODIFY visits = int 1",
      'send interop/sink:greetings string "g-1: hello ann #1"',
    ],
  },
  {
    name: "values present are read, modified and written back; undeclared states are ignored",
    ...greeter,
    request: batch(
      greeterSelf,
      [
        state("retired", value(types.long, 5n)),
        state("visits", int(9)),
        state("greeting", text("old")),
        state("seen", int(41)),
      ],
      [fromIngress(text("bob"))],
    ),
    effects: [
      'MODIFY greeting = string "hello bob #42"',
      "MODIFY seen = int 42",
      "MODIFY visits = int 10",
      'send interop/sink:greetings string "g-1: hello bob #42"',
    ],
  },

  // MODIFY and DELETE
  {
    name: "a state only read produces no mutation",
    ...profile,
    request: batch(
      profileSelf,
      [state("name", text("ann")), state("visits", int(3)), state("tags", tagsValue(["a"]))],
      [fromIngress(text("read"))],
    ),
    effects: ['send interop/sink:profile string "read: name=\\"ann\\" visits=3 tags={\\"tags\\":[\\"a\\"]}"'],
  },
  {
    name: "MODIFY: assigning a new value",
    ...profile,
    request: batch(
      profileSelf,
      [state("name", text("ann")), state("visits"), state("tags")],
      [fromIngress(text("rename:bo"))],
    ),
    effects: [
      'MODIFY name = string "bo"',
      'send interop/sink:profile string "rename:bo: name=\\"ann\\" visits=absent tags=absent"',
    ],
  },
  {
    name: "DELETE: clearing a present state",
    ...profile,
    request: batch(
      profileSelf,
      [state("name", text("ann")), state("visits", int(1)), state("tags")],
      [fromIngress(text("forget-name"))],
    ),
    effects: ["DELETE name", 'send interop/sink:profile string "forget-name: name=\\"ann\\" visits=1 tags=absent"'],
  },
  {
    name: "DELETE of a state that had no value is still reported",
    ...profile,
    request: batch(profileSelf, [state("name"), state("visits"), state("tags")], [fromIngress(text("forget-name"))]),
    effects: ["DELETE name", 'send interop/sink:profile string "forget-name: name=absent visits=absent tags=absent"'],
  },
  {
    name: "MODIFY and DELETE in one reply (json state)",
    ...profile,
    request: batch(
      profileSelf,
      [state("tags", tagsValue(["a", "b"])), state("visits", int(2)), state("name", text("ann"))],
      [fromIngress(text("tag-and-forget"))],
    ),
    effects: [
      "DELETE name",
      'MODIFY tags = interop/Tags {"tags":["a","b","x"]}',
      "DELETE visits",
      'send interop/sink:profile string "tag-and-forget: name=\\"ann\\" visits=2 tags={\\"tags\\":[\\"a\\",\\"b\\"]}"',
    ],
  },

  {
    name: "a state holds the value as assigned: later changes to the object are not stored, floats read back rounded",
    ...snapshot,
    request: batch(snapshotSelf, [state("doc"), state("ratio")], [fromIngress(text("go")), fromIngress(text("go"))]),
    effects: [
      'MODIFY doc = interop/N {"n":2}',
      "MODIFY ratio = float 1.100000023841858",
      'send interop/sink:snapshot string "doc {\\"n\\":1} ratio 1.100000023841858"',
      'send interop/sink:snapshot string "doc {\\"n\\":2} ratio 1.100000023841858"',
    ],
  },

  // Messages to functions
  {
    name: "a message with a caller: the reply goes to the caller",
    ...router,
    request: batch(routerSelf, [], [fromFunction(otherFn, text("who"))]),
    effects: ['send interop/other:o-1 string "interop/router caller interop/other:o-1"'],
  },
  {
    name: "a message from an ingress: no caller",
    ...router,
    request: batch(routerSelf, [], [fromIngress(text("who"))]),
    effects: ['send interop/sink:callers string "interop/router caller none"'],
  },
  {
    name: "sends with inferred (string, int) and explicit types, nested namespaces and unicode ids",
    ...router,
    request: batch(routerSelf, [], [fromIngress(text("fan-out"))]),
    effects: [
      "send interop/other:o-1 int 7",
      'send interop/other:o-2 string "seven"',
      "send interop/other:o-3 bool true",
      "send interop/other:o-4 float 0.5",
      'send interop/other:o-5 interop/Point {"x":1,"y":-2}',
      'send com.example.deep/nested/fn:ünï cødé/1 string "deep"',
      "send interop/other:o-6 interop/Blob 0x00ff01",
    ],
  },

  // Delayed messages
  {
    name: "sendAfter without a cancellation token",
    ...timer,
    request: batch(timerSelf, [], [fromIngress(text("later"))]),
    effects: ['delay 5000ms interop/other:o-1 string "ping"'],
  },
  {
    name: "sendAfter with a cancellation token",
    ...timer,
    request: batch(timerSelf, [], [fromIngress(text("later-with-token"))]),
    effects: ['delay 60000ms token "reminder-1" interop/other:o-1 int 1'],
    bytesDiffer: DELAYED_FIELD_ORDER,
  },
  {
    name: "cancelDelayedMessage",
    ...timer,
    request: batch(timerSelf, [], [fromIngress(text("cancel"))]),
    // Only #10 and #11 are set, so both orders agree.
    effects: ['cancel "reminder-1"'],
  },
  {
    name: "zero and month-long delays, a unicode token, and a cancellation, in call order",
    ...timer,
    request: batch(timerSelf, [], [fromIngress(text("mixed"))]),
    effects: [
      'delay 0ms interop/other:o-1 string "now-ish"',
      'delay 2592000000ms token "month" interop/other:o-1 string "in a month"',
      'cancel "month"',
      'delay 1ms token "tökèn ✓" interop/other:o-1 interop/Point {"x":0,"y":0}',
    ],
    bytesDiffer: DELAYED_FIELD_ORDER,
  },

  // Egress
  {
    name: "Kafka record with a key",
    ...emitter,
    request: batch(emitterSelf, [], [fromIngress(text("kafka-keyed"))]),
    effects: [`egress interop/kafka kafka{key=user-1 value=0x${Buffer.from("hello").toString("hex")} topic=greetings}`],
  },
  {
    name: "Kafka records without a key (absent or empty), untyped ints as 4-byte big-endian",
    ...emitter,
    request: batch(emitterSelf, [], [fromIngress(text("kafka-unkeyed"))]),
    effects: [
      "egress interop/kafka kafka{key= value=0x00000102 topic=numbers}",
      "egress interop/kafka kafka{key= value=0xffffffff topic=numbers}",
    ],
  },
  {
    name: "Kafka records with a typed value and with raw bytes",
    ...emitter,
    request: batch(emitterSelf, [], [fromIngress(text("kafka-typed"))]),
    effects: [
      `egress interop/kafka kafka{key=p value=0x${Buffer.from('{"x":3,"y":4}').toString("hex")} topic=points}`,
      "egress interop/kafka kafka{key= value=0x010203 topic=raw}",
      "egress interop/kafka kafka{key=k value=0x0d05000000 topic=ints}",
    ],
  },
  {
    name: "Kinesis record with an explicit hash key",
    ...emitter,
    request: batch(emitterSelf, [], [fromIngress(text("kinesis-hashed"))]),
    effects: [
      `egress interop/kinesis kinesis{partitionKey=pk-1 value=0x${Buffer.from("payload").toString("hex")} stream=events explicitHashKey=340282366920938463463374607431768211455}`,
    ],
  },
  {
    name: "Kinesis records without an explicit hash key",
    ...emitter,
    request: batch(emitterSelf, [], [fromIngress(text("kinesis-unhashed"))]),
    effects: [
      "egress interop/kinesis kinesis{partitionKey=pk-2 value=0x00000009 stream=events explicitHashKey=}",
      `egress interop/kinesis kinesis{partitionKey=pk-3 value=0x${Buffer.from('{"x":-1,"y":1}').toString("hex")} stream=points explicitHashKey=}`,
    ],
  },
  {
    name: "generic egress messages with typed values and a nested egress namespace",
    ...emitter,
    request: batch(emitterSelf, [], [fromIngress(text("generic"))]),
    effects: [
      'egress interop/out string "inferred string"',
      'egress interop/out string "typed string"',
      'egress interop/out interop/Point {"x":5,"y":6}',
      "egress interop/out int -7",
      "egress com.example/sub/out bool false",
    ],
  },

  // Batches
  {
    name: "batch: each invocation sees the previous one's write; one MODIFY with the final value; effects in call order",
    ...counter,
    request: batch(
      counterSelf,
      [state("count", int(1)), state("label")],
      [fromIngress(int(1)), fromFunction(otherFn, int(3)), fromIngress(int(-10)), fromFunction(otherFn, int(7))],
    ),
    effects: [
      "MODIFY count = int 2",
      'send interop/sink:counts string "ingress -> 2"',
      'send interop/sink:counts string "interop/other/o-1 -> 5"',
      'send interop/sink:counts string "ingress -> -5"',
      'send interop/sink:counts string "interop/other/o-1 -> 2"',
      "delay 2ms interop/sink:even int 2",
      "delay 2ms interop/sink:even int 2",
      "egress interop/out int 5",
      "egress interop/out int -5",
    ],
  },
  {
    name: "batch: DELETE then a new value reports MODIFY; a value then DELETE reports DELETE",
    ...counter,
    request: batch(
      counterSelf,
      [state("label", text("old")), state("count", int(4))],
      [
        fromIngress(text("drop")),
        fromIngress(int(3)),
        fromFunction(otherFn, text("new")),
        fromIngress(text("drop-label")),
      ],
    ),
    effects: [
      "MODIFY count = int 3",
      "DELETE label",
      'send interop/sink:counts string "ingress drop: count absent"',
      'send interop/sink:counts string "ingress -> 3"',
      'send interop/sink:counts string "interop/other/o-1 new: count 3"',
      'send interop/sink:counts string "ingress drop-label: count 3"',
      "egress interop/out int 3",
    ],
  },
  {
    name: "a state listed twice: the later entry wins, even when it has no value",
    ...counter,
    request: batch(counterSelf, [state("count", int(5)), state("label"), state("count")], [fromIngress(int(1))]),
    effects: ["MODIFY count = int 1", 'send interop/sink:counts string "ingress -> 1"', "egress interop/out int 1"],
  },
  {
    name: "a state listed twice: the later entry wins when it has a value",
    ...counter,
    request: batch(counterSelf, [state("count"), state("label"), state("count", int(5))], [fromIngress(int(1))]),
    effects: [
      "MODIFY count = int 6",
      'send interop/sink:counts string "ingress -> 6"',
      "delay 6ms interop/sink:even int 6",
    ],
  },
  {
    name: "batch: a handshake for a batch runs none of its invocations",
    ...counter,
    request: batch(counterSelf, [state("label")], [fromIngress(int(1)), fromIngress(int(2))]),
    effects: ["missing count: io.statefun.types/int"],
  },

  // Every built-in type, as state and as message (values encoded by both SDKs)
  {
    name: "bool: true and false (false is zero bytes) as message and state",
    ...typesPair,
    request: batch(typesSelf, typesState({ flag: value(types.bool, true) }), [
      fromIngress(value(types.bool, false)),
      fromIngress(officialValue(StateFun.booleanType(), true)),
    ]),
    effects: [
      "MODIFY flag = bool true",
      ...echoed("flag", "bool false", "true -> false"),
      ...echoed("flag", "bool true", "false -> true"),
    ],
  },
  {
    name: "int: 0, negatives and both extremes (sfixed32)",
    ...typesPair,
    request: batch(typesSelf, typesState({ count: officialValue(StateFun.intType(), 7) }), [
      fromIngress(int(0)),
      fromIngress(int(-1)),
      fromIngress(officialValue(StateFun.intType(), 2147483647)),
      fromIngress(int(-2147483648)),
      fromIngress(officialValue(StateFun.intType(), -42)),
    ]),
    effects: [
      "MODIFY count = int -42",
      ...echoed("count", "int 0", "7 -> 0"),
      ...echoed("count", "int -1", "0 -> -1"),
      ...echoed("count", "int 2147483647", "-1 -> 2147483647"),
      ...echoed("count", "int -2147483648", "2147483647 -> -2147483648"),
      ...echoed("count", "int -42", "-2147483648 -> -42"),
    ],
  },
  {
    name: "long: 0, -1, 2^53 + 1 and both 64-bit extremes (sfixed64)",
    ...typesPair,
    request: batch(typesSelf, typesState({ big: officialValue(officialLong, 2n ** 40n) }), [
      fromIngress(value(types.long, 0n)),
      fromIngress(officialValue(officialLong, -1n)),
      fromIngress(value(types.long, 2n ** 53n + 1n)),
      fromIngress(officialValue(officialLong, 2n ** 63n - 1n)),
      fromIngress(value(types.long, -(2n ** 63n))),
    ]),
    effects: [
      "MODIFY big = long -9223372036854775808n",
      ...echoed("big", "long 0n", "1099511627776n -> 0n"),
      ...echoed("big", "long -1n", "0n -> -1n"),
      ...echoed("big", "long 9007199254740993n", "-1n -> 9007199254740993n"),
      ...echoed("big", "long 9223372036854775807n", "9007199254740993n -> 9223372036854775807n"),
      ...echoed("big", "long -9223372036854775808n", "9223372036854775807n -> -9223372036854775808n"),
    ],
  },
  {
    name: "float: zero, -0, fractions, the largest finite, the smallest subnormal, infinity",
    ...typesPair,
    request: batch(typesSelf, typesState({ ratio: value(types.float, 1.5) }), [
      fromIngress(value(types.float, 0)),
      fromIngress(officialValue(StateFun.floatType(), -0)),
      fromIngress(value(types.float, 1.1)),
      fromIngress(officialValue(StateFun.floatType(), -0.25)),
      fromIngress(value(types.float, 3.4028234663852886e38)),
      fromIngress(officialValue(StateFun.floatType(), 1e-45)),
      fromIngress(value(types.float, Number.NEGATIVE_INFINITY)),
    ]),
    effects: [
      "MODIFY ratio = float -Infinity",
      ...echoed("ratio", "float 0", "1.5 -> 0"),
      ...echoed("ratio", "float 0", "0 -> 0"),
      ...echoed("ratio", "float 1.100000023841858", "0 -> 1.100000023841858"),
      ...echoed("ratio", "float -0.25", "1.100000023841858 -> -0.25"),
      ...echoed("ratio", "float 3.4028234663852886e+38", "-0.25 -> 3.4028234663852886e+38"),
      ...echoed("ratio", "float 1.401298464324817e-45", "3.4028234663852886e+38 -> 1.401298464324817e-45"),
      ...echoed("ratio", "float -Infinity", "1.401298464324817e-45 -> -Infinity"),
    ],
  },
  {
    name: "double: zero, 0.1, extremes, the smallest subnormal, infinity",
    ...typesPair,
    request: batch(typesSelf, typesState({ precise: officialValue(officialDouble, Math.PI) }), [
      fromIngress(value(types.double, 0)),
      fromIngress(officialValue(officialDouble, 0.1)),
      fromIngress(value(types.double, -1.7976931348623157e308)),
      fromIngress(officialValue(officialDouble, 5e-324)),
      fromIngress(value(types.double, Number.POSITIVE_INFINITY)),
    ]),
    effects: [
      "MODIFY precise = double Infinity",
      ...echoed("precise", "double 0", "3.141592653589793 -> 0"),
      ...echoed("precise", "double 0.1", "0 -> 0.1"),
      ...echoed("precise", "double -1.7976931348623157e+308", "0.1 -> -1.7976931348623157e+308"),
      ...echoed("precise", "double 5e-324", "-1.7976931348623157e+308 -> 5e-324"),
      ...echoed("precise", "double Infinity", "5e-324 -> Infinity"),
    ],
  },
  {
    name: 'string: "", ASCII, multi-byte and astral UTF-8, a length needing a 2-byte varint',
    ...typesPair,
    request: batch(typesSelf, typesState({ text: officialValue(StateFun.stringType(), "start") }), [
      fromIngress(text("")),
      fromIngress(officialValue(StateFun.stringType(), "a")),
      fromIngress(text("héllo ✓ 𝄞")),
      fromIngress(officialValue(StateFun.stringType(), "z".repeat(200))),
    ]),
    effects: [
      `MODIFY text = string ${JSON.stringify("z".repeat(200))}`,
      ...echoed("text", 'string ""', '"start" -> ""'),
      ...echoed("text", 'string "a"', '"" -> "a"'),
      ...echoed("text", 'string "héllo ✓ 𝄞"', '"a" -> "héllo ✓ 𝄞"'),
      ...echoed(
        "text",
        `string ${JSON.stringify("z".repeat(200))}`,
        `"héllo ✓ 𝄞" -> ${JSON.stringify("z".repeat(200))}`,
      ),
    ],
  },
  {
    name: "json: objects with nested arrays and unicode",
    ...typesPair,
    request: batch(typesSelf, typesState({ doc: officialValue(officialDocType, { title: "first", tags: [], n: 0 }) }), [
      fromIngress(value(eddyDocType, { title: "ünï", tags: ["a", "b"], n: -1.5 })),
      fromIngress(officialValue(officialDocType, { title: "", tags: ["𝄞"], n: 1e21 })),
    ]),
    effects: [
      'MODIFY doc = interop/Doc {"title":"","tags":["𝄞"],"n":1e+21}',
      ...echoed(
        "doc",
        'interop/Doc {"title":"ünï","tags":["a","b"],"n":-1.5}',
        '{"title":"first","tags":[],"n":0} -> {"title":"ünï","tags":["a","b"],"n":-1.5}',
      ),
      ...echoed(
        "doc",
        'interop/Doc {"title":"","tags":["𝄞"],"n":1e+21}',
        '{"title":"ünï","tags":["a","b"],"n":-1.5} -> {"title":"","tags":["𝄞"],"n":1e+21}',
      ),
    ],
  },

  // Missing versus empty
  {
    name: "an empty-string state is a present value (has_value, zero bytes), not a missing one",
    ...typesPair,
    request: batch(typesSelf, typesState({ text: text("") }), [fromIngress(text("x"))]),
    effects: ['MODIFY text = string "x"', ...echoed("text", 'string "x"', '"" -> "x"')],
  },
  {
    name: "zero values (false, 0, 0n, 0.0) in state are present, not missing",
    ...typesPair,
    request: batch(
      typesSelf,
      typesState({
        flag: value(types.bool, false),
        count: int(0),
        big: value(types.long, 0n),
        ratio: value(types.float, 0),
        precise: value(types.double, 0),
      }),
      [
        fromIngress(value(types.bool, true)),
        fromIngress(int(1)),
        fromIngress(value(types.long, 1n)),
        fromIngress(value(types.float, 1)),
        fromIngress(value(types.double, 1)),
      ],
    ),
    effects: [
      "MODIFY big = long 1n",
      "MODIFY count = int 1",
      "MODIFY flag = bool true",
      "MODIFY precise = double 1",
      "MODIFY ratio = float 1",
      ...echoed("flag", "bool true", "false -> true"),
      ...echoed("count", "int 1", "0 -> 1"),
      ...echoed("big", "long 1n", "0n -> 1n"),
      ...echoed("ratio", "float 1", "0 -> 1"),
      ...echoed("precise", "double 1", "0 -> 1"),
    ],
  },
  {
    name: "a state value with has_value=false reads as missing, whatever its bytes",
    ...typesPair,
    request: batch(
      typesSelf,
      typesState({
        count: { typename: types.int.typename, hasValue: false, value: int(5).value ?? new Uint8Array(0) },
      }),
      [fromIngress(int(2))],
    ),
    effects: ["MODIFY count = int 2", ...echoed("count", "int 2", "absent -> 2")],
  },
];
