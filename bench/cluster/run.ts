// bench/cluster: Eddy's cluster mode against its embedded mode, in one run on this machine.
// For each configuration (embedded `eddy run`, then `eddy run --cluster` with 1 and with 2
// workers on one Kafka broker) on fresh state, with the functions served over HTTP by Eddy's SDK
// from one function server process (functions.ts; the same transport in every configuration):
//
// 1. The chain of bench/throughput (bench/first → bench/second, 10,000 addresses), driven
//    through the playground ingress by a closed loop of fire-and-forget PUTs, each sent to the
//    worker that runs its bench/first instance (as the function server saw it during the
//    warm-up: a partition-aware client, so the ingress does not forward). messages/s is
//    deliveries to bench/second in the measured window; hop latency is bench/second's receive
//    time minus bench/first's send time (one clock, the function server's), under that
//    saturating load, and again in a paced phase well under capacity. A hop crosses workers
//    when the two instances ran in different processes.
// 2. bench/greeter's request-reply (Prefer: wait) over 1,000 keys, at 1, 32 and 256 clients, sent
//    round-robin to every worker (a worker forwards a request for an instance another runs),
//    with the group commits per request and their mean duration (each process's /metrics).
// 3. CPU per message of the Eddy processes, the broker's JVM and the function server
//    (/proc utime+stime over each measured window), and RSS at the end.
// 4. With 2 or more workers: kill -9 of the last worker, then request-reply to the greeter
//    instances it ran, through the first worker, until each answers: the time from the kill.
//
//   node bench/cluster/run.ts [--workers embedded,1,2] [--quick] [--json]
//     [--rounds 3] [--seconds 10] [--rate 200] [--clients 128] [--keep] [--baseline DIR]
//
// --baseline DIR names another checkout of Eddy (a worktree of an earlier commit, with its
// node_modules); a configuration written `base:1` (or `base:embedded`, `base:2`) in --workers
// then runs that checkout's `eddy`, in the same rounds, and the report adds the ratios of each
// configuration to its baseline.
//
// With --rounds n (default 3, 1 with --quick) every configuration runs n times, interleaved, and
// the tables give the round with the median chain messages/s (the lower of two); the failover
// target is checked against the slowest round. The broker runs the JVM kafka-server-start.sh
// runs, and is warmed up first (warmBroker: request-reply on a 1-worker cluster until the
// broker's CPU per commit settles, one to four minutes), then by one unmeasured round. A full
// run takes about 9 minutes, --quick about 3 (with the broker's start).
import { randomBytes } from "node:crypto";
import { existsSync } from "node:fs";
import { loadavg } from "node:os";
import { resolve } from "node:path";
import { parseArgs } from "node:util";
import { partitionOf } from "../../packages/runtime/src/core/partitioning.ts";
import { type KafkaBroker, startKafka } from "../../test/support/kafka-broker.ts";
import { machine } from "../machine.ts";
import { type Deployment, type DeploymentKind, eddyBinOf, labelsOf, startDeployment } from "./deployment.ts";
import { FunctionServer } from "./function-server.ts";
import { PARTITIONS, type Snapshot } from "./functions.ts";
import { closedLoop, pacedLoad, type Target, untilAllAnswer, waitUntilAnswering } from "./load.ts";
import { brokerPid, type CommitTally, commitTally, cpuMicros, rssMb } from "./proc.ts";
import {
  type BrokerWarmUp,
  type ConfigurationResult,
  type CpuPerUnit,
  type Failover,
  type GreeterResult,
  type HopLatency,
  printReport,
  type RefusedCommits,
  type Report,
  reportOf,
} from "./report.ts";

function wholeNumber(text: string | undefined, fallback: number, flag: string): number {
  if (text === undefined) return fallback;
  const value = Number(text);
  if (!Number.isSafeInteger(value) || value < 1) throw new Error(`--${flag} ${text}: expected a whole number ≥ 1`);
  return value;
}

