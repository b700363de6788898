// StateFun's Kinesis ingress and egress kinds (statefun-protocol.md §4.4–4.5), read with every
// option and its StateFun default: AWS region and credentials (default provider chain unless
// given), startup position, streams with valueType and targets, raw client properties, and the
// egress's bound on outstanding records.
import { propertyList, routingFields, typenameField } from "./component-fields.ts";
import { parseKafkaDate } from "./kafka.ts";
import type { Entry, MapView, Reader } from "./reader.ts";
import { quote } from "./reader.ts";
import {
  KINESIS_EGRESS_MAX_OUTSTANDING_RECORDS_DEFAULT,
  Kind,
  type KinesisCredentials,
  type KinesisEgressConfig,
  type KinesisIngressConfig,
  type KinesisIngressStream,
  type KinesisRegion,
  type KinesisStartupPosition,
} from "./types.ts";

const INGRESS_KEYS = [
  "id",
  "awsRegion",
  "awsCredentials",
  "startupPosition",
  "streams",
  "clientConfigProperties",
] as const;
const EGRESS_KEYS = ["id", "awsRegion", "awsCredentials", "maxOutstandingRecords", "clientConfigProperties"] as const;
const STREAM_KEYS = ["stream", "valueType", "targets"] as const;
const REGION_TYPES = ["default", "specific", "custom-endpoint"] as const;
const CREDENTIAL_TYPES = ["default", "basic", "profile"] as const;
const STARTUP_TYPES = ["latest", "earliest", "date"] as const;
/** StateFun reads maxOutstandingRecords into a Java int. */
const JAVA_INT_MAX = 2 ** 31 - 1;
/** Kinesis's own rule for stream names (the Kinesis egress checks records' streams with it too). */
export const STREAM_NAME = /^[a-zA-Z0-9_.-]{1,128}$/;

const ID_EXPECTED = "a typename such as com.example/users-in";
const PROPERTIES_EXPECTED = "a list of single-key maps, e.g. [{SocketTimeout: 9999}]";
const STREAMS_EXPECTED = "a non-empty list of {stream, valueType, targets}";
const STREAM_EXPECTED = "a Kinesis stream name: 1 to 128 of a-z, A-Z, 0-9, _ . -";
const DATE_EXPECTED = 'a date as "yyyy-MM-dd HH:mm:ss.SSS Z", e.g. "2020-02-01 04:15:00.000 +0000"';
const REGION_ID_EXPECTED = "an AWS region id, e.g. eu-west-1";
const ENDPOINT_EXPECTED =
  "an http(s) URL such as https://localhost:4567, or host:port (then https, as the AWS SDK assumes)";
const MAX_OUTSTANDING_EXPECTED = `a number of records larger than 0 (default ${KINESIS_EGRESS_MAX_OUTSTANDING_RECORDS_DEFAULT})`;

/** A required, non-empty string field of `map`. */
function requiredString(
  r: Reader,
  map: MapView,
  key: string,
  expected: string,
  known: readonly string[],
): string | undefined {
  const entry = r.require(map, key, expected, known);
  return entry === undefined ? undefined : r.string(entry, expected);
}

/** A `{type: …}` mapping whose type is one of `types`; any other type is reported as not a `what`. */
function typedMap<T extends string>(
  r: Reader,
  entry: Entry,
  what: string,
  types: readonly T[],
  known: readonly string[],
): { readonly map: MapView; readonly type: T } | undefined {
  const map = r.map(entry, `{type: ${types.join(" | ")}}`);
  if (map === undefined) return undefined;
  const typeEntry = r.require(map, "type", types.join(", "), known);
  const type = typeEntry === undefined ? undefined : r.string(typeEntry, types.join(", "));
  if (type === undefined || typeEntry === undefined) return undefined;
  if (!(types as readonly string[]).includes(type)) {
    r.error("invalid-value", r.where(typeEntry), typeEntry.path, `${quote(type)} is not ${what}`, types.join(", "));
    return undefined;
  }
  return { map, type: type as T };
}

/**
 * The AWS SDK for Java, which StateFun configures, takes an endpoint with or without its
 * scheme and assumes https without one; the URL is made whole here, once.
 */
