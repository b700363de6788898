// The pure state machine of a worker's membership in the cluster's classic consumer group:
// responses and the time in, requests to send and things to tell the engine out. No I/O, no
// timers, no clock of its own, so the simulation can drive it exactly as group-member.ts
// drives it over a real broker.
//
// Invariants the engine relies on:
// - `snapshot` is one consistent (generation, member id, instance id, partitions, owner map),
//   defined only between a completed SyncGroup and the moment the member knows that generation
//   is over; it is replaced, never mutated.
// - Partitions are "kept" across a rebalance only when the new generation directly follows the
//   held one (g → g+1, the member in both): then nobody else can have committed them in between.
//   Any gap, or the coordinator saying the member is gone, is reported as `lost` first, and the
//   engine must drop everything it held in memory for the old generation.
// - `before-rejoin` is emitted on REBALANCE_IN_PROGRESS while the held generation is still the
//   coordinator's, and no JoinGroup is sent until the driver answers `rejoinReady`: the engine
//   commits its pending writes under that generation first (Kafka Streams commits in
//   onPartitionsRevoked for the same reason).
//
// The protocol name a member offers carries its module's fingerprint (cluster-module.ts), so
// the broker itself keeps a worker with another module out: Kafka's coordinator admits a member
// into a group that has members only if it offers a protocol every member offers, and answers
// INCONSISTENT_GROUP_PROTOCOL at once otherwise, without a rebalance: the running workers never
// hear of it. That is why the cluster's module lives in the group and not in a record of one of
// its topics: the check is the coordinator's, atomic with the join (two workers starting
// together with different modules cannot both get in), it needs no write that could race or be
// left stale by a cluster long gone, and the cluster's module is always exactly what its
// members run, so changing it needs only that they all stop first (the group empties). The
// metadata carries the items too, for the refused worker's error (module-check.ts).
import { BugError, type Failure, failure } from "../errors.ts";
import type { ClusterModule } from "./cluster-module.ts";
import { isCoordinatorError, KafkaErrorCode, kafkaErrorName } from "./kafka-link.ts";
import {
  decodeAssignment,
  decodeMemberMetadata,
  encodeAssignment,
  encodeMemberMetadata,
  MEMBERSHIP_VERSION,
  type MemberMetadata,
  type PartitionOwner,
} from "./membership-codec.ts";

export const GROUP_PROTOCOL_TYPE = "eddy";
/**
 * Bumped with a member metadata or assignment format the version before cannot take part with
 * (membership-codec.ts): the coordinator admits only members that share a protocol name.
 * Version 3 of the codec (the admin URLs) keeps it: version 2's members take part.
 */
export const GROUP_PROTOCOL_FAMILY = "eddy-sticky-v2";

/** The one protocol a worker offers: the family, and the fingerprint of its module. */
export function groupProtocolName(module: ClusterModule): string {
  return `${GROUP_PROTOCOL_FAMILY}.${module.fingerprint}`;
}

/** The leader's assignor (cluster/assignor.ts), injected so the machine stays testable alone. */
export type AssignFunction = (
  members: readonly { readonly memberId: string; readonly workerId: string; readonly owned: readonly number[] }[],
  partitionCount: number,
) => Map<string, number[]>;

export interface GroupMachineConfig {
  readonly groupId: string;
  /** group.instance.id (static membership): a worker restarted within the session timeout keeps its partitions. */
  readonly workerId: string;
  /** Where other workers forward HTTP requests for this worker's partitions. */
  readonly url: string;
  /** Where other workers send admin API calls for this worker's partitions; undefined: no admin listener. */
  readonly adminUrl?: string | undefined;
  readonly partitionCount: number;
  /** What must be the same on every worker: its fingerprint is in the protocol name. */
  readonly module: ClusterModule;
  readonly sessionTimeoutMs: number;
  /** How long the coordinator waits for every member to rejoin: bounds the before-rejoin commit. */
  readonly rebalanceTimeoutMs: number;
  readonly heartbeatIntervalMs: number;
  /** First wait after a failed request; doubles up to retryBackoffMsMax. */
  readonly retryBackoffMs: number;
  readonly retryBackoffMsMax: number;
  readonly assign: AssignFunction;
}

