// How the answers of a cluster's workers to one admin call make one answer (cluster-admin.ts):
// counts add up, times take the earliest start and the latest event, latencies the worst
// worker's (a percentile of the whole cannot be made from the workers' percentiles, and the
// worst is what an alert wants), lists merge in their order and are cut to the page asked.
// Every worker runs the same Eddy and answers in the same shapes (admin-api.ts); a member that
// is not what is expected counts as 0 or absent rather than failing the whole answer.

type Body = Readonly<Record<string, unknown>>;

const num = (value: unknown): number => (typeof value === "number" && Number.isFinite(value) ? value : 0);
const obj = (value: unknown): Body =>
  typeof value === "object" && value !== null && !Array.isArray(value) ? (value as Body) : {};
const sum = (bodies: readonly Body[], key: string) => bodies.reduce((total, body) => total + num(body[key]), 0);

/** The latest of times that may be null. */
function latest(values: readonly unknown[]): number | null {
  const times = values.filter((value): value is number => typeof value === "number");
  return times.length === 0 ? null : Math.max(...times);
}

/** The worst p50 and p99 of the workers' (null where none has any). */
export function worstLatency(values: readonly unknown[]): { p50: number; p99: number } | null {
  const known = values.map(obj).filter((value) => typeof value.p50 === "number" && typeof value.p99 === "number");
  if (known.length === 0) return null;
  return {
    p50: Math.max(...known.map((value) => num(value.p50))),
    p99: Math.max(...known.map((value) => num(value.p99))),
  };
}

/** GET /v1/overview: the cluster's totals, and each worker's share. */
export function mergeOverviews(bodies: readonly Body[]): Body {
  const first = bodies[0] ?? {};
  const startedAt = bodies
    .map((body) => body.startedAtMs)
    .filter((value): value is number => typeof value === "number");
  return {
    ...first,
    startedAtMs: startedAt.length === 0 ? first.startedAtMs : Math.min(...startedAt),
    ownedPartitions: sum(bodies, "ownedPartitions"),
    stateBytesOnDisk: sum(bodies, "stateBytesOnDisk"),
    delayedMessagesPending: sum(bodies, "delayedMessagesPending"),
    workers: bodies.map((body) => ({
      workerId: body.workerId ?? null,
      startedAtMs: body.startedAtMs ?? null,
      ownedPartitions: num(body.ownedPartitions),
      stateBytesOnDisk: num(body.stateBytesOnDisk),
      delayedMessagesPending: num(body.delayedMessagesPending),
    })),
  };
}

/** One function type as several workers see it (admin-api.ts functionTypeBody). */
export function mergeFunctionTypes(bodies: readonly Body[]): Body {
  const first = bodies[0] ?? {};
  const healths = bodies.map((body) => obj(body.health));
  const lastSuccessAtMs = latest(healths.map((health) => health.lastSuccessAtMs));
  const lastFailureAtMs = latest(healths.map((health) => health.lastFailureAtMs));
  // The error said by the worker whose failure is the latest.
  const lastError = healths.find((health) => health.lastFailureAtMs === lastFailureAtMs)?.lastError ?? null;
  const status =
    lastFailureAtMs !== null && (lastSuccessAtMs === null || lastFailureAtMs > lastSuccessAtMs)
      ? "failing"
      : lastSuccessAtMs === null
        ? "idle"
        : "ok";
  return {
    ...first,
    // Paused in any partition: its messages wait somewhere.
    paused: bodies.some((body) => body.paused === true),
    backlog: sum(bodies, "backlog"),
    inFlight: sum(bodies, "inFlight"),
    invocations: sum(bodies, "invocations"),
    failures: sum(bodies, "failures"),
    deadLetters: sum(bodies, "deadLetters"),
    health: {
      status,
      lastSuccessAtMs,
      lastFailureAtMs,
      lastError,
      latencyMs: worstLatency(healths.map((health) => health.latencyMs)),
    },
  };
}

