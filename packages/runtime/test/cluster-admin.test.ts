// The admin API of a cluster answers for the whole cluster (observe/cluster-admin.ts and
// cluster-merge.ts): the merges add counts up, keep the worst latency and the latest event, and
// page through lists so every item is seen exactly once; a call for one address goes to the
// worker that runs it; lists and pauses go to every worker, and say who did not answer or refuse
// when one did not act. The cluster here is three real engines over in-memory stores, each a
// worker whose admin API asks the others through in-process peers: no Kafka, no network.
import assert from "node:assert/strict";
import { after, before, beforeEach, describe, it } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { createEndpoint, statefulFunction, types } from "@eddy/sdk";
import type { FunctionTypename } from "../src/core/address.ts";
import { MemoryKV } from "../src/core/kv.ts";
import { applyWrites, type PendingWrite } from "../src/core/overlay-kv.ts";
import type { FunctionSettings } from "../src/core/partition-core.ts";
import { deadLetterId, parseDeadLetterId } from "../src/core/records.ts";
import { type CommitTarget, type DurableStore, Engine } from "../src/engine/engine.ts";
import { InProcessInvoker } from "../src/invoker/in-process-invoker.ts";
import {
  type AdminCall,
  AdminRefusal,
  type AdminReply,
  type AdminRuntime,
  type HttpMethod,
  matchRoute,
} from "../src/observe/admin-api.ts";
import { type AdminPeer, type AdminRequest, answerForCluster, type PeerAnswer } from "../src/observe/cluster-admin.ts";
import {
  mergeDeadLetterPages,
  mergeFunctionTypeLists,
  mergeFunctionTypes,
  mergeOverviews,
  mergeStateIdPages,
  mergeStats,
} from "../src/observe/cluster-merge.ts";
import { LiveStats } from "../src/observe/live-stats.ts";

/** A JSON answer, read field by field: a wrong field reads undefined and fails its assertion. */
// biome-ignore lint/suspicious/noExplicitAny: see above
type Answer = Record<string, any>;

/** A reply of the admin API, its body read as an Answer. */
interface Reply {
  readonly status: number;
  readonly body: Answer;
}

/** JavaScript's string order (by UTF-16 code unit), the order every worker lists ids in. */
const codeUnitOrder = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);

// ---- the merges ----

