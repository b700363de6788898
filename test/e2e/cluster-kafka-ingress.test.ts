// `eddy run --cluster` with a Kafka ingress: a 6-partition topic read by the workers of a
// cluster, each source partition by the worker that runs the partition it is bound to, its
// position committed with the messages in that partition's changelog. While records are
// produced, workers are killed with SIGKILL (restarted on their own disk, and on an empty one),
// a third joins and one leaves (an online rescale 2 → 3 → 2), and the newcomer is killed and
// restarted on an empty disk. At the end every instance of the
// counting function (served over HTTP by this test) has counted exactly the records produced
// for it, read back with request-reply through the playground ingress of either worker.
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { createEndpoint, serve, statefulFunction, types } from "@eddy/sdk";
import { Producer } from "@platformatic/kafka";
import { type KafkaBroker, startKafka } from "../support/kafka-broker.ts";
import { clusterWorkerProcess, type EddyProcess, endpointAndIngressYaml, waitForExactCounts } from "./smoke/cluster.ts";

const TOPIC = "cki-source";
const SOURCE_PARTITIONS = 6;
const IDS = 40;
/** Records produced in all, in rounds while the workers come and go. */
const ROUNDS = 15;
const PER_ROUND = 300;

/** Counts every record (type cki/Inc); a string "get" answers the count. */
const counter = statefulFunction({
  typename: "cki/counter",
  state: { count: types.int },
  handle(ctx, msg) {
    if (msg.is(types.string)) {
      ctx.reply(ctx.storage.count ?? 0, types.int);
      return;
    }
    ctx.storage.count = (ctx.storage.count ?? 0) + 1;
  },
});

let broker: KafkaBroker;
let producer: Producer;
let functions: Awaited<ReturnType<typeof serve>>;
const checkpoints = mkdtempSync(join(tmpdir(), "eddy-cki-checkpoints-"));
before(async () => {
  broker = await startKafka();
  await broker.createTopic(TOPIC, SOURCE_PARTITIONS);
  producer = new Producer({ clientId: "cki-source", bootstrapBrokers: [broker.bootstrap], idempotent: true });
  functions = await serve(createEndpoint([counter]), { port: 0, host: "127.0.0.1" });
});
after(async () => {
  rmSync(checkpoints, { recursive: true, force: true });
  await producer?.close();
  await functions?.close();
  await broker?.stop();
});

function worker(workerId: string): EddyProcess {
  return clusterWorkerProcess({
    moduleYaml: `${endpointAndIngressYaml("cki/*", functions.url)}---
kind: io.statefun.kafka.v1/ingress
spec:
  id: cki/in
  address: ${broker.bootstrap}
  startupPosition:
    type: earliest
  topics:
    - topic: ${TOPIC}
      valueType: cki/Inc
      targets:
        - cki/counter
`,
    bootstrap: broker.bootstrap,
    cluster: "cki",
    workerId,
    checkpoints,
  });
}

/** Record n goes to instance n mod IDS, on source partition n mod SOURCE_PARTITIONS. */
async function produceRound(round: number): Promise<void> {
  const messages = Array.from({ length: PER_ROUND }, (_, index) => {
    const n = round * PER_ROUND + index;
    return {
      topic: TOPIC,
      partition: n % SOURCE_PARTITIONS,
      key: Buffer.from(String(n % IDS)),
      value: Buffer.from(`inc-${n}`),
    };
  });
  await producer.send({ messages });
}

describe("eddy run --cluster with a Kafka ingress", () => {
  it("reads every record once through kill -9 (own disk and empty), a join and a leave", async () => {
    const w1 = worker("w1");
    const w2 = worker("w2");
    const w3 = worker("w3");
    const all = [w1, w2, w3];
    try {
      await w1.start();
      await w2.start();
      let round = 0;
      const produce = async (rounds: number) => {
        for (let left = 0; left < rounds; left++) {
          await produceRound(round++);
          await sleep(150);
        }
      };
      await produce(2);
      // kill -9 while records flow; back on its own disk (within the session timeout: the same partitions).
      const flowing = produce(3);
      await sleep(300);
      await w1.kill();
      await w1.start();
      await flowing;
      // kill -9 and a lost disk: its partitions are restored from the changelog, positions included.
      const flowing2 = produce(3);
      await sleep(200);
      await w2.kill();
      w2.wipeState();
      await w2.start();
      await flowing2;
      // Online rescale: a third worker joins while records flow, then the first leaves (SIGTERM).
      const flowing3 = produce(4);
      await w3.start();
      await sleep(500);
      assert.equal(await w1.stop(), 0);
      await flowing3;
      // kill -9 of a worker that just took partitions over, on an empty disk again.
      const flowing4 = produce(3);
      await sleep(200);
      await w3.kill();
      w3.wipeState();
      await w3.start();
      await flowing4;
      assert.equal(round, ROUNDS);
      await waitForExactCounts([w2, w3], "cki/counter", IDS, ROUNDS * PER_ROUND);
    } catch (error) {
      const tails = all.map((eddy, index) => `--- w${index + 1} ---\n${eddy.output.slice(-3000)}`).join("\n");
      throw new Error(`${error instanceof Error ? error.message : String(error)}\n${tails}`);
    } finally {
      for (const eddy of all) await eddy.dispose();
    }
  });
});
