// Cluster workers on a real Kafka 4.4 broker, in one process: a worker alone runs every
// partition; a second joins and takes half, restored from the changelog alone (its disk is
// empty); messages hop between partitions of both workers through the inbox; the second
// leaves and the first takes everything back, from its own disk caught up from the changelog;
// a worker stopped as a crash would (no commit, no leave) has its partitions taken over after
// the session timeout; a restarted worker ends at once the transactions its last run left open.
// Invariant: every message is counted exactly once, by the counts the functions keep in their
// state, read back by request-reply on each partition's owner.
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { createEndpoint, message, statefulFunction, types } from "@eddy/sdk";
import { Producer } from "@platformatic/kafka";
import { type KafkaBroker, startKafka } from "../../../test/support/kafka-broker.ts";
import { DirectoryBlobStore } from "../src/checkpoint/blob/directory-blob-store.ts";
import { ClusterWorker, type ClusterWorkerOptions } from "../src/cluster/cluster-worker.ts";
import { TRANSACTIONAL_PRODUCERS, transactionalIdOf } from "../src/cluster/kafka-commit-target.ts";
import { TopicReader } from "../src/cluster/topic-reader.ts";
import type { FunctionTypename } from "../src/core/address.ts";
import type { FunctionSettings } from "../src/core/partition-core.ts";
import { Engine } from "../src/engine/engine.ts";
import { InProcessInvoker } from "../src/invoker/in-process-invoker.ts";
import { lineLogger } from "../src/observe/logger.ts";
import { LoggedStore } from "../src/store/logged-store.ts";

const PARTITIONS = 8;
const IDS = 12;
const settings: FunctionSettings = {
  maxBatchCount: 100,
  maxBatchBytes: 1 << 20,
  backlogLimit: 1000,
  failurePolicy: "retry",
};

/** Counts every message; a message "hops:k" is sent on to another instance with k-1; "get" answers the count. */
const counter = statefulFunction({
  typename: "cw/counter",
  state: { count: types.int },
  handle(ctx, msg) {
    const text = msg.as(types.string);
    if (text === "get") {
      ctx.reply(ctx.storage.count ?? 0, types.int);
      return;
    }
    ctx.storage.count = (ctx.storage.count ?? 0) + 1;
    const hops = Number(text.slice("hops:".length));
    if (hops > 0) {
      const next = String((Number(ctx.self.id) * 7 + hops) % IDS);
      ctx.send(message({ typename: "cw/counter", id: next }, `hops:${hops - 1}`, types.string));
    }
  },
});

