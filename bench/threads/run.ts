// bench/threads: bench/throughput's in-process chain (bench/first → bench/second over 10,000 addresses, each
// message durable before it counts as accepted) on partition threads (packages/runtime/src/
// threads/) against today's engine on the main thread, in one run: rounds interleaved, their
// order rotated. messages/s is deliveries to bench/second over the whole run; CPU per message
// is the process's (every thread); hop latency is bench/second's receipt minus bench/first's send.
//
// Partition threads are not yet what `eddy run` runs (docs/architecture.md): this measures the
// part that is built, a store host and N engines on threads, with the calls into the threads
// made from the main thread one message at a time (as an ingress would).
//
// With --in-threads, the threads are also measured with each thread handed its messages in one
// call, as an HTTP ingress in every thread would take them (not built yet): what the calls from
// the main thread cost.
//
//   node bench/threads/run.ts [--threads 1,2] [--messages 40000] [--rounds 3] [--in-threads] [--json]
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { createEndpoint } from "@eddy/sdk";
import type { FunctionTypename } from "../../packages/runtime/src/core/address.ts";
import type { Envelope } from "../../packages/runtime/src/core/records.ts";
import { Engine } from "../../packages/runtime/src/engine/engine.ts";
import { InProcessInvoker } from "../../packages/runtime/src/invoker/in-process-invoker.ts";
import { LoggedStore } from "../../packages/runtime/src/store/logged-store.ts";
import { PartitionThreads } from "../../packages/runtime/src/threads/partition-threads.ts";
import { machine } from "../machine.ts";
import { COUNTER_SLOTS, chainCatalog, chainFunctions, LATENCY_BUCKETS, Payload } from "./chain-functions.ts";

const { values } = parseArgs({
  options: {
    threads: { type: "string" },
    messages: { type: "string" },
    rounds: { type: "string" },
    json: { type: "boolean" },
    child: { type: "string" },
    /** Also measure the threads with the messages handed to each thread in one call (an ingress in every thread). */
    "in-threads": { type: "boolean" },
  },
});
const THREADS = (values.threads ?? "1,2").split(",").map(Number);
const MESSAGES = Number(values.messages ?? 40_000);
const ROUNDS = Number(values.rounds ?? 3);
const ADDRESSES = 10_000;
const PARTITIONS = 128;
for (const count of THREADS) if (!Number.isSafeInteger(count) || count < 1) throw new Error(`--threads: ${count}`);

interface Result {
  readonly mode: string;
  readonly messagesPerSecond: number;
  readonly cpuMicrosPerMessage: number;
  readonly hopP50Ms: number;
  readonly hopP99Ms: number;
  readonly rssMb: number;
}

/** The chain's messages, as an ingress hands them in. */
function envelopes(): Envelope[] {
  const value = Payload.serialize({ sentAtMs: 0 });
  return Array.from({ length: MESSAGES }, (_, index) => ({
    target: { typename: "bench/first" as FunctionTypename, id: String(index % ADDRESSES) },
    argument: { typename: Payload.typename, hasValue: true, value },
  }));
}

function percentileOf(counters: Int32Array, p: number): number {
  const total = Atomics.load(counters, 0);
  let seen = 0;
  for (let ms = 0; ms < LATENCY_BUCKETS; ms++) {
    seen += Atomics.load(counters, 1 + ms);
    if (seen >= (p / 100) * total) return ms;
  }
  return LATENCY_BUCKETS;
}

async function measure(
  mode: string,
  counters: Int32Array,
  accept: (envelope: Envelope) => Promise<unknown>,
  acceptAll?: () => Promise<unknown>,
): Promise<Omit<Result, "rssMb">> {
  const all = envelopes();
  const startedAt = performance.now();
  const cpuAtStart = process.cpuUsage();
  if (acceptAll === undefined) await Promise.all(all.map((envelope) => accept(envelope)));
  else await acceptAll();
  while (Atomics.load(counters, 0) < MESSAGES) await new Promise((resume) => setTimeout(resume, 2));
  const seconds = (performance.now() - startedAt) / 1000;
  const cpu = process.cpuUsage(cpuAtStart);
  return {
    mode,
    messagesPerSecond: Math.round(MESSAGES / seconds),
    cpuMicrosPerMessage: Math.round((cpu.user + cpu.system) / MESSAGES),
    hopP50Ms: percentileOf(counters, 50),
    hopP99Ms: percentileOf(counters, 99),
  };
}

/** As measure(), with every message handed in by one call. */
async function measureMany(
  mode: string,
  counters: Int32Array,
  acceptAll: (all: readonly Envelope[]) => Promise<number>,
): Promise<Omit<Result, "rssMb">> {
  const all = envelopes();
  return measure(
    mode,
    counters,
    () => Promise.resolve(),
    () => acceptAll(all),
  );
}

