// bench/kafka: Kafka → stateful function → Kafka through Eddy, with the Kafka egress in
// exactly-once mode against at-least-once mode, on the same workload, and the same pipeline
// with no runtime (bench/kafka/raw.ts, consume-transform-produce on the Kafka client alone)
// as a baseline. One real Kafka broker (test/support/kafka-broker.ts) serves every run.
//
// Each run is one system (Eddy, or the raw client) with one delivery semantic, started as its
// own process on fresh state against fresh output topics:
// 1. Throughput. N records are loaded into the input topic before the run starts; the system
//    reads them from the earliest offset. records/s is measured by a consumer in this process
//    from the first output record to the N-th (read_committed for exactly-once, so only what
//    downstream may see counts; read_uncommitted for at-least-once).
// 2. Latency. Then records are produced at a fixed rate, well under capacity, into a topic the
//    system also reads, each carrying its send time; latency is its arrival at the same
//    consumer minus that time (one clock: this process's).
// Every output record is checked: each input exactly once for exactly-once (no duplicate, none
// missing), at least once for at-least-once, and the per-key counts the function kept.
// 3. Memory. The runtime's process (Eddy's `eddy run`/`eddy dev`, or the raw process) is
//    sampled over both phases (bench/kafka/memory.ts): peak RSS (VmHWM), and the maxima of
//    RssAnon, RssFile, and, from inside Eddy over its control socket, V8's heap (used and
//    committed), external memory (Buffers) and the store's memtable. The function server
//    (`eddy serve`) is its own process and is not counted.
//
// Eddy runs as users deploy it: by default `eddy run` with the function served by `eddy serve`
// in its own process (StateFun's remote functions, the production shape: functions scale and
// deploy apart from the runtime); --functions in-process runs `eddy dev` instead, the function
// inside the runtime's process (no HTTP hop).
//
//   node bench/kafka/run.ts [--records 100000] [--keys 1000] [--partitions 4] [--rate 1000]
//     [--seconds 10] [--functions remote|in-process] [--only eddy,raw]
//     [--delivery exactly-once,at-least-once] [--node-flags=<flags>] [--json]
//
// --records 1000000 is the memory check's large size (about 2 min a run here). --delivery
// runs one semantic only. --node-flags="--max-semi-space-size=8 …" runs Eddy's runtime as
// `node <flags> main.ts` instead of through bin/eddy (so without bin/eddy's V8 and malloc
// settings), to try settings.
import { execFileSync } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { loadavg, tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { parseArgs } from "node:util";
import { type Consumer, FetchIsolationLevels, type MessageToProduce, Producer } from "@platformatic/kafka";
import { type KafkaBroker, startKafka } from "../../test/support/kafka-broker.ts";
import { Child } from "../child.ts";
import { machine } from "../machine.ts";
import { EGRESS_ID, INPUT_TYPENAME } from "./functions.ts";
import { type MemoryPeaks, MemoryWatch } from "./memory.ts";
import { keyOf, OutputReader } from "./output-reader.ts";

const root = resolve(import.meta.dirname, "../..");
const eddyBin = join(root, "node_modules/.bin/eddy");

const { values } = parseArgs({
  options: {
    records: { type: "string" },
    keys: { type: "string" },
    partitions: { type: "string" },
    rate: { type: "string" },
    seconds: { type: "string" },
    functions: { type: "string" },
    only: { type: "string" },
    delivery: { type: "string" },
    "node-flags": { type: "string" },
    json: { type: "boolean" },
  },
});
/** Node/V8 flags for Eddy's runtime process only; it then runs as `node <flags> main.ts`. */
const NODE_FLAGS = values["node-flags"]?.split(/\s+/).filter((flag) => flag !== "") ?? [];

function count(flag: string | undefined, env: string, fallback: number, name: string): number {
  const text = flag ?? process.env[env];
  if (text === undefined) return fallback;
  const value = Number(text);
  if (!Number.isSafeInteger(value) || value < 1)
    throw new Error(`--${name} (or ${env}): expected a whole number ≥ 1, got ${text}`);
  return value;
}

const RECORDS = count(values.records, "BENCH_KAFKA_RECORDS", 100_000, "records");
const KEYS = count(values.keys, "BENCH_KAFKA_KEYS", 1000, "keys");
const PARTITIONS = count(values.partitions, "BENCH_KAFKA_PARTITIONS", 4, "partitions");
const RATE_PER_SECOND = count(values.rate, "BENCH_KAFKA_RATE", 1000, "rate");
const PACED_SECONDS = count(values.seconds, "BENCH_KAFKA_SECONDS", 10, "seconds");
const PACED_RECORDS = RATE_PER_SECOND * PACED_SECONDS;
const FUNCTIONS = values.functions ?? process.env.BENCH_KAFKA_FUNCTIONS ?? "remote";
if (FUNCTIONS !== "remote" && FUNCTIONS !== "in-process") {
  throw new Error(`--functions ${FUNCTIONS}: expected remote or in-process`);
}
const SYSTEMS = ["eddy", "raw"] as const;
type SystemName = (typeof SYSTEMS)[number];
const only = (values.only ?? SYSTEMS.join(",")).split(",");
for (const name of only) {
  if (!(SYSTEMS as readonly string[]).includes(name))
    throw new Error(`--only: ${name} is not one of ${SYSTEMS.join(", ")}`);
}
const SEMANTICS = ["exactly-once", "at-least-once"] as const;
type Semantic = (typeof SEMANTICS)[number];
const deliveries = (values.delivery ?? SEMANTICS.join(",")).split(",");
for (const name of deliveries) {
  if (!(SEMANTICS as readonly string[]).includes(name))
    throw new Error(`--delivery: ${name} is not one of ${SEMANTICS.join(", ")}`);
}

const INPUT_TOPIC = "load";
const PRELOAD_RECORDS_PER_SEND = 2000;
/** The paced producer sends what is due every tick, each record stamped when its send starts. */
const PACE_TICK_MS = 5;
/** A run fails when no new output record arrives for this long (bounded time, never a hang). */
const PROGRESS_TIMEOUT_MS = 60_000;

const key = (seq: number) => keyOf(seq, KEYS);

const CLOCK_TICKS_PER_SECOND = (() => {
  try {
    return Number(execFileSync("getconf", ["CLK_TCK"], { encoding: "utf8" }).trim()) || 100;
  } catch {
    return 100;
  }
})();
/** CPU time of a process (all its threads) from /proc, in µs; undefined once it is gone. */
function cpuMicros(pid: number): number | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    // Fields after the command name, which may hold spaces: state is field 3, utime 14, stime 15.
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return ((Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS_PER_SECOND) * 1e6;
  } catch {
    return undefined;
  }
}

