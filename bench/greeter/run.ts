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
//   node bench/greeter/run.ts [--seconds 5] [--only eddy-remote,eddy-in-process,restate,restate-4] [--json]
import { type ChildProcess, fork, spawn } from "node:child_process";
import { once } from "node:events";
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { parseArgs } from "node:util";
import { createEndpoint, serve } from "@eddy/sdk";
import { HttpConnection } from "../http-load.ts";
import { machine } from "../machine.ts";
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

async function eddySystem(mode: "remote" | "in-process"): Promise<System> {
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
  const args =
    mode === "remote"
      ? ["run", modulePath, "--state-dir", join(dir, "state")]
      : ["dev", "bench/greeter/functions.ts", "--module", modulePath, "--state-dir", join(dir, "state")];
  let runtime: ChildProcess | undefined;
  return {
    name: mode === "remote" ? "Eddy, remote TS function" : "Eddy, in-process",
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
}

function percentile(sorted: readonly number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? Number.NaN;
}

/** A closed loop of `concurrency` clients over 1,000 keys, for warm-up plus the measured time. */
async function load(system: System, concurrency: number): Promise<LoadResult> {
  const latencies: number[] = [];
  let errors = 0;
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

async function main(): Promise<void> {
  const all = ["eddy-remote", "eddy-in-process", "restate", "restate-4"];
  const only = values.only?.split(",") ?? all;
  for (const name of only) if (!all.includes(name)) throw new Error(`--only: ${name} is not one of ${all.join(", ")}`);
  const results: SystemResult[] = [];
  if (only.includes("eddy-remote")) results.push(await measure(await eddySystem("remote")));
  if (only.includes("eddy-in-process")) results.push(await measure(await eddySystem("in-process")));
  if (only.includes("restate")) results.push(await measure(await restateSystem(undefined)));
  if (only.includes("restate-4")) results.push(await measure(await restateSystem(4)));

  const report = {
    date: new Date().toISOString(),
    machine: machine(),
    keys: KEYS,
    seconds: MEASURE_MS / 1000,
    results,
  };
  if (values.json === true) {
    process.stdout.write(`${JSON.stringify(report)}\n`);
    return;
  }
  process.stdout.write(
    `bench/greeter — ${report.date}\nrequest-reply greeter over HTTP, ${KEYS} keys, closed loop, ${MEASURE_MS / 1000} s measured after ${WARMUP_MS / 1000} s warm-up per concurrency\n\n`,
  );
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
}

if (values["serve-functions"] === true) {
  const server = await serve(createEndpoint([greeter]), { port: 0 });
  process.send?.({ url: server.url });
} else {
  await main();
}
