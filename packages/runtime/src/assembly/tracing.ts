// Traces for a starting runtime: the OTEL_* variables (RuntimeOptions.environment, default the
// process's) checked before anything opens, and OpenTelemetry started only when they ask for
// traces (observe/otel-tracer.ts). Its shutdown, which exports the spans still buffered, is the
// last closer: it runs after the engine and the connectors have ended their spans.
import type { Tracer } from "../engine/tracer.ts";
import type { Logger } from "../observe/logger.ts";
import { openTracing, tracingSettings } from "../observe/otel-tracer.ts";
import type { Closers } from "./closers.ts";
import type { RuntimeOptions } from "./options.ts";
import { StartupError } from "./startup-error.ts";

/** The tracer the environment asks for, started, with its shutdown on `closers`; undefined when it asks for none. */
export async function startTracing(
  options: RuntimeOptions,
  log: Logger,
  closers: Closers,
): Promise<Tracer | undefined> {
  const settings = tracingSettings(options.environment ?? process.env);
  if (!settings.ok) throw new StartupError(settings.message);
  if (settings.value === undefined) return undefined;
  const tracing = await openTracing(settings.value, log);
  closers.defer("the tracer", () => tracing.shutdown());
  log.info(`tracing: spans go to ${settings.value.url} with OTLP (service ${settings.value.serviceName})`);
  return tracing.tracer;
}
