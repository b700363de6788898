// One simulated schedule of a cluster on the simulated Kafka (kafka.ts): several worker
// processes (sim-worker.ts), each with its own local store, its own transactional producer and
// the real GroupMachine as its membership in one consumer group, run the real PartitionSet and
// commit every group commit as one Kafka transaction with the fence of cluster mode
// (TxnOffsetCommit under the worker's generation). Everything between workers goes through
// Kafka: the changelog, the inbox topic, the egress topic, the group's offsets.
//
// Faults, all from the one seeded Random: kill -9 (mid-transaction too: the transaction stays
// open until the next incarnation's InitProducerId or the broker's timeout aborts it), lost
// disks (the restarted worker rebuilds from the changelog alone), pauses past the session
// timeout (a zombie that later resumes with its old generation, open transaction and stale
// store), a zombie's worker id started anew elsewhere while it sleeps (fenced by instance id
// and producer epoch), graceful leaves and rejoins (rebalances, which land between a
// transaction's steps), transactions the broker aborts, calls that fail, commits whose answer
// is lost, stale and lost function replies, and a source that resends what it was told is durable.
//
// Invariants: no instance ever counts more than the commands handed out can produce (read from
// the read_committed changelog); the oracle's checks (cluster-oracle.ts: nothing a zombie did
// is visible, one writer per partition per generation, egress at most once); a worker that
// owns a command's partition in the current generation refuses the command once acknowledged.
// At the end, after every worker is back and the group is stable: every instance reaches its
// count, every egress record is in the egress topic exactly once, every command is acknowledged,
// each owner's local store equals the partition rebuilt from the changelog alone, no work is
// left admitted, and no worker ever tried to commit a transaction whose call had failed.
import { TRANSACTIONAL_PRODUCERS } from "../../src/cluster/kafka-commit-target.ts";
import { addressKey, type FunctionTypename } from "../../src/core/address.ts";
import { MemoryKV } from "../../src/core/kv.ts";
import { type Catalog, type FunctionSettings, invocationCost, outboxCost } from "../../src/core/partition-core.ts";
import { partitionOf } from "../../src/core/partitioning.ts";
import { getRow, inPartition, scanRows, tables } from "../../src/core/schema.ts";
import { ClusterOracle } from "./cluster-oracle.ts";
import { EGRESS_ID, FUNCTION_TYPE, generateWorkload, readCount } from "./commands.ts";
import { SimKafka } from "./kafka.ts";
import { Random } from "./random.ts";
import {
  type ClusterStats,
  SimSnapshots,
  type SimTiming,
  SimWorker,
  simTransactionalId,
  type WorkerEnv,
} from "./sim-worker.ts";

export interface ClusterScheduleOptions {
  readonly seed: number;
  readonly workers: number;
  readonly partitions: number;
  readonly instances: number;
  readonly commands: number;
  readonly maxDepth: number;
  readonly maxBatchCount: number;
  /** Per step: a fault (crash, pause, wake-up, restart, leave, broker abort, time jump). */
  readonly faultProbability: number;
  /** Per transaction call: the call fails (the worker aborts and resets in place). */
  readonly callFailureProbability: number;
  /** Per commit: it commits but the worker never hears so. */
  readonly unknownOutcomeProbability?: number;
  /** Chaos steps; default 60 + 40 per command. */
  readonly steps?: number;
  /** For the test that the simulation can fail: TxnOffsetCommit without generation or member. */
  readonly breakFence?: boolean;
  /** A failure's trace has every event from the start, commands and acknowledgements too (for replaying one seed). */
  readonly verbose?: boolean;
  /** The oracle's direct check that no zombie transaction is visible; default on. */
  readonly checkFence?: boolean;
}

export interface ClusterScheduleReport extends ClusterStats {
  readonly steps: number;
  readonly generations: number;
  readonly crashes: number;
  readonly lostDisks: number;
  readonly pauses: number;
  readonly replaced: number;
  readonly leaves: number;
  readonly brokerAborts: number;
  readonly egress: number;
}

