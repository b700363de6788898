// Real S3 and GCS servers for tests: versitygw (an S3 gateway over a directory) and
// fake-gcs-server, at the versions scripts/ensure-test-servers.sh builds into a cache outside
// the repo. Each start gets a free port on 127.0.0.1, a temporary directory and a fresh
// bucket; stop() ends that one child, by its PID, and removes its directory.
//
// Credentials: startS3Server returns them as `env` (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY)
// instead of setting them, because the caller knows where they belong: an in-process test
// assigns them to process.env (the S3 store reads the AWS SDK's default chain), a test that
// starts the CLI passes them to the child's environment.
import { randomBytes } from "node:crypto";
import { accessSync, constants, mkdirSync } from "node:fs";
import { homedir } from "node:os";
import { join } from "node:path";
import { startChildServer } from "./child-server.ts";

/** Pinned like scripts/ensure-test-servers.sh; change both together. */
export const TEST_SERVER_VERSIONS = { versitygw: "v1.8.0", "fake-gcs-server": "v1.56.1" } as const;
export type TestServerName = keyof typeof TEST_SERVER_VERSIONS;

/** Where scripts/ensure-test-servers.sh puts `name`: ${XDG_CACHE_HOME:-$HOME/.cache}/eddy/test-servers/<name>-<version>/<name>. */
export function testServerBinary(name: TestServerName, environment: NodeJS.ProcessEnv = process.env): string {
  const cache = environment.XDG_CACHE_HOME || join(environment.HOME || homedir(), ".cache");
  return join(cache, "eddy", "test-servers", `${name}-${TEST_SERVER_VERSIONS[name]}`, name);
}

export interface S3TestServer {
  /** s3://bucket/prefix?endpoint=…&region=us-east-1, for openBlobStore. */
  readonly url: string;
  readonly endpoint: string;
  readonly bucket: string;
  /** The credentials the server accepts, as the AWS SDK's default chain reads them. */
  readonly env: { readonly AWS_ACCESS_KEY_ID: string; readonly AWS_SECRET_ACCESS_KEY: string };
  stop(): Promise<void>;
}

export interface GcsTestServer {
  /** gs://bucket/prefix?endpoint=…, for openBlobStore. */
  readonly url: string;
  readonly endpoint: string;
  readonly bucket: string;
  stop(): Promise<void>;
}

/** Starts versitygw over a temporary directory with one empty bucket; `prefix` goes into `url`. */
export async function startS3Server(options: { prefix?: string } = {}): Promise<S3TestServer> {
  const binary = requireBinary("versitygw");
  const bucket = `eddy-test-${randomBytes(4).toString("hex")}`;
  const env = {
    AWS_ACCESS_KEY_ID: `eddy${randomBytes(8).toString("hex")}`,
    AWS_SECRET_ACCESS_KEY: randomBytes(24).toString("hex"),
  };
  const server = await startChildServer("versitygw", (directory, port) => {
    const root = join(directory, "root");
    // The posix backend treats each directory at the top as a bucket.
    mkdirSync(join(root, bucket), { recursive: true });
    return [
      binary,
      [
        "--access",
        env.AWS_ACCESS_KEY_ID,
        "--secret",
        env.AWS_SECRET_ACCESS_KEY,
        "--port",
        `127.0.0.1:${port}`,
        "--quiet",
      ].concat(["posix", root]),
    ];
  });
  const prefix = options.prefix ?? "eddy";
  return {
    url: `s3://${bucket}/${prefix}?endpoint=${server.endpoint}&region=us-east-1`,
    endpoint: server.endpoint,
    bucket,
    env,
    stop: server.stop,
  };
}

/** Starts fake-gcs-server (in-memory objects) with one empty bucket; `prefix` goes into `url`. */
export async function startGcsServer(options: { prefix?: string } = {}): Promise<GcsTestServer> {
  const binary = requireBinary("fake-gcs-server");
  const bucket = `eddy-test-${randomBytes(4).toString("hex")}`;
  const server = await startChildServer("fake-gcs-server", (_directory, port) => [
    binary,
    ["-scheme", "http", "-host", "127.0.0.1", "-port", String(port), "-backend", "memory", "-log-level", "error"],
  ]);
  try {
    const response = await fetch(`${server.endpoint}/storage/v1/b?project=eddy-test`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ name: bucket }),
    });
    if (!response.ok) throw new Error(`creating bucket ${bucket}: HTTP ${response.status}: ${await response.text()}`);
  } catch (error) {
    await server.stop();
    throw error;
  }
  const prefix = options.prefix ?? "eddy";
  return {
    url: `gs://${bucket}/${prefix}?endpoint=${server.endpoint}`,
    endpoint: server.endpoint,
    bucket,
    stop: server.stop,
  };
}

function requireBinary(name: TestServerName): string {
  const binary = testServerBinary(name);
  try {
    accessSync(binary, constants.X_OK);
  } catch {
    throw new Error(
      `${name} ${TEST_SERVER_VERSIONS[name]} is not built at ${binary}: run \`sh scripts/ensure-test-servers.sh\``,
    );
  }
  return binary;
}
