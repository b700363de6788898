// The partition core: a deterministic state machine for the addresses of one partition.
// Inputs are method calls (a message arrived, a batch completed or finally failed, time
// passed, the process restarted), each with the current time as an argument; outputs are
// writes to the injected KV and effects pushed to an array. No I/O, no clock, no
// randomness: the same inputs give the same writes and effects, which is what lets the
// simulation test crash it anywhere.
//
// Per-address semantics are StateFun's (statefun-protocol.md §2): at most one batch in
// flight per address; messages arriving meanwhile wait in a durable backlog; the next
// batch is the backlog (bounded by count and bytes); the state handshake; effects applied
// in StateFun's order (messages, delayed messages, egress, state); TTL after write and
// after invoke; delayed messages with cancellation tokens.
import {
  type FromFunction,
  type InvocationResponse,
  MutationType,
  type PersistedValue,
  type PersistedValueSpec,
  type ToFunction,
  type TypedValue,
} from "@eddy/protocol";
import {
  type Address,
  type AddressKey,
  addressKey,
  type FunctionTypename,
  formatAddress,
  fromWireAddress,
  REPLY_TYPENAME,
  toWireAddress,
} from "./address.ts";
import type { Effect } from "./effects.ts";
import type { KV } from "./kv.ts";
import {
  type DeadLetter,
  type DelayedMessage,
  type Envelope,
  ExpiryMode,
  type IdempotencyRecord,
  type InflightBatch,
  type OutboxEntry,
  type RegisteredSpec,
  type RequestRecord,
  requestTime,
  SEQ_EPOCH_SPAN,
  type StoredInvocation,
  type StoredState,
} from "./records.ts";
import { deleteRow, getRow, insertRow, putRow, scanRows, tables } from "./schema.ts";

export type FailurePolicy = "retry" | "dead-letter" | "stop";

export interface FunctionSettings {
  /** Most invocations in one batch. */
  readonly maxBatchCount: number;
  /** Most argument bytes in one batch (a single larger message still goes alone). */
  readonly maxBatchBytes: number;
  /** Backlog length at which the address is reported blocked (StateFun's maxNumBatchRequests); 0 = never. */
  readonly backlogLimit: number;
  readonly failurePolicy: FailurePolicy;
}

/** What the core needs to know of the deployment. */
export interface Catalog {
  functionSettings(typename: FunctionTypename): FunctionSettings | undefined;
  hasEgress(egress: string): boolean;
}

interface ActiveAddress {
  readonly target: Address;
  /** addressKey(target), kept so map lookups reuse one string (V8 caches its hash). */
  readonly key: AddressKey;
  batch: InflightBatch;
  backlogCount: number;
  /**
   * The backlog's rows in order, while all of them fit the partition's budget for this
   * copy; undefined once one did not, and then the next batch is read from the store.
   * Saves a store scan per batch for the common short backlog.
   */
  queued: QueuedInvocation[] | undefined;
  blocked: boolean;
}

interface QueuedInvocation {
  readonly seq: number;
  readonly invocation: StoredInvocation;
  readonly bytes: number;
}

/** Most backlog rows of one address, and most argument bytes of one partition, copied in memory. */
const QUEUED_ROWS_PER_ADDRESS = 1024;

const QUEUED_BYTES_PER_PARTITION = 1 << 20;

/** What PartitionCore.addressLoad reports. */
export interface AddressLoad {
  readonly backlog: number;
  readonly batch: { readonly messages: number; readonly failedAttempts: number; readonly sent: boolean } | undefined;
  readonly delayedMessages: number;
  /** False when the partition has more timers than were scanned: `delayedMessages` is a lower bound. */
  readonly delayedCountComplete: boolean;
}

/** PartitionCore.writeState's answer; `existed`: the state had a value before. */
export type StateWrite =
  | { readonly ok: true; readonly existed: boolean }
  | { readonly ok: false; readonly code: "unknown-state" | "busy" }
  | { readonly ok: false; readonly code: "type-mismatch"; readonly typename: string };

/** Thrown only for broken invariants: a bug in Eddy, never bad input. */
export class InvariantError extends Error {
  override name = "InvariantError";
}

function invariant(condition: boolean, message: string): asserts condition {
  if (!condition) throw new InvariantError(message);
}

/** How a message waits in a backlog or a batch: without its target, which the key holds. */
function storedInvocation(envelope: Envelope): StoredInvocation {
  const { caller, argument, headers, trace } = envelope;
  if (trace !== undefined) {
    return {
      ...(caller === undefined ? {} : { caller }),
      argument,
      ...(headers === undefined || headers.length === 0 ? {} : { headers }),
      trace,
    };
  }
  if (headers !== undefined && headers.length > 0) {
    return caller === undefined ? { argument, headers } : { caller, argument, headers };
  }
  return caller === undefined ? { argument } : { caller, argument };
}

/**
 * The most trace contexts an invoke effect carries: the one its call's span continues and 32
 * it links. A batch of a thousand messages, each in its own trace, would otherwise cost a
 * quadratic search for distinct ones on every call.
 */
export const BATCH_TRACES_MAX = 33;

/** The first distinct trace contexts of a batch's messages, in order; undefined when none has one (tracing off). */
function batchTraces(invocations: readonly StoredInvocation[]): string[] | undefined {
  let traces: string[] | undefined;
  for (const invocation of invocations) {
    const trace = invocation.trace;
    if (trace === undefined) continue;
    if (traces === undefined) traces = [trace];
    else if (!traces.includes(trace)) {
      traces.push(trace);
      if (traces.length === BATCH_TRACES_MAX) break;
    }
  }
  return traces;
}

