// The fraud-detection example on this machine: a real Kafka broker (test/support/
// kafka-broker.ts), the Python model (model/model.py, the official StateFun SDK), and Eddy
// in this process running the TypeScript functions, all wired by module.yaml. run.ts
// (`npm run fraud`) and test/e2e/fraud-detection.test.ts both start it through here, so the
// demo and its test run the same thing. Everything started here is a child of this process
// or lives in it, and stop() ends it (the children by their PIDs).
import { randomUUID } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { type ModuleConfig, parseModule, type RunningRuntime, startRuntime } from "@eddy/runtime";
import { type AnyStatefulFunction, createEndpoint } from "@eddy/sdk";
import { Consumer, type Message, MessagesStreamModes, type MessageToProduce, Producer } from "@platformatic/kafka";
import { type KafkaBroker, startKafka } from "../../test/support/kafka-broker.ts";
import { type PythonServer, startPythonServer } from "../../test/support/python-server.ts";
import {
  ALERTS_TOPIC,
  FRAUD_COUNTER,
  fraudCounter,
  MERCHANT_SCORER,
  merchantRisk,
  merchantScorer,
  transactionManager,
} from "./functions.ts";
import {
  type Alert,
  AlertType,
  type ConfirmedFraud,
  ConfirmedFraudType,
  FeatureQueryType,
  type FeatureReply,
  FeatureReplyType,
  type Transaction,
  TransactionType,
} from "./messages.ts";
import type { FraudCounts } from "./simulator.ts";

export const MODULE_PATH = resolve(import.meta.dirname, "module.yaml");
const MODEL_PY = resolve(import.meta.dirname, "model/model.py");

/** The Kafka topics module.yaml names, with their partitions here. */
export const TOPICS = {
  transactions: { name: "transactions", partitions: 3 },
  confirmedFraud: { name: "confirmed-fraud", partitions: 1 },
  alerts: { name: ALERTS_TOPIC, partitions: 1 },
} as const;

/** What module.yaml says for a standalone deployment; fraudModule() puts the local ones in their place. */
const MODULE_KAFKA_ADDRESS = "127.0.0.1:9092";
const MODULE_MODEL_URL = "http://127.0.0.1:8001/";

/** How long a query through the request-reply ingress waits for the function's answer. */
const QUERY_WAIT_SECONDS = 10;
const QUERY_ROUND_GAP_MS = 50;

export interface ModuleWhere {
  /** host:port of the Kafka brokers. */
  readonly kafkaBootstrap: string;
  /** Where fraud/model listens, e.g. http://127.0.0.1:41234/ */
  readonly modelUrl: string;
}

/** module.yaml with this machine's Kafka and model in place of its defaults, loaded as the runtime loads any module. */
export function fraudModule(where: ModuleWhere): ModuleConfig {
  let text = readFileSync(MODULE_PATH, "utf8");
  for (const [written, local] of [
    [MODULE_KAFKA_ADDRESS, where.kafkaBootstrap],
    [MODULE_MODEL_URL, where.modelUrl],
  ] as const) {
    // Each default is in the module's components (comments aside): if it is not, module.yaml changed under this.
    if (!text.includes(`: ${written}\n`)) throw new Error(`${MODULE_PATH} no longer says ${written}; update local.ts`);
    text = text.replaceAll(`: ${written}\n`, `: ${local}\n`);
  }
  const loaded = parseModule(text, MODULE_PATH);
  if (!loaded.ok) throw new Error(`${MODULE_PATH}:\n${loaded.errors.map((error) => error.format()).join("\n")}`);
  return loaded.module;
}

export interface LocalOptions {
  /** The TypeScript functions run in-process; default the three of functions.ts (a test may observe them). */
  readonly functions?: readonly AnyStatefulFunction[];
  /** The runtime's clock (RuntimeOptions.clock); default Date.now. */
  readonly clock?: () => number;
  /** Eddy's log lines; default stderr. */
  readonly log?: (line: string) => void;
}

