// `npm run cluster` end to end: examples/cluster/run.ts started as a user starts it, on a real
// Kafka broker with three real `eddy run --cluster` workers. It must end by itself with exit 0,
// print every greeting with the visits it counts (through each worker, after the kill, after
// the restart), and leave nothing behind: its temporary directory removed, the workers'
// ingress ports free again.
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { once } from "node:events";
import { existsSync } from "node:fs";
import { createServer } from "node:net";
import { resolve } from "node:path";
import { describe, it } from "node:test";
import { greeting } from "../greeter/functions.ts";

const ROOT = resolve(import.meta.dirname, "../..");
const RUN_TS = resolve(import.meta.dirname, "run.ts");
const NAMES = ["ada", "grace", "alan", "edsger", "barbara", "ken"];
/** run.ts stops itself at 150 s; this is the test's own bound on top. */
const TEST_TIMEOUT_MS = 170_000;

function portFree(port: number): Promise<boolean> {
  const server = createServer();
  return new Promise((resolveFree) => {
    server.once("error", () => resolveFree(false));
    server.listen(port, "127.0.0.1", () => server.close(() => resolveFree(true)));
  });
}

describe("npm run cluster", () => {
  it("greets through three workers, survives kill -9 of one, and cleans up after itself", {
    timeout: TEST_TIMEOUT_MS,
  }, async () => {
    const child = spawn(process.execPath, [RUN_TS], { cwd: ROOT, stdio: ["ignore", "pipe", "pipe"] });
    let output = "";
    child.stdout.setEncoding("utf8").on("data", (chunk: string) => {
      output += chunk;
    });
    child.stderr.setEncoding("utf8").on("data", (chunk: string) => {
      output += chunk;
    });
    const [code] = (await once(child, "exit")) as [number | null];
    assert.equal(code, 0, output);

    const lines = output.split("\n");
    const greetings = lines
      .map((line) => /^ {2}via (w\d) {2}(\S+) +(.*?)(?: {3}\(after .*\))?$/.exec(line))
      .filter((match) => match !== null)
      .map(([, worker, name, text]) => ({ worker, name, text }));
    const expected = [
      ...NAMES.flatMap((name) => ["w1", "w2", "w3"].map((worker, index) => ({ worker, name, visit: index + 1 }))),
      ...NAMES.flatMap((name) => [
        { worker: "w1", name, visit: 4 },
        { worker: "w3", name, visit: 5 },
      ]),
      ...NAMES.map((name) => ({ worker: "w2", name, visit: 6 })),
    ].map(({ worker, name, visit }) => ({ worker, name, text: greeting(name, visit) }));
    assert.deepEqual(greetings, expected, output);

    const moduleLine = lines.find((line) => line.includes("/module.yaml:"));
    const directory = /^cluster: (\S+)\/module\.yaml:/.exec(moduleLine ?? "")?.[1];
    assert.ok(directory !== undefined, `no module.yaml line in\n${output}`);
    assert.equal(existsSync(directory), false, `${directory} is left behind`);
    const ports = [...output.matchAll(/its ingress at http:\/\/127\.0\.0\.1:(\d+)\//g)].map(([, port]) => Number(port));
    assert.equal(ports.length, 3, output);
    for (const port of ports) assert.ok(await portFree(port), `port ${port} is still taken after the run\n${output}`);
    assert.match(output, /workers stopped: w1 exit code 0, w2 exit code 0, w3 exit code 0/);
  });
});
