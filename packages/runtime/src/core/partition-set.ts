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
// A set runs the partitions it owns: all of them in the embedded mode, those the cluster
// assigned to its worker otherwise (`own`, `release`). A message to a partition it does not
// run leaves in the commit as `outbound`, for the committer to hand to that partition's inbox
// in the same transaction; the owner delivers it from there (`deliverFromInbox`), recording
// the inbox position in the same commit as the delivery. A commit the committer could not
// make (the cluster fenced or aborted it) is undone with `reset`: every partition is rebuilt
// from the store, as after a crash, without the process restarting.
//
// Usage by an engine: feed inputs; every few milliseconds call takeCommit(), write
// `writes` (and hand `outbound` on) durably in one transaction, and only then act on
// `effects`; or, if that failed, reset().

import type { FromFunction, TypedValue } from "@eddy/protocol";
import { type Address, addressKey, type FunctionTypename, formatAddress, replyAddress } from "./address.ts";
import type { Effect } from "./effects.ts";
import type { KV } from "./kv.ts";
import { OverlayKV, type OverlayOptions, type PendingTally, type PendingWrite } from "./overlay-kv.ts";
import {
  type AddressLoad,
  type AdmittedTally,
  type Catalog,
  InvariantError,
  PartitionCore,
  type StateWrite,
} from "./partition-core.ts";
import { partitionOf } from "./partitioning.ts";
import {
  type DeadLetter,
  deadLetterId,
  type Envelope,
  type RegisteredSpec,
  type RequestRecord,
  requestTime,
  type StoredState,
} from "./records.ts";
import { getRow, inPartition, partitionKeyPrefix, putRow, scanRows, tables } from "./schema.ts";

export type ReleasedEffect = Exclude<Effect, { kind: "route" } | { kind: "backpressure" } | { kind: "invoke" }>;
export type InvokeEffect = Extract<Effect, { kind: "invoke" }>;

/** Effects handed over as they happen, not after the commit. Listeners must not call back into the set synchronously. */
export interface PartitionSetListeners {
  /**
   * A batch to send to its function now. `incarnation` names the partition's core that made
   * it: hand it back with the reply (complete, fail), so a reply to a core that a reset or a
   * move dropped is ignored even if a new core reuses the batch id.
   */
  readonly invoke: (effect: InvokeEffect, incarnation: number) => void;
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
  /** Messages for partitions this set does not run, or reaches only through their inbox, in the order sent. */
  readonly outbound: OutboundMessage[];
  /** The partitions that have writes in this commit, ascending. */
  readonly partitions: number[];
  /**
   * With takeCommit({ inboxPositions: true }): each of `partitions`' next inbox position, in
   * the same order (a cluster commits them with the writes: the fence).
   */
  readonly inboxPositions?: number[];
}

/** A message for another partition's inbox. */
export interface OutboundMessage {
  readonly partition: number;
  readonly envelope: Envelope;
  /** An ingress message's idempotency key: the owner delivers it only if the key is new (deliverOnce). */
  readonly idempotencyKey?: string;
}

/** What an inbox holds of an outbound message: the partition is the inbox's. */
export type InboxMessage = Omit<OutboundMessage, "partition">;

export interface PartitionSetOptions {
  /** The committed rows of every partition this set may run, under ["p", partition]. */
  readonly store: KV;
  readonly catalog: Catalog;
  readonly partitionCount: number;
  readonly listeners: PartitionSetListeners;
  readonly overlay?: OverlayOptions;
  /** The partitions to run from the start (each recovered by recover()); default all of them. */
  readonly owned?: Iterable<number>;
}

/** Where a partition keeps the position of the next inbox record to deliver. */
const INBOX_POSITION_KEY = tables.inboxPosition.key();

/**
 * One partition's share of the admitted tally: it forwards every change to the tally shared
 * by the set (what the memory budget reads) and keeps its own part, which leaves the shared
 * count when the partition is released or reset (its work is then someone else's, or
 * undone). The core sees a plain AdmittedTally.
 */
class PartitionTally implements AdmittedTally {
  readonly #shared: AdmittedTally;
  own = 0;

