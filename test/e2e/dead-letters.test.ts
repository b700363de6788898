// `eddy dead-letters list|replay` on a state directory with dead letters in several
// partitions. Sequence numbers are per partition (every partition's first letter has the same
// one), so each letter is named by `<partition>-<epoch>-<count>`, unique in the directory:
// the text list, the JSON and replay all use it, and replay queues exactly what was named.
import assert from "node:assert/strict";
import { existsSync, mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { inPartition, scanRows, tables } from "../../packages/runtime/src/core/schema.ts";
import { LoggedStore } from "../../packages/runtime/src/store/logged-store.ts";
import { FIRST_SEQ, type SeededLetter, seedDeadLetters } from "../support/dead-letter-store.ts";
import { runEddyCommand } from "./smoke/cluster.ts";

const PARTITIONS = 4;

function idOf(letter: SeededLetter): string {
  return `${letter.partition}-${Math.floor(letter.seq / 2 ** 32)}-${letter.seq % 2 ** 32}`;
}

/** The letters queued for replay in `stateDir`, as `<partition>:<seq>`. */
async function queuedForReplay(stateDir: string): Promise<string[]> {
  const store = await LoggedStore.openReadOnly(stateDir);
  try {
    const queued: string[] = [];
    for (let partition = 0; partition < PARTITIONS; partition++) {
      for (const { value } of scanRows(store, inPartition(partition, tables.replay.all))) {
        queued.push(`${partition}:${value.seq}`);
      }
    }
    return queued.sort();
  } finally {
    await store.close();
  }
}

describe("eddy dead-letters: one identifier per letter, unique in the state directory", () => {
  const directories: string[] = [];
  after(() => {
    for (const directory of directories) rmSync(directory, { recursive: true, force: true });
  });

  /** Two letters in each partition, three in partition 1; 3-1-2 is a record an ingress could not route. */
  async function seeded(): Promise<{ stateDir: string; letters: SeededLetter[] }> {
    const result = await seedDeadLetters({
      partitions: PARTITIONS,
      perPartition: [2, 3, 2, 2],
      ingress: { partition: 3, index: 1, id: "test/kafka-in" },
    });
    directories.push(result.stateDir);
    return result;
  }

  it("the list and --json name every letter by a distinct id, with its partition", async () => {
    const { stateDir, letters } = await seeded();
    const list = await runEddyCommand(["dead-letters", "list", "--state-dir", stateDir]);
    assert.equal(list.status, 0, list.stderr);
    const listed = [...list.stdout.matchAll(/^(\S+) {2}\S+ {2}test\/fn\/(\d+)/gm)].map(([, id, address]) => ({
      id,
      address,
    }));
    assert.equal(listed.length, letters.length - 1, list.stdout);
    assert.equal(new Set(listed.map(({ id }) => id)).size, listed.length, `ids repeat:\n${list.stdout}`);
    for (const letter of letters.filter((letter) => letter.ingress === undefined)) {
      assert.ok(
        listed.some(({ id, address }) => id === idOf(letter) && address === letter.target.id),
        `${idOf(letter)} for test/fn/${letter.target.id} in\n${list.stdout}`,
      );
    }
    assert.match(list.stdout, /^3-1-2 .* ingress test\/kafka-in/m);

    const json = await runEddyCommand(["dead-letters", "list", "--state-dir", stateDir, "--json"]);
    assert.equal(json.status, 0, json.stderr);
    const entries = JSON.parse(json.stdout) as {
      id: string;
      partition: number;
      seq: number;
      target: { id: string };
      invocations: { argument: { value: string } }[];
    }[];
    assert.deepEqual(
      entries.map(({ id, partition, seq, target }) => [id, partition, seq, target.id]).sort(),
      letters.map((letter) => [idOf(letter), letter.partition, letter.seq, letter.target.id]).sort(),
    );
    for (const { target, invocations } of entries) {
      assert.equal(
        invocations[0]?.argument.value,
        Buffer.from(`to ${target.id}`).toString("base64"),
        "bytes as base64",
      );
    }
  });

  it("replay <id> queues exactly the letter named", async () => {
    const { stateDir, letters } = await seeded();
    const chosen = letters.find((letter) => letter.partition === 2 && letter.seq === FIRST_SEQ) as SeededLetter;
    const replay = await runEddyCommand(["dead-letters", "replay", idOf(chosen), "--state-dir", stateDir]);
    assert.equal(replay.status, 0, replay.stderr);
    assert.match(
      replay.stdout,
      new RegExp(`^queued ${idOf(chosen)} \\(test/fn/${chosen.target.id}\\) for replay$`, "m"),
    );
    assert.match(replay.stdout, /^1 dead letter\(s\) queued/m);
    assert.deepEqual(await queuedForReplay(stateDir), [`2:${FIRST_SEQ}`]);
  });

  it("replay of a bare number only one letter has queues that letter (the form of earlier versions)", async () => {
    const { stateDir } = await seeded();
    const replay = await runEddyCommand(["dead-letters", "replay", `#${FIRST_SEQ + 2}`, "--state-dir", stateDir]);
    assert.equal(replay.status, 0, replay.stderr);
    assert.match(replay.stdout, /^queued 1-1-3 /m);
    assert.deepEqual(await queuedForReplay(stateDir), [`1:${FIRST_SEQ + 2}`]);
  });

  it("a bare number several letters share is refused with the matching ids, and nothing is queued", async () => {
    const { stateDir } = await seeded();
    for (const number of [String(FIRST_SEQ), `#${FIRST_SEQ}`]) {
      const replay = await runEddyCommand(["dead-letters", "replay", number, "--state-dir", stateDir]);
      assert.equal(replay.status, 2, replay.stderr);
      assert.equal(
        replay.stderr.trim().split("\n")[0],
        `eddy dead-letters: "${number}" is ambiguous: dead letters 0-1-1, 1-1-1, 2-1-1, 3-1-1 all have that number; give the id of the one you mean`,
      );
      assert.doesNotMatch(replay.stderr, /\n\s+at /, "no stack trace");
      assert.deepEqual(await queuedForReplay(stateDir), []);
    }
  });

  it("an unknown id, or a record an ingress could not route, is refused and nothing is queued", async () => {
    const { stateDir } = await seeded();
    const unknown = await runEddyCommand(["dead-letters", "replay", "0-1-1", "1-1-7", "--state-dir", stateDir]);
    assert.equal(unknown.status, 1, unknown.stderr);
    assert.equal(unknown.stderr, `eddy dead-letters: no dead letter 1-1-7 in ${stateDir}; nothing was queued\n`);
    const ingress = await runEddyCommand(["dead-letters", "replay", "3-1-2", "--state-dir", stateDir]);
    assert.equal(ingress.status, 1, ingress.stderr);
    assert.match(ingress.stderr, /^eddy dead-letters: 3-1-2 is a record ingress test\/kafka-in could not route/);
    assert.match(ingress.stderr, /nothing was queued\n$/);
    const malformed = await runEddyCommand(["dead-letters", "replay", "1-x", "--state-dir", stateDir]);
    assert.equal(malformed.status, 2, malformed.stderr);
    assert.match(malformed.stderr, /^eddy dead-letters: "1-x" is not a dead letter id \(such as 0-1-1/);
    assert.deepEqual(await queuedForReplay(stateDir), []);
  });

  it("replay --all queues every replayable letter", async () => {
    const { stateDir, letters } = await seeded();
    const replay = await runEddyCommand(["dead-letters", "replay", "--all", "--state-dir", stateDir]);
    assert.equal(replay.status, 0, replay.stderr);
    const replayable = letters.filter((letter) => letter.ingress === undefined);
    assert.match(replay.stdout, new RegExp(`^${replayable.length} dead letter\\(s\\) queued`, "m"));
    assert.deepEqual(
      await queuedForReplay(stateDir),
      replayable.map((letter) => `${letter.partition}:${letter.seq}`).sort(),
    );
  });

  it("a directory without Eddy state is named in one line and left as it was", async () => {
    const empty = mkdtempSync(join(tmpdir(), "eddy-no-state-"));
    directories.push(empty);
    const missing = join(empty, "missing");
    for (const [stateDir, action] of [
      [empty, "list"],
      [missing, "list"],
      [missing, "replay"],
    ] as const) {
      const args = action === "list" ? ["list"] : ["replay", "--all"];
      const result = await runEddyCommand(["dead-letters", ...args, "--state-dir", stateDir]);
      assert.equal(result.status, 1, result.stderr);
      assert.equal(result.stderr, `eddy dead-letters: ${stateDir} holds no Eddy state\n`);
    }
    assert.deepEqual(readdirSync(empty), [], "listing created nothing");
    assert.equal(existsSync(missing), false);
  });
});
