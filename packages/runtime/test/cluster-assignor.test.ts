// The group leader's assignor: every partition to exactly one member, balanced to ±1, sticky
// with the fewest moves balance allows, and the same answer whatever the order of its input.
// Table tests pin the rules on small cases; a seeded property test walks random membership
// changes (joins, leaves, restarts, zombie and garbage claims) and checks every rule each step.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { type AssignorMember, assignPartitions } from "../src/cluster/assignor.ts";
import { BugError } from "../src/errors.ts";
import { Random } from "./sim/random.ts";

const member = (workerId: string, owned: readonly number[] = [], memberId = `${workerId}-m`): AssignorMember => ({
  memberId,
  workerId,
  owned,
});

const sizes = (assignment: Map<string, number[]>) => [...assignment.values()].map((list) => list.length);

/** Fails unless every partition is assigned exactly once, lists are sorted and sizes are floor/ceil. */
function assertValid(members: readonly AssignorMember[], partitionCount: number, assignment: Map<string, number[]>) {
  assert.deepEqual([...assignment.keys()].sort(), members.map((m) => m.memberId).sort());
  const seen = new Set<number>();
  for (const [memberId, list] of assignment) {
    for (let index = 0; index < list.length; index++) {
      const n = list[index] as number;
      assert.ok(Number.isInteger(n) && n >= 0 && n < partitionCount, `${memberId} got ${n}`);
      assert.ok(!seen.has(n), `partition ${n} assigned twice`);
      seen.add(n);
      if (index > 0) assert.ok((list[index - 1] as number) < n, `${memberId}'s list is not sorted`);
    }
  }
  assert.equal(seen.size, partitionCount);
  if (members.length === 0) return;
  const floor = Math.floor(partitionCount / members.length);
  for (const size of sizes(assignment))
    assert.ok(size === floor || size === floor + 1, `unbalanced: ${sizes(assignment)}`);
}

/** Each member's valid claims, contested ones given to the first claimant in (workerId, memberId) order. */
function resolvedClaims(members: readonly AssignorMember[], partitionCount: number): Map<string, Set<number>> {
  const ordered = [...members].sort((a, b) =>
    a.workerId === b.workerId ? a.memberId.localeCompare(b.memberId) : a.workerId < b.workerId ? -1 : 1,
  );
  const taken = new Set<number>();
  const claims = new Map<string, Set<number>>();
  for (const m of ordered) {
    const mine = new Set<number>();
    for (const n of m.owned) {
      if (Number.isInteger(n) && n >= 0 && n < partitionCount && !taken.has(n)) {
        taken.add(n);
        mine.add(n);
      }
    }
    claims.set(m.memberId, mine);
  }
  return claims;
}

/** Partitions kept by their claimant, and the most any balanced assignment could keep. */
function stickiness(members: readonly AssignorMember[], partitionCount: number, assignment: Map<string, number[]>) {
  const claims = resolvedClaims(members, partitionCount);
  let kept = 0;
  for (const [memberId, list] of assignment) {
    const mine = claims.get(memberId) as Set<number>;
    const keptHere = list.filter((n) => mine.has(n)).length;
    // Per member: it keeps as many of its claims as its share allows.
    assert.equal(keptHere, Math.min(mine.size, list.length), `${memberId} gave up partitions it could keep`);
    kept += keptHere;
  }
  // Globally: the ceil shares went to members that could use them.
  const floor = Math.floor(partitionCount / members.length);
  const counts = [...claims.values()].map((set) => set.size);
  const over = counts.filter((count) => count > floor).length;
  const best =
    counts.reduce((sum, count) => sum + Math.min(count, floor), 0) + Math.min(partitionCount % members.length, over);
  const claimedTotal = counts.reduce((sum, count) => sum + count, 0);
  return { kept, best, moves: claimedTotal - kept };
}

