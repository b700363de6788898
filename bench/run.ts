// Runs every benchmark (bench/*/run.ts), one Node process each, one after another.
//
//   node bench/run.ts [name ...] [--json] [other flags, passed to each bench]
//
// Names pick benchmarks by directory (e.g. `sdk`, `kafka`); with none, all run. With --json the
// output is one JSON array holding each benchmark's result. A benchmark that fails (bench/kafka
// needs Java for its Kafka broker, for one) does not stop the others: they all run, and the
// exit status is 1 if any failed.
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
const failed: string[] = [];
for (const name of benches) {
  if (!json) console.log(`\n=== bench/${name} ===`);
  const child = spawnSync(process.execPath, [resolve(here, name, "run.ts"), ...flags], {
    stdio: ["ignore", json ? "pipe" : "inherit", "inherit"],
    encoding: "utf8",
  });
  if (child.status !== 0) {
    console.error(`bench/${name} failed (exit ${child.status ?? child.signal})`);
    failed.push(name);
    continue;
  }
  if (json) results.push(JSON.parse(child.stdout));
}
if (json) console.log(JSON.stringify(results, null, 2));
if (failed.length > 0) {
  console.error(`failed: ${failed.map((name) => `bench/${name}`).join(", ")}`);
  process.exit(1);
}