describe("merging the workers' answers", () => {
  it("adds up stats, keeps each type's worst p50 and p99 separately, and is paused if any worker is", () => {
    const merged = mergeStats([
      {
        nowMs: 5_000,
        functionTypes: {
          "shop/cart": {
            invocations: 10,
            failures: 1,
            deadLetters: 1,
            backlog: 2,
            inFlight: 1,
            paused: false,
            latencyMs: { p50: 4, p99: 90 },
          },
          "shop/idle": { invocations: 0, failures: 0, deadLetters: 0, backlog: 0, inFlight: 0, latencyMs: null },
        },
        totals: {
          invocations: 10,
          failures: 1,
          ingressRequests: 7,
          egressRecords: 3,
          commits: 20,
          commitLatencyMs: { p50: 2, p99: 5 },
          kafkaLagMessages: 4,
        },
      },
      {
        nowMs: 5_001,
        functionTypes: {
          "shop/cart": {
            invocations: 5,
            failures: 2,
            deadLetters: 0,
            backlog: 3,
            inFlight: 0,
            paused: true,
            latencyMs: { p50: 9, p99: 40 },
          },
          "shop/audit": { invocations: 1, failures: 0, deadLetters: 0, backlog: 0, inFlight: 0, latencyMs: null },
        },
        totals: {
          invocations: 6,
          failures: 2,
          ingressRequests: 1,
          egressRecords: 0,
          commits: 8,
          commitLatencyMs: null,
          kafkaLagMessages: 6,
        },
      },
    ]);
    assert.equal(merged.nowMs, 5_000, "this worker's clock");
    assert.deepEqual(Object.keys(merged.functionTypes as object), ["shop/audit", "shop/cart", "shop/idle"]);
    assert.deepEqual((merged.functionTypes as Answer)["shop/cart"], {
      invocations: 15,
      failures: 3,
      deadLetters: 1,
      backlog: 5,
      inFlight: 1,
      paused: true,
      // p50 from the second worker, p99 from the first: each is the worst of its own.
      latencyMs: { p50: 9, p99: 90 },
    });
    assert.equal((merged.functionTypes as Answer)["shop/idle"].latencyMs, null, "no worker measured any");
    assert.equal((merged.functionTypes as Answer)["shop/audit"].paused, false);
    assert.deepEqual(merged.totals, {
      invocations: 16,
      failures: 3,
      ingressRequests: 8,
      egressRecords: 3,
      commits: 28,
      commitLatencyMs: { p50: 2, p99: 5 },
      kafkaLagMessages: 10,
    });
  });

  it("adds up the overview's levels, starts at the earliest start, and lists each worker's share", () => {
    const merged = mergeOverviews([
      {
        mode: "cluster",
        workerId: "w1",
        startedAtMs: 2_000,
        partitions: 6,
        ownedPartitions: 2,
        stateBytesOnDisk: 100,
        delayedMessagesPending: 1,
      },
      {
        mode: "cluster",
        workerId: "w2",
        startedAtMs: 1_000,
        partitions: 6,
        ownedPartitions: 4,
        stateBytesOnDisk: 50,
        delayedMessagesPending: 0,
      },
    ]);
    assert.equal(merged.mode, "cluster");
    assert.equal(merged.partitions, 6, "the count, not a sum");
    assert.equal(merged.startedAtMs, 1_000);
    assert.equal(merged.ownedPartitions, 6);
    assert.equal(merged.stateBytesOnDisk, 150);
    assert.equal(merged.delayedMessagesPending, 1);
    assert.deepEqual(merged.workers, [
      { workerId: "w1", startedAtMs: 2_000, ownedPartitions: 2, stateBytesOnDisk: 100, delayedMessagesPending: 1 },
      { workerId: "w2", startedAtMs: 1_000, ownedPartitions: 4, stateBytesOnDisk: 50, delayedMessagesPending: 0 },
    ]);
  });

  /** One worker's view of a function type (admin-api.ts functionTypeBody), with what a test sets. */
  const typeOnWorker = (health: Answer, counts: Answer = {}): Answer => ({
    typename: "shop/cart",
    endpoint: { kind: "in-process" },
    paused: false,
    backlog: 0,
    inFlight: 0,
    invocations: 0,
    failures: 0,
    deadLetters: 0,
    ...counts,
    health: { status: "?", lastSuccessAtMs: null, lastFailureAtMs: null, lastError: null, latencyMs: null, ...health },
  });

  it("takes the latest success and failure of a type, the error of the latest failure, and says failing from those", () => {
    const merged = mergeFunctionTypes([
      typeOnWorker(
        { lastSuccessAtMs: 100, lastFailureAtMs: 150, lastError: "older error", latencyMs: { p50: 1, p99: 30 } },
        { invocations: 3, failures: 1, backlog: 1 },
      ),
      typeOnWorker(
        { lastSuccessAtMs: 120, lastFailureAtMs: 200, lastError: "the latest error", latencyMs: { p50: 2, p99: 10 } },
        { invocations: 4, failures: 2, deadLetters: 1, inFlight: 1, paused: true },
      ),
      typeOnWorker({}),
    ]) as Answer;
    assert.equal(merged.typename, "shop/cart");
    assert.deepEqual(merged.endpoint, { kind: "in-process" });
    assert.equal(merged.paused, true);
    assert.deepEqual(
      [merged.invocations, merged.failures, merged.deadLetters, merged.backlog, merged.inFlight],
      [7, 3, 1, 1, 1],
    );
    assert.deepEqual(merged.health, {
      status: "failing",
      lastSuccessAtMs: 120,
      lastFailureAtMs: 200,
      lastError: "the latest error",
      latencyMs: { p50: 2, p99: 30 },
    });
  });

  it("says ok when a worker's success came after every failure, even one worker's own failing", () => {
    const merged = mergeFunctionTypes([
      typeOnWorker({ lastFailureAtMs: 300, lastError: "boom" }),
      typeOnWorker({ lastSuccessAtMs: 400 }),
    ]) as Answer;
    assert.equal(merged.health.status, "ok");
    assert.equal(merged.health.lastError, "boom", "the last error is kept even once it has passed");
    const idle = mergeFunctionTypes([typeOnWorker({}), typeOnWorker({})]) as Answer;
    assert.equal(idle.health.status, "idle");
    assert.equal(idle.health.latencyMs, null);
    assert.equal(idle.paused, false);
  });

  it("merges function type lists by name, in name order, a type only some workers know included", () => {
    const merged = mergeFunctionTypeLists([
      { functionTypes: [typeOnWorker({ lastSuccessAtMs: 1 }, { invocations: 2 })] },
      {
        functionTypes: [
          { ...typeOnWorker({}), typename: "shop/audit" },
          typeOnWorker({ lastSuccessAtMs: 5 }, { invocations: 3 }),
        ],
      },
    ]) as Answer;
    assert.deepEqual(
      merged.functionTypes.map((type: Answer) => [type.typename, type.invocations, type.health.lastSuccessAtMs]),
      [
        ["shop/audit", 0, null],
        ["shop/cart", 5, 5],
      ],
    );
  });
});

// ---- paging over merged pages ----

/** A worker's page of ids after `after`, as the listStateIds handler makes it: one more is read to know of a next. */
function stateIdPage(ids: readonly string[], limit: number, after?: string) {
  const rest = [...ids].sort(codeUnitOrder).filter((id) => after === undefined || id > after);
  const page = rest.slice(0, limit);
  return { ids: page, next: rest.length > limit ? (page.at(-1) ?? null) : null };
}

interface Letter {
  readonly id: string;
  readonly partition: number;
  readonly atMs: number;
}

const letter = (partition: number, count: number, atMs: number): Letter => ({
  id: `${partition}-0-${count}`,
  partition,
  atMs,
});

/** The listing's order: time, partition, sequence number. */
function letterOrder(a: { atMs: number; id: string }, b: { atMs: number; id: string }): number {
  const keyA = parseDeadLetterId(a.id) as { partition: number; seq: number };
  const keyB = parseDeadLetterId(b.id) as { partition: number; seq: number };
  return a.atMs - b.atMs || keyA.partition - keyB.partition || keyA.seq - keyB.seq;
}