function endpointUrl(text: string): string | undefined {
  const url = /^[a-z][a-z0-9+.-]*:\/\//i.test(text) ? URL.parse(text) : URL.parse(`https://${text}`);
  if (url === null || (url.protocol !== "http:" && url.protocol !== "https:") || url.hostname === "") {
    return undefined;
  }
  return url.href.endsWith("/") && !text.endsWith("/") ? url.href.slice(0, -1) : url.href;
}

function awsRegion(r: Reader, spec: MapView): KinesisRegion | undefined {
  const entry = r.optional(spec, "awsRegion");
  if (entry === undefined) return { type: "default" };
  const known = ["type", "id", "endpoint"];
  const typed = typedMap(r, entry, "a region type", REGION_TYPES, known);
  if (typed === undefined) return undefined;
  const { map, type } = typed;
  switch (type) {
    case "default":
      r.checkKeys(map, ["type"]);
      return { type };
    case "specific": {
      r.checkKeys(map, ["type", "id"]);
      const id = requiredString(r, map, "id", REGION_ID_EXPECTED, known);
      return id === undefined ? undefined : { type, id };
    }
    case "custom-endpoint": {
      r.checkKeys(map, known);
      const endpointEntry = r.require(map, "endpoint", ENDPOINT_EXPECTED, known);
      const text = endpointEntry === undefined ? undefined : r.string(endpointEntry, ENDPOINT_EXPECTED);
      const endpoint = text === undefined ? undefined : endpointUrl(text);
      if (text !== undefined && endpointEntry !== undefined && endpoint === undefined) {
        r.error(
          "invalid-value",
          r.where(endpointEntry),
          endpointEntry.path,
          `${quote(text)} is not an endpoint`,
          ENDPOINT_EXPECTED,
        );
      }
      const id = requiredString(r, map, "id", `the region to sign requests for, ${REGION_ID_EXPECTED}`, known);
      return endpoint === undefined || id === undefined ? undefined : { type, endpoint, id };
    }
  }
}

function awsCredentials(r: Reader, spec: MapView): KinesisCredentials | undefined {
  const entry = r.optional(spec, "awsCredentials");
  if (entry === undefined) return { type: "default" };
  const known = ["type", "accessKeyId", "secretAccessKey", "profileName", "profilePath"];
  const typed = typedMap(r, entry, "a credentials type", CREDENTIAL_TYPES, known);
  if (typed === undefined) return undefined;
  const { map, type } = typed;
  switch (type) {
    case "default":
      r.checkKeys(map, ["type"]);
      return { type };
    case "basic": {
      const keys = ["type", "accessKeyId", "secretAccessKey"];
      r.checkKeys(map, keys);
      const accessKeyId = requiredString(r, map, "accessKeyId", "an AWS access key id, e.g. AKIA…", keys);
      const secretAccessKey = requiredString(r, map, "secretAccessKey", "the AWS secret access key", keys);
      return accessKeyId === undefined || secretAccessKey === undefined
        ? undefined
        : { type, accessKeyId, secretAccessKey };
    }
    case "profile": {
      const keys = ["type", "profileName", "profilePath"];
      r.checkKeys(map, keys);
      const profileName = requiredString(r, map, "profileName", "the name of a profile in the credentials file", keys);
      const pathEntry = r.optional(map, "profilePath");
      const profilePath =
        pathEntry === undefined ? undefined : r.string(pathEntry, "the path of an AWS credentials file");
      if (profileName === undefined || (pathEntry !== undefined && profilePath === undefined)) return undefined;
      return { type, profileName, profilePath };
    }
  }
}

function startupPosition(r: Reader, spec: MapView): KinesisStartupPosition | undefined {
  const entry = r.optional(spec, "startupPosition");
  if (entry === undefined) return { type: "latest" };
  const typed = typedMap(r, entry, "a startup position", STARTUP_TYPES, ["type", "date"]);
  if (typed === undefined) return undefined;
  const { map, type } = typed;
  if (type !== "date") {
    r.checkKeys(map, ["type"]);
    return { type };
  }
  r.checkKeys(map, ["type", "date"]);
  const dateEntry = r.require(map, "date", DATE_EXPECTED, ["type", "date"]);
  const text = dateEntry === undefined ? undefined : r.string(dateEntry, DATE_EXPECTED);
  if (text === undefined || dateEntry === undefined) return undefined;
  const epochMs = parseKafkaDate(text);
  if (epochMs === undefined) {
    r.error("invalid-value", r.where(dateEntry), dateEntry.path, `${quote(text)} is not such a date`, DATE_EXPECTED);
    return undefined;
  }
  return { type, epochMs };
}

