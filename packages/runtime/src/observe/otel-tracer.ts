// Traces with OpenTelemetry, configured the standard way, by the OTEL_* environment variables
// (https://opentelemetry.io/docs/specs/otel/configuration/sdk-environment-variables/):
//
// - Tracing is on when OTEL_EXPORTER_OTLP_TRACES_ENDPOINT or OTEL_EXPORTER_OTLP_ENDPOINT is
//   set, or OTEL_TRACES_EXPORTER=otlp (then to http://localhost:4318); off when neither is, or
//   OTEL_TRACES_EXPORTER=none, or OTEL_SDK_DISABLED=true. When off, nothing here is loaded:
//   the OpenTelemetry packages are imported only when tracing is on.
// - Spans go out with OTLP over HTTP/protobuf, in batches (OTEL_BSP_SCHEDULE_DELAY,
//   OTEL_BSP_MAX_QUEUE_SIZE, OTEL_BSP_MAX_EXPORT_BATCH_SIZE, OTEL_BSP_EXPORT_TIMEOUT); the
//   exporter reads OTEL_EXPORTER_OTLP_(TRACES_)HEADERS, _TIMEOUT and _COMPRESSION itself.
// - OTEL_TRACES_SAMPLER and OTEL_TRACES_SAMPLER_ARG pick the sampler (default
//   parentbased_always_on); OTEL_SERVICE_NAME (default "eddy") and OTEL_RESOURCE_ATTRIBUTES
//   describe the process.
//
// A value Eddy cannot honour (another exporter, gRPC, a sampler argument that is no ratio) is
// a startup error naming the variable, not a silent fallback.
import type { Attributes, Link, Tracer as OtelTracer, SpanContext } from "@opentelemetry/api";
import type { Sampler, SpanExporter } from "@opentelemetry/sdk-trace";
import { parseTraceparent, type SpanAttributes, type SpanKind, type Tracer, type TraceSpan } from "../engine/tracer.ts";
import { failure, type Result, success } from "../errors.ts";
import type { Logger } from "./logger.ts";

export type TracingEnv = Readonly<Record<string, string | undefined>>;

/** Tracing as the environment asks for it: where spans go, and how they are sampled. */
export interface TracingSettings {
  /** The OTLP/HTTP traces URL (…/v1/traces). */
  readonly url: string;
  readonly sampler: SamplerSetting;
  readonly serviceName: string;
  readonly batch: {
    readonly scheduledDelayMillis?: number;
    readonly maxQueueSize?: number;
    readonly maxExportBatchSize?: number;
    readonly exportTimeoutMillis?: number;
  };
}

export type SamplerSetting =
  | { readonly kind: "always_on" | "always_off" | "parentbased_always_on" | "parentbased_always_off" }
  | { readonly kind: "traceidratio" | "parentbased_traceidratio"; readonly ratio: number };

const SAMPLERS = [
  "always_on",
  "always_off",
  "traceidratio",
  "parentbased_always_on",
  "parentbased_always_off",
  "parentbased_traceidratio",
] as const;

/** Where the OTLP exporter sends spans when OTEL_TRACES_EXPORTER=otlp names no endpoint (the spec's default). */
const OTLP_HTTP_DEFAULT = "http://localhost:4318";

