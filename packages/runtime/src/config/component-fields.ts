// Fields the connector kinds (Kafka, Kinesis) share: a typename, an ingress source's routing
// (valueType and targets), and StateFun's client property lists (a list of single-key maps;
// a plain map is taken too).
import { isSeq } from "yaml";
import { parseFunctionPattern } from "./endpoint.ts";
import type { Entry, MapView, Reader } from "./reader.ts";
import { quote } from "./reader.ts";
import type { FunctionTypename } from "./types.ts";

const TARGETS_EXPECTED = "a non-empty list of function types, e.g. [com.example.fns/greeter]";

/** A `namespace/name` typename (not a `namespace/*` pattern). */
export function typenameField(r: Reader, entry: Entry, expected: string): string | undefined {
  const text = r.string(entry, expected);
  if (text === undefined) return undefined;
  const pattern = parseFunctionPattern(text);
  if ("invalid" in pattern || pattern.kind !== "type") {
    r.error("invalid-value", r.where(entry), entry.path, `${quote(text)} is not a typename`, expected);
    return undefined;
  }
  return text;
}

/**
 * How an ingress source (a Kafka topic, a Kinesis stream) routes its records: `valueType`, the
 * typename its values get, and `targets`, the function types each record goes to. Undefined
 * when either is missing or wrong (each problem is reported).
 */
export function routingFields(
  r: Reader,
  map: MapView,
  knownKeys: readonly string[],
  valuesAre: string,
): { valueType: string; targets: FunctionTypename[] } | undefined {
  const valueTypeEntry = r.require(map, "valueType", `the typename given to ${valuesAre}`, knownKeys);
  const valueType = valueTypeEntry === undefined ? undefined : r.string(valueTypeEntry, "a typename");
  const targetsEntry = r.require(map, "targets", TARGETS_EXPECTED, knownKeys);
  const items = targetsEntry === undefined ? undefined : r.list(targetsEntry, TARGETS_EXPECTED);
  if (targetsEntry !== undefined && items !== undefined && items.length === 0) {
    r.error("invalid-value", r.where(targetsEntry), targetsEntry.path, "no targets", TARGETS_EXPECTED);
    return undefined;
  }
  const targets = (items ?? []).map((target) =>
    typenameField(r, target, "a function type such as com.example.fns/greeter"),
  );
  if (valueType === undefined || items === undefined || targets.includes(undefined)) return undefined;
  return { valueType, targets: targets as FunctionTypename[] };
}

/** The optional property list `field` of `spec` as name → value; undefined when any entry is wrong. */
export function propertyList(
  r: Reader,
  spec: MapView,
  field: string,
  expected: string,
): Map<string, string> | undefined {
  const entry = r.optional(spec, field);
  const result = new Map<string, string>();
  if (entry === undefined) return result;
  let ok = true;
  const take = (map: MapView) => {
    for (const [key, value] of map.entries) {
      const text = r.isEmpty(value) ? undefined : r.string(value, `a value for ${key}`);
      if (text === undefined) ok = false;
      else result.set(key, text);
    }
  };
  if (isSeq(r.resolve(entry.value))) {
    for (const item of r.list(entry, expected) ?? []) {
      const map = r.map(item, expected);
      if (map === undefined) ok = false;
      else take(map);
    }
  } else {
    const map = r.map(entry, expected);
    if (map === undefined) return undefined;
    take(map);
  }
  return ok ? result : undefined;
}
