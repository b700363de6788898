// Assembles a running Eddy from a loaded module: the state directory and its store, the
// engine, the invokers (HTTP for the module's endpoints, in-process for SDK functions given
// directly), the checkpointer, the control socket, and the module's ingresses and egresses.
// Everything that can be checked without opening anything is checked first (settings, every
// file the module names); then each part opens and registers its closing with one Closers
// stack. A start that fails closes what it opened, last first, and the same directory can be
// started again at once; a start that succeeds hands the stack to RunningRuntime.stop().

import type { Checkpointer } from "../checkpoint/checkpointer.ts";
import { memoryReport } from "../control-socket.ts";
import type { Catalog } from "../core/partition-core.ts";
import { Engine } from "../engine/engine.ts";
import type { EngineObserver } from "../engine/observer.ts";
import type { Tracer } from "../engine/tracer.ts";
import { type HeapGovernor, heapTargetBytes, startHeapGovernor } from "../heap-governor.ts";
import { HttpInvoker } from "../invoker/http-invoker.ts";
import { RoutingInvoker } from "../invoker/routing-invoker.ts";
import { answerApi } from "../observe/admin-server.ts";
import { type Logger, runtimeLogger } from "../observe/logger.ts";
import type { LoggedStore } from "../store/logged-store.ts";
import { deliverLeftoverInboxes } from "../threads/leftover-inboxes.ts";
import { adminRuntime, newObservers, openAdmin, runtimeGauges } from "./admin.ts";
import { moduleCatalog } from "./catalog.ts";
import { startCheckpointer } from "./checkpoints.ts";
import { Closers } from "./closers.ts";
import { connectorFailure, createConnectors, type ModuleConnectors, openConnectors } from "./connectors.ts";
import { openControl } from "./control.ts";
import { httpEndpoints } from "./endpoints.ts";
import { failureLines } from "./failure-lines.ts";
import {
  INGRESS_BODY_BYTES_LIMIT_DEFAULT,
  INGRESS_BODY_BYTES_LIMIT_MAX,
  type RunningRuntime,
  type RuntimeOptions,
} from "./options.ts";
import { startClusterRuntime } from "./start-cluster-runtime.ts";
import { startThreadedRuntime } from "./start-threaded-runtime.ts";
import { StartupError } from "./startup-error.ts";
import { openState } from "./state.ts";
import { StopPath } from "./stop-path.ts";
import { startTracing } from "./tracing.ts";

const PARTITION_COUNT_DEFAULT = 128;

export async function startRuntime(options: RuntimeOptions): Promise<RunningRuntime> {
  if (options.threads !== undefined && options.threads !== 1) return startThreadedRuntime(options, options.threads);
  if (options.cluster !== undefined) return startClusterRuntime(options, options.cluster);
  const log = runtimeLogger(options);
  const policy = options.failurePolicy ?? "retry";
  const { catalog, resolve } = moduleCatalog(options.module, new Set(options.inProcess?.typenames ?? []), policy);
  // Before anything opens: the files every endpoint names, and every connector's settings.
  const endpoints = httpEndpoints(options.module, resolve);
  const { stats, metrics, observer } = newObservers(options);
  const closers = new Closers();
  // Closed last: the spans the engine and the connectors end as they close are exported.
  const tracer = await startTracing(options, log, closers);
  const connectors = createConnectors(options.module, {
    log,
    catalog,
    host: options.host ?? "127.0.0.1",
    portOverride: options.portOverride,
    portOffset: options.portOffset,
    token: options.token,
    ingressBodyBytesLimit: ingressBodyLimit(options.ingressBodyBytesLimit),
    ingressHoldMs: options.ingressHoldMs,
    observer,
    tracer,
  });
  const stopPath = new StopPath(log, options.onStop);
  try {
    const admin = await openAdmin(options, metrics, closers);
    const { store, partitionCount, blobs } = await openState(
      options.stateDir,
      options.partitionCount ?? PARTITION_COUNT_DEFAULT,
      options.checkpoints,
      closers,
      log,
    );
    const { engine, invoker } = newEngine(options, {
      store,
      partitionCount,
      catalog,
      endpoints,
      connectors,
      stopPath,
      log,
      observer,
      tracer,
      closers,
    });
    // Closes the invoker and the store too.
    closers.defer("the engine", () => engine.stop());
    const checkpointer =
      blobs === undefined || options.checkpoints === undefined
        ? undefined
        : startCheckpointer(store, blobs, options.checkpoints, partitionCount, log, metrics);
    if (checkpointer !== undefined) closers.defer("the checkpointer", () => checkpointer.close());
    const holdOutput = checkpointer !== undefined && options.checkpoints?.acknowledgeAfterCheckpoint === true;
    const host = {
      engine,
      store,
      partitionCount,
      checkpointed: holdOutput ? () => checkpointer.coveredNow() : undefined,
    };
    const failed = (name: string, error: unknown) => {
      const { reason, stack } = connectorFailure(name, error);
      stopPath.stop(reason, stack);
    };
    const egressUrls = await openConnectors(connectors.egresses, host, failed, closers);
    engine.start();
    // Before any ingress opens: what a run on partition threads left between them.
    await deliverLeftoverInboxes(engine, store, partitionCount);
    let heapGovernor: HeapGovernor | undefined;
    if (options.steerHeap === true) {
      const governor = startHeapGovernor(heapTargetBytes(engine.admission.budgetBytes));
      closers.defer("the heap governor", () => governor.stop());
      heapGovernor = governor;
    }
    const memory = () => memoryReport(engine.admission, store.memtableBytes, heapGovernor);
    const all = [...connectors.ingresses, ...connectors.egresses].map(({ connector }) => connector);
    const api = adminRuntime({
      mode: "embedded",
      module: options.module,
      inProcessTypes: options.inProcess?.typenames ?? [],
      resolve,
      engine,
      partitionCount,
      stats,
      stateDir: options.stateDir,
      connectors: all,
      checkpointer,
      blobs,
    });
    const control = await openControl(options.stateDir, checkpointer, memory, log, (req, res, path, query) =>
      answerApi(api, req, res, path, query),
    );
    if (control !== undefined) closers.defer("the control socket", () => control.close());
    const ingressUrls = await openConnectors(connectors.ingresses, host, failed, closers);
    metrics?.readLevelsFrom(runtimeGauges(engine, options.stateDir, all));
    admin?.attach(api);
    return runningRuntime(closers.move(), {
      engine,
      invoker,
      checkpointer,
      stopPath,
      ingressUrls,
      egressUrls,
      adminUrl: admin?.url,
      log,
    });
  } catch (error) {
    // Nothing half-started stays behind: the process can exit and the state directory is free.
    await closers.closeAll(log).catch(() => undefined);
    throw asStartupError(error, options.stateDir);
  }
}

