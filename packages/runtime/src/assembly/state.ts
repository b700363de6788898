// The state directory as a start takes it: created, locked (one Eddy per directory,
// state-dir-lock.ts), its checkpoints restored into it when it is empty, and its store opened
// with the partition count it was created with. Each part registers its closing with the
// start's Closers as soon as it is open, so a failure later gives the directory back.
import { mkdirSync } from "node:fs";
import type { BlobStore } from "../checkpoint/blob/blob-store.ts";
import { readLocalCheckpoint } from "../checkpoint/checkpointer.ts";
import { getRow, rowWrite, storeTables } from "../core/schema.ts";
import { errorMessage } from "../errors.ts";
import type { Logger } from "../observe/logger.ts";
import { takeStateDirLock } from "../state-dir-lock.ts";
import { LoggedStore, type LoggedStoreOptions } from "../store/logged-store.ts";
import { type CheckpointSettings, openCheckpoints } from "./checkpoints.ts";
import type { Closers } from "./closers.ts";
import { StartupError } from "./startup-error.ts";

export interface OpenedState {
  readonly store: LoggedStore;
  readonly partitionCount: number;
  readonly blobs: BlobStore | undefined;
}

export async function openState(
  stateDir: string,
  partitionCount: number,
  checkpoints: CheckpointSettings | undefined,
  closers: Closers,
  log: Logger,
  onApply?: LoggedStoreOptions["onApply"],
): Promise<OpenedState> {
  try {
    mkdirSync(stateDir, { recursive: true });
  } catch (error) {
    throw new StartupError(`cannot create the state directory ${stateDir}: ${errorMessage(error)}`);
  }
  const taken = await takeStateDirLock(stateDir);
  if (!taken.ok) throw new StartupError(taken.error);
  // Last to close: until the store is closed, no other Eddy may open it.
  closers.defer("the state directory's lock", () => taken.lock.release());
  const blobs = checkpoints === undefined ? undefined : await openCheckpoints(stateDir, checkpoints, log);
  if (blobs !== undefined) closers.defer("the checkpoint store", () => blobs.close());
  const chained = blobs === undefined ? undefined : readLocalCheckpoint(stateDir, blobs.url);
  const store = new LoggedStore({
    path: stateDir,
    ...(chained === undefined ? {} : { keepLogAfter: chained.seq }),
    ...(onApply === undefined ? {} : { onApply }),
  });
  // The engine closes it when it stops; this closes it when the start fails before (twice is once).
  closers.defer("the store", () => store.close());
  await checkPartitionCount(store, partitionCount, stateDir);
  return { store, partitionCount, blobs };
}

/** The partition count is part of the data layout: a state directory keeps the one it was created with. */
export async function checkPartitionCount(store: LoggedStore, wanted: number, stateDir: string): Promise<void> {
  const stored = getRow(store, storeTables.partitionCount.key());
  if (stored !== undefined && stored !== wanted) {
    throw new StartupError(`${stateDir} was created with ${stored} partitions; it cannot be opened with ${wanted}`);
  }
  if (stored === undefined) await store.commit([rowWrite(storeTables.partitionCount.key(), wanted)]);
}