/** The broker's JVM, found by the server.properties path in its command line (read only, for its CPU time). */
function brokerPid(broker: KafkaBroker): number | undefined {
  const properties = join(dirname(broker.logDir), "server.properties");
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      if (readFileSync(`/proc/${entry}/cmdline`, "utf8").split("\0").includes(properties)) return Number(entry);
    } catch {
      // gone meanwhile, or not ours to read
    }
  }
  return undefined;
}

/** The system under test for one run: its processes, and the ones whose CPU time counts as its own. */
interface RunningSystem {
  readonly children: readonly Child[];
  /** The runtime's process (Eddy's runtime, not the function server; or the raw process), sampled from its spawn. */
  readonly memory: MemoryWatch;
  stop(): Promise<void>;
}

function moduleYaml(
  bootstrap: string,
  pacedTopic: string,
  semantic: Semantic,
  functionsUrl: string | undefined,
): string {
  const endpoint =
    functionsUrl === undefined
      ? ""
      : `kind: io.statefun.endpoints.v2/http\nspec:\n  functions: bench/*\n  urlPathTemplate: ${functionsUrl}\n---\n`;
  const delivery =
    semantic === "exactly-once" ? "type: exactly-once\n    transactionTimeout: 1min" : "type: at-least-once";
  return `${endpoint}kind: io.statefun.kafka.v1/ingress
spec:
  id: bench/in
  address: ${bootstrap}
  startupPosition:
    type: earliest
  topics:
    - topic: ${INPUT_TOPIC}
      valueType: ${INPUT_TYPENAME}
      targets: [bench/counter]
    - topic: ${pacedTopic}
      valueType: ${INPUT_TYPENAME}
      targets: [bench/counter]
---
kind: io.statefun.kafka.v1/egress
spec:
  id: ${EGRESS_ID}
  address: ${bootstrap}
  deliverySemantic:
    ${delivery}
`;
}

/**
 * Eddy as users run it. Remote (the default): `eddy run` with the function in its own
 * process under `eddy serve`, as a StateFun deployment runs remote functions. In-process:
 * `eddy dev`, the function in the runtime's process.
 */
