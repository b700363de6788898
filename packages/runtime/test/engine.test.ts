// The engine with real parts: LMDB on disk, the playground ingress and egress over HTTP,
// the greeter example's functions in-process. Restarting on the same state directory
// carries on where it stopped.
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { createEndpoint, egressMessage, message, statefulFunction, types } from "@eddy/sdk";
import { greeter, person } from "../../../examples/greeter/functions.ts";
import { type FunctionTypename, replyAddress } from "../src/core/address.ts";
import type { Catalog, FunctionSettings } from "../src/core/partition-core.ts";
import { makeRequestId } from "../src/core/records.ts";
import { type EgressConnector, Engine } from "../src/engine/engine.ts";
import { errorCode } from "../src/errors.ts";
import { InProcessInvoker } from "../src/invoker/in-process-invoker.ts";
import { PLAYGROUND_EGRESS_ID, PlaygroundEgress } from "../src/io/playground/egress.ts";
import { PlaygroundIngress } from "../src/io/playground/ingress.ts";
import { LmdbStore } from "../src/store/lmdb-store.ts";

const stateDir = mkdtempSync(join(tmpdir(), "eddy-engine-"));
after(() => rmSync(stateDir, { recursive: true, force: true }));

const settings: FunctionSettings = {
  maxBatchCount: 1000,
  maxBatchBytes: 4 << 20,
  backlogLimit: 1000,
  failurePolicy: "dead-letter",
};
const catalog: Catalog = {
  functionSettings: (typename: FunctionTypename) => (typename.startsWith("example/") ? settings : undefined),
  hasEgress: (egress) => egress === PLAYGROUND_EGRESS_ID,
};

/** An LMDB store in a fresh directory (removed after the tests) that records how many writes each commit holds. */
function storeCountingCommits(name: string): { store: LmdbStore; commitSizes: number[] } {
  const dir = mkdtempSync(join(tmpdir(), `eddy-${name}-`));
  after(() => rmSync(dir, { recursive: true, force: true }));
  const store = new LmdbStore({ path: dir });
  const commitSizes: number[] = [];
  const commit = store.commit.bind(store);
  store.commit = (writes) => {
    commitSizes.push(writes.length);
    return commit(writes);
  };
  return { store, commitSizes };
}

async function startRuntime() {
  const store = new LmdbStore({ path: stateDir });
  const egress = new PlaygroundEgress({ port: 0, host: "127.0.0.1", topics: ["greetings"] });
  const deadLetters: string[] = [];
  const engine = new Engine({
    store,
    catalog,
    invoker: new InProcessInvoker(createEndpoint([person, greeter])),
    partitionCount: 8,
    egress: [egress],
    onDeadLetter: (letter) => deadLetters.push(letter.reason),
  });
  egress.attach(engine, store);
  const ingress = new PlaygroundIngress(engine, { port: 0, host: "127.0.0.1", maxBodyBytes: 1 << 20 });
  engine.start();
  const ingressUrl = await ingress.listen();
  const egressUrl = await egress.listen();
  return {
    ingressUrl,
    egressUrl,
    deadLetters,
    async stop() {
      await ingress.close();
      await egress.close();
      await engine.stop();
    },
  };
}

async function greet(ingressUrl: string, name: string): Promise<number> {
  const response = await fetch(`${ingressUrl}example/person/${name}`, {
    method: "PUT",
    headers: { "content-type": "application/vnd.example/GreetRequest" },
    body: JSON.stringify({ name }),
  });
  await response.text();
  return response.status;
}

