// StateFun's Kafka ingress and egress kinds (statefun-protocol.md §4.2–4.3), read with every
// option and its StateFun default: topics with valueType and targets, startup positions,
// consumer group, raw client properties; egress delivery semantics.
import { propertyList, routingFields, typenameField } from "./component-fields.ts";
import type { Entry, MapView, Reader } from "./reader.ts";
import { quote } from "./reader.ts";
import {
  type KafkaDeliverySemantic,
  type KafkaEgressConfig,
  type KafkaIngressConfig,
  type KafkaIngressTopic,
  type KafkaStartupPosition,
  Kind,
} from "./types.ts";

const INGRESS_KEYS = [
  "id",
  "address",
  "consumerGroupId",
  "topics",
  "autoOffsetResetPosition",
  "startupPosition",
  "properties",
] as const;
const EGRESS_KEYS = ["id", "address", "deliverySemantic", "properties"] as const;
const TOPIC_KEYS = ["topic", "valueType", "targets"] as const;
const STARTUP_TYPES = ["group-offsets", "earliest", "latest", "specific-offsets", "date"] as const;
const SEMANTICS = ["exactly-once", "at-least-once", "none"] as const;
/** Kafka's own broker default for transaction.max.timeout.ms. */
const BROKER_TRANSACTION_TIMEOUT_MAX_MS = 15 * 60 * 1000;

const ID_EXPECTED = "a typename such as com.example/users-in";
const ADDRESS_EXPECTED = "host:port[,host:port…] of the Kafka brokers (or the bootstrap.servers property)";
const PROPERTIES_EXPECTED = "a list of single-key maps, e.g. [{isolation.level: read_committed}]";
const TOPICS_EXPECTED = "a non-empty list of {topic, valueType, targets}";
const DATE_EXPECTED = 'a date as "yyyy-MM-dd HH:mm:ss.SSS Z", e.g. "2020-02-01 04:15:00.000 +0000"';

/** `address`, else the bootstrap.servers property; the property is then dropped (one source of truth). */
function bootstrapServers(r: Reader, spec: MapView, props: Map<string, string>): string | undefined {
  const entry = r.optional(spec, "address");
  const fromProperty = props.get("bootstrap.servers");
  props.delete("bootstrap.servers");
  if (entry !== undefined) return r.string(entry, ADDRESS_EXPECTED);
  if (fromProperty !== undefined) return fromProperty;
  r.error("missing-field", spec.anchor, `${spec.path}.address`, "missing required field address", ADDRESS_EXPECTED);
  return undefined;
}

function parseTopic(r: Reader, item: Entry, seen: Set<string>): KafkaIngressTopic | undefined {
  const map = r.map(item, "{topic, valueType, targets}");
  if (map === undefined) return undefined;
  r.checkKeys(map, TOPIC_KEYS);
  const topicEntry = r.require(map, "topic", "a Kafka topic name", TOPIC_KEYS);
  const topic = topicEntry === undefined ? undefined : r.string(topicEntry, "a Kafka topic name");
  if (topic !== undefined && topicEntry !== undefined && seen.has(topic)) {
    r.error("duplicate", r.where(topicEntry), topicEntry.path, `topic ${topic} is listed twice`, "each topic once");
    return undefined;
  }
  if (topic !== undefined) seen.add(topic);
  const routing = routingFields(r, map, TOPIC_KEYS, "the records' values");
  if (topic === undefined || routing === undefined) return undefined;
  return { topic, ...routing };
}

/** "yyyy-MM-dd HH:mm:ss.SSS Z" (Java's pattern, as StateFun reads it) to epoch ms. */
export function parseKafkaDate(text: string): number | undefined {
  const match = /^(\d{4})-(\d{2})-(\d{2}) (\d{2}):(\d{2}):(\d{2})\.(\d{3}) ([+-])(\d{2})(\d{2})$/.exec(text.trim());
  if (match === null) return undefined;
  const [, year, month, day, hour, minute, second, milli, , offsetHours, offsetMinutes] = match.map(Number);
  const local = Date.UTC(
    year as number,
    (month as number) - 1,
    day as number,
    hour as number,
    minute as number,
    second as number,
    milli as number,
  );
  const check = new Date(local);
  if (check.getUTCMonth() !== (month as number) - 1 || check.getUTCDate() !== day || (hour as number) > 23) {
    return undefined;
  }
  const offsetMs = ((offsetHours as number) * 60 + (offsetMinutes as number)) * 60_000;
  return match[8] === "-" ? local + offsetMs : local - offsetMs;
}

