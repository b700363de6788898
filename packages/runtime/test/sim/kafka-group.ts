// One classic consumer group in the simulated Kafka's group coordinator: membership rounds
// (JoinGroup/SyncGroup) with generations, session timeouts, static membership (KIP-345), and the
// group's offsets, committed and pending in open transactions (KIP-447's require_stable).
// It follows the checks and their order in Kafka's GroupCoordinator, because Eddy's fence is
// exactly those checks: a TxnOffsetCommit from a member the group no longer knows, or from an
// older generation, is refused, and the producer's whole transaction has to abort.
//
// Long polls are re-issued calls: a JoinGroup whose round is not complete answers "waiting" and
// the member sends the same JoinGroup again later (Kafka answers a repeated JoinGroup of a known
// member with unchanged metadata in the same way); a follower's SyncGroup before the leader's
// likewise. A member waiting in a round or for its assignment does not expire, as in Kafka.
import { BugError } from "../../src/errors.ts";
import { type KafkaFailure, type KafkaResult, kafkaError, ok } from "./kafka-errors.ts";

export interface TopicPartition {
  readonly topic: string;
  readonly partition: number;
}

export interface PartitionOffset extends TopicPartition {
  readonly offset: number;
}

export interface JoinGroupRequest {
  readonly groupId: string;
  /** "" for a member that has no id yet. */
  readonly memberId: string;
  readonly groupInstanceId: string | null;
  readonly protocolType: string;
  /** One protocol per member (Eddy offers one assignor): its name and the member's metadata bytes. */
  readonly protocolName: string;
  readonly metadata: Uint8Array;
  readonly sessionTimeoutMs: number;
  readonly rebalanceTimeoutMs: number;
}

export interface JoinGroupMember {
  readonly memberId: string;
  readonly groupInstanceId: string | null;
  readonly metadata: Uint8Array;
}

export type JoinGroupResponse =
  /** The round is still open: send the same JoinGroup (with this member id) again later. */
  | { readonly status: "waiting"; readonly memberId: string }
  | {
      readonly status: "joined";
      readonly generationId: number;
      readonly protocolName: string;
      readonly leader: string;
      readonly memberId: string;
      /** KIP-814: a static leader that rejoined without a rebalance must not assign again. */
      readonly skipAssignment: boolean;
      /** Every member's metadata, for the leader only (empty for followers). */
      readonly members: readonly JoinGroupMember[];
    };

/** MEMBER_ID_REQUIRED carries the id the member must join with. */
export type JoinGroupFailure = KafkaFailure & { readonly memberId?: string };

export interface SyncGroupRequest {
  readonly groupId: string;
  readonly generationId: number;
  readonly memberId: string;
  readonly groupInstanceId: string | null;
  /** The leader's assignment per member; empty for followers. */
  readonly assignments: readonly { readonly memberId: string; readonly assignment: Uint8Array }[];
}

export type SyncGroupResponse =
  | { readonly status: "waiting" }
  | { readonly status: "assigned"; readonly assignment: Uint8Array };

export interface MemberRequest {
  readonly groupId: string;
  readonly generationId: number;
  readonly memberId: string;
  readonly groupInstanceId: string | null;
}

export interface OffsetFetchPartition extends TopicPartition {
  /** null: no committed offset. */
  readonly offset: number | null;
  readonly error: KafkaFailure | null;
}

/** One completed round, for the simulation's checks. Assignments arrive with the leader's SyncGroup. */
export interface GenerationRecord {
  readonly generationId: number;
  readonly completedAtMs: number;
  readonly leader: string | null;
  readonly members: readonly JoinGroupMember[];
  assignments: ReadonlyMap<string, Uint8Array> | null;
}

export type GroupState = "Empty" | "PreparingRebalance" | "CompletingRebalance" | "Stable";

export interface GroupLimits {
  readonly sessionTimeoutMsMin: number;
  readonly sessionTimeoutMsMax: number;
}

