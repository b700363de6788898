// One simulated schedule of partition threads (src/threads/): N threads, each the real
// PartitionSet over the partitions p with p mod N its index, committing through the real
// StoreHost to one durable in-memory store, all driven by one seeded Random. The schedule
// picks every step: a thread takes a commit, a port delivers a message (in order per port,
// either way), the store finishes the host's write (the durable point), a function answers
// (late, twice, or not at all), the source sends or re-sends a command, time passes, or the
// process crashes. A crash drops everything that is not in the store: every thread, every
// message on a port, the host's queue and the write it had started; the restart builds a new
// host and N' threads (N' from 1 to 4, often not N); each thread recovers its partitions and
// delivers their waiting inbox entries before it takes anything else (PartitionThreads.start).
//
// What a partition thread does beyond its PartitionSet is done here as partition-thread.ts,
// engine.ts and thread-store.ts do it: one commit in flight per thread; a commit with no writes
// and no messages is done at once; an ingress is acknowledged when the commit after its
// acceptance is confirmed; inbox entries below the partition's position are skipped
// (Engine.admitFromInbox). Not simulated: the sealed/released view of thread-store.ts (a
// thread reads the shared store, which the host's write updates at its durable point), the
// engine's admission waits, and pauses.
//
// Invariants, checked as it runs: no instance counts more than the commands handed out can
// produce, no egress record twice, a request's answer never changes, an acknowledged command
// (request-reply) is never taken again, the host gives a partition's inbox entries offsets that only grow,
// posts them to the partition's owner only once they are durable, and a thread is handed
// each partition's entries without a gap. At the end, once quiet: every instance at its
// count, every egress record once, every request answered, no inbox row left in the store
// and every inbox position just past the last offset given, no work left admitted; and a
// restart over the final store with another thread count finds nothing to do.
import type { FromFunction, Init, ToFunction } from "@eddy/protocol";
import { decodeInboxRecord, encodeInboxRecord } from "../../src/cluster/inbox-record.ts";
import { type Address, addressKey, type FunctionTypename, replyAddress } from "../../src/core/address.ts";
import type { Key, KeyValue, ScanOptions } from "../../src/core/kv.ts";
import { MemoryKV } from "../../src/core/kv.ts";
import { applyWrites, type PendingWrite } from "../../src/core/overlay-kv.ts";
import { type Catalog, type FunctionSettings, invocationCost, outboxCost } from "../../src/core/partition-core.ts";
import { PartitionSet, type ReleasedEffect } from "../../src/core/partition-set.ts";
import { partitionOf } from "../../src/core/partitioning.ts";
import { makeRequestId } from "../../src/core/records.ts";
import { getRow, inPartition, scanRows, tables } from "../../src/core/schema.ts";
import type { DurableStore } from "../../src/engine/engine.ts";
import { encodeWritesFrame } from "../../src/store/writes-frame.ts";
import { StoreHost, type ThreadPort } from "../../src/threads/store-host.ts";
import { type InboxEntry, ownBytes, type ToHost, type ToThread } from "../../src/threads/thread-protocol.ts";
import {
  commandsValue,
  EGRESS_ID,
  FUNCTION_TYPE,
  generateWorkload,
  interpret,
  readCount,
  readSink,
} from "./commands.ts";
import { Random } from "./random.ts";

export interface ThreadScheduleOptions {
  readonly seed: number;
  readonly partitions: number;
  readonly instances: number;
  readonly commands: number;
  readonly maxDepth: number;
  readonly maxBatchCount: number;
  /** Threads at each start are drawn from 1 to this (at most 4). */
  readonly threadsMax: number;
  readonly crashProbability: number;
  /** Chaos steps; default 40 + 30 per command. */
  readonly steps?: number;
  /**
   * When a restarted thread delivers its waiting inbox entries: "after-recover" (the default)
   * once its partitions are recovered, as partition-thread.ts must; "before-recover" first,
   * as partition-thread.ts did before it started its engine first, which breaks: a delivery starts a batch and
   * recover() then finds the partition running, or the delivery writes over the partition's
   * durable in-flight batch (kept to show the simulation catches it).
   */
  readonly handOver?: "before-recover" | "after-recover";
  /** A failure's trace has every event from the start (for replaying one seed). */
  readonly verbose?: boolean;
}

