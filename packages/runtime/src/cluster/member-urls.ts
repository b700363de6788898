// Where each worker of the group can be reached now, as its own latest JoinGroup said
// (DescribeGroups gives every member's metadata while the group is stable). Newer than the URLs
// in an assignment: a worker restarted within the session timeout on another admin port (or
// address) rejoins as the same static member, and Kafka then keeps the generation, and its
// assignment naming the old URLs, without a rebalance. Best effort: no answer is an empty map,
// and the caller falls back to the assignment's URLs.
import { describeGroupsV5 } from "@platformatic/kafka";
import { CoordinatorKeyType, KafkaErrorCode, type KafkaLink, send } from "./kafka-link.ts";
import { decodeMemberMetadata } from "./membership-codec.ts";

export interface MemberUrls {
  readonly url: string;
  readonly adminUrl?: string | undefined;
}

export async function memberUrls(link: KafkaLink, groupId: string): Promise<Map<string, MemberUrls>> {
  const urls = new Map<string, MemberUrls>();
  try {
    const coordinator = await link.coordinator(CoordinatorKeyType.GROUP, groupId);
    if ("errorCode" in coordinator) return urls;
    const response = await send(describeGroupsV5.api.async(await link.node(coordinator.nodeId), [groupId], false));
    const group = response.groups.find((described) => described.groupId === groupId);
    if (group === undefined || group.errorCode !== KafkaErrorCode.NONE || group.groupState !== "Stable") return urls;
    for (const member of group.members) {
      const metadata = decodeMemberMetadata(member.memberMetadata);
      if (metadata.ok)
        urls.set(metadata.value.workerId, { url: metadata.value.url, adminUrl: metadata.value.adminUrl });
    }
  } catch {
    // Best effort (see above).
  }
  return urls;
}
