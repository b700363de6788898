// Kafka client properties as module.yaml writes them (the Java client's names, which StateFun
// passes through) turned into @platformatic/kafka connection options: bootstrap servers,
// client id, TLS (PEM or PKCS#12 files, or inline PEM) and SASL (PLAIN, SCRAM-SHA-256/512).
// The properties Eddy reads for its own fetching and producing are read here too, once; every
// property Eddy does not use is named back to the caller, which warns rather than refuses, so
// a module written for StateFun still starts.
import { readFileSync } from "node:fs";
import type { ConnectionOptions as TlsOptions } from "node:tls";
import { findErrorBy, type SASLOptions, UserError } from "@platformatic/kafka";

export interface KafkaConnection {
  readonly clientId: string;
  readonly bootstrapBrokers: string[];
  readonly tls?: TlsOptions;
  readonly sasl?: SASLOptions;
  /** request.timeout.ms */
  readonly requestTimeout?: number;
  /** socket.connection.setup.timeout.ms */
  readonly connectTimeout?: number;
}

import type { Parsed } from "../parsed.ts";

export type { Parsed };

/** Properties that only the Java client or Flink understands and that Eddy can safely ignore. */
const IGNORED_QUIETLY = new Set([
  "key.deserializer",
  "value.deserializer",
  "key.serializer",
  "value.serializer",
  "enable.auto.commit",
  "auto.commit.interval.ms",
  "auto.offset.reset",
  "group.id",
]);

/**
 * Reads the properties an ingress or egress shares. `used` names the properties the caller
 * reads itself, so they are not reported as ignored.
 */
export function kafkaConnection(
  bootstrapServers: string,
  properties: ReadonlyMap<string, string>,
  defaultClientId: string,
  where: string,
): Parsed<KafkaConnection> {
  const get = (name: string) => properties.get(name)?.trim();
  const bootstrapBrokers = bootstrapServers
    .split(",")
    .map((server) => server.trim())
    .filter((server) => server !== "");
  const bad = bootstrapBrokers.find(
    (server) => !/^[^:\s]+:\d{1,5}$/.test(server) && !/^\[[^\]]+\]:\d{1,5}$/.test(server),
  );
  if (bootstrapBrokers.length === 0 || bad !== undefined) {
    return {
      ok: false,
      error: `${where}: bootstrap servers ${JSON.stringify(bootstrapServers)}: expected host:port[,host:port…]${bad === undefined ? "" : `; ${JSON.stringify(bad)} is not host:port`}`,
    };
  }
  const protocol = (get("security.protocol") ?? "PLAINTEXT").toUpperCase();
  if (!["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"].includes(protocol)) {
    return {
      ok: false,
      error: `${where}: security.protocol ${JSON.stringify(protocol)}: expected PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL`,
    };
  }
  const connection: {
    clientId: string;
    bootstrapBrokers: string[];
    tls?: TlsOptions;
    sasl?: SASLOptions;
    requestTimeout?: number;
    connectTimeout?: number;
  } = { clientId: get("client.id") ?? defaultClientId, bootstrapBrokers };
  if (protocol === "SSL" || protocol === "SASL_SSL") {
    const tls = tlsOptions(get, where);
    if (!tls.ok) return tls;
    connection.tls = tls.value;
  }
  if (protocol === "SASL_PLAINTEXT" || protocol === "SASL_SSL") {
    const sasl = saslOptions(get, where);
    if (!sasl.ok) return sasl;
    connection.sasl = sasl.value;
  }
  for (const [name, target] of [
    ["request.timeout.ms", "requestTimeout"],
    ["socket.connection.setup.timeout.ms", "connectTimeout"],
  ] as const) {
    const value = milliseconds(get(name), name, where);
    if (!value.ok) return value;
    if (value.value !== undefined) connection[target] = value.value;
  }
  return { ok: true, value: connection };
}

/** Properties in `properties` that neither the connection nor the caller (`used`) reads. */
export function ignoredProperties(properties: ReadonlyMap<string, string>, used: readonly string[]): string[] {
  const read = new Set([...CONNECTION_PROPERTIES, ...used]);
  return [...properties.keys()].filter((name) => !read.has(name) && !IGNORED_QUIETLY.has(name)).sort();
}

