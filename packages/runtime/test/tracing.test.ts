// Traces: what the OTEL_* variables turn on (and the one-line refusals of what Eddy cannot
// honour), W3C traceparent parsing, and the spans the engine and the playground ingress make,
// with a recording tracer: a traceparent on the request starts the chain accept → invoke
// person → invoke greeter → egress, each span the child of the one before, a commit span under
// each invocation, and the context survives a delayed message. The spans exported with
// OpenTelemetry to a real receiver are test/e2e/traces.test.ts's.
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { address, createEndpoint, message, statefulFunction, types } from "@eddy/sdk";
import { greeter, person } from "../../../examples/greeter/functions.ts";
import type { FunctionTypename } from "../src/core/address.ts";
import type { Catalog, FunctionSettings } from "../src/core/partition-core.ts";
import { Engine } from "../src/engine/engine.ts";
import { parseTraceparent, type SpanAttributes, type SpanKind, type Tracer } from "../src/engine/tracer.ts";
import { InProcessInvoker } from "../src/invoker/in-process-invoker.ts";
import { PLAYGROUND_EGRESS_ID, PlaygroundEgress } from "../src/io/playground/egress.ts";
import { PlaygroundIngress } from "../src/io/playground/ingress.ts";
import { lineLogger } from "../src/observe/logger.ts";
import { openTracing, tracingSettings } from "../src/observe/otel-tracer.ts";
import { LmdbStore } from "../src/store/lmdb-store.ts";

interface RecordedSpan {
  readonly name: string;
  readonly kind: SpanKind;
  readonly traceId: string;
  readonly spanId: string;
  readonly parentSpanId: string | undefined;
  readonly attributes: SpanAttributes;
  readonly links: readonly string[];
  ended: boolean;
  failure?: string;
}

/** A tracer that keeps its spans: ids from counters, a child in its parent's trace. */
function recordingTracer(): { tracer: Tracer; spans: RecordedSpan[] } {
  const spans: RecordedSpan[] = [];
  let next = 1;
  const tracer: Tracer = {
    start(name, kind, parent, attributes = {}, links = []) {
      const parsed = parseTraceparent(parent);
      const spanId = (next++).toString(16).padStart(16, "0");
      const traceId = parsed?.traceId ?? (next++).toString(16).padStart(32, "0");
      const span: RecordedSpan = {
        name,
        kind,
        traceId,
        spanId,
        parentSpanId: parsed?.spanId,
        attributes,
        links,
        ended: false,
      };
      spans.push(span);
      return {
        traceparent: `00-${traceId}-${spanId}-01`,
        end(failure) {
          span.ended = true;
          if (failure !== undefined) span.failure = failure;
        },
      };
    },
  };
  return { tracer, spans };
}

const settings: FunctionSettings = {
  maxBatchCount: 1000,
  maxBatchBytes: 4 << 20,
  backlogLimit: 1000,
  failurePolicy: "dead-letter",
};
const catalog: Catalog = {
  functionSettings: (typename: FunctionTypename) =>
    typename.startsWith("example/") || typename.startsWith("later/") ? settings : undefined,
  hasEgress: (egress) => egress === PLAYGROUND_EGRESS_ID,
};

/** `later/first` sends its message on to `later/second` 20 ms later. */
const first = statefulFunction({
  typename: "later/first",
  handle(ctx, msg) {
    ctx.sendAfter(20, message(address("later/second", ctx.self.id), msg.as(types.string), types.string));
  },
});
const secondSeen: string[] = [];
const second = statefulFunction({
  typename: "later/second",
  handle(_ctx, msg) {
    secondSeen.push(msg.as(types.string));
  },
});

async function until(what: string, done: () => boolean): Promise<void> {
  for (let tries = 0; tries < 500 && !done(); tries++) await new Promise((resolve) => setTimeout(resolve, 10));
  assert.ok(done(), `timed out waiting for ${what}`);
}

