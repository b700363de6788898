// A real Apache Kafka broker for tests: the jars scripts/ensure-kafka.sh fetches, run with the
// `java` on PATH as one combined broker+controller node in KRaft mode, listening on 127.0.0.1
// only, on free ports, over a temporary directory. Besides its PLAINTEXT listener it can have
// secured ones (SSL, SASL), configured by the caller. The broker is a child of this process:
// stop() ends it by its PID (SIGTERM, then SIGKILL) and removes the directory, kill() is the
// crash a test injects, restart() brings it back on the same data directory and ports.
//
// JVM start-up dominates a test's time, so every JVM started here (the storage formatter, the
// broker, the topic CLI) maps a class-data-sharing archive made for its main class on its
// first clean exit and kept beside the jars: startKafka() takes ~2 s instead of ~5 s.
// Those building blocks (startJvm, the readiness probe, the property files) are exported for
// test/support/kafka-cluster.ts, the three-node cluster.
import assert from "node:assert/strict";
import { type ChildProcess, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import {
  closeSync,
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  readSync,
  renameSync,
  rmSync,
  statSync,
  writeFileSync,
} from "node:fs";
import { connect } from "node:net";
import { homedir, tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { freePorts } from "./ports.ts";

/** Pinned like scripts/ensure-kafka.sh (KAFKA_VERSION); change both together. */
export const KAFKA_VERSION = "4.4.0";

/** The broker's node id, which is also its id as the only controller. */
export const KAFKA_NODE_ID = 1;

const BROKER_HEAP_MB_MIN = 128;
const BROKER_HEAP_MB_MAX = 512;
/** kafka-server-start.sh's -Xms1G -Xmx1G. */
const PRODUCTION_HEAP_MB = 1024;
const TOOL_HEAP_MB_MAX = 256;
/** A first start without a class archive, on a machine busy with other test files, takes ~5 s. */
const READY_TIMEOUT_MS = 60_000;
const PROBE_TIMEOUT_MS = 2_000;
const PROBE_INTERVAL_MS = 50;
const PROBE_RESPONSE_BYTES_MAX = 1024 * 1024;
const STOP_TIMEOUT_MS = 10_000;
/** The CLIs' own admin-client timeout (admin.properties) is half of this. */
const TOOL_TIMEOUT_MS = 60_000;
/** A free port can be taken by someone else before the broker binds it: try this many. */
const START_ATTEMPTS_MAX = 3;
/** How much of the broker's output an error quotes. */
const OUTPUT_QUOTED_CHARS_MAX = 3_000;

/** What the JVM prints when an archive no longer matches it or the jars; the archive is then dropped and remade. */
const ARCHIVE_REJECTED = "Unable to use shared archive";

/** Where scripts/ensure-kafka.sh puts Kafka: ${XDG_CACHE_HOME:-$HOME/.cache}/eddy/test-servers/kafka-<version>. */
export function kafkaHome(environment: NodeJS.ProcessEnv = process.env): string {
  const cache = environment.XDG_CACHE_HOME || join(environment.HOME || homedir(), ".cache");
  return join(cache, "eddy", "test-servers", `kafka-${KAFKA_VERSION}`);
}

export interface KafkaBrokerOptions {
  /** server.properties entries added to, or replacing, the ones startKafka writes. */
  readonly properties?: Readonly<Record<string, string>>;
  /**
   * Listeners besides PLAINTEXT (which stays the inter-broker listener, and the one the topic
   * CLI, the console consumer and the readiness probe use), each on a free port of 127.0.0.1.
   * Their settings go in `properties` under `listener.name.<name in lower case>.`, e.g.
   * `listener.name.sasl.sasl.enabled.mechanisms`.
   */
  readonly listeners?: readonly KafkaListener[];
  /** SCRAM credentials written into the metadata log when the storage is formatted. */
  readonly scramCredentials?: readonly KafkaScramCredential[];
  /**
   * "test" (the default): a JVM that starts fast and stays small (C1 only, a 512 MiB heap at
   * most). "production": the JVM kafka-server-start.sh runs (both JIT compilers, a fixed 1 GiB
   * heap, G1 aiming at 20 ms pauses), for benchmarks, in which the broker's speed is measured
   * with Eddy's and should be a production broker's (bench/cluster: warm, it took 283 µs of CPU
   * per chain message where the test JVM took 366).
   */
  readonly jvm?: "test" | "production";
  /**
   * Directories of classes the broker's JVM (and its tools') loads after Kafka's jars (a
   * create-topic policy, for one). After them, so the class archive of Kafka's jars still applies.
   */
  readonly classpath?: readonly string[];
}

export interface KafkaListener {
  /** Upper-case letters, digits and underscores; not PLAINTEXT or CONTROLLER, which startKafka defines. */
  readonly name: string;
  readonly protocol: "PLAINTEXT" | "SSL" | "SASL_PLAINTEXT" | "SASL_SSL";
}

export interface KafkaScramCredential {
  readonly mechanism: "SCRAM-SHA-256" | "SCRAM-SHA-512";
  /** Letters, digits, '.', '_' and '-' only: the storage tool's --add-scram syntax has no escapes we rely on. */
  readonly username: string;
  readonly password: string;
}

export interface KafkaPartitionState {
  readonly partition: number;
  /** null while the partition has no leader. */
  readonly leaderId: number | null;
}

export interface KafkaTopicDescription {
  /** Ordered by partition. */
  readonly partitions: readonly KafkaPartitionState[];
}

export interface KafkaBroker {
  /** "127.0.0.1:<port>", the PLAINTEXT listener; the same after restart(). */
  readonly bootstrap: string;
  /** "127.0.0.1:<port>" of each listener in KafkaBrokerOptions.listeners, by name; the same after restart(). */
  readonly listeners: Readonly<Record<string, string>>;
  /** Kafka's log.dirs: the partitions and the metadata log, kept across kill() and restart(). */
  readonly logDir: string;
  /** The broker's own output (log4j at INFO, then the JVM's warnings), appended across restarts. */
  readonly outputPath: string;
  /**
   * Creates `name` with replication factor 1, through Kafka's topic CLI. It returns when the
   * controller has committed the topic; the broker's metadata may follow a moment later.
   */
  createTopic(name: string, partitions?: number): Promise<void>;
  /** The partitions of `name` and their leaders, or undefined when there is no such topic. */
  describeTopic(name: string): Promise<KafkaTopicDescription | undefined>;
  /**
   * Every record of `topic` a read_committed consumer sees, from the beginning, as Kafka's own
   * console consumer (the Java client) reads them: an oracle independent of Eddy's client.
   * Stops once no record came for `idleMs`.
   */
  readCommitted(topic: string, idleMs?: number): Promise<{ key: string | null; value: string }[]>;
  /** Ends the broker (SIGTERM, SIGKILL after STOP_TIMEOUT_MS) and removes its directory. Idempotent. */
  stop(): Promise<void>;
  /** SIGKILL, for crash tests: the directory stays for restart(). */
  kill(): Promise<void>;
  /** Starts the broker again on the same data directory and ports, stopping it first if it runs. */
  restart(): Promise<void>;
}

/** Formats a fresh KRaft data directory and starts a broker on it; resolves once it answers Kafka requests. */
export async function startKafka(options: KafkaBrokerOptions = {}): Promise<KafkaBroker> {
  const libs = requireLibs();
  const extraListeners = options.listeners ?? [];
  for (const listener of extraListeners) {
    assert.match(listener.name, /^[A-Z][A-Z0-9_]*$/, `listener name ${JSON.stringify(listener.name)}`);
    assert.ok(!["PLAINTEXT", "CONTROLLER"].includes(listener.name), `listener ${listener.name} is startKafka's own`);
  }
  assert.equal(new Set(extraListeners.map(({ name }) => name)).size, extraListeners.length, "listener names repeat");
  for (const { username, password } of options.scramCredentials ?? []) {
    assert.match(username, /^[\w.-]+$/, `SCRAM user name ${JSON.stringify(username)}`);
    assert.match(password, /^[\w.-]+$/, `SCRAM password for ${username}`);
  }
  for (let attempt = 1; ; attempt++) {
    const [port, controllerPort, ...listenerPorts] = (await freePorts(2 + extraListeners.length)) as [
      number,
      number,
      ...number[],
    ];
    const directory = mkdtempSync(join(tmpdir(), "eddy-kafka-"));
    directories.add(directory);
    const listeners = extraListeners.map((listener, index) => ({ ...listener, port: listenerPorts[index] as number }));
    const node = new BrokerNode(
      libs,
      directory,
      port,
      controllerPort,
      listeners,
      options.properties ?? {},
      options.jvm ?? "test",
      options.classpath,
    );
    try {
      await node.format(options.scramCredentials ?? []);
      await node.launch();
    } catch (error) {
      await node.stop();
      if (attempt >= START_ATTEMPTS_MAX || !(error instanceof PortTakenError)) throw error;
      continue;
    }
    return {
      bootstrap: node.bootstrap,
      listeners: Object.fromEntries(listeners.map(({ name, port }) => [name, `127.0.0.1:${port}`])),
      logDir: node.logDir,
      outputPath: node.outputPath,
      createTopic: (name, partitions = 1) => node.createTopic(name, partitions),
      describeTopic: (name) => node.describeTopic(name),
      readCommitted: (topic, idleMs) => node.readCommitted(topic, idleMs),
      stop: () => node.stop(),
      kill: () => node.kill(),
      restart: () => node.restart(),
    };
  }
}

export function requireLibs(): string {
  const libs = join(kafkaHome(), "libs");
  if (!existsSync(join(libs, `kafka_2.13-${KAFKA_VERSION}.jar`))) {
    throw new Error(`Apache Kafka ${KAFKA_VERSION} is not fetched into ${libs}: run \`sh scripts/ensure-kafka.sh\``);
  }
  return libs;
}

class PortTakenError extends Error {}

/** One broker+controller node and everything it owns: its directory, its ports, its JVM while it runs. */
class BrokerNode {
  readonly #libs: string;
  readonly #directory: string;
  readonly #port: number;
  readonly #jvmKind: "test" | "production";
  readonly #classpath: readonly string[];
  #jvm: Jvm | undefined;
  #stopped = false;

  constructor(
    libs: string,
    directory: string,
    port: number,
    controllerPort: number,
    extraListeners: readonly (KafkaListener & { readonly port: number })[],
    extraProperties: Readonly<Record<string, string>>,
    jvmKind: "test" | "production",
    classpath: readonly string[] = [],
  ) {
    this.#libs = libs;
    this.#jvmKind = jvmKind;
    this.#classpath = classpath;
    this.#directory = directory;
    this.#port = port;
    const advertised = [
      `PLAINTEXT://127.0.0.1:${port}`,
      ...extraListeners.map((l) => `${l.name}://127.0.0.1:${l.port}`),
    ];
    const protocols = [
      "PLAINTEXT:PLAINTEXT",
      "CONTROLLER:PLAINTEXT",
      ...extraListeners.map((l) => `${l.name}:${l.protocol}`),
    ];
    const properties: Record<string, string> = {
      "process.roles": "broker,controller",
      "node.id": String(KAFKA_NODE_ID),
      // A static quorum: the storage formatter then needs none of --standalone/--initial-controllers.
      "controller.quorum.voters": `${KAFKA_NODE_ID}@127.0.0.1:${controllerPort}`,
      listeners: [...advertised, `CONTROLLER://127.0.0.1:${controllerPort}`].join(","),
      "advertised.listeners": advertised.join(","),
      "listener.security.protocol.map": protocols.join(","),
      "inter.broker.listener.name": "PLAINTEXT",
      "controller.listener.names": "CONTROLLER",
      "offsets.topic.replication.factor": "1",
      "transaction.state.log.replication.factor": "1",
      "transaction.state.log.min.isr": "1",
      "share.coordinator.state.topic.replication.factor": "1",
      "share.coordinator.state.topic.min.isr": "1",
      "group.initial.rebalance.delay.ms": "0",
      // After a SIGKILL the restarted broker cannot register until the controller has given up
      // on the dead one's session: 9 s by default, which would be most of a crash test.
      "broker.session.timeout.ms": "3000",
      "broker.heartbeat.interval.ms": "500",
      "num.partitions": "1",
      // Off, as on many production brokers: a test that wants topics made on demand (as every
      // StateFun example broker does) sets it in `properties`.
      "auto.create.topics.enable": "false",
      "log.dirs": this.logDir,
      ...extraProperties,
    };
    writeFileSync(this.#serverProperties, propertiesFile(properties));
    writeFileSync(
      join(directory, "admin.properties"),
      propertiesFile({ "default.api.timeout.ms": String(TOOL_TIMEOUT_MS / 2), "request.timeout.ms": "10000" }),
    );
    writeFileSync(join(directory, "log4j2.properties"), log4jConfiguration("info", "SYSTEM_OUT"));
    writeFileSync(join(directory, "tools-log4j2.properties"), log4jConfiguration("warn", "SYSTEM_ERR"));
  }

  get bootstrap(): string {
    return `127.0.0.1:${this.#port}`;
  }

  get logDir(): string {
    return join(this.#directory, "data");
  }

  get outputPath(): string {
    return join(this.#directory, "broker.log");
  }

  get #serverProperties(): string {
    return join(this.#directory, "server.properties");
  }

  /** A fresh cluster id each time: Kafka's Uuid, 16 random bytes in base64url. */
  async format(scramCredentials: readonly KafkaScramCredential[]): Promise<void> {
    let clusterId: string;
    do clusterId = randomBytes(16).toString("base64url");
    while (clusterId.startsWith("-")); // the CLI would read it as an option, so Kafka never makes one
    await this.#runTool("kafka.tools.StorageTool", [
      "format",
      "--config",
      this.#serverProperties,
      "--cluster-id",
      clusterId,
      ...scramCredentials.flatMap(({ mechanism, username, password }) => [
        "--add-scram",
        `${mechanism}=[name=${username},password=${password}]`,
      ]),
    ]);
  }

  /** Starts the JVM and waits until the broker answers an ApiVersions request on its PLAINTEXT listener. */
  async launch(): Promise<void> {
    assert.equal(this.#jvm, undefined, "the broker is already running");
    assert.equal(this.#stopped, false, "the broker has been stopped");
    const outputOffset = existsSync(this.outputPath) ? statSync(this.outputPath).size : 0;
    const output = openSync(this.outputPath, "a");
    const production = this.#jvmKind === "production";
    const jvm = startJvm(this.#libs, this.#directory, "kafka.Kafka", [this.#serverProperties], {
      heapMbMin: production ? PRODUCTION_HEAP_MB : BROKER_HEAP_MB_MIN,
      heapMbMax: production ? PRODUCTION_HEAP_MB : BROKER_HEAP_MB_MAX,
      production,
      log4jConfiguration: join(this.#directory, "log4j2.properties"),
      classpath: this.#classpath,
      stdio: ["ignore", output, output],
    });
    closeSync(output);
    this.#jvm = jvm;
    const ready = await waitUntilAnswering(this.#port, jvm);
    const launchOutput = readFrom(this.outputPath, outputOffset);
    jvm.dropArchiveIfRejected(launchOutput);
    if (ready) return;
    const exit = jvm.exit;
    await this.#end("SIGKILL");
    const quoted = launchOutput.trim().slice(-OUTPUT_QUOTED_CHARS_MAX);
    const why = exit === undefined ? `did not answer within ${READY_TIMEOUT_MS} ms` : `exited (${describeExit(exit)})`;
    const message = `Kafka ${KAFKA_VERSION} on ${this.bootstrap} ${why}; its output (${this.outputPath}):\n${quoted}`;
    throw /address already in use/i.test(launchOutput) ? new PortTakenError(message) : new Error(message);
  }

  async createTopic(name: string, partitions: number): Promise<void> {
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
      "1",
    ]);
  }

  async describeTopic(name: string): Promise<KafkaTopicDescription | undefined> {
    // --if-exists: a missing topic is an empty answer instead of an exception. --topic is a
    // regular expression ("a.b" also matches "aXb"), hence the comparison of each line's topic.
    const stdout = await this.#topicCommand(["--describe", "--if-exists", "--topic", name]);
    const partitions: KafkaPartitionState[] = [];
    for (const match of stdout.matchAll(/^\s*Topic: (\S+)\s+Partition: (\d+)\s+Leader: (\S+)/gm)) {
      const [, topic, partition = "", leader = ""] = match;
      if (topic !== name) continue;
      partitions.push({ partition: Number(partition), leaderId: /^\d+$/.test(leader) ? Number(leader) : null });
    }
    if (partitions.length === 0) return undefined;
    return { partitions: partitions.sort((a, b) => a.partition - b.partition) };
  }

  async kill(): Promise<void> {
    await this.#end("SIGKILL");
  }

  async restart(): Promise<void> {
    await this.#end("SIGTERM");
    await this.launch();
  }

  async stop(): Promise<void> {
    if (this.#stopped) return;
    this.#stopped = true;
    await this.#end("SIGTERM");
    rmSync(this.#directory, { recursive: true, force: true });
    directories.delete(this.#directory);
  }

  /** Ends the JVM if it runs: SIGKILL at once, or SIGTERM and SIGKILL after STOP_TIMEOUT_MS. */
  async #end(signal: "SIGTERM" | "SIGKILL"): Promise<void> {
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

  async readCommitted(topic: string, idleMs = 3_000): Promise<{ key: string | null; value: string }[]> {
    return consoleConsumerRecords(
      await this.#runTool(CONSOLE_CONSUMER, readCommittedArgs(this.bootstrap, topic, idleMs)),
    );
  }

  #topicCommand(args: readonly string[]): Promise<string> {
    return this.#runTool("org.apache.kafka.tools.TopicCommand", [
      "--bootstrap-server",
      this.bootstrap,
      "--command-config",
      join(this.#directory, "admin.properties"),
      ...args,
    ]);
  }

  /** Runs one of Kafka's CLIs to its end; resolves with its stdout, rejects with its output if it fails. */
  async #runTool(mainClass: string, args: readonly string[]): Promise<string> {
    assert.equal(this.#stopped, false, "the broker has been stopped");
    const jvm = startJvm(this.#libs, this.#directory, mainClass, args, {
      heapMbMin: undefined,
      heapMbMax: TOOL_HEAP_MB_MAX,
      log4jConfiguration: join(this.#directory, "tools-log4j2.properties"),
      // The storage tool checks server.properties, naming classes such as a topic policy.
      classpath: this.#classpath,
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
    const command = `${mainClass} ${args.join(" ")}`;
    throw new Error(`Kafka's ${command} failed (${describeExit(exit)}):\n${`${stdout}${stderr}`.trim()}`);
  }
}

export interface JvmExit {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  /** Set when `java` could not be run at all. */
  readonly error: Error | undefined;
}

interface JvmOptions {
  readonly heapMbMin: number | undefined;
  readonly heapMbMax: number;
  /** kafka-server-start.sh's JVM options instead of the quick-starting JVM_OPTIONS. */
  readonly production?: boolean;
  readonly log4jConfiguration: string;
  /** Entries after the jars of `libs`. */
  readonly classpath?: readonly string[];
  readonly stdio: ["ignore", number | "pipe", number | "pipe"];
}

export interface Jvm {
  readonly child: ChildProcess;
  /** Settles once the JVM has exited and the class archive it made, if any, is in place. */
  readonly exited: Promise<JvmExit>;
  /** Undefined while it runs. */
  readonly exit: JvmExit | undefined;
  /** Signals this JVM, by its PID, if it still runs. */
  signal(signal: "SIGTERM" | "SIGKILL"): void;
  /** Deletes the class archive this JVM was given if its output says the JVM refused it (a new JDK, new jars). */
  dropArchiveIfRejected(output: string): void;
}

/** Children still running, killed (and their directories removed) if the test process exits without stopping them. */
const running = new Set<ChildProcess>();
const directories = new Set<string>();
process.on("exit", () => {
  for (const child of running) child.kill("SIGKILL");
  for (const directory of directories) rmSync(directory, { recursive: true, force: true });
});

const JVM_OPTIONS: readonly string[] = [
  // C1 only: a test broker lives for seconds, C2 would compile for a peak it never reaches.
  "-XX:TieredStopAtLevel=1",
  // No /tmp/hsperfdata_<user>/<pid>, which a SIGKILLed JVM would leave behind.
  "-XX:-UsePerfData",
  // The JVM's own warnings to stderr, except the archive dump's list of classes it skipped.
  "-Xlog:disable",
  "-Xlog:all=warning,cds=off:stderr",
  "-Djava.awt.headless=true",
];

/** What kafka-server-start.sh / kafka-run-class.sh give the broker's JVM besides its heap. */
const PRODUCTION_JVM_OPTIONS: readonly string[] = [
  "-XX:+UseG1GC",
  "-XX:MaxGCPauseMillis=20",
  "-XX:InitiatingHeapOccupancyPercent=35",
  "-XX:+ExplicitGCInvokesConcurrent",
  ...JVM_OPTIONS.filter((option) => !option.startsWith("-XX:TieredStopAtLevel")),
];

/**
 * Spawns `java … mainClass args` in `directory` with the jars in `libs`. With the archive made
 * for `mainClass` when there is one; otherwise the JVM writes one into `directory` at exit, and
 * after a clean exit it is copied beside the jars and renamed into place (a torn archive would
 * crash every later JVM that maps it).
 */
export function startJvm(
  libs: string,
  directory: string,
  mainClass: string,
  args: readonly string[],
  options: JvmOptions,
): Jvm {
  const archive = join(libs, "..", "cds", `${mainClass}.jsa`);
  const dump = existsSync(archive) ? undefined : join(directory, `${mainClass}.${randomBytes(4).toString("hex")}.jsa`);
  const heap = [`-Xmx${options.heapMbMax}m`];
  if (options.heapMbMin !== undefined) heap.unshift(`-Xms${options.heapMbMin}m`);
  const child = spawn(
    "java",
    [
      ...heap,
      ...(options.production === true ? PRODUCTION_JVM_OPTIONS : JVM_OPTIONS),
      dump === undefined ? `-XX:SharedArchiveFile=${archive}` : `-XX:ArchiveClassesAtExit=${dump}`,
      `-Dlog4j2.configurationFile=${options.log4jConfiguration}`,
      "-cp",
      [join(libs, "*"), ...(options.classpath ?? [])].join(":"),
      mainClass,
      ...args,
    ],
    { cwd: directory, stdio: options.stdio },
  );
  running.add(child);
  let exit: JvmExit | undefined;
  // "error" without "exit": `java` could not be run at all. `exit` is set in the listeners
  // themselves because from then on the PID may belong to another process.
  const exited = new Promise<JvmExit>((resolve) => {
    child.once("exit", (code, signal) => {
      exit ??= { code, signal, error: undefined };
      resolve(exit);
    });
    child.once("error", (error) => {
      exit ??= { code: null, signal: null, error };
      resolve(exit);
    });
  }).then((result) => {
    running.delete(child);
    // 143: the JVM's exit after SIGTERM, once Kafka's shutdown hook has run.
    if (dump !== undefined && result.signal === null && (result.code === 0 || result.code === 143)) {
      publishArchive(dump, archive);
    }
    if (dump !== undefined) rmSync(dump, { force: true });
    return result;
  });
  return {
    child,
    exited,
    get exit() {
      return exit;
    },
    signal(signal) {
      if (exit !== undefined || child.pid === undefined) return;
      try {
        process.kill(child.pid, signal);
      } catch (error) {
        // ESRCH: it has exited and Node has not reported it yet.
        if ((error as NodeJS.ErrnoException).code !== "ESRCH") throw error;
      }
    },
    dropArchiveIfRejected(output) {
      if (dump === undefined && output.includes(ARCHIVE_REJECTED)) rmSync(archive, { force: true });
    },
  };
}

/** The archive only speeds JVMs up: failing to keep it is no error. */
function publishArchive(dump: string, archive: string): void {
  if (!existsSync(dump) || statSync(dump).size === 0) return;
  const partial = `${archive}.${process.pid}.${randomBytes(4).toString("hex")}.partial`;
  try {
    mkdirSync(join(archive, ".."), { recursive: true });
    copyFileSync(dump, partial);
    renameSync(partial, archive);
  } catch {
    rmSync(partial, { force: true });
  }
}

export function describeExit(exit: JvmExit): string {
  if (exit.error !== undefined) {
    const missing = (exit.error as NodeJS.ErrnoException).code === "ENOENT";
    return missing
      ? `there is no \`java\` on PATH; Kafka ${KAFKA_VERSION} needs Java 17 or newer`
      : `java could not be run: ${exit.error.message}`;
  }
  return exit.signal === null ? `exit code ${exit.code}` : `killed by ${exit.signal}`;
}

/** True once the broker on `port` answers ApiVersions; false if `jvm` exits or READY_TIMEOUT_MS passes. */
export async function waitUntilAnswering(port: number, jvm: Jvm): Promise<boolean> {
  const deadline = Date.now() + READY_TIMEOUT_MS;
  while (jvm.exit === undefined && Date.now() < deadline) {
    if (await answersApiVersions(port)) return true;
    await sleep(PROBE_INTERVAL_MS);
  }
  return false;
}

let correlationId = 0;

/**
 * Sends ApiVersions v0 (request header v1: api_key 18, api_version 0, correlation_id,
 * client_id) and expects a response with the same correlation id and error_code 0. A KRaft
 * broker serves its PLAINTEXT listener only once it has caught up with the metadata log and
 * been unfenced, so an answer means it takes topics and records.
 */
function answersApiVersions(port: number): Promise<boolean> {
  correlationId = (correlationId + 1) & 0x7fffffff;
  const expectedCorrelationId = correlationId;
  const clientId = Buffer.from("eddy-test-probe");
  const request = Buffer.alloc(4 + 2 + 2 + 4 + 2 + clientId.length);
  let offset = request.writeInt32BE(request.length - 4, 0);
  offset = request.writeInt16BE(18, offset);
  offset = request.writeInt16BE(0, offset);
  offset = request.writeInt32BE(expectedCorrelationId, offset);
  offset = request.writeInt16BE(clientId.length, offset);
  clientId.copy(request, offset);
  return new Promise((resolve) => {
    const socket = connect({ host: "127.0.0.1", port });
    let received = Buffer.alloc(0);
    const finish = (answered: boolean) => {
      clearTimeout(timer);
      socket.destroy();
      resolve(answered);
    };
    const timer = setTimeout(() => finish(false), PROBE_TIMEOUT_MS);
    socket.once("connect", () => socket.write(request));
    socket.on("data", (chunk) => {
      received = Buffer.concat([received, chunk]);
      if (received.length < 4) return;
      const size = received.readInt32BE(0);
      if (size < 6 || size > PROBE_RESPONSE_BYTES_MAX) return finish(false);
      if (received.length < 4 + size) return;
      // Response header v0 (correlation_id), then the body's error_code.
      finish(received.readInt32BE(4) === expectedCorrelationId && received.readInt16BE(8) === 0);
    });
    socket.once("error", () => finish(false));
    socket.once("close", () => finish(false));
  });
}

export function propertiesFile(properties: Readonly<Record<string, string>>): string {
  return Object.entries(properties)
    .map(([key, value]) => {
      assert.ok(!/[\r\n]/.test(key + value), `a property cannot span lines: ${key}=${value}`);
      return `${key}=${value}\n`;
    })
    .join("");
}

/** Kafka 4 logs through log4j 2 (the slf4j binding scripts/ensure-kafka.sh adds); without a configuration it only complains. */
export function log4jConfiguration(level: "info" | "warn", target: "SYSTEM_OUT" | "SYSTEM_ERR"): string {
  return propertiesFile({
    status: "warn",
    // Its hook races Kafka's own at SIGTERM and complains when it loses; the console needs no flushing.
    shutdownHook: "disable",
    "appender.console.type": "Console",
    "appender.console.name": "console",
    "appender.console.target": target,
    "appender.console.layout.type": "PatternLayout",
    "appender.console.layout.pattern": "[%d] %p %m (%c)%n",
    // Every component logs the whole broker configuration at INFO; server.properties has it once.
    "logger.config.name": "org.apache.kafka.common.config.AbstractConfig",
    "logger.config.level": "warn",
    "rootLogger.level": level,
    "rootLogger.appenderRef.console.ref": "console",
  });
}

/** What `path` holds from byte `offset` on, decoded as UTF-8. */
export function readFrom(path: string, offset: number): string {
  const file = openSync(path, "r");
  try {
    const length = Math.max(0, statSync(path).size - offset);
    const buffer = Buffer.alloc(length);
    const read = readSync(file, buffer, 0, length, offset);
    return buffer.toString("utf8", 0, read);
  } finally {
    closeSync(file);
  }
}

/** Kafka's console consumer (the Java client): an oracle independent of Eddy's client. */
export const CONSOLE_CONSUMER = "org.apache.kafka.tools.consumer.ConsoleConsumer";

/** The console consumer's arguments to read `topic` whole, read_committed, keys and values tab-separated. */
export function readCommittedArgs(bootstrap: string, topic: string, idleMs: number): string[] {
  return [
    "--bootstrap-server",
    bootstrap,
    "--topic",
    topic,
    "--from-beginning",
    "--isolation-level",
    "read_committed",
    "--timeout-ms",
    String(idleMs),
    "--formatter-property",
    "print.key=true",
    "--formatter-property",
    "key.separator=\t",
    "--formatter-property",
    "null.literal=<null>",
  ];
}

/** The records the console consumer printed with readCommittedArgs. */
export function consoleConsumerRecords(output: string): { key: string | null; value: string }[] {
  return output
    .split("\n")
    .filter((line) => line !== "")
    .map((line) => {
      const tab = line.indexOf("\t");
      const key = line.slice(0, tab);
      return { key: key === "<null>" ? null : key, value: line.slice(tab + 1) };
    });
}
