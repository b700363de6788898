// All partitions of one process over one store. It routes each input to the partition
// that owns the address, hands function-to-function messages to their target partition
// inside the same commit (the single-node stand-in for a log between partitions), and
// holds every other effect until the caller has made the commit durable (backpressure
// changes go to their listener at once: they gate the sources, nothing leaves the runtime).
//
// Usage by an engine: feed inputs; every few milliseconds call takeCommit(), write
// `writes` durably in one transaction, and only then act on `effects`.

import type { FromFunction } from "@eddy/protocol";
import { type Address, addressKey } from "./address.ts";
import type { Effect } from "./effects.ts";
import { type KV, PrefixedKV } from "./kv.ts";
import { OverlayKV, type PendingWrite } from "./overlay-kv.ts";
import { type Catalog, PartitionCore } from "./partition-core.ts";
import { partitionOf } from "./partitioning.ts";
import type { Envelope } from "./records.ts";

export type ReleasedEffect = Exclude<Effect, { kind: "route" } | { kind: "backpressure" }>;

/** Told at once (not after the commit) when an address's backlog reaches its limit or falls below it. */
export type BackpressureListener = (target: Address, blocked: boolean) => void;

export interface Commit {
  readonly writes: PendingWrite[];
  readonly effects: ReleasedEffect[];
}

export class PartitionSet {
  readonly partitionCount: number;
  readonly #overlay: OverlayKV;
  readonly #cores: PartitionCore[];
  /** Effects produced since the last commit, in order. */
  #effects: Effect[] = [];
  #held: ReleasedEffect[] = [];

  readonly #onBackpressure: BackpressureListener | undefined;

  constructor(store: KV, catalog: Catalog, partitionCount: number, onBackpressure?: BackpressureListener) {
    this.#onBackpressure = onBackpressure;
    this.partitionCount = partitionCount;
    this.#overlay = new OverlayKV(store);
    this.#cores = Array.from(
      { length: partitionCount },
      (_, partition) => new PartitionCore(new PrefixedKV(this.#overlay, ["p", partition]), catalog, this.#effects),
    );
  }

  /**
   * The current transaction, for connectors that keep their own tables (under their own
   * first key part, never "p"): what they write commits together with the partitions' writes.
   */
  get transaction(): KV {
    return this.#overlay;
  }

  /** Writes waiting for the next commit. */
  get pendingWrites(): number {
    return this.#overlay.pendingCount;
  }

  /** Effects waiting for the next commit. */
  get heldEffects(): number {
    return this.#held.length;
  }

  get nextTimerAtMs(): number | undefined {
    let earliest: number | undefined;
    for (const core of this.#cores) {
      const at = core.nextTimerAtMs;
      if (at !== undefined && (earliest === undefined || at < earliest)) earliest = at;
    }
    return earliest;
  }

  get activeAddresses(): number {
    return this.#cores.reduce((sum, core) => sum + core.activeCount, 0);
  }

  #core(address: Address): PartitionCore {
    return this.#cores[partitionOf(addressKey(address), this.partitionCount)] as PartitionCore;
  }

  recover(nowMs: number): void {
    for (const core of this.#cores) core.recover(nowMs);
    this.#drain(nowMs);
  }

  deliver(envelope: Envelope, nowMs: number): void {
    this.#core(envelope.target).deliver(envelope, nowMs);
    this.#drain(nowMs);
  }

  /** See PartitionCore.deliverOnce. */
  deliverOnce(envelope: Envelope, idempotencyKey: string, nowMs: number): boolean {
    const delivered = this.#core(envelope.target).deliverOnce(envelope, idempotencyKey, nowMs);
    this.#drain(nowMs);
    return delivered;
  }

  expireIngressKeys(beforeMs: number): number {
    return this.#cores.reduce((sum, core) => sum + core.expireIngressKeys(beforeMs), 0);
  }

  complete(target: Address, batchId: number, response: FromFunction, nowMs: number): void {
    this.#core(target).complete(target, batchId, response, nowMs);
    this.#drain(nowMs);
  }

  fail(target: Address, batchId: number, reason: string, nowMs: number): void {
    this.#core(target).fail(target, batchId, reason, nowMs);
    this.#drain(nowMs);
  }

  egressDelivered(source: Address, seq: number): void {
    this.#core(source).egressDelivered(seq);
  }

  egressRejected(source: Address, seq: number, reason: string, nowMs: number): void {
    this.#core(source).egressRejected(seq, reason, nowMs);
    this.#drain(nowMs);
  }

  fireTimers(nowMs: number): void {
    for (const core of this.#cores) core.fireTimers(nowMs);
    this.#drain(nowMs);
  }

  /** The writes to make durable and the effects to release once they are. */
  takeCommit(): Commit {
    const effects = this.#held;
    this.#held = [];
    return { writes: this.#overlay.takeWrites(), effects };
  }

  /** Routes messages between partitions until none are left; holds the rest. */
  #drain(nowMs: number): void {
    // The cores push into the shared array; routing may add more while we walk it.
    for (let index = 0; index < this.#effects.length; index++) {
      const effect = this.#effects[index] as Effect;
      if (effect.kind === "route") this.#core(effect.envelope.target).deliver(effect.envelope, nowMs);
      // Backpressure is about what the sources may send next, not something that leaves the runtime.
      else if (effect.kind === "backpressure") this.#onBackpressure?.(effect.target, effect.blocked);
      else this.#held.push(effect);
    }
    this.#effects.length = 0;
  }
}
