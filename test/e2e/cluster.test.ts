// `eddy run --cluster`: two workers of one cluster on a real Kafka broker, each its own
// process with its own state directory and HTTP ingress, functions served over HTTP by this
// test. Messages go in through either worker (a message for a partition the other runs travels
// through the inbox topic), and hop between instances of both. One worker is killed with
// SIGKILL and restarted on its state directory, the other on an empty one, and one is frozen
// with SIGSTOP past its session timeout and resumed (a zombie); the counts the
// functions keep must add up to exactly the messages sent, read back with request-reply
// through either worker (the one that does not run an instance forwards the request).
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { createEndpoint, message, serve, statefulFunction, types } from "@eddy/sdk";
import { type KafkaBroker, startKafka } from "../support/kafka-broker.ts";
import { askCount, clusterWorkerProcess, type EddyProcess, endpointAndIngressYaml, withEddy } from "./smoke/cluster.ts";

const IDS = 12;
/** How many times the kill test kills a worker (test/soak/cluster.sh raises it). */
const KILLS = Number(process.env.CLUSTER_KILLS ?? 4);

/** Counts every message; "hops:k" is sent on to another instance with k-1; "get" answers the count. */
const counter = statefulFunction({
  typename: "ce/counter",
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
      const next = String((Number(ctx.self.id) * 5 + hops) % IDS);
      ctx.send(message({ typename: "ce/counter", id: next }, `hops:${hops - 1}`, types.string));
    }
  },
});

let broker: KafkaBroker;
/** The checkpoint store all the workers share: a partition's snapshots must be where its next owner looks. */
const checkpoints = mkdtempSync(join(tmpdir(), "eddy-ce-checkpoints-"));
let functions: Awaited<ReturnType<typeof serve>>;
before(async () => {
  broker = await startKafka();
  functions = await serve(createEndpoint([counter]), { port: 0, host: "127.0.0.1" });
});
after(async () => {
  rmSync(checkpoints, { recursive: true, force: true });
  await functions?.close();
  await broker?.stop();
});

/** A worker of cluster `cluster` (each test has its own: the changelog keeps a cluster's state for good). */
function worker(cluster: string, workerId: string): EddyProcess {
  return clusterWorkerProcess({
    moduleYaml: endpointAndIngressYaml("ce/*", functions.url),
    bootstrap: broker.bootstrap,
    cluster,
    workerId,
    checkpoints,
  });
}

/** Sends `count` messages of 3 hops through `via`, each with its own idempotency key, until each is taken. */
async function send(via: EddyProcess, prefix: string, count: number): Promise<void> {
  for (let index = 0; index < count; index++) {
    for (let attempt = 0; ; attempt++) {
      const response = await fetch(`${via.ingressUrl()}ce/counter/${index % IDS}`, {
        method: "PUT",
        headers: { "content-type": "text/plain", "idempotency-key": `${prefix}-${index}` },
        body: "hops:3",
      }).catch(() => undefined);
      if (response?.status === 200) break;
      await response?.text();
      assert.ok(attempt < 100, `message ${prefix}-${index}: ${response?.status}`);
      await sleep(200);
    }
  }
}

async function waitForTotal(workers: readonly EddyProcess[], expected: number): Promise<void> {
  let last: (number | undefined)[] = [];
  const deadline = Date.now() + 90_000;
  while (Date.now() < deadline) {
    last = [];
    // Each instance asked of the workers in turn: most answers come through a forward.
    for (let id = 0; id < IDS; id++)
      last.push(await askCount(workers[id % workers.length] as EddyProcess, "ce/counter", id));
    const total = last.every((count) => count !== undefined)
      ? last.reduce<number>((sum, count) => sum + (count as number), 0)
      : undefined;
    if (total === expected) return;
    assert.ok(total === undefined || total <= expected, `counted ${total}, more than the ${expected} messages make`);
    await sleep(500);
  }
  assert.fail(`the counts ${JSON.stringify(last)} do not add up to ${expected}`);
}

describe("eddy run --cluster", () => {
  it("two workers share the work, survive kill -9 with and without their disk and a zombie, and count every message once", async () => {
    const a = worker("two", "a");
    const b = worker("two", "b");
    await withEddy(a, () =>
      withEddy(b, async () => {
        await a.start();
        await b.start();
        await send(a, "one", 20);
        await send(b, "two", 20);
        await waitForTotal([a, b], 40 * 4);
        await b.kill();
        await send(a, "three", 20);
        await b.start();
        await send(b, "four", 20);
        await waitForTotal([a, b], 80 * 4);
        await a.kill();
        await a.wipeState();
        await a.start();
        await send(a, "five", 20);
        // Sent again with keys already taken: not counted again.
        await send(b, "one", 20);
        await waitForTotal([a, b], 100 * 4);
        // b frozen past its session timeout: a takes its partitions; b, resumed, still believes
        // in its old generation until its commits are refused and it learns it lost them.
        b.pause();
        const frozenAt = b.output.length;
        await send(a, "six", 20);
        await sleep(13_000);
        b.resume();
        await send(b, "seven", 20);
        await waitForTotal([a, b], 140 * 4);
        assert.match(b.output.slice(frozenAt), /lost partitions/, "the resumed worker learns it lost its partitions");
      }),
    );
  });

  it(`three workers: ${KILLS} times kill -9 of a random worker while messages flow, half restarted on an empty disk`, async () => {
    const workers = [worker("three", "k1"), worker("three", "k2"), worker("three", "k3")];
    const [k1, k2, k3] = workers as [EddyProcess, EddyProcess, EddyProcess];
    await withEddy(k1, () =>
      withEddy(k2, () =>
        withEddy(k3, async () => {
          for (const eddy of workers) await eddy.start();
          let sent = 0;
          for (let kill = 0; kill < KILLS; kill++) {
            const victim = workers[kill % workers.length] as EddyProcess;
            const via = workers[(kill + 1) % workers.length] as EddyProcess;
            await victim.kill();
            if (kill % 2 === 1) victim.wipeState();
            await send(via, `kill-${kill}`, 10);
            sent += 10;
            await victim.start();
            await send(victim, `back-${kill}`, 10);
            sent += 10;
          }
          await waitForTotal(workers, sent * 4);
        }),
      ),
    );
  });
});
