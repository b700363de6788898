// A worker's membership in the cluster's consumer group. The pure machine alone (the rules the
// engine relies on: before-rejoin first, lost on any generation gap, a fenced worker id stops),
// then real members against a real Kafka 4.4 broker: join and split, a third joins (sticky, the
// before-rejoin commit under the old generation succeeds), one leaves, one is paused past the
// session timeout (a zombie), and the fence: the zombie's transaction is refused and its records
// never reach a read_committed reader, while the current generation's commits.
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { Producer } from "@platformatic/kafka";
import { type KafkaBroker, startKafka } from "../../../test/support/kafka-broker.ts";
import { assignPartitions } from "../src/cluster/assignor.ts";
import { type ClusterModule, moduleOfItems } from "../src/cluster/cluster-module.ts";
import { ensureClusterTopics } from "../src/cluster/cluster-topics.ts";
import {
  type GroupEffect,
  GroupMachine,
  type GroupRequest,
  groupProtocolName,
  type MembershipSnapshot,
} from "../src/cluster/group-machine.ts";
import { GroupMember, type Scheduler } from "../src/cluster/group-member.ts";
import { KafkaErrorCode, KafkaLink } from "../src/cluster/kafka-link.ts";
import { decodeAssignment, encodeAssignment, encodeMemberMetadata } from "../src/cluster/membership-codec.ts";
import { checkGroupModule } from "../src/cluster/module-check.ts";
import { addGroupToTransaction, commitTransactionalOffsets, fetchStableOffsets } from "../src/cluster/txn-offsets.ts";

/** The module every member of these tests runs, and one that declares another function type. */
const MODULE: ClusterModule = moduleOfItems([
  { kind: "function", name: "gm/counter" },
  { kind: "ingress", name: "io.statefun.playground.v1/ingress" },
]);
const OTHER_MODULE: ClusterModule = moduleOfItems([...MODULE.items, { kind: "function", name: "gm/extra" }]);