async function startEddy(
  broker: KafkaBroker,
  pacedTopic: string,
  outTopic: string,
  semantic: Semantic,
): Promise<RunningSystem> {
  const dir = mkdtempSync(join(tmpdir(), "eddy-bench-kafka-"));
  const env = { ...process.env, EDDY_BENCH_KAFKA_TOPIC: outTopic };
  const children: Child[] = [];
  let memory: MemoryWatch | undefined;
  const stop = async () => {
    memory?.stop();
    for (const child of [...children].reverse()) await child.stop();
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    let functionsUrl: string | undefined;
    if (FUNCTIONS === "remote") {
      const server = new Child("eddy serve", eddyBin, ["serve", "bench/kafka/functions.ts", "--port", "0"], {
        cwd: root,
        env,
      });
      children.push(server);
      functionsUrl = (await server.ready(/eddy: serving .* at (http\S+)/))[1];
    }
    const modulePath = join(dir, "module.yaml");
    writeFileSync(modulePath, moduleYaml(broker.bootstrap, pacedTopic, semantic, functionsUrl));
    const state = join(dir, "state");
    const args =
      FUNCTIONS === "remote"
        ? ["run", modulePath, "--state-dir", state]
        : ["dev", "bench/kafka/functions.ts", "--module", modulePath, "--state-dir", state];
    const runtime =
      NODE_FLAGS.length === 0
        ? new Child(`eddy ${args[0]}`, eddyBin, args, { cwd: root, env })
        : new Child(
            `eddy ${args[0]}`,
            join(root, "node_modules/.bin/node"),
            [...NODE_FLAGS, join(root, "packages/cli/src/main.ts"), ...args],
            { cwd: root, env },
          );
    children.push(runtime);
    memory = MemoryWatch.eddy(runtime.pid, state);
    await runtime.ready(/eddy: running/);
    return { children, memory, stop };
  } catch (error) {
    await stop();
    throw error;
  }
}

async function startRaw(
  broker: KafkaBroker,
  pacedTopic: string,
  outTopic: string,
  semantic: Semantic,
): Promise<RunningSystem> {
  const raw = new Child(
    "bench/kafka/raw.ts",
    process.execPath,
    [
      join(import.meta.dirname, "raw.ts"),
      "--bootstrap",
      broker.bootstrap,
      "--topics",
      `${INPUT_TOPIC},${pacedTopic}`,
      "--out",
      outTopic,
      "--semantic",
      semantic,
    ],
    { cwd: root, env: process.env },
  );
  const memory = MemoryWatch.process(raw.pid);
  const stop = async () => {
    memory.stop();
    await raw.stop();
  };
  try {
    await raw.ready(/raw: ready/);
  } catch (error) {
    await stop();
    throw error;
  }
  return { children: [raw], memory, stop };
}

function percentile(sorted: readonly number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? Number.NaN;
}

const round1 = (value: number) => Math.round(value * 10) / 10;

interface RunResult {
  readonly system: SystemName;
  readonly semantic: Semantic;
  /** Records/s from the first output record to the N-th. */
  readonly recordsPerSecond: number;
  /** Seconds from starting the system's process(es) to the N-th output record (start-up included). */
  readonly secondsFromStart: number;
  /** CPU time per record from the end of start-up to the N-th output: the system's processes, and the broker. */
  readonly cpuMicrosPerRecord: number;
  readonly brokerCpuMicrosPerRecord: number | undefined;
  readonly latencyP50Ms: number;
  readonly latencyP99Ms: number;
  readonly latencyMaxMs: number;
  /**
   * exactly-once, paced phase: the commit markers per output partition (the transactions that
   * wrote to it), and the mean time between two of them: how often a partition's records
   * become visible to read_committed consumers.
   */
  readonly pacedCommitsPerPartition: number | undefined;
  readonly pacedCommitIntervalMs: number | undefined;
  readonly duplicates: number;
  /** The runtime process's memory over both phases. */
  readonly memory: MemoryPeaks;
}

/** Above this share of a run's throughput, the paced phase measures queueing as much as latency. */
const PACED_SHARE_OF_THROUGHPUT_MAX = 0.5;

/** Kafka's end offsets (read_uncommitted) of `topic`, per partition. */
async function endOffsets(consumer: Consumer, topic: string): Promise<number[]> {
  const offsets = await consumer.listOffsets({
    topics: [topic],
    isolationLevel: FetchIsolationLevels.READ_UNCOMMITTED,
  });
  return (offsets.get(topic) ?? []).map(Number);
}

