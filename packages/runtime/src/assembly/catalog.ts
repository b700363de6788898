// Which function types this runtime serves, with their batch limits and failure policy, and
// which egresses exist: what the partition core asks (Catalog), worked out once per type from
// the module's endpoints and the in-process functions.
import { type ModuleConfig, type ResolvedFunction, resolveFunction } from "../config/index.ts";
import type { FunctionTypename } from "../core/address.ts";
import type { Catalog, FailurePolicy, FunctionSettings } from "../core/partition-core.ts";

const MAX_BATCH_BYTES = 8 * 1024 * 1024;
/** StateFun's default maxNumBatchRequests, for in-process functions that have no endpoint. */
const BATCH_COUNT_DEFAULT = 1000;

function functionSettings(resolved: ResolvedFunction | undefined, policy: FailurePolicy): FunctionSettings {
  const limit = resolved?.endpoint.maxNumBatchRequests ?? BATCH_COUNT_DEFAULT;
  return {
    maxBatchCount: limit > 0 ? limit : Number.MAX_SAFE_INTEGER,
    maxBatchBytes: MAX_BATCH_BYTES,
    backlogLimit: Math.max(limit, 0),
    failurePolicy: policy,
  };
}

export interface ModuleCatalog {
  readonly catalog: Catalog;
  /** The module's endpoint for a type (memoized), undefined when none serves it. */
  readonly resolve: (typename: string) => ResolvedFunction | undefined;
}

export function moduleCatalog(
  module: ModuleConfig,
  inProcessTypes: ReadonlySet<string>,
  policy: FailurePolicy,
): ModuleCatalog {
  const resolved = new Map<string, ResolvedFunction | undefined>();
  const resolve = (typename: string) => {
    if (!resolved.has(typename)) resolved.set(typename, resolveFunction(module, typename));
    return resolved.get(typename);
  };
  const egressIds = new Set<string>(module.egresses.map((egress) => egress.id));
  const settings = new Map<string, FunctionSettings | undefined>();
  const catalog: Catalog = {
    functionSettings(typename: FunctionTypename) {
      if (!settings.has(typename)) {
        const endpoint = resolve(typename);
        const served = inProcessTypes.has(typename) || endpoint !== undefined;
        settings.set(typename, served ? functionSettings(endpoint, policy) : undefined);
      }
      return settings.get(typename);
    },
    hasEgress: (egress) => egressIds.has(egress),
  };
  return { catalog, resolve };
}
