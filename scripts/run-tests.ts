// Runs every test file with Node's test runner: unit tests beside each package
// (packages/*/test) and end-to-end tests (test/). Extra arguments narrow the run,
// e.g. `node scripts/run-tests.ts packages/sdk`.
import { spawnSync } from "node:child_process";
import { globSync } from "node:fs";
import { resolve } from "node:path";

const root = resolve(import.meta.dirname, "..");
const filters = process.argv.slice(2);
const files = globSync(
  ["packages/*/test/**/*.test.ts", "test/**/*.test.ts", "examples/**/*.test.ts", "bench/**/*.test.ts"],
  { cwd: root },
)
  .filter((file) => !file.includes("node_modules"))
  .filter((file) => filters.length === 0 || filters.some((filter) => file.includes(filter)))
  .sort();
if (files.length === 0) {
  console.error(`no test files match ${filters.join(" ")}`);
  process.exit(1);
}
// Every eddy run and eddy dev the tests start takes a free port for its admin listener unless a
// test names one: tests run side by side, and a developer's Eddy may hold the default 8093.
// Test files run side by side (EDDY_TEST_CONCURRENCY, default 2): most of their time is spent
// waiting on brokers and child processes, and Node's default on a 2-core machine is one at a time.
const concurrency = process.env.EDDY_TEST_CONCURRENCY ?? "2";
const result = spawnSync(
  process.execPath,
  ["--test", "--test-reporter=spec", `--test-concurrency=${concurrency}`, ...files],
  {
    cwd: root,
    stdio: "inherit",
    env: { ...process.env, EDDY_ADMIN_PORT: process.env.EDDY_ADMIN_PORT ?? "0" },
  },
);
process.exit(result.status ?? 1);
