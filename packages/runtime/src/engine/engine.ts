// The engine: the I/O shell around the partitions. It feeds inputs to the PartitionSet,
// group-commits its writes to the store, and releases what leaves the runtime only once
// the commit that produced it is durable: ingress acknowledgements and egress hand-offs.
// Function invocations go out at once (partition-set.ts says why that is safe). One
// commit is in flight at a time; writes made meanwhile wait for the next. The committing
// writes stay readable in the partitions' overlay until the store has them.
//
// A commit goes to a CommitTarget: the local store in the embedded mode, which either commits
// or fails for good (a full disk: the engine stops), or a Kafka transaction in a cluster,
// which may also be refused (a rebalance, a fence). A refused commit is undone without a
// restart: the partitions are rebuilt from the store (PartitionSet.reset), the work waiting on
// it is told ("commit-aborted", retriable), and what it held is never released.
import { randomUUID } from "node:crypto";
import type { FromFunction, ToFunction, TypedValue } from "@eddy/protocol";
import { type Address, addressKey, type FunctionTypename, formatAddress, replyAddress } from "../core/address.ts";
import type { KV } from "../core/kv.ts";
import type { PendingWrite } from "../core/overlay-kv.ts";
import { type AddressLoad, type Catalog, invocationCost, type StateWrite } from "../core/partition-core.ts";
import {
  type InboxMessage,
  type InvokeEffect,
  type OutboundMessage,
  PartitionSet,
  type RejectedRecord,
  type ReleasedEffect,
} from "../core/partition-set.ts";
import {
  type DeadLetter,
  type Envelope,
  makeRequestId,
  type OutboxEntry,
  type RegisteredSpec,
  requestTime,
  type StoredState,
} from "../core/records.ts";
import { EddyError, errorCode, type Failure } from "../errors.ts";
import { type EngineObserver, noEngineObserver } from "./observer.ts";
import { type Cancel, type Scheduler, systemScheduler } from "./scheduler.ts";
import type { Tracer, TraceSpan } from "./tracer.ts";

/**
 * Sends a batch to a function and returns its reply, retrying transient failures within
 * its budget. An invoker that has the reply at once (an in-process function that did not
 * await) may return it as a plain value; the engine still applies it after the call returns.
 */
export interface Invoker {
  /** `traceparent`: the call's span (tracing on), sent to a remote function as the HTTP header of that name. */
  invoke(target: Address, request: ToFunction, traceparent?: string): InvokeOutcome | Promise<InvokeOutcome>;
  close(): Promise<void>;
}

/** A failure's `reason` does not name the target address: the lines that report it do, once. */
export type InvokeOutcome =
  | { readonly ok: true; readonly response: FromFunction }
  | { readonly ok: false; readonly reason: string };

/** How a connector settles an egress message: out for good, or refused (it becomes a dead letter). */
export interface EgressSettlement {
  delivered(): void;
  rejected(reason: string): void;
  /**
   * Out for good with the commit that settles it: `record` is published in that same commit (a
   * cluster worker's Kafka transaction), so the record and the settlement happen together or
   * not at all. Only a commit target that publishes (the cluster's) takes such records.
   */
  deliveredInCommit(record: PublishedRecord): void;
}

/** A record for a Kafka topic that a commit publishes with its writes (a cluster's exactly-once egress). */
export interface PublishedRecord {
  readonly topic: string;
  readonly partition: number;
  readonly key: Buffer | undefined;
  readonly value: Buffer;
}

/** How the engine applies a settlement: `delivered` is the record published with it, if any. */
type SettleOutbox = (
  settlement: OutboxSettlement,
  outcome: { readonly rejectedFor: string } | { readonly published: PublishedRecord | undefined },
) => void;

/**
 * One outbox entry's settlement, handed to its egress connector: an object with the entry's
 * address and seq rather than closures, since every egress record makes one. It remembers the
 * engine's reset count when it was made: after a reset the entry is handed out again, and
 * this settlement no longer counts (it would settle the new hand-out's entry).
 */
class OutboxSettlement implements EgressSettlement {
  readonly #settle: SettleOutbox;
  readonly egress: string;
  readonly source: Address;
  readonly seq: number;
  readonly resetsAtRelease: number;
  /** The egress span (tracing on), ended by the settlement. */
  readonly span: TraceSpan | undefined;

  constructor(
    settle: SettleOutbox,
    egress: string,
    source: Address,
    seq: number,
    resetsAtRelease: number,
    span: TraceSpan | undefined,
  ) {
    this.#settle = settle;
    this.egress = egress;
    this.source = source;
    this.seq = seq;
    this.resetsAtRelease = resetsAtRelease;
    this.span = span;
  }

  delivered(): void {
    this.#settle(this, { published: undefined });
  }

  rejected(reason: string): void {
    this.#settle(this, { rejectedFor: reason });
  }

  deliveredInCommit(record: PublishedRecord): void {
    this.#settle(this, { published: record });
  }
}

/**
 * Receives egress messages after they are committed. Writes to `transaction` commit
 * together with the settlement, so a connector that stores what it delivers (the
 * playground egress) is exactly-once; one that publishes elsewhere settles after publishing.
 */
export interface EgressConnector {
  readonly egressIds: readonly string[];
  /**
   * In a cluster, true for a connector that stores what it delivers: `transaction` is then the
   * rows of the sending partition (keys relative to it), so the rows commit in that partition's
   * writes and move with it. An entry whose partition runs elsewhere by the time it is
   * released is not handed out here: it stays in the partition's outbox for its owner.
   */
  readonly rowsInSourcePartition?: boolean;
  deliver(entry: OutboxEntry, transaction: KV, settle: EgressSettlement): void;
}

export interface DurableStore extends KV {
  commit(writes: readonly PendingWrite[]): Promise<void>;
  close(): Promise<void>;
}

/** One group commit: what the partitions wrote, and the messages it sends to other partitions' inboxes. */
export interface CommitBatch {
  readonly writes: readonly PendingWrite[];
  /** The partitions with writes, ascending: a cluster commits each one's inbox position with them. */
  readonly partitions: readonly number[];
  /** When the target asked for them (wantsInboxPositions): each of `partitions`' next inbox position. */
  readonly inboxPositions?: readonly number[];
  readonly outbound: readonly OutboundMessage[];
  /** Egress records published with the writes that settle them (see EgressSettlement.deliveredInCommit). */
  readonly published: readonly PublishedRecord[];
}

/** Why a commit was not made, though nothing is broken: it may be tried again after a reset. */
export type CommitRefusal = Failure<"commit-aborted">;

/**
 * Where group commits become durable. `commit` resolves once the batch is durable, or with a
 * refusal (nothing of it took effect; the engine resets and goes on); a rejection means what
 * reached the store is unknown, and the engine stops.
 */
export interface CommitTarget {
  commit(batch: CommitBatch): Promise<CommitRefusal | undefined>;
  /** Whether batches carry their partitions' inbox positions (a cluster's fence needs them; reading them costs). */
  readonly wantsInboxPositions?: boolean;
}

/**
 * The embedded mode's target: the local store, which never refuses. The partitions are all
 * run here, so no commit has outbound messages.
 */
export function localCommitTarget(store: DurableStore): CommitTarget {
  return {
    async commit(batch) {
      if (batch.outbound.length > 0) {
        throw new Error(`a local commit has ${batch.outbound.length} messages for partitions run elsewhere`);
      }
      if (batch.published.length > 0) {
        throw new Error(`a local commit has ${batch.published.length} records to publish, which it cannot`);
      }
      await store.commit(batch.writes);
      return undefined;
    },
  };
}

