// The cluster's internal topics, `eddy.<name>.inbox` and `eddy.<name>.changelog`, made sure of
// before a worker joins the group. Eddy partition n is partition n of both, so their partition
// count is the cluster's, fixed for its life (as a state directory's is): a topic with another
// count is refused, never "fixed" by adding partitions, which would move every address.
//
// Two workers starting together may both create a topic: TOPIC_ALREADY_EXISTS is success, and
// the count is checked afterwards from Metadata, so the loser of such a race with a different
// count is refused too. A broker that cannot be reached is waited for a bounded time, then
// refused with the bootstrap servers named.
//
// Managed Kafka services limit the settings a topic may be created with (a create-topic policy:
// POLICY_VIOLATION, or INVALID_CONFIG). The offset index interval is only tuning: a topic
// refused with it is created again without it, and the worker says so. A refusal of the
// settings Eddy needs names them, and the way out: the topics may be created beforehand with
// what the service allows, since Eddy checks only an existing topic's partition count.
import { setTimeout as sleep } from "node:timers/promises";
import { createTopicsV7, type metadataV12 } from "@platformatic/kafka";
import { type Failure, failure, type Result, success } from "../errors.ts";
import { describe, type KafkaConnection } from "../io/kafka/client-options.ts";
import type { Logger } from "../observe/logger.ts";
import { KafkaErrorCode, KafkaLink, kafkaErrorName, send } from "./kafka-link.ts";

export const CLUSTER_PARTITION_COUNT_DEFAULT = 128;
const REACH_TIMEOUT_MS_DEFAULT = 30_000;
const RETRY_DELAY_MS = 250;
/** How long the broker may take to create a topic before it answers (CreateTopics' timeout_ms). */
const CREATE_TIMEOUT_MS = 10_000;

/**
 * The inbox keeps a week (longer than an outage Eddy tolerates), the changelog until
 * snapshots trim it.
 *
 * A sparser offset index than Kafka's default (an entry per 4 KiB of log): the broker writes an
 * index entry into a memory-mapped file, and under a commit's many small appends (a frame per
 * changelog partition, then a transaction marker in each) those writes took most of the
 * broker's time on the development machine, more so the more partitions it held (bench/cluster,
 * docs/benchmarks.md, 2026-12-06 21:59–22:19 UTC: 1,877 µs of broker CPU per chain message
 * against 167 with an entry per 64 KiB and 96 per 1 MiB). The cost of a sparse index is on
 * reads by offset: a fetch scans batch headers from the entry before its offset. The changelog
 * is read by offset once per restore and then in sequence, so 1 MiB; the inbox is fetched by
 * offset all the time, so 64 KiB.
 */
const INBOX_CONFIGS: TopicConfigs = {
  needed: { "cleanup.policy": "delete", "retention.ms": String(7 * 24 * 3600 * 1000) },
  tuning: { "index.interval.bytes": String(64 * 1024) },
};
const CHANGELOG_CONFIGS: TopicConfigs = {
  needed: { "cleanup.policy": "delete", "retention.ms": "-1", "max.message.bytes": String(64 * 1024 * 1024) },
  tuning: { "index.interval.bytes": String(1024 * 1024) },
};

/** A topic's settings at creation: those Eddy relies on, and those that only make it faster. */
interface TopicConfigs {
  readonly needed: Readonly<Record<string, string>>;
  readonly tuning: Readonly<Record<string, string>>;
}

/** A topic to make sure of; `withTuning` is cleared once the broker refused the tuning settings. */
interface TopicPlan {
  readonly name: string;
  readonly configs: TopicConfigs;
  withTuning: boolean;
}

export interface ClusterTopicNames {
  readonly inbox: string;
  readonly changelog: string;
  /** The consumer group the workers form (group-member.ts). */
  readonly group: string;
}

/** Kafka topic names allow [a-zA-Z0-9._-]; the group id takes the same so that one check covers both. */
const CLUSTER_NAME = /^[a-zA-Z0-9._-]{1,200}$/;

