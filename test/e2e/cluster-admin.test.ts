// The admin API of a cluster answers for the whole cluster from any worker, on a real broker with
// two `eddy run --cluster` workers sharing a bearer token: an instance's state is read and
// written through the worker that does not run it (the owner answers, and the function sees the
// write next), lists and counters merge both workers' (each worker's own share, asked with the
// forwarded header, adds up to the merged answer), a pause reaches both workers, dead letters
// of both are paged through one worker and replayed through the other, and a worker that is
// killed is named in what is answered without it.
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { createEndpoint, serve, statefulFunction, types } from "@eddy/sdk";
import { addressKey, type FunctionTypename } from "../../packages/runtime/src/core/address.ts";
import { partitionOf } from "../../packages/runtime/src/core/partitioning.ts";
import { type KafkaBroker, startKafka } from "../support/kafka-broker.ts";
import { EddyProcess, freePort, partitionsOf, withEddy } from "./smoke/cluster.ts";

const CLUSTER = "adm";
const TYPENAME = "adm/counter" as FunctionTypename;
/** eddy run --cluster's default. */
const PARTITIONS = 128;
const TOKEN = "cluster-admin-token";
const AUTH = { authorization: `Bearer ${TOKEN}` };

/** While set, every "inc" fails (and, its call budget spent, becomes a dead letter). */
let failing = false;
const counter = statefulFunction({
  typename: TYPENAME,
  state: { count: types.int },
  handle(ctx, msg) {
    if (msg.as(types.string) === "get") {
      ctx.reply(ctx.storage.count ?? 0, types.int);
      return;
    }
    if (failing) throw new Error("failing for now");
    ctx.storage.count = (ctx.storage.count ?? 0) + 1;
  },
});

let broker: KafkaBroker;
const checkpoints = mkdtempSync(join(tmpdir(), "eddy-adm-checkpoints-"));
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

interface Worker {
  readonly eddy: EddyProcess;
  readonly admin: string;
}

async function worker(workerId: string): Promise<Worker> {
  const adminPort = await freePort();
  const eddy = new EddyProcess({
    moduleYaml: `kind: io.statefun.endpoints.v2/http
spec:
  functions: adm/*
  urlPathTemplate: ${functions.url}
  transport:
    call: 400ms
---
kind: io.statefun.playground.v1/ingress
spec:
  port: {{INGRESS_PORT}}
`,
    args: [
      "run",
      "{{MODULE}}",
      "--state-dir",
      "{{STATE_DIR}}",
      "--cluster",
      `kafka://${broker.bootstrap}/${CLUSTER}`,
      "--checkpoints",
      `file://${checkpoints}`,
      "--worker-id",
      workerId,
      "--admin-port",
      String(adminPort),
      "--failure-policy",
      "dead-letter",
    ],
    env: { EDDY_TOKEN: TOKEN },
  });
  return { eddy, admin: `http://127.0.0.1:${adminPort}` };
}

/** An admin call's status and JSON body; `only` asks that worker alone (as another worker would). */
async function api(
  via: Worker,
  method: string,
  path: string,
  options: { body?: unknown; only?: boolean } = {},
): Promise<{ status: number; body: Record<string, unknown> }> {
  const response = await fetch(`${via.admin}${path}`, {
    method,
    headers: {
      ...AUTH,
      ...(options.body === undefined ? {} : { "content-type": "application/json" }),
      ...(options.only === true ? { "eddy-admin-forwarded": "test" } : {}),
    },
    ...(options.body === undefined ? {} : { body: JSON.stringify(options.body) }),
  });
  return { status: response.status, body: (await response.json()) as Record<string, unknown> };
}

async function ok(via: Worker, method: string, path: string, options: { body?: unknown; only?: boolean } = {}) {
  const { status, body } = await api(via, method, path, options);
  assert.equal(status, 200, `${method} ${path}: ${JSON.stringify(body)}`);
  return body;
}

/** Sends until the ingress takes it (503 while the cluster moves the instance); its answer. */
async function send(via: Worker, id: string, text: string, wait = false): Promise<string> {
  for (let attempt = 0; attempt < 100; attempt++) {
    const response = await fetch(`${via.eddy.ingressUrl()}adm/counter/${id}`, {
      method: "PUT",
      headers: { ...AUTH, "content-type": "text/plain", ...(wait ? { prefer: "wait=10" } : {}) },
      body: text,
    }).catch(() => undefined);
    const body = (await response?.text()) ?? "";
    if (response?.status === 200) return body;
    assert.ok(response === undefined || response.status === 503, `${id}: ${response?.status} ${body}`);
    await sleep(200);
  }
  assert.fail(`${id} was never taken`);
}

