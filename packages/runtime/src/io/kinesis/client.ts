// What the Kinesis ingress and egress share: a KinesisClient built from StateFun's awsRegion,
// awsCredentials and client properties, numeric property reading, and the one way an AWS
// error is described in the log. The client always speaks HTTP/1.1 (NodeHttpHandler): the
// SDK's HTTP/2 default is only needed for SubscribeToShard, which Eddy does not use, and
// Kinesis-compatible test servers (kinesalite) speak HTTP/1.1 only. Its own retries are off
// unless asked for (MaxErrorRetry): the connectors retry with their own backoff and logging.
import { KinesisClient, type KinesisClientConfig } from "@aws-sdk/client-kinesis";
import { NodeHttpHandler } from "@smithy/node-http-handler";
import type { KinesisCredentials, KinesisRegion } from "../../config/types.ts";
import type { Logger } from "../../observe/logger.ts";
import type { Parsed } from "../parsed.ts";

export type { Parsed };

export interface KinesisHttpSettings {
  readonly connectTimeoutMs: number;
  /** A socket idle this long is closed (0: never). */
  readonly socketTimeoutMs: number;
  /** A whole request taking longer fails (0: no limit). */
  readonly requestTimeoutMs: number;
  readonly maxConnections: number;
  /** Attempts per call inside the SDK (1: the connector's own retry loop does the retrying). */
  readonly maxAttempts: number;
}

export interface KinesisClientOptions {
  readonly region: KinesisRegion;
  readonly credentials: KinesisCredentials;
  readonly http: KinesisHttpSettings;
}

/**
 * The client a connector uses (`given`, in tests, or one made from its config), after naming
 * in one warning the client properties it ignores.
 */
export function connectorClient(
  what: string,
  config: { readonly region: KinesisRegion; readonly credentials: KinesisCredentials },
  settings: { readonly http: KinesisHttpSettings; readonly ignored: readonly string[] },
  log: Logger,
  given: KinesisClient | undefined,
): KinesisClient {
  if (settings.ignored.length > 0) {
    log.warn(`${what} ignores clientConfigProperties ${settings.ignored.join(", ")}`);
  }
  return given ?? createKinesisClient({ region: config.region, credentials: config.credentials, http: settings.http });
}

export function createKinesisClient(options: KinesisClientOptions): KinesisClient {
  const { region, credentials, http } = options;
  const agent = { keepAlive: true, maxSockets: http.maxConnections };
  const config: KinesisClientConfig & { filepath?: string } = {
    requestHandler: new NodeHttpHandler({
      connectionTimeout: http.connectTimeoutMs,
      socketTimeout: http.socketTimeoutMs,
      requestTimeout: http.requestTimeoutMs,
      throwOnRequestTimeout: true,
      httpAgent: agent,
      httpsAgent: agent,
    }),
    maxAttempts: http.maxAttempts,
  };
  // "default": the SDK's provider chains (AWS_REGION, ~/.aws/config, …), as StateFun's default.
  if (region.type !== "default") config.region = region.id;
  if (region.type === "custom-endpoint") config.endpoint = region.endpoint;
  if (credentials.type === "basic") {
    config.credentials = { accessKeyId: credentials.accessKeyId, secretAccessKey: credentials.secretAccessKey };
  } else if (credentials.type === "profile") {
    config.profile = credentials.profileName;
    // The SDK hands the client's configuration to its default credential chain, whose
    // shared-file reader takes `filepath` as the credentials file to read.
    if (credentials.profilePath !== undefined) config.filepath = credentials.profilePath;
  }
  return new KinesisClient(config);
}

/**
 * The client properties as Eddy reads them. StateFun lower-cases the first letter of the
 * ingress's names (AWS ClientConfiguration setters) and the KPL takes the egress's as
 * written; both are looked up here with a capital first letter, so either spelling works.
 */
export class ClientProperties {
  readonly #byName = new Map<string, { readonly written: string; readonly value: string }>();
  readonly #read = new Set<string>();
  readonly #where: string;

  constructor(properties: ReadonlyMap<string, string>, where: string) {
    this.#where = where;
    for (const [written, value] of properties) {
      this.#byName.set(written.charAt(0).toUpperCase() + written.slice(1), { written, value: value.trim() });
    }
  }

  /** A whole number in [min, max], or the fallback when the property is absent. */
  integer(name: string, fallback: number, min: number, max: number, unit = ""): Parsed<number> {
    this.#read.add(name);
    const property = this.#byName.get(name);
    if (property === undefined) return { ok: true, value: fallback };
    const value = Number(property.value);
    if (!/^\d+$/.test(property.value) || !Number.isSafeInteger(value) || value < min || value > max) {
      return {
        ok: false,
        error: `${this.#where}: ${property.written} ${JSON.stringify(property.value)}: expected a whole number${unit} from ${min} to ${max}`,
      };
    }
    return { ok: true, value };
  }

  /** The properties as written that no read asked for (to be named in a warning at start). */
  unread(): string[] {
    return [...this.#byName]
      .filter(([name]) => !this.#read.has(name))
      .map(([, property]) => property.written)
      .sort();
  }
}

/** An AWS SDK or network error for the log: the service's error name and message, or the system error code. */
export function describe(error: unknown): string {
  if (!(error instanceof Error)) return String(error);
  const code = (error as { code?: unknown }).code;
  const status = (error as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode;
  const name = error.name !== "Error" ? error.name : typeof code === "string" ? code : undefined;
  const text = error.message !== "" ? error.message : typeof code === "string" ? code : "no message";
  const head = name === undefined || text.startsWith(name) ? text : `${name}: ${text}`;
  return status === undefined ? head : `${head} (HTTP ${status})`;
}

/** The service's error name (e.g. ExpiredIteratorException), or undefined for a network or other error. */
export function errorName(error: unknown): string | undefined {
  return error instanceof Error && (error as { $fault?: unknown }).$fault !== undefined ? error.name : undefined;
}

/** Errors that mean "slow down", after which the same call is tried again later. */
export const THROTTLING = new Set([
  "ProvisionedThroughputExceededException",
  "LimitExceededException",
  "KMSThrottlingException",
  "ThrottlingException",
]);
