// Replaying dead letters while the engine runs (Engine.replayDeadLetters), as a cluster
// worker's admin route does, and those routes on the playground ingress: a letter is
// delivered again in a commit of its partition, exactly once, then gone; a name that is not a
// replayable letter, or a partition run elsewhere, replays nothing; a refused commit takes the
// replay back.
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { createEndpoint, statefulFunction, types } from "@eddy/sdk";
import { clusterDeadLetterAdmin } from "../src/cluster/dead-letter-admin.ts";
import type { FunctionTypename } from "../src/core/address.ts";
import type { FunctionSettings } from "../src/core/partition-core.ts";
import { type CommitTarget, Engine } from "../src/engine/engine.ts";
import { InProcessInvoker } from "../src/invoker/in-process-invoker.ts";
import { PlaygroundIngress } from "../src/io/playground/ingress.ts";
import { LmdbStore } from "../src/store/lmdb-store.ts";

const PARTITIONS = 4;
const TYPENAME = "replay/counter" as FunctionTypename;

const settings: FunctionSettings = {
  maxBatchCount: 1000,
  maxBatchBytes: 4 << 20,
  backlogLimit: 1000,
  failurePolicy: "dead-letter",
};

/** Ids whose messages fail for now (each "inc" then becomes a dead letter). */
const failing = new Set<string>();

/** Counts "inc"s; "get" answers the count. */
const counter = statefulFunction({
  typename: TYPENAME,
  state: { count: types.int },
  handle(ctx, msg) {
    if (msg.as(types.string) === "get") {
      ctx.reply(ctx.storage.count ?? 0, types.int);
      return;
    }
    if (failing.has(ctx.self.id)) throw new Error(`${ctx.self.id} fails for now`);
    ctx.storage.count = (ctx.storage.count ?? 0) + 1;
  },
});

const directories: string[] = [];
after(() => {
  for (const directory of directories) rmSync(directory, { recursive: true, force: true });
});

function envelope(id: string, text: string) {
  return {
    target: { typename: TYPENAME, id },
    argument: { typename: "io.statefun.types/string", hasValue: true, value: types.string.serialize(text) },
  };
}

/** An engine over a fresh store; `refuseNext` makes its target refuse the next commit (as a cluster may). */
function engineWith(options: { readonly owned?: readonly number[] } = {}) {
  const dir = mkdtempSync(join(tmpdir(), "eddy-replay-"));
  directories.push(dir);
  const store = new LmdbStore({ path: dir });
  const control = { refuseNext: false };
  const commitTarget: CommitTarget = {
    async commit(batch) {
      if (control.refuseNext) {
        control.refuseNext = false;
        return { ok: false, code: "commit-aborted", message: "the group rebalanced", retriable: true };
      }
      await store.commit(batch.writes);
      return undefined;
    },
  };
  const engine = new Engine({
    store,
    commitTarget,
    catalog: {
      functionSettings: (typename) => (typename === TYPENAME ? settings : undefined),
      hasEgress: () => false,
    },
    invoker: new InProcessInvoker(createEndpoint([counter])),
    partitionCount: PARTITIONS,
    ...(options.owned === undefined ? {} : { ownedPartitions: options.owned }),
  });
  engine.start();
  return { engine, control };
}

async function count(engine: Engine, id: string): Promise<number> {
  const accepted = await engine.accept(envelope(id, "get"), { expectReply: true });
  assert.ok(accepted.ok && accepted.requestId !== undefined, JSON.stringify(accepted));
  const reply = await engine.awaitReply(accepted.requestId, 5_000);
  assert.equal(reply.state, "answered");
  return reply.state === "answered" ? types.int.deserialize(reply.value.value) : -1;
}

/** Waits until the engine's committed dead letters number `expected`. */
async function letters(engine: Engine, expected: number) {
  for (let tries = 0; tries < 500; tries++) {
    const listed = engine.deadLetters();
    if (listed.length === expected && engine.invocationsInFlight === 0) return listed;
    await new Promise((resume) => setTimeout(resume, 5));
  }
  assert.fail(`expected ${expected} dead letters, have ${engine.deadLetters().length}`);
}