export interface LocalFraudDetection {
  readonly broker: KafkaBroker;
  readonly model: PythonServer;
  readonly runtime: RunningRuntime;
  /** The playground ingress, for request-reply queries to the functions. */
  readonly ingressUrl: string;
  readonly stateDir: string;
  /** Sends records to Kafka (acks=all, idempotent) and resolves once the broker has them. */
  produce(records: readonly MessageToProduce[]): Promise<void>;
  /** Stops Eddy, keeping its state directory to look at. Idempotent. */
  stopRuntime(): Promise<void>;
  /** Stops everything and removes the state directory. Idempotent. */
  stop(): Promise<void>;
}

/** Starts Kafka (with the example's topics) and the model side by side, then Eddy on them. */
export async function startLocal(options: LocalOptions = {}): Promise<LocalFraudDetection> {
  const closers: (() => Promise<void>)[] = [];
  const closeAll = async () => {
    for (const close of closers.splice(0).reverse()) await close().catch(() => undefined);
  };
  try {
    const [broker, model] = await Promise.all([
      startKafka().then((started) => {
        closers.push(() => started.stop());
        return started;
      }),
      startPythonServer(MODEL_PY, { args: ["0", "--until-stdin-closes"], echoStderr: true }).then((started) => {
        closers.push(() => started.close());
        return started;
      }),
    ]);
    // Before Eddy starts: its egress refuses records for a topic that does not exist.
    for (const topic of Object.values(TOPICS)) await broker.createTopic(topic.name, topic.partitions);

    const stateDir = mkdtempSync(join(tmpdir(), "eddy-fraud-"));
    closers.push(async () => rmSync(stateDir, { recursive: true, force: true }));
    const producer = new Producer({
      clientId: "fraud-simulator",
      bootstrapBrokers: [broker.bootstrap],
      idempotent: true,
      autocreateTopics: false,
    });
    closers.push(() => producer.close());

    const runtime = await startRuntime({
      module: fraudModule({ kafkaBootstrap: broker.bootstrap, modelUrl: model.url }),
      stateDir,
      inProcess: createEndpoint(options.functions ?? [transactionManager, fraudCounter, merchantScorer]),
      portOverride: 0,
      ...(options.clock === undefined ? {} : { clock: options.clock }),
      ...(options.log === undefined ? {} : { log: options.log }),
    });
    let runtimeStopped: Promise<void> | undefined;
    const stopRuntime = () => {
      runtimeStopped ??= runtime.stop();
      return runtimeStopped;
    };
    closers.push(stopRuntime);
    const [ingressUrl] = runtime.ingressUrls;
    if (ingressUrl === undefined)
      throw new Error(`${MODULE_PATH} has no playground ingress to ask the functions through`);

    let stopped: Promise<void> | undefined;
    return {
      broker,
      model,
      runtime,
      ingressUrl,
      stateDir,
      produce: async (records) => {
        await producer.send({ messages: [...records] });
      },
      stopRuntime,
      stop: () => {
        stopped ??= closeAll();
        return stopped;
      },
    };
  } catch (error) {
    await closeAll();
    throw error;
  }
}

/** The `transactions` topic's record of a transaction: key = its id, value = its JSON. */
export function transactionRecord(transaction: Transaction): MessageToProduce {
  return {
    topic: TOPICS.transactions.name,
    key: Buffer.from(transaction.id),
    value: Buffer.from(TransactionType.serialize(transaction)),
  };
}

/** The `confirmed-fraud` topic's record of a confirmed fraud: key = its account, value = its JSON. */
export function confirmedFraudRecord(fraud: ConfirmedFraud): MessageToProduce {
  return {
    topic: TOPICS.confirmedFraud.name,
    key: Buffer.from(fraud.account),
    value: Buffer.from(ConfirmedFraudType.serialize(fraud)),
  };
}

/** A function that answers fraud/FeatureQuery: the account's fraud counter or the merchant's scorer. */
export type FeatureSource = typeof FRAUD_COUNTER | typeof MERCHANT_SCORER;

