// The runtime's Prometheus metrics (GET /metrics on the admin listener, admin-server.ts), kept
// with prom-client in a registry of the runtime's own: two runtimes in one process (tests, an
// embedder) never mix their counts. Names follow Prometheus conventions: an `eddy_` prefix,
// units in the name, `_total` counters, `_seconds` histograms. Labels are bounded: a function
// type, an ingress or egress id, a status code, a Kafka topic and partition; never an address
// id. Process and Node.js metrics keep their standard names (`process_*`, `nodejs_*`), which
// dashboards and alerts made for any Node.js service expect.
//
// Two kinds of recording. Events (an invocation answered, a commit made) are counted as they
// happen, through children cached per label value, so the hot path does no label hashing.
// Levels (backlogs, delayed messages pending, the size of the state on disk, Kafka lag) are
// read only when Prometheus scrapes, from `gauges` the runtime hands over once it runs.
import { type Counter, collectDefaultMetrics, Gauge, Histogram, Counter as PromCounter, Registry } from "prom-client";
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

interface InvocationChildren {
  readonly messages: ReturnType<Counter<"function_type">["labels"]>;
  readonly ok: ReturnType<Histogram<"function_type" | "outcome">["labels"]>;
  readonly failed: ReturnType<Histogram<"function_type" | "outcome">["labels"]>;
  readonly batch: ReturnType<Histogram<"function_type">["labels"]>;
}

export class RuntimeMetrics implements EngineObserver, ConnectorObserver {
  readonly registry = new Registry();
  readonly #invocations: PromCounter<"function_type">;
  readonly #invocationSeconds: Histogram<"function_type" | "outcome">;
  readonly #batchMessages: Histogram<"function_type">;
  readonly #retries: PromCounter<"function_type">;
  readonly #deadLetters: PromCounter<"function_type">;
  readonly #commitSeconds: Histogram;
  readonly #commitWrites: Histogram;
  readonly #commitsRefused: PromCounter;
  readonly #egressRecords: PromCounter<"egress" | "outcome">;
  readonly #ingressRequests: PromCounter<"ingress" | "status">;
  readonly #checkpointSeconds: Histogram<"outcome">;
  readonly #checkpointBytes: PromCounter;
  readonly #checkpointLastSuccess: Gauge;
  readonly #byType = new Map<string, InvocationChildren>();
  #gauges: RuntimeGauges | undefined;

  constructor() {
    const registers = [this.registry];
    this.#invocations = new PromCounter({
      name: "eddy_invocations_total",
      help: "Messages handled by functions, one per message (a batch of n counts n), by function type.",
      labelNames: ["function_type"],
      registers,
    });
    this.#invocationSeconds = new Histogram({
      name: "eddy_invocation_duration_seconds",
      help: "Time from sending a batch to a function to its answer (state handshakes included), retries within the call budget included, by function type and outcome (ok, or failed once the budget ran out).",
      labelNames: ["function_type", "outcome"],
      buckets: LATENCY_BUCKETS,
      registers,
    });
    this.#batchMessages = new Histogram({
      name: "eddy_invocation_batch_messages",
      help: "Messages per batch a function handled, by function type.",
      labelNames: ["function_type"],
      buckets: COUNT_BUCKETS,
      registers,
    });
    this.#retries = new PromCounter({
      name: "eddy_invocation_retries_total",
      help: "Batches sent again after their call budget ran out (failure policy retry), by function type.",
      labelNames: ["function_type"],
      registers,
    });
    this.#deadLetters = new PromCounter({
      name: "eddy_dead_letters_total",
      help: "Messages set aside as dead letters, by the function type they were for.",
      labelNames: ["function_type"],
      registers,
    });
    this.#commitSeconds = new Histogram({
      name: "eddy_commit_duration_seconds",
      help: "Time a group commit took to become durable (a Kafka transaction in a cluster).",
      buckets: LATENCY_BUCKETS,
      registers,
    });
    this.#commitWrites = new Histogram({
      name: "eddy_commit_writes",
      help: "Writes per group commit.",
      buckets: COUNT_BUCKETS,
      registers,
    });
    this.#commitsRefused = new PromCounter({
      name: "eddy_commits_refused_total",
      help: "Group commits the cluster refused (partitions moved, the worker was fenced); each was undone and its work done again.",
      registers,
    });
    this.#egressRecords = new PromCounter({
      name: "eddy_egress_records_total",
      help: "Egress messages settled, by egress and outcome (delivered, or rejected and dead-lettered).",
      labelNames: ["egress", "outcome"],
      registers,
    });
    this.#ingressRequests = new PromCounter({
      name: "eddy_ingress_requests_total",
      help: "HTTP ingress requests answered, by ingress and status code.",
      labelNames: ["ingress", "status"],
      registers,
    });
    this.#checkpointSeconds = new Histogram({
      name: "eddy_checkpoint_duration_seconds",
      help: "Time a checkpoint or savepoint took, upload included, by outcome (ok, failed).",
      labelNames: ["outcome"],
      buckets: CHECKPOINT_BUCKETS,
      registers,
    });
    this.#checkpointBytes = new PromCounter({
      name: "eddy_checkpoint_uploaded_bytes_total",
      help: "Bytes uploaded by checkpoints and savepoints (as stored: compressed), manifests included.",
      registers,
    });
    this.#checkpointLastSuccess = new Gauge({
      name: "eddy_checkpoint_last_success_timestamp_seconds",
      help: "When the last checkpoint or savepoint that succeeded finished, in seconds since the epoch (0: none yet).",
      registers,
    });
    this.#levels(registers);
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
    const children = this.#children(typename);
    if (messages > 0) {
      children.batch.observe(messages);
      children.messages.inc(messages);
    }
    (outcome === "ok" ? children.ok : children.failed).observe(seconds);
  }

  resent(typename: string): void {
    this.#retries.labels(typename).inc();
  }

  deadLettered(typename: string): void {
    this.#deadLetters.labels(typename).inc();
  }

  committed(seconds: number, writes: number): void {
    this.#commitSeconds.observe(seconds);
    this.#commitWrites.observe(writes);
  }

  commitRefused(): void {
    this.#commitsRefused.inc();
  }

  egressSettled(egress: string, outcome: EgressOutcome): void {
    this.#egressRecords.labels(egress, outcome).inc();
  }

  ingressAnswered(ingress: string, status: number): void {
    this.#ingressRequests.labels(ingress, String(status)).inc();
  }

  checkpointTaken(
    seconds: number,
    outcome: { readonly ok: true; readonly uploadedBytes: number } | { readonly ok: false },
  ): void {
    this.#checkpointSeconds.labels(outcome.ok ? "ok" : "failed").observe(seconds);
    if (!outcome.ok) return;
    this.#checkpointBytes.inc(outcome.uploadedBytes);
    this.#checkpointLastSuccess.set(Date.now() / 1000);
  }

  #children(typename: string): InvocationChildren {
    let children = this.#byType.get(typename);
    if (children === undefined) {
      children = {
        messages: this.#invocations.labels(typename),
        ok: this.#invocationSeconds.labels(typename, "ok"),
        failed: this.#invocationSeconds.labels(typename, "failed"),
        batch: this.#batchMessages.labels(typename),
      };
      this.#byType.set(typename, children);
    }
    return children;
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
    const invokedTypes = this.#byType;
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
          for (const typename of invokedTypes.keys()) {
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
