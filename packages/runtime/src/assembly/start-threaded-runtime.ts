// Assembles `eddy run --threads N` (N ≥ 2): the partitions spread over N worker threads on one
// store (threads/partition-threads.ts). The main thread opens the state directory and hosts the
// store; each thread runs an engine over its partitions, calls the module's HTTP endpoints, and
// serves the playground ingress on the one port (SO_REUSEPORT). The playground egress's HTTP
// side runs here and pops from the threads in turn; its records stay in each thread's partitions.
//
// What the threads do not run yet is refused at start, in one line naming each component and
// where it is declared, as cluster mode refuses what it lacks: nothing silently degrades. Not
// yet: the Kafka and Kinesis connectors, the admin listener (metrics, the UI, the admin API) and
// cluster mode. In-process functions (`eddy dev --threads`) come as a module URL every thread
// imports (RuntimeOptions.inProcessUrl), and are imported again on a reload.
//
// Checkpoints work as in the embedded runtime: the state directory (restored from the newest
// checkpoint when empty) and its one store are the main thread's, and every thread's commits
// are in that store's log, so a checkpoint of it is one consistent cut across the threads.
import { availableParallelism } from "node:os";
import { formatLocation } from "../config/diagnostics.ts";
import { Kind, type PlaygroundEgressConfig, type PlaygroundIngressConfig } from "../config/types.ts";
import { MEMORY_BUDGET_BYTES_DEFAULT } from "../engine/engine.ts";
import { errorMessage } from "../errors.ts";
import { listenFailure, listenPort } from "../io/playground/connectors.ts";
import { PlaygroundEgress } from "../io/playground/egress.ts";
import { runtimeLogger } from "../observe/logger.ts";
import { PartitionThreads } from "../threads/partition-threads.ts";
import { ApplyRelay } from "../threads/store-host.ts";
import { moduleCatalog } from "./catalog.ts";
import { startCheckpointer } from "./checkpoints.ts";
import { Closers } from "./closers.ts";
import { httpEndpoints } from "./endpoints.ts";
import { INGRESS_BODY_BYTES_LIMIT_DEFAULT, type RunningRuntime, type RuntimeOptions } from "./options.ts";
import { StartupError } from "./startup-error.ts";
import { openState } from "./state.ts";
import { StopPath } from "./stop-path.ts";

const PARTITION_COUNT_DEFAULT = 128;
/** More threads than this many times the cores only adds switching. */
const THREADS_PER_CORE_MAX = 4;