/** An id whose partition is in `partitions`, other than those in `taken`. */
function idIn(partitions: readonly number[], taken: readonly string[] = []): string {
  for (let n = 0; ; n++) {
    const id = `i${n}`;
    if (!taken.includes(id) && partitions.includes(partitionOf(addressKey({ typename: TYPENAME, id }), PARTITIONS))) {
      return id;
    }
  }
}

const typeStats = (body: Record<string, unknown>) =>
  (body.functionTypes as Record<string, { invocations: number; paused: boolean }>)[TYPENAME];

describe("the admin API of a cluster", { timeout: 120_000 }, () => {
  it("answers for both workers from either one", async () => {
    const a = await worker("a");
    const b = await worker("b");
    await withEddy(a.eddy, () =>
      withEddy(b.eddy, async () => {
        await a.eddy.start();
        await b.eddy.start();
        let owned: [number[], number[]] = [[], []];
        for (let tries = 0; tries < 150; tries++) {
          owned = [await partitionsOf(a.eddy, AUTH), await partitionsOf(b.eddy, AUTH)];
          if (owned[0].length > 0 && owned[1].length > 0 && owned[0].length + owned[1].length === PARTITIONS) break;
          await sleep(200);
        }
        assert.equal(owned[0].length + owned[1].length, PARTITIONS, "the two workers share the partitions");

        // The overview through either worker is the cluster's: both workers, every partition.
        const overview = await ok(a, "GET", "/v1/overview");
        assert.equal(overview.ownedPartitions, PARTITIONS);
        assert.deepEqual(
          (overview.workers as { workerId: string; ownedPartitions: number }[])
            .map(({ workerId, ownedPartitions }) => [workerId, ownedPartitions])
            .sort(),
          [
            ["a", owned[0].length],
            ["b", owned[1].length],
          ],
        );
        assert.deepEqual(overview.cluster, { workers: 2, answered: ["a", "b"], unanswered: [], partitionsMissing: 0 });

        // Two instances on each worker, all sent through a.
        const onA = [idIn(owned[0])];
        onA.push(idIn(owned[0], onA));
        const onB = [idIn(owned[1])];
        onB.push(idIn(owned[1], onB));
        for (const id of [...onA, ...onB]) await send(a, id, "inc");

        // An instance b runs, read through a: b's answer, its partition b's.
        const state = await ok(a, "GET", `/v1/state/adm/counter/${onB[0]}`);
        assert.ok(owned[1].includes(state.partition as number), `partition ${state.partition}`);
        assert.deepEqual((state.state as Record<string, { value: unknown }>).count?.value, 1);
        // a alone does not run it.
        const local = await api(a, "GET", `/v1/state/adm/counter/${onB[0]}`, { only: true });
        assert.equal(local.status, 409, JSON.stringify(local.body));
        assert.equal(local.body.code, "not-owner");

        // A checkpoint on demand is refused in one precise line, not as "without --checkpoints".
        const refused = await api(a, "POST", "/v1/checkpoints");
        assert.equal(refused.status, 409, JSON.stringify(refused.body));
        assert.equal(refused.body.code, "not-in-cluster-mode");
        assert.match(
          String(refused.body.message),
          /^a cluster takes no checkpoint on demand: .*POST \/v1\/savepoints$/,
        );

        // A savepoint, asked of b, is of the whole cluster: every partition, from both workers.
        const savepoint = await ok(b, "POST", "/v1/savepoints", { body: { name: "before-upgrade" } });
        assert.equal(savepoint.scope, "cluster");
        assert.equal(savepoint.partitions, PARTITIONS);
        assert.deepEqual(savepoint.workers, ["a", "b"]);
        assert.ok((savepoint.rows as number) > 0, JSON.stringify(savepoint));
        // Its name is taken now; a bad name is refused before anything is held.
        const again = await api(a, "POST", "/v1/savepoints", { body: { name: "before-upgrade" } });
        assert.equal(again.status, 409, JSON.stringify(again.body));
        assert.equal(again.body.code, "savepoint-exists");
        const badName = await api(a, "POST", "/v1/savepoints", { body: { name: "../up" } });
        assert.equal(badName.status, 400, JSON.stringify(badName.body));
        assert.match(String(badName.body.message), /^savepoint name "\.\.\/up": expected/);

        // Written through a, on b: the function's next invocation sees it.
        const put = await ok(a, "PUT", `/v1/state/adm/counter/${onB[0]}/count`, { body: { value: 41 } });
        assert.equal(put.value, 41);
        await send(a, onB[0] as string, "inc");
        assert.equal(Number(await send(a, onB[0] as string, "get", true)), 42);

        // The ids that hold state, a page of one at a time through b: all four, in order, once.
        const paged: string[] = [];
        let after: string | null = null;
        for (let page = 0; page < 10; page++) {
          const query: string = after === null ? "" : `&after=${encodeURIComponent(after)}`;
          const body = await ok(b, "GET", `/v1/state/adm/counter?limit=1${query}`);
          paged.push(...(body.ids as string[]));
          after = body.next as string | null;
          if (after === null) break;
        }
        assert.deepEqual(paged, [...onA, ...onB].sort());

        // The counters through a are both workers' own added up.
        const merged = typeStats(await ok(a, "GET", "/v1/stats"));
        const shares = [
          typeStats(await ok(a, "GET", "/v1/stats", { only: true })),
          typeStats(await ok(b, "GET", "/v1/stats", { only: true })),
        ];
        assert.ok((shares[0]?.invocations ?? 0) > 0 && (shares[1]?.invocations ?? 0) > 0, JSON.stringify(shares));
        assert.equal(merged?.invocations, (shares[0]?.invocations ?? 0) + (shares[1]?.invocations ?? 0));
        const listed = (await ok(b, "GET", "/v1/function-types")).functionTypes as {
          typename: string;
          invocations: number;
        }[];
        assert.equal(listed.find(({ typename }) => typename === TYPENAME)?.invocations, merged?.invocations);

        // A pause through b pauses the type on a too; a resume through a resumes both.
        assert.equal((await ok(b, "POST", "/v1/function-types/adm/counter/pause")).paused, true);
        assert.equal((await ok(a, "GET", "/v1/function-types/adm/counter", { only: true })).paused, true);
        assert.equal((await ok(a, "POST", "/v1/function-types/adm/counter/resume")).paused, false);
        assert.equal((await ok(b, "GET", "/v1/function-types/adm/counter", { only: true })).paused, false);

        // Dead letters of both workers, paged through b, replayed through a.
        failing = true;
        for (const id of [onA[1], onB[1]]) await send(a, id as string, "inc");
        let letters: { id: string; target: { id: string } }[] = [];
        for (let tries = 0; tries < 60 && letters.length < 2; tries++) {
          await sleep(250);
          letters = [];
          let cursor: string | null = null;
          for (let page = 0; page < 5; page++) {
            const query: string = cursor === null ? "" : `&after=${encodeURIComponent(cursor)}`;
            const body = await ok(b, "GET", `/v1/dead-letters?limit=1${query}`);
            letters.push(...(body.deadLetters as typeof letters));
            cursor = body.next as string | null;
            if (cursor === null) break;
          }
        }
        assert.deepEqual(letters.map(({ target }) => target.id).sort(), [onA[1], onB[1]].sort());
        failing = false;
        const replayed = await ok(a, "POST", "/v1/dead-letters/replay", { body: { all: true } });
        assert.deepEqual((replayed.replayed as string[]).sort(), letters.map(({ id }) => id).sort());
        for (const id of [onA[1], onB[1]]) assert.equal(Number(await send(b, id as string, "get", true)), 2, id);
        const none = await api(b, "POST", `/v1/dead-letters/${letters[0]?.id}/replay`);
        assert.equal(none.status, 404, JSON.stringify(none.body));
        assert.equal(none.body.code, "no-such-dead-letter");

        // b killed: until the group moves its partitions, what is asked of it is named, not skipped.
        await b.eddy.kill();
        const partial = await ok(a, "GET", "/v1/overview");
        const coverage = partial.cluster as {
          answered: string[];
          unanswered: { workerId: string }[];
          partitionsMissing: number;
        };
        assert.deepEqual(coverage.answered, ["a"]);
        assert.deepEqual(
          coverage.unanswered.map(({ workerId }) => workerId),
          ["b"],
        );
        assert.equal(coverage.partitionsMissing, owned[1].length);
        const gone = await api(a, "GET", `/v1/state/adm/counter/${onB[0]}`);
        assert.equal(gone.status, 502, JSON.stringify(gone.body));
        assert.equal(gone.body.code, "worker-unreachable");
        assert.match(gone.body.message as string, /^worker b, which runs it, did not answer: /);
      }),
    );
  });
});
