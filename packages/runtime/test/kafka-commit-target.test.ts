// The cluster's commit target: its producers take turns, and when a transaction's end cannot be
// confirmed, the commit is refused and that producer's next commit goes out on a new producer
// for its transactional id (whose InitProducerId settles the old transaction at the
// coordinator), not on the old producer, which still holds the unended transaction and would
// refuse to begin another, or add the next commit's records to it. The producers are stand-ins that behave as @platformatic/kafka's do.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { Producer } from "@platformatic/kafka";
import type { ClusterTopicNames } from "../src/cluster/cluster-topics.ts";
import { KafkaCommitTarget, TRANSACTIONAL_PRODUCERS, transactionalIdOf } from "../src/cluster/kafka-commit-target.ts";
import type { KafkaLink } from "../src/cluster/kafka-link.ts";
import type { TopicReader } from "../src/cluster/topic-reader.ts";
import type { FunctionTypename } from "../src/core/address.ts";
import { MemoryKV } from "../src/core/kv.ts";
import type { CommitBatch, DurableStore } from "../src/engine/engine.ts";

const topics: ClusterTopicNames = { inbox: "eddy.t.inbox", changelog: "eddy.t.changelog", group: "eddy.t" };

/** A producer as the client behaves: one open transaction at a time, cleared only by a confirmed end or cancel. */
class StandInProducer {
  open: object | undefined;
  readonly sent: unknown[] = [];
  claims = 0;
  closed = false;
  /** The number of the transactional id it was made for. */
  index = -1;

  readonly endFails: boolean;
  /** Produces that fail before this many have gone (a partition's leader died with a batch). */
  sendFailures: number;

  constructor(endFails: boolean, sendFailures = 0) {
    this.endFails = endFails;
    this.sendFailures = sendFailures;
  }

  /** Whether InitProducerId fails (the transaction coordinator is not there yet); it leaves the transaction half begun, as the client does. */
  initFails = false;

  async beginTransaction() {
    if (this.open !== undefined) throw new Error("There is already an active transaction.");
    if (this.initFails) {
      this.open = {};
      throw new Error("findCoordinator failed 5 times.");
    }
    const transaction = {
      send: async ({ messages }: { messages: unknown[] }) => {
        if (this.sendFailures > 0) {
          this.sendFailures--;
          throw new Error("Produce: NOT_LEADER_OR_FOLLOWER");
        }
        this.sent.push(...messages);
        return { offsets: [{ topic: topics.inbox, partition: 2, offset: BigInt(this.sent.length) }] };
      },
      commit: async () => this.#end(),
      abort: async () => this.#end(),
      cancel: async () => {
        this.claims++;
        this.open = undefined;
      },
    };
    this.open = transaction;
    return transaction;
  }

  async #end(): Promise<void> {
    if (this.endFails) throw new Error("Connection closed");
    this.open = undefined;
  }

  async close(): Promise<void> {
    this.closed = true;
  }
}

const batch: CommitBatch = {
  writes: [],
  partitions: [],
  published: [],
  outbound: [
    {
      partition: 2,
      envelope: {
        target: { typename: "t/counter" as FunctionTypename, id: "1" },
        argument: { typename: "io.statefun.types/string", hasValue: true, value: new Uint8Array([1]) },
      },
    },
  ],
};

/**
 * A commit target whose producers, as it makes them, are `producers`, in that order; `made`
 * lists those it took, each with the number of the transactional id it was made for.
 */
function targetOver(producers: StandInProducer[]): { target: KafkaCommitTarget; made: StandInProducer[] } {
  const made: StandInProducer[] = [];
  const local = new MemoryKV() as MemoryKV & DurableStore;
  local.commit = async () => undefined;
  const target = new KafkaCommitTarget({
    createProducer: (index) => {
      const producer = producers.shift();
      assert.ok(producer !== undefined, "more producers than expected");
      producer.index = index;
      made.push(producer);
      return producer as unknown as Producer<Buffer, Buffer, Buffer, Buffer>;
    },
    link: {} as KafkaLink,
    topics,
    membership: () => undefined,
    local,
    changelogReader: {} as TopicReader,
    catchUpTimeoutMs: 1_000,
  });
  return { target, made };
}

