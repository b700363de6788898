// A savepoint of a cluster in the checkpoint store (docs/architecture.md, "Savepoints of a
// cluster"): one object per partition that holds anything, then a manifest, written last, that
// makes the savepoint exist:
//
//   cluster-savepoints/<name>/<id>/<partition>.partition   the partition's rows and its inbox tail
//   cluster-savepoints/<name>/manifest.json                 every partition, and each object's SHA-256
//
// The objects sit under the attempt's id, so a failed attempt's leftovers never mix with a later
// one's under the same name. A partition's object is a msgpack array: the format version, the
// partition, its rows as one writes frame (store/writes-frame.ts, the changelog's own format),
// and the inbox records after its inbox position (each key and value as the inbox topic held
// them), in order. The rows leave out the worker-local `changelogOffset`; the `inboxPosition`
// row names the old cluster's offsets, and a restore sets it to where it puts the records.
import { createHash } from "node:crypto";
import { Packr } from "msgpackr";
import type { PendingWrite } from "../core/overlay-kv.ts";
import { partitionOfKey } from "../core/schema.ts";
import { failure, type Result, success } from "../errors.ts";
import { decodeWritesFrame, encodeWritesFrame } from "../store/writes-frame.ts";

export const CLUSTER_SAVEPOINTS_PREFIX = "cluster-savepoints/";
export const CLUSTER_SAVEPOINT_FORMAT = "eddy-cluster-savepoint/1";
const PARTITION_OBJECT_VERSION = 1;

const packr = new Packr({ useRecords: false });

/** A message in a partition's inbox, as the inbox topic held it. */
export interface SavedInboxRecord {
  readonly key: Uint8Array | null;
  readonly value: Uint8Array;
}

/** What a savepoint holds of one partition. */
export interface SavedPartition {
  readonly partition: number;
  readonly rows: readonly PendingWrite[];
  readonly inbox: readonly SavedInboxRecord[];
}

/** One partition in the manifest: its counts, and its object unless it held nothing. */
export interface ManifestPartition {
  readonly partition: number;
  readonly rows: number;
  readonly inboxRecords: number;
  readonly object?: { readonly key: string; readonly bytes: number; readonly sha256: string };
}

export interface ClusterSavepointManifest {
  readonly format: typeof CLUSTER_SAVEPOINT_FORMAT;
  readonly name: string;
  /** The attempt that wrote it (its objects' folder). */
  readonly id: string;
  /** The cluster it was taken of, and that cluster's generation then. */
  readonly cluster: string;
  readonly generation: number;
  readonly createdAt: string;
  readonly partitionCount: number;
  /** The workers that held the partitions, by id. */
  readonly workers: readonly string[];
  /** Every partition, ascending. */
  readonly partitions: readonly ManifestPartition[];
}

export function clusterSavepointManifestKey(name: string): string {
  return `${CLUSTER_SAVEPOINTS_PREFIX}${name}/manifest.json`;
}

/** Where the attempt `id` of savepoint `name` keeps its objects. */
export function clusterSavepointObjectsPrefix(name: string, id: string): string {
  return `${CLUSTER_SAVEPOINTS_PREFIX}${name}/${id}/`;
}

export function partitionObjectKey(name: string, id: string, partition: number): string {
  return `${clusterSavepointObjectsPrefix(name, id)}${partition}.partition`;
}

export function sha256(bytes: Uint8Array): string {
  return createHash("sha256").update(bytes).digest("hex");
}

export function encodeSavedPartition(saved: SavedPartition): Buffer {
  return packr.pack([
    PARTITION_OBJECT_VERSION,
    saved.partition,
    encodeWritesFrame(saved.rows),
    saved.inbox.map((record) => [record.key, record.value]),
  ]);
}

