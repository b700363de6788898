// What a blob store holds: the manifests of complete checkpoints and savepoints, newest
// first, with the ones that cannot be read named; and retention, which deletes old
// checkpoints and the data no kept manifest needs.
import type { BlobStore } from "./blob/blob-store.ts";
import {
  allFiles,
  CHECKPOINTS_PREFIX,
  DATA_PREFIX,
  dataOwner,
  decodeManifest,
  type Manifest,
  SAVEPOINTS_PREFIX,
} from "./manifest.ts";

export interface CatalogEntry {
  readonly key: string;
  readonly manifest: Manifest;
}

export interface Catalog {
  /** Readable manifests, newest first (by creation: ids sort by time). */
  readonly checkpoints: readonly CatalogEntry[];
  readonly savepoints: readonly CatalogEntry[];
  /** Manifests that could not be read, with why. */
  readonly unreadable: readonly { readonly key: string; readonly error: string }[];
}

export async function readCatalog(store: BlobStore): Promise<Catalog> {
  const keys = [...(await store.list(CHECKPOINTS_PREFIX)), ...(await store.list(SAVEPOINTS_PREFIX))].filter((key) =>
    key.endsWith(".json"),
  );
  const checkpoints: CatalogEntry[] = [];
  const savepoints: CatalogEntry[] = [];
  const unreadable: { key: string; error: string }[] = [];
  await Promise.all(
    keys.map(async (key) => {
      const bytes = await store.get(key);
      // Listed, then gone: retention or another tool deleted it meanwhile.
      if (bytes === undefined) return;
      const parsed = decodeManifest(`${store.url} ${key}`, bytes);
      if (!parsed.ok) unreadable.push({ key, error: parsed.error });
      else (parsed.manifest.kind === "savepoint" ? savepoints : checkpoints).push({ key, manifest: parsed.manifest });
    }),
  );
  const newestFirst = (a: CatalogEntry, b: CatalogEntry) =>
    a.manifest.id < b.manifest.id ? 1 : a.manifest.id > b.manifest.id ? -1 : 0;
  checkpoints.sort(newestFirst);
  savepoints.sort(newestFirst);
  unreadable.sort((a, b) => (a.key < b.key ? -1 : 1));
  return { checkpoints, savepoints, unreadable };
}

export interface PruneResult {
  readonly deletedManifests: number;
  readonly deletedObjects: number;
}

/**
 * Keeps the newest `keep` checkpoints and every savepoint; deletes older checkpoint
 * manifests, then every data object no kept manifest lists. Data newer than the newest
 * manifest is left alone: it belongs to a checkpoint still being written.
 */
export async function pruneCheckpoints(store: BlobStore, keep: number): Promise<PruneResult> {
  const catalog = await readCatalog(store);
  const kept = [...catalog.checkpoints.slice(0, keep), ...catalog.savepoints];
  const dropped = catalog.checkpoints.slice(keep).map((entry) => entry.key);
  if (dropped.length > 0) await store.delete(dropped);
  const newest = catalog.checkpoints[0]?.manifest.id;
  if (newest === undefined) return { deletedManifests: dropped.length, deletedObjects: 0 };
  const needed = new Set(kept.flatMap((entry) => allFiles(entry.manifest).map((file) => file.key)));
  const unneeded = (await store.list(DATA_PREFIX)).filter((key) => {
    const owner = dataOwner(key);
    return !needed.has(key) && owner !== undefined && owner <= newest;
  });
  if (unneeded.length > 0) await store.delete(unneeded);
  return { deletedManifests: dropped.length, deletedObjects: unneeded.length };
}