function parseStream(r: Reader, item: Entry, seen: Set<string>): KinesisIngressStream | undefined {
  const map = r.map(item, "{stream, valueType, targets}");
  if (map === undefined) return undefined;
  r.checkKeys(map, STREAM_KEYS);
  const streamEntry = r.require(map, "stream", STREAM_EXPECTED, STREAM_KEYS);
  let stream = streamEntry === undefined ? undefined : r.string(streamEntry, STREAM_EXPECTED);
  if (stream !== undefined && streamEntry !== undefined) {
    if (!STREAM_NAME.test(stream)) {
      r.error(
        "invalid-value",
        r.where(streamEntry),
        streamEntry.path,
        `${quote(stream)} is not a stream name`,
        STREAM_EXPECTED,
      );
      stream = undefined;
    } else if (seen.has(stream)) {
      r.error(
        "duplicate",
        r.where(streamEntry),
        streamEntry.path,
        `stream ${stream} is listed twice`,
        "each stream once",
      );
      return undefined;
    } else {
      seen.add(stream);
    }
  }
  const routing = routingFields(r, map, STREAM_KEYS, "the records' data");
  if (stream === undefined || routing === undefined) return undefined;
  return { stream, ...routing };
}

export function parseKinesisIngress(r: Reader, spec: MapView): KinesisIngressConfig | undefined {
  r.checkKeys(spec, INGRESS_KEYS);
  const idEntry = r.require(spec, "id", ID_EXPECTED, INGRESS_KEYS);
  const id = idEntry === undefined ? undefined : typenameField(r, idEntry, ID_EXPECTED);
  const region = awsRegion(r, spec);
  const credentials = awsCredentials(r, spec);
  const position = startupPosition(r, spec);
  const streamsEntry = r.require(spec, "streams", STREAMS_EXPECTED, INGRESS_KEYS);
  const items = streamsEntry === undefined ? undefined : r.list(streamsEntry, STREAMS_EXPECTED);
  if (streamsEntry !== undefined && items !== undefined && items.length === 0) {
    r.error("invalid-value", r.where(streamsEntry), streamsEntry.path, "no streams", STREAMS_EXPECTED);
  }
  const seen = new Set<string>();
  const streams = (items ?? []).map((item) => parseStream(r, item, seen));
  const props = propertyList(r, spec, "clientConfigProperties", PROPERTIES_EXPECTED);
  if (
    idEntry === undefined ||
    id === undefined ||
    region === undefined ||
    credentials === undefined ||
    position === undefined ||
    items === undefined ||
    items.length === 0 ||
    streams.includes(undefined) ||
    props === undefined
  ) {
    return undefined;
  }
  return {
    kind: Kind.KINESIS_INGRESS,
    id,
    region,
    credentials,
    startupPosition: position,
    streams: streams as KinesisIngressStream[],
    clientConfigProperties: props,
    source: r.locateField(idEntry),
  };
}

export function parseKinesisEgress(r: Reader, spec: MapView): KinesisEgressConfig | undefined {
  r.checkKeys(spec, EGRESS_KEYS);
  const idEntry = r.require(spec, "id", ID_EXPECTED, EGRESS_KEYS);
  const id = idEntry === undefined ? undefined : typenameField(r, idEntry, ID_EXPECTED);
  const region = awsRegion(r, spec);
  const credentials = awsCredentials(r, spec);
  const outstandingEntry = r.optional(spec, "maxOutstandingRecords");
  const maxOutstandingRecords =
    outstandingEntry === undefined
      ? KINESIS_EGRESS_MAX_OUTSTANDING_RECORDS_DEFAULT
      : r.integer(outstandingEntry, MAX_OUTSTANDING_EXPECTED, 1, JAVA_INT_MAX);
  const props = propertyList(r, spec, "clientConfigProperties", PROPERTIES_EXPECTED);
  if (
    idEntry === undefined ||
    id === undefined ||
    region === undefined ||
    credentials === undefined ||
    maxOutstandingRecords === undefined ||
    props === undefined
  ) {
    return undefined;
  }
  return {
    kind: Kind.KINESIS_EGRESS,
    id,
    region,
    credentials,
    maxOutstandingRecords,
    clientConfigProperties: props,
    source: r.locateField(idEntry),
  };
}