/** A worker's page of letters after a `${atMs}~${id}` cursor, as the listDeadLetters handler makes it. */
function letterPage(letters: readonly Letter[], limit: number, after?: string) {
  const cursor = after === undefined ? undefined : { atMs: Number(after.split("~")[0]), id: after.split("~")[1] ?? "" };
  const rest = [...letters].sort(letterOrder).filter((one) => cursor === undefined || letterOrder(one, cursor) > 0);
  const page = rest.slice(0, limit);
  const last = page.at(-1);
  return { deadLetters: page, next: rest.length > limit && last !== undefined ? `${last.atMs}~${last.id}` : null };
}

/** Follows `next` from the first page to the last (bounded), collecting what each page holds. */
function pageThrough<T>(page: (after: string | undefined) => { items: readonly T[]; next: string | null }): T[] {
  const seen: T[] = [];
  let after: string | undefined;
  for (let pages = 0; pages < 100; pages++) {
    const { items, next } = page(after);
    seen.push(...items);
    if (next === null) return seen;
    after = next;
  }
  assert.fail("100 pages and still a next: the cursor does not move on");
}

describe("merging pages of a list", () => {
  it("merges state ids in JavaScript string order, cut to the limit, the next cursor the page's last", () => {
    const merged = mergeStateIdPages([stateIdPage(["a9", "b"], 3), stateIdPage(["Z", "a10", "é"], 3)], 3);
    // Upper case before lower, "a10" before "a9", "é" after "z": by code unit, as the workers sort.
    assert.deepEqual(merged, { ids: ["Z", "a10", "a9"], next: "a9" });
    const all = mergeStateIdPages([stateIdPage(["a9", "b"], 10), stateIdPage(["Z"], 10)], 10);
    assert.deepEqual(all, { ids: ["Z", "a9", "b"], next: null }, "nothing more on any worker: no next");
  });

  it("gives a next cursor when a worker has more, even if the merged page is not full", () => {
    // Only the first worker answered (the others were down); it has more than the page.
    const merged = mergeStateIdPages([{ ids: ["a", "b"], next: "b" }], 2);
    assert.deepEqual(merged, { ids: ["a", "b"], next: "b" });
  });

  it("paging through state ids of three workers visits every id exactly once, whatever the limit", () => {
    // Uneven: one worker holds every low id, so its page alone fills the merged one.
    const workers = [
      ["a", "b", "c", "d", "e", "f"],
      ["ba", "x", "y"],
      ["A", "e1", "z", "zz"],
    ];
    const everyId = workers.flat().sort(codeUnitOrder);
    for (const limit of [1, 2, 3, 5, 13, 100]) {
      const seen = pageThrough((after) => {
        const merged = mergeStateIdPages(
          workers.map((ids) => stateIdPage(ids, limit, after)),
          limit,
        ) as { ids: string[]; next: string | null };
        assert.ok(merged.ids.length <= limit, `a page of at most ${limit}`);
        return { items: merged.ids, next: merged.next };
      });
      assert.deepEqual(seen, everyId, `limit ${limit}`);
    }
  });

  it("merges dead letters by time, then partition, then sequence, with a time~id cursor", () => {
    const merged = mergeDeadLetterPages(
      [
        letterPage([letter(4, 1, 1_000), letter(4, 2, 1_002)], 3),
        letterPage([letter(0, 7, 1_000), letter(0, 3, 1_002), letter(1, 1, 1_001)], 3),
      ],
      3,
      parseDeadLetterId,
    ) as Answer;
    // At 1_000 partition 0 before 4; then 1_001.
    assert.deepEqual(
      merged.deadLetters.map((one: Letter) => one.id),
      ["0-0-7", "4-0-1", "1-0-1"],
    );
    assert.equal(merged.next, "1001~1-0-1");
    const last = mergeDeadLetterPages([letterPage([letter(2, 1, 5)], 10)], 10, parseDeadLetterId);
    assert.equal(last.next, null);
  });

  it("paging through dead letters of three workers visits every letter exactly once, ties in time included", () => {
    const workers = [
      [letter(0, 1, 10), letter(0, 2, 10), letter(1, 1, 12), letter(0, 3, 15)],
      [letter(2, 1, 10), letter(3, 1, 11), letter(2, 2, 12)],
      [letter(4, 1, 9), letter(5, 1, 12), letter(4, 2, 12), letter(5, 2, 20)],
    ];
    const everyLetter = workers
      .flat()
      .sort(letterOrder)
      .map((one) => one.id);
    for (const limit of [1, 2, 3, 4, 50]) {
      const seen = pageThrough((after) => {
        const merged = mergeDeadLetterPages(
          workers.map((letters) => letterPage(letters, limit, after)),
          limit,
          parseDeadLetterId,
        ) as { deadLetters: Letter[]; next: string | null };
        return { items: merged.deadLetters.map((one) => one.id), next: merged.next };
      });
      assert.deepEqual(seen, everyLetter, `limit ${limit}`);
    }
  });
});

// ---- a cluster of three workers ----

const PARTITIONS = 6;
const TYPENAME = "admin/counter" as FunctionTypename;
const COUNTER = "/v1/state/admin/counter";
/** Which partitions each worker runs. */
const ASSIGNMENT: Readonly<Record<string, readonly number[]>> = { w1: [0, 1], w2: [2, 3], w3: [4, 5] };

const settings: FunctionSettings = {
  maxBatchCount: 100,
  maxBatchBytes: 1 << 20,
  backlogLimit: 100,
  failurePolicy: "dead-letter",
};

