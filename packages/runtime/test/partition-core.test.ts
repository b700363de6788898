// The partition core's per-address semantics, driven by hand with an injected clock.
import assert from "node:assert/strict";
import { beforeEach, describe, it } from "node:test";
import {
  ExpireMode,
  type FromFunction,
  type Init,
  type InvocationResponse,
  MutationType,
  normalizeToFunction,
  type PersistedValueSpec,
  type ToFunction,
  type TypedValue,
} from "@eddy/protocol";
import type { Address, FunctionTypename } from "../src/core/address.ts";
import type { Effect } from "../src/core/effects.ts";
import { MemoryKV } from "../src/core/kv.ts";
import {
  BATCH_TRACES_MAX,
  type Catalog,
  type FailurePolicy,
  type FunctionSettings,
  PartitionCore,
} from "../src/core/partition-core.ts";
import { makeRequestId } from "../src/core/records.ts";

const counter = { typename: "test/counter" as FunctionTypename, id: "a" };
const text = (value: string): TypedValue => ({
  typename: "test/text",
  hasValue: true,
  value: new TextEncoder().encode(value),
});
const intValue = (value: number): TypedValue => ({
  typename: "io.statefun.types/int",
  hasValue: true,
  value: Uint8Array.of(value),
});

function settings(overrides: Partial<FunctionSettings> = {}): FunctionSettings {
  return { maxBatchCount: 100, maxBatchBytes: 1 << 20, backlogLimit: 0, failurePolicy: "dead-letter", ...overrides };
}

function result(parts: Partial<InvocationResponse>): FromFunction {
  return {
    incompleteInvocationContext: null,
    invocationResult: {
      stateMutations: [],
      outgoingMessages: [],
      delayedInvocations: [],
      outgoingEgresses: [],
      ...parts,
    },
  };
}

function incomplete(...specs: PersistedValueSpec[]): FromFunction {
  return { invocationResult: null, incompleteInvocationContext: { missingValues: specs } };
}

function spec(
  name: string,
  typename: string,
  mode: ExpireMode = ExpireMode.NONE,
  expireAfterMillis = 0,
): PersistedValueSpec {
  return { stateName: name, typeTypename: typename, expirationSpec: { mode, expireAfterMillis } };
}

function modify(name: string, value: TypedValue) {
  return { mutationType: MutationType.MODIFY, stateName: name, stateValue: value };
}

class Fixture {
  readonly kv = new MemoryKV();
  readonly effects: Effect[] = [];
  readonly functions = new Map<string, FunctionSettings>([[counter.typename, settings()]]);
  readonly catalog: Catalog = {
    functionSettings: (typename) => this.functions.get(typename),
    hasEgress: (egress) => egress === "test/out",
  };
  core = new PartitionCore(this.kv, this.catalog, this.effects);

  take<K extends Effect["kind"]>(kind: K): Extract<Effect, { kind: K }>[] {
    const taken = this.effects.filter((effect): effect is Extract<Effect, { kind: K }> => effect.kind === kind);
    this.effects.splice(0, this.effects.length, ...this.effects.filter((effect) => effect.kind !== kind));
    return taken;
  }

  invoke(): Extract<Effect, { kind: "invoke" }> {
    const [invoke, ...more] = this.take("invoke");
    assert.ok(invoke, "expected an invoke effect");
    assert.equal(more.length, 0, "expected exactly one invoke effect");
    // In-process functions get the request as it is: it must already have the decoded shape.
    assert.deepEqual(invoke.request, normalizeToFunction(invoke.request), "the request is in decoded shape");
    return invoke;
  }

  /** Registers the specs through the handshake and completes the batch. */
  handshake(at: number, ...specs: PersistedValueSpec[]): Extract<Effect, { kind: "invoke" }> {
    const first = this.invoke();
    this.core.complete(first.target, first.batchId, incomplete(...specs), at);
    return this.invoke();
  }

  stateOf(request: Init<ToFunction>, name: string): TypedValue | null | undefined {
    const entry = request.invocation?.state?.find((state) => state.stateName === name);
    return entry === undefined ? undefined : ((entry.stateValue as TypedValue | null) ?? null);
  }
}

