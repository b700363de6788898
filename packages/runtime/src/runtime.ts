// Assembles a running Eddy from a loaded module: the LMDB store in the state directory,
// the engine, the invokers (HTTP for remote endpoints, in-process for SDK functions given
// directly), and the module's ingresses and egresses. The CLI's `run` and `dev` and the
// tests start Eddy through here.
import { mkdirSync, readFileSync } from "node:fs";
import type { ToFunction } from "@eddy/protocol";
import type { Endpoint } from "@eddy/sdk";
import { type BlobStore, BlobStoreError } from "./checkpoint/blob/blob-store.ts";
import { openBlobStore } from "./checkpoint/blob/open-blob-store.ts";
import type { WrittenCheckpoint } from "./checkpoint/checkpoint-writer.ts";
import type { CheckpointRequest } from "./checkpoint/checkpointer.ts";
import { Checkpointer, readLocalCheckpoint, writeLocalCheckpoint } from "./checkpoint/checkpointer.ts";
import { isEmptyStateDir, restoreCheckpoint } from "./checkpoint/restore.ts";
import { formatLocation } from "./config/diagnostics.ts";
import { type ModuleConfig, type ResolvedFunction, resolveFunction } from "./config/index.ts";
import {
  type EgressConfig,
  type IngressConfig,
  type KafkaEgressConfig,
  type KafkaIngressConfig,
  Kind,
  type KinesisEgressConfig,
  type KinesisIngressConfig,
  type PlaygroundEgressConfig,
  type PlaygroundIngressConfig,
} from "./config/types.ts";
import { type ControlSocket, listenControlSocket, type MemoryReport, memoryReport } from "./control-socket.ts";
import type { Address, FunctionTypename } from "./core/address.ts";
import type { Catalog, FailurePolicy, FunctionSettings } from "./core/partition-core.ts";
import type { DeadLetter } from "./core/records.ts";
import {
  type AdmissionReport,
  type EgressConnector,
  Engine,
  type InvokeOutcome,
  type Invoker,
} from "./engine/engine.ts";
import { BugError, EddyError, errorMessage } from "./errors.ts";
import { type HeapGovernor, heapTargetBytes, startHeapGovernor } from "./heap-governor.ts";
import { type HttpFunctionEndpoint, HttpInvoker } from "./invoker/http-invoker.ts";
import { InProcessInvoker } from "./invoker/in-process-invoker.ts";
import { KafkaEgress, type KafkaEgressSettings, kafkaEgressSettings } from "./io/kafka/egress.ts";
import { KafkaIngress, type KafkaIngressSettings, kafkaIngressSettings } from "./io/kafka/ingress.ts";
import { KinesisEgress, type KinesisEgressSettings, kinesisEgressSettings } from "./io/kinesis/egress.ts";
import { KinesisIngress, type KinesisIngressSettings, kinesisIngressSettings } from "./io/kinesis/ingress.ts";
import { PLAYGROUND_EGRESS_ID, PlaygroundEgress } from "./io/playground/egress.ts";
import { PlaygroundIngress } from "./io/playground/ingress.ts";
import { HOLDER_PID_FILE, type StateDirLock, stateDirHolder, takeStateDirLock } from "./state-dir-lock.ts";
import { LoggedStore } from "./store/logged-store.ts";

/** Eddy cannot start, for a reason the message gives in full (a caller prints it, not a stack). */
export class StartupError extends Error {
  override name = "StartupError";
}

