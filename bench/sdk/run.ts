// bench/sdk: requests/s on one core of the SDK request handler, Eddy vs the official JS
// SDK (apache-flink-statefun 3.3.0), on the same request in the same process.
//
// The request is a 10-invocation batch for a function with two states (an int and a
// JSON profile); see workload.ts. "One core" is this one Node process making sequential
// awaited calls to the byte-level handler, no HTTP. First both replies are checked to
// say the same thing; then the handlers are measured alternately, in rounds of a fixed
// duration after a warm-up, and the median round is reported with min and max. CPU time
// per request comes from process.cpuUsage(), so it includes V8's GC helper threads.
//
//   node bench/sdk/run.ts [--duration=2000] [--rounds=5] [--warmup=2000] [--json]
//   env: BENCH_DURATION_MS, BENCH_ROUNDS, BENCH_WARMUP_MS
import { loadavg } from "node:os";
import { isDeepStrictEqual, parseArgs } from "node:util";
import { type Machine, machine } from "../machine.ts";
import { expectedMutations, summarize } from "./equivalence.ts";
import { type BytesHandler, buildRequest, HANDLERS, type HandlerName, INVOCATIONS } from "./workload.ts";

const GOAL = 3;

interface Options {
  readonly durationMs: number;
  readonly rounds: number;
  readonly warmupMs: number;
  readonly json: boolean;
}

function positiveInt(name: string, text: string | undefined, fallback: number): number {
  if (text === undefined || text === "") return fallback;
  const value = Number(text);
  if (!Number.isSafeInteger(value) || value <= 0)
    throw new RangeError(`${name} must be a positive integer, got ${text}`);
  return value;
}

function options(): Options {
  const { values } = parseArgs({
    options: {
      duration: { type: "string" },
      rounds: { type: "string" },
      warmup: { type: "string" },
      json: { type: "boolean", default: false },
    },
  });
  return {
    durationMs: positiveInt("--duration", values.duration ?? process.env.BENCH_DURATION_MS, 2000),
    rounds: positiveInt("--rounds", values.rounds ?? process.env.BENCH_ROUNDS, 5),
    warmupMs: positiveInt("--warmup", values.warmup ?? process.env.BENCH_WARMUP_MS, 2000),
    json: values.json,
  };
}

interface Round {
  readonly requests: number;
  readonly seconds: number;
  readonly cpuSeconds: number;
}

/** Calls `handler` back to back for about `durationMs`; checks the clock every `chunk` calls. */
async function measure(handler: BytesHandler, request: Uint8Array, durationMs: number): Promise<Round> {
  const chunk = 32;
  let requests = 0;
  const cpuBefore = process.cpuUsage();
  const start = performance.now();
  const deadline = start + durationMs;
  do {
    for (let i = 0; i < chunk; i++) await handler(request);
    requests += chunk;
  } while (performance.now() < deadline);
  const seconds = (performance.now() - start) / 1000;
  const cpu = process.cpuUsage(cpuBefore);
  return { requests, seconds, cpuSeconds: (cpu.user + cpu.system) / 1e6 };
}

function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = sorted.length >> 1;
  return sorted.length % 2 === 1
    ? (sorted[middle] as number)
    : ((sorted[middle - 1] as number) + (sorted[middle] as number)) / 2;
}

interface Summary {
  readonly requestsPerSecond: { readonly median: number; readonly min: number; readonly max: number };
  readonly invocationsPerSecond: number;
  /** Process CPU time (all threads) per request, median round, in µs. */
  readonly cpuMicrosPerRequest: number;
  /** Process CPU time over wall time, median round; above 1 means GC threads were busy too. */
  readonly cpuUtilization: number;
  readonly rounds: readonly number[];
}

function summarizeRounds(rounds: readonly Round[]): Summary {
  const rates = rounds.map((round) => round.requests / round.seconds);
  const med = median(rates);
  return {
    requestsPerSecond: { median: med, min: Math.min(...rates), max: Math.max(...rates) },
    invocationsPerSecond: med * INVOCATIONS,
    cpuMicrosPerRequest: median(rounds.map((round) => (round.cpuSeconds * 1e6) / round.requests)),
    cpuUtilization: median(rounds.map((round) => round.cpuSeconds / round.seconds)),
    rounds: rates,
  };
}

export interface SdkBenchResult {
  readonly bench: "sdk";
  readonly date: string;
  readonly machine: Machine;
  readonly options: Omit<Options, "json">;
  readonly request: { readonly bytes: number; readonly invocations: number; readonly states: number };
  readonly replies: { readonly eddyBytes: number; readonly officialBytes: number; readonly identical: boolean };
  readonly results: Record<HandlerName, Summary>;
  /** Eddy's median req/s over the official SDK's. */
  readonly ratio: number;
  /** The official SDK's CPU time per request over Eddy's (medians): the ratio least moved by other load. */
  readonly cpuRatio: number;
  /** The lowest and highest Eddy/official ratio of rounds run back to back. */
  readonly roundRatio: { readonly min: number; readonly max: number };
  readonly goal: number;
  /** 1-minute load average before and after the run; near 0 means nothing else was competing. */
  readonly loadAverage: { readonly before: number; readonly after: number };
}