export interface EngineOptions {
  /** What the partitions read; also where commits go unless `commitTarget` says otherwise. */
  readonly store: DurableStore;
  /** Where group commits go; default the store (localCommitTarget). */
  readonly commitTarget?: CommitTarget;
  readonly catalog: Catalog;
  readonly invoker: Invoker;
  readonly partitionCount: number;
  /** The partitions this engine runs; default all of them. */
  readonly ownedPartitions?: readonly number[];
  readonly egress?: readonly EgressConnector[];
  /** Timers and the time (default: the process's, see systemScheduler); a simulation brings its own. */
  readonly scheduler?: Scheduler;
  /**
   * Milliseconds since the epoch as the engine sees them, with the process's timers; default
   * Date.now (ignored with `scheduler`). A test clock that jumps calls clockMoved().
   */
  readonly clock?: () => number;
  /**
   * How long the first write after an idle spell waits for company before its commit
   * starts; default 0: the commit starts once the current event-loop turn is done. Under
   * load this does not matter: one commit is in flight at a time, and the writes made
   * meanwhile form the next one.
   */
  readonly commitIntervalMs?: number;
  /**
   * Soft bound on the writes one group commit gathers (default 2,048): past it, ingress
   * messages wait for the next commit to take the writes. So a flood enters a commit at a
   * time: pending writes stay bounded, hop latency stays short, and so do LMDB's per-commit
   * dirty pages, which it keeps allocated for reuse at their peak. Function replies are
   * applied at once (they finish work already admitted, and their rows mostly cancel out).
   */
  readonly maxPendingWrites?: number;
  /**
   * The memory budget: most bytes of work admitted and not finished (messages waiting or
   * running, egress messages not yet settled; see AdmittedTally), default 24 MiB. At the
   * budget every source waits: the Kafka and Kinesis ingresses stop reading (the rest stays
   * where it is durable already, upstream), the HTTP ingress holds requests. Function replies
   * are still applied, so the work drains; messages they send are admitted whatever the
   * budget (they cannot wait), so the budget bounds what comes in from outside. A single
   * message larger than the budget is admitted alone.
   */
  readonly memoryBudgetBytes?: number;
  /** A letter was set aside; `id` names it to users (unique in the state directory, see deadLetterId). */
  readonly onDeadLetter?: (letter: DeadLetter, id: string) => void;
  /** How long an ingress idempotency key, and a request's reply, are remembered; default 24 h. */
  readonly idempotencyRetentionMs?: number;
  /** A function failed under the stop policy: the process should stop. */
  readonly onStop?: (reason: string) => void;
  /** A batch's call budget ran out; its failure policy applies next. */
  readonly onInvokeFailure?: (target: Address, reason: string) => void;
  /** The commit target refused a commit (a cluster fenced or aborted it); the engine undid it. */
  readonly onCommitRefused?: (reason: string) => void;
  /** Told of invocations, commits, dead letters and egress settlements as they happen (metrics); default nothing. */
  readonly observer?: EngineObserver;
  /**
   * Spans for each call to a function, the commit that makes its reply durable, and each
   * egress message (engine/tracer.ts); default none, and then no message carries a trace.
   */
  readonly tracer?: Tracer;
}

export type AcceptResult =
  /**
   * `duplicate`: the idempotency key was seen before; the message was not delivered again.
   * `requestId`: the request whose reply to wait for (see awaitReply), when one was asked for
   * (for a duplicate: the first acceptance's, if that one asked for a reply).
   */
  | { readonly ok: true; readonly duplicate: boolean; readonly requestId?: string }
  | { readonly ok: false; readonly code: "unknown-function" | "stopping"; readonly message: string }
  /** The message waited `holdMs` (AcceptOptions) and was still not admitted: nothing was taken. */
  | { readonly ok: false; readonly code: "overloaded"; readonly message: string }
  /** Its commit was refused (the cluster moved partitions): nothing was taken; send it again. */
  | { readonly ok: false; readonly code: "commit-aborted"; readonly message: string }
  /** The target's partition is run by another worker (a reply can only be awaited on its owner). */
  | { readonly ok: false; readonly code: "not-owner"; readonly message: string; readonly partition: number };

/** What a source hears back from acceptFromSource. */
export type SourceAcceptResult =
  | { readonly ok: true }
  | { readonly ok: false; readonly code: "unknown-function" | "stopping"; readonly message: string }
  /**
   * Admitted `bound` to a partition that is not the run the source read for any more (moved to
   * another worker, or its uncommitted writes dropped): nothing was taken; the source reads
   * again from the position the partition holds (sourceRun), or not at all if it is gone.
   */
  | { readonly ok: false; readonly code: "moved"; readonly message: string; readonly partition: number };

/**
 * Records read on behalf of one partition (in a cluster, a source partition is bound to one):
 * the partition and the run of it the source read for (Engine.sourceRun).
 */
export interface SourceBound {
  readonly partition: number;
  readonly run: number;
}

/** A partition's current run, for a source bound to it (Engine.sourceRun). */
export interface SourceRun {
  /** Pass it back with records read from the position below (admitFromSource's `bound`). */
  readonly run: number;
  /**
   * The partition's rows now, keys relative to it: read the source's position here, at once
   * (write only through admitFromSource, which checks the run in the same turn).
   */
  readonly rows: KV;
}

/** What Engine.replayDeadLetters did. */
export type DeadLetterReplay =
  | { readonly ok: true; readonly replayed: readonly { readonly partition: number; readonly letter: DeadLetter }[] }
  | { readonly ok: false; readonly code: "stopping" | "commit-aborted"; readonly message: string }
  /** Some named letters are in partitions another worker runs (or nobody yet): nothing was replayed. */
  | { readonly ok: false; readonly code: "not-owner"; readonly message: string; readonly partitions: readonly number[] }
  /** Some named letters are not (or no longer) replayable dead letters: nothing was replayed. */
  | {
      readonly ok: false;
      readonly code: "no-letter";
      readonly message: string;
      readonly missing: readonly { readonly partition: number; readonly seq: number }[];
    };

/** An operator's change that did not happen: the runtime stops, or the commit was refused (ask again). */
export interface OperatorRefusal {
  readonly ok: false;
  readonly code: "stopping" | "commit-aborted";
  readonly message: string;
}

/** An address as the admin API shows it (Engine.addressView). */
export interface AddressView {
  readonly partition: number;
  readonly states: ReadonlyMap<string, StoredState>;
  readonly load: AddressLoad;
}

/** Most timers of a partition scanned to count one address's delayed messages. */
const ADDRESS_TIMER_SCAN_LIMIT = 100_000;

/** How often an operator's state write looks whether the address's batch has finished. */
const STATE_WRITE_POLL_MS = 5;

/** What the memory budget holds now (for reports and the benchmark). */
export interface AdmissionReport {
  readonly budgetBytes: number;
  readonly admittedBytes: number;
  /** The most admitted at once since the start. */
  readonly admittedBytesMax: number;
  /** Sources waiting for room now. */
  readonly waiting: number;
  /** Times a source found the budget full and waited, since the start. */
  readonly waits: number;
}

export interface AcceptOptions {
  /** Deliver at most once per key and target within the retention (see EngineOptions.idempotencyRetentionMs). */
  readonly idempotencyKey?: string;
  /** The message's caller is a reply address: the first message sent to it is the request's answer. */
  readonly expectReply?: boolean;
  /**
   * With expectReply: the request's id, chosen by the worker that forwarded the request here
   * (forwarding.ts), so that it can tell its client where to poll should this worker die
   * during the wait. Its reply address must be in a partition run here (else "not-owner").
   */
  readonly requestId?: string;
  /** Give up (code "overloaded") after waiting this long for room; default: wait as long as it takes. */
  readonly holdMs?: number;
  /**
   * With expectReply: the caller awaits the reply right after, up to this long (the ingress's
   * `Prefer: wait`). The engine ignores it; a sink that hands the request to another thread
   * asks for the reply in the same call (threads/partition-thread.ts).
   */
  readonly replyWaitMs?: number;
}

/**
 * 24 MiB: about 12,000 small messages admitted at once (at 2 KiB each), several commits'
 * worth at full speed. Behind a Kafka backlog (bench/backlog, with the eddy command's heap
 * settings) it ran as fast as the runtime before any budget, at 333–361 MiB peak RSS; 16 MiB
 * was ~15% slower at ~60 MiB less; 256 MiB (with the old 512 B per message) took RSS to
 * 1.6 GB at half the records/s.
 */
export const MEMORY_BUDGET_BYTES_DEFAULT = 24 * 1024 * 1024;

/** The most delayed messages one step of #fireDueTimers fires. */
const TIMER_STEP_MAX = 256;
/** The most idempotency keys and requests one step of the retention sweep forgets (2 deletes a key). */
const SWEEP_STEP_MAX = 512;

/** A source waiting for room under the memory budget, with what it brings. */
interface BudgetWaiter {
  readonly costBytes: number;
  readonly resume: () => void;
}

/** A request's reply as far as it is durable. */
export type ReplyLookup =
  | { readonly state: "answered"; readonly value: TypedValue }
  | { readonly state: "pending" }
  /** Never accepted, or forgotten after the retention. */
  | { readonly state: "unknown" }
  /**
   * A cluster: the request's partition is not run here now (being restored here, or moved
   * away), so whether it is known cannot be said here: ask again (never "unknown", which would
   * tell a client that a request it sent was never taken).
   */
  | { readonly state: "elsewhere" };

interface ReplyWaiter {
  readonly settle: (lookup: ReplyLookup) => void;
  cancelTimer: Cancel;
}

/** Told when a commit is durable (no argument) or refused (the reason, to reject with). */
type Ack = (refused?: EddyError) => void;

/** Why a commit awaited with #durableSoon was refused; anything but an EddyError is a bug, thrown on. */
function refusalOf(error: unknown): string {
  if (!(error instanceof EddyError)) throw error;
  return error.message;
}