interface Member {
  readonly memberId: string;
  readonly groupInstanceId: string | null;
  protocolName: string;
  metadata: Uint8Array;
  sessionTimeoutMs: number;
  rebalanceTimeoutMs: number;
  lastSeenMs: number;
  /** Sent JoinGroup in the current round (PreparingRebalance). */
  joined: boolean;
  /** Sent SyncGroup and waits for the leader's (CompletingRebalance). */
  awaitingSync: boolean;
  assignment: Uint8Array;
}

const EMPTY = new Uint8Array(0);
export const tpKey = (topic: string, partition: number): string => `${topic}\u0000${partition}`;

export class ConsumerGroup {
  readonly groupId: string;
  readonly #limits: GroupLimits;
  #state: GroupState = "Empty";
  #generationId = 0;
  #protocolType: string | null = null;
  #protocolName: string | null = null;
  #leaderId: string | null = null;
  readonly #members = new Map<string, Member>();
  readonly #staticMembers = new Map<string, string>(); // group instance id → member id
  readonly #pendingMembers = new Map<string, number>(); // member id handed out with MEMBER_ID_REQUIRED → expiry
  #roundDeadlineMs = Number.POSITIVE_INFINITY;
  #memberSequence = 0;
  /** Per partition: the committed offset, and where its TxnOffsetCommit was written (a log position). */
  readonly #committed = new Map<string, { readonly offset: number; readonly written: number }>();
  /** Stands for the position of the next record in the group's __consumer_offsets partition. */
  #written = 0;
  readonly #pendingTxnOffsets = new Map<number, Map<string, { offset: number; written: number }>>(); // producer id → offsets
  readonly #history: GenerationRecord[] = [];

  constructor(groupId: string, limits: GroupLimits) {
    this.groupId = groupId;
    this.#limits = limits;
  }

  get state(): GroupState {
    return this.#state;
  }

  get generationId(): number {
    return this.#generationId;
  }

  get leaderId(): string | null {
    return this.#leaderId;
  }

