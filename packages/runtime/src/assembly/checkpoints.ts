// Checkpoints as a start sets them up: the blob store opened (on an empty state directory, the
// newest checkpoint restored into it first), and once the store is open, the checkpointer that
// takes them every interval and on demand.
import { type BlobStore, BlobStoreError } from "../checkpoint/blob/blob-store.ts";
import { openBlobStore } from "../checkpoint/blob/open-blob-store.ts";
import { Checkpointer, writeLocalCheckpoint } from "../checkpoint/checkpointer.ts";
import { isEmptyStateDir, restoreCheckpoint } from "../checkpoint/restore.ts";
import type { Logger } from "../observe/logger.ts";
import type { RuntimeMetrics } from "../observe/metrics.ts";
import type { LoggedStore } from "../store/logged-store.ts";
import { StartupError } from "./startup-error.ts";

export interface CheckpointSettings {
  /** file:///dir, a directory path, s3://bucket/prefix or gs://bucket/prefix. */
  readonly location: string;
  /** Between checkpoints (default 10 s); 0: only on demand. */
  readonly intervalMs?: number;
  /** Checkpoints kept (default 3). */
  readonly keep?: number;
  /** HTTP ingress messages are acknowledged only once a checkpoint holds them. */
  readonly acknowledgeAfterCheckpoint?: boolean;
}

const INTERVAL_MS_DEFAULT = 10_000;
const KEEP_DEFAULT = 3;

/**
 * Opens the checkpoint store; on an empty state directory, restores the newest checkpoint
 * there first (an empty store is a fresh start; a store whose checkpoints all fail to
 * restore is an error, not a silent empty start). The caller closes what this returns.
 */
export async function openCheckpoints(stateDir: string, settings: CheckpointSettings, log: Logger): Promise<BlobStore> {
  const opened = await openBlobStore(settings.location);
  if (!opened.ok) throw new StartupError(opened.error);
  const blobs = opened.store;
  if (!isEmptyStateDir(stateDir)) return blobs;
  let restored: Awaited<ReturnType<typeof restoreCheckpoint>>;
  try {
    restored = await restoreCheckpoint({ store: blobs, stateDir, log });
  } catch (error) {
    await blobs.close();
    // The store could not be read: starting empty could mean losing all state, so no start.
    if (error instanceof BlobStoreError) {
      throw new StartupError(`${stateDir} is empty and the checkpoints cannot be read: ${error.message}`);
    }
    throw error;
  }
  if (restored.ok) {
    writeLocalCheckpoint(stateDir, blobs.url, restored.manifest);
    const sizeText =
      restored.bytes < 1e6 ? `${(restored.bytes / 1e3).toFixed(1)} kB` : `${(restored.bytes / 1e6).toFixed(1)} MB`;
    log.info(
      `restored ${restored.manifest.kind} ${restored.manifest.id} (${sizeText}) in ${(restored.ms / 1000).toFixed(1)} s`,
      { checkpoint: restored.manifest.id, blobs: blobs.url },
    );
    return blobs;
  }
  if (restored.reason === "none") {
    log.info(`${restored.error}; starting with empty state`, { blobs: blobs.url });
    return blobs;
  }
  await blobs.close();
  throw new StartupError(restored.error);
}

/** The checkpointer over the opened store, and one line saying where checkpoints go and how often. */
export function startCheckpointer(
  store: LoggedStore,
  blobs: BlobStore,
  settings: CheckpointSettings,
  partitionCount: number,
  log: Logger,
  metrics?: RuntimeMetrics,
): Checkpointer {
  const intervalMs = settings.intervalMs ?? INTERVAL_MS_DEFAULT;
  const keep = settings.keep ?? KEEP_DEFAULT;
  const held =
    settings.acknowledgeAfterCheckpoint === true
      ? "; ingress acknowledgements and egress output wait for the next checkpoint"
      : "";
  log.info(
    `checkpoints to ${blobs.url} ${intervalMs === 0 ? "on demand only" : `every ${intervalMs / 1000} s`}, keeping ${keep}${held}`,
    { blobs: blobs.url },
  );
  return new Checkpointer({
    store,
    blobs,
    partitionCount,
    log,
    intervalMs,
    keep,
    ...(metrics === undefined ? {} : { onTaken: (seconds, outcome) => metrics.checkpointTaken(seconds, outcome) }),
  });
}