export interface RuntimeOptions {
  readonly module: ModuleConfig;
  readonly stateDir: string;
  /** Interface the ingresses and egresses bind to; default 127.0.0.1. */
  readonly host?: string;
  /** When set, every ingress and egress request needs `Authorization: Bearer <token>`. */
  readonly token?: string;
  /** How long idempotency keys and request-reply answers are kept; default 24 h. */
  readonly retentionMs?: number;
  /** Functions run in this process (Eddy SDK); they take precedence over the module's endpoints. */
  readonly inProcess?: Endpoint;
  /** Fixed for the life of a state directory; default 128. */
  readonly partitionCount?: number;
  /** What to do with a batch that keeps failing; default retry (forever, with backoff). */
  readonly failurePolicy?: FailurePolicy;
  /** Overrides the port of every ingress/egress (0 = any free port), for tests and side-by-side runs. */
  readonly portOverride?: number;
  /** The largest HTTP ingress request body; default 4 MiB, at most 32 MiB (INGRESS_BODY_BYTES_LIMIT_MAX). */
  readonly ingressBodyBytesLimit?: number;
  /** Most bytes of work admitted and not finished (EngineOptions.memoryBudgetBytes); default 24 MiB. */
  readonly memoryBudgetBytes?: number;
  /**
   * Steer V8's old generation toward four times the memory budget (heap-governor.ts) while
   * the runtime runs. It sets a process-wide V8 flag: the eddy command turns it on, an
   * embedder decides for its own process. Default off.
   */
  readonly steerHeap?: boolean;
  /** How long the HTTP ingress holds a request that finds no room before it answers 503; default 10 s. */
  readonly ingressHoldMs?: number;
  readonly log?: (line: string) => void;
  /** A function failed under the stop policy. */
  readonly onStop?: (reason: string) => void;
  /** Checkpoints to blob storage, and restore from them when the state directory is empty. */
  readonly checkpoints?: CheckpointSettings;
  /**
   * For tests: milliseconds since the epoch as the runtime sees them (delayed messages,
   * retention); default Date.now. After moving it, call RunningRuntime.clockMoved().
   */
  readonly clock?: () => number;
}

export interface CheckpointSettings {
  /** file:///dir, a directory path, s3://bucket/prefix or gs://bucket/prefix. */
  readonly location: string;
  /** Between checkpoints (default 10 s); 0: only on demand. */
  readonly intervalMs?: number;
  /** Checkpoints kept (default 3). */
  readonly keep?: number;
  /** HTTP ingress messages are acknowledged only once a checkpoint holds them. */
  readonly acknowledgeAfterCheckpoint?: boolean;
}

export interface RunningRuntime {
  readonly ingressUrls: readonly string[];
  readonly egressUrls: readonly string[];
  /**
   * Replaces the in-process functions. Function types must stay the ones given at start:
   * which types exist is fixed for the life of the runtime.
   */
  replaceInProcess(endpoint: Endpoint): void;
  /** Takes a checkpoint (or savepoint) now; undefined when nothing changed since the last. Needs `checkpoints`. */
  checkpoint(request?: CheckpointRequest): Promise<WrittenCheckpoint | undefined>;
  /** The `clock` option jumped: delayed messages now due are sent. */
  clockMoved(): void;
  /** The memory budget and how much of it is in use. */
  admission(): AdmissionReport;
  stop(): Promise<void>;
}

const PARTITION_COUNT_DEFAULT = 128;
const MAX_BATCH_BYTES = 8 * 1024 * 1024;
const PAYLOAD_BYTES_DEFAULT = 32 * 1024 * 1024;
export const INGRESS_BODY_BYTES_LIMIT_DEFAULT = 4 * 1024 * 1024;
/**
 * A message larger than a function call may carry (32 MiB, the default payload_max_bytes,
 * StateFun's too) could be accepted but never delivered, so the ingress takes no more.
 */
export const INGRESS_BODY_BYTES_LIMIT_MAX = PAYLOAD_BYTES_DEFAULT;

function functionSettings(resolved: ResolvedFunction | undefined, policy: FailurePolicy): FunctionSettings {
  const limit = resolved?.endpoint.maxNumBatchRequests ?? 1000;
  return {
    maxBatchCount: limit > 0 ? limit : Number.MAX_SAFE_INTEGER,
    maxBatchBytes: MAX_BATCH_BYTES,
    backlogLimit: Math.max(limit, 0),
    failurePolicy: policy,
  };
}

