// `eddy run`'s cluster flags at the command line: every mistake that can be seen before
// anything starts (no --checkpoints, a malformed kafka:// URL, a bad worker id or advertised
// URL, cluster flags without --cluster, a --cluster-config that cannot be read or that the
// connection refuses) is one line and exit 2, with nothing started and no state directory
// made. And --port-offset, which an embedded run takes too: the playground ingress and egress
// listen that many ports higher, and an offset that pushes a port past 65535 is one line.
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { once } from "node:events";
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { after, describe, it } from "node:test";
import { rowWrite, storeTables } from "../../packages/runtime/src/core/schema.ts";
import { LoggedStore } from "../../packages/runtime/src/store/logged-store.ts";
import { freePorts } from "../support/ports.ts";
import { type CommandResult, EddyProcess, withEddy } from "./smoke/cluster.ts";

const root = resolve(import.meta.dirname, "../..");

/**
 * Runs `eddy` once; killed after 30 s, so that an Eddy that starts where it should have
 * refused (and would run until stopped) fails the test instead of hanging it.
 */
async function runEddyCommand(args: readonly string[]): Promise<CommandResult> {
  const child = spawn(join(root, "node_modules/.bin/eddy"), args, {
    cwd: root,
    stdio: ["ignore", "pipe", "pipe"],
    timeout: 30_000,
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
  return { status, stdout, stderr };
}

const directories: string[] = [];
after(() => {
  for (const directory of directories) rmSync(directory, { recursive: true, force: true });
});

function workspace(): string {
  const directory = mkdtempSync(join(tmpdir(), "eddy-cluster-cli-"));
  directories.push(directory);
  return directory;
}

function show(result: CommandResult): string {
  return `exit ${result.status}\n--- stdout ---\n${result.stdout}--- stderr ---\n${result.stderr}`;
}

/** Exit 2: the error in one line, then where to read the usage; nothing on stdout. */
function assertUsageError(result: CommandResult, expected: RegExp): void {
  assert.equal(result.status, 2, show(result));
  const lines = result.stderr.trimEnd().split("\n");
  assert.equal(lines.length, 2, show(result));
  assert.match(lines[0] as string, /^eddy run: /, show(result));
  assert.match(lines[0] as string, expected, show(result));
  assert.equal(lines[1], "(eddy run --help shows its usage)", show(result));
  assert.equal(result.stdout, "", show(result));
}

const MODULE = "examples/greeter/module.yaml";
const CLUSTER = "kafka://127.0.0.1:9092/orders";

describe("eddy run --cluster: mistakes on the command line are one line, exit 2", () => {
  /** Runs `eddy run` on the greeter module with a fresh state directory, which must stay unmade. */
  async function run(...flags: string[]): Promise<CommandResult> {
    const stateDir = join(workspace(), "state");
    const result = await runEddyCommand(["run", MODULE, "--state-dir", stateDir, ...flags]);
    assert.equal(existsSync(stateDir), false, `nothing made before the usage error\n${show(result)}`);
    return result;
  }

  it("without --checkpoints, naming the flag and why", async () => {
    assertUsageError(
      await run("--cluster", CLUSTER),
      /^eddy run: --cluster needs --checkpoints URL: a partition moves between workers, so its snapshots must be in a blob store every worker reaches/,
    );
  });

  it("a URL without a cluster name, or with a broker that has no port", async () => {
    const checkpoints = `file://${workspace()}`;
    assertUsageError(
      await run("--cluster", "kafka://b1:9092", "--checkpoints", checkpoints),
      /^eddy run: --cluster kafka:\/\/b1:9092: no cluster name after the brokers \(kafka:\/\/HOST:PORT\[,HOST:PORT…\]\/NAME\)$/,
    );
    assertUsageError(
      await run("--cluster", "kafka://b1:9092,b2/orders", "--checkpoints", checkpoints),
      /^eddy run: --cluster kafka:\/\/b1:9092,b2\/orders: broker "b2" has no port/,
    );
    assertUsageError(
      await run("--cluster", "b1:9092/orders", "--checkpoints", checkpoints),
      /^eddy run: --cluster b1:9092\/orders: expected kafka:\/\/HOST:PORT\[,HOST:PORT…\]\/NAME$/,
    );
  });

  it("a worker id Kafka would refuse as a group.instance.id", async () => {
    const checkpoints = `file://${workspace()}`;
    assertUsageError(
      await run("--cluster", CLUSTER, "--checkpoints", checkpoints, "--worker-id", "worker one"),
      /^eddy run: --worker-id "worker one" is not a worker id: expected 1 to 249 of the letters a-z A-Z, digits, '\.', '_' and '-'/,
    );
  });

  it("an advertised URL that is not http(s)", async () => {
    const checkpoints = `file://${workspace()}`;
    assertUsageError(
      await run("--cluster", CLUSTER, "--checkpoints", checkpoints, "--advertise", "tcp://10.0.0.5:8090"),
      /^eddy run: --advertise "tcp:\/\/10\.0\.0\.5:8090": tcp is not http or https/,
    );
    assertUsageError(
      await run("--cluster", CLUSTER, "--checkpoints", checkpoints, "--admin-advertise", "10.0.0.5:8093"),
      /^eddy run: --admin-advertise "10\.0\.0\.5:8093": /,
    );
  });

  it("cluster flags without --cluster, naming each one given", async () => {
    assertUsageError(
      await run("--worker-id", "w-1"),
      /^eddy run: --worker-id need --cluster kafka:\/\/HOST:PORT\[,HOST:PORT…\]\/NAME$/,
    );
    assertUsageError(
      await run("--advertise", "http://10.0.0.5:8090", "--cluster-config", "cluster.properties"),
      /^eddy run: --advertise, --cluster-config need --cluster /,
    );
    assertUsageError(
      await run("--admin-advertise", "http://10.0.0.5:8093"),
      /^eddy run: --admin-advertise need --cluster /,
    );
  });

  it("a --cluster-config that does not exist, naming the file", async () => {
    const missing = join(workspace(), "no-such.properties");
    assertUsageError(
      await run("--cluster", CLUSTER, "--checkpoints", `file://${workspace()}`, "--cluster-config", missing),
      new RegExp(`^eddy run: --cluster-config ${missing.replace(/[.]/g, "\\.")}: ENOENT: no such file or directory`),
    );
  });

  it("a --cluster-config whose properties the connection refuses, naming the file and the property", async () => {
    const file = join(workspace(), "cluster.properties");
    writeFileSync(file, "# TLS to the brokers\nsecurity.protocol = SSL\nssl.truststore.location = /no/such/ca.pem\n");
    const result = await runEddyCommand([
      "run",
      MODULE,
      "--state-dir",
      join(workspace(), "state"),
      "--cluster",
      CLUSTER,
      "--checkpoints",
      `file://${workspace()}`,
      "--worker-id",
      "w-1",
      "--cluster-config",
      file,
    ]);
    assertUsageError(
      result,
      new RegExp(
        `^eddy run: --cluster-config ${file.replace(/[.]/g, "\\.")}: ssl\\.truststore\\.location /no/such/ca\\.pem: ENOENT`,
      ),
    );
  });

  it("a --port-offset that is not a whole number from 0 to 65535", async () => {
    for (const offset of ["x", "1.5", "65536"]) {
      assertUsageError(
        await run(`--port-offset=${offset}`),
        new RegExp(
          `^eddy run: --port-offset "${offset.replace(".", "\\.")}": expected a whole number from 0 to 65535$`,
        ),
      );
    }
  });
});

describe("eddy run --port-offset", { timeout: 60_000 }, () => {
  it("moves the playground ingress and egress by the offset", async () => {
    const offset = 7;
    const [ingressPort, egressPort] = (await freePorts(2)) as [number, number];
    const eddy = new EddyProcess({
      moduleYaml: `kind: io.statefun.playground.v1/ingress
spec:
  port: ${ingressPort - offset}
---
kind: io.statefun.playground.v1/egress
spec:
  port: ${egressPort - offset}
  topics: [greetings]
`,
      args: ["run", "{{MODULE}}", "--state-dir", "{{STATE_DIR}}", "--port-offset", String(offset)],
    });
    await withEddy(eddy, async () => {
      await eddy.start();
      assert.match(eddy.output, new RegExp(`eddy: ingress listening on http://127\\.0\\.0\\.1:${ingressPort}/`));
      assert.match(eddy.output, new RegExp(`eddy: egress listening on http://127\\.0\\.0\\.1:${egressPort}/`));
      // Listening there, not only saying so: the egress answers a read of its (empty) topic,
      // and the ingress answers HTTP.
      const egress = await fetch(`http://127.0.0.1:${egressPort}/greetings`);
      assert.deepEqual([egress.status, await egress.text()], [404, "no records in topic greetings\n"]);
      const ingress = await fetch(`http://127.0.0.1:${ingressPort}/`, { method: "POST", body: "" });
      await ingress.arrayBuffer();
      assert.ok(ingress.status >= 400 && ingress.status < 500, `the ingress answered ${ingress.status}`);
      assert.equal(await eddy.stop(), 0);
    });
  });

  it("an offset that pushes a port past 65535 is one line naming the port and the ingress", async () => {
    const directory = workspace();
    const module = join(directory, "module.yaml");
    writeFileSync(module, "kind: io.statefun.playground.v1/ingress\nspec:\n  port: 65000\n");
    const result = await runEddyCommand([
      "run",
      module,
      "--state-dir",
      join(directory, "state"),
      "--port-offset",
      "1000",
    ]);
    assert.equal(result.status, 1, show(result));
    assert.equal(result.stderr.trimEnd().split("\n").length, 1, show(result));
    assert.match(
      result.stderr,
      /^eddy run: port offset 1000 moves port 65000 of the ingress io\.statefun\.playground\.v1\/ingress \(.*module\.yaml:\d+:\d+\) to 66000, past 65535$/m,
      show(result),
    );
  });
});

describe("eddy run --cluster with what cluster mode does not run", { timeout: 60_000 }, () => {
  /** Starts a worker of `moduleYaml` against a broker that is not there: the module is refused before any connection. */
  async function start(moduleYaml: string): Promise<CommandResult> {
    const dir = workspace();
    const module = join(dir, "module.yaml");
    writeFileSync(module, moduleYaml);
    return runEddyCommand([
      "run",
      module,
      "--state-dir",
      join(dir, "state"),
      "--cluster",
      "kafka://127.0.0.1:1/refused",
      "--checkpoints",
      `file://${dir}/checkpoints`,
      "--worker-id",
      "w-1",
    ]);
  }

  /** Exit 1, one line naming every part refused and where the module declares it; nothing started. */
  function assertRefused(result: CommandResult, expected: RegExp): void {
    assert.equal(result.status, 1, show(result));
    const lines = result.stderr.trimEnd().split("\n");
    assert.equal(lines.length, 1, show(result));
    assert.match(lines[0] as string, expected, show(result));
  }

  it("a Kafka egress on another Kafka than the cluster's: its records could not be in the workers' transactions", async () => {
    const result = await start(`kind: io.statefun.kafka.v1/egress
spec:
  id: shop/out
  address: 127.0.0.1:2
  deliverySemantic:
    type: exactly-once
    transactionTimeout: 15min
---
kind: io.statefun.endpoints.v2/http
spec:
  functions: shop/*
  urlPathTemplate: http://127.0.0.1:1/{function.name}
`);
    assertRefused(
      result,
      /module\.yaml:\d+(:\d+)?: Kafka egress shop\/out publishes to 127\.0\.0\.1:2, but the cluster runs on 127\.0\.0\.1:1: .*must publish to the cluster's Kafka/,
    );
  });
});

describe("a cluster worker's state directory", { timeout: 60_000 }, () => {
  it("is not checkpointed or savepointed as a whole Eddy's state: one line naming the cluster", async () => {
    const dir = workspace();
    const stateDir = join(dir, "state");
    const store = new LoggedStore({ path: stateDir });
    await store.commit([rowWrite(storeTables.cluster.key(), { name: "shop", brokers: "127.0.0.1:9092" })]);
    await store.close();
    for (const args of [
      ["checkpoints", "create", "--state-dir", stateDir, "--checkpoints", `file://${dir}/checkpoints`],
      ["savepoint", "before-upgrade", "--state-dir", stateDir, "--checkpoints", `file://${dir}/checkpoints`],
    ]) {
      const result = await runEddyCommand(args);
      assert.equal(result.status, 1, show(result));
      const lines = result.stderr.trimEnd().split("\n");
      assert.equal(lines.length, 1, show(result));
      assert.match(
        lines[0] as string,
        /is the state directory of a worker of cluster shop, only a cache of the partitions it runs: .* with eddy savepoint <NAME> --cluster kafka:\/\/HOST:PORT\/shop$/,
      );
      assert.equal(existsSync(join(dir, "checkpoints")), false, "nothing was written to the store");
    }
  });
});
