// Amazon S3 or any S3-compatible server (MinIO, versitygw, Ceph, R2, …) as a blob store:
// s3://bucket/optional/prefix?endpoint=http://host:port&region=…&path-style=true|false.
// Credentials come from the AWS SDK's default chain (environment, profiles, instance roles),
// never from the URL. An object is written with one PutObject, which S3 makes visible whole
// or not at all; checksums are left to Eddy (its manifest has a SHA-256 of every object),
// because S3-compatible servers differ in which of S3's checksum headers they support.
import {
  DeleteObjectsCommand,
  GetObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  S3Client,
  type S3ClientConfig,
  S3ServiceException,
} from "@aws-sdk/client-s3";
import { type BlobStore, BlobStoreError, checkKey } from "./blob-store.ts";
import { bucketUrlError, checkEndpoint, readBucketUrl } from "./bucket-url.ts";
import type { OpenedBlobStore } from "./open-blob-store.ts";

/** DeleteObjects takes at most this many keys per request. */
const DELETE_BATCH_KEYS_MAX = 1000;
const CONNECT_TIMEOUT_MS = 10_000;
/** A socket with no traffic for this long fails the request (the SDK then retries it). */
const SOCKET_IDLE_TIMEOUT_MS = 60_000;
/** The region when neither the URL nor the SDK's chain (AWS_REGION, profiles) names one. */
const REGION_FALLBACK = "us-east-1";
const QUERY_PARAMETERS = new Set(["endpoint", "region", "path-style"]);

export interface S3Location {
  readonly bucket: string;
  /** Empty, or ends with "/": prepended to every key. */
  readonly prefix: string;
  readonly endpoint: string | undefined;
  readonly region: string | undefined;
  readonly pathStyle: boolean;
}

/** Reads an s3:// URL; an error names the URL and what is wrong with it. */
export function parseS3Url(url: URL): { ok: true; location: S3Location } | { ok: false; error: string } {
  const fail = (problem: string) => ({ ok: false as const, error: bucketUrlError(url, problem) });
  const read = readBucketUrl(url, {
    protocol: "s3:",
    expected: "expected s3://bucket/optional/prefix?endpoint=http://host:port&region=…&path-style=true|false",
    credentials: "the AWS SDK reads them from AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, a profile or an instance role",
    bucketName: /^[A-Za-z0-9][A-Za-z0-9._-]*$/,
    parameters: QUERY_PARAMETERS,
  });
  if (!read.ok) return read;
  const endpoint = read.parameters.get("endpoint");
  if (endpoint !== undefined) {
    const problem = checkEndpoint(endpoint);
    if (problem !== undefined) return fail(`endpoint ${JSON.stringify(endpoint)}: ${problem}`);
  }
  const region = read.parameters.get("region");
  if (region !== undefined && !/^[a-z0-9][a-z0-9-]*$/.test(region))
    return fail(`region ${JSON.stringify(region)} is not a region name`);
  const pathStyle = read.parameters.get("path-style");
  if (pathStyle !== undefined && pathStyle !== "true" && pathStyle !== "false") {
    return fail(`path-style ${JSON.stringify(pathStyle)}: expected true or false`);
  }
  return {
    ok: true,
    location: {
      bucket: read.bucket,
      prefix: read.prefix,
      endpoint,
      region,
      // Most S3-compatible servers are addressed by host and port, with no DNS name per bucket.
      pathStyle: pathStyle === undefined ? endpoint !== undefined : pathStyle === "true",
    },
  };
}

/** What an SDK or network error says, with S3's error code and the HTTP status when there is one. */
function describe(error: unknown): string {
  if (error instanceof S3ServiceException) {
    const status = error.$metadata.httpStatusCode;
    return `${error.name}: ${error.message}${status === undefined ? "" : ` (HTTP ${status})`}`;
  }
  if (error instanceof AggregateError && error.message === "") return error.errors.map(describe).join("; ");
  if (error instanceof Error) {
    const code = (error as NodeJS.ErrnoException).code;
    return code !== undefined && !error.message.includes(code) ? `${code}: ${error.message}` : error.message;
  }
  return String(error);
}

function isMissingObject(error: unknown): boolean {
  if (!(error instanceof S3ServiceException)) return false;
  // A 404 without S3's XML body (some servers) also means no object, but a missing bucket
  // must not read as "no checkpoint yet".
  return error.name === "NoSuchKey" || (error.$metadata.httpStatusCode === 404 && error.name !== "NoSuchBucket");
}

export class S3BlobStore implements BlobStore {
  readonly url: string;
  readonly #client: S3Client;
  readonly #bucket: string;
  readonly #prefix: string;

