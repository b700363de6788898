// Everything else keeps working in cluster mode, across the loss of a worker: two workers of
// one cluster on a real Kafka broker run a module naming the functions of every official
// StateFun SDK (Go, Java, Python, JS: the greeter and counter of test/e2e/official-sdks/) and
// functions of Eddy's SDK that schedule delayed messages (some cancelled) and keep state with
// a TTL. Worker b is killed with SIGKILL while requests flow, a takes its partitions, and b is
// restarted and takes its share back:
// - every SDK's counters (one run by each worker) are asked in order through both workers,
//   each request with its own Idempotency-Key and retried until answered: the answers must be
//   exactly 1..n (a request applied twice skips a number); the greeters remember their visits;
// - delayed messages scheduled on b's instances before the kill fire exactly once (on a, or on
//   b once it is back), the ones cancelled (on b before the kill, or on a after it took the
//   partition over) never;
// - values with a TTL written on b's instances are gone on a after their TTL, a value without
//   one (and one with a long TTL) is still there.
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { after, before, describe, it } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { createEndpoint, message, serve, statefulFunction, types } from "@eddy/sdk";
import { addressKey, type FunctionTypename } from "../../packages/runtime/src/core/address.ts";
import { partitionOf } from "../../packages/runtime/src/core/partitioning.ts";
import { type KafkaBroker, startKafka } from "../support/kafka-broker.ts";
import { startOfficialSdkServer } from "../support/official-sdk-servers.ts";
import type { PortPrintingServer } from "../support/port-printing-server.ts";
import { startPythonServer } from "../support/python-server.ts";
import { serveJsSdkFunctions } from "./official-sdks/js-functions.ts";
import { clusterWorkerProcess, type EddyProcess } from "./smoke/cluster.ts";

const root = resolve(import.meta.dirname, "../..");

/** Each official SDK's functions are <namespace>/greeter and <namespace>/counter. */
const SDKS = ["go", "java", "py", "js"] as const;
type Sdk = (typeof SDKS)[number];

/** How long one request may go unanswered, across the kill and the restart, before the test gives up. */
const ANSWERED_WITHIN_MS = 60_000;
/** A pause between a counter client's requests: eight clients must not starve two cores. */
const CLIENT_PAUSE_MS = 100;
/** Each counter client's answers after b is back, at least: the kill and the restart both fall inside every client's run. */
const ANSWERS_AFTER_RESTART = 3;

/** The delays of the three groups of delayed messages, and their tokens (cancelled: see below). */
const SHORT_DELAY_MS = 6_000; // due while b is dead and nobody runs its partitions yet
const MEDIUM_DELAY_MS = 15_000; // due about when a has taken them over
const LONG_DELAY_MS = 32_000; // due after b is back: cancelled in part on a meanwhile
const SHORT = ["s0", "s1", "s2", "s3"];
const MEDIUM = ["m0", "m1", "m2", "m3"];
const LONG = ["l0", "l1", "l2", "l3"];
/** Cancelled on b (through a, forwarded) before the kill. */
const CANCELLED_BEFORE_KILL = ["s1", "s3", "m0", "m2", "l1"];
/** Cancelled on a once it runs b's partitions, if that is well before they are due. */
const CANCELLED_ON_A = ["l3"];
/** After the due time, how long a cancelled message gets to show up before "never" is believed. */
const NEVER_MARGIN_MS = 3_000;

/** The short expiry of the TTL test: shorter than any failover (the session timeout alone is 10 s). */
const TTL_MS = 5_000;

/**
 * "schedule <delay> <token>,…": a delayed "fire <token>" to itself per token, cancellable by
 * the token; "cancel <token>,…" cancels; "fire <token>" appends the token to `fired`;
 * "get" answers `fired` (each token once per firing, in order).
 */
