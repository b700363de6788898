// The simulated Kafka the cluster simulation will run on: each broker behaviour Eddy's
// exactly-once rests on (transactions and the LSO, producer fencing, the group generation fence
// in TxnOffsetCommit, require_stable, transaction timeouts, session timeouts and rebalances,
// static membership, DeleteRecords), pinned the way Kafka behaves, with its error names.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { BugError } from "../src/errors.ts";
import {
  type FetchedRecord,
  type JoinGroupRequest,
  type JoinGroupResponse,
  type KafkaResult,
  type ProducerIdentity,
  SimKafka,
} from "./sim/kafka.ts";
import { Random } from "./sim/random.ts";

const encoder = new TextEncoder();
const decoder = new TextDecoder();
const bytes = (text: string) => encoder.encode(text);
const record = (text: string) => ({ key: null, value: bytes(text) });
const texts = (records: readonly FetchedRecord[]) => records.map((each) => decoder.decode(each.value ?? undefined));

function value<T>(result: KafkaResult<T>): T {
  if (!result.ok) assert.fail(`expected success, got ${result.code}: ${result.message}`);
  return result.value;
}

function failed(result: KafkaResult<unknown>, code: string, retriable = false): void {
  assert.equal(result.ok, false, `expected ${code}, got success`);
  if (!result.ok) {
    assert.equal(result.code, code, result.message);
    assert.equal(result.retriable, retriable, `${code} retriable`);
  }
}

const TOPIC = "eddy.c.changelog";
const INBOX = "eddy.c.inbox";
const GROUP = "eddy.c";

function brokerWithTopics(options: ConstructorParameters<typeof SimKafka>[0] = {}): SimKafka {
  const kafka = new SimKafka(options);
  value(kafka.createTopic(0, TOPIC, 4));
  value(kafka.createTopic(0, INBOX, 4));
  return kafka;
}

function readCommitted(kafka: SimKafka, nowMs: number, partition: number, topic = TOPIC): string[] {
  return texts(value(kafka.fetch(nowMs, { topic, partition, offset: 0, isolation: "read_committed" })).records);
}

function readUncommitted(kafka: SimKafka, nowMs: number, partition: number): string[] {
  return texts(
    value(kafka.fetch(nowMs, { topic: TOPIC, partition, offset: 0, isolation: "read_uncommitted" })).records,
  );
}

function joinRequest(overrides: Partial<JoinGroupRequest> = {}): JoinGroupRequest {
  return {
    groupId: GROUP,
    memberId: "",
    groupInstanceId: null,
    protocolType: "eddy",
    protocolName: "eddy-sticky",
    metadata: bytes("m"),
    sessionTimeoutMs: 10_000,
    rebalanceTimeoutMs: 30_000,
    ...overrides,
  };
}

type Joined = Extract<JoinGroupResponse, { status: "joined" }>;

/** A dynamic member's first join: MEMBER_ID_REQUIRED, then the join with the given id. */
function joinNew(kafka: SimKafka, nowMs: number, overrides: Partial<JoinGroupRequest> = {}): JoinGroupResponse {
  if (overrides.groupInstanceId) return value(kafka.joinGroup(nowMs, joinRequest(overrides)));
  const first = kafka.joinGroup(nowMs, joinRequest(overrides));
  assert.equal(first.ok, false);
  assert.ok(!first.ok && first.code === "MEMBER_ID_REQUIRED" && "memberId" in first);
  const memberId = (first as { memberId: string }).memberId;
  return value(kafka.joinGroup(nowMs, joinRequest({ ...overrides, memberId })));
}

function joined(response: JoinGroupResponse): Joined {
  assert.equal(response.status, "joined", JSON.stringify(response));
  return response as Joined;
}

/** Forms a stable group of the given members (instance ids or null for dynamic): each joins, the leader assigns. */
function stableGroup(kafka: SimKafka, nowMs: number, instances: readonly (string | null)[]): Joined[] {
  const ids: string[] = [];
  for (const instance of instances) {
    // Earlier members rejoin the round each newcomer starts.
    for (const memberId of ids)
      kafka.joinGroup(nowMs, joinRequest({ memberId, groupInstanceId: memberInstance(memberId) }));
    const response = joinNew(kafka, nowMs, { groupInstanceId: instance });
    ids.push(response.memberId);
    instanceOf.set(response.memberId, instance);
  }
  const responses = ids.map((memberId) =>
    joined(value(kafka.joinGroup(nowMs, joinRequest({ memberId, groupInstanceId: memberInstance(memberId) })))),
  );
  const leader = responses.find((response) => response.leader === response.memberId) as Joined;
  assert.equal(leader.members.length, ids.length);
  value(
    kafka.syncGroup(nowMs, {
      groupId: GROUP,
      generationId: leader.generationId,
      memberId: leader.memberId,
      groupInstanceId: memberInstance(leader.memberId),
      assignments: ids.map((memberId) => ({ memberId, assignment: bytes(`for ${memberId}`) })),
    }),
  );
  return responses;
}

const instanceOf = new Map<string, string | null>();
const memberInstance = (memberId: string) => instanceOf.get(memberId) ?? null;

/** A transaction of one changelog record on `partition` plus the inbox offset of that partition. */
function commitFrame(
  kafka: SimKafka,
  nowMs: number,
  producer: ProducerIdentity,
  member: { generationId: number; memberId: string; groupInstanceId?: string | null },
  partition: number,
  frame: string,
  inboxOffset: number,
) {
  value(kafka.beginTransaction(nowMs, producer));
  value(kafka.produce(nowMs, { producer, topic: TOPIC, partition, records: [record(frame)] }));
  value(kafka.addOffsetsToTxn(nowMs, producer, GROUP));
  const offsets = kafka.txnOffsetCommit(nowMs, producer, {
    groupId: GROUP,
    generationId: member.generationId,
    memberId: member.memberId,
    groupInstanceId: member.groupInstanceId ?? null,
    offsets: [{ topic: INBOX, partition, offset: inboxOffset }],
  });
  return offsets;
}

