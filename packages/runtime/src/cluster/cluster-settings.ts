// What a cluster worker is started with, read from the words of `eddy run --cluster`: the
// cluster's brokers and name (one kafka:// URL), the worker's id (given, or kept in the state
// directory so that a restarted worker rejoins as the same static member and gets its
// partitions back), the URL other workers reach it at, and the Kafka client properties of the
// cluster's own connection (a Java .properties file, read as the Kafka connectors read theirs).
// Everything here is a pure check returning a Result, except reading the two files.
import { randomBytes } from "node:crypto";
import { closeSync, fsyncSync, linkSync, mkdirSync, openSync, readFileSync, unlinkSync, writeSync } from "node:fs";
import { isIPv6 } from "node:net";
import { join } from "node:path";
import { Kind, type ModuleConfig } from "../config/types.ts";
import { failure, type Result, success } from "../errors.ts";
import { ignoredProperties, type KafkaConnection, kafkaConnection } from "../io/kafka/client-options.ts";
import { clusterTopicNames } from "./cluster-topics.ts";

export interface ClusterSettings {
  /** The cluster's name: its topics `eddy.<name>.inbox` and `.changelog`, its group `eddy.<name>`. */
  readonly name: string;
  /** The brokers of the URL, the --cluster-config security settings, client id `eddy-<workerId>`. */
  readonly connection: KafkaConnection;
  /** group.instance.id and the transactional id's suffix: the same id after a restart keeps the partitions. */
  readonly workerId: string;
  /** Where other workers reach this worker's HTTP ingress: origin and path, no trailing slash. */
  readonly advertiseUrl: string;
  /**
   * Where other workers reach this worker's admin listener (--admin-advertise); default: the
   * advertised ingress URL's host, at the admin listener's port (defaultAdminAdvertiseUrl).
   */
  readonly adminAdvertiseUrl?: string | undefined;
}

/** The brokers and the name a `kafka://HOST:PORT[,HOST:PORT…]/NAME` URL gives. */
export interface ClusterAddress {
  /** `host:port` each, as Kafka's bootstrap.servers lists them. */
  readonly brokers: readonly string[];
  readonly name: string;
}

const URL_FORM = "kafka://HOST:PORT[,HOST:PORT…]/NAME";
const SCHEME = "kafka://";

export function parseClusterUrl(text: string): Result<ClusterAddress, "cluster-url-invalid"> {
  const invalid = (why: string) => failure("cluster-url-invalid", `${text}: ${why}`, false);
  if (!text.toLowerCase().startsWith(SCHEME)) return invalid(`expected ${URL_FORM}`);
  const rest = text.slice(SCHEME.length);
  const slash = rest.indexOf("/");
  const brokersText = slash === -1 ? rest : rest.slice(0, slash);
  if (brokersText === "") return invalid(`no brokers before the cluster name (${URL_FORM})`);
  const brokers: string[] = [];
  for (const broker of brokersText.split(",")) {
    const checked = checkBroker(broker);
    if (!checked.ok) return invalid(checked.message);
    brokers.push(checked.value);
  }
  const name = slash === -1 ? "" : rest.slice(slash + 1);
  if (name === "") return invalid(`no cluster name after the brokers (${URL_FORM})`);
  const names = clusterTopicNames(name);
  if (!names.ok) return invalid(names.message);
  return success({ brokers, name });
}

function checkBroker(text: string): Result<string, "broker-invalid"> {
  const invalid = (why: string) => failure("broker-invalid", why, false);
  if (text === "") return invalid(`an empty broker in the list (${URL_FORM})`);
  const colon = text.lastIndexOf(":");
  const host = colon === -1 ? text : text.slice(0, colon);
  const port = colon === -1 ? "" : text.slice(colon + 1);
  const bracketed = /^\[([^\]]*)\]$/.exec(host);
  const hostValid = bracketed === null ? /^[A-Za-z0-9._-]+$/.test(host) : isIPv6(bracketed[1] as string);
  if (colon === -1 || (bracketed === null && host.includes(":"))) {
    return invalid(`broker ${JSON.stringify(text)} has no port (HOST:PORT, an IPv6 address in brackets)`);
  }
  if (!hostValid)
    return invalid(`broker ${JSON.stringify(text)}: ${JSON.stringify(host)} is not a host name or address`);
  if (!/^\d{1,5}$/.test(port) || Number(port) < 1 || Number(port) > 65535) {
    return invalid(`broker ${JSON.stringify(text)}: port ${JSON.stringify(port)} is not from 1 to 65535`);
  }
  return success(`${host}:${Number(port)}`);
}

