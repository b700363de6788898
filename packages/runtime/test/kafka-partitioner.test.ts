// The Kafka egress's partitioner puts a keyed record where Kafka's Java producer (StateFun's)
// would, and a keyless one where the client put it before Eddy set a partitioner.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { defaultPartitioner, murmur2 as libraryMurmur2, type MessageToProduce, Producer } from "@platformatic/kafka";
import { javaCompatiblePartitioner, murmur2 } from "../src/io/kafka/partitioner.ts";

/** A seeded PRNG (mulberry32): the same keys every run. */
function random(seed: number): () => number {
  let state = seed;
  return () => {
    state = (state + 0x6d2b79f5) | 0;
    let t = Math.imul(state ^ (state >>> 15), 1 | state);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 2 ** 32;
  };
}

function randomKeys(count: number, lengthMax: number, seed: number): Buffer[] {
  const next = random(seed);
  const keys: Buffer[] = [];
  for (let n = 0; n < count; n++) {
    const key = Buffer.alloc(Math.floor(next() * (lengthMax + 1)));
    for (let i = 0; i < key.length; i++) key[i] = Math.floor(next() * 256);
    keys.push(key);
  }
  return keys;
}

const message = (topic: string, key?: Buffer): MessageToProduce =>
  ({ topic, key, value: Buffer.from("v") }) as MessageToProduce;

describe("Kafka egress partitioner", () => {
  test("murmur2 gives the hashes of Kafka's UtilsTest.testMurmur2", () => {
    const vectors: [string, number][] = [
      ["21", -973932308],
      ["foobar", -790332482],
      ["a-little-bit-long-string", -985981536],
      ["a-little-bit-longer-string", -1486304829],
      ["lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8", -58897971],
    ];
    for (const [key, hash] of vectors) assert.equal(murmur2(Buffer.from(key)), hash, key);
    assert.equal(murmur2(new Uint8Array([97, 98, 99])), 479470107);
  });

  test("murmur2 agrees with the client's BigInt port for keys of 0 to 40 bytes", () => {
    const keys = randomKeys(5000, 40, 0x5eed);
    for (let length = 0; length <= 40; length++) keys.push(Buffer.alloc(length, 0xff));
    for (const key of keys) assert.equal(murmur2(key), libraryMurmur2(key), key.toString("hex"));
  });

  test("murmur2 reads a Uint8Array view at its offset", () => {
    const backing = Buffer.from("xxfoobaryy");
    assert.equal(murmur2(new Uint8Array(backing.buffer, backing.byteOffset + 2, 6)), -790332482);
  });

  test("with 3 partitions, a key whose hash is negative goes to (hash & 0x7fffffff) % 3, as in Java", () => {
    const partitioner = javaCompatiblePartitioner();
    const context = { metadata: undefined };
    let differing = 0;
    for (const key of randomKeys(2000, 40, 0xc0ffee)) {
      const hash = libraryMurmur2(key);
      const java = (hash & 0x7fffffff) % 3;
      if ((hash >>> 0) % 3 === java) continue;
      differing++;
      // The client reduces the partitioner's answer modulo the partition count.
      assert.equal(partitioner(message("t", key), key, context) % 3, java, key.toString("hex"));
      assert.notEqual(defaultPartitioner(message("t", key), key) % 3, java);
    }
    assert.ok(differing > 100, `only ${differing} keys tell the two formulas apart`);
  });

  test("an empty key is a key: it is hashed, not sent round-robin", () => {
    const partitioner = javaCompatiblePartitioner();
    const empty = Buffer.alloc(0);
    const context = { metadata: undefined };
    assert.equal(partitioner(message("t", empty), empty, context), murmur2(empty) & 0x7fffffff);
    assert.equal(partitioner(message("t", empty), empty, context), murmur2(empty) & 0x7fffffff);
  });

  test("keyless records go round-robin per topic, as the client sends them with no partitioner", async () => {
    const topics = ["a", "b", "a", "a", "b", "c", "a"];
    const messages = topics.map((topic) => message(topic));
    const options = { clientId: "partitioner-test", bootstrapBrokers: ["localhost:1"] };
    const withOurs = new Producer({ ...options, partitioner: javaCompatiblePartitioner() });
    const withDefault = new Producer(options);
    try {
      // Each message on its own, so the client's per-topic sets keep every partition it chose.
      const chosen = (producer: Producer) =>
        messages.map((one) => [...(producer.getSendTopicPartitions({ messages: [one] }).get(one.topic) ?? [])]);
      const ours = chosen(withOurs);
      assert.deepEqual(ours, chosen(withDefault));
      assert.deepEqual(ours, [[0], [0], [1], [2], [1], [0], [3]]);
    } finally {
      await Promise.all([withOurs.close(), withDefault.close()]);
    }
  });
});