describe("simulated Kafka: topics and logs", () => {
  it("creates topics once; unknown partitions are UNKNOWN_TOPIC_OR_PARTITION (retriable)", () => {
    const kafka = brokerWithTopics();
    failed(kafka.createTopic(0, TOPIC, 4), "TOPIC_ALREADY_EXISTS");
    failed(kafka.createTopic(0, "empty", 0), "INVALID_PARTITIONS");
    assert.equal(kafka.partitionCount(TOPIC), 4);
    assert.equal(kafka.partitionCount("nope"), null);
    failed(
      kafka.produce(0, { producer: null, topic: "nope", partition: 0, records: [record("x")] }),
      "UNKNOWN_TOPIC_OR_PARTITION",
      true,
    );
    failed(
      kafka.fetch(0, { topic: TOPIC, partition: 4, offset: 0, isolation: "read_committed" }),
      "UNKNOWN_TOPIC_OR_PARTITION",
      true,
    );
  });

  it("plain produce appends at consecutive offsets, visible to both isolation levels at once", () => {
    const kafka = brokerWithTopics();
    assert.equal(
      value(kafka.produce(1, { producer: null, topic: TOPIC, partition: 2, records: [record("a"), record("b")] }))
        .baseOffset,
      0,
    );
    assert.equal(
      value(kafka.produce(2, { producer: null, topic: TOPIC, partition: 2, records: [record("c")] })).baseOffset,
      2,
    );
    assert.deepEqual(readCommitted(kafka, 3, 2), ["a", "b", "c"]);
    assert.deepEqual(readUncommitted(kafka, 3, 2), ["a", "b", "c"]);
    const fetched = value(kafka.fetch(3, { topic: TOPIC, partition: 2, offset: 1, isolation: "read_committed" }));
    assert.deepEqual(
      fetched.records.map((each) => each.offset),
      [1, 2],
    );
    assert.equal(fetched.records[0]?.timestampMs, 1);
    assert.equal(fetched.nextOffset, 3);
  });

  it("a fetch returns at most maxRecords and says where to continue", () => {
    const kafka = brokerWithTopics();
    value(kafka.produce(0, { producer: null, topic: TOPIC, partition: 0, records: ["a", "b", "c"].map(record) }));
    const first = value(
      kafka.fetch(0, { topic: TOPIC, partition: 0, offset: 0, isolation: "read_committed", maxRecords: 2 }),
    );
    assert.deepEqual(texts(first.records), ["a", "b"]);
    const second = value(
      kafka.fetch(0, { topic: TOPIC, partition: 0, offset: first.nextOffset, isolation: "read_committed" }),
    );
    assert.deepEqual(texts(second.records), ["c"]);
    failed(
      kafka.fetch(0, { topic: TOPIC, partition: 0, offset: 4, isolation: "read_committed" }),
      "OFFSET_OUT_OF_RANGE",
    );
  });

  it("DeleteRecords moves the log start offset; fetching below it is OFFSET_OUT_OF_RANGE; it never moves back", () => {
    const kafka = brokerWithTopics();
    value(kafka.produce(0, { producer: null, topic: TOPIC, partition: 1, records: ["a", "b", "c", "d"].map(record) }));
    assert.equal(value(kafka.deleteRecords(1, TOPIC, 1, 2)), 2);
    failed(
      kafka.fetch(1, { topic: TOPIC, partition: 1, offset: 1, isolation: "read_committed" }),
      "OFFSET_OUT_OF_RANGE",
    );
    const rest = value(kafka.fetch(1, { topic: TOPIC, partition: 1, offset: 2, isolation: "read_committed" }));
    assert.deepEqual(texts(rest.records), ["c", "d"]);
    assert.equal(rest.logStartOffset, 2);
    assert.equal(
      value(kafka.listOffsets(1, { topic: TOPIC, partition: 1, timestamp: "earliest", isolation: "read_committed" })),
      2,
    );
    assert.equal(value(kafka.deleteRecords(1, TOPIC, 1, 1)), 2);
    failed(kafka.deleteRecords(1, TOPIC, 1, 5), "OFFSET_OUT_OF_RANGE");
    assert.equal(value(kafka.deleteRecords(1, TOPIC, 1, -1)), 4);
    assert.deepEqual(
      value(kafka.fetch(1, { topic: TOPIC, partition: 1, offset: 4, isolation: "read_committed" })).records,
      [],
    );
  });

  it("time never goes back, and misuse is a thrown bug", () => {
    const kafka = brokerWithTopics();
    kafka.expire(100);
    assert.throws(() => kafka.expire(99), BugError);
    assert.throws(() => kafka.produce(100, { producer: null, topic: TOPIC, partition: 0, records: [] }), BugError);
  });
});

