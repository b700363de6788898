// Request-reply through a worker that does not run the target, with the one that does killed
// (kill -9) during some of the waits. The requests carry no Idempotency-Key, so a client
// cannot safely send one again unless it knows it was not taken: every request must be
// answered once, with its reply (200), or with 202 and a Location whose poll gives the reply,
// or 404 there (never taken: then it is sent again). The function answers each increment with
// its new count, so the replies of one instance must be exactly 1..n, and its count n: a
// request applied twice, or applied without its client hearing of it, breaks that.
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { createEndpoint, serve, statefulFunction, types } from "@eddy/sdk";
import { type KafkaBroker, startKafka } from "../support/kafka-broker.ts";
import { clusterWorkerProcess, type EddyProcess, endpointAndIngressYaml, withEddy } from "./smoke/cluster.ts";

const IDS = 16;
const REQUESTS = Number(process.env.CLUSTER_RR_REQUESTS ?? 120);
const KILLS = Number(process.env.CLUSTER_RR_KILLS ?? 3);
const CONCURRENCY = 6;

/** "inc" adds one and answers the new count, after a moment (so that kills land in the waits); "get" answers the count. */
const counter = statefulFunction({
  typename: "rr/counter",
  state: { count: types.int },
  async handle(ctx, msg) {
    if (msg.as(types.string) === "get") {
      ctx.reply(ctx.storage.count ?? 0, types.int);
      return;
    }
    await sleep(200);
    const count = (ctx.storage.count ?? 0) + 1;
    ctx.storage.count = count;
    ctx.reply(count, types.int);
  },
});

let broker: KafkaBroker;
/** The checkpoint store all the workers share: a partition's snapshots must be where its next owner looks. */
const checkpoints = mkdtempSync(join(tmpdir(), "eddy-rr-checkpoints-"));
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

function worker(workerId: string): EddyProcess {
  return clusterWorkerProcess({
    moduleYaml: endpointAndIngressYaml("rr/*", functions.url),
    bootstrap: broker.bootstrap,
    cluster: "rr",
    workerId,
    checkpoints,
  });
}

type Outcome = { readonly applied: number } | "not-taken";

/** Polls a request's Location through `via` until it is answered (its count) or known never taken. */
async function poll(via: EddyProcess, location: string, deadlineMs: number): Promise<Outcome> {
  while (Date.now() < deadlineMs) {
    const response = await fetch(new URL(location, via.ingressUrl()), { headers: { prefer: "wait=5" } }).catch(
      () => undefined,
    );
    const text = (await response?.text()) ?? "";
    if (response?.status === 200) return { applied: Number(text) };
    if (response?.status === 404) return "not-taken";
    assert.ok(response === undefined || response.status === 202 || response.status === 503, `poll: ${text}`);
    await sleep(200);
  }
  assert.fail(`the poll of ${location} never ended`);
}

describe("eddy run --cluster: request-reply through another worker", () => {
  it("with the owner killed during some waits, each request is answered once and applied at most once", async (t) => {
    const a = worker("a");
    const b = worker("b");
    await withEddy(a, () =>
      withEddy(b, async () => {
        await a.start();
        await b.start();
        const deadlineMs = Date.now() + 180_000;
        /** Per instance, the counts its increments answered. */
        const answered = Array.from({ length: IDS }, () => [] as number[]);
        let accepted202 = 0;
        let resent = 0;
        let done = 0;
        let next = 0;
        const clients = Array.from({ length: CONCURRENCY }, async () => {
          while (next < REQUESTS) {
            const id = next++ % IDS;
            for (;;) {
              assert.ok(Date.now() < deadlineMs, "the requests took too long");
              const response = await fetch(`${a.ingressUrl()}rr/counter/${id}`, {
                method: "PUT",
                headers: { "content-type": "text/plain", prefer: "wait=10" },
                body: "inc",
              }).catch(() => undefined);
              const text = (await response?.text()) ?? "";
              let outcome: Outcome;
              if (response?.status === 200) outcome = { applied: Number(text) };
              else if (response?.status === 202) {
                accepted202++;
                outcome = await poll(a, response.headers.get("location") ?? "", deadlineMs);
              } else {
                // Only a refusal before anything was taken may be sent again blind.
                assert.equal(response?.status, 503, `request to ${id}: ${response?.status} ${text}`);
                assert.doesNotMatch(text, /did not answer/, "an owner's silence is a 202 to poll, not a 503");
                await sleep(200);
                continue;
              }
              if (outcome === "not-taken") {
                resent++;
                continue;
              }
              answered[id]?.push(outcome.applied);
              done++;
              break;
            }
          }
        });
        // b is killed in the middle of waits, and comes back (every other time on an empty disk).
        const killing = (async () => {
          for (let kill = 0; kill < KILLS; kill++) {
            while (done < ((kill + 1) * REQUESTS) / (KILLS + 2) && Date.now() < deadlineMs) await sleep(20);
            await b.kill();
            if (kill % 2 === 1) b.wipeState();
            await sleep(500);
            await b.start();
          }
        })();
        await Promise.all([...clients, killing]);
        for (let id = 0; id < IDS; id++) {
          const counts = [...(answered[id] as number[])].sort((x, y) => x - y);
          assert.deepEqual(
            counts,
            counts.map((_, index) => index + 1),
            `instance ${id} answered ${JSON.stringify(counts)}`,
          );
          let final: number | undefined;
          for (let tries = 0; tries < 50 && final === undefined; tries++) {
            const response = await fetch(`${a.ingressUrl()}rr/counter/${id}`, {
              method: "PUT",
              headers: { "content-type": "text/plain", prefer: "wait=5" },
              body: "get",
            }).catch(() => undefined);
            const text = (await response?.text()) ?? "";
            if (response?.status === 200) final = Number(text);
            else await sleep(200);
          }
          assert.equal(final, counts.length, `instance ${id}'s count`);
        }
        t.diagnostic(
          `${REQUESTS} requests: ${accepted202} answered 202 then polled, ${resent} polled 404 and sent again`,
        );
        assert.ok(accepted202 > 0, "some waits were cut by a kill and answered 202");
      }),
    );
  });
});