function httpEndpoint(resolved: ResolvedFunction): HttpFunctionEndpoint {
  const transport = resolved.endpoint.transport;
  const url = resolved.url;
  const base =
    url.kind === "tcp"
      ? { url: url.url }
      : { url: `${url.tls ? "https" : "http"}://localhost${url.path}`, unixSocketPath: url.socketPath };
  if (transport.type === "io.statefun.transports.v1/okhttp") {
    return {
      ...base,
      callTimeoutMs: transport.callTimeoutMs,
      connectTimeoutMs: transport.connectTimeoutMs,
      maxResponseBytes: PAYLOAD_BYTES_DEFAULT,
      poolSize: 1024,
    };
  }
  const tls: { ca?: string; cert?: string; key?: string; passphrase?: string } = {};
  if (transport.tls.trustCaCerts !== undefined) tls.ca = readFileSync(transport.tls.trustCaCerts.path, "utf8");
  if (transport.tls.client !== undefined) {
    tls.cert = readFileSync(transport.tls.client.cert.path, "utf8");
    tls.key = readFileSync(transport.tls.client.key.path, "utf8");
    if (transport.tls.client.keyPassword !== undefined) {
      tls.passphrase = readFileSync(transport.tls.client.keyPassword.path, "utf8").trim();
    }
  }
  let signingKey: string | undefined;
  if (transport.signingKey !== undefined) {
    signingKey = readFileSync(transport.signingKey.path, "utf8").trim();
    if (signingKey === "") throw new StartupError(`signing_key ${transport.signingKey.path} is empty`);
  }
  return {
    ...base,
    callTimeoutMs: transport.callTimeoutMs,
    connectTimeoutMs: transport.connectTimeoutMs,
    maxResponseBytes: transport.payloadBytesMax,
    poolSize: transport.poolSizeMax,
    ...(Object.keys(tls).length === 0 ? {} : { tls }),
    ...(signingKey === undefined ? {} : { signingKey }),
  };
}

/** In-process functions first, then the module's HTTP endpoints. */
class RoutingInvoker implements Invoker {
  #inProcess: InProcessInvoker | undefined;
  #inProcessTypes: ReadonlySet<string>;
  readonly #http: HttpInvoker;

  constructor(inProcess: Endpoint | undefined, http: HttpInvoker) {
    this.#inProcess = inProcess === undefined ? undefined : new InProcessInvoker(inProcess);
    this.#inProcessTypes = new Set(inProcess?.typenames ?? []);
    this.#http = http;
  }

  /** Swaps the in-process functions (eddy dev's reload); batches in flight finish on the old code. */
  replaceInProcess(endpoint: Endpoint): void {
    this.#inProcess = new InProcessInvoker(endpoint);
    this.#inProcessTypes = new Set(endpoint.typenames);
  }

  invoke(target: Address, request: ToFunction): InvokeOutcome | Promise<InvokeOutcome> {
    if (this.#inProcess !== undefined && this.#inProcessTypes.has(target.typename)) {
      return this.#inProcess.invoke(target, request);
    }
    return this.#http.invoke(target, request);
  }

  async close(): Promise<void> {
    await this.#http.close();
  }
}

export async function startRuntime(options: RuntimeOptions): Promise<RunningRuntime> {
  const { module } = options;
  const log = options.log ?? ((line: string) => process.stderr.write(`${line}\n`));
  const host = options.host ?? "127.0.0.1";
  const policy = options.failurePolicy ?? "retry";
  const inProcessTypes = new Set(options.inProcess?.typenames ?? []);

  const resolvedCache = new Map<string, ResolvedFunction | undefined>();
  const resolve = (typename: string) => {
    if (!resolvedCache.has(typename)) resolvedCache.set(typename, resolveFunction(module, typename));
    return resolvedCache.get(typename);
  };
  const egressIds = new Set<string>(module.egresses.map((egress) => egress.id));
  const settingsCache = new Map<string, FunctionSettings | undefined>();
  const catalog: Catalog = {
    functionSettings(typename: FunctionTypename) {
      if (!settingsCache.has(typename)) {
        const resolved = resolve(typename);
        const served = inProcessTypes.has(typename) || resolved !== undefined;
        settingsCache.set(typename, served ? functionSettings(resolved, policy) : undefined);
      }
      return settingsCache.get(typename);
    },
    hasEgress: (egress) => egressIds.has(egress),
  };

  const kafka = kafkaConnectors(module, catalog);
  if (!kafka.ok) throw new StartupError(kafka.error);
  const kinesis = kinesisConnectors(module, catalog);
  if (!kinesis.ok) throw new StartupError(kinesis.error);
  const ingressBodyBytesLimit = options.ingressBodyBytesLimit ?? INGRESS_BODY_BYTES_LIMIT_DEFAULT;
  if (
    !Number.isSafeInteger(ingressBodyBytesLimit) ||
    ingressBodyBytesLimit < 1 ||
    ingressBodyBytesLimit > INGRESS_BODY_BYTES_LIMIT_MAX
  ) {
    throw new StartupError(
      `the ingress body limit ${ingressBodyBytesLimit} is not a number of bytes from 1 to ${INGRESS_BODY_BYTES_LIMIT_MAX}`,
    );
  }

  try {
    mkdirSync(options.stateDir, { recursive: true });
  } catch (error) {
    throw new StartupError(`cannot create the state directory ${options.stateDir}: ${(error as Error).message}`);
  }
  const taken = await takeStateDirLock(options.stateDir);
  if (!taken.ok) throw new StartupError(taken.error);
  try {
    return await startHolding(options, taken.lock, {
      log,
      host,
      policy,
      resolve,
      catalog,
      kafka,
      kinesis,
      ingressBodyBytesLimit,
    });
  } catch (error) {
    // Whatever was opened is closed by now (or never was): the next start must not find it held.
    await taken.lock.release();
    throw asStartupError(error, options.stateDir);
  }
}

