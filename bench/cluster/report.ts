// What bench/cluster reports: the figures of each configuration, the ratios between them, and
// the issue's targets, each PASS or MISS as measured (or "not measured" when the run left out
// what it needs). Printed as Markdown tables, or given whole as JSON.
import type { Machine } from "../machine.ts";

export interface HopLatency {
  readonly hops: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
}

/** CPU time per message (or request) in µs over a measured window; the broker only for clusters. */
export interface CpuPerUnit {
  /** Every Eddy process of the configuration together. */
  readonly eddyMicros: number;
  readonly brokerMicros: number | undefined;
  readonly functionsMicros: number;
}

export interface GreeterResult {
  readonly clients: number;
  readonly requestsPerSecond: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  /** Group commits of all the Eddy processes per request answered, in the measured window. */
  readonly commitsPerRequest: number | undefined;
  /** Their mean duration (for a cluster: a Kafka transaction and the local store's write). */
  readonly commitMeanMs: number | undefined;
  readonly errors: number;
  readonly firstError: string | undefined;
  readonly cpu: CpuPerUnit;
}

export interface Failover {
  readonly killed: string;
  readonly via: string;
  /** Greeter instances the killed worker ran, and their partitions. */
  readonly instances: number;
  readonly partitions: number;
  readonly answered: number;
  readonly firstAnswerSeconds: number | undefined;
  /** Undefined when some never answered within timeoutSeconds. */
  readonly allAnsweredSeconds: number | undefined;
  readonly timeoutSeconds: number;
  /** A worker was already stuck with a transaction it could not end when the other was killed. */
  readonly stuckBeforeKill: boolean;
}

/** The workers' log lines saying Kafka refused a commit. */
export interface RefusedCommits {
  readonly count: number;
  readonly first: string | undefined;
  /** Some said no transaction could begin because one is still open: that worker commits nothing more. */
  readonly stuck: boolean;
}

export interface ConfigurationResult {
  readonly name: string;
  /** 0: embedded. */
  readonly workers: number;
  /** Run from the --baseline checkout. */
  readonly baseline: boolean;
  /** From spawning the processes until every ingress routed a round of probes. */
  readonly readySeconds: number;
  readonly refusedCommits: RefusedCommits;
  readonly chain: {
    readonly messagesPerSecond: number;
    readonly ingressAcceptedPerSecond: number;
    readonly ingressP50Ms: number;
    readonly ingressP99Ms: number;
    readonly hop: HopLatency | undefined;
    readonly crossHop: HopLatency | undefined;
    readonly localHop: HopLatency | undefined;
    readonly cpu: CpuPerUnit;
    readonly errors: number;
    readonly firstError: string | undefined;
    /** Messages the ingress took (200) and deliveries to bench/second once drained. */
    readonly accepted: number;
    readonly delivered: number;
  };
  readonly paced: {
    readonly ratePerSecond: number;
    readonly hop: HopLatency | undefined;
    readonly crossHop: HopLatency | undefined;
    readonly localHop: HopLatency | undefined;
    readonly late: number;
    readonly errors: number;
    readonly firstError: string | undefined;
    readonly accepted: number;
    readonly delivered: number;
  };
  readonly greeter: readonly GreeterResult[];
  readonly rss: {
    readonly eddyMb: readonly number[];
    readonly brokerMb: number | undefined;
    readonly functionsMb: number | undefined;
  };
  readonly failover?: Failover;
}

export interface Ratio {
  readonly what: string;
  readonly value: number;
}

export interface TargetCheck {
  readonly target: string;
  readonly measured: string;
  readonly verdict: "PASS" | "MISS" | "not measured";
}

/** How the broker was warmed up before the rounds (run.ts warmBroker). */
export interface BrokerWarmUp {
  readonly seconds: number;
  readonly commits: number;
  /** The broker's CPU per commit in the first window of the warm-up, and in the last. */
  readonly firstMicrosPerCommit: number;
  readonly lastMicrosPerCommit: number;
  /** Whether the last window was within the settling margin of the one before (else it ran out of windows). */
  readonly settled: boolean;
}

export interface Report {
  readonly date: string;
  readonly machine: Machine;
  /** The machine's 1-minute load average before and after the run (other work on it skews every figure). */
  readonly loadAverage: { readonly before: number; readonly after: number };
  readonly settings: Readonly<Record<string, number | boolean>>;
  readonly brokerWarmUp?: BrokerWarmUp;
  /** The round each table shows (the median by chain messages/s), by configuration. */
  readonly configurations: readonly ConfigurationResult[];
  /** Every round's result, by configuration (the same order). */
  readonly rounds: readonly (readonly ConfigurationResult[])[];
  readonly ratios: readonly Ratio[];
  readonly targets: readonly TargetCheck[];
}

