// bench/throughput's chain (bench/first → bench/second) as a module a partition thread
// imports (run.ts): `functions` counts into the SharedArrayBuffer the benchmark hands
// every thread as `workerData.context`; chainFunctions() does the same for a main-thread run.
import { isMainThread, workerData } from "node:worker_threads";
import { type AnyStatefulFunction, address, message, statefulFunction, types } from "@eddy/sdk";
import type { FunctionTypename } from "../../packages/runtime/src/core/address.ts";
import type { Catalog, FunctionSettings } from "../../packages/runtime/src/core/partition-core.ts";

export const Payload = types.json<{ sentAtMs: number }>("bench/Payload");

/** counters[0]: messages that reached bench/second; counters[1 + ms]: hops that took ms milliseconds. */
export const LATENCY_BUCKETS = 10_000;
export const COUNTER_SLOTS = 1 + LATENCY_BUCKETS;

/** The chain's function types (bench/*) as a main-thread engine's catalog: StateFun's batch of 1,000, no backlog limit. */
export function chainCatalog(): Catalog {
  const settings: FunctionSettings = {
    maxBatchCount: 1000,
    maxBatchBytes: 8 << 20,
    backlogLimit: 0,
    failurePolicy: "retry",
  };
  return {
    functionSettings: (t: FunctionTypename) => (t.startsWith("bench/") ? settings : undefined),
    hasEgress: () => false,
  };
}

export function chainFunctions(counters: Int32Array): AnyStatefulFunction[] {
  const first = statefulFunction({
    typename: "bench/first",
    state: { count: types.int },
    handle(ctx) {
      ctx.storage.count = (ctx.storage.count ?? 0) + 1;
      ctx.send(message(address("bench/second", ctx.self.id), { sentAtMs: Date.now() }, Payload));
    },
  });
  const second = statefulFunction({
    typename: "bench/second",
    handle(_ctx, msg) {
      const ms = Math.min(LATENCY_BUCKETS - 1, Math.max(0, Date.now() - msg.as(Payload).sentAtMs));
      Atomics.add(counters, 1 + ms, 1);
      Atomics.add(counters, 0, 1);
    },
  });
  return [first, second];
}

export const functions: AnyStatefulFunction[] = isMainThread
  ? []
  : chainFunctions(new Int32Array((workerData as { context: SharedArrayBuffer }).context));
