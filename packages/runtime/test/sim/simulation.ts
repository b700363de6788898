// One simulated schedule: a source, the partitions, a network of in-flight requests, a
// clock and crashes, all driven by one seeded Random. Invariants are checked as it runs
// and at the end; a violation throws with the seed and the step, so it can be replayed.
import type { FromFunction, Init, ToFunction } from "@eddy/protocol";
import { type Address, addressKey, type FunctionTypename } from "../../src/core/address.ts";
import { MemoryKV } from "../../src/core/kv.ts";
import { applyWrites } from "../../src/core/overlay-kv.ts";
import { type Catalog, type FunctionSettings, invocationCost, outboxCost } from "../../src/core/partition-core.ts";
import { PartitionSet } from "../../src/core/partition-set.ts";
import { partitionOf } from "../../src/core/partitioning.ts";
import { makeRequestId } from "../../src/core/records.ts";
import { getRow, inPartition, scanRows, tables } from "../../src/core/schema.ts";
import {
  commandsValue,
  EGRESS_ID,
  FUNCTION_TYPE,
  generateWorkload,
  interpret,
  readCount,
  readSink,
  type Workload,
} from "./commands.ts";
import { Random } from "./random.ts";

export interface ScheduleOptions {
  readonly seed: number;
  readonly partitions: number;
  readonly instances: number;
  readonly commands: number;
  readonly maxDepth: number;
  readonly crashProbability: number;
  readonly maxBatchCount: number;
}

interface InflightRequest {
  readonly target: Address;
  readonly batchId: number;
  readonly request: Init<ToFunction>;
  failures: number;
}

export interface ScheduleReport {
  readonly steps: number;
  readonly crashes: number;
  readonly commits: number;
  readonly staleReplies: number;
  readonly egress: number;
  /** Times an operator paused the function type. */
  readonly pauses: number;
}

const settings: FunctionSettings = { maxBatchCount: 3, maxBatchBytes: 4096, backlogLimit: 0, failurePolicy: "retry" };