describe("GroupMachine (pure)", () => {
  const config = {
    groupId: "eddy.unit",
    workerId: "w1",
    url: "http://w1",
    partitionCount: 4,
    sessionTimeoutMs: 6_000,
    rebalanceTimeoutMs: 10_000,
    heartbeatIntervalMs: 500,
    retryBackoffMs: 100,
    retryBackoffMsMax: 1_000,
    module: MODULE,
    assign: assignPartitions,
  };

  const sent = (effects: GroupEffect[]): GroupRequest => {
    const send = effects.find((effect) => effect.kind === "send");
    assert.ok(send?.kind === "send", `expected a request in ${JSON.stringify(effects.map((e) => e.kind))}`);
    return send.request;
  };

  /** Joins as the only member (the leader) at generation `generation`. */
  const joinAlone = (machine: GroupMachine, join: GroupRequest, generation: number, nowMs: number) => {
    assert.equal(join.kind, "join");
    const sync = sent(
      machine.receive(
        join.id,
        {
          kind: "join",
          errorCode: 0,
          generationId: generation,
          memberId: "m1",
          leader: "m1",
          skipAssignment: false,
          protocolName: groupProtocolName(MODULE),
          members: [{ memberId: "m1", metadata: join.kind === "join" ? join.metadata : Buffer.alloc(0) }],
        },
        nowMs,
      ),
    );
    assert.equal(sync.kind, "sync");
    const mine = sync.kind === "sync" ? sync.assignments.find((a) => a.memberId === "m1") : undefined;
    assert.ok(mine);
    return machine.receive(sync.id, { kind: "sync", errorCode: 0, assignment: mine.assignment }, nowMs);
  };

  it("leads a group of one, then on REBALANCE_IN_PROGRESS waits for the before-rejoin commit before it joins", () => {
    const machine = new GroupMachine(config);
    const assigned = joinAlone(machine, sent(machine.start(0)), 1, 0);
    assert.deepEqual(
      assigned.map((e) => e.kind),
      ["assigned"],
    );
    assert.deepEqual(machine.snapshot?.partitions, [0, 1, 2, 3]);
    assert.equal(machine.nextWakeAtMs, 500);
    const heartbeat = sent(machine.tick(500));
    assert.equal(heartbeat.kind, "heartbeat");
    const revoke = machine.receive(
      heartbeat.id,
      { kind: "heartbeat", errorCode: KafkaErrorCode.REBALANCE_IN_PROGRESS },
      510,
    );
    assert.deepEqual(
      revoke.map((e) => e.kind),
      ["before-rejoin"],
    );
    // The generation still holds while the commit runs; heartbeats go on; no JoinGroup yet.
    assert.equal(machine.snapshot?.generationId, 1);
    assert.equal(sent(machine.tick(1_010)).kind, "heartbeat");
    const join = sent(machine.rejoinReady(1_020));
    assert.equal(join.kind, "join");
    assert.equal(machine.snapshot, undefined, "no commits between JoinGroup and the next SyncGroup");
    // Generation 2 directly follows 1: the partitions are kept, nothing is lost.
    assert.deepEqual(
      joinAlone(machine, join, 2, 1_030).map((e) => e.kind),
      ["assigned"],
    );
    // The join metadata named what the member owned.
    assert.equal(
      join.kind === "join" &&
        join.metadata.equals(
          encodeMemberMetadata({ workerId: "w1", url: "http://w1", owned: [0, 1, 2, 3], module: MODULE }),
        ),
      true,
    );
  });

  it("reports the held partitions lost when a generation passed without it", () => {
    const machine = new GroupMachine(config);
    joinAlone(machine, sent(machine.start(0)), 1, 0);
    const heartbeat = sent(machine.tick(500));
    machine.receive(heartbeat.id, { kind: "heartbeat", errorCode: KafkaErrorCode.REBALANCE_IN_PROGRESS }, 500);
    const join = sent(machine.rejoinReady(600));
    const effects = joinAlone(machine, join, 3, 700);
    assert.deepEqual(
      effects.map((e) => e.kind),
      ["lost", "assigned"],
    );
    const lost = effects[0];
    assert.equal(lost?.kind === "lost" && lost.previous.generationId, 1);
    assert.equal(lost?.kind === "lost" && lost.cause.code, "group-generation-skipped");
  });

  it("on UNKNOWN_MEMBER_ID reports lost and rejoins with a new member id; on FENCED_INSTANCE_ID it stops", () => {
    const machine = new GroupMachine(config);
    joinAlone(machine, sent(machine.start(0)), 1, 0);
    let heartbeat = sent(machine.tick(500));
    const effects = machine.receive(
      heartbeat.id,
      { kind: "heartbeat", errorCode: KafkaErrorCode.UNKNOWN_MEMBER_ID },
      500,
    );
    assert.deepEqual(
      effects.map((e) => e.kind),
      ["lost", "send"],
    );
    const join = sent(effects);
    assert.equal(join.kind === "join" && join.memberId, "", "a static member rejoins by its instance id");
    assert.equal(
      join.kind === "join" &&
        join.metadata.equals(encodeMemberMetadata({ workerId: "w1", url: "http://w1", owned: [], module: MODULE })),
      true,
    );
    joinAlone(machine, join, 2, 600);
    heartbeat = sent(machine.tick(1_100));
    const fenced = machine.receive(
      heartbeat.id,
      { kind: "heartbeat", errorCode: KafkaErrorCode.FENCED_INSTANCE_ID },
      1_100,
    );
    assert.deepEqual(
      fenced.map((e) => e.kind),
      ["lost", "stopped"],
    );
    const stopped = fenced[1];
    assert.equal(stopped?.kind === "stopped" && stopped.cause?.code, "group-instance-fenced");
    assert.equal(machine.tick(10_000).length, 0);
  });

  it("ignores a stale heartbeat answer and backs off on an unreachable coordinator", () => {
    const machine = new GroupMachine(config);
    joinAlone(machine, sent(machine.start(0)), 1, 0);
    const heartbeat = sent(machine.tick(500));
    const effects = machine.receive(heartbeat.id, { kind: "unreachable", message: "ECONNREFUSED" }, 500);
    assert.deepEqual(
      effects.map((e) => e.kind),
      ["forget-coordinator"],
    );
    assert.equal(machine.nextWakeAtMs, 600);
    assert.deepEqual(machine.receive(heartbeat.id, { kind: "heartbeat", errorCode: 0 }, 600), []);
  });

  it("stops on an assignment that gives it a partition the owner map gives another worker", () => {
    const machine = new GroupMachine(config);
    const join = sent(machine.start(0));
    const sync = sent(
      machine.receive(
        join.id,
        {
          kind: "join",
          errorCode: 0,
          generationId: 1,
          memberId: "m1",
          leader: "m0",
          skipAssignment: false,
          protocolName: groupProtocolName(MODULE),
          members: [],
        },
        0,
      ),
    );
    const other = { workerId: "w9", url: "http://w9" };
    const assignment = encodeAssignment({ partitions: [1], owners: [other, other, other, other] });
    assert.ok(decodeAssignment(assignment).ok);
    const effects = machine.receive(sync.id, { kind: "sync", errorCode: 0, assignment }, 0);
    const stopped = effects.find((e) => e.kind === "stopped");
    assert.equal(stopped?.kind === "stopped" && stopped.cause?.code, "group-assignment-malformed");
    assert.match(
      stopped?.kind === "stopped" ? (stopped.cause?.message ?? "") : "",
      /partition 1 given to this worker but owned by w9/,
    );
  });

  it("offers one protocol, the family and its module's fingerprint, and sends the module's items in its metadata", () => {
    const machine = new GroupMachine(config);
    const join = sent(machine.start(0));
    assert.equal(join.kind === "join" && join.protocolName, `eddy-sticky-v2.${MODULE.fingerprint}`);
    assert.match(MODULE.fingerprint, /^[0-9a-f]{16}$/);
    assert.notEqual(OTHER_MODULE.fingerprint, MODULE.fingerprint);
    assert.equal(new GroupMachine({ ...config, module: OTHER_MODULE }).protocolName, groupProtocolName(OTHER_MODULE));
  });

  it("on INCONSISTENT_GROUP_PROTOCOL stops at once, without joining again: the members run another module", () => {
    const machine = new GroupMachine(config);
    const join = sent(machine.start(0));
    const effects = machine.receive(
      join.id,
      {
        kind: "join",
        errorCode: KafkaErrorCode.INCONSISTENT_GROUP_PROTOCOL,
        generationId: -1,
        memberId: "",
        leader: "",
        skipAssignment: false,
        protocolName: null,
        members: [],
      },
      0,
    );
    assert.deepEqual(
      effects.map((e) => e.kind),
      ["stopped"],
    );
    const stopped = effects[0];
    assert.equal(stopped?.kind === "stopped" && stopped.cause?.code, "group-protocol-inconsistent");
    assert.equal(stopped?.kind === "stopped" && stopped.cause?.retriable, false);
    assert.match(
      stopped?.kind === "stopped" ? (stopped.cause?.message ?? "") : "",
      /^eddy\.unit: JoinGroup refused: INCONSISTENT_GROUP_PROTOCOL: its members do not speak eddy-sticky-v2\.[0-9a-f]{16} \(they run another module, or another version of Eddy\)$/,
    );
    assert.equal(machine.phase, "stopped");
    assert.deepEqual(machine.tick(60_000), []);
  });

  it("as the leader, gives no partitions to a member whose metadata names another module than the protocol", () => {
    const machine = new GroupMachine(config);
    const join = sent(machine.start(0));
    const stranger = encodeMemberMetadata({ workerId: "w9", url: "http://w9", owned: [0, 1], module: OTHER_MODULE });
    const effects = machine.receive(
      join.id,
      {
        kind: "join",
        errorCode: 0,
        generationId: 1,
        memberId: "m1",
        leader: "m1",
        skipAssignment: false,
        protocolName: groupProtocolName(MODULE),
        members: [
          { memberId: "m1", metadata: join.kind === "join" ? join.metadata : Buffer.alloc(0) },
          { memberId: "m9", metadata: stranger },
        ],
      },
      0,
    );
    const warning = effects.find((e) => e.kind === "warning");
    assert.match(
      warning?.kind === "warning" ? warning.message : "",
      /member m9 \(worker w9\) gets no partitions: its module's fingerprint is [0-9a-f]{16}, the protocol's [0-9a-f]{16}/,
    );
    const sync = sent(effects);
    const assignments = sync.kind === "sync" ? sync.assignments : [];
    const partitionsOf = (memberId: string) => {
      const assignment = assignments.find((a) => a.memberId === memberId)?.assignment;
      const decoded = assignment === undefined ? undefined : decodeAssignment(assignment);
      return decoded?.ok ? decoded.value.partitions : undefined;
    };
    assert.deepEqual(partitionsOf("m1"), [0, 1, 2, 3]);
    assert.deepEqual(partitionsOf("m9"), []);
  });

  it("as the leader, hands out the admin URLs, in version 2 while a member wrote version 2 (a rolling upgrade)", () => {
    const lead = (members: (join: Buffer) => { memberId: string; metadata: Buffer }[]) => {
      const machine = new GroupMachine({ ...config, adminUrl: "http://w1:8093" });
      const join = sent(machine.start(0));
      const sync = sent(
        machine.receive(
          join.id,
          {
            kind: "join",
            errorCode: 0,
            generationId: 1,
            memberId: "m1",
            leader: "m1",
            skipAssignment: false,
            protocolName: groupProtocolName(MODULE),
            members: members(join.kind === "join" ? join.metadata : Buffer.alloc(0)),
          },
          0,
        ),
      );
      return sync.kind === "sync" ? sync.assignments.map((a) => a.assignment) : [];
    };
    const w8 = encodeMemberMetadata({
      workerId: "w8",
      url: "http://w8",
      adminUrl: "http://w8:8093",
      owned: [],
      module: MODULE,
    });
    const current = lead((mine) => [
      { memberId: "m1", metadata: mine },
      { memberId: "m8", metadata: w8 },
    ]);
    assert.deepEqual(
      current.map((bytes) => bytes[0]),
      [3, 3],
    );
    const owners = current.map((bytes) => decodeAssignment(bytes)).map((d) => (d.ok ? d.value.owners : []));
    assert.deepEqual(
      new Set(owners[0]?.map((owner) => owner?.adminUrl)),
      new Set(["http://w1:8093", "http://w8:8093"]),
    );
    // Version 2's metadata: as version 3's without the admin URL (after "w8" and "http://w8").
    const plain = encodeMemberMetadata({ workerId: "w8", url: "http://w8", owned: [], module: MODULE });
    const v2 = Buffer.concat([Buffer.from([2]), plain.subarray(1, 16), plain.subarray(18)]);
    const mixed = lead((mine) => [
      { memberId: "m1", metadata: mine },
      { memberId: "m8", metadata: v2 },
    ]);
    assert.deepEqual(
      mixed.map((bytes) => bytes[0]),
      [2, 2],
    );
    const decoded = mixed.map((bytes) => decodeAssignment(bytes));
    assert.deepEqual(
      decoded.map((d) => (d.ok ? d.value.partitions.length : -1)),
      [2, 2],
      "both members get partitions",
    );
    assert.ok(decoded.every((d) => d.ok && d.value.owners.every((owner) => owner?.adminUrl === undefined)));
  });
});

