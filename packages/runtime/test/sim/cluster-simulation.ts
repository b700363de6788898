// One simulated schedule of a cluster: several workers, each running the real PartitionSet
// for the partitions the group assigned it, over one committed store (the stand-in for the
// changelog) and one inbox per partition (the stand-in for the inbox topic). A commit is
// refused as Kafka refuses a transaction whose TxnOffsetCommit names a stale generation:
// when it wrote any partition and its worker is not a member of the current generation.
// Commits are also refused at random (a broker aborting a transaction), and then the worker
// resets in place. Faults: crashes (kill -9: memory lost), zombies (a worker paused past the
// session timeout, resumed after its partitions moved), graceful and abrupt rebalances, stale
// and duplicate replies, a source that resends what it was not told is durable.
//
// Invariants, checked as it runs: no instance ever counts more than the commands handed out
// can produce; a commit only ever writes partitions its worker owns in the current
// generation, and no partition is written by two workers in one generation; the admitted
// bytes of a worker equal what its partitions hold as unfinished. At the end: every instance
// reaches its count, every egress record is published once, cancelled messages never are.
import type { FromFunction, Init, ToFunction } from "@eddy/protocol";
import { type Address, addressKey, type FunctionTypename } from "../../src/core/address.ts";
import { MemoryKV } from "../../src/core/kv.ts";
import { applyWrites } from "../../src/core/overlay-kv.ts";
import { type Catalog, type FunctionSettings, invocationCost, outboxCost } from "../../src/core/partition-core.ts";
import { type OutboundMessage, PartitionSet } from "../../src/core/partition-set.ts";
import { partitionOf } from "../../src/core/partitioning.ts";
import { getRow, inPartition, partitionKeyPrefix, scanRows, tables } from "../../src/core/schema.ts";
import { commandsValue, EGRESS_ID, FUNCTION_TYPE, generateWorkload, interpret, readCount } from "./commands.ts";
import { Random } from "./random.ts";

export interface ClusterScheduleOptions {
  readonly seed: number;
  readonly workers: number;
  readonly partitions: number;
  readonly instances: number;
  readonly commands: number;
  readonly maxDepth: number;
  readonly maxBatchCount: number;
  /** Per step: a worker crashes, pauses (a zombie), or the group rebalances. */
  readonly faultProbability: number;
  /** Per commit: the broker aborts it. */
  readonly refusalProbability: number;
}

export interface ClusterScheduleReport {
  readonly steps: number;
  readonly commits: number;
  readonly refused: number;
  /** Commits refused because the worker was a zombie of an older generation. */
  readonly fenced: number;
  readonly rebalances: number;
  readonly crashes: number;
  readonly moves: number;
  readonly inboxDeliveries: number;
  readonly staleReplies: number;
  readonly egress: number;
}

interface InflightRequest {
  readonly target: Address;
  readonly batchId: number;
  readonly incarnation: number;
  readonly request: Init<ToFunction>;
}

interface SimWorker {
  readonly index: number;
  /**
   * Its own copy of the partitions it runs (a worker's local store): its commits go there and
   * to the shared store, and a partition it acquires is copied in from the shared store, as
   * a real worker restores from the changelog. A zombie so reads its own stale rows, never
   * those its partitions' new owners write.
   */
  readonly local: MemoryKV;
  /** undefined while crashed. */
  set: PartitionSet | undefined;
  /** The generation its partitions were assigned in. */
  generation: number;
  /** Whether the group counts it as a member of the current generation. */
  member: boolean;
  /** A zombie: it takes no steps, and the group expelled it. */
  paused: boolean;
  network: InflightRequest[];
  answered: InflightRequest[];
  /** Source positions taken since its last commit: acknowledged when that commit is made. */
  acks: number[];
  /** Those of `acks` its own partitions took (the others went to an inbox). */
  ownerAcks: number[];
}

const settings: FunctionSettings = { maxBatchCount: 3, maxBatchBytes: 4096, backlogLimit: 0, failurePolicy: "retry" };