/** The settings the environment gives; undefined when it asks for no traces; a failure naming the variable it cannot honour. */
export function tracingSettings(env: TracingEnv): Result<TracingSettings | undefined, "config"> {
  const value = (name: string): string | undefined => {
    const text = env[name]?.trim();
    return text === undefined || text === "" ? undefined : text;
  };
  if (value("OTEL_SDK_DISABLED")?.toLowerCase() === "true") return success(undefined);
  const exporters = (value("OTEL_TRACES_EXPORTER") ?? "")
    .split(",")
    .map((name) => name.trim().toLowerCase())
    .filter((name) => name !== "");
  const other = exporters.find((name) => name !== "otlp" && name !== "none");
  if (other !== undefined) {
    return failure("config", `OTEL_TRACES_EXPORTER=${other}: Eddy exports traces with otlp only (or none)`, false);
  }
  const tracesEndpoint = value("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT");
  const endpoint = value("OTEL_EXPORTER_OTLP_ENDPOINT");
  const asked = exporters.includes("otlp") || (exporters.length === 0 && (tracesEndpoint ?? endpoint) !== undefined);
  if (!asked) return success(undefined);
  const protocol = value("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL") ?? value("OTEL_EXPORTER_OTLP_PROTOCOL");
  if (protocol !== undefined && protocol !== "http/protobuf") {
    const name =
      value("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL") === undefined
        ? "OTEL_EXPORTER_OTLP_PROTOCOL"
        : "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL";
    return failure("config", `${name}=${protocol}: Eddy exports traces with OTLP over http/protobuf only`, false);
  }
  // The signal's own endpoint is used as it is; the general one gets the signal's path (spec).
  const url = tracesEndpoint ?? `${(endpoint ?? OTLP_HTTP_DEFAULT).replace(/\/+$/, "")}/v1/traces`;
  const variable = tracesEndpoint === undefined ? "OTEL_EXPORTER_OTLP_ENDPOINT" : "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT";
  if (!URL.canParse(url) || !/^https?:$/.test(new URL(url).protocol)) {
    return failure("config", `${variable}=${tracesEndpoint ?? endpoint}: expected an http:// or https:// URL`, false);
  }
  const sampler = samplerSetting(value("OTEL_TRACES_SAMPLER"), value("OTEL_TRACES_SAMPLER_ARG"));
  if (!sampler.ok) return sampler;
  const batch: Record<string, number> = {};
  for (const [name, option] of [
    ["OTEL_BSP_SCHEDULE_DELAY", "scheduledDelayMillis"],
    ["OTEL_BSP_MAX_QUEUE_SIZE", "maxQueueSize"],
    ["OTEL_BSP_MAX_EXPORT_BATCH_SIZE", "maxExportBatchSize"],
    ["OTEL_BSP_EXPORT_TIMEOUT", "exportTimeoutMillis"],
  ] as const) {
    const text = value(name);
    if (text === undefined) continue;
    const number = Number(text);
    if (!Number.isSafeInteger(number) || number < (option === "scheduledDelayMillis" ? 0 : 1)) {
      return failure(
        "config",
        `${name}=${text}: expected a whole number${option === "scheduledDelayMillis" ? "" : " above 0"}`,
        false,
      );
    }
    batch[option] = number;
  }
  return success({ url, sampler: sampler.value, serviceName: value("OTEL_SERVICE_NAME") ?? "eddy", batch });
}

function samplerSetting(name: string | undefined, argument: string | undefined): Result<SamplerSetting, "config"> {
  const kind = (name ?? "parentbased_always_on").toLowerCase();
  if (!(SAMPLERS as readonly string[]).includes(kind)) {
    return failure("config", `OTEL_TRACES_SAMPLER=${name}: expected one of ${SAMPLERS.join(", ")}`, false);
  }
  if (kind !== "traceidratio" && kind !== "parentbased_traceidratio") {
    return success({ kind: kind as Exclude<SamplerSetting["kind"], "traceidratio" | "parentbased_traceidratio"> });
  }
  const ratio = argument === undefined ? 1 : Number(argument);
  if (!Number.isFinite(ratio) || ratio < 0 || ratio > 1) {
    return failure("config", `OTEL_TRACES_SAMPLER_ARG=${argument}: expected a ratio from 0 to 1`, false);
  }
  return success({ kind, ratio });
}

/** A running tracer and its exporter: `shutdown` exports what is left, then stops. */
export interface OpenTracing {
  readonly tracer: Tracer;
  readonly settings: TracingSettings;
  shutdown(): Promise<void>;
}

/** One failed export is logged, then at most one line a minute (a collector that is down must not flood the log). */
const EXPORT_FAILURE_LOG_INTERVAL_MS = 60_000;
/** OpenTelemetry's own warnings (dropped spans), likewise. */
const DIAGNOSTIC_LOG_INTERVAL_MS = 60_000;

