// Eddy's twins of the functions in functions.py (the official StateFun Python SDK):
// same typenames, same state, same effects in the same order. The interop test sends
// one request to each and compares the replies, so keep the two files in step.
import {
  type Address,
  address,
  egressMessage,
  kafkaRecord,
  kinesisRecord,
  message,
  statefulFunction,
  type Type,
  types,
} from "@eddy/sdk";

const PEER = "interop/peer";
const JSON_TYPE = types.json("interop/Json");

const peer = (id: string): Address => address(PEER, id);

export const handshake = statefulFunction({
  typename: "interop/handshake",
  state: {
    plain: types.int,
    by_write: { type: types.string, expireAfterWrite: 60_000 },
    by_call: { type: types.long, expireAfterInvoke: 1500 },
  },
  handle(ctx) {
    ctx.storage.plain = (ctx.storage.plain ?? 0) + 1;
  },
});

export const state = statefulFunction({
  typename: "interop/state",
  state: { counter: types.int, label: types.string, flag: types.bool },
  handle(ctx, msg) {
    const command = msg.as(types.string);
    const storage = ctx.storage;
    if (command === "incr") {
      storage.counter = (storage.counter ?? 0) + 1;
    } else if (command.startsWith("label:")) {
      storage.label = command.slice("label:".length);
    } else if (command === "del-label") {
      storage.label = undefined;
    } else if (command === "del-counter") {
      storage.counter = undefined;
    } else if (command === "toggle") {
      storage.flag = !storage.flag;
    } else if (command === "set-then-del") {
      storage.label = "brief";
      storage.label = undefined;
    } else if (command === "del-then-set") {
      storage.label = undefined;
      storage.label = "back";
    } else if (command === "read") {
      void [storage.counter, storage.label, storage.flag];
    } else {
      throw new Error(`unknown command ${JSON.stringify(command)}`);
    }
  },
});

export const presence = statefulFunction({
  typename: "interop/presence",
  state: { s: types.string, i: types.int },
  handle(ctx, msg) {
    const s = ctx.storage.s;
    ctx.send(message(peer("s-present"), s !== undefined));
    if (s !== undefined) ctx.send(message(peer("s-value"), s));
    const i = ctx.storage.i;
    ctx.send(message(peer("i-present"), i !== undefined));
    if (i !== undefined) ctx.send(message(peer("i-value"), i));
    ctx.send(message(peer("message-present"), msg.hasValue));
    if (msg.hasValue && msg.is(types.string)) {
      ctx.send(message(peer("message-value"), msg.as(types.string)));
      ctx.storage.s = msg.as(types.string);
    }
  },
});

export const allTypes = statefulFunction({
  typename: "interop/types",
  state: { i: types.int, l: types.long, f: types.float, d: types.double, b: types.bool, s: types.string },
  async handle(ctx, msg) {
    const storage = ctx.storage;
    const echo = <T>(id: string, value: T | undefined, type: Type<T>): void =>
      ctx.send(message(peer(id), value as T, type));
    if (msg.is(types.int)) {
      storage.i = (storage.i ?? 0) + msg.as(types.int);
      echo("int", storage.i, types.int);
    } else if (msg.is(types.long)) {
      storage.l = (storage.l ?? 0n) + msg.as(types.long);
      echo("long", storage.l, types.long);
    } else if (msg.is(types.float)) {
      storage.f = (storage.f ?? 0) + msg.as(types.float);
      echo("float", storage.f, types.float);
    } else if (msg.is(types.double)) {
      storage.d = (storage.d ?? 0) + msg.as(types.double);
      echo("double", storage.d, types.double);
    } else if (msg.is(types.bool)) {
      storage.b = msg.as(types.bool);
      echo("bool", storage.b, types.bool);
    } else if (msg.is(types.string)) {
      storage.s = (storage.s ?? "") + msg.as(types.string);
      echo("string", storage.s, types.string);
    } else {
      throw new TypeError(`unexpected message type ${msg.typename}`);
    }
  },
});

export const messaging = statefulFunction({
  typename: "interop/messaging",
  handle(ctx, msg) {
    const command = msg.as(types.string);
    const me = ctx.self.id;
    if (command === "send") {
      ctx.send(message(peer(`${me}-int`), -7, types.int));
      ctx.send(message(peer(`${me}-long`), -(2n ** 40n), types.long));
      ctx.send(message(peer(`${me}-float`), 0.5, types.float));
      ctx.send(message(peer(`${me}-double`), -1.25, types.double));
      ctx.send(message(peer(`${me}-bool`), true, types.bool));
      ctx.send(message(peer(`${me}-string`), "hi ✓", types.string));
      ctx.send(message(peer(`${me}-empty`), "", types.string));
      ctx.send(message(address("interop/other", "o"), ["é"], JSON_TYPE));
    } else if (command === "reply") {
      const caller = ctx.caller;
      if (caller === undefined) ctx.send(message(peer("no-caller"), "from an ingress"));
      else ctx.send(message(address(caller.typename, caller.id), `hello ${caller.id}`));
    } else if (command === "delay") {
      ctx.sendAfter(1500, message(peer("later"), "later"));
      ctx.sendAfter(0, message(peer("now"), 0));
    } else if (command === "delay-token") {
      ctx.sendAfter(2000, message(peer("later"), "maybe"), { cancellationToken: "tok-1" });
    } else if (command === "cancel") {
      ctx.cancelDelayedMessage("tok-1");
    } else if (command === "kafka") {
      ctx.send(kafkaRecord({ egress: "interop/kafka", topic: "events", value: "v", key: "k" }));
      ctx.send(kafkaRecord({ egress: "interop/kafka", topic: "events", value: Uint8Array.of(0, 1) }));
      ctx.send(kafkaRecord({ egress: "interop/kafka", topic: "events", value: 258 }));
      ctx.send(kafkaRecord({ egress: "interop/kafka", topic: "events", value: 7, type: types.int, key: "" }));
    } else if (command === "kafka-int-overflow") {
      ctx.send(kafkaRecord({ egress: "interop/kafka", topic: "events", value: 2 ** 32 + 1 }));
    } else if (command === "kinesis") {
      ctx.send(
        kinesisRecord({
          egress: "interop/kinesis",
          stream: "s",
          value: "v",
          partitionKey: "pk",
          explicitHashKey: "hk",
        }),
      );
      ctx.send(
        kinesisRecord({ egress: "interop/kinesis", stream: "s", value: -3n, type: types.long, partitionKey: "pk" }),
      );
    } else if (command === "egress") {
      ctx.send(egressMessage("interop/egress", "payload", types.string));
      ctx.send(egressMessage("interop/egress", 2n ** 53n + 1n, types.long));
      ctx.send(egressMessage("interop/egress", false, types.bool));
    } else if (command === "json") {
      ctx.send(egressMessage("interop/egress", { a: 1, b: [true, null, "é"] }, JSON_TYPE));
    } else {
      throw new Error(`unknown command ${JSON.stringify(command)}`);
    }
  },
});

export const eddyFunctions = [handshake, state, presence, allTypes, messaging];