/** Throws unless both handlers give replies that mean the same, and the right values. */
async function verify(
  handlers: Record<HandlerName, BytesHandler>,
  request: Uint8Array,
): Promise<SdkBenchResult["replies"]> {
  const eddy = await handlers.eddy(request);
  const official = await handlers.official(request);
  const expected = expectedMutations();
  for (const [who, reply] of [
    ["eddy", eddy],
    ["official", official],
  ] as const) {
    const got = summarize(who, reply);
    if (!isDeepStrictEqual(got, expected)) {
      throw new Error(`${who}: unexpected state mutations ${JSON.stringify(got)}; want ${JSON.stringify(expected)}`);
    }
  }
  return { eddyBytes: eddy.length, officialBytes: official.length, identical: Buffer.from(eddy).equals(official) };
}

export async function runSdkBench(opts: Options, log: (line: string) => void): Promise<SdkBenchResult> {
  const loadBefore = loadavg()[0] as number;
  const request = buildRequest();
  const handlers = { eddy: HANDLERS.eddy(), official: HANDLERS.official() };
  const names = Object.keys(handlers) as HandlerName[];
  const replies = await verify(handlers, request);
  log(
    `request ${request.length} bytes, ${INVOCATIONS} invocations, 2 states; replies equivalent ` +
      `(eddy ${replies.eddyBytes} bytes, official ${replies.officialBytes} bytes, ${replies.identical ? "byte-identical" : "not byte-identical"})`,
  );

  for (const name of names) await measure(handlers[name], request, opts.warmupMs);
  const rounds: Record<HandlerName, Round[]> = { eddy: [], official: [] };
  for (let round = 0; round < opts.rounds; round++) {
    // Alternate which handler goes first, so neither always runs after the other's garbage.
    const order = round % 2 === 0 ? names : [...names].reverse();
    for (const name of order) {
      const result = await measure(handlers[name], request, opts.durationMs);
      rounds[name].push(result);
      log(`  round ${round + 1}/${opts.rounds} ${name.padEnd(8)} ${fmt(result.requests / result.seconds)} req/s`);
    }
  }
  const results = { eddy: summarizeRounds(rounds.eddy), official: summarizeRounds(rounds.official) };
  const pairRatios = results.eddy.rounds.map((rate, index) => rate / (results.official.rounds[index] as number));
  return {
    bench: "sdk",
    date: new Date().toISOString(),
    machine: machine(),
    options: { durationMs: opts.durationMs, rounds: opts.rounds, warmupMs: opts.warmupMs },
    request: { bytes: request.length, invocations: INVOCATIONS, states: 2 },
    replies,
    results,
    ratio: results.eddy.requestsPerSecond.median / results.official.requestsPerSecond.median,
    cpuRatio: results.official.cpuMicrosPerRequest / results.eddy.cpuMicrosPerRequest,
    roundRatio: { min: Math.min(...pairRatios), max: Math.max(...pairRatios) },
    goal: GOAL,
    loadAverage: { before: loadBefore, after: loadavg()[0] as number },
  };
}

function fmt(value: number): string {
  return Math.round(value).toLocaleString("en-US");
}

function table(result: SdkBenchResult): string {
  const header = ["handler", "req/s median", "min", "max", "invocations/s", "CPU µs/req", "CPU/wall"];
  const rows = (Object.keys(result.results) as HandlerName[]).map((name) => {
    const summary = result.results[name];
    return [
      name,
      fmt(summary.requestsPerSecond.median),
      fmt(summary.requestsPerSecond.min),
      fmt(summary.requestsPerSecond.max),
      fmt(summary.invocationsPerSecond),
      summary.cpuMicrosPerRequest.toFixed(1),
      summary.cpuUtilization.toFixed(2),
    ];
  });
  const widths = header.map((title, column) =>
    Math.max(title.length, ...rows.map((row) => (row[column] ?? "").length)),
  );
  const line = (cells: string[]) =>
    `| ${cells.map((cell, column) => (column === 0 ? cell.padEnd(widths[column] ?? 0) : cell.padStart(widths[column] ?? 0))).join(" | ")} |`;
  const rule = `| ${widths.map((width, column) => (column === 0 ? `:${"-".repeat(width - 1)}` : `${"-".repeat(width - 1)}:`)).join(" | ")} |`;
  return [line(header), rule, ...rows.map(line)].join("\n");
}

export function report(result: SdkBenchResult): string {
  const m = result.machine;
  const verdict = result.ratio >= result.goal ? "meets" : "is below";
  return [
    `bench/sdk — ${result.date}`,
    `machine: ${m.cpuModel}, ${m.cores} cores, ${m.memoryGiB} GiB, Node ${m.node} (${m.platform})`,
    `${result.options.rounds} rounds × ${result.options.durationMs} ms per handler, alternating, after ${result.options.warmupMs} ms warm-up each`,
    `load average (1 min) ${result.loadAverage.before.toFixed(2)} before, ${result.loadAverage.after.toFixed(2)} after`,
    "",
    table(result),
    "",
    `Eddy / official: ${result.ratio.toFixed(2)}× (median req/s; round by round ${result.roundRatio.min.toFixed(2)}–${result.roundRatio.max.toFixed(2)}×); ` +
      `goal ≥ ${result.goal}×: ${verdict} it`,
    `CPU time per request, official / Eddy: ${result.cpuRatio.toFixed(2)}×`,
  ].join("\n");
}

if (import.meta.main) {
  const opts = options();
  const result = await runSdkBench(opts, opts.json ? () => {} : (line) => console.log(line));
  console.log(opts.json ? JSON.stringify(result, null, 2) : `\n${report(result)}`);
}
