// `npm run cluster`: three Eddy workers of one cluster on this machine, in one command. Starts
// a Kafka broker (test/support/kafka-broker.ts, as the fraud-detection example does), serves
// the greeter functions (functions.ts: the greeter example's, without the playground egress,
// which cluster mode does not run yet) over HTTP from this process, writes a module.yaml for
// them with the playground ingress, and starts `eddy run --cluster` three times as child
// processes (w1..w3, each its own state directory and --port-offset). Then it greets people
// through every worker: one person's visits add up whichever worker is asked, because a
// worker forwards a request for an instance another one runs. It kills w2 with SIGKILL, greets
// again through the others (their 503s retried until w2's partitions have moved), restarts
// w2, and stops everything. Each greeting is checked against the visits it must count; it
// ends by itself, exit 0 when every greeting was right, else 1 with the workers' last lines.
//
//   node examples/cluster/run.ts

import { randomUUID } from "node:crypto";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { createEndpoint, serve } from "@eddy/sdk";
import { type KafkaBroker, startKafka } from "../../test/support/kafka-broker.ts";
import { greeting } from "../greeter/functions.ts";
import { greeter, person } from "./functions.ts";
import { type Greeting, greet } from "./greet.ts";
import { waitUntilAnswering } from "./ready.ts";
import { Worker } from "./worker.ts";

const CLUSTER_NAME = "demo";
const WORKER_COUNT = 3;
const NAMES = ["ada", "grace", "alan", "edsger", "barbara", "ken"] as const;
/** The ingress port the module names; worker N serves it at + N. Another base is picked if those are taken. */
const BASE_PORT_PREFERRED = 8090;
const BASE_PORT_ATTEMPTS_MAX = 20;
/** Past this everything is stopped and the run fails: the example must end by itself. */
const RUN_TIMEOUT_MS = 150_000;
/** From spawn to `eddy: running` (joined the group, ingress listening). */
const WORKER_START_TIMEOUT_MS = 60_000;
/** How long one greeting may take, 503s retried: through a rebalance, after a kill. */
const GREETING_TIMEOUT_MS = 30_000;
/** A greeting slower than this shows how long it took and why. */
const SLOW_GREETING_MS = 3_000;
/** How many of each worker's last lines a failure prints. */
const FAILURE_LINES_SHOWN = 15;

function say(line: string): void {
  process.stdout.write(`${line}\n`);
}

function seconds(ms: number): string {
  return `${(ms / 1000).toFixed(1)} s`;
}

/** Whether every port can be bound on 127.0.0.1 right now. */
async function portsFree(ports: readonly number[]): Promise<boolean> {
  for (const port of ports) {
    const server = createServer();
    const bound = await new Promise<boolean>((resolve) => {
      server.once("error", () => resolve(false));
      server.listen(port, "127.0.0.1", () => resolve(true));
    });
    if (!bound) return false;
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }
  return true;
}

/** A base port whose next WORKER_COUNT ports are free: 8090 when it can be, so the output reads like the README. */
async function pickBasePort(): Promise<number> {
  for (let attempt = 0; attempt < BASE_PORT_ATTEMPTS_MAX; attempt++) {
    const base = attempt === 0 ? BASE_PORT_PREFERRED : 20_000 + Math.floor(Math.random() * 40_000);
    const ports = Array.from({ length: WORKER_COUNT }, (_, index) => base + index + 1);
    if (await portsFree(ports)) return base;
  }
  throw new Error(`found no ${WORKER_COUNT} consecutive free ports on 127.0.0.1 in ${BASE_PORT_ATTEMPTS_MAX} tries`);
}

function moduleYaml(functionsUrl: string, basePort: number): string {
  return `# Written by examples/cluster/run.ts. The greeter functions, served by run.ts, and the
# playground ingress; each worker serves it at this port plus its --port-offset. No egress:
# cluster mode does not run egresses yet.
kind: io.statefun.endpoints.v2/http
spec:
  functions: example/*
  urlPathTemplate: ${functionsUrl}
---
kind: io.statefun.playground.v1/ingress
spec:
  port: ${basePort}
`;
}

