// bench/greeter: the greeter as request-reply over HTTP, 1,000 keys, at concurrency 1, 32
// and 256, for Eddy (`eddy run` with the function in a TypeScript function server, and
// `eddy dev` with it in-process) and for Restate 1.7 (restate-server from npm, a virtual
// object served by its TypeScript SDK) with its default 24 partitions and tuned to 4 for
// 2 cores. Same machine, same load generator (bench/http-load.ts, closed loop), same run. Both answer
// only once the call is durable: Eddy after the group commit that holds the reply (LMDB,
// fsync), Restate after its log (fsync on by default).
//
// Then recovery: under load at concurrency 32, kill -9 the server (Eddy's runtime process,
// restate-server) and start it again on the same state; the time from the restart until a
// request is answered again.
//
// Then the overhead of Eddy's observability (part of the default run: about 75 s more at the
// default --seconds 5 and 3 rounds; `--overhead` runs it alone): `eddy run` with the remote
// TypeScript function server at concurrency 32 in three modes, interleaved over --rounds rounds
// (their order rotated from round to round), a fresh state and a fresh runtime process each time:
// `--admin-port off` (no metrics, no tracing), `--admin-port 0` (the admin listener, so metrics,
// as by default), and that plus tracing (OTEL_EXPORTER_OTLP_ENDPOINT naming bench/otlp-sink.ts,
// which runs in its own process and counts the spans it receives). Each mode's req/s, latency,
// the runtime's RSS and CPU per request, and its cost against off.
//
// `eddy-remote-threads` is `eddy run` as in eddy-remote, with --threads 2 (and --admin-port off,
// which partition threads need for now).
//
//   node bench/greeter/run.ts [--seconds 5] [--rounds 3] [--only eddy-remote,eddy-remote-threads,eddy-in-process,restate,restate-4,overhead] [--overhead] [--json]
import { type ChildProcess, fork, spawn } from "node:child_process";
import { once } from "node:events";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { parseArgs } from "node:util";
import { createEndpoint, serve } from "@eddy/sdk";
import { HttpConnection } from "../http-load.ts";
import { machine } from "../machine.ts";
import { type OtlpSink, type SinkStats, startOtlpSink } from "../otlp-sink.ts";
import { greeter } from "./functions.ts";

const root = resolve(import.meta.dirname, "../..");
const eddyBin = join(root, "node_modules/.bin/eddy");
const restateBin = join(root, "node_modules/@restatedev/restate-server-linux-x64/bin/restate-server");
const KEYS = 1000;
const CONCURRENCIES = [1, 32, 256];

const { values } = parseArgs({
  options: {
    seconds: { type: "string" },
    only: { type: "string" },
    json: { type: "boolean" },
    overhead: { type: "boolean" },
    rounds: { type: "string" },
    "serve-functions": { type: "boolean" },
  },
});
const MEASURE_MS = Number(values.seconds ?? 5) * 1000;
const WARMUP_MS = 1000;

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((done) => server.listen(0, "127.0.0.1", done));
  const address = server.address();
  await new Promise<void>((done) => server.close(() => done()));
  if (address === null || typeof address === "string") throw new Error("no port");
  return address.port;
}

/** Starts a process and resolves once its output contains `ready`. */
async function startProcess(
  command: string,
  args: readonly string[],
  ready: string,
  env: NodeJS.ProcessEnv = process.env,
): Promise<ChildProcess> {
  const child = spawn(command, args, { cwd: root, stdio: ["ignore", "pipe", "pipe"], env });
  let output = "";
  await new Promise<void>((resolveReady, reject) => {
    const onData = (chunk: Buffer) => {
      output += chunk.toString();
      if (output.includes(ready)) resolveReady();
    };
    child.stdout?.on("data", onData);
    child.stderr?.on("data", onData);
    child.once("exit", (code, signal) => reject(new Error(`${command} exited (${code ?? signal}):\n${output}`)));
  });
  // Keep draining the pipes so a chatty server never blocks on a full pipe.
  child.stdout?.removeAllListeners("data");
  child.stderr?.removeAllListeners("data");
  child.stdout?.resume();
  child.stderr?.resume();
  return child;
}

/** Sends `signal` to a child that still runs and waits for it to exit. */
async function endProcess(child: ChildProcess | undefined, signal: "SIGKILL" | "SIGTERM"): Promise<void> {
  if (child === undefined || child.exitCode !== null || child.signalCode !== null) return;
  const exited = once(child, "exit");
  child.kill(signal);
  await exited;
}

