// A Kinesis-compatible server for tests: kinesalite (npm, a root devDependency), run by the
// Node that runs the tests as a child process bound to 127.0.0.1 on a free port, its streams
// in memory. stop() ends that one child by its PID (SIGTERM, then SIGKILL) and removes the
// directory that holds its output.
//
// kinesalite speaks HTTP/1.1 only, while the AWS SDK's Kinesis client defaults to HTTP/2:
// a client of this server needs `requestHandler: new NodeHttpHandler()` (@smithy/node-http-handler).
// It accepts any signature, so `region` and `credentials` below are just what to sign with.
import { createRequire } from "node:module";
import { setTimeout as sleep } from "node:timers/promises";
import { startChildServer } from "./child-server.ts";

const REQUEST_TIMEOUT_MS = 5_000;
const STREAM_ACTIVE_TIMEOUT_MS = 5_000;
const POLL_INTERVAL_MS = 25;
/** kinesalite's default is 10 shards over all streams; AWS's account default is in the hundreds. */
const SHARDS_MAX = 200;

/** The region kinesalite puts in its ARNs; it accepts requests signed for any region. */
export const KINESIS_TEST_REGION = "us-east-1";
export const KINESIS_TEST_CREDENTIALS = { accessKeyId: "eddy-test", secretAccessKey: "eddy-test" } as const;

export interface KinesisTestServer {
  /** http://127.0.0.1:<port>, for the SDK's `endpoint` (or a custom-endpoint awsRegion). */
  readonly endpoint: string;
  readonly region: string;
  readonly credentials: { readonly accessKeyId: string; readonly secretAccessKey: string };
  /** Creates `name` with `shards` shards and resolves once the stream is ACTIVE. */
  createStream(name: string, shards: number): Promise<void>;
  /** Ends the server (its streams are gone) and removes its directory. Idempotent. */
  stop(): Promise<void>;
}

/**
 * kinesalite's own CLI listens on every interface; this launcher binds 127.0.0.1 only and makes
 * stream state changes immediate. Arguments: the package's path, the port, the shard limit.
 */
const LAUNCHER = `
const [kinesalite, port, shardLimit] = process.argv.slice(1);
const server = require(kinesalite)({
  createStreamMs: 0,
  deleteStreamMs: 0,
  updateStreamMs: 0,
  shardLimit: Number(shardLimit),
});
server.listen(Number(port), "127.0.0.1", () => console.log("kinesalite listening on 127.0.0.1:" + port));
// kinesalite rethrows a request's stream error, so a client that aborts an upload would take the
// server down, which real Kinesis never does: such an error is logged and the server lives on.
process.on("uncaughtException", (error) => {
  console.error("kinesalite: uncaught", error);
  if (error.code !== "ECONNRESET" && error.code !== "ECONNABORTED" && error.message !== "aborted") process.exit(1);
});
`;

export async function startKinesis(): Promise<KinesisTestServer> {
  const kinesalite = createRequire(import.meta.url).resolve("kinesalite");
  // kinesalite answers POSTs (the Kinesis API); a GET may go unanswered.
  const server = await startChildServer(
    "kinesalite",
    (_directory, port) => [process.execPath, ["--eval", LAUNCHER, kinesalite, String(port), String(SHARDS_MAX)]],
    "POST",
  );
  return {
    endpoint: server.endpoint,
    region: KINESIS_TEST_REGION,
    credentials: KINESIS_TEST_CREDENTIALS,
    createStream: (name, shards) => createStream(server.endpoint, name, shards),
    stop: server.stop,
  };
}

async function createStream(endpoint: string, name: string, shards: number): Promise<void> {
  await call(endpoint, "CreateStream", { StreamName: name, ShardCount: shards });
  const deadline = Date.now() + STREAM_ACTIVE_TIMEOUT_MS;
  for (;;) {
    const summary = (await call(endpoint, "DescribeStreamSummary", { StreamName: name })) as {
      StreamDescriptionSummary?: { StreamStatus?: string };
    };
    const status = summary.StreamDescriptionSummary?.StreamStatus;
    if (status === "ACTIVE") return;
    if (Date.now() > deadline) {
      throw new Error(`stream ${name} on ${endpoint} is ${status}, not ACTIVE, after ${STREAM_ACTIVE_TIMEOUT_MS} ms`);
    }
    await sleep(POLL_INTERVAL_MS);
  }
}

/** One Kinesis JSON 1.1 request. kinesalite wants a SigV4-shaped Authorization header but checks no signature. */
async function call(endpoint: string, operation: string, body: object): Promise<unknown> {
  const amzDate = `${new Date().toISOString().replace(/[-:]|\.\d{3}/g, "")}`;
  const response = await fetch(endpoint, {
    method: "POST",
    headers: {
      "content-type": "application/x-amz-json-1.1",
      "x-amz-target": `Kinesis_20131202.${operation}`,
      "x-amz-date": amzDate,
      authorization: `AWS4-HMAC-SHA256 Credential=${KINESIS_TEST_CREDENTIALS.accessKeyId}/${amzDate.slice(0, 8)}/${KINESIS_TEST_REGION}/kinesis/aws4_request, SignedHeaders=host;x-amz-date, Signature=0`,
    },
    body: JSON.stringify(body),
    signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
  });
  const text = await response.text();
  if (!response.ok) {
    throw new Error(`${operation} ${JSON.stringify(body)} on ${endpoint}: HTTP ${response.status}: ${text}`);
  }
  return text === "" ? {} : JSON.parse(text);
}