/** What startRuntime worked out before it took the state directory. */
interface Prepared {
  readonly log: (line: string) => void;
  readonly host: string;
  readonly policy: FailurePolicy;
  readonly resolve: (typename: string) => ResolvedFunction | undefined;
  readonly catalog: Catalog;
  readonly kafka: Extract<ReturnType<typeof kafkaConnectors>, { ok: true }>;
  readonly kinesis: Extract<ReturnType<typeof kinesisConnectors>, { ok: true }>;
  readonly ingressBodyBytesLimit: number;
}

/**
 * A system error while starting (a directory Eddy may not write, a port it may not bind)
 * is the user's to fix, so it becomes one line; anything else is a bug and keeps its stack.
 */
function asStartupError(error: unknown, stateDir: string): unknown {
  if (error instanceof StartupError) return error;
  const code = (error as NodeJS.ErrnoException | undefined)?.code;
  if (error instanceof Error && typeof code === "string" && /^E[A-Z]+$/.test(code)) {
    return new StartupError(`${stateDir}: ${error.message}`);
  }
  return error;
}

async function startHolding(options: RuntimeOptions, lock: StateDirLock, prepared: Prepared): Promise<RunningRuntime> {
  const { module } = options;
  const { log, host, policy, resolve, catalog, kafka, kinesis } = prepared;
  const blobs =
    options.checkpoints === undefined ? undefined : await openCheckpoints(options.stateDir, options.checkpoints, log);
  const chained = blobs === undefined ? undefined : readLocalCheckpoint(options.stateDir, blobs.url);
  const store = new LoggedStore({
    path: options.stateDir,
    ...(chained === undefined ? {} : { keepLogAfter: chained.seq }),
  });
  const partitionCount = await checkPartitionCount(
    store,
    options.partitionCount ?? PARTITION_COUNT_DEFAULT,
    options.stateDir,
  );
  const endpointCache = new Map<string, HttpFunctionEndpoint | undefined>();
  const httpInvoker = new HttpInvoker(
    {
      // Built once per function type: the TLS files are read here, not on every call.
      endpointFor: (typename) => {
        if (!endpointCache.has(typename)) {
          const resolved = resolve(typename);
          endpointCache.set(typename, resolved === undefined ? undefined : httpEndpoint(resolved));
        }
        return endpointCache.get(typename);
      },
    },
    { log, failurePolicy: policy },
  );

  // A connector hit a failure retrying cannot cure: one line (a bug's stack with it), then stop.
  let stopRequested = false;
  const onFatal = (who: string) => (error: unknown) => {
    const reason = `${who} failed: ${errorMessage(error)}`;
    const isBug = !(error instanceof EddyError) || error instanceof BugError;
    log(
      `eddy: stopping: ${reason}${isBug && error instanceof Error && error.stack !== undefined ? `\n${error.stack}` : ""}`,
    );
    if (stopRequested) return;
    stopRequested = true;
    options.onStop?.(reason);
  };

  // The Kafka egresses are built before the checkpointer (which needs the engine they go into).
  const checkpointerRef: { current: Checkpointer | undefined } = { current: undefined };
  const playgroundEgressConfigs = module.egresses.filter(isPlaygroundEgress);
  const playgroundEgresses = playgroundEgressConfigs.map(
    (egress) =>
      new PlaygroundEgress({
        port: options.portOverride ?? egress.port,
        host,
        topics: egress.topics,
        ...(options.token === undefined ? {} : { token: options.token }),
      }),
  );
  const kafkaEgresses = kafka.egresses.map(
    ({ config, settings }) =>
      new KafkaEgress({
        config,
        settings,
        log,
        onFatal: onFatal(`Kafka egress ${config.id}`),
        ...(checkpointsHoldOutput(options)
          ? { checkpointed: () => (checkpointerRef.current as Checkpointer).coveredNow() }
          : {}),
      }),
  );
  const kinesisEgresses = kinesis.egresses.map(
    ({ config, settings }) =>
      new KinesisEgress({
        config,
        settings,
        log,
        onFatal: onFatal(`Kinesis egress ${config.id}`),
        ...(checkpointsHoldOutput(options)
          ? { checkpointed: () => (checkpointerRef.current as Checkpointer).coveredNow() }
          : {}),
      }),
  );
  const connectors: EgressConnector[] = [...playgroundEgresses, ...kafkaEgresses, ...kinesisEgresses];
  const invoker = new RoutingInvoker(options.inProcess, httpInvoker);
  const engine = new Engine({
    store,
    catalog,
    invoker,
    partitionCount,
    egress: connectors,
    ...(options.clock === undefined ? {} : { clock: options.clock }),
    ...(options.retentionMs === undefined ? {} : { idempotencyRetentionMs: options.retentionMs }),
    ...(options.memoryBudgetBytes === undefined ? {} : { memoryBudgetBytes: options.memoryBudgetBytes }),
    onDeadLetter: (letter: DeadLetter, id: string) =>
      log(`eddy: dead letter ${id} for ${letter.target.typename}/${letter.target.id}: ${letter.reason}`),
    onInvokeFailure: (target, reason) =>
      log(`eddy: ${target.typename}/${target.id}: ${reason} (failure policy: ${policy})`),
    onStop: (reason) => {
      log(`eddy: stopping: ${reason}`);
      options.onStop?.(reason);
    },
  });
  for (const egress of playgroundEgresses) egress.attach(engine, store);
  for (const egress of kafkaEgresses) egress.start(engine, store);
  for (const egress of kinesisEgresses) egress.start(engine, store);
  const checkpointer =
    blobs === undefined
      ? undefined
      : new Checkpointer({
          store,
          blobs,
          partitionCount,
          log,
          ...(options.checkpoints?.intervalMs === undefined ? {} : { intervalMs: options.checkpoints.intervalMs }),
          ...(options.checkpoints?.keep === undefined ? {} : { keep: options.checkpoints.keep }),
        });
  if (blobs !== undefined) {
    const interval = options.checkpoints?.intervalMs ?? 10_000;
    log(
      `eddy: checkpoints to ${blobs.url} ${interval === 0 ? "on demand only" : `every ${interval / 1000} s`}, keeping ${options.checkpoints?.keep ?? 3}${options.checkpoints?.acknowledgeAfterCheckpoint === true ? "; ingress acknowledgements and egress output wait for the next checkpoint" : ""}`,
    );
  }

  checkpointerRef.current = checkpointer;
  const checkpointed =
    checkpointer !== undefined && options.checkpoints?.acknowledgeAfterCheckpoint === true
      ? () => checkpointer.coveredNow()
      : undefined;
  const ingressConfigs = module.ingresses.filter(isPlaygroundIngress);
  const ingresses = ingressConfigs.map(
    (ingress) =>
      new PlaygroundIngress(engine, {
        port: options.portOverride ?? ingress.port,
        host,
        maxBodyBytes: prepared.ingressBodyBytesLimit,
        ...(options.ingressHoldMs === undefined ? {} : { holdMs: options.ingressHoldMs }),
        ...(options.token === undefined ? {} : { token: options.token }),
        ...(checkpointed === undefined ? {} : { checkpointed }),
      }),
  );

  // Started once everything that can fail to start has (a process-wide setting, undone in stop()).
  let heapGovernor: HeapGovernor | undefined;
  let control: ControlSocket | undefined;
  try {
    control = await listenControlSocket(options.stateDir, (path) =>
      controlRequest(checkpointer, () => memoryReport(engine.admission, store.memtableBytes, heapGovernor), path),
    );
  } catch (error) {
    log(
      `eddy: warning: no control socket in ${options.stateDir} (${(error as Error).message}); eddy checkpoints create and eddy savepoint cannot reach this process`,
    );
  }

  const kafkaIngresses = kafka.ingresses.map(
    ({ config, settings }) =>
      new KafkaIngress({
        config,
        settings,
        engine,
        store,
        log,
        onFatal: onFatal(`Kafka ingress ${config.id}`),
        ...(checkpointed === undefined ? {} : { checkpointed }),
      }),
  );
  const kinesisIngresses = kinesis.ingresses.map(
    ({ config, settings }) =>
      new KinesisIngress({ config, settings, engine, store, log, onFatal: onFatal(`Kinesis ingress ${config.id}`) }),
  );
  if (options.steerHeap === true) heapGovernor = startHeapGovernor(heapTargetBytes(engine.admission.budgetBytes));
  engine.start();
  for (const ingress of kafkaIngresses) ingress.start();
  for (const ingress of kinesisIngresses) ingress.start();
  const stop = async () => {
    heapGovernor?.stop();
    await Promise.all([...ingresses, ...kafkaIngresses, ...kinesisIngresses].map((ingress) => ingress.close()));
    await control?.close();
    await checkpointer?.close();
    await Promise.all([...kafkaEgresses, ...kinesisEgresses].map((egress) => egress.close()));
    await engine.stop();
    await blobs?.close();
    await Promise.all(playgroundEgresses.map((egress) => egress.close()));
    // Last: until the store is closed, no other Eddy may open it.
    await lock.release();
  };
  const egressUrls: string[] = [];
  const ingressUrls: string[] = [];
  try {
    for (const [index, egress] of playgroundEgresses.entries()) {
      const config = playgroundEgressConfigs[index] as PlaygroundEgressConfig;
      egressUrls.push(await listenFor(egress, config, options.portOverride ?? config.port, host));
    }
    for (const [index, ingress] of ingresses.entries()) {
      const config = ingressConfigs[index] as PlaygroundIngressConfig;
      ingressUrls.push(await listenFor(ingress, config, options.portOverride ?? config.port, host));
    }
  } catch (error) {
    // Nothing half-started stays behind: the process can exit and the state directory is free.
    await stop();
    throw error;
  }
  return {
    ingressUrls,
    egressUrls,
    replaceInProcess: (endpoint) => invoker.replaceInProcess(endpoint),
    checkpoint(request) {
      if (checkpointer === undefined) throw new Error("checkpoint: Eddy runs without --checkpoints");
      return checkpointer.checkpoint(request);
    },
    clockMoved: () => engine.clockMoved(),
    admission: () => engine.admission,
    stop,
  };
}

