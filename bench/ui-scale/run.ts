// bench/ui-scale: the web UI's API with a million instances stored (the UI "must feel fast
// with a million instances stored").
//
// 1. Starts Eddy in this process (startRuntime: 128 partitions, a temp state directory, the
//    playground HTTP ingress, the admin listener, checkpoints to a directory, the dead-letter
//    failure policy) with two in-process functions: `example/person`, which counts visits in an
//    int state (every instance gets a state row, like the greeter's), and `example/flaky`,
//    which always fails.
// 2. Fills N instances through the real path: one message to each of N distinct addresses
//    (user-0000000 …) sent to the ingress by a load generator in its own process (fill.ts,
//    keep-alive connections, closed loop), each durable before its 200; waits until every one
//    is handled. The first `--delayed` of them also send themselves a message an hour later
//    (delayed messages pending), and `--dead-letters` messages to example/flaky become dead
//    letters. Then takes one checkpoint, so the checkpoints page lists one.
// 3. Measures, over HTTP against the admin listener, each call the UI's pages make
//    (packages/runtime/ui/pages/*.js, stats.js), with the same paths and query strings:
//    `--calls` sequential calls on one keep-alive connection each, after 3 unmeasured ones;
//    p50, p99 and max latency and the response's bytes. Also GET /metrics; the first
//    GET /v1/overview on its own (it counts the delayed messages pending, once); and the
//    process's memory after the fill.
// 4. If chromium and playwright-core are there (browser.ts), times the UI's state page in a
//    browser: loading it, typing a prefix, opening an address.
//
//   node bench/ui-scale/run.ts [--instances 1000000] [--calls 100] [--concurrency 256]
//     [--delayed 3000] [--dead-letters 300] [--browser-rounds 5] [--no-browser] [--browser-trace] [--json]
//
// --browser-trace logs every request the browser's page sends and every response it gets, with
// its time, to stderr: where a step's time goes.
import { fork } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { createEndpoint, message, statefulFunction, types } from "@eddy/sdk";
import { parseModule } from "../../packages/runtime/src/config/module.ts";
import { type RunningRuntime, startRuntime } from "../../packages/runtime/src/runtime.ts";
import { HttpConnection } from "../http-load.ts";
import { machine } from "../machine.ts";
import { type BrowserResult, timeUiInBrowser } from "./browser.ts";
import { type FillPlan, type FillReport, idOf } from "./fill.ts";

const { values } = parseArgs({
  options: {
    instances: { type: "string" },
    calls: { type: "string" },
    concurrency: { type: "string" },
    delayed: { type: "string" },
    "dead-letters": { type: "string" },
    "browser-rounds": { type: "string" },
    "no-browser": { type: "boolean" },
    /** Logs every response the browser's page receives, with its time, to stderr. */
    "browser-trace": { type: "boolean" },
    json: { type: "boolean" },
  },
});
const INSTANCES = Number(values.instances ?? 1_000_000);
const CALLS = Number(values.calls ?? 100);
const CONCURRENCY = Number(values.concurrency ?? 256);
const DELAYED = Math.min(Number(values.delayed ?? 3000), INSTANCES);
const DEAD_LETTERS = Number(values["dead-letters"] ?? 300);
const BROWSER_ROUNDS = Number(values["browser-rounds"] ?? 5);
const WARMUP_CALLS = 3;
const PARTITIONS = 128;
const PERSON = "example/person";
const FLAKY = "example/flaky";
const ID_PREFIX = "user-";
const ID_DIGITS = 7;
const HOUR_MS = 3_600_000;

const log = (line: string) => {
  if (values.json !== true) process.stderr.write(`${line}\n`);
};
const personId = (index: number) => idOf(ID_PREFIX, ID_DIGITS, index);

let personHandled = 0;
const person = statefulFunction({
  typename: PERSON,
  state: { visits: types.int },
  handle(ctx, msg) {
    personHandled++;
    ctx.storage.visits = (ctx.storage.visits ?? 0) + 1;
    if (msg.as(types.string) === "remind me") {
      ctx.sendAfter(HOUR_MS, message(ctx.self, "reminder", types.string));
    }
  },
});
const flaky = statefulFunction({
  typename: FLAKY,
  handle(ctx) {
    throw new Error(`${FLAKY}/${ctx.self.id} fails on purpose (bench/ui-scale)`);
  },
});

