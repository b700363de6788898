// Partitions spread over worker threads, on one store: the main thread opens the state
// directory and hosts the store (store-host.ts); each of N partition threads
// (partition-thread.ts) runs the partitions p with p mod N equal to its index, with the
// in-process functions. Calls for an address go to the thread that runs its partition.
//
// The threads may serve the playground's HTTP ingress, all on one port (listen()).
//
// With a module (options.runtime) this is what `eddy run --threads N` runs
// (assembly/start-threaded-runtime.ts): the module's HTTP endpoints called from every thread,
// its playground egress popped from the threads in turn (egressPop). What it does not run yet
// (other connectors, the admin API) that assembly refuses at start.
import { mkdirSync } from "node:fs";
import { MessageChannel, type MessagePort, Worker } from "node:worker_threads";
import type { TypedValue } from "@eddy/protocol";
import { checkPartitionCount } from "../assembly/state.ts";
import { encodeInboxRecord } from "../cluster/inbox-record.ts";
import { addressKey, type FunctionTypename } from "../core/address.ts";
import type { FailurePolicy } from "../core/partition-core.ts";
import { partitionOf } from "../core/partitioning.ts";
import type { Envelope } from "../core/records.ts";
import type { AcceptOptions, AcceptResult, ReplyLookup } from "../engine/engine.ts";
import { type StateDirLock, takeStateDirLock } from "../state-dir-lock.ts";
import { LoggedStore } from "../store/logged-store.ts";
import { CallChannel } from "./call-channel.ts";
import type { PartitionThreadData, ThreadIngress, ThreadRuntime } from "./partition-thread.ts";
import { ApplyRelay, StoreHost } from "./store-host.ts";
import { ownBytes, type ToHost } from "./thread-protocol.ts";

export interface PartitionThreadsOptions {
  readonly stateDir: string;
  readonly threads: number;
  /** Default 128, as `eddy run`'s. */
  readonly partitionCount?: number;
  /** A module URL whose export `functions` is the in-process functions, if any. */
  readonly functions?: string;
  /** The module and settings of `eddy run --threads` (partition-thread.ts ThreadRuntime). */
  readonly runtime?: ThreadRuntime;
  /** A thread's engine stopped itself (the failure policy "stop"), for `reason`. */
  readonly onStop?: (reason: string) => void;
  /** Resolves once a checkpoint holds everything committed so far (the threads' ingress with --ack-after-checkpoint). */
  readonly checkpointed?: () => Promise<void>;
  readonly failurePolicy?: FailurePolicy;
  /** Handed to every thread as `workerData.context` (structured-cloned; a SharedArrayBuffer is shared). */
  readonly context?: unknown;
}

const PARTITION_COUNT_DEFAULT = 128;

interface ThreadHandle {
  readonly worker: Worker;
  readonly channel: CallChannel;
}

export class PartitionThreads {
  readonly #threads: ThreadHandle[];
  readonly #store: LoggedStore;
  readonly #host: StoreHost;
  /** The state directory's lock when start() took it (stop() then closes the store and releases it). */
  readonly #lock: StateDirLock | undefined;
  readonly #partitionCount: number;
  #stopping: Promise<void> | undefined;
  /** The thread egressPop asks first next time. */
  #nextEgressThread = 0;
  /** Set when the store or a thread failed: every call fails with it. */
  #failure: Error | undefined;

  private constructor(
    threads: ThreadHandle[],
    store: LoggedStore,
    host: StoreHost,
    lock: StateDirLock | undefined,
    partitionCount: number,
  ) {
    this.#threads = threads;
    this.#store = store;
    this.#host = host;
    this.#lock = lock;
    this.#partitionCount = partitionCount;
  }

  /** Opens the state directory (locked for this process) and starts the threads on its store; stop() closes both. */
  static async start(options: PartitionThreadsOptions): Promise<PartitionThreads> {
    checkThreadCount(options.threads);
    mkdirSync(options.stateDir, { recursive: true });
    const taken = await takeStateDirLock(options.stateDir);
    if (!taken.ok) throw new Error(taken.error);
    const partitionCount = options.partitionCount ?? PARTITION_COUNT_DEFAULT;
    const relay = new ApplyRelay();
    const store = new LoggedStore({ path: options.stateDir, onApply: relay.onApply });
    try {
      await checkPartitionCount(store, partitionCount, options.stateDir);
    } catch (error) {
      await store.close();
      await taken.lock.release();
      throw error;
    }
    return PartitionThreads.#launch(options, store, relay, taken.lock);
  }