/** A system under test: how to call the greeter, and how to (re)start and kill its server. */
interface System {
  readonly name: string;
  readonly url: string;
  request(key: number): { path: string; headers: Record<string, string>; body: string };
  /** Starts (or restarts) the server process on the same state. */
  startServer(): Promise<void>;
  killServer(): Promise<void>;
  stop(): Promise<void>;
}

/** `threads`: `eddy run --threads N` (remote only; partition threads run without the admin listener yet). */
async function eddySystem(mode: "remote" | "in-process", threads?: number): Promise<System> {
  const dir = mkdtempSync(join(tmpdir(), "eddy-bench-greeter-"));
  const port = await freePort();
  let functions: ChildProcess | undefined;
  let functionsUrl = "";
  if (mode === "remote") {
    functions = fork(import.meta.filename, ["--serve-functions"], { stdio: ["ignore", "inherit", "inherit", "ipc"] });
    functionsUrl = await new Promise<string>((resolveUrl) =>
      functions?.on("message", (m: { url?: string }) => m.url && resolveUrl(m.url)),
    );
  }
  const modulePath = join(dir, "module.yaml");
  writeFileSync(
    modulePath,
    `${mode === "remote" ? `kind: io.statefun.endpoints.v2/http\nspec:\n  functions: bench/*\n  urlPathTemplate: ${functionsUrl}\n---\n` : ""}kind: io.statefun.playground.v1/ingress\nspec:\n  port: ${port}\n`,
  );
  const threaded = threads === undefined ? [] : ["--threads", String(threads), "--admin-port", "off"];
  const args =
    mode === "remote"
      ? ["run", modulePath, "--state-dir", join(dir, "state"), ...threaded]
      : ["dev", "bench/greeter/functions.ts", "--module", modulePath, "--state-dir", join(dir, "state")];
  let runtime: ChildProcess | undefined;
  return {
    name:
      mode === "remote"
        ? `Eddy, remote TS function${threads === undefined ? "" : `, --threads ${threads}`}`
        : "Eddy, in-process",
    url: `http://127.0.0.1:${port}`,
    request: (key) => ({
      path: `/bench/greeter/${key}`,
      headers: { prefer: "wait=60", "content-type": "text/plain" },
      body: `user${key}`,
    }),
    async startServer() {
      runtime = await startProcess(eddyBin, args, "eddy: running");
    },
    async killServer() {
      await endProcess(runtime, "SIGKILL");
    },
    async stop() {
      await endProcess(runtime, "SIGTERM");
      functions?.kill();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

async function restateSystem(partitions: number | undefined): Promise<System> {
  if (!existsSync(restateBin)) {
    throw new Error(
      `no Restate server binary at ${restateBin}: @restatedev/restate-server ships one per platform (linux-x64 here); run with --only eddy-remote,eddy-in-process elsewhere`,
    );
  }
  const dir = mkdtempSync(join(tmpdir(), "eddy-bench-restate-"));
  const [nodePort, adminPort, ingressPort, servicePort] = [
    await freePort(),
    await freePort(),
    await freePort(),
    await freePort(),
  ];
  const service = await startProcess(
    process.execPath,
    [join(import.meta.dirname, "restate-service.ts"), String(servicePort)],
    "listening",
  );
  const configPath = join(dir, "restate.toml");
  writeFileSync(
    configPath,
    [
      `base-dir = "${join(dir, "data")}"`,
      ...(partitions === undefined ? [] : [`default-num-partitions = ${partitions}`]),
      "disable-telemetry = true",
      `bind-address = "127.0.0.1:${nodePort}"`,
      `advertised-address = "http://127.0.0.1:${nodePort}/"`,
      "[admin]",
      `bind-address = "127.0.0.1:${adminPort}"`,
      "[ingress]",
      `bind-address = "127.0.0.1:${ingressPort}"`,
      "",
    ].join("\n"),
  );
  let server: ChildProcess | undefined;
  let registered = false;
  const env = { ...process.env, RESTATE_LISTEN_MODE: "tcp" };
  return {
    name: partitions === undefined ? "Restate 1.7, default (24 partitions)" : `Restate 1.7, ${partitions} partitions`,
    url: `http://127.0.0.1:${ingressPort}`,
    request: (key) => ({
      path: `/greeter/${key}/greet`,
      headers: { "content-type": "application/json" },
      body: JSON.stringify(`user${key}`),
    }),
    async startServer() {
      server = spawn(restateBin, ["--config-file", configPath, "--no-logo"], {
        cwd: dir,
        stdio: ["ignore", "ignore", "ignore"],
        env,
      });
      // Ready when the admin API answers; the deployment is registered once per state.
      for (;;) {
        try {
          const health = await fetch(`http://127.0.0.1:${adminPort}/health`);
          if (health.ok) break;
        } catch {
          // not up yet
        }
        if (server.exitCode !== null) throw new Error("restate-server exited while starting");
        await sleep(20);
      }
      while (!registered) {
        const response = await fetch(`http://127.0.0.1:${adminPort}/deployments`, {
          method: "POST",
          headers: { "content-type": "application/json" },
          body: JSON.stringify({ uri: `http://127.0.0.1:${servicePort}` }),
        });
        if (response.ok) registered = true;
        else await sleep(100);
      }
    },
    async killServer() {
      await endProcess(server, "SIGKILL");
    },
    async stop() {
      await endProcess(server, "SIGTERM");
      await endProcess(service, "SIGKILL");
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

interface LoadResult {
  readonly concurrency: number;
  readonly requestsPerSecond: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  readonly errors: number;
  /** Answers (200) in the whole run, warm-up included. */
  readonly answered: number;
}

function percentile(sorted: readonly number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? Number.NaN;
}

/** A closed loop of `concurrency` clients over 1,000 keys, for warm-up plus the measured time. */
async function load(system: System, concurrency: number): Promise<LoadResult> {
  const latencies: number[] = [];
  let errors = 0;
  let answered = 0;
  let next = 0;
  const startedAt = performance.now();
  const measureFrom = startedAt + WARMUP_MS;
  const endAt = measureFrom + MEASURE_MS;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      const connection = new HttpConnection(system.url);
      while (performance.now() < endAt) {
        const request = system.request(next++ % KEYS);
        const sentAt = performance.now();
        try {
          const answer = await connection.send(request);
          if (answer.status !== 200) throw new Error(`HTTP ${answer.status}`);
          answered++;
          const doneAt = performance.now();
          if (sentAt >= measureFrom && doneAt <= endAt) latencies.push(doneAt - sentAt);
        } catch {
          errors++;
        }
      }
      connection.close();
    }),
  );
  latencies.sort((a, b) => a - b);
  return {
    concurrency,
    requestsPerSecond: Math.round(latencies.length / (MEASURE_MS / 1000)),
    p50Ms: Math.round(percentile(latencies, 50) * 10) / 10,
    p99Ms: Math.round(percentile(latencies, 99) * 10) / 10,
    errors,
    answered,
  };
}

