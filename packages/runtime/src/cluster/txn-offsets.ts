// The fence of cluster mode: inbox offsets committed inside the worker's Kafka transaction under
// the group generation it holds (KIP-447). A worker the group has expelled still has its
// producer, but its TxnOffsetCommit carries a generation or member id the coordinator no
// longer knows, so it is refused (ILLEGAL_GENERATION, UNKNOWN_MEMBER_ID, FENCED_INSTANCE_ID),
// and the caller must then abort the whole transaction, changelog frames included: committing
// it instead would publish the frames without the offsets, which a zombie must never do.
//
// The client's Transaction.addOffset cannot send group_instance_id and sends one partition per
// request, so both requests are written here (group-member.ts's header says why); the
// transaction itself (begin, send, commit, abort) stays the client's.
import { setTimeout as sleep } from "node:timers/promises";
import { addOffsetsToTxnV4, offsetFetchV9, type Producer, txnOffsetCommitV4 } from "@platformatic/kafka";
import { BugError, type Failure, failure, type Result, success } from "../errors.ts";
import { describe } from "../io/kafka/client-options.ts";
import type { MembershipSnapshot } from "./group-machine.ts";
import {
  CoordinatorKeyType,
  isCoordinatorError,
  KafkaErrorCode,
  type KafkaLink,
  kafkaErrorName,
  send,
} from "./kafka-link.ts";

/**
 * Right after the previous EndTxn the coordinator answers CONCURRENT_TRANSACTIONS until it has
 * written that transaction's markers, a few milliseconds on a busy broker. AddOffsetsToTxn is
 * the first request of a commit, so it is the one that waits: it asks again after 1 ms,
 * doubling up to 32 ms. A fixed 20 ms (the Java producer's retry backoff) cost every other
 * commit 20 ms, where most waits end at the first 1 ms retry (docs/benchmarks.md). It waits up
 * to 5 s: giving up cures nothing (the next commit meets the same markers) and costs a refused
 * commit, whose work is undone and done again; a 1 s limit was reached under load (a broker
 * stalled for over a second, bench/cluster).
 */
const MARKERS_FIRST_RETRY_MS = 1;
const MARKERS_RETRY_MAX_MS = 32;
const MARKERS_WAIT_MS = 5_000;
/** Between attempts after a failed request (a broken connection, a moved coordinator): 40 ms doubling. */
const FAILED_REQUEST_RETRY_MS = 20;
const ATTEMPTS_MAX = 5;

export type TxnOffsetsFailure = Failure<"txn-offsets-fenced" | "txn-offsets-failed">;

const FENCE_CODES = new Set<number>([
  KafkaErrorCode.ILLEGAL_GENERATION,
  KafkaErrorCode.UNKNOWN_MEMBER_ID,
  KafkaErrorCode.FENCED_INSTANCE_ID,
  KafkaErrorCode.REBALANCE_IN_PROGRESS,
]);

interface OpenTransaction {
  readonly transactionalId: string;
  readonly producerId: bigint;
  readonly producerEpoch: number;
  readonly transactionCoordinator: number;
}

/** The producer's open transaction, as the offset requests name it. */
function openTransaction(producer: Producer): OpenTransaction {
  const transactionalId = producer.transaction?.id;
  const producerId = producer.producerId;
  const producerEpoch = producer.producerEpoch;
  const transactionCoordinator = producer.coordinatorId;
  if (
    transactionalId === undefined ||
    producerId === undefined ||
    producerEpoch === undefined ||
    transactionCoordinator === undefined
  ) {
    throw new BugError("an offset request outside a transaction (call producer.beginTransaction() first)");
  }
  return { transactionalId, producerId, producerEpoch, transactionCoordinator };
}

