// Assembles a worker of a cluster on Kafka (`eddy run --cluster`): the same catalog,
// endpoints and invokers as the embedded runtime, the state directory as the worker's local
// store (a cache of the changelog, caught up from it), the checkpoint store as the partitions'
// snapshot store, a ClusterWorker that runs the partitions the group gives it, and the module's
// HTTP ingress in front of its engine (which also serves the worker's dead letters:
// cluster/dead-letter-admin.ts).
//
// Every component of a module runs in cluster mode. The playground egress keeps its records
// in the rows of the partitions that sent them, and any worker's GET pops one, asking the other
// workers when it holds none (io/playground/egress.ts). The Kafka egress publishes in the
// worker's own transactions (io/kafka/cluster-egress.ts); the Kafka and Kinesis ingresses read
// the sources bound to the partitions the worker runs (io/source-binding.ts). The HTTP ingress
// forwards a request for an instance another worker runs to that worker (forwarding.ts). With
// an admin listener (RuntimeOptions.admin) the worker serves its own metrics, and takes
// savepoints of the whole cluster, with the other workers (cluster/savepoint-coordinator.ts).
import { mkdirSync } from "node:fs";
import type { BlobStore } from "../checkpoint/blob/blob-store.ts";
import { openBlobStore } from "../checkpoint/blob/open-blob-store.ts";
import { clusterModule } from "../cluster/cluster-module.ts";
import { type ClusterSettings, defaultAdminAdvertiseUrl } from "../cluster/cluster-settings.ts";
import { clusterTopicNames } from "../cluster/cluster-topics.ts";
import { ClusterWorker } from "../cluster/cluster-worker.ts";
import { clusterDeadLetterAdmin, workerRouting } from "../cluster/dead-letter-admin.ts";
import type { PartitionOwner } from "../cluster/membership-codec.ts";
import { clusterSavepointControl } from "../cluster/savepoint-admin.ts";
import { formatLocation } from "../config/diagnostics.ts";
import { type KafkaEgressConfig, Kind } from "../config/types.ts";
import { getRow, rowWrite, storeTables } from "../core/schema.ts";
import { Engine } from "../engine/engine.ts";
import { errorMessage } from "../errors.ts";
import { HttpInvoker } from "../invoker/http-invoker.ts";
import { RoutingInvoker } from "../invoker/routing-invoker.ts";
import { ClusterKafkaEgress, clusterEgressMismatch } from "../io/kafka/cluster-egress.ts";
import { kafkaEgressSettings } from "../io/kafka/egress.ts";
import { PlaygroundEgress } from "../io/playground/egress.ts";
import { SourceBinding } from "../io/source-binding.ts";
import { AdminPeerClient } from "../observe/admin-peer-client.ts";
import { type Logger, runtimeLogger } from "../observe/logger.ts";
import { takeStateDirLock } from "../state-dir-lock.ts";
import { LoggedStore } from "../store/logged-store.ts";
import { adminRuntime, newObservers, openAdmin, runtimeGauges } from "./admin.ts";
import { moduleCatalog } from "./catalog.ts";
import { Closers } from "./closers.ts";
import { connectorFailure, createConnectors, openConnectors } from "./connectors.ts";
import { httpEndpoints } from "./endpoints.ts";
import { failureLines } from "./failure-lines.ts";
import { INGRESS_BODY_BYTES_LIMIT_DEFAULT, type RunningRuntime, type RuntimeOptions } from "./options.ts";
import { StartupError } from "./startup-error.ts";
import { StopPath } from "./stop-path.ts";
import { startTracing } from "./tracing.ts";

const CLUSTER_PARTITION_COUNT_DEFAULT = 128;