/**
 * Work admitted but not finished, in bytes, shared by the partitions of a process: the
 * messages in backlogs and in-flight batches, and the egress messages not yet settled.
 * The engine holds its sources while it is at the budget (the memory budget), so what a
 * backlog upstream holds stays upstream instead of in this process.
 */
export interface AdmittedTally {
  bytes: number;
  /** The most `bytes` has been. */
  bytesMax: number;
}

/**
 * What one message costs in memory beyond its argument bytes while it waits or runs: its
 * objects, its row in the overlay and the log, the request it travels in. An estimate, so
 * that the budget tracks memory for small messages too: behind a backlog of small records
 * the heap grew by 3–4 bytes per budgeted byte when this was 512 (bench/backlog), so about
 * 2 KiB per message.
 */
export const MESSAGE_OVERHEAD_BYTES = 2048;

/** A message's weight against the memory budget. */
export function invocationCost(invocation: StoredInvocation): number {
  const caller = invocation.caller;
  return (
    argumentBytes(invocation) +
    MESSAGE_OVERHEAD_BYTES +
    (caller === undefined ? 0 : caller.typename.length + caller.id.length)
  );
}

/** An egress message's weight against the memory budget, until its connector settles it. */
export function outboxCost(entry: OutboxEntry): number {
  return entry.value.value.length + entry.value.typename.length + entry.egress.length + MESSAGE_OVERHEAD_BYTES;
}

function argumentBytes(invocation: StoredInvocation): number {
  let bytes = invocation.argument.value.length + invocation.argument.typename.length;
  for (const header of invocation.headers ?? []) bytes += header.key.length + (header.value?.length ?? 0);
  return bytes;
}

export class PartitionCore {
  readonly #kv: KV;
  readonly #catalog: Catalog;
  readonly #effects: Effect[];
  readonly #active = new Map<AddressKey, ActiveAddress>();
  readonly #specs = new Map<FunctionTypename, Map<string, RegisteredSpec>>();
  /** Sequence numbers: this start's epoch in the high bits, a count in memory in the low 32. */
  #seq: number;
  /** Argument bytes in the `queued` copies of this partition's backlogs. */
  #queuedBytes = 0;
  #nextTimerAtMs: number | undefined;
  /** Delayed messages pending, once counted (delayedMessagesPending). */
  #timersPending: number | undefined;
  readonly #admitted: AdmittedTally;
  /** Function types paused by an operator (tables.paused): their batches are not sent. */
  readonly #paused = new Set<FunctionTypename>();
  /** Active addresses of paused types whose batch waits to be sent (resume sends it). */
  readonly #held = new Set<AddressKey>();

  constructor(kv: KV, catalog: Catalog, effects: Effect[], admitted: AdmittedTally = { bytes: 0, bytesMax: 0 }) {
    this.#kv = kv;
    this.#catalog = catalog;
    this.#effects = effects;
    this.#admitted = admitted;
    for (const { key } of scanRows(kv, tables.paused.all)) this.#paused.add(tables.paused.part(key, 0));
    // Each start takes a new epoch, written once (with the start's first commit), so
    // sequence numbers never repeat across restarts without a write per number: batch ids
    // and the keys of backlog rows, timers, outbox entries and dead letters. Epoch-major
    // order keeps a backlog left from an earlier start ahead of new rows.
    this.#seq = this.#startEpoch((getRow(kv, tables.epoch.key()) ?? 0) + 1);
  }

  /** The earliest pending delayed message, if any. */
  get nextTimerAtMs(): number | undefined {
    return this.#nextTimerAtMs;
  }

  /** Addresses with a batch in flight. */
  get activeCount(): number {
    return this.#active.size;
  }

  /**
   * Adds this partition's batches in flight and the messages behind them to `loads`, by function
   * type (metrics); a batch held by a pause waits, so its messages count as backlog.
   */
  addLoads(loads: Map<string, { backlog: number; inFlight: number }>): void {
    for (const active of this.#active.values()) {
      const held = this.#held.size > 0 && this.#held.has(active.key);
      const backlog = active.backlogCount + (held ? active.batch.invocations.length : 0);
      const inFlight = held ? 0 : 1;
      const load = loads.get(active.target.typename);
      if (load === undefined) loads.set(active.target.typename, { backlog, inFlight });
      else {
        load.backlog += backlog;
        load.inFlight += inFlight;
      }
    }
  }

