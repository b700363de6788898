// The StateFun playground's HTTP ingress and egress kinds (statefun-protocol.md §4.6), so
// the playground's module.yaml files run unchanged.
import { ConfigWarningCode } from "./diagnostics.ts";
import type { MapView, Reader } from "./reader.ts";
import {
  Kind,
  PLAYGROUND_EGRESS_ID,
  PLAYGROUND_EGRESS_PORT_DEFAULT,
  PLAYGROUND_INGRESS_PORT_DEFAULT,
  type PlaygroundEgressConfig,
  type PlaygroundIngressConfig,
} from "./types.ts";

/** `id` is what a legacy 3.0 file carries over from `meta.id`; the playground ignores it. */
const INGRESS_KEYS = ["port", "id"] as const;
const EGRESS_KEYS = ["port", "topics", "id"] as const;
const PORT_EXPECTED = "a TCP port from 0 to 65535 (0 picks a free port)";
const TOPICS_EXPECTED = "a list of topic names, e.g. [greetings]";

function port(r: Reader, spec: MapView, defaultPort: number): number | undefined {
  const entry = r.optional(spec, "port");
  return entry === undefined ? defaultPort : r.integer(entry, PORT_EXPECTED, 0, 65_535);
}

export function parsePlaygroundIngress(r: Reader, spec: MapView): PlaygroundIngressConfig | undefined {
  r.checkKeys(spec, INGRESS_KEYS);
  const value = port(r, spec, PLAYGROUND_INGRESS_PORT_DEFAULT);
  if (value === undefined) return undefined;
  return { kind: Kind.PLAYGROUND_INGRESS, port: value, source: { ...r.locate(spec.anchor), field: spec.path } };
}

export function parsePlaygroundEgress(r: Reader, spec: MapView): PlaygroundEgressConfig | undefined {
  r.checkKeys(spec, EGRESS_KEYS);
  const value = port(r, spec, PLAYGROUND_EGRESS_PORT_DEFAULT);
  const topicsEntry = r.require(spec, "topics", TOPICS_EXPECTED, EGRESS_KEYS);
  const items = topicsEntry === undefined ? undefined : r.list(topicsEntry, TOPICS_EXPECTED);
  let topics: string[] | undefined = [];
  for (const item of items ?? []) {
    const topic = r.string(item, "a topic name");
    if (topic === undefined) {
      topics = undefined;
    } else if (topics?.includes(topic)) {
      r.warn(ConfigWarningCode.DUPLICATE_KEY, r.where(item), item.path, `topic ${topic} is listed twice`);
    } else {
      topics?.push(topic);
    }
  }
  if (value === undefined || items === undefined || topics === undefined) return undefined;
  return {
    kind: Kind.PLAYGROUND_EGRESS,
    id: PLAYGROUND_EGRESS_ID,
    port: value,
    topics,
    source: { ...r.locate(spec.anchor), field: spec.path },
  };
}
