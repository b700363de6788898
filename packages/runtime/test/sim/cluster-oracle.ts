// What the cluster simulation checks against: only what Kafka made visible. It reads the
// changelog and the egress topic read_committed, as any consumer would, and rebuilds every
// partition from the changelog's frames alone (the "truth"); it knows the group's generations
// and their assignments from the coordinator. Workers' memories and local stores are never
// trusted: they are compared with the truth at the end.
//
// Checked as the schedule runs: a transaction that made frames, egress records or routed
// inbox messages visible sent its inbox offsets while its worker owned those partitions in the
// group's current generation (nothing a zombie did after its generation ended is visible); no
// partition has frames from two members in one generation; no egress record is published
// twice, and none that rides on a cancelled message is published at all; no transaction whose
// changelog records a trim deleted while it was open ever commits.
//
// A trim (DeleteRecords behind a snapshot) may delete committed frames that read_committed has
// not shown yet: a zombie's transaction left open below them holds the last stable offset. So
// before each trim the oracle reads what it is about to delete as it is (beforeChangelogTrim).

import { changelogOffsetWrite } from "../../src/cluster/changelog.ts";
import type { MembershipSnapshot } from "../../src/cluster/group-machine.ts";
import { decodeAssignment } from "../../src/cluster/membership-codec.ts";
import { MemoryKV } from "../../src/core/kv.ts";
import { applyWrites, type PendingWrite } from "../../src/core/overlay-kv.ts";
import { partitionKeyPrefix, partitionOfKey } from "../../src/core/schema.ts";
import { decodeWritesFrame, encodeWritesFrame } from "../../src/store/writes-frame.ts";
import type { SimKafka } from "./kafka.ts";
import type { TxnMark } from "./kafka-log.ts";
import type { CommittedTransaction, FenceNote, SimTopics } from "./sim-worker.ts";

const decoder = new TextDecoder();

export class ClusterOracle {
  /** Every partition as its committed changelog frames make it. */
  readonly truth = new MemoryKV();
  /** Egress ids read from the egress topic. */
  readonly egressSeen = new Set<string>();
  readonly #kafka: SimKafka;
  readonly #topics: SimTopics;
  readonly #forbiddenEgress: ReadonlySet<string>;
  readonly #fail: (message: string) => never;
  readonly #checkFence: boolean;
  readonly #changelogNext: number[];
  #egressNext = 0;
  /** "generation:partition" → the worker whose transaction committed frames of it in that generation. */
  readonly #writers = new Map<string, string>();
  /** Per generation: each instance id's partitions. */
  readonly #assignments = new Map<number, Map<string, readonly number[]>>();
  /**
   * Transactions whose changelog records a trim deleted while they were open, with where. None
   * may commit: the snapshot the trim stood on lacks their frames. Only a zombie leaves one
   * open below frames committed after it, and the fence aborts what it sends.
   */
  readonly #trimmedOpen = new Map<TxnMark, string>();

  constructor(options: {
    readonly kafka: SimKafka;
    readonly topics: SimTopics;
    readonly partitionCount: number;
    readonly forbiddenEgress: ReadonlySet<string>;
    readonly fail: (message: string) => never;
    /** Off only to show that the end state alone catches a broken fence. */
    readonly checkFence?: boolean;
  }) {
    this.#checkFence = options.checkFence ?? true;
    this.#kafka = options.kafka;
    this.#topics = options.topics;
    this.#forbiddenEgress = options.forbiddenEgress;
    this.#fail = options.fail;
    this.#changelogNext = new Array<number>(options.partitionCount).fill(0);
  }

  /** Whether `member` may commit offsets of `partitions` now: the coordinator's view, not the worker's. */
  noteOffsetCommit(member: MembershipSnapshot, partitions: readonly number[]): FenceNote {
    const group = this.#kafka.describeGroup(this.#topics.group);
    const note = (legit: boolean, why: string): FenceNote => ({
      generationId: group.generationId,
      memberId: member.memberId,
      legit,
      why,
    });
    if (group.generationId !== member.generationId) {
      return note(false, `its generation ${member.generationId} had ended (the group is at ${group.generationId})`);
    }
    if (!group.members.includes(member.memberId)) return note(false, `member ${member.memberId} had left the group`);
    // By instance id: a static member restarted in a stable group takes its predecessor's
    // assignment under a new member id, without a new generation.
    const assigned = this.#assignmentsOf(group.generationId)?.get(member.groupInstanceId);
    const foreign = partitions.filter((partition) => !assigned?.includes(partition));
    if (foreign.length > 0) {
      return note(false, `generation ${group.generationId} did not give it partitions ${foreign.join(", ")}`);
    }
    return note(true, "");
  }

