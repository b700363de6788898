// Seeds a new cluster from a savepoint of a cluster (`eddy checkpoints restore <NAME> --cluster
// kafka://…/<NEW>`): as if the new cluster had run up to the savepoint. Each partition's rows
// become its first changelog records, and the messages that waited in its inbox go back into
// its inbox, in order, from offset 0; its inbox position row says 0, as the group's offsets
// (none yet) do, so the first worker to take the partition finds the two agree
// (cluster-worker.ts) and delivers those messages first.
//
// Everything is written in one Kafka transaction, so a seed that fails halfway leaves nothing
// a worker would read. Only a new cluster is seeded: one whose changelog and inbox have never
// been written (their ends are 0). The savepoint's objects are all read and checked (SHA-256,
// decoding) before Kafka is touched.
import { Producer } from "@platformatic/kafka";
import type { BlobStore } from "../checkpoint/blob/blob-store.ts";
import type { PendingWrite } from "../core/overlay-kv.ts";
import { inPartition, tables } from "../core/schema.ts";
import { failure, type Result, success } from "../errors.ts";
import { describe, type KafkaConnection, kafkaConnection } from "../io/kafka/client-options.ts";
import { encodeWritesFrame } from "../store/writes-frame.ts";
import type { ClusterAddress } from "./cluster-settings.ts";
import { ensureClusterTopics } from "./cluster-topics.ts";
import {
  CLUSTER_SAVEPOINTS_PREFIX,
  type ClusterSavepointManifest,
  clusterSavepointManifestKey,
  clusterSavepointNameOfKey,
  decodeClusterSavepointManifest,
  decodeSavedPartition,
  type SavedPartition,
  sha256,
} from "./savepoint-format.ts";
import { TopicReader } from "./topic-reader.ts";

/** A changelog record of a seed holds about this much at most (one bigger row goes alone). */
const SEED_FRAME_BYTES = 512 * 1024;
/** Records per Produce of the seed's transaction. */
const SEND_RECORDS = 256;
/** The seed's one transaction may take this long. */
const SEED_TRANSACTION_TIMEOUT_MS = 120_000;

export type SeedFailureCode =
  | "savepoint-missing"
  | "savepoint-malformed"
  | "cluster-not-new"
  | "cluster-topic-partitions"
  | "cluster-topic-create"
  | "cluster-name-invalid"
  | "kafka-unreachable"
  | "seed-failed";

export interface SeedSummary {
  readonly manifest: ClusterSavepointManifest;
  readonly rows: number;
  readonly inboxRecords: number;
  readonly changelogRecords: number;
  readonly ms: number;
}

/** Whether `blobs` holds a cluster savepoint named `name`. */
export async function hasClusterSavepoint(blobs: BlobStore, name: string): Promise<boolean> {
  return (await blobs.get(clusterSavepointManifestKey(name))) !== undefined;
}

/** Reads the savepoint `name` whole, each object checked against its manifest. */
export async function readClusterSavepoint(
  blobs: BlobStore,
  name: string,
): Promise<
  Result<
    { manifest: ClusterSavepointManifest; partitions: SavedPartition[] },
    "savepoint-missing" | "savepoint-malformed"
  >
> {
  const key = clusterSavepointManifestKey(name);
  const bytes = await blobs.get(key);
  if (bytes === undefined)
    return failure("savepoint-missing", `${blobs.url} holds no cluster savepoint ${name}`, false);
  const decoded = decodeClusterSavepointManifest(`${blobs.url} ${key}`, bytes);
  if (!decoded.ok) return decoded;
  const manifest = decoded.value;
  const partitions: SavedPartition[] = [];
  for (const entry of manifest.partitions) {
    const object = entry.object;
    if (object === undefined) {
      partitions.push({ partition: entry.partition, rows: [], inbox: [] });
      continue;
    }
    const where = `${blobs.url} ${object.key}`;
    const body = await blobs.get(object.key);
    if (body === undefined)
      return failure("savepoint-missing", `${where}: missing (savepoint ${name} is incomplete)`, false);
    if (body.byteLength !== object.bytes || sha256(body) !== object.sha256) {
      return failure("savepoint-malformed", `${where}: its size or SHA-256 is not what the manifest says`, false);
    }
    const saved = decodeSavedPartition(where, entry.partition, body);
    if (!saved.ok) return saved;
    if (saved.value.rows.length !== entry.rows || saved.value.inbox.length !== entry.inboxRecords) {
      return failure("savepoint-malformed", `${where}: holds other counts than the manifest says`, false);
    }
    partitions.push(saved.value);
  }
  return success({ manifest, partitions });
}

