// All partitions of one process over one store. It routes each input to the partition
// that owns the address, hands function-to-function messages to their target partition
// inside the same commit (the single-node stand-in for a log between partitions), and
// holds every effect that leaves the runtime (egress, dead-letter reports, stop) until the
// caller has made the commit durable.
//
// Two kinds of effect go to their listener at once instead. Backpressure changes gate the
// sources; nothing leaves the runtime. Invocations are not held either: a function's reply
// is applied to the same ordered stream of commits as the batch it answers, so it commits
// together with the batch or after it, never alone; a crash before that commit loses the
// batch and the reply together, and the batch's inputs come again: an ingress message from
// its source, which had no acknowledgement; a routed message with the reply that sent it,
// whose batch is re-sent from its committed in-flight row. The function may so
// see a batch or a state that a crash then rolls back, which is StateFun's contract too
// (at-least-once invocation, exactly-once state and messages); it does not wait for a
// disk sync at every hop of a chain.
//
// Usage by an engine: feed inputs; every few milliseconds call takeCommit(), write
// `writes` durably in one transaction, and only then act on `effects`.

import type { FromFunction, TypedValue } from "@eddy/protocol";
import { type Address, addressKey, replyAddress } from "./address.ts";
import type { Effect } from "./effects.ts";
import type { Key, KV } from "./kv.ts";
import { OverlayKV, type OverlayOptions, type PendingTally, type PendingWrite } from "./overlay-kv.ts";
import { type AdmittedTally, type Catalog, PartitionCore } from "./partition-core.ts";
import { partitionOf } from "./partitioning.ts";
import { type DeadLetter, deadLetterId, type Envelope, keys, type RequestRecord, requestTime } from "./records.ts";

/** Where a partition's rows live in the store. */
function partitionPrefix(partition: number): Key {
  return ["p", partition];
}

export type ReleasedEffect = Exclude<Effect, { kind: "route" } | { kind: "backpressure" } | { kind: "invoke" }>;
export type InvokeEffect = Extract<Effect, { kind: "invoke" }>;

/** Effects handed over as they happen, not after the commit. Listeners must not call back into the set synchronously. */
export interface PartitionSetListeners {
  /** A batch to send to its function now. */
  readonly invoke: (effect: InvokeEffect) => void;
  /** An address's backlog reached its limit (blocked) or fell below it again. */
  readonly backpressure?: (target: Address, blocked: boolean) => void;
}

/** How an ingress message was taken. */
export interface Accepted {
  /** The idempotency key was seen before: nothing was delivered this time. */
  readonly duplicate: boolean;
  /** The request whose reply the ingress waits for: this one's, or the first acceptance's for a duplicate. */
  readonly requestId?: string;
}

export interface AcceptInput {
  readonly idempotencyKey?: string;
  /** The message waits for a reply: its caller becomes replyAddress(requestId). */
  readonly requestId?: string;
}

export interface Commit {
  readonly writes: PendingWrite[];
  readonly effects: ReleasedEffect[];
}

/** A record an ingress could not route: why, and the function it would have gone to. */
export interface RejectedRecord {
  readonly ingress: string;
  readonly target: Address;
  readonly argument: TypedValue;
  readonly reason: string;
}

export class PartitionSet {
  readonly partitionCount: number;
  readonly #store: KV;
  /** One overlay per partition (keys under ["p", partition]), and one for connectors' tables. */
  readonly #overlays: OverlayKV[];
  readonly #connectorOverlay: OverlayKV;
  readonly #pendingTally: PendingTally = { count: 0 };
  readonly #admitted: AdmittedTally = { bytes: 0, bytesMax: 0 };
  readonly #cores: PartitionCore[];
  /** Effects produced since the last commit, in order. */
  #effects: Effect[] = [];
  #held: ReleasedEffect[] = [];

  readonly #listeners: PartitionSetListeners;