  constructor(url: string, location: S3Location) {
    this.url = url;
    this.#bucket = location.bucket;
    this.#prefix = location.prefix;
    const config: S3ClientConfig = {
      region: location.region ?? regionFromSdkChain,
      forcePathStyle: location.pathStyle,
      // A region guessed for AWS may be wrong; S3 then answers with the bucket's region.
      followRegionRedirects: location.endpoint === undefined,
      requestChecksumCalculation: "WHEN_REQUIRED",
      responseChecksumValidation: "WHEN_REQUIRED",
      requestHandler: { connectionTimeout: CONNECT_TIMEOUT_MS, requestTimeout: SOCKET_IDLE_TIMEOUT_MS },
    };
    if (location.endpoint !== undefined) config.endpoint = location.endpoint;
    this.#client = new S3Client(config);
  }

  static fromUrl(url: URL): OpenedBlobStore {
    const parsed = parseS3Url(url);
    if (!parsed.ok) return parsed;
    return { ok: true, store: new S3BlobStore(url.href, parsed.location) };
  }

  async put(key: string, body: Uint8Array): Promise<void> {
    checkKey(key);
    try {
      await this.#client.send(
        new PutObjectCommand({
          Bucket: this.#bucket,
          Key: this.#prefix + key,
          Body: body,
          ContentLength: body.byteLength,
        }),
      );
    } catch (error) {
      throw this.#error("put", key, error);
    }
  }

  async get(key: string): Promise<Uint8Array | undefined> {
    checkKey(key);
    try {
      const response = await this.#client.send(new GetObjectCommand({ Bucket: this.#bucket, Key: this.#prefix + key }));
      if (response.Body === undefined) throw new Error("the response has no body");
      return await response.Body.transformToByteArray();
    } catch (error) {
      if (isMissingObject(error)) return undefined;
      throw this.#error("get", key, error);
    }
  }

  async list(prefix: string): Promise<string[]> {
    const keys: string[] = [];
    let continuationToken: string | undefined;
    try {
      do {
        const page = await this.#client.send(
          new ListObjectsV2Command({
            Bucket: this.#bucket,
            Prefix: this.#prefix + prefix,
            ...(continuationToken === undefined ? {} : { ContinuationToken: continuationToken }),
          }),
        );
        for (const object of page.Contents ?? []) {
          if (object.Key === undefined || !object.Key.startsWith(this.#prefix)) {
            throw new Error(
              `the server listed ${JSON.stringify(object.Key)}, outside prefix ${JSON.stringify(this.#prefix)}`,
            );
          }
          keys.push(object.Key.slice(this.#prefix.length));
        }
        if (page.IsTruncated === true && page.NextContinuationToken === undefined) {
          throw new Error("the server says the listing is truncated but gives no continuation token");
        }
        continuationToken = page.IsTruncated === true ? page.NextContinuationToken : undefined;
      } while (continuationToken !== undefined);
    } catch (error) {
      throw this.#error("list", prefix, error);
    }
    return keys;
  }

  async delete(keys: readonly string[]): Promise<void> {
    for (const key of keys) checkKey(key);
    for (let start = 0; start < keys.length; start += DELETE_BATCH_KEYS_MAX) {
      const batch = keys.slice(start, start + DELETE_BATCH_KEYS_MAX);
      let errors: { key: string; reason: string }[];
      try {
        const response = await this.#client.send(
          new DeleteObjectsCommand({
            Bucket: this.#bucket,
            Delete: { Objects: batch.map((key) => ({ Key: this.#prefix + key })), Quiet: true },
          }),
        );
        errors = (response.Errors ?? [])
          .filter((error) => error.Code !== "NoSuchKey")
          .map((error) => ({
            key: (error.Key ?? "?").slice(this.#prefix.length),
            reason: `${error.Code ?? "error"}: ${error.Message ?? "no message"}`,
          }));
      } catch (error) {
        const range = batch.length === 1 ? "" : ` (and ${batch.length - 1} more keys)`;
        throw this.#error("delete", `${batch[0]}${range}`, error);
      }
      const first = errors[0];
      if (first !== undefined) {
        const more = errors.length === 1 ? "" : ` (and ${errors.length - 1} more keys failed)`;
        throw new BlobStoreError(`${this.url}: delete ${first.key}: ${first.reason}${more}`);
      }
    }
  }

  async close(): Promise<void> {
    this.#client.destroy();
  }

  #error(operation: string, key: string, cause: unknown): BlobStoreError {
    return new BlobStoreError(`${this.url}: ${operation} ${key}: ${describe(cause)}`, { cause });
  }
}

/**
 * The region the SDK's own chain names (AWS_REGION, the profile's config), else
 * REGION_FALLBACK. Asked once, on the first request, through a client that sends nothing.
 */
let sdkRegion: Promise<string> | undefined;
function regionFromSdkChain(): Promise<string> {
  sdkRegion ??= (async () => {
    const probe = new S3Client({});
    try {
      return await probe.config.region();
    } catch {
      return REGION_FALLBACK;
    } finally {
      probe.destroy();
    }
  })();
  return sdkRegion;
}