const timer = statefulFunction({
  typename: "ed/timer",
  state: { fired: types.string },
  handle(ctx, msg) {
    const [verb, first = "", second = ""] = msg.as(types.string).split(" ");
    if (verb === "schedule") {
      for (const token of second.split(",")) {
        ctx.sendAfter(Number(first), message(ctx.self, `fire ${token}`, types.string), { cancellationToken: token });
      }
      ctx.reply("scheduled", types.string);
    } else if (verb === "cancel") {
      for (const token of first.split(",")) ctx.cancelDelayedMessage(token);
      ctx.reply("cancelled", types.string);
    } else if (verb === "fire") {
      ctx.storage.fired = `${ctx.storage.fired ?? ""}${first},`;
    } else {
      ctx.reply(ctx.storage.fired ?? "", types.string);
    }
  },
});

/** "set <v>" writes v to all four values; "get" answers them as JSON (null: none). */
const ttl = statefulFunction({
  typename: "ed/ttl",
  state: {
    written: { type: types.string, expireAfterWrite: TTL_MS },
    invoked: { type: types.string, expireAfterInvoke: TTL_MS },
    kept: { type: types.string, expireAfterWrite: 600_000 },
    plain: types.string,
  },
  handle(ctx, msg) {
    const [verb, value] = msg.as(types.string).split(" ");
    if (verb === "set") {
      ctx.storage.written = value;
      ctx.storage.invoked = value;
      ctx.storage.kept = value;
      ctx.storage.plain = value;
      ctx.reply("set", types.string);
      return;
    }
    const { written, invoked, kept, plain } = ctx.storage;
    ctx.reply(
      JSON.stringify({ written: written ?? null, invoked: invoked ?? null, kept: kept ?? null, plain: plain ?? null }),
      types.string,
    );
  },
});

let broker: KafkaBroker;
/** The checkpoint store both workers share: a partition's snapshots must be where its next owner looks. */
const checkpoints = mkdtempSync(join(tmpdir(), "eddy-sdks-timers-checkpoints-"));
const servers: PortPrintingServer[] = [];
let js: { url: string; close(): void } | undefined;
let eddyFunctions: Awaited<ReturnType<typeof serve>> | undefined;
let moduleYaml = "";

before(async () => {
  const [kafka, go, java, python] = await Promise.all([
    startKafka(),
    startOfficialSdkServer("go"),
    startOfficialSdkServer("java"),
    startPythonServer(resolve(root, "packages/sdk/test/interop/python/server.py"), {
      args: ["0", resolve(import.meta.dirname, "official-sdks/python")],
    }),
  ]);
  broker = kafka;
  servers.push(go, java, python);
  js = await serveJsSdkFunctions();
  eddyFunctions = await serve(createEndpoint([timer, ttl]), { port: 0, host: "127.0.0.1" });
  const urls: Record<Sdk | "ed", string> = {
    go: go.url,
    java: java.url,
    py: python.url,
    js: js.url,
    ed: eddyFunctions.url,
  };
  const endpoints = Object.entries(urls).map(
    ([namespace, url]) =>
      `kind: io.statefun.endpoints.v2/http\nspec:\n  functions: ${namespace}/*\n  urlPathTemplate: ${url}\n---\n`,
  );
  moduleYaml = `${endpoints.join("")}kind: io.statefun.playground.v1/ingress\nspec:\n  port: {{INGRESS_PORT}}\n`;
});

after(async () => {
  rmSync(checkpoints, { recursive: true, force: true });
  await Promise.all(servers.map((server) => server.close()));
  js?.close();
  await eddyFunctions?.close();
  await broker?.stop();
});

function worker(workerId: string): EddyProcess {
  return clusterWorkerProcess({ moduleYaml, bootstrap: broker.bootstrap, cluster: "sdks", workerId, checkpoints });
}

interface Holdings {
  readonly partitionCount: number;
  readonly partitions: readonly number[];
}