/** Sends the plan's messages from a child process; resolves with what it reported. */
function fillFromChild(ingressUrl: string, plan: FillPlan, label: string) {
  return new Promise<Extract<FillReport, { kind: "done" }>>((resolve, reject) => {
    const child = fork(join(import.meta.dirname, "fill.ts"), [ingressUrl, JSON.stringify(plan)], {
      stdio: ["ignore", "inherit", "inherit", "ipc"],
    });
    let result: FillReport | undefined;
    child.on("message", (report: FillReport) => {
      if (report.kind === "progress") log(`  ${label}: ${report.sent.toLocaleString("en-US")} sent`);
      else result = report;
    });
    child.on("exit", (code) => {
      if (result?.kind === "done") resolve(result);
      else reject(new Error(`${label}: ${result?.kind === "failed" ? result.message : `the filler exited ${code}`}`));
    });
  });
}

async function until(condition: () => boolean | Promise<boolean>, what: string, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`not within ${timeoutMs / 1000} s: ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

interface RouteResult {
  readonly page: string;
  readonly what: string;
  readonly path: string;
  readonly p50Ms: number;
  readonly p99Ms: number;
  readonly maxMs: number;
  readonly bytes: number;
}

function quantile(sorted: readonly number[], q: number): number {
  return sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)] ?? Number.NaN;
}

async function get(connection: HttpConnection, path: string): Promise<Buffer> {
  const answer = await connection.send({ method: "GET", path, headers: { accept: "application/json" }, body: "" });
  if (answer.status !== 200) throw new Error(`GET ${path}: ${answer.status} ${answer.body.toString("utf8")}`);
  return answer.body;
}

async function measureRoute(adminUrl: string, page: string, what: string, path: string): Promise<RouteResult> {
  const connection = new HttpConnection(adminUrl);
  try {
    let bytes = 0;
    for (let call = 0; call < WARMUP_CALLS; call++) bytes = (await get(connection, path)).length;
    const samples: number[] = [];
    for (let call = 0; call < CALLS; call++) {
      const started = performance.now();
      bytes = (await get(connection, path)).length;
      samples.push(performance.now() - started);
    }
    samples.sort((a, b) => a - b);
    const round = (ms: number) => Math.round(ms * 100) / 100;
    return {
      page,
      what,
      path,
      p50Ms: round(quantile(samples, 0.5)),
      p99Ms: round(quantile(samples, 0.99)),
      maxMs: round(samples.at(-1) ?? Number.NaN),
      bytes,
    };
  } finally {
    connection.close();
  }
}

function memoryMb() {
  const status = readFileSync("/proc/self/status", "utf8");
  const field = (name: string) =>
    Math.round(Number(new RegExp(`^${name}:\\s+(\\d+) kB`, "m").exec(status)?.[1] ?? Number.NaN) / 1024);
  const usage = process.memoryUsage();
  const mb = (bytes: number) => Math.round(bytes / 2 ** 20);
  return {
    rssMb: mb(usage.rss),
    rssAnonMb: field("RssAnon"),
    rssFileMb: field("RssFile"),
    heapUsedMb: mb(usage.heapUsed),
    heapTotalMb: mb(usage.heapTotal),
    externalMb: mb(usage.external),
  };
}

const dir = mkdtempSync(join(tmpdir(), "eddy-bench-ui-scale-"));
let runtime: RunningRuntime | undefined;
try {
  const loaded = parseModule("kind: io.statefun.playground.v1/ingress\nspec:\n  port: 8090\n", "module.yaml");
  if (!loaded.ok) throw new Error("the playground module does not parse");
  const startedAt = performance.now();
  runtime = await startRuntime({
    module: loaded.module,
    stateDir: join(dir, "state"),
    inProcess: createEndpoint([person, flaky]),
    portOverride: 0,
    partitionCount: PARTITIONS,
    failurePolicy: "dead-letter",
    checkpoints: { location: `file://${join(dir, "checkpoints")}`, intervalMs: 0 },
    admin: { port: 0 },
    log: () => undefined,
  });
  const startMs = performance.now() - startedAt;
  const adminUrl = runtime.adminUrl as string;
  const ingressUrl = runtime.ingressUrls[0] as string;
  const admin = new HttpConnection(adminUrl);
  const stats = async () =>
    JSON.parse((await get(admin, "/v1/stats")).toString("utf8")) as {
      functionTypes: Record<string, { deadLetters: number; backlog: number; inFlight: number }>;
    };

  // ---- the fill ----
  log(`bench/ui-scale: filling ${INSTANCES.toLocaleString("en-US")} instances (${CONCURRENCY} connections)…`);
  const fillStarted = performance.now();
  const fill = await fillFromChild(
    ingressUrl,
    {
      pathPrefix: `/${PERSON}/`,
      idPrefix: ID_PREFIX,
      idDigits: ID_DIGITS,
      count: INSTANCES,
      delayedBelow: DELAYED,
      body: "hello",
      delayedBody: "remind me",
      concurrency: CONCURRENCY,
    },
    PERSON,
  );
  await until(() => personHandled >= INSTANCES, `${INSTANCES} messages handled`, 600_000);
  const fillMs = performance.now() - fillStarted;
  log(`  accepted in ${(fill.ms / 1000).toFixed(1)} s, all handled in ${(fillMs / 1000).toFixed(1)} s`);

  const lettersStarted = performance.now();
  await fillFromChild(
    ingressUrl,
    {
      pathPrefix: `/${FLAKY}/`,
      idPrefix: "order-",
      idDigits: 4,
      count: DEAD_LETTERS,
      delayedBelow: 0,
      body: "boom",
      delayedBody: "",
      concurrency: Math.min(CONCURRENCY, 16),
    },
    FLAKY,
  );
  await until(
    async () => ((await stats()).functionTypes[FLAKY]?.deadLetters ?? 0) >= DEAD_LETTERS,
    `${DEAD_LETTERS} dead letters`,
    120_000,
  );
  const deadLettersMs = performance.now() - lettersStarted;
  // Everything handled and committed: no backlog, nothing in flight.
  await until(
    async () => Object.values((await stats()).functionTypes).every((type) => type.backlog + type.inFlight === 0),
    "no backlog and nothing in flight",
    60_000,
  );

  const checkpointStarted = performance.now();
  const checkpoint = await runtime.checkpoint();
  const checkpointMs = performance.now() - checkpointStarted;
  // Past the store's apply interval: LMDB holds the writes, and its pages count in the RSS.
  await new Promise((resolve) => setTimeout(resolve, 1500));
  const memory = memoryMb();
  // The first overview since the start counts the delayed messages pending (then the count is kept).
  const overviewStarted = performance.now();
  const overviewBody = await get(admin, "/v1/overview");
  const firstOverviewMs = performance.now() - overviewStarted;
  const overview = JSON.parse(overviewBody.toString("utf8")) as {
    stateBytesOnDisk: number;
    delayedMessagesPending: number;
  };
  log(
    `  ${DEAD_LETTERS} dead letters in ${(deadLettersMs / 1000).toFixed(1)} s; checkpoint in ${(checkpointMs / 1000).toFixed(1)} s; measuring…`,
  );

  // ---- the UI's calls ----
  const letters = JSON.parse((await get(admin, "/v1/dead-letters?limit=50")).toString("utf8")) as {
    deadLetters: { id: string }[];
    next: string | null;
  };
  const firstLetter = letters.deadLetters[0]?.id ?? "none";
  const middle = personId(Math.floor(INSTANCES / 2));
  const deep = personId(Math.floor(INSTANCES * 0.98));
  const withDelayed = personId(Math.min(1234, Math.max(DELAYED - 1, 0)));
  const typePath = PERSON;
  const routes: [page: string, what: string, path: string][] = [
    ["every page, 1/s", "live numbers", "/v1/stats"],
    ["overview", "overview", "/v1/overview"],
    ["functions, state", "function types", "/v1/function-types"],
    ["state", "ids, first page", `/v1/state/${typePath}?limit=50`],
    ["state", `ids, prefix ${middle.slice(0, -5)}`, `/v1/state/${typePath}?limit=50&prefix=${middle.slice(0, -5)}`],
    ["state", `ids, prefix ${middle.slice(0, -1)}`, `/v1/state/${typePath}?limit=50&prefix=${middle.slice(0, -1)}`],
    ["state", "ids, prefix matching none", `/v1/state/${typePath}?limit=50&prefix=zzz`],
    ["state", `ids, page after ${deep} (More)`, `/v1/state/${typePath}?limit=50&after=${deep}`],
    ["state", "one address", `/v1/state/${typePath}/${middle}`],
    ["state", "one address with a delayed message", `/v1/state/${typePath}/${withDelayed}`],
    ["dead letters", "first page", "/v1/dead-letters?limit=50"],
    [
      "dead letters",
      "second page",
      `/v1/dead-letters?limit=50${letters.next === null ? "" : `&after=${encodeURIComponent(letters.next)}`}`,
    ],
    ["dead letters", "one letter", `/v1/dead-letters/${encodeURIComponent(firstLetter)}`],
    ["checkpoints", "checkpoints", "/v1/checkpoints"],
    ["(Prometheus)", "metrics scrape", "/metrics"],
  ];
  const measured: RouteResult[] = [];
  for (const [page, what, path] of routes) measured.push(await measureRoute(adminUrl, page, what, path));
  admin.close();

  // ---- the UI in a browser ----
  const browserId = personId(Math.min(Math.floor(INSTANCES / 2) + 17, INSTANCES - 1));
  const browser: BrowserResult =
    values["no-browser"] === true
      ? { skipped: true, reason: "--no-browser" }
      : await timeUiInBrowser({
          adminUrl,
          typename: PERSON,
          prefix: browserId.slice(0, -2),
          id: browserId,
          visits: "1",
          rounds: BROWSER_ROUNDS,
          ...(values["browser-trace"] === true
            ? {
                trace: (round: number, path: string, status: number | undefined, atMs: number) =>
                  process.stderr.write(
                    `  browser round ${round}: ${atMs.toFixed(0)} ms ${status === undefined ? "sent" : `answered ${status}`} ${path}\n`,
                  ),
              }
            : {}),
        });

  const results = {
    bench: "ui-scale",
    date: new Date().toISOString(),
    machine: machine(),
    instances: INSTANCES,
    partitions: PARTITIONS,
    startMs: Math.round(startMs),
    fill: {
      concurrency: CONCURRENCY,
      acceptedMs: Math.round(fill.ms),
      handledMs: Math.round(fillMs),
      messagesPerSecond: Math.round(INSTANCES / (fillMs / 1000)),
      retried503: fill.retried,
      delayedMessages: overview.delayedMessagesPending,
      deadLetters: DEAD_LETTERS,
      deadLettersMs: Math.round(deadLettersMs),
      checkpointMs: Math.round(checkpointMs),
      checkpointId: checkpoint?.manifest.id ?? null,
      stateBytesOnDisk: overview.stateBytesOnDisk,
      firstOverviewMs: Math.round(firstOverviewMs * 10) / 10,
    },
    memory,
    calls: CALLS,
    routes: measured,
    browser,
  };

  if (values.json === true) {
    process.stdout.write(`${JSON.stringify(results)}\n`);
  } else {
    const m = results.machine;
    const f = results.fill;
    const out: string[] = [];
    out.push(`bench/ui-scale — ${results.date}`);
    out.push(`machine: ${m.cpuModel}, ${m.cores} cores, ${m.memoryGiB} GiB, Node ${m.node} (${m.platform})`);
    out.push("");
    out.push(
      `fill: ${INSTANCES.toLocaleString("en-US")} instances of ${PERSON} (${PARTITIONS} partitions) through the playground ingress, ${f.concurrency} connections:`,
    );
    out.push(
      `  accepted in ${(f.acceptedMs / 1000).toFixed(1)} s, all handled in ${(f.handledMs / 1000).toFixed(1)} s = ${f.messagesPerSecond.toLocaleString("en-US")} instances/s (${f.retried503} answers 503, sent again)`,
    );
    out.push(
      `  ${f.delayedMessages.toLocaleString("en-US")} delayed messages pending, ${f.deadLetters} dead letters (${(f.deadLettersMs / 1000).toFixed(1)} s), checkpoint ${f.checkpointId ?? "-"} in ${(f.checkpointMs / 1000).toFixed(1)} s; state on disk ${(f.stateBytesOnDisk / 1e6).toFixed(0)} MB`,
    );
    out.push(`  the first GET /v1/overview (it counts the delayed messages pending, once): ${f.firstOverviewMs} ms`);
    out.push(
      `memory after the fill: RSS ${memory.rssMb} MB (anon ${memory.rssAnonMb}, file ${memory.rssFileMb}), heap used ${memory.heapUsedMb} of ${memory.heapTotalMb} MB, external ${memory.externalMb} MB`,
    );
    out.push("");
    out.push(`admin API, ${CALLS} sequential calls each on one keep-alive connection (after ${WARMUP_CALLS} warm-up):`);
    out.push("");
    out.push("| page | call | route | p50 ms | p99 ms | max ms | bytes |");
    out.push("| :--- | :--- | :---- | -----: | -----: | -----: | ----: |");
    for (const row of measured) {
      out.push(
        `| ${row.page} | ${row.what} | \`GET ${row.path}\` | ${row.p50Ms.toFixed(2)} | ${row.p99Ms.toFixed(2)} | ${row.maxMs.toFixed(2)} | ${row.bytes.toLocaleString("en-US")} |`,
      );
    }
    out.push("");
    if (browser.skipped) out.push(`browser: skipped (${browser.reason})`);
    else {
      const median = (samples: readonly number[]) =>
        quantile(
          [...samples].sort((a, b) => a - b),
          0.5,
        );
      const show = (samples: readonly number[]) =>
        `median ${median(samples).toFixed(0)} ms, max ${Math.max(...samples).toFixed(0)} ms`;
      out.push(`browser (${browser.browser}, ${browser.rounds} rounds, a fresh page each):`);
      out.push(`  load /ui/#/state/${PERSON} until the first ids are listed: ${show(browser.loadMs)}`);
      out.push(
        `  type "${browserId.slice(0, -2)}" until ${browserId} is listed (150 ms debounce in): ${show(browser.prefixMs)}`,
      );
      out.push(`  click ${browserId} until its visits are shown: ${show(browser.openMs)}`);
    }
    process.stdout.write(`${out.join("\n")}\n`);
  }
} finally {
  await runtime?.stop();
  rmSync(dir, { recursive: true, force: true });
}
