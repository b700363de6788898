// bench/backlog: Eddy started behind a Kafka backlog (issue 21). For each backlog size N, N
// records are loaded into a fresh input topic before Eddy starts; `eddy run` then reads them
// from the earliest offset through bench/kafka's counter function (remote under `eddy serve`
// by default) into an exactly-once Kafka egress. The question is memory: a runtime that
// keeps its state on disk should run in a fixed budget whatever waits upstream, so peak RSS
// should be flat across N (StateFun's JVM stayed at 452–483 MiB for 100k and 300k).
//
// Measured per size: seconds from Eddy's start to the N-th output record and records/s from
// the first output to the N-th (a read_committed consumer in this process, every input
// checked exactly once with its per-key count); the Eddy process's peak RSS (VmHWM) and the
// maxima of VmRSS, RssAnon and RssFile sampled from /proc every 200 ms; its heap and external
// memory and the memory budget's use (absent from an Eddy older than the budget), asked every
// 250 ms over its control socket (POST /memory). Eddy runs with --checkpoints on a local directory and
// --checkpoint-interval 0 (on demand only: no checkpoint is taken during a run), because
// before 78afa8f the control socket existed only with --checkpoints, and --eddy-root may
// run such a checkout.
//
//   node bench/backlog/run.ts [--records 100000,300000] [--keys 1000] [--partitions 4]
//     [--functions remote|in-process] [--budget <size>] [--json]
//     [--heap-snapshot-at <MiB> --heap-snapshot-dir <dir>] [--eddy-root <checkout>]
//     [--node-flags=<flags>]
//
// The default sizes are small enough for `npm run bench`; the issue's check is
// --records 100000,1000000,3000000. --budget passes --memory-budget to eddy (the flag of
// the admission budget, once it exists). --heap-snapshot-at starts Eddy with
// --heapsnapshot-signal and signals it once, when its RSS first reaches that many MiB; the
// snapshot lands in --heap-snapshot-dir (bench/backlog/heap-summary.ts reads it); writing it
// takes memory of its own, so that run's peaks are not the runtime's. --eddy-root runs Eddy
// from another checkout (an older commit, say), with this bench and the same function.
// --node-flags="--max-semi-space-size=8 …" runs the runtime as `node <flags> main.ts` instead
// of through bin/eddy (so without bin/eddy's young-generation and malloc arena settings), to
// try V8 settings.
import { execFileSync } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { loadavg, tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { parseArgs } from "node:util";
import { type MessageToProduce, Producer } from "@platformatic/kafka";
import { callControlSocket, type MemoryReport } from "../../packages/runtime/src/control-socket.ts";
import { type KafkaBroker, startKafka } from "../../test/support/kafka-broker.ts";
import { Child } from "../child.ts";
import { EGRESS_ID, INPUT_TYPENAME } from "../kafka/functions.ts";
import { procMemory } from "../kafka/memory.ts";
import { keyOf, OutputReader } from "../kafka/output-reader.ts";
import { machine } from "../machine.ts";

const root = resolve(import.meta.dirname, "../..");
const FUNCTIONS_FILE = "bench/kafka/functions.ts";

const { values } = parseArgs({
  options: {
    records: { type: "string" },
    keys: { type: "string" },
    partitions: { type: "string" },
    functions: { type: "string" },
    budget: { type: "string" },
    json: { type: "boolean" },
    "heap-snapshot-at": { type: "string" },
    "heap-snapshot-dir": { type: "string" },
    "eddy-root": { type: "string" },
    "node-flags": { type: "string" },
  },
});

/** Another checkout to run Eddy from (with its node_modules), for a before/after comparison; this one by default. */
const eddyRoot = resolve(values["eddy-root"] ?? root);
const eddyBin = join(eddyRoot, "node_modules/.bin/eddy");
/** Node/V8 flags for the runtime process only (e.g. "--max-semi-space-size=8"); it then runs as `node <flags> main.ts`. */
const NODE_FLAGS = values["node-flags"]?.split(/\s+/).filter((flag) => flag !== "") ?? [];

function wholeNumber(text: string, name: string): number {
  const value = Number(text.replaceAll("_", ""));
  if (!Number.isSafeInteger(value) || value < 1) throw new Error(`--${name}: expected a whole number ≥ 1, got ${text}`);
  return value;
}

const SIZES = (values.records ?? process.env.BENCH_BACKLOG_RECORDS ?? "100000,300000")
  .split(",")
  .map((text) => wholeNumber(text, "records"));
const KEYS = wholeNumber(values.keys ?? process.env.BENCH_BACKLOG_KEYS ?? "1000", "keys");
const PARTITIONS = wholeNumber(values.partitions ?? "4", "partitions");
const FUNCTIONS = values.functions ?? process.env.BENCH_BACKLOG_FUNCTIONS ?? "remote";
if (FUNCTIONS !== "remote" && FUNCTIONS !== "in-process") {
  throw new Error(`--functions ${FUNCTIONS}: expected remote or in-process`);
}
const BUDGET = values.budget;
const SNAPSHOT_AT_MIB =
  values["heap-snapshot-at"] === undefined ? undefined : wholeNumber(values["heap-snapshot-at"], "heap-snapshot-at");
const SNAPSHOT_DIR = resolve(values["heap-snapshot-dir"] ?? tmpdir());

const PRELOAD_RECORDS_PER_SEND = 5000;
const PRELOAD_SENDS_IN_FLIGHT = 4;
const PROC_SAMPLE_MS = 200;
const MEMORY_SAMPLE_MS = 250;
/** The JSON report keeps one sample a second of each run's timeline. */
const TIMELINE_STEP_MS = 1000;
/** A run fails when no new output record arrives for this long (bounded time, never a hang). */
const PROGRESS_TIMEOUT_MS = 120_000;
/** The goal the issue sets: peak RSS flat within this share from the smallest backlog to the largest, and under the cap. */
const FLAT_SHARE_MAX = 0.1;
const RSS_MIB_MAX = 400;

const MiB = 2 ** 20;

const round1 = (value: number) => Math.round(value * 10) / 10;
const mib = (bytes: number | undefined) => (bytes === undefined ? undefined : round1(bytes / MiB));

interface Sample {
  readonly atMs: number;
  readonly rssMiB: number;
  readonly rssAnonMiB: number;
  readonly rssFileMiB: number;
  readonly heapUsedMiB?: number | undefined;
  readonly externalMiB?: number | undefined;
  readonly arrayBuffersMiB?: number | undefined;
  readonly admittedMiB?: number | undefined;
  readonly memtableMiB?: number | undefined;
  readonly outputRecords: number;
}

/** Samples the Eddy process's memory from /proc and from its control socket until stopped. */
class MemoryWatch {
  rssMax = 0;
  rssAnonMax = 0;
  rssFileMax = 0;
  hwm = 0;
  heapUsedMax: number | undefined;
  heapTotalMax: number | undefined;
  externalMax: number | undefined;
  arrayBuffersMax: number | undefined;
  admittedMax: number | undefined;
  memtableMax: number | undefined;
  budget: number | undefined;
  controlErrors = 0;
  snapshotTakenAtMiB: number | undefined;
  readonly timeline: Sample[] = [];
  #last: MemoryReport | undefined;
  #lastTimelineAt = -Infinity;
  readonly #timers: NodeJS.Timeout[] = [];
  #asking = false;

  readonly pid: number;
  readonly stateDir: string;
  readonly startedAt: number;
  readonly outputRecords: () => number;

  constructor(pid: number, stateDir: string, startedAt: number, outputRecords: () => number) {
    this.pid = pid;
    this.stateDir = stateDir;
    this.startedAt = startedAt;
    this.outputRecords = outputRecords;
    this.#timers.push(setInterval(() => this.#sampleProc(), PROC_SAMPLE_MS));
    this.#timers.push(setInterval(() => void this.#ask(), MEMORY_SAMPLE_MS));
  }

  #sampleProc(): void {
    const proc = procMemory(this.pid);
    if (proc === undefined) return;
    this.rssMax = Math.max(this.rssMax, proc.rss);
    this.rssAnonMax = Math.max(this.rssAnonMax, proc.anon);
    this.rssFileMax = Math.max(this.rssFileMax, proc.file);
    this.hwm = Math.max(this.hwm, proc.hwm);
    if (SNAPSHOT_AT_MIB !== undefined && this.snapshotTakenAtMiB === undefined && proc.rss >= SNAPSHOT_AT_MIB * MiB) {
      this.snapshotTakenAtMiB = mib(proc.rss);
      process.kill(this.pid, "SIGUSR2");
    }
    const atMs = performance.now() - this.startedAt;
    if (atMs - this.#lastTimelineAt >= TIMELINE_STEP_MS) {
      this.#lastTimelineAt = atMs;
      const last = this.#last;
      this.timeline.push({
        atMs: Math.round(atMs),
        rssMiB: mib(proc.rss) as number,
        rssAnonMiB: mib(proc.anon) as number,
        rssFileMiB: mib(proc.file) as number,
        heapUsedMiB: mib(last?.heapUsedBytes),
        externalMiB: mib(last?.externalBytes),
        arrayBuffersMiB: mib(last?.arrayBuffersBytes),
        admittedMiB: mib(last?.admission?.admittedBytes),
        memtableMiB: mib(last?.memtableBytes),
        outputRecords: this.outputRecords(),
      });
    }
  }

  async #ask(): Promise<void> {
    // One question at a time: a process busy enough to answer late is not asked twice.
    if (this.#asking) return;
    this.#asking = true;
    try {
      const reply = await callControlSocket(this.stateDir, "/memory");
      if (reply.status !== 200) {
        this.controlErrors++;
        return;
      }
      const report = reply.body as MemoryReport;
      this.#last = report;
      const max = (previous: number | undefined, value: number) => Math.max(previous ?? 0, value);
      this.heapUsedMax = max(this.heapUsedMax, report.heapUsedBytes);
      this.heapTotalMax = max(this.heapTotalMax, report.heapTotalBytes);
      this.externalMax = max(this.externalMax, report.externalBytes);
      this.arrayBuffersMax = max(this.arrayBuffersMax, report.arrayBuffersBytes);
      if (report.admission !== undefined) {
        this.budget = report.admission.budgetBytes;
        this.admittedMax = max(this.admittedMax, report.admission.admittedBytesMax);
      }
      if (report.memtableBytes !== undefined) this.memtableMax = max(this.memtableMax, report.memtableBytes);
    } catch {
      // Not listening yet, or gone: the /proc samples still count.
      this.controlErrors++;
    } finally {
      this.#asking = false;
    }
  }

  stop(): void {
    for (const timer of this.#timers) clearInterval(timer);
    this.#sampleProc();
  }
}

function moduleYaml(bootstrap: string, inputTopic: string, functionsUrl: string | undefined): string {
  const endpoint =
    functionsUrl === undefined
      ? ""
      : `kind: io.statefun.endpoints.v2/http\nspec:\n  functions: bench/*\n  urlPathTemplate: ${functionsUrl}\n---\n`;
  return `${endpoint}kind: io.statefun.kafka.v1/ingress
spec:
  id: bench/in
  address: ${bootstrap}
  startupPosition:
    type: earliest
  topics:
    - topic: ${inputTopic}
      valueType: ${INPUT_TYPENAME}
      targets: [bench/counter]
---
kind: io.statefun.kafka.v1/egress
spec:
  id: ${EGRESS_ID}
  address: ${bootstrap}
  deliverySemantic:
    type: exactly-once
    transactionTimeout: 1min
`;
}

async function preload(producer: Producer, topic: string, records: number): Promise<number> {
  const startedAt = performance.now();
  let next = 0;
  const sender = async () => {
    while (next < records) {
      const start = next;
      next = Math.min(records, start + PRELOAD_RECORDS_PER_SEND);
      const messages: MessageToProduce[] = [];
      for (let seq = start; seq < next; seq++) {
        messages.push({ topic, key: Buffer.from(keyOf(seq, KEYS)), value: Buffer.from(`${seq} 0`) });
      }
      await producer.send({ messages });
    }
  };
  await Promise.all(Array.from({ length: PRELOAD_SENDS_IN_FLIGHT }, sender));
  return Math.round(performance.now() - startedAt);
}

interface SizeResult {
  readonly records: number;
  readonly preloadSeconds: number;
  /** From spawning `eddy run` to the N-th output record (start-up included). */
  readonly seconds: number;
  /** From the first output record to the N-th. */
  readonly recordsPerSecond: number;
  readonly peakRssMiB: number;
  readonly sampledRssMaxMiB: number;
  readonly rssAnonMaxMiB: number;
  readonly rssFileMaxMiB: number;
  readonly heapUsedMaxMiB: number | undefined;
  readonly heapTotalMaxMiB: number | undefined;
  readonly externalMaxMiB: number | undefined;
  readonly arrayBuffersMaxMiB: number | undefined;
  readonly admittedMaxMiB: number | undefined;
  /** The most log bytes the store's memtable held waiting for LMDB (sampled). */
  readonly memtableMaxMiB: number | undefined;
  readonly budgetMiB: number | undefined;
  readonly functionServerPeakRssMiB: number | undefined;
  readonly heapSnapshotAtRssMiB: number | undefined;
  readonly timeline: readonly Sample[];
}

async function runSize(broker: KafkaBroker, producer: Producer, records: number): Promise<SizeResult> {
  const inputTopic = `load-${records}`;
  const outTopic = `out-${records}`;
  await broker.createTopic(inputTopic, PARTITIONS);
  await broker.createTopic(outTopic, PARTITIONS);
  if (values.json !== true) process.stderr.write(`bench/backlog: loading ${records} records...\n`);
  const preloadMs = await preload(producer, inputTopic, records);
  if (values.json !== true) process.stderr.write(`bench/backlog: ${records} records in ${preloadMs} ms; Eddy...\n`);

  const dir = mkdtempSync(join(tmpdir(), "eddy-bench-backlog-"));
  const env: NodeJS.ProcessEnv = { ...process.env, EDDY_BENCH_KAFKA_TOPIC: outTopic };
  const children: Child[] = [];
  let reader: OutputReader | undefined;
  let watch: MemoryWatch | undefined;
  try {
    reader = await OutputReader.start({
      bootstrap: broker.bootstrap,
      topic: outTopic,
      loadRecords: records,
      pacedRecords: 0,
      keys: KEYS,
      readCommitted: true,
      progressTimeoutMs: PROGRESS_TIMEOUT_MS,
    });
    let functionsUrl: string | undefined;
    let server: Child | undefined;
    if (FUNCTIONS === "remote") {
      server = new Child("eddy serve", eddyBin, ["serve", FUNCTIONS_FILE, "--port", "0"], { cwd: eddyRoot, env });
      children.push(server);
      functionsUrl = (await server.ready(/eddy: serving .* at (http\S+)/))[1];
    }
    const modulePath = join(dir, "module.yaml");
    writeFileSync(modulePath, moduleYaml(broker.bootstrap, inputTopic, functionsUrl));
    const stateDir = join(dir, "state");
    const common = [
      "--state-dir",
      stateDir,
      "--checkpoints",
      `file://${join(dir, "checkpoints")}`,
      "--checkpoint-interval",
      "0",
      ...(BUDGET === undefined ? [] : ["--memory-budget", BUDGET]),
    ];
    const args =
      FUNCTIONS === "remote"
        ? ["run", modulePath, ...common]
        : ["dev", FUNCTIONS_FILE, "--module", modulePath, ...common];
    const eddyEnv = { ...env };
    if (SNAPSHOT_AT_MIB !== undefined) {
      mkdirSync(SNAPSHOT_DIR, { recursive: true });
      eddyEnv.NODE_OPTIONS =
        `${env.NODE_OPTIONS ?? ""} --heapsnapshot-signal=SIGUSR2 --diagnostic-dir=${SNAPSHOT_DIR}`.trim();
    }
    const startedAt = performance.now();
    const runtime =
      NODE_FLAGS.length === 0
        ? new Child(`eddy ${args[0]}`, eddyBin, args, { cwd: eddyRoot, env: eddyEnv })
        : new Child(
            `eddy ${args[0]}`,
            join(eddyRoot, "node_modules/.bin/node"),
            [...NODE_FLAGS, join(eddyRoot, "packages/cli/src/main.ts"), ...args],
            { cwd: eddyRoot, env: eddyEnv },
          );
    children.push(runtime);
    const output = reader;
    // Sampled from the spawn on: the backlog may already be flowing by the time it logs "running".
    watch = new MemoryWatch(runtime.pid, stateDir, startedAt, () => output.distinctLoad);
    await runtime.ready(/eddy: running/);
    try {
      await reader.waitUntil(
        () => output.distinctLoad >= records,
        () => `${records} records (${output.distinctLoad} out)`,
        () => {
          const dead = children.find((child) => child.exited !== undefined);
          return dead === undefined
            ? undefined
            : `${dead.process.spawnargs.slice(0, 2).join(" ")} ${dead.exited}:\n${dead.output}`;
        },
      );
    } catch (error) {
      // A stalled run says why only in what Eddy logged: keep the last of it with the error.
      const logs = children.map((child) => `${child.name}:\n${child.output}`);
      throw new Error(`${(error as Error).message}\n${logs.join("\n")}`, { cause: error });
    }
    // Long enough for a duplicate sent late to show.
    await sleep(1000);
    watch.stop();
    const problem = reader.problem(false);
    if (problem !== undefined) throw new Error(problem);
    const serverMemory = server === undefined ? undefined : procMemory(server.pid);
    return {
      records,
      preloadSeconds: round1(preloadMs / 1000),
      seconds: round1(((reader.allLoadAt as number) - startedAt) / 1000),
      recordsPerSecond: Math.round(
        (records - 1) / (((reader.allLoadAt as number) - (reader.firstLoadAt as number)) / 1000),
      ),
      peakRssMiB: mib(watch.hwm) as number,
      sampledRssMaxMiB: mib(watch.rssMax) as number,
      rssAnonMaxMiB: mib(watch.rssAnonMax) as number,
      rssFileMaxMiB: mib(watch.rssFileMax) as number,
      heapUsedMaxMiB: mib(watch.heapUsedMax),
      heapTotalMaxMiB: mib(watch.heapTotalMax),
      externalMaxMiB: mib(watch.externalMax),
      arrayBuffersMaxMiB: mib(watch.arrayBuffersMax),
      admittedMaxMiB: mib(watch.admittedMax),
      memtableMaxMiB: mib(watch.memtableMax),
      budgetMiB: mib(watch.budget),
      functionServerPeakRssMiB: mib(serverMemory?.hwm),
      heapSnapshotAtRssMiB: watch.snapshotTakenAtMiB,
      timeline: watch.timeline,
    };
  } finally {
    watch?.stop();
    for (const child of [...children].reverse()) await child.stop();
    await reader?.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

async function main(): Promise<void> {
  // Fetches the broker's jars once, as `npm test` does; its messages go to stderr (stdout may be --json).
  execFileSync("sh", [join(root, "scripts/ensure-kafka.sh")], { stdio: ["ignore", 2, 2] });
  const loadBefore = loadavg()[0] as number;
  const broker = await startKafka();
  const results: SizeResult[] = [];
  try {
    const producer = new Producer({
      clientId: "bench-backlog-source",
      bootstrapBrokers: [broker.bootstrap],
      idempotent: true,
      acks: -1,
      autocreateTopics: false,
    });
    try {
      for (const records of SIZES) results.push(await runSize(broker, producer, records));
    } finally {
      await producer.close(true).catch(() => undefined);
    }
  } finally {
    await broker.stop();
  }
  const peaks = results.map((result) => result.peakRssMiB);
  const spread = Math.max(...peaks) / Math.min(...peaks) - 1;
  const report = {
    date: new Date().toISOString(),
    machine: machine(),
    loadAverage1mBefore: round1(loadBefore),
    loadAverage1mAfter: round1(loadavg()[0] as number),
    keys: KEYS,
    partitions: PARTITIONS,
    functions: FUNCTIONS,
    budget: BUDGET,
    peakRssSpread: round1(spread * 100) / 100,
    flat: spread <= FLAT_SHARE_MAX,
    underCap: Math.max(...peaks) < RSS_MIB_MAX,
    results,
  };
  if (values.json === true) {
    process.stdout.write(`${JSON.stringify(report)}\n`);
    return;
  }
  const m = report.machine;
  const na = (value: number | undefined) => (value === undefined ? "n/a" : String(value));
  process.stdout.write(
    `bench/backlog — ${report.date}\n${m.cpuModel}, ${m.cores} cores, ${m.memoryGiB} GiB, Node ${m.node}; load average ${report.loadAverage1mBefore} before, ${report.loadAverage1mAfter} after\n` +
      `Kafka ${PARTITIONS}-partition topics; N records over ${KEYS} keys waiting before Eddy starts; exactly-once egress; the function ${FUNCTIONS === "remote" ? "remote (eddy run + eddy serve)" : "in-process (eddy dev)"}; budget ${BUDGET ?? "Eddy's default"}\n\n`,
  );
  process.stdout.write(
    "| records | s from start | records/s | peak RSS MiB | peak RssAnon MiB | peak RssFile MiB | peak heapUsed MiB | peak external MiB | peak arrayBuffers MiB | peak admitted MiB / budget | peak memtable MiB |\n" +
      "| --: | --: | --: | --: | --: | --: | --: | --: | --: | --: | --: |\n",
  );
  for (const r of results) {
    process.stdout.write(
      `| ${r.records} | ${r.seconds} | ${r.recordsPerSecond} | ${r.peakRssMiB} | ${r.rssAnonMaxMiB} | ${r.rssFileMaxMiB} | ${na(r.heapUsedMaxMiB)} | ${na(r.externalMaxMiB)} | ${na(r.arrayBuffersMaxMiB)} | ${r.admittedMaxMiB === undefined ? "n/a" : `${r.admittedMaxMiB} / ${r.budgetMiB}`} | ${na(r.memtableMaxMiB)} |\n`,
    );
  }
  process.stdout.write(
    `\npeak RSS flat within ${FLAT_SHARE_MAX * 100}% across sizes? ${report.flat ? "yes" : "no"} (${Math.min(...peaks)}–${Math.max(...peaks)} MiB, +${Math.round(spread * 100)}%)\n` +
      `peak RSS under ${RSS_MIB_MAX} MiB? ${report.underCap ? "yes" : "no"}\n`,
  );
  for (const r of results) {
    if (r.heapSnapshotAtRssMiB !== undefined) {
      process.stdout.write(
        `${r.records}: heap snapshot signalled at RSS ${r.heapSnapshotAtRssMiB} MiB into ${SNAPSHOT_DIR} (its peaks include writing it)\n`,
      );
    }
  }
}

await main();
