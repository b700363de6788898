// The assignor the consumer group's leader runs: it hands the runtime's partitions to the
// workers, balanced (each gets floor or ceil of partitions/members) and sticky (a member keeps as
// many of the partitions it owned as balance allows, so a rebalance moves only what it must:
// every moved partition is a restore somewhere). Pure and deterministic: the same members in
// any order give the same answer, because every leader of every generation must agree with the
// others' view of what a fair, minimal move is, and the simulation replays it from a seed.
//
// Claims come from members' join metadata and are not trusted: out-of-range, non-integer or
// duplicate entries are dropped, and a partition claimed by two members (a zombie that still
// lists what a newer generation gave away) goes to the first of them in (workerId, memberId)
// order. Correctness never rests on claims (the generation fence does that); they only steer
// movement.
import { BugError } from "../errors.ts";

export interface AssignorMember {
  readonly memberId: string; // Kafka's member id for this generation
  readonly workerId: string; // stable across restarts (--worker-id)
  readonly owned: readonly number[]; // partitions it owned in the previous generation (from its join metadata)
}

const UNOWNED = -1;

/**
 * Every partition 0..partitionCount-1 to exactly one member, keyed by memberId, each list sorted.
 * O(members·log members + partitions + claims): the only sort is of the members themselves.
 */
export function assignPartitions(
  members: readonly AssignorMember[],
  partitionCount: number,
): Map<string /* memberId */, number[] /* sorted */> {
  if (!Number.isSafeInteger(partitionCount) || partitionCount < 0) {
    throw new BugError(`assignPartitions: partitionCount must be a non-negative integer, got ${partitionCount}`);
  }
  const result = new Map<string, number[]>();
  if (members.length === 0) return result;

  const ordered = [...members].sort(compareMembers);
  for (const member of ordered) {
    if (result.has(member.memberId)) throw new BugError(`assignPartitions: member id ${member.memberId} given twice`);
    result.set(member.memberId, []);
  }

  // Resolve claims: the first claimant in member order wins a contested partition.
  const claimant = new Int32Array(partitionCount).fill(UNOWNED);
  const claimed = ordered.map(() => 0);
  ordered.forEach((member, index) => {
    const owned: readonly unknown[] = Array.isArray(member.owned) ? member.owned : [];
    for (const partition of owned) {
      if (!Number.isInteger(partition)) continue;
      const n = partition as number;
      if (n < 0 || n >= partitionCount || claimant[n] !== UNOWNED) continue;
      claimant[n] = index;
      claimed[index] = (claimed[index] ?? 0) + 1;
    }
  });

  // Quotas: floor for everyone, and the `extra` ceil slots first to members that claimed more
  // than the floor (each such slot saves exactly one move), then to the rest in member order.
  const base = Math.floor(partitionCount / ordered.length);
  let extra = partitionCount % ordered.length;
  const quota = ordered.map(() => base);
  for (let index = 0; index < ordered.length && extra > 0; index++) {
    if ((claimed[index] ?? 0) > base) {
      quota[index] = base + 1;
      extra--;
    }
  }
  for (let index = 0; index < ordered.length && extra > 0; index++) {
    if (quota[index] === base) {
      quota[index] = base + 1;
      extra--;
    }
  }

  // Keep claims up to the quota (lowest partitions first), then fill the members still short
  // with the free partitions in ascending order. Two linear passes over the partitions.
  const owner = new Int32Array(partitionCount).fill(UNOWNED);
  const taken = ordered.map(() => 0);
  for (let n = 0; n < partitionCount; n++) {
    const index = claimant[n] as number;
    if (index === UNOWNED || (taken[index] as number) >= (quota[index] as number)) continue;
    owner[n] = index;
    taken[index] = (taken[index] as number) + 1;
  }
  let filling = 0;
  for (let n = 0; n < partitionCount; n++) {
    if (owner[n] !== UNOWNED) continue;
    while ((taken[filling] as number) >= (quota[filling] as number)) filling++;
    owner[n] = filling;
    taken[filling] = (taken[filling] as number) + 1;
  }

  // Walking partitions in order yields each member's list already sorted.
  const lists = ordered.map((member) => result.get(member.memberId) as number[]);
  for (let n = 0; n < partitionCount; n++) (lists[owner[n] as number] as number[]).push(n);
  return result;
}

function compareMembers(a: AssignorMember, b: AssignorMember): number {
  if (a.workerId !== b.workerId) return a.workerId < b.workerId ? -1 : 1;
  if (a.memberId !== b.memberId) return a.memberId < b.memberId ? -1 : 1;
  return 0;
}
