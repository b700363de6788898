// The runtime's Prometheus metrics (GET /metrics on the admin listener, admin-server.ts), in a
// prom-client registry of the runtime's own: two runtimes in one process (tests, an embedder)
// never mix their counts. Names follow Prometheus conventions: an `eddy_` prefix, units in the
// name, `_total` counters, `_seconds` histograms. Labels are bounded: a function type, an
// ingress or egress id, a status code, a Kafka topic and partition; never an address id.
// Process and Node.js metrics keep their standard names (`process_*`, `nodejs_*`), which
// dashboards and alerts made for any Node.js service expect.
//
// Two kinds of recording. Events (an invocation answered, a commit made) happen per message, so
// they are added to plain numbers of our own (Family, CounterSeries, HistogramSeries below),
// found per label set through nested maps, and become Prometheus text only when scraped, printed
// by prom-client's registry as it prints its own metrics. prom-client's counters and histograms
// validate and hash their labels on every call: that was most of what metrics cost the engine
// (docs/benchmarks.md, "Overhead of metrics and tracing"). Levels (backlogs, delayed messages
// pending, the size of the state on disk, Kafka lag) are prom-client gauges read only when
// Prometheus scrapes, from `gauges` the runtime hands over once it runs.
import { collectDefaultMetrics, Gauge, type Metric, Registry } from "prom-client";
import type { EgressOutcome, EngineObserver, InvocationOutcome } from "../engine/observer.ts";
import type { ConnectorObserver, SourceLag } from "../io/connector.ts";

/** One function type's work in progress now. */
export interface FunctionTypeLoad {
  /** Messages waiting behind the batches in flight. */
  backlog: number;
  /** Batches sent and not answered yet. */
  inFlight: number;
}

/** The levels read at each scrape. Each may throw; a level that fails is left out of that scrape. */
export interface RuntimeGauges {
  functionTypes(): ReadonlyMap<string, FunctionTypeLoad>;
  delayedMessagesPending(): number;
  stateBytesOnDisk(): number;
  admission(): { readonly budgetBytes: number; readonly admittedBytes: number };
  sourceLags(): Promise<readonly SourceLag[]>;
}

/** Buckets for calls and commits: 0.5 ms to 10 s. */
const LATENCY_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];
/** Buckets for checkpoints, which upload files: 10 ms to 5 min. */
const CHECKPOINT_BUCKETS = [0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30, 60, 300];
/** Buckets for counts (messages per batch, writes per commit): powers of 4 from 1 to 16,384. */
const COUNT_BUCKETS = [1, 4, 16, 64, 256, 1024, 4096, 16384];

/** One series' label values by label name, in the order its family names them. */
type Labels = Readonly<Record<string, string>>;

/** A line of the exposition, as prom-client's Registry prints it (lib/registry.js). */
interface Sample {
  readonly metricName?: string;
  readonly labels: Readonly<Record<string, string | number>>;
  readonly value: number;
}

interface Series {
  readonly labels: Labels;
  /** Its lines of the exposition, for the family `name`. */
  samples(name: string): Sample[];
}

/**
 * Series by up to two label values, kept as plain numbers, that prom-client's Registry reads as
 * it reads its own metrics: it asks only for name, help, type, aggregator and get() (and reset()
 * in resetMetrics). A series exists from its first recording and is listed in that order, as
 * prom-client's were; an unlabelled family has its one series from the start, at 0.
 */
class Family<S extends Series> {
  readonly name: string;
  readonly help: string;
  readonly type: "counter" | "histogram";
  readonly aggregator = "sum";
  readonly #labelNames: readonly string[];
  readonly #newSeries: (labels: Labels) => S;
  /** By the first label's value, then the second's ("" for a label the family does not have). */
  readonly #byValues = new Map<string, Map<string, S>>();
  readonly #inOrder: S[] = [];