/** The partitions a worker runs now (its GET /dead-letters says), undefined while it cannot say. */
async function holdingsOf(eddy: EddyProcess): Promise<Holdings | undefined> {
  const response = await fetch(`${eddy.ingressUrl()}dead-letters`).catch(() => undefined);
  if (response?.status !== 200) {
    await response?.text();
    return undefined;
  }
  return (await response.json()) as Holdings;
}

/** Waits until `workers` together run every partition, each some, and returns their holdings. */
async function waitForSplit(workers: readonly EddyProcess[], deadlineMs: number): Promise<Holdings[]> {
  for (;;) {
    const holdings = await Promise.all(workers.map(holdingsOf));
    if (holdings.every((held) => held !== undefined && held.partitions.length > 0)) {
      const all = holdings as Holdings[];
      const total = all.reduce((sum, held) => sum + held.partitions.length, 0);
      if (total === all[0]?.partitionCount) return all;
    }
    assert.ok(Date.now() < deadlineMs, `the workers never split the partitions: ${JSON.stringify(holdings)}`);
    await sleep(200);
  }
}

/** Ids `<prefix><n>` of `typename` whose partitions are among `held`. */
function idsHeldBy(held: Holdings, typename: string, prefix: string, count: number): string[] {
  const ids: string[] = [];
  for (let n = 0; ids.length < count; n++) {
    const id = `${prefix}${n}`;
    const partition = partitionOf(addressKey({ typename: typename as FunctionTypename, id }), held.partitionCount);
    if (held.partitions.includes(partition)) ids.push(id);
  }
  return ids;
}

/**
 * Request-reply with `Prefer: wait` and an Idempotency-Key, first through `workers[first]`, then
 * the others in turn while one is down or refuses (503) or has not the reply yet (202: sent
 * again with the same key, which is never applied twice). Returns the reply and which worker gave it.
 */
async function ask(
  workers: readonly EddyProcess[],
  stop: { readonly aborted: boolean },
  first: number,
  path: string,
  body: string,
  key: string,
): Promise<{ reply: string; via: number }> {
  const deadline = Date.now() + ANSWERED_WITHIN_MS;
  for (let attempt = 0; Date.now() < deadline && !stop.aborted; attempt++) {
    const via = (first + attempt) % workers.length;
    const eddy = workers[via] as EddyProcess;
    const response = await fetch(`${eddy.ingressUrl()}${path}`, {
      method: "POST",
      headers: { "content-type": "text/plain", prefer: "wait=5", "idempotency-key": key },
      body,
    }).catch(() => undefined);
    const text = (await response?.text().catch(() => undefined)) ?? "";
    if (response?.status === 200) return { reply: text, via };
    assert.ok(
      response === undefined || response.status === 202 || response.status === 503,
      `${path} (${key}) through worker ${via}: ${response?.status} ${text}`,
    );
    retried[response === undefined ? "unreachable" : response.status === 202 ? "accepted" : "refused"]++;
    if (response?.status !== 202) await sleep(200);
  }
  assert.fail(
    `${path} (${key}) was not answered${stop.aborted ? " (the test failed)" : ` within ${ANSWERED_WITHIN_MS} ms`}`,
  );
}

/** One counter asked in order until told to stop; its answers, and how many came through each worker. */
interface CounterClient {
  readonly sdk: Sdk;
  readonly id: string;
  readonly answers: string[];
  readonly answeredVia: [number, number];
  done: Promise<void>;
}

/** How often a request was sent again: its worker was down, refused it (503), or answered 202. */
const retried = { unreachable: 0, refused: 0, accepted: 0 };

let keys = 0;
/** A fresh Idempotency-Key for this run (the cluster's state lives on in the broker). */
const freshKey = (what: string) => `${what}-${process.pid}-${keys++}`;