/** The greeter's target is checked at 32 clients; the ratios are given at 256 too. */
const GREETER_RATIO_CLIENTS = 32;
const GREETER_MORE_CLIENTS = 256;

function greeterAt(result: ConfigurationResult, clients: number): GreeterResult | undefined {
  return result.greeter.find((row) => row.clients === clients);
}

/** The ratios and target checks the figures give. */
export function reportOf(base: Omit<Report, "ratios" | "targets">): Report {
  const of = (workers: number) => base.configurations.find((result) => result.workers === workers && !result.baseline);
  const embedded = of(0);
  const one = of(1);
  const two = of(2);
  const ratios: Ratio[] = [];
  const ratio = (what: string, numerator: number | undefined, denominator: number | undefined) => {
    if (numerator === undefined || denominator === undefined || denominator === 0) return undefined;
    const value = Math.round((100 * numerator) / denominator) / 100;
    ratios.push({ what, value });
    return value;
  };
  ratio("chain messages/s, 2 workers / 1 worker", two?.chain.messagesPerSecond, one?.chain.messagesPerSecond);
  ratio(
    `greeter req/s at c=${GREETER_RATIO_CLIENTS}, 2 workers / 1 worker`,
    two && greeterAt(two, GREETER_RATIO_CLIENTS)?.requestsPerSecond,
    one && greeterAt(one, GREETER_RATIO_CLIENTS)?.requestsPerSecond,
  );
  const chainOneToEmbedded = ratio(
    "chain messages/s, 1 worker / embedded",
    one?.chain.messagesPerSecond,
    embedded?.chain.messagesPerSecond,
  );
  const greeterOneToEmbedded = ratio(
    `greeter req/s at c=${GREETER_RATIO_CLIENTS}, 1 worker / embedded`,
    one && greeterAt(one, GREETER_RATIO_CLIENTS)?.requestsPerSecond,
    embedded && greeterAt(embedded, GREETER_RATIO_CLIENTS)?.requestsPerSecond,
  );
  ratio(
    `greeter req/s at c=${GREETER_MORE_CLIENTS}, 2 workers / 1 worker`,
    two && greeterAt(two, GREETER_MORE_CLIENTS)?.requestsPerSecond,
    one && greeterAt(one, GREETER_MORE_CLIENTS)?.requestsPerSecond,
  );
  ratio(
    `greeter req/s at c=${GREETER_MORE_CLIENTS}, 1 worker / embedded`,
    one && greeterAt(one, GREETER_MORE_CLIENTS)?.requestsPerSecond,
    embedded && greeterAt(embedded, GREETER_MORE_CLIENTS)?.requestsPerSecond,
  );

  // Each configuration against its baseline (the same configuration from the --baseline checkout).
  for (const before of base.configurations.filter((result) => result.baseline)) {
    const now = of(before.workers);
    if (now === undefined) continue;
    ratio(
      `chain messages/s, ${now.name} / ${before.name}`,
      now.chain.messagesPerSecond,
      before.chain.messagesPerSecond,
    );
    for (const clients of [1, GREETER_RATIO_CLIENTS, GREETER_MORE_CLIENTS]) {
      ratio(
        `greeter req/s at c=${clients}, ${now.name} / ${before.name}`,
        greeterAt(now, clients)?.requestsPerSecond,
        greeterAt(before, clients)?.requestsPerSecond,
      );
    }
  }

  const targets: TargetCheck[] = [];
  const check = (target: string, value: number | undefined, pass: (value: number) => boolean, shown: string) => {
    targets.push({
      target,
      measured: value === undefined ? "-" : shown,
      verdict: value === undefined ? "not measured" : pass(value) ? "PASS" : "MISS",
    });
  };
  check("1 worker ≥ 0.5× embedded (chain messages/s)", chainOneToEmbedded, (v) => v >= 0.5, `${chainOneToEmbedded}×`);
  check(
    `1 worker ≥ 0.5× embedded (greeter req/s, c=${GREETER_RATIO_CLIENTS})`,
    greeterOneToEmbedded,
    (v) => v >= 0.5,
    `${greeterOneToEmbedded}×`,
  );
  // The cross-worker hops of the largest cluster measured, paced and saturated.
  const largest = base.configurations.filter((result) => result.workers >= 2).at(-1);
  const pacedCross = largest?.paced.crossHop;
  check(
    `a cross-worker hop p99 ≤ 50 ms (paced at ${largest?.paced.ratePerSecond ?? "-"} messages/s, ${largest?.name ?? "no cluster of 2+"})`,
    pacedCross?.p99Ms,
    (v) => v <= 50,
    `${pacedCross?.p99Ms} ms (${pacedCross?.hops} hops)`,
  );
  const saturatedCross = largest?.chain.crossHop;
  check(
    `a cross-worker hop p99 ≤ 50 ms (saturating closed loop, ${largest?.name ?? "no cluster of 2+"})`,
    saturatedCross?.p99Ms,
    (v) => v <= 50,
    `${saturatedCross?.p99Ms} ms (${saturatedCross?.hops} hops)`,
  );
  // The slowest failover of any round: the target is a bound.
  const failovers = base.rounds.flat().flatMap((result) => (result.failover === undefined ? [] : [result.failover]));
  const slowest = failovers
    .slice()
    .sort(
      (a, b) => (a.allAnsweredSeconds ?? Number.POSITIVE_INFINITY) - (b.allAnsweredSeconds ?? Number.POSITIVE_INFINITY),
    )
    .at(-1);
  check(
    `a killed worker's partitions answer again within 15 s (default settings${failovers.length > 1 ? `, slowest of ${failovers.length} rounds` : ""})`,
    slowest === undefined ? undefined : (slowest.allAnsweredSeconds ?? Number.POSITIVE_INFINITY),
    (v) => v <= 15,
    (slowest?.allAnsweredSeconds === undefined
      ? `${slowest?.answered} of ${slowest?.instances} answered within ${slowest?.timeoutSeconds} s`
      : `${slowest.allAnsweredSeconds} s`) +
      (slowest?.stuckBeforeKill === true
        ? " (a worker was stuck with a transaction it could not end before the kill)"
        : ""),
  );
  return { ...base, ratios, targets };
}