  constructor(
    registry: Registry,
    metric: { name: string; help: string; type: "counter" | "histogram"; labelNames: readonly string[] },
    newSeries: (labels: Labels) => S,
  ) {
    if (metric.labelNames.length > 2) throw new Error(`${metric.name}: a family has at most two labels`);
    this.name = metric.name;
    this.help = metric.help;
    this.type = metric.type;
    this.#labelNames = metric.labelNames;
    this.#newSeries = newSeries;
    this.reset();
    // prom-client's types take only its own classes; its registry needs no more than the above.
    registry.registerMetric(this as unknown as Metric);
  }

  /** The series of these label values, made on first use. Two map lookups: no key is built. */
  at(first = "", second = ""): S {
    let bySecond = this.#byValues.get(first);
    if (bySecond === undefined) {
      bySecond = new Map();
      this.#byValues.set(first, bySecond);
    }
    let series = bySecond.get(second);
    if (series === undefined) {
      const labels = Object.fromEntries(this.#labelNames.map((name, index) => [name, index === 0 ? first : second]));
      series = this.#newSeries(labels);
      bySecond.set(second, series);
      this.#inOrder.push(series);
    }
    return series;
  }

  /** The first label's values that have a series. */
  firstLabelValues(): Iterable<string> {
    return this.#byValues.keys();
  }

  async get(): Promise<{ name: string; help: string; type: string; aggregator: string; values: Sample[] }> {
    const values = this.#inOrder.flatMap((series) => series.samples(this.name));
    return { name: this.name, help: this.help, type: this.type, aggregator: this.aggregator, values };
  }

  reset(): void {
    this.#byValues.clear();
    this.#inOrder.length = 0;
    if (this.#labelNames.length === 0) this.at();
  }
}

class CounterSeries implements Series {
  readonly labels: Labels;
  value = 0;

  constructor(labels: Labels) {
    this.labels = labels;
  }

  inc(by = 1): void {
    if (!(by >= 0 && by < Number.POSITIVE_INFINITY)) throw new TypeError(`a counter cannot add ${by}`);
    this.value += by;
  }

  samples(): Sample[] {
    return [{ labels: this.labels, value: this.value }];
  }
}

class HistogramSeries implements Series {
  readonly labels: Labels;
  readonly #bounds: readonly number[];
  /** Values per bucket, not cumulative: each in the first bound it does not exceed, or above all (the last slot). */
  readonly #counts: Float64Array;
  #sum = 0;
  #count = 0;

  constructor(labels: Labels, bounds: readonly number[]) {
    this.labels = labels;
    this.#bounds = bounds;
    this.#counts = new Float64Array(bounds.length + 1);
  }

  observe(value: number): void {
    if (!Number.isFinite(value)) throw new TypeError(`a histogram cannot observe ${value}`);
    const bounds = this.#bounds;
    let bucket = 0;
    while (bucket < bounds.length && value > (bounds[bucket] as number)) bucket++;
    this.#counts[bucket] = (this.#counts[bucket] as number) + 1;
    this.#sum += value;
    this.#count++;
  }

  /** As prom-client prints a histogram: `le` first, cumulative buckets, +Inf, then sum and count. */
  samples(name: string): Sample[] {
    const samples: Sample[] = [];
    let atMost = 0;
    for (const [index, bound] of this.#bounds.entries()) {
      atMost += this.#counts[index] as number;
      samples.push({ metricName: `${name}_bucket`, labels: { le: bound, ...this.labels }, value: atMost });
    }
    samples.push(
      { metricName: `${name}_bucket`, labels: { le: "+Inf", ...this.labels }, value: this.#count },
      { metricName: `${name}_sum`, labels: this.labels, value: this.#sum },
      { metricName: `${name}_count`, labels: this.labels, value: this.#count },
    );
    return samples;
  }
}

function counters(registry: Registry, name: string, help: string, labelNames: readonly string[] = []) {
  return new Family(registry, { name, help, type: "counter", labelNames }, (labels) => new CounterSeries(labels));
}

function histograms(
  registry: Registry,
  name: string,
  help: string,
  bounds: readonly number[],
  labelNames: readonly string[] = [],
) {
  return new Family(
    registry,
    { name, help, type: "histogram", labelNames },
    (labels) => new HistogramSeries(labels, bounds),
  );
}

export class RuntimeMetrics implements EngineObserver, ConnectorObserver {
  readonly registry = new Registry();
  // Registered in this order, which is the exposition's.
  readonly #invocations = counters(
    this.registry,
    "eddy_invocations_total",
    "Messages handled by functions, one per message (a batch of n counts n), by function type.",
    ["function_type"],
  );
  readonly #invocationSeconds = histograms(
    this.registry,
    "eddy_invocation_duration_seconds",
    "Time from sending a batch to a function to its answer (state handshakes included), retries within the call budget included, by function type and outcome (ok, or failed once the budget ran out).",
    LATENCY_BUCKETS,
    ["function_type", "outcome"],
  );
  readonly #batchMessages = histograms(
    this.registry,
    "eddy_invocation_batch_messages",
    "Messages per batch a function handled, by function type.",
    COUNT_BUCKETS,
    ["function_type"],
  );
  readonly #retries = counters(
    this.registry,
    "eddy_invocation_retries_total",
    "Batches sent again after their call budget ran out (failure policy retry), by function type.",
    ["function_type"],
  );
  readonly #deadLetters = counters(
    this.registry,
    "eddy_dead_letters_total",
    "Messages set aside as dead letters, by the function type they were for.",
    ["function_type"],
  );
  readonly #commitSeconds = histograms(
    this.registry,
    "eddy_commit_duration_seconds",
    "Time a group commit took to become durable (a Kafka transaction in a cluster).",
    LATENCY_BUCKETS,
  );
  readonly #commitWrites = histograms(this.registry, "eddy_commit_writes", "Writes per group commit.", COUNT_BUCKETS);
  readonly #commitsRefused = counters(
    this.registry,
    "eddy_commits_refused_total",
    "Group commits the cluster refused (partitions moved, the worker was fenced); each was undone and its work done again.",
  );
  readonly #egressRecords = counters(
    this.registry,
    "eddy_egress_records_total",
    "Egress messages settled, by egress and outcome (delivered, or rejected and dead-lettered).",
    ["egress", "outcome"],
  );
  readonly #ingressRequests = counters(
    this.registry,
    "eddy_ingress_requests_total",
    "HTTP ingress requests answered, by ingress and status code.",
    ["ingress", "status"],
  );
  readonly #checkpointSeconds = histograms(
    this.registry,
    "eddy_checkpoint_duration_seconds",
    "Time a checkpoint or savepoint took, upload included, by outcome (ok, failed).",
    CHECKPOINT_BUCKETS,
    ["outcome"],
  );
  readonly #checkpointBytes = counters(
    this.registry,
    "eddy_checkpoint_uploaded_bytes_total",
    "Bytes uploaded by checkpoints and savepoints (as stored: compressed), manifests included.",
  );
  readonly #checkpointLastSuccess = new Gauge({
    name: "eddy_checkpoint_last_success_timestamp_seconds",
    help: "When the last checkpoint or savepoint that succeeded finished, in seconds since the epoch (0: none yet).",
    registers: [this.registry],
  });
  #gauges: RuntimeGauges | undefined;

  constructor() {
    this.#levels([this.registry]);
    collectDefaultMetrics({ register: this.registry });
  }

  /** Where the levels come from, once the runtime runs (before: they are left out). */
  readLevelsFrom(gauges: RuntimeGauges): void {
    this.#gauges = gauges;
  }

  /** The metrics in Prometheus's text format, and its content type. */
  async exposition(): Promise<{ readonly contentType: string; readonly body: string }> {
    return { contentType: this.registry.contentType, body: await this.registry.metrics() };
  }

  invoked(typename: string, messages: number, seconds: number, outcome: InvocationOutcome): void {
    if (messages > 0) {
      this.#batchMessages.at(typename).observe(messages);
      this.#invocations.at(typename).inc(messages);
    }
    this.#invocationSeconds.at(typename, outcome).observe(seconds);
  }

  resent(typename: string): void {
    this.#retries.at(typename).inc();
  }

  deadLettered(typename: string): void {
    this.#deadLetters.at(typename).inc();
  }

  committed(seconds: number, writes: number): void {
    this.#commitSeconds.at().observe(seconds);
    this.#commitWrites.at().observe(writes);
  }

  commitRefused(): void {
    this.#commitsRefused.at().inc();
  }

  egressSettled(egress: string, outcome: EgressOutcome): void {
    this.#egressRecords.at(egress, outcome).inc();
  }

  ingressAnswered(ingress: string, status: number): void {
    this.#ingressRequests.at(ingress, String(status)).inc();
  }

  checkpointTaken(
    seconds: number,
    outcome: { readonly ok: true; readonly uploadedBytes: number } | { readonly ok: false },
  ): void {
    this.#checkpointSeconds.at(outcome.ok ? "ok" : "failed").observe(seconds);
    if (!outcome.ok) return;
    this.#checkpointBytes.at().inc(outcome.uploadedBytes);
    this.#checkpointLastSuccess.set(Date.now() / 1000);
  }

  /** The gauges read at scrape time from `#gauges`. */
  #levels(registers: Registry[]): void {
    const read = <T>(level: (gauges: RuntimeGauges) => T): T | undefined => {
      const gauges = this.#gauges;
      if (gauges === undefined) return undefined;
      try {
        return level(gauges);
      } catch {
        // A level that cannot be read now (the store is closing) is left out of this scrape.
        return undefined;
      }
    };
    const invokedTypes = this.#invocationSeconds;
    // Per function type, read afresh by each gauge (a scrape is rare; walking the active
    // addresses twice costs less than state shared between two collects). A type invoked
    // before and idle now reads 0 rather than vanishing.
    const perType = (name: string, help: string, value: (load: FunctionTypeLoad) => number) =>
      new Gauge({
        name,
        help,
        labelNames: ["function_type"],
        registers,
        collect() {
          this.reset();
          const loads = read((gauges) => gauges.functionTypes());
          if (loads === undefined) return;
          for (const typename of invokedTypes.firstLabelValues()) {
            if (!loads.has(typename)) this.labels(typename).set(0);
          }
          for (const [typename, load] of loads) this.labels(typename).set(value(load));
        },
      });
    perType(
      "eddy_backlog_messages",
      "Messages waiting for a function behind the batches in flight, by function type.",
      (load) => load.backlog,
    );
    perType(
      "eddy_batches_in_flight",
      "Batches sent to functions and not answered yet, by function type.",
      (load) => load.inFlight,
    );
    // A level that is one number: left out of a scrape where it cannot be read.
    const level = (name: string, help: string, value: (gauges: RuntimeGauges) => number) =>
      new Gauge({
        name,
        help,
        registers,
        collect() {
          this.reset();
          const now = read(value);
          if (now !== undefined) this.set(now);
        },
      });
    level("eddy_delayed_messages_pending", "Delayed messages (sendAfter) waiting for their time.", (gauges) =>
      gauges.delayedMessagesPending(),
    );
    level(
      "eddy_state_size_bytes",
      "Disk space the state directory takes (the store's files and its write-ahead log).",
      (gauges) => gauges.stateBytesOnDisk(),
    );
    level(
      "eddy_memory_budget_bytes",
      "The memory budget for admitted work (--memory-budget).",
      (gauges) => gauges.admission().budgetBytes,
    );
    level(
      "eddy_admitted_bytes",
      "Work admitted and not finished, in bytes, against the memory budget.",
      (gauges) => gauges.admission().admittedBytes,
    );
    new Gauge({
      name: "eddy_kafka_ingress_lag_messages",
      help: "Records of a Kafka ingress's topic partition after the position Eddy's store holds (the partition's end, its last stable offset under read_committed, asked at the scrape), by ingress, topic and partition.",
      labelNames: ["ingress", "topic", "partition"],
      registers,
      async collect() {
        this.reset();
        const lags = await read((gauges) => gauges.sourceLags())?.catch(() => undefined);
        for (const lag of lags ?? []) this.labels(lag.ingress, lag.topic, String(lag.partition)).set(lag.messages);
      },
    });
  }
}
