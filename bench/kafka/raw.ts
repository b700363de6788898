// bench/kafka's "no runtime" baseline: the same pipeline as `bench/counter` written directly
// against @platformatic/kafka (the client Eddy's connectors use), in its own process:
// consume, count per key in a Map, produce "<input value> <count>" keyed like the input.
// exactly-once: each batch (at most RECORDS_PER_BATCH_MAX records, one batch in flight, as
// Eddy's egress sends) is produced in a Kafka transaction that also commits the consumer
// group's offsets (consume-transform-produce). at-least-once: an idempotent acks=all send,
// then the offsets are committed. The counts live in memory only, so unlike Eddy this keeps
// no state across a crash: it measures what the Kafka client and broker cost alone.
//
//   node bench/kafka/raw.ts --bootstrap HOST:PORT --topics a,b --out TOPIC --semantic exactly-once|at-least-once
//
// Prints "raw: ready" once its consumer has joined the group; SIGTERM closes it.
import { randomUUID } from "node:crypto";
import { parseArgs } from "node:util";
import {
  Consumer,
  FetchIsolationLevels,
  findErrorBy,
  type Message,
  type MessageToProduce,
  Producer,
} from "@platformatic/kafka";

const RECORDS_PER_BATCH_MAX = 1000;
/**
 * A transaction begun right after the previous one committed is answered CONCURRENT_TRANSACTIONS
 * until the broker has written the previous one's commit markers: with back-to-back
 * transactions, nearly every time. The client retries after its default 1 s; Kafka's Java
 * producer retries this case after 20 ms, and so does this baseline.
 */
const CONCURRENT_TRANSACTIONS_RETRY_MS = 20;
const RETRY_MS_DEFAULT = 1000;
/** The consumer stream is paused while this many records wait. */
const PENDING_RECORDS_MAX = 10_000;

const { values } = parseArgs({
  options: {
    bootstrap: { type: "string" },
    topics: { type: "string" },
    out: { type: "string" },
    semantic: { type: "string" },
  },
});
const { bootstrap, topics, out, semantic } = values;
if (bootstrap === undefined || topics === undefined || out === undefined) {
  throw new Error("raw.ts: --bootstrap, --topics and --out are required");
}
if (semantic !== "exactly-once" && semantic !== "at-least-once") {
  throw new Error(`raw.ts: --semantic ${semantic}: expected exactly-once or at-least-once`);
}
const exactlyOnce = semantic === "exactly-once";
const id = `bench-raw-${randomUUID()}`;

const consumer = new Consumer({
  clientId: id,
  groupId: id,
  bootstrapBrokers: [bootstrap],
  isolationLevel: FetchIsolationLevels.READ_COMMITTED,
});
const producer = new Producer({
  clientId: id,
  bootstrapBrokers: [bootstrap],
  idempotent: true,
  acks: -1,
  autocreateTopics: false,
  retryDelay: (_client, _operation, _attempt, _retries, error) =>
    findErrorBy(error, "apiId", "CONCURRENT_TRANSACTIONS") === null
      ? RETRY_MS_DEFAULT
      : CONCURRENT_TRANSACTIONS_RETRY_MS,
  ...(exactlyOnce ? { transactionalId: id, producerId: -1n, producerEpoch: -1 } : {}),
});

const stream = await consumer.consume({
  topics: topics.split(","),
  mode: "earliest",
  autocommit: false,
  maxWaitTime: 500,
  sessionTimeout: 10_000,
  heartbeatInterval: 1_000,
});
const pending: Message[] = [];
let wake: (() => void) | undefined;
let closing = false;
stream.on("data", (message: Message) => {
  pending.push(message);
  if (pending.length >= PENDING_RECORDS_MAX) stream.pause();
  wake?.();
});
process.once("SIGTERM", () => {
  closing = true;
  wake?.();
});
process.stdout.write("raw: ready\n");

const counts = new Map<string, number>();
let committing: Promise<void> | undefined;
while (!closing) {
  if (pending.length === 0) {
    await new Promise<void>((resolve) => {
      wake = resolve;
    });
    wake = undefined;
    continue;
  }
  const batch = pending.splice(0, RECORDS_PER_BATCH_MAX);
  if (stream.isPaused() && pending.length < PENDING_RECORDS_MAX / 2) stream.resume();
  const messages: MessageToProduce[] = batch.map((message) => {
    const key = message.key.toString();
    const count = (counts.get(key) ?? 0) + 1;
    counts.set(key, count);
    return { topic: out, key: message.key, value: Buffer.from(`${message.value.toString()} ${count}`) };
  });
  // The last record of each input partition in the batch: its offset + 1 is what the group commits.
  const lastByPartition = new Map<string, Message>();
  for (const message of batch) lastByPartition.set(`${message.topic}/${message.partition}`, message);
  if (exactlyOnce) {
    const transaction = await producer.beginTransaction();
    try {
      await transaction.send({ messages });
      await transaction.addConsumer(consumer);
      for (const message of lastByPartition.values()) await transaction.addOffset(message);
      await transaction.commit();
    } catch (error) {
      await transaction.abort().catch(() => undefined);
      throw error;
    }
  } else {
    await producer.send({ messages });
    // One commit in flight; a later one covers what an overlapped one would have said.
    if (committing === undefined) {
      const offsets = [...lastByPartition.values()].map((message) => ({
        topic: message.topic,
        partition: message.partition,
        offset: message.offset + 1n,
        leaderEpoch: message.leaderEpoch,
      }));
      committing = consumer.commit({ offsets }).finally(() => {
        committing = undefined;
      });
    }
  }
}
await committing?.catch(() => undefined);
await Promise.all([stream.close(), producer.close(true), consumer.close(true)]).catch(() => undefined);
