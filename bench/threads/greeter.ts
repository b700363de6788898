// bench/greeter's request-reply (Prefer: wait, 1,000 keys, a closed loop of clients on
// keep-alive connections) against Eddy's in-process greeter, in two runtimes on this machine,
// rounds interleaved: `eddy dev` (today's engine and HTTP ingress on the main thread; its admin
// listener off, as the threads have none) and the partition threads of packages/runtime/src/
// threads/ serving the ingress from every thread on one port (SO_REUSEPORT; a request for
// another thread's instance is handed to it). CPU per request is the runtime process's, all
// its threads. The load generator is this process (bench/http-load.ts).
//
// Partition threads are not yet what `eddy run` runs (docs/architecture.md).
//
//   node bench/threads/greeter.ts [--threads 2] [--clients 32] [--seconds 10] [--rounds 3] [--json]
import { type ChildProcess, spawn } from "node:child_process";
import { once } from "node:events";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { parseArgs } from "node:util";
import { PartitionThreads } from "../../packages/runtime/src/threads/partition-threads.ts";
import { HttpConnection } from "../http-load.ts";
import { machine } from "../machine.ts";

const { values } = parseArgs({
  options: {
    threads: { type: "string" },
    clients: { type: "string" },
    seconds: { type: "string" },
    rounds: { type: "string" },
    json: { type: "boolean" },
    /** In a child: serve the greeter on that many partition threads, print the URL, stop on SIGTERM. */
    serve: { type: "string" },
  },
});
const root = resolve(import.meta.dirname, "../..");
const KEYS = 1000;
const WARMUP_MS = 2000;

if (values.serve !== undefined) {
  const dir = mkdtempSync(join(tmpdir(), "eddy-bench-threads-greeter-"));
  const runtime = await PartitionThreads.start({
    stateDir: dir,
    threads: Number(values.serve),
    functions: new URL("./greeter-functions.ts", import.meta.url).href,
  });
  const url = await runtime.listen(0, "127.0.0.1");
  process.stdout.write(`listening ${url}\n`);
  process.once("SIGTERM", () => {
    void runtime.stop().then(() => {
      rmSync(dir, { recursive: true, force: true });
      process.exit(0);
    });
  });
} else {
  await main();
}

interface Result {
  readonly mode: string;
  readonly requestsPerSecond: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  readonly cpuMicrosPerRequest: number;
  readonly errors: number;
}

function cpuMicros(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  // After the command (which may hold spaces): utime and stime are the 14th and 15th fields.
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return ((Number(fields[11]) + Number(fields[12])) * 1e6) / 100;
}

/** Starts `args` and resolves with the child and the URL once a line of its output matches `ready`. */
async function start(args: readonly string[], ready: RegExp): Promise<{ child: ChildProcess; url: string }> {
  const child = spawn(process.execPath, args, { cwd: root, stdio: ["ignore", "pipe", "pipe"] });
  let output = "";
  const url = await new Promise<string>((resolveUrl, reject) => {
    const onData = (chunk: Buffer) => {
      output += chunk.toString();
      const match = ready.exec(output);
      if (match?.[1] !== undefined) resolveUrl(match[1]);
    };
    child.stdout?.on("data", onData);
    child.stderr?.on("data", onData);
    child.once("exit", (code) => reject(new Error(`exited (${code}):\n${output}`)));
  });
  child.stdout?.removeAllListeners("data");
  child.stderr?.removeAllListeners("data");
  child.stdout?.resume();
  child.stderr?.resume();
  return { child, url };
}