export interface ThreadScheduleReport {
  readonly steps: number;
  readonly crashes: number;
  /** Restarts whose thread count differs from the run before. */
  readonly threadCountChanges: number;
  /** Store writes the host made (each one or more threads' commits). */
  readonly storeWrites: number;
  /** Store writes that held commits of more than one thread. */
  readonly sharedWrites: number;
  /** Messages a commit sent to a partition of another thread. */
  readonly crossThreadMessages: number;
  /**
   * Inbox entries delivered, and those skipped as below their partition's position (none so
   * far: the host hands over only rows at or past the position, and a crash drops what it posted).
   */
  readonly inboxDelivered: number;
  readonly inboxSkipped: number;
  /** Inbox entries handed to a thread at a restart (StoreHost.waiting). */
  readonly handedOver: number;
  /** Commands a thread took for a partition of another thread (forwarded through the inbox). */
  readonly forwardedCommands: number;
  readonly staleReplies: number;
  readonly egress: number;
}

const THREADS_MAX = 4;
const QUIESCE_ROUNDS_MAX = 2_000;
const TRACE_LINES_MAX = 80;

const settings: FunctionSettings = { maxBatchCount: 3, maxBatchBytes: 4096, backlogLimit: 0, failurePolicy: "retry" };
const decoder = new TextDecoder();

/** The durable store: a MemoryKV, and a commit that lands only when the schedule says the write is done. */
class SimDurableStore implements DurableStore {
  readonly #kv: MemoryKV;
  /** The host's write in progress (the host writes one at a time). */
  writing: { readonly writes: readonly PendingWrite[]; readonly done: () => void } | undefined;

  constructor(kv: MemoryKV) {
    this.#kv = kv;
  }

  get(key: Key): unknown {
    return this.#kv.get(key);
  }

  scan(prefix: Key, options?: ScanOptions): Iterable<KeyValue> {
    return this.#kv.scan(prefix, options);
  }

  put(): void {
    throw new Error("SimDurableStore: the host writes through commit()");
  }

  insert(): void {
    throw new Error("SimDurableStore: the host writes through commit()");
  }

  delete(): void {
    throw new Error("SimDurableStore: the host writes through commit()");
  }

  commit(writes: readonly PendingWrite[]): Promise<void> {
    if (this.writing !== undefined) throw new Error("the store host began a write while one was in progress");
    return new Promise((done) => {
      this.writing = { writes, done };
    });
  }

  close(): Promise<void> {
    return Promise.resolve();
  }
}

/** A commit a thread sent and the host has not confirmed: what it releases once it has. */
interface InFlightCommit {
  readonly id: number;
  readonly effects: readonly ReleasedEffect[];
  /** Source positions acknowledged by this commit. */
  readonly acks: readonly number[];
}

interface SimThread {
  readonly index: number;
  readonly set: PartitionSet;
  /** Posted by the thread, not yet heard by the host; in order. */
  readonly toHost: ToHost[];
  /** Posted by the host, not yet heard by the thread; in order. */
  readonly fromHost: ToThread[];
  hostListener: ((message: ToHost) => void) | undefined;
  inFlight: InFlightCommit | undefined;
  /** Source positions accepted since the last commit was taken. */
  pendingAcks: number[];
  nextCommitId: number;
}

interface InflightRequest {
  readonly thread: SimThread;
  readonly target: Address;
  readonly batchId: number;
  readonly incarnation: number;
  readonly request: Init<ToFunction>;
}

/** Where a schedule is, for a failure's message. */
interface Progress {
  step: number;
  nowMs: number;
  readonly trace: string[];
}

/** Runs one schedule; any failure (an invariant, or an error the runtime threw) names the seed and the step. */
export async function runThreadSchedule(options: ThreadScheduleOptions): Promise<ThreadScheduleReport> {
  const progress: Progress = { step: 0, nowMs: 0, trace: [] };
  try {
    return await schedule(options, progress);
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    if (message.startsWith("thread seed ")) throw error;
    throw new Error(
      `thread seed ${options.seed}, step ${progress.step}, ${progress.nowMs} ms: ${message}\n  ${progress.trace.join("\n  ")}`,
      { cause: error },
    );
  }
}

