// bench/throughput: one-way messages through a 2-function chain (first → second) over
// 10,000 addresses, with the runtime's durable group commit, for in-process functions and
// for remote TypeScript functions over HTTP (function server in its own process); and, in
// the same run, the raw limit of the HTTP path: undici Pool → node:http echo round trips,
// made with the same client code the runtime's HTTP invoker uses (invoker/http-post.ts).
// Messages enter through Engine.accept (each durable before it counts as accepted), so
// the ingress's HTTP client does not dominate. Prints a table; --json for machine output.
// With --metrics, each chain also runs with what `eddy run` records with its admin listener
// (the engine observed by the Prometheus metrics, observe/metrics.ts, and the admin API's live
// numbers, observe/live-stats.ts), in the same rounds, and the table gives what they cost.
import { type ChildProcess, fork } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { address, createEndpoint, message, serve, statefulFunction, types } from "@eddy/sdk";
import { Pool } from "undici";
import type { FunctionTypename } from "../../packages/runtime/src/core/address.ts";
import type { Catalog, FunctionSettings } from "../../packages/runtime/src/core/partition-core.ts";
import { Engine, type Invoker } from "../../packages/runtime/src/engine/engine.ts";
import type { EngineObserver } from "../../packages/runtime/src/engine/observer.ts";
import { HttpInvoker } from "../../packages/runtime/src/invoker/http-invoker.ts";
import { post } from "../../packages/runtime/src/invoker/http-post.ts";
import { InProcessInvoker } from "../../packages/runtime/src/invoker/in-process-invoker.ts";
import { fanOut, LiveStats } from "../../packages/runtime/src/observe/live-stats.ts";
import { RuntimeMetrics } from "../../packages/runtime/src/observe/metrics.ts";
import { LoggedStore } from "../../packages/runtime/src/store/logged-store.ts";
import { machine } from "../machine.ts";

/** What `eddy run` records with its admin listener on: the metrics and the live numbers. */
function recorded(): EngineObserver {
  return fanOut([new RuntimeMetrics(), new LiveStats()]);
}

const { values } = parseArgs({
  options: {
    messages: { type: "string" },
    addresses: { type: "string" },
    json: { type: "boolean" },
    /** Run one part only: in-process, remote or raw (for profiling). */
    only: { type: "string" },
    rounds: { type: "string" },
    "serve-functions": { type: "boolean" },
    "serve-echo": { type: "boolean" },
    metrics: { type: "boolean" },
  },
});
const MESSAGES = Number(values.messages ?? 40_000);
const ADDRESSES = Number(values.addresses ?? 10_000);
const Payload = types.json<{ sentAtMs: number }>("bench/Payload");

/** Hop latency samples, recorded by the second function. */
const hopLatencyMs: number[] = [];
let received = 0;

const first = statefulFunction({
  typename: "bench/first",
  state: { count: types.int },
  handle(ctx) {
    ctx.storage.count = (ctx.storage.count ?? 0) + 1;
    ctx.send(message(address("bench/second", ctx.self.id), { sentAtMs: Date.now() }, Payload));
  },
});
const second = statefulFunction({
  typename: "bench/second",
  handle(_ctx, msg) {
    hopLatencyMs.push(Date.now() - msg.as(Payload).sentAtMs);
    received++;
    process.send?.({ received: 1, latencyMs: hopLatencyMs[hopLatencyMs.length - 1] });
  },
});
const endpoint = createEndpoint([first, second]);

// Child modes: a function server, or a plain echo server for the raw HTTP baseline.
if (values["serve-functions"] === true) {
  const server = await serve(endpoint, { port: 0 });
  process.send?.({ url: server.url });
} else if (values["serve-echo"] === true) {
  const { createServer } = await import("node:http");
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (chunk: Buffer) => chunks.push(chunk));
    req.on("end", () => res.end(Buffer.concat(chunks)));
  });
  server.listen(0, "127.0.0.1", () => {
    const bound = server.address();
    process.send?.({ url: `http://127.0.0.1:${typeof bound === "object" && bound !== null ? bound.port : 0}/` });
  });
} else {
  await main();
}

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? Number.NaN;
}