describe("simulated Kafka: transactions", () => {
  it("records are invisible to read_committed until the commit; the marker takes an offset", () => {
    const kafka = brokerWithTopics();
    const producer = value(kafka.initProducerId(0, "eddy.c.w.w1", 10_000));
    assert.throws(() => kafka.produce(0, { producer, topic: TOPIC, partition: 0, records: [record("x")] }), BugError);
    value(kafka.beginTransaction(1, producer));
    value(kafka.produce(1, { producer, topic: TOPIC, partition: 0, records: [record("f1"), record("f2")] }));
    assert.deepEqual(readCommitted(kafka, 2, 0), []);
    assert.deepEqual(readUncommitted(kafka, 2, 0), ["f1", "f2"]);
    value(kafka.endTxn(3, producer, "commit"));
    const after = value(kafka.fetch(4, { topic: TOPIC, partition: 0, offset: 0, isolation: "read_committed" }));
    assert.deepEqual(texts(after.records), ["f1", "f2"]);
    assert.equal(after.highWatermark, 3, "the commit marker is offset 2");
    assert.equal(after.nextOffset, 3, "the reader continues past the marker");
    assert.equal(
      value(kafka.produce(5, { producer: null, topic: TOPIC, partition: 0, records: [record("p")] })).baseOffset,
      3,
    );
    const [transaction] = kafka.committedTransactions();
    assert.equal(transaction?.transactionalId, "eddy.c.w.w1");
    assert.deepEqual(transaction?.records, [{ topic: TOPIC, partition: 0, firstOffset: 0, recordCount: 2 }]);
  });

  it("an aborted transaction's records are never visible to read_committed, and its offsets never committed", () => {
    const kafka = brokerWithTopics();
    const producer = value(kafka.initProducerId(0, "t", 10_000));
    value(commitFrame(kafka, 1, producer, { generationId: -1, memberId: "" }, 0, "doomed", 7));
    value(kafka.endTxn(2, producer, "abort"));
    value(kafka.produce(3, { producer: null, topic: TOPIC, partition: 0, records: [record("later")] }));
    assert.deepEqual(readCommitted(kafka, 4, 0), ["later"]);
    assert.deepEqual(readUncommitted(kafka, 4, 0), ["doomed", "later"]);
    const [offset] = kafka.offsetFetch(4, {
      groupId: GROUP,
      partitions: [{ topic: INBOX, partition: 0 }],
      requireStable: true,
    });
    assert.equal(offset?.offset, null);
    assert.equal(kafka.transactions()[0]?.outcome, "aborted");
    assert.equal(kafka.transactions()[0]?.endedBy, "client");
  });

  it("the LSO holds read_committed readers back at the first open transaction, even behind later commits", () => {
    const kafka = brokerWithTopics();
    const a = value(kafka.initProducerId(0, "a", 10_000));
    const b = value(kafka.initProducerId(0, "b", 10_000));
    value(kafka.beginTransaction(1, a));
    value(kafka.produce(1, { producer: a, topic: TOPIC, partition: 0, records: [record("a1")] }));
    value(kafka.produce(2, { producer: null, topic: TOPIC, partition: 0, records: [record("plain")] }));
    value(kafka.beginTransaction(3, b));
    value(kafka.produce(3, { producer: b, topic: TOPIC, partition: 0, records: [record("b1")] }));
    value(kafka.endTxn(4, b, "commit"));
    const held = value(kafka.fetch(5, { topic: TOPIC, partition: 0, offset: 0, isolation: "read_committed" }));
    assert.deepEqual(texts(held.records), []);
    assert.equal(held.lastStableOffset, 0);
    assert.equal(held.nextOffset, 0);
    assert.equal(
      value(kafka.listOffsets(5, { topic: TOPIC, partition: 0, timestamp: "latest", isolation: "read_committed" })),
      0,
    );
    assert.equal(
      value(kafka.listOffsets(5, { topic: TOPIC, partition: 0, timestamp: "latest", isolation: "read_uncommitted" })),
      4,
    );
    // Other partitions are not held.
    value(kafka.produce(5, { producer: null, topic: TOPIC, partition: 1, records: [record("free")] }));
    assert.deepEqual(readCommitted(kafka, 5, 1), ["free"]);
    value(kafka.endTxn(6, a, "commit"));
    assert.deepEqual(readCommitted(kafka, 7, 0), ["a1", "plain", "b1"]);
  });

  it("InitProducerId aborts the open transaction of the previous incarnation and fences it", () => {
    const kafka = brokerWithTopics();
    const old = value(kafka.initProducerId(0, "eddy.c.w.w1", 10_000));
    value(commitFrame(kafka, 1, old, { generationId: -1, memberId: "" }, 0, "zombie frame", 5));
    const fresh = value(kafka.initProducerId(2, "eddy.c.w.w1", 10_000));
    assert.equal(fresh.producerId, old.producerId);
    assert.equal(fresh.producerEpoch, old.producerEpoch + 1);
    failed(
      kafka.produce(3, { producer: old, topic: TOPIC, partition: 0, records: [record("more")] }),
      "INVALID_PRODUCER_EPOCH",
    );
    failed(kafka.endTxn(3, old, "commit"), "PRODUCER_FENCED");
    failed(kafka.beginTransaction(3, old), "PRODUCER_FENCED");
    assert.deepEqual(readCommitted(kafka, 3, 0), []);
    const stable = kafka.offsetFetch(3, {
      groupId: GROUP,
      partitions: [{ topic: INBOX, partition: 0 }],
      requireStable: true,
    });
    assert.deepEqual(stable[0]?.error, null, "the pending offsets went with the aborted transaction");
    assert.equal(kafka.transactions()[0]?.endedBy, "fenced");
    value(commitFrame(kafka, 4, fresh, { generationId: -1, memberId: "" }, 0, "new frame", 5));
    value(kafka.endTxn(4, fresh, "commit"));
    assert.deepEqual(readCommitted(kafka, 5, 0), ["new frame"]);
    failed(
      kafka.produce(5, { producer: { ...old, producerId: 1 }, topic: TOPIC, partition: 0, records: [record("x")] }),
      "INVALID_PRODUCER_ID_MAPPING",
    );
  });

  it("a transaction open past its timeout is aborted by the broker; the producer's next calls fail fenced", () => {
    const kafka = brokerWithTopics();
    const producer = value(kafka.initProducerId(0, "slow", 10_000));
    value(commitFrame(kafka, 1_000, producer, { generationId: -1, memberId: "" }, 2, "late frame", 3));
    kafka.expire(10_999);
    assert.equal(kafka.openTransactions().length, 1);
    assert.equal(
      value(
        kafka.listOffsets(10_999, { topic: TOPIC, partition: 2, timestamp: "latest", isolation: "read_committed" }),
      ),
      0,
    );
    kafka.expire(11_000);
    assert.deepEqual(kafka.openTransactions(), []);
    assert.equal(kafka.transactions()[0]?.endedBy, "timeout");
    assert.equal(kafka.transactions()[0]?.endedAtMs, 11_000);
    failed(
      kafka.produce(11_001, { producer, topic: TOPIC, partition: 2, records: [record("x")] }),
      "INVALID_PRODUCER_EPOCH",
    );
    failed(kafka.endTxn(11_001, producer, "commit"), "PRODUCER_FENCED");
    assert.deepEqual(readCommitted(kafka, 11_002, 2), []);
    assert.equal(
      value(
        kafka.listOffsets(11_002, { topic: TOPIC, partition: 2, timestamp: "latest", isolation: "read_committed" }),
      ),
      2,
    );
    // A new incarnation carries on.
    const again = value(kafka.initProducerId(11_003, "slow", 10_000));
    assert.equal(again.producerEpoch, producer.producerEpoch + 2);
  });

  it("with a sweep interval, a timed-out transaction is aborted at the next sweep, not at its deadline", () => {
    const kafka = brokerWithTopics({ transactionAbortSweepMs: 1_000 });
    const producer = value(kafka.initProducerId(0, "t", 2_500));
    value(kafka.beginTransaction(100, producer));
    value(kafka.produce(100, { producer, topic: TOPIC, partition: 0, records: [record("x")] }));
    kafka.expire(2_999);
    assert.equal(kafka.openTransactions().length, 1);
    kafka.expire(3_000);
    assert.equal(kafka.openTransactions().length, 0);
  });

  it("an injected broker abort fences like a timeout", () => {
    const kafka = brokerWithTopics();
    const producer = value(kafka.initProducerId(0, "t", 10_000));
    assert.equal(kafka.abortTransaction(1, "t"), false);
    value(kafka.beginTransaction(1, producer));
    value(kafka.produce(1, { producer, topic: TOPIC, partition: 0, records: [record("x")] }));
    assert.equal(kafka.abortTransaction(2, "t"), true);
    assert.equal(kafka.transactions()[0]?.endedBy, "injected");
    failed(kafka.endTxn(3, producer, "abort"), "PRODUCER_FENCED");
  });

  it("committed transactional offsets become the group's; require_stable answers UNSTABLE_OFFSET_COMMIT until the end", () => {
    const kafka = brokerWithTopics();
    const producer = value(kafka.initProducerId(0, "t", 10_000));
    value(commitFrame(kafka, 1, producer, { generationId: -1, memberId: "" }, 1, "f", 10));
    value(kafka.endTxn(2, producer, "commit"));
    const partitions = [
      { topic: INBOX, partition: 1 },
      { topic: INBOX, partition: 2 },
    ];
    assert.deepEqual(
      kafka.offsetFetch(3, { groupId: GROUP, partitions, requireStable: true }).map((each) => each.offset),
      [10, null],
    );
    value(commitFrame(kafka, 4, producer, { generationId: -1, memberId: "" }, 1, "g", 20));
    const unstable = kafka.offsetFetch(5, { groupId: GROUP, partitions, requireStable: true });
    assert.equal(unstable[0]?.error?.code, "UNSTABLE_OFFSET_COMMIT");
    assert.equal(unstable[0]?.error?.retriable, true);
    assert.equal(unstable[1]?.error, null, "only the partition with a pending offset is unstable");
    const unchecked = kafka.offsetFetch(5, { groupId: GROUP, partitions, requireStable: false });
    assert.equal(unchecked[0]?.offset, 10, "without require_stable the last committed offset is returned");
    value(kafka.endTxn(6, producer, "commit"));
    assert.equal(kafka.offsetFetch(7, { groupId: GROUP, partitions, requireStable: true })[0]?.offset, 20);
    // Aborted: back to the committed value, stable at once.
    value(commitFrame(kafka, 8, producer, { generationId: -1, memberId: "" }, 1, "h", 30));
    value(kafka.endTxn(9, producer, "abort"));
    const after = kafka.offsetFetch(10, { groupId: GROUP, partitions, requireStable: true });
    assert.deepEqual([after[0]?.offset, after[0]?.error], [20, null]);
  });

  it("require_stable blocks a new owner until the dead owner's transaction times out", () => {
    const kafka = brokerWithTopics();
    const dead = value(kafka.initProducerId(0, "eddy.c.w.dead", 10_000));
    value(commitFrame(kafka, 0, dead, { generationId: -1, memberId: "" }, 3, "never", 99));
    let polls = 0;
    let nowMs = 0;
    for (; nowMs <= 20_000; nowMs += 500, polls++) {
      const [inbox] = kafka.offsetFetch(nowMs, {
        groupId: GROUP,
        partitions: [{ topic: INBOX, partition: 3 }],
        requireStable: true,
      });
      if (inbox?.error === null) break;
      assert.equal(inbox?.error?.code, "UNSTABLE_OFFSET_COMMIT");
    }
    assert.equal(nowMs, 10_000);
    assert.equal(polls, 20);
    assert.deepEqual(readCommitted(kafka, nowMs, 3), []);
  });
});