  constructor(shared: AdmittedTally) {
    this.#shared = shared;
  }

  get bytes(): number {
    return this.#shared.bytes;
  }

  set bytes(value: number) {
    this.own += value - this.#shared.bytes;
    this.#shared.bytes = value;
  }

  get bytesMax(): number {
    return this.#shared.bytesMax;
  }

  set bytesMax(value: number) {
    this.#shared.bytesMax = value;
  }

  /** Takes this partition's part out of the shared count. */
  withdraw(): void {
    this.#shared.bytes -= this.own;
    this.own = 0;
  }
}

/** A partition this set runs. */
interface Running {
  readonly overlay: OverlayKV;
  readonly core: PartitionCore;
  readonly tally: PartitionTally;
  /** Names this core among every core the set has made (see PartitionSetListeners.invoke). */
  readonly incarnation: number;
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
  readonly #catalog: Catalog;
  readonly #overlayOptions: OverlayOptions;
  /** The partitions this set runs, by number (absent: another worker's, or nobody's yet). */
  readonly #running: (Running | undefined)[];
  /** Partitions reached only through their inbox for now, though run here (see own()). */
  readonly #viaInbox = new Set<number>();
  #connectorOverlay: OverlayKV;
  readonly #pendingTally: PendingTally = { count: 0 };
  readonly #admitted: AdmittedTally = { bytes: 0, bytesMax: 0 };
  /** Dead letters kept by another partition than their target's (see rejectFromIngress), until reported. */
  readonly #keptElsewhere = new WeakMap<DeadLetter, number>();
  #incarnations = 0;
  /** Effects produced since the last commit, in order. */
  readonly #effects: Effect[] = [];
  #held: ReleasedEffect[] = [];
  #outbound: OutboundMessage[] = [];
  /** The partitions of the commit taken and not yet committed (release() must not drop them). */
  #sealedPartitions: readonly number[] = [];

  readonly #listeners: PartitionSetListeners;

  constructor(options: PartitionSetOptions) {
    this.#listeners = options.listeners;
    this.#store = options.store;
    this.#catalog = options.catalog;
    this.partitionCount = options.partitionCount;
    this.#overlayOptions = { ...options.overlay, pendingTally: this.#pendingTally };
    this.#connectorOverlay = new OverlayKV(this.#store, this.#overlayOptions);
    this.#running = new Array(this.partitionCount).fill(undefined);
    const owned = options.owned ?? Array.from({ length: this.partitionCount }, (_, partition) => partition);
    for (const partition of owned) this.#start(partition);
  }