/**
 * Under load at concurrency 32, kill -9 the server and start it again: the time from the
 * restart until a request is answered (200) again, and from the kill.
 */
async function recovery(system: System): Promise<{ fromRestartMs: number; fromKillMs: number }> {
  let restartedAt = Number.POSITIVE_INFINITY;
  let firstAfterRestart = Number.POSITIVE_INFINITY;
  let stop = false;
  let next = 0;
  const clients = Array.from({ length: 32 }, async () => {
    const connection = new HttpConnection(system.url);
    while (!stop) {
      try {
        const answer = await connection.send(system.request(next++ % KEYS));
        if (answer.status === 200 && performance.now() > restartedAt) {
          firstAfterRestart = Math.min(firstAfterRestart, performance.now());
        }
      } catch {
        await sleep(5); // the server is down
      }
    }
    connection.close();
  });
  await sleep(1000);
  const killedAt = performance.now();
  await system.killServer();
  restartedAt = performance.now();
  await system.startServer();
  const deadline = performance.now() + 120_000;
  while (firstAfterRestart === Number.POSITIVE_INFINITY && performance.now() < deadline) await sleep(5);
  stop = true;
  await Promise.all(clients);
  return {
    fromRestartMs: Math.round(firstAfterRestart - restartedAt),
    fromKillMs: Math.round(firstAfterRestart - killedAt),
  };
}

interface SystemResult {
  readonly name: string;
  readonly loads: LoadResult[];
  readonly recovery: { fromRestartMs: number; fromKillMs: number };
}