describe("simulated Kafka: the generation fence", () => {
  it("a zombie removed by its session timeout: TxnOffsetCommit UNKNOWN_MEMBER_ID, commit refused, frames never visible", () => {
    const kafka = brokerWithTopics();
    instanceOf.clear();
    const [a, b] = stableGroup(kafka, 0, [null, null]) as [Joined, Joined];
    const zombie = value(kafka.initProducerId(0, "eddy.c.w.a", 60_000));
    // a pauses (no heartbeats) past its session timeout; b keeps heartbeating.
    for (let nowMs = 3_000; nowMs < 10_000; nowMs += 3_000) {
      value(
        kafka.heartbeat(nowMs, {
          groupId: GROUP,
          generationId: b.generationId,
          memberId: b.memberId,
          groupInstanceId: null,
        }),
      );
    }
    kafka.expire(10_000);
    failed(
      kafka.heartbeat(10_000, {
        groupId: GROUP,
        generationId: b.generationId,
        memberId: b.memberId,
        groupInstanceId: null,
      }),
      "REBALANCE_IN_PROGRESS",
    );
    const rejoined = joined(value(kafka.joinGroup(10_001, joinRequest({ memberId: b.memberId }))));
    assert.equal(rejoined.generationId, a.generationId + 1);
    assert.deepEqual(kafka.describeGroup(GROUP).members, [b.memberId]);
    // The zombie wakes up and commits what it had.
    const refused = commitFrame(kafka, 10_002, zombie, a, 0, "zombie frame", 42);
    failed(refused, "UNKNOWN_MEMBER_ID");
    failed(kafka.endTxn(10_003, zombie, "commit"), "INVALID_TXN_STATE");
    assert.equal(kafka.clientErrors().length, 1, "trying to commit after a refused TxnOffsetCommit is a client bug");
    assert.deepEqual(readCommitted(kafka, 10_003, 0), [], "held back while the zombie's transaction is open");
    value(kafka.endTxn(10_004, zombie, "abort"));
    assert.deepEqual(readCommitted(kafka, 10_005, 0), []);
    assert.deepEqual(kafka.committedTransactions(), []);
    const [offset] = kafka.offsetFetch(10_005, {
      groupId: GROUP,
      partitions: [{ topic: INBOX, partition: 0 }],
      requireStable: true,
    });
    assert.deepEqual([offset?.offset, offset?.error], [null, null]);
  });

  it("a member committing with the previous generation gets ILLEGAL_GENERATION, and only an abort ends its transaction", () => {
    const kafka = brokerWithTopics();
    instanceOf.clear();
    const [a] = stableGroup(kafka, 0, [null]) as [Joined];
    const producer = value(kafka.initProducerId(0, "eddy.c.w.a", 60_000));
    // A second member joins: a rejoins, generation + 1. a's committer still holds the old generation.
    const b = joinNew(kafka, 1);
    assert.equal(b.status, "waiting");
    const next = joined(value(kafka.joinGroup(2, joinRequest({ memberId: a.memberId }))));
    assert.equal(next.generationId, a.generationId + 1);
    failed(commitFrame(kafka, 3, producer, a, 1, "stale", 1), "ILLEGAL_GENERATION");
    failed(kafka.produce(3, { producer, topic: TOPIC, partition: 1, records: [record("more")] }), "INVALID_TXN_STATE");
    failed(kafka.endTxn(3, producer, "commit"), "INVALID_TXN_STATE");
    value(kafka.endTxn(4, producer, "abort"));
    assert.deepEqual(readCommitted(kafka, 5, 1), []);
    // With the current generation the same commit goes through.
    value(commitFrame(kafka, 6, producer, next, 1, "current", 1));
    value(kafka.endTxn(7, producer, "commit"));
    assert.deepEqual(readCommitted(kafka, 8, 1), ["current"]);
    const [committed] = kafka.committedTransactions();
    assert.deepEqual(committed?.offsetCommits, [
      {
        groupId: GROUP,
        generationId: next.generationId,
        memberId: a.memberId,
        offsets: [{ topic: INBOX, partition: 1, offset: 1 }],
      },
    ]);
    assert.equal(committed?.groupGenerationsAtEnd.get(GROUP), next.generationId);
  });

  it("during a rebalance the current generation may still commit (pre-join commit), until the round completes", () => {
    const kafka = brokerWithTopics();
    instanceOf.clear();
    const [a] = stableGroup(kafka, 0, [null]) as [Joined];
    const producer = value(kafka.initProducerId(0, "eddy.c.w.a", 60_000));
    joinNew(kafka, 1); // starts a round; a has not rejoined
    assert.equal(kafka.describeGroup(GROUP).state, "PreparingRebalance");
    value(commitFrame(kafka, 2, producer, a, 0, "before rejoin", 1));
    value(kafka.endTxn(3, producer, "commit"));
    assert.deepEqual(readCommitted(kafka, 4, 0), ["before rejoin"]);
  });
});