/** What the engine reads as one value: everything a commit and a forward need. */
export interface MembershipSnapshot {
  readonly groupId: string;
  readonly generationId: number;
  readonly memberId: string;
  readonly groupInstanceId: string;
  readonly leader: boolean;
  /** This worker's partitions, ascending. */
  readonly partitions: readonly number[];
  /** Indexed by partition: the worker that owns it in this generation. */
  readonly owners: readonly (PartitionOwner | undefined)[];
}

export type GroupRequest =
  | {
      readonly kind: "join";
      readonly id: number;
      readonly memberId: string;
      readonly groupInstanceId: string;
      readonly sessionTimeoutMs: number;
      readonly rebalanceTimeoutMs: number;
      readonly protocolType: string;
      readonly protocolName: string;
      readonly metadata: Buffer;
    }
  | {
      readonly kind: "sync";
      readonly id: number;
      readonly generationId: number;
      readonly memberId: string;
      readonly groupInstanceId: string;
      readonly protocolType: string;
      readonly protocolName: string;
      readonly assignments: readonly { readonly memberId: string; readonly assignment: Buffer }[];
    }
  | {
      readonly kind: "heartbeat";
      readonly id: number;
      readonly generationId: number;
      readonly memberId: string;
      readonly groupInstanceId: string;
    }
  | { readonly kind: "leave"; readonly id: number; readonly memberId: string; readonly groupInstanceId: string };

/** A response, reduced to what the machine reads; `unreachable` is no response (network, timeout, no coordinator). */
export type GroupResponse =
  | {
      readonly kind: "join";
      readonly errorCode: number;
      readonly generationId: number;
      readonly memberId: string;
      readonly leader: string;
      readonly skipAssignment: boolean;
      readonly protocolName: string | null;
      readonly members: readonly { readonly memberId: string; readonly metadata: Uint8Array }[];
    }
  | { readonly kind: "sync"; readonly errorCode: number; readonly assignment: Uint8Array }
  | { readonly kind: "heartbeat"; readonly errorCode: number }
  | { readonly kind: "leave"; readonly errorCode: number }
  | { readonly kind: "unreachable"; readonly message: string };

export type GroupMembershipCode =
  | "group-unreachable"
  | "group-member-lost"
  | "group-generation-skipped"
  | "group-instance-fenced"
  | "group-refused"
  /** INCONSISTENT_GROUP_PROTOCOL: the members run another module or another Eddy (module-check.ts says which). */
  | "group-protocol-inconsistent"
  | "group-assignment-malformed";

export type GroupEffect =
  | { readonly kind: "send"; readonly request: GroupRequest }
  /** The coordinator may have moved: find it again before the next request. */
  | { readonly kind: "forget-coordinator" }
  /** Run the engine's pre-rejoin commit under `current`, then call rejoinReady(). */
  | { readonly kind: "before-rejoin"; readonly current: MembershipSnapshot }
  | { readonly kind: "assigned"; readonly snapshot: MembershipSnapshot }
  /** Everything held under `previous` is gone: the engine resets. */
  | { readonly kind: "lost"; readonly previous: MembershipSnapshot; readonly cause: Failure<GroupMembershipCode> }
  /** The member is out of the group for good: left (no cause) or refused (cause). */
  | { readonly kind: "stopped"; readonly cause: Failure<GroupMembershipCode> | undefined }
  | { readonly kind: "warning"; readonly message: string };

type Phase =
  | "idle"
  | "joining"
  | "syncing"
  | "stable"
  /** REBALANCE_IN_PROGRESS heard; the engine's before-rejoin commit runs. */
  | "revoking"
  /** Waiting out a backoff before the next JoinGroup. */
  | "rejoin-wait"
  | "leaving"
  | "stopped";

/** Codes that mean the request may succeed once the coordinator is found again or settles. */
const RETRIABLE_CODES = new Set<number>([
  KafkaErrorCode.NOT_COORDINATOR,
  KafkaErrorCode.COORDINATOR_NOT_AVAILABLE,
  KafkaErrorCode.COORDINATOR_LOAD_IN_PROGRESS,
  KafkaErrorCode.REQUEST_TIMED_OUT,
]);