// --- Against a real broker ------------------------------------------------------------------

const PARTITIONS = 8;
const SESSION_TIMEOUT_MS = 6_000; // the broker's group.min.session.timeout.ms
const HEARTBEAT_INTERVAL_MS = 500;
const CLUSTER = "gm";
const GROUP = `eddy.${CLUSTER}`;
const INBOX = `eddy.${CLUSTER}.inbox`;
const OUTPUT = "fence-output";

let broker: KafkaBroker;

before(async () => {
  broker = await startKafka();
  const topics = await ensureClusterTopics({
    connection: connection("setup"),
    cluster: CLUSTER,
    partitionCount: PARTITIONS,
  });
  assert.ok(topics.ok, JSON.stringify(topics));
  await broker.createTopic(OUTPUT, 1);
});

after(async () => {
  await broker?.stop();
});

function connection(clientId: string) {
  return { clientId: `eddy-test-${clientId}`, bootstrapBrokers: [broker.bootstrap] };
}

/** A scheduler that can be frozen, as SIGSTOP freezes a process: no timer fires, no answer is heard. */
class PausableScheduler implements Scheduler {
  #paused = false;
  readonly #held: (() => void)[] = [];

  now(): number {
    return Date.now();
  }

  after(delayMs: number, task: () => void): () => void {
    let cancelled = false;
    const timer = setTimeout(() => {
      if (cancelled) return;
      if (this.#paused) this.#held.push(() => cancelled || task());
      else task();
    }, delayMs);
    return () => {
      cancelled = true;
      clearTimeout(timer);
    };
  }

  pause(): void {
    this.#paused = true;
  }

  resume(): void {
    this.#paused = false;
    for (const task of this.#held.splice(0)) task();
  }
}

type Event =
  | { kind: "assigned"; snapshot: MembershipSnapshot; atMs: number }
  | { kind: "before-rejoin"; generationId: number; atMs: number }
  | { kind: "before-rejoin-done"; generationId: number; stillCurrent: boolean; atMs: number }
  | { kind: "lost"; previous: MembershipSnapshot; code: string; atMs: number }
  | { kind: "stopped"; code: string | undefined; message?: string };

interface TestMember {
  readonly workerId: string;
  readonly member: GroupMember;
  readonly events: Event[];
  readonly scheduler: PausableScheduler;
  /** Set to run inside beforeRejoin (the engine's commit). */
  duringRevoke: ((current: MembershipSnapshot) => Promise<void>) | undefined;
}

const members: TestMember[] = [];

function startMember(workerId: string, options: { module?: ClusterModule; groupId?: string } = {}): TestMember {
  const scheduler = new PausableScheduler();
  const events: Event[] = [];
  const handle: TestMember = { workerId, events, scheduler, duringRevoke: undefined, member: undefined as never };
  const member = new GroupMember({
    connection: connection(workerId),
    groupId: options.groupId ?? GROUP,
    workerId,
    url: `http://127.0.0.1/${workerId}`,
    partitionCount: PARTITIONS,
    module: options.module ?? MODULE,
    sessionTimeoutMs: SESSION_TIMEOUT_MS,
    heartbeatIntervalMs: HEARTBEAT_INTERVAL_MS,
    rebalanceTimeoutMs: 10_000,
    assign: assignPartitions,
    scheduler,
    hooks: {
      beforeRejoin: async (current) => {
        events.push({ kind: "before-rejoin", generationId: current.generationId, atMs: Date.now() });
        // Longer than a heartbeat interval: a member that rejoined at once would have no snapshot by now.
        await sleep(HEARTBEAT_INTERVAL_MS * 2);
        await handle.duringRevoke?.(current);
        events.push({
          kind: "before-rejoin-done",
          generationId: current.generationId,
          stillCurrent: member.current() === current,
          atMs: Date.now(),
        });
      },
      onAssigned: (snapshot) => events.push({ kind: "assigned", snapshot, atMs: Date.now() }),
      onLost: (previous, cause) => events.push({ kind: "lost", previous, code: cause.code, atMs: Date.now() }),
      onStopped: (cause) =>
        events.push(
          cause === undefined
            ? { kind: "stopped", code: undefined }
            : { kind: "stopped", code: cause.code, message: cause.message },
        ),
    },
  });
  Object.assign(handle, { member });
  members.push(handle);
  member.start();
  return handle;
}

after(async () => {
  for (const { member, scheduler } of members) {
    scheduler.resume();
    await member.close();
  }
});

/** Waits until every listed member holds the same generation and together they own every partition once. */
async function settled(group: readonly TestMember[], timeoutMs = 20_000): Promise<MembershipSnapshot[]> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const snapshots = group.map((m) => m.member.current());
    if (snapshots.every((s) => s !== undefined)) {
      const all = snapshots as MembershipSnapshot[];
      const generation = all[0]?.generationId;
      const owned = all.flatMap((s) => s.partitions).sort((a, b) => a - b);
      if (
        all.every((s) => s.generationId === generation) &&
        owned.length === PARTITIONS &&
        owned.every((p, i) => p === i)
      ) {
        return all;
      }
    }
    if (Date.now() > deadline) {
      throw new Error(
        `not settled in ${timeoutMs} ms: ${group.map((m) => `${m.workerId}: ${JSON.stringify(m.member.current() && { g: m.member.current()?.generationId, p: m.member.current()?.partitions })}`).join(", ")}`,
      );
    }
    await sleep(50);
  }
}

