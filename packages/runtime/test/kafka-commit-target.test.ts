// The cluster's commit target when a transaction's end cannot be confirmed: the commit is
// refused, and the next one goes out on a new producer for the transactional id (whose
// InitProducerId settles the old transaction at the coordinator), not on the old producer,
// which still holds the unended transaction and would refuse to begin another, or add the next
// commit's records to it. The producers are stand-ins that behave as @platformatic/kafka's do.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { Producer } from "@platformatic/kafka";
import type { ClusterTopicNames } from "../src/cluster/cluster-topics.ts";
import { KafkaCommitTarget } from "../src/cluster/kafka-commit-target.ts";
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

/** A commit target whose producers are `producers`, in turn; `made` lists those it took. */
function targetOver(producers: StandInProducer[]): { target: KafkaCommitTarget; made: StandInProducer[] } {
  const made: StandInProducer[] = [];
  const local = new MemoryKV() as MemoryKV & DurableStore;
  local.commit = async () => undefined;
  const target = new KafkaCommitTarget({
    createProducer: () => {
      const producer = producers.shift();
      assert.ok(producer !== undefined, "more producers than expected");
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
  it("after a transaction whose end failed, commits on a new producer that first settles the old transaction", async () => {
    const producers = [new StandInProducer(true), new StandInProducer(false)];
    const { target, made } = targetOver(producers);
    const first = await target.commit(batch);
    assert.equal(first?.code, "commit-aborted", "the commit whose end failed is refused");
    const second = await target.commit(batch);
    assert.equal(second, undefined, `the next commit is made: ${second?.message}`);
    assert.equal(made.length, 2, "on a new producer");
    assert.equal(made[0]?.closed, true, "the old producer is closed");
    assert.equal(made[1]?.claims, 1, "which claimed the transactional id before its first transaction");
    assert.equal(made[1]?.sent.length, 1, "and sent only the second commit's message");
    assert.equal(target.lastSentTo(2), 1n);
  });

  it("after a transaction whose produce failed (aborted cleanly), commits on a new producer: its sequence numbers start again", async () => {
    const producers = [new StandInProducer(false, 1), new StandInProducer(false)];
    const { target, made } = targetOver(producers);
    assert.equal((await target.commit(batch))?.code, "commit-aborted");
    assert.equal(await target.commit(batch), undefined);
    assert.equal(made.length, 2, "the second commit ran on a new producer");
    assert.equal(made[1]?.claims, 1);
    assert.equal(made[1]?.sent.length, 1);
  });

  it("a claim at start is tried again on new producers while the coordinator is not there yet", async () => {
    const missing = [new StandInProducer(false), new StandInProducer(false)];
    for (const producer of missing) producer.initFails = true;
    const { target, made } = targetOver([...missing, new StandInProducer(false)]);
    await target.claimWithin(5_000);
    assert.equal(made.length, 3);
    assert.equal(made[2]?.claims, 1);
    assert.ok(made[0]?.closed && made[1]?.closed, "the failed producers are closed");
    const { target: never } = targetOver(
      Array.from({ length: 10 }, () => Object.assign(new StandInProducer(false), { initFails: true })),
    );
    await assert.rejects(never.claimWithin(600), /findCoordinator failed/);
  });
});