async function schedule(options: ThreadScheduleOptions, progress: Progress): Promise<ThreadScheduleReport> {
  if (options.threadsMax < 1 || options.threadsMax > THREADS_MAX) {
    throw new Error(`threadsMax ${options.threadsMax}: give 1 to ${THREADS_MAX}`);
  }
  const random = new Random(options.seed);
  const workload = generateWorkload(random, options.instances, options.commands, options.maxDepth);
  /** Commands sent without a reply to any thread, as from an ingress bound elsewhere: forwarded through the inbox. */
  const oneWay = workload.commands.map(() => random.chance(0.3));
  const functionSettings = { ...settings, maxBatchCount: options.maxBatchCount };
  const catalog: Catalog = {
    functionSettings: (typename: FunctionTypename) => (typename === FUNCTION_TYPE ? functionSettings : undefined),
    hasEgress: (egress: string) => egress === EGRESS_ID,
  };
  const partitionCount = options.partitions;
  const durable = new MemoryKV();

  let steps = 0;
  let nowMs = 0;
  const trace = progress.trace;
  const note = (line: string) => {
    progress.step = steps;
    progress.nowMs = nowMs;
    trace.push(`${steps} @${nowMs}: ${line}`);
    if (options.verbose !== true && trace.length > TRACE_LINES_MAX) trace.shift();
  };
  function fail(message: string): never {
    throw new Error(`thread seed ${options.seed}, step ${steps}, ${nowMs} ms: ${message}\n  ${trace.join("\n  ")}`);
  }

  const stats = {
    crashes: 0,
    threadCountChanges: 0,
    storeWrites: 0,
    sharedWrites: 0,
    crossThreadMessages: 0,
    inboxDelivered: 0,
    inboxSkipped: 0,
    handedOver: 0,
    forwardedCommands: 0,
    staleReplies: 0,
  };

  // The source: commands 0 … next-1 handed out; a command is outstanding until acknowledged.
  let next = 0;
  const acked = new Set<number>();
  const outstanding = new Set<number>();
  /** Outstanding commands to send again after a crash, ascending. */
  let resendQueue: number[] = [];
  /** The request ids a command's acceptances were given (a duplicate must come back with one of them). */
  const requestIds = workload.commands.map(() => new Set<string>());
  /** Each request's answer, as released after its commit: it must never change. */
  const answers = new Map<string, string>();
  /** Per partition, the last inbox offset the host posted (posted means durable); -1 for none. */
  const lastOffset = new Array<number>(partitionCount).fill(-1);
  /** Keys of the sink's records: never reused, so a record published twice shows as two rows. */
  let sinkSeq = 0;
  const egressSeen = new Set<string>();

  // The process: a host, its store, the threads and the function calls in flight.
  let store: SimDurableStore;
  let host: StoreHost;
  let hostFailure: Error | undefined;
  /** Threads whose commits the host heard while it was writing: its next write gathers them. */
  let gathering = new Set<number>();
  let threads: SimThread[] = [];
  let network: InflightRequest[] = [];
  /** Requests already answered once, for replaying stale replies (same process only). */
  let answered: InflightRequest[] = [];

  const addressOf = (instance: number): Address => ({
    typename: FUNCTION_TYPE as FunctionTypename,
    id: String(instance),
  });
  const partitionOfAddress = (address: Address) => partitionOf(addressKey(address), partitionCount);
  const ownerOf = (partition: number) => threads[partition % threads.length] as SimThread;

  function start(count: number): void {
    store = new SimDurableStore(durable);
    hostFailure = undefined;
    gathering = new Set();
    host = new StoreHost(
      store,
      partitionCount,
      (partition) => partition % count,
      (error) => {
        hostFailure = error;
      },
    );
    threads = [];
    for (let index = 0; index < count; index++) {
      const owned: number[] = [];
      for (let partition = index; partition < partitionCount; partition += count) owned.push(partition);
      const thread: SimThread = {
        index,
        set: new PartitionSet({
          store: durable,
          catalog,
          partitionCount,
          owned,
          listeners: {
            invoke: (effect, incarnation) =>
              network.push({
                thread,
                target: effect.target,
                batchId: effect.batchId,
                incarnation,
                request: effect.request,
              }),
          },
          overlay: { checkInserts: true },
        }),
        toHost: [],
        fromHost: [],
        hostListener: undefined,
        inFlight: undefined,
        pendingAcks: [],
        nextCommitId: 1,
      };
      const port: ThreadPort = {
        postMessage: (message: ToThread) => posted(thread, message),
        on: (_event: "message", listener: (message: ToHost) => void) => {
          thread.hostListener = listener;
          return port;
        },
      };
      host.attach(index, port);
      threads.push(thread);
    }
    // As PartitionThreads.start: every partition's waiting entries are read before a thread
    // runs, and each thread delivers them before it takes anything else.
    const waiting = threads.map((thread) =>
      thread.set.owned.map((partition) => ({ partition, entries: host.waiting(partition) })),
    );
    const recoverFirst = options.handOver !== "before-recover";
    threads.forEach((thread, index) => {
      if (recoverFirst) thread.set.recover(nowMs);
      for (const { partition, entries } of waiting[index] ?? []) {
        if (entries.length > 0) note(`thread ${index} handed ${entries.length} waiting of partition ${partition}`);
        stats.handedOver += entries.length;
        admit(thread, partition, entries);
      }
      if (!recoverFirst) thread.set.recover(nowMs);
    });
  }

  /** The host posted `message` to `thread`: checked, then on the port. */
  function posted(thread: SimThread, message: ToThread): void {
    if (message.kind === "inbox") {
      const { partition, entries } = message;
      if (partition % threads.length !== thread.index) {
        fail(`the host posted partition ${partition}'s inbox to thread ${thread.index} of ${threads.length}`);
      }
      for (const { offset, record } of entries) {
        if (offset <= (lastOffset[partition] as number)) {
          fail(`the host gave partition ${partition} inbox offset ${offset} after offset ${lastOffset[partition]}`);
        }
        lastOffset[partition] = offset;
        const stored = getRow(durable, inPartition(partition, tables.threadInbox.key(offset)));
        if (stored === undefined || !sameBytes(stored, record)) {
          fail(`the host posted partition ${partition}'s inbox offset ${offset}, which the store does not hold`);
        }
      }
      note(`host → thread ${thread.index}: inbox ${partition} @${entries.map((entry) => entry.offset).join(",")}`);
    } else
      note(`host → thread ${thread.index}: ${message.kind}${message.kind === "committed" ? ` ${message.id}` : ""}`);
    thread.fromHost.push(message);
  }

  /** Inbox entries of `partition` reach its thread: delivered as Engine.admitFromInbox does. */
  function admit(thread: SimThread, partition: number, entries: readonly InboxEntry[]): void {
    if (!thread.set.owns(partition)) fail(`thread ${thread.index} got inbox entries of partition ${partition}`);
    for (const { offset, record } of entries) {
      const decoded = decodeInboxRecord(record);
      if (!decoded.ok) fail(`partition ${partition}, inbox offset ${offset}: ${decoded.message}`);
      const position = thread.set.inboxPosition(partition);
      // Delivered before (it came again after a restart): its effects and the position committed together.
      if (offset < position) {
        stats.inboxSkipped++;
        continue;
      }
      // Offsets are given one after another and handed over from the position on: a gap is a lost message.
      if (offset > position)
        fail(`partition ${partition} is at inbox position ${position}, then gets offset ${offset}`);
      thread.set.deliverFromInbox(partition, decoded.value, offset, nowMs);
      stats.inboxDelivered++;
    }
  }

  function takeCommit(thread: SimThread): boolean {
    if (thread.inFlight !== undefined) return false;
    const { writes, effects, outbound } = thread.set.takeCommit();
    const acks = thread.pendingAcks;
    thread.pendingAcks = [];
    if (writes.length === 0 && outbound.length === 0) {
      // As the engine (nothing at all: no commit) and ThreadStore (no writes: done at once).
      if (effects.length === 0 && acks.length === 0) return false;
      thread.inFlight = { id: 0, effects, acks };
      committed(thread);
      return true;
    }
    const id = thread.nextCommitId++;
    // As ThreadStore.commitTarget: the writes as a frame, each message as its inbox record.
    thread.toHost.push({
      kind: "commit",
      id,
      frame: ownBytes(encodeWritesFrame(writes)),
      outbound: outbound.map((message) => ({
        partition: message.partition,
        record: ownBytes(encodeInboxRecord(message)),
      })),
    });
    for (const message of outbound) {
      if (thread.set.owns(message.partition))
        fail(`thread ${thread.index} sent partition ${message.partition}, its own, through the inbox`);
    }
    stats.crossThreadMessages += outbound.length;
    thread.inFlight = { id, effects, acks };
    note(
      `thread ${thread.index} commit ${id}: ${writes.length} writes, ${outbound.length} out, acks ${acks.join(",")}`,
    );
    return true;
  }

  function committed(thread: SimThread): void {
    const commit = thread.inFlight as InFlightCommit;
    thread.inFlight = undefined;
    thread.set.committed();
    for (const position of commit.acks) {
      acked.add(position);
      outstanding.delete(position);
    }
    if (thread.set.pendingWrites === 0) checkAdmittedBytes(thread);
    for (const effect of commit.effects) release(thread, effect);
  }

  function release(thread: SimThread, effect: ReleasedEffect): void {
    switch (effect.kind) {
      case "egress":
        // A transactional sink: the record and the outbox acknowledgement commit together.
        thread.set.transaction.put(["sink", sinkSeq++], decoder.decode(effect.entry.value.value));
        thread.set.egressDelivered(effect.entry.source, effect.entry.seq);
        break;
      case "dead-letter":
        fail(`unexpected dead letter: ${effect.letter.reason}`);
        break;
      case "reply": {
        const value = decoder.decode(effect.value.value);
        const earlier = answers.get(effect.requestId);
        if (earlier !== undefined && earlier !== value)
          fail(`request ${effect.requestId} answered ${earlier}, then ${value}`);
        answers.set(effect.requestId, value);
        const stored = thread.set.committedRequest(effect.requestId)?.reply;
        if (stored === undefined || decoder.decode(stored.value) !== value) {
          fail(`request ${effect.requestId}: the released answer ${value} is not the durable one`);
        }
        break;
      }
      case "stop":
        fail(`unexpected stop: ${effect.reason}`);
        break;
    }
  }

  /** A thread heard a message from the host. */
  function receive(thread: SimThread): void {
    const message = thread.fromHost.shift() as ToThread;
    switch (message.kind) {
      case "committed":
        if (thread.inFlight?.id !== message.id) {
          fail(`thread ${thread.index} was told commit ${message.id} is durable; in flight: ${thread.inFlight?.id}`);
        }
        committed(thread);
        break;
      case "inbox":
        admit(thread, message.partition, message.entries);
        break;
      default:
        fail(`the host posted ${message.kind} to thread ${thread.index}`);
    }
  }

  /** The host catches what a write throws, this simulation's checks in its posts included: rethrown here. */
  function checkHost(): void {
    if (hostFailure === undefined) return;
    if (hostFailure.message.startsWith("thread seed ")) throw hostFailure;
    fail(`the store host failed: ${hostFailure.message}`);
  }

  /** The host heard a thread's message. */
  function hear(thread: SimThread): void {
    const message = thread.toHost.shift() as ToHost;
    if (store.writing !== undefined) gathering.add(thread.index);
    if (thread.hostListener === undefined) fail(`thread ${thread.index}'s port has no listener`);
    thread.hostListener?.(message);
    checkHost();
  }

  /** The store finishes the host's write: it is durable now, and the host answers. */
  async function finishWrite(): Promise<boolean> {
    const writing = store.writing;
    if (writing === undefined) return false;
    store.writing = undefined;
    applyWrites(durable, writing.writes);
    stats.storeWrites++;
    note(`store write of ${writing.writes.length} rows durable`);
    checkNeverOverCounted();
    checkSink();
    const before = stats.storeWrites;
    writing.done();
    // The host goes on in later microtasks: it posts, then starts the next write.
    await new Promise<void>((resume) => setImmediate(resume));
    checkHost();
    if (before !== stats.storeWrites) fail("a store write finished while the host was answering the last");
    if (store.writing !== undefined && gathering.size > 1) stats.sharedWrites++;
    gathering = new Set();
    return true;
  }

  function counts(): number[] {
    return Array.from({ length: options.instances }, (_, instance) => {
      const address = addressOf(instance);
      const stored = getRow(
        durable,
        inPartition(partitionOfAddress(address), tables.state.key(address.typename, address.id, "count")),
      );
      return stored === undefined ? 0 : readCount(stored.value);
    });
  }

  function checkNeverOverCounted(): void {
    const limit = workload.expectedAfter[next] as readonly number[];
    counts().forEach((count, instance) => {
      if (count > (limit[instance] ?? 0)) fail(`instance ${instance} over-counted: ${count} > ${limit[instance]}`);
    });
  }

  function checkSink(): void {
    const violation = readSink(durable, workload, egressSeen);
    if (violation !== undefined) fail(violation);
  }

  /** With nothing pending, a thread's count of admitted work equals what the store holds unfinished in its partitions. */
  function checkAdmittedBytes(thread: SimThread): void {
    let expected = 0;
    for (const partition of thread.set.owned) {
      for (const { value } of scanRows(durable, inPartition(partition, tables.inflight.all))) {
        for (const invocation of value.invocations) expected += invocationCost(invocation);
      }
      for (const { value } of scanRows(durable, inPartition(partition, tables.backlog.all))) {
        expected += invocationCost(value);
      }
      for (const { value } of scanRows(durable, inPartition(partition, tables.outbox.all)))
        expected += outboxCost(value);
    }
    if (thread.set.admittedBytes !== expected) {
      fail(`thread ${thread.index} counts ${thread.set.admittedBytes} admitted bytes, the store holds ${expected}`);
    }
  }

  /**
   * The source sends command `position` with its idempotency key. A request-reply goes to the
   * thread that runs its target, with a request id whose reply partition that thread runs (as
   * Engine.accept draws one); a one-way command goes to any thread.
   */
  function send(position: number): void {
    const command = workload.commands[position] as (typeof workload.commands)[number];
    const target = addressOf(command.target);
    const envelope = { target, argument: commandsValue(command.cmds) };
    const idempotencyKey = `command-${position}`;
    const owner = ownerOf(partitionOfAddress(target));
    if (oneWay[position] === true) {
      const thread = random.pick(threads);
      const accepted = thread.set.accept(envelope, { idempotencyKey }, nowMs);
      // No check that an acknowledged command is refused here: acknowledged through another thread, it may
      // still wait in the owner's inbox, where its key makes the later of the two copies change nothing.
      if (thread !== owner) stats.forwardedCommands++;
      thread.pendingAcks.push(position);
      note(`command ${position} (one way) to thread ${thread.index}${accepted.duplicate ? ", duplicate" : ""}`);
      return;
    }
    let requestId: string | undefined;
    for (let draw = 0; requestId === undefined; draw++) {
      const drawn = makeRequestId(0, `command-${position}-${draw}`);
      if (owner.set.ownsAddress(replyAddress(drawn))) requestId = drawn;
    }
    const accepted = owner.set.accept(envelope, { idempotencyKey, requestId }, nowMs);
    const ids = requestIds[position] as Set<string>;
    if (accepted.duplicate) {
      if (accepted.requestId === undefined || !ids.has(accepted.requestId)) {
        fail(`command ${position}, a duplicate, came back as request ${accepted.requestId}, not one it was given`);
      }
    } else {
      if (acked.has(position)) fail(`acknowledged command ${position} was taken again`);
      if (accepted.requestId !== requestId) fail(`command ${position} came back as request ${accepted.requestId}`);
      ids.add(requestId);
    }
    owner.pendingAcks.push(position);
    note(`command ${position} to thread ${owner.index}${accepted.duplicate ? ", duplicate" : ""}`);
  }

  /** The source sends its next command: one a crash left unacknowledged first. */
  function emit(): boolean {
    while (resendQueue.length > 0) {
      const position = resendQueue.shift() as number;
      if (acked.has(position)) continue;
      send(position);
      return true;
    }
    if (next >= workload.commands.length) return false;
    outstanding.add(next);
    next++;
    send(next - 1);
    return true;
  }

  function reply(index: number): void {
    const [request] = network.splice(index, 1) as [InflightRequest];
    const response: FromFunction = interpret(request.request);
    request.thread.set.complete(request.target, request.batchId, response, nowMs, request.incarnation);
    answered.push(request);
  }

  function crash(): void {
    stats.crashes++;
    const count = 1 + random.int(options.threadsMax);
    if (count !== threads.length) stats.threadCountChanges++;
    note(`crash; restart with ${count} threads`);
    // Everything not in the store dies with the process: threads, ports, the host's queue and write.
    network = [];
    answered = [];
    start(count);
    // The source sends again what was never acknowledged.
    resendQueue = [...outstanding].sort((a, b) => a - b);
  }

  function withWork<T>(items: readonly T[], has: (item: T) => boolean): T | undefined {
    const candidates = items.filter(has);
    return candidates.length === 0 ? undefined : random.pick(candidates);
  }

  start(1 + random.int(options.threadsMax));
  const chaosSteps = options.steps ?? 40 + options.commands * 30;
  for (; steps < chaosSteps; steps++) {
    progress.step = steps;
    progress.nowMs = nowMs;
    const roll = random.next();
    if (roll < options.crashProbability) crash();
    else if (roll < 0.13) emit();
    else if (roll < 0.28) {
      const thread = random.pick(threads);
      takeCommit(thread);
    } else if (roll < 0.4) {
      const thread = withWork(threads, (candidate) => candidate.toHost.length > 0);
      if (thread !== undefined) hear(thread);
    } else if (roll < 0.5) {
      await finishWrite();
    } else if (roll < 0.65) {
      const thread = withWork(threads, (candidate) => candidate.fromHost.length > 0);
      if (thread !== undefined) receive(thread);
    } else if (roll < 0.8) {
      if (network.length > 0) reply(random.int(network.length));
    } else if (roll < 0.84) {
      // A timeout: the call's budget ran out and the policy (retry) sends the batch again.
      if (network.length > 0) {
        const [lost] = network.splice(random.int(network.length), 1) as [InflightRequest];
        lost.thread.set.fail(lost.target, lost.batchId, "simulated timeout", nowMs, lost.incarnation);
      }
    } else if (roll < 0.87) {
      // A late duplicate reply to a request answered already: must change nothing.
      if (answered.length > 0) {
        const old = random.pick(answered);
        stats.staleReplies++;
        old.thread.set.complete(old.target, old.batchId, interpret(old.request), nowMs, old.incarnation);
      }
    } else if (roll < 0.9) {
      // A client whose acknowledgement got lost sends an acknowledged command again.
      if (acked.size > 0) send(random.pick([...acked]));
    } else if (roll < 0.96) {
      nowMs += random.int(25);
      for (const thread of threads) thread.set.fireTimers(nowMs);
    } else {
      for (const thread of threads) thread.set.fireTimers(nowMs);
    }
  }

  await quiesce();
  checkFinal();
  // The final store opens with another thread count and holds nothing to do.
  const count = 1 + ((threads.length + random.int(options.threadsMax)) % options.threadsMax);
  const handedBefore = stats.handedOver;
  note(`restart over the final store with ${count} threads`);
  network = [];
  start(count);
  if (stats.handedOver !== handedBefore) fail("a restart over the final store was handed inbox entries");
  if (network.length > 0) fail(`a restart over the final store sent ${network.length} batches`);
  await quiesce();
  checkFinal();

  return { steps, ...stats, egress: egressSeen.size };

  /** No more faults: runs until every command is acknowledged and nothing is left to do. */
  async function quiesce(): Promise<void> {
    for (let rounds = 0; ; rounds++) {
      if (rounds > QUIESCE_ROUNDS_MAX) fail("did not quiesce");
      while (emit()) {}
      let moved = true;
      for (let turns = 0; moved; turns++) {
        if (turns > QUIESCE_ROUNDS_MAX) fail("did not quiesce (messages keep moving)");
        moved = false;
        for (const thread of threads) {
          while (thread.toHost.length > 0) {
            hear(thread);
            moved = true;
          }
        }
        if (await finishWrite()) moved = true;
        for (const thread of threads) {
          while (thread.fromHost.length > 0) {
            receive(thread);
            moved = true;
          }
        }
        for (const thread of threads) if (takeCommit(thread)) moved = true;
        while (network.length > 0) {
          reply(0);
          moved = true;
        }
      }
      let timerAtMs: number | undefined;
      for (const thread of threads) {
        const at = thread.set.nextTimerAtMs;
        if (at !== undefined && (timerAtMs === undefined || at < timerAtMs)) timerAtMs = at;
      }
      if (timerAtMs !== undefined) {
        nowMs = Math.max(nowMs, timerAtMs);
        for (const thread of threads) thread.set.fireTimers(nowMs);
        continue;
      }
      const busy = threads.find(
        (thread) =>
          thread.inFlight !== undefined ||
          thread.toHost.length > 0 ||
          thread.fromHost.length > 0 ||
          thread.pendingAcks.length > 0 ||
          thread.set.pendingWrites > 0 ||
          thread.set.heldEffects > 0 ||
          thread.set.outboundMessages > 0 ||
          thread.set.activeAddresses > 0,
      );
      if (busy === undefined && store.writing === undefined && host.idle && outstanding.size === 0) break;
    }
  }

  /** Request-reply command `position` has its answer in the store, under the request id its durable key names. */
  function checkAnswered(instance: number, position: number): void {
    const target = addressOf(instance);
    const seen = getRow(
      durable,
      inPartition(partitionOfAddress(target), tables.idem.key(addressKey(target), `command-${position}`)),
    );
    const requestId = seen?.requestId;
    if (requestId === undefined) fail(`command ${position} has no durable request id`);
    else {
      if (!(requestIds[position] as Set<string>).has(requestId)) {
        fail(`command ${position}: request ${requestId} is none it was given`);
      }
      const stored = ownerOf(partitionOfAddress(replyAddress(requestId))).set.committedRequest(requestId)?.reply;
      const released = answers.get(requestId);
      if (stored === undefined) fail(`request ${requestId} was never answered`);
      // A crash between the durable write and the release loses only the release; the answer stays.
      else if (released !== undefined && decoder.decode(stored.value) !== released) {
        fail(`request ${requestId}: the durable answer is not the one released`);
      }
    }
  }

  function checkFinal(): void {
    for (const thread of threads) {
      if (thread.set.admittedBytes !== 0) {
        fail(`thread ${thread.index}: ${thread.set.admittedBytes} admitted bytes left after everything finished`);
      }
    }
    const finalCounts = counts();
    const expected = workload.expectedAfter[workload.commands.length] as readonly number[];
    finalCounts.forEach((count, instance) => {
      if (count !== expected[instance]) fail(`instance ${instance} ends at ${count}, expected ${expected[instance]}`);
    });
    checkSink();
    for (const id of workload.expectedEgress) if (!egressSeen.has(id)) fail(`egress ${id} was never published`);
    workload.commands.forEach((command, position) => {
      if (oneWay[position] !== true) checkAnswered(command.target, position);
    });
    for (let partition = 0; partition < partitionCount; partition++) {
      const position = getRow(durable, inPartition(partition, tables.inboxPosition.key())) ?? 0;
      for (const { key } of scanRows(durable, inPartition(partition, tables.threadInbox.all))) {
        const offset = key[key.length - 1] as number;
        if (offset >= position)
          fail(`partition ${partition}'s inbox offset ${offset} was never delivered (position ${position})`);
        fail(`partition ${partition}'s inbox row ${offset} is left behind its position ${position}`);
      }
      if (position !== (lastOffset[partition] as number) + 1) {
        fail(
          `partition ${partition} ends at inbox position ${position}; the last offset given was ${lastOffset[partition]}`,
        );
      }
    }
  }
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let index = 0; index < a.length; index++) if (a[index] !== b[index]) return false;
  return true;
}
