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
// With --tracing, each chain also runs with tracing on (alone, without the metrics): the engine
// given the tracer `eddy run` opens when OTEL_EXPORTER_OTLP_ENDPOINT is set (observe/otel-tracer.ts,
// OTLP http/protobuf, batched), exporting to bench/otlp-sink.ts in its own process, shut down
// after each chain; the table gives its cost and how many spans the sink received. The modes
// run interleaved in every round, their order rotated from round to round, so drift hits all alike.
// Every chain starts after a full garbage collection, so the garbage one chain leaves (the chains
// share this process) is not the next one's cost.
// Memory: the runtime here is this process (the engine and its store run in it), so each chain
// samples this process (bench/kafka/memory.ts): the most RSS, RssAnon and RssFile (LMDB's map)
// from /proc/self/status, and heap, external and the store's memtable from inside, every
// 200–250 ms while the chain runs. The chains share the process, so the memory one leaves that
// V8 has not returned counts in the next one's RSS; the full collection before each chain limits that.
// The remote chain's function server speaks the standard StateFun protocol (one address per
// request, as an official SDK does: the SDK's multi-address announcement is turned off). With
// --multi-address, each round also runs it with the announcement on (Eddy's SDK as it ships:
// the calls of many addresses in one request, invoker/multi-address.ts), before or after the
// standard one in turns, and the table gives both against the raw HTTP rate.
//
//   node bench/throughput/run.ts [--messages 40000] [--rounds 3] [--only in-process|remote|raw] [--metrics] [--tracing] [--multi-address] [--json]
import { type ChildProcess, fork } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";
import { address, createEndpoint, message, serve, statefulFunction, types } from "@eddy/sdk";
import { Pool } from "undici";
import type { FunctionTypename } from "../../packages/runtime/src/core/address.ts";
import { Engine, type Invoker } from "../../packages/runtime/src/engine/engine.ts";
import type { EngineObserver } from "../../packages/runtime/src/engine/observer.ts";
import type { Tracer } from "../../packages/runtime/src/engine/tracer.ts";
import { HttpInvoker } from "../../packages/runtime/src/invoker/http-invoker.ts";
import { post } from "../../packages/runtime/src/invoker/http-post.ts";
import { InProcessInvoker } from "../../packages/runtime/src/invoker/in-process-invoker.ts";
import { fanOut, LiveStats } from "../../packages/runtime/src/observe/live-stats.ts";
import { lineLogger } from "../../packages/runtime/src/observe/logger.ts";
import { RuntimeMetrics } from "../../packages/runtime/src/observe/metrics.ts";
import { openTracing, tracingSettings } from "../../packages/runtime/src/observe/otel-tracer.ts";
import { LoggedStore } from "../../packages/runtime/src/store/logged-store.ts";
import { type MemoryPeaks, MemoryWatch } from "../kafka/memory.ts";
import { machine } from "../machine.ts";
import { type OtlpSink, startOtlpSink } from "../otlp-sink.ts";
import { chainCatalog } from "../threads/chain-functions.ts";

/** A full garbage collection (V8's gc(), exposed without a command-line flag). */
setFlagsFromString("--expose-gc");
const collectGarbage = runInNewContext("gc") as () => void;

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
    tracing: { type: "boolean" },
    /** Also run the remote chain with the SDK announcing multi-address requests; in the child: announce. */
    "multi-address": { type: "boolean" },
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
  const server = await serve(endpoint, { port: 0, multiAddress: values["multi-address"] === true });
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

async function startChild(...flags: string[]): Promise<{ child: ChildProcess; url: string }> {
  const child = fork(import.meta.filename, flags, { stdio: ["ignore", "inherit", "inherit", "ipc"] });
  const url = await new Promise<string>((resolve) =>
    child.on("message", (m: { url?: string }) => m.url && resolve(m.url)),
  );
  return { child, url };
}

/** How a chain runs: bare, observed as `eddy run` observes it with its admin listener, or traced. */
type Mode = "off" | "metrics" | "tracing";

