// Google Cloud Storage as a blob store: gs://bucket/optional/prefix[?endpoint=http://host:port].
// Client choice: the GCS JSON API over undici (already a runtime dependency) plus
// google-auth-library for Application Default Credentials, rather than @google-cloud/storage:
// measured here, 23 packages / 12 MB installed and ~70 ms to import, against 59 packages /
// 19 MB and ~155 ms, for the four calls a blob store makes. google-auth-library loads only
// when credentials are needed: with an endpoint (an emulator such as fake-gcs-server, or
// STORAGE_EMULATOR_HOST as Google's clients read it) requests go unauthenticated.
//
// An upload is one media upload, which GCS makes visible whole or not at all. Requests
// that fail on the network, or with 408/429/5xx, are retried a bounded number of times: every
// request here is idempotent (a repeated upload writes the same bytes again).
import { setTimeout as sleep } from "node:timers/promises";
import { Pool } from "undici";
import { backoffMs } from "../../io/backoff.ts";
import { type BlobStore, BlobStoreError, checkKey } from "./blob-store.ts";
import { bucketUrlError, checkEndpoint, readBucketUrl } from "./bucket-url.ts";
import type { OpenedBlobStore } from "./open-blob-store.ts";

const GCS_ENDPOINT = "https://storage.googleapis.com";
const SCOPE_READ_WRITE = "https://www.googleapis.com/auth/devstorage.read_write";
const CONNECTIONS_MAX = 16;
/** Deletes run one request per object, at most this many at a time. */
const DELETE_CONCURRENCY_MAX = 16;
const CONNECT_TIMEOUT_MS = 10_000;
const HEADERS_TIMEOUT_MS = 60_000;
/** The longest pause between two chunks of a body. */
const BODY_IDLE_TIMEOUT_MS = 60_000;
const ATTEMPTS_MAX = 4;
const RETRY_DELAY_MS_MIN = 100;
const RETRY_DELAY_MS_MAX = 2_000;
const LIST_PAGE_ITEMS_MAX = 1000;
const QUERY_PARAMETERS = new Set(["endpoint"]);

export interface GcsLocation {
  readonly bucket: string;
  /** Empty, or ends with "/": prepended to every object name. */
  readonly prefix: string;
  /** An emulator's base URL (no authentication), or undefined for Google Cloud Storage itself. */
  readonly endpoint: string | undefined;
}

/** Reads a gs:// URL; an error names the URL and what is wrong with it. */
export function parseGcsUrl(
  url: URL,
  environment: NodeJS.ProcessEnv = process.env,
): { ok: true; location: GcsLocation } | { ok: false; error: string } {
  const fail = (problem: string) => ({ ok: false as const, error: bucketUrlError(url, problem) });
  const read = readBucketUrl(url, {
    protocol: "gs:",
    expected: "expected gs://bucket/optional/prefix, optionally ?endpoint=http://host:port for an emulator",
    credentials:
      "Application Default Credentials (GOOGLE_APPLICATION_CREDENTIALS, gcloud, the metadata server) are used",
    bucketName: /^[a-z0-9][a-z0-9._-]*$/,
    parameters: QUERY_PARAMETERS,
  });
  if (!read.ok) return read;
  let endpoint = read.parameters.get("endpoint");
  if (endpoint !== undefined) {
    const problem = checkEndpoint(endpoint);
    if (problem !== undefined) return fail(`endpoint ${JSON.stringify(endpoint)}: ${problem}`);
  } else if (environment.STORAGE_EMULATOR_HOST) {
    // Google's clients accept host:port here as well as a URL.
    const emulator = environment.STORAGE_EMULATOR_HOST;
    endpoint = /^[a-z]+:\/\//i.test(emulator) ? emulator : `http://${emulator}`;
    const problem = checkEndpoint(endpoint);
    if (problem !== undefined) return fail(`STORAGE_EMULATOR_HOST ${JSON.stringify(emulator)}: ${problem}`);
  }
  return { ok: true, location: { bucket: read.bucket, prefix: read.prefix, endpoint } };
}