async function startChild(flag: string): Promise<{ child: ChildProcess; url: string }> {
  const child = fork(import.meta.filename, [flag], { stdio: ["ignore", "inherit", "inherit", "ipc"] });
  const url = await new Promise<string>((resolve) =>
    child.on("message", (m: { url?: string }) => m.url && resolve(m.url)),
  );
  return { child, url };
}

interface ChainResult {
  readonly name: string;
  readonly messagesPerSecond: number;
  readonly invocationsPerSecond: number;
  readonly hopLatencyP50Ms: number;
  readonly hopLatencyP99Ms: number;
  readonly rssMb: number;
  /** CPU time of this (the runtime's) process per message, all its threads (LMDB's writer, GC): steadier than wall rates on a shared VM. */
  readonly cpuMicrosPerMessage: number;
  /** Rows written by group commits per message, and the number of group commits. */
  readonly storeWritesPerMessage: number;
  readonly commits: number;
}

async function chain(
  name: string,
  invoker: Invoker,
  remote?: ChildProcess,
  observer?: EngineObserver,
): Promise<ChainResult> {
  const dir = mkdtempSync(join(tmpdir(), "eddy-bench-throughput-"));
  const settings: FunctionSettings = {
    maxBatchCount: 1000,
    maxBatchBytes: 8 << 20,
    backlogLimit: 0,
    failurePolicy: "retry",
  };
  const catalog: Catalog = {
    functionSettings: (t: FunctionTypename) => (t.startsWith("bench/") ? settings : undefined),
    hasEgress: () => false,
  };
  // Rows written by group commits (to the write-ahead log), counted at each commit: a steadier measure of the store's work than time.
  const store = new LoggedStore({ path: dir });
  let storeWrites = 0;
  let commits = 0;
  const commit = store.commit.bind(store);
  store.commit = (writes) => {
    storeWrites += writes.length;
    commits++;
    return commit(writes);
  };
  const engine = new Engine({
    store,
    catalog,
    invoker,
    partitionCount: 128,
    ...(observer === undefined ? {} : { observer }),
  });
  engine.start();
  received = 0;
  hopLatencyMs.length = 0;
  const remoteLatencies: number[] = [];
  remote?.on("message", (m: { received?: number; latencyMs?: number }) => {
    if (m.received !== undefined) {
      received += m.received;
      remoteLatencies.push(m.latencyMs ?? 0);
    }
  });
  const startedAt = performance.now();
  const cpuAtStart = process.cpuUsage();
  const accepted: Promise<unknown>[] = [];
  const value = Payload.serialize({ sentAtMs: 0 });
  for (let index = 0; index < MESSAGES; index++) {
    const target = { typename: "bench/first" as FunctionTypename, id: String(index % ADDRESSES) };
    accepted.push(engine.accept({ target, argument: { typename: Payload.typename, hasValue: true, value } }));
  }
  await Promise.all(accepted);
  while (received < MESSAGES) await new Promise((resolve) => setTimeout(resolve, 2));
  const seconds = (performance.now() - startedAt) / 1000;
  const cpu = process.cpuUsage(cpuAtStart);
  const latencies = (remote === undefined ? hopLatencyMs : remoteLatencies).slice().sort((a, b) => a - b);
  await engine.stop();
  rmSync(dir, { recursive: true, force: true });
  return {
    name,
    messagesPerSecond: Math.round(MESSAGES / seconds),
    invocationsPerSecond: Math.round((2 * MESSAGES) / seconds),
    hopLatencyP50Ms: percentile(latencies, 50),
    hopLatencyP99Ms: percentile(latencies, 99),
    rssMb: Math.round(process.memoryUsage().rss / 1e6),
    cpuMicrosPerMessage: Math.round((cpu.user + cpu.system) / MESSAGES),
    storeWritesPerMessage: Math.round((100 * storeWrites) / MESSAGES) / 100,
    commits,
  };
}

