// The admin listener and the metrics behind it, as both modes assemble them: the metrics exist
// only when the listener is asked for (RuntimeOptions.admin), so a runtime without it counts
// nothing; the listener opens before the store, so a port in use costs no restore; the levels
// it reports (backlogs, delayed messages, disk, lag) are read from the engine once it runs.
import { readdirSync, statSync } from "node:fs";
import { join } from "node:path";
import type { BlobStore } from "../checkpoint/blob/blob-store.ts";
import { readCatalog } from "../checkpoint/catalog.ts";
import type { Checkpointer } from "../checkpoint/checkpointer.ts";
import { allFiles, storedBytes } from "../checkpoint/manifest.ts";
import type { ModuleConfig, ResolvedFunction } from "../config/index.ts";
import type { Engine } from "../engine/engine.ts";
import type { EngineObserver } from "../engine/observer.ts";
import { errorMessage } from "../errors.ts";
import type { Connector, ConnectorObserver } from "../io/connector.ts";
import type {
  AdminRuntime,
  CheckpointControl,
  ClusterSavepointControl,
  FunctionEndpointInfo,
} from "../observe/admin-api.ts";
import { AdminServer } from "../observe/admin-server.ts";
import type { AdminPeers } from "../observe/cluster-admin.ts";
import { fanOut, LiveStats } from "../observe/live-stats.ts";
import { type RuntimeGauges, RuntimeMetrics } from "../observe/metrics.ts";
import type { Closers } from "./closers.ts";
import { checkpointSummary } from "./control.ts";
import type { RuntimeOptions } from "./options.ts";
import { StartupError } from "./startup-error.ts";

/** The version the admin API's OpenAPI document states. */
const API_VERSION = "1.0.0";

/**
 * What a runtime counts: the live numbers of the admin API (always: the control socket serves
 * them too) and, with an admin listener, the Prometheus metrics; `observer` tells both.
 */
export interface RuntimeObservers {
  readonly stats: LiveStats;
  readonly metrics: RuntimeMetrics | undefined;
  readonly observer: EngineObserver & ConnectorObserver;
}

export function newObservers(options: RuntimeOptions): RuntimeObservers {
  const stats = new LiveStats();
  const metrics = options.admin === undefined ? undefined : new RuntimeMetrics();
  return { stats, metrics, observer: metrics === undefined ? stats : fanOut([metrics, stats]) };
}

/** An open admin listener: its URL, and how the started runtime is handed to it. */
export interface OpenAdmin {
  readonly url: string;
  attach(runtime: AdminRuntime): void;
}

/**
 * Opens the admin listener (its close registered with `closers`); undefined without one. A
 * port that cannot be had is a StartupError naming it and the flag that chose it.
 */
export async function openAdmin(
  options: RuntimeOptions,
  metrics: RuntimeMetrics | undefined,
  closers: Closers,
): Promise<OpenAdmin | undefined> {
  if (options.admin === undefined || metrics === undefined) return undefined;
  const host = options.host ?? "127.0.0.1";
  const { port } = options.admin;
  const server = new AdminServer({ port, host, token: options.token, metrics, version: API_VERSION });
  try {
    const url = await server.listen();
    closers.defer("the admin listener", () => server.close());
    return { url, attach: (runtime) => server.attach(runtime) };
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    const where = `the admin listener cannot listen on port ${port} of ${host}`;
    // The port's fault names --admin-port; anything else (no such address here, a name that
    // does not resolve) is the host's, and names --host.
    throw new StartupError(
      code === "EADDRINUSE"
        ? `${where}: it is in use (--admin-port)`
        : code === "EACCES"
          ? `${where}: it needs privileges this process lacks (--admin-port)`
          : `${where} (--host): ${errorMessage(error)}`,
    );
  }
}

/** The levels /metrics reads at each scrape, from the running engine and connectors. */
export function runtimeGauges(engine: Engine, stateDir: string, connectors: readonly Connector[]): RuntimeGauges {
  return {
    functionTypes: () => engine.functionTypeLoads(),
    delayedMessagesPending: () => engine.delayedMessagesPending,
    stateBytesOnDisk: () => diskBytes(stateDir, 3),
    admission: () => engine.admission,
    sourceLags: async () =>
      (await Promise.all(connectors.map((connector) => connector.sourceLags?.() ?? Promise.resolve([])))).flat(),
  };
}