export function runClusterSchedule(options: ClusterScheduleOptions): ClusterScheduleReport {
  const random = new Random(options.seed);
  const workload = generateWorkload(random, options.instances, options.commands, options.maxDepth);
  const functionSettings = { ...settings, maxBatchCount: options.maxBatchCount };
  const catalog: Catalog = {
    functionSettings: (typename: FunctionTypename) => (typename === FUNCTION_TYPE ? functionSettings : undefined),
    hasEgress: (egress: string) => egress === EGRESS_ID,
  };
  const durable = new MemoryKV();
  const inboxes: Omit<OutboundMessage, "partition">[][] = Array.from({ length: options.partitions }, () => []);
  /** lastSent[worker][partition]: the last inbox index the worker's commits appended. */
  const lastSent: number[][] = Array.from({ length: options.workers }, () =>
    new Array<number>(options.partitions).fill(-1),
  );
  let generation = 0;
  /** The current generation's owner of each partition (a worker index). */
  let owners: (number | undefined)[] = new Array(options.partitions).fill(undefined);
  /** "generation:partition" → the worker that committed writes of it in that generation. */
  const writers = new Map<string, number>();
  let nowMs = 0;
  let steps = 0;
  let commits = 0;
  let refused = 0;
  let fenced = 0;
  let rebalances = 0;
  let crashes = 0;
  let moves = 0;
  let inboxDeliveries = 0;
  let staleReplies = 0;
  let sinkSeq = 0;
  const unsent: number[] = workload.commands.map((_, position) => position);
  const acked = new Set<number>();
  /** Acknowledged after the owner itself took the command (its key is in the owner's store). */
  const ackedByOwner = new Set<number>();
  let sentMax = 0;

  const fail = (message: string): never => {
    throw new Error(`cluster seed ${options.seed}, step ${steps}: ${message}`);
  };

  function newSet(worker: SimWorker, owned: readonly number[]): PartitionSet {
    return new PartitionSet({
      store: worker.local,
      catalog,
      partitionCount: options.partitions,
      listeners: {
        invoke: (effect, incarnation) =>
          worker.network.push({ target: effect.target, batchId: effect.batchId, incarnation, request: effect.request }),
      },
      overlay: { checkInserts: true },
      owned,
    });
  }

  const workers: SimWorker[] = Array.from({ length: options.workers }, (_, index) => ({
    index,
    local: new MemoryKV(),
    set: undefined,
    generation: -1,
    member: false,
    paused: false,
    network: [],
    answered: [],
    acks: [],
    ownerAcks: [],
  }));
  for (const worker of workers) worker.set = newSet(worker, []);

  /** Gives back to the source what a worker took but never committed. */
  function unack(worker: SimWorker): void {
    for (const position of worker.acks) if (!acked.has(position)) unsent.push(position);
    unsent.sort((a, b) => a - b);
    worker.acks = [];
    worker.ownerAcks = [];
  }

  /** Commits the worker's pending work; false if it was refused (and undone). */
  function commit(worker: SimWorker, refuseAtRandom: boolean): boolean {
    const set = worker.set as PartitionSet;
    const batch = set.takeCommit();
    const stale = worker.generation !== generation || !worker.member;
    // Kafka's fence: the transaction's offset commit names every partition written, under
    // the worker's generation; without partitions there is no offset commit and no fence.
    if (batch.partitions.length > 0 && stale) {
      fenced++;
      refused++;
      lose(worker);
      return false;
    }
    if (refuseAtRandom && random.next() < options.refusalProbability) {
      refused++;
      set.reset(nowMs);
      unack(worker);
      return false;
    }
    for (const partition of batch.partitions) {
      if (owners[partition] !== worker.index) {
        fail(
          `worker ${worker.index} wrote partition ${partition}, owned by ${owners[partition]} in generation ${generation}`,
        );
      }
      const writer = writers.get(`${generation}:${partition}`);
      if (writer !== undefined && writer !== worker.index) {
        fail(`partition ${partition} written by workers ${writer} and ${worker.index} in generation ${generation}`);
      }
      writers.set(`${generation}:${partition}`, worker.index);
    }
    for (const write of batch.writes) {
      const partition = write.key[0] === "p" ? (write.key[1] as number) : undefined;
      if (partition !== undefined && !batch.partitions.includes(partition)) {
        fail(`a write of partition ${partition} is not in the commit's partitions`);
      }
    }
    applyWrites(durable, batch.writes);
    applyWrites(worker.local, batch.writes);
    for (const message of batch.outbound) {
      const inbox = inboxes[message.partition] as Omit<OutboundMessage, "partition">[];
      inbox.push(
        message.idempotencyKey === undefined
          ? { envelope: message.envelope }
          : { envelope: message.envelope, idempotencyKey: message.idempotencyKey },
      );
      (lastSent[worker.index] as number[])[message.partition] = inbox.length - 1;
    }
    set.committed();
    commits++;
    // A zombie's view of its partitions is stale (others wrote them since): nothing to compare.
    if (!stale) checkAdmittedBytes(set);
    for (const position of worker.acks) acked.add(position);
    for (const position of worker.ownerAcks) ackedByOwner.add(position);
    worker.acks = [];
    worker.ownerAcks = [];
    for (const effect of batch.effects) {
      switch (effect.kind) {
        case "egress":
          // A transactional sink: the record and the outbox acknowledgement commit together.
          set.transaction.put(["sink", sinkSeq++], new TextDecoder().decode(effect.entry.value.value));
          set.egressDelivered(effect.entry.source, effect.entry.seq);
          break;
        case "dead-letter":
          fail(`unexpected dead letter: ${effect.letter.reason}`);
          break;
        case "reply":
          fail("a reply without a request");
          break;
        case "stop":
          fail(`unexpected stop: ${effect.reason}`);
          break;
      }
    }
    checkNeverOverCounted();
    checkSink();
    return true;
  }

  /** The worker learns it is out of the group: it drops every partition, uncommitted work included. */
  function lose(worker: SimWorker): void {
    (worker.set as PartitionSet).reset(nowMs, []);
    worker.member = false;
    unack(worker);
  }

  /** Commits until nothing is pending (a worker leaving or rejoining finishes its work first). */
  function commitClean(worker: SimWorker): void {
    const set = worker.set as PartitionSet;
    for (let round = 0; round < 20; round++) {
      if (set.pendingWrites === 0 && set.heldEffects === 0 && set.outboundMessages === 0 && worker.acks.length === 0) {
        return;
      }
      if (!commit(worker, false)) return;
    }
    fail(`worker ${worker.index} did not settle before the rebalance`);
  }

  /**
   * One eager rebalance: members still in the group commit under the current generation,
   * then the next generation hands out the partitions (sticky, balanced) to `members`.
   */
  function rebalance(members: readonly SimWorker[]): void {
    rebalances++;
    for (const worker of members) if (worker.member && worker.generation === generation) commitClean(worker);
    generation++;
    const memberIndexes = new Set(members.map((worker) => worker.index));
    const quota = Math.ceil(options.partitions / Math.max(1, members.length));
    const counts = new Map<number, number>();
    const next: (number | undefined)[] = new Array(options.partitions).fill(undefined);
    owners.forEach((owner, partition) => {
      if (owner === undefined || !memberIndexes.has(owner) || (counts.get(owner) ?? 0) >= quota) return;
      next[partition] = owner;
      counts.set(owner, (counts.get(owner) ?? 0) + 1);
    });
    next.forEach((owner, partition) => {
      if (owner !== undefined || members.length === 0) return;
      const least = [...members].sort(
        (a, b) => (counts.get(a.index) ?? 0) - (counts.get(b.index) ?? 0) || a.index - b.index,
      )[0] as SimWorker;
      next[partition] = least.index;
      counts.set(least.index, (counts.get(least.index) ?? 0) + 1);
    });
    for (let partition = 0; partition < options.partitions; partition++) {
      if (owners[partition] !== next[partition]) moves++;
    }
    owners = next;
    for (const worker of members) {
      const set = worker.set as PartitionSet;
      // Not in the last generation (restarted, or a zombie): it starts over with nothing.
      if (!worker.member || worker.generation !== generation - 1) lose(worker);
      for (const partition of set.owned) if (owners[partition] !== worker.index) set.release(partition);
      for (let partition = 0; partition < options.partitions; partition++) {
        if (owners[partition] !== worker.index || set.owns(partition)) continue;
        const position = inboxPositionStored(partition);
        const sentUnread = ((lastSent[worker.index] as number[])[partition] as number) >= position;
        restore(worker.local, partition);
        set.own(partition, nowMs, { viaInbox: sentUnread });
      }
      worker.member = true;
      worker.generation = generation;
    }
  }

  /** Replaces a worker's copy of a partition with the committed one. */
  function restore(local: MemoryKV, partition: number): void {
    for (const { key } of [...local.scan(partitionKeyPrefix(partition))]) local.delete(key);
    for (const { key, value } of durable.scan(partitionKeyPrefix(partition))) local.put(key, value);
  }

  function inboxPositionStored(partition: number): number {
    return getRow(durable, inPartition(partition, tables.inboxPosition.key())) ?? 0;
  }

  function live(): SimWorker[] {
    return workers.filter((worker) => worker.set !== undefined && !worker.paused);
  }

  /**
   * The memory budget's count of admitted work equals what the store holds as unfinished for
   * the worker's partitions, right after its commit: release and reset must take a
   * partition's share out exactly.
   */
  function checkAdmittedBytes(set: PartitionSet): void {
    let expected = 0;
    for (const partition of set.owned) {
      for (const { value } of scanRows(durable, inPartition(partition, tables.inflight.all))) {
        for (const invocation of value.invocations) expected += invocationCost(invocation);
      }
      for (const { value } of scanRows(durable, inPartition(partition, tables.backlog.all))) {
        expected += invocationCost(value);
      }
      for (const { value } of scanRows(durable, inPartition(partition, tables.outbox.all))) {
        expected += outboxCost(value);
      }
    }
    if (set.admittedBytes !== expected)
      fail(`admitted bytes counted ${set.admittedBytes}, the store holds ${expected}`);
  }

  const egressSeen = new Set<string>();
  function checkSink(): void {
    egressSeen.clear();
    for (const { value } of durable.scan(["sink"])) {
      const id = value as string;
      if (egressSeen.has(id)) fail(`egress ${id} published twice`);
      if (workload.forbiddenEgress.has(id)) fail(`egress ${id} rides on a cancelled message but was published`);
      egressSeen.add(id);
    }
  }

  function counts(): number[] {
    return Array.from({ length: options.instances }, (_, instance) => {
      const address = { typename: FUNCTION_TYPE as FunctionTypename, id: String(instance) };
      const partition = partitionOf(addressKey(address), options.partitions);
      const stored = getRow(durable, inPartition(partition, tables.state.key(address.typename, address.id, "count")));
      return stored === undefined ? 0 : readCount(stored.value);
    });
  }

  function checkNeverOverCounted(): void {
    const limit = workload.expectedAfter[sentMax] as readonly number[];
    counts().forEach((count, instance) => {
      if (count > (limit[instance] ?? 0)) fail(`instance ${instance} over-counted: ${count} > ${limit[instance]}`);
    });
  }

  /** The source hands a command to a worker (the HTTP ingress of any worker), with its idempotency key. */
  function send(worker: SimWorker, position: number): boolean {
    const command = workload.commands[position] as (typeof workload.commands)[number];
    const target = { typename: FUNCTION_TYPE as FunctionTypename, id: String(command.target) };
    const set = worker.set as PartitionSet;
    const accepted = set.accept(
      { target, argument: commandsValue(command.cmds) },
      { idempotencyKey: `command-${position}` },
      nowMs,
    );
    worker.acks.push(position);
    if (set.ownsAddress(target)) worker.ownerAcks.push(position);
    sentMax = Math.max(sentMax, position + 1);
    return !accepted.duplicate;
  }

  function emit(worker: SimWorker): void {
    const position = unsent.shift();
    if (position !== undefined) send(worker, position);
  }

  /**
   * A client whose answer got lost sends an acknowledged command again. If the owner took it
   * first-hand, the key is in the owner's store: the owner must refuse it. (One that went
   * through an inbox may be unread still; the owner drops that copy when it reads it. A
   * zombie may take it again: the fence refuses its commit.)
   */
  function resend(worker: SimWorker): void {
    if (acked.size === 0) return;
    const position = random.pick([...acked]);
    const command = workload.commands[position] as (typeof workload.commands)[number];
    const owned = (worker.set as PartitionSet).ownsAddress({
      typename: FUNCTION_TYPE as FunctionTypename,
      id: String(command.target),
    });
    const current = worker.member && worker.generation === generation;
    if (send(worker, position) && owned && current && ackedByOwner.has(position)) {
      fail(`acknowledged command ${position} was delivered again`);
    }
  }

  function reply(worker: SimWorker, index: number): void {
    const [request] = worker.network.splice(index, 1) as [InflightRequest];
    const response: FromFunction = interpret(request.request);
    (worker.set as PartitionSet).complete(request.target, request.batchId, response, nowMs, request.incarnation);
    worker.answered.push(request);
  }

  function readInbox(worker: SimWorker): boolean {
    const set = worker.set as PartitionSet;
    const readable = set.owned.filter(
      (partition) => set.inboxPosition(partition) < (inboxes[partition] as unknown[]).length,
    );
    if (readable.length === 0) return false;
    const partition = random.pick(readable);
    const position = set.inboxPosition(partition);
    set.deliverFromInbox(
      partition,
      (inboxes[partition] as Omit<OutboundMessage, "partition">[])[position] as Omit<OutboundMessage, "partition">,
      position,
      nowMs,
    );
    inboxDeliveries++;
    if (position >= ((lastSent[worker.index] as number[])[partition] as number)) set.inboxCaughtUp(partition);
    return true;
  }

  function crash(worker: SimWorker): void {
    crashes++;
    worker.set = undefined;
    worker.network = [];
    worker.answered = [];
    worker.member = false;
    unack(worker);
  }

  function restart(worker: SimWorker): void {
    if (worker.set !== undefined) fail(`worker ${worker.index} restarted while running`);
    worker.set = newSet(worker, []);
    worker.generation = -1;
  }

  function fault(): void {
    const roll = random.next();
    const worker = random.pick(workers);
    if (roll < 0.3) {
      // kill -9; the group notices after the session timeout and rebalances without it.
      if (worker.set === undefined) restart(worker);
      else crash(worker);
      rebalance(live());
    } else if (roll < 0.45) {
      // Paused past the session timeout: the group moves its partitions; it does not know.
      if (worker.set !== undefined && !worker.paused) {
        worker.paused = true;
        worker.member = false;
        rebalance(live());
      }
    } else if (roll < 0.65) {
      // A zombie wakes up, still believing in its old generation.
      const zombie = workers.find((candidate) => candidate.paused);
      if (zombie !== undefined) zombie.paused = false;
    } else {
      // A worker joins or leaves on purpose (scale-out, scale-in), or the group just rebalances.
      const members = live().filter((candidate) => candidate.member || random.next() < 0.5);
      if (members.length > 1 && random.next() < 0.3) {
        const leaving = random.pick(members);
        commitClean(leaving);
        rebalance(members.filter((candidate) => candidate !== leaving));
        if (leaving.generation === generation - 1) {
          // It committed everything before it left; it owns nothing now.
          lose(leaving);
        }
      } else rebalance(members);
    }
  }

  function step(worker: SimWorker): void {
    const set = worker.set as PartitionSet;
    const roll = random.next();
    if (roll < 0.15) emit(worker);
    else if (roll < 0.3) commit(worker, true);
    else if (roll < 0.55) {
      if (worker.network.length > 0) reply(worker, random.int(worker.network.length));
    } else if (roll < 0.62) {
      if (worker.network.length > 0) {
        const [lost] = worker.network.splice(random.int(worker.network.length), 1) as [InflightRequest];
        set.fail(lost.target, lost.batchId, "simulated timeout", nowMs, lost.incarnation);
      }
    } else if (roll < 0.67) {
      if (worker.answered.length > 0) {
        const old = random.pick(worker.answered);
        staleReplies++;
        set.complete(old.target, old.batchId, interpret(old.request), nowMs, old.incarnation);
      }
    } else if (roll < 0.7) resend(worker);
    else if (roll < 0.85) readInbox(worker);
    else {
      nowMs += random.int(25);
      set.fireTimers(nowMs);
    }
  }

  rebalance(live());
  const chaosSteps = 60 + options.commands * 40;
  for (; steps < chaosSteps; steps++) {
    if (random.next() < options.faultProbability) fault();
    else {
      const candidates = workers.filter((worker) => worker.set !== undefined && !worker.paused);
      if (candidates.length > 0) step(random.pick(candidates));
      else {
        // Everyone is down or paused: one comes back.
        const down = workers.filter((worker) => worker.set === undefined);
        if (down.length > 0) restart(random.pick(down));
        else (random.pick(workers) as SimWorker).paused = false;
      }
    }
  }

  // Quiesce: every worker back, one last rebalance, then run until nothing is left to do.
  for (const worker of workers) {
    if (worker.set === undefined) restart(worker);
    if (worker.paused) {
      worker.paused = false;
      if (worker.set !== undefined && worker.generation !== generation) lose(worker);
    }
  }
  rebalance(workers);
  for (let rounds = 0; ; rounds++) {
    if (rounds > 10_000) fail("did not quiesce");
    let busy = false;
    for (const worker of workers) {
      const set = worker.set as PartitionSet;
      while (unsent.length > 0) emit(worker);
      if (!commit(worker, false)) fail("a commit was refused after the last rebalance");
      while (worker.network.length > 0) reply(worker, 0);
      while (readInbox(worker)) busy = true;
      if (!commit(worker, false)) fail("a commit was refused after the last rebalance");
      const next = set.nextTimerAtMs;
      if (next !== undefined) {
        nowMs = Math.max(nowMs, next);
        set.fireTimers(nowMs);
        busy = true;
      }
      if (set.pendingWrites > 0 || set.heldEffects > 0 || set.activeAddresses > 0 || set.outboundMessages > 0) {
        busy = true;
      }
      if (worker.network.length > 0) busy = true;
    }
    const unread = inboxes.some((inbox, partition) => inboxPositionStored(partition) < inbox.length);
    if (!busy && !unread && unsent.length === 0) break;
  }
  for (const worker of workers) {
    const set = worker.set as PartitionSet;
    if (set.admittedBytes !== 0) fail(`worker ${worker.index}: ${set.admittedBytes} admitted bytes left at the end`);
  }
  const finalCounts = counts();
  const expected = workload.expectedAfter[workload.commands.length] as readonly number[];
  finalCounts.forEach((count, instance) => {
    if (count !== expected[instance]) fail(`instance ${instance} ends at ${count}, expected ${expected[instance]}`);
  });
  for (const id of workload.expectedEgress) if (!egressSeen.has(id)) fail(`egress ${id} was never published`);
  if (acked.size !== workload.commands.length)
    fail(`${workload.commands.length - acked.size} commands never acknowledged`);
  return {
    steps,
    commits,
    refused,
    fenced,
    rebalances,
    crashes,
    moves,
    inboxDeliveries,
    staleReplies,
    egress: egressSeen.size,
  };
}