  /**
   * Delayed messages waiting for their time (metrics): counted in the store the first time it
   * is asked, then kept as timers come and go, so a partition nobody asks about never scans.
   */
  get delayedMessagesPending(): number {
    if (this.#timersPending === undefined) {
      let pending = 0;
      for (const _ of scanRows(this.#kv, tables.timer.all)) pending++;
      this.#timersPending = pending;
    }
    return this.#timersPending;
  }

  /**
   * After a restart: re-issue every in-flight batch (the function may see it twice; only
   * one reply counts) and hand every undelivered egress message to its connector again.
   */
  recover(nowMs: number): void {
    invariant(this.#active.size === 0, "recover() on a partition that is already running");
    for (const { value: entry } of scanRows(this.#kv, tables.outbox.all)) {
      this.#admit(outboxCost(entry));
      this.#effects.push({ kind: "egress", entry });
    }
    for (const { value: batch } of scanRows(this.#kv, tables.inflight.all)) {
      const key = addressKey(batch.target);
      for (const invocation of batch.invocations) this.#admit(invocationCost(invocation));
      let backlogCount = 0;
      for (const { value: waiting } of scanRows(this.#kv, tables.backlog.of(key))) {
        backlogCount++;
        this.#admit(invocationCost(waiting));
      }
      const settings = this.#catalog.functionSettings(batch.target.typename);
      const blocked = settings !== undefined && settings.backlogLimit > 0 && backlogCount >= settings.backlogLimit;
      // The backlog stays in the store; `queued` starts again once it has drained.
      const queued = backlogCount === 0 ? [] : undefined;
      this.#active.set(key, { target: batch.target, key, batch, backlogCount, queued, blocked });
      if (blocked) this.#effects.push({ kind: "backpressure", target: batch.target, blocked: true });
      this.#invoke(batch, nowMs);
    }
    this.#replayDeadLetters(nowMs);
    this.#refreshNextTimer();
  }

  /** Whether an operator paused `typename` (its batches wait until resumed). */
  isPaused(typename: FunctionTypename): boolean {
    return this.#paused.has(typename);
  }

  /**
   * Pauses `typename` here: from now on its batches are not sent (those sent already finish);
   * they wait, with the messages behind them, until resume(). Durable with the next commit.
   */
  pause(typename: FunctionTypename, nowMs: number): void {
    if (this.#paused.has(typename)) return;
    this.#paused.add(typename);
    putRow(this.#kv, tables.paused.key(typename), { atMs: nowMs });
  }

  /** Resumes `typename` here: every batch held by the pause is sent now. */
  resume(typename: FunctionTypename, nowMs: number): void {
    if (!this.#paused.delete(typename)) return;
    deleteRow(this.#kv, tables.paused.key(typename));
    for (const key of [...this.#held]) {
      const active = this.#active.get(key);
      if (active === undefined || active.target.typename !== typename) continue;
      this.#held.delete(key);
      this.#invoke(active.batch, nowMs);
    }
  }

  /**
   * An address's work as the partition sees it now (the admin API): messages waiting behind
   * its batch, the batch (unless none; `sent` false while a pause holds it), and its delayed
   * messages pending (counted over at most `timerScanLimit` timers of the partition).
   */
  addressLoad(address: Address, timerScanLimit: number): AddressLoad {
    const key = addressKey(address);
    const active = this.#active.get(key);
    let delayed = 0;
    let scanned = 0;
    for (const { value: timer } of scanRows(this.#kv, tables.timer.all)) {
      if (++scanned > timerScanLimit) break;
      const target = timer.envelope.target;
      if (target.id === address.id && target.typename === address.typename) delayed++;
    }
    return {
      backlog: active?.backlogCount ?? 0,
      batch:
        active === undefined
          ? undefined
          : {
              messages: active.batch.invocations.length,
              failedAttempts: active.batch.failedAttempts,
              sent: !this.#held.has(key),
            },
      delayedMessages: delayed,
      delayedCountComplete: scanned <= timerScanLimit,
    };
  }

  /**
   * Sets (or with undefined, deletes) state `name` of `address`, as an operator asks: only a
   * state its function type registered, with the type it registered, and only while no batch
   * of the address is with the function (whose reply would write over it). The function's next
   * batch sees the value. Durable with the next commit.
   */
  writeState(address: Address, name: string, value: TypedValue | undefined, nowMs: number): StateWrite {
    const spec = this.#registered(address.typename).get(name);
    if (spec === undefined) return { ok: false, code: "unknown-state" };
    if (value !== undefined && value.typename !== spec.typename) {
      return { ok: false, code: "type-mismatch", typename: spec.typename };
    }
    const key = addressKey(address);
    if (this.#active.has(key) && !this.#held.has(key)) return { ok: false, code: "busy" };
    const row = tables.state.key(address.typename, address.id, name);
    if (value === undefined) {
      const existed = getRow(this.#kv, row) !== undefined;
      deleteRow(this.#kv, row);
      return { ok: true, existed };
    }
    const existed = getRow(this.#kv, row) !== undefined;
    putRow(this.#kv, row, { typename: value.typename, value: value.value, writtenAtMs: nowMs, invokedAtMs: nowMs });
    return { ok: true, existed };
  }

  /** The state specs `typename` registered in this partition (empty before its first invocation here). */
  registeredStates(typename: FunctionTypename): readonly RegisteredSpec[] {
    return [...this.#registered(typename).values()];
  }

  /**
   * Registers a state spec `typename` registered in another partition (an operator writes state
   * of an address whose partition has not run the type yet); a spec registered here stays.
   */
  adoptState(typename: FunctionTypename, spec: RegisteredSpec): void {
    const specs = this.#registered(typename);
    if (specs.has(spec.name)) return;
    specs.set(spec.name, spec);
    putRow(this.#kv, tables.specs.key(typename), [...specs.values()]);
  }

  /**
   * Discards dead letters of this partition (an operator's choice): those with the sequence
   * numbers given, or all. Returns those discarded; a number that names no letter is skipped.
   */
  discardDeadLetters(seqs: readonly number[] | "all"): DeadLetter[] {
    const chosen: DeadLetter[] = [];
    if (seqs === "all") {
      for (const { value: letter } of scanRows(this.#kv, tables.dead.all)) chosen.push(letter);
    } else {
      for (const seq of new Set(seqs)) {
        const letter = getRow(this.#kv, tables.dead.key(seq));
        if (letter !== undefined) chosen.push(letter);
      }
    }
    for (const letter of chosen) deleteRow(this.#kv, tables.dead.key(letter.seq));
    return chosen;
  }

  /**
   * Replays dead letters of this partition while it runs (a cluster worker's admin route):
   * those with the sequence numbers given, or every one with "all"; records an ingress could not
   * route are never taken (they route no better now). Each leaves the dead table and is
   * delivered again in the same writes, so a commit replays it once and then it is gone.
   * Returns the letters replayed; a number that names no letter is skipped.
   */
  replayDeadLetters(seqs: readonly number[] | "all", nowMs: number): DeadLetter[] {
    const chosen: DeadLetter[] = [];
    if (seqs === "all") {
      for (const { value: letter } of scanRows(this.#kv, tables.dead.all)) {
        if (letter.ingress === undefined) chosen.push(letter);
      }
    } else {
      for (const seq of new Set(seqs)) {
        const letter = getRow(this.#kv, tables.dead.key(seq));
        if (letter !== undefined && letter.ingress === undefined) chosen.push(letter);
      }
    }
    for (const letter of chosen) {
      deleteRow(this.#kv, tables.dead.key(letter.seq));
      insertRow(this.#kv, tables.replay.key(letter.seq), letter);
    }
    this.#replayDeadLetters(nowMs);
    return chosen;
  }

  /** Delivers the dead letters queued for replay: messages to their address again, egress messages to their egress. */
  #replayDeadLetters(nowMs: number): void {
    for (const { key, value: letter } of [...scanRows(this.#kv, tables.replay.all)]) {
      deleteRow(this.#kv, key);
      for (const invocation of letter.invocations) {
        if (letter.ingress !== undefined) {
          // A record the ingress could not route routes no better now: it stays a dead letter.
          this.#deadLetter(letter.target, [invocation], letter.reason, nowMs, undefined, letter.ingress);
        } else if (letter.egress !== undefined && !this.#catalog.hasEgress(letter.egress)) {
          this.#deadLetter(
            letter.target,
            [invocation],
            `replayed, but egress ${letter.egress} is not declared`,
            nowMs,
            letter.egress,
          );
        } else if (letter.egress !== undefined) {
          const entry: OutboxEntry = {
            seq: this.#nextSeq(),
            egress: letter.egress,
            value: invocation.argument,
            source: letter.target,
          };
          insertRow(this.#kv, tables.outbox.key(entry.seq), entry);
          this.#admit(outboxCost(entry));
          this.#effects.push({ kind: "egress", entry });
        } else {
          this.deliver(
            {
              target: letter.target,
              ...(invocation.caller === undefined ? {} : { caller: invocation.caller }),
              argument: invocation.argument,
            },
            nowMs,
          );
        }
      }
    }
  }

  /** The record of an ingress idempotency key for `target`, if it was accepted within the retention. */
  seenIngressKey(target: Address, idempotencyKey: string): IdempotencyRecord | undefined {
    return getRow(this.#kv, tables.idem.key(addressKey(target), idempotencyKey));
  }

  /**
   * A message from an ingress that carries an idempotency key: delivered unless the key
   * was seen before for the same target (within the retention), in which case nothing
   * happens. Returns the earlier acceptance's record when the key was seen, undefined when
   * the message was delivered. Key and message commit together, so a retry after a crash
   * finds the key exactly when the message survived. `requestId` is remembered with the
   * key when the message waits for a reply, so that a retry gets the same answer.
   */
  deliverOnce(
    envelope: Envelope,
    idempotencyKey: string,
    nowMs: number,
    requestId?: string,
  ): IdempotencyRecord | undefined {
    const seen = this.seenIngressKey(envelope.target, idempotencyKey);
    if (seen !== undefined) return seen;
    const target = addressKey(envelope.target);
    // A key that started a request is kept from the request's time, not from this later
    // delivery: the sweep then forgets it no later than the request (keys go first), so a retry
    // never finds a key whose answer is already gone.
    const atMs = (requestId === undefined ? undefined : requestTime(requestId)) ?? nowMs;
    const record: IdempotencyRecord = requestId === undefined ? { atMs } : { atMs, requestId };
    insertRow(this.#kv, tables.idem.key(target, idempotencyKey), record);
    insertRow(this.#kv, tables.idemAt.key(atMs, target, idempotencyKey), true);
    this.deliver(envelope, nowMs);
    return undefined;
  }

  /** Forgets idempotency keys accepted before `beforeMs`, the oldest first, at most `limit`. */
  expireIngressKeys(beforeMs: number, limit = Number.POSITIVE_INFINITY): number {
    let expired = 0;
    const idemAt = tables.idemAt;
    const due = scanRows(this.#kv, idemAt.all, { before: idemAt.before(beforeMs), limit });
    for (const { key } of [...due]) {
      deleteRow(this.#kv, key);
      deleteRow(this.#kv, tables.idem.key(idemAt.part(key, 1), idemAt.part(key, 2)));
      expired++;
    }
    return expired;
  }

  /**
   * A request will wait for the reply sent to replyAddress(requestId), an address of this
   * partition: the first message to that address becomes its answer.
   */
  expectReply(requestId: string): void {
    const atMs = requestTime(requestId);
    invariant(atMs !== undefined, `request id ${requestId} does not carry its time (made by makeRequestId)`);
    const pending: RequestRecord = {};
    insertRow(this.#kv, tables.request.key(atMs, requestId), pending);
  }

  /** A request's record as this partition's view has it (see PartitionSet for the durable view). */
  request(requestId: string): RequestRecord | undefined {
    const atMs = requestTime(requestId);
    return atMs === undefined ? undefined : getRow(this.#kv, tables.request.key(atMs, requestId));
  }

  /** Forgets requests accepted before `beforeMs`, with their answers, the oldest first, at most `limit`. */
  expireRequests(beforeMs: number, limit = Number.POSITIVE_INFINITY): number {
    let expired = 0;
    const request = tables.request;
    for (const { key } of [...scanRows(this.#kv, request.all, { before: request.before(beforeMs), limit })]) {
      deleteRow(this.#kv, key);
      expired++;
    }
    return expired;
  }

  /** A message to a reply address: the answer of the request it stands for, if that still waits for one. */
  #answer(envelope: Envelope, nowMs: number): void {
    const requestId = envelope.target.id;
    const atMs = requestTime(requestId);
    const key = atMs === undefined ? undefined : tables.request.key(atMs, requestId);
    const record = key === undefined ? undefined : getRow(this.#kv, key);
    if (key === undefined || record === undefined || record.reply !== undefined) {
      const reason =
        record === undefined
          ? `reply to request ${requestId}, which is unknown or expired (replies are kept for the retention)`
          : `second reply to request ${requestId}: the first one is its answer`;
      this.#deadLetter(envelope.target, [storedInvocation(envelope)], reason, nowMs);
      return;
    }
    const answered: RequestRecord = { reply: envelope.argument, answeredAtMs: nowMs };
    putRow(this.#kv, key, answered);
    this.#effects.push({ kind: "reply", requestId, value: envelope.argument });
  }

  /** A message for an address of this partition. */
  deliver(envelope: Envelope, nowMs: number): void {
    if (envelope.target.typename === REPLY_TYPENAME) {
      this.#answer(envelope, nowMs);
      return;
    }
    const invocation = storedInvocation(envelope);
    const settings = this.#catalog.functionSettings(envelope.target.typename);
    if (settings === undefined) {
      this.#deadLetter(
        envelope.target,
        [invocation],
        `unknown function type ${envelope.target.typename}: no endpoint in the module serves it`,
        nowMs,
      );
      return;
    }
    const key = addressKey(envelope.target);
    const active = this.#active.get(key);
    this.#admit(invocationCost(invocation));
    if (active === undefined) {
      this.#startBatch(envelope.target, [invocation], nowMs);
      return;
    }
    const seq = this.#nextSeq();
    insertRow(this.#kv, tables.backlog.key(key, seq), invocation);
    active.backlogCount++;
    if (active.queued !== undefined) {
      const bytes = argumentBytes(invocation);
      if (active.queued.length < QUEUED_ROWS_PER_ADDRESS && this.#queuedBytes + bytes <= QUEUED_BYTES_PER_PARTITION) {
        active.queued.push({ seq, invocation, bytes });
        this.#queuedBytes += bytes;
      } else {
        this.#dropQueued(active);
      }
    }
    if (!active.blocked && settings.backlogLimit > 0 && active.backlogCount >= settings.backlogLimit) {
      active.blocked = true;
      this.#effects.push({ kind: "backpressure", target: envelope.target, blocked: true });
    }
  }

  /**
   * The function answered the batch `batchId` of `target`. Replies to any other batch are stale
   * and ignored. `trace`: the call's span (tracing on), which what the reply sends carries.
   */
  complete(target: Address, batchId: number, response: FromFunction, nowMs: number, trace?: string): void {
    const active = this.#active.get(addressKey(target));
    if (active === undefined || active.batch.batchId !== batchId) return;
    const incomplete = response.incompleteInvocationContext;
    if (incomplete !== null && response.invocationResult === null) {
      const problem = this.#register(target.typename, incomplete.missingValues);
      if (problem !== undefined) {
        this.fail(target, batchId, problem, nowMs);
        return;
      }
      // Same invocations, now with the missing states; a new batch id so a late reply to the old request is ignored.
      this.#replaceBatch(active, { ...active.batch, batchId: this.#nextSeq() }, nowMs);
      return;
    }
    const result = response.invocationResult;
    const problem = result === null ? undefined : this.#validate(target, result);
    if (problem !== undefined) {
      this.fail(target, batchId, `invalid reply from the function: ${problem}`, nowMs);
      return;
    }
    // Released before the reply's own messages are admitted: a reply that sends on what it
    // received (one in, one out) does not count both at once.
    this.#releaseBatch(active.batch);
    if (result !== null) this.#apply(target, result, nowMs, trace);
    this.#finishBatch(active, nowMs);
  }

  /** The batch failed for good (the retry budget is spent): apply the function's failure policy. */
  fail(target: Address, batchId: number, reason: string, nowMs: number): void {
    const active = this.#active.get(addressKey(target));
    if (active === undefined || active.batch.batchId !== batchId) return;
    const policy = this.#catalog.functionSettings(target.typename)?.failurePolicy ?? "dead-letter";
    switch (policy) {
      case "retry":
        this.#replaceBatch(active, { ...active.batch, failedAttempts: active.batch.failedAttempts + 1 }, nowMs);
        return;
      case "dead-letter":
        this.#releaseBatch(active.batch);
        this.#deadLetter(target, active.batch.invocations, reason, nowMs);
        this.#finishBatch(active, nowMs);
        return;
      case "stop":
        this.#effects.push({ kind: "stop", reason: `${formatAddress(target)}: ${reason}` });
        return;
    }
  }

  /** The egress connector has the message safely: forget it. False if it was settled already. */
  egressDelivered(seq: number): boolean {
    const key = tables.outbox.key(seq);
    const entry = getRow(this.#kv, key);
    if (entry === undefined) return false;
    this.#admitted.bytes -= outboxCost(entry);
    deleteRow(this.#kv, key);
    return true;
  }

  /** An ingress could not route a record: it is kept as a dead letter of that ingress. */
  ingressRejected(target: Address, argument: TypedValue, reason: string, ingress: string, nowMs: number): void {
    this.#deadLetter(target, [{ argument }], reason, nowMs, undefined, ingress);
  }

  /** The egress connector refused the message: it becomes a dead letter instead. */
  egressRejected(seq: number, reason: string, nowMs: number): void {
    const key = tables.outbox.key(seq);
    const entry = getRow(this.#kv, key);
    if (entry === undefined) return;
    this.#admitted.bytes -= outboxCost(entry);
    deleteRow(this.#kv, key);
    this.#deadLetter(
      entry.source,
      [{ argument: entry.value }],
      `egress ${entry.egress} refused the message: ${reason}`,
      nowMs,
      entry.egress,
    );
  }

  /** Routes the delayed messages due at `nowMs`, the earliest first, at most `limit`; returns how many. */
  fireTimers(nowMs: number, limit = Number.POSITIVE_INFINITY): number {
    if (this.#nextTimerAtMs === undefined || this.#nextTimerAtMs > nowMs) return 0;
    const due = [...scanRows(this.#kv, tables.timer.all, { before: tables.timer.key(nowMs + 1, 0), limit })];
    if (this.#timersPending !== undefined) this.#timersPending -= due.length;
    for (const { key, value: delayed } of due) {
      deleteRow(this.#kv, key);
      const caller = delayed.envelope.caller;
      if (delayed.cancellationToken !== undefined && caller !== undefined) {
        deleteRow(this.#kv, tables.token.key(addressKey(caller), delayed.cancellationToken));
      }
      this.#effects.push({ kind: "route", envelope: delayed.envelope });
    }
    this.#refreshNextTimer();
    return due.length;
  }

  #nextSeq(): number {
    this.#seq++;
    // 2^32 numbers in one start: take the next epoch (the numbers stay safe integers for 2^21 epochs).
    if (this.#seq % SEQ_EPOCH_SPAN === 0) this.#seq = this.#startEpoch(this.#seq / SEQ_EPOCH_SPAN);
    return this.#seq;
  }

  /** Records `epoch` and returns its first sequence number. */
  #startEpoch(epoch: number): number {
    invariant(epoch < 2 ** 21, `partition sequence epochs exhausted (${epoch})`);
    putRow(this.#kv, tables.epoch.key(), epoch);
    return epoch * SEQ_EPOCH_SPAN;
  }

  #startBatch(target: Address, invocations: readonly StoredInvocation[], nowMs: number): void {
    const batch: InflightBatch = { target, batchId: this.#nextSeq(), invocations, failedAttempts: 0 };
    const key = addressKey(target);
    // An address has an in-flight row exactly while it is active, and this one was not.
    insertRow(this.#kv, tables.inflight.key(key), batch);
    this.#active.set(key, { target, key, batch, backlogCount: 0, queued: [], blocked: false });
    this.#invoke(batch, nowMs);
  }

  #replaceBatch(active: ActiveAddress, batch: InflightBatch, nowMs: number): void {
    active.batch = batch;
    putRow(this.#kv, tables.inflight.key(active.key), batch);
    this.#invoke(batch, nowMs);
  }

  /** Counts work in against the memory budget. */
  #admit(bytes: number): void {
    const admitted = this.#admitted;
    admitted.bytes += bytes;
    if (admitted.bytes > admitted.bytesMax) admitted.bytesMax = admitted.bytes;
  }

  /** The batch's messages are finished: they leave the memory budget. */
  #releaseBatch(batch: InflightBatch): void {
    for (const invocation of batch.invocations) this.#admitted.bytes -= invocationCost(invocation);
  }

  /** Ends the in-flight batch: the next one is taken from the backlog, or the address goes idle. */
  #finishBatch(active: ActiveAddress, nowMs: number): void {
    const key = active.key;
    if (active.backlogCount === 0) {
      deleteRow(this.#kv, tables.inflight.key(key));
      this.#active.delete(key);
      return;
    }
    const settings = this.#catalog.functionSettings(active.target.typename);
    const maxCount = settings?.maxBatchCount ?? Number.POSITIVE_INFINITY;
    const maxBytes = settings?.maxBatchBytes ?? Number.POSITIVE_INFINITY;
    const invocations =
      active.queued === undefined
        ? this.#takeStoredBacklog(key, maxCount, maxBytes)
        : this.#takeQueued(active, maxCount, maxBytes);
    invariant(
      invocations.length > 0,
      `backlog of ${formatAddress(active.target)} counted ${active.backlogCount} but is empty`,
    );
    active.backlogCount -= invocations.length;
    // A backlog that was too long to copy is copied again from the moment it is empty.
    if (active.backlogCount === 0 && active.queued === undefined) active.queued = [];
    if (active.blocked && (settings === undefined || active.backlogCount < settings.backlogLimit)) {
      active.blocked = false;
      this.#effects.push({ kind: "backpressure", target: active.target, blocked: false });
    }
    this.#replaceBatch(
      active,
      { target: active.target, batchId: this.#nextSeq(), invocations, failedAttempts: 0 },
      nowMs,
    );
  }

  /** The next batch from the in-memory copy of the backlog, deleting its rows. */
  #takeQueued(active: ActiveAddress, maxCount: number, maxBytes: number): StoredInvocation[] {
    const queued = active.queued as QueuedInvocation[];
    const invocations: StoredInvocation[] = [];
    let bytes = 0;
    let taken = 0;
    for (; taken < queued.length; taken++) {
      const entry = queued[taken] as QueuedInvocation;
      if (invocations.length > 0 && (invocations.length >= maxCount || bytes + entry.bytes > maxBytes)) break;
      invocations.push(entry.invocation);
      bytes += entry.bytes;
      deleteRow(this.#kv, tables.backlog.key(active.key, entry.seq));
    }
    queued.splice(0, taken);
    this.#queuedBytes -= bytes;
    return invocations;
  }

  /** The next batch read from the stored backlog, deleting its rows. */
  #takeStoredBacklog(key: AddressKey, maxCount: number, maxBytes: number): StoredInvocation[] {
    const invocations: StoredInvocation[] = [];
    let bytes = 0;
    for (const { key: entryKey, value: invocation } of scanRows(this.#kv, tables.backlog.of(key))) {
      const size = argumentBytes(invocation);
      if (invocations.length > 0 && (invocations.length >= maxCount || bytes + size > maxBytes)) break;
      invocations.push(invocation);
      bytes += size;
      deleteRow(this.#kv, entryKey);
    }
    return invocations;
  }

  /** Stops copying an address's backlog in memory: it is read from the store until it drains. */
  #dropQueued(active: ActiveAddress): void {
    for (const entry of active.queued ?? []) this.#queuedBytes -= entry.bytes;
    active.queued = undefined;
  }

  #invoke(batch: InflightBatch, nowMs: number): void {
    if (this.#paused.size > 0 && this.#paused.has(batch.target.typename)) {
      // Sent on resume, with the state as it is then (an operator may edit it meanwhile).
      this.#held.add(addressKey(batch.target));
      return;
    }
    const request: ToFunction = {
      invocation: {
        target: toWireAddress(batch.target),
        state: this.#stateForRequest(batch.target, nowMs),
        invocations: batch.invocations.map((invocation) => ({
          caller: invocation.caller === undefined ? null : toWireAddress(invocation.caller),
          argument: invocation.argument,
          ...(invocation.headers === undefined ? {} : { headers: invocation.headers }),
        })),
      },
    };
    const traces = batchTraces(batch.invocations);
    this.#effects.push({
      kind: "invoke",
      target: batch.target,
      batchId: batch.batchId,
      attempt: batch.failedAttempts,
      request,
      ...(traces === undefined ? {} : { traces }),
    });
  }

  /** One entry per registered state, with its value unless it has none or has expired. */
  #stateForRequest(target: Address, nowMs: number): PersistedValue[] {
    const entries: PersistedValue[] = [];
    for (const spec of this.#registered(target.typename).values()) {
      const key = tables.state.key(target.typename, target.id, spec.name);
      let stored = getRow(this.#kv, key);
      if (stored !== undefined && this.#expired(spec, stored, nowMs)) {
        deleteRow(this.#kv, key);
        stored = undefined;
      }
      if (stored !== undefined && spec.expiryMode === ExpiryMode.AFTER_INVOKE && stored.invokedAtMs !== nowMs) {
        putRow(this.#kv, key, { ...stored, invokedAtMs: nowMs });
      }
      entries.push({
        stateName: spec.name,
        stateValue: stored === undefined ? null : { typename: spec.typename, hasValue: true, value: stored.value },
      });
    }
    return entries;
  }

  #expired(spec: RegisteredSpec, stored: StoredState, nowMs: number): boolean {
    switch (spec.expiryMode) {
      case ExpiryMode.NONE:
        return false;
      case ExpiryMode.AFTER_WRITE:
        return stored.writtenAtMs + spec.expireAfterMs <= nowMs;
      case ExpiryMode.AFTER_INVOKE:
        return Math.max(stored.writtenAtMs, stored.invokedAtMs) + spec.expireAfterMs <= nowMs;
    }
  }

  #registered(typename: FunctionTypename): Map<string, RegisteredSpec> {
    let specs = this.#specs.get(typename);
    if (specs === undefined) {
      const stored = getRow(this.#kv, tables.specs.key(typename)) ?? [];
      specs = new Map(stored.map((spec) => [spec.name, spec]));
      this.#specs.set(typename, specs);
    }
    return specs;
  }

  /**
   * Registers state specs the function asked for. A spec already registered keeps its
   * expiry (first registration wins, as in StateFun) but must keep its typename: a
   * changed type is an error, never a silent reinterpretation of stored bytes.
   */
  #register(typename: FunctionTypename, missing: readonly PersistedValueSpec[]): string | undefined {
    const specs = this.#registered(typename);
    for (const wanted of missing) {
      const wantedTypename = wanted.typeTypename === "" ? "io.statefun.types/unset" : wanted.typeTypename;
      const existing = specs.get(wanted.stateName);
      if (existing !== undefined) {
        if (existing.typename !== wantedTypename) {
          return `state "${wanted.stateName}" of ${typename} changed type from ${existing.typename} to ${wantedTypename}; stored values keep their type (delete the state or migrate it)`;
        }
        continue;
      }
      const mode = (wanted.expirationSpec?.mode ?? ExpiryMode.NONE) as ExpiryMode;
      const expireAfterMs = wanted.expirationSpec?.expireAfterMillis ?? 0;
      specs.set(wanted.stateName, {
        name: wanted.stateName,
        typename: wantedTypename,
        expiryMode: expireAfterMs > 0 ? mode : ExpiryMode.NONE,
        expireAfterMs,
      });
    }
    putRow(this.#kv, tables.specs.key(typename), [...specs.values()]);
    return undefined;
  }

  /** Checks a reply before any of it is applied, so a bad reply changes nothing. */
  #validate(target: Address, result: InvocationResponse): string | undefined {
    for (const message of result.outgoingMessages) {
      if (message.target === null) return "an outgoing message has no target";
      if (message.argument === null)
        return `the message to ${formatAddress(fromWireAddress(message.target))} has no argument`;
    }
    const tokens = new Set<string>();
    const sender = addressKey(target);
    for (const delayed of result.delayedInvocations) {
      if (delayed.isCancellationRequest) {
        if (delayed.cancellationToken === "") return "a cancellation request has an empty token";
        tokens.delete(delayed.cancellationToken);
        continue;
      }
      if (delayed.target === null || delayed.argument === null) return "a delayed message has no target or no argument";
      if (delayed.delayInMs < 0) return `a delayed message has a negative delay (${delayed.delayInMs} ms)`;
      const token = delayed.cancellationToken;
      if (token !== "") {
        if (tokens.has(token) || getRow(this.#kv, tables.token.key(sender, token)) !== undefined) {
          return `cancellation token "${token}" is already used by a pending delayed message of ${formatAddress(target)}`;
        }
        tokens.add(token);
      }
    }
    for (const egress of result.outgoingEgresses) {
      if (egress.argument === null)
        return `the message to egress ${egress.egressNamespace}/${egress.egressType} has no argument`;
    }
    const specs = this.#registered(target.typename);
    for (const mutation of result.stateMutations) {
      const spec = specs.get(mutation.stateName);
      if (spec === undefined)
        return `it changes state "${mutation.stateName}", which ${target.typename} never registered`;
      if (mutation.mutationType === MutationType.MODIFY) {
        const typename = mutation.stateValue?.typename;
        if (typename !== spec.typename) {
          return `it writes state "${mutation.stateName}" as ${typename ?? "(no value)"}, but the state is registered as ${spec.typename}`;
        }
      } else if (mutation.mutationType !== MutationType.DELETE) {
        return `state "${mutation.stateName}" has an unknown mutation type ${String(mutation.mutationType)}`;
      }
    }
    return undefined;
  }

  /** Applies a validated reply in StateFun's order: messages, delayed messages, egress, state. */
  #apply(self: Address, result: InvocationResponse, nowMs: number, trace: string | undefined): void {
    for (const message of result.outgoingMessages) {
      const target = fromWireAddress(message.target as NonNullable<typeof message.target>);
      const argument = message.argument as NonNullable<typeof message.argument>;
      this.#effects.push({
        kind: "route",
        envelope: trace === undefined ? { target, caller: self, argument } : { target, caller: self, argument, trace },
      });
    }
    const sender = addressKey(self);
    for (const delayed of result.delayedInvocations) {
      if (delayed.isCancellationRequest) {
        const tokenKey = tables.token.key(sender, delayed.cancellationToken);
        const timerKey = getRow(this.#kv, tokenKey);
        if (timerKey !== undefined) {
          deleteRow(this.#kv, tables.timer.key(timerKey[0], timerKey[1]));
          deleteRow(this.#kv, tokenKey);
          if (this.#timersPending !== undefined) this.#timersPending--;
          if (timerKey[0] === this.#nextTimerAtMs) this.#refreshNextTimer();
        }
        continue;
      }
      const fireAtMs = nowMs + delayed.delayInMs;
      const seq = this.#nextSeq();
      const envelope: Envelope = {
        target: fromWireAddress(delayed.target as NonNullable<typeof delayed.target>),
        caller: self,
        argument: delayed.argument as NonNullable<typeof delayed.argument>,
        ...(trace === undefined ? {} : { trace }),
      };
      const token = delayed.cancellationToken === "" ? undefined : delayed.cancellationToken;
      const message: DelayedMessage =
        token === undefined ? { envelope, fireAtMs, seq } : { envelope, fireAtMs, seq, cancellationToken: token };
      insertRow(this.#kv, tables.timer.key(fireAtMs, seq), message);
      if (this.#timersPending !== undefined) this.#timersPending++;
      // #validate made sure no pending delayed message of the sender holds the token.
      if (token !== undefined) insertRow(this.#kv, tables.token.key(sender, token), [fireAtMs, seq]);
      if (this.#nextTimerAtMs === undefined || fireAtMs < this.#nextTimerAtMs) this.#nextTimerAtMs = fireAtMs;
    }
    for (const egress of result.outgoingEgresses) {
      const id = `${egress.egressNamespace}/${egress.egressType}`;
      const value = egress.argument as NonNullable<typeof egress.argument>;
      if (!this.#catalog.hasEgress(id)) {
        this.#deadLetter(
          self,
          [{ argument: value }],
          `unknown egress ${id}: the module declares no such egress`,
          nowMs,
          id,
        );
        continue;
      }
      const seq = this.#nextSeq();
      const entry: OutboxEntry =
        trace === undefined
          ? { seq, egress: id, value, source: self }
          : { seq, egress: id, value, source: self, trace };
      insertRow(this.#kv, tables.outbox.key(entry.seq), entry);
      this.#admit(outboxCost(entry));
      this.#effects.push({ kind: "egress", entry });
    }
    for (const mutation of result.stateMutations) {
      const key = tables.state.key(self.typename, self.id, mutation.stateName);
      if (mutation.mutationType === MutationType.DELETE) {
        deleteRow(this.#kv, key);
      } else {
        const value = mutation.stateValue as NonNullable<typeof mutation.stateValue>;
        const stored: StoredState = {
          typename: value.typename,
          value: value.value,
          writtenAtMs: nowMs,
          invokedAtMs: nowMs,
        };
        putRow(this.#kv, key, stored);
      }
    }
  }

  #deadLetter(
    target: Address,
    invocations: readonly StoredInvocation[],
    reason: string,
    nowMs: number,
    egress?: string,
    ingress?: string,
  ): void {
    const seq = this.#nextSeq();
    const letter: DeadLetter = {
      seq,
      target,
      ...(egress === undefined ? {} : { egress }),
      ...(ingress === undefined ? {} : { ingress }),
      invocations,
      reason,
      atMs: nowMs,
    };
    insertRow(this.#kv, tables.dead.key(letter.seq), letter);
    this.#effects.push({ kind: "dead-letter", letter });
  }

  #refreshNextTimer(): void {
    const [first] = scanRows(this.#kv, tables.timer.all, { limit: 1 });
    this.#nextTimerAtMs = first === undefined ? undefined : first.value.fireAtMs;
  }
}