/** What the admin API answers for: the started runtime's parts. */
export function adminRuntime(parts: {
  readonly mode: "embedded" | "cluster";
  readonly module: ModuleConfig;
  readonly inProcessTypes: readonly string[];
  readonly resolve: (typename: string) => ResolvedFunction | undefined;
  readonly engine: Engine;
  readonly partitionCount: number;
  readonly stats: LiveStats;
  readonly stateDir: string;
  readonly connectors: readonly Connector[];
  readonly checkpointer: Checkpointer | undefined;
  readonly blobs: BlobStore | undefined;
  /** A cluster worker's view of the others, whom its API asks. */
  readonly peers?: AdminPeers | undefined;
  /** A cluster worker's savepoints of the whole cluster. */
  readonly clusterSavepoints?: ClusterSavepointControl | undefined;
}): AdminRuntime {
  const inProcess = new Set(parts.inProcessTypes);
  const declared = [
    ...inProcess,
    ...parts.module.endpoints.flatMap((endpoint) =>
      endpoint.functions.kind === "type" ? [endpoint.functions.typename as string] : [],
    ),
  ];
  const endpointOf = (typename: string): FunctionEndpointInfo | undefined => {
    if (inProcess.has(typename)) return { kind: "in-process" };
    const url = parts.resolve(typename)?.url;
    if (url === undefined) return undefined;
    return { kind: "http", url: url.kind === "tcp" ? url.url : `unix:${url.socketPath}${url.path}` };
  };
  return {
    mode: parts.mode,
    startedAtMs: Date.now(),
    engine: parts.engine,
    partitionCount: parts.partitionCount,
    stats: parts.stats,
    declaredTypes: () => declared,
    endpointOf,
    checkpoints:
      parts.checkpointer === undefined || parts.blobs === undefined
        ? undefined
        : checkpointControl(parts.checkpointer, parts.blobs),
    stateBytesOnDisk: () => diskBytes(parts.stateDir, 3),
    kafkaLagMessages: async () => {
      const lags = await Promise.all(parts.connectors.map((connector) => connector.sourceLags?.() ?? []));
      return lags.flat().reduce((sum, lag) => sum + lag.messages, 0);
    },
    ...(parts.peers === undefined ? {} : { peers: parts.peers }),
    ...(parts.clusterSavepoints === undefined ? {} : { clusterSavepoints: parts.clusterSavepoints }),
  };
}

function checkpointControl(checkpointer: Checkpointer, blobs: BlobStore): CheckpointControl {
  return {
    async list() {
      const catalog = await readCatalog(blobs);
      return [...catalog.checkpoints, ...catalog.savepoints]
        .map(({ manifest }) => ({
          id: manifest.id,
          kind: manifest.kind,
          ...(manifest.name === undefined ? {} : { name: manifest.name }),
          seq: manifest.seq,
          createdAt: manifest.createdAt,
          bytes: storedBytes(allFiles(manifest)),
        }))
        .sort((a, b) => (a.id < b.id ? 1 : a.id > b.id ? -1 : 0));
    },
    async take(savepointName) {
      const written = await checkpointer.checkpoint(savepointName === undefined ? {} : { savepointName });
      if (written !== undefined) return checkpointSummary(written);
      return { unchanged: true, id: checkpointer.latest?.id, seq: checkpointer.latest?.seq };
    },
    latest: () => checkpointer.latest,
  };
}

/** Disk space the files under `path` take (allocated blocks), `depth` levels down. */
function diskBytes(path: string, depth: number): number {
  let bytes = 0;
  for (const entry of readdirSync(path, { withFileTypes: true })) {
    const child = join(path, entry.name);
    if (entry.isDirectory()) {
      if (depth > 1) bytes += diskBytes(child, depth - 1);
    } else if (entry.isFile()) {
      // A file removed between the listing and its stat (a log segment, a snapshot) takes nothing.
      const stats = statSync(child, { throwIfNoEntry: false });
      if (stats !== undefined) bytes += stats.blocks * 512;
    }
  }
  return bytes;
}