/** A promise for the commit that will hold what was just done, with its ack. */
function durableAck(acks: Ack[]): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    acks.push((refused) => (refused === undefined ? resolve() : reject(refused)));
  });
}

/** The most request ids drawn to find one whose reply address is in a partition run here. */
const REQUEST_ID_DRAWS_MAX = 100_000;

export class Engine {
  readonly #store: DurableStore;
  readonly #commitTarget: CommitTarget;
  readonly #catalog: Catalog;
  readonly #invoker: Invoker;
  readonly #observer: EngineObserver;
  readonly #clock: () => number;
  readonly #scheduler: Scheduler;
  readonly #commitIntervalMs: number;
  readonly #maxPendingWrites: number;
  readonly #memoryBudgetBytes: number;
  /** Sources waiting for the admitted work to go under the memory budget, in the order they came. */
  #budgetWaiters: BudgetWaiter[] = [];
  #budgetWaits = 0;
  /** Sources waiting for the pending writes to go under their bound. */
  #roomWaiters: (() => void)[] = [];
  readonly #options: EngineOptions;
  readonly #egress = new Map<string, EgressConnector>();
  readonly #partitions: PartitionSet;
  /** Acknowledgements waiting for the next commit. */
  #acks: Ack[] = [];
  /** The acks of the commit in flight: told "stopping" if that commit fails (#commitFailed). */
  #acksInFlight: readonly Ack[] = [];
  #commitInFlight: Promise<void> | undefined;
  #commitTimer: Cancel | undefined;
  #timer: Cancel | undefined;
  #timerAtMs: number | undefined;
  #invocationsInFlight = 0;
  #sweeper: Cancel | undefined;
  #stopping = false;
  /** Set while #fireDueTimers runs its steps. */
  #firingTimers = false;
  /** Set while the retention sweep has more due than its last step took (the retention to sweep by). */
  #sweepRetentionMs: number | undefined;
  /** Why a commit failed; set once, and the engine commits nothing after it. */
  #failure: string | undefined;
  /** stop() has made its last commit. */
  #stopped = false;
  /** Replies that came back without a promise, applied together in one microtask. */
  #answered: {
    effect: InvokeEffect;
    incarnation: number;
    outcome: InvokeOutcome;
    sentMs: number;
    span: TraceSpan | undefined;
  }[] = [];
  /** Commits refused so far (each undone by a reset). */
  #commitsRefused = 0;
  /** Times everything uncommitted was dropped. */
  #resets = 0;
  /** Records settled egress entries publish with the next commit (deliveredInCommit). */
  #published: PublishedRecord[] = [];
  /** Commits refused since the last one made: the next waits longer (a broker that is down is not hammered). */
  #refusedInARow = 0;
  /** Set between flushAndHold() and resumeCommits(): no commit starts. */
  #commitsHeld = false;
  readonly #tracer: Tracer | undefined;
  readonly #blocked = new Map<string, (() => void)[]>();
  /** Requests someone waits on (awaitReply), resolved when their answer is durable. */
  readonly #replyWaiters = new Map<string, ReplyWaiter[]>();

  constructor(options: EngineOptions) {
    this.#options = options;
    this.#store = options.store;
    this.#commitTarget = options.commitTarget ?? localCommitTarget(options.store);
    this.#catalog = options.catalog;
    this.#invoker = options.invoker;
    this.#observer = options.observer ?? noEngineObserver;
    this.#tracer = options.tracer;
    this.#scheduler = options.scheduler ?? systemScheduler(options.clock);
    const scheduler = this.#scheduler;
    this.#clock = () => scheduler.now();
    this.#commitIntervalMs = options.commitIntervalMs ?? 0;
    this.#maxPendingWrites = options.maxPendingWrites ?? 2048;
    this.#memoryBudgetBytes = options.memoryBudgetBytes ?? MEMORY_BUDGET_BYTES_DEFAULT;
    for (const connector of options.egress ?? []) for (const id of connector.egressIds) this.#egress.set(id, connector);
    this.#partitions = new PartitionSet({
      store: options.store,
      catalog: options.catalog,
      partitionCount: options.partitionCount,
      listeners: {
        invoke: (effect, incarnation) => this.#invoke(effect, incarnation),
        backpressure: (target, blocked) => this.#backpressure(target, blocked),
      },
      ...(options.ownedPartitions === undefined ? {} : { owned: options.ownedPartitions }),
    });
  }

  get invocationsInFlight(): number {
    return this.#invocationsInFlight;
  }

  /** Commits the target refused since the start, each undone by a reset. */
  get commitsRefused(): number {
    return this.#commitsRefused;
  }

  get admission(): AdmissionReport {
    return {
      budgetBytes: this.#memoryBudgetBytes,
      admittedBytes: this.#partitions.admittedBytes,
      admittedBytesMax: this.#partitions.admittedBytesMax,
      waiting: this.#budgetWaiters.length,
      waits: this.#budgetWaits,
    };
  }

  /** Re-issues what was in flight at the last stop and starts committing. */
  start(): void {
    this.#partitions.recover(this.#clock());
    this.#scheduleCommit();
    const retentionMs = this.#options.idempotencyRetentionMs ?? 24 * 60 * 60 * 1000;
    const sweepEveryMs = Math.min(retentionMs / 10, 60_000);
    const sweepLater = () => {
      this.#sweeper = this.#scheduler.after(
        sweepEveryMs,
        () => {
          this.#sweep(retentionMs);
          if (!this.#stopping) sweepLater();
        },
        { background: true },
      );
    };
    sweepLater();
  }

  /**
   * One step of the retention sweep: forgets at most SWEEP_STEP_MAX expired idempotency keys
   * and requests. After an outage or a burst, millions may be due at once; a step at a time,
   * each in its own commit (the next step runs when it is durable, see #commitNow), keeps the
   * sweep from holding the event loop or one huge commit in memory.
   */
  #sweep(retentionMs: number): void {
    if (this.#stopping) return;
    const before = this.#clock() - retentionMs;
    const keys = this.#partitions.expireIngressKeys(before, SWEEP_STEP_MAX);
    const requests = this.#partitions.expireRequests(before, SWEEP_STEP_MAX - keys);
    if (keys + requests === 0) return;
    this.#sweepRetentionMs = keys + requests >= SWEEP_STEP_MAX ? retentionMs : undefined;
    this.#scheduleCommit();
  }

  /**
   * Accepts a message from an ingress. Resolves once it is durable (then the ingress may
   * acknowledge it), or right away with an error value the ingress can report.
   */
  async accept(envelope: Envelope, options: AcceptOptions = {}): Promise<AcceptResult> {
    if (this.#stopping) return { ok: false, code: "stopping", message: "the runtime is shutting down" };
    if (this.#catalog.functionSettings(envelope.target.typename) === undefined) {
      return {
        ok: false,
        code: "unknown-function",
        message: `unknown function type ${envelope.target.typename}: no endpoint in the module serves it`,
      };
    }
    if (options.expectReply === true && !this.#partitions.ownsAddress(envelope.target)) {
      const partition = this.#partitions.partitionOf(envelope.target);
      return {
        ok: false,
        code: "not-owner",
        partition,
        message: `${formatAddress(envelope.target)} is in partition ${partition}, which another worker runs`,
      };
    }
    const given = options.expectReply === true ? options.requestId : undefined;
    if (
      given !== undefined &&
      (requestTime(given) === undefined || !this.#partitions.ownsAddress(replyAddress(given)))
    ) {
      const partition = this.#partitions.partitionOf(replyAddress(given));
      return {
        ok: false,
        code: "not-owner",
        partition,
        message: `request id ${given} is not one of this worker's: its replies are in partition ${partition}, which another worker runs`,
      };
    }
    const admitted = await this.#admit([addressKey(envelope.target)], invocationCost(envelope), options.holdMs, () =>
      this.#partitions.accept(
        envelope,
        {
          ...(options.idempotencyKey === undefined ? {} : { idempotencyKey: options.idempotencyKey }),
          ...(options.expectReply === true ? { requestId: given ?? this.#newRequestId() } : {}),
        },
        this.#clock(),
      ),
    );
    if (admitted === "stopping") return { ok: false, code: "stopping", message: "the runtime is shutting down" };
    if (admitted === "overloaded") {
      return {
        ok: false,
        code: "overloaded",
        message: `no room for the message within ${options.holdMs} ms (the memory budget or ${formatAddress(envelope.target)}'s backlog is full)`,
      };
    }
    const accepted = admitted.entered;
    // A duplicate also waits: the first delivery may still be in the commit pipeline.
    try {
      await this.#durableSoon();
    } catch (error) {
      const message = refusalOf(error);
      return { ok: false, code: errorCode(error) === "stopping" ? "stopping" : "commit-aborted", message };
    }
    return { ok: true, ...accepted };
  }

  /**
   * A request id (makeRequestId) whose reply address is in a partition run here, so the
   * request's record, its answer and whoever waits for it are on this worker. In the embedded
   * mode the first draw is; with k of n partitions run here it takes n/k draws on average.
   */
  #newRequestId(): string {
    for (let draw = 0; draw < REQUEST_ID_DRAWS_MAX; draw++) {
      const requestId = makeRequestId(this.#clock(), randomUUID());
      if (this.#partitions.ownsAddress(replyAddress(requestId))) return requestId;
    }
    throw new Error(`no request id in ${REQUEST_ID_DRAWS_MAX} draws falls in a partition run here`);
  }

  /**
   * Accepts what a replayable source (a Kafka or Kinesis partition) read, together with
   * the source's new position, in one commit: after a crash both are in the store or
   * neither is, so the source resumes right after what the store holds and nothing is
   * delivered twice or skipped. `record` writes the position (and anything else of the
   * source's) into that commit's transaction. Records the source could not route become dead
   * letters in the same commit. Resolves once durable, or rejects with an EddyError
   * "commit-aborted" (retriable) if the commit was refused: then nothing of it was taken, and
   * the source reads again from the position the store holds. Waits first while any target's backlog,
   * the pending writes or the memory budget are at their limit. Nothing is accepted when a
   * target has no function: the source is told which.
   */
  async acceptFromSource(
    envelopes: readonly Envelope[],
    record: (transaction: KV) => void,
    rejected: readonly RejectedRecord[] = [],
    bound?: SourceBound,
  ): Promise<SourceAcceptResult> {
    const admitted = await this.admitFromSource(envelopes, record, rejected, bound);
    if (!admitted.ok) return admitted;
    await admitted.durable;
    return { ok: true };
  }

  /**
   * acceptFromSource in two steps: resolves once the records are admitted (in the pending
   * commit), with `durable` for when that commit is on disk. A source may admit its next
   * records meanwhile, keeping its reading ahead of the commits; it must wait for each
   * admission before the next, since admissions in order are what keeps positions in order.
   *
   * With `bound` (a cluster's source partition, bound to one of the partitions): `record` writes
   * into that partition's rows (keys relative to it) instead of the connectors' tables, so the
   * position commits in the partition's writes and moves with it; nothing is taken ("moved")
   * unless the partition is still the run the source read for, checked in the same turn as the
   * admission. Dead letters whose target's partition runs elsewhere are kept in that partition.
   */
  async admitFromSource(
    envelopes: readonly Envelope[],
    record: (transaction: KV) => void,
    rejected: readonly RejectedRecord[] = [],
    bound?: SourceBound,
  ): Promise<
    { readonly ok: true; readonly durable: Promise<void> } | Exclude<SourceAcceptResult, { readonly ok: true }>
  > {
    if (this.#stopping) return { ok: false, code: "stopping", message: "the runtime is shutting down" };
    const unknown = [...new Set(envelopes.map((envelope) => envelope.target.typename))].filter(
      (typename) => this.#catalog.functionSettings(typename) === undefined,
    );
    if (unknown.length > 0) {
      return {
        ok: false,
        code: "unknown-function",
        message: `unknown function type${unknown.length > 1 ? "s" : ""} ${unknown.join(", ")}: no endpoint in the module serves ${unknown.length > 1 ? "them" : "it"}`,
      };
    }
    const targets = [...new Set(envelopes.map((envelope) => addressKey(envelope.target)))];
    let costBytes = 0;
    for (const envelope of envelopes) costBytes += invocationCost(envelope);
    // All in one event turn: the messages and the position join the same commit.
    const admitted = await this.#admit(targets, costBytes, undefined, () => {
      if (bound !== undefined && this.#partitions.runOf(bound.partition) !== bound.run) return false;
      const now = this.#clock();
      for (const envelope of envelopes) this.#partitions.accept(envelope, {}, now);
      for (const letter of rejected) this.#partitions.rejectFromIngress(letter, now, bound?.partition);
      record(bound === undefined ? this.#partitions.transaction : this.#partitions.rowsOf(bound.partition));
      return true;
    });
    // Without holdMs a source waits as long as it takes: only stopping ends the wait.
    if (admitted === "stopping" || admitted === "overloaded") {
      return { ok: false, code: "stopping", message: "the runtime is shutting down" };
    }
    if (!admitted.entered && bound !== undefined) {
      return {
        ok: false,
        code: "moved",
        partition: bound.partition,
        message: `partition ${bound.partition} moved or was reset since the source read for it: nothing was taken`,
      };
    }
    return { ok: true, durable: this.#durableSoon() };
  }

  /**
   * Backpressure for a source: waits while any of the targets' backlogs, or the pending
   * writes, or the memory budget are at their limit, then runs `enter` in the same event
   * turn as the last check, so sources released together check again one after another and
   * a burst of them cannot overrun any limit. `costBytes` is what the source brings against
   * the budget; with nothing admitted it enters whatever its size, so a message larger than
   * the budget still goes (alone). "overloaded" once `holdMs` passed without room.
   */
  async #admit<T>(
    targets: readonly string[],
    costBytes: number,
    holdMs: number | undefined,
    enter: () => T,
  ): Promise<{ readonly entered: T } | "stopping" | "overloaded"> {
    const deadline = holdMs === undefined ? undefined : this.#scheduler.monotonicMs() + holdMs;
    for (;;) {
      const blocked = targets.map((key) => this.#blocked.get(key)).find((waiters) => waiters !== undefined);
      let waited: boolean;
      if (blocked !== undefined) waited = await this.#wait(blocked, (resume) => resume, deadline);
      else if (this.#partitions.pendingWrites >= this.#maxPendingWrites) {
        this.#scheduleCommit();
        waited = await this.#wait(this.#roomWaiters, (resume) => resume, deadline);
      } else if (!this.#fits(costBytes)) {
        this.#budgetWaits++;
        waited = await this.#wait(this.#budgetWaiters, (resume) => ({ costBytes, resume }), deadline);
      } else {
        return { entered: enter() };
      }
      if (this.#stopping) return "stopping";
      if (!waited) return "overloaded";
    }
  }

  /** Whether `costBytes` more fits the memory budget (anything fits when nothing is admitted). */
  #fits(costBytes: number): boolean {
    const admitted = this.#partitions.admittedBytes;
    return admitted <= 0 || admitted + costBytes <= this.#memoryBudgetBytes;
  }

  /**
   * Queues a waiter on `queue` until it is resumed (true) or `deadline` passes (false, and
   * it leaves the queue).
   */
  #wait<W>(queue: W[], waiter: (resume: () => void) => W, deadline: number | undefined): Promise<boolean> {
    return new Promise<boolean>((settle) => {
      let cancelTimer: Cancel | undefined;
      const entry = waiter(() => {
        cancelTimer?.();
        settle(true);
      });
      queue.push(entry);
      if (deadline === undefined) return;
      cancelTimer = this.#scheduler.after(deadline - this.#scheduler.monotonicMs(), () => {
        const index = queue.indexOf(entry);
        if (index >= 0) queue.splice(index, 1);
        settle(false);
      });
    });
  }

  /**
   * Work finished: sources waiting for the budget go, in order, as many as now fit (each
   * checks again as it enters, so the budget holds even if routing admitted more meanwhile).
   */
  #wakeBudgetWaiters(): void {
    if (this.#budgetWaiters.length === 0 || this.#stopping) return;
    let admitted = this.#partitions.admittedBytes;
    let going = 0;
    for (const waiter of this.#budgetWaiters) {
      if (admitted > 0 && admitted + waiter.costBytes > this.#memoryBudgetBytes) break;
      admitted += waiter.costBytes;
      going++;
    }
    if (going === 0) return;
    for (const waiter of this.#budgetWaiters.splice(0, going)) waiter.resume();
  }

  /**
   * A connector holds `bytes` of work it took over (settled as delivered, so no longer in the
   * outbox) but has not finished, such as the exactly-once Kafka egress's rows waiting for
   * their transaction: they count against the memory budget until released, so a slow sink
   * makes the sources wait instead of growing the connector's queue.
   */
  holdWork(bytes: number): void {
    this.#partitions.admitHeld(bytes);
  }

  /** Gives back what holdWork took; waiting sources may go. */
  releaseWork(bytes: number): void {
    this.#partitions.admitHeld(-bytes);
    this.#wakeBudgetWaiters();
  }

  /** The dead letters of the partitions run here, as committed (PartitionSet.committedDeadLetters). */
  deadLetters(): { readonly partition: number; readonly letter: DeadLetter }[] {
    const letters: { partition: number; letter: DeadLetter }[] = [];
    for (const partition of this.#partitions.owned) {
      for (const letter of this.#partitions.committedDeadLetters(partition)) letters.push({ partition, letter });
    }
    return letters;
  }

  /**
   * Replays dead letters while running: every replayable one of the partitions run here ("all"),
   * or those named, all or none (each must be in a partition run here, and still a replayable
   * letter as the partition sees it now). They are delivered again in the next commit, which
   * removes them: resolves once it is durable, so each is replayed once, then gone; a refused
   * commit takes the replay back with it ("commit-aborted": nothing was replayed, ask again).
   */
  async replayDeadLetters(
    selection: "all" | readonly { readonly partition: number; readonly seq: number }[],
  ): Promise<DeadLetterReplay> {
    if (this.#stopping) return { ok: false, code: "stopping", message: "the runtime is shutting down" };
    const now = this.#clock();
    const replayed: { partition: number; letter: DeadLetter }[] = [];
    if (selection === "all") {
      for (const partition of this.#partitions.owned) {
        for (const letter of this.#partitions.replayDeadLetters(partition, "all", now)) {
          replayed.push({ partition, letter });
        }
      }
    } else {
      const elsewhere = this.#runElsewhere(selection, "replayed");
      if (elsewhere !== undefined) return elsewhere;
      const missing = selection.filter(({ partition, seq }) => {
        const letter = this.#partitions.deadLetter(partition, seq);
        return letter === undefined || letter.ingress !== undefined;
      });
      if (missing.length > 0) {
        return {
          ok: false,
          code: "no-letter",
          missing,
          message: "no such replayable dead letter; nothing was replayed",
        };
      }
      const byPartition = new Map<number, number[]>();
      for (const { partition, seq } of selection)
        byPartition.set(partition, [...(byPartition.get(partition) ?? []), seq]);
      for (const [partition, seqs] of byPartition) {
        for (const letter of this.#partitions.replayDeadLetters(partition, seqs, now)) {
          replayed.push({ partition, letter });
        }
      }
    }
    if (replayed.length === 0) return { ok: true, replayed };
    try {
      await this.#durableSoon();
    } catch (error) {
      const message = refusalOf(error);
      // After a failed commit the replay's fate is unknown; after a refused one, nothing happened.
      if (errorCode(error) === "stopping") return { ok: false, code: "stopping", message };
      return { ok: false, code: "commit-aborted", message: `${message}; nothing was replayed` };
    }
    return { ok: true, replayed };
  }

  /** Refuses a selection of letters whose partitions are not all run here. */
  #runElsewhere(
    selection: readonly { readonly partition: number }[],
    undone: "replayed" | "discarded",
  ): DeadLetterReplay | undefined {
    const elsewhere = [...new Set(selection.map(({ partition }) => partition))].filter(
      (partition) => !this.#partitions.owns(partition),
    );
    if (elsewhere.length === 0) return undefined;
    const many = elsewhere.length > 1;
    return {
      ok: false,
      code: "not-owner",
      partitions: elsewhere,
      message: `partition${many ? "s" : ""} ${elsewhere.join(", ")} ${many ? "are" : "is"} not run here; nothing was ${undone}`,
    };
  }

  /**
   * Discards dead letters while running, as replayDeadLetters replays them (all of the
   * partitions run here, or those named, all or none), any letter included: resolves once the
   * commit that removes them is durable.
   */
  async discardDeadLetters(
    selection: "all" | readonly { readonly partition: number; readonly seq: number }[],
  ): Promise<DeadLetterReplay> {
    if (this.#stopping) return { ok: false, code: "stopping", message: "the runtime is shutting down" };
    const discarded: { partition: number; letter: DeadLetter }[] = [];
    if (selection === "all") {
      for (const partition of this.#partitions.owned) {
        for (const letter of this.#partitions.discardDeadLetters(partition, "all"))
          discarded.push({ partition, letter });
      }
    } else {
      const elsewhere = this.#runElsewhere(selection, "discarded");
      if (elsewhere !== undefined) return elsewhere;
      const missing = selection.filter(
        ({ partition, seq }) => this.#partitions.deadLetter(partition, seq) === undefined,
      );
      if (missing.length > 0) {
        return { ok: false, code: "no-letter", missing, message: "no such dead letter; nothing was discarded" };
      }
      for (const { partition, seq } of selection) {
        for (const letter of this.#partitions.discardDeadLetters(partition, [seq]))
          discarded.push({ partition, letter });
      }
    }
    if (discarded.length === 0) return { ok: true, replayed: discarded };
    const refused = await this.#operatorDurable("nothing was discarded");
    return refused ?? { ok: true, replayed: discarded };
  }

  /**
   * Pauses (or resumes) a function type in the partitions run here: its batches wait, durably,
   * until it is resumed (PartitionCore.pause). Resolves once the change is durable.
   */
  async setPaused(typename: FunctionTypename, paused: boolean): Promise<OperatorRefusal | undefined> {
    if (this.#stopping) return { ok: false, code: "stopping", message: "the runtime is shutting down" };
    if (paused) this.#partitions.pause(typename, this.#clock());
    else this.#partitions.resume(typename, this.#clock());
    return this.#operatorDurable(paused ? "the pause may not have taken" : "the resume may not have taken");
  }

  isPaused(typename: FunctionTypename): boolean {
    return this.#partitions.isPaused(typename);
  }

  /** An address's states and work now, or undefined when its partition is run elsewhere. */
  addressView(address: Address): AddressView | undefined {
    if (!this.#partitions.ownsAddress(address)) return undefined;
    return {
      partition: this.#partitions.partitionOf(address),
      states: this.#partitions.addressState(address),
      load: this.#partitions.addressLoad(address, ADDRESS_TIMER_SCAN_LIMIT),
    };
  }

  /** The state specs a function type registered (PartitionSet.registeredStates). */
  registeredStates(typename: FunctionTypename): readonly RegisteredSpec[] {
    return this.#partitions.registeredStates(typename);
  }

  /** Ids holding state of a function type, a page at a time (PartitionSet.stateIds). */
  stateIds(typename: FunctionTypename, page: { after?: string; prefix?: string; limit: number }): string[] {
    return this.#partitions.stateIds(typename, page);
  }

  /**
   * Sets or deletes a state value as an operator asks (PartitionCore.writeState): waits up to
   * `waitMs` for the address's batch in flight to finish, then writes; resolves once durable.
   */
  async writeState(
    address: Address,
    name: string,
    value: TypedValue | undefined,
    waitMs: number,
  ): Promise<
    StateWrite | OperatorRefusal | { readonly ok: false; readonly code: "not-owner"; readonly message: string }
  > {
    const deadline = this.#clock() + waitMs;
    for (;;) {
      if (this.#stopping) return { ok: false, code: "stopping", message: "the runtime is shutting down" };
      if (!this.#partitions.ownsAddress(address)) {
        return { ok: false, code: "not-owner", message: `the partition of ${formatAddress(address)} is not run here` };
      }
      const written = this.#partitions.writeState(address, name, value, this.#clock());
      if (written.ok || written.code !== "busy" || this.#clock() >= deadline) {
        if (!written.ok) return written;
        return (await this.#operatorDurable("the state was not written")) ?? written;
      }
      await new Promise<void>((resolve) => this.#scheduler.after(STATE_WRITE_POLL_MS, resolve));
    }
  }

  /** Waits for an operator's change to be durable; a refusal names what did not happen. */
  async #operatorDurable(notDone: string): Promise<OperatorRefusal | undefined> {
    try {
      await this.#durableSoon();
      return undefined;
    } catch (error) {
      const message = refusalOf(error);
      if (errorCode(error) === "stopping") return { ok: false, code: "stopping", message };
      return { ok: false, code: "commit-aborted", message: `${message}; ${notDone}` };
    }
  }

  /** A request's reply, if it is durable. */
  lookupReply(requestId: string): ReplyLookup {
    if (requestTime(requestId) !== undefined && !this.#partitions.ownsAddress(replyAddress(requestId))) {
      return { state: "elsewhere" };
    }
    const record = this.#partitions.committedRequest(requestId);
    if (record === undefined) return { state: "unknown" };
    return record.reply === undefined ? { state: "pending" } : { state: "answered", value: record.reply };
  }

  /** Waits up to `waitMs` for a request's reply to be durable (stopping the engine ends the wait as pending). */
  async awaitReply(requestId: string, waitMs: number): Promise<ReplyLookup> {
    const now = this.lookupReply(requestId);
    if (now.state !== "pending" || waitMs <= 0 || this.#stopping) return now;
    return new Promise<ReplyLookup>((resolve) => {
      const waiter: ReplyWaiter = {
        settle: (lookup) => {
          waiter.cancelTimer();
          resolve(lookup);
        },
        cancelTimer: () => undefined,
      };
      waiter.cancelTimer = this.#scheduler.after(waitMs, () => {
        const left = (this.#replyWaiters.get(requestId) ?? []).filter((other) => other !== waiter);
        if (left.length === 0) this.#replyWaiters.delete(requestId);
        else this.#replyWaiters.set(requestId, left);
        resolve({ state: "pending" });
      });
      const waiters = this.#replyWaiters.get(requestId);
      if (waiters === undefined) this.#replyWaiters.set(requestId, [waiter]);
      else waiters.push(waiter);
    });
  }

  /**
   * Runs `work` against the current transaction and resolves with its result once the
   * commit holding its writes is durable (for connectors' own tables); rejects with an
   * EddyError "commit-aborted" if that commit was refused (the writes are gone).
   */
  async transact<T>(work: (transaction: KV) => T): Promise<T> {
    const result = work(this.#partitions.transaction);
    await this.#durableSoon();
    return result;
  }

  /**
   * transact for the rows of the partitions run here (keys relative to each, as rowsOf gives
   * them): `work` gets the partitions and their rows in one event turn, and what it writes
   * commits in those partitions' writes, so it moves with them. Resolves once durable, or
   * rejects as transact does.
   */
  async transactOwned<T>(work: (owned: readonly number[], rowsOf: (partition: number) => KV) => T): Promise<T> {
    const result = work(this.#partitions.owned, (partition) => this.#partitions.rowsOf(partition));
    await this.#durableSoon();
    return result;
  }

  /**
   * Finishes the commit in flight and the writes still pending, then closes the store. After
   * a failed commit it commits nothing more: it only closes.
   */
  async stop(): Promise<void> {
    this.#stopWaiting();
    this.#sweeper?.();
    this.#timer?.();
    this.#cancelCommitTimer();
    // A commit that fails here is reported by the one who started it (#commitFailed).
    await this.#commitInFlight?.catch(() => undefined);
    if (this.#failure === undefined) {
      try {
        await this.#commitNow();
      } catch (error) {
        this.#commitFailed(error);
      }
    }
    // Nothing commits from here on: a wait begun during the stop (transact) ends now.
    this.#stopped = true;
    this.#tellWaitersStopping();
    await this.#invoker.close();
    await this.#store.close();
  }

  /** Waiting sources and request-reply callers learn that the runtime is stopping. */
  #stopWaiting(): void {
    this.#stopping = true;
    for (const waiting of [this.#roomWaiters, ...this.#blocked.values()]) for (const resume of waiting) resume();
    for (const waiter of this.#budgetWaiters) waiter.resume();
    this.#budgetWaiters = [];
    this.#roomWaiters = [];
    this.#blocked.clear();
    for (const waiters of this.#replyWaiters.values())
      for (const waiter of waiters) waiter.settle({ state: "pending" });
    this.#replyWaiters.clear();
  }

  /**
   * The store refused a commit (a full disk, a failed write): what reached the disk is
   * unknown, and the overlays still hold the commit's writes sealed, so the engine cannot go
   * on. It stops taking work and asks to be stopped (onStop) with the cause; the commit's
   * sources are never acknowledged and its effects never released, so nothing acknowledged is
   * lost: what a source sent again after the restart is taken again. Whoever waits on that
   * commit or a later one hears "stopping" now: a source waiting for its records to be durable
   * would otherwise wait forever, and with it the runtime's stop, which closes the sources first.
   */
  #commitFailed(error: unknown): void {
    if (this.#failure !== undefined) return;
    this.#failure = `commit failed: ${error instanceof Error ? error.message : String(error)}`;
    this.#stopWaiting();
    this.#tellWaitersStopping();
    this.#options.onStop?.(this.#failure);
  }

  /** Whoever waits for a commit that will never be made learns that the runtime is stopping. */
  #tellWaitersStopping(): void {
    const waiting = [...this.#acksInFlight, ...this.#acks];
    this.#acksInFlight = [];
    this.#acks = [];
    if (waiting.length === 0) return;
    const why =
      this.#failure === undefined ? "the runtime is shutting down" : `the runtime is stopping: ${this.#failure}`;
    const stopping = new EddyError("stopping", why, { retriable: true });
    for (const ack of waiting) ack(stopping);
  }

  #scheduleCommit(): void {
    if (this.#commitTimer !== undefined || this.#commitInFlight !== undefined || this.#stopping || this.#commitsHeld) {
      return;
    }
    const commit = () => {
      this.#commitTimer = undefined;
      this.#commitNow().catch((error: unknown) => this.#commitFailed(error));
    };
    // After refusals, back off: 50 ms doubling up to 5 s, until a commit is made again.
    const delayMs =
      this.#refusedInARow > 0 ? Math.min(50 * 2 ** (this.#refusedInARow - 1), 5_000) : this.#commitIntervalMs;
    this.#commitTimer = delayMs > 0 ? this.#scheduler.after(delayMs, commit) : this.#scheduler.soon(commit);
  }

  #cancelCommitTimer(): void {
    const cancel = this.#commitTimer;
    this.#commitTimer = undefined;
    cancel?.();
  }

  /**
   * Resolves once the writes made so far are durable (a commit is scheduled for them); rejects
   * with an EddyError "commit-aborted" if that commit was refused.
   */
  #durableSoon(): Promise<void> {
    const durable = durableAck(this.#acks);
    // After a failed commit (or the stop) no commit comes: the wait ends at once.
    if (this.#failure !== undefined || this.#stopped) this.#tellWaitersStopping();
    else this.#scheduleCommit();
    return durable;
  }

  async #commitNow(): Promise<void> {
    if (this.#commitInFlight !== undefined) return;
    const { writes, effects, outbound, partitions, inboxPositions } = this.#partitions.takeCommit({
      inboxPositions: this.#commitTarget.wantsInboxPositions === true,
    });
    const acks = this.#acks;
    this.#acks = [];
    this.#acksInFlight = acks;
    // Taken with the writes, in the same turn: each record's settlement is among them.
    const published = this.#published;
    this.#published = [];
    this.#makeRoom();
    if (writes.length === 0 && effects.length === 0 && outbound.length === 0 && acks.length === 0) return;
    const startedMs = this.#scheduler.monotonicMs();
    const committing = this.#commitTarget.commit(
      inboxPositions === undefined
        ? { writes, partitions, outbound, published }
        : { writes, partitions, outbound, published, inboxPositions },
    );
    // What stop() waits for: the commit's end, however it ends (#commitNow's caller reports a failure).
    this.#commitInFlight = committing.then(
      () => undefined,
      () => undefined,
    );
    let refusal: CommitRefusal | undefined;
    try {
      refusal = await committing;
    } finally {
      this.#commitInFlight = undefined;
    }
    this.#acksInFlight = [];
    if (refusal !== undefined) {
      this.#undoCommit(refusal, acks);
      return;
    }
    this.#partitions.committed();
    this.#observer.committed((this.#scheduler.monotonicMs() - startedMs) / 1000, writes.length);
    this.#refusedInARow = 0;
    for (const ack of acks) ack();
    for (const effect of effects) this.#release(effect);
    this.#armTimer();
    // The last sweep step found more than it could take: the next one joins the next commit.
    if (this.#sweepRetentionMs !== undefined) this.#sweep(this.#sweepRetentionMs);
    this.#commitAgainIfNeeded();
  }

  #commitAgainIfNeeded(): void {
    if (
      this.#partitions.pendingWrites > 0 ||
      this.#partitions.heldEffects > 0 ||
      this.#partitions.outboundMessages > 0 ||
      this.#acks.length > 0 ||
      this.#roomWaiters.length > 0
    )
      this.#scheduleCommit();
  }

  /**
   * The target refused the commit: none of it took effect. Everything since the last durable
   * commit is dropped and the partitions are rebuilt from the store, as after a crash but in
   * place: batches in flight are sent again by the new cores (replies to the old ones are
   * ignored, see PartitionSet.complete), what the commit held is never released, and whoever
   * waits on it or on the writes made since learns it was refused (sources send again from
   * the position the store holds). Waiting sources check their limits again.
   */
  #undoCommit(refusal: CommitRefusal, acks: readonly Ack[]): void {
    this.#commitsRefused++;
    this.#refusedInARow++;
    this.#observer.commitRefused();
    this.#options.onCommitRefused?.(refusal.message);
    this.#dropUncommitted(`commit refused: ${refusal.message}`, acks, this.#partitions.owned);
  }

  /**
   * Drops everything not committed and runs `owned` from what the store holds. Whoever waits on
   * the dropped work hears `why` as an EddyError "commit-aborted" (retriable).
   */
  #dropUncommitted(why: string, acks: readonly Ack[], owned: readonly number[]): void {
    this.#resets++;
    // Their settlements are dropped too: the rebuilt partitions hand the entries out again.
    this.#published = [];
    const refused = new EddyError("commit-aborted", why, { retriable: true });
    const later = this.#acks;
    this.#acks = [];
    // Blocks are the dropped cores'; the rebuilt ones report theirs again as they recover.
    const blocked = [...this.#blocked.values()];
    this.#blocked.clear();
    this.#timer?.();
    this.#timer = undefined;
    this.#timerAtMs = undefined;
    this.#partitions.reset(this.#clock(), owned);
    for (const ack of acks) ack(refused);
    for (const ack of later) ack(refused);
    for (const waiting of blocked) for (const resume of waiting) resume();
    this.#makeRoom();
    this.#wakeBudgetWaiters();
    this.#armTimer();
    this.#commitAgainIfNeeded();
  }

  // --- Ownership, for a cluster worker (the embedded mode runs every partition from the start) ---

  /** Batches in flight and the messages behind them, by function type (metrics). */
  functionTypeLoads(): Map<string, { backlog: number; inFlight: number }> {
    return this.#partitions.functionTypeLoads();
  }

  /** Delayed messages pending in the partitions run here (metrics). */
  get delayedMessagesPending(): number {
    return this.#partitions.delayedMessagesPending;
  }

  /** The partitions run here, ascending. */
  get ownedPartitions(): number[] {
    return this.#partitions.owned;
  }

  /**
   * The current run of `partition`, for a source bound to it; undefined when it is not run
   * here. A new run starts with every reset and every acquisition.
   */
  sourceRun(partition: number): SourceRun | undefined {
    const run = this.#partitions.runOf(partition);
    return run === undefined ? undefined : { run, rows: this.#partitions.rowsOf(partition) };
  }

  /** How many times everything uncommitted was dropped (refused commits, lost partitions): readers seek again when it moves. */
  get resets(): number {
    return this.#resets;
  }

  /** The partition an address belongs to. */
  partitionOf(address: Address): number {
    return this.#partitions.partitionOf(address);
  }

  /**
   * Starts running `partitions`, whose rows the store now holds whole (restored from the
   * changelog). `viaInbox` names those this worker sent messages to that their inbox still
   * holds unread: messages to them keep going through the inbox until inboxCaughtUp().
   */
  own(partitions: readonly number[], viaInbox: ReadonlySet<number> = new Set()): void {
    const now = this.#clock();
    for (const partition of partitions) this.#partitions.own(partition, now, { viaInbox: viaInbox.has(partition) });
    this.#armTimer();
    this.#scheduleCommit();
  }

  /**
   * Stops running `partitions`. Everything they did must be committed (flushAndHold first):
   * then nothing is lost, and their next owner re-sends their in-flight batches. If any writes
   * are pending, they may depend on work in the released partitions (a reply there that sent a
   * message here), so everything uncommitted is dropped instead, as after a refused commit.
   */
  release(partitions: readonly number[]): void {
    if (partitions.length === 0) return;
    const releasing = new Set(partitions);
    const keep = this.#partitions.owned.filter((partition) => !releasing.has(partition));
    if (this.#partitions.pendingWrites > 0 || this.#partitions.outboundMessages > 0 || this.#acks.length > 0) {
      this.#dropUncommitted(`partitions ${partitions.join(", ")} moved to another worker`, [], keep);
      return;
    }
    for (const partition of partitions) this.#partitions.release(partition);
    // Sources waiting on a released address's backlog: it is someone else's now.
    for (const [key, waiting] of [...this.#blocked]) {
      if (!releasing.has(this.#partitions.partitionOfKey(key))) continue;
      this.#blocked.delete(key);
      for (const resume of waiting) resume();
    }
  }

  /**
   * The worker lost its partitions without committing (expelled from the group): everything
   * uncommitted is dropped, and it runs `keep` (usually nothing) from the store.
   */
  lose(why: string, keep: readonly number[] = []): void {
    this.#dropUncommitted(why, [], keep);
  }

  /**
   * Commits everything pending, then holds commits until resumeCommits(): a worker about to
   * rejoin its group commits under its current generation, and nothing more until it knows
   * the next one. False if a commit was refused meanwhile (then what was pending is dropped).
   */
  async flushAndHold(): Promise<boolean> {
    const made = await this.#flush();
    this.#commitsHeld = true;
    this.#cancelCommitTimer();
    return made;
  }

  resumeCommits(): void {
    this.#commitsHeld = false;
    this.#commitAgainIfNeeded();
  }

  async #flush(): Promise<boolean> {
    // Each commit may release effects that write again (an egress settling): a few rounds.
    for (let round = 0; round < 16; round++) {
      await this.#commitInFlight;
      if (
        this.#partitions.pendingWrites === 0 &&
        this.#partitions.heldEffects === 0 &&
        this.#partitions.outboundMessages === 0 &&
        this.#acks.length === 0
      ) {
        return true;
      }
      if (this.#failure !== undefined || this.#stopping) return false;
      this.#cancelCommitTimer();
      const refusedBefore = this.#commitsRefused;
      try {
        await this.#commitNow();
      } catch (error) {
        this.#commitFailed(error);
        return false;
      }
      if (this.#commitsRefused !== refusedBefore) return false;
    }
    return false;
  }

  /** Where the inbox of `partition` (run here) is read next. */
  inboxPosition(partition: number): number {
    return this.#partitions.inboxPosition(partition);
  }

  /** The inbox of `partition` was read past every message this worker sent it (see own()). */
  inboxCaughtUp(partition: number): void {
    this.#partitions.inboxCaughtUp(partition);
  }

  /**
   * Delivers records read from the inbox of `partition`, each at its offset, waiting first
   * while a target's backlog, the pending writes or the memory budget are at their limit, like
   * a source. Offsets have gaps (transaction markers, aborted records): a record below the
   * position the partition expects next was delivered already and is skipped. Records read
   * before a reset (`resetsAtRead`, the `resets` count when they were fetched) are not
   * delivered: the reset dropped deliveries, and the reader must seek back to the partition's
   * position ("seek").
   */
  async admitFromInbox(
    partition: number,
    records: readonly { readonly message: InboxMessage; readonly offset: number }[],
    resetsAtRead: number,
  ): Promise<"admitted" | "seek" | "not-owned" | "stopping"> {
    if (this.#stopping) return "stopping";
    const targets = [...new Set(records.map((record) => addressKey(record.message.envelope.target)))];
    let costBytes = 0;
    for (const record of records) costBytes += invocationCost(record.message.envelope);
    const admitted = await this.#admit(targets, costBytes, undefined, () => {
      if (!this.#partitions.owns(partition)) return "not-owned" as const;
      if (this.#resets !== resetsAtRead) return "seek" as const;
      const now = this.#clock();
      for (const { message, offset } of records) {
        if (offset < this.#partitions.inboxPosition(partition)) continue;
        this.#partitions.deliverFromInbox(partition, message, offset, now);
      }
      return "admitted" as const;
    });
    if (admitted === "stopping" || admitted === "overloaded") return "stopping";
    this.#scheduleCommit();
    return admitted.entered;
  }

  /**
   * The pending writes were just sealed: waiting sources may go, in order, as many as the
   * room left (each writes at least one row; they check again, so the bound holds). Waking
   * them all would have most of a big flood wake and wait again at every commit.
   */
  #makeRoom(): void {
    if (this.#stopping) return;
    const room = this.#maxPendingWrites - this.#partitions.pendingWrites;
    if (room <= 0 || this.#roomWaiters.length === 0) return;
    const going = this.#roomWaiters.splice(0, room);
    for (const go of going) go();
  }

  /**
   * How an egress connector settles an outbox entry (one function for all: see
   * OutboxSettlement). A settlement from before a reset, or for an entry already settled or in
   * a partition run elsewhere now, changes nothing: in particular it publishes nothing.
   */
  readonly #settleOutbox: SettleOutbox = (settlement, outcome) => {
    settlement.span?.end("rejectedFor" in outcome ? outcome.rejectedFor : undefined);
    if (settlement.resetsAtRelease !== this.#resets) return;
    const { source, seq } = settlement;
    if ("rejectedFor" in outcome) {
      this.#partitions.egressRejected(source, seq, outcome.rejectedFor, this.#clock());
      this.#observer.egressSettled(settlement.egress, "rejected");
    } else if (this.#partitions.egressDelivered(source, seq)) {
      if (outcome.published !== undefined) this.#published.push(outcome.published);
      this.#observer.egressSettled(settlement.egress, "delivered");
    }
    this.#wakeBudgetWaiters();
    this.#scheduleCommit();
  };

  #release(effect: ReleasedEffect): void {
    switch (effect.kind) {
      case "egress": {
        const connector = this.#egress.get(effect.entry.egress);
        if (connector === undefined) {
          throw new Error(`egress ${effect.entry.egress} has no connector, but the catalog declared it`);
        }
        let transaction = this.#partitions.transaction;
        if (connector.rowsInSourcePartition === true) {
          const partition = this.#partitions.partitionOf(effect.entry.source);
          if (!this.#partitions.owns(partition)) return;
          transaction = this.#partitions.rowsOf(partition);
        }
        const span = this.#tracer?.start(`egress ${effect.entry.egress}`, "producer", effect.entry.trace, {
          "eddy.egress": effect.entry.egress,
          "eddy.source": formatAddress(effect.entry.source),
        });
        const settlement = new OutboxSettlement(
          this.#settleOutbox,
          effect.entry.egress,
          effect.entry.source,
          effect.entry.seq,
          this.#resets,
          span,
        );
        connector.deliver(effect.entry, transaction, settlement);
        return;
      }
      case "dead-letter":
        this.#observer.deadLettered(effect.letter.target.typename);
        this.#options.onDeadLetter?.(effect.letter, this.#partitions.deadLetterId(effect.letter));
        return;
      case "reply": {
        const waiters = this.#replyWaiters.get(effect.requestId);
        this.#replyWaiters.delete(effect.requestId);
        for (const waiter of waiters ?? []) waiter.settle({ state: "answered", value: effect.value });
        return;
      }
      case "stop":
        this.#options.onStop?.(effect.reason);
        return;
    }
  }

  /** Blocks or releases the sources of `target`; those waiting resume in the order they came. */
  #backpressure(target: Address, blocked: boolean): void {
    const key = addressKey(target);
    if (blocked) {
      if (!this.#blocked.has(key)) this.#blocked.set(key, []);
      return;
    }
    const waiting = this.#blocked.get(key) ?? [];
    this.#blocked.delete(key);
    for (const resume of waiting) resume();
  }

  #invoke(effect: InvokeEffect, incarnation: number): void {
    if (this.#stopping) return; // re-sent after the restart
    this.#invocationsInFlight++;
    // A batch re-sent after its call budget ran out (retry-forever policy) waits first: 1 s doubling up to a minute.
    if (effect.attempt > 0) {
      this.#observer.resent(effect.target.typename);
      this.#scheduler.after(Math.min(1000 * 2 ** (effect.attempt - 1), 60_000), () => this.#send(effect, incarnation));
    } else this.#send(effect, incarnation);
  }

  /**
   * Hands a batch to the invoker; its outcome comes back to #settle with the incarnation of
   * the core that made it. Plain callbacks: this runs once per batch.
   */
  #send(effect: InvokeEffect, incarnation: number): void {
    if (this.#stopping) {
      this.#invocationsInFlight--;
      return;
    }
    let pending: InvokeOutcome | Promise<InvokeOutcome>;
    const sentMs = this.#scheduler.monotonicMs();
    const span = this.#tracer === undefined ? undefined : this.#invocationSpan(this.#tracer, effect);
    try {
      pending = this.#invoker.invoke(effect.target, effect.request, span?.traceparent);
    } catch (error) {
      this.#invokerBug(effect, error);
      return;
    }
    if (pending instanceof Promise) {
      pending.then(
        (outcome) => this.#settle(effect, incarnation, outcome, sentMs, span),
        (error: unknown) => this.#invokerBug(effect, error),
      );
      return;
    }
    // Not applied here: this runs inside the partitions' routing, which must not be re-entered.
    if (this.#answered.length === 0) queueMicrotask(() => this.#settleAnswered());
    this.#answered.push({ effect, incarnation, outcome: pending, sentMs, span });
  }

  /** The span of one call: it continues the trace of the batch's first message and links the others. */
  #invocationSpan(tracer: Tracer, effect: InvokeEffect): TraceSpan {
    const traces = effect.traces;
    const attributes = {
      "eddy.function_type": effect.target.typename,
      "eddy.address": formatAddress(effect.target),
      "eddy.batch.messages": effect.request.invocation?.invocations.length ?? 0,
      ...(effect.attempt > 0 ? { "eddy.attempt": effect.attempt } : {}),
    };
    // The core hands at most BATCH_TRACES_MAX contexts: the first, and the ones to link.
    const links = traces !== undefined && traces.length > 1 ? traces.slice(1) : undefined;
    return tracer.start(`invoke ${effect.target.typename}`, "client", traces?.[0], attributes, links);
  }

  #settleAnswered(): void {
    const answered = this.#answered;
    this.#answered = [];
    for (const { effect, incarnation, outcome, sentMs, span } of answered)
      this.#settle(effect, incarnation, outcome, sentMs, span);
  }

  #settle(
    effect: InvokeEffect,
    incarnation: number,
    outcome: InvokeOutcome,
    sentMs: number,
    span: TraceSpan | undefined,
  ): void {
    this.#invocationsInFlight--;
    span?.end(outcome.ok ? undefined : outcome.reason);
    if (this.#stopping) return;
    // A state handshake (the function asked for states it lacked) handled none of the batch's messages.
    const handled = outcome.ok && outcome.response.invocationResult !== null;
    this.#observer.invoked(
      effect.target.typename,
      handled ? (effect.request.invocation?.invocations.length ?? 0) : 0,
      (this.#scheduler.monotonicMs() - sentMs) / 1000,
      outcome.ok ? "ok" : "failed",
      outcome.ok ? undefined : outcome.reason,
    );
    const now = this.#clock();
    if (outcome.ok) {
      this.#partitions.complete(effect.target, effect.batchId, outcome.response, now, incarnation, span?.traceparent);
      // The commit that makes the reply durable, in the call's trace: ended by that commit's ack.
      if (span !== undefined && this.#tracer !== undefined) {
        const commit = this.#tracer.start("commit", "internal", span.traceparent);
        this.#acks.push((refused) => commit.end(refused?.message));
      }
    } else {
      this.#options.onInvokeFailure?.(effect.target, outcome.reason);
      this.#partitions.fail(effect.target, effect.batchId, outcome.reason, now, incarnation);
    }
    this.#wakeBudgetWaiters();
    this.#scheduleCommit();
  }

  /** An invoker must return failures as values; a throw is a bug, reported where it happened. */
  #invokerBug(effect: InvokeEffect, error: unknown): void {
    this.#invocationsInFlight--;
    const stack = error instanceof Error ? error.stack : String(error);
    this.#options.onStop?.(`invoker bug while calling ${formatAddress(effect.target)}: ${stack}`);
  }

  /**
   * The clock jumped (a test clock moved forward): delayed messages now due are sent, and the
   * wake-up for the next one is set again from the new time.
   */
  clockMoved(): void {
    if (this.#stopping) return;
    this.#timer?.();
    this.#timer = undefined;
    this.#timerAtMs = undefined;
    void this.#fireDueTimers();
  }

  /**
   * Fires the due delayed messages a step of at most TIMER_STEP_MAX at a time. A step is
   * admitted like a source's messages (it waits while the pending writes or the memory budget
   * are at their limit), and the next waits until the last is durable: after downtime, a
   * million messages due at once come in as a stream, not as one commit.
   */
  async #fireDueTimers(): Promise<void> {
    if (this.#firingTimers) return;
    this.#firingTimers = true;
    try {
      for (;;) {
        const step = await this.#admit([], 0, undefined, () =>
          this.#partitions.fireTimers(this.#clock(), TIMER_STEP_MAX),
        );
        if (step === "stopping" || step === "overloaded" || this.#stopping) return;
        if (step.entered < TIMER_STEP_MAX) break;
        const made = await this.#durableSoon().then(
          () => true,
          () => false,
        );
        if (this.#stopping) return;
        // A refused commit undid the step: the timers are due again, and the wake-up set below fires them.
        if (!made) break;
      }
    } finally {
      this.#firingTimers = false;
    }
    this.#scheduleCommit();
    this.#armTimer();
  }

  /** Wakes up for the earliest delayed message. */
  #armTimer(): void {
    const next = this.#partitions.nextTimerAtMs;
    // While steps are firing, the last one arms the timer when it is done.
    if (next === undefined || next === this.#timerAtMs || this.#stopping || this.#firingTimers) return;
    this.#timer?.();
    this.#timerAtMs = next;
    // A wake-up beyond what the scheduler can hold comes early and finds nothing due: it is set again.
    this.#timer = this.#scheduler.after(next - this.#clock(), () => {
      this.#timer = undefined;
      this.#timerAtMs = undefined;
      void this.#fireDueTimers();
    });
  }
}
