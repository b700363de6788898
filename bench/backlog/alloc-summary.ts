// Reads a profile written by alloc-profile.ts: bytes allocated by function, by the function
// itself (self) and by it and everything it called (total), largest first.
//
//   node bench/backlog/alloc-summary.ts <alloc-<pid>.json> [--top 40]
import { readFileSync } from "node:fs";
import { parseArgs } from "node:util";

const { values, positionals } = parseArgs({ allowPositionals: true, options: { top: { type: "string" } } });
const file = positionals[0];
if (file === undefined) throw new Error("usage: alloc-summary.ts <alloc-<pid>.json> [--top 40]");
const TOP = Number(values.top ?? 40);
const MiB = 2 ** 20;

interface ProfileNode {
  readonly callFrame: { readonly functionName: string; readonly url: string; readonly lineNumber: number };
  readonly selfSize: number;
  readonly children: readonly ProfileNode[];
}

const profile = JSON.parse(readFileSync(file, "utf8")) as { head: ProfileNode };
const self = new Map<string, number>();
const total = new Map<string, number>();
let allBytes = 0;

const nameOf = (node: ProfileNode): string => {
  const { functionName, url, lineNumber } = node.callFrame;
  const where = url.replace(/^.*\/(packages|node_modules)\//, "$1/");
  return `${functionName === "" ? "(anonymous)" : functionName} ${where}:${lineNumber + 1}`;
};

// Iterative, with the path's names: a deep async stack must not overflow ours.
const stack: { node: ProfileNode; path: readonly string[] }[] = [{ node: profile.head, path: [] }];
while (stack.length > 0) {
  const { node, path } = stack.pop() as { node: ProfileNode; path: readonly string[] };
  const name = nameOf(node);
  const here = [...path, name];
  allBytes += node.selfSize;
  self.set(name, (self.get(name) ?? 0) + node.selfSize);
  // A recursive function counts once per sample in its total.
  for (const frame of new Set(here)) total.set(frame, (total.get(frame) ?? 0) + node.selfSize);
  for (const child of node.children) stack.push({ node: child, path: here });
}

const table = (bytes: Map<string, number>): string =>
  [...bytes]
    .sort((a, b) => b[1] - a[1])
    .slice(0, TOP)
    .map(
      ([name, size]) =>
        `${((100 * size) / allBytes).toFixed(1).padStart(5)}% ${(size / MiB).toFixed(0).padStart(7)} MiB  ${name}`,
    )
    .join("\n");

console.log(`${(allBytes / MiB).toFixed(0)} MiB allocated (sampled estimate)\n\nself:\n${table(self)}`);
console.log(`\ntotal (with callees):\n${table(total)}`);
