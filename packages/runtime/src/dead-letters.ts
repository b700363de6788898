// Dead letters from outside the running engine: listing reads the store (safe while Eddy
// runs: it sees what was durable when it looked), replay moves letters to the replay queue, which a starting engine delivers
// (PartitionCore.recover). Replay therefore needs Eddy stopped: the caller checks
// runningProcess() first. Letters are named by deadLetterId (partition and sequence number):
// sequence numbers alone repeat across partitions.
//
// Not for a cluster worker's state directory (storeTables.cluster says it is one): it is only a
// cache of the partitions the worker runs, rebuilt from the changelog, so a listing there may
// show another worker's letters and a replay written there would be lost or, worse, make the
// cache differ from the changelog. Both refuse it, naming the cluster and the command that works
// (through the running workers: cluster/dead-letter-client.ts).
import { isEmptyStateDir } from "./checkpoint/restore.ts";
import type { FunctionTypename } from "./core/address.ts";
import type { KV } from "./core/kv.ts";
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

/**
 * Refuses a cluster worker's state directory (see the header), with the command that works
 * instead. Reads it as listing does, so it answers while the worker runs: a replay checks this
 * before asking whether Eddy runs there (stopping a worker is not the way in a cluster).
 */
export async function refuseClusterWorkerStateDir(stateDir: string, action: "list" | "replay"): Promise<void> {
  if (isEmptyStateDir(stateDir)) return;
  const store = await LoggedStore.openReadOnly(stateDir);
  try {
    refuseClusterWorkerDir(store, stateDir, action);
  } finally {
    await store.close();
  }
}

function refuseClusterWorkerDir(store: KV, stateDir: string, action: "list" | "replay"): void {
  const cluster = getRow(store, storeTables.cluster.key());
  if (cluster === undefined) return;
  const command =
    action === "list"
      ? `eddy dead-letters list --cluster kafka://${cluster.brokers}/${cluster.name}`
      : `eddy dead-letters replay <id>... | --all --cluster kafka://${cluster.brokers}/${cluster.name}`;
  throw new DeadLetterError(
    `${stateDir} is the state directory of a worker of cluster ${cluster.name}, only a cache of the partitions it runs; ${action === "list" ? "list" : "replay"} the cluster's dead letters through its running workers: ${command}`,
  );
}

/** The dead letters of `partition` in `rows` (the store's rows, or one partition's), as listed. */
export function partitionDeadLetters(rows: KV, partition: number): ListedDeadLetter[] {
  const letters: ListedDeadLetter[] = [];
  for (const { value: letter } of scanRows(rows, inPartition(partition, tables.dead.all))) {
    letters.push({ id: deadLetterId(partition, letter.seq), partition, letter });
  }
  return letters;
}

/** The order letters are listed in: oldest first. */
export function sortDeadLetters(letters: ListedDeadLetter[]): ListedDeadLetter[] {
  return letters.sort(
    (a, b) => a.letter.atMs - b.letter.atMs || a.partition - b.partition || a.letter.seq - b.letter.seq,
  );
}

function readLetters(store: LoggedStore, stateDir: string): ListedDeadLetter[] {
  const count = getRow(store, storeTables.partitionCount.key());
  if (count === undefined) throw new DeadLetterError(`${stateDir} holds no Eddy state`);
  const letters: ListedDeadLetter[] = [];
  for (let partition = 0; partition < count; partition++) letters.push(...partitionDeadLetters(store, partition));
  return sortDeadLetters(letters);
}

export async function listDeadLetters(stateDir: string): Promise<ListedDeadLetter[]> {
  checkStateDir(stateDir);
  const store = await LoggedStore.openReadOnly(stateDir);
  try {
    refuseClusterWorkerDir(store, stateDir, "list");
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
export function selectDeadLetters(
  letters: readonly ListedDeadLetter[],
  names: readonly string[],
  where: string,
  nothing = "nothing was queued",
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
      error: `no dead letter ${missing.join(", ")} in ${where}; ${nothing}`,
    };
  }
  for (const { id, letter } of chosen.values()) {
    if (letter.ingress !== undefined) {
      return {
        ok: false,
        usage: false,
        error: `${id} is a record ingress ${letter.ingress} could not route, which replay could not route either; ${nothing}`,
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
    refuseClusterWorkerDir(store, stateDir, "replay");
    const letters = readLetters(store, stateDir);
    const selected =
      selection === "all"
        ? { ok: true as const, chosen: letters.filter(({ letter }) => letter.ingress === undefined) }
        : selectDeadLetters(letters, selection, stateDir);
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

/**
 * A letter as `eddy dead-letters list --json` prints it and a cluster worker serves it: its id
 * and partition first, then the stored record, bytes in base64.
 */
export function deadLetterToJson({ id, partition, letter }: ListedDeadLetter): Record<string, unknown> {
  return JSON.parse(JSON.stringify({ id, partition, ...letter }, bytesAsBase64)) as Record<string, unknown>;
}

/** A JSON replacer writing bytes as base64. Reads the holder: a Buffer's toJSON runs before the replacer sees the value. */
function bytesAsBase64(this: unknown, key: string, value: unknown): unknown {
  const raw = (this as Record<string, unknown>)[key];
  return raw instanceof Uint8Array ? Buffer.from(raw).toString("base64") : value;
}

/**
 * A letter back from deadLetterToJson's shape (what a worker answered), or undefined when the
 * value is not one: its bytes (arguments, header values) as bytes again.
 */
export function deadLetterFromJson(value: unknown): ListedDeadLetter | undefined {
  if (typeof value !== "object" || value === null) return undefined;
  const { id, partition, ...rest } = value as Record<string, unknown>;
  const letter = rest as Record<string, unknown>;
  if (typeof id !== "string" || typeof partition !== "number") return undefined;
  if (typeof letter.seq !== "number" || typeof letter.atMs !== "number" || typeof letter.reason !== "string") {
    return undefined;
  }
  const target = letter.target as Record<string, unknown> | undefined;
  if (typeof target?.typename !== "string" || typeof target.id !== "string") return undefined;
  if (!Array.isArray(letter.invocations)) return undefined;
  const invocations = [];
  for (const invocation of letter.invocations as Record<string, unknown>[]) {
    const argument = invocation?.argument as Record<string, unknown> | undefined;
    if (typeof argument?.value !== "string") return undefined;
    const headers = Array.isArray(invocation.headers)
      ? (invocation.headers as Record<string, unknown>[]).map((header) => ({
          ...header,
          value: typeof header.value === "string" ? Buffer.from(header.value, "base64") : null,
        }))
      : undefined;
    invocations.push({
      ...invocation,
      argument: { ...argument, value: Buffer.from(argument.value, "base64") },
      ...(headers === undefined ? {} : { headers }),
    });
  }
  return { id, partition, letter: { ...letter, invocations } as unknown as DeadLetter };
}

export type { DeadLetter, FunctionTypename };
