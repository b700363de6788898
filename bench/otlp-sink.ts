// An OTLP/HTTP traces sink for the benchmarks: what a collector is to Eddy's exporter, minus
// the work. It runs in its own process (`startOtlpSink()` forks it), so the CPU it spends
// reading spans is not the measured process's. It binds 127.0.0.1 on a free port and prints
// `{"port":N}` on stdout; `POST /v1/traces` (application/x-protobuf) is read, its spans counted
// and the body dropped, and answered 200 with an empty ExportTraceServiceResponse (an empty
// protobuf body); `GET /stats` answers the totals as JSON, so a bench can show that spans were
// really exported. It exits when its stdin ends, i.e. when the process that started it dies.
//
//   node bench/otlp-sink.ts            (the sink itself)
//   import { startOtlpSink } from "../otlp-sink.ts"   (from a bench)
import { type ChildProcess, spawn } from "node:child_process";
import { once } from "node:events";
import { createServer } from "node:http";
import { createInterface } from "node:readline";
import { gunzipSync } from "node:zlib";

/** What the sink has taken since it started. */
export interface SinkStats {
  readonly requests: number;
  readonly bytes: number;
  readonly spans: number;
}

/** A running sink: its endpoint (for OTEL_EXPORTER_OTLP_ENDPOINT), its totals, and a stop. */
export interface OtlpSink {
  readonly url: string;
  stats(): Promise<SinkStats>;
  stop(): Promise<void>;
}

/** Starts the sink in a child process; it also ends if this process dies without stopping it. */
export async function startOtlpSink(): Promise<OtlpSink> {
  const child: ChildProcess = spawn(process.execPath, [import.meta.filename], {
    stdio: ["pipe", "pipe", "inherit"],
  });
  const lines = createInterface({ input: child.stdout as NonNullable<ChildProcess["stdout"]> });
  const [first] = (await Promise.race([
    once(lines, "line"),
    once(child, "exit").then(() => {
      throw new Error("the OTLP sink exited before it listened");
    }),
  ])) as [string];
  const { port } = JSON.parse(first) as { port: number };
  const url = `http://127.0.0.1:${port}`;
  return {
    url,
    async stats() {
      const response = await fetch(`${url}/stats`);
      return (await response.json()) as SinkStats;
    },
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      const exited = once(child, "exit");
      child.stdin?.end();
      await exited;
    },
  };
}

/** Reads a protobuf varint at `at`: its value and the offset after it. */
function varint(bytes: Uint8Array, at: number): [number, number] {
  let value = 0;
  let scale = 1;
  for (let offset = at; offset < bytes.length; offset++) {
    const byte = bytes[offset] as number;
    value += (byte & 0x7f) * scale;
    if ((byte & 0x80) === 0) return [value, offset + 1];
    scale *= 128;
  }
  throw new Error("truncated varint");
}

/** Calls `each` with the bytes of every length-delimited field `field` of the message in `bytes`. */
function fields(bytes: Uint8Array, field: number, each: (body: Uint8Array) => void): void {
  let at = 0;
  while (at < bytes.length) {
    const [tag, afterTag] = varint(bytes, at);
    const wire = tag & 7;
    at = afterTag;
    if (wire === 0) at = varint(bytes, at)[1];
    else if (wire === 1) at += 8;
    else if (wire === 5) at += 4;
    else if (wire === 2) {
      const [length, afterLength] = varint(bytes, at);
      if (tag >>> 3 === field) each(bytes.subarray(afterLength, afterLength + length));
      at = afterLength + length;
    } else throw new Error(`wire type ${wire} not expected in OTLP traces`);
  }
}

/** Spans in an ExportTraceServiceRequest: resource_spans (1) → scope_spans (2) → spans (2). */
function countSpans(body: Uint8Array): number {
  let spans = 0;
  fields(body, 1, (resourceSpans) =>
    fields(resourceSpans, 2, (scopeSpans) =>
      fields(scopeSpans, 2, () => {
        spans++;
      }),
    ),
  );
  return spans;
}

function serve(): void {
  let requests = 0;
  let bytes = 0;
  let spans = 0;
  const server = createServer((request, response) => {
    if (request.method === "GET" && request.url === "/stats") {
      response.writeHead(200, { "content-type": "application/json" });
      response.end(JSON.stringify({ requests, bytes, spans } satisfies SinkStats));
      return;
    }
    if (request.method !== "POST" || request.url !== "/v1/traces") {
      response.writeHead(404).end();
      request.resume();
      return;
    }
    const chunks: Buffer[] = [];
    request.on("data", (chunk: Buffer) => chunks.push(chunk));
    request.on("end", () => {
      const raw = Buffer.concat(chunks);
      requests++;
      bytes += raw.length;
      try {
        spans += countSpans(request.headers["content-encoding"] === "gzip" ? gunzipSync(raw) : raw);
      } catch {
        // Counted as bytes; a body this reader does not follow is still taken.
      }
      response.writeHead(200, { "content-type": "application/x-protobuf", "content-length": "0" });
      response.end();
    });
  });
  server.listen(0, "127.0.0.1", () => {
    const address = server.address();
    process.stdout.write(
      `${JSON.stringify({ port: typeof address === "object" && address !== null ? address.port : 0 })}\n`,
    );
  });
  // The parent holds our stdin: when it ends (the parent stopped us, or died), so do we.
  process.stdin.on("end", () => process.exit(0));
  process.stdin.on("error", () => process.exit(0));
  process.stdin.resume();
}

if (import.meta.main) serve();