/** Ids whose messages fail (each then becomes a dead letter). */
const failing = new Set<string>();

const counter = statefulFunction({
  typename: TYPENAME,
  state: { count: types.int },
  handle(ctx) {
    if (failing.has(ctx.self.id)) throw new Error(`${ctx.self.id} fails on purpose`);
    ctx.storage.count = (ctx.storage.count ?? 0) + 1;
  },
});

/** An in-memory store that commits by applying the writes: the engine needs no disk here. */
function memoryStore(): DurableStore {
  const kv = new MemoryKV() as MemoryKV & DurableStore;
  kv.commit = async (writes: readonly PendingWrite[]) => applyWrites(kv, writes);
  kv.close = async () => undefined;
  return kv;
}

interface Worker {
  readonly engine: Engine;
  readonly runtime: AdminRuntime;
}

/** What one worker sent another's admin listener. */
interface Sent {
  readonly from: string;
  readonly to: string;
  readonly request: AdminRequest;
}

/** A copy as JSON carries it: what a worker sends another shares no object with what it has. */
const overTheWire = <T>(value: T): T => (value === undefined ? value : JSON.parse(JSON.stringify(value)));

/**
 * Three workers, each a real engine running its partitions, whose admin APIs ask each other
 * through in-process peers. A test changes `owners` (a rebalance), `down` (a worker that does
 * not answer), `refusingCommits` (a worker whose next commit the group refuses, as after a
 * rebalance) and reads `sent`; `reset` puts them back.
 */
function startCluster(clock: () => number) {
  const workers = new Map<string, Worker>();
  // As a worker announces it (cluster-settings.ts): no trailing slash, the path is appended.
  const peerOf = (workerId: string): AdminPeer => ({ workerId, adminUrl: `http://${workerId}.test:8093` });
  const assignment = (): (AdminPeer | undefined)[] => {
    const owners: (AdminPeer | undefined)[] = new Array(PARTITIONS).fill(undefined);
    for (const [workerId, partitions] of Object.entries(ASSIGNMENT)) {
      for (const partition of partitions) owners[partition] = peerOf(workerId);
    }
    return owners;
  };
  const cluster = {
    workers,
    owners: assignment(),
    down: new Set<string>(),
    refusingCommits: new Set<string>(),
    sent: [] as Sent[],
    reset() {
      cluster.owners = assignment();
      cluster.down.clear();
      cluster.refusingCommits.clear();
      cluster.sent.length = 0;
    },
    /** The worker `workerId` asked from outside the cluster (an operator, the UI). */
    ask(workerId: string, method: HttpMethod, pathAndQuery: string, body?: unknown): Promise<Reply> {
      return answerAs(workerOf(workerId), { method, pathAndQuery, ...(body === undefined ? {} : { body }) }, false);
    },
    /** The worker `workerId` asked by another: it answers alone, as for ADMIN_FORWARDED_HEADER. */
    askForwarded(workerId: string, method: HttpMethod, pathAndQuery: string): Promise<Reply> {
      return answerAs(workerOf(workerId), { method, pathAndQuery }, true);
    },
    /** The worker that runs `partition` as the test set it up. */
    ownerOf(partition: number): Worker {
      const [workerId] = Object.entries(ASSIGNMENT).find(([, partitions]) => partitions.includes(partition)) ?? [];
      return workerOf(workerId ?? "");
    },
    async stop() {
      for (const worker of workers.values()) await worker.engine.stop();
    },
  };
  const workerOf = (workerId: string): Worker => {
    const worker = workers.get(workerId);
    assert.ok(worker !== undefined, `no worker ${workerId}`);
    return worker;
  };
  for (const [workerId, partitions] of Object.entries(ASSIGNMENT)) {
    const stats = new LiveStats();
    const store = memoryStore();
    const commitTarget: CommitTarget = {
      async commit(batch) {
        if (cluster.refusingCommits.delete(workerId)) {
          return { ok: false, code: "commit-aborted", message: "the group rebalanced", retriable: true };
        }
        await store.commit(batch.writes);
        return undefined;
      },
    };
    const engine = new Engine({
      store,
      commitTarget,
      catalog: {
        functionSettings: (typename) => (typename === TYPENAME ? settings : undefined),
        hasEgress: () => false,
      },
      invoker: new InProcessInvoker(createEndpoint([counter])),
      partitionCount: PARTITIONS,
      ownedPartitions: partitions,
      clock,
      observer: stats,
    });
    engine.start();
    const runtime: AdminRuntime = {
      mode: "cluster",
      startedAtMs: clock(),
      engine,
      partitionCount: PARTITIONS,
      stats,
      declaredTypes: () => [TYPENAME],
      endpointOf: (typename) => (typename === TYPENAME ? { kind: "in-process" } : undefined),
      checkpoints: undefined,
      stateBytesOnDisk: () => 1_000,
      kafkaLagMessages: async () => 0,
      peers: {
        workerId,
        owners: () => cluster.owners,
        async send(peer, request): Promise<PeerAnswer> {
          cluster.sent.push({ from: workerId, to: peer.workerId, request: overTheWire(request) });
          if (cluster.down.has(peer.workerId)) {
            return { ok: false, error: `connect ECONNREFUSED ${peer.adminUrl}` };
          }
          const reply = await answerAs(workerOf(peer.workerId), overTheWire(request), true);
          return { ok: true, reply: overTheWire(reply) };
        },
      },
    };
    workers.set(workerId, { engine, runtime });
  }
  return cluster;
}