describe("simulated Kafka: the consumer group", () => {
  it("a new dynamic member gets MEMBER_ID_REQUIRED, then leads generation 1 and syncs its own assignment", () => {
    const kafka = new SimKafka();
    const first = kafka.joinGroup(0, joinRequest());
    assert.ok(!first.ok && first.code === "MEMBER_ID_REQUIRED");
    const memberId = (first as { memberId: string }).memberId;
    const response = joined(value(kafka.joinGroup(1, joinRequest({ memberId }))));
    assert.deepEqual([response.generationId, response.leader, response.memberId], [1, memberId, memberId]);
    assert.deepEqual(
      response.members.map((each) => each.memberId),
      [memberId],
    );
    const sync = value(
      kafka.syncGroup(2, {
        groupId: GROUP,
        generationId: 1,
        memberId,
        groupInstanceId: null,
        assignments: [{ memberId, assignment: bytes("0-127") }],
      }),
    );
    assert.equal(sync.status, "assigned");
    assert.equal(sync.status === "assigned" && decoder.decode(sync.assignment), "0-127");
    assert.equal(kafka.describeGroup(GROUP).state, "Stable");
    assert.equal(kafka.generations(GROUP)[0]?.assignments?.size, 1);
  });

  it("a join starts a round: heartbeats answer REBALANCE_IN_PROGRESS, the leader gets all metadata, followers wait for its sync", () => {
    const kafka = new SimKafka();
    instanceOf.clear();
    const [a] = stableGroup(kafka, 0, [null]) as [Joined];
    const b = joinNew(kafka, 100, { metadata: bytes("b's lags") });
    assert.equal(b.status, "waiting");
    failed(
      kafka.heartbeat(200, {
        groupId: GROUP,
        generationId: a.generationId,
        memberId: a.memberId,
        groupInstanceId: null,
      }),
      "REBALANCE_IN_PROGRESS",
    );
    failed(
      kafka.syncGroup(200, {
        groupId: GROUP,
        generationId: a.generationId,
        memberId: a.memberId,
        groupInstanceId: null,
        assignments: [],
      }),
      "REBALANCE_IN_PROGRESS",
    );
    const leader = joined(value(kafka.joinGroup(300, joinRequest({ memberId: a.memberId }))));
    assert.equal(leader.leader, a.memberId, "the leader stays the leader when it rejoins");
    assert.deepEqual(
      leader.members.map((each) => decoder.decode(each.metadata)),
      ["m", "b's lags"],
    );
    const follower = joined(
      value(kafka.joinGroup(300, joinRequest({ memberId: b.memberId, metadata: bytes("b's lags") }))),
    );
    assert.equal(follower.generationId, leader.generationId);
    assert.deepEqual(follower.members, [], "only the leader sees the members");
    const request = {
      groupId: GROUP,
      generationId: follower.generationId,
      memberId: b.memberId,
      groupInstanceId: null,
      assignments: [],
    };
    assert.deepEqual(value(kafka.syncGroup(400, request)), { status: "waiting" });
    // Waiting for the leader's sync keeps b alive past its session timeout; the leader heartbeats meanwhile.
    for (let nowMs = 4_000; nowMs <= 14_000; nowMs += 4_000) {
      value(
        kafka.heartbeat(nowMs, {
          groupId: GROUP,
          generationId: leader.generationId,
          memberId: a.memberId,
          groupInstanceId: null,
        }),
      );
    }
    kafka.expire(15_000);
    assert.deepEqual(kafka.describeGroup(GROUP).members.length, 2);
    value(
      kafka.syncGroup(15_000, {
        groupId: GROUP,
        generationId: leader.generationId,
        memberId: a.memberId,
        groupInstanceId: null,
        assignments: [
          { memberId: a.memberId, assignment: bytes("A") },
          { memberId: b.memberId, assignment: bytes("B") },
        ],
      }),
    );
    const assigned = value(kafka.syncGroup(15_001, request));
    assert.equal(assigned.status === "assigned" && decoder.decode(assigned.assignment), "B");
    failed(
      kafka.heartbeat(15_002, {
        groupId: GROUP,
        generationId: a.generationId,
        memberId: a.memberId,
        groupInstanceId: null,
      }),
      "ILLEGAL_GENERATION",
    );
    value(
      kafka.heartbeat(15_002, {
        groupId: GROUP,
        generationId: leader.generationId,
        memberId: a.memberId,
        groupInstanceId: null,
      }),
    );
  });

  it("session timeout → the member is removed → rebalance → generation + 1; the removed member is UNKNOWN_MEMBER_ID", () => {
    const kafka = new SimKafka();
    instanceOf.clear();
    const [a, b] = stableGroup(kafka, 0, [null, null]) as [Joined, Joined];
    const beat = (nowMs: number, member: Joined) =>
      kafka.heartbeat(nowMs, {
        groupId: GROUP,
        generationId: member.generationId,
        memberId: member.memberId,
        groupInstanceId: null,
      });
    value(beat(9_000, a));
    kafka.expire(9_999);
    assert.equal(kafka.describeGroup(GROUP).members.length, 2, "b is still within its session");
    kafka.expire(10_000);
    assert.deepEqual(kafka.describeGroup(GROUP).members, [a.memberId]);
    assert.equal(kafka.describeGroup(GROUP).state, "PreparingRebalance");
    failed(beat(10_001, a), "REBALANCE_IN_PROGRESS");
    failed(beat(10_001, b), "UNKNOWN_MEMBER_ID");
    failed(kafka.joinGroup(10_001, joinRequest({ memberId: b.memberId })), "UNKNOWN_MEMBER_ID");
    const next = joined(value(kafka.joinGroup(10_002, joinRequest({ memberId: a.memberId }))));
    assert.equal(next.generationId, a.generationId + 1);
    assert.deepEqual(
      kafka.generations(GROUP).map((each) => each.members.length),
      [1, 2, 1],
    );
  });

  it("a round completes at the rebalance timeout without the members that did not rejoin", () => {
    const kafka = new SimKafka();
    instanceOf.clear();
    const [a, b] = stableGroup(kafka, 0, [null, null]) as [Joined, Joined];
    const c = joinNew(kafka, 1_000);
    value(kafka.joinGroup(1_000, joinRequest({ memberId: a.memberId })));
    // b heartbeats (so it does not expire) but never rejoins.
    for (let nowMs = 2_000; nowMs < 31_000; nowMs += 2_000) {
      failed(
        kafka.heartbeat(nowMs, {
          groupId: GROUP,
          generationId: b.generationId,
          memberId: b.memberId,
          groupInstanceId: null,
        }),
        "REBALANCE_IN_PROGRESS",
      );
    }
    kafka.expire(30_999);
    assert.equal(kafka.describeGroup(GROUP).state, "PreparingRebalance");
    kafka.expire(31_000);
    const group = kafka.describeGroup(GROUP);
    assert.equal(group.state, "CompletingRebalance");
    assert.deepEqual([...group.members].sort(), [a.memberId, c.memberId].sort());
    const forC = joined(value(kafka.joinGroup(31_001, joinRequest({ memberId: c.memberId }))));
    assert.equal(forC.generationId, b.generationId + 1);
  });

  it("leaving starts a rebalance; the last member leaving empties the group with a new generation", () => {
    const kafka = new SimKafka();
    instanceOf.clear();
    const [a, b] = stableGroup(kafka, 0, [null, null]) as [Joined, Joined];
    value(kafka.leaveGroup(1, { groupId: GROUP, memberId: b.memberId, groupInstanceId: null }));
    failed(kafka.leaveGroup(1, { groupId: GROUP, memberId: b.memberId, groupInstanceId: null }), "UNKNOWN_MEMBER_ID");
    assert.equal(kafka.describeGroup(GROUP).state, "PreparingRebalance");
    value(kafka.leaveGroup(2, { groupId: GROUP, memberId: a.memberId, groupInstanceId: null }));
    assert.deepEqual(kafka.describeGroup(GROUP), {
      state: "Empty",
      generationId: a.generationId + 1,
      leader: null,
      members: [],
    });
  });

  it("static membership: a restart with the same instance id replaces the member, fences the old id, and does not rebalance", () => {
    const kafka = brokerWithTopics();
    instanceOf.clear();
    const [w1, w2] = stableGroup(kafka, 0, ["w1", "w2"]) as [Joined, Joined];
    assert.equal(w1.leader, w1.memberId);
    const generation = kafka.describeGroup(GROUP).generationId;
    // w1 is killed and restarted within its session timeout: it rejoins with no member id.
    const back = joined(
      value(kafka.joinGroup(5_000, joinRequest({ groupInstanceId: "w1", metadata: bytes("new lags") }))),
    );
    assert.notEqual(back.memberId, w1.memberId);
    assert.equal(back.generationId, generation, "no rebalance");
    assert.equal(back.leader, back.memberId, "the leader's place moves to the new member id");
    assert.equal(back.skipAssignment, true, "a static leader rejoining must not assign again (KIP-814)");
    assert.equal(kafka.describeGroup(GROUP).state, "Stable");
    const sync = value(
      kafka.syncGroup(5_001, {
        groupId: GROUP,
        generationId: generation,
        memberId: back.memberId,
        groupInstanceId: "w1",
        assignments: [],
      }),
    );
    assert.equal(
      sync.status === "assigned" && decoder.decode(sync.assignment),
      `for ${w1.memberId}`,
      "the old assignment is kept",
    );
    // The old incarnation is fenced everywhere.
    const old = { groupId: GROUP, generationId: generation, memberId: w1.memberId, groupInstanceId: "w1" };
    failed(kafka.heartbeat(5_002, old), "FENCED_INSTANCE_ID");
    failed(kafka.syncGroup(5_002, { ...old, assignments: [] }), "FENCED_INSTANCE_ID");
    failed(kafka.joinGroup(5_002, joinRequest({ memberId: w1.memberId, groupInstanceId: "w1" })), "FENCED_INSTANCE_ID");
    failed(
      kafka.leaveGroup(5_002, { groupId: GROUP, memberId: w1.memberId, groupInstanceId: "w1" }),
      "FENCED_INSTANCE_ID",
    );
    const producer = value(kafka.initProducerId(5_002, "eddy.c.w.w1-zombie", 60_000));
    failed(commitFrame(kafka, 5_003, producer, { ...old }, 0, "zombie", 1), "FENCED_INSTANCE_ID");
    value(kafka.endTxn(5_004, producer, "abort"));
    value(kafka.heartbeat(5_004, { ...old, memberId: back.memberId }));
    value(
      kafka.heartbeat(5_004, {
        groupId: GROUP,
        generationId: generation,
        memberId: w2.memberId,
        groupInstanceId: "w2",
      }),
    );
  });

  it("static membership: a member back after its session timeout is new, and the group rebalances", () => {
    const kafka = new SimKafka();
    instanceOf.clear();
    const [w1, w2] = stableGroup(kafka, 0, ["w1", "w2"]) as [Joined, Joined];
    for (let nowMs = 3_000; nowMs <= 12_000; nowMs += 3_000) {
      const beat = kafka.heartbeat(nowMs, {
        groupId: GROUP,
        generationId: w2.generationId,
        memberId: w2.memberId,
        groupInstanceId: "w2",
      });
      if (nowMs < 10_000) value(beat);
    }
    assert.deepEqual(kafka.describeGroup(GROUP).members, [w2.memberId]);
    const back = value(kafka.joinGroup(12_500, joinRequest({ groupInstanceId: "w1" })));
    assert.equal(back.status, "waiting", "w2 must rejoin first");
    assert.notEqual(back.memberId, w1.memberId);
    joined(value(kafka.joinGroup(12_600, joinRequest({ memberId: w2.memberId, groupInstanceId: "w2" }))));
    // w1's expiry and its return fall into the same round: one new generation with both.
    assert.equal(kafka.describeGroup(GROUP).generationId, w1.generationId + 1);
    assert.deepEqual([...kafka.describeGroup(GROUP).members].sort(), [back.memberId, w2.memberId].sort());
  });

  it("refuses a join with another protocol or a session timeout outside the broker's bounds", () => {
    const kafka = new SimKafka();
    instanceOf.clear();
    stableGroup(kafka, 0, [null]);
    failed(kafka.joinGroup(1, joinRequest({ protocolName: "range" })), "INCONSISTENT_GROUP_PROTOCOL");
    failed(kafka.joinGroup(1, joinRequest({ sessionTimeoutMs: 1_000 })), "INVALID_SESSION_TIMEOUT");
    const lenient = new SimKafka({ sessionTimeoutMsMin: 100 });
    assert.equal(lenient.joinGroup(1, joinRequest({ sessionTimeoutMs: 1_000 })).ok, false);
  });

  it("a pending member id that never joins expires with its session timeout and no longer holds the round", () => {
    const kafka = new SimKafka();
    instanceOf.clear();
    const [a] = stableGroup(kafka, 0, [null]) as [Joined];
    const pending = kafka.joinGroup(1_000, joinRequest());
    assert.ok(!pending.ok && pending.code === "MEMBER_ID_REQUIRED");
    assert.equal(kafka.describeGroup(GROUP).state, "Stable", "a pending id alone starts no round");
    value(
      kafka.heartbeat(5_000, {
        groupId: GROUP,
        generationId: a.generationId,
        memberId: a.memberId,
        groupInstanceId: null,
      }),
    );
    kafka.expire(11_000);
    failed(
      kafka.joinGroup(11_000, joinRequest({ memberId: (pending as { memberId: string }).memberId })),
      "UNKNOWN_MEMBER_ID",
    );
    value(
      kafka.heartbeat(11_000, {
        groupId: GROUP,
        generationId: a.generationId,
        memberId: a.memberId,
        groupInstanceId: null,
      }),
    );
  });
});