const startedAt = Date.now();
const closers: { readonly what: string; readonly close: () => Promise<void> }[] = [];
const workers: Worker[] = [];
/** Each person's visits so far, as the functions must count them. */
const visits = new Map<string, number>();
const runId = randomUUID().slice(0, 8);
let stopping: Promise<void> | undefined;

/** Stops what was started, last first, each step bounded by its own closer; once. */
function stopEverything(): Promise<void> {
  stopping ??= (async () => {
    for (const { what, close } of closers.splice(0).reverse()) {
      await close().catch((error: unknown) => say(`  could not stop ${what}: ${String(error)}`));
    }
  })();
  return stopping;
}

async function fail(error: unknown): Promise<never> {
  say(`cluster: FAILED: ${error instanceof Error ? error.message : String(error)}`);
  for (const worker of workers) {
    say(`--- ${worker.workerId}'s last lines (${worker.running ? "running" : "not running"}):`);
    for (const line of worker.lastLines().slice(-FAILURE_LINES_SHOWN)) say(`  ${line}`);
  }
  say("cluster: stopping");
  await stopEverything();
  process.exit(1);
}

/** Greets `name` through `worker` and checks the greeting counts exactly one more visit. */
async function greetThrough(worker: Worker, name: string): Promise<void> {
  const visit = (visits.get(name) ?? 0) + 1;
  const got = await greet(worker.ingressUrl, name, `${runId}-${name}-${visit}`, Date.now() + GREETING_TIMEOUT_MS);
  const expected = greeting(name, visit);
  if (got.text !== expected) {
    throw new Error(
      `${worker.workerId} answered ${JSON.stringify(got.text)} for ${name}'s visit ${visit}, expected ${JSON.stringify(expected)}`,
    );
  }
  visits.set(name, visit);
  const waited = got.tookMs < SLOW_GREETING_MS ? "" : `   (after ${seconds(got.tookMs)}: ${describeWaits(got)})`;
  say(`  via ${worker.workerId}  ${name.padEnd(8)} ${got.text}${waited}`);
}

function describeWaits(got: Greeting): string {
  const waits: string[] = [];
  if (got.retries > 0) waits.push(`${got.retries} × 503, sent again`);
  if (got.polls > 0) waits.push(`${got.polls} × 202, reply polled`);
  return waits.length === 0 ? "answered in one go" : waits.join(", ");
}

function workerOf(id: string): Worker {
  const worker = workers.find((each) => each.workerId === id);
  if (worker === undefined) throw new Error(`no worker ${id}`);
  return worker;
}

