// Runs every benchmark (bench/*/run.ts), one Node process each, one after another.
//
//   node bench/run.ts [name ...] [--json] [other flags, passed to each bench]
//
// Names pick benchmarks by directory (e.g. `sdk`); with none, all run. With --json the
// output is one JSON array holding each benchmark's result.
import { spawnSync } from "node:child_process";
import { globSync } from "node:fs";
import { basename, dirname, resolve } from "node:path";

const here = import.meta.dirname;
const args = process.argv.slice(2);
const names = args.filter((arg) => !arg.startsWith("-"));
const flags = args.filter((arg) => arg.startsWith("-"));
const json = flags.includes("--json");

const benches = globSync("*/run.ts", { cwd: here })
  .map((file) => basename(dirname(file)))
  .filter((name) => names.length === 0 || names.includes(name))
  .sort();
if (benches.length === 0) {
  console.error(
    `no benchmark matches ${names.join(" ")}; there are: ${globSync("*/run.ts", { cwd: here }).join(", ")}`,
  );
  process.exit(1);
}

const results: unknown[] = [];
for (const name of benches) {
  if (!json) console.log(`\n=== bench/${name} ===`);
  const child = spawnSync(process.execPath, [resolve(here, name, "run.ts"), ...flags], {
    stdio: ["ignore", json ? "pipe" : "inherit", "inherit"],
    encoding: "utf8",
  });
  if (child.status !== 0) {
    console.error(`bench/${name} failed (exit ${child.status ?? child.signal})`);
    process.exit(1);
  }
  if (json) results.push(JSON.parse(child.stdout));
}
if (json) console.log(JSON.stringify(results, null, 2));