function startupPosition(r: Reader, spec: MapView): KafkaStartupPosition | undefined {
  const entry = r.optional(spec, "startupPosition");
  // StateFun's code defaults to latest (its documentation says group-offsets).
  if (entry === undefined) return { type: "latest" };
  const map = r.map(entry, `{type: ${STARTUP_TYPES.join(" | ")}}`);
  if (map === undefined) return undefined;
  const typeEntry = r.require(map, "type", STARTUP_TYPES.join(", "), ["type", "offsets", "date"]);
  const type = typeEntry === undefined ? undefined : r.string(typeEntry, STARTUP_TYPES.join(", "));
  if (type === undefined || typeEntry === undefined) return undefined;
  switch (type) {
    case "group-offsets":
    case "earliest":
    case "latest":
      r.checkKeys(map, ["type"]);
      return { type };
    case "date": {
      r.checkKeys(map, ["type", "date"]);
      const dateEntry = r.require(map, "date", DATE_EXPECTED, ["type", "date"]);
      const text = dateEntry === undefined ? undefined : r.string(dateEntry, DATE_EXPECTED);
      if (text === undefined || dateEntry === undefined) return undefined;
      const epochMs = parseKafkaDate(text);
      if (epochMs === undefined) {
        r.error(
          "invalid-value",
          r.where(dateEntry),
          dateEntry.path,
          `${quote(text)} is not such a date`,
          DATE_EXPECTED,
        );
        return undefined;
      }
      return { type, epochMs };
    }
    case "specific-offsets": {
      r.checkKeys(map, ["type", "offsets"]);
      const expected = 'a list of "<topic>/<partition>": <offset>, e.g. [{users/0: 91}]';
      const offsetsEntry = r.require(map, "offsets", expected, ["type", "offsets"]);
      const items = offsetsEntry === undefined ? undefined : r.list(offsetsEntry, expected);
      if (items === undefined) return undefined;
      const offsets: { topic: string; partition: number; offset: number }[] = [];
      let ok = true;
      for (const item of items) {
        const pair = r.map(item, expected);
        for (const [key, value] of pair?.entries ?? []) {
          const slash = key.lastIndexOf("/");
          const partition = Number(key.slice(slash + 1));
          const offset = r.integer(value, "an offset (0 or more)", 0);
          if (slash <= 0 || !Number.isSafeInteger(partition) || partition < 0 || key.slice(slash + 1) === "") {
            r.error("invalid-value", value.key, value.path, `${quote(key)} is not <topic>/<partition>`, expected);
            ok = false;
          } else if (offset === undefined) {
            ok = false;
          } else {
            offsets.push({ topic: key.slice(0, slash), partition, offset });
          }
        }
        if (pair === undefined) ok = false;
      }
      return ok ? { type, offsets } : undefined;
    }
    default:
      r.error(
        "invalid-value",
        r.where(typeEntry),
        typeEntry.path,
        `${quote(type)} is not a startup position`,
        STARTUP_TYPES.join(", "),
      );
      return undefined;
  }
}