const CONNECTION_PROPERTIES = [
  "client.id",
  "security.protocol",
  "request.timeout.ms",
  "socket.connection.setup.timeout.ms",
  "sasl.mechanism",
  "sasl.jaas.config",
  "ssl.truststore.type",
  "ssl.truststore.location",
  "ssl.truststore.certificates",
  "ssl.truststore.password",
  "ssl.keystore.type",
  "ssl.keystore.location",
  "ssl.keystore.password",
  "ssl.keystore.key",
  "ssl.keystore.certificate.chain",
  "ssl.key.password",
  "ssl.endpoint.identification.algorithm",
];

/** A non-negative whole number of milliseconds, or undefined when the property is absent. */
export function milliseconds(text: string | undefined, name: string, where: string): Parsed<number | undefined> {
  if (text === undefined) return { ok: true, value: undefined };
  const value = Number(text);
  if (!/^\d+$/.test(text) || !Number.isSafeInteger(value)) {
    return { ok: false, error: `${where}: ${name} ${JSON.stringify(text)}: expected a whole number of milliseconds` };
  }
  return { ok: true, value };
}

/** A positive whole number, or undefined when the property is absent. */
export function positiveCount(text: string | undefined, name: string, where: string): Parsed<number | undefined> {
  if (text === undefined) return { ok: true, value: undefined };
  const value = Number(text);
  if (!/^\d+$/.test(text) || !Number.isSafeInteger(value) || value === 0) {
    return { ok: false, error: `${where}: ${name} ${JSON.stringify(text)}: expected a whole number above 0` };
  }
  return { ok: true, value };
}

function readFile(path: string, name: string, where: string): Parsed<Buffer> {
  try {
    return { ok: true, value: readFileSync(path) };
  } catch (error) {
    return { ok: false, error: `${where}: ${name} ${path}: ${(error as Error).message}` };
  }
}

function tlsOptions(get: (name: string) => string | undefined, where: string): Parsed<TlsOptions> {
  const tls: TlsOptions = {};
  const trustType = (get("ssl.truststore.type") ?? "PEM").toUpperCase();
  const trustLocation = get("ssl.truststore.location");
  const trustInline = get("ssl.truststore.certificates");
  if (trustLocation !== undefined || trustInline !== undefined) {
    if (trustType !== "PEM") {
      return {
        ok: false,
        error: `${where}: ssl.truststore.type ${trustType} is not supported; give the CA certificates as PEM (ssl.truststore.type: PEM with ssl.truststore.location or ssl.truststore.certificates)`,
      };
    }
    if (trustInline !== undefined) tls.ca = trustInline;
    else {
      const file = readFile(trustLocation as string, "ssl.truststore.location", where);
      if (!file.ok) return file;
      tls.ca = file.value;
    }
  }
  const keyType = (get("ssl.keystore.type") ?? "PEM").toUpperCase();
  const keyLocation = get("ssl.keystore.location");
  const keyPassword = get("ssl.key.password") ?? get("ssl.keystore.password");
  if (keyType === "PKCS12" && keyLocation !== undefined) {
    const file = readFile(keyLocation, "ssl.keystore.location", where);
    if (!file.ok) return file;
    tls.pfx = file.value;
    const password = get("ssl.keystore.password");
    if (password !== undefined) tls.passphrase = password;
  } else if (keyType === "PEM") {
    const inlineKey = get("ssl.keystore.key");
    const inlineChain = get("ssl.keystore.certificate.chain");
    if (inlineKey !== undefined || inlineChain !== undefined) {
      if (inlineKey === undefined || inlineChain === undefined) {
        return {
          ok: false,
          error: `${where}: ssl.keystore.key and ssl.keystore.certificate.chain go together (a PEM key and its certificate chain)`,
        };
      }
      tls.key = inlineKey;
      tls.cert = inlineChain;
    } else if (keyLocation !== undefined) {
      // One PEM file holding the private key and the certificate chain, as the Java client takes it.
      const file = readFile(keyLocation, "ssl.keystore.location", where);
      if (!file.ok) return file;
      tls.key = file.value;
      tls.cert = file.value;
    }
    if (keyPassword !== undefined && (tls.key !== undefined || tls.pfx !== undefined)) tls.passphrase = keyPassword;
  } else if (keyLocation !== undefined) {
    return {
      ok: false,
      error: `${where}: ssl.keystore.type ${keyType} is not supported; use PEM or PKCS12`,
    };
  }
  if (get("ssl.endpoint.identification.algorithm") === "") tls.checkServerIdentity = () => undefined;
  return { ok: true, value: tls };
}