/**
 * Answers a request as the admin server's answerApi does, without HTTP: a forwarded call by
 * the route's handler alone, any other for the cluster; a refusal thrown deep in a handler
 * becomes its `{code, message}` reply.
 */
async function answerAs(worker: Worker, request: AdminRequest, forwarded: boolean): Promise<Reply> {
  const url = new URL(request.pathAndQuery, "http://admin");
  const matched = matchRoute(request.method, url.pathname);
  assert.ok("route" in matched, `no route answers ${request.method} ${url.pathname}`);
  const call: AdminCall = {
    runtime: worker.runtime,
    params: matched.params,
    query: url.searchParams,
    body: async () => {
      if (request.body === undefined) throw new AdminRefusal(400, "bad-request", "the request needs a JSON body");
      return request.body as Record<string, unknown>;
    },
  };
  let reply: AdminReply;
  try {
    reply = forwarded
      ? await matched.route.handle(call)
      : await answerForCluster({
          route: matched.route,
          call,
          request: { method: request.method, pathAndQuery: request.pathAndQuery, hasBody: request.body !== undefined },
          peers: worker.runtime.peers as NonNullable<AdminRuntime["peers"]>,
        });
  } catch (error) {
    if (!(error instanceof AdminRefusal)) throw error;
    reply = { status: error.status, body: { code: error.code, message: error.message } };
  }
  return { status: reply.status, body: reply.body as Answer };
}

/** Waits for `condition`, polling; fails naming `what` after a few seconds. */
async function until(condition: () => boolean, what: string): Promise<void> {
  for (let waited = 0; waited < 3_000; waited += 2) {
    if (condition()) return;
    await sleep(2);
  }
  assert.fail(`timed out waiting for ${what}`);
}