async function nextGreeting(egressUrl: string): Promise<string> {
  for (let tries = 0; tries < 200; tries++) {
    const response = await fetch(`${egressUrl}greetings`);
    const text = await response.text();
    if (response.status === 200) return text;
    assert.equal(response.status, 404, text);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  throw new Error("no greeting arrived");
}

describe("engine", () => {
  it("greets through the playground ingress and egress, and remembers visits across a restart", async () => {
    const first = await startRuntime();
    for (let visit = 0; visit < 3; visit++) assert.equal(await greet(first.ingressUrl, "seth"), 200);
    const greetings = [
      await nextGreeting(first.egressUrl),
      await nextGreeting(first.egressUrl),
      await nextGreeting(first.egressUrl),
    ];
    assert.deepEqual(greetings, ["Welcome seth!", "Welcome back seth!", "third time's the charm, seth!"]);
    await first.stop();

    const second = await startRuntime();
    assert.equal(await greet(second.ingressUrl, "seth"), 200);
    assert.match(await nextGreeting(second.egressUrl), /Happy to see you once again, seth! \(visit 4\)/);
    assert.deepEqual(second.deadLetters, []);
    await second.stop();
  });

  it("answers 404 for an unknown function type and keeps serving", async () => {
    const runtime = await startRuntime();
    const response = await fetch(`${runtime.ingressUrl}nope/missing/1`, { method: "POST", body: "x" });
    assert.equal(response.status, 404);
    assert.match(await response.text(), /unknown function type nope\/missing/);
    assert.equal(await greet(runtime.ingressUrl, "ann"), 200);
    assert.equal(await nextGreeting(runtime.egressUrl), "Welcome ann!");
    await runtime.stop();
  });
});

describe("engine backpressure", () => {
  it("a source waits while its target's backlog is at the limit, and continues once it drains", async () => {
    let release: () => void = () => {};
    const gate = new Promise<void>((resolve) => {
      release = resolve;
    });
    const handled: string[] = [];
    const slow = statefulFunction({
      typename: "slow/fn",
      async handle(_ctx, msg) {
        await gate;
        handled.push(new TextDecoder().decode(msg.bytes));
      },
    });
    const limited: FunctionSettings = {
      maxBatchCount: 1,
      maxBatchBytes: 1 << 20,
      backlogLimit: 2,
      failurePolicy: "dead-letter",
    };
    const dir = mkdtempSync(join(tmpdir(), "eddy-backpressure-"));
    const store = new LmdbStore({ path: dir });
    const engine = new Engine({
      store,
      catalog: {
        functionSettings: (typename) => (typename === "slow/fn" ? limited : undefined),
        hasEgress: () => false,
      },
      invoker: new InProcessInvoker(createEndpoint([slow])),
      partitionCount: 4,
    });
    engine.start();
    const accepted: string[] = [];
    const send = (text: string) =>
      engine
        .accept({
          target: { typename: "slow/fn" as FunctionTypename, id: "hot" },
          argument: { typename: "t/text", hasValue: true, value: new TextEncoder().encode(text) },
        })
        .then(() => accepted.push(text));
    // 1 goes in flight, 2 and 3 fill the backlog to its limit, 4 to 8 must wait.
    const texts = ["1", "2", "3", "4", "5", "6", "7", "8"];
    const sends = texts.map((text) => send(text));
    await new Promise((resolve) => setTimeout(resolve, 200));
    assert.deepEqual(accepted.sort(), ["1", "2", "3"]);
    release();
    await Promise.all(sends);
    while (handled.length < texts.length) await new Promise((resolve) => setTimeout(resolve, 5));
    assert.deepEqual(accepted.sort(), texts);
    assert.deepEqual(handled, texts, "order kept per address");
    await engine.stop();
    rmSync(dir, { recursive: true, force: true });
  });
});

describe("engine flow control", () => {
  it("a flood enters commit by commit: no commit gathers much more than the bound, and every message is processed once", async () => {
    const counted = new Map<string, number>();
    const counter = statefulFunction({
      typename: "flood/counter",
      handle(ctx) {
        counted.set(ctx.self.id, (counted.get(ctx.self.id) ?? 0) + 1);
      },
    });
    const { store, commitSizes } = storeCountingCommits("flow");
    const engine = new Engine({
      store,
      catalog: {
        functionSettings: (typename) => (typename === "flood/counter" ? settings : undefined),
        hasEgress: () => false,
      },
      invoker: new InProcessInvoker(createEndpoint([counter])),
      partitionCount: 4,
      maxPendingWrites: 50,
    });
    engine.start();
    const messages = 2000;
    const accepted = await Promise.all(
      Array.from({ length: messages }, (_, index) =>
        engine.accept({
          target: { typename: "flood/counter" as FunctionTypename, id: String(index % 500) },
          argument: { typename: "t/tick", hasValue: true, value: new Uint8Array(0) },
        }),
      ),
    );
    assert.ok(accepted.every((result) => result.ok));
    while ([...counted.values()].reduce((sum, n) => sum + n, 0) < messages || engine.invocationsInFlight > 0)
      await new Promise((resolve) => setTimeout(resolve, 5));
    await engine.stop();
    assert.equal(counted.size, 500);
    assert.ok(
      [...counted.values()].every((n) => n === 4),
      "each address got its 4 messages once",
    );
    assert.ok(commitSizes.length >= messages / 50, `the flood took ${commitSizes.length} commits`);
    // An ingress message writes a row or two, and the replies applied meanwhile a few more: the bound is soft.
    assert.ok(Math.max(...commitSizes) < 50 * 8, `largest commit: ${Math.max(...commitSizes)} writes`);
  });
});

describe("engine clock", () => {
  it("a delayed message waits for the clock, and is sent once a jump of the clock passes its time", async () => {
    const DAY_MS = 24 * 60 * 60 * 1000;
    const arrived: string[] = [];
    const reminder = statefulFunction({
      typename: "clock/reminder",
      handle(ctx, incoming) {
        const text = incoming.as(types.string);
        if (text === "set") ctx.sendAfter(30 * DAY_MS, message(ctx.self, "due"));
        else arrived.push(text);
      },
    });
    const dir = mkdtempSync(join(tmpdir(), "eddy-clock-"));
    after(() => rmSync(dir, { recursive: true, force: true }));
    let now = Date.UTC(2026, 0, 1);
    const engine = new Engine({
      store: new LmdbStore({ path: dir }),
      catalog: {
        functionSettings: (typename) => (typename === "clock/reminder" ? settings : undefined),
        hasEgress: () => false,
      },
      invoker: new InProcessInvoker(createEndpoint([reminder])),
      partitionCount: 2,
      clock: () => now,
    });
    engine.start();
    const accepted = await engine.accept({
      target: { typename: "clock/reminder" as FunctionTypename, id: "a" },
      argument: { typename: types.string.typename, hasValue: true, value: types.string.serialize("set") },
    });
    assert.ok(accepted.ok);
    while (engine.invocationsInFlight > 0) await new Promise((resolve) => setTimeout(resolve, 5));
    now += 30 * DAY_MS - 1;
    engine.clockMoved();
    await new Promise((resolve) => setTimeout(resolve, 100));
    assert.deepEqual(arrived, [], "a millisecond early, nothing is due");
    now += 1;
    engine.clockMoved();
    for (let tries = 0; tries < 200 && arrived.length === 0; tries++) {
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
    await engine.stop();
    assert.deepEqual(arrived, ["due"]);
  });
});

describe("engine fail-stop", () => {
  it("a commit the store refuses stops the engine with its cause, acknowledges nothing, and stop() still closes", async () => {
    const seen: string[] = [];
    const counter = statefulFunction({
      typename: "failing/counter",
      handle(ctx) {
        seen.push(ctx.self.id);
      },
    });
    const dir = mkdtempSync(join(tmpdir(), "eddy-failstop-"));
    after(() => rmSync(dir, { recursive: true, force: true }));
    const store = new LmdbStore({ path: dir });
    // The store's disk fills up: every commit from now on fails.
    let failing = false;
    const commit = store.commit.bind(store);
    store.commit = (writes) =>
      failing ? Promise.reject(new Error(`state directory ${dir}: no space left on device (ENOSPC)`)) : commit(writes);
    const stops: string[] = [];
    const engine = new Engine({
      store,
      catalog: {
        functionSettings: (typename) => (typename === "failing/counter" ? settings : undefined),
        hasEgress: () => false,
      },
      invoker: new InProcessInvoker(createEndpoint([counter])),
      partitionCount: 4,
      onStop: (reason) => stops.push(reason),
    });
    engine.start();
    const envelope = (id: string) => ({
      target: { typename: "failing/counter" as FunctionTypename, id },
      argument: { typename: "t/text", hasValue: true, value: new Uint8Array([1]) },
    });
    assert.equal((await engine.accept(envelope("before"))).ok, true, "a commit before the disk fills");
    failing = true;
    // Waiting for the commit that fails: a message, and a source's records with its position.
    const waiting = engine.accept(envelope("after"));
    const admitted = await engine.admitFromSource([envelope("from-source")], (transaction) =>
      transaction.put(["position"], 7),
    );
    assert.equal(admitted.ok, true);
    const sourceDurable = admitted.ok ? admitted.durable.then(() => "durable", errorCode) : undefined;
    for (let tries = 0; tries < 200 && stops.length === 0; tries++)
      await new Promise((resume) => setTimeout(resume, 5));
    assert.equal(stops.length, 1, "the engine asks to stop, once");
    assert.match(stops[0] as string, /commit failed: .*no space left on device \(ENOSPC\)/);
    // What the failed commit held is never acknowledged, and whoever waits for it hears that
    // the runtime stops (a wait without an end held up the runtime's stop, which closes the
    // sources first).
    const answered = await Promise.race([waiting, sleep(2_000, "still waiting", { ref: false })]);
    assert.ok(typeof answered !== "string", "the message's caller is answered");
    assert.ok(!answered.ok && answered.code === "stopping", JSON.stringify(answered));
    assert.match(answered.message, /the runtime is stopping: commit failed/);
    assert.equal(await Promise.race([sourceDurable, sleep(2_000, "still waiting", { ref: false })]), "stopping");
    // Nothing more is taken in; a connector's own write after the failure hears it at once.
    assert.equal((await engine.accept(envelope("later"))).ok, false);
    const written = engine.transact((transaction) => transaction.put(["late"], 1)).then(() => "durable", errorCode);
    assert.equal(await Promise.race([written, sleep(2_000, "still waiting", { ref: false })]), "stopping");
    await engine.stop();
  });
});

describe("engine retention sweep", () => {
  it("forgets expired idempotency keys a bounded step per commit, and every one of them", async () => {
    let handled = 0;
    const counter = statefulFunction({
      typename: "sweep/counter",
      handle() {
        handled++;
      },
    });
    const { store, commitSizes } = storeCountingCommits("sweep");
    let now = 1_000_000;
    const retentionMs = 1_000;
    const engine = new Engine({
      store,
      catalog: {
        functionSettings: (typename) => (typename === "sweep/counter" ? settings : undefined),
        hasEgress: () => false,
      },
      invoker: new InProcessInvoker(createEndpoint([counter])),
      partitionCount: 4,
      clock: () => now,
      idempotencyRetentionMs: retentionMs,
    });
    engine.start();
    const keys = 3_000;
    const send = (index: number) =>
      engine.accept(
        {
          target: { typename: "sweep/counter" as FunctionTypename, id: `i${index % 50}` },
          argument: { typename: "t/text", hasValue: true, value: new Uint8Array([1]) },
        },
        { idempotencyKey: `key-${index}` },
      );
    await Promise.all(Array.from({ length: keys }, (_, index) => send(index)));
    while (handled < keys) await new Promise((resume) => setTimeout(resume, 5));
    // Every key expires at once; the sweeper (every retention/10 of real time) finds them.
    now += 2 * retentionMs;
    engine.clockMoved();
    commitSizes.length = 0;
    const deadline = Date.now() + 10_000;
    // Two deletes per key: its record and its entry in the by-time index.
    while (commitSizes.reduce((sum, size) => sum + size, 0) < 2 * keys && Date.now() < deadline) {
      await new Promise((resume) => setTimeout(resume, 20));
    }
    assert.equal(
      commitSizes.reduce((sum, size) => sum + size, 0),
      2 * keys,
      "every expired key is deleted",
    );
    assert.ok(Math.max(...commitSizes) <= 1_100, `one commit held ${Math.max(...commitSizes)} deletes`);
    // Forgotten: the same keys are taken as new messages.
    await Promise.all(Array.from({ length: keys }, (_, index) => send(index)));
    while (handled < 2 * keys) await new Promise((resume) => setTimeout(resume, 5));
    await engine.stop();
  });
});

describe("engine timers after downtime", () => {
  it("fires a burst of due delayed messages a bounded step per commit, and every one of them", async () => {
    const DAY_MS = 24 * 60 * 60 * 1000;
    const burst = 3_000;
    let delivered = 0;
    const setter = statefulFunction({
      typename: "burst/setter",
      handle(ctx) {
        for (let index = 0; index < burst; index++) {
          ctx.sendAfter(DAY_MS, message({ typename: "burst/target", id: `t${index % 100}` }, index));
        }
      },
    });
    const target = statefulFunction({
      typename: "burst/target",
      handle() {
        delivered++;
      },
    });
    const { store, commitSizes } = storeCountingCommits("burst");
    let now = Date.UTC(2026, 0, 1);
    const engine = new Engine({
      store,
      catalog: {
        functionSettings: (typename) => (typename.startsWith("burst/") ? settings : undefined),
        hasEgress: () => false,
      },
      invoker: new InProcessInvoker(createEndpoint([setter, target])),
      partitionCount: 4,
      clock: () => now,
    });
    engine.start();
    const accepted = await engine.accept({
      target: { typename: "burst/setter" as FunctionTypename, id: "s" },
      argument: { typename: types.string.typename, hasValue: true, value: types.string.serialize("set") },
    });
    assert.ok(accepted.ok);
    while (engine.invocationsInFlight > 0) await new Promise((resume) => setTimeout(resume, 5));
    await new Promise((resume) => setTimeout(resume, 50));
    // The runtime was down for the day: every delayed message is due at once.
    commitSizes.length = 0;
    now += DAY_MS;
    engine.clockMoved();
    for (let tries = 0; tries < 2_000 && delivered < burst; tries++)
      await new Promise((resume) => setTimeout(resume, 5));
    await engine.stop();
    assert.equal(delivered, burst, "every due message is delivered");
    assert.ok(Math.max(...commitSizes) <= 2_500, `one commit held ${Math.max(...commitSizes)} writes`);
  });
});

describe("engine refused commits", () => {
  it("undoes a refused commit in place: callers hear commit-aborted, replies to dropped batches are ignored, and every message counts once", async () => {
    // Counts messages; a "get" answers with the count. It awaits a little, so that replies
    // to batches sent before a reset arrive after it.
    const counter = statefulFunction({
      typename: "refused/counter",
      state: { count: types.int },
      async handle(ctx, msg) {
        await new Promise((resume) => setTimeout(resume, 1));
        if (msg.as(types.string) === "get") {
          ctx.reply(ctx.storage.count ?? 0, types.int);
          return;
        }
        ctx.storage.count = (ctx.storage.count ?? 0) + 1;
      },
    });
    const { store } = storeCountingCommits("refused");
    // Refuses two commits in every five, as a cluster refuses them when the group rebalances:
    // two in a row, so that the cores rebuilt after the first are dropped before their new
    // epoch is committed, and the next ones reuse its batch ids.
    let commitsSeen = 0;
    let refusing = true;
    const engine = new Engine({
      store,
      commitTarget: {
        async commit(batch) {
          commitsSeen++;
          if (refusing && commitsSeen % 5 >= 3) {
            return { ok: false, code: "commit-aborted", message: "the group rebalanced", retriable: true };
          }
          await store.commit(batch.writes);
          return undefined;
        },
      },
      catalog: {
        functionSettings: (typename) => (typename === "refused/counter" ? settings : undefined),
        hasEgress: () => false,
      },
      invoker: new InProcessInvoker(createEndpoint([counter])),
      partitionCount: 4,
    });
    engine.start();
    const envelope = (id: string, text: string) => ({
      target: { typename: "refused/counter" as FunctionTypename, id },
      argument: { typename: "io.statefun.types/string", hasValue: true, value: types.string.serialize(text) },
    });
    // Each message is sent until it is acknowledged, with its idempotency key, as a client does.
    let aborted = 0;
    const sendUntilTaken = async (id: string, key: string) => {
      for (let attempt = 0; attempt < 100; attempt++) {
        const result = await engine.accept(envelope(id, "inc"), { idempotencyKey: key });
        if (result.ok) return;
        assert.equal(result.code, "commit-aborted");
        aborted++;
      }
      assert.fail(`message ${key} was never taken`);
    };
    const ids = ["a", "b", "c", "d", "e"];
    // In waves, so that messages are in commits of their own while batches are in flight.
    for (let wave = 0; wave < 12; wave++) {
      await Promise.all(ids.map((id) => sendUntilTaken(id, `m-${wave}-${id}`)));
    }
    // Let the in-flight work finish, with refusals still coming.
    for (let tries = 0; tries < 400 && engine.invocationsInFlight > 0; tries++) {
      await new Promise((resume) => setTimeout(resume, 5));
    }
    refusing = false;
    for (let tries = 0; tries < 400 && engine.invocationsInFlight > 0; tries++) {
      await new Promise((resume) => setTimeout(resume, 5));
    }
    assert.ok(engine.commitsRefused > 0 && aborted > 0, "commits were refused and callers heard of it");
    for (const id of ids) {
      const accepted = await engine.accept(envelope(id, "get"), { expectReply: true });
      assert.ok(accepted.ok && accepted.requestId !== undefined);
      const reply = await engine.awaitReply(accepted.requestId, 5_000);
      assert.equal(reply.state, "answered");
      if (reply.state === "answered") assert.equal(types.int.deserialize(reply.value.value), 12, `count of ${id}`);
    }
    await engine.stop();
  });
});

describe("engine egress records published with their commit", () => {
  it("publishes each record exactly once across refused commits; a settlement from before a reset publishes nothing", async () => {
    // Each message sends one egress record naming it.
    const sender = statefulFunction({
      typename: "published/sender",
      async handle(ctx, msg) {
        await new Promise((resume) => setTimeout(resume, 1));
        ctx.send(egressMessage("published/out", msg.as(types.string), types.string));
      },
    });
    const { store } = storeCountingCommits("published");
    // What committed commits published, in order.
    const published: string[] = [];
    let commitsSeen = 0;
    let refusing = true;
    // The egress settles half of what it is handed at once and half a little later, so that
    // some settlements come after the reset that handed their entry out again.
    let late = 0;
    let handedOut = 0;
    const egress: EgressConnector = {
      egressIds: ["published/out"],
      deliver(entry, _transaction, settle) {
        const record = {
          topic: "out",
          partition: 0,
          key: undefined,
          value: Buffer.from(types.string.deserialize(entry.value.value ?? new Uint8Array())),
        };
        if (++handedOut % 2 === 0) settle.deliveredInCommit(record);
        else {
          late++;
          setTimeout(() => settle.deliveredInCommit(record), 3);
        }
      },
    };
    const engine = new Engine({
      store,
      commitTarget: {
        async commit(batch) {
          commitsSeen++;
          // A commit takes a while, as a Kafka transaction does: settlements arrive meanwhile.
          await new Promise((resume) => setTimeout(resume, 2));
          if (refusing && commitsSeen % 3 === 2) {
            return { ok: false, code: "commit-aborted", message: "the group rebalanced", retriable: true };
          }
          await store.commit(batch.writes);
          for (const record of batch.published) published.push(record.value.toString());
          return undefined;
        },
      },
      catalog: {
        functionSettings: (typename) => (typename === "published/sender" ? settings : undefined),
        hasEgress: (id) => id === "published/out",
      },
      invoker: new InProcessInvoker(createEndpoint([sender])),
      partitionCount: 4,
      egress: [egress],
    });
    engine.start();
    const sent: string[] = [];
    for (let wave = 0; wave < 25; wave++) {
      await Promise.all(
        ["a", "b", "c", "d"].map(async (id) => {
          const text = `${wave}-${id}`;
          sent.push(text);
          for (let attempt = 0; attempt < 100; attempt++) {
            const result = await engine.accept(
              {
                target: { typename: "published/sender" as FunctionTypename, id },
                argument: { typename: "io.statefun.types/string", hasValue: true, value: types.string.serialize(text) },
              },
              { idempotencyKey: text },
            );
            if (result.ok) return;
            assert.equal(result.code, "commit-aborted");
          }
          assert.fail(`message ${text} was never taken`);
        }),
      );
    }
    for (let tries = 0; tries < 400 && published.length < sent.length; tries++) {
      await new Promise((resume) => setTimeout(resume, 5));
    }
    refusing = false;
    for (let tries = 0; tries < 400 && published.length < sent.length; tries++) {
      await new Promise((resume) => setTimeout(resume, 5));
    }
    assert.ok(
      engine.commitsRefused > 0 && late > 0,
      `commits were refused (${engine.commitsRefused}), and some settlements came late (${late}); published ${published.length}`,
    );
    assert.deepEqual([...published].sort(), [...sent].sort(), "every record published once");
    await engine.stop();
  });
});

describe("engine reply lookups in a cluster", () => {
  it("a request whose partition is not run here is 'elsewhere', never 'unknown' (which would tell its client it was not taken)", async () => {
    const { store } = storeCountingCommits("lookups");
    const engine = new Engine({
      store,
      commitTarget: { commit: async (batch) => store.commit(batch.writes).then(() => undefined) },
      catalog,
      invoker: new InProcessInvoker(createEndpoint([person, greeter])),
      partitionCount: 4,
      ownedPartitions: [0],
    });
    engine.start();
    const ids = Array.from({ length: 40 }, (_, index) => makeRequestId(Date.now(), `r-${index}`));
    const here = ids.filter((id) => engine.partitionOf(replyAddress(id)) === 0);
    const there = ids.filter((id) => engine.partitionOf(replyAddress(id)) !== 0);
    assert.ok(here.length > 0 && there.length > 0);
    for (const id of here) assert.equal(engine.lookupReply(id).state, "unknown");
    for (const id of there) assert.equal((await engine.awaitReply(id, 1_000)).state, "elsewhere");
    await engine.stop();
  });
});