export async function startClusterRuntime(options: RuntimeOptions, cluster: ClusterSettings): Promise<RunningRuntime> {
  // Every line of a worker names it: the workers of a cluster often log to one place.
  const log = runtimeLogger(options).child({ worker: cluster.workerId });
  const policy = options.failurePolicy ?? "retry";
  const egresses = clusterKafkaEgresses(options, cluster, log);
  const { catalog, resolve } = moduleCatalog(options.module, new Set(options.inProcess?.typenames ?? []), policy);
  const endpoints = httpEndpoints(options.module, resolve);
  // The Kafka egresses are the cluster's own kind (clusterKafkaEgresses); the others come from the registry.
  // The Kafka and Kinesis ingresses read the sources bound to the partitions this worker runs.
  const sourceBinding = new SourceBinding(options.partitionCount ?? CLUSTER_PARTITION_COUNT_DEFAULT);
  const { stats, metrics, observer } = newObservers(options);
  const closers = new Closers();
  // Closed last: the spans the worker and the connectors end as they close are exported.
  const tracer = await startTracing(options, log, closers);
  const connectors = createConnectors(
    { ...options.module, egresses: options.module.egresses.filter((egress) => egress.kind !== Kind.KAFKA_EGRESS) },
    {
      log,
      catalog,
      host: options.host ?? "127.0.0.1",
      portOverride: options.portOverride,
      portOffset: options.portOffset,
      token: options.token,
      ingressBodyBytesLimit: options.ingressBodyBytesLimit ?? INGRESS_BODY_BYTES_LIMIT_DEFAULT,
      ingressHoldMs: options.ingressHoldMs,
      sourceBinding,
      inCluster: true,
      observer,
      tracer,
    },
  );
  const partitionCount = options.partitionCount ?? CLUSTER_PARTITION_COUNT_DEFAULT;
  const stopPath = new StopPath(log, options.onStop);
  try {
    const admin = await openAdmin(options, metrics, closers);
    const local = await openLocalStore(options.stateDir, partitionCount, closers, cluster);
    const snapshots = await openSnapshotStore(options, closers);
    const http = new HttpInvoker(endpoints, { log, failurePolicy: policy });
    const invoker = new RoutingInvoker(options.inProcess, http);
    const failures = failureLines(log, policy);
    // Closed after the worker: the summaries count every failure until it stopped.
    closers.defer("the failure log", () => failures.flush());
    const started = await ClusterWorker.start({
      connection: cluster.connection,
      cluster: cluster.name,
      workerId: cluster.workerId,
      advertiseUrl: cluster.advertiseUrl,
      adminAdvertiseUrl:
        admin === undefined
          ? undefined
          : (cluster.adminAdvertiseUrl ?? defaultAdminAdvertiseUrl(cluster.advertiseUrl, admin.url)),
      partitionCount,
      module: clusterModule(options.module, options.inProcess?.typenames),
      local,
      onPartitionsChanged: (owned) => sourceBinding.changed(owned),
      ...(snapshots === undefined ? {} : { snapshots }),
      log,
      onFatal: (reason) => stopPath.stop(`cluster worker ${cluster.workerId}: ${reason}`),
      createEngine: (commitTarget) =>
        new Engine({
          store: local,
          commitTarget,
          ownedPartitions: [],
          catalog,
          invoker,
          egress: [
            ...egresses,
            ...connectors.egresses.flatMap(({ connector }) =>
              connector.egress === undefined ? [] : [connector.egress],
            ),
          ],
          partitionCount,
          ...(options.clock === undefined ? {} : { clock: options.clock }),
          ...(options.retentionMs === undefined ? {} : { idempotencyRetentionMs: options.retentionMs }),
          ...(options.memoryBudgetBytes === undefined ? {} : { memoryBudgetBytes: options.memoryBudgetBytes }),
          onDeadLetter: failures.onDeadLetter,
          onInvokeFailure: failures.onInvokeFailure,
          onStop: (reason) => stopPath.stop(reason),
          observer,
          ...(tracer === undefined ? {} : { tracer }),
          onCommitRefused: (reason) => {
            for (const egress of egresses) egress.commitRefused();
            log.warn(
              `worker ${cluster.workerId}: a commit was refused (${reason}); undone, going on from what is committed`,
            );
          },
        }),
    });
    if (!started.ok) throw new StartupError(`cluster ${cluster.name}: ${started.message}`);
    const worker = started.value;
    // Leaves the group gently and closes the engine (which closes the invoker and the store).
    closers.defer(`cluster worker ${cluster.workerId}`, () => worker.stop());
    log.info(`worker ${cluster.workerId} joined cluster ${cluster.name} (${cluster.advertiseUrl})`);
    if (snapshots !== undefined) {
      // Said once the worker is in: a start that is refused says only why, in one line.
      const every =
        snapshots.intervalMs === 0
          ? "never (the changelog keeps everything)"
          : `every ${snapshots.intervalMs / 1000} s`;
      log.info(`partition snapshots to ${snapshots.blobs.url} ${every}, keeping ${snapshots.keep} per partition`, {
        blobs: snapshots.blobs.url,
      });
    }
    const deadLetters = clusterDeadLetterAdmin(worker.engine, cluster.workerId, partitionCount);
    const playground = connectors.egresses.find(({ connector }) => connector.egress instanceof PlaygroundEgress)
      ?.connector.egress as PlaygroundEgress | undefined;
    const routing = workerRouting(worker.routing, deadLetters, {
      ...(playground === undefined
        ? {}
        : { playgroundEgress: { topics: playground.topics, popLocal: (topic) => playground.popOldest(topic) } }),
      peers: () => otherWorkers(worker.partitionOwners(), cluster.advertiseUrl),
    });
    const host = { engine: worker.engine, store: local, checkpointed: undefined, routing };
    const failed = (name: string, error: unknown) => {
      const { reason, stack } = connectorFailure(name, error);
      stopPath.stop(reason, stack);
    };
    const named = egresses.map((connector) => ({ connector, name: `Kafka egress ${connector.id}` }));
    const egressUrls = await openConnectors([...named, ...connectors.egresses], host, failed, closers);
    const ingressUrls = await openConnectors(connectors.ingresses, host, failed, closers);
    const all = [...egresses, ...[...connectors.ingresses, ...connectors.egresses].map(({ connector }) => connector)];
    metrics?.readLevelsFrom(runtimeGauges(worker.engine, options.stateDir, all));
    // The admin API answers for the whole cluster: it asks the workers that run the partitions.
    const peerClient = admin === undefined ? undefined : new AdminPeerClient(cluster.workerId, options.token);
    if (peerClient !== undefined)
      closers.defer("the admin API's connections to the other workers", () => peerClient.close());
    admin?.attach(
      adminRuntime({
        mode: "cluster",
        module: options.module,
        inProcessTypes: options.inProcess?.typenames ?? [],
        resolve,
        engine: worker.engine,
        partitionCount,
        stats,
        stateDir: options.stateDir,
        connectors: all,
        checkpointer: undefined,
        blobs: undefined,
        ...(peerClient === undefined || worker.savepoints === undefined || snapshots === undefined
          ? {}
          : {
              clusterSavepoints: clusterSavepointControl(
                {
                  cluster: cluster.name,
                  workerId: cluster.workerId,
                  partitionCount,
                  participant: worker.savepoints,
                  blobs: snapshots.blobs,
                  owners: () => worker.partitionOwners(),
                  currentUrls: () => worker.memberUrls(),
                },
                peerClient,
              ),
            }),
        ...(peerClient === undefined
          ? {}
          : {
              peers: {
                workerId: cluster.workerId,
                owners: () => worker.partitionOwners(),
                send: async (peer, request) => {
                  const answer = await peerClient.send(peer, request);
                  if (answer.ok) return answer;
                  // Restarted on another port within the session timeout, the worker kept its
                  // generation, whose assignment names the old URL: ask at the one it joined with.
                  const current = (await worker.memberUrls()).get(peer.workerId)?.adminUrl;
                  return current === undefined || current === peer.adminUrl
                    ? answer
                    : peerClient.send({ ...peer, adminUrl: current }, request);
                },
              },
            }),
      }),
    );
    const owned = closers.move();
    const stop = () => owned.closeAll(log);
    stopPath.started(stop);
    return {
      ingressUrls,
      egressUrls,
      adminUrl: admin?.url,
      replaceInProcess: (endpoint) => invoker.replaceInProcess(endpoint),
      reloadInProcess: () =>
        Promise.reject(new Error("reloadInProcess: only with partition threads (replaceInProcess)")),
      checkpoint() {
        throw new Error("checkpoint: a cluster worker takes no checkpoints yet");
      },
      clockMoved: () => worker.engine.clockMoved(),
      admission: () => worker.engine.admission,
      stop,
    };
  } catch (error) {
    await closers.closeAll(log).catch(() => undefined);
    if (error instanceof StartupError) throw error;
    throw new StartupError(`${options.stateDir}: ${errorMessage(error)}`);
  }
}