describe("traces", () => {
  it("are on only when the OTEL_* variables ask, and refuse what Eddy cannot honour in one line", () => {
    assert.deepEqual(tracingSettings({}), { ok: true, value: undefined });
    assert.deepEqual(tracingSettings({ OTEL_SERVICE_NAME: "x" }), { ok: true, value: undefined });
    const on = tracingSettings({ OTEL_EXPORTER_OTLP_ENDPOINT: "http://127.0.0.1:4318/" });
    assert.ok(on.ok && on.value !== undefined);
    assert.equal(on.value.url, "http://127.0.0.1:4318/v1/traces");
    assert.equal(on.value.serviceName, "eddy");
    assert.deepEqual(on.value.sampler, { kind: "parentbased_always_on" });
    const own = tracingSettings({
      OTEL_EXPORTER_OTLP_ENDPOINT: "http://a:1",
      OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: "http://b:2/traces",
      OTEL_SERVICE_NAME: "shop",
      OTEL_TRACES_SAMPLER: "parentbased_traceidratio",
      OTEL_TRACES_SAMPLER_ARG: "0.25",
      OTEL_BSP_SCHEDULE_DELAY: "100",
    });
    assert.ok(own.ok && own.value !== undefined);
    assert.equal(own.value.url, "http://b:2/traces");
    assert.equal(own.value.serviceName, "shop");
    assert.deepEqual(own.value.sampler, { kind: "parentbased_traceidratio", ratio: 0.25 });
    assert.deepEqual(own.value.batch, { scheduledDelayMillis: 100 });
    const defaulted = tracingSettings({ OTEL_TRACES_EXPORTER: "otlp" });
    assert.ok(defaulted.ok && defaulted.value?.url === "http://localhost:4318/v1/traces");
    for (const off of [
      { OTEL_TRACES_EXPORTER: "none", OTEL_EXPORTER_OTLP_ENDPOINT: "http://a:1" },
      { OTEL_SDK_DISABLED: "true", OTEL_EXPORTER_OTLP_ENDPOINT: "http://a:1" },
    ]) {
      assert.deepEqual(tracingSettings(off), { ok: true, value: undefined });
    }
    const refusals: [Record<string, string>, RegExp][] = [
      [{ OTEL_TRACES_EXPORTER: "zipkin" }, /^OTEL_TRACES_EXPORTER=zipkin: Eddy exports traces with otlp only/],
      [
        { OTEL_EXPORTER_OTLP_ENDPOINT: "http://a:1", OTEL_EXPORTER_OTLP_PROTOCOL: "grpc" },
        /^OTEL_EXPORTER_OTLP_PROTOCOL=grpc: .*http\/protobuf only/,
      ],
      [
        { OTEL_EXPORTER_OTLP_ENDPOINT: "localhost:4318" },
        /^OTEL_EXPORTER_OTLP_ENDPOINT=localhost:4318: expected an http/,
      ],
      [
        { OTEL_EXPORTER_OTLP_ENDPOINT: "http://a:1", OTEL_TRACES_SAMPLER: "sometimes" },
        /^OTEL_TRACES_SAMPLER=sometimes: expected one of/,
      ],
      [
        {
          OTEL_EXPORTER_OTLP_ENDPOINT: "http://a:1",
          OTEL_TRACES_SAMPLER: "traceidratio",
          OTEL_TRACES_SAMPLER_ARG: "2",
        },
        /^OTEL_TRACES_SAMPLER_ARG=2: expected a ratio/,
      ],
      [{ OTEL_EXPORTER_OTLP_ENDPOINT: "http://a:1", OTEL_BSP_MAX_QUEUE_SIZE: "-1" }, /^OTEL_BSP_MAX_QUEUE_SIZE=-1/],
    ];
    for (const [env, why] of refusals) {
      const refused = tracingSettings(env);
      assert.equal(refused.ok, false, JSON.stringify(env));
      if (!refused.ok) {
        assert.equal(refused.code, "config");
        assert.match(refused.message, why);
      }
    }
  });

  it("say in the log how many spans the full batch queue dropped, at most once a minute", async () => {
    // A queue of 4 and an exporter whose collector refuses connections: while one export is
    // out, a burst of spans overflows the queue.
    const settings = tracingSettings({
      OTEL_EXPORTER_OTLP_ENDPOINT: "http://127.0.0.1:1",
      OTEL_BSP_MAX_QUEUE_SIZE: "4",
      OTEL_BSP_MAX_EXPORT_BATCH_SIZE: "4",
      OTEL_BSP_EXPORT_TIMEOUT: "2000",
    });
    assert.ok(settings.ok && settings.value !== undefined);
    const lines: string[] = [];
    const opened = await openTracing(
      settings.value,
      lineLogger((line) => lines.push(line), "warn"),
    );
    for (let n = 0; n < 100; n++) opened.tracer.start("burst", "internal", undefined).end();
    // Once the export in flight has failed (or timed out, 2 s), a span finds room, and the
    // processor says how many it dropped: the burst's, and those ended while it waited.
    let after = 0;
    for (; after < 200 && !lines.some((line) => line.includes("trace spans were dropped")); after++) {
      opened.tracer.start("after", "internal", undefined).end();
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    // The spans still queued cannot be sent either: the shutdown's export fails (or times out).
    await opened.shutdown().catch(() => undefined);
    const dropped = lines.filter((line) => line.includes("trace spans were dropped"));
    assert.equal(dropped.length, 1, lines.join("\n"));
    const count = Number(/(\d+) trace spans were dropped/.exec(dropped[0] as string)?.[1]);
    assert.ok(
      count >= 92 && count <= 92 + after,
      `${count} dropped: 92 of the burst (4 exporting, 4 queued), and up to ${after} after`,
    );
    assert.match(dropped[0] as string, /OTEL_BSP_MAX_QUEUE_SIZE, 4\) was full; raise it, or sample fewer/);
  });

  it("parse a traceparent only in its W3C form", () => {
    assert.deepEqual(parseTraceparent("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"), {
      traceId: "0af7651916cd43dd8448eb211c80319c",
      spanId: "b7ad6b7169203331",
      sampled: true,
    });
    assert.equal(parseTraceparent("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-00")?.sampled, false);
    // A later version may add fields after the flags.
    assert.ok(parseTraceparent("01-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01-extra") !== undefined);
    for (const bad of [
      undefined,
      "",
      "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01-extra",
      "ff-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
      "00-00000000000000000000000000000000-b7ad6b7169203331-01",
      "00-0af7651916cd43dd8448eb211c80319c-0000000000000000-01",
      "00-0AF7651916CD43DD8448EB211C80319C-b7ad6b7169203331-01",
      "00-0af7651916cd43dd8448eb211c80319c-b7ad6b716920333-01",
    ]) {
      assert.equal(parseTraceparent(bad), undefined, String(bad));
    }
  });

  it("follow a request from the ingress through both functions to the egress, and through a delayed message", async () => {
    const dir = mkdtempSync(join(tmpdir(), "eddy-tracing-"));
    after(() => rmSync(dir, { recursive: true, force: true }));
    const { tracer, spans } = recordingTracer();
    const store = new LmdbStore({ path: dir });
    const egress = new PlaygroundEgress({ port: 0, host: "127.0.0.1", topics: ["greetings"] });
    const engine = new Engine({
      store,
      catalog,
      invoker: new InProcessInvoker(createEndpoint([person, greeter, first, second])),
      partitionCount: 4,
      egress: [egress],
      tracer,
    });
    egress.attach(engine, store);
    const ingress = new PlaygroundIngress(engine, { port: 0, host: "127.0.0.1", maxBodyBytes: 1 << 20, tracer });
    engine.start();
    const ingressUrl = await ingress.listen();
    const egressUrl = await egress.listen();
    try {
      const caller = { traceId: "4bf92f3577b34da6a3ce929d0e0e4736", spanId: "00f067aa0ba902b7" };
      const response = await fetch(`${ingressUrl}example/person/seth`, {
        method: "POST",
        headers: {
          "content-type": "application/vnd.example/GreetRequest",
          traceparent: `00-${caller.traceId}-${caller.spanId}-01`,
        },
        body: JSON.stringify({ name: "seth" }),
      });
      assert.equal(response.status, 200, await response.text());
      let greeting: string | undefined;
      for (let tries = 0; tries < 500 && greeting === undefined; tries++) {
        const popped = await fetch(`${egressUrl}greetings`);
        const text = await popped.text();
        if (popped.status === 200) greeting = text;
        else await new Promise((resolve) => setTimeout(resolve, 10));
      }
      assert.equal(greeting, "Welcome seth!");
      const byName = (name: string) => {
        const found = spans.filter((span) => span.name === name);
        assert.equal(found.length, 1, `one span ${name}: ${spans.map((span) => span.name).join(", ")}`);
        return found[0] as RecordedSpan;
      };
      await until("the egress span's end", () => spans.some((span) => span.name.startsWith("egress") && span.ended));
      const accept = byName("accept io.statefun.playground/ingress");
      // Two calls to the person: the first only learns which states it has (a state handshake).
      const personCalls = spans.filter((span) => span.name === "invoke example/person");
      assert.equal(personCalls.length, 2);
      assert.equal(personCalls[0]?.parentSpanId, accept.spanId);
      const invokePerson = personCalls[1] as RecordedSpan;
      const invokeGreeter = byName("invoke example/greeter");
      const egressSpan = byName("egress io.statefun.playground/egress");
      assert.equal(accept.kind, "server");
      assert.equal(accept.parentSpanId, caller.spanId);
      assert.equal(invokePerson.parentSpanId, accept.spanId);
      assert.equal(invokePerson.kind, "client");
      assert.equal(invokePerson.attributes["eddy.address"], "example/person/seth");
      assert.equal(invokeGreeter.parentSpanId, invokePerson.spanId);
      assert.equal(egressSpan.parentSpanId, invokeGreeter.spanId);
      assert.equal(egressSpan.kind, "producer");
      for (const span of [accept, invokePerson, invokeGreeter, egressSpan]) {
        assert.equal(span.traceId, caller.traceId, `${span.name} is in the caller's trace`);
        assert.ok(span.ended, `${span.name} ended`);
        assert.equal(span.failure, undefined);
      }
      await until(
        "the commit spans' ends",
        () => spans.filter((span) => span.name === "commit" && span.ended).length >= 3,
      );
      const commits = spans.filter((span) => span.name === "commit");
      assert.deepEqual(
        commits.map((span) => span.parentSpanId).sort(),
        [...personCalls, invokeGreeter].map((span) => span.spanId).sort(),
      );

      // Through a delayed message: no traceparent on the request, so the accept span starts a trace.
      const delayed = await fetch(`${ingressUrl}later/first/x`, { method: "POST", body: "hello" });
      assert.equal(delayed.status, 200, await delayed.text());
      await until("the delayed message", () => secondSeen.includes("hello"));
      await until("its span", () => spans.some((span) => span.name === "invoke later/second" && span.ended));
      const start = byName("invoke later/first");
      const later = byName("invoke later/second");
      assert.equal(
        start.parentSpanId,
        spans.find((span) => span.attributes["eddy.address"] === "later/first/x" && span.kind === "server")?.spanId,
      );
      assert.equal(later.parentSpanId, start.spanId);
      assert.equal(later.traceId, start.traceId);
    } finally {
      await ingress.close();
      await egress.close();
      await engine.stop();
    }
  });
});
