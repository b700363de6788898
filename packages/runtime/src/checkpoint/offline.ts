// Checkpoint operations on a state directory no Eddy is running on (the CLI's fallback
// when no control socket answers): open the store, take one checkpoint or savepoint, close.
import { getRow, storeTables } from "../core/schema.ts";
import type { Logger } from "../observe/logger.ts";
import { LoggedStore } from "../store/logged-store.ts";
import { openBlobStore } from "./blob/open-blob-store.ts";
import type { WrittenCheckpoint } from "./checkpoint-writer.ts";
import { Checkpointer, type CheckpointRequest, readLocalCheckpoint } from "./checkpointer.ts";
import { isEmptyStateDir } from "./restore.ts";
import type { TransferProgress } from "./stored-files.ts";

/** `onProgress` hears how the upload goes (see WriteCheckpointOptions); nothing when there is nothing new. */
export async function checkpointStateDir(
  stateDir: string,
  location: string,
  request: CheckpointRequest,
  log: Logger,
  onProgress?: (progress: TransferProgress) => void,
): Promise<{ ok: true; written: WrittenCheckpoint | undefined } | { ok: false; error: string }> {
  // Checked before anything opens the directory: opening would create an empty store there,
  // and an Eddy started on it later would take it for state and skip its restore.
  if (isEmptyStateDir(stateDir)) return { ok: false, error: `${stateDir} holds no Eddy state` };
  const opened = await openBlobStore(location);
  if (!opened.ok) return opened;
  const blobs = opened.store;
  const chained = readLocalCheckpoint(stateDir, blobs.url);
  const store = new LoggedStore({ path: stateDir, ...(chained === undefined ? {} : { keepLogAfter: chained.seq }) });
  try {
    const partitionCount = getRow(store, storeTables.partitionCount.key());
    if (partitionCount === undefined) return { ok: false, error: `${stateDir} holds no Eddy state` };
    const checkpointer = new Checkpointer({ store, blobs, partitionCount, intervalMs: 0, log });
    try {
      return { ok: true, written: await checkpointer.checkpoint(request, onProgress) };
    } finally {
      await checkpointer.close();
    }
  } finally {
    await store.close();
    await blobs.close();
  }
}
