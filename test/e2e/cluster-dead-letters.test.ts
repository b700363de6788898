// Dead letters in cluster mode, on a real broker with two workers: messages a function fails
// become dead letters in the partitions of both workers; `eddy dead-letters list --cluster`
// lists them across the workers while they run, `replay --cluster` replays them while they
// run (the function now succeeds), each applied exactly once (the function's state counts
// them), and the offline commands refuse a worker's state directory (only a cache), naming
// the cluster. A worker that does not answer is named, never skipped.
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { createEndpoint, serve, statefulFunction, types } from "@eddy/sdk";
import { addressKey, type FunctionTypename } from "../../packages/runtime/src/core/address.ts";
import { partitionOf } from "../../packages/runtime/src/core/partitioning.ts";
import { type KafkaBroker, startKafka } from "../support/kafka-broker.ts";
import { EddyProcess, partitionsOf, runEddyCommand, withEddy } from "./smoke/cluster.ts";

const CLUSTER = "dl";
const TYPENAME = "dl/counter" as FunctionTypename;
/** eddy run --cluster's default. */
const PARTITIONS = 128;
/** Letters per worker. */
const PER_WORKER = 3;

/** While set, every "inc" fails (and, its call budget spent, becomes a dead letter). */
let failing = true;
const counter = statefulFunction({
  typename: TYPENAME,
  state: { count: types.int },
  handle(ctx, msg) {
    if (msg.as(types.string) === "get") {
      ctx.reply(ctx.storage.count ?? 0, types.int);
      return;
    }
    if (failing) throw new Error("failing for now");
    ctx.storage.count = (ctx.storage.count ?? 0) + 1;
  },
});

let broker: KafkaBroker;
const checkpoints = mkdtempSync(join(tmpdir(), "eddy-dl-checkpoints-"));
let functions: Awaited<ReturnType<typeof serve>>;
before(async () => {
  broker = await startKafka();
  functions = await serve(createEndpoint([counter]), { port: 0, host: "127.0.0.1" });
});
after(async () => {
  rmSync(checkpoints, { recursive: true, force: true });
  await functions?.close();
  await broker?.stop();
});

function worker(workerId: string): EddyProcess {
  return new EddyProcess({
    moduleYaml: `kind: io.statefun.endpoints.v2/http
spec:
  functions: dl/*
  urlPathTemplate: ${functions.url}
  transport:
    call: 400ms
---
kind: io.statefun.playground.v1/ingress
spec:
  port: {{INGRESS_PORT}}
`,
    args: [
      "run",
      "{{MODULE}}",
      "--state-dir",
      "{{STATE_DIR}}",
      "--cluster",
      `kafka://${broker.bootstrap}/${CLUSTER}`,
      "--checkpoints",
      `file://${checkpoints}`,
      "--worker-id",
      workerId,
      "--failure-policy",
      "dead-letter",
    ],
  });
}

/** Sends until the ingress takes it (503 while the cluster moves the instance). */
async function send(via: EddyProcess, id: string, text: string, wait = false): Promise<string> {
  for (let attempt = 0; attempt < 100; attempt++) {
    const response = await fetch(`${via.ingressUrl()}dl/counter/${id}`, {
      method: "PUT",
      headers: { "content-type": "text/plain", ...(wait ? { prefer: "wait=10" } : {}) },
      body: text,
    }).catch(() => undefined);
    const body = (await response?.text()) ?? "";
    if (response?.status === 200) return body;
    assert.ok(response === undefined || response.status === 503, `${id}: ${response?.status} ${body}`);
    await sleep(200);
  }
  assert.fail(`${id} was never taken`);
}

/** `eddy dead-letters` with the cluster's URL. */
function deadLetters(...args: string[]) {
  return runEddyCommand(["dead-letters", ...args, "--cluster", `kafka://${broker.bootstrap}/${CLUSTER}`]);
}

interface JsonLetter {
  readonly id: string;
  readonly partition: number;
  readonly target: { readonly id: string };
}