async function measure(system: System): Promise<SystemResult> {
  try {
    await system.startServer();
    const loads: LoadResult[] = [];
    for (const concurrency of CONCURRENCIES) loads.push(await load(system, concurrency));
    return { name: system.name, loads, recovery: await recovery(system) };
  } finally {
    await system.stop();
  }
}

/** The overhead section's modes: what `eddy run` records besides serving. */
type ObservedMode = "off" | "metrics" | "metrics + tracing";
const OBSERVED_MODES: readonly ObservedMode[] = ["off", "metrics", "metrics + tracing"];
const OVERHEAD_CONCURRENCY = 32;

interface OverheadRound extends LoadResult {
  readonly mode: ObservedMode;
  /** The runtime process's RSS at the end of the measured window, and its peak (VmHWM). */
  readonly rssMb: number;
  readonly peakRssMb: number;
  /** The runtime process's CPU (all threads) per answered request over the measured window. */
  readonly cpuMicrosPerRequest: number;
  /** With tracing: what the sink received from this runtime, its final flush at SIGTERM included. */
  readonly spansExported?: number;
  readonly exportedBytes?: number;
}

/** A process's VmRSS and VmHWM, in MB. */
function processMemory(pid: number): { rssMb: number; peakRssMb: number } {
  const status = readFileSync(`/proc/${pid}/status`, "utf8");
  const kib = (name: string) => Number(new RegExp(`^${name}:\\s+(\\d+) kB`, "m").exec(status)?.[1] ?? Number.NaN);
  return { rssMb: Math.round((kib("VmRSS") * 1024) / 1e6), peakRssMb: Math.round((kib("VmHWM") * 1024) / 1e6) };
}

/** A process's CPU time so far (user + system, all threads), in µs. */
function processCpuMicros(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  // Fields after the command (which may hold spaces) start at ") "; utime and stime are the 14th and 15th.
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return ((Number(fields[11]) + Number(fields[12])) * 1e6) / 100;
}

/** One round of one mode: a fresh state and runtime, load at c=32, its figures, then SIGTERM. */
async function observedRound(mode: ObservedMode, functionsUrl: string, sink: OtlpSink): Promise<OverheadRound> {
  const dir = mkdtempSync(join(tmpdir(), "eddy-bench-greeter-overhead-"));
  const port = await freePort();
  const modulePath = join(dir, "module.yaml");
  writeFileSync(
    modulePath,
    `kind: io.statefun.endpoints.v2/http\nspec:\n  functions: bench/*\n  urlPathTemplate: ${functionsUrl}\n---\nkind: io.statefun.playground.v1/ingress\nspec:\n  port: ${port}\n`,
  );
  const env: NodeJS.ProcessEnv = {};
  for (const [name, value] of Object.entries(process.env)) {
    if (!name.startsWith("OTEL_") && name !== "EDDY_ADMIN_PORT") env[name] = value;
  }
  if (mode === "metrics + tracing") env.OTEL_EXPORTER_OTLP_ENDPOINT = sink.url;
  const args = ["run", modulePath, "--state-dir", join(dir, "state"), "--admin-port", mode === "off" ? "off" : "0"];
  const before: SinkStats = await sink.stats();
  const runtime = await startProcess(eddyBin, args, "eddy: running", env);
  const pid = runtime.pid as number;
  const system: System = {
    name: `Eddy, remote TS function, ${mode}`,
    url: `http://127.0.0.1:${port}`,
    request: (key) => ({
      path: `/bench/greeter/${key}`,
      headers: { prefer: "wait=60", "content-type": "text/plain" },
      body: `user${key}`,
    }),
    startServer: () => Promise.resolve(),
    killServer: () => Promise.resolve(),
    stop: () => Promise.resolve(),
  };
  try {
    let cpuAtMeasureStart = Number.NaN;
    const mark = setTimeout(() => {
      cpuAtMeasureStart = processCpuMicros(pid);
    }, WARMUP_MS);
    const result = await load(system, OVERHEAD_CONCURRENCY);
    clearTimeout(mark);
    const cpu = processCpuMicros(pid) - cpuAtMeasureStart;
    const memory = processMemory(pid);
    await endProcess(runtime, "SIGTERM");
    const after = await sink.stats();
    return {
      ...result,
      mode,
      ...memory,
      cpuMicrosPerRequest: Math.round(cpu / (result.requestsPerSecond * (MEASURE_MS / 1000))),
      ...(mode === "metrics + tracing"
        ? { spansExported: after.spans - before.spans, exportedBytes: after.bytes - before.bytes }
        : {}),
    };
  } finally {
    await endProcess(runtime, "SIGKILL");
    rmSync(dir, { recursive: true, force: true });
  }
}