async function main(): Promise<void> {
  say("cluster: starting a Kafka broker on 127.0.0.1 ...");
  const broker: KafkaBroker = await startKafka();
  closers.push({ what: "the Kafka broker", close: () => broker.stop() });
  say(`cluster: Kafka at ${broker.bootstrap} (${seconds(Date.now() - startedAt)})`);

  const functions = await serve(createEndpoint([person, greeter]), { port: 0, host: "127.0.0.1" });
  closers.push({ what: "the greeter functions", close: () => functions.close() });
  say(
    `cluster: the greeter functions (functions.ts: the greeter example's, without its egress) answer at ${functions.url}`,
  );

  const dir = mkdtempSync(join(tmpdir(), "eddy-cluster-"));
  closers.unshift({ what: dir, close: async () => rmSync(dir, { recursive: true, force: true }) });
  const basePort = await pickBasePort();
  const modulePath = join(dir, "module.yaml");
  writeFileSync(modulePath, moduleYaml(functions.url, basePort));
  const checkpoints = pathToFileURL(join(dir, "checkpoints")).href;
  say(`cluster: ${modulePath}: the functions, and the playground ingress on port ${basePort} + each worker's offset`);

  for (let n = 1; n <= WORKER_COUNT; n++) {
    const workerId = `w${n}`;
    const args = [
      "run",
      modulePath,
      "--cluster",
      `kafka://${broker.bootstrap}/${CLUSTER_NAME}`,
      "--checkpoints",
      checkpoints,
      "--state-dir",
      join(dir, workerId),
      "--worker-id",
      workerId,
      "--port-offset",
      String(n),
    ];
    workers.push(new Worker({ workerId, args, ingressUrl: `http://127.0.0.1:${basePort + n}/` }));
  }
  // Before any worker starts, so a failed start still stops the ones that did.
  closers.push({
    what: "the workers",
    close: async () => {
      const ends = await Promise.all(workers.map(async (worker) => `${worker.workerId} ${await worker.stop()}`));
      say(`  workers stopped: ${ends.join(", ")}`);
    },
  });
  say(`cluster: starting ${WORKER_COUNT} workers, each as`);
  say(
    `  eddy ${workerOf("w1")
      .args.join(" ")
      .replaceAll("w1", "w<N>")
      .replace(/--port-offset 1$/, "--port-offset <N>")}`,
  );
  const workersAt = Date.now();
  await Promise.all(workers.map((worker) => worker.start(WORKER_START_TIMEOUT_MS)));
  for (const worker of workers) say(`  ${worker.workerId} runs, its ingress at ${worker.ingressUrl}`);
  await waitUntilAnswering(
    workers.map((worker) => worker.ingressUrl),
    Date.now() + WORKER_START_TIMEOUT_MS,
  );
  say(`cluster: ${WORKER_COUNT} workers up, the partitions divided among them (${seconds(Date.now() - workersAt)})`);

  say("");
  say("step 1: everyone greeted through each worker in turn; a worker forwards a request for an instance");
  say("        another worker runs, so the visits add up whichever worker is asked");
  const greetingsAt = Date.now();
  for (const name of NAMES) {
    for (const worker of workers) await greetThrough(worker, name);
  }
  const greetingCount = NAMES.length * WORKER_COUNT;
  say(`        ${greetingCount} greetings, one after another, in ${seconds(Date.now() - greetingsAt)}`);

  say("");
  const w2 = workerOf("w2");
  say("step 2: kill -9 w2; w1 and w3 answer for everyone once w2's partitions have moved to them");
  say("        (until then a request for them gets 503 with Retry-After and is sent again, or its reply");
  say("        waits for a message to one of them: 202, and the reply is polled)");
  await w2.kill();
  const killedAt = Date.now();
  for (const name of NAMES) {
    await greetThrough(workerOf("w1"), name);
    await greetThrough(workerOf("w3"), name);
  }
  say(`        everyone answered ${seconds(Date.now() - killedAt)} after the kill, no visit lost or counted twice`);

  say("");
  say("step 3: w2 restarted on its state directory, with the same worker id; it takes partitions back");
  const restartedAt = Date.now();
  await w2.start(WORKER_START_TIMEOUT_MS);
  say(`  w2 runs again (${seconds(Date.now() - restartedAt)})`);
  await waitUntilAnswering(
    workers.map((worker) => worker.ingressUrl),
    Date.now() + WORKER_START_TIMEOUT_MS,
  );
  say(`  the partitions divided among the three again (${seconds(Date.now() - restartedAt)})`);
  for (const name of NAMES) await greetThrough(w2, name);

  say("");
  say("step 4: stopping: SIGTERM to the workers, then the functions and the broker; temporary files removed");
  await stopEverything();
  say(
    `cluster: done in ${seconds(Date.now() - startedAt)}: ${NAMES.length} people, ${[...visits.values()].reduce((a, b) => a + b, 0)} greetings, each visit counted once`,
  );
}

const watchdog = setTimeout(() => {
  void fail(new Error(`the example did not finish within ${RUN_TIMEOUT_MS / 1000} s`));
}, RUN_TIMEOUT_MS);
process.once("SIGINT", () => {
  say("\ncluster: interrupted, stopping");
  void stopEverything().finally(() => process.exit(130));
});

try {
  await main();
} catch (error) {
  await fail(error);
}
clearTimeout(watchdog);
