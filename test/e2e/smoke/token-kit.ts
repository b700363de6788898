// A workload whose end totals do not depend on when a savepoint was taken: tokens hop between
// accounts, each hop one message (most of them from one worker to another, through the inbox
// topic), each delivery counted by the account that gets it. Every token sent in makes exactly
// `hops + 1` deliveries and ends once, wherever the run is cut and resumed; a cut that lost a
// message in flight, or took one twice, changes the totals. Used by the cluster savepoint test
// and its soak.
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { address, createEndpoint, message, serve, statefulFunction, types } from "@eddy/sdk";
import { type KafkaBroker, startKafka } from "../../support/kafka-broker.ts";
import {
  type CommandResult,
  clusterWorkerProcess,
  type EddyProcess,
  endpointAndIngressYaml,
  partitionsOf,
  runEddyCommand,
} from "./cluster.ts";

export const TOKEN_TYPENAME = "sp/account";

export interface TokenWorkload {
  readonly accounts: number;
  readonly tokens: number;
  readonly hops: number;
}

export interface TokenTotals {
  readonly received: number;
  readonly ended: number;
}

/** The account function: "token:<hops left>" counts and passes the token on; "get" answers the counts. */
export function accountFunction(workload: TokenWorkload) {
  return statefulFunction({
    typename: TOKEN_TYPENAME,
    state: { received: types.int, ended: types.int },
    handle(ctx, msg) {
      const text = msg.as(types.string);
      if (text === "get") {
        ctx.reply(JSON.stringify({ received: ctx.storage.received ?? 0, ended: ctx.storage.ended ?? 0 }), types.string);
        return;
      }
      const hops = Number(text.slice("token:".length));
      ctx.storage.received = (ctx.storage.received ?? 0) + 1;
      if (hops === 0) {
        ctx.storage.ended = (ctx.storage.ended ?? 0) + 1;
        return;
      }
      const next = (Number(ctx.self.id.slice(1)) * 7 + hops) % workload.accounts;
      ctx.send(message(address(TOKEN_TYPENAME, `a${next}`), `token:${hops - 1}`, types.string));
    },
  });
}

/** What every account's counts add up to once all tokens have made all their hops. */
export function finalTotals(workload: TokenWorkload): TokenTotals {
  return { received: workload.tokens * (workload.hops + 1), ended: workload.tokens };
}

/** Sends token `token` in through `via` until the ingress takes it (the key makes a retry a no-op). */
export async function sendToken(via: EddyProcess, workload: TokenWorkload, token: number): Promise<void> {
  for (let attempt = 0; attempt < 150; attempt++) {
    const response = await fetch(`${via.ingressUrl()}${TOKEN_TYPENAME}/a${token % workload.accounts}`, {
      method: "PUT",
      headers: { "content-type": "text/plain", "idempotency-key": `t${token}` },
      body: `token:${workload.hops}`,
    }).catch(() => undefined);
    const text = (await response?.text()) ?? "";
    if (response?.status === 200) return;
    assert.ok(response === undefined || response.status >= 500, `token ${token}: ${response?.status} ${text}`);
    await sleep(200);
  }
  assert.fail(`token ${token} was never taken`);
}

/** Every account's counts, summed (request-reply through `via`); undefined while one does not answer. */
export async function tokenTotals(via: EddyProcess, workload: TokenWorkload): Promise<TokenTotals | undefined> {
  let received = 0;
  let ended = 0;
  for (let n = 0; n < workload.accounts; n++) {
    const response = await fetch(`${via.ingressUrl()}${TOKEN_TYPENAME}/a${n}`, {
      method: "PUT",
      headers: { "content-type": "text/plain", prefer: "wait=5" },
      body: "get",
    }).catch(() => undefined);
    if (response?.status !== 200) return undefined;
    const counts = JSON.parse(await response.text()) as TokenTotals;
    received += counts.received;
    ended += counts.ended;
  }
  return { received, ended };
}

