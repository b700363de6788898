// `eddy run --cluster` refusing to start, on a real Kafka broker: each mistake is one line on
// stderr, exit 1, within a bounded time, and the workers already running lose nothing.
// - a worker whose module declares other function types than the cluster's workers run (two
//   clusters' workers pointed at one name): refused before it opens anything, naming what
//   differs; the running worker is not even rebalanced and keeps counting exactly;
// - a cluster whose topic exists with another partition count: the topic and both counts named;
// - brokers nobody answers at: refused after the bounded wait, naming them.
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { once } from "node:events";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { after, before, describe, it } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { createEndpoint, serve, statefulFunction, types } from "@eddy/sdk";
import { type KafkaBroker, startKafka } from "../support/kafka-broker.ts";
import { freePorts } from "../support/ports.ts";
import { type CommandResult, EddyProcess, withEddy } from "./smoke/cluster.ts";

const root = resolve(import.meta.dirname, "../..");
const IDS = 8;

/** Counts every message; "get" answers the count. */
const counter = statefulFunction({
  typename: "cf/counter",
  state: { count: types.int },
  handle(ctx, msg) {
    if (msg.as(types.string) === "get") {
      ctx.reply(ctx.storage.count ?? 0, types.int);
      return;
    }
    ctx.storage.count = (ctx.storage.count ?? 0) + 1;
  },
});

let broker: KafkaBroker;
let functions: Awaited<ReturnType<typeof serve>>;
const directories: string[] = [];
before(async () => {
  broker = await startKafka();
  functions = await serve(createEndpoint([counter]), { port: 0, host: "127.0.0.1" });
});
after(async () => {
  await functions?.close();
  await broker?.stop();
  for (const directory of directories) rmSync(directory, { recursive: true, force: true });
});

function workspace(): string {
  const directory = mkdtempSync(join(tmpdir(), "eddy-cluster-faults-"));
  directories.push(directory);
  return directory;
}

/** A module that serves `functions` (an endpoint's `functions:` value) from this test, with an HTTP ingress on `port`. */
function moduleYaml(functionsValue: string, port: string): string {
  return `kind: io.statefun.endpoints.v2/http
spec:
  functions: ${functionsValue}
  urlPathTemplate: ${functions.url}
---
kind: io.statefun.playground.v1/ingress
spec:
  port: ${port}
`;
}

/** Runs `eddy` once; killed after `timeoutMs`, so that an Eddy that starts where it should refuse fails the test. */
async function runEddy(args: readonly string[], timeoutMs: number): Promise<CommandResult & { tookMs: number }> {
  const startedAt = Date.now();
  const child = spawn(join(root, "node_modules/.bin/eddy"), args, {
    cwd: root,
    stdio: ["ignore", "pipe", "pipe"],
    timeout: timeoutMs,
  });
  let stdout = "";
  let stderr = "";
  child.stdout.on("data", (chunk: Buffer) => {
    stdout += chunk.toString();
  });
  child.stderr.on("data", (chunk: Buffer) => {
    stderr += chunk.toString();
  });
  const [status] = (await once(child, "close")) as [number | null];
  return { status, stdout, stderr, tookMs: Date.now() - startedAt };
}

function show(result: CommandResult): string {
  return `exit ${result.status}\n--- stdout ---\n${result.stdout}--- stderr ---\n${result.stderr}`;
}

/** Exit 1, the error in one line of stderr, and nothing started. */
function assertRefused(result: CommandResult, expected: RegExp): void {
  assert.equal(result.status, 1, show(result));
  const lines = result.stderr.trimEnd().split("\n");
  assert.equal(lines.length, 1, show(result));
  assert.match(lines[0] as string, expected, show(result));
  assert.doesNotMatch(result.stdout, /listening|eddy: running/, show(result));
}

/** `eddy run --cluster` of a worker on `module` (a file), in a state directory of its own. */
function workerArgs(module: string, cluster: string, workerId: string, brokers = broker.bootstrap): string[] {
  const directory = workspace();
  return [
    "run",
    module,
    "--state-dir",
    join(directory, "state"),
    "--cluster",
    `kafka://${brokers}/${cluster}`,
    "--checkpoints",
    `file://${join(directory, "checkpoints")}`,
    "--worker-id",
    workerId,
  ];
}

async function send(via: EddyProcess, prefix: string, count: number): Promise<void> {
  for (let index = 0; index < count; index++) {
    for (let attempt = 0; ; attempt++) {
      const response = await fetch(`${via.ingressUrl()}cf/counter/${index % IDS}`, {
        method: "PUT",
        headers: { "content-type": "text/plain", "idempotency-key": `${prefix}-${index}` },
        body: "one",
      }).catch(() => undefined);
      if (response?.status === 200) break;
      await response?.text();
      assert.ok(attempt < 100, `message ${prefix}-${index}: ${response?.status}`);
      await sleep(200);
    }
  }
}

