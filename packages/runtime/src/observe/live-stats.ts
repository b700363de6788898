// The numbers the admin API shows as JSON (GET /v1/stats, /v1/function-types; the web UI and
// `eddy top` read them): counters since the start, which a client turns into rates by reading
// twice, each function type's last success and failure, and latencies over the last seconds.
// Prometheus keeps its own histograms (metrics.ts); these are for people, kept beside them so
// the UI needs no Prometheus text parser. Memory is bounded: a fixed ring of samples per
// function type, and at most TYPES_MAX types.
import type { EgressOutcome, EngineObserver, InvocationOutcome } from "../engine/observer.ts";
import type { ConnectorObserver } from "../io/connector.ts";

/** Latencies are reported over this window. */
export const LATENCY_WINDOW_MS = 10_000;
/** Samples kept per ring: older ones leave as newer ones come (a busy type reports its latest). */
const SAMPLES_MAX = 1024;
/** Function types tracked; a type beyond it (a pattern endpoint serving thousands) is not. */
const TYPES_MAX = 1000;
/** Longest last-error text kept. */
const ERROR_CHARS_MAX = 500;

export interface Percentiles {
  readonly p50: number;
  readonly p99: number;
}

/** Durations (ms) with the time each was taken, in a fixed ring. */
class LatencyRing {
  readonly #atMs = new Float64Array(SAMPLES_MAX);
  readonly #ms = new Float64Array(SAMPLES_MAX);
  #next = 0;
  #size = 0;

  add(atMs: number, ms: number): void {
    this.#atMs[this.#next] = atMs;
    this.#ms[this.#next] = ms;
    this.#next = (this.#next + 1) % SAMPLES_MAX;
    if (this.#size < SAMPLES_MAX) this.#size++;
  }

  /** p50 and p99 of the samples taken since `sinceMs`, in ms; null without any. */
  percentiles(sinceMs: number): Percentiles | null {
    const recent: number[] = [];
    for (let index = 0; index < this.#size; index++) {
      if ((this.#atMs[index] as number) >= sinceMs) recent.push(this.#ms[index] as number);
    }
    if (recent.length === 0) return null;
    recent.sort((a, b) => a - b);
    const at = (q: number) => recent[Math.min(recent.length - 1, Math.floor(q * recent.length))] as number;
    return { p50: round(at(0.5)), p99: round(at(0.99)) };
  }
}

function round(ms: number): number {
  return Math.round(ms * 1000) / 1000;
}

/** One function type's numbers. */
export interface FunctionTypeStats {
  /** Messages handled. */
  invocations: number;
  /** Calls whose budget ran out (each retry of a failing batch counts). */
  failures: number;
  deadLetters: number;
  lastSuccessAtMs: number | null;
  lastFailureAtMs: number | null;
  lastError: string | null;
}

function noStats(): FunctionTypeStats {
  return { invocations: 0, failures: 0, deadLetters: 0, lastSuccessAtMs: null, lastFailureAtMs: null, lastError: null };
}

interface TypeEntry {
  readonly stats: FunctionTypeStats;
  readonly latency: LatencyRing;
}

export interface TotalsSnapshot {
  readonly invocations: number;
  readonly failures: number;
  readonly ingressRequests: number;
  readonly egressRecords: number;
  readonly commits: number;
  readonly commitLatencyMs: Percentiles | null;
}

export class LiveStats implements EngineObserver, ConnectorObserver {
  readonly #clock: () => number;
  readonly #types = new Map<string, TypeEntry>();
  readonly #commitLatency = new LatencyRing();
  #invocations = 0;
  #failures = 0;
  #ingressRequests = 0;
  #egressRecords = 0;
  #commits = 0;

  constructor(clock: () => number = Date.now) {
    this.#clock = clock;
  }

  invoked(typename: string, messages: number, seconds: number, outcome: InvocationOutcome, failure?: string): void {
    const entry = this.#entry(typename);
    if (entry === undefined) return;
    const now = this.#clock();
    if (outcome === "ok") {
      entry.stats.invocations += messages;
      this.#invocations += messages;
      entry.stats.lastSuccessAtMs = now;
      entry.latency.add(now, seconds * 1000);
      return;
    }
    entry.stats.failures++;
    this.#failures++;
    entry.stats.lastFailureAtMs = now;
    if (failure !== undefined) entry.stats.lastError = failure.slice(0, ERROR_CHARS_MAX);
  }

  resent(): void {}

  deadLettered(typename: string): void {
    const entry = this.#entry(typename);
    if (entry !== undefined) entry.stats.deadLetters++;
  }

  committed(seconds: number): void {
    this.#commits++;
    this.#commitLatency.add(this.#clock(), seconds * 1000);
  }

  commitRefused(): void {}

  egressSettled(_egress: string, outcome: EgressOutcome): void {
    if (outcome === "delivered") this.#egressRecords++;
  }

  ingressAnswered(): void {
    this.#ingressRequests++;
  }

  /** The types seen so far, by name. */
  get typenames(): string[] {
    return [...this.#types.keys()];
  }

  /** A type's numbers (zeros for one not seen) and its latency over the window. */
  functionType(typename: string): { readonly stats: FunctionTypeStats; readonly latencyMs: Percentiles | null } {
    const entry = this.#types.get(typename);
    if (entry === undefined) {
      return {
        stats: noStats(),
        latencyMs: null,
      };
    }
    return { stats: { ...entry.stats }, latencyMs: entry.latency.percentiles(this.#clock() - LATENCY_WINDOW_MS) };
  }

  totals(): TotalsSnapshot {
    return {
      invocations: this.#invocations,
      failures: this.#failures,
      ingressRequests: this.#ingressRequests,
      egressRecords: this.#egressRecords,
      commits: this.#commits,
      commitLatencyMs: this.#commitLatency.percentiles(this.#clock() - LATENCY_WINDOW_MS),
    };
  }

  #entry(typename: string): TypeEntry | undefined {
    let entry = this.#types.get(typename);
    if (entry === undefined) {
      if (this.#types.size >= TYPES_MAX) return undefined;
      entry = {
        stats: noStats(),
        latency: new LatencyRing(),
      };
      this.#types.set(typename, entry);
    }
    return entry;
  }
}

/** Observers told of the same events, in order (the metrics and the live stats). */
export function fanOut(observers: readonly (EngineObserver & ConnectorObserver)[]): EngineObserver & ConnectorObserver {
  return {
    invoked: (typename, messages, seconds, outcome, failure) => {
      for (const observer of observers) observer.invoked(typename, messages, seconds, outcome, failure);
    },
    resent: (typename) => {
      for (const observer of observers) observer.resent(typename);
    },
    deadLettered: (typename) => {
      for (const observer of observers) observer.deadLettered(typename);
    },
    committed: (seconds, writes) => {
      for (const observer of observers) observer.committed(seconds, writes);
    },
    commitRefused: () => {
      for (const observer of observers) observer.commitRefused();
    },
    egressSettled: (egress, outcome) => {
      for (const observer of observers) observer.egressSettled(egress, outcome);
    },
    ingressAnswered: (ingress, status) => {
      for (const observer of observers) observer.ingressAnswered(ingress, status);
    },
  };
}
