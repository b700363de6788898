// Savepoints of a cluster, on a real broker: tokens hop between the accounts of a two-worker
// cluster (most hops cross from one worker to the other, through the inbox topic) while
// savepoints are taken through either worker's admin API. A new cluster is seeded from one
// (eddy checkpoints restore --cluster) and run on two new workers with empty disks: it finishes
// the hops that were under way, and ends with exactly the totals a run without a savepoint
// ends with. A cut that lost a message in flight, or took one twice, changes the totals. Also:
// a savepoint reaches a worker restarted on another admin port, `eddy checkpoints verify` finds
// a savepoint's damaged object, and a cluster that holds anything is not seeded.
import assert from "node:assert/strict";
import { readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, it } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { addressKey, type FunctionTypename } from "../../packages/runtime/src/core/address.ts";
import { partitionOf } from "../../packages/runtime/src/core/partitioning.ts";
import { type EddyProcess, partitionsOf, runEddyCommand, withEddy } from "./smoke/cluster.ts";
import {
  adminUrlOf,
  drainedTokens,
  finalTotals,
  requestSavepoint,
  sendToken,
  sharePartitions,
  TOKEN_TYPENAME,
  type TokenWorkload,
  tokenClusters,
  tokenTotals,
} from "./smoke/token-kit.ts";

const PARTITIONS = 128;
const WORKLOAD: TokenWorkload = { accounts: 24, tokens: 24, hops: 150 };

const { checkpoints, worker, seed } = tokenClusters(WORKLOAD, "eddy-sp-checkpoints-");

async function takeSavepoint(via: EddyProcess, name: string): Promise<Record<string, unknown>> {
  const { status, body } = await requestSavepoint(via, name);
  assert.equal(status, 200, JSON.stringify(body));
  return body;
}

describe("savepoints of a cluster", { timeout: 240_000 }, () => {
  it("seed a new cluster that ends with exactly the totals, messages in flight included", async () => {
    const a = worker("spa", "a");
    const b = worker("spa", "b");
    let chosen: Record<string, unknown> | undefined;
    let restartName = "";
    await withEddy(a, () =>
      withEddy(b, async () => {
        await a.start();
        await b.start();
        await sharePartitions([a, b]);
        for (let token = 0; token < WORKLOAD.tokens; token++) await sendToken(token % 2 === 0 ? a : b, WORKLOAD, token);
        // Savepoints while the tokens hop, asked of either worker in turn: the one to restore is
        // one that caught messages on their way between workers, in the inbox.
        const taken: Record<string, unknown>[] = [];
        for (let round = 0; round < 6 && chosen === undefined; round++) {
          await sleep(400);
          const savepoint = await takeSavepoint(round % 2 === 0 ? a : b, `mid-${round}`);
          assert.equal(savepoint.partitions, PARTITIONS);
          assert.deepEqual(savepoint.workers, ["a", "b"]);
          taken.push(savepoint);
          if ((savepoint.inboxRecords as number) > 0) chosen = savepoint;
        }
        assert.ok(chosen !== undefined, `no savepoint caught a message in an inbox: ${JSON.stringify(taken)}`);
        // b killed and back within the session timeout, on another admin port: Kafka keeps the
        // generation and its assignment, which names b's old port; a savepoint still reaches b.
        await b.kill();
        await b.start();
        let afterRestart: { status: number; body: Record<string, unknown> } | undefined;
        for (let attempt = 0; attempt < 40; attempt++) {
          afterRestart = await requestSavepoint(a, `after-restart-${attempt}`);
          if (afterRestart.status !== 503 || afterRestart.body.code !== "savepoint-rebalancing") break;
          await sleep(250);
        }
        assert.equal(afterRestart?.status, 200, JSON.stringify(afterRestart?.body));
        restartName = afterRestart?.body.name as string;
        // So does the admin API's forwarding: an account b runs, read through a.
        const onB = await partitionsOf(b);
        const account = Array.from({ length: WORKLOAD.accounts }, (_, n) => `a${n}`).find((id) =>
          onB.includes(partitionOf(addressKey({ typename: TOKEN_TYPENAME as FunctionTypename, id }), PARTITIONS)),
        );
        assert.ok(account !== undefined, "no account runs on b");
        const state = await fetch(`${adminUrlOf(a)}/v1/state/${TOKEN_TYPENAME}/${account}`);
        assert.equal(state.status, 200, await state.text());
        // The cluster itself goes on to the same totals: the holds lost nothing.
        await drainedTokens(a, WORKLOAD);
        assert.equal(await a.stop(), 0);
        assert.equal(await b.stop(), 0);
      }),
    );
    const name = (chosen as Record<string, unknown>).name as string;

    // verify reads every object of a savepoint, as a seed would: one with a flipped byte is BAD.
    const sound = await runEddyCommand(["checkpoints", "verify", name, "--checkpoints", `file://${checkpoints}`]);
    assert.equal(sound.status, 0, sound.stdout + sound.stderr);
    assert.match(sound.stdout, new RegExp(`^ok   savepoint ${name} \\(.*\\) of cluster spa`, "m"));
    const objects = join(checkpoints, "cluster-savepoints", restartName);
    const attempt = readdirSync(objects).find((entry) => entry !== "manifest.json") as string;
    const object = join(objects, attempt, readdirSync(join(objects, attempt))[0] as string);
    const bytes = readFileSync(object);
    bytes[bytes.length - 1] = (bytes[bytes.length - 1] as number) ^ 0xff;
    writeFileSync(object, bytes);
    const broken = await runEddyCommand([
      "checkpoints",
      "verify",
      restartName,
      "--checkpoints",
      `file://${checkpoints}`,
    ]);
    assert.equal(broken.status, 1, broken.stdout + broken.stderr);
    assert.match(
      broken.stdout,
      /^BAD {2}savepoint after-restart-\d+ .*\n {7}.*: its size or SHA-256 is not what the manifest says$/m,
    );

    const listed = await runEddyCommand(["checkpoints", "list", "--checkpoints", `file://${checkpoints}`]);
    assert.equal(listed.status, 0, listed.stderr);
    assert.match(
      listed.stdout,
      new RegExp(`^savepoint ${name} .* of cluster spa \\(generation \\d+, 128 partitions\\)`, "m"),
    );

    const seeded = await seed(name, "spb");
    assert.equal(seeded.status, 0, seeded.stderr);
    assert.match(
      seeded.stdout,
      new RegExp(`^seeded cluster spb from savepoint ${name} of cluster spa: 128 partitions`),
    );
    // A cluster that holds anything is not seeded again.
    const again = await seed(name, "spb");
    assert.equal(again.status, 1, again.stdout);
    assert.equal(again.stderr.trimEnd().split("\n").length, 1, again.stderr);
    assert.match(again.stderr, /cluster spb is not new: .* restore it under another cluster name/);

    const c = worker("spb", "c");
    const d = worker("spb", "d");
    await withEddy(c, () =>
      withEddy(d, async () => {
        await c.start();
        await d.start();
        await sharePartitions([c, d]);
        await drainedTokens(d, WORKLOAD);
        // Settled: nothing more arrives later.
        await sleep(1000);
        assert.deepEqual(await tokenTotals(c, WORKLOAD), finalTotals(WORKLOAD));
      }),
    );
  });
});