/**
 * AddOffsetsToTxn: the group's offsets join the producer's open transaction (the transaction
 * coordinator writes the group's __consumer_offsets partition into it, so its markers decide
 * the offsets too). As a commit's first request, it waits out the previous transaction's
 * markers (up to MARKERS_WAIT_MS); after it the transaction is open on the coordinator, and
 * the records, then the offsets, go in it.
 */
export async function addGroupToTransaction(
  link: KafkaLink,
  producer: Producer,
  member: MembershipSnapshot,
): Promise<Result<undefined, TxnOffsetsFailure["code"]>> {
  const txn = openTransaction(producer);
  const where = `transaction ${txn.transactionalId}, group ${member.groupId} generation ${member.generationId}`;
  const markersDeadline = performance.now() + MARKERS_WAIT_MS;
  let markersRetryMs = MARKERS_FIRST_RETRY_MS;
  for (let failed = 0; ; ) {
    let code: number;
    try {
      const connection = await link.node(txn.transactionCoordinator);
      const response = await send(
        addOffsetsToTxnV4.api.async(connection, txn.transactionalId, txn.producerId, txn.producerEpoch, member.groupId),
      );
      code = response.errorCode;
    } catch (error) {
      failed++;
      if (failed >= ATTEMPTS_MAX)
        return failure("txn-offsets-failed", `AddOffsetsToTxn (${where}): ${describe(error)}`, true);
      await sleep(FAILED_REQUEST_RETRY_MS * 2 ** failed);
      continue;
    }
    if (code === KafkaErrorCode.NONE) return success(undefined);
    if (code === KafkaErrorCode.CONCURRENT_TRANSACTIONS && performance.now() + markersRetryMs <= markersDeadline) {
      await sleep(markersRetryMs);
      markersRetryMs = Math.min(markersRetryMs * 2, MARKERS_RETRY_MAX_MS);
      continue;
    }
    return failure("txn-offsets-failed", `AddOffsetsToTxn (${where}): ${kafkaErrorName(code)}`, true);
  }
}

/**
 * The group's coordinator as the last TxnOffsetCommit found it, kept by the caller from one
 * transaction to the next: a FindCoordinator before every commit was one more round trip each.
 * Forgotten when a request to it fails or it answers that it is not the coordinator.
 */
export interface GroupCoordinatorCache {
  nodeId: number | undefined;
}

/**
 * TxnOffsetCommit: the offsets themselves, every partition in one request, under the member's
 * generation. The group must be in the transaction already (addGroupToTransaction).
 */
export async function commitTransactionalOffsets(
  link: KafkaLink,
  producer: Producer,
  member: MembershipSnapshot,
  topic: string,
  offsets: ReadonlyMap<number, bigint>,
  coordinator: GroupCoordinatorCache = { nodeId: undefined },
): Promise<Result<undefined, TxnOffsetsFailure["code"]>> {
  const txn = openTransaction(producer);
  const where = `transaction ${txn.transactionalId}, group ${member.groupId} generation ${member.generationId}`;
  const partitions = [...offsets].map(([partitionIndex, committedOffset]) => ({
    partitionIndex,
    committedOffset,
    committedLeaderEpoch: -1,
  }));
  for (let attempt = 1; ; attempt++) {
    let codes: number[];
    try {
      let groupCoordinator = coordinator.nodeId;
      if (groupCoordinator === undefined) {
        const found = await link.coordinator(CoordinatorKeyType.GROUP, member.groupId);
        if ("errorCode" in found) throw new Error(`FindCoordinator ${member.groupId}: ${found.message}`);
        groupCoordinator = found.nodeId;
        coordinator.nodeId = groupCoordinator;
      }
      const response = await send(
        txnOffsetCommitV4.api.async(
          await link.node(groupCoordinator),
          txn.transactionalId,
          member.groupId,
          txn.producerId,
          txn.producerEpoch,
          member.generationId,
          member.memberId,
          member.groupInstanceId,
          [{ name: topic, partitions }],
        ),
      );
      codes = response.topics.flatMap((answered) => answered.partitions.map((partition) => partition.errorCode));
    } catch (error) {
      coordinator.nodeId = undefined;
      if (attempt >= ATTEMPTS_MAX)
        return failure("txn-offsets-failed", `TxnOffsetCommit (${where}): ${describe(error)}`, true);
      await sleep(FAILED_REQUEST_RETRY_MS * 2 ** attempt);
      continue;
    }
    const refused = codes.find((code) => code !== KafkaErrorCode.NONE);
    if (refused === undefined) return success(undefined);
    if (FENCE_CODES.has(refused)) {
      return failure(
        "txn-offsets-fenced",
        `TxnOffsetCommit (${where}, member ${member.memberId}): ${kafkaErrorName(refused)}: this worker no longer owns what it commits; abort`,
        true,
      );
    }
    if ((isCoordinatorError(refused) || refused === KafkaErrorCode.CONCURRENT_TRANSACTIONS) && attempt < ATTEMPTS_MAX) {
      if (isCoordinatorError(refused)) coordinator.nodeId = undefined;
      await sleep(FAILED_REQUEST_RETRY_MS * 2 ** attempt);
      continue;
    }
    return failure("txn-offsets-failed", `TxnOffsetCommit (${where}): ${kafkaErrorName(refused)}`, true);
  }
}