const JAAS_MODULES: Record<string, string> = {
  PLAIN: "org.apache.kafka.common.security.plain.PlainLoginModule",
  "SCRAM-SHA-256": "org.apache.kafka.common.security.scram.ScramLoginModule",
  "SCRAM-SHA-512": "org.apache.kafka.common.security.scram.ScramLoginModule",
};

function saslOptions(get: (name: string) => string | undefined, where: string): Parsed<SASLOptions> {
  const mechanism = (get("sasl.mechanism") ?? "GSSAPI").toUpperCase();
  const module = JAAS_MODULES[mechanism];
  if (module === undefined) {
    return {
      ok: false,
      error: `${where}: sasl.mechanism ${mechanism} is not supported; Eddy speaks PLAIN, SCRAM-SHA-256 and SCRAM-SHA-512`,
    };
  }
  const jaas = get("sasl.jaas.config");
  if (jaas === undefined) {
    return {
      ok: false,
      error: `${where}: sasl.mechanism ${mechanism} needs sasl.jaas.config, e.g. ${module} required username="…" password="…";`,
    };
  }
  const options = parseJaas(jaas);
  if (options.module !== module || options.username === undefined || options.password === undefined) {
    return {
      ok: false,
      error: `${where}: sasl.jaas.config: expected ${module} required username="…" password="…"; for ${mechanism}`,
    };
  }
  return {
    ok: true,
    value: {
      mechanism: mechanism as SASLOptions["mechanism"],
      username: options.username,
      password: options.password,
    },
  };
}

/** `<module> required key="value" …;` — the login module and its options. */
export function parseJaas(text: string): { module?: string; username?: string; password?: string } {
  const match = /^\s*([\w.$]+)\s+(required|requisite|sufficient|optional)\s+(.*?);?\s*$/s.exec(text);
  if (match === null) return {};
  const result: { module?: string; username?: string; password?: string } = { module: match[1] as string };
  for (const option of (match[3] as string).matchAll(/([\w.]+)\s*=\s*"((?:[^"\\]|\\.)*)"/g)) {
    const value = (option[2] as string).replace(/\\(.)/g, "$1");
    if (option[1] === "username") result.username = value;
    if (option[1] === "password") result.password = value;
  }
  return result;
}

/** A client error in one line, with the causes the client collects. */
export function describe(error: unknown): string {
  return reason(error) ?? String(error);
}

/**
 * The message of `error` and, in parentheses, of what caused it: the last of its `errors`
 * (the client's "failed N times" wraps each attempt's error) or else its `cause` (a failed
 * connection wraps the TLS or SASL failure, and that the broker's own errorMessage). Links
 * that add nothing are skipped.
 */
function reason(error: unknown, depth = 0): string | undefined {
  if (depth > 8) return undefined;
  if (!(error instanceof Error)) {
    const message = (error as { errorMessage?: unknown } | null | undefined)?.errorMessage;
    return typeof message === "string" && message !== "" ? message : undefined;
  }
  const causes = (error as { errors?: unknown[] }).errors;
  const next = Array.isArray(causes) && causes.length > 0 ? causes.at(-1) : error.cause;
  const inner = reason(next, depth + 1) ?? reason((error as { response?: unknown }).response, depth + 1);
  if (inner === undefined || error.message.includes(inner)) return error.message;
  return inner.includes(error.message) ? inner : `${error.message} (${inner})`;
}

/** Kafka's UNKNOWN_TOPIC_OR_PARTITION (error code 3). */
const UNKNOWN_TOPIC_OR_PARTITION = 3;

/**
 * Whether the cluster said the topic does not exist: Kafka's UNKNOWN_TOPIC_OR_PARTITION
 * wherever the client kept it. A metadata request does not keep it: @platformatic/kafka
 * (2.x, clients/base/base.js) replaces that protocol error with a UserError "Unknown topic
 * <name>." that carries no Kafka code, so that one error is known by its class and the
 * client's fixed wording, and by nothing else.
 */
export function isUnknownTopic(error: unknown): boolean {
  if (findErrorBy(error as Error, "apiCode", UNKNOWN_TOPIC_OR_PARTITION) !== null) return true;
  return error instanceof UserError && error.message.startsWith("Unknown topic ");
}