export function runSchedule(options: ScheduleOptions): ScheduleReport {
  const random = new Random(options.seed);
  const workload = generateWorkload(random, options.instances, options.commands, options.maxDepth);
  const functionSettings = { ...settings, maxBatchCount: options.maxBatchCount };
  const catalog: Catalog = {
    functionSettings: (typename: FunctionTypename) => (typename === FUNCTION_TYPE ? functionSettings : undefined),
    hasEgress: (egress: string) => egress === EGRESS_ID,
  };
  const durable = new MemoryKV();
  let network: InflightRequest[] = [];
  // Invocations leave at once, before the commit holding their batch (partition-set.ts).
  const start = () =>
    new PartitionSet({
      store: durable,
      catalog,
      partitionCount: options.partitions,
      listeners: {
        invoke: (effect) => {
          // An operator's pause holds every batch of the type until it is resumed.
          if (set.isPaused(effect.target.typename)) fail(`${effect.target.typename} was invoked while paused`);
          network.push({ target: effect.target, batchId: effect.batchId, request: effect.request, failures: 0 });
        },
      },
      overlay: { checkInserts: true },
    });
  let set = start();
  let nowMs = 0;
  let acked = 0; // source position made durable
  let emitted = 0; // source position handed to the partitions (>= acked)
  let answered: InflightRequest[] = []; // for replaying stale replies
  const egressSeen = new Set<string>();
  /** Each request's answer, as released after its commit: it must never change. */
  const answers = new Map<string, string>();
  let steps = 0;
  let crashes = 0;
  let commits = 0;
  let staleReplies = 0;
  let sinkSeq = 0;
  let pauses = 0;

  const fail = (message: string): never => {
    throw new Error(`seed ${options.seed}, step ${steps}: ${message}`);
  };

  function commit(): void {
    const { writes, effects } = set.takeCommit();
    applyWrites(durable, writes);
    set.committed();
    commits++;
    // Here the store holds everything the partitions know: the budget's count must match it.
    checkAdmittedBytes();
    acked = emitted;
    for (const effect of effects) {
      switch (effect.kind) {
        case "egress":
          // A transactional sink: the record and the outbox acknowledgement commit together.
          set.transaction.put(["sink", sinkSeq++], new TextDecoder().decode(effect.entry.value.value));
          set.egressDelivered(effect.entry.source, effect.entry.seq);
          break;
        case "dead-letter":
          fail(`unexpected dead letter: ${effect.letter.reason}`);
          break;
        case "reply": {
          const value = new TextDecoder().decode(effect.value.value);
          const earlier = answers.get(effect.requestId);
          if (earlier !== undefined && earlier !== value) {
            fail(`request ${effect.requestId} answered ${earlier}, then ${value}`);
          }
          answers.set(effect.requestId, value);
          const stored = set.committedRequest(effect.requestId)?.reply;
          if (stored === undefined || new TextDecoder().decode(stored.value) !== value) {
            fail(`request ${effect.requestId}: the released answer ${value} is not the durable one`);
          }
          break;
        }
        case "stop":
          fail(`unexpected stop: ${effect.reason}`);
          break;
      }
    }
    checkNeverOverCounted();
    checkSink();
  }

  /**
   * The memory budget's count of admitted work equals what the store holds as unfinished:
   * in-flight batches, backlog rows, unsettled egress messages. A count that drifts would
   * leave sources waiting forever (too high) or overrun the budget (too low).
   */
  function checkAdmittedBytes(): void {
    let expected = 0;
    for (let partition = 0; partition < options.partitions; partition++) {
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

  /** Every egress id at most once in the durable sink, and never one from a cancelled message. */
  function checkSink(): void {
    const violation = readSink(durable, workload, egressSeen);
    if (violation !== undefined) fail(violation);
  }

  function counts(): number[] {
    return Array.from({ length: options.instances }, (_, instance) => {
      const address = { typename: FUNCTION_TYPE as FunctionTypename, id: String(instance) };
      const partition = partitionOf(addressKey(address), options.partitions);
      const stored = getRow(durable, inPartition(partition, tables.state.key(address.typename, address.id, "count")));
      return stored === undefined ? 0 : readCount(stored.value);
    });
  }

  /** The smoke invariant: no durable count ever exceeds what the commands handed out so far can produce. */
  function checkNeverOverCounted(): void {
    const limit = workload.expectedAfter[emitted] as readonly number[];
    counts().forEach((count, instance) => {
      if (count > (limit[instance] ?? 0)) fail(`instance ${instance} over-counted: ${count} > ${limit[instance]}`);
    });
  }

  /**
   * The source sends with an idempotency key per position, like a client of the HTTP
   * ingress, and waits for a reply (request-reply): a retry must find the same request.
   */
  function send(position: number): boolean {
    const command = workload.commands[position] as (typeof workload.commands)[number];
    const target = { typename: FUNCTION_TYPE as FunctionTypename, id: String(command.target) };
    const requestId = makeRequestId(0, `command-${position}`);
    const accepted = set.accept(
      { target, argument: commandsValue(command.cmds) },
      { idempotencyKey: `command-${position}`, requestId },
      nowMs,
    );
    if (accepted.requestId !== requestId) fail(`command ${position} came back as request ${accepted.requestId}`);
    return !accepted.duplicate;
  }

  function emit(): void {
    if (emitted >= workload.commands.length) return;
    if (!send(emitted)) fail(`command ${emitted} was new but its key was already known`);
    emitted++;
  }

  /** A client whose reply got lost retries an acknowledged command: it must not be delivered again. */
  function resend(): void {
    if (acked === 0) return;
    if (send(random.int(acked))) fail("an acknowledged command was delivered a second time");
  }

  function reply(index: number): void {
    const [request] = network.splice(index, 1) as [InflightRequest];
    const response: FromFunction = interpret(request.request);
    set.complete(request.target, request.batchId, response, nowMs);
    answered.push(request);
  }

  function crash(): void {
    crashes++;
    // The crashed process's requests and their replies die with its connections; batch ids
    // it handed out but never committed are handed out again, so its replies must not come back.
    network = [];
    answered = [];
    set = start();
    sinkSeq = [...durable.scan(["sink"])].length;
    emitted = acked; // the source rewinds to what was acknowledged
    set.recover(nowMs);
    checkAdmittedBytes();
  }

  // The chaotic phase: every step picks an action at random.
  const chaosSteps = 40 + options.commands * 25;
  for (; steps < chaosSteps; steps++) {
    const roll = random.next();
    if (roll < options.crashProbability) crash();
    else if (roll < 0.2) emit();
    else if (roll < 0.35) commit();
    else if (roll < 0.65) {
      if (network.length > 0) reply(random.int(network.length));
    } else if (roll < 0.72) {
      // A timeout: the engine's retry budget runs out and the policy (retry) re-sends.
      if (network.length > 0) {
        const [lost] = network.splice(random.int(network.length), 1) as [InflightRequest];
        set.fail(lost.target, lost.batchId, "simulated timeout", nowMs);
      }
    } else if (roll < 0.77) {
      // A late duplicate reply to a request that was already answered: must be ignored.
      if (answered.length > 0) {
        const old = random.pick(answered);
        staleReplies++;
        set.complete(old.target, old.batchId, interpret(old.request), nowMs);
      }
    } else if (roll < 0.8) {
      resend();
    } else if (roll < 0.82) {
      // An operator pauses or resumes the function type: messages wait, durably, and nothing is lost.
      if (set.isPaused(FUNCTION_TYPE as FunctionTypename)) set.resume(FUNCTION_TYPE as FunctionTypename, nowMs);
      else {
        set.pause(FUNCTION_TYPE as FunctionTypename, nowMs);
        pauses++;
      }
    } else if (roll < 0.9) {
      nowMs += random.int(25);
      set.fireTimers(nowMs);
    } else {
      set.fireTimers(nowMs);
    }
  }

  // Quiesce: no more faults; run until everything is delivered and nothing is pending.
  for (let rounds = 0; ; rounds++) {
    if (rounds > 10_000) fail("did not quiesce");
    // A pause left on (or restored by a crash after its commit) is lifted: the held batches go.
    if (set.isPaused(FUNCTION_TYPE as FunctionTypename)) set.resume(FUNCTION_TYPE as FunctionTypename, nowMs);
    while (emitted < workload.commands.length) emit();
    commit();
    while (network.length > 0) reply(0);
    commit();
    const next = set.nextTimerAtMs;
    if (next !== undefined) {
      nowMs = Math.max(nowMs, next);
      set.fireTimers(nowMs);
      continue;
    }
    if (network.length === 0 && set.pendingWrites === 0 && set.heldEffects === 0 && set.activeAddresses === 0) break;
  }
  if (set.admittedBytes !== 0) fail(`${set.admittedBytes} admitted bytes left after everything finished`);

  const finalCounts = counts();
  const expected = workload.expectedAfter[workload.commands.length] as readonly number[];
  finalCounts.forEach((count, instance) => {
    if (count !== expected[instance]) fail(`instance ${instance} ends at ${count}, expected ${expected[instance]}`);
  });
  for (const id of workload.expectedEgress) if (!egressSeen.has(id)) fail(`egress ${id} was never published`);
  for (let position = 0; position < workload.commands.length; position++) {
    const requestId = makeRequestId(0, `command-${position}`);
    const stored = set.committedRequest(requestId)?.reply;
    if (stored === undefined) fail(`request ${requestId} was never answered`);
    else if (new TextDecoder().decode(stored.value) !== answers.get(requestId)) {
      fail(`request ${requestId}: the durable answer is not the one released`);
    }
  }
  return { steps, crashes, commits, staleReplies, egress: egressSeen.size, pauses };
}

export type { Workload };