async function deadLettered(engine: Engine, ids: readonly string[]) {
  for (const id of ids) failing.add(id);
  for (const id of ids) assert.ok((await engine.accept(envelope(id, "inc"))).ok);
  const listed = await letters(engine, ids.length);
  for (const id of ids) failing.delete(id);
  return listed;
}

describe("replaying dead letters while running", () => {
  it("replays the letters named in a commit, each once, and they are gone", async () => {
    const { engine } = engineWith();
    const listed = await deadLettered(engine, ["a", "b", "c"]);
    const a = listed.find(({ letter }) => letter.target.id === "a");
    assert.ok(a !== undefined);
    const replayed = await engine.replayDeadLetters([{ partition: a.partition, seq: a.letter.seq }]);
    assert.ok(replayed.ok, JSON.stringify(replayed));
    assert.deepEqual(
      replayed.replayed.map(({ letter }) => letter.target.id),
      ["a"],
    );
    assert.deepEqual((await letters(engine, 2)).map(({ letter }) => letter.target.id).sort(), ["b", "c"]);
    assert.equal(await count(engine, "a"), 1);
    // Again: it is not a letter any more, so nothing is replayed.
    const again = await engine.replayDeadLetters([{ partition: a.partition, seq: a.letter.seq }]);
    assert.ok(!again.ok && again.code === "no-letter", JSON.stringify(again));
    // All or none: one name that is no letter, and the other is not replayed either.
    const b = listed.find(({ letter }) => letter.target.id === "b");
    assert.ok(b !== undefined);
    const mixed = await engine.replayDeadLetters([
      { partition: b.partition, seq: b.letter.seq },
      { partition: a.partition, seq: a.letter.seq },
    ]);
    assert.ok(!mixed.ok && mixed.code === "no-letter");
    assert.deepEqual(mixed.missing, [{ partition: a.partition, seq: a.letter.seq }]);
    assert.equal((await letters(engine, 2)).length, 2);
    // "all": the rest, once each.
    const all = await engine.replayDeadLetters("all");
    assert.ok(all.ok);
    assert.equal(all.replayed.length, 2);
    await letters(engine, 0);
    for (const id of ["a", "b", "c"]) assert.equal(await count(engine, id), 1, `count of ${id}`);
    const none = await engine.replayDeadLetters("all");
    assert.ok(none.ok && none.replayed.length === 0);
    await engine.stop();
  });

  it("a replay whose commit is refused replays nothing, and the letter can be replayed again", async () => {
    const { engine, control } = engineWith();
    const [letter] = await deadLettered(engine, ["r"]);
    assert.ok(letter !== undefined);
    control.refuseNext = true;
    const refused = await engine.replayDeadLetters([{ partition: letter.partition, seq: letter.letter.seq }]);
    assert.ok(!refused.ok && refused.code === "commit-aborted", JSON.stringify(refused));
    assert.equal((await letters(engine, 1)).length, 1, "the letter is back");
    assert.equal(await count(engine, "r"), 0);
    const replayed = await engine.replayDeadLetters([{ partition: letter.partition, seq: letter.letter.seq }]);
    assert.ok(replayed.ok && replayed.replayed.length === 1);
    await letters(engine, 0);
    assert.equal(await count(engine, "r"), 1);
    await engine.stop();
  });

  it("a letter in a partition another worker runs is refused, naming the partition", async () => {
    const { engine } = engineWith({ owned: [0, 1] });
    const replayed = await engine.replayDeadLetters([
      { partition: 0, seq: 2 ** 32 + 1 },
      { partition: 3, seq: 2 ** 32 + 1 },
    ]);
    assert.ok(!replayed.ok && replayed.code === "not-owner", JSON.stringify(replayed));
    assert.deepEqual(replayed.partitions, [3]);
    await engine.stop();
  });
});