async function total(via: EddyProcess, expected: number): Promise<void> {
  let last: (number | undefined)[] = [];
  const deadline = Date.now() + 60_000;
  while (Date.now() < deadline) {
    last = [];
    for (let id = 0; id < IDS; id++) {
      const response = await fetch(`${via.ingressUrl()}cf/counter/${id}`, {
        method: "PUT",
        headers: { "content-type": "text/plain", prefer: "wait=5" },
        body: "get",
      }).catch(() => undefined);
      const text = await response?.text();
      last.push(response?.status === 200 ? Number(text) : undefined);
    }
    const sum = last.every((count) => count !== undefined) ? last.reduce<number>((a, b) => a + (b as number), 0) : -1;
    if (sum === expected) return;
    assert.ok(sum <= expected, `counted ${sum}, more than the ${expected} messages sent`);
    await sleep(300);
  }
  assert.fail(`the counts ${JSON.stringify(last)} do not add up to ${expected}`);
}

describe("eddy run --cluster refuses to start, in one line, exit 1", { timeout: 180_000 }, () => {
  it("a worker whose module declares other function types than the cluster's: naming what differs; the running worker loses nothing", async () => {
    const running = new EddyProcess({
      moduleYaml: moduleYaml("cf/*", "{{INGRESS_PORT}}"),
      args: [
        "run",
        "{{MODULE}}",
        "--state-dir",
        "{{STATE_DIR}}",
        "--cluster",
        `kafka://${broker.bootstrap}/faults-module`,
        "--checkpoints",
        "{{DIR}}/checkpoints",
        "--worker-id",
        "w1",
      ],
    });
    await withEddy(running, async () => {
      await running.start();
      await send(running, "before", 20);
      await total(running, 20);
      // Another cluster's module: its own types, and the same HTTP ingress (another port is allowed).
      const [port] = (await freePorts(1)) as [number];
      const other = join(workspace(), "module.yaml");
      writeFileSync(
        other,
        `${moduleYaml("cf/counter", String(port))}---
kind: io.statefun.endpoints.v2/http
spec:
  functions: cf/audit
  urlPathTemplate: ${functions.url}
`,
      );
      const refused = await runEddy(workerArgs(other, "faults-module", "w2"), 60_000);
      assertRefused(
        refused,
        new RegExp(
          "^eddy run: cluster faults-module: its workers run another module than this worker: " +
            "function namespace cf/\\* is declared by worker w1's module but not by this one; " +
            "function type cf/audit is declared by this worker's module but not by worker w1's; " +
            "function type cf/counter is declared by this worker's module but not by worker w1's " +
            "\\(module fingerprint [0-9a-f]{16} in the cluster, [0-9a-f]{16} here\\)\\. " +
            "Start this worker with the module files the cluster's workers run; to change the cluster's " +
            "function types, ingresses or egresses, stop all its workers, then start them with the new module$",
        ),
      );
      assert.ok(refused.tookMs < 20_000, `refused after ${refused.tookMs} ms`);
      await send(running, "after", 20);
      await total(running, 40);
      assert.doesNotMatch(running.output, /lost partitions|stopping/, "the running worker was not disturbed");
      // What may differ between workers does not keep one out: another ingress port, another
      // batch limit for the same function types.
      const compatible = new EddyProcess({
        moduleYaml: moduleYaml("cf/*\n  maxNumBatchRequests: 500", "{{INGRESS_PORT}}"),
        args: workerArgs("{{MODULE}}", "faults-module", "w2"),
      });
      await withEddy(compatible, async () => {
        await compatible.start();
        await send(compatible, "joined", 20);
        await total(compatible, 60);
        await total(running, 60);
        assert.equal(await compatible.stop(), 0);
      });
      assert.equal(await running.stop(), 0);
    });
  });

  it("a cluster topic that exists with another partition count: naming the topic and both counts", async () => {
    await broker.createTopic("eddy.faults-partitions.inbox", 4);
    const module = join(workspace(), "module.yaml");
    writeFileSync(module, moduleYaml("cf/*", "0"));
    const refused = await runEddy(workerArgs(module, "faults-partitions", "w1"), 60_000);
    assertRefused(
      refused,
      /^eddy run: cluster faults-partitions: topic eddy\.faults-partitions\.inbox has 4 partitions, the cluster has 128: a cluster's partition count is fixed when its topics are made; start the workers with 4 partitions or choose another cluster name$/,
    );
  });

  it("brokers nobody answers at: naming them, after the bounded wait", async () => {
    const [port] = (await freePorts(1)) as [number];
    const module = join(workspace(), "module.yaml");
    writeFileSync(module, moduleYaml("cf/*", "0"));
    const refused = await runEddy(workerArgs(module, "faults-nowhere", "w1", `127.0.0.1:${port}`), 90_000);
    assertRefused(
      refused,
      new RegExp(
        `^eddy run: cluster faults-nowhere: cannot make sure of the cluster's topics eddy\\.faults-nowhere\\.inbox and eddy\\.faults-nowhere\\.changelog on Kafka at 127\\.0\\.0\\.1:${port} within 30000 ms: `,
      ),
    );
    assert.ok(refused.tookMs >= 29_000 && refused.tookMs < 60_000, `refused after ${refused.tookMs} ms`);
  });
});