interface ChainResult {
  readonly name: string;
  readonly mode: Mode;
  readonly messagesPerSecond: number;
  readonly invocationsPerSecond: number;
  readonly hopLatencyP50Ms: number;
  readonly hopLatencyP99Ms: number;
  /** RSS at the end of the chain: the chains share this process, so it carries over from the ones before. */
  readonly rssMb: number;
  /** The most heap used while the chain ran (sampled every 50 ms): the chain's own. */
  readonly peakHeapUsedMb: number;
  /** This process's memory while the chain ran (sampled), in MiB: heap, external, anonymous and file-backed. */
  readonly memory: MemoryPeaks;
  /** CPU time of this (the runtime's) process per message, all its threads (LMDB's writer, GC): steadier than wall rates on a shared VM. */
  readonly cpuMicrosPerMessage: number;
  /** Rows written by group commits per message, and the number of group commits. */
  readonly storeWritesPerMessage: number;
  readonly commits: number;
  /** With tracing: spans the engine started, and those the sink received (the rest the batch processor dropped). */
  readonly spansStarted?: number;
  readonly spansExported?: number;
  readonly exportedBytes?: number;
}

/** What the engine is given in a mode. */
interface Instruments {
  readonly observer?: EngineObserver;
  readonly tracer?: Tracer;
}

async function chain(
  name: string,
  mode: Mode,
  invoker: Invoker,
  remote?: ChildProcess,
  instruments: Instruments = {},
): Promise<ChainResult> {
  collectGarbage();
  const dir = mkdtempSync(join(tmpdir(), "eddy-bench-throughput-"));
  const catalog = chainCatalog();
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
    ...(instruments.observer === undefined ? {} : { observer: instruments.observer }),
    ...(instruments.tracer === undefined ? {} : { tracer: instruments.tracer }),
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
  const memory = MemoryWatch.self(() => store.memtableBytes);
  let peakHeapUsed = 0;
  const sampler = setInterval(() => {
    peakHeapUsed = Math.max(peakHeapUsed, process.memoryUsage().heapUsed);
  }, 50);
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
  clearInterval(sampler);
  peakHeapUsed = Math.max(peakHeapUsed, process.memoryUsage().heapUsed);
  const memoryPeaks = memory.stop();
  const latencies = (remote === undefined ? hopLatencyMs : remoteLatencies).slice().sort((a, b) => a - b);
  await engine.stop();
  rmSync(dir, { recursive: true, force: true });
  return {
    name,
    mode,
    messagesPerSecond: Math.round(MESSAGES / seconds),
    invocationsPerSecond: Math.round((2 * MESSAGES) / seconds),
    hopLatencyP50Ms: percentile(latencies, 50),
    hopLatencyP99Ms: percentile(latencies, 99),
    rssMb: Math.round(process.memoryUsage().rss / 1e6),
    peakHeapUsedMb: Math.round(peakHeapUsed / 1e6),
    memory: memoryPeaks,
    cpuMicrosPerMessage: Math.round((cpu.user + cpu.system) / MESSAGES),
    storeWritesPerMessage: Math.round((100 * storeWrites) / MESSAGES) / 100,
    commits,
  };
}

/**
 * Runs `run` in `mode`: with metrics, a fresh observer; with tracing, a tracer opened as `eddy
 * run` opens it for OTEL_EXPORTER_OTLP_ENDPOINT=<the sink>, counted, and shut down (its last spans
 * exported) after the chain.
 */