function cell(value: number | string | undefined): string {
  if (value === undefined || (typeof value === "number" && Number.isNaN(value))) return "-";
  return typeof value === "number" ? value.toLocaleString("en-US") : value;
}

function hopCell(hop: HopLatency | undefined): string {
  return hop === undefined ? "-" : `${cell(hop.p50Ms)} / ${cell(hop.p99Ms)}`;
}

function table(header: readonly string[], rows: readonly (readonly string[])[], say: (line: string) => void): void {
  say(`| ${header.join(" | ")} |`);
  say(`| ${header.map((_, index) => (index === 0 ? ":--" : "--:")).join(" | ")} |`);
  for (const row of rows) say(`| ${row.join(" | ")} |`);
}

export function printReport(report: Report, say: (line: string) => void): void {
  const s = report.settings;
  const m = report.machine;
  say(`bench/cluster — ${report.date}`);
  say(
    `${m.cpuModel}, ${m.cores} cores, ${m.memoryGiB} GiB, Node ${m.node}; one Kafka broker on the same machine; 1-minute load average ${report.loadAverage.before} before, ${report.loadAverage.after} after`,
  );
  say(
    `chain bench/first → bench/second over ${cell(Number(s.addresses))} addresses through the playground ingress (fire-and-forget PUT, ${s.chainClients} clients, each message to the worker that runs its bench/first instance), ${s.warmupSeconds} s warm-up, ${s.chainSeconds} s measured, then paced at ${s.pacedRatePerSecond}/s for ${s.pacedSeconds} s; greeter request-reply over ${cell(Number(s.greeterKeys))} keys, round-robin over the workers, ${s.greeterSeconds} s measured; functions over HTTP (Eddy's SDK) in one function server process${s.quick === true ? "; --quick" : ""}`,
  );
  const warm = report.brokerWarmUp;
  if (warm !== undefined) {
    say(
      `the broker warmed up first: ${cell(warm.commits)} commits in ${warm.seconds} s of request-reply on a 1-worker cluster, its CPU per commit ${cell(warm.firstMicrosPerCommit)} µs in the first 10 s and ${cell(warm.lastMicrosPerCommit)} µs in the last (${warm.settled ? "settled" : "NOT settled: still falling when the warm-up ended"}), then one unmeasured round`,
    );
  }
  say("");
  say(
    "chain, saturated: messages/s through both functions; ingress PUT latency; CPU time per message in the measured window",
  );
  say("");
  table(
    [
      "configuration",
      "msg/s",
      "PUT p50 / p99 ms",
      "Eddy CPU µs/msg",
      "broker CPU µs/msg",
      "functions CPU µs/msg",
      "refused commits",
      "errors",
    ],
    report.configurations.map((r) => [
      r.name,
      cell(r.chain.messagesPerSecond),
      `${cell(r.chain.ingressP50Ms)} / ${cell(r.chain.ingressP99Ms)}`,
      cell(r.chain.cpu.eddyMicros),
      cell(r.chain.cpu.brokerMicros),
      cell(r.chain.cpu.functionsMicros),
      cell(r.refusedCommits.count),
      cell(r.chain.errors + r.paced.errors),
    ]),
    say,
  );
  say("");
  say(
    `chain hop latency p50 / p99 ms, bench/first's send to bench/second's receipt (local: both instances on one worker; cross: on two), saturated and paced at ${cell(Number(s.pacedRatePerSecond))}/s`,
  );
  say("");
  table(
    ["configuration", "saturated", "local", "cross", "paced", "local", "cross", "cross hops (sat. / paced)"],
    report.configurations.map((r) => [
      r.name,
      hopCell(r.chain.hop),
      hopCell(r.chain.localHop),
      hopCell(r.chain.crossHop),
      hopCell(r.paced.hop),
      hopCell(r.paced.localHop),
      hopCell(r.paced.crossHop),
      `${cell(r.chain.crossHop?.hops ?? 0)} / ${cell(r.paced.crossHop?.hops ?? 0)}`,
    ]),
    say,
  );
  say("");
  say("greeter: request-reply (Prefer: wait), closed loop");
  say("");
  table(
    [
      "configuration",
      "c",
      "req/s",
      "p50 ms",
      "p99 ms",
      "commits/req",
      "commit mean ms",
      "Eddy CPU µs/req",
      "broker CPU µs/req",
      "errors",
    ],
    report.configurations.flatMap((r) =>
      r.greeter.map((g) => [
        r.name,
        String(g.clients),
        cell(g.requestsPerSecond),
        cell(g.p50Ms),
        cell(g.p99Ms),
        cell(g.commitsPerRequest),
        cell(g.commitMeanMs),
        cell(g.cpu.eddyMicros),
        cell(g.cpu.brokerMicros),
        cell(g.errors),
      ]),
    ),
    say,
  );
  say("");
  table(
    ["configuration", "ready s", "Eddy RSS MB (each)", "broker RSS MB", "chain accepted / delivered"],
    report.configurations.map((r) => [
      r.name,
      cell(r.readySeconds),
      r.rss.eddyMb.map((mb) => cell(mb)).join(", "),
      cell(r.rss.brokerMb),
      `${cell(r.paced.accepted)} / ${cell(r.paced.delivered)}`,
    ]),
    say,
  );
  for (const r of report.configurations) {
    const firstError = r.chain.firstError ?? r.paced.firstError ?? r.greeter.find((g) => g.firstError)?.firstError;
    if (firstError !== undefined) say(`${r.name}: first error: ${firstError}`);
    if (r.refusedCommits.count > 0) {
      say(
        `${r.name}: ${r.refusedCommits.count} commit(s) refused by Kafka${r.refusedCommits.stuck ? ", and a worker stuck with a transaction it could not end (every later commit refused)" : ""}; first: ${r.refusedCommits.first}`,
      );
    }
    if (r.paced.late > 0)
      say(`${r.name}: ${r.paced.late} paced messages went out over 100 ms late (no free connection)`);
    const f = r.failover;
    if (f !== undefined) {
      say("");
      say(
        `failover (${r.name}): kill -9 ${f.killed}; its ${f.instances} greeter instances (${f.partitions} partitions) asked through ${f.via}: first answer ${cell(f.firstAnswerSeconds)} s after the kill, all ${f.allAnsweredSeconds === undefined ? `not within ${f.timeoutSeconds} s (${f.answered} answered)` : `${f.allAnsweredSeconds} s after the kill`}${f.stuckBeforeKill ? " (a worker was stuck with a transaction it could not end before the kill)" : ""}`,
      );
    }
  }
  if (report.rounds.some((results) => results.length > 1)) {
    say("");
    say("by round (the tables show the median round by chain msg/s):");
    for (const results of report.rounds) {
      const name = results[0]?.name ?? "?";
      const greeter = results.map((r) => cell(greeterAt(r, GREETER_RATIO_CLIENTS)?.requestsPerSecond)).join(", ");
      const failover = results.some((r) => r.failover !== undefined)
        ? `; failover s: ${results.map((r) => cell(r.failover?.allAnsweredSeconds ?? "none")).join(", ")}`
        : "";
      const refused = results.some((r) => r.refusedCommits.count > 0)
        ? `; refused commits: ${results.map((r) => `${r.refusedCommits.count}${r.refusedCommits.stuck ? " (a worker stuck)" : ""}`).join(", ")}`
        : "";
      say(
        `  ${name}: chain msg/s ${results.map((r) => cell(r.chain.messagesPerSecond)).join(", ")}; greeter req/s at c=${GREETER_RATIO_CLIENTS} ${greeter}${failover}${refused}`,
      );
    }
  }
  say("");
  say("ratios:");
  for (const r of report.ratios) say(`  ${r.what}: ${r.value}×`);
  say("");
  say("targets:");
  for (const t of report.targets) say(`  ${t.verdict.padEnd(12)} ${t.target}: ${t.measured}`);
}
