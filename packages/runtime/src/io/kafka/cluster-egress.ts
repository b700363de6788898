// StateFun's Kafka egress (io.statefun.kafka.v1/egress) on a cluster worker. A worker's
// commits are already Kafka transactions (cluster/kafka-commit-target.ts), so the egress needs
// no table and no transaction of its own: each record settles its outbox entry with
// EgressSettlement.deliveredInCommit, and the next commit publishes the record in the same
// transaction that deletes the entry. Both happen or neither; a commit that is refused is
// undone with its records, and the rebuilt partitions hand the entries out again. So every
// record is exactly-once for a read_committed consumer, whatever delivery semantic the module
// asks for (a stronger guarantee than "none" or "at-least-once", never a weaker one).
//
// That needs the egress's topics on the cluster's own Kafka: a transaction spans one Kafka
// cluster. An egress whose bootstrap servers are not the cluster's is refused at start, and it
// connects with the cluster's connection (--cluster-config), not its own properties.
//
// Topics are as in the embedded egress (egress.ts): a topic is asked for with auto-creation
// before the first record for it goes out, and records for a topic that is missing wait,
// unsettled, in order, looked at again with backoff, the wait logged once. Records Kafka could
// never take become dead letters. The partition is chosen here (as Java's producer would: keys
// keep their partitions, see partitioner.ts), since the commit sends to explicit partitions.
// After a refused commit the topics are looked at again: one deleted meanwhile must make its
// records wait, not fail every commit that follows.
import { Producer } from "@platformatic/kafka";
import type { KafkaEgressConfig } from "../../config/types.ts";
import type { KV } from "../../core/kv.ts";
import type { OutboxEntry } from "../../core/records.ts";
import type { EgressConnector, EgressSettlement } from "../../engine/ports.ts";
import type { Logger } from "../../observe/logger.ts";
import type { Connector, HostOf } from "../connector.ts";
import { runSupervised } from "../supervised-loop.ts";
import { Wakeup } from "../wakeup.ts";
import { describe, type KafkaConnection } from "./client-options.ts";
import {
  type KafkaEgressSettings,
  lookAtTopic,
  producerRecord,
  type StoredRecord,
  TOPIC_CHECK_MS_MAX,
  TOPIC_CHECK_MS_MIN,
  TOPIC_REPORT_AFTER_MS,
} from "./egress.ts";
import { murmur2 } from "./partitioner.ts";

const POSITIVE = 0x7fffffff;

interface Waiting {
  readonly record: StoredRecord;
  readonly settle: EgressSettlement;
}

/** A topic records wait for, and when to look at it again. */
interface TopicWait {
  readonly records: Waiting[];
  readonly sinceMs: number;
  nextLookAtMs: number;
  delayMs: number;
  reported: boolean;
}

export interface ClusterKafkaEgressOptions {
  readonly config: KafkaEgressConfig;
  readonly settings: KafkaEgressSettings;
  /** The cluster's own connection: the one its transactions run on. */
  readonly connection: KafkaConnection;
  /** The cluster's own topics (inbox, changelog): a record for one is refused. */
  readonly reservedTopics: ReadonlySet<string>;
  readonly log: Logger;
}

/**
 * Why an egress cannot publish in a cluster's transactions, or undefined if it can: its
 * bootstrap servers must be the cluster's (as a set; the order and repeats do not matter).
 */
export function clusterEgressMismatch(config: KafkaEgressConfig, cluster: KafkaConnection): string | undefined {
  const normalize = (servers: readonly string[]) => [...new Set(servers.map((s) => s.trim().toLowerCase()))].sort();
  const egress = normalize(config.bootstrapServers.split(","));
  const own = normalize(cluster.bootstrapBrokers);
  if (egress.join(",") === own.join(",")) return undefined;
  return `Kafka egress ${config.id} publishes to ${egress.join(",")}, but the cluster runs on ${own.join(",")}: in cluster mode its records go out in the workers' own Kafka transactions, so it must publish to the cluster's Kafka`;
}

export class ClusterKafkaEgress implements EgressConnector, Connector {
  readonly egressIds: readonly string[];
  readonly egress: EgressConnector = this;
  readonly #config: KafkaEgressConfig;
  readonly #settings: KafkaEgressSettings;
  readonly #connection: KafkaConnection;
  readonly #reservedTopics: ReadonlySet<string>;
  readonly #log: Logger;
  /** Partition counts of the topics known to exist. */
  readonly #partitions = new Map<string, number>();
  /** Per topic: the next partition for a record without a key (round-robin, as the embedded egress). */
  readonly #nextKeyless = new Map<string, number>();
  /** Topics not known to exist, with the records that wait for them, oldest first. */
  readonly #waits = new Map<string, TopicWait>();
  #producer: Producer | undefined;
  readonly #wakeup = new Wakeup();
  #running: Promise<void> | undefined;
  readonly #stop = new AbortController();