async function run(
  broker: KafkaBroker,
  producer: Producer,
  system: SystemName,
  semantic: Semantic,
  brokerProcess: number | undefined,
): Promise<RunResult> {
  const tag = `${system}-${semantic === "exactly-once" ? "eo" : "alo"}`;
  const pacedTopic = `paced-${tag}`;
  const outTopic = `out-${tag}`;
  await broker.createTopic(pacedTopic, PARTITIONS);
  await broker.createTopic(outTopic, PARTITIONS);
  const reader = await OutputReader.start({
    bootstrap: broker.bootstrap,
    topic: outTopic,
    loadRecords: RECORDS,
    pacedRecords: PACED_RECORDS,
    keys: KEYS,
    readCommitted: semantic === "exactly-once",
    progressTimeoutMs: PROGRESS_TIMEOUT_MS,
  });
  const startedAt = performance.now();
  let running: RunningSystem | undefined;
  try {
    running = await (system === "eddy" ? startEddy : startRaw)(broker, pacedTopic, outTopic, semantic);
    const children = running.children;
    const systemCpu = () => children.reduce((sum, child) => sum + (cpuMicros(child.pid) ?? 0), 0);
    const alive = () => {
      const dead = children.find((child) => child.exited !== undefined);
      return dead === undefined
        ? undefined
        : `${dead.process.spawnargs.slice(0, 2).join(" ")} ${dead.exited}:\n${dead.output}`;
    };
    const snapshot = () => ({
      system: systemCpu(),
      broker: brokerProcess === undefined ? 0 : (cpuMicros(brokerProcess) ?? 0),
    });
    // From start-up done (before any record is read) to the N-th output: all the work for N records.
    const cpuAtReady = snapshot();
    let cpuAtAll = { system: 0, broker: 0 };
    let allLoadAt = 0;
    reader.onAllLoad = () => {
      cpuAtAll = snapshot();
      allLoadAt = performance.now();
    };

    // 1. Throughput over the preloaded records.
    await reader.waitUntil(
      () => reader.distinctLoad >= RECORDS,
      () => `${RECORDS} records (${reader.distinctLoad} so far)`,
      alive,
    );
    const loadSeconds = (allLoadAt - (reader.firstLoadAt as number)) / 1000;
    const afterLoad = await endOffsets(reader.consumer, outTopic);

    // 2. Latency at a fixed rate.
    const pacedStart = performance.now();
    let sent = 0;
    while (sent < PACED_RECORDS) {
      const due = Math.min(PACED_RECORDS, Math.floor(((performance.now() - pacedStart) / 1000) * RATE_PER_SECOND) + 1);
      if (due > sent) {
        const sentAt = performance.now().toFixed(3);
        const messages: MessageToProduce[] = [];
        for (let index = sent; index < due; index++) {
          const seq = RECORDS + index;
          messages.push({ topic: pacedTopic, key: Buffer.from(key(seq)), value: Buffer.from(`${seq} ${sentAt}`) });
        }
        await producer.send({ messages });
        sent = due;
      }
      const dead = alive();
      if (dead !== undefined) throw new Error(dead);
      await sleep(PACE_TICK_MS);
    }
    await reader.waitUntil(
      () => reader.distinctPaced >= PACED_RECORDS,
      () => `${PACED_RECORDS} paced records (${reader.distinctPaced} so far)`,
      alive,
    );
    const pacedMs = reader.lastArrivalAt - pacedStart;
    // Long enough for a duplicate sent late to show.
    await sleep(1000);
    const afterPaced = await endOffsets(reader.consumer, outTopic);
    const memory = running.memory.stop();
    verify(reader, system, semantic);

    const latencies = reader.latenciesMs.sort((a, b) => a - b);
    let pacedCommitsPerPartition: number | undefined;
    if (semantic === "exactly-once") {
      // Each committed transaction leaves one commit marker in every partition it wrote to:
      // the offsets the topic gained in the paced phase beyond its records are those markers.
      const gained = afterPaced.reduce((sum, offset, partition) => sum + offset - (afterLoad[partition] ?? 0), 0);
      const markers = gained - PACED_RECORDS;
      pacedCommitsPerPartition = markers / PARTITIONS;
    }
    return {
      system,
      semantic,
      recordsPerSecond: Math.round((RECORDS - 1) / loadSeconds),
      secondsFromStart: round1((allLoadAt - startedAt) / 1000),
      cpuMicrosPerRecord: round1((cpuAtAll.system - cpuAtReady.system) / RECORDS),
      brokerCpuMicrosPerRecord:
        brokerProcess === undefined ? undefined : round1((cpuAtAll.broker - cpuAtReady.broker) / RECORDS),
      latencyP50Ms: round1(percentile(latencies, 50)),
      latencyP99Ms: round1(percentile(latencies, 99)),
      latencyMaxMs: round1(latencies.at(-1) ?? Number.NaN),
      pacedCommitsPerPartition:
        pacedCommitsPerPartition === undefined ? undefined : Math.round(pacedCommitsPerPartition),
      pacedCommitIntervalMs:
        pacedCommitsPerPartition === undefined ? undefined : round1(pacedMs / pacedCommitsPerPartition),
      duplicates: reader.duplicates,
      memory,
    };
  } catch (error) {
    // A stalled run says why only in what the system logged: keep the last of it with the error.
    const logs = (running?.children ?? []).map((child) => `${child.name}:\n${child.output}`);
    if (logs.length === 0) throw error;
    throw new Error(`${(error as Error).message}\n${logs.join("\n")}`, { cause: error });
  } finally {
    await running?.stop();
    await reader.close();
  }
}