/** Every snapshot's owner map says the same, and says each member owns exactly its partitions. */
function assertOwnerMaps(group: readonly TestMember[], snapshots: readonly MembershipSnapshot[]): void {
  const reference = snapshots[0]?.owners;
  snapshots.forEach((snapshot, index) => {
    assert.deepEqual(snapshot.owners, reference, "every member has the same owner map");
    const workerId = group[index]?.workerId;
    for (let p = 0; p < PARTITIONS; p++) {
      assert.equal(snapshot.owners[p]?.workerId === workerId, snapshot.partitions.includes(p), `partition ${p}`);
    }
    assert.equal(snapshot.owners[snapshot.partitions[0] as number]?.url, `http://127.0.0.1/${workerId}`);
  });
}

function transactionalProducer(workerId: string): Producer {
  return new Producer({
    ...connection(`producer-${workerId}`),
    transactionalId: `${GROUP}.w.${workerId}`,
    idempotent: true,
    acks: -1,
    autocreateTopics: false,
    timeout: 10_000,
    producerId: -1n,
    producerEpoch: -1,
  });
}

/** One transaction as an engine commit makes it: records, then the inbox offsets under `member`; commit or abort. */
async function commitAs(
  producer: Producer,
  link: KafkaLink,
  member: MembershipSnapshot,
  value: string,
  offsets: ReadonlyMap<number, bigint>,
) {
  const transaction = await producer.beginTransaction();
  await transaction.send({
    messages: [{ topic: OUTPUT, partition: 0, key: Buffer.from(value), value: Buffer.from(value) }],
  });
  const added = await addGroupToTransaction(link, producer, member);
  const committed = added.ok ? await commitTransactionalOffsets(link, producer, member, INBOX, offsets) : added;
  if (committed.ok) await transaction.commit();
  else await transaction.abort();
  return committed;
}

