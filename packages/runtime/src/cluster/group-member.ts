// A cluster worker's membership in the consumer group `eddy.<cluster>`: the I/O driver of the
// pure GroupMachine (group-machine.ts) over @platformatic/kafka's request codecs. It finds the
// coordinator, sends what the machine asks for, feeds the answers and the time back, runs the
// engine's hooks, and keeps one consistent MembershipSnapshot for the engine's commits.
//
// What the client (@platformatic/kafka 2.12.1) offers, read from its dist/ before writing this:
// - Its Consumer drives the classic protocol itself and rejoins inside its heartbeat error
//   handler (`#heartbeat` → `#joinGroup`) with no hook before the rejoin; its assignor sees
//   topic subscriptions, not Eddy's user data. So Eddy sends the requests itself, with the
//   per-version codecs the package exports (`<api>V<n>.api.async(connection, …)`), over a
//   `Base` client's connection pool (kafka-link.ts). Versions, all supported by Kafka 4.x:
//   FindCoordinator v6, JoinGroup v9 (group_instance_id, reason, skip_assignment), SyncGroup v5
//   (protocol type/name), Heartbeat v4, LeaveGroup v5 (members by instance id), OffsetFetch v9
//   (require_stable, several groups), Metadata v12, CreateTopics v7, AddOffsetsToTxn v4,
//   TxnOffsetCommit v4 (generation_id, member_id, group_instance_id). The codecs throw a
//   ResponseError for a non-zero error code with the parsed response attached; kafka-link's
//   `send` hands that response back as a value.
// - Transactional offsets: `Transaction.addOffset` takes `metadata.consumer.{groupId,
//   generationId, memberId, coordinatorId}` as plain values (egress.ts already passes -1/""),
//   so a producer can commit under a generation the worker drives itself, but the client
//   (a) sends `group_instance_id` null, (b) sends one TxnOffsetCommit per partition (up to 128
//   round trips per engine commit), (c) commits `offset + 1`, and (d) retries through its
//   own loop. `addConsumer` reads only `consumer.groupId`. So txn-offsets.ts writes
//   AddOffsetsToTxn and TxnOffsetCommit itself, with the producer's public `producerId` /
//   `producerEpoch` and every partition in one request; beginTransaction/send/commit/abort stay
//   the client's. No change to the client is needed.
// - Gaps: no KIP-848 member epoch or client-side assignor through the client;
//   the client has no TxnOffsetCommit v5 / EndTxn v5 (TV2, KIP-890), so AddOffsetsToTxn is
//   still sent explicitly.

import { heartbeatV4, joinGroupV9, leaveGroupV5, syncGroupV5 } from "@platformatic/kafka";
import { type Failure, failure } from "../errors.ts";
import { describe, type KafkaConnection } from "../io/kafka/client-options.ts";
import type { ClusterModule } from "./cluster-module.ts";
import {
  type AssignFunction,
  type GroupEffect,
  GroupMachine,
  type GroupRequest,
  type GroupResponse,
  type MembershipSnapshot,
} from "./group-machine.ts";
import { CoordinatorKeyType, KafkaErrorCode, KafkaLink, kafkaErrorName, send } from "./kafka-link.ts";
import { checkGroupModule } from "./module-check.ts";

export type { MembershipSnapshot } from "./group-machine.ts";

/** Time and timers, injected: tests pause a member as SIGSTOP would, the simulation drives its own. */
export interface Scheduler {
  now(): number;
  /** Runs `task` after `delayMs`; the function returned cancels it. */
  after(delayMs: number, task: () => void): () => void;
}

export const realScheduler: Scheduler = {
  now: () => Date.now(),
  after: (delayMs, task) => {
    const timer = setTimeout(task, delayMs);
    return () => clearTimeout(timer);
  },
};

export interface GroupMemberHooks {
  /**
   * A rebalance started while `current` is still the coordinator's generation: commit what is
   * pending under it now. The member rejoins once this settles (resolved or rejected).
   */
  beforeRejoin(current: MembershipSnapshot): Promise<void>;
  /** A SyncGroup completed: the partitions and owner map of the new generation. */
  onAssigned(snapshot: MembershipSnapshot): void;
  /** Everything held under `previous` is gone (the member was expelled or a generation passed it by): reset. */
  onLost(previous: MembershipSnapshot, cause: Failure): void;
  /** Out of the group for good: after leave() (no cause), or refused (a fenced worker id, an authorisation error). */
  onStopped(cause: Failure | undefined): void;
  onWarning?(message: string): void;
}