describe("the admin API of a cluster", () => {
  /** The engines' clock: a dead letter's time is what it says when the function fails. */
  let nowMs = Date.UTC(2030, 0, 1);
  const cluster = startCluster(() => nowMs);
  /** Ids holding state, by partition: three in each. */
  const stateIds = new Map<number, string[]>();

  /** Every engine places an address in the same partition; w1's is asked. */
  const partitionOf = (id: string) =>
    (cluster.workers.get("w1") as Worker).engine.partitionOf({ typename: TYPENAME, id });

  /** `count` ids of the counter that fall in `partition`, each starting with `prefix`. */
  const idsIn = (partition: number, count: number, prefix: string): string[] => {
    const ids: string[] = [];
    for (let n = 0; ids.length < count; n++) if (partitionOf(`${prefix}${n}`) === partition) ids.push(`${prefix}${n}`);
    return ids;
  };

  /** Sends the counter `id` a message, through the engine that runs it; resolves once it is durable. */
  const send = async (id: string) => {
    const accepted = await cluster.ownerOf(partitionOf(id)).engine.accept({
      target: { typename: TYPENAME, id },
      argument: { typename: "io.statefun.types/string", hasValue: true, value: types.string.serialize("inc") },
    });
    assert.ok(accepted.ok, JSON.stringify(accepted));
  };

  const allLetters = () => [...cluster.workers.values()].flatMap((worker) => worker.engine.deadLetters());
  const settled = () => [...cluster.workers.values()].every((worker) => worker.engine.invocationsInFlight === 0);

  before(async () => {
    for (let partition = 0; partition < PARTITIONS; partition++) {
      const ids = idsIn(partition, 3, "u");
      stateIds.set(partition, ids);
      for (const id of ids) await send(id);
    }
    await until(
      () =>
        settled() &&
        [...cluster.workers.values()].every((worker) => worker.engine.stateIds(TYPENAME, { limit: 100 }).length === 6),
      "every id to hold state",
    );
    // Letters on every worker, some at the same time: the listing orders those by partition.
    const plan: readonly [offsetMs: number, partition: number, idPrefix: string][] = [
      [0, 4, "dl-a"],
      [0, 0, "dl-b"],
      [1, 2, "dl-c"],
      [2, 5, "dl-d"],
      [2, 1, "dl-e"],
      [3, 3, "dl-f"],
      [3, 0, "dl-g"],
    ];
    const startMs = nowMs;
    for (const [offsetMs, partition, prefix] of plan) {
      nowMs = startMs + offsetMs;
      const [id] = idsIn(partition, 1, prefix) as [string];
      failing.add(id);
      const letters = allLetters().length;
      await send(id);
      await until(() => allLetters().length === letters + 1 && settled(), `a dead letter for ${id}`);
    }
  });

  after(() => cluster.stop());
  beforeEach(() => cluster.reset());

  /** The id of a dead letter in `partition` (the first there, by sequence number). */
  const letterIn = (partition: number, nth = 0): string => {
    const letters = allLetters()
      .filter((listed) => listed.partition === partition)
      .sort((a, b) => a.letter.seq - b.letter.seq);
    const listed = letters[nth];
    assert.ok(listed !== undefined, `no dead letter ${nth} in partition ${partition}`);
    return deadLetterId(partition, listed.letter.seq);
  };

  describe("a call for one address", () => {
    it("goes to the worker that runs its partition, once, and its answer is relayed as it is", async () => {
      const [id] = stateIds.get(4) as string[];
      const answer = await cluster.ask("w1", "GET", `${COUNTER}/${id}`);
      assert.equal(answer.status, 200, JSON.stringify(answer.body));
      assert.deepEqual(cluster.sent, [
        { from: "w1", to: "w3", request: { method: "GET", pathAndQuery: `${COUNTER}/${id}` } },
      ]);
      assert.equal(answer.body.partition, 4);
      assert.equal(answer.body.state.count.value, 1);
      assert.deepEqual(answer, await cluster.askForwarded("w3", "GET", `${COUNTER}/${id}`));
    });

    it("is answered here, asking nobody, when this worker runs the partition", async () => {
      const [id] = stateIds.get(1) as string[];
      const answer = await cluster.ask("w1", "GET", `${COUNTER}/${id}`);
      assert.equal(answer.status, 200);
      assert.equal(answer.body.partition, 1);
      assert.deepEqual(cluster.sent, []);
    });

    it("carries a write's method, path and body to the owner, which makes it durable there", async () => {
      const [id] = stateIds.get(3) as string[];
      const path = `${COUNTER}/${id}/count`;
      const written = await cluster.ask("w1", "PUT", path, { value: 41 });
      assert.equal(written.status, 200, JSON.stringify(written.body));
      assert.equal(written.body.value, 41);
      assert.deepEqual(cluster.sent, [
        { from: "w1", to: "w2", request: { method: "PUT", pathAndQuery: path, body: { value: 41 } } },
      ]);
      const view = cluster.ownerOf(3).engine.addressView({ typename: TYPENAME, id: id as string });
      assert.ok(view !== undefined);
      assert.equal(types.int.deserialize(view.states.get("count")?.value as Uint8Array), 41);
    });

    it("asks the owner for a dead letter named by id, its partition read from the id", async () => {
      const id = letterIn(5);
      const answer = await cluster.ask("w2", "GET", `/v1/dead-letters/${id}`);
      assert.equal(answer.status, 200, JSON.stringify(answer.body));
      assert.equal(answer.body.id, id);
      assert.deepEqual(
        cluster.sent.map(({ to }) => to),
        ["w3"],
      );
    });

    it("is refused 503 rebalancing while nobody runs the partition, asking nobody", async () => {
      const [id] = stateIds.get(4) as string[];
      cluster.owners[4] = undefined;
      const answer = await cluster.ask("w1", "GET", `${COUNTER}/${id}`);
      assert.equal(answer.status, 503);
      assert.equal(answer.body.code, "rebalancing");
      assert.match(answer.body.message, /partition 4/);
      assert.deepEqual(cluster.sent, []);
    });

    it("is refused 502 worker-unreachable, naming the worker and why, when the owner does not answer", async () => {
      const [id] = stateIds.get(4) as string[];
      cluster.down.add("w3");
      const answer = await cluster.ask("w1", "GET", `${COUNTER}/${id}`);
      assert.equal(answer.status, 502);
      assert.equal(answer.body.code, "worker-unreachable");
      assert.match(answer.body.message, /worker w3/);
      assert.match(answer.body.message, /ECONNREFUSED http:\/\/w3\.test:8093/);
      assert.equal(cluster.sent.length, 1);
    });

    it("is refused 502 naming --admin-port off when the owner announces no admin listener", async () => {
      const [id] = stateIds.get(4) as string[];
      cluster.owners[4] = { workerId: "w3" };
      const answer = await cluster.ask("w1", "GET", `${COUNTER}/${id}`);
      assert.equal(answer.status, 502);
      assert.equal(answer.body.code, "worker-unreachable");
      assert.match(answer.body.message, /worker w3/);
      assert.match(answer.body.message, /--admin-port off/);
      assert.deepEqual(cluster.sent, [], "there is nowhere to send it");
    });

    it("answers 404 for a dead letter id naming a partition past the count, as one worker does", async () => {
      const answer = await cluster.ask("w1", "GET", "/v1/dead-letters/99-0-1");
      assert.equal(answer.status, 404, JSON.stringify(answer.body));
      assert.equal(answer.body.code, "no-such-dead-letter");
    });
  });

  describe("a list or a total", () => {
    it("asks every worker and adds up, saying who answered", async () => {
      const overview = await cluster.ask("w2", "GET", "/v1/overview");
      assert.equal(overview.status, 200);
      assert.equal(overview.body.workerId, "w2", "this worker's answer leads");
      assert.equal(overview.body.ownedPartitions, PARTITIONS);
      assert.equal(overview.body.stateBytesOnDisk, 3_000);
      assert.deepEqual(
        overview.body.workers.map((worker: Answer) => worker.workerId),
        ["w2", "w1", "w3"],
      );
      assert.deepEqual(overview.body.cluster, {
        workers: 3,
        answered: ["w1", "w2", "w3"],
        unanswered: [],
        partitionsMissing: 0,
      });
      assert.deepEqual(cluster.sent.map(({ to }) => to).sort(), ["w1", "w3"]);

      const counterType = await cluster.ask("w1", "GET", "/v1/function-types/admin/counter");
      assert.equal(counterType.status, 200);
      // Each counter id was counted once, on the worker that runs it; each letter failed once.
      assert.equal(counterType.body.invocations, 3 * PARTITIONS);
      assert.equal(counterType.body.deadLetters, 7);
      assert.equal(counterType.body.failures, 7);
      // The letters were the latest invocations, on whichever worker: the type is failing.
      assert.equal(counterType.body.health.status, "failing");
      assert.match(counterType.body.health.lastError, /dl-\w+ fails on purpose/);
    });

    it("pages through the ids of every worker, each id once, in string order", async () => {
      const everyId = [...stateIds.values()].flat().sort(codeUnitOrder);
      const seen: string[] = [];
      let after: string | null = null;
      for (let pages = 0; pages < 20; pages++) {
        const query: string = after === null ? "" : `&after=${encodeURIComponent(after)}`;
        const page = await cluster.ask("w3", "GET", `${COUNTER}?limit=4${query}`);
        assert.equal(page.status, 200, JSON.stringify(page.body));
        assert.ok(page.body.ids.length <= 4);
        assert.deepEqual(page.body.cluster.unanswered, []);
        seen.push(...page.body.ids);
        after = page.body.next;
        if (after === null) break;
      }
      assert.deepEqual(seen, everyId);
    });

    it("pages through the dead letters of every worker in the listing's order", async () => {
      const seen: number[] = [];
      let after: string | null = null;
      for (let pages = 0; pages < 20; pages++) {
        const query: string = after === null ? "" : `&after=${encodeURIComponent(after)}`;
        const page = await cluster.ask("w1", "GET", `/v1/dead-letters?limit=2${query}`);
        assert.equal(page.status, 200, JSON.stringify(page.body));
        seen.push(...page.body.deadLetters.map((listed: Answer) => listed.partition));
        after = page.body.next;
        if (after === null) break;
      }
      // The plan of before(): by time, and at the same time by partition.
      assert.deepEqual(seen, [0, 4, 2, 1, 5, 0, 3]);
    });

    it("returns a refusal of this worker's without asking anyone", async () => {
      const unknown = await cluster.ask("w1", "GET", "/v1/function-types/admin/nope");
      assert.equal(unknown.status, 404);
      assert.equal(unknown.body.code, "unknown-function-type");
      const badLimit = await cluster.ask("w1", "GET", `${COUNTER}?limit=0`);
      assert.equal(badLimit.status, 400);
      assert.equal(badLimit.body.code, "bad-request");
      assert.deepEqual(cluster.sent, []);
    });

    it("answers 200 with what it has when a worker does not answer, naming it and counting its partitions", async () => {
      cluster.down.add("w2");
      const page = await cluster.ask("w1", "GET", `${COUNTER}?limit=100`);
      assert.equal(page.status, 200);
      const fromOthers = [0, 1, 4, 5].flatMap((partition) => stateIds.get(partition) as string[]);
      assert.deepEqual(page.body.ids, fromOthers.sort(codeUnitOrder));
      assert.equal(page.body.cluster.workers, 3);
      assert.deepEqual(page.body.cluster.answered, ["w1", "w3"]);
      assert.equal(page.body.cluster.unanswered.length, 1);
      assert.equal(page.body.cluster.unanswered[0].workerId, "w2");
      assert.match(page.body.cluster.unanswered[0].error, /ECONNREFUSED/);
      assert.equal(page.body.cluster.partitionsMissing, 2);
    });

    it("counts a partition nobody runs as missing", async () => {
      cluster.owners[5] = undefined;
      const overview = await cluster.ask("w1", "GET", "/v1/overview");
      assert.equal(overview.status, 200);
      assert.equal(overview.body.cluster.partitionsMissing, 1);
      assert.deepEqual(overview.body.cluster.unanswered, []);
    });
  });

  describe("a pause", () => {
    const PAUSE = "/v1/function-types/admin/counter/pause";
    const RESUME = "/v1/function-types/admin/counter/resume";
    const paused = () => [...cluster.workers.values()].map((worker) => worker.engine.isPaused(TYPENAME));

    it("pauses every worker's partitions, and the resume resumes them all", async () => {
      const answer = await cluster.ask("w1", "POST", PAUSE);
      assert.equal(answer.status, 200, JSON.stringify(answer.body));
      assert.equal(answer.body.paused, true);
      assert.deepEqual(answer.body.cluster.answered, ["w1", "w2", "w3"]);
      assert.deepEqual(paused(), [true, true, true]);
      assert.equal((await cluster.ask("w3", "POST", RESUME)).status, 200);
      assert.deepEqual(paused(), [false, false, false]);
    });

    it("is refused 503 rebalancing while a partition has no owner, and nothing is paused", async () => {
      cluster.owners[3] = undefined;
      const answer = await cluster.ask("w1", "POST", PAUSE);
      assert.equal(answer.status, 503);
      assert.equal(answer.body.code, "rebalancing");
      assert.match(answer.body.message, /partitions 3 /);
      assert.match(answer.body.message, /nothing was done/);
      assert.deepEqual(cluster.sent, []);
      assert.deepEqual(paused(), [false, false, false], "not even this worker paused");
    });

    it("is answered with this worker's own refusal, asking nobody, when its pause is not made durable", async () => {
      cluster.refusingCommits.add("w1");
      const answer = await cluster.ask("w1", "POST", PAUSE);
      assert.equal(answer.status, 503, JSON.stringify(answer.body));
      assert.equal(answer.body.code, "commit-aborted");
      assert.deepEqual(cluster.sent, []);
      assert.deepEqual(paused(), [false, false, false], "the refused commit took this worker's pause back");
    });

    it("is refused 502 workers-failed when a worker does not answer, naming what was done", async () => {
      cluster.down.add("w3");
      const answer = await cluster.ask("w1", "POST", PAUSE);
      assert.equal(answer.status, 502);
      assert.equal(answer.body.code, "workers-failed");
      assert.match(answer.body.message, /done on 2 of 3 workers; not on worker w3 \(connect ECONNREFUSED/);
      assert.deepEqual(paused(), [true, true, false]);
      // Asking again is safe: a pause of a paused type is a pause.
      cluster.down.clear();
      assert.equal((await cluster.ask("w1", "POST", PAUSE)).status, 200);
      assert.deepEqual(paused(), [true, true, true]);
      assert.equal((await cluster.ask("w1", "POST", RESUME)).status, 200);
      assert.deepEqual(paused(), [false, false, false]);
    });
  });

  describe("dead letters named by id", () => {
    it("sends each worker the ids in its partitions, and answers every id done", async () => {
      const ids = [letterIn(0), letterIn(4), letterIn(2)];
      const answer = await cluster.ask("w1", "POST", "/v1/dead-letters/discard", { ids });
      assert.equal(answer.status, 200, JSON.stringify(answer.body));
      assert.deepEqual([...answer.body.discarded].sort(), [...ids].sort());
      const byWorker = [...cluster.sent].sort((a, b) => codeUnitOrder(a.to, b.to));
      assert.deepEqual(
        byWorker.map(({ to, request }) => [to, request.method, request.pathAndQuery, request.body]),
        [
          ["w2", "POST", "/v1/dead-letters/discard", { ids: [ids[2]] }],
          ["w3", "POST", "/v1/dead-letters/discard", { ids: [ids[1]] }],
        ],
      );
      const left = allLetters().map(({ partition }) => partition);
      assert.deepEqual(left.sort(), [0, 1, 3, 5], "one letter gone from each of partitions 0, 2 and 4");
    });

    it("refuses a malformed id here, before any worker acts", async () => {
      const letter = letterIn(5);
      const answer = await cluster.ask("w1", "POST", "/v1/dead-letters/discard", { ids: [letter, "not-an-id"] });
      assert.equal(answer.status, 400);
      assert.equal(answer.body.code, "bad-request");
      assert.match(answer.body.message, /"not-an-id" is not a dead letter id/);
      assert.deepEqual(cluster.sent, []);
      assert.ok(
        allLetters().some(({ partition }) => partition === 5),
        "the letter of partition 5 is still there",
      );
    });

    it("is refused 409 workers-failed when a worker refuses its share, naming what was done", async () => {
      const mine = letterIn(1);
      const answer = await cluster.ask("w1", "POST", "/v1/dead-letters/discard", { ids: [mine, "5-0-999"] });
      assert.equal(answer.status, 409);
      assert.equal(answer.body.code, "workers-failed");
      assert.match(answer.body.message, /worker w3: 404 no-such-dead-letter/);
      assert.match(answer.body.message, new RegExp(`${mine} were discarded`));
      assert.ok(!allLetters().some(({ partition }) => partition === 1), "this worker did its share");
    });

    it("is refused 502 workers-failed when a worker does not answer, and none were done", async () => {
      cluster.down.add("w2");
      const answer = await cluster.ask("w1", "POST", "/v1/dead-letters/replay", { ids: [letterIn(3)] });
      assert.equal(answer.status, 502);
      assert.equal(answer.body.code, "workers-failed");
      assert.match(answer.body.message, /worker w2: connect ECONNREFUSED/);
      assert.match(answer.body.message, /none were replayed/);
    });

    it('is refused 503 rebalancing for {"all": true} while a partition has no owner', async () => {
      cluster.owners[0] = undefined;
      const answer = await cluster.ask("w2", "POST", "/v1/dead-letters/replay", { all: true });
      assert.equal(answer.status, 503);
      assert.equal(answer.body.code, "rebalancing");
      assert.deepEqual(cluster.sent, []);
    });

    it('refuses {"ids": […], "all": true} as one worker does, before any worker acts', async () => {
      const answer = await cluster.ask("w1", "POST", "/v1/dead-letters/discard", { ids: ["4-0-999"], all: true });
      assert.equal(answer.status, 400, JSON.stringify(answer.body));
      assert.equal(answer.body.code, "bad-request");
      assert.deepEqual(cluster.sent, []);
    });

    it("refuses a bulk action without a body, before any worker acts", async () => {
      const answer = await cluster.ask("w1", "POST", "/v1/dead-letters/replay");
      assert.equal(answer.status, 400, JSON.stringify(answer.body));
      assert.match(answer.body.message, /needs a JSON body/);
      assert.deepEqual(cluster.sent, []);
    });

    it('replays {"all": true} on every worker', async () => {
      failing.clear();
      const letters = allLetters().length;
      assert.ok(letters > 0);
      const answer = await cluster.ask("w2", "POST", "/v1/dead-letters/replay", { all: true });
      assert.equal(answer.status, 200, JSON.stringify(answer.body));
      assert.equal(answer.body.replayed.length, letters);
      assert.deepEqual(
        cluster.sent.map(({ to, request }) => [to, request.body]),
        [
          ["w1", { all: true }],
          ["w3", { all: true }],
        ],
      );
      await until(() => allLetters().length === 0 && settled(), "every replayed letter to run");
    });
  });
});