async function rawHttp(): Promise<{ roundTripsPerSecond: number }> {
  const { child, url } = await startChild("--serve-echo");
  const pool = new Pool(url, { connections: 64 });
  const body = Buffer.alloc(300);
  const total = 40_000;
  let next = 0;
  const startedAt = performance.now();
  await Promise.all(
    Array.from({ length: 64 }, async () => {
      while (next < total) {
        next++;
        const reply = await post(pool, {
          path: "/",
          headers: { "content-type": "application/octet-stream" },
          body,
          timeoutMs: 60_000,
          maxResponseBytes: 1 << 20,
        });
        if (!reply.ok) throw new Error(`raw round trip failed: ${reply.reason}`);
      }
    }),
  );
  const seconds = (performance.now() - startedAt) / 1000;
  await pool.close();
  child.kill();
  return { roundTripsPerSecond: Math.round(total / seconds) };
}

async function remoteChain(observer?: EngineObserver): Promise<ChainResult> {
  const { child, url } = await startChild("--serve-functions");
  const http = new HttpInvoker({
    endpointFor: () => ({
      url,
      callTimeoutMs: 60_000,
      connectTimeoutMs: 10_000,
      maxResponseBytes: 32 << 20,
      poolSize: 64,
    }),
  });
  const result = await chain(observer === undefined ? "remote over HTTP" : "remote, metrics", http, child, observer);
  child.kill();
  return result;
}

/** The round with the median messages/s (rounds are whole runs, so their other figures stay together). */
function medianRound(rounds: ChainResult[]): ChainResult {
  const sorted = rounds.slice().sort((a, b) => a.messagesPerSecond - b.messagesPerSecond);
  return sorted[Math.floor((sorted.length - 1) / 2)] as ChainResult;
}