  /**
   * Starts the threads on `store`, opened (and its directory locked) by the caller with
   * `relay.onApply` as its apply hooks: `eddy run --threads`, whose start also restores
   * checkpoints into the directory first. stop() leaves the store and the lock to the caller.
   */
  static onStore(
    store: LoggedStore,
    relay: ApplyRelay,
    options: Omit<PartitionThreadsOptions, "partitionCount"> & { readonly partitionCount: number },
  ): Promise<PartitionThreads> {
    return PartitionThreads.#launch(options, store, relay, undefined);
  }

  static async #launch(
    options: PartitionThreadsOptions,
    store: LoggedStore,
    relay: ApplyRelay,
    lock: StateDirLock | undefined,
  ): Promise<PartitionThreads> {
    const count = checkThreadCount(options.threads);
    const partitionCount = options.partitionCount ?? PARTITION_COUNT_DEFAULT;
    // Everything the log holds goes to LMDB first: the threads read LMDB, and their views start empty.
    await store.applyAll();
    let failed: (error: Error) => void = () => {};
    const host = new StoreHost(
      store,
      partitionCount,
      (partition) => partition % count,
      (error) => failed(error),
    );
    relay.connect(host);
    // A channel between every two threads, for the ingress's requests for the other's instances.
    const peers: (MessagePort | null)[][] = Array.from({ length: count }, () => new Array(count).fill(null));
    for (let a = 0; a < count; a++) {
      for (let b = a + 1; b < count; b++) {
        const { port1, port2 } = new MessageChannel();
        (peers[a] as (MessagePort | null)[])[b] = port1;
        (peers[b] as (MessagePort | null)[])[a] = port2;
      }
    }
    const threads: ThreadHandle[] = [];
    const ready: Promise<void>[] = [];
    for (let thread = 0; thread < count; thread++) {
      const waiting = [];
      for (let partition = thread; partition < partitionCount; partition += count) {
        waiting.push({ partition, entries: host.waiting(partition) });
      }
      const ports = peers[thread] as (MessagePort | null)[];
      const data: PartitionThreadData = {
        stateDir: options.stateDir,
        partitionCount,
        thread,
        threads: count,
        ...(options.functions === undefined ? {} : { functions: options.functions }),
        ...(options.runtime === undefined ? {} : { runtime: options.runtime }),
        failurePolicy: options.failurePolicy ?? "retry",
        ...(options.context === undefined ? {} : { context: options.context }),
        waiting,
        peers: ports,
      };
      const worker = new Worker(new URL("./partition-thread.ts", import.meta.url), {
        workerData: data,
        transferList: ports.filter((port) => port !== null),
      });
      const channel = new CallChannel(worker, {
        checkpointed: async () => {
          if (options.checkpointed === undefined) throw new Error("this runtime takes no checkpoints");
          await options.checkpointed();
          return true;
        },
      });
      ready.push(
        new Promise<void>((resolve, reject) => {
          worker.on("message", (message: ToHost) => {
            if (message.kind === "ready") resolve();
            else if (message.kind === "stop") options.onStop?.(message.reason);
            else channel.receive(message);
          });
          worker.once("error", reject);
          worker.once("exit", (code) =>
            reject(new Error(`partition thread ${thread} exited (code ${code}) at its start`)),
          );
        }),
      );
      host.attach(thread, worker);
      threads.push({ worker, channel });
      // A thread that ends by itself (an error, a bug) leaves partitions unrun: every call fails from then on.
      worker.on("error", (error: Error) => failed(new Error(`partition thread ${thread} failed: ${error.message}`)));
      worker.on("exit", (code) => failed(new Error(`partition thread ${thread} exited (code ${code})`)));
    }
    const running = new PartitionThreads(threads, store, host, lock, partitionCount);
    failed = (error) => running.#fail(error);
    // Each thread is ready once its engine started and its waiting inbox entries are admitted.
    await Promise.all(ready);
    return running;
  }

  /** The store or a thread failed: calls waiting and to come fail with `error`. */
  #fail(error: Error): void {
    // A thread's exit is expected once stop() began.
    if (this.#failure !== undefined || this.#stopping !== undefined) return;
    this.#failure = error;
    for (const { channel } of this.#threads) channel.fail(error);
  }

  /** The thread that runs `envelope`'s target. */
  #ownerOf(envelope: Envelope): ThreadHandle {
    const partition = partitionOf(addressKey(envelope.target), this.#partitionCount);
    return this.#threads[partition % this.#threads.length] as ThreadHandle;
  }

  #call(handle: ThreadHandle, method: string, args: readonly unknown[], transfer?: ArrayBuffer): Promise<unknown> {
    if (this.#failure !== undefined) return Promise.reject(this.#failure);
    return handle.channel.call(method, args, transfer === undefined ? undefined : [transfer]);
  }

  /**
   * Serves the HTTP ingress on host:port (0: any free port) from every thread: the first
   * thread takes the port, the others share it (SO_REUSEPORT). Its URL.
   */
  async listen(
    port: number,
    host: string,
    maxBodyBytes = 4 * 1024 * 1024,
    more: Omit<ThreadIngress, "port" | "host" | "maxBodyBytes"> = {},
  ): Promise<string> {
    const [first, ...rest] = this.#threads as [ThreadHandle, ...ThreadHandle[]];
    const url = (await this.#call(first, "listen", [{ ...more, port, host, maxBodyBytes }])) as string;
    const bound = Number(new URL(url).port);
    await Promise.all(
      rest.map((handle) => this.#call(handle, "listen", [{ ...more, port: bound, host, maxBodyBytes }])),
    );
    return url;
  }

  /**
   * The oldest record of the playground egress's `topic`, taken from the first thread that has
   * one, asking the threads in turn from the one after the last that was asked first (so no
   * thread's records wait behind another's for long). Undefined when none has one.
   */
  async egressPop(topic: string): Promise<string | undefined> {
    const count = this.#threads.length;
    const start = this.#nextEgressThread;
    this.#nextEgressThread = (start + 1) % count;
    for (let step = 0; step < count; step++) {
      const handle = this.#threads[(start + step) % count] as ThreadHandle;
      const payload = (await this.#call(handle, "egressPop", [topic])) as string | undefined;
      if (payload !== undefined) return payload;
    }
    return undefined;
  }

  /**
   * The in-process functions again, from `url` (a new URL for the same file, so it is imported
   * again), in every thread; throws why a thread did not take them (it keeps the old ones).
   */
  async reload(url: string): Promise<void> {
    const answers = await Promise.allSettled(this.#threads.map((handle) => this.#call(handle, "reload", [url])));
    const refused = answers.find((answer): answer is PromiseRejectedResult => answer.status === "rejected");
    if (refused !== undefined) throw refused.reason;
  }

  /** As Engine.accept, on the thread that runs the target. */
  async accept(envelope: Envelope, options: AcceptOptions = {}): Promise<AcceptResult> {
    const record = ownBytes(encodeInboxRecord({ envelope }));
    return (await this.#call(this.#ownerOf(envelope), "accept", [record, options], record.buffer)) as AcceptResult;
  }

  /** A request-reply: accepted on the thread that runs the target, then its reply awaited up to `waitMs`. */
  async request(
    envelope: Envelope,
    options: AcceptOptions,
    waitMs: number,
  ): Promise<{ readonly accepted: AcceptResult; readonly lookup?: ReplyLookup }> {
    const record = ownBytes(encodeInboxRecord({ envelope }));
    return (await this.#call(this.#ownerOf(envelope), "request", [record, options, waitMs], record.buffer)) as {
      accepted: AcceptResult;
      lookup?: ReplyLookup;
    };
  }

  /**
   * Messages of type `typename` with one argument to each of `ids`, each thread taking the ids
   * it runs in one call (a benchmark's stand-in for an ingress in every thread): how many were
   * taken, once all are durable.
   */
  async acceptMany(typename: FunctionTypename, argument: TypedValue, ids: readonly string[]): Promise<number> {
    const byThread: string[][] = this.#threads.map(() => []);
    for (const id of ids) {
      const partition = partitionOf(addressKey({ typename, id }), this.#partitionCount);
      byThread[partition % this.#threads.length]?.push(id);
    }
    const taken = await Promise.all(
      this.#threads.map((handle, thread) => this.#call(handle, "acceptMany", [typename, argument, byThread[thread]])),
    );
    return taken.reduce((sum: number, count) => sum + (count as number), 0);
  }

  /** Stops every thread (each commits what it has), then the store. */
  stop(): Promise<void> {
    this.#stopping ??= (async () => {
      await Promise.all(this.#threads.map((handle) => this.#call(handle, "stop", [])));
      await this.#host.drained();
      await Promise.all(this.#threads.map((handle) => handle.worker.terminate()));
      if (this.#lock === undefined) return;
      await this.#store.close();
      await this.#lock.release();
    })();
    return this.#stopping;
  }
}

/** `count` if it is a thread count (a whole number from 1); throws otherwise. */
function checkThreadCount(count: number): number {
  if (!Number.isSafeInteger(count) || count < 1) {
    throw new Error(`partition threads: ${count} is not a thread count (a whole number from 1)`);
  }
  return count;
}
