// Takes a savepoint of a whole cluster, from the worker that was asked (its admin API's
// POST /v1/savepoints). Every worker that runs partitions takes part (savepoint-participant.ts),
// in three rounds, each sent to all of them at once:
//
//   hold     every worker stops committing; its answer names its generation and partitions
//   capture  each reads its partitions' rows and inbox tails (a consistent cut: all hold)
//   release  commits go on, then each writes what it captured to the checkpoint store
//
// then the manifest, written last, once every partition of the cluster is there from one
// generation. The cluster's commits stand still from the first hold until the releases: for
// the two round trips and the inbox reads in between (the answer's `heldMs`). Anything that
// fails releases every worker at once, deletes what was written, and names the worker and why.
import { randomBytes } from "node:crypto";
import type { BlobStore } from "../checkpoint/blob/blob-store.ts";
import { checkSavepointName, SAVEPOINTS_PREFIX } from "../checkpoint/manifest.ts";
import { type Failure, failure, type Result, success } from "../errors.ts";
import type { MemberUrls } from "./member-urls.ts";
import type { PartitionOwner } from "./membership-codec.ts";
import {
  CLUSTER_SAVEPOINT_FORMAT,
  type ClusterSavepointManifest,
  clusterSavepointManifestKey,
  clusterSavepointObjectsPrefix,
  encodeClusterSavepointManifest,
  type ManifestPartition,
} from "./savepoint-format.ts";
import type { SavepointParticipant } from "./savepoint-participant.ts";

export type SavepointPhase = "hold" | "capture" | "release";

/** The body of a phase's request from the coordinator to a worker. */
export interface PhaseRequest {
  readonly id: string;
  readonly name: string;
  /** release only: store what was captured (true), or only let commits go on. */
  readonly write?: boolean;
}

/** What a worker answered a phase: its answer's JSON, or why there is none. */
export type PhaseAnswer = Result<Record<string, unknown>, string>;

export interface SavepointCoordinatorOptions {
  readonly cluster: string;
  readonly workerId: string;
  readonly partitionCount: number;
  readonly participant: SavepointParticipant;
  readonly blobs: BlobStore;
  /** Indexed by partition: who runs it in the current generation. */
  readonly owners: () => readonly (PartitionOwner | undefined)[];
  /**
   * Each worker's URLs by its own latest word, newer than the assignment's (member-urls.ts); a
   * worker missing from it is reached at the assignment's admin URL.
   */
  readonly currentUrls?: () => Promise<ReadonlyMap<string, MemberUrls>>;
  /** Sends a phase to another worker's admin API. */
  readonly send: (adminUrl: string, phase: SavepointPhase, request: PhaseRequest) => Promise<PhaseAnswer>;
  readonly nowMs?: () => number;
}

export interface ClusterSavepointSummary {
  readonly name: string;
  readonly id: string;
  readonly cluster: string;
  readonly generation: number;
  readonly workers: readonly string[];
  readonly partitions: number;
  readonly rows: number;
  readonly inboxRecords: number;
  readonly bytes: number;
  /** How long the cluster's commits were held. */
  readonly heldMs: number;
  readonly ms: number;
}

export type CoordinatorFailureCode =
  | "bad-request"
  | "savepoint-exists"
  | "savepoint-rebalancing"
  | "savepoint-unreachable"
  | "savepoint-failed";

/** Runs a phase on the participant here, answering as a peer would. */
export async function runPhase(
  participant: SavepointParticipant,
  phase: SavepointPhase,
  request: PhaseRequest,
): Promise<Result<Record<string, unknown>, string>> {
  const answer =
    phase === "hold"
      ? await participant.hold(request.id, request.name)
      : phase === "capture"
        ? await participant.capture(request.id)
        : await participant.release(request.id, request.write === true);
  return answer.ok ? success({ ...answer.value }) : answer;
}