describe("the dead-letter routes of the playground ingress", () => {
  it("a cluster worker's ingress lists and replays; a three-segment path is still a function's", async () => {
    const { engine } = engineWith();
    const ingress = new PlaygroundIngress(engine, {
      port: 0,
      host: "127.0.0.1",
      maxBodyBytes: 1 << 20,
      token: "secret",
      routing: {
        ownerOfTarget: () => undefined,
        ownerOfRequest: () => undefined,
        deadLetters: clusterDeadLetterAdmin(engine, "w1", PARTITIONS),
      },
    });
    const url = await ingress.listen();
    const auth = { authorization: "Bearer secret" };
    try {
      await deadLettered(engine, ["x", "y"]);
      assert.equal((await fetch(`${url}dead-letters`)).status, 401, "behind the token");
      const listing = (await (await fetch(`${url}dead-letters`, { headers: auth })).json()) as {
        workerId: string;
        partitionCount: number;
        partitions: number[];
        letters: {
          id: string;
          partition: number;
          target: { id: string };
          invocations: { argument: { value: string } }[];
        }[];
      };
      assert.equal(listing.workerId, "w1");
      assert.equal(listing.partitionCount, PARTITIONS);
      assert.deepEqual(listing.partitions, [0, 1, 2, 3]);
      assert.deepEqual(listing.letters.map(({ target }) => target.id).sort(), ["x", "y"]);
      assert.equal(
        listing.letters[0]?.invocations[0]?.argument.value,
        Buffer.from(types.string.serialize("inc")).toString("base64"),
      );

      const bad = await fetch(`${url}dead-letters/replay`, {
        method: "POST",
        headers: auth,
        body: '{"ids": ["nope"]}',
      });
      assert.equal(bad.status, 400);
      assert.match(await bad.text(), /"nope" is not a dead letter id/);
      const x = listing.letters.find(({ target }) => target.id === "x");
      const replay = await fetch(`${url}dead-letters/replay`, {
        method: "POST",
        headers: auth,
        body: JSON.stringify({ ids: [x?.id] }),
      });
      assert.equal(replay.status, 200);
      const replayed = (await replay.json()) as { workerId: string; replayed: { id: string }[] };
      assert.deepEqual(replayed, { workerId: "w1", replayed: [listing.letters.find(({ id }) => id === x?.id)] });
      const again = await fetch(`${url}dead-letters/replay`, {
        method: "POST",
        headers: auth,
        body: JSON.stringify({ ids: [x?.id] }),
      });
      assert.equal(again.status, 404);
      assert.deepEqual(((await again.json()) as { missing: string[] }).missing, [x?.id]);
      const all = await fetch(`${url}dead-letters/replay`, { method: "POST", headers: auth, body: '{"all": true}' });
      assert.equal(all.status, 200, await all.clone().text());
      assert.equal(((await all.json()) as { replayed: unknown[] }).replayed.length, 1);
      await letters(engine, 0);
      assert.equal(await count(engine, "x"), 1);
      assert.equal(await count(engine, "y"), 1);
      // A function whose namespace is "dead-letters" is still reached: its path has three segments.
      const fn = await fetch(`${url}dead-letters/replay/z`, { method: "POST", headers: auth, body: "inc" });
      assert.equal(fn.status, 404);
      assert.match(await fn.text(), /unknown function type dead-letters\/replay/);
    } finally {
      await ingress.close();
      await engine.stop();
    }
  });

  it("an embedded ingress answers the routes with where to look instead", async () => {
    const { engine } = engineWith();
    const ingress = new PlaygroundIngress(engine, { port: 0, host: "127.0.0.1", maxBodyBytes: 1 << 20 });
    const url = await ingress.listen();
    try {
      const response = await fetch(`${url}dead-letters`);
      assert.equal(response.status, 404);
      assert.match(await response.text(), /cluster workers only; here use eddy dead-letters list\|replay --state-dir/);
    } finally {
      await ingress.close();
      await engine.stop();
    }
  });
});