/** Decodes a partition object; `where` names it in every error. */
export function decodeSavedPartition(
  where: string,
  partition: number,
  bytes: Uint8Array,
): Result<SavedPartition, "savepoint-malformed"> {
  const malformed = (why: string) => failure("savepoint-malformed", `${where}: ${why}`, false);
  let fields: unknown;
  try {
    fields = packr.unpack(bytes);
  } catch (error) {
    return malformed(`not msgpack (${error instanceof Error ? error.message : String(error)})`);
  }
  if (!Array.isArray(fields) || fields.length !== 4) return malformed("not an array of 4 fields");
  const [version, savedPartition, frame, inbox] = fields as unknown[];
  if (version !== PARTITION_OBJECT_VERSION)
    return malformed(`version ${String(version)}, this Eddy reads ${PARTITION_OBJECT_VERSION}`);
  if (savedPartition !== partition) return malformed(`holds partition ${String(savedPartition)}, not ${partition}`);
  if (!(frame instanceof Uint8Array)) return malformed("no rows");
  let rows: PendingWrite[];
  try {
    rows = decodeWritesFrame(frame);
  } catch (error) {
    return malformed(`rows that do not decode (${error instanceof Error ? error.message : String(error)})`);
  }
  if (rows.some((row) => !Array.isArray(row.key) || partitionOfKey(row.key) !== partition || row.value === undefined)) {
    return malformed("rows of another partition, or deletions");
  }
  if (!Array.isArray(inbox)) return malformed("no inbox records");
  const records: SavedInboxRecord[] = [];
  for (const record of inbox as unknown[]) {
    if (!Array.isArray(record) || record.length !== 2) return malformed("an inbox record that is not a key and value");
    const [key, value] = record as unknown[];
    if (!(key === null || key instanceof Uint8Array) || !(value instanceof Uint8Array)) {
      return malformed("an inbox record whose key or value is not bytes");
    }
    records.push({ key, value });
  }
  return success({ partition, rows, inbox: records });
}

export function encodeClusterSavepointManifest(manifest: ClusterSavepointManifest): Buffer {
  return Buffer.from(`${JSON.stringify(manifest, null, 2)}\n`);
}

/** Parses a stored manifest; `where` names it in every error. */
export function decodeClusterSavepointManifest(
  where: string,
  bytes: Uint8Array,
): Result<ClusterSavepointManifest, "savepoint-malformed"> {
  const malformed = (why: string) => failure("savepoint-malformed", `${where}: ${why}`, false);
  let value: unknown;
  try {
    value = JSON.parse(Buffer.from(bytes).toString("utf8"));
  } catch (error) {
    return malformed(`not JSON (${(error as Error).message}; truncated?)`);
  }
  const manifest = value as Partial<ClusterSavepointManifest> | null;
  if (typeof manifest !== "object" || manifest === null) return malformed("not an object");
  if (manifest.format !== CLUSTER_SAVEPOINT_FORMAT)
    return malformed(`format ${JSON.stringify(manifest.format)}, this Eddy reads ${CLUSTER_SAVEPOINT_FORMAT}`);
  for (const field of ["name", "id", "cluster", "createdAt"] as const) {
    if (typeof manifest[field] !== "string") return malformed(`${field}: expected a string`);
  }
  if (!Number.isSafeInteger(manifest.generation)) return malformed("generation: expected a whole number");
  const count = manifest.partitionCount;
  if (!Number.isSafeInteger(count) || (count as number) < 1) return malformed("partitionCount: expected a count");
  if (!Array.isArray(manifest.workers) || manifest.workers.some((worker) => typeof worker !== "string")) {
    return malformed("workers: expected a list of worker ids");
  }
  const partitions = manifest.partitions;
  if (!Array.isArray(partitions) || partitions.length !== count) {
    return malformed(`partitions: expected one entry for each of the ${count} partitions`);
  }
  for (const [index, entry] of partitions.entries()) {
    const at = `partitions[${index}]`;
    if (entry?.partition !== index) return malformed(`${at}.partition: expected ${index}`);
    if (!Number.isSafeInteger(entry.rows) || !Number.isSafeInteger(entry.inboxRecords))
      return malformed(`${at}: expected counts of rows and inbox records`);
    const object = entry.object as ManifestPartition["object"] | null;
    if (object === null) return malformed(`${at}.object: expected an object, or none`);
    if (object !== undefined) {
      if (typeof object !== "object") return malformed(`${at}.object: expected an object`);
      if (typeof object.key !== "string" || !object.key.startsWith(CLUSTER_SAVEPOINTS_PREFIX))
        return malformed(`${at}.object.key: expected a ${CLUSTER_SAVEPOINTS_PREFIX} key`);
      if (!Number.isSafeInteger(object.bytes)) return malformed(`${at}.object.bytes: expected a byte count`);
      if (typeof object.sha256 !== "string" || !/^[0-9a-f]{64}$/.test(object.sha256))
        return malformed(`${at}.object.sha256: expected 64 hex digits`);
    } else if (entry.rows !== 0 || entry.inboxRecords !== 0) {
      return malformed(`${at}: rows or inbox records without an object`);
    }
  }
  return success(manifest as ClusterSavepointManifest);
}

/** The name of the savepoint whose manifest is at `key`, if `key` is one. */
export function clusterSavepointNameOfKey(key: string): string | undefined {
  const match = /^cluster-savepoints\/([^/]+)\/manifest\.json$/.exec(key);
  return match === null ? undefined : match[1];
}
