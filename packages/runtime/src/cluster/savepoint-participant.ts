// A worker's part in a savepoint of its cluster (savepoint-coordinator.ts asks every worker, in
// three rounds, over the admin API):
//
// 1. hold: the worker commits nothing from now on (its CommitGate), and answers once the commit
//    in flight has ended, with its generation and partitions. When every worker has answered,
//    no worker commits: the changelog, the inbox and every local store stand still.
// 2. capture: each partition's rows as the local store holds them (every commit is in it), and
//    the partition's inbox from its inbox position up to the topic's end (what other workers
//    sent it that it has not taken yet; a message is in exactly one of the two). These are one
//    consistent cut only because every worker held before any captured, hence the two rounds.
// 3. release: commits go on; with `write`, the worker then stores what it captured.
//
// A hold ends by itself after a bound (a coordinator that died must not stop the cluster), and
// the savepoint then fails: release answers that it expired. A rebalance between hold and
// release fails it too: a partition's next owner may have committed while this one held.
import type { BlobStore } from "../checkpoint/blob/blob-store.ts";
import type { KV } from "../core/kv.ts";
import type { PendingWrite } from "../core/overlay-kv.ts";
import { getRow, inPartition, tables } from "../core/schema.ts";
import { type Failure, failure, type Result, success } from "../errors.ts";
import type { CommitGate } from "./commit-gate.ts";
import type { MembershipSnapshot } from "./group-machine.ts";
import { partitionRows } from "./partition-snapshots.ts";
import {
  encodeSavedPartition,
  type ManifestPartition,
  partitionObjectKey,
  type SavedInboxRecord,
  type SavedPartition,
  sha256,
} from "./savepoint-format.ts";

/** How long a worker holds its commits for a savepoint at most, by default. */
export const SAVEPOINT_HOLD_MS_DEFAULT = 10_000;

export type SavepointFailureCode =
  | "savepoint-busy"
  | "savepoint-rebalancing"
  | "savepoint-expired"
  | "savepoint-unknown"
  | "savepoint-inbox-unread"
  | "savepoint-write-failed";

export type SavepointFailure = Failure<SavepointFailureCode>;

export interface HoldAnswer {
  readonly workerId: string;
  readonly generation: number;
  readonly partitions: readonly number[];
}

export interface CaptureAnswer {
  readonly workerId: string;
  readonly rows: number;
  readonly inboxRecords: number;
}

export interface ReleaseAnswer {
  readonly workerId: string;
  /** With `write`: this worker's partitions as the manifest lists them. */
  readonly partitions?: readonly ManifestPartition[];
}

/** Reads each partition's inbox from the offset given up to the topic's end now, committed records only. */
export type InboxTailReader = (
  from: ReadonlyMap<number, number>,
  deadlineMs: number,
) => Promise<Result<Map<number, SavedInboxRecord[]>, "savepoint-inbox-unread">>;

export interface SavepointParticipantOptions {
  readonly workerId: string;
  readonly gate: CommitGate;
  /** The generation the worker holds now. */
  readonly membership: () => MembershipSnapshot | undefined;
  /** The partitions the engine runs now (restored and running). */
  readonly running: () => readonly number[];
  /** Counts the rebalances the worker saw begin or end. */
  readonly rebalances: () => number;
  readonly local: KV;
  readonly readInboxTails: InboxTailReader;
  readonly blobs: BlobStore;
  readonly holdMs?: number;
  /** Default performance.now. */
  readonly nowMs?: () => number;
}

interface ActiveSavepoint {
  readonly id: string;
  readonly name: string;
  readonly generation: number;
  readonly partitions: readonly number[];
  readonly rebalances: number;
  readonly deadlineMs: number;
  readonly timer: ReturnType<typeof setTimeout>;
  expired: boolean;
  captured?: readonly SavedPartition[];
}

export class SavepointParticipant {
  readonly #options: SavepointParticipantOptions;
  #active: ActiveSavepoint | undefined;

  constructor(options: SavepointParticipantOptions) {
    this.#options = options;
  }

