// A real OTLP trace receiver for the trace tests: Jaeger v2 (the OpenTelemetry Collector based
// `jaeger` binary, at the version scripts/ensure-test-servers.sh builds into a cache outside the
// repo) with in-memory storage. Each start writes its own config to a temporary directory and
// binds only 127.0.0.1, on free ports: the OTLP/HTTP receiver (no OTLP/gRPC, no Jaeger or
// Zipkin receivers) and the query extension (HTTP and gRPC). Every listener the defaults would
// open is either set here or turned off: the collector's own metrics (a Prometheus endpoint on
// 8888) and traces are off, and the query extension does not trace itself (it would export to
// localhost:4317). The server logs to jaeger.log in the directory; a failed start quotes it.
// stop() ends that one child, by its PID, and removes the directory.
import { accessSync, constants, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { homedir, tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { spawnInDirectory } from "./child-server.ts";
import { freePorts } from "./ports.ts";

/** Pinned like scripts/ensure-test-servers.sh; change both together. */
export const JAEGER_VERSION = "v1.75.0";

const READY_TIMEOUT_MS = 30_000;
const PROBE_INTERVAL_MS = 50;
const REQUEST_TIMEOUT_MS = 5_000;
/** A free port can be taken by someone else before Jaeger binds it: try this many times. */
const START_ATTEMPTS_MAX = 3;
/** How much of the server's log an error quotes. */
const LOG_QUOTED_CHARS_MAX = 3_000;
const PORT_IN_USE = /address already in use/i;
/** The in-memory store drops the oldest traces beyond this. */
const MAX_TRACES = 100_000;

/** One span as the query API returns it, with ids normalised to lowercase, zero-padded hex. */
export interface JaegerSpan {
  /** 32 hex digits. */
  readonly traceId: string;
  /** 16 hex digits. */
  readonly spanId: string;
  /** 16 hex digits; absent for a root span. */
  readonly parentSpanId?: string;
  readonly name: string;
  /** The OTel span kind, lowercase ("server", "client", "producer", "consumer", "internal"), from the span.kind tag. */
  readonly kind?: string;
  /** The span's attributes and what Jaeger derives from the rest (span.kind, otel.status_code, error, …). */
  readonly tags: Readonly<Record<string, unknown>>;
  /** service.name of the span's resource. */
  readonly service: string;
}

export interface Jaeger {
  /** http://127.0.0.1:<port>: the base for OTEL_EXPORTER_OTLP_ENDPOINT; the exporter posts to `${otlpEndpoint}/v1/traces`. */
  readonly otlpEndpoint: string;
  /** http://127.0.0.1:<port>: the query API (and UI). */
  readonly queryEndpoint: string;
  /** The spans of one trace (32 or fewer hex digits, any case), or undefined if Jaeger has none of it. */
  trace(traceId: string): Promise<JaegerSpan[] | undefined>;
  /** The most recent traces (up to `limit`) with a span from `service`, each as its spans; [] if none. */
  traces(service: string, limit?: number): Promise<JaegerSpan[][]>;
  /**
   * Polls trace(traceId) until it has at least `spans` spans (1 by default), for spans that are
   * still on their way (a batching exporter, another process); throws after `timeoutMs`.
   */
  waitForTrace(traceId: string, options?: { spans?: number; timeoutMs?: number }): Promise<JaegerSpan[]>;
  /** Ends the server and removes its directory. Idempotent. */
  stop(): Promise<void>;
}

/** Where scripts/ensure-test-servers.sh puts jaeger: ${XDG_CACHE_HOME:-$HOME/.cache}/eddy/test-servers/jaeger-<version>/jaeger. */
export function jaegerBinary(environment: NodeJS.ProcessEnv = process.env): string {
  const cache = environment.XDG_CACHE_HOME || join(environment.HOME || homedir(), ".cache");
  return join(cache, "eddy", "test-servers", `jaeger-${JAEGER_VERSION}`, "jaeger");
}

/** Starts Jaeger v2 with in-memory storage; resolves once both the OTLP receiver and the query API answer. */
export async function startJaeger(): Promise<Jaeger> {
  const binary = jaegerBinary();
  try {
    accessSync(binary, constants.X_OK);
  } catch {
    throw new Error(`jaeger ${JAEGER_VERSION} is not built at ${binary}: run \`sh scripts/ensure-test-servers.sh\``);
  }
  for (let attempt = 1; ; attempt++) {
    const [otlpPort, queryPort, queryGrpcPort] = (await freePorts(3)) as [number, number, number];
    const directory = mkdtempSync(join(tmpdir(), "eddy-jaeger-"));
    const configPath = join(directory, "config.yaml");
    writeFileSync(configPath, jaegerConfig({ otlpPort, queryPort, queryGrpcPort }));
    const logPath = join(directory, "jaeger.log");
    // Without OTEL_* variables: a test that points its own exporter at this Jaeger through the
    // environment must not point Jaeger's SDK at itself.
    const env = Object.fromEntries(Object.entries(process.env).filter(([key]) => !key.startsWith("OTEL_")));
    const { exited, stop } = spawnInDirectory(binary, [`--config=${configPath}`], directory, logPath, env);
    const otlpEndpoint = `http://127.0.0.1:${otlpPort}`;
    const queryEndpoint = `http://127.0.0.1:${queryPort}`;
    if (await waitUntilReady(otlpEndpoint, queryEndpoint, exited)) {
      return { otlpEndpoint, queryEndpoint, ...queries(queryEndpoint), stop };
    }
    const output = readFileSync(logPath, "utf8").trim();
    await stop();
    if (attempt >= START_ATTEMPTS_MAX || !PORT_IN_USE.test(output)) {
      throw new Error(
        `jaeger did not start (${binary}, OTLP on ${otlpEndpoint}, query on ${queryEndpoint}); the end of its log:\n` +
          output.slice(-LOG_QUOTED_CHARS_MAX),
      );
    }
  }
}

function jaegerConfig(ports: { otlpPort: number; queryPort: number; queryGrpcPort: number }): string {
  return `service:
  extensions: [jaeger_storage, jaeger_query]
  pipelines:
    traces:
      receivers: [otlp]
      # No batch processor: a span is queryable as soon as its export request has been answered.
      processors: []
      exporters: [jaeger_storage_exporter]
  telemetry:
    metrics:
      # Any other level opens a Prometheus endpoint on port 8888.
      level: none
    traces:
      level: none
    logs:
      level: info

extensions:
  jaeger_storage:
    backends:
      memory_store:
        memory:
          max_traces: ${MAX_TRACES}
  jaeger_query:
    storage:
      traces: memory_store
    # On by default in v2: the query service would trace itself to localhost:4317.
    enable_tracing: false
    http:
      endpoint: 127.0.0.1:${ports.queryPort}
    grpc:
      endpoint: 127.0.0.1:${ports.queryGrpcPort}

receivers:
  otlp:
    protocols:
      http:
        endpoint: 127.0.0.1:${ports.otlpPort}

exporters:
  jaeger_storage_exporter:
    trace_storage: memory_store
`;
}

/**
 * True once the OTLP receiver answers HTTP (receivers start last) and the query API answers
 * 200; false if the process exits or READY_TIMEOUT_MS passes.
 */
async function waitUntilReady(otlpEndpoint: string, queryEndpoint: string, exited: Promise<void>): Promise<boolean> {
  let gone = false;
  void exited.then(() => {
    gone = true;
  });
  const deadline = Date.now() + READY_TIMEOUT_MS;
  let receiving = false;
  while (!gone && Date.now() < deadline) {
    try {
      if (!receiving) {
        // Any answer will do (a GET of /v1/traces is 405): it means the receiver is listening.
        const response = await fetch(`${otlpEndpoint}/v1/traces`, { signal: AbortSignal.timeout(1_000) });
        await response.body?.cancel();
        receiving = true;
      }
      const response = await fetch(`${queryEndpoint}/api/services`, { signal: AbortSignal.timeout(1_000) });
      await response.body?.cancel();
      if (response.ok) return true;
    } catch {
      // Not listening yet.
    }
    await sleep(PROBE_INTERVAL_MS);
  }
  return false;
}

/** The query API's JSON (Jaeger's v1 model, which v2 still serves under /api). */
interface ApiTrace {
  traceID: string;
  spans: ApiSpan[];
  processes: Record<string, { serviceName: string }>;
}
interface ApiSpan {
  traceID: string;
  spanID: string;
  operationName: string;
  references?: { refType: string; traceID: string; spanID: string }[] | null;
  tags?: { key: string; type: string; value: unknown }[] | null;
  processID: string;
}

function queries(queryEndpoint: string): Pick<Jaeger, "trace" | "traces" | "waitForTrace"> {
  const trace = async (traceId: string): Promise<JaegerSpan[] | undefined> => {
    const id = hexId(traceId, 32);
    const response = await fetch(`${queryEndpoint}/api/traces/${id}`, {
      signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
    });
    if (response.status === 404) {
      await response.body?.cancel();
      return undefined;
    }
    const data = await apiData(response, `trace ${id}`);
    const spans = data.flatMap(spansOf);
    return spans.length === 0 ? undefined : spans;
  };
  return {
    trace,
    async traces(service, limit = 100) {
      const query = new URLSearchParams({ service, limit: String(limit) });
      const response = await fetch(`${queryEndpoint}/api/traces?${query}`, {
        signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
      });
      // An unknown service is not an error to the caller: it has no traces yet.
      if (response.status === 404) {
        await response.body?.cancel();
        return [];
      }
      return (await apiData(response, `traces of ${service}`)).map(spansOf);
    },
    async waitForTrace(traceId, options = {}) {
      const wanted = options.spans ?? 1;
      const deadline = Date.now() + (options.timeoutMs ?? 10_000);
      for (;;) {
        const spans = await trace(traceId);
        if (spans !== undefined && spans.length >= wanted) return spans;
        if (Date.now() >= deadline) {
          throw new Error(
            `jaeger has ${spans?.length ?? 0} of the ${wanted} span(s) wanted of trace ${hexId(traceId, 32)}` +
              (spans === undefined ? "" : `: ${spans.map((span) => `${span.service}/${span.name}`).join(", ")}`),
          );
        }
        await sleep(PROBE_INTERVAL_MS);
      }
    },
  };
}

async function apiData(response: Response, what: string): Promise<ApiTrace[]> {
  const text = await response.text();
  if (!response.ok) throw new Error(`jaeger query for ${what}: HTTP ${response.status}: ${text}`);
  const body = JSON.parse(text) as { data?: ApiTrace[] | null };
  return body.data ?? [];
}

function spansOf(trace: ApiTrace): JaegerSpan[] {
  return trace.spans.map((span) => {
    const tags: Record<string, unknown> = {};
    for (const tag of span.tags ?? []) tags[tag.key] = tag.value;
    const parent = (span.references ?? []).find((reference) => reference.refType === "CHILD_OF");
    const kind = tags["span.kind"];
    return {
      traceId: hexId(span.traceID, 32),
      spanId: hexId(span.spanID, 16),
      ...(parent === undefined ? {} : { parentSpanId: hexId(parent.spanID, 16) }),
      name: span.operationName,
      ...(typeof kind === "string" ? { kind } : {}),
      tags,
      service: trace.processes[span.processID]?.serviceName ?? "",
    };
  });
}

/** Lowercase hex, left-padded with zeros to `digits` (Jaeger prints ids without leading zeros). */
function hexId(id: string, digits: number): string {
  return id.toLowerCase().padStart(digits, "0");
}
