// A partition thread (a worker_threads Worker started by partition-threads.ts): one engine
// over the partitions the main thread gave it (p with p mod N its index), committing through
// the store host (thread-store.ts), with the in-process functions imported here, so a function
// runs on the thread that owns its partition. Messages to partitions of other threads leave in
// its commits and come back to their owners as inbox entries (store-host.ts).
//
// With a module (PartitionThreadData.runtime: `eddy run --threads`), the engine calls the
// module's HTTP endpoints too, and holds the rows of the module's playground egress for its
// partitions; the main thread serves that egress's HTTP side and pops from the threads in turn.
//
// It may serve the HTTP ingress too: every thread listens on the one port (SO_REUSEPORT), the
// kernel spreads the connections, and a request for an instance another thread runs is handed
// to that thread over a MessageChannel between the two (call-channel.ts), as a cluster worker
// forwards it to the worker that runs it (io/playground/forwarding.ts). So the owner takes the
// message (and mints a request-reply's id among its own partitions), and a reply is awaited on
// the thread that owns the request's reply address.
import { type MessagePort, parentPort, workerData } from "node:worker_threads";
import type { TypedValue } from "@eddy/protocol";
import { createEndpoint, type Endpoint, exportedFunctions } from "@eddy/sdk";
import { moduleCatalog } from "../assembly/catalog.ts";
import { httpEndpoints } from "../assembly/endpoints.ts";
import { failureLines } from "../assembly/failure-lines.ts";
import { decodeInboxRecord, encodeInboxRecord } from "../cluster/inbox-record.ts";
import { Kind, type ModuleConfig, type PlaygroundIngressConfig } from "../config/types.ts";
import { type Address, addressKey, type FunctionTypename, replyAddress } from "../core/address.ts";
import type { Catalog, FailurePolicy, FunctionSettings } from "../core/partition-core.ts";
import { partitionOf } from "../core/partitioning.ts";
import { type Envelope, requestTime } from "../core/records.ts";
import { type AcceptOptions, type AcceptResult, Engine, type Invoker, type ReplyLookup } from "../engine/engine.ts";
import type { RequestSink } from "../engine/ports.ts";
import { HttpInvoker } from "../invoker/http-invoker.ts";
import { InProcessInvoker } from "../invoker/in-process-invoker.ts";
import { RoutingInvoker } from "../invoker/routing-invoker.ts";
import { listenFailure } from "../io/playground/connectors.ts";
import { PlaygroundEgress } from "../io/playground/egress.ts";
import { PlaygroundIngress } from "../io/playground/ingress.ts";
import { type LogLevel, runtimeLogger } from "../observe/logger.ts";
import { CallChannel, type CallHandler } from "./call-channel.ts";
import { decodeEntries } from "./thread-inbox.ts";
import { type InboxEntry, ownBytes, type ToHost, type ToThread } from "./thread-protocol.ts";
import { ThreadStore } from "./thread-store.ts";

/** What the main thread hands a partition thread at its start. */
export interface PartitionThreadData {
  readonly stateDir: string;
  readonly partitionCount: number;
  /** This thread's index, and how many there are: it runs the partitions p with p mod threads = thread. */
  readonly thread: number;
  readonly threads: number;
  /** A module URL whose exported stateful functions (sdk exportedFunctions) run in process, if any. */
  readonly functions?: string;
  /** The module the runtime runs (`eddy run --threads`): its HTTP endpoints and playground egress. */
  readonly runtime?: ThreadRuntime;
  readonly failurePolicy: FailurePolicy;
  /** Handed to the functions module as is (`workerData.context`): a benchmark's shared counters. */
  readonly context?: unknown;
  /** Messages waiting in the inboxes of its partitions, delivered before anything else. */
  readonly waiting: readonly { readonly partition: number; readonly entries: readonly InboxEntry[] }[];
  /** A port to each other partition thread, by its index (null for this one). */
  readonly peers: readonly (MessagePort | null)[];
}

/** What `eddy run --threads` hands every thread of its RuntimeOptions (all of it structured-clonable). */
export interface ThreadRuntime {
  readonly module: ModuleConfig;
  readonly retentionMs?: number;
  readonly memoryBudgetBytes?: number;
  readonly logLevel?: LogLevel;
}

