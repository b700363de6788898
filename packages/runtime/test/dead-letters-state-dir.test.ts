// The offline dead-letter tools on a cluster worker's state directory (storeTables.cluster
// set): only a cache of the worker's partitions, so listing and replay refuse it in one line,
// naming the cluster and the command that works, and write nothing there.
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { type DeadLetter, deadLetterId } from "../src/core/records.ts";
import { inPartition, rowWrite, scanRows, storeTables, tables } from "../src/core/schema.ts";
import {
  DeadLetterError,
  deadLetterFromJson,
  deadLetterToJson,
  listDeadLetters,
  queueReplay,
  refuseClusterWorkerStateDir,
} from "../src/dead-letters.ts";
import { LoggedStore } from "../src/store/logged-store.ts";

const directories: string[] = [];
after(() => {
  for (const directory of directories) rmSync(directory, { recursive: true, force: true });
});

const letter: DeadLetter = {
  seq: 2 ** 32 + 1,
  target: { typename: "test/fn", id: "7" } as DeadLetter["target"],
  invocations: [
    {
      argument: { typename: "test/text", hasValue: true, value: Buffer.from("hello") },
      headers: [
        { key: "k", value: Buffer.from("v") },
        { key: "none", value: null },
      ],
    },
  ],
  reason: "it failed",
  atMs: Date.UTC(2025, 0, 1),
};

async function stateDir(cluster: boolean): Promise<string> {
  const dir = mkdtempSync(join(tmpdir(), "eddy-dl-dir-"));
  directories.push(dir);
  const store = new LoggedStore({ path: dir });
  await store.commit([
    rowWrite(storeTables.partitionCount.key(), 2),
    rowWrite(inPartition(1, tables.dead.key(letter.seq)), letter),
    ...(cluster ? [rowWrite(storeTables.cluster.key(), { name: "prod", brokers: "k1:9092,k2:9092" })] : []),
  ]);
  await store.close();
  return dir;
}

describe("dead letters in a cluster worker's state directory", () => {
  it("list and replay refuse it, naming the cluster and the command to use; nothing is written", async () => {
    const dir = await stateDir(true);
    const expected = (action: string) =>
      new RegExp(
        `^${dir} is the state directory of a worker of cluster prod, only a cache of the partitions it runs; ${action} the cluster's dead letters through its running workers: eddy dead-letters ${action} .*--cluster kafka://k1:9092,k2:9092/prod$`,
      );
    await assert.rejects(listDeadLetters(dir), (error: unknown) => {
      assert.ok(error instanceof DeadLetterError);
      assert.match(error.message, expected("list"));
      return true;
    });
    for (const refusal of [queueReplay(dir, "all"), refuseClusterWorkerStateDir(dir, "replay")]) {
      await assert.rejects(refusal, (error: unknown) => {
        assert.ok(error instanceof DeadLetterError);
        assert.match(error.message, expected("replay"));
        return true;
      });
    }
    const store = await LoggedStore.openReadOnly(dir);
    try {
      assert.equal([...scanRows(store, inPartition(1, tables.replay.all))].length, 0, "nothing queued");
      assert.equal([...scanRows(store, inPartition(1, tables.dead.all))].length, 1, "the letter is where it was");
    } finally {
      await store.close();
    }
  });

  it("an embedded state directory is listed as before", async () => {
    const dir = await stateDir(false);
    await refuseClusterWorkerStateDir(dir, "replay");
    const listed = await listDeadLetters(dir);
    assert.deepEqual(
      listed.map(({ id }) => id),
      [deadLetterId(1, letter.seq)],
    );
  });

  it("a letter's JSON (what list --json prints and a worker serves) reads back as the letter", () => {
    const listed = { id: deadLetterId(1, letter.seq), partition: 1, letter };
    const json = deadLetterToJson(listed);
    assert.equal((json.invocations as { argument: { value: string } }[])[0]?.argument.value, "aGVsbG8=");
    const back = deadLetterFromJson(JSON.parse(JSON.stringify(json)));
    assert.ok(back !== undefined);
    assert.deepEqual(deadLetterToJson(back), json);
    assert.deepEqual(Buffer.from(back.letter.invocations[0]?.argument.value ?? []), Buffer.from("hello"));
    assert.equal(deadLetterFromJson({ id: "x" }), undefined);
  });
});
