// @eddy/runtime's public surface.

export { type BlobStore, BlobStoreError } from "./checkpoint/blob/blob-store.ts";
export { openBlobStore } from "./checkpoint/blob/open-blob-store.ts";
export { readCatalog } from "./checkpoint/catalog.ts";
export type { CheckpointRequest } from "./checkpoint/checkpointer.ts";
export { writeLocalCheckpoint } from "./checkpoint/checkpointer.ts";
export type { Manifest } from "./checkpoint/manifest.ts";
export { allFiles, checkSavepointName, storedBytes } from "./checkpoint/manifest.ts";
export { checkpointStateDir } from "./checkpoint/offline.ts";
export { isEmptyStateDir, restoreCheckpoint } from "./checkpoint/restore.ts";
export type { TransferProgress } from "./checkpoint/stored-files.ts";
export { verifyCheckpoint } from "./checkpoint/verify.ts";
export {
  type ClusterAddress,
  type ClusterSettings,
  checkAdvertiseUrl,
  checkWorkerId,
  clusterSettings,
  defaultAdvertiseUrl,
  parseClusterUrl,
  parseJavaProperties,
  persistedWorkerId,
  readPropertiesFile,
} from "./cluster/cluster-settings.ts";
export {
  type ClusterDeadLetters,
  collectClusterDeadLetters,
  findClusterWorkers,
  replayOnWorker,
  type WorkerEndpoint,
  workerName,
} from "./cluster/dead-letter-client.ts";
export type { ClusterSavepointSummary } from "./cluster/savepoint-coordinator.ts";
export {
  type ClusterSavepointManifest,
  clusterSavepointManifestKey,
  decodeClusterSavepointManifest,
} from "./cluster/savepoint-format.ts";
export {
  hasClusterSavepoint,
  listClusterSavepoints,
  readClusterSavepoint,
  seedClusterFromSavepoint,
  seedConnection,
} from "./cluster/seed-cluster.ts";
export * from "./config/index.ts";
export { CONTROL_SOCKET, callControlSocket } from "./control-socket.ts";
export {
  DeadLetterError,
  deadLetterToJson,
  type ListedDeadLetter,
  listDeadLetters,
  queueReplay,
  type ReplaySelection,
  refuseClusterWorkerStateDir,
  selectDeadLetters,
} from "./dead-letters.ts";
export {
  isLogLevel,
  LOG_LEVELS,
  type LogFields,
  type Logger,
  type LogLevel,
  lineLogger,
  NOOP_LOGGER,
  pinoLogger,
} from "./observe/logger.ts";
export {
  type CheckpointSettings,
  INGRESS_BODY_BYTES_LIMIT_DEFAULT,
  INGRESS_BODY_BYTES_LIMIT_MAX,
  RUNNING_MARKER,
  type RunningRuntime,
  type RuntimeOptions,
  runningProcess,
  StartupError,
  startRuntime,
} from "./runtime.ts";
export { clusterOfStateDir } from "./state-dir-cluster.ts";