export interface GroupMemberOptions {
  readonly connection: KafkaConnection;
  /** `eddy.<cluster>` (clusterTopicNames().group). */
  readonly groupId: string;
  readonly workerId: string;
  readonly url: string;
  /** The worker's admin listener, for the other workers: undefined without one. */
  readonly adminUrl?: string | undefined;
  readonly partitionCount: number;
  /** What must be the same on every worker (cluster-module.ts); a member with another is refused. */
  readonly module: ClusterModule;
  /** Default 10 s; the broker's group.min.session.timeout.ms is 6 s by default. */
  readonly sessionTimeoutMs?: number;
  /** Default a third of the session timeout, at most 3 s (Kafka's default ratio). */
  readonly heartbeatIntervalMs?: number;
  /** Default 30 s: the longest a before-rejoin commit may take before the coordinator drops the member. */
  readonly rebalanceTimeoutMs?: number;
  readonly assign: AssignFunction;
  readonly hooks: GroupMemberHooks;
  readonly scheduler?: Scheduler;
}

const SESSION_TIMEOUT_MS_DEFAULT = 10_000;
const REBALANCE_TIMEOUT_MS_DEFAULT = 30_000;
const RETRY_BACKOFF_MS = 100;
const RETRY_BACKOFF_MS_MAX = 2_000;
/** A request's answer may take the whole rebalance timeout (JoinGroup waits for every member); then some. */
const REQUEST_SLACK_MS = 5_000;
/** How long a refused member waits for the group to be stable, to read what its members run. */
const MODULE_EXPLAIN_WAIT_MS = 10_000;

export class GroupMember {
  readonly #options: GroupMemberOptions;
  readonly #machine: GroupMachine;
  readonly #link: KafkaLink;
  readonly #scheduler: Scheduler;
  readonly #requestTimeoutMs: number;
  #coordinator: number | undefined;
  #cancelTimer: (() => void) | undefined;
  #closed = false;
  readonly #stopped: Promise<Failure | undefined>;
  #resolveStopped: (cause: Failure | undefined) => void = () => undefined;

