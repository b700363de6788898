// Where the memory in a V8 heap snapshot goes: self size by kind of object (constructor or
// V8 name), retained size by the same (each object's dominator subtree, counting only
// instances no other instance of their kind dominates, so nothing counts twice), the largest
// single owners with the chain of dominators that keeps them alive, and, for the kinds named
// with --class, how their instances are held (the dominator chains grouped by shape).
// bench/backlog takes the snapshot (--heap-snapshot-at); this reads it.
//
//   node bench/backlog/heap-summary.ts <file.heapsnapshot> [--top 30] [--class Name,Name]
import { readFileSync } from "node:fs";
import { parseArgs } from "node:util";

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: { top: { type: "string" }, class: { type: "string" } },
});
const file = positionals[0];
if (file === undefined) throw new Error("usage: heap-summary.ts <file.heapsnapshot> [--top 30] [--class Name,Name]");
const TOP = Number(values.top ?? 30);
const CLASSES = (values.class ?? "").split(",").filter((name) => name !== "");
/** How many links of an owner's dominator chain are shown. */
const CHAIN_LINKS_MAX = 12;
const MiB = 2 ** 20;

interface Snapshot {
  snapshot: {
    meta: {
      node_fields: string[];
      node_types: [string[], ...unknown[]];
      edge_fields: string[];
      edge_types: [string[], ...unknown[]];
    };
    node_count: number;
  };
  nodes: number[];
  edges: number[];
  strings: string[];
}

const started = performance.now();
const parsed = JSON.parse(readFileSync(file, "utf8")) as Snapshot;
const { meta } = parsed.snapshot;
const nodeFieldCount = meta.node_fields.length;
const edgeFieldCount = meta.edge_fields.length;
const typeOffset = meta.node_fields.indexOf("type");
const nameOffset = meta.node_fields.indexOf("name");
const selfSizeOffset = meta.node_fields.indexOf("self_size");
const edgeCountOffset = meta.node_fields.indexOf("edge_count");
const edgeTypeOffset = meta.edge_fields.indexOf("type");
const edgeNameOffset = meta.edge_fields.indexOf("name_or_index");
const edgeToOffset = meta.edge_fields.indexOf("to_node");
const nodeTypes = meta.node_types[0];
const edgeTypes = meta.edge_types[0];
const weakEdge = edgeTypes.indexOf("weak");
const shortcutEdge = edgeTypes.indexOf("shortcut");
const elementEdge = edgeTypes.indexOf("element");
const hiddenEdge = edgeTypes.indexOf("hidden");
const { nodes, edges, strings } = parsed;
const count = nodes.length / nodeFieldCount;

const nodeType = (node: number) => nodeTypes[nodes[node * nodeFieldCount + typeOffset] as number] as string;
const nodeName = (node: number) => strings[nodes[node * nodeFieldCount + nameOffset] as number] as string;
const selfSize = (node: number) => nodes[node * nodeFieldCount + selfSizeOffset] as number;

/** What an object is, for grouping: its constructor for objects, V8's name for the rest. */
function kindOf(node: number): string {
  const type = nodeType(node);
  const name = nodeName(node);
  switch (type) {
    case "object":
    case "closure":
    case "native":
    case "hidden":
    case "array":
    case "synthetic":
      return type === "object" ? name : `(${type}) ${name.slice(0, 60)}`;
    default:
      return `(${type})`;
  }
}

// Edges in CSR form: node i's edges are firstEdge[i] .. firstEdge[i+1].
const firstEdge = new Uint32Array(count + 1);
for (let node = 0, edge = 0; node < count; node++) {
  firstEdge[node] = edge;
  edge += nodes[node * nodeFieldCount + edgeCountOffset] as number;
}
firstEdge[count] = edges.length / edgeFieldCount;
const edgeTarget = (edge: number) => (edges[edge * edgeFieldCount + edgeToOffset] as number) / nodeFieldCount;
const edgeType = (edge: number) => edges[edge * edgeFieldCount + edgeTypeOffset] as number;
const edgeName = (edge: number) => {
  const type = edgeType(edge);
  const value = edges[edge * edgeFieldCount + edgeNameOffset] as number;
  return type === elementEdge || type === hiddenEdge ? `[${value}]` : (strings[value] as string);
};
/** Edges that keep their target alive (DevTools leaves weak and shortcut edges out too). */
const strong = (edge: number) => {
  const type = edgeType(edge);
  return type !== weakEdge && type !== shortcutEdge;
};

