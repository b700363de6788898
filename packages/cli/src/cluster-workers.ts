// A cluster's running workers, found from the command line (--cluster kafka://HOST:PORT/NAME and
// --cluster-config FILE) through the cluster's group in Kafka: each member's metadata names its
// ingress URL and, when it runs one, its admin listener's. Commands that act on a running cluster
// (eddy dead-letters, eddy savepoint) start here.
import {
  type ClusterAddress,
  findClusterWorkers,
  parseClusterUrl,
  readPropertiesFile,
  type WorkerEndpoint,
} from "@eddy/runtime";
import { CommandError, UsageError } from "./usage.ts";

/** How long a rebalancing group is asked again for its members. */
const GROUP_SETTLE_MS = 15_000;

export interface FoundCluster {
  /** The cluster's name, as --cluster gave it. */
  readonly name: string;
  readonly workers: readonly WorkerEndpoint[];
}

/** Who asks, for the brokers (`clientId`) and for a cluster that runs no worker (why it needs one). */
export interface Asker {
  readonly clientId: string;
  readonly noWorkersHint: string;
}

/**
 * The workers of the cluster `clusterUrl` names. A malformed URL or an unreadable config file is
 * a UsageError; a cluster that cannot be reached, or runs no worker, is a CommandError (ending
 * in the asker's hint when none runs; without an asker, the dead-letter commands').
 */
export async function findWorkersOf(
  clusterUrl: string,
  configPath: string | undefined,
  asker?: Asker,
): Promise<FoundCluster> {
  const { address, properties, propertiesSource } = clusterFlags(clusterUrl, configPath);
  const found = await findClusterWorkers({
    address,
    properties,
    propertiesSource,
    settleWaitMs: GROUP_SETTLE_MS,
    ...asker,
  });
  if (!found.ok) throw new CommandError(found.error);
  return { name: address.name, workers: found.workers };
}

/** --cluster and --cluster-config read: the brokers and name, and the client properties; a UsageError if either is wrong. */
export function clusterFlags(
  clusterUrl: string,
  configPath: string | undefined,
): {
  readonly address: ClusterAddress;
  readonly properties: ReadonlyMap<string, string>;
  readonly propertiesSource: string;
} {
  const address = parseClusterUrl(clusterUrl);
  if (!address.ok) throw new UsageError(`--cluster ${address.message}`);
  let properties: ReadonlyMap<string, string> = new Map();
  if (configPath !== undefined) {
    const read = readPropertiesFile(configPath);
    if (!read.ok) throw new UsageError(`--cluster-config ${read.message}`);
    properties = read.value;
  }
  return { address: address.value, properties, propertiesSource: configPath ?? "--cluster" };
}
