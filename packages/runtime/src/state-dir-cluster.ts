// Whether a state directory is a cluster worker's (assembly/start-cluster-runtime.ts records
// its cluster in it): such a directory is only a cache of the partitions the worker runs,
// rebuilt from the changelog, so commands that read or write a state directory as the whole
// truth (checkpoints, savepoints, dead letters) must not take it for one.
import { isEmptyStateDir } from "./checkpoint/restore.ts";
import { type ClusterMembershipRecord, getRow, storeTables } from "./core/schema.ts";
import { LoggedStore } from "./store/logged-store.ts";

/** The cluster a state directory's worker belongs to; undefined for an embedded (or empty) one. Works while it runs. */
export async function clusterOfStateDir(stateDir: string): Promise<ClusterMembershipRecord | undefined> {
  if (isEmptyStateDir(stateDir)) return undefined;
  const store = await LoggedStore.openReadOnly(stateDir);
  try {
    return getRow(store, storeTables.cluster.key());
  } finally {
    await store.close();
  }
}