  memberIds(): string[] {
    return [...this.#members.keys()];
  }

  history(): readonly GenerationRecord[] {
    return this.#history;
  }

  // ---- membership ----

  joinGroup(nowMs: number, request: JoinGroupRequest): KafkaResult<JoinGroupResponse> | JoinGroupFailure {
    const { sessionTimeoutMs, rebalanceTimeoutMs } = request;
    if (sessionTimeoutMs < this.#limits.sessionTimeoutMsMin || sessionTimeoutMs > this.#limits.sessionTimeoutMsMax) {
      return kafkaError(
        "INVALID_SESSION_TIMEOUT",
        `session timeout ${sessionTimeoutMs} ms outside [${this.#limits.sessionTimeoutMsMin}, ${this.#limits.sessionTimeoutMsMax}]`,
      );
    }
    if (!(rebalanceTimeoutMs > 0)) throw new BugError(`joinGroup: rebalanceTimeoutMs must be positive`);
    if (
      this.#members.size > 0 &&
      (request.protocolType !== this.#protocolType || request.protocolName !== this.#protocolName)
    ) {
      return kafkaError(
        "INCONSISTENT_GROUP_PROTOCOL",
        `group ${this.groupId} runs ${this.#protocolType}/${this.#protocolName}, not ${request.protocolType}/${request.protocolName}`,
      );
    }
    const instanceId = request.groupInstanceId;
    if (instanceId !== null) {
      const current = this.#staticMembers.get(instanceId);
      if (current !== undefined) {
        if (request.memberId === "") return ok(this.#replaceStaticMember(nowMs, current, request));
        if (request.memberId !== current) {
          return kafkaError("FENCED_INSTANCE_ID", `instance ${instanceId} is now member ${current}`);
        }
        return ok(this.#knownMemberJoin(nowMs, this.#members.get(current) as Member, request));
      }
      if (request.memberId !== "") return kafkaError("UNKNOWN_MEMBER_ID", `no member ${request.memberId}`);
      return ok(this.#newMemberJoin(nowMs, this.#newMemberId(instanceId), request));
    }
    if (request.memberId === "") {
      // KIP-394: a dynamic member first gets its id, and is a member only once it joins with it.
      const memberId = this.#newMemberId("member");
      this.#pendingMembers.set(memberId, nowMs + sessionTimeoutMs);
      return { ...kafkaError("MEMBER_ID_REQUIRED", "join again with the given member id"), memberId };
    }
    if (this.#pendingMembers.delete(request.memberId)) return ok(this.#newMemberJoin(nowMs, request.memberId, request));
    const member = this.#members.get(request.memberId);
    if (member === undefined) return kafkaError("UNKNOWN_MEMBER_ID", `no member ${request.memberId}`);
    return ok(this.#knownMemberJoin(nowMs, member, request));
  }

  syncGroup(nowMs: number, request: SyncGroupRequest): KafkaResult<SyncGroupResponse> {
    const checked = this.#checkMember(request);
    if (!checked.ok) return checked;
    const member = checked.value;
    member.lastSeenMs = nowMs;
    if (this.#state === "PreparingRebalance") return kafkaError("REBALANCE_IN_PROGRESS", "rejoin the group");
    if (this.#state === "Stable") return ok({ status: "assigned", assignment: member.assignment });
    if (member.memberId !== this.#leaderId) {
      member.awaitingSync = true;
      return ok({ status: "waiting" });
    }
    const assignments = new Map<string, Uint8Array>();
    for (const { memberId, assignment } of request.assignments) {
      if (this.#members.has(memberId)) assignments.set(memberId, assignment);
    }
    for (const each of this.#members.values()) {
      each.assignment = assignments.get(each.memberId) ?? EMPTY;
      // A follower's waiting SyncGroup is answered now: its session restarts from here.
      if (each.awaitingSync) each.lastSeenMs = nowMs;
      each.awaitingSync = false;
    }
    const record = this.#history[this.#history.length - 1];
    if (record !== undefined && record.generationId === this.#generationId) record.assignments = assignments;
    this.#state = "Stable";
    return ok({ status: "assigned", assignment: member.assignment });
  }

  heartbeat(nowMs: number, request: MemberRequest): KafkaResult<void> {
    const checked = this.#checkMember(request);
    if (!checked.ok) return checked;
    checked.value.lastSeenMs = nowMs;
    if (this.#state === "PreparingRebalance") return kafkaError("REBALANCE_IN_PROGRESS", "rejoin the group");
    return ok(undefined);
  }

  leaveGroup(nowMs: number, request: Omit<MemberRequest, "generationId">): KafkaResult<void> {
    if (this.#isFenced(request.groupInstanceId, request.memberId)) {
      return kafkaError("FENCED_INSTANCE_ID", `instance ${request.groupInstanceId} belongs to another member`);
    }
    if (this.#pendingMembers.delete(request.memberId)) return ok(undefined);
    if (!this.#members.has(request.memberId)) return kafkaError("UNKNOWN_MEMBER_ID", `no member ${request.memberId}`);
    this.#removeMember(nowMs, request.memberId);
    return ok(undefined);
  }

  // ---- offsets ----

  /** The fence of KIP-447, in the order Kafka checks it. */
  checkTxnOffsetCommit(generationId: number, memberId: string, groupInstanceId: string | null): KafkaResult<void> {
    if (this.#isFenced(groupInstanceId, memberId)) {
      return kafkaError("FENCED_INSTANCE_ID", `instance ${groupInstanceId} belongs to another member`);
    }
    if (memberId !== "" && !this.#members.has(memberId)) {
      return kafkaError("UNKNOWN_MEMBER_ID", `group ${this.groupId} has no member ${memberId}`);
    }
    if (generationId >= 0 && generationId !== this.#generationId) {
      return kafkaError(
        "ILLEGAL_GENERATION",
        `generation ${generationId} is not group ${this.groupId}'s current ${this.#generationId}`,
      );
    }
    return ok(undefined);
  }

  addPendingOffsets(producerId: number, offsets: readonly PartitionOffset[]): void {
    const pending = this.#pendingTxnOffsets.get(producerId) ?? new Map<string, { offset: number; written: number }>();
    this.#pendingTxnOffsets.set(producerId, pending);
    const written = this.#written++;
    for (const { topic, partition, offset } of offsets) pending.set(tpKey(topic, partition), { offset, written });
  }

  /**
   * The transaction of `producerId` ended: its offsets become the group's, or vanish. As
   * Kafka's OffsetMetadataManager does, an offset replaces the committed one only if it was
   * written later: two transactions' markers may arrive in either order.
   */
  endTransaction(producerId: number, committed: boolean): void {
    const pending = this.#pendingTxnOffsets.get(producerId);
    this.#pendingTxnOffsets.delete(producerId);
    if (!committed || pending === undefined) return;
    for (const [key, entry] of pending) {
      const current = this.#committed.get(key);
      if (current === undefined || entry.written > current.written) this.#committed.set(key, entry);
    }
  }

  fetchOffsets(partitions: readonly TopicPartition[], requireStable: boolean): OffsetFetchPartition[] {
    return partitions.map(({ topic, partition }) => {
      const key = tpKey(topic, partition);
      if (requireStable) {
        for (const pending of this.#pendingTxnOffsets.values()) {
          if (pending.has(key)) {
            const error = kafkaError(
              "UNSTABLE_OFFSET_COMMIT",
              `${topic}-${partition} has a pending transactional commit`,
            );
            return { topic, partition, offset: null, error };
          }
        }
      }
      return { topic, partition, offset: this.#committed.get(key)?.offset ?? null, error: null };
    });
  }

  // ---- time ----

  /** The next moment something in this group expires on its own; +Infinity when nothing will. */
  nextDeadlineMs(): number {
    let next = this.#state === "PreparingRebalance" ? this.#roundDeadlineMs : Number.POSITIVE_INFINITY;
    for (const expiry of this.#pendingMembers.values()) next = Math.min(next, expiry);
    for (const member of this.#members.values()) {
      if (!this.#waitsOnCoordinator(member)) next = Math.min(next, member.lastSeenMs + member.sessionTimeoutMs);
    }
    return next;
  }

  /** Applies everything due at `nowMs`: expired pending ids, expired sessions, then a round past its timeout. */
  expire(nowMs: number): void {
    for (const [memberId, expiry] of [...this.#pendingMembers]) {
      if (expiry <= nowMs) this.#pendingMembers.delete(memberId);
    }
    for (const member of [...this.#members.values()]) {
      if (!this.#waitsOnCoordinator(member) && member.lastSeenMs + member.sessionTimeoutMs <= nowMs) {
        this.#removeMember(nowMs, member.memberId);
      }
    }
    if (this.#state === "PreparingRebalance") {
      if (this.#roundDeadlineMs <= nowMs) {
        for (const member of [...this.#members.values()]) {
          if (!member.joined) this.#removeMember(nowMs, member.memberId);
        }
        // Removing the last absentee may already have completed the round.
        if (this.#state === "PreparingRebalance") this.#completeRound(nowMs);
      } else {
        this.#tryCompleteRound(nowMs);
      }
    }
  }

  // ---- internals ----

  #waitsOnCoordinator(member: Member): boolean {
    return (
      (this.#state === "PreparingRebalance" && member.joined) ||
      (this.#state === "CompletingRebalance" && member.awaitingSync)
    );
  }

  #isFenced(groupInstanceId: string | null, memberId: string): boolean {
    if (groupInstanceId === null) return false;
    const current = this.#staticMembers.get(groupInstanceId);
    return current !== undefined && current !== memberId;
  }

  #checkMember(request: MemberRequest): KafkaResult<Member> {
    if (this.#isFenced(request.groupInstanceId, request.memberId)) {
      return kafkaError("FENCED_INSTANCE_ID", `instance ${request.groupInstanceId} belongs to another member`);
    }
    const member = this.#members.get(request.memberId);
    if (member === undefined)
      return kafkaError("UNKNOWN_MEMBER_ID", `group ${this.groupId} has no member ${request.memberId}`);
    if (request.generationId !== this.#generationId) {
      return kafkaError(
        "ILLEGAL_GENERATION",
        `generation ${request.generationId} is not group ${this.groupId}'s current ${this.#generationId}`,
      );
    }
    return ok(member);
  }

  #newMemberId(prefix: string): string {
    this.#memberSequence++;
    return `${prefix}-${this.#memberSequence}`;
  }

  #newMemberJoin(nowMs: number, memberId: string, request: JoinGroupRequest): JoinGroupResponse {
    const member: Member = {
      memberId,
      groupInstanceId: request.groupInstanceId,
      protocolName: request.protocolName,
      metadata: request.metadata,
      sessionTimeoutMs: request.sessionTimeoutMs,
      rebalanceTimeoutMs: request.rebalanceTimeoutMs,
      lastSeenMs: nowMs,
      joined: false,
      awaitingSync: false,
      assignment: EMPTY,
    };
    this.#members.set(memberId, member);
    if (request.groupInstanceId !== null) this.#staticMembers.set(request.groupInstanceId, memberId);
    if (this.#protocolType === null) {
      this.#protocolType = request.protocolType;
      this.#protocolName = request.protocolName;
    }
    if (this.#state !== "PreparingRebalance") this.#startRound(nowMs);
    member.joined = true;
    this.#tryCompleteRound(nowMs);
    return this.#joinResponse(member);
  }

  #knownMemberJoin(nowMs: number, member: Member, request: JoinGroupRequest): JoinGroupResponse {
    member.lastSeenMs = nowMs;
    const unchanged = sameBytes(member.metadata, request.metadata) && member.protocolName === request.protocolName;
    member.metadata = request.metadata;
    member.sessionTimeoutMs = request.sessionTimeoutMs;
    member.rebalanceTimeoutMs = request.rebalanceTimeoutMs;
    if (this.#state === "PreparingRebalance") {
      member.joined = true;
      this.#tryCompleteRound(nowMs);
      return this.#joinResponse(member);
    }
    // CompletingRebalance or Stable: a repeated join answers with the current generation, unless
    // it changes something (new metadata, or the leader in a stable group: Kafka reassigns then).
    const leaderInStable = this.#state === "Stable" && member.memberId === this.#leaderId;
    if (unchanged && !leaderInStable) return this.#joinResponse(member);
    this.#startRound(nowMs);
    member.joined = true;
    this.#tryCompleteRound(nowMs);
    return this.#joinResponse(member);
  }

  /** KIP-345: the same instance id with no member id takes the old member's place and fences it. */
  #replaceStaticMember(nowMs: number, oldMemberId: string, request: JoinGroupRequest): JoinGroupResponse {
    const old = this.#members.get(oldMemberId) as Member;
    const memberId = this.#newMemberId(request.groupInstanceId as string);
    const member: Member = {
      ...old,
      memberId,
      metadata: request.metadata,
      protocolName: request.protocolName,
      sessionTimeoutMs: request.sessionTimeoutMs,
      rebalanceTimeoutMs: request.rebalanceTimeoutMs,
      lastSeenMs: nowMs,
      awaitingSync: false,
    };
    // Keep the members' order: Map insertion order decides the next leader after this one.
    const entries = [...this.#members].map(([id, each]): [string, Member] =>
      id === oldMemberId ? [memberId, member] : [id, each],
    );
    this.#members.clear();
    for (const [id, each] of entries) this.#members.set(id, each);
    this.#staticMembers.set(request.groupInstanceId as string, memberId);
    const wasLeader = this.#leaderId === oldMemberId;
    if (wasLeader) this.#leaderId = memberId;
    switch (this.#state) {
      case "Stable":
        // Same protocol: no rebalance; the member syncs to get its assignment back (Kafka does not
        // rebalance on changed metadata bytes here either). A leader is told not to assign again.
        return this.#joinResponse(member, wasLeader);
      case "PreparingRebalance":
        member.joined = true;
        this.#tryCompleteRound(nowMs);
        return this.#joinResponse(member);
      default:
        this.#startRound(nowMs);
        member.joined = true;
        this.#tryCompleteRound(nowMs);
        return this.#joinResponse(member);
    }
  }

  #joinResponse(member: Member, skipAssignment = false): JoinGroupResponse {
    if (this.#state === "PreparingRebalance") return { status: "waiting", memberId: member.memberId };
    const isLeader = member.memberId === this.#leaderId;
    return {
      status: "joined",
      generationId: this.#generationId,
      protocolName: this.#protocolName as string,
      leader: this.#leaderId as string,
      memberId: member.memberId,
      skipAssignment,
      members: isLeader
        ? [...this.#members.values()].map((each) => ({
            memberId: each.memberId,
            groupInstanceId: each.groupInstanceId,
            metadata: each.metadata,
          }))
        : [],
    };
  }

  #removeMember(nowMs: number, memberId: string): void {
    const member = this.#members.get(memberId);
    if (member === undefined) return;
    this.#members.delete(memberId);
    if (member.groupInstanceId !== null && this.#staticMembers.get(member.groupInstanceId) === memberId) {
      this.#staticMembers.delete(member.groupInstanceId);
    }
    if (this.#state === "Stable" || this.#state === "CompletingRebalance") this.#startRound(nowMs);
    this.#tryCompleteRound(nowMs);
  }

  #startRound(nowMs: number): void {
    this.#state = "PreparingRebalance";
    let rebalanceTimeoutMs = 0;
    for (const member of this.#members.values()) {
      member.joined = false;
      member.awaitingSync = false;
      rebalanceTimeoutMs = Math.max(rebalanceTimeoutMs, member.rebalanceTimeoutMs);
    }
    this.#roundDeadlineMs = nowMs + rebalanceTimeoutMs;
  }

  #tryCompleteRound(nowMs: number): void {
    if (this.#state !== "PreparingRebalance" || this.#pendingMembers.size > 0) return;
    for (const member of this.#members.values()) if (!member.joined) return;
    this.#completeRound(nowMs);
  }

  #completeRound(nowMs: number): void {
    this.#generationId++;
    this.#roundDeadlineMs = Number.POSITIVE_INFINITY;
    if (this.#members.size === 0) {
      this.#state = "Empty";
      this.#leaderId = null;
      this.#protocolType = null;
      this.#protocolName = null;
    } else {
      this.#state = "CompletingRebalance";
      if (this.#leaderId === null || !this.#members.has(this.#leaderId)) {
        this.#leaderId = this.#members.keys().next().value as string;
      }
      for (const member of this.#members.values()) {
        member.lastSeenMs = nowMs;
        member.awaitingSync = false;
        member.assignment = EMPTY;
      }
    }
    this.#history.push({
      generationId: this.#generationId,
      completedAtMs: nowMs,
      leader: this.#leaderId,
      members: [...this.#members.values()].map((each) => ({
        memberId: each.memberId,
        groupInstanceId: each.groupInstanceId,
        metadata: each.metadata,
      })),
      assignments: null,
    });
  }
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let index = 0; index < a.length; index++) if (a[index] !== b[index]) return false;
  return true;
}
