// Partitions on worker threads over one store (src/threads/): messages between partitions
// that different threads run are delivered exactly once, across kill -9 in the middle of the
// traffic, and a state directory opens with any number of threads. Each run is a child
// process (fixtures/threads-child.ts) that sends messages 0 … n-1, each with its own
// idempotency key, so a run after a crash sends them all again and each is taken once; every
// `t/count` passes each message on to a `t/sink` (most hops cross threads), and the sinks'
// totals must come to exactly n.
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { createEndpoint } from "@eddy/sdk";
import { Pool } from "undici";
import { startRuntime } from "../src/assembly/start-runtime.ts";
import { getRow, inPartition, scanRows, tables } from "../src/core/schema.ts";
import { LoggedStore } from "../src/store/logged-store.ts";
import { PartitionThreads } from "../src/threads/partition-threads.ts";
import { functions, Hop, SINKS } from "./fixtures/thread-functions.ts";

const CHILD = new URL("./fixtures/threads-child.ts", import.meta.url).pathname;
const IDS = 100;
const PARTITIONS = 128;

interface Counts {
  readonly sinks: readonly number[];
  readonly counts: readonly number[];
}

function freshDir(): string {
  const dir = mkdtempSync(join(tmpdir(), "eddy-threads-"));
  after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/**
 * Runs the child to its end (its counts), or, with `killAt`, kills it with SIGKILL once it
 * has accepted that many messages (undefined then).
 */
function runChild(stateDir: string, threads: number, count: number, killAt?: number): Promise<Counts | undefined> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CHILD, stateDir, String(threads), String(count)], {
      stdio: ["ignore", "pipe", "pipe"],
    });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (chunk: Buffer) => {
      stdout += chunk.toString();
      const accepted = [...stdout.matchAll(/^accepted (\d+)$/gm)].at(-1);
      if (killAt !== undefined && accepted !== undefined && Number(accepted[1]) >= killAt) child.kill("SIGKILL");
    });
    child.stderr.on("data", (chunk: Buffer) => {
      stderr += chunk.toString();
    });
    child.on("exit", (code, signal) => {
      if (signal === "SIGKILL") return resolve(undefined);
      if (code !== 0) return reject(new Error(`the child exited with ${code}: ${stderr}`));
      const last = stdout.trim().split("\n").at(-1) ?? "";
      resolve(JSON.parse(last) as Counts);
    });
  });
}

/** Messages durable in some partition's inbox and not yet delivered (at or past its inbox position). */
async function undelivered(stateDir: string): Promise<number> {
  const store = await LoggedStore.openReadOnly(stateDir);
  let waiting = 0;
  for (let partition = 0; partition < PARTITIONS; partition++) {
    const position = getRow(store, inPartition(partition, tables.inboxPosition.key())) ?? 0;
    for (const { key } of scanRows(store, inPartition(partition, tables.threadInbox.all))) {
      if ((key.at(-1) as number) >= position) waiting++;
    }
  }
  await store.close();
  return waiting;
}

function assertExactlyOnce(counts: Counts | undefined, count: number): void {
  assert.ok(counts !== undefined);
  assert.equal(
    counts.sinks.reduce((sum, n) => sum + n, 0),
    count,
    `the sinks received ${counts.sinks.join(", ")}`,
  );
  assert.deepEqual(counts.counts, new Array(IDS).fill(count / IDS));
}

/** Runs the child with `threads`, killing it at random points, until a kill leaves a message between threads undelivered. */
async function leaveUndelivered(stateDir: string, threads: number, count: number): Promise<number> {
  for (let attempt = 0; attempt < 10; attempt++) {
    const killAt = 100 * (1 + Math.floor(Math.random() * (count / 100 - 1)));
    await runChild(stateDir, threads, count, killAt);
    const waiting = await undelivered(stateDir);
    if (waiting > 0) return waiting;
  }
  throw new Error("no kill left a message between threads undelivered in 10 tries");
}

/** Every thread-inbox row in the state directory, delivered or not. */
async function threadInboxRows(stateDir: string): Promise<number> {
  const store = await LoggedStore.openReadOnly(stateDir);
  let rows = 0;
  for (let partition = 0; partition < PARTITIONS; partition++) {
    rows += [...scanRows(store, inPartition(partition, tables.threadInbox.all))].length;
  }
  await store.close();
  return rows;
}