interface OverheadResult {
  readonly concurrency: number;
  readonly rounds: Record<ObservedMode, OverheadRound[]>;
  /**
   * Each mode's median round (by req/s); its cost against off's in % of req/s, from the medians
   * and round by round; and the median of its rounds' CPU per request, against off's in %.
   */
  readonly medians: (OverheadRound & {
    readonly costPercent: number;
    readonly pairedCostPercents: number[];
    readonly medianCpuMicrosPerRequest: number;
    readonly cpuCostPercent: number;
  })[];
}

function medianBy<T>(rounds: readonly T[], key: (round: T) => number): T {
  const sorted = rounds.slice().sort((a, b) => key(a) - key(b));
  return sorted[Math.floor((sorted.length - 1) / 2)] as T;
}

async function overhead(roundCount: number): Promise<OverheadResult> {
  const functions = fork(import.meta.filename, ["--serve-functions"], {
    stdio: ["ignore", "inherit", "inherit", "ipc"],
  });
  const sink = await startOtlpSink();
  try {
    const functionsUrl = await new Promise<string>((resolveUrl) =>
      functions.on("message", (m: { url?: string }) => m.url && resolveUrl(m.url)),
    );
    const rounds: Record<ObservedMode, OverheadRound[]> = { off: [], metrics: [], "metrics + tracing": [] };
    for (let round = 0; round < roundCount; round++) {
      for (let index = 0; index < OBSERVED_MODES.length; index++) {
        const mode = OBSERVED_MODES[(index + round) % OBSERVED_MODES.length] as ObservedMode;
        rounds[mode].push(await observedRound(mode, functionsUrl, sink));
      }
    }
    const off = medianBy(rounds.off, (r) => r.requestsPerSecond);
    const cpuOf = (mode: ObservedMode) => medianBy(rounds[mode], (r) => r.cpuMicrosPerRequest).cpuMicrosPerRequest;
    const medians = OBSERVED_MODES.map((mode) => {
      const median = medianBy(rounds[mode], (r) => r.requestsPerSecond);
      return {
        ...median,
        medianCpuMicrosPerRequest: cpuOf(mode),
        cpuCostPercent: 100 * (cpuOf(mode) / cpuOf("off") - 1),
        costPercent: 100 * (1 - median.requestsPerSecond / off.requestsPerSecond),
        pairedCostPercents: rounds[mode].map(
          (r, index) => 100 * (1 - r.requestsPerSecond / (rounds.off[index] as OverheadRound).requestsPerSecond),
        ),
      };
    });
    return { concurrency: OVERHEAD_CONCURRENCY, rounds, medians };
  } finally {
    await sink.stop();
    functions.kill();
  }
}

function signedPercent(value: number): string {
  return `${value >= 0 ? "+" : "−"}${Math.abs(value).toFixed(1)}%`;
}

function printOverhead(result: OverheadResult): void {
  process.stdout.write(
    `\noverhead of metrics and tracing: eddy run, remote TS function, c=${result.concurrency}, median of ${result.rounds.off.length} interleaved round(s); cost = 1 − req/s ÷ off's (− is faster); CPU vs off: the runtime's CPU per request against off's (+ is more)\n\n`,
  );
  process.stdout.write(
    "| mode | req/s | p50 ms | p99 ms | errors | Eddy RSS MB | Eddy peak RSS MB | cost vs off | cost by round | Eddy CPU µs/req (median of rounds) | CPU vs off |\n| :-- | --: | --: | --: | --: | --: | --: | --: | :-- | --: | --: |\n",
  );
  for (const row of result.medians) {
    process.stdout.write(
      `| ${row.mode} | ${row.requestsPerSecond} | ${row.p50Ms} | ${row.p99Ms} | ${row.errors} | ${row.rssMb} | ${row.peakRssMb} | ${row.mode === "off" ? "-" : signedPercent(row.costPercent)} | ${row.mode === "off" ? "-" : row.pairedCostPercents.map(signedPercent).join(", ")} | ${row.medianCpuMicrosPerRequest} | ${row.mode === "off" ? "-" : signedPercent(row.cpuCostPercent)} |\n`,
    );
  }
  process.stdout.write("\n");
  for (const mode of OBSERVED_MODES) {
    const rounds = result.rounds[mode];
    process.stdout.write(
      `${mode}: req/s by round ${rounds.map((r) => r.requestsPerSecond).join(", ")}; p99 ms ${rounds.map((r) => r.p99Ms).join(", ")}; RSS MB ${rounds.map((r) => r.rssMb).join(", ")}; Eddy CPU µs/req ${rounds.map((r) => r.cpuMicrosPerRequest).join(", ")}\n`,
    );
  }
  const traced = result.rounds["metrics + tracing"];
  const spans = traced.reduce((sum, r) => sum + (r.spansExported ?? 0), 0);
  const bytes = traced.reduce((sum, r) => sum + (r.exportedBytes ?? 0), 0);
  const answered = traced.reduce((sum, r) => sum + r.answered, 0);
  process.stdout.write(
    `tracing exported: the OTLP sink received ${spans} spans (${(bytes / 1e6).toFixed(1)} MB of protobuf) over ${traced.length} round(s), ${(spans / answered).toFixed(2)} spans per answered request (${answered} answered, warm-up included)\n`,
  );
}