function parseKinds(text: string, baseline: string | undefined): DeploymentKind[] {
  return text.split(",").map((given): DeploymentKind => {
    const word = given.startsWith("base:") ? given.slice("base:".length) : given;
    const from = word === given ? {} : { baseline: checkBaseline(baseline, given) };
    if (word === "embedded") return { kind: "embedded", ...from };
    const workers = Number(word);
    if (!/^\d+$/.test(word) || workers < 1 || workers > 8) {
      throw new Error(`--workers: "${given}" is not "embedded" or a worker count from 1 to 8 (either after "base:")`);
    }
    return { kind: "cluster", workers, ...from };
  });
}

/** The --baseline checkout, which a `base:` configuration needs, with an `eddy` to run. */
function checkBaseline(baseline: string | undefined, word: string): string {
  if (baseline === undefined) throw new Error(`--workers: "${word}" needs --baseline DIR (another checkout of Eddy)`);
  const checkout = resolve(baseline);
  if (!existsSync(eddyBinOf(checkout))) {
    throw new Error(`--baseline ${baseline}: no ${eddyBinOf(checkout)} (run npm ci in that checkout)`);
  }
  return checkout;
}

/** The command line, read and checked; a mistake is one line and exit 2. */
function readOptions() {
  try {
    const { values } = parseArgs({
      options: {
        workers: { type: "string" },
        quick: { type: "boolean" },
        json: { type: "boolean" },
        seconds: { type: "string" },
        rate: { type: "string" },
        clients: { type: "string" },
        rounds: { type: "string" },
        /** Keep each configuration's directory (modules, state, the workers' logs) and say where. */
        keep: { type: "boolean" },
        baseline: { type: "string" },
      },
    });
    const quick = values.quick === true;
    return {
      quick,
      json: values.json === true,
      keep: values.keep === true,
      kinds: parseKinds(values.workers ?? "embedded,1,2", values.baseline),
      rounds: wholeNumber(values.rounds, quick ? 1 : 3, "rounds"),
      chainMs: wholeNumber(values.seconds, quick ? 4 : 10, "seconds") * 1000,
      pacedRate: wholeNumber(values.rate, 200, "rate"),
      chainClients: wholeNumber(values.clients, 128, "clients"),
    };
  } catch (error) {
    process.stderr.write(`bench/cluster: ${error instanceof Error ? error.message : String(error)}\n`);
    process.exit(2);
  }
}

const options = readOptions();
const QUICK = options.quick;
const KINDS = options.kinds;
const ROUNDS = options.rounds;
const CHAIN_MS = options.chainMs;
const PACED_RATE = options.pacedRate;
const CHAIN_CLIENTS = options.chainClients;
const ADDRESSES = 10_000;
const GREETER_KEYS = 1_000;
const WARMUP_MS = QUICK ? 1_500 : 2_000;
const PACED_MS = QUICK ? 3_000 : 6_000;
/** As bench/greeter runs it: one client, 32, and 256. */
const GREETER_CLIENTS = [1, 32, 256];
const GREETER_MS = QUICK ? 2_000 : 5_000;
const GREETER_WARMUP_MS = 1_000;
/** From spawn to the first round of probes every worker answers. */
const READY_TIMEOUT_MS = 90_000;
/** How long the chain may take to deliver what the ingress took, after the load stops. */
const DRAIN_TIMEOUT_MS = 60_000;
const DRAIN_STALL_MS = 10_000;
/** The failover probe gives up after this (the target is 15 s). */
const FAILOVER_TIMEOUT_MS = 60_000;
const FAILOVER_CLIENTS = 32;

/** The partition of bench/first/<id> for every id the chain sends to. */
const firstPartition = Array.from({ length: ADDRESSES }, (_, id) => partitionOf(`bench/first\u0000${id}`, PARTITIONS));

function percentile(sorted: readonly number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? Number.NaN;
}

function round1(value: number): number {
  return Math.round(value * 10) / 10;
}