  get #now(): number {
    return this.#options.nowMs?.() ?? performance.now();
  }

  /** Whether a savepoint holds this worker's commits now. */
  get holding(): boolean {
    return this.#active !== undefined && !this.#active.expired;
  }

  async hold(id: string, name: string): Promise<Result<HoldAnswer, SavepointFailureCode>> {
    const active = this.#active;
    if (active !== undefined) {
      // Asked again (a repeated request): answered as the first ask is, once the gate holds.
      if (active.id === id && !active.expired) return this.#held(active);
      if (!active.expired) {
        return failure("savepoint-busy", `worker ${this.#options.workerId} is taking savepoint ${active.name}`, true);
      }
      // An expired one is forgotten once another asks.
      this.#active = undefined;
    }
    const before = this.#steady();
    if (!before.ok) return before;
    const rebalances = this.#options.rebalances();
    const holdMs = this.#options.holdMs ?? SAVEPOINT_HOLD_MS_DEFAULT;
    const timer = setTimeout(() => this.#expire(id), holdMs);
    timer.unref?.();
    const started: ActiveSavepoint = {
      id,
      name,
      generation: before.value.generationId,
      partitions: before.value.partitions,
      rebalances,
      deadlineMs: this.#now + holdMs,
      timer,
      expired: false,
    };
    this.#active = started;
    return this.#held(started);
  }

  /** Waits until the gate holds (the commit in flight has ended), then answers for `savepoint`. */
  async #held(savepoint: ActiveSavepoint): Promise<Result<HoldAnswer, SavepointFailureCode>> {
    await this.#options.gate.hold();
    if (this.#active !== savepoint || savepoint.expired) {
      // It expired, or a rebalance ended it, while the commit in flight finished. Whatever ended
      // it released the gate then; the gate may be another savepoint's now, so it is left alone.
      const failed = savepoint.expired ? this.#expiredFailure(savepoint) : this.#changedSince(savepoint);
      return failed ?? failure("savepoint-rebalancing", `worker ${this.#options.workerId} stopped holding`, true);
    }
    const changed = this.#changedSince(savepoint);
    if (changed !== undefined) {
      this.#end(savepoint);
      return changed;
    }
    return success(this.#holdAnswer(savepoint));
  }

  async capture(id: string): Promise<Result<CaptureAnswer, SavepointFailureCode>> {
    const active = this.#holding(id);
    if (!active.ok) return active;
    const savepoint = active.value;
    const changed = this.#changedSince(savepoint);
    if (changed !== undefined) return changed;
    if (savepoint.captured === undefined) {
      const { local } = this.#options;
      const rows = new Map<number, PendingWrite[]>();
      const from = new Map<number, number>();
      // One synchronous pass: nothing commits while held, but nothing else runs in it either.
      for (const partition of savepoint.partitions) {
        const changelogOffset = JSON.stringify(inPartition(partition, tables.changelogOffset.key()));
        rows.set(
          partition,
          partitionRows(local, partition).filter((row) => JSON.stringify(row.key) !== changelogOffset),
        );
        from.set(partition, getRow(local, inPartition(partition, tables.inboxPosition.key())) ?? 0);
      }
      const tails = await this.#options.readInboxTails(from, savepoint.deadlineMs);
      if (!tails.ok) return tails;
      if (this.#active !== savepoint || savepoint.expired) return this.#expiredFailure(savepoint);
      savepoint.captured = savepoint.partitions.map((partition) => ({
        partition,
        rows: rows.get(partition) ?? [],
        inbox: tails.value.get(partition) ?? [],
      }));
    }
    const captured = savepoint.captured;
    return success({
      workerId: this.#options.workerId,
      rows: captured.reduce((sum, saved) => sum + saved.rows.length, 0),
      inboxRecords: captured.reduce((sum, saved) => sum + saved.inbox.length, 0),
    });
  }

  /**
   * Lets commits through again; with `write`, then stores what was captured. Releasing a
   * savepoint this worker does not hold (it expired, or was never held) is no error without
   * `write`: the coordinator releases everyone when anything failed.
   */
  async release(id: string, write: boolean): Promise<Result<ReleaseAnswer, SavepointFailureCode>> {
    const savepoint = this.#active;
    if (savepoint === undefined || savepoint.id !== id) {
      if (!write) return success({ workerId: this.#options.workerId });
      return failure("savepoint-unknown", `worker ${this.#options.workerId} holds no savepoint ${id}`, false);
    }
    const changed = savepoint.expired ? this.#expiredFailure(savepoint) : this.#changedSince(savepoint);
    this.#end(savepoint);
    if (!write) return success({ workerId: this.#options.workerId });
    if (changed !== undefined) return changed;
    const captured = savepoint.captured;
    if (captured === undefined) {
      return failure("savepoint-unknown", `worker ${this.#options.workerId} did not capture savepoint ${id}`, false);
    }
    const partitions: ManifestPartition[] = [];
    try {
      for (const saved of captured) {
        if (saved.rows.length === 0 && saved.inbox.length === 0) {
          partitions.push({ partition: saved.partition, rows: 0, inboxRecords: 0 });
          continue;
        }
        const body = encodeSavedPartition(saved);
        const key = partitionObjectKey(savepoint.name, id, saved.partition);
        await this.#options.blobs.put(key, body);
        partitions.push({
          partition: saved.partition,
          rows: saved.rows.length,
          inboxRecords: saved.inbox.length,
          object: { key, bytes: body.byteLength, sha256: sha256(body) },
        });
      }
    } catch (error) {
      return failure(
        "savepoint-write-failed",
        `worker ${this.#options.workerId} could not write to ${this.#options.blobs.url}: ${error instanceof Error ? error.message : String(error)}`,
        true,
      );
    }
    return success({ workerId: this.#options.workerId, partitions });
  }

  /** Ends any hold now (the worker is stopping). */
  close(): void {
    if (this.#active !== undefined) this.#end(this.#active);
  }

  #holdAnswer(savepoint: ActiveSavepoint): HoldAnswer {
    return { workerId: this.#options.workerId, generation: savepoint.generation, partitions: savepoint.partitions };
  }

  /** The worker's generation, when it runs every partition the generation gave it. */
  #steady(): Result<MembershipSnapshot, "savepoint-rebalancing"> {
    const membership = this.#options.membership();
    if (membership === undefined) {
      return failure(
        "savepoint-rebalancing",
        `worker ${this.#options.workerId} is between two generations of its group`,
        true,
      );
    }
    const running = new Set(this.#options.running());
    const restoring = membership.partitions.filter((partition) => !running.has(partition));
    if (restoring.length > 0 || running.size !== membership.partitions.length) {
      return failure(
        "savepoint-rebalancing",
        `worker ${this.#options.workerId} is still restoring partitions ${restoring.join(", ")} of generation ${membership.generationId}`,
        true,
      );
    }
    return success(membership);
  }

  #changedSince(savepoint: ActiveSavepoint): SavepointFailure | undefined {
    const now = this.#options.membership();
    if (this.#options.rebalances() !== savepoint.rebalances || now?.generationId !== savepoint.generation) {
      return failure(
        "savepoint-rebalancing",
        `the group rebalanced while worker ${this.#options.workerId} held (generation ${savepoint.generation}${now === undefined ? ", now none" : now.generationId === savepoint.generation ? "" : `, now ${now.generationId}`})`,
        true,
      );
    }
    return undefined;
  }

  #holding(id: string): Result<ActiveSavepoint, SavepointFailureCode> {
    const savepoint = this.#active;
    if (savepoint === undefined || savepoint.id !== id) {
      return failure("savepoint-unknown", `worker ${this.#options.workerId} holds no savepoint ${id}`, false);
    }
    if (savepoint.expired) return this.#expiredFailure(savepoint);
    return success(savepoint);
  }

  #expiredFailure(savepoint: ActiveSavepoint): SavepointFailure {
    return failure(
      "savepoint-expired",
      `worker ${this.#options.workerId} stopped holding for savepoint ${savepoint.name} after ${this.#options.holdMs ?? SAVEPOINT_HOLD_MS_DEFAULT} ms`,
      true,
    );
  }

  #expire(id: string): void {
    const savepoint = this.#active;
    if (savepoint === undefined || savepoint.id !== id) return;
    savepoint.expired = true;
    clearTimeout(savepoint.timer);
    this.#options.gate.release();
  }

  #end(savepoint: ActiveSavepoint): void {
    clearTimeout(savepoint.timer);
    if (this.#active === savepoint) this.#active = undefined;
    if (!savepoint.expired) this.#options.gate.release();
  }
}