describe("assignPartitions", () => {
  it("no members: an empty map", () => {
    assert.equal(assignPartitions([], 128).size, 0);
  });

  it("one member takes every partition", () => {
    const assignment = assignPartitions([member("w1")], 8);
    assert.deepEqual(assignment.get("w1-m"), [0, 1, 2, 3, 4, 5, 6, 7]);
  });

  it("a fresh group of three splits 128 partitions 43/43/42, the extra partitions to the first workers", () => {
    const members = [member("w3"), member("w1"), member("w2")];
    const assignment = assignPartitions(members, 128);
    assertValid(members, 128, assignment);
    assert.deepEqual(
      [assignment.get("w1-m")?.length, assignment.get("w2-m")?.length, assignment.get("w3-m")?.length],
      [43, 43, 42],
    );
    assert.deepEqual(assignment.get("w1-m")?.slice(0, 3), [0, 1, 2]);
  });

  it("the same members in any order get the same assignment", () => {
    const members = [member("w2", [1, 2, 3, 9]), member("w1", [3, 4, 5]), member("w3", [0]), member("w1", [6], "w1-b")];
    const expected = assignPartitions(members, 10);
    for (const order of [
      [3, 2, 1, 0],
      [1, 3, 0, 2],
      [2, 0, 3, 1],
    ]) {
      assert.deepEqual(
        assignPartitions(
          order.map((index) => members[index] as AssignorMember),
          10,
        ),
        expected,
      );
    }
  });

  it("a balanced group keeps everything when nothing changed", () => {
    const members = [member("a", [0, 2, 4, 6]), member("b", [1, 3, 5, 7])];
    const assignment = assignPartitions(members, 8);
    assert.deepEqual(assignment.get("a-m"), [0, 2, 4, 6]);
    assert.deepEqual(assignment.get("b-m"), [1, 3, 5, 7]);
  });

  it("a third worker joining two takes 42 partitions, 21 from each, and nothing else moves", () => {
    const first = Array.from({ length: 64 }, (_, n) => n);
    const second = Array.from({ length: 64 }, (_, n) => n + 64);
    const members = [member("a", first), member("b", second), member("c")];
    const assignment = assignPartitions(members, 128);
    assertValid(members, 128, assignment);
    assert.equal(assignment.get("c-m")?.length, 42);
    assert.equal(assignment.get("a-m")?.filter((n) => n < 64).length, 43);
    assert.equal(assignment.get("b-m")?.filter((n) => n >= 64).length, 43);
  });

  it("a worker leaving hands only its own partitions to the others", () => {
    const before = assignPartitions([member("a"), member("b"), member("c")], 12);
    const members = [member("a", before.get("a-m")), member("c", before.get("c-m"))];
    const after = assignPartitions(members, 12);
    assertValid(members, 12, after);
    for (const n of before.get("a-m") ?? []) assert.ok(after.get("a-m")?.includes(n));
    for (const n of before.get("c-m") ?? []) assert.ok(after.get("c-m")?.includes(n));
  });

  it("a partition claimed by two members (a zombie's stale claim) goes to one of them, the first by worker id", () => {
    const members = [member("b", [0, 1]), member("a", [1, 2])];
    const assignment = assignPartitions(members, 4);
    assertValid(members, 4, assignment);
    assert.ok(assignment.get("a-m")?.includes(1));
    assert.ok(!assignment.get("b-m")?.includes(1));
    assert.ok(assignment.get("b-m")?.includes(0));
  });

  it("a restarted worker (same worker id, new member id) beside its zombie: ordered by member id, never both", () => {
    const members = [member("w", [0, 1], "w-2"), member("w", [0, 1], "w-1")];
    const assignment = assignPartitions(members, 4);
    assertValid(members, 4, assignment);
    assert.deepEqual(assignment.get("w-1"), [0, 1]);
    assert.deepEqual(assignment.get("w-2"), [2, 3]);
  });

  it("malformed claims (out of range, negative, fractional, NaN, duplicated, not numbers) are ignored, not thrown", () => {
    const garbage = [-1, 4, 1.5, Number.NaN, Number.POSITIVE_INFINITY, 2, 2, 2, "3" as unknown as number];
    const members = [member("a", garbage), member("b", null as unknown as number[]), member("c", [3, 3])];
    const assignment = assignPartitions(members, 4);
    assertValid(members, 4, assignment);
    assert.ok(assignment.get("a-m")?.includes(2));
    assert.ok(assignment.get("c-m")?.includes(3));
  });

  it("more members than partitions: some get none; zero partitions: everyone gets none", () => {
    const members = [member("a", [0]), member("b", [0]), member("c", [1]), member("d")];
    const assignment = assignPartitions(members, 2);
    assertValid(members, 2, assignment);
    assert.deepEqual(assignment.get("a-m"), [0]);
    assert.deepEqual(assignment.get("c-m"), [1]);
    assert.deepEqual(sizes(assignPartitions(members, 0)), [0, 0, 0, 0]);
  });

  it("the extra (ceil) shares go to members that claimed more than the floor", () => {
    // 7 partitions, 3 members: floor 2, one extra. Only c claimed 3, so c keeps all of them.
    const members = [member("a", [0]), member("b", [1]), member("c", [2, 3, 4])];
    const assignment = assignPartitions(members, 7);
    assertValid(members, 7, assignment);
    assert.deepEqual(assignment.get("c-m"), [2, 3, 4]);
  });

  it("a member id given twice is a bug in the caller", () => {
    assert.throws(() => assignPartitions([member("a", [], "x"), member("b", [], "x")], 4), BugError);
    assert.throws(() => assignPartitions([member("a")], -1), BugError);
  });
});