const UNSTABLE_RETRY_MS = 50;

/**
 * The group's committed offsets of `partitions` (-1n where none), read with require_stable:
 * while a transaction that commits offsets of the group is open, the coordinator answers
 * UNSTABLE_OFFSET_COMMIT and this waits, up to `waitMs`. A new owner reads here before it
 * takes a partition: after it, every frame the previous owner committed is in the changelog.
 */
export async function fetchStableOffsets(
  link: KafkaLink,
  groupId: string,
  topic: string,
  partitions: readonly number[],
  waitMs: number,
): Promise<Result<Map<number, bigint>, "txn-offsets-unstable" | "txn-offsets-failed">> {
  const deadline = Date.now() + waitMs;
  let last = "";
  for (let attempt = 1; ; attempt++) {
    if (attempt > 1) {
      if (Date.now() + UNSTABLE_RETRY_MS > deadline) break;
      await sleep(UNSTABLE_RETRY_MS);
    }
    let response: offsetFetchV9.OffsetFetchResponse;
    try {
      const found = await link.coordinator(CoordinatorKeyType.GROUP, groupId);
      if ("errorCode" in found) {
        last = `FindCoordinator ${groupId}: ${found.message}`;
        continue;
      }
      response = await send(
        offsetFetchV9.api.async(
          await link.node(found.nodeId),
          [{ groupId, memberId: null, memberEpoch: -1, topics: [{ name: topic, partitionIndexes: [...partitions] }] }],
          true,
        ),
      );
    } catch (error) {
      last = describe(error);
      continue;
    }
    const group = response.groups.find((answered) => answered.groupId === groupId);
    const codes = [
      group?.errorCode ?? -1,
      ...(group?.topics ?? []).flatMap((t) => t.partitions.map((p) => p.errorCode)),
    ];
    const refused = codes.find((code) => code !== KafkaErrorCode.NONE);
    if (refused === undefined) {
      const offsets = new Map<number, bigint>();
      for (const answered of group?.topics ?? []) {
        for (const partition of answered.partitions) offsets.set(partition.partitionIndex, partition.committedOffset);
      }
      return success(offsets);
    }
    last = kafkaErrorName(refused);
    if (refused !== KafkaErrorCode.UNSTABLE_OFFSET_COMMIT && !isCoordinatorError(refused)) {
      return failure("txn-offsets-failed", `OffsetFetch ${groupId} ${topic}: ${last}`, true);
    }
  }
  return failure(
    "txn-offsets-unstable",
    `OffsetFetch ${groupId} ${topic} (require_stable) within ${waitMs} ms: ${last}`,
    true,
  );
}