/** Listens, or says in one line which port on which host could not be had and which ingress or egress wanted it. */
async function listenFor(
  listener: { listen(): Promise<string> },
  config: PlaygroundIngressConfig | PlaygroundEgressConfig,
  port: number,
  host: string,
): Promise<string> {
  try {
    return await listener.listen();
  } catch (error) {
    const role = config.kind === Kind.PLAYGROUND_INGRESS ? "ingress" : "egress";
    const wanter = `the ${role} ${config.kind} (${formatLocation(config.source)})`;
    const code = (error as NodeJS.ErrnoException).code;
    if (code === "EADDRINUSE") throw new StartupError(`port ${port} on ${host} is in use; ${wanter} wants it`);
    if (code === "EACCES") {
      throw new StartupError(`port ${port} on ${host} needs privileges this process lacks; ${wanter} wants it`);
    }
    throw new StartupError(`${wanter} cannot listen on port ${port} of ${host} (--host): ${(error as Error).message}`);
  }
}

/** With checkpoints and --ack-after-checkpoint, nothing leaves Eddy before a checkpoint holds it. */
function checkpointsHoldOutput(options: RuntimeOptions): boolean {
  return options.checkpoints !== undefined && options.checkpoints.acknowledgeAfterCheckpoint === true;
}

const isPlaygroundIngress = (ingress: IngressConfig): ingress is PlaygroundIngressConfig =>
  ingress.kind === Kind.PLAYGROUND_INGRESS;
