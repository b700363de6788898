// The flags that make `eddy run` a worker of a cluster on Kafka (--cluster, --worker-id,
// --advertise, --cluster-config) and --port-offset, which an embedded run takes too. All that
// the command line alone decides is checked before the module loads (usage errors, exit 2);
// the worker id kept in the state directory is read or made last, once everything else passed.
import {
  type ClusterAddress,
  type ClusterSettings,
  checkAdvertiseUrl,
  checkWorkerId,
  clusterSettings,
  defaultAdvertiseUrl,
  type ModuleConfig,
  parseClusterUrl,
  persistedWorkerId,
  readPropertiesFile,
} from "@eddy/runtime";
import { CommandError, UsageError } from "./usage.ts";

export const CLUSTER_OPTIONS = {
  cluster: { type: "string" },
  "worker-id": { type: "string" },
  advertise: { type: "string" },
  "admin-advertise": { type: "string" },
  "cluster-config": { type: "string" },
  "port-offset": { type: "string" },
} as const;

interface ClusterFlagValues {
  readonly cluster?: string | undefined;
  readonly "worker-id"?: string | undefined;
  readonly advertise?: string | undefined;
  readonly "admin-advertise"?: string | undefined;
  readonly "cluster-config"?: string | undefined;
  readonly "port-offset"?: string | undefined;
  readonly checkpoints?: string | undefined;
}

/** A cluster worker as the command line describes it, before the module and the state directory are read. */
export interface ClusterRequest {
  readonly address: ClusterAddress;
  readonly workerId: string | undefined;
  readonly advertiseUrl: string | undefined;
  readonly adminAdvertiseUrl: string | undefined;
  readonly properties: ReadonlyMap<string, string>;
  /** The --cluster-config file the properties came from (none: no properties). */
  readonly configPath: string | undefined;
}

export interface ClusterFlags {
  readonly portOffset: number | undefined;
  /** Undefined: an embedded run, as without any of these flags. */
  readonly cluster: ClusterRequest | undefined;
}

const URL_FORM = "kafka://HOST:PORT[,HOST:PORT…]/NAME";
const PORT_MAX = 65535;

/** Checks the flags against each other and reads the --cluster-config file; throws UsageError. */
export function clusterFlags(values: ClusterFlagValues): ClusterFlags {
  const portOffset = parsePortOffset(values["port-offset"]);
  const clusterText = values.cluster;
  if (clusterText === undefined) {
    const clusterOnly = (["worker-id", "advertise", "admin-advertise", "cluster-config"] as const).filter(
      (flag) => values[flag] !== undefined,
    );
    if (clusterOnly.length > 0) {
      throw new UsageError(`${clusterOnly.map((flag) => `--${flag}`).join(", ")} need --cluster ${URL_FORM}`);
    }
    return { portOffset, cluster: undefined };
  }
  const address = parseClusterUrl(clusterText);
  if (!address.ok) throw new UsageError(`--cluster ${address.message}`);
  if (values.checkpoints === undefined) {
    throw new UsageError(
      "--cluster needs --checkpoints URL: a partition moves between workers, so its snapshots must be in a blob store every worker reaches (s3://…, gs://…, or file:/// on storage they share)",
    );
  }
  const workerIdText = values["worker-id"];
  const workerId = workerIdText === undefined ? undefined : checkWorkerId(workerIdText);
  if (workerId !== undefined && !workerId.ok) throw new UsageError(`--worker-id ${workerId.message}`);
  const advertiseText = values.advertise;
  const advertiseUrl = advertiseText === undefined ? undefined : checkAdvertiseUrl(advertiseText);
  if (advertiseUrl !== undefined && !advertiseUrl.ok) throw new UsageError(`--advertise ${advertiseUrl.message}`);
  const adminAdvertiseText = values["admin-advertise"];
  const adminAdvertiseUrl = adminAdvertiseText === undefined ? undefined : checkAdvertiseUrl(adminAdvertiseText);
  if (adminAdvertiseUrl !== undefined && !adminAdvertiseUrl.ok) {
    throw new UsageError(`--admin-advertise ${adminAdvertiseUrl.message}`);
  }
  const configPath = values["cluster-config"];
  let properties: ReadonlyMap<string, string> = new Map();
  if (configPath !== undefined) {
    const read = readPropertiesFile(configPath);
    if (!read.ok) throw new UsageError(`--cluster-config ${read.message}`);
    properties = read.value;
  }
  return {
    portOffset,
    cluster: {
      address: address.value,
      workerId: workerId?.value,
      advertiseUrl: advertiseUrl?.value,
      adminAdvertiseUrl: adminAdvertiseUrl?.value,
      properties,
      configPath,
    },
  };
}

function parsePortOffset(text: string | undefined): number | undefined {
  if (text === undefined) return undefined;
  const offset = Number(text);
  if (!/^\d+$/.test(text) || offset > PORT_MAX) {
    throw new UsageError(`--port-offset "${text}": expected a whole number from 0 to ${PORT_MAX}`);
  }
  return offset;
}

export interface ClusterContext {
  readonly module: ModuleConfig;
  readonly stateDir: string;
  /** --host, which the ingress binds to: the advertised URL's default host unless it binds to all. */
  readonly host: string | undefined;
  readonly portOffset: number;
  readonly warn: (line: string) => void;
}

/**
 * The worker's settings: the given worker id or the one kept in the state directory (made on
 * the first start), the given advertised URL or the playground ingress's. A state directory
 * whose id file cannot be read or made is CommandError (exit 1); a --cluster-config whose
 * properties the connection refuses is a UsageError.
 */
export function resolveClusterSettings(request: ClusterRequest, context: ClusterContext): ClusterSettings {
  let workerId = request.workerId;
  if (workerId === undefined) {
    const persisted = persistedWorkerId(context.stateDir);
    if (!persisted.ok) throw new CommandError(persisted.message);
    workerId = persisted.value.workerId;
  }
  const resolved = clusterSettings({
    address: request.address,
    workerId,
    advertiseUrl: request.advertiseUrl ?? defaultAdvertiseUrl(context.module, context.portOffset, context.host),
    adminAdvertiseUrl: request.adminAdvertiseUrl,
    properties: request.properties,
    propertiesSource: request.configPath ?? "--cluster",
  });
  if (!resolved.ok) {
    throw new UsageError(request.configPath === undefined ? resolved.message : `--cluster-config ${resolved.message}`);
  }
  if (resolved.value.ignored.length > 0) {
    context.warn(
      `warning: --cluster-config ${request.configPath}: ignores properties ${resolved.value.ignored.join(", ")} (the cluster's connection reads security.protocol, ssl.*, sasl.*, client.id and its timeouts)`,
    );
  }
  return resolved.value.settings;
}