describe("partition threads", () => {
  it("delivers messages between threads once, and the state opens with 3 threads and with 1", async () => {
    const dir = freshDir();
    assertExactlyOnce(await runChild(dir, 2, 1000), 1000);
    // The same messages again (every one a duplicate) on another spread of the partitions.
    assertExactlyOnce(await runChild(dir, 3, 1000), 1000);
    assertExactlyOnce(await runChild(dir, 1, 1000), 1000);
  });

  it("loses and duplicates nothing when killed with SIGKILL in the middle of the traffic", async () => {
    const dir = freshDir();
    const count = 3000;
    let killsWithUndelivered = 0;
    for (const threads of [2, 3, 1, 2]) {
      const killAt = 100 * (1 + Math.floor(Math.random() * (count / 100 - 1)));
      assert.equal(await runChild(dir, threads, count, killAt), undefined, "the child was killed");
      if ((await undelivered(dir)) > 0) killsWithUndelivered++;
    }
    assertExactlyOnce(await runChild(dir, 2, count), count);
    // Otherwise the kills tested nothing between threads.
    assert.ok(killsWithUndelivered > 0, "no kill left a message between threads undelivered");
  });

  it("serves the HTTP ingress from every thread on one port, each request taken by the thread that runs its target", async () => {
    const dir = freshDir();
    const runtime = await PartitionThreads.start({
      stateDir: dir,
      threads: 2,
      functions: new URL("./fixtures/thread-functions.ts", import.meta.url).href,
    });
    try {
      const url = await runtime.listen(0, "127.0.0.1");
      // Several connections, so the kernel spreads them over both threads' listeners.
      const client = new Pool(url, { connections: 16 });
      after(() => client.close());
      const send = async (path: string, body: object, headers: Record<string, string> = {}) => {
        const response = await client.request({
          method: "PUT",
          path,
          headers: { "content-type": `application/vnd.${Hop.typename}`, ...headers },
          body: JSON.stringify(body),
        });
        return { status: response.statusCode, body: new Uint8Array(await response.body.arrayBuffer()) };
      };
      const count = 400;
      const statuses = await Promise.all(
        Array.from({ length: count }, (_, k) => send(`/t/count/c${k % IDS}`, { n: 1 }, { "idempotency-key": `m${k}` })),
      );
      assert.deepEqual(new Set(statuses.map((answer) => answer.status)), new Set([200]));
      // Sent again, each is a duplicate: taken once.
      await Promise.all(
        Array.from({ length: 40 }, (_, k) => send(`/t/count/c${k % IDS}`, { n: 1 }, { "idempotency-key": `m${k}` })),
      );
      const report = async (typename: string, id: string) => {
        const answer = await send(`/${typename}/${id}`, { report: true }, { prefer: "wait=5", accept: "text/plain" });
        assert.equal(answer.status, 200);
        return Number(new TextDecoder().decode(answer.body));
      };
      let total = 0;
      for (let round = 0; round < 100 && total < count; round++) {
        total = 0;
        for (let sink = 0; sink < SINKS; sink++) total += await report("t/sink", `s${sink}`);
        if (total < count) await sleep(20);
      }
      assert.equal(total, count, "every message reached its sink once, across threads");
      for (let id = 0; id < IDS; id++) assert.equal(await report("t/count", `c${id}`), count / IDS);
    } finally {
      await runtime.stop();
    }
  });

  it("a directory partition threads left messages in opens with the embedded runtime, which delivers them at its start", async () => {
    const dir = freshDir();
    const count = 3000;
    await leaveUndelivered(dir, 2, count);
    const runtime = await startRuntime({
      module: { files: [], endpoints: [], ingresses: [], egresses: [] },
      stateDir: dir,
      inProcess: createEndpoint(functions),
      log: () => {},
    });
    await runtime.stop();
    assert.equal(await threadInboxRows(dir), 0, "the embedded runtime delivered and deleted every thread-inbox row");
    // Nothing lost or applied twice by the embedded run: the rest, and every message again, on threads.
    assertExactlyOnce(await runChild(dir, 2, count), count);
  });
});