/** The ingress URLs of the workers other than this one that run partitions now, each once. */
function otherWorkers(owners: readonly (PartitionOwner | undefined)[], ownUrl: string): string[] {
  const urls = new Set<string>();
  for (const owner of owners) if (owner !== undefined && owner.url !== ownUrl) urls.add(owner.url);
  return [...urls];
}

const SNAPSHOT_INTERVAL_MS_DEFAULT = 10_000;
const SNAPSHOTS_KEPT_DEFAULT = 3;

/**
 * The checkpoint store (--checkpoints) as the partitions' snapshot store: the worker snapshots
 * the partitions it runs there every --checkpoint-interval, and restores from it the ones whose
 * changelog was trimmed (cluster/snapshotter.ts).
 */
async function openSnapshotStore(
  options: RuntimeOptions,
  closers: Closers,
): Promise<{ blobs: BlobStore; intervalMs: number; keep: number } | undefined> {
  if (options.checkpoints === undefined) return undefined;
  const opened = await openBlobStore(options.checkpoints.location);
  if (!opened.ok) throw new StartupError(opened.error);
  closers.defer("the checkpoint store", () => opened.store.close());
  const intervalMs = options.checkpoints.intervalMs ?? SNAPSHOT_INTERVAL_MS_DEFAULT;
  const keep = options.checkpoints.keep ?? SNAPSHOTS_KEPT_DEFAULT;
  return { blobs: opened.store, intervalMs, keep };
}

