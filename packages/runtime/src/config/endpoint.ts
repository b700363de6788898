// `io.statefun.endpoints.v2/http` and `io.statefun.endpoints.v1/http`, with StateFun's
// defaults (statefun-protocol.md §4.1, §8): v2 defaults to the async transport (not OkHttp,
// whatever the StateFun docs say); v1 is always OkHttp with `timeouts` directly in the spec.
import { isAbsolute, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import type { FunctionTypename } from "../core/address.ts";
import { ConfigErrorCode, ConfigWarningCode } from "./diagnostics.ts";
import { formatDuration } from "./duration.ts";
import { child, type Entry, type MapView, quote, type Reader } from "./reader.ts";
import {
  type AsyncTransportConfig,
  type FileReference,
  type FunctionNamespace,
  type FunctionPattern,
  type HttpEndpointConfig,
  Kind,
  type OkHttpTransportConfig,
  type TlsConfig,
  Transport,
  type TransportConfig,
} from "./types.ts";
import { functionUrl, URL_TEMPLATE_EXPECTED } from "./url-template.ts";

const V2_KEYS = ["functions", "urlPathTemplate", "maxNumBatchRequests", "transport"] as const;
/** `maxRetries` is read by StateFun's v1 binder and then never used; accepted and ignored here too. */
const V1_KEYS = ["functions", "urlPathTemplate", "maxNumBatchRequests", "maxRetries", "timeouts"] as const;
const ASYNC_KEYS = [
  "type",
  "call",
  "connect",
  "pool_ttl",
  "pool_size",
  "payload_max_bytes",
  "trust_cacerts",
  "client_cert",
  "client_key",
  "client_key_password",
  "timeouts",
  // Eddy's: the key to sign requests with (see @eddy/sdk's signature.ts).
  "signing_key",
] as const;
const OKHTTP_KEYS = ["type", "timeouts"] as const;
const OKHTTP_TIMEOUT_KEYS = ["call", "connect", "read", "write"] as const;
const ASYNC_TIMEOUT_KEYS = ["call", "connect"] as const;

export const ASYNC_DEFAULTS = {
  callTimeoutMs: 120_000,
  connectTimeoutMs: 20_000,
  /** When the nested `timeouts` object is used (kept from the OkHttp spec for migration). */
  nestedCallTimeoutMs: 60_000,
  nestedConnectTimeoutMs: 10_000,
  poolTtlMs: 15_000,
  poolSizeMax: 1024,
  payloadBytesMax: 32 * 1024 * 1024,
} as const;

export const OKHTTP_DEFAULTS = {
  callTimeoutMs: 60_000,
  connectTimeoutMs: 10_000,
  readTimeoutMs: 10_000,
  writeTimeoutMs: 10_000,
} as const;

export const MAX_NUM_BATCH_REQUESTS_DEFAULT = 1000;

const INT32_MAX = 2_147_483_647;
const INT32_MIN = -2_147_483_648;

const TRANSPORT_EXPECTED = `${Transport.ASYNC} (the default) or ${Transport.OKHTTP}`;
const FUNCTIONS_EXPECTED = 'a function type <namespace>/<name> or a namespace <namespace>/*, with exactly one "/"';

export interface EndpointContext {
  /** Relative TLS file paths are resolved against the module file's directory. */
  readonly baseDir: string;
}

export function parseEndpoint(
  r: Reader,
  kind: typeof Kind.ENDPOINTS_V1_HTTP | typeof Kind.ENDPOINTS_V2_HTTP,
  spec: MapView,
  context: EndpointContext,
): HttpEndpointConfig | undefined {
  const v1 = kind === Kind.ENDPOINTS_V1_HTTP;
  r.checkKeys(spec, v1 ? V1_KEYS : V2_KEYS);

  const functionsEntry = r.require(spec, "functions", FUNCTIONS_EXPECTED, v1 ? V1_KEYS : V2_KEYS);
  const functions = functionsEntry === undefined ? undefined : parseFunctions(r, functionsEntry);

  const templateEntry = r.require(spec, "urlPathTemplate", URL_TEMPLATE_EXPECTED, v1 ? V1_KEYS : V2_KEYS);
  const urlPathTemplate = templateEntry === undefined ? undefined : parseTemplate(r, templateEntry);

  const batchEntry = r.optional(spec, "maxNumBatchRequests");
  const maxNumBatchRequests =
    batchEntry === undefined
      ? MAX_NUM_BATCH_REQUESTS_DEFAULT
      : r.integer(
          batchEntry,
          "an integer: the most batches queued per address before backpressure (≤ 0 disables it), default 1000",
          INT32_MIN,
          INT32_MAX,
        );

  let transport: TransportConfig | undefined;
  if (v1) {
    transport = parseOkHttp(r, r.optional(spec, "timeouts"));
  } else {
    const transportEntry = r.optional(spec, "transport");
    transport =
      transportEntry === undefined
        ? defaultAsyncTransport()
        : parseTransport(r, transportEntry, context, urlPathTemplate);
  }

  if (
    functionsEntry === undefined ||
    functions === undefined ||
    urlPathTemplate === undefined ||
    maxNumBatchRequests === undefined ||
    transport === undefined
  ) {
    return undefined;
  }
  return { kind, functions, urlPathTemplate, maxNumBatchRequests, transport, source: r.locateField(functionsEntry) };
}

export function parseFunctionPattern(text: string): FunctionPattern | { readonly invalid: string } {
  const parts = text.split("/");
  if (parts.length !== 2) {
    return { invalid: parts.length === 1 ? 'has no "/"' : `has ${parts.length - 1} "/"` };
  }
  const [namespace = "", name = ""] = parts;
  if (namespace === "") return { invalid: "has an empty namespace" };
  if (name === "") return { invalid: "has an empty name" };
  if (namespace.includes("*") || (name !== "*" && name.includes("*"))) {
    return { invalid: '"*" is only allowed as the whole name' };
  }
  if (name === "*") return { kind: "namespace", namespace: namespace as FunctionNamespace };
  return { kind: "type", typename: text as FunctionTypename, namespace: namespace as FunctionNamespace };
}

function parseFunctions(r: Reader, entry: Entry): FunctionPattern | undefined {
  const text = r.string(entry, FUNCTIONS_EXPECTED);
  if (text === undefined) return undefined;
  const pattern = parseFunctionPattern(text);
  if ("invalid" in pattern) {
    r.error(
      ConfigErrorCode.INVALID_VALUE,
      r.where(entry),
      entry.path,
      `${quote(text)} is not a function pattern: ${pattern.invalid}`,
      FUNCTIONS_EXPECTED,
    );
    return undefined;
  }
  return pattern;
}

function parseTemplate(r: Reader, entry: Entry): string | undefined {
  const template = r.string(entry, URL_TEMPLATE_EXPECTED);
  if (template === undefined) return undefined;
  // Checked with a stand-in name: the real names are only known when messages arrive.
  const check = functionUrl(template, "name");
  if (!check.ok) {
    r.error(
      ConfigErrorCode.INVALID_VALUE,
      r.where(entry),
      entry.path,
      `${quote(template)} ${check.reason}`,
      URL_TEMPLATE_EXPECTED,
    );
    return undefined;
  }
  return template;
}

function defaultAsyncTransport(): AsyncTransportConfig {
  return {
    type: Transport.ASYNC,
    callTimeoutMs: ASYNC_DEFAULTS.callTimeoutMs,
    connectTimeoutMs: ASYNC_DEFAULTS.connectTimeoutMs,
    poolTtlMs: ASYNC_DEFAULTS.poolTtlMs,
    poolSizeMax: ASYNC_DEFAULTS.poolSizeMax,
    payloadBytesMax: ASYNC_DEFAULTS.payloadBytesMax,
    tls: { trustCaCerts: undefined, client: undefined },
    signingKey: undefined,
  };
}

function parseTransport(
  r: Reader,
  entry: Entry,
  context: EndpointContext,
  urlPathTemplate: string | undefined,
): TransportConfig | undefined {
  const transport = r.map(entry, "a mapping with the transport's type and options");
  if (transport === undefined) return undefined;
  const typeEntry = r.optional(transport, "type");
  let type: string = Transport.ASYNC;
  if (typeEntry !== undefined) {
    const text = r.string(typeEntry, TRANSPORT_EXPECTED);
    if (text === undefined) return undefined;
    type = text;
  }
  if (type === Transport.OKHTTP) {
    r.checkKeys(transport, [...OKHTTP_KEYS, ...ASYNC_KEYS]);
    for (const key of ASYNC_KEYS) {
      const ignored = key === "type" || key === "timeouts" ? undefined : transport.entries.get(key);
      if (ignored !== undefined) {
        r.warn(
          ConfigWarningCode.IGNORED,
          ignored.key,
          ignored.path,
          `${key} applies only to the async transport and is ignored by okhttp${key === "call" || key === "connect" ? `; use timeouts.${key}` : ""}`,
        );
      }
    }
    return parseOkHttp(r, r.optional(transport, "timeouts"));
  }
  if (type !== Transport.ASYNC) {
    r.error(
      ConfigErrorCode.INVALID_VALUE,
      typeEntry === undefined ? transport.anchor : r.where(typeEntry),
      child(transport.path, "type"),
      `unknown transport ${quote(type)}`,
      TRANSPORT_EXPECTED,
    );
    return undefined;
  }
  r.checkKeys(transport, ASYNC_KEYS);
  return parseAsync(r, transport, context, urlPathTemplate);
}

function parseAsync(
  r: Reader,
  transport: MapView,
  context: EndpointContext,
  urlPathTemplate: string | undefined,
): AsyncTransportConfig | undefined {
  let callTimeoutMs: number | undefined;
  let connectTimeoutMs: number | undefined;
  const timeoutsEntry = r.optional(transport, "timeouts");
  if (timeoutsEntry !== undefined) {
    // StateFun's migration path: a nested `timeouts` object wins over the flat keys, with its own defaults.
    const timeouts = r.map(timeoutsEntry, "a mapping with call and connect timeouts");
    if (timeouts === undefined) return undefined;
    r.checkKeys(timeouts, OKHTTP_TIMEOUT_KEYS);
    for (const key of ["read", "write"] as const) {
      const ignored = timeouts.entries.get(key);
      if (ignored !== undefined) {
        r.warn(ConfigWarningCode.IGNORED, ignored.key, ignored.path, `${key} is ignored by the async transport`);
      }
    }
    for (const key of ASYNC_TIMEOUT_KEYS) {
      const shadowed = transport.entries.get(key);
      if (shadowed !== undefined) {
        r.warn(
          ConfigWarningCode.IGNORED,
          shadowed.key,
          shadowed.path,
          `ignored because ${child(transport.path, "timeouts")} is present and wins`,
        );
      }
    }
    callTimeoutMs = optionalDuration(r, timeouts, "call", ASYNC_DEFAULTS.nestedCallTimeoutMs, false);
    connectTimeoutMs = optionalDuration(r, timeouts, "connect", ASYNC_DEFAULTS.nestedConnectTimeoutMs, false);
  } else {
    callTimeoutMs = optionalDuration(r, transport, "call", ASYNC_DEFAULTS.callTimeoutMs, false);
    connectTimeoutMs = optionalDuration(r, transport, "connect", ASYNC_DEFAULTS.connectTimeoutMs, false);
  }
  const poolTtlMs = optionalDuration(r, transport, "pool_ttl", ASYNC_DEFAULTS.poolTtlMs, true);
  const poolSizeEntry = r.optional(transport, "pool_size");
  const poolSizeMax =
    poolSizeEntry === undefined
      ? ASYNC_DEFAULTS.poolSizeMax
      : r.integer(poolSizeEntry, "a positive number of connections per endpoint, default 1024", 1, INT32_MAX);
  const payloadEntry = r.optional(transport, "payload_max_bytes");
  const payloadBytesMax =
    payloadEntry === undefined
      ? ASYNC_DEFAULTS.payloadBytesMax
      : r.integer(payloadEntry, "a positive number of bytes, default 33554432 (32 MiB)", 1, INT32_MAX);
  const tls = parseTls(r, transport, context, urlPathTemplate);
  const signingEntry = r.optional(transport, "signing_key");
  const signingKey = signingEntry === undefined ? undefined : parseFileReference(r, signingEntry, context);
  if (
    (signingEntry !== undefined && signingKey === undefined) ||
    callTimeoutMs === undefined ||
    connectTimeoutMs === undefined ||
    poolTtlMs === undefined ||
    poolSizeMax === undefined ||
    payloadBytesMax === undefined ||
    tls === undefined
  ) {
    return undefined;
  }
  return {
    type: Transport.ASYNC,
    callTimeoutMs,
    connectTimeoutMs,
    poolTtlMs,
    poolSizeMax,
    payloadBytesMax,
    tls,
    signingKey,
  };
}

function optionalDuration(
  r: Reader,
  map: MapView,
  key: string,
  defaultMs: number,
  allowZero: boolean,
): number | undefined {
  const entry = r.optional(map, key);
  return entry === undefined ? defaultMs : r.duration(entry, { allowZero });
}

/** OkHttp timeouts (v2 `transport.timeouts`, v1 `spec.timeouts`): each sub-timeout at most the call timeout. */
function parseOkHttp(r: Reader, entry: Entry | undefined): OkHttpTransportConfig | undefined {
  if (entry === undefined) return { type: Transport.OKHTTP, ...OKHTTP_DEFAULTS };
  const timeouts = r.map(entry, "a mapping with call, connect, read and write timeouts");
  if (timeouts === undefined) return undefined;
  r.checkKeys(timeouts, OKHTTP_TIMEOUT_KEYS);
  const callTimeoutMs = optionalDuration(r, timeouts, "call", OKHTTP_DEFAULTS.callTimeoutMs, false);
  const connectTimeoutMs = optionalDuration(r, timeouts, "connect", OKHTTP_DEFAULTS.connectTimeoutMs, false);
  const readTimeoutMs = optionalDuration(r, timeouts, "read", OKHTTP_DEFAULTS.readTimeoutMs, false);
  const writeTimeoutMs = optionalDuration(r, timeouts, "write", OKHTTP_DEFAULTS.writeTimeoutMs, false);
  if (callTimeoutMs === undefined) return undefined;
  const subs = [
    ["connect", connectTimeoutMs],
    ["read", readTimeoutMs],
    ["write", writeTimeoutMs],
  ] as const;
  let ok = true;
  const defaultsTooLong: string[] = [];
  for (const [key, ms] of subs) {
    if (ms === undefined) {
      ok = false;
      continue;
    }
    if (ms <= callTimeoutMs) continue;
    ok = false;
    const subEntry = r.optional(timeouts, key);
    if (subEntry === undefined) {
      defaultsTooLong.push(key);
      continue;
    }
    r.error(
      ConfigErrorCode.INVALID_VALUE,
      r.where(subEntry),
      subEntry.path,
      `${key} timeout ${formatDuration(ms)} is longer than the call timeout ${formatDuration(callTimeoutMs)}`,
      `at most the call timeout (${formatDuration(callTimeoutMs)})`,
    );
  }
  const callEntry = r.optional(timeouts, "call");
  // The connect, read and write defaults are all 10 s.
  if (defaultsTooLong.length > 0 && callEntry !== undefined) {
    const names = defaultsTooLong.join(" and ").replace(" and ", defaultsTooLong.length > 2 ? ", " : " and ");
    const plural = defaultsTooLong.length > 1 ? "timeouts" : "timeout";
    r.error(
      ConfigErrorCode.INVALID_VALUE,
      r.where(callEntry),
      callEntry.path,
      `call timeout ${formatDuration(callTimeoutMs)} is shorter than the default ${names} ${plural} (${formatDuration(OKHTTP_DEFAULTS.connectTimeoutMs)})`,
      `a call timeout of at least ${formatDuration(OKHTTP_DEFAULTS.connectTimeoutMs)}, or explicit ${names} ${plural} no longer than the call timeout`,
    );
  }
  if (!ok || connectTimeoutMs === undefined || readTimeoutMs === undefined || writeTimeoutMs === undefined) {
    return undefined;
  }
  return { type: Transport.OKHTTP, callTimeoutMs, connectTimeoutMs, readTimeoutMs, writeTimeoutMs };
}

const TLS_FILE_EXPECTED = "a file path, e.g. file:/certs/ca.pem or certs/ca.pem (relative to the module file)";

function parseTls(
  r: Reader,
  transport: MapView,
  context: EndpointContext,
  urlPathTemplate: string | undefined,
): TlsConfig | undefined {
  let ok = true;
  const file = (key: string): FileReference | undefined => {
    const entry = r.optional(transport, key);
    if (entry === undefined) return undefined;
    const reference = parseFileReference(r, entry, context);
    if (reference === undefined) ok = false;
    return reference;
  };
  const trustCaCerts = file("trust_cacerts");
  const cert = file("client_cert");
  const key = file("client_key");
  const keyPassword = file("client_key_password");
  const certEntry = r.optional(transport, "client_cert");
  const keyEntry = r.optional(transport, "client_key");
  if (certEntry !== undefined && keyEntry === undefined) {
    r.error(
      ConfigErrorCode.MISSING_FIELD,
      r.where(certEntry),
      certEntry.path,
      "client_cert is given without client_key",
      "client_cert and client_key together (mutual TLS), or neither",
    );
    ok = false;
  }
  if (keyEntry !== undefined && certEntry === undefined) {
    r.error(
      ConfigErrorCode.MISSING_FIELD,
      r.where(keyEntry),
      keyEntry.path,
      "client_key is given without client_cert",
      "client_cert and client_key together (mutual TLS), or neither",
    );
    ok = false;
  }
  const passwordEntry = r.optional(transport, "client_key_password");
  if (passwordEntry !== undefined && keyEntry === undefined) {
    r.warn(ConfigWarningCode.IGNORED, passwordEntry.key, passwordEntry.path, "ignored without client_key");
  }
  const anyTls = trustCaCerts !== undefined || certEntry !== undefined || keyEntry !== undefined;
  if (anyTls && urlPathTemplate !== undefined && /^http(\+unix)?:/i.test(urlPathTemplate)) {
    const first = r.optional(transport, "trust_cacerts") ?? certEntry ?? keyEntry;
    r.warn(
      ConfigWarningCode.IGNORED,
      first?.key,
      first?.path ?? transport.path,
      "TLS options have no effect: urlPathTemplate is not an https URL",
    );
  }
  if (!ok) return undefined;
  return {
    trustCaCerts,
    client: cert !== undefined && key !== undefined ? { cert, key, keyPassword } : undefined,
  };
}

/** `file:/abs`, `file:///abs`, `file:rel`, or a plain path; `classpath:` has no meaning outside the JVM. */
function parseFileReference(r: Reader, entry: Entry, context: EndpointContext): FileReference | undefined {
  const text = r.string(entry, TLS_FILE_EXPECTED);
  if (text === undefined) return undefined;
  if (text.startsWith("classpath:")) {
    r.error(
      ConfigErrorCode.INVALID_VALUE,
      r.where(entry),
      entry.path,
      `${quote(text)} names a JVM classpath resource, which Eddy cannot read`,
      TLS_FILE_EXPECTED,
    );
    return undefined;
  }
  let path = text;
  if (text.startsWith("file://")) {
    try {
      path = fileURLToPath(text);
    } catch {
      r.error(
        ConfigErrorCode.INVALID_VALUE,
        r.where(entry),
        entry.path,
        `${quote(text)} is not a file URL`,
        TLS_FILE_EXPECTED,
      );
      return undefined;
    }
  } else if (text.startsWith("file:")) {
    path = text.slice("file:".length);
  }
  if (path === "") {
    r.error(ConfigErrorCode.MISSING_FIELD, r.where(entry), entry.path, "the path is empty", TLS_FILE_EXPECTED);
    return undefined;
  }
  return {
    path: isAbsolute(path) ? path : resolve(context.baseDir, path),
    source: r.locateField(entry),
  };
}