export async function takeClusterSavepoint(
  options: SavepointCoordinatorOptions,
  name: string,
): Promise<Result<ClusterSavepointSummary, CoordinatorFailureCode>> {
  const now = options.nowMs ?? (() => performance.now());
  const startedMs = now();
  const badName = checkSavepointName(name);
  if (badName !== undefined) return failure("bad-request", badName, false);
  const { blobs } = options;
  if (
    (await blobs.get(clusterSavepointManifestKey(name))) !== undefined ||
    (await blobs.get(`${SAVEPOINTS_PREFIX}${name}.json`)) !== undefined
  ) {
    return failure("savepoint-exists", `${blobs.url} already holds a savepoint named ${name}`, false);
  }
  const owners = options.owners();
  const nobody = owners.flatMap((owner, partition) => (owner === undefined ? [partition] : []));
  if (owners.length !== options.partitionCount || nobody.length > 0) {
    return failure(
      "savepoint-rebalancing",
      `the cluster is rebalancing: nobody runs partitions ${nobody.join(", ")} now; try again`,
      true,
    );
  }
  const current = (await options.currentUrls?.()) ?? new Map<string, MemberUrls>();
  const workers = new Map<string, PartitionOwner>();
  for (const owner of owners as readonly PartitionOwner[]) {
    const adminUrl = current.get(owner.workerId)?.adminUrl ?? owner.adminUrl;
    workers.set(owner.workerId, { ...owner, adminUrl });
  }
  for (const worker of workers.values()) {
    if (worker.workerId !== options.workerId && worker.adminUrl === undefined) {
      return failure(
        "savepoint-unreachable",
        `worker ${worker.workerId} runs no admin listener: a savepoint asks every worker over its admin API`,
        false,
      );
    }
  }
  const id = `${new Date().toISOString().replace(/[-:.]/g, "")}-${randomBytes(4).toString("hex")}`;
  const request: PhaseRequest = { id, name };
  const everyone = [...workers.values()];
  const ask = (phase: SavepointPhase, body: PhaseRequest) =>
    Promise.all(
      everyone.map(async (worker) => {
        const answer =
          worker.workerId === options.workerId
            ? await runPhase(options.participant, phase, body)
            : await options.send(worker.adminUrl as string, phase, body);
        return { worker: worker.workerId, answer };
      }),
    );
  const failed = (phase: SavepointPhase, answers: readonly { worker: string; answer: PhaseAnswer }[]) =>
    answers.flatMap(({ worker, answer }) => (answer.ok ? [] : [`worker ${worker} (${phase}): ${answer.message}`]));
  const giveUp = async (
    why: string,
    retriable: boolean,
    code: "savepoint-failed" | "savepoint-rebalancing" = "savepoint-failed",
  ): Promise<Failure<"savepoint-failed" | "savepoint-rebalancing">> => {
    await ask("release", { ...request, write: false });
    const written = await blobs.list(clusterSavepointObjectsPrefix(name, id)).catch(() => []);
    if (written.length > 0) await blobs.delete(written).catch(() => undefined);
    return failure(code, `savepoint ${name} was not taken: ${why}`, retriable);
  };

  const heldFromMs = now();
  const holds = await ask("hold", request);
  const notHeld = failed("hold", holds);
  if (notHeld.length > 0) {
    // Only workers between generations or restoring: the group is moving, and asking again soon will do.
    const moving = holds.every(({ answer }) => answer.ok || answer.code === "savepoint-rebalancing");
    return giveUp(notHeld.join("; "), true, moving ? "savepoint-rebalancing" : "savepoint-failed");
  }
  const generations = new Set(holds.map(({ answer }) => (answer.ok ? answer.value.generation : undefined)));
  if (generations.size !== 1) {
    return giveUp(`the workers answered from generations ${[...generations].join(" and ")}; try again`, true);
  }
  const generation = [...generations][0] as number;
  const heldBy = new Map<number, string>();
  for (const { worker, answer } of holds) {
    const partitions = (answer.ok ? answer.value.partitions : []) as readonly number[];
    for (const partition of partitions) {
      const other = heldBy.get(partition);
      if (other !== undefined) return giveUp(`partition ${partition} is held by both ${other} and ${worker}`, true);
      heldBy.set(partition, worker);
    }
  }
  if (heldBy.size !== options.partitionCount) {
    return giveUp(
      `the workers asked hold ${heldBy.size} of ${options.partitionCount} partitions (a worker joined meanwhile?); try again`,
      true,
    );
  }
  const captures = await ask("capture", request);
  const notCaptured = failed("capture", captures);
  if (notCaptured.length > 0) return giveUp(notCaptured.join("; "), true);
  const heldMs = now() - heldFromMs;
  const releases = await ask("release", { ...request, write: true });
  const notWritten = failed("release", releases);
  if (notWritten.length > 0) return giveUp(notWritten.join("; "), true);

  const partitions: ManifestPartition[] = [];
  for (const { answer } of releases) {
    if (answer.ok) partitions.push(...((answer.value.partitions ?? []) as ManifestPartition[]));
  }
  partitions.sort((a, b) => a.partition - b.partition);
  if (partitions.length !== options.partitionCount || partitions.some((entry, index) => entry.partition !== index)) {
    return giveUp(`the workers wrote ${partitions.length} of ${options.partitionCount} partitions`, false);
  }
  const manifest: ClusterSavepointManifest = {
    format: CLUSTER_SAVEPOINT_FORMAT,
    name,
    id,
    cluster: options.cluster,
    generation,
    createdAt: new Date().toISOString(),
    partitionCount: options.partitionCount,
    workers: [...workers.keys()].sort(),
    partitions,
  };
  try {
    await blobs.put(clusterSavepointManifestKey(name), encodeClusterSavepointManifest(manifest));
  } catch (error) {
    return giveUp(`its manifest could not be written: ${error instanceof Error ? error.message : String(error)}`, true);
  }
  return success({
    name,
    id,
    cluster: options.cluster,
    generation,
    workers: manifest.workers,
    partitions: options.partitionCount,
    rows: partitions.reduce((sum, entry) => sum + entry.rows, 0),
    inboxRecords: partitions.reduce((sum, entry) => sum + entry.inboxRecords, 0),
    bytes: partitions.reduce((sum, entry) => sum + (entry.object?.bytes ?? 0), 0),
    heldMs: Math.round(heldMs),
    ms: Math.round(now() - startedMs),
  });
}