  constructor(options: ClusterKafkaEgressOptions) {
    this.#config = options.config;
    this.egressIds = [options.config.id];
    this.#settings = options.settings;
    this.#connection = options.connection;
    this.#reservedTopics = options.reservedTopics;
    this.#log = options.log;
    const ignored = [...options.config.properties.keys()];
    if (ignored.length > 0) {
      this.#log.warn(
        `Kafka egress ${this.#config.id} connects as the cluster does (--cluster-config); it ignores its properties ${ignored.join(", ")}`,
      );
    }
  }

  get id(): string {
    return this.#config.id;
  }

  async open(host: HostOf<unknown>): Promise<{ readonly urls: readonly string[] }> {
    this.#running = runSupervised(`Kafka egress ${this.#config.id}`, () => this.#lookStep(), {
      log: this.#log,
      signal: this.#stop.signal,
      onFatal: host.onFatal,
      describe,
      recovered: "looks at its topics again",
    });
    return { urls: [] };
  }

  deliver(entry: OutboxEntry, _transaction: KV, settle: EgressSettlement): void {
    const checked = producerRecord(entry, this.#settings.maxRecordBytes);
    if (!checked.ok) {
      settle.rejected(checked.reason);
      return;
    }
    const { record } = checked;
    if (this.#reservedTopics.has(record.topic)) {
      settle.rejected(`topic ${record.topic} is the cluster's own: only Eddy writes it`);
      return;
    }
    const partitions = this.#partitions.get(record.topic);
    const wait = this.#waits.get(record.topic);
    if (partitions !== undefined && wait === undefined) {
      this.#publish(record, partitions, settle);
      return;
    }
    if (wait !== undefined) {
      wait.records.push({ record, settle });
      return;
    }
    const now = Date.now();
    this.#waits.set(record.topic, {
      records: [{ record, settle }],
      sinceMs: now,
      nextLookAtMs: now,
      delayMs: TOPIC_CHECK_MS_MIN,
      reported: false,
    });
    this.#wakeup.wake();
  }

  /**
   * A commit was refused: it may have been for a topic deleted since it was looked at. Every
   * topic is looked at again before its next record goes out.
   */
  commitRefused(): void {
    this.#partitions.clear();
  }

  async close(): Promise<void> {
    this.#stop.abort();
    this.#wakeup.wake();
    await this.#running;
    await this.#producer?.close(true).catch(() => undefined);
  }

  /** Settles the entry with its record, in the partition Java's producer would choose. */
  #publish(record: StoredRecord, partitions: number, settle: EgressSettlement): void {
    let partition: number;
    if (record.key === "") {
      const next = this.#nextKeyless.get(record.topic) ?? 0;
      this.#nextKeyless.set(record.topic, next + 1);
      partition = next % partitions;
    } else partition = (murmur2(Buffer.from(record.key)) & POSITIVE) % partitions;
    settle.deliveredInCommit({
      topic: record.topic,
      partition,
      key: record.key === "" ? undefined : Buffer.from(record.key),
      value: Buffer.from(record.value.buffer, record.value.byteOffset, record.value.byteLength),
    });
  }

  /** Looks at each topic records wait for whose look is due; waits until one is, or a record comes. */
  async #lookStep(): Promise<undefined> {
    const now = Date.now();
    let soonest: number | undefined;
    for (const [topic, wait] of [...this.#waits]) {
      if (this.#stop.signal.aborted) return undefined;
      if (wait.nextLookAtMs > now) {
        soonest = Math.min(soonest ?? wait.nextLookAtMs, wait.nextLookAtMs);
        continue;
      }
      this.#producer ??= new Producer({ ...this.#connection, retries: 3, autocreateTopics: false });
      const look = await lookAtTopic(this.#producer, topic);
      if (look.state === "exists") {
        this.#waits.delete(topic);
        this.#partitions.set(topic, look.partitions);
        if (wait.reported) {
          this.#log.info(
            `Kafka egress ${this.#config.id}: topic ${topic} exists now; sending the ${wait.records.length} records that waited for it`,
          );
        }
        for (const { record, settle } of wait.records) this.#publish(record, look.partitions, settle);
      } else if (look.state === "invalid") {
        this.#waits.delete(topic);
        for (const { settle } of wait.records) settle.rejected(`Kafka refuses topic ${topic}: ${look.why}`);
      } else {
        wait.nextLookAtMs = Date.now() + wait.delayMs;
        wait.delayMs = Math.min(wait.delayMs * 2, TOPIC_CHECK_MS_MAX);
        soonest = Math.min(soonest ?? wait.nextLookAtMs, wait.nextLookAtMs);
        if (!wait.reported && Date.now() - wait.sinceMs >= TOPIC_REPORT_AFTER_MS) {
          wait.reported = true;
          this.#log.warn(
            `Kafka egress ${this.#config.id}: topic ${topic} ${look.why}; ${wait.records.length} records wait for it (none is dropped), looking again every ${TOPIC_CHECK_MS_MAX / 1000} s`,
          );
        }
      }
    }
    if (this.#stop.signal.aborted) return undefined;
    const waitMs = soonest === undefined ? undefined : Math.max(0, soonest - Date.now());
    if (waitMs === 0) return undefined;
    await this.#wakeup.wait(waitMs);
    return undefined;
  }
}
