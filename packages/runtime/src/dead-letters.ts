// Dead letters from outside the running engine: listing reads the store (safe while Eddy
// runs: it sees what was durable when it looked), replay moves letters to the replay queue, which a starting engine delivers
// (PartitionCore.recover). Replay therefore needs Eddy stopped: the caller checks
// runningProcess() first. Letters are named by deadLetterId (partition and sequence number):
// sequence numbers alone repeat across partitions.
import { isEmptyStateDir } from "./checkpoint/restore.ts";
import type { FunctionTypename } from "./core/address.ts";
import type { PendingWrite } from "./core/overlay-kv.ts";
import { type DeadLetter, deadLetterId, parseDeadLetterId } from "./core/records.ts";
import { getRow, inPartition, rowWrite, scanRows, storeTables, tables } from "./core/schema.ts";
import { LoggedStore } from "./store/logged-store.ts";

export interface ListedDeadLetter {
  /** Unique in the state directory: what users see and give to replay. */
  readonly id: string;
  readonly partition: number;
  readonly letter: DeadLetter;
}

/** The state directory holds no Eddy state: a user's mistake (a wrong --state-dir), not a bug. */
export class DeadLetterError extends Error {
  override name = "DeadLetterError";
}

/** Which letters to replay: all that can be, or those named by id (or, when unambiguous, by sequence number alone). */
export type ReplaySelection = "all" | readonly string[];

/** `usage`: the names themselves are malformed or ambiguous; else they name no replayable letter. */
export interface ReplayRefused {
  readonly ok: false;
  readonly error: string;
  readonly usage: boolean;
}

export type ReplayResult = { readonly ok: true; readonly queued: readonly ListedDeadLetter[] } | ReplayRefused;

function checkStateDir(stateDir: string): void {
  // Checked before anything opens the directory: opening would create an empty store there.
  if (isEmptyStateDir(stateDir)) throw new DeadLetterError(`${stateDir} holds no Eddy state`);
}

function readLetters(store: LoggedStore, stateDir: string): ListedDeadLetter[] {
  const count = getRow(store, storeTables.partitionCount.key());
  if (count === undefined) throw new DeadLetterError(`${stateDir} holds no Eddy state`);
  const letters: ListedDeadLetter[] = [];
  for (let partition = 0; partition < count; partition++) {
    for (const { value: letter } of scanRows(store, inPartition(partition, tables.dead.all))) {
      letters.push({ id: deadLetterId(partition, letter.seq), partition, letter });
    }
  }
  return letters.sort(
    (a, b) => a.letter.atMs - b.letter.atMs || a.partition - b.partition || a.letter.seq - b.letter.seq,
  );
}

export async function listDeadLetters(stateDir: string): Promise<ListedDeadLetter[]> {
  checkStateDir(stateDir);
  const store = await LoggedStore.openReadOnly(stateDir);
  try {
    return readLetters(store, stateDir);
  } finally {
    await store.close();
  }
}

/**
 * Resolves each name to one letter. A bare number (with or without `#`, as earlier versions
 * printed) is a sequence number: accepted when one letter has it, refused when several do,
 * so a replay never takes a letter the user did not mean.
 */
function select(
  letters: readonly ListedDeadLetter[],
  names: readonly string[],
  stateDir: string,
): { readonly ok: true; readonly chosen: ListedDeadLetter[] } | ReplayRefused {
  const chosen = new Map<string, ListedDeadLetter>();
  const missing: string[] = [];
  for (const name of names) {
    const bare = /^#?(\d+)$/.exec(name);
    if (bare !== null) {
      const seq = Number(bare[1]);
      const matching = letters.filter(({ letter }) => letter.seq === seq);
      if (matching.length > 1) {
        const ids = matching.map(({ id }) => id).join(", ");
        return {
          ok: false,
          usage: true,
          error: `"${name}" is ambiguous: dead letters ${ids} all have that number; give the id of the one you mean`,
        };
      }
      if (matching[0] === undefined) missing.push(name);
      else chosen.set(matching[0].id, matching[0]);
      continue;
    }
    const key = parseDeadLetterId(name);
    if (key === undefined) {
      return {
        ok: false,
        usage: true,
        error: `"${name}" is not a dead letter id (such as 0-1-1: partition, epoch, count; eddy dead-letters list shows them)`,
      };
    }
    const found = letters.find(({ partition, letter }) => partition === key.partition && letter.seq === key.seq);
    if (found === undefined) missing.push(name);
    else chosen.set(found.id, found);
  }
  if (missing.length > 0) {
    return {
      ok: false,
      usage: false,
      error: `no dead letter ${missing.join(", ")} in ${stateDir}; nothing was queued`,
    };
  }
  for (const { id, letter } of chosen.values()) {
    if (letter.ingress !== undefined) {
      return {
        ok: false,
        usage: false,
        error: `${id} is a record ingress ${letter.ingress} could not route, which replay could not route either; nothing was queued`,
      };
    }
  }
  return { ok: true, chosen: [...chosen.values()] };
}

/**
 * Queues the chosen letters for replay at the next start, all or none; returns those queued.
 * Records an ingress could not route are never queued: replay cannot route them either.
 */
export async function queueReplay(stateDir: string, selection: ReplaySelection): Promise<ReplayResult> {
  checkStateDir(stateDir);
  const store = new LoggedStore({ path: stateDir });
  try {
    const letters = readLetters(store, stateDir);
    const selected =
      selection === "all"
        ? { ok: true as const, chosen: letters.filter(({ letter }) => letter.ingress === undefined) }
        : select(letters, selection, stateDir);
    if (!selected.ok) return selected;
    const writes: PendingWrite[] = [];
    for (const { partition, letter } of selected.chosen) {
      writes.push(rowWrite(inPartition(partition, tables.dead.key(letter.seq)), undefined));
      writes.push(rowWrite(inPartition(partition, tables.replay.key(letter.seq)), letter));
    }
    await store.commit(writes);
    return { ok: true, queued: selected.chosen };
  } finally {
    await store.close();
  }
}

export type { DeadLetter, FunctionTypename };
