// A real three-node Apache Kafka cluster for tests that lose a broker: the jars
// scripts/ensure-kafka.sh fetches, three combined broker+controller KRaft nodes on 127.0.0.1
// (a static controller quorum of three, formatted with one cluster id), each on free ports
// and its own data directory. Topics are replicated three times and need two in sync, as a
// production cluster's are, so one node may be killed (SIGKILL) under load and restarted on
// its data directory while producers, transactions and consumer groups carry on.
//
// The JVMs are children of this process, started and ended by their PIDs with
// test/support/kafka-broker.ts's building blocks (the same class-data-sharing archives).
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { closeSync, existsSync, mkdirSync, mkdtempSync, openSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import {
  CONSOLE_CONSUMER,
  consoleConsumerRecords,
  describeExit,
  type Jvm,
  KAFKA_VERSION,
  log4jConfiguration,
  propertiesFile,
  readCommittedArgs,
  readFrom,
  requireLibs,
  startJvm,
  waitUntilAnswering,
} from "./kafka-broker.ts";
import { freePorts } from "./ports.ts";

export const KAFKA_CLUSTER_SIZE = 3;
/** What a topic asks for by default, and the internal topics (offsets, transactions) get. */
export const KAFKA_CLUSTER_REPLICATION_FACTOR = 3;
/** One node may be down and an acks=all write (every transactional one) still succeeds. */
export const KAFKA_CLUSTER_MIN_INSYNC_REPLICAS = 2;

const NODE_HEAP_MB_MIN = 128;
const NODE_HEAP_MB_MAX = 512;
const TOOL_HEAP_MB_MAX = 256;
const STOP_TIMEOUT_MS = 10_000;
/** The CLIs' own admin-client timeout (admin.properties) is half of this. */
const TOOL_TIMEOUT_MS = 60_000;
/** A free port can be taken by someone else before a node binds it: try this many. */
const START_ATTEMPTS_MAX = 3;
const OUTPUT_QUOTED_CHARS_MAX = 3_000;
/**
 * The offsets and transaction-state topics' partition counts (50 by default): three JVMs on a
 * small test machine start and fail over faster with fewer; the count changes nothing a test
 * of Eddy's transactions or groups relies on.
 */
const INTERNAL_TOPIC_PARTITIONS = 10;

export interface KafkaClusterPartitionState {
  readonly partition: number;
  /** null while the partition has no leader. */
  readonly leaderId: number | null;
  readonly replicas: readonly number[];
  readonly isr: readonly number[];
}

export interface KafkaClusterNode {
  /** 1, 2 or 3: node.id, as broker and as controller. */
  readonly nodeId: number;
  /** "127.0.0.1:<port>", the node's PLAINTEXT listener; the same after restart(). */
  readonly bootstrap: string;
  /** The node's own output (log4j at INFO), appended across restarts. */
  readonly outputPath: string;
  readonly running: boolean;
  /** SIGKILL, for crash tests: the data directory stays for restart(). */
  kill(): Promise<void>;
  /** Starts the node again on its data directory and ports (ending it first if it runs); resolves once it serves. */
  restart(): Promise<void>;
}

export interface KafkaCluster {
  /** Every node's PLAINTEXT listener, comma-separated: a client's bootstrap list. */
  readonly bootstrap: string;
  readonly nodes: readonly KafkaClusterNode[];
  /** Creates `name` with replication factor 3 through Kafka's topic CLI (run against the nodes that run). */
  createTopic(name: string, partitions?: number): Promise<void>;
  /** The partitions of `name` with their leaders, replicas and in-sync replicas; undefined when there is no such topic. */
  describeTopic(name: string): Promise<readonly KafkaClusterPartitionState[] | undefined>;
  /**
   * Every record of `topic` a read_committed consumer sees, from the beginning, as Kafka's own
   * console consumer (the Java client) reads them; stops once no record came for `idleMs`.
   */
  readCommitted(topic: string, idleMs?: number): Promise<{ key: string | null; value: string }[]>;
  /** Ends every node by its PID (SIGTERM, SIGKILL after STOP_TIMEOUT_MS) and removes the directory. Idempotent. */
  stop(): Promise<void>;
}

/** Formats three fresh KRaft data directories with one cluster id and starts the nodes; resolves once each serves. */
export async function startKafkaCluster(): Promise<KafkaCluster> {
  const libs = requireLibs();
  for (let attempt = 1; ; attempt++) {
    const ports = await freePorts(2 * KAFKA_CLUSTER_SIZE);
    const directory = mkdtempSync(join(tmpdir(), "eddy-kafka-cluster-"));
    const addresses = Array.from({ length: KAFKA_CLUSTER_SIZE }, (_, index) => ({
      nodeId: index + 1,
      port: ports[2 * index] as number,
      controllerPort: ports[2 * index + 1] as number,
    }));
    const voters = addresses.map(({ nodeId, controllerPort }) => `${nodeId}@127.0.0.1:${controllerPort}`).join(",");
    const nodes = addresses.map(
      ({ nodeId, port, controllerPort }) =>
        new ClusterNode(libs, join(directory, `node-${nodeId}`), nodeId, port, controllerPort, voters),
    );
    const cluster = new Cluster(libs, directory, nodes);
    try {
      const clusterId = newClusterId();
      await Promise.all(nodes.map((node) => node.format(clusterId)));
      // Together: no node serves before a quorum of controllers has elected a leader.
      await Promise.all(nodes.map((node) => node.launch()));
    } catch (error) {
      await cluster.stop();
      if (attempt >= START_ATTEMPTS_MAX || !/address already in use/i.test(String(error))) throw error;
      continue;
    }
    return cluster;
  }
}

/** Kafka's Uuid: 16 random bytes in base64url, never starting with '-' (the CLI would read an option). */
function newClusterId(): string {
  let clusterId: string;
  do clusterId = randomBytes(16).toString("base64url");
  while (clusterId.startsWith("-"));
  return clusterId;
}

class Cluster implements KafkaCluster {
  readonly #libs: string;
  readonly #directory: string;
  readonly nodes: readonly ClusterNode[];
  #stopped = false;

  constructor(libs: string, directory: string, nodes: readonly ClusterNode[]) {
    this.#libs = libs;
    this.#directory = directory;
    this.nodes = nodes;
    writeFileSync(
      join(directory, "admin.properties"),
      propertiesFile({ "default.api.timeout.ms": String(TOOL_TIMEOUT_MS / 2), "request.timeout.ms": "10000" }),
    );
    writeFileSync(join(directory, "tools-log4j2.properties"), log4jConfiguration("warn", "SYSTEM_ERR"));
    directories.add(directory);
  }

  get bootstrap(): string {
    return this.nodes.map((node) => node.bootstrap).join(",");
  }

  /** The nodes that run, for the CLIs: a dead bootstrap server only slows the Java client down. */
  get #liveBootstrap(): string {
    const live = this.nodes.filter((node) => node.running);
    assert.ok(live.length > 0, "no node of the Kafka cluster runs");
    return live.map((node) => node.bootstrap).join(",");
  }

  async createTopic(name: string, partitions = 1): Promise<void> {
    assert.ok(
      Number.isInteger(partitions) && partitions >= 1,
      `partitions must be a positive integer, got ${partitions}`,
    );
    await this.#topicCommand([
      "--create",
      "--topic",
      name,
      "--partitions",
      String(partitions),
      "--replication-factor",
      String(KAFKA_CLUSTER_REPLICATION_FACTOR),
    ]);
  }

  async describeTopic(name: string): Promise<readonly KafkaClusterPartitionState[] | undefined> {
    // --topic is a regular expression ("a.b" also matches "aXb"), hence the check of each line's topic.
    const stdout = await this.#topicCommand(["--describe", "--if-exists", "--topic", name]);
    const line = /^\s*Topic: (\S+)\s+Partition: (\d+)\s+Leader: (\S+)\s+Replicas: (\S+)\s+Isr: (\S*)/gm;
    const nodeIds = (list: string) => (list === "" ? [] : list.split(",").map(Number));
    const partitions: KafkaClusterPartitionState[] = [];
    for (const [, topic, partition = "", leader = "", replicas = "", isr = ""] of stdout.matchAll(line)) {
      if (topic !== name) continue;
      partitions.push({
        partition: Number(partition),
        leaderId: /^\d+$/.test(leader) ? Number(leader) : null,
        replicas: nodeIds(replicas),
        isr: nodeIds(isr),
      });
    }
    if (partitions.length === 0) return undefined;
    return partitions.sort((a, b) => a.partition - b.partition);
  }

  async readCommitted(topic: string, idleMs = 3_000): Promise<{ key: string | null; value: string }[]> {
    return consoleConsumerRecords(
      await this.#runTool(CONSOLE_CONSUMER, readCommittedArgs(this.#liveBootstrap, topic, idleMs)),
    );
  }

  async stop(): Promise<void> {
    if (this.#stopped) return;
    this.#stopped = true;
    await Promise.all(this.nodes.map((node) => node.end("SIGTERM")));
    rmSync(this.#directory, { recursive: true, force: true });
    directories.delete(this.#directory);
  }

  #topicCommand(args: readonly string[]): Promise<string> {
    return this.#runTool("org.apache.kafka.tools.TopicCommand", [
      "--bootstrap-server",
      this.#liveBootstrap,
      "--command-config",
      join(this.#directory, "admin.properties"),
      ...args,
    ]);
  }

  /** Runs one of Kafka's CLIs to its end; resolves with its stdout, rejects with its output if it fails. */
  async #runTool(mainClass: string, args: readonly string[]): Promise<string> {
    assert.equal(this.#stopped, false, "the Kafka cluster has been stopped");
    return runTool(this.#libs, this.#directory, mainClass, args);
  }
}

/** One broker+controller node: its data directory and ports, its JVM while it runs. */
class ClusterNode implements KafkaClusterNode {
  readonly nodeId: number;
  readonly #libs: string;
  readonly #directory: string;
  readonly #port: number;
  #jvm: Jvm | undefined;

  constructor(libs: string, directory: string, nodeId: number, port: number, controllerPort: number, voters: string) {
    this.nodeId = nodeId;
    this.#libs = libs;
    this.#directory = directory;
    this.#port = port;
    mkdirSync(directory);
    const properties: Record<string, string> = {
      "process.roles": "broker,controller",
      "node.id": String(nodeId),
      // A static quorum: every node is formatted alike, with none of --standalone/--initial-controllers.
      "controller.quorum.voters": voters,
      listeners: `PLAINTEXT://127.0.0.1:${port},CONTROLLER://127.0.0.1:${controllerPort}`,
      "advertised.listeners": `PLAINTEXT://127.0.0.1:${port}`,
      "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
      "inter.broker.listener.name": "PLAINTEXT",
      "controller.listener.names": "CONTROLLER",
      "default.replication.factor": String(KAFKA_CLUSTER_REPLICATION_FACTOR),
      "min.insync.replicas": String(KAFKA_CLUSTER_MIN_INSYNC_REPLICAS),
      "offsets.topic.replication.factor": String(KAFKA_CLUSTER_REPLICATION_FACTOR),
      "offsets.topic.num.partitions": String(INTERNAL_TOPIC_PARTITIONS),
      "transaction.state.log.replication.factor": String(KAFKA_CLUSTER_REPLICATION_FACTOR),
      "transaction.state.log.min.isr": String(KAFKA_CLUSTER_MIN_INSYNC_REPLICAS),
      "transaction.state.log.num.partitions": String(INTERNAL_TOPIC_PARTITIONS),
      "share.coordinator.state.topic.replication.factor": String(KAFKA_CLUSTER_REPLICATION_FACTOR),
      "share.coordinator.state.topic.min.isr": String(KAFKA_CLUSTER_MIN_INSYNC_REPLICAS),
      "group.initial.rebalance.delay.ms": "0",
      // A killed node is fenced, and its partitions led elsewhere, once its session expires:
      // 9 s by default, most of a failover test; the restarted node also waits for it.
      "broker.session.timeout.ms": "3000",
      "broker.heartbeat.interval.ms": "500",
      "num.partitions": "1",
      "auto.create.topics.enable": "false",
      "log.dirs": this.#logDir,
    };
    writeFileSync(this.#serverProperties, propertiesFile(properties));
    writeFileSync(join(directory, "log4j2.properties"), log4jConfiguration("info", "SYSTEM_OUT"));
  }

  get bootstrap(): string {
    return `127.0.0.1:${this.#port}`;
  }

  get outputPath(): string {
    return join(this.#directory, "broker.log");
  }

  get running(): boolean {
    return this.#jvm !== undefined;
  }

  get #logDir(): string {
    return join(this.#directory, "data");
  }

  get #serverProperties(): string {
    return join(this.#directory, "server.properties");
  }

  async format(clusterId: string): Promise<void> {
    await runTool(this.#libs, this.#directory, "kafka.tools.StorageTool", [
      "format",
      "--config",
      this.#serverProperties,
      "--cluster-id",
      clusterId,
    ]);
  }

  /** Starts the JVM and waits until the node answers an ApiVersions request (it then is unfenced and serves). */
  async launch(): Promise<void> {
    assert.equal(this.#jvm, undefined, `Kafka node ${this.nodeId} is already running`);
    const outputOffset = existsSync(this.outputPath) ? statSync(this.outputPath).size : 0;
    const output = openSync(this.outputPath, "a");
    const jvm = startJvm(this.#libs, this.#directory, "kafka.Kafka", [this.#serverProperties], {
      heapMbMin: NODE_HEAP_MB_MIN,
      heapMbMax: NODE_HEAP_MB_MAX,
      log4jConfiguration: join(this.#directory, "log4j2.properties"),
      stdio: ["ignore", output, output],
    });
    closeSync(output);
    this.#jvm = jvm;
    const ready = await waitUntilAnswering(this.#port, jvm);
    const launchOutput = readFrom(this.outputPath, outputOffset);
    jvm.dropArchiveIfRejected(launchOutput);
    if (ready) return;
    const exit = jvm.exit;
    await this.end("SIGKILL");
    const why = exit === undefined ? "did not answer in time" : `exited (${describeExit(exit)})`;
    const quoted = launchOutput.trim().slice(-OUTPUT_QUOTED_CHARS_MAX);
    throw new Error(`Kafka ${KAFKA_VERSION} node ${this.nodeId} on ${this.bootstrap} ${why}; its output:\n${quoted}`);
  }

  async kill(): Promise<void> {
    await this.end("SIGKILL");
  }

  async restart(): Promise<void> {
    await this.end("SIGTERM");
    await this.launch();
  }

  /** Ends the JVM if it runs: SIGKILL at once, or SIGTERM and SIGKILL after STOP_TIMEOUT_MS. */
  async end(signal: "SIGTERM" | "SIGKILL"): Promise<void> {
    const jvm = this.#jvm;
    this.#jvm = undefined;
    if (jvm === undefined) return;
    if (signal === "SIGTERM") {
      jvm.signal("SIGTERM");
      const timedOut = await Promise.race([jvm.exited.then(() => false), sleep(STOP_TIMEOUT_MS, true, { ref: false })]);
      if (!timedOut) return;
    }
    jvm.signal("SIGKILL");
    await jvm.exited;
  }
}

/** Runs one of Kafka's CLIs in `directory` to its end; resolves with its stdout, rejects with its output if it fails. */
async function runTool(libs: string, directory: string, mainClass: string, args: readonly string[]): Promise<string> {
  const logConfiguration = join(directory, "tools-log4j2.properties");
  if (!existsSync(logConfiguration)) writeFileSync(logConfiguration, log4jConfiguration("warn", "SYSTEM_ERR"));
  const jvm = startJvm(libs, directory, mainClass, args, {
    heapMbMin: undefined,
    heapMbMax: TOOL_HEAP_MB_MAX,
    log4jConfiguration: logConfiguration,
    stdio: ["ignore", "pipe", "pipe"],
  });
  let stdout = "";
  let stderr = "";
  jvm.child.stdout?.setEncoding("utf8").on("data", (chunk: string) => {
    stdout += chunk;
  });
  jvm.child.stderr?.setEncoding("utf8").on("data", (chunk: string) => {
    stderr += chunk;
  });
  const timer = setTimeout(() => jvm.signal("SIGKILL"), TOOL_TIMEOUT_MS);
  const exit = await jvm.exited;
  clearTimeout(timer);
  jvm.dropArchiveIfRejected(stderr);
  if (exit.code === 0) return stdout;
  throw new Error(
    `Kafka's ${mainClass} ${args.join(" ")} failed (${describeExit(exit)}):\n${`${stdout}${stderr}`.trim()}`,
  );
}

/** Directories of clusters not stopped, removed if the test process exits without stopping them (kafka-broker.ts kills the JVMs). */
const directories = new Set<string>();
process.on("exit", () => {
  for (const directory of directories) rmSync(directory, { recursive: true, force: true });
});
