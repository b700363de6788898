// The playground egress in cluster mode, on a real broker with two workers: functions on both
// workers send records; GET on one worker's egress hands out every record of the cluster,
// each once (those the other worker holds through it), then 404. Records sent while a worker
// is killed with kill -9 and restarted are all handed out once afterwards, through the other
// worker: the records move with their partitions, and a record is written in the same commit
// that settles its outbox entry, so none is lost or doubled.
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { createEndpoint, egressMessage, serve, statefulFunction, types } from "@eddy/sdk";
import { addressKey, type FunctionTypename } from "../../packages/runtime/src/core/address.ts";
import { partitionOf } from "../../packages/runtime/src/core/partitioning.ts";
import { type KafkaBroker, startKafka } from "../support/kafka-broker.ts";
import { clusterWorkerProcess, type EddyProcess, partitionsOf, playgroundYaml, withEddy } from "./smoke/cluster.ts";

const CLUSTER = "pg";
const TYPENAME = "pg/echo" as FunctionTypename;
/** eddy run --cluster's default. */
const PARTITIONS = 128;
/** Records per worker in the first batch. */
const PER_WORKER = 15;
/** Records of the batch sent while a worker is killed. */
const DURING_KILL = 30;

const EgressRecordType = types.json<{ topic: string; payload: string }>("io.statefun.playground/EgressRecord");
const echo = statefulFunction({
  typename: TYPENAME,
  handle(ctx, msg) {
    ctx.send(
      egressMessage("io.statefun.playground/egress", { topic: "out", payload: msg.as(types.string) }, EgressRecordType),
    );
  },
});

let broker: KafkaBroker;
const checkpoints = mkdtempSync(join(tmpdir(), "eddy-pg-checkpoints-"));
let functions: Awaited<ReturnType<typeof serve>>;
before(async () => {
  broker = await startKafka();
  functions = await serve(createEndpoint([echo]), { port: 0, host: "127.0.0.1" });
});
after(async () => {
  rmSync(checkpoints, { recursive: true, force: true });
  await functions?.close();
  await broker?.stop();
});

function worker(workerId: string): EddyProcess {
  return clusterWorkerProcess({
    moduleYaml: `kind: io.statefun.endpoints.v2/http
spec:
  functions: pg/*
  urlPathTemplate: ${functions.url}
---
${playgroundYaml(["out"])}`,
    bootstrap: broker.bootstrap,
    cluster: CLUSTER,
    workerId,
    checkpoints,
  });
}

/** Waits until the two workers share every partition; returns what each runs. */
async function shared(a: EddyProcess, b: EddyProcess): Promise<[number[], number[]]> {
  let owned: [number[], number[]] = [[], []];
  for (let tries = 0; tries < 200; tries++) {
    owned = [await partitionsOf(a), await partitionsOf(b)];
    if (owned[0].length > 0 && owned[1].length > 0 && owned[0].length + owned[1].length === PARTITIONS) return owned;
    await sleep(200);
  }
  assert.fail(`the two workers do not share the partitions: ${owned[0].length} and ${owned[1].length}`);
}

/** Sends `text` to pg/echo/<id> until the ingress takes it; the key makes a retry after a lost answer a no-op. */
async function send(via: EddyProcess, id: string, text: string): Promise<void> {
  for (let attempt = 0; attempt < 150; attempt++) {
    const response = await fetch(`${via.ingressUrl()}pg/echo/${id}`, {
      method: "PUT",
      headers: { "content-type": "text/plain", "idempotency-key": text },
      body: text,
    }).catch(() => undefined);
    const body = (await response?.text()) ?? "";
    if (response?.status === 200) return;
    assert.ok(response === undefined || response.status >= 500, `${id}: ${response?.status} ${body}`);
    await sleep(200);
  }
  assert.fail(`${text} was never taken`);
}

/** GETs the topic from `via`'s egress until 404 for a while, with `expected` records seen; what it got, in order. */
async function drain(via: EddyProcess, expected: number): Promise<string[]> {
  const got: string[] = [];
  for (let tries = 0; tries < 600; tries++) {
    const response = await fetch(`${via.egressUrl()}out`).catch(() => undefined);
    const body = (await response?.text()) ?? "";
    if (response?.status === 200) {
      got.push(body);
      continue;
    }
    assert.ok(response === undefined || [404, 503].includes(response.status), `GET out: ${response?.status} ${body}`);
    // Records still on their way (a function call, a commit) come a moment later.
    if (response?.status === 404 && got.length >= expected) {
      await sleep(500);
      const last = await fetch(`${via.egressUrl()}out`);
      const text = await last.text();
      if (last.status === 200) got.push(text);
      else return got;
    }
    await sleep(100);
  }
  return got;
}

/** Ids of pg/echo whose partitions are in `mine`, `count` of them, not in `taken`. */
function idsIn(mine: readonly number[], count: number, taken: Set<string>): string[] {
  const ids: string[] = [];
  for (let n = 0; ids.length < count; n++) {
    const id = `e${n}`;
    if (taken.has(id) || !mine.includes(partitionOf(addressKey({ typename: TYPENAME, id }), PARTITIONS))) continue;
    ids.push(id);
    taken.add(id);
  }
  return ids;
}

describe("the playground egress in cluster mode", { timeout: 150_000 }, () => {
  it("hands out every worker's records through either worker, each once, across kill -9 of one", async () => {
    const a = worker("a");
    const b = worker("b");
    await withEddy(a, () =>
      withEddy(b, async () => {
        await a.start();
        await b.start();
        const owned = await shared(a, b);
        const taken = new Set<string>();
        const first = [...idsIn(owned[0], PER_WORKER, taken), ...idsIn(owned[1], PER_WORKER, taken)];
        // All through a: half are forwarded to b, whose functions send half the records.
        for (const id of first) await send(a, id, `first ${id}`);
        const fromA = await drain(a, first.length);
        assert.deepEqual(fromA.slice().sort(), first.map((id) => `first ${id}`).sort(), "every record once, through a");
        const emptyB = await fetch(`${b.egressUrl()}out`);
        assert.equal(emptyB.status, 404, await emptyB.text());

        // Records sent while b is killed and restarted on its disk: all out once, through a.
        const second = Array.from({ length: DURING_KILL }, (_, n) => `k${n}`);
        const sending = (async () => {
          for (const id of second) await send(a, id, `second ${id}`);
        })();
        await sleep(300);
        await b.kill();
        await sleep(1000);
        await b.start();
        await sending;
        await shared(a, b);
        const afterKill = [...(await drain(a, second.length)), ...(await drain(b, 0))];
        assert.deepEqual(
          afterKill.slice().sort(),
          second.map((id) => `second ${id}`).sort(),
          "every record sent around the kill, once, and none of the first batch again",
        );
      }),
    );
  });
});
