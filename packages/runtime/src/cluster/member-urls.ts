// Where each worker of the group can be reached now, as its own latest JoinGroup said
// (DescribeGroups gives every member's metadata while the group is stable). Newer than the URLs
// in an assignment: a worker restarted within the session timeout on another admin port (or
// address) rejoins as the same static member, and Kafka then keeps the generation, and its
// assignment naming the old URLs, without a rebalance. Best effort: no answer is an empty map,
// and the caller falls back to the assignment's URLs. `describeGroup` is the one DescribeGroups
// of the group, which `eddy dead-letters|savepoint --cluster` use too (dead-letter-client.ts).
import { describeGroupsV5 } from "@platformatic/kafka";
import { CoordinatorKeyType, KafkaErrorCode, type KafkaLink, kafkaErrorName, send } from "./kafka-link.ts";
import { decodeMemberMetadata } from "./membership-codec.ts";

export interface MemberUrls {
  readonly url: string;
  readonly adminUrl?: string | undefined;
}

export async function memberUrls(link: KafkaLink, groupId: string): Promise<Map<string, MemberUrls>> {
  const urls = new Map<string, MemberUrls>();
  try {
    const described = await describeGroup(link, groupId);
    if (!described.ok || described.group.groupState !== "Stable") return urls;
    for (const member of described.group.members) {
      const metadata = decodeMemberMetadata(member.memberMetadata);
      if (metadata.ok)
        urls.set(metadata.value.workerId, { url: metadata.value.url, adminUrl: metadata.value.adminUrl });
    }
  } catch {
    // Best effort (see above).
  }
  return urls;
}

/** The group as DescribeGroups gives it, or why not: `code` is Kafka's error code. */
export type DescribedGroup =
  | { readonly ok: true; readonly group: describeGroupsV5.DescribeGroupsResponseGroup }
  | { readonly ok: false; readonly code: number; readonly why: string };

/** FindCoordinator, then DescribeGroups of `groupId` at the coordinator; throws when no broker answers. */
export async function describeGroup(link: KafkaLink, groupId: string): Promise<DescribedGroup> {
  const coordinator = await link.coordinator(CoordinatorKeyType.GROUP, groupId);
  if ("errorCode" in coordinator) {
    return {
      ok: false,
      code: coordinator.errorCode,
      why: `FindCoordinator ${groupId}: ${kafkaErrorName(coordinator.errorCode)}`,
    };
  }
  const response = await send(describeGroupsV5.api.async(await link.node(coordinator.nodeId), [groupId], false));
  const group = response.groups.find((described) => described.groupId === groupId);
  if (group === undefined) return { ok: false, code: -1, why: `DescribeGroups ${groupId}: no answer for the group` };
  if (group.errorCode !== KafkaErrorCode.NONE) {
    return { ok: false, code: group.errorCode, why: `DescribeGroups ${groupId}: ${kafkaErrorName(group.errorCode)}` };
  }
  return { ok: true, group };
}