const isPlaygroundEgress = (egress: EgressConfig): egress is PlaygroundEgressConfig =>
  egress.kind === Kind.PLAYGROUND_EGRESS;

/** The module's Kafka ingresses and egresses with their client settings, or the first thing wrong with them. */
function kafkaConnectors(
  module: ModuleConfig,
  catalog: Catalog,
):
  | {
      ok: true;
      ingresses: { config: KafkaIngressConfig; settings: KafkaIngressSettings }[];
      egresses: { config: KafkaEgressConfig; settings: KafkaEgressSettings }[];
    }
  | { ok: false; error: string } {
  const ingresses = [];
  const egresses = [];
  for (const ingress of module.ingresses) {
    if (ingress.kind !== Kind.KAFKA_INGRESS) continue;
    for (const { topic, targets } of ingress.topics) {
      const unserved = targets.find((target) => catalog.functionSettings(target) === undefined);
      if (unserved !== undefined) {
        return {
          ok: false,
          error: `${formatLocation(ingress.source)}: Kafka ingress ${ingress.id} routes topic ${topic} to ${unserved}, which no endpoint in the module serves`,
        };
      }
    }
    const settings = kafkaIngressSettings(ingress);
    if (!settings.ok) return { ok: false, error: `${formatLocation(ingress.source)}: ${settings.error}` };
    ingresses.push({ config: ingress, settings: settings.value });
  }
  for (const egress of module.egresses) {
    if (egress.kind !== Kind.KAFKA_EGRESS) continue;
    const settings = kafkaEgressSettings(egress);
    if (!settings.ok) return { ok: false, error: `${formatLocation(egress.source)}: ${settings.error}` };
    egresses.push({ config: egress, settings: settings.value });
  }
  return { ok: true, ingresses, egresses };
}