/**
 * Kafka's rule for a group.instance.id, which the worker id is (and the end of its
 * transactional id): its Java client refuses more than 249 characters, "." and "..", and any
 * character but ASCII letters, digits, '.', '_' and '-'.
 */
const WORKER_ID = /^[A-Za-z0-9._-]{1,249}$/;

export function checkWorkerId(id: string): Result<string, "worker-id-invalid"> {
  if (!WORKER_ID.test(id) || id === "." || id === "..") {
    return failure(
      "worker-id-invalid",
      `${JSON.stringify(id)} is not a worker id: expected 1 to 249 of the letters a-z A-Z, digits, '.', '_' and '-' (not "." or "..")`,
      false,
    );
  }
  return success(id);
}

/** A worker id nobody chose: `w-` and 8 hex digits (4 random bytes). */
export function randomWorkerId(): string {
  return `w-${randomBytes(4).toString("hex")}`;
}

export const WORKER_ID_FILE = "worker-id";

/**
 * The worker id kept in `<stateDir>/worker-id`, made (with `newId`) on the first start. The
 * file appears whole or not at all (written and synced under another name, then linked into
 * place, which fails if it exists), so two starts racing agree on one id and a crash never
 * leaves an empty file behind. A file that holds no valid id is refused, never replaced: the
 * id is the worker's identity in the group.
 */
export function persistedWorkerId(
  stateDir: string,
  newId: () => string = randomWorkerId,
): Result<{ readonly workerId: string; readonly created: boolean }, "worker-id-file"> {
  const path = join(stateDir, WORKER_ID_FILE);
  const unusable = (why: string) => failure("worker-id-file", `${path}: ${why}`, false);
  const existing = readWorkerIdFile(path);
  if (existing.ok) return success({ workerId: existing.value, created: false });
  if (existing.code !== "missing") return unusable(existing.message);
  const workerId = newId();
  const checked = checkWorkerId(workerId);
  if (!checked.ok) throw new RangeError(`a new worker id is invalid: ${checked.message}`);
  const temporary = `${path}.${process.pid}.tmp`;
  try {
    mkdirSync(stateDir, { recursive: true });
    const fd = openSync(temporary, "w");
    try {
      writeSync(fd, `${workerId}\n`);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    try {
      linkSync(temporary, path);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== "EEXIST") throw error;
      // Another start made it first: its id is the one.
      const theirs = readWorkerIdFile(path);
      return theirs.ok ? success({ workerId: theirs.value, created: false }) : unusable(theirs.message);
    }
    syncDirectory(stateDir);
  } catch (error) {
    return unusable(`cannot write the worker id: ${(error as Error).message}`);
  } finally {
    try {
      unlinkSync(temporary);
    } catch {
      // Never made, or already gone.
    }
  }
  return success({ workerId, created: true });
}

function readWorkerIdFile(path: string): Result<string, "missing" | "unreadable" | "invalid"> {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    return failure(code === "ENOENT" ? "missing" : "unreadable", (error as Error).message, false);
  }
  const checked = checkWorkerId(text.trim());
  if (!checked.ok) return failure("invalid", `${checked.message}; correct the file or delete it for a new id`, false);
  return checked;
}

/** The link is durable once the directory's entry is: until then a crash could lose the id. */
function syncDirectory(directory: string): void {
  const fd = openSync(directory, "r");
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

/** An http(s) URL other workers can reach, as `origin[/path]` without a trailing slash. */
export function checkAdvertiseUrl(text: string): Result<string, "advertise-url-invalid"> {
  const invalid = (why: string) => failure("advertise-url-invalid", `${JSON.stringify(text)}: ${why}`, false);
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    return invalid("not a URL; expected http://HOST:PORT or https://HOST:PORT");
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") {
    return invalid(`${url.protocol.slice(0, -1)} is not http or https; other workers reach this one over HTTP`);
  }
  if (url.hostname === "") return invalid("no host");
  if (url.username !== "" || url.password !== "") return invalid("credentials do not belong in the URL");
  if (url.search !== "" || url.hash !== "") return invalid("no query or fragment: other workers add their own path");
  return success(`${url.origin}${url.pathname.replace(/\/+$/, "")}`);
}

