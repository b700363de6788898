// Traces end to end: `eddy run` with the greeter's functions on a remote function server (this
// test's, which records the headers it is sent) and OTEL_EXPORTER_OTLP_ENDPOINT pointing at a
// real Jaeger (built from the Go module proxy by scripts/ensure-test-servers.sh). A request that
// carries a traceparent produces one trace in Jaeger: accept (the ingress) → invoke
// example/person → invoke example/greeter → egress, each span the child of the one before, a
// commit span under each call, all under the caller's span; and the function server received
// each call's own span as its traceparent header, so it could join the trace.
import assert from "node:assert/strict";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { after, before, describe, it } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { createEndpoint } from "@eddy/sdk";
import { greeter, person } from "../../examples/greeter/functions.ts";
import { type Jaeger, type JaegerSpan, startJaeger } from "../support/jaeger.ts";
import { EddyProcess, playgroundYaml, withEddy } from "./smoke/cluster.ts";

const CALLER_TRACE = "5c1ef3b2a4d8e6f0a1b2c3d4e5f60718";
const CALLER_SPAN = "a1b2c3d4e5f60718";

/** A function server for the greeter that keeps the traceparent header of every call. */
async function recordingFunctionServer(): Promise<{ server: Server; url: string; traceparents: string[] }> {
  const endpoint = createEndpoint([person, greeter]);
  const traceparents: string[] = [];
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (chunk: Buffer) => chunks.push(chunk));
    req.on("end", () => {
      const header = req.headers.traceparent;
      if (typeof header === "string") traceparents.push(header);
      endpoint.handle(Buffer.concat(chunks)).then(
        (reply) => {
          res.writeHead(200, { "content-type": "application/octet-stream" });
          res.end(reply);
        },
        (error: unknown) => {
          res.writeHead(500, { "content-type": "text/plain" });
          res.end(String(error));
        },
      );
    });
  });
  await new Promise<void>((listening) => server.listen(0, "127.0.0.1", listening));
  const { port } = server.address() as AddressInfo;
  return { server, url: `http://127.0.0.1:${port}/`, traceparents };
}

describe("traces exported to Jaeger", () => {
  let jaeger: Jaeger;
  let functions: Awaited<ReturnType<typeof recordingFunctionServer>>;
  let eddy: EddyProcess;

  before(async () => {
    jaeger = await startJaeger();
    functions = await recordingFunctionServer();
    eddy = new EddyProcess({
      moduleYaml: `kind: io.statefun.endpoints.v2/http
spec:
  functions: example/*
  urlPathTemplate: ${functions.url}
---
${playgroundYaml(["greetings"])}`,
      args: ["run", "{{MODULE}}", "--state-dir", "{{STATE_DIR}}", "--admin-port", "off"],
      env: {
        OTEL_EXPORTER_OTLP_ENDPOINT: jaeger.otlpEndpoint,
        OTEL_SERVICE_NAME: "eddy-trace-test",
        OTEL_BSP_SCHEDULE_DELAY: "100",
      },
    });
    await eddy.start();
  });

  after(async () => {
    await eddy?.dispose();
    await new Promise((closed) => functions?.server.close(closed));
    await jaeger?.stop();
  });

  it("holds one trace from the ingress through both functions to the egress", async () => {
    await withEddy(eddy, async () => {
      assert.match(eddy.output, /tracing: spans go to http:\/\/127\.0\.0\.1:\d+\/v1\/traces with OTLP/);
      const response = await fetch(`${eddy.ingressUrl()}example/person/seth`, {
        method: "POST",
        headers: {
          "content-type": "application/vnd.example/GreetRequest",
          traceparent: `00-${CALLER_TRACE}-${CALLER_SPAN}-01`,
        },
        body: JSON.stringify({ name: "seth" }),
      });
      assert.equal(response.status, 200, await response.text());
      let greeting: string | undefined;
      for (let tries = 0; tries < 200 && greeting === undefined; tries++) {
        const popped = await fetch(`${eddy.egressUrl()}greetings`);
        const text = await popped.text();
        if (popped.status === 200) greeting = text;
        else await sleep(25);
      }
      assert.equal(greeting, "Welcome seth!");

      // The egress span ends once the egress has the record; then the batch goes out within ~100 ms.
      let spans: readonly JaegerSpan[] = [];
      for (let tries = 0; tries < 100; tries++) {
        spans = (await jaeger.trace(CALLER_TRACE)) ?? [];
        if (
          spans.some((span) => span.name.startsWith("egress ")) &&
          spans.filter((s) => s.name === "commit").length >= 3
        )
          break;
        await sleep(100);
      }
      const names = spans.map((span) => span.name).sort();
      const only = (name: string): JaegerSpan => {
        const found = spans.filter((span) => span.name === name);
        assert.equal(found.length, 1, `one span "${name}" in ${JSON.stringify(names)}`);
        return found[0] as JaegerSpan;
      };
      const accept = only("accept io.statefun.playground/ingress");
      // The person is called twice: first it only learns which states it has (StateFun's handshake).
      const personCalls = spans.filter((span) => span.name === "invoke example/person");
      assert.equal(personCalls.length, 2, JSON.stringify(names));
      const invokeGreeter = only("invoke example/greeter");
      const egress = only("egress io.statefun.playground/egress");
      const commits = spans.filter((span) => span.name === "commit");

      for (const span of spans) {
        assert.equal(span.traceId, CALLER_TRACE);
        assert.equal(span.service, "eddy-trace-test");
      }
      assert.equal(accept.parentSpanId, CALLER_SPAN);
      assert.equal(accept.kind, "server");
      for (const call of personCalls) {
        assert.equal(call.parentSpanId, accept.spanId, "the person's calls are children of the accept");
        assert.equal(call.kind, "client");
        assert.equal(call.tags["eddy.address"], "example/person/seth");
      }
      const handled = personCalls.find((call) => call.spanId === invokeGreeter.parentSpanId);
      assert.ok(handled !== undefined, "the greeter's call is a child of a call to the person");
      assert.equal(invokeGreeter.tags["eddy.address"], "example/greeter/seth");
      assert.equal(egress.parentSpanId, invokeGreeter.spanId, "the egress span is a child of the greeter's call");
      assert.equal(egress.kind, "producer");
      assert.deepEqual(
        commits.map((span) => span.parentSpanId).sort(),
        [...personCalls, invokeGreeter].map((span) => span.spanId).sort(),
        "a commit span under each call",
      );

      // The function server was sent each call's span as its parent.
      const sent = functions.traceparents.map((header) => header.split("-"));
      assert.deepEqual(
        sent.map(([, traceId, spanId]) => `${traceId}-${spanId}`).sort(),
        [...personCalls, invokeGreeter].map((span) => `${CALLER_TRACE}-${span.spanId}`).sort(),
      );
    });
  });
});
