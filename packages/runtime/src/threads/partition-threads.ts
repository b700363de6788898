// Partitions spread over worker threads, on one store: the main thread opens the state
// directory and hosts the store (store-host.ts); each of N partition threads
// (partition-thread.ts) runs the partitions p with p mod N equal to its index, with the
// in-process functions. Calls for an address go to the thread that runs its partition.
//
// Not yet the runtime of `eddy run`: there are no ingresses, egresses, connectors, remote
// functions, admin API or checkpoints here. It is the part those will stand on: the commits
// of many threads in one log, and messages between threads exactly once across a crash.
import { mkdirSync } from "node:fs";
import { Worker } from "node:worker_threads";
import type { TypedValue } from "@eddy/protocol";
import { encodeInboxRecord } from "../cluster/inbox-record.ts";
import { addressKey, type FunctionTypename } from "../core/address.ts";
import type { FailurePolicy } from "../core/partition-core.ts";
import { partitionOf } from "../core/partitioning.ts";
import type { Envelope } from "../core/records.ts";
import { getRow, rowWrite, storeTables } from "../core/schema.ts";
import type { AcceptOptions, AcceptResult, ReplyLookup } from "../engine/engine.ts";
import { type StateDirLock, takeStateDirLock } from "../state-dir-lock.ts";
import { LoggedStore } from "../store/logged-store.ts";
import type { PartitionThreadData } from "./partition-thread.ts";
import { StoreHost } from "./store-host.ts";
import { type Answer, type Call, ownBytes, type ToHost, type ToThread } from "./thread-protocol.ts";

export interface PartitionThreadsOptions {
  readonly stateDir: string;
  readonly threads: number;
  /** Default 128, as `eddy run`'s. */
  readonly partitionCount?: number;
  /** A module URL whose export `functions` is the in-process functions. */
  readonly functions: string;
  readonly failurePolicy?: FailurePolicy;
  /** Handed to every thread as `workerData.context` (structured-cloned; a SharedArrayBuffer is shared). */
  readonly context?: unknown;
}

const PARTITION_COUNT_DEFAULT = 128;

interface ThreadHandle {
  readonly worker: Worker;
  /** Calls waiting for their answer, by id. */
  readonly calls: Map<number, (answer: Answer) => void>;
  /** Calls to send at the end of this event-loop turn, and the bytes they transfer. */
  outgoing: Call[];
  transfer: ArrayBuffer[];
}

export class PartitionThreads {
  readonly #threads: ThreadHandle[];
  readonly #store: LoggedStore;
  readonly #host: StoreHost;
  readonly #lock: StateDirLock;
  readonly #partitionCount: number;
  #nextCall = 1;
  #stopping: Promise<void> | undefined;
  /** Set when the store failed: every call fails with it. */
  #failure: Error | undefined;

  private constructor(
    threads: ThreadHandle[],
    store: LoggedStore,
    host: StoreHost,
    lock: StateDirLock,
    partitionCount: number,
  ) {
    this.#threads = threads;
    this.#store = store;
    this.#host = host;
    this.#lock = lock;
    this.#partitionCount = partitionCount;
  }