export function clusterTopicNames(cluster: string): Result<ClusterTopicNames, "cluster-name-invalid"> {
  if (!CLUSTER_NAME.test(cluster) || cluster === "." || cluster === "..") {
    return failure(
      "cluster-name-invalid",
      `cluster name ${JSON.stringify(cluster)}: expected 1 to 200 of the letters a-z A-Z, digits, '.', '_' and '-'`,
      false,
    );
  }
  return success({ inbox: `eddy.${cluster}.inbox`, changelog: `eddy.${cluster}.changelog`, group: `eddy.${cluster}` });
}

export interface EnsureClusterTopicsOptions {
  readonly connection: KafkaConnection;
  readonly cluster: string;
  /** Default 128, Eddy's partition count. */
  readonly partitionCount?: number;
  /** Default -1: the broker's default.replication.factor. */
  readonly replicationFactor?: number;
  /** How long an unreachable or not yet ready broker is waited for. Default 30 s. */
  readonly reachTimeoutMs?: number;
  /** Told when a topic is created without its tuning settings, which the broker refused. */
  readonly log?: Logger;
}

export type ClusterTopicsFailure = Failure<
  "cluster-name-invalid" | "cluster-topic-partitions" | "cluster-topic-create" | "kafka-unreachable"
>;

/** Creates the missing topics and checks both have the cluster's partition count. */
export async function ensureClusterTopics(
  options: EnsureClusterTopicsOptions,
): Promise<Result<ClusterTopicNames & { readonly partitionCount: number }, ClusterTopicsFailure["code"]>> {
  const names = clusterTopicNames(options.cluster);
  if (!names.ok) return names;
  const partitionCount = options.partitionCount ?? CLUSTER_PARTITION_COUNT_DEFAULT;
  if (!Number.isInteger(partitionCount) || partitionCount < 1) {
    throw new RangeError(`partition count ${partitionCount}: expected a positive integer`);
  }
  const reachTimeoutMs = options.reachTimeoutMs ?? REACH_TIMEOUT_MS_DEFAULT;
  const deadline = Date.now() + reachTimeoutMs;
  const link = new KafkaLink(options.connection, {
    requestTimeoutMs: Math.min(reachTimeoutMs, CREATE_TIMEOUT_MS + 5_000),
  });
  const topics: TopicPlan[] = [
    { name: names.value.inbox, configs: INBOX_CONFIGS, withTuning: true },
    { name: names.value.changelog, configs: CHANGELOG_CONFIGS, withTuning: true },
  ];
  let lastProblem = "";
  try {
    for (let attempt = 0; ; attempt++) {
      if (attempt > 0) {
        if (Date.now() + RETRY_DELAY_MS > deadline) break;
        await sleep(RETRY_DELAY_MS);
      }
      let metadata: metadataV12.MetadataResponse;
      try {
        metadata = await link.metadata(topics.map(({ name }) => name));
      } catch (error) {
        lastProblem = describe(error);
        continue;
      }
      const missing: TopicPlan[] = [];
      let settled = true;
      for (const plan of topics) {
        const { name } = plan;
        const topic = metadata.topics.find((described) => described.name === name);
        const code = topic?.errorCode ?? KafkaErrorCode.UNKNOWN_TOPIC_OR_PARTITION;
        if (code === KafkaErrorCode.UNKNOWN_TOPIC_OR_PARTITION) {
          missing.push(plan);
          settled = false;
        } else if (code !== KafkaErrorCode.NONE || topic === undefined) {
          // LEADER_NOT_AVAILABLE right after creation, for one.
          lastProblem = `Metadata of ${name}: ${kafkaErrorName(code)}`;
          settled = false;
        } else if (topic.partitions.length !== partitionCount) {
          return failure(
            "cluster-topic-partitions",
            `topic ${name} has ${topic.partitions.length} partitions, the cluster has ${partitionCount}: ` +
              "a cluster's partition count is fixed when its topics are made; start the workers with " +
              `${topic.partitions.length} partitions or choose another cluster name`,
            false,
          );
        }
      }
      if (settled) return success({ ...names.value, partitionCount });
      if (missing.length === 0) continue;
      const created = await create(link, missing, partitionCount, options.replicationFactor ?? -1, options.log);
      if (created === undefined) continue;
      if (!created.ok) return created;
      lastProblem = created.value;
    }
  } finally {
    await link.close();
  }
  return failure(
    "kafka-unreachable",
    `cannot make sure of the cluster's topics ${names.value.inbox} and ${names.value.changelog} on Kafka at ` +
      `${link.bootstrapServers} within ${reachTimeoutMs} ms: ${lastProblem || "no answer"}`,
    true,
  );
}

