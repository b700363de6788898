// The function server of bench/cluster, a child process of run.ts: bench/throughput's chain
// (bench/first → bench/second) and bench/greeter's greeter, served over HTTP by Eddy's SDK, one
// port per runtime process (the embedded runtime, or each worker of a cluster), so that every
// invocation says which process made it. From that it learns, without asking the runtime:
// - which process runs each partition (the last one seen invoking an instance of it);
// - whether a hop crossed processes: bench/first stamps its process and the time into the
//   message, bench/second compares them with its own (one clock: this process's).
// run.ts talks to it over IPC: it sends "reset" before a measured window and "snapshot" at its
// end; the answers are Snapshot objects.
//
//   (forked by run.ts) functions.ts <label>...

import { createEndpoint, message, serve, statefulFunction, types } from "@eddy/sdk";
import { partitionOf } from "../../packages/runtime/src/core/partitioning.ts";
import { greeting } from "../greeter/functions.ts";

/** The runtime's partitions in cluster mode and embedded (start-cluster-runtime.ts, start-runtime.ts). */
export const PARTITIONS = 128;

/** What bench/first sends bench/second. */
const Hop = types.json<{ sentAt: number; from: string }>("bench/Hop");

export interface Snapshot {
  /** bench/second invocations since the last reset: messages through the whole chain. */
  readonly chainDelivered: number;
  /** bench/second invocations since this server started. */
  readonly chainDeliveredTotal: number;
  /** bench/greeter invocations since the last reset. */
  readonly greeted: number;
  /** Hop latency in ms of each delivery since the last reset, and whether it crossed processes. */
  readonly hopMs: readonly number[];
  readonly hopCrossed: readonly boolean[];
  /** By partition: the label of the process seen running it last, or null if none seen. */
  readonly partitionOwners: readonly (string | null)[];
  /** By greeter id: the label of the process that ran it last. */
  readonly greeterOwners: Readonly<Record<string, string>>;
}

export type Command = { readonly cmd: "reset" } | { readonly cmd: "snapshot" };
export type Report = { readonly ready: Readonly<Record<string, string>> } | { readonly snapshot: Snapshot };

let chainDelivered = 0;
let chainDeliveredTotal = 0;
let greeted = 0;
let hopMs: number[] = [];
let hopCrossed: boolean[] = [];
const partitionOwners: (string | null)[] = Array.from({ length: PARTITIONS }, () => null);
const greeterOwners: Record<string, string> = {};

/** As the runtime partitions an address (core/address.ts addressKey, core/partitioning.ts). */
function partitionOfInstance(typename: string, id: string): number {
  return partitionOf(`${typename}\u0000${id}`, PARTITIONS);
}

/** The chain and the greeter as served to the process `label`. */
function endpointFor(label: string) {
  const first = statefulFunction({
    typename: "bench/first",
    state: { count: types.int },
    handle(ctx) {
      partitionOwners[partitionOfInstance("bench/first", ctx.self.id)] = label;
      ctx.storage.count = (ctx.storage.count ?? 0) + 1;
      ctx.send(message({ typename: "bench/second", id: ctx.self.id }, { sentAt: performance.now(), from: label }, Hop));
    },
  });
  const second = statefulFunction({
    typename: "bench/second",
    handle(ctx, msg) {
      partitionOwners[partitionOfInstance("bench/second", ctx.self.id)] = label;
      const hop = msg.as(Hop);
      hopMs.push(performance.now() - hop.sentAt);
      hopCrossed.push(hop.from !== label);
      chainDelivered++;
      chainDeliveredTotal++;
    },
  });
  const greeter = statefulFunction({
    typename: "bench/greeter",
    state: { visits: types.int },
    handle(ctx, msg) {
      partitionOwners[partitionOfInstance("bench/greeter", ctx.self.id)] = label;
      greeterOwners[ctx.self.id] = label;
      greeted++;
      const visits = (ctx.storage.visits ?? 0) + 1;
      ctx.storage.visits = visits;
      ctx.reply(greeting(msg.as(types.string), visits), types.string);
    },
  });
  return createEndpoint([first, second, greeter]);
}

function answer(command: Command): Report {
  if (command.cmd === "reset") {
    chainDelivered = 0;
    greeted = 0;
    hopMs = [];
    hopCrossed = [];
  }
  return {
    snapshot: {
      chainDelivered,
      chainDeliveredTotal,
      greeted,
      hopMs: command.cmd === "snapshot" ? hopMs : [],
      hopCrossed: command.cmd === "snapshot" ? hopCrossed : [],
      partitionOwners,
      greeterOwners,
    },
  };
}

if (process.send !== undefined) {
  const labels = process.argv.slice(2);
  const urls: Record<string, string> = {};
  for (const label of labels) urls[label] = (await serve(endpointFor(label), { port: 0, host: "127.0.0.1" })).url;
  process.on("message", (command: Command) => process.send?.(answer(command)));
  // The parent's IPC channel closing (it ended, however) ends this server too.
  process.on("disconnect", () => process.exit(0));
  process.send({ ready: urls } satisfies Report);
}