/**
 * Every input arrived (once, for exactly-once), nothing else did, and per key the counts are
 * 1…n for the n inputs of that key: the function's state saw each input once.
 */
function verify(reader: OutputReader, system: SystemName, semantic: Semantic): void {
  const problem = reader.problem(semantic === "at-least-once");
  if (problem !== undefined) throw new Error(`${system} ${semantic}: ${problem}`);
}

async function preload(producer: Producer): Promise<number> {
  const startedAt = performance.now();
  for (let start = 0; start < RECORDS; start += PRELOAD_RECORDS_PER_SEND) {
    const messages: MessageToProduce[] = [];
    for (let seq = start; seq < Math.min(RECORDS, start + PRELOAD_RECORDS_PER_SEND); seq++) {
      messages.push({ topic: INPUT_TOPIC, key: Buffer.from(key(seq)), value: Buffer.from(`${seq} 0`) });
    }
    await producer.send({ messages });
  }
  return Math.round(performance.now() - startedAt);
}

function ratio(a: number, b: number): string {
  return `${(a / b).toFixed(2)}×`;
}

async function main(): Promise<void> {
  // Fetches the broker's jars once, as `npm test` does; its messages go to stderr (stdout may be --json).
  execFileSync("sh", [join(root, "scripts/ensure-kafka.sh")], { stdio: ["ignore", 2, 2] });
  const loadBefore = loadavg()[0] as number;
  const broker = await startKafka();
  const results: RunResult[] = [];
  let preloadMs = 0;
  try {
    await broker.createTopic(INPUT_TOPIC, PARTITIONS);
    const producer = new Producer({
      clientId: "bench-kafka-source",
      bootstrapBrokers: [broker.bootstrap],
      idempotent: true,
      acks: -1,
      autocreateTopics: false,
    });
    try {
      preloadMs = await preload(producer);
      const brokerProcess = brokerPid(broker);
      for (const system of SYSTEMS) {
        if (!only.includes(system)) continue;
        for (const semantic of SEMANTICS) {
          if (!deliveries.includes(semantic)) continue;
          if (values.json !== true) process.stderr.write(`bench/kafka: ${system} ${semantic}...\n`);
          results.push(await run(broker, producer, system, semantic, brokerProcess));
        }
      }
    } finally {
      await producer.close(true).catch(() => undefined);
    }
  } finally {
    await broker.stop();
  }
  const report = {
    date: new Date().toISOString(),
    machine: machine(),
    loadAverage1mBefore: round1(loadBefore),
    loadAverage1mAfter: round1(loadavg()[0] as number),
    records: RECORDS,
    keys: KEYS,
    partitions: PARTITIONS,
    pacedRatePerSecond: RATE_PER_SECOND,
    pacedSeconds: PACED_SECONDS,
    functions: FUNCTIONS,
    preloadMs,
    results,
  };
  if (values.json === true) {
    process.stdout.write(`${JSON.stringify(report)}\n`);
    return;
  }
  const m = report.machine;
  process.stdout.write(
    `bench/kafka — ${report.date}\n${m.cpuModel}, ${m.cores} cores, ${m.memoryGiB} GiB, Node ${m.node}; load average ${report.loadAverage1mBefore} before, ${report.loadAverage1mAfter} after\n` +
      `Kafka ${PARTITIONS}-partition topics; ${RECORDS} preloaded records over ${KEYS} keys (throughput), then ${RATE_PER_SECOND} records/s for ${PACED_SECONDS} s (latency); Eddy's function ${FUNCTIONS === "remote" ? "remote (eddy run + eddy serve)" : "in-process (eddy dev)"}\n\n`,
  );
  process.stdout.write(
    "| system | delivery | records/s | s from start | CPU µs/rec | broker CPU µs/rec | p50 ms | p99 ms | max ms | commits/partition (paced) | ms between commits | dups |\n" +
      "| :-- | :-- | --: | --: | --: | --: | --: | --: | --: | --: | --: | --: |\n",
  );
  for (const r of results) {
    process.stdout.write(
      `| ${r.system} | ${r.semantic} | ${r.recordsPerSecond} | ${r.secondsFromStart} | ${r.cpuMicrosPerRecord} | ${r.brokerCpuMicrosPerRecord ?? "?"} | ${r.latencyP50Ms} | ${r.latencyP99Ms} | ${r.latencyMaxMs} | ${r.pacedCommitsPerPartition ?? ""} | ${r.pacedCommitIntervalMs ?? ""} | ${r.duplicates} |\n`,
    );
  }
  process.stdout.write(
    "\nThe runtime's memory, MiB (Eddy's runtime process, not its function server; peaks over both phases):\n\n" +
      "| system | delivery | peak RSS | RssAnon | RssFile | heap used | heap committed | external | native | memtable |\n" +
      "| :-- | :-- | --: | --: | --: | --: | --: | --: | --: | --: |\n",
  );
  for (const r of results) {
    const m = r.memory;
    const figure = (value: number | undefined) => (value === undefined ? "" : String(value));
    process.stdout.write(
      `| ${r.system} | ${r.semantic} | ${m.peakRssMiB} | ${m.rssAnonMaxMiB} | ${m.rssFileMaxMiB} | ${figure(m.heapUsedMaxMiB)} | ${figure(m.heapTotalMaxMiB)} | ${figure(m.externalMaxMiB)} | ${figure(m.nativeMaxMiB)} | ${figure(m.memtableMaxMiB)} |\n`,
    );
  }
  process.stdout.write(
    "(peak RSS is VmHWM; the rest are the largest samples: /proc every 200 ms, process.memoryUsage() over the control socket every 250 ms; native is RssAnon − heap committed)\n\n",
  );
  const find = (system: SystemName, semantic: Semantic) =>
    results.find((r) => r.system === system && r.semantic === semantic);
  for (const system of SYSTEMS) {
    const eo = find(system, "exactly-once");
    const alo = find(system, "at-least-once");
    if (eo === undefined || alo === undefined) continue;
    process.stdout.write(
      `${system}, exactly-once / at-least-once: records/s ${ratio(eo.recordsPerSecond, alo.recordsPerSecond)}, CPU/rec ${ratio(eo.cpuMicrosPerRecord, alo.cpuMicrosPerRecord)}, p50 ${ratio(eo.latencyP50Ms, alo.latencyP50Ms)}, p99 ${ratio(eo.latencyP99Ms, alo.latencyP99Ms)}, max ${ratio(eo.latencyMaxMs, alo.latencyMaxMs)}\n`,
    );
  }
  for (const r of results) {
    const share = RATE_PER_SECOND / r.recordsPerSecond;
    if (share > PACED_SHARE_OF_THROUGHPUT_MAX) {
      process.stdout.write(
        `note: ${r.system} ${r.semantic}: the paced rate is ${Math.round(share * 100)}% of its throughput, so its latency includes queueing\n`,
      );
    }
  }
  for (const semantic of SEMANTICS) {
    const eddy = find("eddy", semantic);
    const raw = find("raw", semantic);
    if (eddy === undefined || raw === undefined) continue;
    process.stdout.write(
      `${semantic}, eddy / raw client: records/s ${ratio(eddy.recordsPerSecond, raw.recordsPerSecond)}, CPU/rec ${ratio(eddy.cpuMicrosPerRecord, raw.cpuMicrosPerRecord)}, p50 ${ratio(eddy.latencyP50Ms, raw.latencyP50Ms)}, p99 ${ratio(eddy.latencyP99Ms, raw.latencyP99Ms)}\n`,
    );
  }
}

await main();