interface EngineParts {
  readonly store: LoggedStore;
  readonly partitionCount: number;
  readonly catalog: Catalog;
  readonly endpoints: ReturnType<typeof httpEndpoints>;
  readonly connectors: ModuleConnectors;
  readonly stopPath: StopPath;
  readonly log: Logger;
  readonly observer: EngineObserver;
  readonly tracer: Tracer | undefined;
  readonly closers: Closers;
}

/** The engine over the store, with every egress, calling functions in process first, then over HTTP. */
function newEngine(options: RuntimeOptions, parts: EngineParts): { engine: Engine; invoker: RoutingInvoker } {
  const { log, stopPath } = parts;
  const policy = options.failurePolicy ?? "retry";
  const http = new HttpInvoker(parts.endpoints, { log, failurePolicy: policy });
  const failures = failureLines(log, policy);
  // Closed after the engine: the summaries count every failure until it stopped.
  parts.closers.defer("the failure log", () => failures.flush());
  const invoker = new RoutingInvoker(options.inProcess, http);
  const engine = new Engine({
    store: parts.store,
    catalog: parts.catalog,
    invoker,
    partitionCount: parts.partitionCount,
    egress: parts.connectors.egresses.flatMap(({ connector }) =>
      connector.egress === undefined ? [] : [connector.egress],
    ),
    ...(options.clock === undefined ? {} : { clock: options.clock }),
    ...(options.retentionMs === undefined ? {} : { idempotencyRetentionMs: options.retentionMs }),
    ...(options.memoryBudgetBytes === undefined ? {} : { memoryBudgetBytes: options.memoryBudgetBytes }),
    onDeadLetter: failures.onDeadLetter,
    onInvokeFailure: failures.onInvokeFailure,
    onStop: (reason) => stopPath.stop(reason),
    observer: parts.observer,
    ...(parts.tracer === undefined ? {} : { tracer: parts.tracer }),
  });
  return { engine, invoker };
}

/** The started runtime: its stop() unwinds `closers` (once, however often it is called). */
function runningRuntime(
  closers: Closers,
  parts: {
    readonly engine: Engine;
    readonly invoker: RoutingInvoker;
    readonly checkpointer: Checkpointer | undefined;
    readonly stopPath: StopPath;
    readonly ingressUrls: readonly string[];
    readonly egressUrls: readonly string[];
    readonly adminUrl: string | undefined;
    readonly log: Logger;
  },
): RunningRuntime {
  const { engine, invoker, checkpointer } = parts;
  const stop = () => closers.closeAll(parts.log);
  parts.stopPath.started(stop);
  return {
    ingressUrls: parts.ingressUrls,
    egressUrls: parts.egressUrls,
    adminUrl: parts.adminUrl,
    replaceInProcess: (endpoint) => invoker.replaceInProcess(endpoint),
    reloadInProcess: () => Promise.reject(new Error("reloadInProcess: only with partition threads (replaceInProcess)")),
    checkpoint(request) {
      if (checkpointer === undefined) throw new Error("checkpoint: Eddy runs without --checkpoints");
      return checkpointer.checkpoint(request);
    },
    clockMoved: () => engine.clockMoved(),
    admission: () => engine.admission,
    stop,
  };
}

function ingressBodyLimit(given: number | undefined): number {
  const limit = given ?? INGRESS_BODY_BYTES_LIMIT_DEFAULT;
  if (!Number.isSafeInteger(limit) || limit < 1 || limit > INGRESS_BODY_BYTES_LIMIT_MAX) {
    throw new StartupError(
      `the ingress body limit ${limit} is not a number of bytes from 1 to ${INGRESS_BODY_BYTES_LIMIT_MAX}`,
    );
  }
  return limit;
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