export async function seedClusterFromSavepoint(options: {
  readonly connection: KafkaConnection;
  readonly cluster: string;
  readonly blobs: BlobStore;
  readonly name: string;
}): Promise<Result<SeedSummary, SeedFailureCode>> {
  const startedMs = performance.now();
  const read = await readClusterSavepoint(options.blobs, options.name);
  if (!read.ok) return read;
  const { manifest, partitions } = read.value;
  const topics = await ensureClusterTopics({
    connection: options.connection,
    cluster: options.cluster,
    partitionCount: manifest.partitionCount,
  });
  if (!topics.ok) return topics;
  const all = manifest.partitions.map((entry) => entry.partition);
  for (const topic of [topics.value.changelog, topics.value.inbox]) {
    const reader = new TopicReader({ connection: options.connection, topic, maxWaitMs: 100, fetchBytes: 1024 });
    try {
      const ends = await reader.ends(all);
      const written = [...ends].find(([, end]) => end > 0n);
      if (written !== undefined) {
        return failure(
          "cluster-not-new",
          `cluster ${options.cluster} is not new: ${topic} partition ${written[0]} ends at offset ${written[1]}; a savepoint seeds a new cluster, so restore it under another cluster name`,
          false,
        );
      }
    } catch (error) {
      return failure("kafka-unreachable", `cannot read the ends of ${topic}: ${describe(error)}`, true);
    } finally {
      await reader.close().catch(() => undefined);
    }
  }

  const messages: { topic: string; partition: number; key?: Buffer; value: Buffer }[] = [];
  let rows = 0;
  let inboxRecords = 0;
  let changelogRecords = 0;
  for (const saved of partitions) {
    for (const record of saved.inbox) {
      messages.push({
        topic: topics.value.inbox,
        partition: saved.partition,
        ...(record.key === null ? {} : { key: Buffer.from(record.key) }),
        value: Buffer.from(record.value),
      });
    }
    inboxRecords += saved.inbox.length;
    const seededRows = saved.rows.map((row) =>
      isInboxPosition(row, saved.partition) ? { key: row.key, value: 0 } : row,
    );
    rows += seededRows.length;
    for (const frame of frames(seededRows)) {
      messages.push({ topic: topics.value.changelog, partition: saved.partition, value: frame });
      changelogRecords++;
    }
  }
  const producer = new Producer<Buffer, Buffer, Buffer, Buffer>({
    ...options.connection,
    transactionalId: `eddy.${options.cluster}.seed`,
    idempotent: true,
    acks: -1,
    autocreateTopics: false,
    timeout: SEED_TRANSACTION_TIMEOUT_MS,
    producerId: -1n,
    producerEpoch: -1,
  });
  try {
    const transaction = await producer.beginTransaction();
    try {
      for (let start = 0; start < messages.length; start += SEND_RECORDS) {
        await transaction.send({ messages: messages.slice(start, start + SEND_RECORDS) });
      }
      await transaction.commit();
    } catch (error) {
      await transaction.abort().catch(() => undefined);
      throw error;
    }
  } catch (error) {
    return failure(
      "seed-failed",
      `seeding cluster ${options.cluster} failed, nothing of it is visible: ${describe(error)}; restore under another cluster name`,
      true,
    );
  } finally {
    await producer.close(true).catch(() => undefined);
  }
  return success({ manifest, rows, inboxRecords, changelogRecords, ms: Math.round(performance.now() - startedMs) });
}

function isInboxPosition(row: PendingWrite, partition: number): boolean {
  const key = inPartition(partition, tables.inboxPosition.key());
  return row.key.length === key.length && row.key.every((part, index) => part === key[index]);
}

/** The rows as writes frames of about SEED_FRAME_BYTES each, in order. */
function frames(rows: readonly PendingWrite[]): Buffer[] {
  const out: Buffer[] = [];
  let chunk: PendingWrite[] = [];
  let bytes = 0;
  for (const row of rows) {
    const size = encodeWritesFrame([row]).byteLength;
    if (chunk.length > 0 && bytes + size > SEED_FRAME_BYTES) {
      out.push(encodeWritesFrame(chunk));
      chunk = [];
      bytes = 0;
    }
    chunk.push(row);
    bytes += size;
  }
  if (chunk.length > 0) out.push(encodeWritesFrame(chunk));
  return out;
}

/** The cluster savepoints `blobs` holds, by name, with the ones that cannot be read named. */
export async function listClusterSavepoints(blobs: BlobStore): Promise<{
  readonly savepoints: readonly ClusterSavepointManifest[];
  readonly unreadable: readonly { readonly key: string; readonly error: string }[];
}> {
  const savepoints: ClusterSavepointManifest[] = [];
  const unreadable: { key: string; error: string }[] = [];
  const keys = (await blobs.list(CLUSTER_SAVEPOINTS_PREFIX)).filter(
    (key) => clusterSavepointNameOfKey(key) !== undefined,
  );
  for (const key of keys.sort()) {
    const bytes = await blobs.get(key);
    if (bytes === undefined) continue;
    const decoded = decodeClusterSavepointManifest(`${blobs.url} ${key}`, bytes);
    if (decoded.ok) savepoints.push(decoded.value);
    else unreadable.push({ key, error: decoded.message });
  }
  return { savepoints, unreadable };
}

/** seedClusterFromSavepoint for a command line: the cluster's address and its --cluster-config properties. */
export function seedConnection(
  address: ClusterAddress,
  properties: ReadonlyMap<string, string>,
  propertiesSource: string,
): Result<KafkaConnection, "cluster-config-invalid"> {
  const connection = kafkaConnection(address.brokers.join(","), properties, "eddy-seed", propertiesSource);
  return connection.ok ? success(connection.value) : failure("cluster-config-invalid", connection.error, false);
}