describe("GroupMember against Kafka 4.4", { concurrency: false }, () => {
  let a: TestMember;
  let b: TestMember;
  let c: TestMember;
  let link: KafkaLink;
  let producerA: Producer;

  before(() => {
    link = new KafkaLink(connection("txn"), { requestTimeoutMs: 15_000 });
    producerA = transactionalProducer("w1");
  });

  after(async () => {
    await producerA?.close();
    await link?.close();
  });

  it("two members split the partitions 4/4 with one owner map", async () => {
    a = startMember("w1");
    b = startMember("w2");
    const snapshots = await settled([a, b]);
    assert.deepEqual(
      snapshots.map((s) => s.partitions.length),
      [4, 4],
    );
    assertOwnerMaps([a, b], snapshots);
    assert.equal(snapshots.filter((s) => s.leader).length, 1, "one leader");
    assert.notEqual(snapshots[0]?.memberId, snapshots[1]?.memberId);
    assert.deepEqual(
      snapshots.map((s) => s.groupInstanceId),
      ["w1", "w2"],
    );
  });

  it("a third joins: the generation moves on, the old members keep what balance allows, and each commits under the old generation before it rejoins", async () => {
    const [beforeA, beforeB] = [a.member.current(), b.member.current()] as MembershipSnapshot[];
    assert.ok(beforeA && beforeB);
    // The engine's commit in beforeRejoin: a transaction under the generation that is ending.
    const revokeCommits: { generationId: number; ok: boolean; code?: string }[] = [];
    a.duringRevoke = async (current) => {
      const result = await commitAs(
        producerA,
        link,
        current,
        "a-during-revoke",
        new Map([[current.partitions[0] as number, 1n]]),
      );
      revokeCommits.push({
        generationId: current.generationId,
        ok: result.ok,
        ...(result.ok ? {} : { code: result.code }),
      });
    };
    c = startMember("w3");
    const snapshots = await settled([a, b, c]);
    a.duringRevoke = undefined;
    const [afterA, afterB, afterC] = snapshots as [MembershipSnapshot, MembershipSnapshot, MembershipSnapshot];
    assert.ok(afterA.generationId > beforeA.generationId);
    assert.deepEqual(snapshots.map((s) => s.partitions.length).sort(), [2, 3, 3]);
    for (const [was, now] of [
      [beforeA, afterA],
      [beforeB, afterB],
    ] as const) {
      assert.ok(now.partitions.length >= 2);
      assert.ok(
        now.partitions.every((p) => was.partitions.includes(p)),
        `sticky: ${now.partitions} ⊆ ${was.partitions}`,
      );
    }
    assert.equal(afterC.partitions.length, 2);
    assertOwnerMaps([a, b, c], snapshots);
    // Each old member's hook ran for the old generation, was awaited (the generation was still
    // current when it finished), and only then came the new assignment.
    for (const m of [a, b]) {
      const start = m.events.findLast((e) => e.kind === "before-rejoin");
      const done = m.events.findLast((e) => e.kind === "before-rejoin-done");
      const assigned = m.events.findLast((e) => e.kind === "assigned");
      assert.equal(start?.kind === "before-rejoin" && start.generationId, beforeA.generationId, m.workerId);
      assert.ok(
        done?.kind === "before-rejoin-done" && done.stillCurrent,
        `${m.workerId}: no rejoin before the hook ended`,
      );
      assert.ok(done.atMs <= (assigned?.atMs ?? 0));
      assert.equal(
        m.events.some((e) => e.kind === "lost"),
        false,
        `${m.workerId} lost nothing`,
      );
    }
    assert.deepEqual(revokeCommits, [{ generationId: beforeA.generationId, ok: true }]);
  });

  it("one leaves: the others get everything at once, without waiting for a session timeout", async () => {
    const started = Date.now();
    await c.member.leave();
    assert.deepEqual(c.events.at(-1), { kind: "stopped", code: undefined });
    const snapshots = await settled([a, b]);
    assert.ok(Date.now() - started < SESSION_TIMEOUT_MS, `took ${Date.now() - started} ms`);
    assert.deepEqual(
      snapshots.map((s) => s.partitions.length),
      [4, 4],
    );
    assertOwnerMaps([a, b], snapshots);
  });

  it("a member paused past the session timeout is removed; its transaction is fenced; resumed, it learns it lost its partitions", async () => {
    const zombie = b.member.current() as MembershipSnapshot;
    assert.ok(zombie);
    b.scheduler.pause();
    try {
      const pausedAt = Date.now();
      // The coordinator expels w2 after its session timeout; w1 takes all eight.
      const [alone] = await settled([a], SESSION_TIMEOUT_MS + 10_000);
      assert.ok(alone && alone.generationId > zombie.generationId);
      assert.ok(Date.now() - pausedAt >= SESSION_TIMEOUT_MS - 1_000, `expelled after ${Date.now() - pausedAt} ms`);

      // THE FENCE. The zombie still has its producer and its old generation: refused, aborted.
      const producerB = transactionalProducer("w2");
      try {
        const offsets = new Map(zombie.partitions.map((p) => [p, 99n] as const));
        const fenced = await commitAs(producerB, link, zombie, "zombie", offsets);
        assert.equal(!fenced.ok && fenced.code, "txn-offsets-fenced");
        assert.match(!fenced.ok ? fenced.message : "", /UNKNOWN_MEMBER_ID|ILLEGAL_GENERATION|FENCED_INSTANCE_ID/);
        // The current generation commits.
        const current = a.member.current() as MembershipSnapshot;
        const committed = await commitAs(
          producerA,
          link,
          current,
          "current",
          new Map(zombie.partitions.map((p) => [p, 7n] as const)),
        );
        assert.deepEqual(committed, { ok: true, value: undefined });
        const stable = await fetchStableOffsets(link, GROUP, INBOX, zombie.partitions, 10_000);
        assert.ok(stable.ok);
        assert.deepEqual(
          [...stable.value.values()],
          zombie.partitions.map(() => 7n),
        );
      } finally {
        await producerB.close();
      }
      // Kafka's own Java consumer, read_committed: the zombie's record never shows.
      const seen = (await broker.readCommitted(OUTPUT, 2_000)).map((record) => record.value);
      assert.deepEqual(seen.sort(), ["a-during-revoke", "current"]);
    } finally {
      // Resumed: its next heartbeat hears it is gone, it reports the loss and joins again.
      b.scheduler.resume();
    }
    const snapshots = await settled([a, b]);
    assert.deepEqual(
      snapshots.map((s) => s.partitions.length),
      [4, 4],
    );
    const lost = b.events.find((e) => e.kind === "lost");
    assert.ok(lost?.kind === "lost");
    assert.equal(lost.previous, zombie);
    assert.equal(lost.code, "group-member-lost");
    const lostAt = b.events.indexOf(lost);
    assert.ok(
      b.events.findIndex((e, i) => i > lostAt && e.kind === "assigned") > lostAt,
      "lost is reported before the next assignment",
    );
    assert.notEqual(snapshots[1]?.memberId, zombie.memberId, "a new member id for the same instance");
  });

  it("a worker restarted within the session timeout (static membership) gets its partitions back in the same generation, without a rebalance", async () => {
    const [beforeA, beforeB] = await settled([a, b]);
    assert.ok(beforeA && beforeB);
    const eventsOfA = a.events.length;
    // A crash: no LeaveGroup. The new process joins as the same instance, owning nothing yet.
    await b.member.close();
    b = startMember("w2");
    const [afterA, afterB] = await settled([a, b]);
    assert.equal(afterB?.generationId, beforeB.generationId);
    assert.deepEqual(afterB?.partitions, beforeB.partitions);
    assert.notEqual(afterB?.memberId, beforeB.memberId);
    assert.deepEqual(afterB?.owners, beforeB.owners);
    assert.equal(afterA, beforeA, "the other member's snapshot is untouched");
    assert.deepEqual(a.events.slice(eventsOfA), [], "no rebalance reached the other member");
  });

  it("a worker whose module declares another function type is refused at once, naming the difference; the members never hear of it", async () => {
    const [beforeA, beforeB] = await settled([a, b]);
    const [eventsOfA, eventsOfB] = [a.events.length, b.events.length];
    const startedAt = Date.now();
    const stranger = startMember("w3", { module: OTHER_MODULE });
    const cause = await stranger.member.stopped;
    assert.ok(Date.now() - startedAt < 5_000, `refused after ${Date.now() - startedAt} ms`);
    assert.equal(cause?.code, "group-module-mismatch");
    assert.equal(cause?.retriable, false);
    const message = cause?.message ?? "";
    assert.match(
      message,
      /^eddy\.gm: its workers run another module than this worker: function type gm\/extra is declared by this worker's module but not by worker w[12]'s \(module fingerprint [0-9a-f]{16} in the cluster, [0-9a-f]{16} here\)\. Start this worker with the module files the cluster's workers run; to change the cluster's function types, ingresses or egresses, stop all its workers, then start them with the new module$/,
    );
    assert.ok(message.includes(`fingerprint ${MODULE.fingerprint} in the cluster, ${OTHER_MODULE.fingerprint} here`));
    assert.deepEqual(stranger.events, [{ kind: "stopped", code: "group-module-mismatch", message }]);
    // A few heartbeats later the members still hold the same generation: no rebalance happened.
    await sleep(HEARTBEAT_INTERVAL_MS * 4);
    assert.equal(a.member.current(), beforeA);
    assert.equal(b.member.current(), beforeB);
    assert.deepEqual([a.events.length, b.events.length], [eventsOfA, eventsOfB]);
    await stranger.member.close();
  });

  it("a worker restarted within the session timeout with another module is refused; with the cluster's, it gets its partitions back", async () => {
    const [beforeA, beforeB] = await settled([a, b]);
    assert.ok(beforeA && beforeB);
    const eventsOfA = a.events.length;
    await b.member.close();
    const changed = startMember("w2", { module: OTHER_MODULE });
    const cause = await changed.member.stopped;
    assert.equal(cause?.code, "group-module-mismatch");
    // The other member's module is the cluster's, not the one of w2's earlier process.
    assert.match(
      cause?.message ?? "",
      /: its workers run another module than this worker: function type gm\/extra is declared by this worker's module but not by worker w1's /,
    );
    await changed.member.close();
    b = startMember("w2");
    const [afterA, afterB] = await settled([a, b]);
    assert.equal(afterB?.generationId, beforeB.generationId);
    assert.deepEqual(afterB?.partitions, beforeB.partitions);
    assert.equal(afterA, beforeA);
    assert.deepEqual(a.events.slice(eventsOfA), [], "no rebalance reached the other member");
  });

  it("checkGroupModule says whether a module is the group's, and that a group nobody joined is empty", async () => {
    const check = (module: ClusterModule, groupId = GROUP) =>
      checkGroupModule({ link, groupId, workerId: "w9", module, settleWaitMs: 5_000 });
    assert.deepEqual(await check(MODULE), { kind: "same" });
    const other = await check(OTHER_MODULE);
    assert.equal(other.kind, "different");
    assert.deepEqual(await check(OTHER_MODULE, "eddy.nobody-joined"), { kind: "empty" });
  });

  it("leave() takes both out of the group", async () => {
    await Promise.all([a.member.leave(), b.member.leave()]);
    for (const m of [a, b]) assert.deepEqual(m.events.at(-1), { kind: "stopped", code: undefined });
  });
});

