// Whether this worker's module is the one the cluster's workers run, read from the group with
// DescribeGroups: the protocol the group chose (its name carries the members' module
// fingerprint, group-machine.ts) and each member's metadata (which carries the module's items).
// Used twice: before a worker joins, so that a worker with another module stops at start with
// one line and nothing opened; and after the coordinator refused a JoinGroup with
// INCONSISTENT_GROUP_PROTOCOL (the authoritative check, which a start racing a rebalance meets),
// to say what differs.
//
// Kafka describes a group's protocol and member metadata only while the group is stable, so a
// group that is rebalancing is asked again for a bounded time; past it the answer is "unknown",
// which the start takes as "go on and let the coordinator decide".
import { setTimeout as sleep } from "node:timers/promises";
import { describeGroupsV5 } from "@platformatic/kafka";
import { describe } from "../io/kafka/client-options.ts";
import { type ClusterModule, moduleDifferences } from "./cluster-module.ts";
import { GROUP_PROTOCOL_FAMILY, GROUP_PROTOCOL_TYPE, groupProtocolName } from "./group-machine.ts";
import { CoordinatorKeyType, KafkaErrorCode, type KafkaLink, kafkaErrorName, send } from "./kafka-link.ts";
import { decodeMemberMetadata, type MemberMetadata } from "./membership-codec.ts";

export interface ModuleCheckOptions {
  readonly link: KafkaLink;
  readonly groupId: string;
  readonly workerId: string;
  readonly module: ClusterModule;
  /** How long a group that is rebalancing, or a coordinator that is loading, is asked again. */
  readonly settleWaitMs: number;
}

export type ModuleCheck =
  /** The group's members run this module. */
  | { readonly kind: "same" }
  /** No members: this worker's module becomes the cluster's. */
  | { readonly kind: "empty" }
  /** The group runs something else: `message` says what and what to do (it names no cluster: the caller does). */
  | { readonly kind: "different"; readonly message: string }
  /** Not known within the wait: rebalancing, or the coordinator not answering. */
  | { readonly kind: "unknown"; readonly why: string };

const RETRY_DELAY_MS = 200;

/** Asks the group's coordinator what its members run; never throws. */
export async function checkGroupModule(options: ModuleCheckOptions): Promise<ModuleCheck> {
  const deadline = Date.now() + options.settleWaitMs;
  let why = "";
  for (let attempt = 0; ; attempt++) {
    if (attempt > 0) {
      if (Date.now() + RETRY_DELAY_MS > deadline) return { kind: "unknown", why };
      await sleep(RETRY_DELAY_MS);
    }
    let group: describeGroupsV5.DescribeGroupsResponseGroup | undefined;
    try {
      const coordinator = await options.link.coordinator(CoordinatorKeyType.GROUP, options.groupId);
      if ("errorCode" in coordinator) {
        why = `FindCoordinator ${options.groupId}: ${kafkaErrorName(coordinator.errorCode)}`;
        continue;
      }
      const connection = await options.link.node(coordinator.nodeId);
      const response = await send(describeGroupsV5.api.async(connection, [options.groupId], false));
      group = response.groups.find((described) => described.groupId === options.groupId);
    } catch (error) {
      why = `DescribeGroups ${options.groupId}: ${describe(error)}`;
      continue;
    }
    if (group === undefined) {
      why = `DescribeGroups ${options.groupId}: no answer for the group`;
      continue;
    }
    if (group.errorCode !== KafkaErrorCode.NONE) {
      why = `DescribeGroups ${options.groupId}: ${kafkaErrorName(group.errorCode)}`;
      // Without the Describe right on the group, asking again changes nothing: the join decides.
      if (group.errorCode === KafkaErrorCode.GROUP_AUTHORIZATION_FAILED) return { kind: "unknown", why };
      continue;
    }
    if (group.groupState === "Empty" || group.groupState === "Dead" || group.members.length === 0) {
      return { kind: "empty" };
    }
    if (group.protocolType !== "" && group.protocolType !== GROUP_PROTOCOL_TYPE) {
      return {
        kind: "different",
        message:
          `its group ${options.groupId} is used by clients that are not Eddy workers (protocol type ` +
          `${group.protocolType}): choose another cluster name`,
      };
    }
    if (group.groupState !== "Stable") {
      why = `the group is ${group.groupState}`;
      continue;
    }
    return compareWithGroup(options, group);
  }
}

function compareWithGroup(
  options: ModuleCheckOptions,
  group: describeGroupsV5.DescribeGroupsResponseGroup,
): ModuleCheck {
  const mine = groupProtocolName(options.module);
  if (group.protocolData === mine) return { kind: "same" };
  if (!group.protocolData.startsWith(`${GROUP_PROTOCOL_FAMILY}.`)) {
    return {
      kind: "different",
      message:
        `its workers run another version of Eddy (group protocol ${group.protocolData || "unknown"}; this ` +
        `worker speaks ${mine}): every worker of a cluster runs the same version; to change it, stop all ` +
        "its workers, then start them with the new version",
    };
  }
  const members: MemberMetadata[] = [];
  for (const member of group.members) {
    const metadata = decodeMemberMetadata(member.memberMetadata);
    if (metadata.ok) members.push(metadata.value);
  }
  // Another worker's module is the cluster's; this worker id's own earlier process (still a
  // member until its session times out) is the cluster's only when nobody else is there.
  const others = members.filter((member) => member.workerId !== options.workerId);
  const reference = others.find((member) => member.module.items !== undefined) ?? others[0] ?? members[0];
  return {
    kind: "different",
    message: mismatchMessage(options.module, group.protocolData, reference, others.length === 0, options.workerId),
  };
}

/**
 * The one line a worker refused for its module prints: what differs from `reference` (a
 * member's metadata, when it could be read) and what to do.
 */
export function mismatchMessage(
  mine: ClusterModule,
  groupProtocol: string,
  reference: MemberMetadata | undefined,
  onlyItsOwnEarlierProcess: boolean,
  workerId: string,
): string {
  const theirFingerprint = groupProtocol.slice(GROUP_PROTOCOL_FAMILY.length + 1);
  const fingerprints = `module fingerprint ${theirFingerprint} in the cluster, ${mine.fingerprint} here`;
  let differences: string;
  if (reference?.module.items !== undefined) {
    differences = `${moduleDifferences(mine, reference.module.items, reference.workerId).join("; ")} (${fingerprints})`;
  } else if (reference !== undefined) {
    differences = `worker ${reference.workerId}'s module has too many items to compare here (${fingerprints})`;
  } else {
    differences = fingerprints;
  }
  if (onlyItsOwnEarlierProcess) {
    return (
      `its only member is worker ${workerId}'s earlier process, which ran another module and stays a member ` +
      `until its session times out: ${differences}. If the module changed on purpose, start this worker again ` +
      "once that session has timed out; otherwise start it with the module files it ran before"
    );
  }
  return (
    `its workers run another module than this worker: ${differences}. Start this worker with the module ` +
    "files the cluster's workers run; to change the cluster's function types, ingresses or egresses, stop " +
    "all its workers, then start them with the new module"
  );
}