// Depth-first post-order from the root (node 0) over strong edges, iteratively.
const postOrder = new Int32Array(count).fill(-1);
const byPostOrder = new Uint32Array(count);
let reached = 0;
{
  const stackNode = new Uint32Array(count);
  const stackEdge = new Uint32Array(count);
  const visited = new Uint8Array(count);
  let top = 0;
  stackNode[0] = 0;
  stackEdge[0] = firstEdge[0] as number;
  visited[0] = 1;
  while (top >= 0) {
    const node = stackNode[top] as number;
    const edge = stackEdge[top] as number;
    if (edge < (firstEdge[node + 1] as number)) {
      stackEdge[top] = edge + 1;
      if (!strong(edge)) continue;
      const to = edgeTarget(edge);
      if (visited[to] === 1) continue;
      visited[to] = 1;
      top++;
      stackNode[top] = to;
      stackEdge[top] = firstEdge[to] as number;
    } else {
      postOrder[node] = reached;
      byPostOrder[reached] = node;
      reached++;
      top--;
    }
  }
}

// Strong predecessors, for the dominator computation (CSR again).
const predecessorStart = new Uint32Array(count + 1);
for (let node = 0; node < count; node++) {
  for (let edge = firstEdge[node] as number; edge < (firstEdge[node + 1] as number); edge++) {
    if (strong(edge)) (predecessorStart[edgeTarget(edge) + 1] as number)++;
  }
}
for (let node = 0; node < count; node++) {
  predecessorStart[node + 1] = (predecessorStart[node + 1] as number) + (predecessorStart[node] as number);
}
const predecessors = new Uint32Array(predecessorStart[count] as number);
{
  const filled = predecessorStart.slice(0, count);
  for (let node = 0; node < count; node++) {
    for (let edge = firstEdge[node] as number; edge < (firstEdge[node + 1] as number); edge++) {
      if (!strong(edge)) continue;
      const to = edgeTarget(edge);
      predecessors[filled[to] as number] = node;
      filled[to] = (filled[to] as number) + 1;
    }
  }
}

// Immediate dominators by Cooper, Harvey and Kennedy's iteration, in post-order numbers.
const UNDEFINED = -1;
const dominator = new Int32Array(reached).fill(UNDEFINED);
const rootOrder = postOrder[0] as number;
dominator[rootOrder] = rootOrder;
for (let changed = true; changed; ) {
  changed = false;
  for (let order = reached - 1; order >= 0; order--) {
    if (order === rootOrder) continue;
    const node = byPostOrder[order] as number;
    let next = UNDEFINED;
    for (let index = predecessorStart[node] as number; index < (predecessorStart[node + 1] as number); index++) {
      const from = postOrder[predecessors[index] as number] as number;
      if (from < 0 || dominator[from] === UNDEFINED) continue;
      if (next === UNDEFINED) {
        next = from;
        continue;
      }
      let a = from;
      let b = next;
      while (a !== b) {
        while (a < b) a = dominator[a] as number;
        while (b < a) b = dominator[b] as number;
      }
      next = a;
    }
    if (dominator[order] !== next) {
      dominator[order] = next;
      changed = true;
    }
  }
}

// Retained sizes: children before their dominators in post-order.
const retained = new Float64Array(count);
for (let order = 0; order < reached; order++) {
  const node = byPostOrder[order] as number;
  retained[node] = (retained[node] as number) + selfSize(node);
  if (order !== rootOrder) {
    const parent = byPostOrder[dominator[order] as number] as number;
    retained[parent] = (retained[parent] as number) + (retained[node] as number);
  }
}
const immediateDominator = (node: number) => byPostOrder[dominator[postOrder[node] as number] as number] as number;

// Per kind: instances, self size, and the retained size of the instances no other instance of
// the same kind dominates (a trie node inside a trie node counts once, at the outer one).
interface Kind {
  instances: number;
  selfBytes: number;
  retainedBytes: number;
}
const kinds = new Map<string, Kind>();
const kindOfNode: string[] = new Array(count);
let totalSelf = 0;
for (let node = 0; node < count; node++) {
  const kind = kindOf(node);
  kindOfNode[node] = kind;
  let entry = kinds.get(kind);
  if (entry === undefined) {
    entry = { instances: 0, selfBytes: 0, retainedBytes: 0 };
    kinds.set(kind, entry);
  }
  entry.instances++;
  entry.selfBytes += selfSize(node);
  totalSelf += selfSize(node);
}
// Whether some dominator of a node is of its own kind: walk down the dominator tree from the
// root, carrying the set of kinds above.
{
  const children = new Map<number, number[]>();
  for (let order = 0; order < reached; order++) {
    if (order === rootOrder) continue;
    const node = byPostOrder[order] as number;
    const parent = byPostOrder[dominator[order] as number] as number;
    const list = children.get(parent);
    if (list === undefined) children.set(parent, [node]);
    else list.push(node);
  }
  const above = new Map<string, number>();
  const stack: Array<{ node: number; leaving: boolean }> = [{ node: 0, leaving: false }];
  while (stack.length > 0) {
    const { node, leaving } = stack.pop() as { node: number; leaving: boolean };
    const kind = kindOfNode[node] as string;
    if (leaving) {
      const depth = (above.get(kind) as number) - 1;
      if (depth === 0) above.delete(kind);
      else above.set(kind, depth);
      continue;
    }
    if (!above.has(kind)) (kinds.get(kind) as Kind).retainedBytes += retained[node] as number;
    above.set(kind, (above.get(kind) ?? 0) + 1);
    stack.push({ node, leaving: true });
    for (const child of children.get(node) ?? []) stack.push({ node: child, leaving: false });
  }
}

