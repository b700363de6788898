// What the cluster runs of StateFun's smoke workload share (test/e2e/cluster-smoke.test.ts's
// approach, and test/soak/cluster-brokers.soak.ts): a worker serving the official-SDK
// interpreter with its egress in the workers' Kafka transactions, the verification records
// tailed read_committed, and the two invariants checked after the run: every egress record
// exactly once, and no partition held by two workers in one generation.
import assert from "node:assert/strict";
import { Consumer, FetchIsolationLevels, type Message } from "@platformatic/kafka";
import { clusterWorkerProcess, type EddyProcess } from "./cluster.ts";
import { VERIFICATION_TOPIC } from "./commands.ts";

export interface SmokeWorkerOptions {
  /** Where serveOfficial listens. */
  readonly functionsUrl: string;
  /** The Kafka egress id serveOfficial was given. */
  readonly kafkaEgress: string;
  /** host:port[,host:port…] of the brokers, for the cluster and the egress alike. */
  readonly bootstrap: string;
  readonly cluster: string;
  /** The checkpoint store all the workers share: a partition's snapshots must be where its next owner looks. */
  readonly checkpointsDir: string;
  readonly workerId: string;
}

/** One worker of the smoke cluster (not started). */
export function smokeWorker(options: SmokeWorkerOptions): EddyProcess {
  return clusterWorkerProcess({
    moduleYaml: `kind: io.statefun.endpoints.v2/http
spec:
  functions: statefun.smoke.e2e/*
  urlPathTemplate: ${options.functionsUrl}
  maxNumBatchRequests: 10000
  transport:
    call: 10s
---
kind: io.statefun.playground.v1/ingress
spec:
  port: {{INGRESS_PORT}}
---
kind: io.statefun.kafka.v1/egress
spec:
  id: ${options.kafkaEgress}
  address: ${options.bootstrap}
  deliverySemantic:
    type: exactly-once
    transactionTimeout: 15min
`,
    bootstrap: options.bootstrap,
    cluster: options.cluster,
    workerId: options.workerId,
    checkpoints: options.checkpointsDir,
  });
}

export interface VerificationTail {
  /** The next verification record, or undefined when none has arrived yet. */
  next(): Promise<string | undefined>;
  close(): Promise<void>;
}

/** The verification topic, read read_committed from the start as records arrive. */
export async function tailVerifications(bootstrapBrokers: readonly string[]): Promise<VerificationTail> {
  const consumer = new Consumer({
    clientId: "smoke-verifier",
    groupId: `smoke-verifier-${Date.now()}`,
    bootstrapBrokers: [...bootstrapBrokers],
  });
  const arrived: string[] = [];
  const stream = await consumer.consume({
    topics: [VERIFICATION_TOPIC],
    mode: "earliest",
    autocommit: false,
    maxWaitTime: 200,
    isolationLevel: FetchIsolationLevels.READ_COMMITTED,
  });
  stream.on("data", (message: Message) => arrived.push(message.value.toString()));
  return {
    next: async () => arrived.shift(),
    close: () => consumer.close(true),
  };
}

/**
 * Every id of `wanted` exactly once among the egress records, as Kafka's own console consumer
 * (read_committed) reads them: `readCommitted` is asked again until it has them all (the
 * last transactions may still be settling), at most `tries` times. Returns how many there are.
 */
export async function assertEgressExactlyOnce(
  readCommitted: () => Promise<readonly { value: string }[]>,
  wanted: ReadonlySet<string>,
  tries = 20,
): Promise<number> {
  let records: readonly { value: string }[] = [];
  for (let attempt = 0; attempt < tries; attempt++) {
    records = await readCommitted();
    if (records.length >= wanted.size) break;
  }
  const counts = new Map<string, number>();
  for (const { value } of records) counts.set(value, (counts.get(value) ?? 0) + 1);
  const doubled = [...counts].filter(([, count]) => count > 1).map(([id]) => id);
  const missing = [...wanted].filter((id) => !counts.has(id));
  const foreign = [...counts.keys()].filter((id) => !wanted.has(id));
  assert.deepEqual({ doubled, missing, foreign }, { doubled: [], missing: [], foreign: [] });
  assert.ok(wanted.size > 0, "the workload sends egress records");
  return records.length;
}

/**
 * The partitions each worker logged for each generation: none may be held by two workers in
 * one generation. Returns how many generations were seen.
 */
export function assertNoPartitionHeldTwice(workers: readonly EddyProcess[]): number {
  const holders = new Map<string, string>();
  const generations = new Set<number>();
  const line = /worker (\S+) holds partitions (\S+) in generation (\d+)/g;
  for (const eddy of workers) {
    for (const [, workerId, ranges, generation] of eddy.output.matchAll(line)) {
      generations.add(Number(generation));
      if (ranges === "none") continue;
      for (const range of (ranges as string).split(",")) {
        const [from, to] = range.split("-").map(Number) as [number, number | undefined];
        for (let partition = from; partition <= (to ?? from); partition++) {
          const key = `${generation}/${partition}`;
          const holder = holders.get(key);
          assert.ok(
            holder === undefined || holder === workerId,
            `partition ${partition} held by ${holder} and ${workerId} in generation ${generation}`,
          );
          holders.set(key, workerId as string);
        }
      }
    }
  }
  return generations.size;
}