/** How a thread serves the playground ingress (partition-threads.ts listen()). */
export interface ThreadIngress {
  readonly port: number;
  readonly host: string;
  readonly maxBodyBytes: number;
  readonly token?: string;
  readonly holdMs?: number;
  /** The module's ingress, to name in a failure to listen. */
  readonly config?: PlaygroundIngressConfig;
  /** --ack-after-checkpoint: a request is answered once a checkpoint of the main thread's store holds it. */
  readonly ackAfterCheckpoint?: boolean;
}

/** StateFun's default maxNumBatchRequests (assembly/catalog.ts) for in-process functions. */
const BATCH_COUNT = 1000;
const BATCH_BYTES = 8 * 1024 * 1024;

async function main(): Promise<void> {
  const port = parentPort;
  if (port === null) throw new Error("partition-thread.ts runs only as a worker thread");
  const data = workerData as PartitionThreadData;
  const partitions: number[] = [];
  for (let partition = data.thread; partition < data.partitionCount; partition += data.threads) {
    partitions.push(partition);
  }
  const store = new ThreadStore(data.stateDir, {
    postMessage: (message: ToHost, transfer?: readonly ArrayBuffer[]) => port.postMessage(message, transfer),
  });
  const parts = await engineParts(data, (reason) => port.postMessage({ kind: "stop", reason } satisfies ToHost));
  const engine = new Engine({
    store,
    commitTarget: store.commitTarget(),
    catalog: parts.catalog,
    invoker: parts.invoker,
    partitionCount: data.partitionCount,
    ownedPartitions: partitions,
    egress: parts.egress === undefined ? [] : [parts.egress],
    ...parts.engineOptions,
  });
  const owned = new Set(partitions);
  parts.egress?.attach(engine, store, data.partitionCount, {
    owns: (partition) => owned.has(partition),
    ownsUnpartitioned: data.thread === 0,
  });
  // Entries are admitted one message after another, in the order the host sent them.
  let admitting: Promise<unknown> = Promise.resolve();
  const admit = (partition: number, entries: readonly InboxEntry[]) => {
    const records = decodeEntries(partition, entries);
    admitting = admitting.then(() => engine.admitFromInbox(partition, records, engine.resets));
  };
  // Recovered first (in-flight batches sent again: recover() must find no batch running), then
  // the waiting entries, before the main thread hears "ready" and sends anything else.
  engine.start();
  for (const { partition, entries } of data.waiting) admit(partition, entries);
  await admitting;

  const threadOf = (address: Address) => partitionOf(addressKey(address), data.partitionCount) % data.threads;
  /** The channels to the other threads, by index (set below, once the handlers exist). */
  const peers: (CallChannel | undefined)[] = [];
  const peer = (thread: number) => peers[thread] as CallChannel;
  /**
   * Replies fetched with a forwarded request's acceptance (one call instead of two: "request"),
   * by request id, until the ingress asks for them (right after the acceptance resolves).
   */
  const fetchedReplies = new Map<string, ReplyLookup>();
  /** The ingress's engine: this one for what runs here, the owner's (over its channel) for the rest. */
  const routed: RequestSink = {
    async accept(envelope: Envelope, options: AcceptOptions = {}): Promise<AcceptResult> {
      const owner = threadOf(envelope.target);
      if (owner === data.thread) return engine.accept(envelope, options);
      const record = ownBytes(encodeInboxRecord({ envelope }));
      if (options.expectReply === true && options.replyWaitMs !== undefined) {
        const { replyWaitMs, ...accepting } = options;
        const { accepted, lookup } = (await peer(owner).call(
          "request",
          [record, accepting, replyWaitMs],
          [record.buffer],
        )) as { accepted: AcceptResult; lookup?: ReplyLookup };
        if (accepted.ok && accepted.requestId !== undefined && lookup !== undefined) {
          fetchedReplies.set(accepted.requestId, lookup);
        }
        return accepted;
      }
      return (await peer(owner).call("accept", [record, options], [record.buffer])) as AcceptResult;
    },
    async awaitReply(requestId: string, waitMs: number): Promise<ReplyLookup> {
      const fetched = fetchedReplies.get(requestId);
      if (fetched !== undefined) {
        fetchedReplies.delete(requestId);
        return fetched;
      }
      const owner = requestTime(requestId) === undefined ? data.thread : threadOf(replyAddress(requestId));
      if (owner === data.thread) return engine.awaitReply(requestId, waitMs);
      return (await peer(owner).call("awaitReply", [requestId, waitMs])) as ReplyLookup;
    },
  };
  let ingress: PlaygroundIngress | undefined;

  const handlers: Record<string, CallHandler> = {
    /** An ingress message (an inbox record's bytes), accepted here: AcceptResult. */
    accept: async (record: Uint8Array, options: AcceptOptions) => engine.accept(decoded(record).envelope, options),
    /** A request's reply, awaited here up to `waitMs`: ReplyLookup. */
    awaitReply: async (requestId: string, waitMs: number) => engine.awaitReply(requestId, waitMs),
    /** Accepted, then its reply awaited up to `waitMs`: the AcceptResult and the ReplyLookup. */
    request: async (record: Uint8Array, options: AcceptOptions, waitMs: number) => {
      const accepted = await engine.accept(decoded(record).envelope, { ...options, expectReply: true });
      if (!accepted.ok || accepted.requestId === undefined) return { accepted };
      return { accepted, lookup: await engine.awaitReply(accepted.requestId, waitMs) };
    },
    /**
     * Messages of one type with one argument to many ids (all run here), accepted as if an
     * ingress in this thread had taken them: resolves with how many were taken once all are
     * durable. For benchmarks of the threads without a call per message from the main thread.
     */
    acceptMany: async (typename: FunctionTypename, argument: TypedValue, ids: readonly string[]) => {
      const results = await Promise.all(ids.map((id) => engine.accept({ target: { typename, id }, argument })));
      return results.filter((result) => result.ok).length;
    },
    /** Serves the HTTP ingress, on a port shared with the other threads: its URL. */
    listen: async (options: ThreadIngress) => {
      const { config, ackAfterCheckpoint, ...ingressOptions } = options;
      const listening = new PlaygroundIngress(routed, {
        ...ingressOptions,
        reusePort: true,
        // Asked after the message's commit is durable, so the checkpoint the main thread waits for holds it.
        ...(ackAfterCheckpoint === true
          ? { checkpointed: async () => void (await host.call("checkpointed", [])) }
          : {}),
      });
      try {
        const url = await listening.listen();
        ingress = listening;
        return url;
      } catch (error) {
        throw config === undefined ? error : new Error(listenFailure(error, config, options));
      }
    },
    /**
     * The in-process functions again from `url` (eddy dev's reload, the URL made new so the
     * module is imported again); refused when their types differ from the ones this thread runs.
     */
    reload: async (url: string) => {
      if (parts.replaceInProcess === undefined || data.functions === undefined) {
        throw new Error("this thread runs no in-process functions");
      }
      let next: Endpoint;
      try {
        next = await importFunctions(url);
      } catch (error) {
        throw new Error(`the functions file failed to load: ${error instanceof Error ? error.message : String(error)}`);
      }
      const was = parts.typenames.join(", ");
      const now = [...next.typenames].sort().join(", ");
      if (now !== was) throw new Error(`the function types changed (${now}, was ${was}); restart eddy dev`);
      parts.replaceInProcess(next);
      return true;
    },
    /** The oldest record of the playground egress's `topic` among this thread's partitions, taken. */
    egressPop: async (topic: string) => {
      if (parts.egress === undefined) throw new Error("the module declares no playground egress");
      return parts.egress.popOldest(topic);
    },
    stop: async () => {
      await ingress?.close();
      await admitting;
      await engine.stop();
      await store.close();
      parts.flush();
      return true;
    },
  };
  for (const [thread, peerPort] of data.peers.entries()) {
    if (peerPort === null) continue;
    const channel = new CallChannel(peerPort, handlers);
    peerPort.on("message", (message: { kind: string }) => channel.receive(message));
    peers[thread] = channel;
  }
  const host = new CallChannel(port, handlers);
  port.on("message", (message: ToThread) => {
    if (store.receive(message)) return;
    if (message.kind === "inbox") admit(message.partition, message.entries);
    else host.receive(message);
  });
  port.postMessage({ kind: "ready" } satisfies ToHost);
}

