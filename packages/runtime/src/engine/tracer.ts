// What the engine and the connectors ask of tracing: spans started under a W3C trace context
// and ended, nothing more. observe/otel-tracer.ts implements it with OpenTelemetry when the
// OTEL_* variables ask for traces; when they do not, nobody holds a Tracer and the hot paths
// test one `undefined` (no span, no context stored with messages, no header sent). So the
// engine, and the simulation that runs it, need no tracing library.
//
// A trace context travels as its `traceparent` string (version-traceid-spanid-flags, W3C
// Trace Context): with a message in the store (records.ts's `trace`), in a Kafka record's
// header, and to a remote function as the HTTP header of that name.

export type SpanKind = "server" | "client" | "producer" | "consumer" | "internal";

/** Attributes of a span: few and bounded (an address is one value, never a key). */
export type SpanAttributes = Readonly<Record<string, string | number>>;

/** A span in progress. */
export interface TraceSpan {
  /** Its context as a `traceparent`: what the work it causes carries, and what a function receives. */
  readonly traceparent: string;
  /** Ends it; with `failure`, its status is an error with that description. */
  end(failure?: string): void;
}

export interface Tracer {
  /**
   * Starts a span. `parent`: the `traceparent` it continues (undefined, or one that does not
   * parse: a new trace). `links`: other contexts it also follows from (the other messages of
   * a batch).
   */
  start(
    name: string,
    kind: SpanKind,
    parent: string | undefined,
    attributes?: SpanAttributes,
    links?: readonly string[],
  ): TraceSpan;
}

/** A parsed `traceparent`: undefined unless it is version 00-format with non-zero ids (W3C Trace Context §3.2). */
export function parseTraceparent(
  text: string | undefined,
): { readonly traceId: string; readonly spanId: string; readonly sampled: boolean } | undefined {
  if (text === undefined) return undefined;
  const match = /^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(-.*)?$/.exec(text.trim());
  if (match === null) return undefined;
  const [, version, traceId, spanId, flags, rest] = match as unknown as [
    string,
    string,
    string,
    string,
    string,
    string?,
  ];
  // Version ff is invalid; version 00 has nothing after the flags; a later version may.
  if (version === "ff" || (version === "00" && rest !== undefined)) return undefined;
  if (/^0+$/.test(traceId) || /^0+$/.test(spanId)) return undefined;
  return { traceId, spanId, sampled: (Number.parseInt(flags, 16) & 1) === 1 };
}