describe("assignPartitions under random membership changes", () => {
  it("every step is complete, balanced, order-independent and moves only what balance requires", () => {
    let steps = 0;
    let joins = 0;
    let leaves = 0;
    let contested = 0;
    let movedTotal = 0;
    for (let seed = 1; seed <= 200; seed++) {
      const random = new Random(seed);
      const partitionCount = random.pick([1, 7, 16, 128, 200]);
      let workers = 0;
      let current: AssignorMember[] = [member(`w${workers++}`)];
      let assignment = assignPartitions(current, partitionCount);
      for (let step = 0; step < 30; step++) {
        // Next generation: everyone claims what it was given, then the membership changes.
        let next: AssignorMember[] = current.map((m) => ({ ...m, owned: assignment.get(m.memberId) ?? [] }));
        for (let change = random.int(3); change > 0; change--) {
          const roll = random.next();
          if (roll < 0.35 || next.length === 0) {
            next.push(member(`w${workers++}`));
            joins++;
          } else if (roll < 0.65 && next.length > 1) {
            next.splice(random.int(next.length), 1);
            leaves++;
          } else if (roll < 0.8) {
            // A zombie: a new member claiming partitions someone else holds.
            const victim = random.pick(next);
            next.push(member(`z${workers++}`, victim.owned.slice(0, 1 + random.int(victim.owned.length + 1))));
            contested++;
          } else if (roll < 0.9) {
            // A restart: the same worker comes back with a new member id and its claims.
            const index = random.int(next.length);
            const old = next[index] as AssignorMember;
            next[index] = member(old.workerId, old.owned, `${old.workerId}-r${step}`);
          } else {
            // Garbage in the join metadata of one member.
            const index = random.int(next.length);
            const old = next[index] as AssignorMember;
            next[index] = { ...old, owned: [...old.owned, -3, partitionCount, 0.5, ...old.owned.slice(0, 2)] };
          }
        }
        if (next.length === 0) next = [member(`w${workers++}`)];
        const result = assignPartitions(next, partitionCount);
        assertValid(next, partitionCount, result);
        assert.deepEqual(assignPartitions([...next].reverse(), partitionCount), result, `seed ${seed} step ${step}`);
        const shuffled = [...next];
        for (let index = shuffled.length - 1; index > 0; index--) {
          const other = random.int(index + 1);
          [shuffled[index], shuffled[other]] = [shuffled[other] as AssignorMember, shuffled[index] as AssignorMember];
        }
        assert.deepEqual(assignPartitions(shuffled, partitionCount), result, `seed ${seed} step ${step}`);
        // Kept = the most any balanced assignment could keep, so moves = what balance requires.
        const { kept, best, moves } = stickiness(next, partitionCount, result);
        assert.equal(kept, best, `seed ${seed} step ${step}: kept ${kept} of a possible ${best}`);
        movedTotal += moves;
        current = next;
        assignment = result;
        steps++;
      }
    }
    // The walk must have exercised what it claims to.
    assert.ok(joins > 500 && leaves > 300 && contested > 100 && movedTotal > 0, `${joins} ${leaves} ${contested}`);
    assert.equal(steps, 200 * 30);
  });

  it("with a balanced previous assignment, moves equal exactly the surplus of members over their new share", () => {
    for (let seed = 1; seed <= 200; seed++) {
      const random = new Random(seed);
      const partitionCount = 1 + random.int(150);
      const before = Array.from({ length: 1 + random.int(6) }, (_, index) => member(`w${index}`));
      const first = assignPartitions(before, partitionCount);
      // Some leave, some join; survivors claim exactly what they had.
      const survivors = before.filter(() => random.chance(0.7)).map((m) => member(m.workerId, first.get(m.memberId)));
      const joiners = Array.from({ length: random.int(4) }, (_, index) => member(`n${index}`));
      const after = [...survivors, ...joiners];
      if (after.length === 0) continue;
      const second = assignPartitions(after, partitionCount);
      assertValid(after, partitionCount, second);
      const share = Math.floor(partitionCount / after.length);
      // Independent count: what survivors hold beyond the floor, minus the ceil shares they can use.
      const surplus = survivors.map((m) => Math.max(0, m.owned.length - share));
      const ceilUsable = Math.min(partitionCount % after.length, surplus.filter((s) => s > 0).length);
      const required = surplus.reduce((sum, s) => sum + s, 0) - ceilUsable;
      let moved = 0;
      for (const m of survivors) moved += m.owned.filter((n) => !second.get(m.memberId)?.includes(n)).length;
      assert.equal(moved, required, `seed ${seed}`);
    }
  });
});