function hopLatency(snapshot: Snapshot, crossed?: boolean): HopLatency | undefined {
  const sample = snapshot.hopMs.filter((_, index) => crossed === undefined || snapshot.hopCrossed[index] === crossed);
  if (sample.length === 0) return undefined;
  sample.sort((a, b) => a - b);
  return { hops: sample.length, p50Ms: round1(percentile(sample, 50)), p99Ms: round1(percentile(sample, 99)) };
}

/** CPU time so far of the configuration's Eddy processes (those running), the broker and the function server. */
interface CpuReading {
  readonly eddy: number;
  readonly broker: number;
  readonly functions: number;
}

function readCpu(deployment: Deployment, functions: FunctionServer, broker: number | undefined): CpuReading {
  let eddy = 0;
  for (const each of deployment.processes) {
    const pid = each.pid;
    if (pid !== undefined) eddy += cpuMicros(pid) ?? 0;
  }
  return {
    eddy,
    broker: broker === undefined ? 0 : (cpuMicros(broker) ?? 0),
    functions: cpuMicros(functions.pid) ?? 0,
  };
}

function perUnit(before: CpuReading, after: CpuReading, units: number, withBroker: boolean): CpuPerUnit {
  const per = (micros: number) => (units === 0 ? Number.NaN : Math.round(micros / units));
  return {
    eddyMicros: per(after.eddy - before.eddy),
    brokerMicros: withBroker ? per(after.broker - before.broker) : undefined,
    functionsMicros: per(after.functions - before.functions),
  };
}

function progress(line: string): void {
  if (!options.json) process.stderr.write(`  ${line}\n`);
}

/** The greeter's request number `sequence`: request-reply to one of GREETER_KEYS, round-robin over `urls`. */
function greeterRequest(urls: readonly string[], sequence: number): Target {
  return {
    url: urls[sequence % urls.length] as string,
    request: {
      method: "PUT",
      path: `/bench/greeter/${sequence % GREETER_KEYS}`,
      headers: { prefer: "wait=60", "content-type": "text/plain" },
      body: `user${sequence % GREETER_KEYS}`,
    },
  };
}