export function parseKafkaIngress(r: Reader, spec: MapView): KafkaIngressConfig | undefined {
  r.checkKeys(spec, INGRESS_KEYS);
  const idEntry = r.require(spec, "id", ID_EXPECTED, INGRESS_KEYS);
  const id = idEntry === undefined ? undefined : typenameField(r, idEntry, ID_EXPECTED);
  const props = propertyList(r, spec, "properties", PROPERTIES_EXPECTED);
  const servers = props === undefined ? undefined : bootstrapServers(r, spec, props);
  const groupEntry = r.optional(spec, "consumerGroupId");
  const groupFromProperty = props?.get("group.id");
  props?.delete("group.id");
  const groupId = groupEntry === undefined ? groupFromProperty : r.string(groupEntry, "a consumer group id");

  const topicsEntry = r.require(spec, "topics", TOPICS_EXPECTED, INGRESS_KEYS);
  const items = topicsEntry === undefined ? undefined : r.list(topicsEntry, TOPICS_EXPECTED);
  if (topicsEntry !== undefined && items !== undefined && items.length === 0) {
    r.error("invalid-value", r.where(topicsEntry), topicsEntry.path, "no topics", TOPICS_EXPECTED);
  }
  const seen = new Set<string>();
  const topics = (items ?? []).map((item) => parseTopic(r, item, seen));

  const resetEntry = r.optional(spec, "autoOffsetResetPosition");
  let autoOffsetReset: "earliest" | "latest" | undefined = "latest";
  if (resetEntry !== undefined) {
    const text = r.string(resetEntry, "earliest or latest");
    if (text === "earliest" || text === "latest") autoOffsetReset = text;
    else {
      if (text !== undefined) {
        r.error(
          "invalid-value",
          r.where(resetEntry),
          resetEntry.path,
          `${quote(text)} is not a reset position`,
          "earliest or latest",
        );
      }
      autoOffsetReset = undefined;
    }
  }
  const position = startupPosition(r, spec);
  if (position?.type === "group-offsets" && groupId === undefined && idEntry !== undefined) {
    r.error(
      "missing-field",
      spec.anchor,
      `${spec.path}.consumerGroupId`,
      "startupPosition group-offsets needs a consumer group",
      "consumerGroupId (or the group.id property)",
    );
    return undefined;
  }
  if (
    idEntry === undefined ||
    id === undefined ||
    props === undefined ||
    servers === undefined ||
    items === undefined ||
    items.length === 0 ||
    topics.includes(undefined) ||
    autoOffsetReset === undefined ||
    position === undefined
  ) {
    return undefined;
  }
  return {
    kind: Kind.KAFKA_INGRESS,
    id,
    bootstrapServers: servers,
    groupId,
    topics: topics as KafkaIngressTopic[],
    autoOffsetReset,
    startupPosition: position,
    properties: props,
    source: r.locateField(idEntry),
  };
}

function deliverySemantic(r: Reader, spec: MapView): KafkaDeliverySemantic | undefined {
  const entry = r.optional(spec, "deliverySemantic");
  if (entry === undefined) return { type: "at-least-once" };
  const keys = ["type", "transactionTimeout", "transactionTimeoutMillis"];
  const map = r.map(entry, `{type: ${SEMANTICS.join(" | ")}}`);
  if (map === undefined) return undefined;
  r.checkKeys(map, keys);
  const typeEntry = r.require(map, "type", SEMANTICS.join(", "), keys);
  const type = typeEntry === undefined ? undefined : r.string(typeEntry, SEMANTICS.join(", "));
  if (type === undefined || typeEntry === undefined) return undefined;
  if (type === "none" || type === "at-least-once") return { type };
  if (type !== "exactly-once") {
    r.error(
      "invalid-value",
      r.where(typeEntry),
      typeEntry.path,
      `${quote(type)} is not a delivery semantic`,
      SEMANTICS.join(", "),
    );
    return undefined;
  }
  // The deprecated numeric form takes precedence, as in StateFun.
  const millisEntry = r.optional(map, "transactionTimeoutMillis");
  const timeoutEntry =
    millisEntry ?? r.require(map, "transactionTimeout", "a duration larger than 0, e.g. 15min", keys);
  if (timeoutEntry === undefined) return undefined;
  const ms =
    millisEntry !== undefined
      ? r.integer(millisEntry, "milliseconds, larger than 0", 1)
      : r.duration(timeoutEntry, { allowZero: false });
  if (ms === undefined) return undefined;
  if (ms > BROKER_TRANSACTION_TIMEOUT_MAX_MS) {
    r.warn(
      "ignored",
      r.where(timeoutEntry),
      timeoutEntry.path,
      `above 15min, Kafka's default transaction.max.timeout.ms: the broker refuses it unless configured higher`,
    );
  }
  return { type, transactionTimeoutMs: ms };
}

export function parseKafkaEgress(r: Reader, spec: MapView): KafkaEgressConfig | undefined {
  r.checkKeys(spec, EGRESS_KEYS);
  const idEntry = r.require(spec, "id", ID_EXPECTED, EGRESS_KEYS);
  const id = idEntry === undefined ? undefined : typenameField(r, idEntry, ID_EXPECTED);
  const props = propertyList(r, spec, "properties", PROPERTIES_EXPECTED);
  const servers = props === undefined ? undefined : bootstrapServers(r, spec, props);
  const semantic = deliverySemantic(r, spec);
  if (
    idEntry === undefined ||
    id === undefined ||
    props === undefined ||
    servers === undefined ||
    semantic === undefined
  ) {
    return undefined;
  }
  return {
    kind: Kind.KAFKA_EGRESS,
    id,
    bootstrapServers: servers,
    deliverySemantic: semantic,
    properties: props,
    source: r.locateField(idEntry),
  };
}