/** Asks `source`/`id` for its feature through the request-reply ingress and returns its answer. */
export async function askFeature(ingressUrl: string, source: FeatureSource, id: string): Promise<FeatureReply> {
  const url = new URL(`${source}/${encodeURIComponent(id)}`, ingressUrl);
  const response = await fetch(url, {
    method: "POST",
    headers: {
      "content-type": `application/vnd.${FeatureQueryType.typename}`,
      accept: `application/vnd.${FeatureReplyType.typename}`,
      prefer: `wait=${QUERY_WAIT_SECONDS}`,
    },
    body: FeatureQueryType.serialize({ transactionId: "query" }),
  });
  const body = new Uint8Array(await response.arrayBuffer());
  if (response.status !== 200) {
    throw new Error(`${source}/${id} did not answer (${response.status}): ${new TextDecoder().decode(body)}`);
  }
  return FeatureReplyType.deserialize(body);
}

/**
 * Waits until every account's fraud counter and every merchant's scorer answers what
 * `counts` says (merchants as their risk); throws, naming those still behind, after `timeoutMs`.
 */
export async function waitForFraudCounts(ingressUrl: string, counts: FraudCounts, timeoutMs: number): Promise<void> {
  const pending = new Map<string, { source: FeatureSource; id: string; value: number }>();
  for (const [account, count] of counts.byAccount) {
    pending.set(`${FRAUD_COUNTER}/${account}`, { source: FRAUD_COUNTER, id: account, value: count });
  }
  for (const [merchant, count] of counts.byMerchant) {
    pending.set(`${MERCHANT_SCORER}/${merchant}`, {
      source: MERCHANT_SCORER,
      id: merchant,
      value: merchantRisk(count),
    });
  }
  const deadline = Date.now() + timeoutMs;
  const last = new Map<string, number>();
  for (;;) {
    await Promise.all(
      [...pending].map(async ([name, expected]) => {
        const { value } = await askFeature(ingressUrl, expected.source, expected.id);
        last.set(name, value);
        if (value === expected.value) pending.delete(name);
      }),
    );
    if (pending.size === 0) return;
    if (Date.now() > deadline) {
      const behind = [...pending].map(([name, { value }]) => `${name}: ${last.get(name)} (expected ${value})`);
      throw new Error(`after ${timeoutMs} ms, ${pending.size} functions still answer otherwise: ${behind.join("; ")}`);
    }
    await sleep(QUERY_ROUND_GAP_MS);
  }
}

/** An alert as read from the `alerts` topic. */
export interface ReceivedAlert {
  readonly key: string;
  readonly alert: Alert;
}

export interface AlertWatch {
  /** Every alert so far, in the order read. */
  readonly received: readonly ReceivedAlert[];
  /** Resolves once `count` alerts have been read, or with false after `timeoutMs`. */
  waitFor(count: number, timeoutMs: number): Promise<boolean>;
  close(): Promise<void>;
}

/** Reads the `alerts` topic from its start, read_committed (the client's default), calling `onAlert` for each. */
export async function watchAlerts(bootstrap: string, onAlert?: (received: ReceivedAlert) => void): Promise<AlertWatch> {
  const consumer = new Consumer({
    clientId: "fraud-alerts-watch",
    // Its own group each time: it always reads the topic from the start.
    groupId: `fraud-alerts-watch-${randomUUID()}`,
    bootstrapBrokers: [bootstrap],
  });
  const received: ReceivedAlert[] = [];
  let wake: (() => void) | undefined;
  let stream: Awaited<ReturnType<typeof consumer.consume>>;
  try {
    stream = await consumer.consume({
      topics: [TOPICS.alerts.name],
      mode: MessagesStreamModes.EARLIEST,
      autocommit: false,
      maxWaitTime: 100,
    });
  } catch (error) {
    await consumer.close(true);
    throw error;
  }
  stream.on("data", (message: Message) => {
    const entry = { key: message.key?.toString("utf8") ?? "", alert: AlertType.deserialize(message.value) };
    received.push(entry);
    onAlert?.(entry);
    wake?.();
  });
  return {
    received,
    async waitFor(count, timeoutMs) {
      const deadline = Date.now() + timeoutMs;
      while (received.length < count) {
        const left = deadline - Date.now();
        if (left <= 0) return false;
        const timeout = new AbortController();
        await Promise.race([
          new Promise<void>((resolveWake) => {
            wake = resolveWake;
          }),
          sleep(left, undefined, { signal: timeout.signal }).catch(() => undefined),
        ]);
        timeout.abort();
      }
      return true;
    },
    async close() {
      await stream.close();
      await consumer.close(true);
    },
  };
}
