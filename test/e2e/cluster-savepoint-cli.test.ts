// `eddy savepoint <NAME> --cluster` on a real broker: the command finds a two-worker cluster's
// workers in its group, asks one over its admin API (with the workers' bearer token from
// --token-file) and prints what was taken in one line; a second savepoint of the same name is the
// worker's refusal, in one line. The savepoint is then seen where an operator looks: eddy
// checkpoints list, and GET /v1/checkpoints on a worker (kind savepoint, 128 partitions, newest
// first). Restoring it into a state directory is one line saying how to seed a cluster from it
// instead. And the mistakes: a cluster that runs no worker, one whose workers run no admin
// listener (one line each, exit 1), --state-dir or --checkpoints with --cluster (usage, exit 2).
import assert from "node:assert/strict";
import { existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { createEndpoint, serve, statefulFunction, types } from "@eddy/sdk";
import { type KafkaBroker, startKafka } from "../support/kafka-broker.ts";
import {
  type CommandResult,
  EddyProcess,
  endpointAndIngressYaml,
  partitionsOf,
  runEddyCommand,
  withEddy,
} from "./smoke/cluster.ts";

const CLUSTER = "spcli";
const TYPENAME = "spcli/counter";
const PARTITIONS = 128;
const TOKEN = "savepoint-cli-token";
const AUTH = { authorization: `Bearer ${TOKEN}` };

const counter = statefulFunction({
  typename: TYPENAME,
  state: { count: types.int },
  handle(ctx) {
    ctx.storage.count = (ctx.storage.count ?? 0) + 1;
  },
});

let broker: KafkaBroker;
let functions: Awaited<ReturnType<typeof serve>>;
const scratch = mkdtempSync(join(tmpdir(), "eddy-spcli-"));
const checkpoints = join(scratch, "checkpoints");
const store = `file://${checkpoints}`;
const tokenFile = join(scratch, "token");
writeFileSync(tokenFile, `${TOKEN}\n`);
before(async () => {
  broker = await startKafka();
  functions = await serve(createEndpoint([counter]), { port: 0, host: "127.0.0.1" });
});
after(async () => {
  rmSync(scratch, { recursive: true, force: true });
  await functions?.close();
  await broker?.stop();
});

function worker(cluster: string, workerId: string, extraArgs: readonly string[] = []): EddyProcess {
  return new EddyProcess({
    moduleYaml: endpointAndIngressYaml("spcli/*", functions.url),
    args: [
      "run",
      "{{MODULE}}",
      "--state-dir",
      "{{STATE_DIR}}",
      "--cluster",
      `kafka://${broker.bootstrap}/${cluster}`,
      "--checkpoints",
      store,
      "--worker-id",
      workerId,
      ...extraArgs,
    ],
    env: { EDDY_TOKEN: TOKEN },
  });
}

/** The admin URL the worker printed when it started. */
function adminUrl(eddy: EddyProcess): string {
  const found = /admin listening on (http:\/\/[^/\s]+)\//.exec(eddy.output);
  assert.ok(found !== null, `no admin URL in:\n${eddy.output}`);
  return found[1] as string;
}

async function shared(a: EddyProcess, b: EddyProcess): Promise<void> {
  for (let tries = 0; tries < 200; tries++) {
    const [onA, onB] = [await partitionsOf(a, AUTH), await partitionsOf(b, AUTH)];
    if (onA.length > 0 && onB.length > 0 && onA.length + onB.length === PARTITIONS) return;
    await sleep(200);
  }
  assert.fail("the two workers do not share the partitions");
}

/** Sends until the ingress takes it (503 while the cluster moves the instance). */
async function send(via: EddyProcess, id: string): Promise<void> {
  for (let attempt = 0; attempt < 100; attempt++) {
    const response = await fetch(`${via.ingressUrl()}${TYPENAME}/${id}`, {
      method: "PUT",
      headers: { ...AUTH, "content-type": "text/plain" },
      body: "inc",
    }).catch(() => undefined);
    const body = (await response?.text()) ?? "";
    if (response?.status === 200) return;
    assert.ok(response === undefined || response.status === 503, `${id}: ${response?.status} ${body}`);
    await sleep(200);
  }
  assert.fail(`${id} was never taken`);
}

function show(result: CommandResult): string {
  return `exit ${result.status}\n--- stdout ---\n${result.stdout}--- stderr ---\n${result.stderr}`;
}

/** Exit 1 and one line on stderr, `eddy <command>: …` matching `expected`. */
function assertOneLineError(result: CommandResult, command: string, expected: RegExp): void {
  assert.equal(result.status, 1, show(result));
  const lines = result.stderr.trimEnd().split("\n");
  assert.equal(lines.length, 1, show(result));
  assert.match(lines[0] as string, new RegExp(`^eddy ${command}: `), show(result));
  assert.match(lines[0] as string, expected, show(result));
}

const literal = (text: string) => text.replace(/[.*+?^${}()|[\]\\/]/g, "\\$&");

describe("eddy savepoint --cluster", { timeout: 150_000 }, () => {
  it("takes a savepoint of the whole cluster through a worker; list, the admin API and restore see it", async () => {
    const a = worker(CLUSTER, "a");
    const b = worker(CLUSTER, "b");
    const cluster = `kafka://${broker.bootstrap}/${CLUSTER}`;
    await withEddy(a, () =>
      withEddy(b, async () => {
        await Promise.all([a.start(), b.start()]);
        await shared(a, b);
        for (let n = 0; n < 20; n++) await send(n % 2 === 0 ? a : b, `c${n}`);

        // Without the workers' token: their refusal, with how to give it.
        const refused = await runEddyCommand(["savepoint", "first", "--cluster", cluster]);
        assertOneLineError(
          refused,
          "savepoint",
          /missing bearer token: .*; give the token with --token-file F \(or EDDY_TOKEN\)$/,
        );

        const taken = await runEddyCommand(["savepoint", "first", "--cluster", cluster, "--token-file", tokenFile]);
        assert.equal(taken.status, 0, show(taken));
        assert.equal(taken.stderr, "", show(taken));
        const line = new RegExp(
          `^savepoint first of cluster ${CLUSTER} taken: 128 partitions from workers a, b \\(generation \\d+\\), (\\d+) rows, \\d+ messages in flight, \\d+\\.\\d (kB|MB); commits held \\d+ ms\\n$`,
        );
        assert.match(taken.stdout, line, show(taken));
        // Each counter's count is a row (and each partition's inbox position, besides).
        assert.ok(Number(line.exec(taken.stdout)?.[1]) >= 20, show(taken));

        // The same name again: the worker's refusal, in its words.
        const again = await runEddyCommand(["savepoint", "first", "--cluster", cluster, "--token-file", tokenFile]);
        assertOneLineError(again, "savepoint", /already holds a savepoint named first$/);

        const second = await runEddyCommand(["savepoint", "second", "--cluster", cluster, "--token-file", tokenFile]);
        assert.equal(second.status, 0, show(second));

        const listed = await runEddyCommand(["checkpoints", "list", "--checkpoints", store]);
        assert.equal(listed.status, 0, show(listed));
        assert.match(
          listed.stdout,
          new RegExp(`^savepoint first .* of cluster ${CLUSTER} \\(generation \\d+, 128 partitions\\)`, "m"),
          show(listed),
        );

        // A worker's admin API lists the cluster's savepoints, newest first.
        for (const via of [a, b]) {
          const response = await fetch(`${adminUrl(via)}/v1/checkpoints`, { headers: AUTH });
          const body = (await response.json()) as { enabled: boolean; checkpoints: Record<string, unknown>[] };
          assert.equal(response.status, 200, JSON.stringify(body));
          assert.equal(body.enabled, true);
          assert.deepEqual(
            body.checkpoints.map((entry) => entry.name),
            ["second", "first"],
            JSON.stringify(body),
          );
          const first = body.checkpoints[1] as Record<string, unknown>;
          assert.equal(first.kind, "savepoint");
          assert.equal(first.cluster, CLUSTER);
          assert.equal(first.partitions, PARTITIONS);
          assert.equal(first.seq, undefined, "a cluster's savepoint has no one commit sequence number");
          assert.ok(typeof first.id === "string" && typeof first.createdAt === "string", JSON.stringify(first));
          for (const count of ["generation", "rows", "inboxRecords", "bytes"]) {
            assert.equal(typeof first[count], "number", `${count}: ${JSON.stringify(first)}`);
          }
          assert.ok((first.rows as number) >= 20 && (first.bytes as number) > 0, JSON.stringify(first));
        }
      }),
    );

    // A cluster's savepoint is not restored into a state directory: one line saying what to do.
    const stateDir = join(scratch, "restored");
    const restored = await runEddyCommand([
      "checkpoints",
      "restore",
      "first",
      "--state-dir",
      stateDir,
      "--checkpoints",
      store,
    ]);
    assertOneLineError(
      restored,
      "checkpoints",
      new RegExp(
        `^eddy checkpoints: first in ${literal(store)} is a savepoint of cluster ${CLUSTER}: seed a new cluster from it with eddy checkpoints restore first --cluster kafka://HOST:PORT/NEW-NAME$`,
      ),
    );
    assert.ok(!existsSync(stateDir) || readdirSync(stateDir).length === 0, "nothing was restored");
  });

  it("a cluster that runs no worker, or none with an admin listener: one line, exit 1", async () => {
    const nobody = await runEddyCommand(["savepoint", "x", "--cluster", `kafka://${broker.bootstrap}/nosuchcluster`]);
    assertOneLineError(
      nobody,
      "savepoint",
      /cluster nosuchcluster has no running workers .*: a savepoint of a cluster is taken by its running workers; start them, then take it$/,
    );

    const quiet = worker("spquiet", "q", ["--admin-port", "off"]);
    await withEddy(quiet, async () => {
      await quiet.start();
      const result = await runEddyCommand([
        "savepoint",
        "x",
        "--cluster",
        `kafka://${broker.bootstrap}/spquiet`,
        "--token-file",
        tokenFile,
      ]);
      assertOneLineError(result, "savepoint", /no running worker of cluster spquiet \(q\) has an admin listener: /);
    });
  });

  it("--state-dir or --checkpoints with --cluster is a usage error", async () => {
    const cluster = `kafka://${broker.bootstrap}/${CLUSTER}`;
    for (const [flags, named] of [
      [["--state-dir", join(scratch, "d")], "--state-dir is"],
      [["--checkpoints", store], "--checkpoints is"],
      [["--state-dir", join(scratch, "d"), "--checkpoints", store], "--state-dir and --checkpoints are"],
    ] as const) {
      const result = await runEddyCommand(["savepoint", "x", "--cluster", cluster, ...flags]);
      assert.equal(result.status, 2, show(result));
      const lines = result.stderr.trimEnd().split("\n");
      assert.equal(lines.length, 2, show(result));
      assert.match(lines[0] as string, new RegExp(`^eddy savepoint: ${named} for an embedded Eddy; `), show(result));
      assert.equal(lines[1], "(eddy savepoint --help shows its usage)", show(result));
      assert.equal(result.stdout, "", show(result));
    }
    assert.equal(existsSync(join(scratch, "d")), false, "no state directory made");
  });
});