/** Starts OpenTelemetry's tracer with `settings` (loading its packages now, not before). */
export async function openTracing(settings: TracingSettings, log: Logger): Promise<OpenTracing> {
  const [api, sdk, resources, otlp] = await Promise.all([
    import("@opentelemetry/api"),
    import("@opentelemetry/sdk-trace"),
    import("@opentelemetry/resources"),
    import("@opentelemetry/exporter-trace-otlp-proto"),
  ]);
  const exporter = new otlp.OTLPTraceExporter({ url: settings.url });
  let lastFailureLogMs = Number.NEGATIVE_INFINITY;
  let failuresSinceLog = 0;
  // The exporter, telling the log when an export fails (OpenTelemetry itself says nothing).
  const logging: SpanExporter = {
    export(spans, done) {
      exporter.export(spans, (result) => {
        if (result.code !== 0) {
          failuresSinceLog++;
          const now = Date.now();
          if (now - lastFailureLogMs >= EXPORT_FAILURE_LOG_INTERVAL_MS) {
            const times = failuresSinceLog > 1 ? ` (${failuresSinceLog} times since the last line)` : "";
            log.warn(
              `trace export to ${settings.url} failed${times}: ${result.error?.message ?? "no reason given"}; those spans are dropped`,
            );
            lastFailureLogMs = now;
            failuresSinceLog = 0;
          }
        }
        done(result);
      });
    },
    shutdown: () => exporter.shutdown(),
    forceFlush: () => exporter.forceFlush(),
  };
  const sampler = newSampler(sdk, settings.sampler);
  const resource = resources
    .resourceFromAttributes({ "service.name": settings.serviceName })
    .merge(resources.detectResources({ detectors: [resources.resourceAttributesEnvDetector] }));
  const provider = new sdk.TracerProvider({
    sampler,
    resource,
    spanProcessors: [new sdk.BatchSpanProcessor({ exporter: logging, ...settings.batch })],
  });
  const tracer = new OtelTracerPort(api, provider.getTracer("eddy"));
  const diagnostics = diagnosticsToLog(api, log, settings.batch.maxQueueSize);
  return {
    tracer,
    settings,
    shutdown: async () => {
      try {
        await provider.shutdown();
      } finally {
        diagnostics.close();
      }
    },
  };
}

/** OpenTelemetry's default batch queue (OTEL_BSP_MAX_QUEUE_SIZE unset). */
const BSP_QUEUE_SIZE_DEFAULT = 2048;

/**
 * OpenTelemetry's own warnings and errors, to Eddy's log at most once a minute each kind. The
 * one that matters most is its batch processor's "Dropped N spans because maxQueueSize
 * reached", which it says only through this channel: spans made faster than the exporter
 * sends them are dropped, and an operator must hear how many. The channel is the process's
 * (OpenTelemetry's `diag` is global): the last tracer opened has it, and closing it lets go.
 */
function diagnosticsToLog(api: Api, log: Logger, maxQueueSize: number | undefined): { close(): void } {
  let dropped = 0;
  let droppedLogMs = Number.NEGATIVE_INFINITY;
  let otherLogMs = Number.NEGATIVE_INFINITY;
  let othersSinceLog = 0;
  const sayDropped = () => {
    log.warn(
      `${dropped} trace spans were dropped since the last line: the batch queue (OTEL_BSP_MAX_QUEUE_SIZE, ` +
        `${maxQueueSize ?? BSP_QUEUE_SIZE_DEFAULT}) was full; raise it, or sample fewer (OTEL_TRACES_SAMPLER)`,
    );
    dropped = 0;
    droppedLogMs = Date.now();
  };
  const report = (message: string) => {
    const match = /^Dropped (\d+) spans/.exec(message);
    const now = Date.now();
    if (match !== null) {
      dropped += Number(match[1]);
      if (now - droppedLogMs >= DIAGNOSTIC_LOG_INTERVAL_MS) sayDropped();
      return;
    }
    othersSinceLog++;
    if (now - otherLogMs < DIAGNOSTIC_LOG_INTERVAL_MS) return;
    const more = othersSinceLog > 1 ? ` (${othersSinceLog - 1} more since the last line)` : "";
    log.warn(`OpenTelemetry: ${message}${more}`);
    otherLogMs = now;
    othersSinceLog = 0;
  };
  const ignore = () => undefined;
  api.diag.setLogger(
    { error: report, warn: report, info: ignore, debug: ignore, verbose: ignore },
    { logLevel: api.DiagLogLevel.WARN, suppressOverrideMessage: true },
  );
  return {
    close() {
      if (dropped > 0) sayDropped();
      api.diag.disable();
    },
  };
}