/** A request GCS answered with a status the caller did not expect. */
class HttpStatusError extends Error {
  readonly status: number;
  constructor(status: number, body: string) {
    super(`HTTP ${status}: ${errorMessage(body)}`);
    this.status = status;
  }
}

/** The message of a JSON API error body ({"error": {"message": …}}), else the body's start. */
function errorMessage(body: string): string {
  try {
    const message = (JSON.parse(body) as { error?: { message?: unknown } }).error?.message;
    if (typeof message === "string") return message;
  } catch {
    // Not JSON: a proxy's or an emulator's plain text.
  }
  const text = body.trim().slice(0, 200);
  return text === "" ? "(empty body)" : text;
}

function isRetryable(error: unknown): boolean {
  if (error instanceof HttpStatusError) return error.status === 408 || error.status === 429 || error.status >= 500;
  return error instanceof Error; // the network: refused, reset, timed out
}

function describe(error: unknown): string {
  if (error instanceof AggregateError && error.message === "") return error.errors.map(describe).join("; ");
  if (error instanceof Error) {
    const code = (error as NodeJS.ErrnoException).code;
    const text = code !== undefined && !error.message.includes(code) ? `${code}: ${error.message}` : error.message;
    return error.cause instanceof Error ? `${text} (${describe(error.cause)})` : text;
  }
  return String(error);
}

type Method = "GET" | "POST" | "DELETE";
interface Response {
  readonly status: number;
  readonly body: Uint8Array;
}

export class GcsBlobStore implements BlobStore {
  readonly url: string;
  readonly #bucket: string;
  readonly #prefix: string;
  readonly #basePath: string;
  readonly #pool: Pool;
  /** Authorization headers for a request; none for an emulator. */
  readonly #authorize: () => Promise<Record<string, string>>;