/**
 * The state directory as a worker's local store: locked (one Eddy per directory), and the
 * cluster's partition count kept in it (a directory of another cluster layout is refused), with
 * the cluster's name, so tools that read a state directory directly know it is only a cache.
 */
async function openLocalStore(
  stateDir: string,
  partitionCount: number,
  closers: Closers,
  cluster: ClusterSettings,
): Promise<LoggedStore> {
  try {
    mkdirSync(stateDir, { recursive: true });
  } catch (error) {
    throw new StartupError(`cannot create the state directory ${stateDir}: ${errorMessage(error)}`);
  }
  const taken = await takeStateDirLock(stateDir);
  if (!taken.ok) throw new StartupError(taken.error);
  closers.defer("the state directory's lock", () => taken.lock.release());
  const store = new LoggedStore({ path: stateDir });
  closers.defer("the store", () => store.close());
  const stored = getRow(store, storeTables.partitionCount.key());
  if (stored !== undefined && stored !== partitionCount) {
    throw new StartupError(
      `${stateDir} was created with ${stored} partitions; the cluster has ${partitionCount}: use another --state-dir`,
    );
  }
  if (stored === undefined) await store.commit([rowWrite(storeTables.partitionCount.key(), partitionCount)]);
  const membership = { name: cluster.name, brokers: cluster.connection.bootstrapBrokers.join(",") };
  const recorded = getRow(store, storeTables.cluster.key());
  if (recorded?.name !== membership.name || recorded.brokers !== membership.brokers) {
    await store.commit([rowWrite(storeTables.cluster.key(), membership)]);
  }
  return store;
}

/**
 * The module's Kafka egresses as a cluster runs them, each checked first: its settings as the
 * embedded egress reads them, and its bootstrap servers the cluster's (its records go out in
 * the workers' transactions).
 */
function clusterKafkaEgresses(options: RuntimeOptions, cluster: ClusterSettings, log: Logger): ClusterKafkaEgress[] {
  const topics = clusterTopicNames(cluster.name);
  if (!topics.ok) throw new StartupError(topics.message);
  const reservedTopics = new Set([topics.value.inbox, topics.value.changelog]);
  return options.module.egresses
    .filter((egress): egress is KafkaEgressConfig => egress.kind === Kind.KAFKA_EGRESS)
    .map((config) => {
      const where = formatLocation(config.source);
      const settings = kafkaEgressSettings(config);
      if (!settings.ok) throw new StartupError(`${where}: ${settings.error}`);
      const mismatch = clusterEgressMismatch(config, cluster.connection);
      if (mismatch !== undefined) throw new StartupError(`${where}: ${mismatch}`);
      return new ClusterKafkaEgress({
        config,
        settings: settings.value,
        connection: cluster.connection,
        reservedTopics,
        log: log.child({ connector: `Kafka egress ${config.id}` }),
      });
    });
}