export async function startThreadedRuntime(options: RuntimeOptions, threads: number): Promise<RunningRuntime> {
  refuseWhatThreadsLack(options, threads);
  const log = runtimeLogger(options);
  const policy = options.failurePolicy ?? "retry";
  // Before anything opens: every file the endpoints name (the threads read them again).
  const { resolve } = moduleCatalog(options.module, new Set(), policy);
  httpEndpoints(options.module, resolve);
  const host = options.host ?? "127.0.0.1";
  const ports = { portOverride: options.portOverride, portOffset: options.portOffset };
  const ingressConfig = options.module.ingresses.find(
    (ingress): ingress is PlaygroundIngressConfig => ingress.kind === Kind.PLAYGROUND_INGRESS,
  );
  const egressConfig = options.module.egresses.find(
    (egress): egress is PlaygroundEgressConfig => egress.kind === Kind.PLAYGROUND_EGRESS,
  );
  const ingressPort = ingressConfig === undefined ? undefined : portOf(listenPort(ingressConfig, ports));
  const egressPort = egressConfig === undefined ? undefined : portOf(listenPort(egressConfig, ports));
  const stopPath = new StopPath(log, options.onStop);
  const closers = new Closers();
  try {
    const relay = new ApplyRelay();
    const { store, partitionCount, blobs } = await openState(
      options.stateDir,
      options.partitionCount ?? PARTITION_COUNT_DEFAULT,
      options.checkpoints,
      closers,
      log,
      relay.onApply,
    );
    let covered: () => Promise<void> = () => Promise.reject(new Error("Eddy runs without --checkpoints"));
    let running: PartitionThreads;
    try {
      running = await PartitionThreads.onStore(store, relay, {
        stateDir: options.stateDir,
        threads,
        partitionCount,
        failurePolicy: policy,
        ...(options.inProcessUrl === undefined ? {} : { functions: options.inProcessUrl }),
        runtime: {
          module: options.module,
          ...(options.retentionMs === undefined ? {} : { retentionMs: options.retentionMs }),
          // The budget is the process's: each thread's engine takes its share.
          memoryBudgetBytes: Math.ceil((options.memoryBudgetBytes ?? MEMORY_BUDGET_BYTES_DEFAULT) / threads),
          ...(options.logLevel === undefined ? {} : { logLevel: options.logLevel }),
        },
        onStop: (reason) => stopPath.stop(reason),
        // Set once the checkpointer exists, before any ingress opens.
        checkpointed: () => covered(),
      });
    } catch (error) {
      throw new StartupError(errorMessage(error));
    }
    // Stops every thread (each commits what it has); the store and the directory close after.
    closers.defer("the partition threads", () => running.stop());
    const checkpointer =
      blobs === undefined || options.checkpoints === undefined
        ? undefined
        : startCheckpointer(store, blobs, options.checkpoints, partitionCount, log);
    if (checkpointer !== undefined) {
      closers.defer("the checkpointer", () => checkpointer.close());
      covered = () => checkpointer.coveredNow();
    }
    const ackAfterCheckpoint = checkpointer !== undefined && options.checkpoints?.acknowledgeAfterCheckpoint === true;
    const egressUrls: string[] = [];
    if (egressConfig !== undefined && egressPort !== undefined) {
      const egress = new PlaygroundEgress({
        port: egressPort,
        host,
        topics: egressConfig.topics,
        ...(options.token === undefined ? {} : { token: options.token }),
        pop: (topic) => running.egressPop(topic),
      });
      try {
        egressUrls.push(await egress.listen());
      } catch (error) {
        throw new StartupError(listenFailure(error, egressConfig, { port: egressPort, host }));
      }
      closers.defer("the playground egress", () => egress.close());
    }
    const ingressUrls: string[] = [];
    if (ingressConfig !== undefined && ingressPort !== undefined) {
      try {
        ingressUrls.push(
          await running.listen(ingressPort, host, options.ingressBodyBytesLimit ?? INGRESS_BODY_BYTES_LIMIT_DEFAULT, {
            config: ingressConfig,
            ackAfterCheckpoint,
            ...(options.token === undefined ? {} : { token: options.token }),
            ...(options.ingressHoldMs === undefined ? {} : { holdMs: options.ingressHoldMs }),
          }),
        );
      } catch (error) {
        throw new StartupError(errorMessage(error));
      }
    }
    const all = closers.move();
    const stop = () => all.closeAll(log);
    stopPath.started(stop);
    return {
      ingressUrls,
      egressUrls,
      adminUrl: undefined,
      replaceInProcess() {
        throw new Error("replaceInProcess: partition threads import their functions (reloadInProcess)");
      },
      reloadInProcess: (url) => running.reload(url),
      checkpoint(request) {
        if (checkpointer === undefined) throw new Error("checkpoint: Eddy runs without --checkpoints");
        return checkpointer.checkpoint(request);
      },
      clockMoved() {
        throw new Error("clockMoved: partition threads take no clock yet");
      },
      admission() {
        throw new Error("admission: partition threads do not report their memory budget yet");
      },
      stop,
    };
  } catch (error) {
    // Nothing half-started stays behind: the process can exit and the state directory is free.
    await closers.closeAll(log).catch(() => undefined);
    if (error instanceof StartupError) throw error;
    throw new StartupError(`${options.stateDir}: ${errorMessage(error)}`);
  }
}

function portOf(result: ReturnType<typeof listenPort>): number {
  if (!result.ok) throw new StartupError(result.message);
  return result.value;
}

/** Every component and option the partition threads cannot run yet, in one error. */
function refuseWhatThreadsLack(options: RuntimeOptions, threads: number): void {
  const cores = availableParallelism();
  if (!Number.isSafeInteger(threads) || threads < 2 || threads > cores * THREADS_PER_CORE_MAX) {
    throw new StartupError(
      `--threads ${threads}: expected a whole number from 1 to ${cores * THREADS_PER_CORE_MAX} (${THREADS_PER_CORE_MAX} per core)`,
    );
  }
  const lacking: string[] = [];
  for (const component of [...options.module.ingresses, ...options.module.egresses]) {
    if (component.kind !== Kind.PLAYGROUND_INGRESS && component.kind !== Kind.PLAYGROUND_EGRESS) {
      const name = "id" in component ? ` ${component.id}` : "";
      lacking.push(`${component.kind}${name} (${formatLocation(component.source)})`);
    }
  }
  if (options.cluster !== undefined) lacking.push("--cluster");
  if (options.admin !== undefined) lacking.push("the admin listener (run with --admin-port off)");
  if (options.inProcess !== undefined) lacking.push("in-process functions given as objects (give inProcessUrl)");
  if (options.clock !== undefined) lacking.push("a clock of the embedder's");
  if (lacking.length > 0) {
    throw new StartupError(
      `--threads ${threads} does not run these yet: ${lacking.join("; ")}. Run them with --threads 1`,
    );
  }
}