/** The module's Kinesis ingresses and egresses with their client settings, or the first thing wrong with them. */
function kinesisConnectors(
  module: ModuleConfig,
  catalog: Catalog,
):
  | {
      ok: true;
      ingresses: { config: KinesisIngressConfig; settings: KinesisIngressSettings }[];
      egresses: { config: KinesisEgressConfig; settings: KinesisEgressSettings }[];
    }
  | { ok: false; error: string } {
  const ingresses = [];
  const egresses = [];
  for (const ingress of module.ingresses) {
    if (ingress.kind !== Kind.KINESIS_INGRESS) continue;
    for (const { stream, targets } of ingress.streams) {
      const unserved = targets.find((target) => catalog.functionSettings(target) === undefined);
      if (unserved !== undefined) {
        return {
          ok: false,
          error: `${formatLocation(ingress.source)}: Kinesis ingress ${ingress.id} routes stream ${stream} to ${unserved}, which no endpoint in the module serves`,
        };
      }
    }
    const settings = kinesisIngressSettings(ingress);
    if (!settings.ok) return { ok: false, error: `${formatLocation(ingress.source)}: ${settings.error}` };
    ingresses.push({ config: ingress, settings: settings.value });
  }
  for (const egress of module.egresses) {
    if (egress.kind !== Kind.KINESIS_EGRESS) continue;
    const settings = kinesisEgressSettings(egress);
    if (!settings.ok) return { ok: false, error: `${formatLocation(egress.source)}: ${settings.error}` };
    egresses.push({ config: egress, settings: settings.value });
  }
  return { ok: true, ingresses, egresses };
}

/**
 * What the control socket does: `/checkpoints` takes a checkpoint now, `/savepoints/<name>`
 * a savepoint (both need --checkpoints), `/memory` reports memory and the budget's use.
 */