export class GroupMachine {
  readonly #config: GroupMachineConfig;
  readonly #protocolName: string;
  #phase: Phase = "idle";
  #nextId = 1;
  /** The request whose answer the machine waits for (join, sync or leave); heartbeats apart. */
  #awaiting: number | undefined;
  #heartbeatInFlight: { readonly id: number; readonly generationId: number } | undefined;
  #heartbeatDueAtMs: number | undefined;
  #rejoinAtMs: number | undefined;
  #failures = 0;
  #memberId = "";
  #generationId = -1;
  /** The generation whose partitions the engine holds, until reported lost or followed by the next. */
  #held: MembershipSnapshot | undefined;
  /** Set while the held generation is still the coordinator's current one. */
  #snapshot: MembershipSnapshot | undefined;
  #leader = false;

  constructor(config: GroupMachineConfig) {
    if (config.heartbeatIntervalMs >= config.sessionTimeoutMs) {
      throw new RangeError(
        `heartbeat interval ${config.heartbeatIntervalMs} ms must be below the session timeout ${config.sessionTimeoutMs} ms`,
      );
    }
    this.#config = config;
    this.#protocolName = groupProtocolName(config.module);
  }

  /** The protocol this member offers. */
  get protocolName(): string {
    return this.#protocolName;
  }

  get phase(): Phase {
    return this.#phase;
  }

  /** The current generation's view, or undefined while (re)joining: commits wait for the next. */
  get snapshot(): MembershipSnapshot | undefined {
    return this.#snapshot;
  }