/**
 * Where other workers reach this one when --advertise is not given: the playground ingress's
 * port (with the offset), on the host the ingress binds to, or 127.0.0.1 when it binds to
 * every interface (only workers on this machine reach that). Without a playground ingress, or
 * with port 0 (picked when it listens), the URL has no port.
 */
export function defaultAdvertiseUrl(module: ModuleConfig, portOffset: number, bindHost: string | undefined): string {
  const wildcard = bindHost === undefined || bindHost === "" || bindHost === "0.0.0.0" || bindHost === "::";
  const host = wildcard ? "127.0.0.1" : isIPv6(bindHost) ? `[${bindHost}]` : bindHost;
  const ingress = module.ingresses.find((config) => config.kind === Kind.PLAYGROUND_INGRESS);
  if (ingress === undefined || ingress.port === 0) return `http://${host}`;
  return `http://${host}:${ingress.port + portOffset}`;
}

/**
 * Where other workers reach this worker's admin listener when --admin-advertise is not given:
 * the host other workers reach its ingress at (--advertise), at the port the admin listener
 * took (`adminUrl`, as it listens).
 */
export function defaultAdminAdvertiseUrl(advertiseUrl: string, adminUrl: string): string {
  const advertised = new URL(advertiseUrl);
  const admin = new URL(adminUrl);
  return `http://${advertised.hostname}${admin.port === "" ? "" : `:${admin.port}`}`;
}

/** The most lines a properties file may have: a guard, far above any client configuration. */
const PROPERTIES_LINES_MAX = 100_000;

/**
 * A Java .properties text (java.util.Properties.load): `key=value`, `key: value` or
 * `key value`; `#` and `!` comment lines; a line ending in an odd number of backslashes goes
 * on in the next (whose leading blanks are dropped); escapes \t \n \r \f \uXXXX, and a
 * backslash before any other character stands for that character. The last of a repeated key
 * wins. Only a malformed \u escape is an error, as in Java.
 */
export function parseJavaProperties(text: string): Result<Map<string, string>, "properties-malformed"> {
  const lines = text.replace(/^\uFEFF/, "").split(/\r\n|\r|\n/);
  if (lines.length > PROPERTIES_LINES_MAX) {
    return failure("properties-malformed", `more than ${PROPERTIES_LINES_MAX} lines`, false);
  }
  const properties = new Map<string, string>();
  for (let index = 0; index < lines.length; index++) {
    const lineNumber = index + 1;
    let logical = stripLeadingBlanks(lines[index] as string);
    if (logical === "" || logical.startsWith("#") || logical.startsWith("!")) continue;
    while (endsInContinuation(logical)) {
      logical = logical.slice(0, -1);
      index++;
      if (index >= lines.length) break;
      logical += stripLeadingBlanks(lines[index] as string);
    }
    const entry = splitEntry(logical);
    const key = unescapeProperty(entry.key);
    const value = unescapeProperty(entry.value);
    if (!key.ok) return failure("properties-malformed", `line ${lineNumber}: ${key.message}`, false);
    if (!value.ok) return failure("properties-malformed", `line ${lineNumber}: ${value.message}`, false);
    properties.set(key.value, value.value);
  }
  return success(properties);
}

const BLANK = new Set([" ", "\t", "\f"]);

function stripLeadingBlanks(line: string): string {
  let start = 0;
  while (start < line.length && BLANK.has(line[start] as string)) start++;
  return line.slice(start);
}

function endsInContinuation(line: string): boolean {
  let backslashes = 0;
  while (backslashes < line.length && line[line.length - 1 - backslashes] === "\\") backslashes++;
  return backslashes % 2 === 1;
}