async function main(): Promise<void> {
  const all = ["eddy-remote", "eddy-remote-threads", "eddy-in-process", "restate", "restate-4", "overhead"];
  const only = values.only?.split(",") ?? (values.overhead === true ? ["overhead"] : all);
  for (const name of only) if (!all.includes(name)) throw new Error(`--only: ${name} is not one of ${all.join(", ")}`);
  const results: SystemResult[] = [];
  if (only.includes("eddy-remote")) results.push(await measure(await eddySystem("remote")));
  if (only.includes("eddy-remote-threads")) results.push(await measure(await eddySystem("remote", 2)));
  if (only.includes("eddy-in-process")) results.push(await measure(await eddySystem("in-process")));
  if (only.includes("restate")) results.push(await measure(await restateSystem(undefined)));
  if (only.includes("restate-4")) results.push(await measure(await restateSystem(4)));
  const observed = only.includes("overhead") ? await overhead(Number(values.rounds ?? 3)) : undefined;

  const report = {
    date: new Date().toISOString(),
    machine: machine(),
    keys: KEYS,
    seconds: MEASURE_MS / 1000,
    results,
    overhead: observed,
  };
  if (values.json === true) {
    process.stdout.write(`${JSON.stringify(report)}\n`);
    return;
  }
  process.stdout.write(
    `bench/greeter — ${report.date}\nrequest-reply greeter over HTTP, ${KEYS} keys, closed loop, ${MEASURE_MS / 1000} s measured after ${WARMUP_MS / 1000} s warm-up per concurrency\n\n`,
  );
  if (results.length > 0) {
    process.stdout.write("| system | c | req/s | p50 ms | p99 ms | errors |\n| :-- | --: | --: | --: | --: | --: |\n");
    for (const result of results) {
      for (const row of result.loads) {
        process.stdout.write(
          `| ${result.name} | ${row.concurrency} | ${row.requestsPerSecond} | ${row.p50Ms} | ${row.p99Ms} | ${row.errors} |\n`,
        );
      }
    }
    process.stdout.write("\nrecovery after kill -9 under load (c=32): first answer after the restart\n");
    for (const result of results) {
      process.stdout.write(
        `  ${result.name}: ${result.recovery.fromRestartMs} ms from the restart (${result.recovery.fromKillMs} ms from the kill)\n`,
      );
    }
  }
  const restateDefault = results.find((result) => result.name.startsWith("Restate 1.7, default"));
  if (restateDefault !== undefined) {
    const base = restateDefault.loads.find((row) => row.concurrency === 32);
    process.stdout.write("\nat c=32, against Restate's default configuration:\n");
    for (const result of results) {
      if (result === restateDefault || base === undefined) continue;
      const row = result.loads.find((load) => load.concurrency === 32);
      if (row === undefined) continue;
      process.stdout.write(
        `  ${result.name}: ${(row.requestsPerSecond / base.requestsPerSecond).toFixed(1)}× the throughput, p99 ${row.p99Ms} ms vs ${base.p99Ms} ms\n`,
      );
    }
  }
  if (observed !== undefined) printOverhead(observed);
}

if (values["serve-functions"] === true) {
  const server = await serve(createEndpoint([greeter]), { port: 0 });
  process.send?.({ url: server.url });
} else {
  await main();
}