  static async start(options: PartitionThreadsOptions): Promise<PartitionThreads> {
    const count = options.threads;
    if (!Number.isSafeInteger(count) || count < 1) throw new Error(`--threads ${count}: give a whole number from 1`);
    mkdirSync(options.stateDir, { recursive: true });
    const taken = await takeStateDirLock(options.stateDir);
    if (!taken.ok) throw new Error(taken.error);
    const partitionCount = options.partitionCount ?? PARTITION_COUNT_DEFAULT;
    let host: StoreHost | undefined;
    const store = new LoggedStore({
      path: options.stateDir,
      onApply: { sealed: () => host?.sealed(), released: () => host?.released() },
    });
    const stored = getRow(store, storeTables.partitionCount.key());
    if (stored !== undefined && stored !== partitionCount) {
      await store.close();
      await taken.lock.release();
      throw new Error(
        `${options.stateDir} was created with ${stored} partitions; it cannot be opened with ${partitionCount}`,
      );
    }
    if (stored === undefined) await store.commit([rowWrite(storeTables.partitionCount.key(), partitionCount)]);
    // Everything the log holds goes to LMDB first: the threads read LMDB, and their views start empty.
    await store.applyAll();
    let failed: (error: Error) => void = () => {};
    host = new StoreHost(
      store,
      partitionCount,
      (partition) => partition % count,
      (error) => failed(error),
    );
    const threads: ThreadHandle[] = [];
    for (let thread = 0; thread < count; thread++) {
      const partitions: number[] = [];
      for (let partition = thread; partition < partitionCount; partition += count) partitions.push(partition);
      const data: PartitionThreadData = {
        stateDir: options.stateDir,
        partitionCount,
        partitions,
        functions: options.functions,
        failurePolicy: options.failurePolicy ?? "retry",
        ...(options.context === undefined ? {} : { context: options.context }),
        waiting: partitions.map((partition) => ({ partition, entries: host.waiting(partition) })),
      };
      const worker = new Worker(new URL("./partition-thread.ts", import.meta.url), { workerData: data });
      const handle: ThreadHandle = { worker, calls: new Map(), outgoing: [], transfer: [] };
      worker.on("message", (message: ToHost) => {
        if (message.kind !== "answers") return;
        for (const answer of message.answers) {
          const settle = handle.calls.get(answer.id);
          handle.calls.delete(answer.id);
          settle?.(answer);
        }
      });
      host.attach(thread, worker);
      threads.push(handle);
      // A thread that ends by itself (an error, a bug) leaves partitions unrun: every call fails from then on.
      worker.on("error", (error: Error) => failed(new Error(`partition thread ${thread} failed: ${error.message}`)));
      worker.on("exit", (code) => failed(new Error(`partition thread ${thread} exited (code ${code})`)));
    }
    const running = new PartitionThreads(threads, store, host, taken.lock, partitionCount);
    failed = (error) => running.#fail(error);
    // Each thread says "ready" (answer 0) once its waiting inbox entries are admitted and its engine started.
    await Promise.all(
      threads.map(
        (handle) =>
          new Promise<void>((resolve, reject) => {
            handle.calls.set(0, () => resolve());
            handle.worker.once("error", reject);
          }),
      ),
    );
    return running;
  }

  /** The store or a thread failed: calls waiting and to come fail with `error`. */
  #fail(error: Error): void {
    // A thread's exit is expected once stop() began.
    if (this.#failure !== undefined || this.#stopping !== undefined) return;
    this.#failure = error;
    for (const handle of this.#threads) {
      const waiting = [...handle.calls.values()];
      handle.calls.clear();
      for (const settle of waiting) settle({ id: 0, error: error.message });
    }
  }

  /** The thread that runs `envelope`'s target. */
  #ownerOf(envelope: Envelope): ThreadHandle {
    const partition = partitionOf(addressKey(envelope.target), this.#partitionCount);
    return this.#threads[partition % this.#threads.length] as ThreadHandle;
  }

  /** Calls `method` on a thread; the call leaves with the others made in this event-loop turn. */
  #call(handle: ThreadHandle, method: string, args: readonly unknown[], transfer?: ArrayBuffer): Promise<unknown> {
    if (this.#failure !== undefined) return Promise.reject(this.#failure);
    const id = this.#nextCall++;
    return new Promise((resolve, reject) => {
      handle.calls.set(id, (answer) => {
        if ("error" in answer) reject(new Error(answer.error));
        else resolve(answer.value);
      });
      if (handle.outgoing.length === 0) setImmediate(() => this.#flush(handle));
      handle.outgoing.push({ id, method, args });
      if (transfer !== undefined) handle.transfer.push(transfer);
    });
  }

  #flush(handle: ThreadHandle): void {
    const calls = handle.outgoing;
    const transfer = handle.transfer;
    handle.outgoing = [];
    handle.transfer = [];
    handle.worker.postMessage({ kind: "calls", calls } satisfies ToThread, transfer);
  }

  /** As Engine.accept, on the thread that runs the target. */
  async accept(envelope: Envelope, options: AcceptOptions = {}): Promise<AcceptResult> {
    return (await this.#call(this.#ownerOf(envelope), "accept", [
      encodeInboxRecord({ envelope }),
      options,
    ])) as AcceptResult;
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
      while (!this.#host.idle) await new Promise((resume) => setTimeout(resume, 1));
      await Promise.all(this.#threads.map((handle) => handle.worker.terminate()));
      await this.#store.close();
      await this.#lock.release();
    })();
    return this.#stopping;
  }
}