async function inMode(
  mode: Mode,
  sink: OtlpSink | undefined,
  run: (instruments: Instruments) => Promise<ChainResult>,
): Promise<ChainResult> {
  if (mode === "off") return run({});
  if (mode === "metrics") return run({ observer: recorded() });
  if (sink === undefined) throw new Error("tracing needs the OTLP sink");
  const settings = tracingSettings({ OTEL_EXPORTER_OTLP_ENDPOINT: sink.url });
  if (!settings.ok || settings.value === undefined) throw new Error("tracing settings: tracing stayed off");
  const tracing = await openTracing(
    settings.value,
    lineLogger((line) => process.stderr.write(`${line}\n`)),
  );
  let spansStarted = 0;
  const counted: Tracer = {
    start(name, kind, parent, attributes, links) {
      spansStarted++;
      return tracing.tracer.start(name, kind, parent, attributes, links);
    },
  };
  const before = await sink.stats();
  const result = await run({ tracer: counted });
  await tracing.shutdown();
  const after = await sink.stats();
  return {
    ...result,
    spansStarted,
    spansExported: after.spans - before.spans,
    exportedBytes: after.bytes - before.bytes,
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

async function remoteChain(mode: Mode, instruments: Instruments, multiAddress = false): Promise<ChainResult> {
  const { child, url } = await startChild("--serve-functions", ...(multiAddress ? ["--multi-address"] : []));
  // One endpoint object, as the runtime's resolver gives (assembly/endpoints.ts): the invoker works out its route once.
  const functionEndpoint = {
    url,
    callTimeoutMs: 60_000,
    connectTimeoutMs: 10_000,
    maxResponseBytes: 32 << 20,
    poolSize: 64,
  };
  const http = new HttpInvoker({ endpointFor: () => functionEndpoint });
  const name = multiAddress ? "remote, multi-address" : mode === "off" ? "remote over HTTP" : `remote, ${mode}`;
  const result = await chain(name, mode, http, child, instruments);
  child.kill();
  return result;
}

/** The round with the median messages/s (rounds are whole runs, so their other figures stay together). */
function medianRound(rounds: ChainResult[]): ChainResult {
  const sorted = rounds.slice().sort((a, b) => a.messagesPerSecond - b.messagesPerSecond);
  return sorted[Math.floor((sorted.length - 1) / 2)] as ChainResult;
}

function median(values: readonly number[]): number {
  const sorted = values.slice().sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1
    ? (sorted[middle] as number)
    : ((sorted[middle - 1] as number) + (sorted[middle] as number)) / 2;
}

/** What a mode costs against off, in % of off's messages/s: from the median rounds, and the median of the rounds paired by round. */
function cost(
  off: readonly ChainResult[],
  on: readonly ChainResult[],
): { ofMedians: number; pairedMedian: number; paired: number[] } {
  const paired = on.map(
    (round, index) => 100 * (1 - round.messagesPerSecond / (off[index] as ChainResult).messagesPerSecond),
  );
  return {
    ofMedians: 100 * (1 - medianRound([...on]).messagesPerSecond / medianRound([...off]).messagesPerSecond),
    pairedMedian: median(paired),
    paired,
  };
}

function percent(value: number): string {
  return `${value >= 0 ? "+" : "−"}${Math.abs(value).toFixed(1)}%`;
}

async function main(): Promise<void> {
  const only = values.only;
  if (only !== undefined && !["in-process", "remote", "raw"].includes(only)) {
    throw new Error(`--only=${only}: expected in-process, remote or raw`);
  }
  // The VM's speed drifts between runs (the raw HTTP rate moved 2x): each round measures
  // every part once, interleaved, and the table gives medians. The modes take turns first.
  const roundCount = Number(values.rounds ?? process.env.BENCH_ROUNDS ?? 3);
  const modes: Mode[] = [
    "off",
    ...(values.metrics === true ? (["metrics"] as const) : []),
    ...(values.tracing === true ? (["tracing"] as const) : []),
  ];
  const sink = modes.includes("tracing") ? await startOtlpSink() : undefined;
  const parts = {
    "in-process": (mode: Mode) =>
      inMode(mode, sink, (instruments) =>
        chain(
          mode === "off" ? "in-process" : `in-process, ${mode}`,
          mode,
          new InProcessInvoker(endpoint),
          undefined,
          instruments,
        ),
      ),
    remote: (mode: Mode) => inMode(mode, sink, (instruments) => remoteChain(mode, instruments)),
  } as const;
  const rounds: Record<keyof typeof parts, Record<Mode, ChainResult[]>> = {
    "in-process": { off: [], metrics: [], tracing: [] },
    remote: { off: [], metrics: [], tracing: [] },
  };
  const rawRounds: number[] = [];
  // The remote chain with the SDK announcing multi-address requests: before the standard one in odd rounds, after it in even ones.
  const multiAddressRounds: ChainResult[] = [];
  const multiAddress = values["multi-address"] === true && (only === undefined || only === "remote");
  for (let round = 0; round < roundCount; round++) {
    const order = modes.map((_, index) => modes[(index + round) % modes.length] as Mode);
    for (const part of ["in-process", "remote"] as const) {
      if (only !== undefined && only !== part) continue;
      if (part === "remote" && multiAddress && round % 2 === 1)
        multiAddressRounds.push(await remoteChain("off", {}, true));
      for (const mode of order) rounds[part][mode].push(await parts[part](mode));
      if (part === "remote" && multiAddress && round % 2 === 0)
        multiAddressRounds.push(await remoteChain("off", {}, true));
    }
    if (only === undefined || only === "raw") rawRounds.push((await rawHttp()).roundTripsPerSecond);
  }
  await sink?.stop();
  const chains = (["in-process", "remote"] as const)
    .flatMap((part) => modes.map((mode) => rounds[part][mode]))
    .concat([multiAddressRounds])
    .filter((partRounds) => partRounds.length > 0)
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
  const costs = (["in-process", "remote"] as const).flatMap((part) =>
    modes
      .filter((mode) => mode !== "off" && rounds[part][mode].length > 0)
      .map((mode) => ({
        part,
        mode,
        ...cost(rounds[part].off, rounds[part][mode]),
        cpuMicrosPerMessage: {
          off: median(rounds[part].off.map((r) => r.cpuMicrosPerMessage)),
          on: median(rounds[part][mode].map((r) => r.cpuMicrosPerMessage)),
        },
      })),
  );
  const results = {
    date: new Date().toISOString(),
    machine: machine(),
    messages: MESSAGES,
    addresses: ADDRESSES,
    rounds: roundCount,
    modes,
    chains,
    chainRounds: {
      inProcess: rounds["in-process"].off,
      remote: rounds.remote.off,
      inProcessMetrics: rounds["in-process"].metrics,
      remoteMetrics: rounds.remote.metrics,
      inProcessTracing: rounds["in-process"].tracing,
      remoteTracing: rounds.remote.tracing,
      remoteMultiAddress: multiAddressRounds,
    },
    costs,
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
    "| functions           | messages/s | invocations/s | hop p50 ms | hop p99 ms | RSS MB | peak heap MB | runtime CPU µs/msg | rows/msg | commits |\n| :------------------ | ---------: | ------------: | ---------: | ---------: | -----: | -----------: | -----------------: | -------: | ------: |\n",
  );
  for (const row of chains) {
    process.stdout.write(
      `| ${row.name.padEnd(19)} | ${String(row.messagesPerSecond).padStart(10)} | ${String(row.invocationsPerSecond).padStart(13)} | ${String(row.hopLatencyP50Ms).padStart(10)} | ${String(row.hopLatencyP99Ms).padStart(10)} | ${String(row.rssMb).padStart(6)} | ${String(row.peakHeapUsedMb).padStart(12)} | ${String(row.cpuMicrosPerMessage).padStart(18)} | ${String(row.storeWritesPerMessage).padStart(8)} | ${String(row.commits).padStart(7)} |\n`,
    );
  }
  process.stdout.write(
    "\nThe runtime's memory while each chain ran (this process: the engine and its store run in it), MiB, most sampled; the median round:\n\n" +
      "| functions           | RSS | RssAnon | RssFile | heap used | heap committed | external | memtable |\n" +
      "| :------------------ | --: | ------: | ------: | --------: | -------------: | -------: | -------: |\n",
  );
  for (const row of chains) {
    const m = row.memory;
    process.stdout.write(
      `| ${row.name.padEnd(19)} | ${m.peakRssMiB} | ${m.rssAnonMaxMiB} | ${m.rssFileMaxMiB} | ${m.heapUsedMaxMiB ?? ""} | ${m.heapTotalMaxMiB ?? ""} | ${m.externalMaxMiB ?? ""} | ${m.memtableMaxMiB ?? ""} |\n`,
    );
  }
  for (const part of ["in-process", "remote"] as const) {
    for (const mode of modes) {
      const partRounds = rounds[part][mode];
      if (partRounds.length > 1) {
        process.stdout.write(
          `\n${part}, ${mode}: messages/s by round ${partRounds.map((r) => r.messagesPerSecond).join(", ")} (runtime CPU µs/msg: ${partRounds.map((r) => r.cpuMicrosPerMessage).join(", ")})`,
        );
      }
    }
  }
  if (multiAddressRounds.length > 1) {
    process.stdout.write(
      `\nremote, multi-address: messages/s by round ${multiAddressRounds.map((r) => r.messagesPerSecond).join(", ")} (runtime CPU µs/msg: ${multiAddressRounds.map((r) => r.cpuMicrosPerMessage).join(", ")})`,
    );
  }
  if (costs.length > 0) {
    process.stdout.write(
      "\n\ncost against off (− is faster): 1 − median messages/s ÷ median off; each round's own; their median; and CPU per message (+ is more)\n",
    );
    for (const row of costs) {
      const off = row.cpuMicrosPerMessage.off;
      const on = row.cpuMicrosPerMessage.on;
      process.stdout.write(
        `  ${row.part}, ${row.mode}: ${percent(row.ofMedians)} (by round ${row.paired.map(percent).join(", ")}; paired median ${percent(row.pairedMedian)}); runtime CPU µs/msg, median of the rounds, ${off} → ${on} (${percent(100 * (on / off - 1))})\n`,
      );
    }
  }
  for (const part of ["in-process", "remote"] as const) {
    const traced = rounds[part].tracing;
    if (traced.length === 0) continue;
    const started = traced.reduce((sum, r) => sum + (r.spansStarted ?? 0), 0);
    const exported = traced.reduce((sum, r) => sum + (r.spansExported ?? 0), 0);
    const bytes = traced.reduce((sum, r) => sum + (r.exportedBytes ?? 0), 0);
    process.stdout.write(
      `  ${part}, tracing: ${started} spans started over ${traced.length} round(s), ${exported} received by the OTLP sink (${(bytes / 1e6).toFixed(1)} MB of protobuf); ${started - exported} dropped by the batch span processor (its queue full)\n`,
    );
  }
  const remote = rounds.remote.off.length === 0 ? undefined : medianRound(rounds.remote.off);
  if (raw !== undefined) {
    process.stdout.write(
      `\nraw limit: undici Pool → node:http echo, 300 B, c=64: median ${raw.roundTripsPerSecond} round trips/s (rounds: ${raw.rounds.join(", ")})\n`,
    );
    if (remote !== undefined) {
      process.stdout.write(
        `remote invocations/s as a share of the raw round-trip rate: ${((100 * remote.invocationsPerSecond) / raw.roundTripsPerSecond).toFixed(0)}% of the median, ${((100 * remote.invocationsPerSecond) / raw.bestRoundTripsPerSecond).toFixed(0)}% of the best raw round\n`,
      );
    }
  }
  if (multiAddressRounds.length > 0) {
    const multi = medianRound(multiAddressRounds);
    const paired = multiAddressRounds.map(
      (r, index) => r.messagesPerSecond / (rounds.remote.off[index] as ChainResult).messagesPerSecond,
    );
    const ofRaw =
      raw === undefined
        ? ""
        : ` ${((100 * multi.invocationsPerSecond) / raw.roundTripsPerSecond).toFixed(0)}% of the raw round-trip rate's median, ${((100 * multi.invocationsPerSecond) / raw.bestRoundTripsPerSecond).toFixed(0)}% of the best raw round;`;
    process.stdout.write(
      `remote, multi-address: invocations/s${ofRaw} ${remote === undefined ? "" : `${(multi.messagesPerSecond / remote.messagesPerSecond).toFixed(2)}× the standard remote chain's median (by round: ${paired.map((ratio) => `${ratio.toFixed(2)}×`).join(", ")})`}\n`,
    );
  }
  if (raw === undefined) process.stdout.write("\n");
}