let broker: KafkaBroker;
const dirs: string[] = [];
/** Every worker started: a test that fails leaves its workers running, which would keep this process alive. */
const workers: ClusterWorker[] = [];
before(async () => {
  broker = await startKafka();
});
after(async () => {
  // Stopped ones are closed already (closing again changes nothing); the others stop as a crash would.
  const closing = Promise.allSettled(
    workers.map(async (worker) => {
      await worker.abandon();
      await worker.engine.stop();
    }),
  );
  await Promise.race([closing, sleep(10_000)]);
  await broker?.stop();
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

async function startWorker(
  cluster: string,
  workerId: string,
  dir?: string,
  extra: Pick<ClusterWorkerOptions, "snapshots"> = {},
) {
  const stateDir = dir ?? mkdtempSync(join(tmpdir(), `eddy-cw-${workerId}-`));
  if (dir === undefined) dirs.push(stateDir);
  const local = new LoggedStore({ path: stateDir });
  const fatal: string[] = [];
  const logged: string[] = [];
  const started = await ClusterWorker.start({
    ...extra,
    connection: { clientId: `eddy-test-${workerId}`, bootstrapBrokers: [broker.bootstrap] },
    cluster,
    workerId,
    advertiseUrl: `http://${workerId}.invalid`,
    partitionCount: PARTITIONS,
    local,
    sessionTimeoutMs: 6_000,
    createEngine: (commitTarget) =>
      new Engine({
        store: local,
        commitTarget,
        catalog: {
          functionSettings: (typename) => (typename === "cw/counter" ? settings : undefined),
          hasEgress: () => false,
        },
        invoker: new InProcessInvoker(createEndpoint([counter])),
        partitionCount: PARTITIONS,
        ownedPartitions: [],
      }),
    log: lineLogger((line) => {
      logged.push(line);
      if (process.env.CW_DEBUG !== undefined) console.error(workerId, line);
    }),
    onFatal: (reason) => {
      if (process.env.CW_DEBUG !== undefined) console.error(workerId, "FATAL", reason);
      fatal.push(reason);
    },
  });
  assert.ok(started.ok, started.ok ? "" : started.message);
  workers.push(started.value);
  return { worker: started.value, stateDir, fatal, logged };
}

type Started = Awaited<ReturnType<typeof startWorker>>;

const target = (id: number) => ({ typename: "cw/counter" as FunctionTypename, id: String(id) });
const text = (value: string) => ({
  typename: "io.statefun.types/string",
  hasValue: true,
  value: types.string.serialize(value),
});

async function waitFor(what: string, condition: () => boolean, timeoutMs = 40_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}`);
    await sleep(50);
  }
}

/** Sends `count` messages of 3 hops each through `via`, each with its own idempotency key, until each is taken. */
async function send(via: Started, keyPrefix: string, count: number, attempts = 50): Promise<void> {
  for (let index = 0; index < count; index++) {
    for (let attempt = 0; ; attempt++) {
      const accepted = await via.worker.engine.accept(
        { target: target(index % IDS), argument: text("hops:3") },
        { idempotencyKey: `${keyPrefix}-${index}` },
      );
      if (accepted.ok) break;
      assert.ok(attempt < attempts, `message ${keyPrefix}-${index}: ${accepted.message}`);
      await sleep(100);
    }
  }
}

/** The sum of every instance's count, each read on the worker that owns it; undefined if one is not owned or answered yet. */
async function total(workers: readonly Started[]): Promise<number | undefined> {
  let sum = 0;
  for (let id = 0; id < IDS; id++) {
    const owner = workers.find((started) => started.worker.owns(target(id)));
    if (owner === undefined) return undefined;
    const accepted = await owner.worker.engine.accept(
      { target: target(id), argument: text("get") },
      { expectReply: true },
    );
    if (!accepted.ok || accepted.requestId === undefined) return undefined;
    const reply = await owner.worker.engine.awaitReply(accepted.requestId, 5_000);
    if (reply.state !== "answered") return undefined;
    sum += types.int.deserialize(reply.value.value);
  }
  return sum;
}

async function waitForTotal(workers: readonly Started[], expected: number): Promise<void> {
  let last: number | undefined;
  const deadline = Date.now() + 60_000;
  while (Date.now() < deadline) {
    last = await total(workers);
    if (last === expected) return;
    assert.ok(last === undefined || last <= expected, `counted ${last}, more than the ${expected} messages sent`);
    if (process.env.CW_DEBUG !== undefined) {
      for (const started of workers) console.error(last, JSON.stringify(started.worker.status));
    }
    await sleep(200);
  }
  assert.fail(`the counts add up to ${last}, expected ${expected}`);
}

describe("cluster workers on Kafka", () => {
  it("share the partitions, hand them over on join and leave, and count every message once", async () => {
    const a = await startWorker("cw1", "a");
    await waitFor("a to run every partition", () => a.worker.engine.ownedPartitions.length === PARTITIONS);
    await send(a, "first", 20);
    await waitForTotal([a], 20 * 4);

    const b = await startWorker("cw1", "b");
    await waitFor(
      "the partitions to be split",
      () =>
        b.worker.engine.ownedPartitions.length === PARTITIONS / 2 &&
        a.worker.engine.ownedPartitions.length === PARTITIONS / 2,
    );
    await send(b, "second", 20);
    await send(a, "third", 20);
    await waitForTotal([a, b], 60 * 4);

    await b.worker.stop();
    await waitFor("a to run every partition again", () => a.worker.engine.ownedPartitions.length === PARTITIONS);
    await send(a, "fourth", 10);
    await waitForTotal([a], 70 * 4);
    // Messages sent again with keys already taken are not counted again.
    await send(a, "first", 20);
    await waitForTotal([a], 70 * 4);
    assert.deepEqual([...a.fatal, ...b.fatal], []);
    await a.worker.stop();
  });

  it("takes over a crashed worker's partitions after the session timeout, and its last commits hold", async () => {
    const a = await startWorker("cw2", "a");
    const b = await startWorker("cw2", "b");
    await waitFor(
      "the partitions to be split",
      () =>
        a.worker.engine.ownedPartitions.length === PARTITIONS / 2 &&
        b.worker.engine.ownedPartitions.length === PARTITIONS / 2,
    );
    await send(a, "before", 20);
    await waitForTotal([a, b], 20 * 4);
    await b.worker.abandon();
    await waitFor("a to take b's partitions", () => a.worker.engine.ownedPartitions.length === PARTITIONS, 60_000);
    await send(a, "after", 20);
    await waitForTotal([a], 40 * 4);
    assert.deepEqual(a.fatal, []);
    await a.worker.stop();
  });

  it("rides out the broker going down and coming back: what it acknowledged is counted once", async () => {
    const a = await startWorker("cw3", "a");
    await waitFor("a to run every partition", () => a.worker.engine.ownedPartitions.length === PARTITIONS);
    await send(a, "before", 10);
    await waitForTotal([a], 10 * 4);
    await broker.kill();
    // Sent while the broker is down: not acknowledged until a commit holding it is made (the
    // commit waits for the broker, or is refused and the message sent again).
    const killedAt = Date.now();
    const during = send(a, "during", 10, 600).then(() => Date.now());
    await sleep(3_000);
    await broker.restart();
    const acknowledgedAt = await during;
    assert.ok(acknowledgedAt - killedAt >= 3_000, "a message was acknowledged while the broker was down");
    await waitForTotal([a], 20 * 4);
    assert.deepEqual(a.fatal, []);
    await a.worker.stop();
  });

  it("on a restart, aborts at once the transactions its last run left open on each of its transactional ids", async () => {
    const a = await startWorker("cw5", "a");
    await waitFor("a to run every partition", () => a.worker.engine.ownedPartitions.length === PARTITIONS);
    await send(a, "first", 10);
    await waitForTotal([a], 10 * 4);
    await a.worker.stop();
    // As a run killed mid-commit leaves them: a record in a changelog partition, its transaction
    // open, under a timeout longer than the whole test. Until it ends, no worker reads past it.
    const leftOpen = [];
    for (let index = 0; index < TRANSACTIONAL_PRODUCERS; index++) {
      const producer = new Producer<Buffer, Buffer, Buffer, Buffer>({
        clientId: `eddy-test-left-open-${index}`,
        bootstrapBrokers: [broker.bootstrap],
        transactionalId: transactionalIdOf("cw5", "a", index),
        idempotent: true,
        acks: -1,
        timeout: 300_000,
        producerId: -1n,
        producerEpoch: -1,
      });
      leftOpen.push(producer);
      const transaction = await producer.beginTransaction();
      await transaction.send({
        messages: [{ topic: "eddy.cw5.changelog", partition: index, value: Buffer.from("never committed") }],
      });
    }
    try {
      const restarted = await startWorker("cw5", "a", a.stateDir);
      await waitFor(
        "a to run every partition again",
        () => restarted.worker.engine.ownedPartitions.length === PARTITIONS,
      );
      await send(restarted, "second", 10);
      await waitForTotal([restarted], 20 * 4);
      assert.deepEqual(restarted.fatal, []);
      await restarted.worker.stop();
    } finally {
      await Promise.allSettled(leftOpen.map((producer) => producer.close(true)));
    }
  });

  it("snapshots its partitions and trims the changelog behind them; a worker on an empty disk restores from the snapshots", async () => {
    const checkpoints = mkdtempSync(join(tmpdir(), "eddy-cw-snapshots-"));
    dirs.push(checkpoints);
    const blobs = new DirectoryBlobStore(checkpoints);
    const snapshots = { blobs, intervalMs: 200, keep: 2 };
    const a = await startWorker("cw4", "a", undefined, { snapshots });
    await waitFor("a to run every partition", () => a.worker.engine.ownedPartitions.length === PARTITIONS);
    await send(a, "first", 20);
    await waitForTotal([a], 20 * 4);
    // Every partition written to has a snapshot, and its changelog starts after it.
    const trimmed = async () => {
      const reader = new TopicReader({
        connection: { clientId: "eddy-test-reader", bootstrapBrokers: [broker.bootstrap] },
        topic: "eddy.cw4.changelog",
        maxWaitMs: 10,
        fetchBytes: 1 << 20,
      });
      try {
        const starts = await reader.starts([...Array(PARTITIONS).keys()]);
        return [...starts.values()].filter((start) => start > 0n).length;
      } finally {
        await reader.close();
      }
    };
    let trimmedCount = 0;
    for (let tries = 0; tries < 100 && trimmedCount < PARTITIONS / 2; tries++) {
      trimmedCount = await trimmed();
      await sleep(100);
    }
    assert.ok(trimmedCount >= PARTITIONS / 2, `${trimmedCount} changelog partitions trimmed`);
    // Counted once the snapshotter has stopped: while it runs, a partition's third snapshot can
    // be written before its oldest is deleted (a CI run listed 17 of 16).
    await a.worker.stop();
    const kept = (await blobs.list("clusters/cw4/partitions/")).length;
    assert.ok(kept > 0 && kept <= PARTITIONS * 2, `${kept} snapshots kept (2 per partition at most)`);

    // A new worker with an empty disk: the changelog alone no longer has these partitions.
    const b = await startWorker("cw4", "b", undefined, { snapshots });
    await waitFor("b to run every partition", () => b.worker.engine.ownedPartitions.length === PARTITIONS, 60_000);
    await waitForTotal([b], 20 * 4);
    assert.ok(
      b.logged.some((line) => line.includes("restored partition")),
      `b restored from snapshots:\n${b.logged.join("\n")}`,
    );
    await send(b, "second", 10);
    await waitForTotal([b], 30 * 4);
    assert.deepEqual([...a.fatal, ...b.fatal], []);
    await b.worker.stop();
  });
});