describe("partition core", () => {
  let f: Fixture;
  beforeEach(() => {
    f = new Fixture();
  });

  it("sends one batch per address and collects the rest in the backlog, in order", () => {
    f.core.deliver({ target: counter, argument: text("1") }, 0);
    f.core.deliver({ target: counter, argument: text("2") }, 0);
    f.core.deliver({ target: counter, argument: text("3") }, 0);
    const first = f.invoke();
    assert.equal(first.request.invocation?.invocations?.length, 1);
    f.core.complete(counter, first.batchId, result({}), 1);
    const second = f.invoke();
    const args = second.request.invocation?.invocations?.map((invocation) =>
      new TextDecoder().decode(invocation.argument?.value ?? undefined),
    );
    assert.deepEqual(args, ["2", "3"]);
    f.core.complete(counter, second.batchId, result({}), 2);
    assert.equal(f.take("invoke").length, 0);
    assert.equal(f.core.activeCount, 0);
  });

  it("hands a batch's distinct trace contexts to its call (at most BATCH_TRACES_MAX), and the call's to what it sends", () => {
    const trace = (n: number) => `00-${"a".repeat(32)}-${n.toString(16).padStart(16, "0")}-01`;
    f.core.deliver({ target: counter, argument: text("0"), trace: trace(1) }, 0);
    const first = f.invoke();
    assert.deepEqual(first.traces, [trace(1)]);
    // 60 messages wait behind it: some without a context, some sharing one, many distinct.
    for (let index = 0; index < 60; index++) {
      const context = index % 3 === 0 ? undefined : trace(index < 10 ? 2 : 100 + index);
      f.core.deliver(
        context === undefined
          ? { target: counter, argument: text(String(index)) }
          : { target: counter, argument: text(String(index)), trace: context },
        0,
      );
    }
    const out = { namespace: "test", type: "other", id: "x" };
    f.core.complete(
      counter,
      first.batchId,
      result({
        outgoingMessages: [{ target: out, argument: text("m") }],
        outgoingEgresses: [{ egressNamespace: "test", egressType: "out", argument: text("e") }],
      }),
      1,
      "00-bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb-cccccccccccccccc-01",
    );
    const [route] = f.take("route");
    assert.equal(route?.envelope.trace, "00-bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb-cccccccccccccccc-01");
    const [egress] = f.take("egress");
    assert.equal(egress?.entry.trace, "00-bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb-cccccccccccccccc-01");
    const second = f.invoke();
    assert.equal(second.request.invocation?.invocations?.length, 60);
    const expected = [trace(2)];
    for (let index = 10; expected.length < BATCH_TRACES_MAX; index++)
      if (index % 3 !== 0) expected.push(trace(100 + index));
    assert.deepEqual(second.traces, expected);
    // Without contexts (tracing off), the effect has none, and neither has what the reply sends.
    f.core.complete(counter, second.batchId, result({ outgoingMessages: [{ target: out, argument: text("m") }] }), 2);
    assert.equal("trace" in (f.take("route")[0]?.envelope ?? {}), false);
    f.core.deliver({ target: counter, argument: text("plain") }, 3);
    assert.equal("traces" in f.invoke(), false);
  });

  it("bounds a batch by count and by bytes", () => {
    f.functions.set(counter.typename, settings({ maxBatchCount: 2, maxBatchBytes: 40 }));
    for (const value of ["a", "b", "c", "d", "e".repeat(30), "f"])
      f.core.deliver({ target: counter, argument: text(value) }, 0);
    const sizes: number[] = [];
    for (let invoke = f.invoke(); ; ) {
      sizes.push(invoke.request.invocation?.invocations?.length ?? 0);
      f.core.complete(counter, invoke.batchId, result({}), 0);
      const next = f.take("invoke")[0];
      if (next === undefined) break;
      invoke = next;
    }
    // "a" | "b","c" | "d" | "eee…" (alone: over the byte bound with "d") | "f"; each typename counts 9 bytes.
    assert.deepEqual(sizes, [1, 2, 1, 1, 1]);
  });

  it("keeps the order of a backlog too long to copy in memory, and copies it again once drained", () => {
    // 1,500 rows pass the in-memory copy's 1,024 rows per address: the rest is read from the store.
    f.functions.set(counter.typename, settings({ maxBatchCount: 400 }));
    const drain = (): string[] => {
      const seen: string[] = [];
      for (let invoke = f.take("invoke")[0]; invoke !== undefined; invoke = f.take("invoke")[0]) {
        for (const invocation of invoke.request.invocation?.invocations ?? [])
          seen.push(new TextDecoder().decode(invocation.argument?.value ?? undefined));
        f.core.complete(counter, invoke.batchId, result({}), 0);
      }
      return seen;
    };
    const values = Array.from({ length: 1500 }, (_, index) => String(index));
    for (const value of values) f.core.deliver({ target: counter, argument: text(value) }, 0);
    assert.deepEqual(drain(), values);
    assert.equal([...f.kv.scan(["backlog"])].length, 0, "every backlog row is deleted");
    // Short again: served from the copy, same order.
    for (const value of ["x", "y", "z"]) f.core.deliver({ target: counter, argument: text(value) }, 1);
    assert.deepEqual(drain(), ["x", "y", "z"]);
    assert.equal(f.core.activeCount, 0);
  });

  it("registers missing state specs and re-sends the same invocations with them", () => {
    f.core.deliver({ target: counter, argument: text("x") }, 0);
    const first = f.invoke();
    assert.deepEqual(first.request.invocation?.state, []);
    f.core.complete(counter, first.batchId, incomplete(spec("seen", "io.statefun.types/int")), 1);
    const second = f.invoke();
    assert.notEqual(second.batchId, first.batchId);
    assert.deepEqual(second.request.invocation?.invocations, first.request.invocation?.invocations);
    assert.equal(
      f.stateOf(second.request, "seen"),
      null,
      "a registered state without a value is sent as an entry without value",
    );
    // A late reply to the first request is ignored.
    f.core.complete(counter, first.batchId, result({ stateMutations: [modify("seen", intValue(9))] }), 1);
    f.core.complete(counter, second.batchId, result({ stateMutations: [modify("seen", intValue(1))] }), 2);
    f.core.deliver({ target: counter, argument: text("y") }, 3);
    assert.deepEqual([...(f.stateOf(f.invoke().request, "seen")?.value ?? [])], [1]);
  });

  it("keeps registered specs across a restart, so no handshake storm follows recovery", () => {
    f.core.deliver({ target: counter, argument: text("x") }, 0);
    const batch = f.handshake(1, spec("seen", "io.statefun.types/int"));
    f.core.deliver({ target: counter, argument: text("y") }, 1);
    // Crash: a new core over the same store recovers the in-flight batch with its state entry.
    const effects: Effect[] = [];
    const recovered = new PartitionCore(f.kv, f.catalog, effects);
    recovered.recover(5);
    const [again] = effects.filter((effect) => effect.kind === "invoke");
    assert.ok(again?.kind === "invoke");
    assert.equal(again.batchId, batch.batchId);
    assert.equal(f.stateOf(again.request, "seen"), null);
    recovered.complete(counter, again.batchId, result({}), 6);
    const next = effects.filter((effect) => effect.kind === "invoke")[1];
    assert.ok(next?.kind === "invoke", "the backlog survives the restart");
    assert.equal(next.request.invocation?.invocations?.length, 1);
  });

  it("numbers batches and rows above every earlier start's, writing the sequence once per start", () => {
    f.core.deliver({ target: counter, argument: text("x") }, 0);
    const first = f.invoke();
    for (const value of ["y", "z"]) f.core.deliver({ target: counter, argument: text(value) }, 0);
    const rowsBefore = [...f.kv.scan(["backlog"])].map(({ key }) => key[2] as number);
    // Restart: the in-flight batch and the backlog are recovered, new numbers start above them.
    const effects: Effect[] = [];
    const recovered = new PartitionCore(f.kv, f.catalog, effects);
    recovered.recover(1);
    recovered.deliver({ target: counter, argument: text("w") }, 1);
    const rowsAfter = [...f.kv.scan(["backlog"])].map(({ key }) => key[2] as number);
    assert.deepEqual(rowsAfter.slice(0, rowsBefore.length), rowsBefore, "the old rows stay first");
    assert.ok((rowsAfter[rowsAfter.length - 1] as number) > Math.max(...rowsBefore, first.batchId));
    assert.equal(f.kv.get(["meta", "seq"]), undefined, "no write per sequence number");
    assert.equal(f.kv.get(["meta", "epoch"]), 2);
    // The backlog drains in arrival order across the restart.
    const seen: string[] = [];
    for (let invoke = effects.find((e) => e.kind === "invoke"); invoke?.kind === "invoke"; ) {
      for (const invocation of invoke.request.invocation?.invocations ?? [])
        seen.push(new TextDecoder().decode(invocation.argument?.value ?? undefined));
      const before = effects.length;
      recovered.complete(counter, invoke.batchId, result({}), 2);
      invoke = effects.slice(before).find((e) => e.kind === "invoke");
    }
    assert.deepEqual(seen, ["x", "y", "z", "w"]);
  });

  it("a state whose type changed is a clear error, not a reinterpretation", () => {
    f.core.deliver({ target: counter, argument: text("x") }, 0);
    const batch = f.handshake(0, spec("seen", "io.statefun.types/int"));
    f.core.complete(counter, batch.batchId, result({ stateMutations: [modify("seen", intValue(3))] }), 0);
    // The function is redeployed declaring seen as a string.
    f.core.deliver({ target: counter, argument: text("y") }, 1);
    const next = f.invoke();
    f.core.complete(counter, next.batchId, incomplete(spec("seen", "io.statefun.types/string")), 1);
    const [letter] = f.take("dead-letter");
    assert.match(
      letter?.letter.reason ?? "",
      /state "seen" of test\/counter changed type from io\.statefun\.types\/int to io\.statefun\.types\/string/,
    );
  });

  it("rejects a reply that writes a state under another type, and changes nothing", () => {
    f.core.deliver({ target: counter, argument: text("x") }, 0);
    const batch = f.handshake(0, spec("seen", "io.statefun.types/int"));
    f.core.complete(
      counter,
      batch.batchId,
      result({
        stateMutations: [modify("seen", text("oops"))],
        outgoingEgresses: [{ egressNamespace: "test", egressType: "out", argument: text("e") }],
      }),
      0,
    );
    const [letter] = f.take("dead-letter");
    assert.match(
      letter?.letter.reason ?? "",
      /writes state "seen" as test\/text, but the state is registered as io\.statefun\.types\/int/,
    );
    assert.equal(f.take("egress").length, 0, "nothing of the bad reply is applied");
  });

  it("expires a value after write, counted from the last write", () => {
    f.core.deliver({ target: counter, argument: text("x") }, 0);
    const batch = f.handshake(0, spec("seen", "io.statefun.types/int", ExpireMode.AFTER_WRITE, 100));
    f.core.complete(counter, batch.batchId, result({ stateMutations: [modify("seen", intValue(1))] }), 10);
    f.core.deliver({ target: counter, argument: text("read") }, 60);
    const read = f.invoke();
    assert.deepEqual([...(f.stateOf(read.request, "seen")?.value ?? [])], [1], "still there at 60 ms");
    f.core.complete(counter, read.batchId, result({}), 60);
    f.core.deliver({ target: counter, argument: text("late") }, 110);
    assert.equal(
      f.stateOf(f.invoke().request, "seen"),
      null,
      "expired 100 ms after the write at 10 ms, although read at 60 ms",
    );
  });

  it("expires a value after invoke, counted from the last invocation", () => {
    f.core.deliver({ target: counter, argument: text("x") }, 0);
    const batch = f.handshake(0, spec("seen", "io.statefun.types/int", ExpireMode.AFTER_INVOKE, 100));
    f.core.complete(counter, batch.batchId, result({ stateMutations: [modify("seen", intValue(1))] }), 10);
    for (const at of [90, 180, 270]) {
      f.core.deliver({ target: counter, argument: text("touch") }, at);
      const touch = f.invoke();
      assert.deepEqual([...(f.stateOf(touch.request, "seen")?.value ?? [])], [1], `still there at ${at} ms`);
      f.core.complete(counter, touch.batchId, result({}), at);
    }
    f.core.deliver({ target: counter, argument: text("idle too long") }, 371);
    assert.equal(f.stateOf(f.invoke().request, "seen"), null);
  });

  it("delivers delayed messages when due, with the sender as caller, and cancels by token", () => {
    const other: Address = { typename: counter.typename, id: "b" };
    f.core.deliver({ target: counter, argument: text("x") }, 0);
    const batch = f.invoke();
    const delayed = (delayInMs: number, token: string) => ({
      isCancellationRequest: false,
      cancellationToken: token,
      delayInMs,
      target: { namespace: "test", type: "counter", id: other.id },
      argument: text(`after ${delayInMs}`),
    });
    const cancel = { isCancellationRequest: true, cancellationToken: "t2", delayInMs: 0, target: null, argument: null };
    f.core.complete(
      counter,
      batch.batchId,
      result({ delayedInvocations: [delayed(50, ""), delayed(20, "t2"), cancel] }),
      100,
    );
    assert.equal(f.core.nextTimerAtMs, 150);
    f.core.fireTimers(149);
    assert.equal(f.take("route").length, 0);
    f.core.fireTimers(150);
    const routed = f.take("route");
    assert.equal(routed.length, 1);
    assert.deepEqual(routed[0]?.envelope.caller, counter);
    assert.equal(new TextDecoder().decode(routed[0]?.envelope.argument.value), "after 50");
    assert.equal(f.core.nextTimerAtMs, undefined);
  });

  it("a token already pending for the sender is an invalid reply", () => {
    f.core.deliver({ target: counter, argument: text("x") }, 0);
    const delayed = {
      isCancellationRequest: false,
      cancellationToken: "same",
      delayInMs: 10,
      target: { namespace: "test", type: "counter", id: "b" },
      argument: text("x"),
    };
    const first = f.invoke();
    f.core.complete(counter, first.batchId, result({ delayedInvocations: [delayed] }), 0);
    f.core.deliver({ target: counter, argument: text("y") }, 1);
    const second = f.invoke();
    f.core.complete(counter, second.batchId, result({ delayedInvocations: [delayed] }), 1);
    assert.match(
      f.take("dead-letter")[0]?.letter.reason ?? "",
      /cancellation token "same" is already used by a pending delayed message/,
    );
  });

  it("dead-letters a message to an unknown function type and keeps serving others", () => {
    f.core.deliver({ target: { typename: "nope/missing" as FunctionTypename, id: "1" }, argument: text("x") }, 0);
    assert.match(f.take("dead-letter")[0]?.letter.reason ?? "", /unknown function type nope\/missing/);
    f.core.deliver({ target: counter, argument: text("y") }, 0);
    assert.equal(f.take("invoke").length, 1);
  });

  it("dead-letters egress to an unknown egress but applies the rest of the reply", () => {
    f.core.deliver({ target: counter, argument: text("x") }, 0);
    const batch = f.invoke();
    f.core.complete(
      counter,
      batch.batchId,
      result({
        outgoingEgresses: [
          { egressNamespace: "test", egressType: "nowhere", argument: text("lost?") },
          { egressNamespace: "test", egressType: "out", argument: text("ok") },
        ],
      }),
      0,
    );
    assert.match(f.take("dead-letter")[0]?.letter.reason ?? "", /unknown egress test\/nowhere/);
    assert.equal(f.take("egress").length, 1);
  });

  for (const policy of ["retry", "dead-letter", "stop"] satisfies FailurePolicy[]) {
    it(`applies the ${policy} policy when a batch fails for good`, () => {
      f.functions.set(counter.typename, settings({ failurePolicy: policy }));
      f.core.deliver({ target: counter, argument: text("x") }, 0);
      f.core.deliver({ target: counter, argument: text("y") }, 0);
      const batch = f.invoke();
      f.core.fail(counter, batch.batchId, "HTTP 503 until the budget ran out", 5);
      if (policy === "retry") {
        const retry = f.invoke();
        assert.equal(retry.attempt, 1);
        assert.deepEqual(retry.request.invocation?.invocations, batch.request.invocation?.invocations);
      } else if (policy === "dead-letter") {
        assert.equal(f.take("dead-letter")[0]?.letter.invocations.length, 1);
        assert.equal(f.invoke().request.invocation?.invocations?.length, 1, "the backlog moves on");
      } else {
        assert.match(f.take("stop")[0]?.reason ?? "", /test\/counter\/a: HTTP 503/);
        assert.equal(f.take("invoke").length, 0);
      }
    });
  }

  it("reports an address blocked when its backlog reaches the limit, and unblocked when it drains", () => {
    f.functions.set(counter.typename, settings({ backlogLimit: 2, maxBatchCount: 1 }));
    for (const value of ["1", "2", "3"]) f.core.deliver({ target: counter, argument: text(value) }, 0);
    assert.deepEqual(
      f.take("backpressure").map((effect) => effect.blocked),
      [true],
    );
    const batch = f.invoke();
    f.core.complete(counter, batch.batchId, result({}), 0);
    assert.deepEqual(
      f.take("backpressure").map((effect) => effect.blocked),
      [false],
    );
  });

  it("delivers a message with an idempotency key once, and again only after the key expired", () => {
    const envelope = { target: counter, argument: text("x") };
    assert.equal(f.core.deliverOnce(envelope, "k1", 0), undefined, "new key: delivered");
    assert.deepEqual(f.core.deliverOnce(envelope, "k1", 5), { atMs: 0 }, "seen: the first acceptance's record");
    assert.equal(f.core.expireIngressKeys(0), 0, "a key accepted at 0 is kept when expiring before 0");
    assert.ok(f.core.deliverOnce(envelope, "k1", 6) !== undefined);
    assert.equal(f.core.expireIngressKeys(1), 1);
    assert.equal(f.core.deliverOnce(envelope, "k1", 7), undefined);
    const invoked = f.take("invoke").length;
    assert.equal(invoked, 1, "the first delivery is in flight; the one after expiry waits in the backlog");
  });

  it("scopes idempotency keys by target and remembers the request a key started", () => {
    const other = { typename: counter.typename, id: "b" };
    assert.equal(f.core.deliverOnce({ target: counter, argument: text("x") }, "k", 0, "req-1"), undefined);
    assert.equal(
      f.core.deliverOnce({ target: other, argument: text("y") }, "k", 1),
      undefined,
      "same key, other target",
    );
    assert.deepEqual(f.core.seenIngressKey(counter, "k"), { atMs: 0, requestId: "req-1" });
    assert.deepEqual(f.core.seenIngressKey(other, "k"), { atMs: 1 });
    assert.equal(f.core.expireIngressKeys(1), 1, "the key of the first target only");
    assert.equal(f.core.seenIngressKey(counter, "k"), undefined);
    assert.deepEqual(f.core.seenIngressKey(other, "k"), { atMs: 1 });
    assert.equal(f.core.expireIngressKeys(10), 1);
    assert.equal(f.core.seenIngressKey(other, "k"), undefined);
    assert.equal([...f.kv.scan([])].filter(({ key }) => key[0] === "idem" || key[0] === "idem-at").length, 0);
  });

  it("forgets a key that started a request no later than the request: a retry never finds a key whose answer is gone", () => {
    // The request id is minted when the request arrives (10); the key is recorded when the
    // message is delivered, later (15): a sweep between the two times must take both.
    const requestId = makeRequestId(10, "req-8");
    f.core.expectReply(requestId);
    assert.equal(f.core.deliverOnce({ target: counter, argument: text("x") }, "k", 15, requestId), undefined);
    assert.equal(f.core.expireIngressKeys(12), 1, "the key goes with its request");
    assert.equal(f.core.expireRequests(12), 1);
    assert.equal(f.core.seenIngressKey(counter, "k"), undefined);
  });

  it("stores the first message to a reply address as the request's answer; later ones and strays are dead letters", () => {
    const id = makeRequestId(10, "req-7");
    assert.equal(id, "a.req-7", "the acceptance time in base 36, then the unique part");
    const reply = { typename: "eddy.ingress/reply" as FunctionTypename, id };
    f.core.expectReply(id);
    assert.deepEqual(f.core.request(id), {});
    f.core.deliver({ target: reply, caller: counter, argument: text("first") }, 12);
    assert.deepEqual(f.take("reply"), [{ kind: "reply", requestId: id, value: text("first") }]);
    assert.deepEqual(f.core.request(id), { reply: text("first"), answeredAtMs: 12 });
    assert.deepEqual(
      [...f.kv.scan(["request"])].map((entry) => entry.key),
      [["request", 10, id]],
      "one row per request, keyed by its time",
    );
    assert.equal(f.take("invoke").length, 0, "no function serves reply addresses");

    f.core.deliver({ target: reply, caller: counter, argument: text("second") }, 13);
    f.core.deliver({ target: { ...reply, id: "nobody" }, argument: text("stray") }, 14);
    assert.equal(f.take("reply").length, 0);
    const letters = f.take("dead-letter").map((effect) => effect.letter.reason);
    assert.match(letters[0] ?? "", /second reply to request a\.req-7/);
    assert.match(letters[1] ?? "", /request nobody, which is unknown or expired/);
    assert.deepEqual(f.core.request(id)?.reply, text("first"), "the answer stays the first reply");

    assert.equal(f.core.expireRequests(10), 0, "accepted at 10: kept when expiring before 10");
    assert.equal(f.core.expireRequests(11), 1);
    assert.equal(f.core.request(id), undefined);
    assert.deepEqual([...f.kv.scan(["request"])], []);
    assert.equal(f.core.request("not-a-request-id"), undefined);
  });
});