/** Today's runtime: one engine on the main thread over the store. */
async function mainThread(): Promise<Result> {
  const dir = mkdtempSync(join(tmpdir(), "eddy-bench-threads-"));
  const counters = new Int32Array(new SharedArrayBuffer(4 * COUNTER_SLOTS));
  const catalog = chainCatalog();
  const engine = new Engine({
    store: new LoggedStore({ path: dir }),
    catalog,
    invoker: new InProcessInvoker(createEndpoint(chainFunctions(counters))),
    partitionCount: PARTITIONS,
  });
  engine.start();
  const result = await measure("main thread (today)", counters, (envelope) => engine.accept(envelope));
  const rssMb = Math.round(process.memoryUsage().rss / 1e6);
  await engine.stop();
  rmSync(dir, { recursive: true, force: true });
  return { ...result, rssMb };
}

async function onThreads(threads: number, perThread: boolean): Promise<Result> {
  const dir = mkdtempSync(join(tmpdir(), "eddy-bench-threads-"));
  const shared = new SharedArrayBuffer(4 * COUNTER_SLOTS);
  const counters = new Int32Array(shared);
  const runtime = await PartitionThreads.start({
    stateDir: dir,
    threads,
    partitionCount: PARTITIONS,
    functions: new URL("./chain-functions.ts", import.meta.url).href,
    context: shared,
  });
  const result = perThread
    ? await measureMany(`${threads} partition thread(s), messages taken in the threads`, counters, (all) =>
        runtime.acceptMany(
          "bench/first" as FunctionTypename,
          all[0]?.argument as Envelope["argument"],
          all.map((envelope) => envelope.target.id),
        ),
      )
    : await measure(`${threads} partition thread(s)`, counters, (envelope) => runtime.accept(envelope));
  const rssMb = Math.round(process.memoryUsage().rss / 1e6);
  await runtime.stop();
  rmSync(dir, { recursive: true, force: true });
  return { ...result, rssMb };
}

// In a child, one measurement: 0 threads is the main-thread engine.
if (values.child !== undefined) {
  const threads = Number(values.child);
  const result = threads === 0 ? await mainThread() : await onThreads(threads, values["in-threads"] === true);
  process.stdout.write(`${JSON.stringify(result)}\n`);
  process.exit(0);
}

/**
 * Each measurement in a process of its own: once an engine has run on the main thread, partition
 * threads started later in the same process ran several times slower (and its RSS grew to GBs),
 * which says nothing about either.
 */
function inChild(threads: number, inThreads: boolean): Result {
  const args = [import.meta.filename, "--child", String(threads), "--messages", String(MESSAGES)];
  if (inThreads) args.push("--in-threads");
  const run = spawnSync(process.execPath, args, { encoding: "utf8", stdio: ["ignore", "pipe", "inherit"] });
  if (run.status !== 0) throw new Error(`the measurement of ${threads} thread(s) failed (exit ${run.status})`);
  return JSON.parse(run.stdout.trim().split("\n").at(-1) ?? "") as Result;
}

const modes: [number, boolean][] = [
  [0, false],
  ...THREADS.map((count) => [count, false] as [number, boolean]),
  ...(values["in-threads"] === true ? THREADS.map((count) => [count, true] as [number, boolean]) : []),
];
const byMode = new Map<string, Result[]>();
for (let round = 0; round < ROUNDS; round++) {
  for (let turn = 0; turn < modes.length; turn++) {
    const [threads, inThreads] = modes[(round + turn) % modes.length] as [number, boolean];
    const result = inChild(threads, inThreads);
    byMode.set(result.mode, [...(byMode.get(result.mode) ?? []), result]);
    process.stderr.write(`round ${round + 1}: ${result.mode} ${result.messagesPerSecond} msg/s\n`);
  }
}

const medians = [...byMode.values()].map((results) => {
  const sorted = results.slice().sort((a, b) => a.messagesPerSecond - b.messagesPerSecond);
  return { median: sorted[Math.floor((sorted.length - 1) / 2)] as Result, all: results };
});
if (values.json === true) {
  process.stdout.write(
    `${JSON.stringify({ machine: machine(), messages: MESSAGES, rounds: ROUNDS, medians }, null, 2)}\n`,
  );
} else {
  const base = medians[0]?.median.messagesPerSecond ?? 1;
  process.stdout.write(`bench/throughput threads — ${new Date().toISOString()}\n`);
  process.stdout.write(`${JSON.stringify(machine())}\n`);
  process.stdout.write(
    `${MESSAGES} messages over ${ADDRESSES} addresses, ${PARTITIONS} partitions, median of ${ROUNDS} round(s)\n\n`,
  );
  process.stdout.write(
    "| runtime | messages/s | against the main thread | CPU µs/msg | hop p50 ms | hop p99 ms | RSS MB | by round |\n",
  );
  process.stdout.write("| :-- | --: | --: | --: | --: | --: | --: | :-- |\n");
  for (const { median, all } of medians) {
    const ratio = (median.messagesPerSecond / base).toFixed(2);
    const rounds = all.map((result) => result.messagesPerSecond).join(", ");
    process.stdout.write(
      `| ${median.mode} | ${median.messagesPerSecond} | ${ratio}× | ${median.cpuMicrosPerMessage} | ${median.hopP50Ms} | ${median.hopP99Ms} | ${median.rssMb} | ${rounds} |\n`,
    );
  }
}
