// Folds log frames into a delta's chunks on a worker thread: reading and decoding the
// frames of a checkpoint interval is tens to hundreds of milliseconds of CPU under load,
// which on the main thread would stall the commits meanwhile (bench/checkpoint). One
// worker lives as long as the checkpointer, so a small delta does not pay for starting a
// thread (~100 ms with its modules), which --ack-after-checkpoint would feel.
import { isMainThread, parentPort, Worker, workerData } from "node:worker_threads";
import { LogCorruptError } from "../store/write-ahead-log.ts";
import { deltaChunks, foldLog } from "./delta.ts";

interface FoldJob {
  readonly id: number;
  readonly logDir: string;
  readonly afterSeq: number;
  readonly throughSeq: number;
}

type FoldReply = { readonly id: number } & (
  | { readonly ok: true; readonly chunks: Uint8Array[] }
  | { readonly ok: false; readonly error: string; readonly corrupt: boolean }
);

export interface FoldedChunks {
  readonly chunks: readonly Uint8Array[];
}

const WORKER_MARK = "eddy-log-folder";

export class LogFolder {
  #worker: Worker | undefined;
  #nextId = 0;
  readonly #waiting = new Map<number, { resolve: (folded: FoldedChunks) => void; reject: (error: Error) => void }>();

  /** The net writes of the frames after `afterSeq` through `throughSeq`, in upload chunks. */
  fold(logDir: string, afterSeq: number, throughSeq: number): Promise<FoldedChunks> {
    const worker = this.#start();
    const id = this.#nextId++;
    const job: FoldJob = { id, logDir, afterSeq, throughSeq };
    return new Promise((resolve, reject) => {
      this.#waiting.set(id, { resolve, reject });
      worker.ref();
      worker.postMessage(job);
    });
  }

  async close(): Promise<void> {
    const worker = this.#worker;
    this.#worker = undefined;
    if (worker !== undefined) await worker.terminate();
  }

  #start(): Worker {
    if (this.#worker !== undefined) return this.#worker;
    const worker = new Worker(new URL(import.meta.url), { workerData: WORKER_MARK });
    worker.on("message", (reply: FoldReply) => {
      const waiter = this.#waiting.get(reply.id);
      this.#waiting.delete(reply.id);
      // An idle worker must not keep the process alive.
      if (this.#waiting.size === 0) worker.unref();
      if (waiter === undefined) return;
      if (reply.ok) waiter.resolve({ chunks: reply.chunks });
      else waiter.reject(reply.corrupt ? new LogCorruptError(reply.error) : new Error(reply.error));
    });
    const failAll = (error: Error) => {
      this.#worker = undefined;
      for (const waiter of this.#waiting.values()) waiter.reject(error);
      this.#waiting.clear();
    };
    worker.on("error", failAll);
    worker.on("exit", (code) => failAll(new Error(`the log-folding worker exited with code ${code}`)));
    worker.unref();
    this.#worker = worker;
    return worker;
  }
}

if (!isMainThread && parentPort !== null && workerData === WORKER_MARK) {
  const port = parentPort;
  port.on("message", (job: FoldJob) => {
    let reply: FoldReply;
    try {
      const rows = foldLog(job.logDir, job.afterSeq, job.throughSeq);
      // Copied, not transferred: a small Buffer may sit in Node's shared pool.
      reply = { id: job.id, ok: true, chunks: [...deltaChunks(rows)] };
    } catch (error) {
      reply = { id: job.id, ok: false, error: (error as Error).message, corrupt: error instanceof LogCorruptError };
    }
    port.postMessage(reply);
  });
}