const mib = (bytes: number) => (bytes / MiB).toFixed(1);
const pad = (text: string, width: number) => text.padStart(width);
const describeNode = (node: number) => {
  const name = nodeName(node);
  const type = nodeType(node);
  return type === "object" ? name : `(${type}) ${name.slice(0, 50).replaceAll("\n", " ")}`;
};
/** How `node` is held: the edge name from its dominator, when the dominator holds it directly. */
function edgeFrom(parent: number, node: number): string {
  for (let edge = firstEdge[parent] as number; edge < (firstEdge[parent + 1] as number); edge++) {
    if (edgeTarget(edge) === node) return edgeName(edge);
  }
  return "…";
}
function chain(node: number): string {
  const links: string[] = [];
  let current = node;
  while (current !== 0 && links.length < CHAIN_LINKS_MAX) {
    const parent = immediateDominator(current);
    links.push(`${describeNode(current)} ←${edgeFrom(parent, current)}−`);
    current = parent;
  }
  return links.join(" ");
}

const out = (line = "") => process.stdout.write(`${line}\n`);
out(
  `${file}: ${count} nodes, ${firstEdge[count]} edges, ${mib(totalSelf)} MiB self size in all (${reached} reachable); read in ${Math.round((performance.now() - started) / 1000)} s`,
);
out();
out(`Top ${TOP} kinds by retained size (MiB retained, MiB self, instances):`);
const sorted = [...kinds.entries()];
for (const [kind, entry] of sorted.sort((a, b) => b[1].retainedBytes - a[1].retainedBytes).slice(0, TOP)) {
  out(
    `${pad(mib(entry.retainedBytes), 9)} ${pad(mib(entry.selfBytes), 9)} ${pad(String(entry.instances), 9)}  ${kind}`,
  );
}
out();
out(`Top ${TOP} kinds by self size (MiB self, instances, bytes each):`);
for (const [kind, entry] of sorted.sort((a, b) => b[1].selfBytes - a[1].selfBytes).slice(0, TOP)) {
  out(
    `${pad(mib(entry.selfBytes), 9)} ${pad(String(entry.instances), 9)} ${pad(String(Math.round(entry.selfBytes / entry.instances)), 7)}  ${kind}`,
  );
}
out();
out(`Top ${TOP} single objects by retained size, with what keeps each alive (its dominators):`);
const owners = Array.from({ length: count }, (_, node) => node)
  .filter((node) => node !== 0 && nodeType(node) !== "synthetic" && postOrder[node] !== -1)
  .sort((a, b) => (retained[b] as number) - (retained[a] as number))
  .slice(0, TOP);
for (const node of owners) out(`${pad(mib(retained[node] as number), 9)}  ${chain(node)}`);

for (const name of CLASSES) {
  out();
  const instances: number[] = [];
  for (let node = 0; node < count; node++) if (kindOfNode[node] === name) instances.push(node);
  const entry = kinds.get(name);
  out(
    `${name}: ${instances.length} instances, ${mib(entry?.selfBytes ?? 0)} MiB self, ${mib(entry?.retainedBytes ?? 0)} MiB retained; held by (dominator chains, by shape):`,
  );
  const shapes = new Map<string, { instances: number; retainedBytes: number }>();
  for (const node of instances) {
    const links: string[] = [];
    let current = node;
    while (current !== 0 && links.length < 6) {
      current = immediateDominator(current);
      links.push(describeNode(current));
    }
    const shape = links.join(" ← ");
    const seen = shapes.get(shape) ?? { instances: 0, retainedBytes: 0 };
    seen.instances++;
    seen.retainedBytes += retained[node] as number;
    shapes.set(shape, seen);
  }
  for (const [shape, seen] of [...shapes].sort((a, b) => b[1].retainedBytes - a[1].retainedBytes).slice(0, 10)) {
    out(`${pad(mib(seen.retainedBytes), 9)} ${pad(String(seen.instances), 8)}  ← ${shape}`);
  }
}
