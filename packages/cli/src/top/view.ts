// What `eddy top` shows, computed from two reads of the admin API (docs/admin-api.md): the
// counters of GET /v1/stats count since the process started, so a rate is the difference of two
// reads over the time between them (the server's nowMs, not ours: the answer's age does not
// skew it). Pure: the polling and the terminal are commands/top.ts's job.

export interface LatencyMs {
  readonly p50: number;
  readonly p99: number;
}

export interface TypeStats {
  readonly invocations: number;
  readonly failures: number;
  readonly deadLetters: number;
  readonly backlog: number;
  readonly inFlight: number;
  readonly paused: boolean;
  readonly latencyMs: LatencyMs | null;
}

/** GET /v1/stats. */
export interface Stats {
  readonly nowMs: number;
  readonly functionTypes: Readonly<Record<string, TypeStats>>;
  readonly totals: {
    readonly invocations: number;
    readonly failures: number;
    readonly ingressRequests: number;
    readonly egressRecords: number;
    readonly commits: number;
    readonly commitLatencyMs: LatencyMs | null;
    readonly kafkaLagMessages: number | null;
  };
}

/** The part of a FunctionType of GET /v1/function-types that top shows. */
export interface FunctionTypeInfo {
  readonly typename: string;
  readonly paused: boolean;
  readonly backlog: number;
  readonly inFlight: number;
  readonly health?: { readonly status: "ok" | "failing" | "idle" } | undefined;
}

/** One poll: both answers, taken together. */
export interface Sample {
  readonly stats: Stats;
  readonly functionTypes: readonly FunctionTypeInfo[];
}

export interface TopRow {
  readonly typename: string;
  /** null: not known yet (a first read, or the process restarted between two). */
  readonly messagesPerSecond: number | null;
  readonly failuresPerSecond: number | null;
  readonly latencyMs: LatencyMs | null;
  readonly backlog: number;
  readonly inFlight: number;
  readonly paused: boolean;
  readonly health: string | null;
}

export interface TopTotals {
  readonly messagesPerSecond: number | null;
  readonly ingressRequestsPerSecond: number | null;
  readonly egressRecordsPerSecond: number | null;
  readonly commitLatencyMs: LatencyMs | null;
  readonly kafkaLagMessages: number | null;
}

export interface TopView {
  readonly nowMs: number;
  readonly rows: readonly TopRow[];
  readonly totals: TopTotals;
}

/**
 * Per second, from a counter's two reads `elapsedMs` apart; null without an earlier read, or
 * when the counter went down (the process restarted: its counters began again).
 */
export function ratePerSecond(earlier: number | undefined, later: number, elapsedMs: number): number | null {
  if (earlier === undefined || elapsedMs <= 0 || later < earlier) return null;
  return ((later - earlier) * 1000) / elapsedMs;
}

/** The view of `current`, with rates since `previous` (none when it is undefined). */
export function topView(previous: Sample | undefined, current: Sample): TopView {
  const stats = current.stats;
  const before = previous?.stats;
  const elapsedMs = before === undefined ? 0 : stats.nowMs - before.nowMs;
  const rate = (earlier: number | undefined, later: number) => ratePerSecond(earlier, later, elapsedMs);
  const infos = new Map(current.functionTypes.map((info) => [info.typename, info]));
  const typenames = [...new Set([...Object.keys(stats.functionTypes), ...infos.keys()])].sort();
  const rows = typenames.map((typename): TopRow => {
    const now = stats.functionTypes[typename];
    const then = before?.functionTypes[typename];
    const info = infos.get(typename);
    // A type that has not run yet has no counters: nothing happened, which is a rate of 0 once there are two reads.
    const counted = (field: "invocations" | "failures") =>
      before === undefined ? null : rate(then?.[field] ?? 0, now?.[field] ?? 0);
    return {
      typename,
      messagesPerSecond: counted("invocations"),
      failuresPerSecond: counted("failures"),
      latencyMs: now?.latencyMs ?? null,
      backlog: now?.backlog ?? info?.backlog ?? 0,
      inFlight: now?.inFlight ?? info?.inFlight ?? 0,
      paused: now?.paused ?? info?.paused ?? false,
      health: info?.health?.status ?? null,
    };
  });
  return {
    nowMs: stats.nowMs,
    rows,
    totals: {
      messagesPerSecond: rate(before?.totals.invocations, stats.totals.invocations),
      ingressRequestsPerSecond: rate(before?.totals.ingressRequests, stats.totals.ingressRequests),
      egressRecordsPerSecond: rate(before?.totals.egressRecords, stats.totals.egressRecords),
      commitLatencyMs: stats.totals.commitLatencyMs,
      kafkaLagMessages: stats.totals.kafkaLagMessages,
    },
  };
}