  constructor(
    store: KV,
    catalog: Catalog,
    partitionCount: number,
    listeners: PartitionSetListeners,
    overlayOptions: OverlayOptions = {},
  ) {
    this.#listeners = listeners;
    this.#store = store;
    this.partitionCount = partitionCount;
    const pendingTally = this.#pendingTally;
    this.#connectorOverlay = new OverlayKV(store, { ...overlayOptions, pendingTally });
    this.#overlays = Array.from(
      { length: partitionCount },
      (_, partition) =>
        new OverlayKV(store, { ...overlayOptions, pendingTally, basePrefix: partitionPrefix(partition) }),
    );
    this.#cores = this.#overlays.map((overlay) => new PartitionCore(overlay, catalog, this.#effects, this.#admitted));
  }

  /**
   * The current transaction, for connectors that keep their own tables (under their own
   * first key part, never "p"): what they write commits together with the partitions' writes.
   */
  get transaction(): KV {
    return this.#connectorOverlay;
  }

  /** Writes waiting for the next commit. */
  get pendingWrites(): number {
    return this.#pendingTally.count;
  }

  /** Work admitted and not finished, in bytes (see AdmittedTally): what the memory budget bounds. */
  get admittedBytes(): number {
    return this.#admitted.bytes;
  }

  /**
   * A connector holds work it took over and has not finished (an egress's rows waiting for
   * their Kafka transaction): counted as admitted until it releases it with a negative count.
   */
  admitHeld(bytes: number): void {
    const admitted = this.#admitted;
    admitted.bytes += bytes;
    if (admitted.bytes > admitted.bytesMax) admitted.bytesMax = admitted.bytes;
  }

  /** The most `admittedBytes` has been since the start. */
  get admittedBytesMax(): number {
    return this.#admitted.bytesMax;
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

  /**
   * A dead letter's id (deadLetterId). A letter is kept by the partition of its target: every
   * core dead-letters only for addresses it owns (a sender's egress message under the sender).
   */
  deadLetterId(letter: DeadLetter): string {
    return deadLetterId(partitionOf(addressKey(letter.target), this.partitionCount), letter.seq);
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

  /**
   * A message from an ingress. With an idempotency key, delivered only if the key is new
   * for its target; with a request id, its caller is the request's reply address, whose
   * partition records the request in the same commit.
   */
  accept(envelope: Envelope, input: AcceptInput, nowMs: number): Accepted {
    const { idempotencyKey, requestId } = input;
    const core = this.#core(envelope.target);
    const delivered =
      requestId === undefined
        ? envelope
        : { target: envelope.target, caller: replyAddress(requestId), argument: envelope.argument };
    if (idempotencyKey === undefined) core.deliver(delivered, nowMs);
    else {
      const seen = core.deliverOnce(delivered, idempotencyKey, nowMs, requestId);
      if (seen !== undefined) {
        return seen.requestId === undefined ? { duplicate: true } : { duplicate: true, requestId: seen.requestId };
      }
    }
    // Recorded after the delivery, in the same step: the delivery only queued effects, and
    // a duplicate must not record a request nobody will answer.
    if (requestId !== undefined) this.#core(replyAddress(requestId)).expectReply(requestId);
    this.#drain(nowMs);
    return requestId === undefined ? { duplicate: false } : { duplicate: false, requestId };
  }

  /** A record an ingress could not route, kept as a dead letter in the partition of `target`. */
  rejectFromIngress(rejected: RejectedRecord, nowMs: number): void {
    this.#core(rejected.target).ingressRejected(
      rejected.target,
      rejected.argument,
      rejected.reason,
      rejected.ingress,
      nowMs,
    );
    this.#drain(nowMs);
  }

  /**
   * A request's record as the store has it: only what is durable, so an answer read here
   * never disappears in a crash.
   */
  committedRequest(requestId: string): RequestRecord | undefined {
    const atMs = requestTime(requestId);
    if (atMs === undefined) return undefined;
    const partition = partitionOf(addressKey(replyAddress(requestId)), this.partitionCount);
    return this.#store.get([...partitionPrefix(partition), ...keys.request(atMs, requestId)]) as
      | RequestRecord
      | undefined;
  }

  /** Forgets at most `limit` idempotency keys accepted before `beforeMs`, partition by partition. */
  expireIngressKeys(beforeMs: number, limit = Number.POSITIVE_INFINITY): number {
    return this.#upTo(limit, (core, left) => core.expireIngressKeys(beforeMs, left));
  }

  /** Forgets at most `limit` requests accepted before `beforeMs`, partition by partition. */
  expireRequests(beforeMs: number, limit = Number.POSITIVE_INFINITY): number {
    return this.#upTo(limit, (core, left) => core.expireRequests(beforeMs, left));
  }

  /** Runs `step` on each partition with what is left of `limit`, until it is used up; the total. */
  #upTo(limit: number, step: (core: PartitionCore, left: number) => number): number {
    let done = 0;
    for (const core of this.#cores) {
      if (done >= limit) break;
      done += step(core, limit - done);
    }
    return done;
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

  /** Fires at most `limit` due delayed messages, partition by partition; returns how many. */
  fireTimers(nowMs: number, limit = Number.POSITIVE_INFINITY): number {
    const fired = this.#upTo(limit, (core, left) => core.fireTimers(nowMs, left));
    this.#drain(nowMs);
    return fired;
  }

  /**
   * The writes to make durable and the effects to release once they are. The writes stay
   * readable until `committed()`; take the next commit only after that.
   */
  takeCommit(): Commit {
    const effects = this.#held;
    this.#held = [];
    const writes = this.#connectorOverlay.seal();
    for (const overlay of this.#overlays) for (const write of overlay.seal()) writes.push(write);
    return { writes, effects };
  }

  /** The writes of the last takeCommit() are in the store now. */
  committed(): void {
    this.#connectorOverlay.release();
    for (const overlay of this.#overlays) overlay.release();
  }

  /** Routes messages between partitions until none are left; holds the rest. */
  #drain(nowMs: number): void {
    // The cores push into the shared array; routing may add more while we walk it.
    for (let index = 0; index < this.#effects.length; index++) {
      const effect = this.#effects[index] as Effect;
      if (effect.kind === "route") this.#core(effect.envelope.target).deliver(effect.envelope, nowMs);
      else if (effect.kind === "invoke") this.#listeners.invoke(effect);
      else if (effect.kind === "backpressure") this.#listeners.backpressure?.(effect.target, effect.blocked);
      else this.#held.push(effect);
    }
    this.#effects.length = 0;
  }
}