  constructor(url: string, location: GcsLocation) {
    this.url = url;
    this.#bucket = location.bucket;
    this.#prefix = location.prefix;
    const base = new URL(location.endpoint ?? GCS_ENDPOINT);
    this.#basePath = base.pathname.replace(/\/$/, "");
    this.#pool = new Pool(base.origin, {
      connections: CONNECTIONS_MAX,
      connectTimeout: CONNECT_TIMEOUT_MS,
      headersTimeout: HEADERS_TIMEOUT_MS,
      bodyTimeout: BODY_IDLE_TIMEOUT_MS,
    });
    this.#authorize = location.endpoint === undefined ? applicationDefaultCredentials() : async () => ({});
  }

  static fromUrl(url: URL): OpenedBlobStore {
    const parsed = parseGcsUrl(url);
    if (!parsed.ok) return parsed;
    return { ok: true, store: new GcsBlobStore(url.href, parsed.location) };
  }

  async put(key: string, body: Uint8Array): Promise<void> {
    checkKey(key);
    const query = new URLSearchParams({ uploadType: "media", name: this.#prefix + key });
    try {
      await this.#request("POST", `${this.#objectsPath("upload/storage")}?${query}`, body, [200]);
    } catch (error) {
      throw this.#error("put", key, error);
    }
  }

  async get(key: string): Promise<Uint8Array | undefined> {
    checkKey(key);
    try {
      const response = await this.#request("GET", `${this.#objectPath(key)}?alt=media`, undefined, [200, 404]);
      if (response.status === 200) return response.body;
      // A missing bucket must not read as "no checkpoint yet" (GCS says so in the message;
      // emulators may not, and then the first list or put reports it).
      const body = Buffer.from(response.body).toString("utf8");
      if (/bucket does not exist/i.test(errorMessage(body))) throw new HttpStatusError(404, body);
      return undefined;
    } catch (error) {
      throw this.#error("get", key, error);
    }
  }

  async list(prefix: string): Promise<string[]> {
    const keys: string[] = [];
    let pageToken: string | undefined;
    try {
      do {
        const query = new URLSearchParams({
          prefix: this.#prefix + prefix,
          maxResults: String(LIST_PAGE_ITEMS_MAX),
          fields: "items(name),nextPageToken",
        });
        if (pageToken !== undefined) query.set("pageToken", pageToken);
        const response = await this.#request("GET", `${this.#objectsPath("storage")}?${query}`, undefined, [200]);
        const page = JSON.parse(Buffer.from(response.body).toString("utf8")) as {
          items?: { name?: unknown }[];
          nextPageToken?: unknown;
        };
        for (const item of page.items ?? []) {
          if (typeof item.name !== "string" || !item.name.startsWith(this.#prefix)) {
            throw new Error(
              `the server listed ${JSON.stringify(item.name)}, outside prefix ${JSON.stringify(this.#prefix)}`,
            );
          }
          keys.push(item.name.slice(this.#prefix.length));
        }
        pageToken =
          typeof page.nextPageToken === "string" && page.nextPageToken !== "" ? page.nextPageToken : undefined;
      } while (pageToken !== undefined);
    } catch (error) {
      throw this.#error("list", prefix, error);
    }
    return keys;
  }

  async delete(keys: readonly string[]): Promise<void> {
    for (const key of keys) checkKey(key);
    let next = 0;
    let failure: BlobStoreError | undefined;
    const worker = async () => {
      while (failure === undefined && next < keys.length) {
        const key = keys[next++] as string;
        try {
          await this.#request("DELETE", this.#objectPath(key), undefined, [200, 204, 404]);
        } catch (error) {
          failure ??= this.#error("delete", key, error);
        }
      }
    };
    await Promise.all(Array.from({ length: Math.min(DELETE_CONCURRENCY_MAX, keys.length) }, worker));
    if (failure !== undefined) throw failure;
  }

  async close(): Promise<void> {
    await this.#pool.close();
  }

  /** The path of the bucket's object collection: `api` is "storage" for metadata, "upload/storage" for uploads. */
  #objectsPath(api: "storage" | "upload/storage"): string {
    return `${this.#basePath}/${api}/v1/b/${encodeURIComponent(this.#bucket)}/o`;
  }

  #objectPath(key: string): string {
    return `${this.#objectsPath("storage")}/${encodeURIComponent(this.#prefix + key)}`;
  }

  /** Sends a request, retrying network failures and 408/429/5xx; any other status not in `expected` is an error. */
  async #request(
    method: Method,
    path: string,
    body: Uint8Array | undefined,
    expected: readonly number[],
  ): Promise<Response> {
    const headers: Record<string, string> = { ...(await this.#authorize()) };
    if (body !== undefined) headers["content-type"] = "application/octet-stream";
    for (let attempt = 1; ; attempt++) {
      try {
        const response = await this.#pool.request({ method, path, headers, body: body ?? null });
        const bytes = await response.body.bytes();
        if (!expected.includes(response.statusCode)) {
          throw new HttpStatusError(response.statusCode, Buffer.from(bytes).toString("utf8"));
        }
        return { status: response.statusCode, body: bytes };
      } catch (error) {
        if (attempt >= ATTEMPTS_MAX || !isRetryable(error)) throw error;
        await sleep(backoffMs(attempt, { baseMs: RETRY_DELAY_MS_MIN, maxMs: RETRY_DELAY_MS_MAX }));
      }
    }
  }

  #error(operation: string, key: string, cause: unknown): BlobStoreError {
    return new BlobStoreError(`${this.url}: ${operation} ${key}: ${describe(cause)}`, { cause });
  }
}

/** Headers from Application Default Credentials; google-auth-library caches and refreshes the token. */
function applicationDefaultCredentials(): () => Promise<Record<string, string>> {
  let auth: Promise<import("google-auth-library").GoogleAuth> | undefined;
  return async () => {
    auth ??= import("google-auth-library").then(({ GoogleAuth }) => new GoogleAuth({ scopes: [SCOPE_READ_WRITE] }));
    const headers = await (await auth).getRequestHeaders();
    return Object.fromEntries(headers.entries());
  };
}