describe("eddy dead-letters --cluster", { timeout: 90_000 }, () => {
  it("lists and replays the letters of both workers while they run, each once; a worker's state directory is refused", async () => {
    const a = worker("a");
    const b = worker("b");
    await withEddy(a, () =>
      withEddy(b, async () => {
        await a.start();
        await b.start();
        // Both workers run their share: pick ids whose partitions each runs.
        let owned: [number[], number[]] = [[], []];
        for (let tries = 0; tries < 150; tries++) {
          owned = [await partitionsOf(a), await partitionsOf(b)];
          if (owned[0].length > 0 && owned[1].length > 0 && owned[0].length + owned[1].length === PARTITIONS) break;
          await sleep(200);
        }
        assert.equal(owned[0].length + owned[1].length, PARTITIONS, "the two workers share the partitions");
        const ids: string[] = [];
        for (const mine of owned) {
          let picked = 0;
          for (let n = 0; picked < PER_WORKER; n++) {
            const id = `i${n}`;
            if (!ids.includes(id) && mine.includes(partitionOf(addressKey({ typename: TYPENAME, id }), PARTITIONS))) {
              ids.push(id);
              picked++;
            }
          }
        }
        // All through a: half of them are forwarded to b.
        for (const id of ids) await send(a, id, "inc");

        let listed: JsonLetter[] = [];
        for (let tries = 0; tries < 60 && listed.length < ids.length; tries++) {
          await sleep(250);
          const list = await deadLetters("list", "--json");
          assert.equal(list.status, 0, list.stderr);
          listed = JSON.parse(list.stdout) as JsonLetter[];
        }
        assert.deepEqual(listed.map(({ target }) => target.id).sort(), [...ids].sort(), "every letter, once");
        const text = await deadLetters("list");
        assert.equal(text.status, 0, text.stderr);
        assert.match(text.stdout, new RegExp(`^${ids.length} dead letter\\(s\\) in cluster ${CLUSTER}$`, "m"));
        for (const { id, target } of listed) {
          assert.match(text.stdout, new RegExp(`^${id} {2}\\S+ {2}dl/counter/${target.id} {2}1 message\\(s\\)$`, "m"));
        }

        // The offline commands refuse a worker's state directory, naming the cluster.
        for (const args of [["list"], ["replay", "--all"]]) {
          const refused = await runEddyCommand(["dead-letters", ...args, "--state-dir", a.stateDir]);
          assert.equal(refused.status, 1, refused.stderr);
          assert.equal(refused.stderr.trim().split("\n").length, 1, refused.stderr);
          assert.match(
            refused.stderr,
            new RegExp(
              `^eddy dead-letters: ${a.stateDir} is the state directory of a worker of cluster ${CLUSTER}, only a cache .*eddy dead-letters ${args[0]} .*--cluster kafka://${broker.bootstrap}/${CLUSTER}\\n$`,
            ),
          );
        }

        // Replay while running: one by its id (on b, whichever worker runs it), then all the rest.
        failing = false;
        const first = listed.find(({ partition }) => owned[1].includes(partition)) as JsonLetter;
        const one = await deadLetters("replay", first.id);
        assert.equal(one.status, 0, one.stderr);
        assert.equal(
          one.stdout,
          `replayed ${first.id} (dl/counter/${first.target.id})\n1 dead letter(s) replayed in cluster ${CLUSTER}\n`,
        );
        const again = await deadLetters("replay", first.id);
        assert.equal(again.status, 1, again.stderr);
        assert.match(
          again.stderr,
          new RegExp(`no dead letter ${first.id} in cluster ${CLUSTER}; nothing was replayed`),
        );
        const rest = await deadLetters("replay", "--all");
        assert.equal(rest.status, 0, rest.stderr);
        assert.match(
          rest.stdout,
          new RegExp(`^${ids.length - 1} dead letter\\(s\\) replayed in cluster ${CLUSTER}$`, "m"),
        );
        const empty = await deadLetters("list");
        assert.equal(empty.status, 0, empty.stderr);
        assert.match(empty.stdout, new RegExp(`^0 dead letter\\(s\\) in cluster ${CLUSTER}$`, "m"));
        // Exactly once: each instance's state counted its one message once.
        for (const id of ids) assert.equal(Number(await send(b, id, "get", true)), 1, id);

        // A worker that does not answer is named, and the listing says it is partial.
        await b.kill();
        const partial = await runEddyCommand([
          "dead-letters",
          "list",
          "--worker",
          a.ingressUrl(),
          "--worker",
          b.ingressUrl(),
        ]);
        assert.equal(partial.status, 1, partial.stderr);
        assert.match(partial.stdout, /^0 dead letter\(s\) in workers .* \(partial listing\)$/m);
        assert.match(
          partial.stderr,
          new RegExp(
            `^eddy dead-letters: partial listing of workers .*: ${b.ingressUrl().replace(/\/$/, "")} did not answer`,
          ),
        );
        assert.match(partial.stderr, /partitions [\d, ]+ not listed/);
      }),
    );
  });
});
