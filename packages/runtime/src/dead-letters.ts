// Dead letters from outside the running engine: listing reads the store (safe while Eddy
// runs: it sees what was durable when it looked), replay moves letters to the replay queue, which a starting engine delivers
// (PartitionCore.recover). Replay therefore needs Eddy stopped: the caller checks
// runningProcess() first.
import type { FunctionTypename } from "./core/address.ts";
import type { Key } from "./core/kv.ts";
import { type DeadLetter, keys } from "./core/records.ts";
import { LoggedStore } from "./store/logged-store.ts";

export interface ListedDeadLetter {
  readonly partition: number;
  readonly letter: DeadLetter;
}

function partitionCount(store: LoggedStore, stateDir: string): number {
  const count = store.get(["engine", "partitions"]) as number | undefined;
  if (count === undefined) throw new Error(`${stateDir} holds no Eddy state`);
  return count;
}

function readLetters(store: LoggedStore, stateDir: string): ListedDeadLetter[] {
  const letters: ListedDeadLetter[] = [];
  for (let partition = 0; partition < partitionCount(store, stateDir); partition++) {
    for (const { value } of store.scan(["p", partition, ...keys.deadLettersAll()])) {
      letters.push({ partition, letter: value as DeadLetter });
    }
  }
  return letters.sort((a, b) => a.letter.atMs - b.letter.atMs || a.letter.seq - b.letter.seq);
}

export async function listDeadLetters(stateDir: string): Promise<ListedDeadLetter[]> {
  const store = await LoggedStore.openReadOnly(stateDir);
  try {
    return readLetters(store, stateDir);
  } finally {
    await store.close();
  }
}

/**
 * Queues the chosen letters (all when `select` is undefined) for replay at the next start;
 * returns those queued. Records an ingress could not route are never chosen: replay cannot
 * route them either.
 */
export async function queueReplay(
  stateDir: string,
  select?: (letter: DeadLetter) => boolean,
): Promise<ListedDeadLetter[]> {
  const store = new LoggedStore({ path: stateDir });
  try {
    const chosen = readLetters(store, stateDir).filter(
      ({ letter }) => letter.ingress === undefined && (select === undefined || select(letter)),
    );
    const writes: { key: Key; value: unknown }[] = [];
    for (const { partition, letter } of chosen) {
      writes.push({ key: ["p", partition, ...keys.deadLetter(letter.seq)], value: undefined });
      writes.push({ key: ["p", partition, ...keys.replay(letter.seq)], value: letter });
    }
    await store.commit(writes);
    return chosen;
  } finally {
    await store.close();
  }
}

export type { DeadLetter, FunctionTypename };