/** Waits until bench/second has seen `accepted` messages in all, or stops progressing. */
async function drain(functions: FunctionServer, accepted: number): Promise<number> {
  const deadline = performance.now() + DRAIN_TIMEOUT_MS;
  let delivered = -1;
  let progressAt = performance.now();
  for (;;) {
    const now = (await functions.command({ cmd: "snapshot" })).chainDeliveredTotal;
    if (now !== delivered) progressAt = performance.now();
    delivered = now;
    if (delivered >= accepted || performance.now() > deadline || performance.now() - progressAt > DRAIN_STALL_MS) {
      return delivered;
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

/** What the workers logged of commits Kafka refused: each one undone and done again, a cost the figures include. */
function refusedCommits(deployment: Deployment): RefusedCommits {
  let count = 0;
  let first: string | undefined;
  let stuck = false;
  for (const each of deployment.processes) {
    for (const line of each.log().split("\n")) {
      if (!line.includes("a commit was refused")) continue;
      count++;
      first ??= `${each.label}: ${line.trim()}`;
      // The producer still holds a transaction it could not end: no later commit can begin.
      if (line.includes("There is already an active transaction")) stuck = true;
    }
  }
  return { count, first, stuck };
}

async function measure(
  kind: DeploymentKind,
  broker: KafkaBroker | undefined,
  brokerProcess: number | undefined,
  runId: string,
): Promise<ConfigurationResult> {
  const functions = await FunctionServer.start(labelsOf(kind));
  let deployment: Deployment | undefined;
  try {
    const startedAt = performance.now();
    deployment = await startDeployment(
      kind,
      functions.urls,
      broker === undefined
        ? undefined
        : {
            bootstrap: broker.bootstrap,
            name: `bench-${runId}-${kind.kind}-${labelsOf(kind).length}${kind.baseline === undefined ? "" : "-base"}`,
          },
    );
    const running = deployment;
    const urls = running.processes.map((each) => each.ingressUrl);
    const urlOf = new Map(running.processes.map((each) => [each.label, each.ingressUrl]));
    await waitUntilAnswering(urls, READY_TIMEOUT_MS);
    const readySeconds = round1((performance.now() - startedAt) / 1000);
    progress(`${running.name}: answering ${readySeconds} s after the start; the chain ...`);
    const withBroker = kind.kind === "cluster";

    // 1. The chain, saturated. The owners are learnt during the warm-up, fixed at the window's start.
    let owners: readonly (string | null)[] = [];
    /** The chain's request `sequence`, sent to the worker seen running its instance (round-robin until known). */
    const chainTarget = (sequence: number): Target => {
      const id = sequence % ADDRESSES;
      const owner = owners[firstPartition[id] as number];
      return {
        url:
          (owner === null || owner === undefined ? undefined : urlOf.get(owner)) ??
          (urls[sequence % urls.length] as string),
        request: { method: "PUT", path: `/bench/first/${id}`, headers: { "content-type": "text/plain" }, body: "go" },
      };
    };
    let cpuBefore = readCpu(running, functions, brokerProcess);
    let cpuAfter = cpuBefore;
    let windowStart = 0;
    let chainWindow: Snapshot | undefined;
    let windowSeconds = 0;
    const chainLoad = await closedLoop({
      clients: CHAIN_CLIENTS,
      warmupMs: WARMUP_MS,
      measureMs: CHAIN_MS,
      next: chainTarget,
      atMeasureStart: async () => {
        owners = (await functions.command({ cmd: "reset" })).partitionOwners.slice();
        cpuBefore = readCpu(running, functions, brokerProcess);
        windowStart = performance.now();
      },
      atMeasureEnd: async () => {
        chainWindow = await functions.command({ cmd: "snapshot" });
        cpuAfter = readCpu(running, functions, brokerProcess);
        windowSeconds = (performance.now() - windowStart) / 1000;
      },
    });
    if (chainWindow === undefined) throw new Error("the chain's window was not read");
    const window: Snapshot = chainWindow;
    let accepted = chainLoad.acceptedTotal;
    let delivered = await drain(functions, accepted);
    chainLoad.latenciesMs.sort((a, b) => a - b);
    const chain = {
      messagesPerSecond: Math.round(window.chainDelivered / windowSeconds),
      ingressAcceptedPerSecond: Math.round(chainLoad.completed / chainLoad.seconds),
      ingressP50Ms: round1(percentile(chainLoad.latenciesMs, 50)),
      ingressP99Ms: round1(percentile(chainLoad.latenciesMs, 99)),
      hop: hopLatency(window),
      crossHop: hopLatency(window, true),
      localHop: hopLatency(window, false),
      cpu: perUnit(cpuBefore, cpuAfter, window.chainDelivered, withBroker),
      errors: chainLoad.errors,
      firstError: chainLoad.firstError,
      accepted,
      delivered,
    };
    progress(`${running.name}: chain ${chain.messagesPerSecond} messages/s; paced at ${PACED_RATE}/s ...`);

    // 2. The chain, paced well under capacity: the hop latency of a system that is not queueing.
    await functions.command({ cmd: "reset" });
    const pacedLoadResult = await pacedLoad({ ratePerSecond: PACED_RATE, durationMs: PACED_MS, next: chainTarget });
    accepted += pacedLoadResult.accepted;
    delivered = await drain(functions, accepted);
    const pacedWindow = await functions.command({ cmd: "snapshot" });
    const paced = {
      ratePerSecond: PACED_RATE,
      hop: hopLatency(pacedWindow),
      crossHop: hopLatency(pacedWindow, true),
      localHop: hopLatency(pacedWindow, false),
      late: pacedLoadResult.late,
      errors: pacedLoadResult.errors,
      firstError: pacedLoadResult.firstError,
      accepted,
      delivered,
    };

    // 3. The greeter, round-robin over the workers.
    const greeter: GreeterResult[] = [];
    for (const clients of GREETER_CLIENTS) {
      progress(`${running.name}: greeter at ${clients} client(s) ...`);
      let before = cpuBefore;
      let after = cpuAfter;
      const adminUrls = running.processes.map((each) => each.adminUrl());
      let commitsBefore: CommitTally | undefined;
      let commitsAfter: CommitTally | undefined;
      const result = await closedLoop({
        clients,
        warmupMs: GREETER_WARMUP_MS,
        measureMs: GREETER_MS,
        next: (sequence) => greeterRequest(urls, sequence),
        atMeasureStart: async () => {
          before = readCpu(running, functions, brokerProcess);
          commitsBefore = await commitTally(adminUrls);
        },
        atMeasureEnd: async () => {
          after = readCpu(running, functions, brokerProcess);
          commitsAfter = await commitTally(adminUrls);
        },
      });
      result.latenciesMs.sort((a, b) => a - b);
      const commits =
        commitsBefore === undefined || commitsAfter === undefined
          ? undefined
          : { count: commitsAfter.count - commitsBefore.count, seconds: commitsAfter.seconds - commitsBefore.seconds };
      greeter.push({
        clients,
        requestsPerSecond: Math.round(result.completed / result.seconds),
        p50Ms: round1(percentile(result.latenciesMs, 50)),
        p99Ms: round1(percentile(result.latenciesMs, 99)),
        commitsPerRequest:
          commits === undefined || result.completed === 0
            ? undefined
            : Math.round((100 * commits.count) / result.completed) / 100,
        commitMeanMs:
          commits === undefined || commits.count === 0 ? undefined : round1((1000 * commits.seconds) / commits.count),
        errors: result.errors,
        firstError: result.firstError,
        cpu: perUnit(before, after, result.completed, withBroker),
      });
    }

    // Memory at the end of the load.
    const rss = {
      eddyMb: running.processes.map((each) => (each.pid === undefined ? Number.NaN : (rssMb(each.pid) ?? Number.NaN))),
      brokerMb: withBroker && brokerProcess !== undefined ? rssMb(brokerProcess) : undefined,
      functionsMb: rssMb(functions.pid),
    };

    // 4. Failover: kill -9 the last worker, ask its instances through the first one.
    let failover: Failover | undefined;
    if (kind.kind === "cluster" && kind.workers >= 2) {
      const victim = running.processes[running.processes.length - 1];
      const via = running.processes[0];
      if (victim === undefined || via === undefined) throw new Error("no workers");
      const owned = Object.entries((await functions.command({ cmd: "snapshot" })).greeterOwners)
        .filter(([, owner]) => owner === victim.label)
        .map(([id]) => id);
      const partitions = new Set(owned.map((id) => partitionOf(`bench/greeter\u0000${id}`, PARTITIONS)));
      progress(
        `${running.name}: kill -9 ${victim.label}, then ${owned.length} of its greeter instances through ${via.label} ...`,
      );
      // A worker left holding a transaction it could not end commits nothing, so answers nothing either.
      const stuckBeforeKill = refusedCommits(running).stuck;
      const killedAt = performance.now();
      await victim.kill();
      const answeredAt = await untilAllAnswer({
        url: via.ingressUrl,
        ids: owned,
        clients: FAILOVER_CLIENTS,
        timeoutMs: FAILOVER_TIMEOUT_MS,
      });
      const times = [...answeredAt.values()].sort((a, b) => a - b);
      const first = times[0];
      const last = times[times.length - 1];
      failover = {
        killed: victim.label,
        via: via.label,
        instances: owned.length,
        partitions: partitions.size,
        answered: answeredAt.size,
        firstAnswerSeconds: first === undefined ? undefined : round1((first - killedAt) / 1000),
        allAnsweredSeconds:
          answeredAt.size === owned.length && last !== undefined ? round1((last - killedAt) / 1000) : undefined,
        timeoutSeconds: FAILOVER_TIMEOUT_MS / 1000,
        stuckBeforeKill,
      };
    }
    return {
      name: running.name,
      refusedCommits: refusedCommits(running),
      workers: kind.kind === "embedded" ? 0 : kind.workers,
      baseline: kind.baseline !== undefined,
      readySeconds,
      chain,
      paced,
      greeter,
      rss,
      ...(failover === undefined ? {} : { failover }),
    };
  } finally {
    await deployment?.stop(options.keep);
    if (options.keep && deployment !== undefined) {
      process.stderr.write(`  ${deployment.name}: kept ${deployment.dir} (the workers' logs: <label>.log)\n`);
    }
    await functions.stop();
  }
}

/** Clients of the warm-up's greeter: few, so that commits are many and small (one per request or two). */
const WARM_UP_CLIENTS = 4;
const WARM_UP_WINDOW_MS = 10_000;
/** Windows at least, and at most (the warm-up stops there, settled or not). */
const WARM_UP_WINDOWS_MIN = 6;
const WARM_UP_WINDOWS_MAX = QUICK ? 15 : 24;
/** Settled: each of the last two windows' broker CPU per commit within this fraction of the window before it. */
const WARM_UP_SETTLED = 0.1;

/** Whether each of the last two windows' broker CPU per commit is within WARM_UP_SETTLED of the window before it. */
function settled(windows: readonly { brokerMicrosPerCommit: number }[]): boolean {
  const [a, b, c] = windows.slice(-3).map((window) => window.brokerMicrosPerCommit);
  if (a === undefined || b === undefined || c === undefined) return false;
  return Math.abs(b - a) <= WARM_UP_SETTLED * a && Math.abs(c - b) <= WARM_UP_SETTLED * b;
}

/**
 * Brings a fresh broker to the speed of one that has run for a while. Its JVM compiles its hot
 * paths (C2) for minutes: measured with a probe of bare transactions, the broker's CPU per
 * transaction fell from 16-18 ms in the first thousand to 5-7 ms after four thousand and to
 * 1.3-1.8 ms after fifteen thousand (docs/benchmarks.md). Brokers in production run warm, so a
 * 1-worker cluster answers the greeter at a few clients (many small commits, every request a
 * commit takes) in windows of 10 s until the broker's CPU per commit settles.
 */
async function warmBroker(
  broker: KafkaBroker,
  brokerProcess: number | undefined,
  runId: string,
): Promise<BrokerWarmUp | undefined> {
  if (brokerProcess === undefined) return undefined;
  const kind: DeploymentKind = { kind: "cluster", workers: 1 };
  const functions = await FunctionServer.start(labelsOf(kind));
  let deployment: Deployment | undefined;
  try {
    deployment = await startDeployment(kind, functions.urls, { bootstrap: broker.bootstrap, name: `bench-${runId}` });
    const urls = deployment.processes.map((each) => each.ingressUrl);
    const adminUrls = deployment.processes.map((each) => each.adminUrl());
    await waitUntilAnswering(urls, READY_TIMEOUT_MS);
    const startedAt = performance.now();
    const windows: { commits: number; brokerMicrosPerCommit: number }[] = [];
    for (let index = 0; index < WARM_UP_WINDOWS_MAX; index++) {
      let cpuBefore = 0;
      let commitsBefore: CommitTally | undefined;
      let window: { commits: number; brokerMicrosPerCommit: number } | undefined;
      await closedLoop({
        clients: WARM_UP_CLIENTS,
        warmupMs: 0,
        measureMs: WARM_UP_WINDOW_MS,
        next: (sequence) => greeterRequest(urls, sequence),
        atMeasureStart: async () => {
          cpuBefore = cpuMicros(brokerProcess) ?? 0;
          commitsBefore = await commitTally(adminUrls);
        },
        atMeasureEnd: async () => {
          const cpu = (cpuMicros(brokerProcess) ?? 0) - cpuBefore;
          const commitsAfter = await commitTally(adminUrls);
          if (commitsBefore === undefined || commitsAfter === undefined) return;
          const commits = commitsAfter.count - commitsBefore.count;
          window = { commits, brokerMicrosPerCommit: commits === 0 ? Number.NaN : Math.round(cpu / commits) };
        },
      });
      if (window === undefined) throw new Error("the warm-up could not read the worker's commits from its /metrics");
      windows.push(window);
      progress(
        `  warm-up window ${index + 1}: ${window.commits} commits, broker CPU ${window.brokerMicrosPerCommit} µs a commit`,
      );
      if (windows.length >= WARM_UP_WINDOWS_MIN && settled(windows)) break;
    }
    return {
      seconds: round1((performance.now() - startedAt) / 1000),
      commits: windows.reduce((sum, window) => sum + window.commits, 0),
      firstMicrosPerCommit: windows[0]?.brokerMicrosPerCommit ?? Number.NaN,
      lastMicrosPerCommit: windows.at(-1)?.brokerMicrosPerCommit ?? Number.NaN,
      settled: settled(windows),
    };
  } finally {
    await deployment?.stop(false);
    await functions.stop();
  }
}

/** The round with the median chain messages/s (the lower of two): a round's figures stay together. */
function medianRound(results: readonly ConfigurationResult[]): ConfigurationResult {
  const sorted = results.slice().sort((a, b) => a.chain.messagesPerSecond - b.chain.messagesPerSecond);
  return sorted[Math.floor((sorted.length - 1) / 2)] as ConfigurationResult;
}

async function main(): Promise<void> {
  // What else the machine was doing: the 1-minute load average before and after.
  const loadBefore = Math.round((loadavg()[0] ?? 0) * 10) / 10;
  const runId = randomBytes(3).toString("hex");
  const needsBroker = KINDS.some((kind) => kind.kind === "cluster");
  let broker: KafkaBroker | undefined;
  let brokerWarmUp: BrokerWarmUp | undefined;
  // Rounds interleave the configurations: the VM's speed drifts, and each round meets the same drift.
  const rounds: ConfigurationResult[][] = KINDS.map(() => []);
  try {
    if (needsBroker) {
      progress("starting a Kafka broker on 127.0.0.1 ...");
      broker = await startKafka({ jvm: "production" });
    }
    const brokerProcess = broker === undefined ? undefined : brokerPid(broker);
    if (broker !== undefined) {
      progress("warming the broker up: request-reply on a 1-worker cluster until its CPU per commit settles ...");
      brokerWarmUp = await warmBroker(broker, brokerProcess, `${runId}-warm-up`);
      progress("warming the broker up: one unmeasured round of a 1-worker cluster ...");
      await measure({ kind: "cluster", workers: 1 }, broker, brokerProcess, `${runId}-warm-up`);
    }
    for (let round = 0; round < ROUNDS; round++) {
      for (const [index, kind] of KINDS.entries()) {
        if (ROUNDS > 1) progress(`round ${round + 1} of ${ROUNDS}:`);
        rounds[index]?.push(await measure(kind, broker, brokerProcess, `${runId}-${round}`));
      }
    }
  } finally {
    await broker?.stop();
  }
  const report: Report = reportOf({
    date: new Date().toISOString(),
    machine: machine(),
    loadAverage: { before: loadBefore, after: Math.round((loadavg()[0] ?? 0) * 10) / 10 },
    settings: {
      quick: QUICK,
      addresses: ADDRESSES,
      chainClients: CHAIN_CLIENTS,
      warmupSeconds: WARMUP_MS / 1000,
      chainSeconds: CHAIN_MS / 1000,
      pacedRatePerSecond: PACED_RATE,
      pacedSeconds: PACED_MS / 1000,
      greeterKeys: GREETER_KEYS,
      greeterSeconds: GREETER_MS / 1000,
      partitions: PARTITIONS,
      rounds: ROUNDS,
    },
    ...(brokerWarmUp === undefined ? {} : { brokerWarmUp }),
    configurations: rounds.map(medianRound),
    rounds,
  });
  if (options.json) process.stdout.write(`${JSON.stringify(report)}\n`);
  else printReport(report, (line) => process.stdout.write(`${line}\n`));
}

try {
  await main();
} catch (error) {
  process.stderr.write(`bench/cluster: ${error instanceof Error ? error.message : String(error)}\n`);
  process.exitCode = 1;
}