describe("the cluster's module is the one its members run", { concurrency: false }, () => {
  const groupId = "eddy.gm-module";

  it("a worker id's earlier process, still a member, keeps another module out until its session times out; then the new module is the cluster's", async () => {
    const first = startMember("x1", { groupId });
    await settled([first]);
    // A crash, and a start with a changed module within the session timeout.
    await first.member.close();
    const early = startMember("x1", { groupId, module: OTHER_MODULE });
    const cause = await early.member.stopped;
    assert.equal(cause?.code, "group-module-mismatch");
    assert.match(
      cause?.message ?? "",
      /^eddy\.gm-module: its only member is worker x1's earlier process, which ran another module and stays a member until its session times out: function type gm\/extra is declared by this worker's module but not by worker x1's \(module fingerprint [0-9a-f]{16} in the cluster, [0-9a-f]{16} here\)\. If the module changed on purpose, start this worker again once that session has timed out; otherwise start it with the module files it ran before$/,
    );
    await early.member.close();
    const link = new KafkaLink(connection("module-check"), { requestTimeoutMs: 10_000 });
    try {
      const deadline = Date.now() + SESSION_TIMEOUT_MS * 3;
      for (;;) {
        const check = await checkGroupModule({
          link,
          groupId,
          workerId: "x1",
          module: OTHER_MODULE,
          settleWaitMs: 1_000,
        });
        if (check.kind === "empty") break;
        assert.ok(Date.now() < deadline, `the group is not empty: ${JSON.stringify(check)}`);
        await sleep(500);
      }
    } finally {
      await link.close();
    }
    const upgraded = startMember("x1", { groupId, module: OTHER_MODULE });
    await settled([upgraded]);
    // Now the cluster runs the other module, and a worker with the first one is refused.
    const old = startMember("x2", { groupId });
    const refused = await old.member.stopped;
    assert.match(
      refused?.message ?? "",
      /its workers run another module than this worker: function type gm\/extra is declared by worker x1's module but not by this one /,
    );
    await old.member.close();
    await upgraded.member.leave();
  });
});
