// Drives the real GroupMachine (cluster/group-machine.ts) against the simulated Kafka's group
// coordinator, as group-member.ts drives it against a real broker: the machine's requests go to
// SimKafka, its answers (Kafka's error names turned back into the protocol's numeric codes)
// come back to the machine. The network is instant and never loses a request; a JoinGroup or
// SyncGroup that the coordinator answers "waiting" (a long poll) is parked and sent again at
// the next pump, as a real client's request would stay open.
import type { GroupEffect, GroupMachine, GroupRequest, GroupResponse } from "../../src/cluster/group-machine.ts";
import { KafkaErrorCode } from "../../src/cluster/kafka-link.ts";
import { BugError } from "../../src/errors.ts";
import type { KafkaFailure, SimKafka } from "./kafka.ts";

export class GroupDriver {
  readonly machine: GroupMachine;
  readonly #kafka: SimKafka;
  readonly #groupId: string;
  /** Requests to send at the next pump (the machine's, and parked long polls). */
  #outgoing: GroupRequest[] = [];

  constructor(kafka: SimKafka, machine: GroupMachine, groupId: string) {
    this.#kafka = kafka;
    this.machine = machine;
    this.#groupId = groupId;
  }

  start(nowMs: number): GroupEffect[] {
    return this.#collect(this.machine.start(nowMs));
  }

  rejoinReady(nowMs: number): GroupEffect[] {
    return this.#collect(this.machine.rejoinReady(nowMs));
  }

  leave(nowMs: number): GroupEffect[] {
    return this.#collect(this.machine.leave(nowMs));
  }

  /** The machine's timers, then every request out and its answer back; the effects for the worker. */
  pump(nowMs: number): GroupEffect[] {
    const effects = this.#collect(this.machine.tick(nowMs));
    // Answers may ask for more requests (a join answered asks for a sync): a few rounds.
    for (let round = 0; round < 8 && this.#outgoing.length > 0; round++) {
      const sending = this.#outgoing;
      this.#outgoing = [];
      for (const request of sending) {
        const response = this.#send(nowMs, request);
        if (response === "parked") continue;
        effects.push(...this.#collect(this.machine.receive(request.id, response, nowMs)));
      }
    }
    return effects;
  }

  /** Keeps the sends for the pump, hands the rest to the worker. */
  #collect(effects: readonly GroupEffect[]): GroupEffect[] {
    const rest: GroupEffect[] = [];
    for (const effect of effects) {
      if (effect.kind === "send") this.#outgoing.push(effect.request);
      else if (effect.kind !== "forget-coordinator") rest.push(effect);
    }
    return rest;
  }

  #send(nowMs: number, request: GroupRequest): GroupResponse | "parked" {
    const groupId = this.#groupId;
    switch (request.kind) {
      case "join": {
        const answer = this.#kafka.joinGroup(nowMs, {
          groupId,
          memberId: request.memberId,
          groupInstanceId: request.groupInstanceId,
          protocolType: request.protocolType,
          protocolName: request.protocolName,
          metadata: request.metadata,
          sessionTimeoutMs: request.sessionTimeoutMs,
          rebalanceTimeoutMs: request.rebalanceTimeoutMs,
        });
        if (!answer.ok) {
          return { ...emptyJoin(code(answer)), memberId: "memberId" in answer ? (answer.memberId ?? "") : "" };
        }
        const joined = answer.value;
        if (joined.status === "waiting") {
          // The same JoinGroup again later, now with the member id the coordinator gave.
          this.#outgoing.push({ ...request, memberId: joined.memberId });
          return "parked";
        }
        return {
          kind: "join",
          errorCode: KafkaErrorCode.NONE,
          generationId: joined.generationId,
          memberId: joined.memberId,
          leader: joined.leader,
          skipAssignment: joined.skipAssignment,
          protocolName: joined.protocolName,
          members: joined.members.map((member) => ({ memberId: member.memberId, metadata: member.metadata })),
        };
      }
      case "sync": {
        const answer = this.#kafka.syncGroup(nowMs, {
          groupId,
          generationId: request.generationId,
          memberId: request.memberId,
          groupInstanceId: request.groupInstanceId,
          assignments: request.assignments,
        });
        if (!answer.ok) return { kind: "sync", errorCode: code(answer), assignment: new Uint8Array(0) };
        if (answer.value.status === "waiting") {
          this.#outgoing.push(request);
          return "parked";
        }
        return { kind: "sync", errorCode: KafkaErrorCode.NONE, assignment: answer.value.assignment };
      }
      case "heartbeat": {
        const answer = this.#kafka.heartbeat(nowMs, {
          groupId,
          generationId: request.generationId,
          memberId: request.memberId,
          groupInstanceId: request.groupInstanceId,
        });
        return { kind: "heartbeat", errorCode: answer.ok ? KafkaErrorCode.NONE : code(answer) };
      }
      case "leave": {
        const answer = this.#kafka.leaveGroup(nowMs, {
          groupId,
          memberId: request.memberId,
          groupInstanceId: request.groupInstanceId,
        });
        return { kind: "leave", errorCode: answer.ok ? KafkaErrorCode.NONE : code(answer) };
      }
    }
  }
}

function emptyJoin(errorCode: number): Extract<GroupResponse, { kind: "join" }> {
  return {
    kind: "join",
    errorCode,
    generationId: -1,
    memberId: "",
    leader: "",
    skipAssignment: false,
    protocolName: null,
    members: [],
  };
}

/** The protocol's number for a simulated broker's error name. */
function code(failure: KafkaFailure): number {
  const number = (KafkaErrorCode as Record<string, number>)[failure.code];
  if (number === undefined) throw new BugError(`group driver: no protocol code for ${failure.code}`);
  return number;
}
