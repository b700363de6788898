// What of a worker's module must be the same on every worker of a cluster, its fingerprint, and
// the difference between two of them in words. Pure: the group protocol carries both (the
// fingerprint in the protocol name, the items in the member metadata, group-machine.ts), and
// module-check.ts reads the cluster's back from Kafka.
//
// Any worker may run any partition, and which one does changes with every rebalance. So what
// decides where a message can go must agree, or a message's fate depends on who holds its
// partition at the moment:
// - the function types served (the endpoints' `functions`, and in-process functions): a
//   worker that does not serve a type dead-letters every message to it (partition-core.ts),
//   while another would have run it. This is also all of the state layout a module decides:
//   StateFun modules declare no state; a function declares its state in each response.
// - the egress ids (and kinds) functions send to: one worker would send, another refuse.
// - the ingresses, by kind and id: the HTTP ingress is where other workers forward a request
//   for this worker's partitions, and the other ingresses' positions move with partitions.
// What may differ, because it says how this worker reaches something rather than what the
// cluster is: endpoint URLs and transports (a function's deployment near each worker, a new
// version rolled out worker by worker), batch limits, ports (--port-offset), egress and
// ingress connection settings. The failure policy is a flag, not the module: a per-worker
// operator choice, applied by a rolling restart.
//
// A module that declares a type both by name and by its namespace (`ns/*`) serves the same
// types as one that declares only the namespace: the name is dropped, so equal served sets
// give equal fingerprints.
import { createHash } from "node:crypto";
import { Kind, type ModuleConfig } from "../config/types.ts";

export type ModuleItemKind = "function" | "ingress" | "egress";

export interface ModuleItem {
  readonly kind: ModuleItemKind;
  /** `ns/name` or `ns/*` for a function; `kind` or `kind id` for an ingress; `id (kind)` for an egress. */
  readonly name: string;
}

export interface ClusterModule {
  /** Sorted by kind then name, no duplicates: the canonical form the fingerprint is taken of. */
  readonly items: readonly ModuleItem[];
  /** 16 lower-case hex digits: the first 8 bytes of SHA-256 over the items. */
  readonly fingerprint: string;
}

/** The byte each kind is written as (membership-codec.ts), in canonical order. */
export const MODULE_ITEM_KIND_CODES: Readonly<Record<ModuleItemKind, number>> = { function: 1, ingress: 2, egress: 3 };

export const FINGERPRINT_BYTES = 8;

/** The module of `eddy run` (the module files, and `eddy dev`'s in-process functions), as the cluster compares it. */
export function clusterModule(module: ModuleConfig, inProcessTypenames: Iterable<string> = []): ClusterModule {
  const namespaces = new Set<string>();
  const types = new Set<string>(inProcessTypenames);
  for (const endpoint of module.endpoints) {
    if (endpoint.functions.kind === "namespace") namespaces.add(endpoint.functions.namespace);
    else types.add(endpoint.functions.typename);
  }
  const items: ModuleItem[] = [];
  for (const namespace of namespaces) items.push({ kind: "function", name: `${namespace}/*` });
  for (const typename of types) {
    const slash = typename.indexOf("/");
    if (slash > 0 && namespaces.has(typename.slice(0, slash))) continue;
    items.push({ kind: "function", name: typename });
  }
  for (const ingress of module.ingresses) {
    items.push({
      kind: "ingress",
      name: ingress.kind === Kind.PLAYGROUND_INGRESS ? ingress.kind : `${ingress.kind} ${ingress.id}`,
    });
  }
  for (const egress of module.egresses) items.push({ kind: "egress", name: `${egress.id} (${egress.kind})` });
  return moduleOfItems(items);
}

/** Sorts and deduplicates `items` and takes their fingerprint. */
export function moduleOfItems(items: Iterable<ModuleItem>): ClusterModule {
  const unique = new Map<string, ModuleItem>();
  for (const item of items) unique.set(`${MODULE_ITEM_KIND_CODES[item.kind]}\0${item.name}`, item);
  const sorted = [...unique.values()].sort(compareItems);
  const hash = createHash("sha256").update("eddy cluster module 1\n");
  for (const item of sorted) {
    const name = Buffer.from(item.name, "utf8");
    const header = Buffer.alloc(5);
    header.writeUInt8(MODULE_ITEM_KIND_CODES[item.kind], 0);
    header.writeUInt32BE(name.length, 1);
    hash.update(header).update(name);
  }
  return Object.freeze({
    items: Object.freeze(sorted.map((item) => Object.freeze({ ...item }))),
    fingerprint: hash.digest().subarray(0, FINGERPRINT_BYTES).toString("hex"),
  });
}

function compareItems(a: ModuleItem, b: ModuleItem): number {
  const byKind = MODULE_ITEM_KIND_CODES[a.kind] - MODULE_ITEM_KIND_CODES[b.kind];
  if (byKind !== 0) return byKind;
  return a.name < b.name ? -1 : a.name > b.name ? 1 : 0;
}

/** A module no worker runs: the one of tests that build a worker without a module. */
export const EMPTY_CLUSTER_MODULE: ClusterModule = moduleOfItems([]);

/** Another worker's module as its join metadata tells it: the items are absent when they were too long to send. */
export interface AnnouncedModule {
  readonly fingerprint: string;
  readonly items: readonly ModuleItem[] | undefined;
}

const DIFFERENCES_NAMED_MAX = 4;

/**
 * The differences between this worker's module and `theirs` (worker `theirWorkerId`'s), in
 * words, at most a few and then how many more; empty when the items agree.
 */
export function moduleDifferences(mine: ClusterModule, theirs: readonly ModuleItem[], theirWorkerId: string): string[] {
  const key = (item: ModuleItem) => `${item.kind}\0${item.name}`;
  const own = new Set(mine.items.map(key));
  const other = new Set(theirs.map(key));
  const differences: string[] = [];
  for (const item of theirs) {
    if (!own.has(key(item))) {
      differences.push(`${itemLabel(item)} is declared by worker ${theirWorkerId}'s module but not by this one`);
    }
  }
  for (const item of mine.items) {
    if (!other.has(key(item))) {
      differences.push(`${itemLabel(item)} is declared by this worker's module but not by worker ${theirWorkerId}'s`);
    }
  }
  if (differences.length <= DIFFERENCES_NAMED_MAX) return differences;
  const more = differences.length - DIFFERENCES_NAMED_MAX;
  return [...differences.slice(0, DIFFERENCES_NAMED_MAX), `and ${more} more difference${more === 1 ? "" : "s"}`];
}

function itemLabel(item: ModuleItem): string {
  switch (item.kind) {
    case "function":
      return item.name.endsWith("/*") ? `function namespace ${item.name}` : `function type ${item.name}`;
    case "ingress":
      return `ingress ${item.name}`;
    case "egress":
      return `egress ${item.name}`;
  }
}