async function measure(mode: string, threads: number, clients: number, seconds: number): Promise<Result> {
  const dir = mkdtempSync(join(tmpdir(), "eddy-bench-threads-greeter-"));
  const { child, url } =
    threads === 0
      ? await (async () => {
          const modulePath = join(dir, "module.yaml");
          writeFileSync(modulePath, "kind: io.statefun.playground.v1/ingress\nspec:\n  port: 0\n");
          const eddy = join(root, "packages/cli/src/main.ts");
          const args = [
            eddy,
            "dev",
            "bench/greeter/functions.ts",
            "--module",
            modulePath,
            "--state-dir",
            join(dir, "s"),
          ];
          return start([...args, "--admin-port", "off"], /ingress listening on (\S+)/);
        })()
      : await start([import.meta.filename, "--serve", String(threads)], /listening (\S+)/);
  const pid = child.pid as number;
  const latencies: number[] = [];
  let errors = 0;
  let next = 0;
  const startedAt = performance.now();
  const measureFrom = startedAt + WARMUP_MS;
  const endAt = measureFrom + seconds * 1000;
  let cpuAtStart = 0;
  const cpuTimer = setTimeout(() => {
    cpuAtStart = cpuMicros(pid);
  }, WARMUP_MS);
  await Promise.all(
    Array.from({ length: clients }, async () => {
      const connection = new HttpConnection(url);
      while (performance.now() < endAt) {
        const key = next++ % KEYS;
        const sentAt = performance.now();
        try {
          const answer = await connection.send({
            path: `/bench/greeter/${key}`,
            headers: { prefer: "wait=60", "content-type": "text/plain" },
            body: `user${key}`,
          });
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
  clearTimeout(cpuTimer);
  const cpu = cpuMicros(pid) - cpuAtStart;
  const exited = once(child, "exit");
  child.kill("SIGTERM");
  await exited;
  rmSync(dir, { recursive: true, force: true });
  latencies.sort((a, b) => a - b);
  const at = (p: number) => latencies[Math.min(latencies.length - 1, Math.floor((p / 100) * latencies.length))] ?? 0;
  return {
    mode,
    requestsPerSecond: Math.round(latencies.length / seconds),
    p50Ms: Math.round(at(50) * 10) / 10,
    p99Ms: Math.round(at(99) * 10) / 10,
    cpuMicrosPerRequest: Math.round(cpu / Math.max(1, latencies.length)),
    errors,
  };
}

async function main(): Promise<void> {
  const threads = Number(values.threads ?? 2);
  const clients = Number(values.clients ?? 32);
  const seconds = Number(values.seconds ?? 10);
  const rounds = Number(values.rounds ?? 3);
  const modes: [string, number][] = [
    ["eddy dev (main thread)", 0],
    [`${threads} partition thread(s)`, threads],
  ];
  const byMode = new Map<string, Result[]>();
  for (let round = 0; round < rounds; round++) {
    for (let turn = 0; turn < modes.length; turn++) {
      const [mode, count] = modes[(round + turn) % modes.length] as [string, number];
      const result = await measure(mode, count, clients, seconds);
      byMode.set(mode, [...(byMode.get(mode) ?? []), result]);
      process.stderr.write(`round ${round + 1}: ${mode} ${result.requestsPerSecond} req/s\n`);
    }
  }
  const medians = [...byMode.values()].map((results) => {
    const sorted = results.slice().sort((a, b) => a.requestsPerSecond - b.requestsPerSecond);
    return { median: sorted[Math.floor((sorted.length - 1) / 2)] as Result, all: results };
  });
  if (values.json === true) {
    process.stdout.write(`${JSON.stringify({ machine: machine(), clients, seconds, rounds, medians }, null, 2)}\n`);
    return;
  }
  const base = medians[0]?.median.requestsPerSecond ?? 1;
  process.stdout.write(`bench/threads greeter — ${new Date().toISOString()}\n${JSON.stringify(machine())}\n`);
  process.stdout.write(
    `request-reply, ${clients} clients, ${KEYS} keys, ${seconds} s measured, median of ${rounds}\n\n`,
  );
  process.stdout.write("| runtime | req/s | against eddy dev | p50 ms | p99 ms | CPU µs/req | errors | by round |\n");
  process.stdout.write("| :-- | --: | --: | --: | --: | --: | --: | :-- |\n");
  for (const { median, all } of medians) {
    const ratio = (median.requestsPerSecond / base).toFixed(2);
    const byRound = all.map((result) => result.requestsPerSecond).join(", ");
    process.stdout.write(
      `| ${median.mode} | ${median.requestsPerSecond} | ${ratio}× | ${median.p50Ms} | ${median.p99Ms} | ${median.cpuMicrosPerRequest} | ${median.errors} | ${byRound} |\n`,
    );
  }
}