async function controlRequest(
  checkpointer: Checkpointer | undefined,
  memory: () => MemoryReport,
  path: string,
): Promise<{ status: number; body: unknown }> {
  // The process's memory and the memory budget's use (bench/backlog reads it).
  if (path === "/memory") return { status: 200, body: memory() };
  if (checkpointer === undefined) {
    return { status: 409, body: { error: "this Eddy runs without --checkpoints: it takes no checkpoints" } };
  }
  const summary = (written: WrittenCheckpoint) => ({
    id: written.manifest.id,
    kind: written.manifest.kind,
    name: written.manifest.name,
    seq: written.manifest.seq,
    key: written.key,
    uploadedBytes: written.uploadedBytes,
  });
  if (path === "/checkpoints") {
    const written = await checkpointer.checkpoint();
    if (written !== undefined) return { status: 200, body: summary(written) };
    return { status: 200, body: { unchanged: true, id: checkpointer.latest?.id, seq: checkpointer.latest?.seq } };
  }
  const savepoint = /^\/savepoints\/([^/]+)$/.exec(path);
  if (savepoint !== null) {
    try {
      const written = await checkpointer.checkpoint({ savepointName: decodeURIComponent(savepoint[1] as string) });
      return { status: 200, body: summary(written as WrittenCheckpoint) };
    } catch (error) {
      return { status: 409, body: { error: (error as Error).message } };
    }
  }
  return { status: 404, body: { error: `no such control request: ${path}` } };
}

/**
 * Opens the checkpoint store; on an empty state directory, restores the newest checkpoint
 * there first (an empty store is a fresh start; a store whose checkpoints all fail to
 * restore is an error, not a silent empty start).
 */
async function openCheckpoints(
  stateDir: string,
  settings: CheckpointSettings,
  log: (line: string) => void,
): Promise<BlobStore> {
  const opened = await openBlobStore(settings.location);
  if (!opened.ok) throw new StartupError(opened.error);
  const blobs = opened.store;
  if (!isEmptyStateDir(stateDir)) return blobs;
  let restored: Awaited<ReturnType<typeof restoreCheckpoint>>;
  try {
    restored = await restoreCheckpoint({ store: blobs, stateDir, log });
  } catch (error) {
    await blobs.close();
    // The store could not be read: starting empty could mean losing all state, so no start.
    if (error instanceof BlobStoreError) {
      throw new StartupError(`${stateDir} is empty and the checkpoints cannot be read: ${error.message}`);
    }
    throw error;
  }
  if (restored.ok) {
    writeLocalCheckpoint(stateDir, blobs.url, restored.manifest);
    log(
      `eddy: restored ${restored.manifest.kind} ${restored.manifest.id} (${restored.bytes < 1e6 ? `${(restored.bytes / 1e3).toFixed(1)} kB` : `${(restored.bytes / 1e6).toFixed(1)} MB`}) in ${(restored.ms / 1000).toFixed(1)} s`,
    );
    return blobs;
  }
  if (restored.reason === "none") {
    log(`eddy: ${restored.error}; starting with empty state`);
    return blobs;
  }
  await blobs.close();
  throw new StartupError(restored.error);
}

/** A file in the state directory naming the process that runs on it; believed only while its lock is held. */
export const RUNNING_MARKER = HOLDER_PID_FILE;

/**
 * The pid of the live Eddy running on `stateDir` (this process included), if any. Decided by
 * the state directory's lock (state-dir-lock.ts), not by the pid file, which kill -9 leaves behind.
 */
export function runningProcess(stateDir: string): number | undefined {
  return stateDirHolder(stateDir);
}

/** The partition count is part of the data layout: a state directory keeps the one it was created with. */
async function checkPartitionCount(store: LoggedStore, wanted: number, stateDir: string): Promise<number> {
  const stored = store.get(["engine", "partitions"]) as number | undefined;
  if (stored !== undefined && stored !== wanted) {
    await store.close();
    throw new StartupError(`${stateDir} was created with ${stored} partitions; it cannot be opened with ${wanted}`);
  }
  if (stored === undefined) await store.commit([{ key: ["engine", "partitions"], value: wanted }]);
  return wanted;
}

export { PLAYGROUND_EGRESS_ID };