  committed(transaction: CommittedTransaction): void {
    const { fence, workerId } = transaction;
    const fenced =
      transaction.changelogPartitions.length > 0 || transaction.egressRecords > 0 || transaction.routedInboxRecords > 0;
    if (fenced && this.#checkFence) {
      if (fence === undefined || !fence.legit) {
        this.#fail(
          `a transaction of worker ${workerId} is visible (${transaction.changelogPartitions.length} frames, ${transaction.egressRecords} egress records), made when ${fence?.why ?? "it committed no offsets"}`,
        );
      }
      for (const partition of transaction.changelogPartitions) {
        const key = `${fence.generationId}:${partition}`;
        const writer = this.#writers.get(key);
        // By worker id: a worker restarted within a generation (static membership) is the same
        // worker, and its first incarnation's producer was fenced when the second began.
        if (writer !== undefined && writer !== workerId) {
          this.#fail(
            `partition ${partition} has frames of workers ${writer} and ${workerId} in generation ${fence.generationId}`,
          );
        }
        this.#writers.set(key, workerId);
      }
    }
    this.advance();
  }

  /**
   * Before a trim of the changelog's `partition` below `before`: reads what the trim is about
   * to delete, above an open transaction too (where read_committed stops). Committed frames go
   * into the truth in offset order, aborted ones are skipped, open ones are watched.
   */
  beforeChangelogTrim(partition: number, before: number): void {
    this.advance();
    const from = this.#changelogNext[partition] as number;
    if (from >= before) return;
    const writes: PendingWrite[] = [];
    for (const record of this.#kafka.inspect(this.#topics.changelog, partition, from, before)) {
      if (record.txn?.outcome === "aborted") continue;
      if (record.txn?.outcome === "open") {
        this.#trimmedOpen.set(record.txn, `changelog ${partition} offset ${record.offset}`);
        continue;
      }
      writes.push(...this.#frameWrites(partition, record.value, record.offset));
    }
    applyWrites(this.truth, writes);
    this.#changelogNext[partition] = before;
  }

  /** A changelog record's writes, and the partition's changelog offset after it. */
  #frameWrites(partition: number, value: Uint8Array | null, offset: number): PendingWrite[] {
    const writes: PendingWrite[] = [];
    for (const write of decodeWritesFrame(value as Uint8Array)) {
      if (partitionOfKey(write.key) !== partition) this.#fail(`changelog ${partition} has a row of another partition`);
      writes.push(write);
    }
    writes.push(changelogOffsetWrite(partition, offset));
    return writes;
  }

  /** Reads what became visible since the last call. */
  advance(): void {
    const kafka = this.#kafka;
    for (const [txn, where] of this.#trimmedOpen) {
      if (txn.outcome === "committed") {
        this.#fail(`a transaction committed after a trim deleted its records (${where}): a snapshot lacks them`);
      }
      if (txn.outcome === "aborted") this.#trimmedOpen.delete(txn);
    }
    for (let partition = 0; partition < this.#changelogNext.length; partition++) {
      for (;;) {
        const offset = this.#changelogNext[partition] as number;
        const fetched = kafka.fetch(kafka.nowMs, {
          topic: this.#topics.changelog,
          partition,
          offset,
          isolation: "read_committed",
        });
        if (!fetched.ok) this.#fail(`oracle: changelog ${partition}: ${fetched.message}`);
        if (fetched.value.nextOffset === offset) break;
        const writes: PendingWrite[] = [];
        for (const record of fetched.value.records) {
          writes.push(...this.#frameWrites(partition, record.value as Uint8Array | null, record.offset));
        }
        applyWrites(this.truth, writes);
        this.#changelogNext[partition] = fetched.value.nextOffset;
      }
    }
    for (;;) {
      const fetched = kafka.fetch(kafka.nowMs, {
        topic: this.#topics.egress,
        partition: 0,
        offset: this.#egressNext,
        isolation: "read_committed",
      });
      if (!fetched.ok) this.#fail(`oracle: egress: ${fetched.message}`);
      if (fetched.value.nextOffset === this.#egressNext) break;
      for (const record of fetched.value.records) {
        const id = decoder.decode(record.value as Uint8Array);
        if (this.egressSeen.has(id)) this.#fail(`egress ${id} published twice (offset ${record.offset})`);
        if (this.#forbiddenEgress.has(id)) this.#fail(`egress ${id} rides on a cancelled message but was published`);
        this.egressSeen.add(id);
      }
      this.#egressNext = fetched.value.nextOffset;
    }
  }

  /** The rows of `partition` a store holds that differ from the truth's, described; empty if none. */
  differences(store: MemoryKV, partition: number): string[] {
    const rows = (kv: MemoryKV) =>
      new Map(
        [...kv.scan(partitionKeyPrefix(partition))].map(({ key, value }) => [
          JSON.stringify(key),
          encodeWritesFrame([{ key, value }]).toString("hex"),
        ]),
      );
    const truth = rows(this.truth);
    const held = rows(store);
    const differences: string[] = [];
    for (const [key, value] of truth) {
      if (held.get(key) !== value) differences.push(`${key} ${held.has(key) ? "differs" : "is missing"}`);
    }
    for (const key of held.keys()) if (!truth.has(key)) differences.push(`${key} is not in the changelog`);
    return differences;
  }

  #assignmentsOf(generationId: number): Map<string, readonly number[]> | undefined {
    const cached = this.#assignments.get(generationId);
    if (cached !== undefined) return cached;
    const record = this.#kafka.generations(this.#topics.group).find((each) => each.generationId === generationId);
    if (record?.assignments == null) return undefined;
    const decoded = new Map<string, readonly number[]>();
    for (const [memberId, bytes] of record.assignments) {
      const instanceId = record.members.find((member) => member.memberId === memberId)?.groupInstanceId;
      const assignment = decodeAssignment(bytes);
      if (assignment.ok && instanceId != null) decoded.set(instanceId, assignment.value.partitions);
    }
    this.#assignments.set(generationId, decoded);
    return decoded;
  }
}