const settings: FunctionSettings = { maxBatchCount: 3, maxBatchBytes: 4096, backlogLimit: 0, failurePolicy: "retry" };

const TIMING: SimTiming = {
  sessionTimeoutMs: 60,
  heartbeatIntervalMs: 15,
  rebalanceTimeoutMs: 60,
  transactionTimeoutMs: 150,
  acquireTimeoutMs: 3_000,
};
/** Each step lets up to this much time pass. */
const STEP_MS_MAX = 8;
const QUIESCE_ROUNDS_MAX = 4_000;

export function runClusterSchedule(options: ClusterScheduleOptions): ClusterScheduleReport {
  const random = new Random(options.seed);
  const workload = generateWorkload(random, options.instances, options.commands, options.maxDepth);
  const functionSettings = { ...settings, maxBatchCount: options.maxBatchCount };
  const catalog: Catalog = {
    functionSettings: (typename: FunctionTypename) => (typename === FUNCTION_TYPE ? functionSettings : undefined),
    hasEgress: (egress: string) => egress === EGRESS_ID,
  };
  const topics = { changelog: "eddy.sim.changelog", inbox: "eddy.sim.inbox", egress: "sim-egress", group: "eddy.sim" };
  const kafka = new SimKafka({ sessionTimeoutMsMin: 1, fetchRecordsMax: 64 });
  kafka.createTopic(0, topics.changelog, options.partitions);
  kafka.createTopic(0, topics.inbox, options.partitions);
  kafka.createTopic(0, topics.egress, 1);
  let nowMs = 0;
  let steps = 0;
  const trace: string[] = [];
  const note = (line: string) => {
    trace.push(`${steps} @${nowMs}: ${line}`);
    if (options.verbose !== true && trace.length > 60) trace.shift();
  };
  const fail = (message: string): never => {
    throw new Error(`cluster seed ${options.seed}, step ${steps}, ${nowMs} ms: ${message}\n  ${trace.join("\n  ")}`);
  };
  const stats: ClusterStats = {
    commits: 0,
    refused: 0,
    fenced: 0,
    producerFenced: 0,
    producerRenewals: 0,
    rebalancedMidTransaction: 0,
    leftOpen: 0,
    unknownOutcomes: 0,
    injectedFailures: 0,
    unstableWaits: 0,
    acquisitions: 0,
    catchUpRecords: 0,
    inboxDeliveries: 0,
    staleReplies: 0,
    fatalStops: 0,
    inconsistent: 0,
    snapshots: 0,
    trims: 0,
    restores: 0,
    inboxTrimmedPast: 0,
  };
  const faults = { crashes: 0, lostDisks: 0, pauses: 0, replaced: 0, leaves: 0, brokerAborts: 0 };
  const oracle = new ClusterOracle({
    kafka,
    topics,
    partitionCount: options.partitions,
    forbiddenEgress: workload.forbiddenEgress,
    fail,
    checkFence: options.checkFence ?? true,
  });

  const unsent: number[] = workload.commands.map((_, position) => position);
  const acked = new Set<number>();
  /** Acknowledged after the owner itself took the command (its key is in the owner's partition). */
  const ackedByOwner = new Set<number>();
  let sentMax = 0;

  const env: WorkerEnv = {
    kafka,
    random,
    catalog,
    partitionCount: options.partitions,
    topics,
    timing: TIMING,
    stats,
    snapshots: new SimSnapshots(),
    beforeTrim: (partition, before) => oracle.beforeChangelogTrim(partition, before),
    callFailureProbability: options.callFailureProbability,
    unknownOutcomeProbability: options.unknownOutcomeProbability ?? options.callFailureProbability,
    breakFence: options.breakFence === true,
    verbose: options.verbose === true,
    now: () => nowMs,
    fail,
    note,
    acked: (positions, byOwner) => {
      if (options.verbose === true && positions.length > 0) note(`acked ${positions.join(",")}`);
      for (const position of positions) acked.add(position);
      for (const position of byOwner) ackedByOwner.add(position);
    },
    dropped: (positions) => {
      if (options.verbose === true && positions.length > 0) note(`dropped ${positions.join(",")}`);
      let changed = false;
      for (const position of positions) {
        if (acked.has(position) || unsent.includes(position)) continue;
        unsent.push(position);
        changed = true;
      }
      if (changed) unsent.sort((a, b) => a - b);
    },
    noteOffsetCommit: (member, partitions) => oracle.noteOffsetCommit(member, partitions),
    committed: (transaction) => {
      oracle.committed(transaction);
      checkNeverOverCounted();
    },
    checkAdmitted: (worker) => {
      if (isCurrent(worker)) checkAdmittedBytes(worker);
    },
  };

  /** Each worker id's disk: it outlives the process unless the disk is lost. */
  const disks: MemoryKV[] = Array.from({ length: options.workers }, () => new MemoryKV());
  const incarnations = new Array<number>(options.workers).fill(0);
  /** Every process started, in order; current[slot] is the newest of each worker id. */
  const processes: SimWorker[] = [];
  const current: SimWorker[] = [];

  function start(slot: number, lostDisk: boolean): SimWorker {
    if (lostDisk) {
      disks[slot] = new MemoryKV();
      faults.lostDisks++;
    }
    incarnations[slot] = (incarnations[slot] as number) + 1;
    note(`start w${slot}#${incarnations[slot]}${lostDisk ? " on an empty disk" : ""}`);
    const worker = new SimWorker(env, `w${slot}`, incarnations[slot] as number, disks[slot] as MemoryKV);
    current[slot] = worker;
    processes.push(worker);
    return worker;
  }

  function counts(): number[] {
    return Array.from({ length: options.instances }, (_, instance) => {
      const address = { typename: FUNCTION_TYPE as FunctionTypename, id: String(instance) };
      const partition = partitionOf(addressKey(address), options.partitions);
      const stored = getRow(
        oracle.truth,
        inPartition(partition, tables.state.key(address.typename, address.id, "count")),
      );
      return stored === undefined ? 0 : readCount(stored.value);
    });
  }

  function checkNeverOverCounted(): void {
    const limit = workload.expectedAfter[sentMax] as readonly number[];
    counts().forEach((count, instance) => {
      if (count > (limit[instance] ?? 0)) fail(`instance ${instance} over-counted: ${count} > ${limit[instance]}`);
    });
  }

  /**
   * The memory budget's count of admitted work equals what the worker's store holds as
   * unfinished for its partitions, right after a commit with nothing pending since: release,
   * reset and own must move a partition's share exactly.
   */
  function checkAdmittedBytes(worker: SimWorker): void {
    let expected = 0;
    for (const partition of worker.set.owned) {
      for (const { value } of scanRows(worker.local, inPartition(partition, tables.inflight.all))) {
        for (const invocation of value.invocations) expected += invocationCost(invocation);
      }
      for (const { value } of scanRows(worker.local, inPartition(partition, tables.backlog.all))) {
        expected += invocationCost(value);
      }
      for (const { value } of scanRows(worker.local, inPartition(partition, tables.outbox.all))) {
        expected += outboxCost(value);
      }
    }
    if (worker.set.admittedBytes !== expected) {
      fail(`${worker.workerId}: admitted bytes counted ${worker.set.admittedBytes}, its store holds ${expected}`);
    }
  }

  /** The process is a member of the group's current generation, as the coordinator sees it. */
  function isCurrent(worker: SimWorker): boolean {
    const membership = worker.membership;
    if (membership === undefined || !worker.alive) return false;
    const group = kafka.describeGroup(topics.group);
    return group.generationId === membership.generationId && group.members.includes(membership.memberId);
  }

  function send(worker: SimWorker, position: number): void {
    const command = workload.commands[position] as (typeof workload.commands)[number];
    const accepted = worker.accept(position, command, nowMs);
    if (options.verbose === true)
      note(
        `${worker.workerId}#${worker.incarnation} takes command ${position} (${accepted.owned ? "owner" : "forward"}${accepted.duplicate ? ", duplicate" : ""})`,
      );
    sentMax = Math.max(sentMax, position + 1);
    // A client whose answer got lost sends an acknowledged command again: if the owner took it
    // first-hand, the key is in the partition, and an owner of the current generation has it.
    if (accepted.owned && !accepted.duplicate && ackedByOwner.has(position) && isCurrent(worker)) {
      fail(`acknowledged command ${position} was delivered again by ${worker.workerId}#${worker.incarnation}`);
    }
  }

  function step(worker: SimWorker): void {
    const roll = random.next();
    if (roll < 0.12) {
      const position = unsent.shift();
      if (position !== undefined) send(worker, position);
    } else if (roll < 0.34) worker.commitStep();
    else if (roll < 0.54) {
      if (worker.network.length > 0) worker.reply(random.int(worker.network.length), nowMs);
    } else if (roll < 0.58) {
      if (worker.network.length > 0) worker.timeout(random.int(worker.network.length), nowMs);
    } else if (roll < 0.61) {
      if (worker.answered.length > 0) worker.staleReply(random.pick(worker.answered), nowMs);
    } else if (roll < 0.63) {
      if (acked.size > 0) send(worker, random.pick([...acked]));
    } else if (roll < 0.79) worker.readInbox(1 + random.int(3));
    else if (roll < 0.87) worker.settleEgress();
    else if (roll < 0.9) worker.snapshotStep();
    else worker.set.fireTimers(nowMs);
  }

  function background(probability: number): void {
    for (const worker of processes) if (worker.alive && random.chance(probability)) worker.background();
  }

  /** Lets `ms` pass in small steps, the live workers' group members heartbeating meanwhile. */
  function letTimePass(ms: number): void {
    for (let passed = 0; passed < ms; passed += TIMING.heartbeatIntervalMs / 3) {
      nowMs += TIMING.heartbeatIntervalMs / 3;
      background(1);
    }
  }

  function fault(): void {
    const roll = random.next();
    const slot = random.int(options.workers);
    const worker = current[slot] as SimWorker;
    if (roll < 0.22) {
      if (worker.state !== "running") start(slot, random.chance(0.3));
      else {
        faults.crashes++;
        note(`kill -9 w${slot}#${worker.incarnation}${worker.inTransaction ? " mid-transaction" : ""}`);
        worker.crash();
      }
    } else if (roll < 0.38) {
      if (worker.alive) {
        faults.pauses++;
        note(`pause w${slot}#${worker.incarnation}`);
        worker.paused = true;
      }
    } else if (roll < 0.56) {
      const paused = processes.filter((each) => each.paused && each.state === "running");
      if (paused.length > 0) {
        const waking = random.pick(paused);
        note(`resume ${waking.workerId}#${waking.incarnation}`);
        waking.paused = false;
      }
    } else if (roll < 0.64) {
      // The worker id is started elsewhere while its process sleeps: a new disk, the same id.
      if (worker.paused && worker.state === "running") {
        faults.replaced++;
        start(slot, true);
      }
    } else if (roll < 0.72) {
      if (worker.alive && processes.filter((each) => each.alive).length > 1) {
        faults.leaves++;
        note(`w${slot}#${worker.incarnation} leaves`);
        worker.leave();
      }
    } else if (roll < 0.8) {
      const id = simTransactionalId(`w${slot}`, random.int(TRANSACTIONAL_PRODUCERS));
      if (kafka.abortTransaction(nowMs, id)) {
        faults.brokerAborts++;
        note(`the broker aborts ${id}'s transaction`);
      }
    } else {
      // Time passes (a GC pause of the whole host, a slow network): sessions of the paused expire.
      note("time passes");
      letTimePass(TIMING.sessionTimeoutMs / 2 + random.int(TIMING.sessionTimeoutMs));
    }
  }

  for (let slot = 0; slot < options.workers; slot++) start(slot, false);
  const chaosSteps = options.steps ?? 60 + options.commands * 40;
  for (; steps < chaosSteps; steps++) {
    nowMs += random.int(STEP_MS_MAX);
    if (random.chance(options.faultProbability)) fault();
    else {
      const alive = processes.filter((worker) => worker.alive);
      if (alive.length > 0) step(random.pick(alive));
      else {
        const slot = random.int(options.workers);
        const worker = current[slot] as SimWorker;
        if (worker.state !== "running") start(slot, random.chance(0.3));
        else worker.paused = false;
      }
    }
    background(0.6);
  }

  // Quiesce: every worker id back, zombies woken (they find out), then run until all is done.
  note("quiesce");
  for (const worker of processes) worker.paused = false;
  let rounds = 0;
  for (; ; rounds++) {
    if (rounds > QUIESCE_ROUNDS_MAX) {
      const states = current.map(
        (worker) =>
          `${worker.workerId}#${worker.incarnation} ${worker.state} gen ${worker.membership?.generationId} owns ${worker.set.owned.join(",")} settled ${worker.settled} ${worker.stopReason ?? ""}`,
      );
      fail(`did not quiesce: ${JSON.stringify(kafka.describeGroup(topics.group))}; ${states.join("; ")}`);
    }
    nowMs += 2;
    for (let slot = 0; slot < options.workers; slot++) {
      const worker = current[slot] as SimWorker;
      if (worker.state !== "running") start(slot, false);
    }
    background(1);
    const alive = current.filter((worker) => worker.alive);
    for (const worker of alive) {
      // A worker may stop on its own at any of these (a fenced producer, a failed acquisition).
      const actions = [
        () => {
          while (unsent.length > 0) send(worker, unsent.shift() as number);
        },
        () => worker.commitFully(),
        () => {
          while (worker.settleEgress()) {}
        },
        () => {
          while (worker.network.length > 0) worker.reply(0, nowMs);
        },
        () => {
          while (worker.alive && worker.readInbox(64)) {}
        },
        () => worker.set.fireTimers(nowMs),
        () => worker.commitFully(),
      ];
      for (const action of actions) if (worker.alive) action();
    }
    const group = kafka.describeGroup(topics.group);
    const done =
      group.state === "Stable" &&
      group.members.length === options.workers &&
      current.every(
        (worker) =>
          worker.alive &&
          worker.settled &&
          worker.set.activeAddresses === 0 &&
          worker.set.nextTimerAtMs === undefined &&
          isCurrent(worker) &&
          worker.inboxReadToEnd(),
      ) &&
      unsent.length === 0 &&
      kafka.openTransactions().length === 0 &&
      // A superseded process (its worker id started anew) holds what it took until it finds out.
      processes.every((worker) => worker.state !== "running" || current.includes(worker));
    if (done) break;
  }
  oracle.advance();

  const expected = workload.expectedAfter[workload.commands.length] as readonly number[];
  counts().forEach((count, instance) => {
    if (count !== expected[instance]) fail(`instance ${instance} ends at ${count}, expected ${expected[instance]}`);
  });
  for (const id of workload.expectedEgress) if (!oracle.egressSeen.has(id)) fail(`egress ${id} was never published`);
  if (acked.size !== workload.commands.length) {
    fail(`${workload.commands.length - acked.size} commands never acknowledged`);
  }
  const clientErrors = kafka.clientErrors();
  if (clientErrors.length > 0) fail(`a worker committed after a failed call: ${clientErrors[0]}`);
  for (const worker of current) {
    if (worker.set.admittedBytes !== 0) {
      fail(`worker ${worker.workerId}: ${worker.set.admittedBytes} admitted bytes left at the end`);
    }
    for (const partition of worker.set.owned) {
      const differences = oracle.differences(worker.local, partition);
      if (differences.length > 0) {
        fail(
          `worker ${worker.workerId}'s partition ${partition} is not the changelog's: ${differences.slice(0, 3).join("; ")}`,
        );
      }
    }
  }
  return {
    ...stats,
    ...faults,
    steps,
    generations: kafka.describeGroup(topics.group).generationId,
    egress: oracle.egressSeen.size,
  };
}