/** The key ends at the first unescaped '=', ':' or blank; blanks and one separator after it are skipped. */
function splitEntry(line: string): { readonly key: string; readonly value: string } {
  let keyEnd = 0;
  let separated = false;
  let escaped = false;
  while (keyEnd < line.length) {
    const char = line[keyEnd] as string;
    if (!escaped && (char === "=" || char === ":")) {
      separated = true;
      break;
    }
    if (!escaped && BLANK.has(char)) break;
    escaped = char === "\\" ? !escaped : false;
    keyEnd++;
  }
  let valueStart = keyEnd < line.length ? keyEnd + 1 : keyEnd;
  while (valueStart < line.length) {
    const char = line[valueStart] as string;
    if (!BLANK.has(char)) {
      if (separated || (char !== "=" && char !== ":")) break;
      separated = true;
    }
    valueStart++;
  }
  return { key: line.slice(0, keyEnd), value: line.slice(valueStart) };
}

const ESCAPED: Readonly<Record<string, string>> = { t: "\t", n: "\n", r: "\r", f: "\f" };

function unescapeProperty(text: string): Result<string, "escape-malformed"> {
  if (!text.includes("\\")) return success(text);
  let out = "";
  for (let index = 0; index < text.length; index++) {
    const char = text[index] as string;
    if (char !== "\\") {
      out += char;
      continue;
    }
    index++;
    // A backslash ending the text (the file's last line went on into nothing) stands for nothing.
    if (index >= text.length) break;
    const next = text[index] as string;
    if (next === "u") {
      const hex = text.slice(index + 1, index + 5);
      if (!/^[0-9A-Fa-f]{4}$/.test(hex)) {
        return failure("escape-malformed", `malformed \\uXXXX escape "\\u${hex}"`, false);
      }
      out += String.fromCharCode(Number.parseInt(hex, 16));
      index += 4;
    } else {
      out += ESCAPED[next] ?? next;
    }
  }
  return success(out);
}

/**
 * Reads a properties file. UTF-8 (Java reads such a file as ISO-8859-1; anything else than
 * ASCII is better written as \uXXXX, which both read alike): bytes that are not UTF-8 are
 * refused rather than guessed at.
 */
export function readPropertiesFile(
  path: string,
): Result<Map<string, string>, "properties-unreadable" | "properties-malformed"> {
  let bytes: Buffer;
  try {
    bytes = readFileSync(path);
  } catch (error) {
    return failure("properties-unreadable", `${path}: ${(error as Error).message}`, false);
  }
  let text: string;
  try {
    text = new TextDecoder("utf-8", { fatal: true }).decode(bytes);
  } catch {
    return failure("properties-malformed", `${path}: not UTF-8; write other characters as \\uXXXX`, false);
  }
  const parsed = parseJavaProperties(text);
  if (!parsed.ok) return failure("properties-malformed", `${path}: ${parsed.message}`, false);
  return parsed;
}

export interface ClusterSettingsInput {
  readonly address: ClusterAddress;
  readonly workerId: string;
  readonly advertiseUrl: string;
  readonly adminAdvertiseUrl?: string | undefined;
  /** The --cluster-config properties (empty without one). */
  readonly properties: ReadonlyMap<string, string>;
  /** Where the properties came from, for messages: the file's path. */
  readonly propertiesSource: string;
}

/**
 * The settings, with the properties the connection does not read (the caller warns about
 * them, as the Kafka connectors do: a file shared with other clients still works).
 */
export function clusterSettings(
  input: ClusterSettingsInput,
): Result<{ readonly settings: ClusterSettings; readonly ignored: readonly string[] }, "cluster-config-invalid"> {
  const connection = kafkaConnection(
    input.address.brokers.join(","),
    input.properties,
    `eddy-${input.workerId}`,
    input.propertiesSource,
  );
  if (!connection.ok) return failure("cluster-config-invalid", connection.error, false);
  return success({
    settings: {
      name: input.address.name,
      connection: connection.value,
      workerId: input.workerId,
      advertiseUrl: input.advertiseUrl,
      ...(input.adminAdvertiseUrl === undefined ? {} : { adminAdvertiseUrl: input.adminAdvertiseUrl }),
    },
    ignored: ignoredProperties(input.properties, []),
  });
}
