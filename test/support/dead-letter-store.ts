// A state directory holding dead letters, written straight into the store as the partition
// core writes them: the CLI's listing and replay can be tested without running functions
// into failure. Each partition's sequence numbers start at 2^32 + 1 (epoch 1), as on a
// runtime's first start, so the same number appears in every partition.
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { FunctionTypename } from "../../packages/runtime/src/core/address.ts";
import { type Address, addressKey } from "../../packages/runtime/src/core/address.ts";
import { partitionOf } from "../../packages/runtime/src/core/partitioning.ts";
import { type DeadLetter, keys } from "../../packages/runtime/src/core/records.ts";
import { LoggedStore } from "../../packages/runtime/src/store/logged-store.ts";

export const FIRST_SEQ = 2 ** 32 + 1;

export interface SeededLetter {
  readonly target: Address;
  readonly partition: number;
  readonly seq: number;
  /** Set for a record an ingress could not route (never replayable). */
  readonly ingress?: string;
}

/**
 * Writes dead letters into the `partitions` partitions of a new state directory (for addresses `test/fn/<n>` that hash to that partition); returns the directory
 * and the letters, oldest first.
 */
export async function seedDeadLetters(options: {
  readonly partitions: number;
  /** How many letters each partition holds: one count for all, or one per partition. */
  readonly perPartition: number | readonly number[];
  /** Letters that are records this ingress could not route, by [partition, index]. */
  readonly ingress?: { readonly partition: number; readonly index: number; readonly id: string };
}): Promise<{ stateDir: string; letters: SeededLetter[] }> {
  const stateDir = mkdtempSync(join(tmpdir(), "eddy-dead-letters-"));
  const typename = "test/fn" as FunctionTypename;
  const letters: SeededLetter[] = [];
  const writes: { key: (string | number)[]; value: unknown }[] = [
    { key: ["engine", "partitions"], value: options.partitions },
  ];
  const counts = Array.from({ length: options.partitions }, (_, partition) =>
    typeof options.perPartition === "number" ? options.perPartition : (options.perPartition[partition] ?? 0),
  );
  let id = 0;
  for (let index = 0; index < Math.max(...counts); index++) {
    for (let partition = 0; partition < options.partitions; partition++) {
      if (index >= (counts[partition] ?? 0)) continue;
      let target: Address;
      do target = { typename, id: String(id++) };
      while (partitionOf(addressKey(target), options.partitions) !== partition);
      const seq = FIRST_SEQ + index;
      const ingress =
        options.ingress?.partition === partition && options.ingress.index === index ? options.ingress.id : undefined;
      const letter: DeadLetter = {
        seq,
        target,
        ...(ingress === undefined ? {} : { ingress }),
        invocations: [{ argument: { typename: "test/text", hasValue: true, value: Buffer.from(`to ${target.id}`) } }],
        reason: `function test/fn failed for ${target.id}`,
        atMs: Date.UTC(2025, 0, 1) + letters.length,
      };
      writes.push({ key: ["p", partition, ...keys.deadLetter(seq)], value: letter });
      letters.push({ target, partition, seq, ...(ingress === undefined ? {} : { ingress }) });
    }
  }
  const store = new LoggedStore({ path: stateDir });
  try {
    await store.commit(writes);
  } finally {
    await store.close();
  }
  return { stateDir, letters };
}