/** The function types each worker lists, merged by name, in name order. */
export function mergeFunctionTypeLists(bodies: readonly Body[]): Body {
  const byName = new Map<string, Body[]>();
  for (const body of bodies) {
    const listed = Array.isArray(body.functionTypes) ? body.functionTypes : [];
    for (const entry of listed.map(obj)) {
      if (typeof entry.typename !== "string") continue;
      const seen = byName.get(entry.typename) ?? [];
      seen.push(entry);
      byName.set(entry.typename, seen);
    }
  }
  return {
    functionTypes: [...byName.keys()].sort().map((name) => mergeFunctionTypes(byName.get(name) as Body[])),
  };
}

/** GET /v1/stats: counters added up per type and in total; latencies the worst worker's. */
export function mergeStats(bodies: readonly Body[]): Body {
  const byName = new Map<string, Body[]>();
  for (const body of bodies) {
    for (const [name, entry] of Object.entries(obj(body.functionTypes))) {
      const seen = byName.get(name) ?? [];
      seen.push(obj(entry));
      byName.set(name, seen);
    }
  }
  const functionTypes: Record<string, unknown> = {};
  for (const name of [...byName.keys()].sort()) {
    const entries = byName.get(name) as Body[];
    functionTypes[name] = {
      invocations: sum(entries, "invocations"),
      failures: sum(entries, "failures"),
      deadLetters: sum(entries, "deadLetters"),
      backlog: sum(entries, "backlog"),
      inFlight: sum(entries, "inFlight"),
      paused: entries.some((entry) => entry.paused === true),
      latencyMs: worstLatency(entries.map((entry) => entry.latencyMs)),
    };
  }
  const totals = bodies.map((body) => obj(body.totals));
  return {
    nowMs: bodies[0]?.nowMs ?? Date.now(),
    functionTypes,
    totals: {
      invocations: sum(totals, "invocations"),
      failures: sum(totals, "failures"),
      ingressRequests: sum(totals, "ingressRequests"),
      egressRecords: sum(totals, "egressRecords"),
      commits: sum(totals, "commits"),
      commitLatencyMs: worstLatency(totals.map((total) => total.commitLatencyMs)),
      kafkaLagMessages: sum(totals, "kafkaLagMessages"),
    },
  };
}

/**
 * GET /v1/state/{namespace}/{type}: each worker's first `limit` ids after the cursor, merged
 * ascending (by code unit, as each worker sorts them) and cut to `limit`. A worker's ids are
 * of its own partitions, so no id comes twice.
 */
export function mergeStateIdPages(bodies: readonly Body[], limit: number): Body {
  const ids = bodies
    .flatMap((body) => (Array.isArray(body.ids) ? body.ids : []))
    .filter((id): id is string => typeof id === "string")
    .sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  const page = ids.slice(0, limit);
  const more = ids.length > limit || bodies.some((body) => typeof body.next === "string");
  return { ids: page, next: more ? (page.at(-1) ?? null) : null };
}

/**
 * GET /v1/dead-letters: each worker's first `limit` letters after the cursor, merged in the
 * listing's order (time, partition, sequence) and cut to `limit`; the next cursor is the last's.
 */
export function mergeDeadLetterPages(
  bodies: readonly Body[],
  limit: number,
  order: (id: string) => { partition: number; seq: number } | undefined,
): Body {
  const keyed = bodies
    .flatMap((body) => (Array.isArray(body.deadLetters) ? body.deadLetters : []))
    .map(obj)
    .flatMap((letter) => {
      const key = typeof letter.id === "string" ? order(letter.id) : undefined;
      return key === undefined ? [] : [{ letter, atMs: num(letter.atMs), ...key }];
    })
    .sort((a, b) => a.atMs - b.atMs || a.partition - b.partition || a.seq - b.seq);
  const page = keyed.slice(0, limit);
  const last = page.at(-1);
  const more = keyed.length > limit || bodies.some((body) => typeof body.next === "string");
  return {
    deadLetters: page.map(({ letter }) => letter),
    next: more && last !== undefined ? `${last.atMs}~${String(last.letter.id)}` : null,
  };
}