interface EngineParts {
  readonly catalog: Catalog;
  readonly invoker: Invoker;
  /** The in-process function types, sorted. */
  readonly typenames: readonly string[];
  /** Swaps the in-process functions (eddy dev's reload); undefined where they cannot be swapped. */
  readonly replaceInProcess: ((endpoint: Endpoint) => void) | undefined;
  readonly egress: PlaygroundEgress | undefined;
  readonly engineOptions: Partial<ConstructorParameters<typeof Engine>[0]>;
  /** Writes what the failure lines hold back (their summaries). */
  readonly flush: () => void;
}

/**
 * The thread's catalog, invoker and egress: the in-process functions alone (a benchmark's), or
 * the module's endpoints after them, as the embedded runtime assembles them
 * (assembly/start-runtime.ts). `stop` is the engine's own stop (the failure policy "stop").
 */
async function engineParts(data: PartitionThreadData, stop: (reason: string) => void): Promise<EngineParts> {
  const inProcess = data.functions === undefined ? undefined : await importFunctions(data.functions);
  const runtime = data.runtime;
  if (runtime === undefined) {
    const typenames = new Set<string>(inProcess?.typenames ?? []);
    const settings: FunctionSettings = {
      maxBatchCount: BATCH_COUNT,
      maxBatchBytes: BATCH_BYTES,
      backlogLimit: BATCH_COUNT,
      failurePolicy: data.failurePolicy,
    };
    return {
      catalog: {
        functionSettings: (typename: FunctionTypename) => (typenames.has(typename) ? settings : undefined),
        hasEgress: () => false,
      },
      invoker: new InProcessInvoker(inProcess ?? createEndpoint([])),
      typenames: [...typenames].sort(),
      replaceInProcess: undefined,
      egress: undefined,
      engineOptions: {},
      flush: () => {},
    };
  }
  const log = runtimeLogger(runtime.logLevel === undefined ? {} : { logLevel: runtime.logLevel });
  const { catalog, resolve } = moduleCatalog(runtime.module, new Set(inProcess?.typenames ?? []), data.failurePolicy);
  const http = new HttpInvoker(httpEndpoints(runtime.module, resolve), { log, failurePolicy: data.failurePolicy });
  const failures = failureLines(log, data.failurePolicy);
  const declared = runtime.module.egresses.find((egress) => egress.kind === Kind.PLAYGROUND_EGRESS);
  // Its HTTP side runs on the main thread: this one never listens.
  const egress =
    declared === undefined ? undefined : new PlaygroundEgress({ port: 0, host: "127.0.0.1", topics: declared.topics });
  const invoker = new RoutingInvoker(inProcess, http);
  return {
    catalog,
    invoker,
    typenames: [...(inProcess?.typenames ?? [])].sort(),
    replaceInProcess: (endpoint) => invoker.replaceInProcess(endpoint),
    egress,
    engineOptions: {
      ...(runtime.retentionMs === undefined ? {} : { idempotencyRetentionMs: runtime.retentionMs }),
      ...(runtime.memoryBudgetBytes === undefined ? {} : { memoryBudgetBytes: runtime.memoryBudgetBytes }),
      onDeadLetter: failures.onDeadLetter,
      onInvokeFailure: failures.onInvokeFailure,
      onStop: stop,
    },
    flush: () => failures.flush(),
  };
}

/** The stateful functions a module exports, as an endpoint. */
async function importFunctions(url: string): Promise<Endpoint> {
  return createEndpoint(exportedFunctions((await import(url)) as Record<string, unknown>));
}

function decoded(record: Uint8Array) {
  const result = decodeInboxRecord(record);
  if (!result.ok) throw new Error(result.message);
  return result.value;
}

await main();