describe("the cluster's commit target", () => {
  it(`has ${TRANSACTIONAL_PRODUCERS} producers, with transactional ids of their own, and commits take them in turn`, async () => {
    assert.equal(TRANSACTIONAL_PRODUCERS, 2);
    const { target, made } = targetOver([new StandInProducer(false), new StandInProducer(false)]);
    assert.deepEqual(
      made.map((producer) => producer.index),
      [0, 1],
    );
    await target.claim();
    assert.deepEqual(
      made.map((producer) => producer.claims),
      [1, 1],
      "a start claims both transactional ids (an earlier incarnation's open transactions are aborted)",
    );
    for (let commit = 0; commit < 5; commit++) assert.equal(await target.commit(batch), undefined);
    assert.deepEqual(
      made.map((producer) => producer.sent.length),
      [3, 2],
    );
    assert.equal(transactionalIdOf("c", "w-1", 0), "eddy.c.w.w-1", "the first keeps the id of Eddy before two");
    assert.equal(transactionalIdOf("c", "w-1", 1), "eddy.c.w.w-1#1");
    assert.notEqual(transactionalIdOf("c", "w", 1), transactionalIdOf("c", "w.1", 0), "no worker's ids meet another's");
  });

  it("after a transaction whose end failed, its producer's next commit is on a new producer that first settles the old transaction", async () => {
    const producers = [new StandInProducer(true), new StandInProducer(false), new StandInProducer(false)];
    const { target, made } = targetOver(producers);
    const first = await target.commit(batch);
    assert.equal(first?.code, "commit-aborted", "the commit whose end failed is refused");
    assert.equal(await target.commit(batch), undefined, "the next commit is made on the other producer");
    const third = await target.commit(batch);
    assert.equal(third, undefined, `the third commit is made: ${third?.message}`);
    assert.equal(made.length, 3, "on a new producer");
    assert.equal(made[2]?.index, 0, "for the first transactional id");
    assert.equal(made[0]?.closed, true, "the old producer is closed");
    assert.equal(made[1]?.closed, false, "the other producer goes on");
    assert.equal(made[2]?.claims, 1, "which claimed the transactional id before its first transaction");
    assert.equal(made[2]?.sent.length, 1, "and sent only the third commit's message");
    assert.equal(target.lastSentTo(2), 1n);
  });

  it("after a transaction whose produce failed (aborted cleanly), its producer's next commit is on a new producer: its sequence numbers start again", async () => {
    const producers = [new StandInProducer(false, 1), new StandInProducer(false), new StandInProducer(false)];
    const { target, made } = targetOver(producers);
    assert.equal((await target.commit(batch))?.code, "commit-aborted");
    assert.equal(await target.commit(batch), undefined);
    assert.equal(await target.commit(batch), undefined);
    assert.equal(made.length, 3, "the third commit ran on a new producer");
    assert.equal(made[2]?.index, 0);
    assert.equal(made[2]?.claims, 1);
    assert.equal(made[2]?.sent.length, 1);
  });

  it("a claim at start is tried again on new producers while the coordinator is not there yet", async () => {
    const missing = [new StandInProducer(false), new StandInProducer(false)];
    for (const producer of missing) producer.initFails = true;
    const { target, made } = targetOver([...missing, new StandInProducer(false), new StandInProducer(false)]);
    await target.claimWithin(5_000);
    assert.equal(made.length, 4);
    assert.deepEqual(
      made.slice(2).map((producer) => [producer.index, producer.claims]),
      [
        [0, 1],
        [1, 1],
      ],
    );
    assert.ok(made[0]?.closed && made[1]?.closed, "the failed producers are closed");
    const { target: never } = targetOver(
      Array.from({ length: 20 }, () => Object.assign(new StandInProducer(false), { initFails: true })),
    );
    await assert.rejects(never.claimWithin(600), /findCoordinator failed/);
  });
});