describe("eddy run --cluster: every SDK, delayed messages and TTL across kill -9 of a worker", {
  timeout: 240_000,
}, () => {
  it("answers every SDK through both workers exactly once, fires uncancelled delayed messages once, expires TTL state", async (t) => {
    const a = worker("a");
    const b = worker("b");
    const workers = [a, b] as const;
    /** What a failure shows: the end of both workers' output and of the function servers' stderr. */
    const diagnostics = () =>
      [
        `--- worker a ---\n${a.output.slice(-3000)}`,
        `--- worker b ---\n${b.output.slice(-3000)}`,
        ...servers.map((server) => `--- ${server.url} ---\n${server.log().slice(-800)}`),
      ].join("\n");
    /** counters: the counter clients may end (after their answers since b is back); aborted: the test failed. */
    const stop = { counters: false, aborted: false };
    let clients: CounterClient[] = [];
    try {
      const startedAt = Date.now();
      await a.start();
      await b.start();
      const [, onB] = (await waitForSplit(workers, Date.now() + 60_000)) as [Holdings, Holdings];
      const onA = { partitionCount: onB.partitionCount, partitions: [] as number[] };
      for (let partition = 0; partition < onB.partitionCount; partition++) {
        if (!onB.partitions.includes(partition)) onA.partitions.push(partition);
      }
      t.diagnostic(`split after ${Date.now() - startedAt} ms: b runs ${onB.partitions.length} partitions`);

      // Each SDK's counters, one run by each worker, asked through both in turn all along.
      let answersAtRestart = new Map<CounterClient, number>();
      clients = SDKS.flatMap((sdk) =>
        [onA, onB].map((held, side) => {
          const [id] = idsHeldBy(held, `${sdk}/counter`, side === 0 ? "on-a-" : "on-b-", 1) as [string];
          const client: CounterClient = { sdk, id, answers: [], answeredVia: [0, 0], done: Promise.resolve() };
          client.done = (async () => {
            for (let n = 0; ; n++) {
              if (stop.aborted) return;
              if (stop.counters && client.answers.length >= (answersAtRestart.get(client) ?? 0) + ANSWERS_AFTER_RESTART)
                return;
              const { reply, via } = await ask(
                workers,
                stop,
                n % 2,
                `${sdk}/counter/${id}`,
                "x",
                freshKey(`${sdk}-${id}`),
              );
              client.answers.push(reply);
              client.answeredVia[via === 0 ? 0 : 1]++;
              await sleep(CLIENT_PAUSE_MS);
            }
          })();
          return client;
        }),
      );
      // A client that fails stops the test at once, not after the whole timeline.
      const clientsDone = Promise.all(clients.map((client) => client.done));
      clientsDone.catch(() => {});

      // Every SDK's greeter on b, visited through a (forwarded) and b.
      const greeted = new Map<Sdk, string[]>();
      const greet = async (sdk: Sdk, id: string) => {
        for (let visit = 0; visit < 2; visit++) {
          const { reply } = await ask(workers, stop, visit, `${sdk}/greeter/${id}`, "hi", freshKey(`${sdk}-greet`));
          greeted.set(sdk, [...(greeted.get(sdk) ?? []), reply]);
        }
      };
      const greeterIds = new Map(SDKS.map((sdk) => [sdk, idsHeldBy(onB, `${sdk}/greeter`, "g", 1)[0] as string]));
      await Promise.all(SDKS.map((sdk) => greet(sdk, greeterIds.get(sdk) as string)));

      // Values with and without a TTL on an instance of b, read back at once through a.
      const [ttlId] = idsHeldBy(onB, "ed/ttl", "v", 1) as [string];
      const setSentAt = Date.now();
      await ask(workers, stop, 1, `ed/ttl/${ttlId}`, "set v", freshKey("set"));
      const setAnsweredAt = Date.now();
      const fresh = await ask(workers, stop, 0, `ed/ttl/${ttlId}`, "get", freshKey("get"));
      const lastInvokedBy = Date.now();
      if (lastInvokedBy < setSentAt + TTL_MS) {
        assert.deepEqual(
          JSON.parse(fresh.reply),
          { written: "v", invoked: "v", kept: "v", plain: "v" },
          "just written",
        );
      } else t.diagnostic(`the first read came ${lastInvokedBy - setSentAt} ms after the write: not checked`);

      // Delayed messages on two instances of b, scheduled through b, some cancelled through a;
      // the short ones last, to be due only after the kill.
      const timerIds = idsHeldBy(onB, "ed/timer", "t", 2);
      /** Per group, the latest moment its messages can be due (the schedule's answer + the delay). */
      const dueBy = new Map<string, number>();
      /** Per group, the earliest (the schedule's sending + the delay). */
      const dueFrom = new Map<string, number>();
      for (const [group, delayMs, tokens] of [
        ["long", LONG_DELAY_MS, LONG],
        ["medium", MEDIUM_DELAY_MS, MEDIUM],
        ["short", SHORT_DELAY_MS, SHORT],
      ] as const) {
        dueFrom.set(group, Date.now() + delayMs);
        for (const id of timerIds) {
          const { reply } = await ask(
            workers,
            stop,
            1,
            `ed/timer/${id}`,
            `schedule ${delayMs} ${tokens.join(",")}`,
            freshKey("schedule"),
          );
          assert.equal(reply, "scheduled");
        }
        dueBy.set(group, Date.now() + delayMs);
      }
      for (const id of timerIds) {
        const { reply } = await ask(
          workers,
          stop,
          0,
          `ed/timer/${id}`,
          `cancel ${CANCELLED_BEFORE_KILL.join(",")}`,
          freshKey("cancel"),
        );
        assert.equal(reply, "cancelled");
      }
      // Else a cancelled message could have fired before its cancellation: a slow machine, not a bug.
      assert.ok(Date.now() < (dueFrom.get("short") as number), "the cancellations came before the due times");

      // kill -9 of b while the counters are asked; a takes every partition.
      const answeredBeforeKill = clients.reduce((sum, client) => sum + client.answers.length, 0);
      await b.kill();
      const killedAt = Date.now();
      assert.ok(killedAt < (dueFrom.get("short") as number), "b was killed before any delayed message was due");
      for (;;) {
        const held = await holdingsOf(a);
        if (held !== undefined && held.partitions.length === held.partitionCount) break;
        assert.ok(Date.now() < killedAt + 90_000, "a never took b's partitions");
        await sleep(200);
      }
      const takenOverAt = Date.now();
      t.diagnostic(`a ran every partition ${takenOverAt - killedAt} ms after the kill`);

      // The cancellation tokens moved with the partition: one is cancelled on a now, if that is
      // surely before its message is due (else it is expected to fire, and said so).
      let cancelledOnA: readonly string[] = [];
      if (Date.now() < (dueFrom.get("long") as number) - 12_000) {
        for (const id of timerIds) {
          const { reply, via } = await ask(
            workers,
            stop,
            0,
            `ed/timer/${id}`,
            `cancel ${CANCELLED_ON_A.join(",")}`,
            freshKey("cancel"),
          );
          assert.deepEqual([reply, via], ["cancelled", 0]);
        }
        assert.ok(Date.now() < (dueFrom.get("long") as number), "the cancellation on a came before the due time");
        cancelledOnA = CANCELLED_ON_A;
      } else t.diagnostic("a took over too late to cancel a long delayed message before it is due: not cancelled");

      // The TTL values on a, after their TTL: the expiring ones gone, the others there.
      await sleep(Math.max(0, Math.max(setAnsweredAt, lastInvokedBy) + TTL_MS - Date.now()));
      const onNewOwner = await ask(workers, stop, 0, `ed/ttl/${ttlId}`, "get", freshKey("get"));
      assert.equal(onNewOwner.via, 0);
      assert.deepEqual(
        JSON.parse(onNewOwner.reply),
        { written: null, invoked: null, kept: "v", plain: "v" },
        "on a, after the TTL",
      );

      // On a: the short and medium messages fire, each once; the ones cancelled on b never.
      const expected = (tokens: readonly string[], cancelled: readonly string[]) =>
        tokens.filter((token) => !cancelled.includes(token)).sort();
      const firedOn = async (via: number, id: string): Promise<string[]> => {
        const { reply } = await ask(workers, stop, via, `ed/timer/${id}`, "get", freshKey("get"));
        return reply
          .split(",")
          .filter((token) => token !== "")
          .sort();
      };
      const shortAndMedium = expected([...SHORT, ...MEDIUM], CANCELLED_BEFORE_KILL);
      await sleep(Math.max(0, (dueBy.get("medium") as number) + NEVER_MARGIN_MS - Date.now()));
      for (const id of timerIds) {
        let fired: string[] = [];
        for (const deadline = Date.now() + 30_000; Date.now() < deadline; await sleep(300)) {
          fired = (await firedOn(0, id)).filter((token) => !token.startsWith("l"));
          if (fired.length >= shortAndMedium.length) break;
        }
        assert.deepEqual(fired, shortAndMedium, `timer ${id} on a: the short and medium messages fired`);
      }

      // b comes back (on its old disk) and takes its share back while the counters are asked.
      await b.start();
      await waitForSplit(workers, Date.now() + 60_000);
      answersAtRestart = new Map(clients.map((client) => [client, client.answers.length]));
      t.diagnostic(`b back and running its share ${Date.now() - killedAt} ms after the kill`);
      await Promise.all(SDKS.map((sdk) => greet(sdk, greeterIds.get(sdk) as string)));

      // The long messages fire once (on b again, most likely), the cancelled ones never, and
      // none fired again: asked through both workers.
      const all = expected([...SHORT, ...MEDIUM, ...LONG], [...CANCELLED_BEFORE_KILL, ...cancelledOnA]);
      await sleep(Math.max(0, (dueBy.get("long") as number) + NEVER_MARGIN_MS - Date.now()));
      for (const id of timerIds) {
        let fired: string[] = [];
        for (const deadline = Date.now() + 30_000; Date.now() < deadline; await sleep(300)) {
          fired = await firedOn(0, id);
          if (fired.length >= all.length) break;
        }
        assert.deepEqual(fired, all, `timer ${id}: every uncancelled message fired once`);
        assert.deepEqual(await firedOn(1, id), all, `timer ${id} asked through b`);
      }
      const afterRestart = await ask(workers, stop, 1, `ed/ttl/${ttlId}`, "get", freshKey("get"));
      assert.deepEqual(JSON.parse(afterRestart.reply), { written: null, invoked: null, kept: "v", plain: "v" });

      stop.counters = true;
      await clientsDone;
      for (const sdk of SDKS) {
        assert.deepEqual(
          greeted.get(sdk),
          [
            `Welcome ${greeterIds.get(sdk)}!`,
            ...Array.from({ length: 3 }, () => `Welcome back ${greeterIds.get(sdk)}!`),
          ],
          `the ${sdk} greeter`,
        );
      }
      for (const client of clients) {
        const where = `the ${client.sdk} counter ${client.id}`;
        assert.deepEqual(
          client.answers,
          client.answers.map((_, index) => String(index + 1)),
          `${where}: each request applied once`,
        );
        assert.ok(client.answeredVia[0] > 0 && client.answeredVia[1] > 0, `${where} answered through both workers`);
      }
      const answered = clients.reduce((sum, client) => sum + client.answers.length, 0);
      t.diagnostic(
        `${answered} counter requests answered (${answeredBeforeKill} before the kill) in ${Date.now() - startedAt} ms; requests sent again: ${JSON.stringify(retried)}`,
      );
    } catch (error) {
      throw new Error(`${error instanceof Error ? error.message : String(error)}\n${diagnostics()}`);
    } finally {
      stop.aborted = true;
      await Promise.allSettled(clients.map((client) => client.done));
      await a.dispose();
      await b.dispose();
    }
  });
});