async function main(): Promise<void> {
  const only = values.only;
  if (only !== undefined && !["in-process", "remote", "raw"].includes(only)) {
    throw new Error(`--only=${only}: expected in-process, remote or raw`);
  }
  // The VM's speed drifts between runs (the raw HTTP rate moved 2x): each round measures
  // every part once, interleaved, and the table gives medians.
  const roundCount = Number(values.rounds ?? process.env.BENCH_ROUNDS ?? 3);
  const inProcessRounds: ChainResult[] = [];
  const remoteRounds: ChainResult[] = [];
  const inProcessMetricsRounds: ChainResult[] = [];
  const remoteMetricsRounds: ChainResult[] = [];
  const rawRounds: number[] = [];
  const withMetrics = values.metrics === true;
  for (let round = 0; round < roundCount; round++) {
    if (only === undefined || only === "in-process") {
      inProcessRounds.push(await chain("in-process", new InProcessInvoker(endpoint)));
      if (withMetrics) {
        const metrics = recorded();
        inProcessMetricsRounds.push(
          await chain("in-process, metrics", new InProcessInvoker(endpoint), undefined, metrics),
        );
      }
    }
    if (only === undefined || only === "remote") {
      remoteRounds.push(await remoteChain());
      if (withMetrics) remoteMetricsRounds.push(await remoteChain(recorded()));
    }
    if (only === undefined || only === "raw") rawRounds.push((await rawHttp()).roundTripsPerSecond);
  }
  const chains = [inProcessRounds, inProcessMetricsRounds, remoteRounds, remoteMetricsRounds]
    .filter((rounds) => rounds.length > 0)
    .map(medianRound);
  const sortedRaw = rawRounds.slice().sort((a, b) => a - b);
  const raw =
    sortedRaw.length === 0
      ? undefined
      : {
          roundTripsPerSecond: sortedRaw[Math.floor((sortedRaw.length - 1) / 2)] as number,
          bestRoundTripsPerSecond: sortedRaw[sortedRaw.length - 1] as number,
          rounds: rawRounds,
        };
  const results = {
    date: new Date().toISOString(),
    machine: machine(),
    messages: MESSAGES,
    addresses: ADDRESSES,
    rounds: roundCount,
    chains,
    chainRounds: {
      inProcess: inProcessRounds,
      remote: remoteRounds,
      inProcessMetrics: inProcessMetricsRounds,
      remoteMetrics: remoteMetricsRounds,
    },
    raw,
  };
  if (values.json === true) {
    process.stdout.write(`${JSON.stringify(results)}\n`);
    return;
  }
  process.stdout.write(
    `bench/throughput — ${results.date}\n${MESSAGES} messages over ${ADDRESSES} addresses, chain bench/first → bench/second, 128 partitions, the runtime's store (synced write-ahead log, then LMDB); median of ${roundCount} round(s)\n\n`,
  );
  process.stdout.write(
    "| functions         | messages/s | invocations/s | hop p50 ms | hop p99 ms | RSS MB | runtime CPU µs/msg | rows/msg | commits |\n| :---------------- | ---------: | ------------: | ---------: | ---------: | -----: | -----------------: | -------: | ------: |\n",
  );
  for (const row of chains) {
    process.stdout.write(
      `| ${row.name.padEnd(17)} | ${String(row.messagesPerSecond).padStart(10)} | ${String(row.invocationsPerSecond).padStart(13)} | ${String(row.hopLatencyP50Ms).padStart(10)} | ${String(row.hopLatencyP99Ms).padStart(10)} | ${String(row.rssMb).padStart(6)} | ${String(row.cpuMicrosPerMessage).padStart(18)} | ${String(row.storeWritesPerMessage).padStart(8)} | ${String(row.commits).padStart(7)} |\n`,
    );
  }
  for (const [name, rounds] of [
    ["in-process", inProcessRounds],
    ["in-process, metrics", inProcessMetricsRounds],
    ["remote", remoteRounds],
    ["remote, metrics", remoteMetricsRounds],
  ] as const) {
    if (rounds.length > 1) {
      process.stdout.write(
        `\n${name} messages/s by round: ${rounds.map((r) => r.messagesPerSecond).join(", ")} (runtime CPU µs/msg: ${rounds.map((r) => r.cpuMicrosPerMessage).join(", ")})`,
      );
    }
  }
  for (const [name, off, on] of [
    ["in-process", inProcessRounds, inProcessMetricsRounds],
    ["remote", remoteRounds, remoteMetricsRounds],
  ] as const) {
    if (off.length === 0 || on.length === 0) continue;
    const plain = medianRound(off);
    const metered = medianRound(on);
    process.stdout.write(
      `\n${name} with metrics: ${(metered.messagesPerSecond / plain.messagesPerSecond).toFixed(3)}× the messages/s without (CPU µs/msg ${plain.cpuMicrosPerMessage} → ${metered.cpuMicrosPerMessage})`,
    );
  }
  if (raw === undefined) {
    process.stdout.write("\n");
    return;
  }
  process.stdout.write(
    `\n\nraw limit: undici Pool → node:http echo, 300 B, c=64: median ${raw.roundTripsPerSecond} round trips/s (rounds: ${raw.rounds.join(", ")})\n`,
  );
  const remote = remoteRounds.length === 0 ? undefined : medianRound(remoteRounds);
  if (remote !== undefined) {
    process.stdout.write(
      `remote invocations/s as a share of the raw round-trip rate: ${((100 * remote.invocationsPerSecond) / raw.roundTripsPerSecond).toFixed(0)}% of the median, ${((100 * remote.invocationsPerSecond) / raw.bestRoundTripsPerSecond).toFixed(0)}% of the best raw round\n`,
    );
  }
}