  /** When tick() has something to do; undefined when only a response can move the machine. */
  get nextWakeAtMs(): number | undefined {
    if (this.#phase === "rejoin-wait") return this.#rejoinAtMs;
    if ((this.#phase === "stable" || this.#phase === "revoking") && this.#heartbeatInFlight === undefined) {
      return this.#heartbeatDueAtMs;
    }
    return undefined;
  }

  start(_nowMs: number): GroupEffect[] {
    if (this.#phase !== "idle") throw new BugError(`GroupMachine.start in phase ${this.#phase}`);
    return this.#join();
  }

  tick(nowMs: number): GroupEffect[] {
    if (this.#phase === "rejoin-wait" && this.#rejoinAtMs !== undefined && nowMs >= this.#rejoinAtMs) {
      return this.#join();
    }
    if (
      (this.#phase === "stable" || this.#phase === "revoking") &&
      this.#heartbeatInFlight === undefined &&
      this.#heartbeatDueAtMs !== undefined &&
      nowMs >= this.#heartbeatDueAtMs
    ) {
      const id = this.#nextId++;
      this.#heartbeatInFlight = { id, generationId: this.#generationId };
      this.#heartbeatDueAtMs = undefined;
      return [
        {
          kind: "send",
          request: {
            kind: "heartbeat",
            id,
            generationId: this.#generationId,
            memberId: this.#memberId,
            groupInstanceId: this.#config.workerId,
          },
        },
      ];
    }
    return [];
  }

  /** The engine's before-rejoin commit is done (or failed: the rejoin happens either way). */
  rejoinReady(_nowMs: number): GroupEffect[] {
    if (this.#phase !== "revoking") return [];
    this.#snapshot = undefined;
    return this.#join();
  }

  /** Graceful scale-in: the caller has committed what it holds. */
  leave(_nowMs: number): GroupEffect[] {
    if (this.#phase === "stopped" || this.#phase === "leaving") return [];
    if (this.#phase === "idle") {
      this.#phase = "stopped";
      return [{ kind: "stopped", cause: undefined }];
    }
    this.#phase = "leaving";
    this.#snapshot = undefined;
    this.#heartbeatInFlight = undefined;
    const id = this.#nextId++;
    this.#awaiting = id;
    // A static member is removed by its instance id even before it learned its member id.
    return [
      {
        kind: "send",
        request: { kind: "leave", id, memberId: this.#memberId, groupInstanceId: this.#config.workerId },
      },
    ];
  }

  receive(id: number, response: GroupResponse, nowMs: number): GroupEffect[] {
    if (this.#heartbeatInFlight?.id === id) return this.#onHeartbeat(response, nowMs);
    if (id !== this.#awaiting) return [];
    this.#awaiting = undefined;
    if (this.#phase === "leaving") {
      this.#phase = "stopped";
      const effects: GroupEffect[] = [];
      if (
        response.kind !== "leave" ||
        (response.errorCode !== KafkaErrorCode.NONE && response.errorCode !== KafkaErrorCode.UNKNOWN_MEMBER_ID)
      ) {
        effects.push({ kind: "warning", message: `LeaveGroup ${this.#config.groupId}: ${describeResponse(response)}` });
      }
      effects.push({ kind: "stopped", cause: undefined });
      return effects;
    }
    if (this.#phase === "joining") return this.#onJoin(response, nowMs);
    if (this.#phase === "syncing") return this.#onSync(response, nowMs);
    return [];
  }

  #join(): GroupEffect[] {
    this.#phase = "joining";
    this.#snapshot = undefined;
    this.#heartbeatDueAtMs = undefined;
    this.#rejoinAtMs = undefined;
    // An answer to a heartbeat of the old generation is ignored when it comes, if it comes.
    this.#heartbeatInFlight = undefined;
    const id = this.#nextId++;
    this.#awaiting = id;
    return [
      {
        kind: "send",
        request: {
          kind: "join",
          id,
          memberId: this.#memberId,
          groupInstanceId: this.#config.workerId,
          sessionTimeoutMs: this.#config.sessionTimeoutMs,
          rebalanceTimeoutMs: this.#config.rebalanceTimeoutMs,
          protocolType: GROUP_PROTOCOL_TYPE,
          protocolName: this.#protocolName,
          metadata: encodeMemberMetadata({
            workerId: this.#config.workerId,
            url: this.#config.url,
            adminUrl: this.#config.adminUrl,
            owned: this.#held?.partitions ?? [],
            module: this.#config.module,
          }),
        },
      },
    ];
  }

  #rejoinLater(nowMs: number, why: string): GroupEffect[] {
    this.#failures++;
    const delay = Math.min(this.#config.retryBackoffMs * 2 ** (this.#failures - 1), this.#config.retryBackoffMsMax);
    this.#phase = "rejoin-wait";
    this.#rejoinAtMs = nowMs + delay;
    return this.#failures === 1 || this.#failures % 10 === 0
      ? [{ kind: "warning", message: `${this.#config.groupId}: ${why}; joining again in ${delay} ms` }]
      : [];
  }

  /** The coordinator says the held generation is over for this member. */
  #lose(code: GroupMembershipCode, message: string): GroupEffect[] {
    const previous = this.#held;
    this.#held = undefined;
    this.#snapshot = undefined;
    if (previous === undefined) return [];
    return [{ kind: "lost", previous, cause: failure(code, message, true) }];
  }

  #stop(code: GroupMembershipCode, message: string): GroupEffect[] {
    const effects = this.#lose(code, message);
    this.#phase = "stopped";
    this.#awaiting = undefined;
    this.#heartbeatInFlight = undefined;
    effects.push({ kind: "stopped", cause: failure(code, message, false) });
    return effects;
  }

  #onJoin(response: GroupResponse, nowMs: number): GroupEffect[] {
    if (response.kind === "unreachable") {
      return [{ kind: "forget-coordinator" }, ...this.#rejoinLater(nowMs, `JoinGroup: ${response.message}`)];
    }
    if (response.kind !== "join") throw new BugError(`a ${response.kind} response to JoinGroup`);
    const code = response.errorCode;
    if (code === KafkaErrorCode.MEMBER_ID_REQUIRED) {
      // The broker's member-id handshake (KIP-394), normally for dynamic members only.
      this.#memberId = response.memberId;
      return this.#join();
    }
    if (code === KafkaErrorCode.UNKNOWN_MEMBER_ID) {
      const effects = this.#lose("group-member-lost", `${this.#config.groupId}: JoinGroup: UNKNOWN_MEMBER_ID`);
      this.#memberId = "";
      return [...effects, ...this.#rejoinLater(nowMs, "JoinGroup: UNKNOWN_MEMBER_ID")];
    }
    if (code === KafkaErrorCode.FENCED_INSTANCE_ID) return this.#fenced("JoinGroup");
    if (code === KafkaErrorCode.REBALANCE_IN_PROGRESS || code === KafkaErrorCode.ILLEGAL_GENERATION) {
      return this.#rejoinLater(nowMs, `JoinGroup: ${kafkaErrorName(code)}`);
    }
    if (RETRIABLE_CODES.has(code)) {
      return [
        ...(isCoordinatorError(code) ? [{ kind: "forget-coordinator" } as const] : []),
        ...this.#rejoinLater(nowMs, `JoinGroup: ${kafkaErrorName(code)}`),
      ];
    }
    if (code === KafkaErrorCode.INCONSISTENT_GROUP_PROTOCOL) {
      // Joining again would be refused again: the members' protocol changes only when they all go.
      return this.#stop(
        "group-protocol-inconsistent",
        `${this.#config.groupId}: JoinGroup refused: INCONSISTENT_GROUP_PROTOCOL: its members do not speak ` +
          `${this.#protocolName} (they run another module, or another version of Eddy)`,
      );
    }
    if (code !== KafkaErrorCode.NONE) {
      return this.#stop("group-refused", `${this.#config.groupId}: JoinGroup refused: ${kafkaErrorName(code)}`);
    }
    if (response.protocolName !== this.#protocolName) {
      return this.#stop(
        "group-refused",
        `${this.#config.groupId}: the group chose protocol ${response.protocolName}, this worker speaks ${this.#protocolName}`,
      );
    }
    this.#memberId = response.memberId;
    this.#generationId = response.generationId;
    this.#leader = response.leader === response.memberId;
    const effects: GroupEffect[] = [];
    let assignments: { memberId: string; assignment: Buffer }[] = [];
    // skipAssignment: a static leader rejoined a stable group; the coordinator keeps the assignment.
    if (this.#leader && !response.skipAssignment) {
      const assigned = this.#assign(response.members);
      assignments = assigned.assignments;
      for (const message of assigned.warnings) effects.push({ kind: "warning", message });
    }
    this.#phase = "syncing";
    const id = this.#nextId++;
    this.#awaiting = id;
    effects.push({
      kind: "send",
      request: {
        kind: "sync",
        id,
        generationId: this.#generationId,
        memberId: this.#memberId,
        groupInstanceId: this.#config.workerId,
        protocolType: GROUP_PROTOCOL_TYPE,
        protocolName: this.#protocolName,
        assignments,
      },
    });
    return effects;
  }

  /** The leader's part: every member's metadata through the assignor, into one owner map. */
  #assign(members: readonly { readonly memberId: string; readonly metadata: Uint8Array }[]): {
    assignments: { memberId: string; assignment: Buffer }[];
    warnings: string[];
  } {
    const warnings: string[] = [];
    const known = new Map<string, MemberMetadata>();
    for (const member of members) {
      const metadata = decodeMemberMetadata(member.metadata);
      if (!metadata.ok) {
        warnings.push(`${this.#config.groupId}: member ${member.memberId} gets no partitions: ${metadata.message}`);
        continue;
      }
      // The protocol name already says so (the coordinator checked it): only a client that is
      // not Eddy, or a bug, gets here.
      if (metadata.value.module.fingerprint !== this.#config.module.fingerprint) {
        warnings.push(
          `${this.#config.groupId}: member ${member.memberId} (worker ${metadata.value.workerId}) gets no partitions: ` +
            `its module's fingerprint is ${metadata.value.module.fingerprint}, the protocol's ${this.#config.module.fingerprint}`,
        );
        continue;
      }
      known.set(member.memberId, metadata.value);
    }
    const partitionCount = this.#config.partitionCount;
    const result = this.#config.assign(
      [...known].map(([memberId, metadata]) => ({ memberId, workerId: metadata.workerId, owned: metadata.owned })),
      partitionCount,
    );
    const owners: (PartitionOwner | undefined)[] = new Array(partitionCount).fill(undefined);
    for (const [memberId, partitions] of result) {
      const metadata = known.get(memberId);
      if (metadata === undefined) throw new BugError(`the assignor gave partitions to ${memberId}, not a member`);
      for (const partition of partitions) {
        if (!Number.isInteger(partition) || partition < 0 || partition >= partitionCount) {
          throw new BugError(`the assignor gave partition ${partition} of ${partitionCount} to ${memberId}`);
        }
        if (owners[partition] !== undefined) throw new BugError(`the assignor gave partition ${partition} twice`);
        owners[partition] = {
          workerId: metadata.workerId,
          url: metadata.url,
          ...(metadata.adminUrl === undefined ? {} : { adminUrl: metadata.adminUrl }),
        };
      }
    }
    const unowned = owners.filter((owner) => owner === undefined).length;
    if (unowned > 0 && known.size > 0) {
      throw new BugError(`the assignor left ${unowned} of ${partitionCount} partitions without an owner`);
    }
    // In the oldest version a member wrote: each member can read what it is handed (a rolling upgrade).
    const version = Math.min(
      MEMBERSHIP_VERSION,
      ...[...known.values()].map((metadata) => metadata.version ?? MEMBERSHIP_VERSION),
    );
    const assignments = members.map((member) => ({
      memberId: member.memberId,
      assignment: encodeAssignment({ partitions: result.get(member.memberId) ?? [], owners }, version),
    }));
    return { assignments, warnings };
  }

  #onSync(response: GroupResponse, nowMs: number): GroupEffect[] {
    if (response.kind === "unreachable") {
      return [{ kind: "forget-coordinator" }, ...this.#rejoinLater(nowMs, `SyncGroup: ${response.message}`)];
    }
    if (response.kind !== "sync") throw new BugError(`a ${response.kind} response to SyncGroup`);
    const code = response.errorCode;
    if (code === KafkaErrorCode.REBALANCE_IN_PROGRESS) return this.#join();
    if (code === KafkaErrorCode.UNKNOWN_MEMBER_ID || code === KafkaErrorCode.ILLEGAL_GENERATION) {
      const effects = this.#lose("group-member-lost", `${this.#config.groupId}: SyncGroup: ${kafkaErrorName(code)}`);
      if (code === KafkaErrorCode.UNKNOWN_MEMBER_ID) this.#memberId = "";
      return [...effects, ...this.#join()];
    }
    if (code === KafkaErrorCode.FENCED_INSTANCE_ID) return this.#fenced("SyncGroup");
    if (RETRIABLE_CODES.has(code)) {
      return [
        ...(isCoordinatorError(code) ? [{ kind: "forget-coordinator" } as const] : []),
        ...this.#rejoinLater(nowMs, `SyncGroup: ${kafkaErrorName(code)}`),
      ];
    }
    if (code !== KafkaErrorCode.NONE) {
      return this.#stop("group-refused", `${this.#config.groupId}: SyncGroup refused: ${kafkaErrorName(code)}`);
    }
    const decoded = decodeAssignment(response.assignment);
    if (!decoded.ok) {
      return this.#stop(
        "group-assignment-malformed",
        `${this.#config.groupId}: the leader's assignment for this worker (generation ${this.#generationId}, ` +
          `${response.assignment.length} bytes): ${decoded.message}`,
      );
    }
    const { partitions, owners } = decoded.value;
    const stranger = partitions.find((partition) => owners[partition]?.workerId !== this.#config.workerId);
    if (stranger !== undefined || owners.length !== this.#config.partitionCount) {
      return this.#stop(
        "group-assignment-malformed",
        `${this.#config.groupId}: generation ${this.#generationId}'s assignment disagrees with itself or this ` +
          `worker: ${owners.length} partitions (this worker has ${this.#config.partitionCount})` +
          (stranger === undefined
            ? ""
            : `, partition ${stranger} given to this worker but owned by ${owners[stranger]?.workerId}`),
      );
    }
    const effects: GroupEffect[] = [];
    // Kept partitions are safe only if no generation passed without this member (see the header).
    if (this.#held !== undefined && this.#generationId !== this.#held.generationId + 1) {
      effects.push(
        ...this.#lose(
          "group-generation-skipped",
          `${this.#config.groupId}: generation ${this.#generationId} follows ${this.#held.generationId}, which this worker held`,
        ),
      );
    }
    const snapshot: MembershipSnapshot = Object.freeze({
      groupId: this.#config.groupId,
      generationId: this.#generationId,
      memberId: this.#memberId,
      groupInstanceId: this.#config.workerId,
      leader: this.#leader,
      partitions: Object.freeze([...partitions]),
      owners: Object.freeze([...owners]),
    });
    this.#held = snapshot;
    this.#snapshot = snapshot;
    this.#failures = 0;
    this.#phase = "stable";
    this.#heartbeatDueAtMs = nowMs + this.#config.heartbeatIntervalMs;
    effects.push({ kind: "assigned", snapshot });
    return effects;
  }

  #onHeartbeat(response: GroupResponse, nowMs: number): GroupEffect[] {
    const sent = this.#heartbeatInFlight as { id: number; generationId: number };
    this.#heartbeatInFlight = undefined;
    // An answer about a generation the member has already moved past, or in a phase without heartbeats.
    if ((this.#phase !== "stable" && this.#phase !== "revoking") || sent.generationId !== this.#generationId) return [];
    const code = response.kind === "heartbeat" ? response.errorCode : undefined;
    if (code === KafkaErrorCode.NONE) {
      this.#failures = 0;
      this.#heartbeatDueAtMs = nowMs + this.#config.heartbeatIntervalMs;
      return [];
    }
    if (code === KafkaErrorCode.REBALANCE_IN_PROGRESS) {
      this.#heartbeatDueAtMs = nowMs + this.#config.heartbeatIntervalMs;
      if (this.#phase === "revoking") return [];
      this.#phase = "revoking";
      return [{ kind: "before-rejoin", current: this.#snapshot as MembershipSnapshot }];
    }
    if (code === KafkaErrorCode.UNKNOWN_MEMBER_ID || code === KafkaErrorCode.ILLEGAL_GENERATION) {
      const effects = this.#lose("group-member-lost", `${this.#config.groupId}: Heartbeat: ${kafkaErrorName(code)}`);
      if (code === KafkaErrorCode.UNKNOWN_MEMBER_ID) this.#memberId = "";
      // A before-rejoin commit under way fails against the coordinator anyway; the join waits for it.
      if (this.#phase === "revoking") {
        this.#heartbeatDueAtMs = undefined;
        return effects;
      }
      return [...effects, ...this.#join()];
    }
    if (code === KafkaErrorCode.FENCED_INSTANCE_ID) return this.#fenced("Heartbeat");
    if (code === undefined || RETRIABLE_CODES.has(code)) {
      this.#failures++;
      this.#heartbeatDueAtMs =
        nowMs + Math.min(this.#config.retryBackoffMs * 2 ** (this.#failures - 1), this.#config.heartbeatIntervalMs);
      const forget = code === undefined || isCoordinatorError(code);
      return forget ? [{ kind: "forget-coordinator" }] : [];
    }
    return this.#stop("group-refused", `${this.#config.groupId}: Heartbeat refused: ${kafkaErrorName(code)}`);
  }

  /**
   * Another process joined with this worker's id (group.instance.id). Joining again would fence
   * it in turn, and the two would take the partitions from each other for ever, so this member
   * stops, as Kafka's Java consumer does: two workers must not share a worker id.
   */
  #fenced(request: string): GroupEffect[] {
    return this.#stop(
      "group-instance-fenced",
      `${this.#config.groupId}: ${request}: FENCED_INSTANCE_ID: another worker joined as ${this.#config.workerId}`,
    );
  }
}

function describeResponse(response: GroupResponse): string {
  if (response.kind === "unreachable") return response.message;
  return kafkaErrorName(response.errorCode);
}