/** Waits (up to `waitMs`) until the totals are final; fails at once on more than that. */
export async function drainedTokens(via: EddyProcess, workload: TokenWorkload, waitMs = 60_000): Promise<void> {
  const expected = finalTotals(workload);
  let last: TokenTotals | undefined;
  const deadline = Date.now() + waitMs;
  while (Date.now() < deadline) {
    last = await tokenTotals(via, workload);
    if (last !== undefined) {
      assert.ok(
        last.received <= expected.received && last.ended <= expected.ended,
        `more than sent: ${JSON.stringify(last)}, at most ${JSON.stringify(expected)}`,
      );
      if (last.received === expected.received && last.ended === expected.ended) return;
    }
    await sleep(300);
  }
  assert.fail(`the totals stopped at ${JSON.stringify(last)}, expected ${JSON.stringify(expected)}`);
}

/** The admin URL a worker printed when it last started. */
export function adminUrlOf(eddy: EddyProcess): string {
  const found = [...eddy.output.matchAll(/admin listening on (http:\/\/[^/\s]+)\//g)].at(-1);
  assert.ok(found !== undefined, `no admin URL in:\n${eddy.output}`);
  return found[1] as string;
}

/** POST /v1/savepoints on `via`'s admin API: its status and JSON answer. */
export async function requestSavepoint(
  via: EddyProcess,
  name: string,
): Promise<{ readonly status: number; readonly body: Record<string, unknown> }> {
  const response = await fetch(`${adminUrlOf(via)}/v1/savepoints`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ name }),
    signal: AbortSignal.timeout(60_000),
  });
  return { status: response.status, body: (await response.json()) as Record<string, unknown> };
}

/** A worker of `cluster` running the account function served at `functionsUrl`, with the playground ingress. */
export function tokenWorker(options: {
  readonly functionsUrl: string;
  readonly bootstrap: string;
  readonly cluster: string;
  readonly workerId: string;
  readonly checkpoints: string;
}): EddyProcess {
  return clusterWorkerProcess({
    moduleYaml: endpointAndIngressYaml("sp/*", options.functionsUrl),
    bootstrap: options.bootstrap,
    cluster: options.cluster,
    workerId: options.workerId,
    checkpoints: options.checkpoints,
  });
}

/** Waits until every one of `workers` runs partitions and together they run all `partitionCount`. */
export async function sharePartitions(workers: readonly EddyProcess[], partitionCount = 128): Promise<void> {
  for (let tries = 0; tries < 300; tries++) {
    const owned = await Promise.all(workers.map((eddy) => partitionsOf(eddy)));
    if (owned.every((partitions) => partitions.length > 0) && owned.flat().length === partitionCount) return;
    await sleep(200);
  }
  assert.fail(`the ${workers.length} workers do not share the ${partitionCount} partitions`);
}

/**
 * A broker, the account function's server and a checkpoint store, started before the file's
 * tests and stopped after (node:test hooks), and workers of any cluster on them.
 */
export function tokenClusters(workload: TokenWorkload, checkpointsPrefix: string) {
  let broker: KafkaBroker | undefined;
  let functions: Awaited<ReturnType<typeof serve>> | undefined;
  const checkpoints = mkdtempSync(join(tmpdir(), checkpointsPrefix));
  before(async () => {
    broker = await startKafka();
    functions = await serve(createEndpoint([accountFunction(workload)]), { port: 0, host: "127.0.0.1" });
  });
  after(async () => {
    rmSync(checkpoints, { recursive: true, force: true });
    await functions?.close();
    await broker?.stop();
  });
  const bootstrap = () => (broker as KafkaBroker).bootstrap;
  return {
    checkpoints,
    bootstrap,
    worker: (cluster: string, workerId: string): EddyProcess =>
      tokenWorker({
        functionsUrl: (functions as Awaited<ReturnType<typeof serve>>).url,
        bootstrap: bootstrap(),
        cluster,
        workerId,
        checkpoints,
      }),
    /** `eddy checkpoints restore <savepoint> --cluster kafka://…/<cluster>`. */
    seed: (savepoint: string, cluster: string): Promise<CommandResult> =>
      runEddyCommand([
        "checkpoints",
        "restore",
        savepoint,
        "--checkpoints",
        `file://${checkpoints}`,
        "--cluster",
        `kafka://${bootstrap()}/${cluster}`,
      ]),
  };
}