  constructor(options: GroupMemberOptions) {
    const sessionTimeoutMs = options.sessionTimeoutMs ?? SESSION_TIMEOUT_MS_DEFAULT;
    const rebalanceTimeoutMs = options.rebalanceTimeoutMs ?? REBALANCE_TIMEOUT_MS_DEFAULT;
    this.#options = options;
    this.#scheduler = options.scheduler ?? realScheduler;
    this.#machine = new GroupMachine({
      groupId: options.groupId,
      workerId: options.workerId,
      url: options.url,
      adminUrl: options.adminUrl,
      partitionCount: options.partitionCount,
      module: options.module,
      sessionTimeoutMs,
      rebalanceTimeoutMs,
      heartbeatIntervalMs: options.heartbeatIntervalMs ?? Math.min(3_000, Math.floor(sessionTimeoutMs / 3)),
      retryBackoffMs: RETRY_BACKOFF_MS,
      retryBackoffMsMax: RETRY_BACKOFF_MS_MAX,
      assign: options.assign,
    });
    this.#requestTimeoutMs = rebalanceTimeoutMs + REQUEST_SLACK_MS;
    this.#link = new KafkaLink(options.connection, { requestTimeoutMs: this.#requestTimeoutMs });
    this.#stopped = new Promise((resolve) => {
      this.#resolveStopped = resolve;
    });
  }

  /** Joins the group; the hooks say what follows. */
  start(): void {
    this.#run(this.#machine.start(this.#scheduler.now()));
  }

  /** The current generation's view; undefined while (re)joining, when commits must wait. */
  current(): MembershipSnapshot | undefined {
    return this.#machine.snapshot;
  }

  /** Resolves once the member is out of the group: the cause, or undefined after leave(). */
  get stopped(): Promise<Failure | undefined> {
    return this.#stopped;
  }

  /**
   * Graceful scale-in: LeaveGroup, so the others take the partitions at once. Commit first.
   * Waits at most one request timeout for the answer; without one, the session timeout removes
   * the member anyway.
   */
  async leave(): Promise<void> {
    if (!this.#closed) {
      this.#run(this.#machine.leave(this.#scheduler.now()));
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([
        this.#stopped,
        new Promise((resolve) => {
          timer = setTimeout(resolve, this.#requestTimeoutMs);
        }),
      ]);
      clearTimeout(timer);
    }
    await this.close();
  }

  /** Stops without leaving (as a crash would): the coordinator notices after the session timeout. */
  async close(): Promise<void> {
    this.#closed = true;
    this.#cancelTimer?.();
    this.#cancelTimer = undefined;
    await this.#link.close();
  }

  #run(effects: readonly GroupEffect[]): void {
    if (this.#closed) return;
    for (const effect of effects) {
      switch (effect.kind) {
        case "send":
          void this.#send(effect.request);
          break;
        case "forget-coordinator":
          this.#coordinator = undefined;
          break;
        case "before-rejoin":
          void this.#beforeRejoin(effect.current);
          break;
        case "assigned":
          this.#options.hooks.onAssigned(effect.snapshot);
          break;
        case "lost":
          this.#options.hooks.onLost(effect.previous, effect.cause);
          break;
        case "stopped":
          if (effect.cause?.code === "group-protocol-inconsistent") void this.#explainThenStop(effect.cause);
          else this.#stopWith(effect.cause);
          break;
        case "warning":
          this.#options.hooks.onWarning?.(effect.message);
          break;
      }
    }
    this.#arm();
  }

  #arm(): void {
    this.#cancelTimer?.();
    this.#cancelTimer = undefined;
    const at = this.#machine.nextWakeAtMs;
    if (at === undefined || this.#closed) return;
    this.#cancelTimer = this.#scheduler.after(Math.max(0, at - this.#scheduler.now()), () => {
      this.#cancelTimer = undefined;
      this.#run(this.#machine.tick(this.#scheduler.now()));
    });
  }

  #stopWith(cause: Failure | undefined): void {
    this.#options.hooks.onStopped(cause);
    this.#resolveStopped(cause);
  }

  /** The coordinator refused this member's protocol: say what the members run instead, when it can be read. */
  async #explainThenStop(cause: Failure): Promise<void> {
    const check = await checkGroupModule({
      link: this.#link,
      groupId: this.#options.groupId,
      workerId: this.#options.workerId,
      module: this.#options.module,
      settleWaitMs: MODULE_EXPLAIN_WAIT_MS,
    });
    if (this.#closed) {
      this.#resolveStopped(cause);
      return;
    }
    this.#stopWith(
      check.kind === "different"
        ? failure("group-module-mismatch", `${this.#options.groupId}: ${check.message}`, false)
        : cause,
    );
  }

  async #beforeRejoin(current: MembershipSnapshot): Promise<void> {
    try {
      await this.#options.hooks.beforeRejoin(current);
    } catch (error) {
      this.#options.hooks.onWarning?.(
        `${this.#options.groupId}: the commit before rejoining (generation ${current.generationId}) failed: ${describe(error)}`,
      );
    }
    this.#scheduler.after(0, () => this.#run(this.#machine.rejoinReady(this.#scheduler.now())));
  }

  async #send(request: GroupRequest): Promise<void> {
    let response: GroupResponse;
    try {
      response = await this.#call(request);
    } catch (error) {
      response = { kind: "unreachable", message: describe(error) };
    }
    // Through the scheduler, so a paused member hears nothing either, as a stopped process would not.
    this.#scheduler.after(0, () => this.#run(this.#machine.receive(request.id, response, this.#scheduler.now())));
  }

  async #call(request: GroupRequest): Promise<GroupResponse> {
    const groupId = this.#options.groupId;
    if (this.#coordinator === undefined) {
      const found = await this.#link.coordinator(CoordinatorKeyType.GROUP, groupId);
      if ("errorCode" in found)
        throw new Error(`FindCoordinator ${groupId}: ${kafkaErrorName(found.errorCode)} (${found.message})`);
      this.#coordinator = found.nodeId;
    }
    const connection = await this.#link.node(this.#coordinator);
    switch (request.kind) {
      case "join": {
        const response = await send(
          joinGroupV9.api.async(
            connection,
            groupId,
            request.sessionTimeoutMs,
            request.rebalanceTimeoutMs,
            request.memberId,
            request.groupInstanceId,
            request.protocolType,
            [{ name: request.protocolName, metadata: request.metadata }],
            null,
          ),
        );
        return {
          kind: "join",
          errorCode: response.errorCode,
          generationId: response.generationId,
          memberId: response.memberId,
          leader: response.leader,
          skipAssignment: response.skipAssignment,
          protocolName: response.protocolName ?? null,
          members: response.members.map((member) => ({ memberId: member.memberId, metadata: member.metadata })),
        };
      }
      case "sync": {
        const response = await send(
          syncGroupV5.api.async(
            connection,
            groupId,
            request.generationId,
            request.memberId,
            request.groupInstanceId,
            request.protocolType,
            request.protocolName,
            [...request.assignments],
          ),
        );
        return { kind: "sync", errorCode: response.errorCode, assignment: response.assignment };
      }
      case "heartbeat": {
        const response = await send(
          heartbeatV4.api.async(connection, groupId, request.generationId, request.memberId, request.groupInstanceId),
        );
        return { kind: "heartbeat", errorCode: response.errorCode };
      }
      case "leave": {
        const response = await send(
          leaveGroupV5.api.async(connection, groupId, [
            { memberId: request.memberId, groupInstanceId: request.groupInstanceId, reason: "eddy worker leaving" },
          ]),
        );
        const memberCode = response.members[0]?.errorCode ?? KafkaErrorCode.NONE;
        return {
          kind: "leave",
          errorCode: response.errorCode !== KafkaErrorCode.NONE ? response.errorCode : memberCode,
        };
      }
    }
  }
}