type Sdk = typeof import("@opentelemetry/sdk-trace");

function newSampler(sdk: Sdk, setting: SamplerSetting): Sampler {
  switch (setting.kind) {
    case "always_on":
      return new sdk.AlwaysOnSampler();
    case "always_off":
      return new sdk.AlwaysOffSampler();
    case "traceidratio":
      return new sdk.TraceIdRatioBasedSampler(setting.ratio);
    case "parentbased_always_on":
      return new sdk.ParentBasedSampler({ root: new sdk.AlwaysOnSampler() });
    case "parentbased_always_off":
      return new sdk.ParentBasedSampler({ root: new sdk.AlwaysOffSampler() });
    case "parentbased_traceidratio":
      return new sdk.ParentBasedSampler({ root: new sdk.TraceIdRatioBasedSampler(setting.ratio) });
  }
}

type Api = typeof import("@opentelemetry/api");

/** Eddy's Tracer (engine/tracer.ts) over an OpenTelemetry tracer. */
class OtelTracerPort implements Tracer {
  readonly #api: Api;
  readonly #tracer: OtelTracer;
  readonly #kinds: Record<SpanKind, number>;

  constructor(api: Api, tracer: OtelTracer) {
    this.#api = api;
    this.#tracer = tracer;
    const { SpanKind: Kind } = api;
    this.#kinds = {
      server: Kind.SERVER,
      client: Kind.CLIENT,
      producer: Kind.PRODUCER,
      consumer: Kind.CONSUMER,
      internal: Kind.INTERNAL,
    };
  }

  start(
    name: string,
    kind: SpanKind,
    parent: string | undefined,
    attributes?: SpanAttributes,
    links?: readonly string[],
  ): TraceSpan {
    const api = this.#api;
    const parentContext = spanContext(parent);
    const context =
      parentContext === undefined ? api.ROOT_CONTEXT : api.trace.setSpanContext(api.ROOT_CONTEXT, parentContext);
    const spanLinks: Link[] = [];
    for (const link of links ?? []) {
      const linked = spanContext(link);
      if (linked !== undefined) spanLinks.push({ context: linked });
    }
    const span = this.#tracer.startSpan(
      name,
      {
        kind: this.#kinds[kind],
        ...(attributes === undefined ? {} : { attributes: attributes as Attributes }),
        ...(spanLinks.length === 0 ? {} : { links: spanLinks }),
      },
      context,
    );
    const own = span.spanContext();
    const errorCode = api.SpanStatusCode.ERROR;
    return {
      traceparent: `00-${own.traceId}-${own.spanId}-${(own.traceFlags & 0xff).toString(16).padStart(2, "0")}`,
      end(failure) {
        if (failure !== undefined) span.setStatus({ code: errorCode, message: failure });
        span.end();
      },
    };
  }
}

/** A traceparent as an OpenTelemetry span context (remote: it came with a message); undefined if it does not parse. */
function spanContext(traceparent: string | undefined): SpanContext | undefined {
  const parsed = parseTraceparent(traceparent);
  if (parsed === undefined) return undefined;
  return { traceId: parsed.traceId, spanId: parsed.spanId, traceFlags: parsed.sampled ? 1 : 0, isRemote: true };
}