  #start(partition: number): Running {
    if (!Number.isInteger(partition) || partition < 0 || partition >= this.partitionCount) {
      throw new InvariantError(`partition ${partition} is not one of 0..${this.partitionCount - 1}`);
    }
    if (this.#running[partition] !== undefined) throw new InvariantError(`partition ${partition} is already run here`);
    const overlay = new OverlayKV(this.#store, { ...this.#overlayOptions, basePrefix: partitionKeyPrefix(partition) });
    const tally = new PartitionTally(this.#admitted);
    const core = new PartitionCore(overlay, this.#catalog, this.#effects, tally);
    const running: Running = { overlay, core, tally, incarnation: ++this.#incarnations };
    this.#running[partition] = running;
    return running;
  }

  /** Whether this set runs `partition`. */
  owns(partition: number): boolean {
    return this.#running[partition] !== undefined;
  }

  /**
   * Names the current run of `partition` (its core's incarnation; undefined when not run
   * here). It changes whenever the partition's uncommitted writes are dropped (a reset) or it
   * is run anew (own after a release): a source that read on behalf of the partition checks it
   * is still the run it read for (see rowsOf).
   */
  runOf(partition: number): number | undefined {
    return this.#running[partition]?.incarnation;
  }

  /**
   * The rows of `partition` (run here) as they are now, keys relative to the partition: where a
   * source bound to the partition keeps its position, so the position commits in the
   * partition's writes and moves with it.
   */
  rowsOf(partition: number): KV {
    const running = this.#running[partition];
    if (running === undefined) throw new InvariantError(`partition ${partition} is not run here`);
    return running.overlay;
  }

  /** Whether the partition of `address` is run here. */
  ownsAddress(address: Address): boolean {
    return this.#running[this.partitionOf(address)] !== undefined;
  }

  partitionOf(address: Address): number {
    return partitionOf(addressKey(address), this.partitionCount);
  }

  /** The partition of an address given by its key (addressKey). */
  partitionOfKey(key: string): number {
    return partitionOf(key, this.partitionCount);
  }

  /** The partitions run here, ascending. */
  get owned(): number[] {
    const owned: number[] = [];
    for (let partition = 0; partition < this.partitionCount; partition++) {
      if (this.#running[partition] !== undefined) owned.push(partition);
    }
    return owned;
  }

  /**
   * Starts running `partition` from what the store holds of it (its in-flight batches are
   * sent again, its egress messages handed out again, as after a restart). With `viaInbox`,
   * messages from this set's other partitions keep going through the partition's inbox until
   * inboxCaughtUp(): those this set sent there before it owned the partition are still
   * unread, and a later message must not overtake them.
   */
  own(partition: number, nowMs: number, options: { readonly viaInbox?: boolean } = {}): void {
    this.#start(partition).core.recover(nowMs);
    if (options.viaInbox === true) this.#viaInbox.add(partition);
    this.#drain(nowMs);
  }

  /** The inbox reader of `partition` passed every record this set sent to it: route in memory again. */
  inboxCaughtUp(partition: number): void {
    this.#viaInbox.delete(partition);
  }

  /**
   * Stops running `partition`, between commits: its writes are all committed, so the store
   * holds everything it did. Replies to its batches and settlements of its egress messages
   * that come later are ignored; its next owner sends and hands them out again.
   */
  release(partition: number): void {
    const running = this.#running[partition];
    if (running === undefined) throw new InvariantError(`release(${partition}): the partition is not run here`);
    if (running.overlay.pendingCount > 0 || this.#sealedPartitions.includes(partition)) {
      throw new InvariantError(`release(${partition}): the partition has writes that are not committed`);
    }
    running.tally.withdraw();
    this.#running[partition] = undefined;
    this.#viaInbox.delete(partition);
  }

  /**
   * Undoes everything not committed, after a commit that could not be made (the taken one
   * included): every partition is rebuilt from the store and recovered, as after a restart.
   * What sources handed in since the last commit is gone; they must send it again. With
   * `owned`, the set runs those partitions from now on (none: the worker lost them all).
   */
  reset(nowMs: number, owned: readonly number[] = this.owned): void {
    for (let partition = 0; partition < this.partitionCount; partition++) {
      const running = this.#running[partition];
      if (running === undefined) continue;
      this.#pendingTally.count -= running.overlay.pendingCount;
      running.tally.withdraw();
      this.#running[partition] = undefined;
    }
    this.#pendingTally.count -= this.#connectorOverlay.pendingCount;
    this.#connectorOverlay = new OverlayKV(this.#store, this.#overlayOptions);
    this.#viaInbox.clear();
    this.#effects.length = 0;
    this.#held = [];
    this.#outbound = [];
    this.#sealedPartitions = [];
    for (const partition of owned) this.#start(partition);
    this.recover(nowMs);
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

  /** Messages for other partitions' inboxes waiting for the next commit. */
  get outboundMessages(): number {
    return this.#outbound.length;
  }

  get nextTimerAtMs(): number | undefined {
    let earliest: number | undefined;
    for (const running of this.#running) {
      const at = running?.core.nextTimerAtMs;
      if (at !== undefined && (earliest === undefined || at < earliest)) earliest = at;
    }
    return earliest;
  }

  /** Batches in flight and the messages behind them, by function type, over the partitions run here (metrics). */
  functionTypeLoads(): Map<string, { backlog: number; inFlight: number }> {
    const loads = new Map<string, { backlog: number; inFlight: number }>();
    for (const running of this.#running) running?.core.addLoads(loads);
    return loads;
  }

  /** Delayed messages pending in the partitions run here (metrics). */
  get delayedMessagesPending(): number {
    let pending = 0;
    for (const running of this.#running) pending += running?.core.delayedMessagesPending ?? 0;
    return pending;
  }

  get activeAddresses(): number {
    let active = 0;
    for (const running of this.#running) active += running?.core.activeCount ?? 0;
    return active;
  }

  /**
   * A dead letter's id (deadLetterId). A letter is kept by the partition of its target: every
   * core dead-letters only for addresses it owns (a sender's egress message under the sender);
   * but a record an ingress bound to a partition could not route, whose target's partition runs
   * elsewhere, is kept by the bound partition (rejectFromIngress).
   */
  deadLetterId(letter: DeadLetter): string {
    return deadLetterId(this.#keptElsewhere.get(letter) ?? this.partitionOf(letter.target), letter.seq);
  }

  /** The core of `address`, which must be run here (callers check ownsAddress first). */
  #core(address: Address): PartitionCore {
    const partition = this.partitionOf(address);
    const running = this.#running[partition];
    if (running === undefined) {
      throw new InvariantError(`partition ${partition} (of ${formatAddress(address)}) is not run here`);
    }
    return running.core;
  }

  /** The core of `address` if it is run here and is the incarnation named (undefined: any). */
  #liveCore(address: Address, incarnation: number | undefined): PartitionCore | undefined {
    const running = this.#running[this.partitionOf(address)];
    if (running === undefined || (incarnation !== undefined && running.incarnation !== incarnation)) return undefined;
    return running.core;
  }

  recover(nowMs: number): void {
    for (const running of this.#running) running?.core.recover(nowMs);
    this.#drain(nowMs);
  }

  deliver(envelope: Envelope, nowMs: number): void {
    this.#core(envelope.target).deliver(envelope, nowMs);
    this.#drain(nowMs);
  }

  /**
   * A message read from the inbox of `partition` (run here) at `position`: delivered (once
   * per idempotency key, if it has one), and the inbox's next position recorded in the same
   * commit, so the partition's rows and its inbox position are always committed together.
   */
  deliverFromInbox(partition: number, message: InboxMessage, position: number, nowMs: number): void {
    const running = this.#running[partition];
    if (running === undefined) throw new InvariantError(`inbox ${partition}: the partition is not run here`);
    const { envelope, idempotencyKey } = message;
    if (this.partitionOf(envelope.target) !== partition) {
      throw new InvariantError(`inbox ${partition} holds a message for ${formatAddress(envelope.target)}`);
    }
    if (idempotencyKey === undefined) running.core.deliver(envelope, nowMs);
    else running.core.deliverOnce(envelope, idempotencyKey, nowMs);
    putRow(running.overlay, INBOX_POSITION_KEY, position + 1);
    this.#drain(nowMs);
  }

  /** Where the inbox of `partition` (run here) is to be read from next, as far as this set knows. */
  inboxPosition(partition: number): number {
    const running = this.#running[partition];
    if (running === undefined) throw new InvariantError(`inbox ${partition}: the partition is not run here`);
    return getRow(running.overlay, INBOX_POSITION_KEY) ?? 0;
  }

  /**
   * A message from an ingress. With an idempotency key, delivered only if the key is new
   * for its target; with a request id, its caller is the request's reply address, whose
   * partition records the request in the same commit, and both partitions must be run here.
   * A message without a request id for a partition run elsewhere leaves through its inbox
   * (with its key, which the owner checks).
   */
  accept(envelope: Envelope, input: AcceptInput, nowMs: number): Accepted {
    const { idempotencyKey, requestId } = input;
    const partition = this.partitionOf(envelope.target);
    const running = this.#running[partition];
    if (running === undefined && requestId === undefined) {
      this.#outbound.push(
        idempotencyKey === undefined ? { partition, envelope } : { partition, envelope, idempotencyKey },
      );
      return { duplicate: false };
    }
    const core = this.#core(envelope.target);
    const replyCore = requestId === undefined ? undefined : this.#core(replyAddress(requestId));
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
    if (requestId !== undefined) replyCore?.expectReply(requestId);
    this.#drain(nowMs);
    return requestId === undefined ? { duplicate: false } : { duplicate: false, requestId };
  }

  /**
   * A record an ingress could not route, kept as a dead letter in the partition of `target`;
   * when that partition is run elsewhere, in `keptIn` (the partition the source is bound to).
   */
  rejectFromIngress(rejected: RejectedRecord, nowMs: number, keptIn?: number): void {
    const own = this.#running[this.partitionOf(rejected.target)];
    const keeper = own ?? (keptIn === undefined ? undefined : this.#running[keptIn]);
    (keeper?.core ?? this.#core(rejected.target)).ingressRejected(
      rejected.target,
      rejected.argument,
      rejected.reason,
      rejected.ingress,
      nowMs,
    );
    if (own === undefined && keptIn !== undefined) {
      // The letter's effect was just queued: its id must name the partition that keeps it.
      const queued = this.#effects.at(-1);
      if (queued?.kind === "dead-letter") this.#keptElsewhere.set(queued.letter, keptIn);
    }
    this.#drain(nowMs);
  }

  /**
   * A request's record as the store has it: only what is durable, so an answer read here
   * never disappears in a crash.
   */
  committedRequest(requestId: string): RequestRecord | undefined {
    const atMs = requestTime(requestId);
    if (atMs === undefined) return undefined;
    const partition = this.partitionOf(replyAddress(requestId));
    return getRow(this.#store, inPartition(partition, tables.request.key(atMs, requestId)));
  }

  /**
   * The dead letters of `partition` (run here) as the store has them: only what is durable, so
   * a listing never shows a letter that a refused commit takes back, nor misses one that a
   * replay not yet committed may still leave.
   */
  committedDeadLetters(partition: number): DeadLetter[] {
    if (this.#running[partition] === undefined) throw new InvariantError(`partition ${partition} is not run here`);
    return [...scanRows(this.#store, inPartition(partition, tables.dead.all))].map(({ value }) => value);
  }

  /** Dead letter `seq` of `partition` (run here) as the partition sees it now: a replay not yet committed took it. */
  deadLetter(partition: number, seq: number): DeadLetter | undefined {
    const running = this.#running[partition];
    if (running === undefined) throw new InvariantError(`partition ${partition} is not run here`);
    return getRow(running.overlay, tables.dead.key(seq));
  }

  /**
   * Replays dead letters of `partition` (run here) in the next commit (PartitionCore.replayDeadLetters):
   * those with the sequence numbers given, or all; returns those replayed.
   */
  replayDeadLetters(partition: number, seqs: readonly number[] | "all", nowMs: number): DeadLetter[] {
    const running = this.#running[partition];
    if (running === undefined) throw new InvariantError(`partition ${partition} is not run here`);
    const replayed = running.core.replayDeadLetters(seqs, nowMs);
    this.#drain(nowMs);
    return replayed;
  }

  /** Discards dead letters of `partition` (run here) in the next commit; returns those discarded. */
  discardDeadLetters(partition: number, seqs: readonly number[] | "all"): DeadLetter[] {
    const running = this.#running[partition];
    if (running === undefined) throw new InvariantError(`partition ${partition} is not run here`);
    return running.core.discardDeadLetters(seqs);
  }

  /** Pauses `typename` in every partition run here (PartitionCore.pause). */
  pause(typename: FunctionTypename, nowMs: number): void {
    for (const running of this.#running) running?.core.pause(typename, nowMs);
  }

  /** Resumes `typename` in every partition run here: the batches the pause held are sent. */
  resume(typename: FunctionTypename, nowMs: number): void {
    for (const running of this.#running) running?.core.resume(typename, nowMs);
    this.#drain(nowMs);
  }

  /** Whether `typename` is paused in a partition run here. */
  isPaused(typename: FunctionTypename): boolean {
    return this.#running.some((running) => running?.core.isPaused(typename) === true);
  }

  /** An address's work now (PartitionCore.addressLoad); its partition must be run here. */
  addressLoad(address: Address, timerScanLimit: number): AddressLoad {
    return this.#core(address).addressLoad(address, timerScanLimit);
  }

  /** An address's states as its partition (run here) sees them now, by name. */
  addressState(address: Address): Map<string, StoredState> {
    const rows = this.rowsOf(this.partitionOf(address));
    const states = new Map<string, StoredState>();
    for (const { key, value } of scanRows(rows, tables.state.of(address.typename, address.id))) {
      states.set(tables.state.part(key, 2), value);
    }
    return states;
  }

  /**
   * Sets or deletes a state of an address run here (PartitionCore.writeState). A spec the
   * address's partition lacks but another partition run here registered is adopted first.
   */
  writeState(address: Address, name: string, value: TypedValue | undefined, nowMs: number): StateWrite {
    const core = this.#core(address);
    if (!core.registeredStates(address.typename).some((spec) => spec.name === name)) {
      const spec = this.registeredStates(address.typename).find((known) => known.name === name);
      if (spec !== undefined) core.adoptState(address.typename, spec);
    }
    const written = core.writeState(address, name, value, nowMs);
    this.#drain(nowMs);
    return written;
  }

  /** The state specs `typename` registered, as the first partition run here that has any has them. */
  registeredStates(typename: FunctionTypename): readonly RegisteredSpec[] {
    for (const running of this.#running) {
      const specs = running?.core.registeredStates(typename);
      if (specs !== undefined && specs.length > 0) return specs;
    }
    return [];
  }

  /**
   * Ids of `typename` holding state in the partitions run here, ascending: at most `limit`,
   * each after `after` and starting with `prefix`. Keeps the smallest `limit` ids found so far,
   * and stops reading a partition at an id no smaller than the largest of them once it has
   * `limit`: with ids spread over the partitions, a page reads a few hundred rows, not `limit`
   * per partition (a million instances over 128 partitions: bench/ui-scale).
   */
  stateIds(typename: FunctionTypename, page: { after?: string; prefix?: string; limit: number }): string[] {
    const prefix = page.prefix ?? "";
    // The first id after `after` is `after` and a NUL; ids sort by code unit.
    const after = page.after === undefined ? undefined : `${page.after}\u0000`;
    const startId = after === undefined || after < prefix ? prefix : after;
    const limit = page.limit;
    /** The smallest ids found so far, ascending, at most `limit`. */
    const ids: string[] = [];
    if (limit <= 0) return ids;
    for (const running of this.#running) {
      if (running === undefined) continue;
      let last: string | undefined;
      for (const { key } of scanRows(running.overlay, tables.state.ofType(typename), {
        start: ["state", typename, startId],
      })) {
        const id = tables.state.part(key, 1);
        if (id === last) continue;
        if (!id.startsWith(prefix)) break;
        // Ids of one partition come ascending: past the largest kept, none of the rest is kept.
        if (ids.length === limit && id >= (ids[limit - 1] as string)) break;
        last = id;
        ids.splice(sortedIndex(ids, id), 0, id);
        if (ids.length > limit) ids.pop();
      }
    }
    return ids;
  }

  /** Forgets at most `limit` idempotency keys accepted before `beforeMs`, partition by partition. */
  expireIngressKeys(beforeMs: number, limit = Number.POSITIVE_INFINITY): number {
    return this.#upTo(limit, (core, left) => core.expireIngressKeys(beforeMs, left));
  }

  /** Forgets at most `limit` requests accepted before `beforeMs`, partition by partition. */
  expireRequests(beforeMs: number, limit = Number.POSITIVE_INFINITY): number {
    return this.#upTo(limit, (core, left) => core.expireRequests(beforeMs, left));
  }

  /** Runs `step` on each partition run here with what is left of `limit`, until it is used up; the total. */
  #upTo(limit: number, step: (core: PartitionCore, left: number) => number): number {
    let done = 0;
    for (const running of this.#running) {
      if (done >= limit) break;
      if (running !== undefined) done += step(running.core, limit - done);
    }
    return done;
  }

  /**
   * A batch's reply. Ignored when the batch's partition is no longer run here, or by another
   * core than the one that sent it (`incarnation`, from the invoke listener). `trace`: the
   * call's span, carried by what the reply sends (tracing on).
   */
  complete(
    target: Address,
    batchId: number,
    response: FromFunction,
    nowMs: number,
    incarnation?: number,
    trace?: string,
  ): void {
    const core = this.#liveCore(target, incarnation);
    if (core === undefined) return;
    core.complete(target, batchId, response, nowMs, trace);
    this.#drain(nowMs);
  }

  /** A batch's call budget ran out; ignored as complete() ignores a stale reply. */
  fail(target: Address, batchId: number, reason: string, nowMs: number, incarnation?: number): void {
    const core = this.#liveCore(target, incarnation);
    if (core === undefined) return;
    core.fail(target, batchId, reason, nowMs);
    this.#drain(nowMs);
  }

  /** An egress message is out. Ignored if its partition moved: the next owner hands it out again. */
  /** Whether the entry was still unsettled (in a partition run here): a stale settlement changes nothing. */
  egressDelivered(source: Address, seq: number): boolean {
    return this.#liveCore(source, undefined)?.egressDelivered(seq) ?? false;
  }

  egressRejected(source: Address, seq: number, reason: string, nowMs: number): void {
    const core = this.#liveCore(source, undefined);
    if (core === undefined) return;
    core.egressRejected(seq, reason, nowMs);
    this.#drain(nowMs);
  }

  /** Fires at most `limit` due delayed messages, partition by partition; returns how many. */
  fireTimers(nowMs: number, limit = Number.POSITIVE_INFINITY): number {
    const fired = this.#upTo(limit, (core, left) => core.fireTimers(nowMs, left));
    this.#drain(nowMs);
    return fired;
  }

  /**
   * The writes to make durable, the messages to hand to other partitions' inboxes with them,
   * and the effects to release once they are. The writes stay readable until `committed()`
   * (or are dropped by `reset()`); take the next commit only after that.
   */
  takeCommit(options: { readonly inboxPositions?: boolean } = {}): Commit {
    const effects = this.#held;
    this.#held = [];
    const outbound = this.#outbound;
    this.#outbound = [];
    const writes = this.#connectorOverlay.seal();
    const partitions: number[] = [];
    for (let partition = 0; partition < this.partitionCount; partition++) {
      const running = this.#running[partition];
      if (running === undefined) continue;
      const sealed = running.overlay.seal();
      if (sealed.length === 0) continue;
      partitions.push(partition);
      for (const write of sealed) writes.push(write);
    }
    this.#sealedPartitions = partitions;
    if (options.inboxPositions !== true) return { writes, effects, outbound, partitions };
    const inboxPositions = partitions.map((partition) => this.inboxPosition(partition));
    return { writes, effects, outbound, partitions, inboxPositions };
  }

  /** The writes of the last takeCommit() are in the store now. */
  committed(): void {
    this.#connectorOverlay.release();
    for (const running of this.#running) running?.overlay.release();
    this.#sealedPartitions = [];
  }

  /** Routes messages between partitions until none are left; holds the rest. */
  #drain(nowMs: number): void {
    // The cores push into the shared array; routing may add more while we walk it.
    for (let index = 0; index < this.#effects.length; index++) {
      const effect = this.#effects[index] as Effect;
      if (effect.kind === "route") this.#route(effect.envelope, nowMs);
      else if (effect.kind === "invoke") this.#listeners.invoke(effect, this.#incarnationOf(effect.target));
      else if (effect.kind === "backpressure") this.#listeners.backpressure?.(effect.target, effect.blocked);
      else this.#held.push(effect);
    }
    this.#effects.length = 0;
  }

  #route(envelope: Envelope, nowMs: number): void {
    const partition = this.partitionOf(envelope.target);
    const running = this.#running[partition];
    if (running === undefined || this.#viaInbox.has(partition)) this.#outbound.push({ partition, envelope });
    else running.core.deliver(envelope, nowMs);
  }

  #incarnationOf(address: Address): number {
    return (this.#running[this.partitionOf(address)] as Running).incarnation;
  }
}

/** Where `id` goes in the ascending `ids` (after any equal one; ids of different partitions never are). */
function sortedIndex(ids: readonly string[], id: string): number {
  let low = 0;
  let high = ids.length;
  while (low < high) {
    const middle = (low + high) >>> 1;
    if ((ids[middle] as string) <= id) low = middle + 1;
    else high = middle;
  }
  return low;
}