describe("simulated Kafka under random transactions", () => {
  it("read_committed readers see exactly the committed and plain records, in order, never past the LSO", () => {
    const endings = new Map<string, number>();
    for (let seed = 1; seed <= 100; seed++) {
      const random = new Random(seed);
      const kafka = new SimKafka();
      value(kafka.createTopic(0, TOPIC, 2));
      const ids = ["w1", "w2", "w3"];
      const producers = new Map<string, ProducerIdentity>(
        ids.map((id) => [id, value(kafka.initProducerId(0, id, 5_000))]),
      );
      const inTransaction = new Set<string>();
      const written = new Map<string, { partition: number; text: string }[]>(); // open transaction's records by id
      const visible: string[][] = [[], []]; // what read_committed must show, in offset order
      const offsetsOf = new Map<string, number>(); // text → offset
      let nowMs = 0;
      let counter = 0;
      for (let step = 0; step < 200; step++) {
        nowMs += random.int(400);
        kafka.expire(nowMs);
        const id = random.pick(ids);
        const producer = producers.get(id) as ProducerIdentity;
        const roll = random.next();
        if (roll < 0.1) {
          const partition = random.int(2);
          const text = `plain-${counter++}`;
          offsetsOf.set(
            text,
            value(kafka.produce(nowMs, { producer: null, topic: TOPIC, partition, records: [record(text)] }))
              .baseOffset,
          );
          visible[partition]?.push(text);
        } else if (roll < 0.15) {
          producers.set(id, value(kafka.initProducerId(nowMs, id, 5_000)));
          inTransaction.delete(id);
          written.delete(id);
        } else if (!inTransaction.has(id)) {
          if (kafka.beginTransaction(nowMs, producer).ok) {
            inTransaction.add(id);
            written.set(id, []);
          }
        } else if (roll < 0.75) {
          const partition = random.int(2);
          const text = `${id}-${counter++}`;
          const produced = kafka.produce(nowMs, { producer, topic: TOPIC, partition, records: [record(text)] });
          if (produced.ok) {
            offsetsOf.set(text, produced.value.baseOffset);
            written.get(id)?.push({ partition, text });
          }
        } else {
          const commit = random.chance(0.7);
          const ended = kafka.endTxn(nowMs, producer, commit ? "commit" : "abort");
          if (ended.ok && commit)
            for (const { partition, text } of written.get(id) ?? []) visible[partition]?.push(text);
          inTransaction.delete(id);
          written.delete(id);
          if (!ended.ok) producers.set(id, value(kafka.initProducerId(nowMs, id, 5_000)));
        }
        for (const partition of [0, 1]) {
          const fetched = value(
            kafka.fetch(nowMs, { topic: TOPIC, partition, offset: 0, isolation: "read_committed", maxRecords: 10_000 }),
          );
          for (const each of fetched.records) assert.ok(each.offset < fetched.lastStableOffset);
          assert.ok(fetched.lastStableOffset <= fetched.highWatermark);
          const expected = (visible[partition] ?? [])
            .filter((text) => (offsetsOf.get(text) as number) < fetched.lastStableOffset)
            .sort((x, y) => (offsetsOf.get(x) as number) - (offsetsOf.get(y) as number));
          assert.deepEqual(texts(fetched.records), expected, `seed ${seed} step ${step} partition ${partition}`);
        }
      }
      for (const transaction of kafka.transactions())
        endings.set(
          transaction.endedBy + transaction.outcome,
          (endings.get(transaction.endedBy + transaction.outcome) ?? 0) + 1,
        );
    }
    // The walk must have met every way a transaction ends.
    for (const ending of ["clientcommitted", "clientaborted", "timeoutaborted", "fencedaborted"]) {
      assert.ok((endings.get(ending) ?? 0) > 10, `${ending}: ${endings.get(ending)}`);
    }
  });

  it("the same calls give the same broker: transactions and generations are a function of the calls", () => {
    const run = () => {
      const kafka = brokerWithTopics();
      instanceOf.clear();
      const [a] = stableGroup(kafka, 0, [null, "w2"]) as [Joined];
      const producer = value(kafka.initProducerId(0, "t", 10_000));
      value(commitFrame(kafka, 1, producer, a, 0, "x", 1));
      value(kafka.endTxn(2, producer, "commit"));
      kafka.expire(60_000);
      return { transactions: kafka.transactions(), generations: kafka.generations(GROUP) };
    };
    assert.deepEqual(run(), run());
  });
});