/**
 * Asks for the missing topics. Returns undefined when they were made (or someone else made
 * them), a problem to retry on (the broker not ready), or a Failure that waiting cannot mend.
 */
async function create(
  link: KafkaLink,
  missing: readonly TopicPlan[],
  partitionCount: number,
  replicationFactor: number,
  log: Logger | undefined,
): Promise<Result<string, "cluster-topic-create"> | undefined> {
  let response: createTopicsV7.CreateTopicsResponse;
  try {
    response = await send(
      createTopicsV7.api.async(
        await link.any(),
        missing.map(({ name, configs, withTuning }) => ({
          name,
          numPartitions: partitionCount,
          replicationFactor,
          assignments: [],
          configs: Object.entries(withTuning ? { ...configs.needed, ...configs.tuning } : configs.needed).map(
            ([configName, value]) => ({ name: configName, value }),
          ),
        })),
        CREATE_TIMEOUT_MS,
        false,
      ),
    );
  } catch (error) {
    return success(describe(error));
  }
  let retry: string | undefined;
  for (const topic of response.topics) {
    const code = topic.errorCode;
    if (code === KafkaErrorCode.NONE || code === KafkaErrorCode.TOPIC_ALREADY_EXISTS) continue;
    const why = topic.errorMessage ?? kafkaErrorName(code);
    // A controller moving or timing out may answer the next request; authorisation, policy or
    // a bad replication factor will not.
    if (code === KafkaErrorCode.REQUEST_TIMED_OUT || code === KafkaErrorCode.NOT_CONTROLLER) {
      retry = `CreateTopics ${topic.name}: ${why}`;
      continue;
    }
    const plan = missing.find(({ name }) => name === topic.name);
    const refusedSettings = code === KafkaErrorCode.POLICY_VIOLATION || code === KafkaErrorCode.INVALID_CONFIG;
    if (refusedSettings && plan?.withTuning === true) {
      plan.withTuning = false;
      log?.warn(
        `Kafka at ${link.bootstrapServers} refused topic ${topic.name} with ${settingsText(plan.configs.tuning)} ` +
          `(${kafkaErrorName(code)}: ${why}); creating it without (Kafka's default offset index: commits cost the broker more)`,
      );
      retry = `CreateTopics ${topic.name}: ${why}`;
      continue;
    }
    const hint =
      refusedSettings && plan !== undefined
        ? `. Eddy creates it with ${settingsText(plan.configs.needed)}; where the broker allows less, create ${topic.name} ` +
          `beforehand with ${partitionCount} partitions and the nearest settings it allows (Eddy checks only the partition count ` +
          "of a topic that exists; the changelog's max.message.bytes bounds what one commit may write to a partition)"
        : "";
    return failure(
      "cluster-topic-create",
      `cannot create topic ${topic.name} (${partitionCount} partitions) on Kafka at ${link.bootstrapServers}: ${kafkaErrorName(code)}: ${why}${hint}`,
      false,
    );
  }
  return retry === undefined ? undefined : success(retry);
}

function settingsText(settings: Readonly<Record<string, string>>): string {
  return Object.entries(settings)
    .map(([name, value]) => `${name}=${value}`)
    .join(", ");
}
