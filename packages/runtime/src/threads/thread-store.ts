// A partition thread's store: reads from LMDB directly (the process's one environment, opened
// in this thread too; LMDB is made for readers in many threads), and commits through the
// store host on the main thread (store-host.ts), which writes every thread's commits to the
// one write-ahead log.
//
// The host keeps a commit's writes in memory until its next apply moves them to LMDB, so
// LMDB alone does not show the commits the host has just made durable. The thread keeps its
// own commits in a view of the same shape (an OverlayKV over LMDB) and drops them when the
// host says LMDB shows them: "sealed" when an apply takes everything the host had (every
// commit the thread was told of before it), "released" when LMDB has it. A thread reads only
// its own partitions' rows, which only its own commits write, so its view and LMDB are all
// it needs; the rows the host adds (inbox rows) it is handed as messages instead.

import { encodeInboxRecord } from "../cluster/inbox-record.ts";
import type { Key, KeyValue, ScanOptions } from "../core/kv.ts";
import type { OverlayKV as OverlayKVType, PendingWrite } from "../core/overlay-kv.ts";
import { OverlayKV } from "../core/overlay-kv.ts";
import type { CommitBatch, CommitRefusal, CommitTarget, DurableStore } from "../engine/engine.ts";
import { LmdbStore } from "../store/lmdb-store.ts";
import { encodeWritesFrame } from "../store/writes-frame.ts";
import { type OutboundRecord, ownBytes, type ToHost, type ToThread } from "./thread-protocol.ts";

/** What the store needs of its port to the host. */
export interface HostPort {
  postMessage(message: ToHost, transfer?: readonly ArrayBuffer[]): void;
}

interface InFlight {
  readonly writes: readonly PendingWrite[];
  readonly resolve: () => void;
}

export class ThreadStore implements DurableStore {
  readonly #lmdb: LmdbStore;
  readonly #view: OverlayKVType;
  readonly #port: HostPort;
  readonly #inFlight = new Map<number, InFlight>();
  #nextId = 1;
  #closed = false;

  constructor(path: string, port: HostPort) {
    this.#lmdb = new LmdbStore({ path, sync: "deferred" });
    this.#view = new OverlayKV(this.#lmdb);
    this.#port = port;
  }

  /**
   * Handles the host's store messages ("committed", "sealed", "released"); false for any other
   * kind (the thread's own). Must be called in the order the messages came.
   */
  receive(message: ToThread): boolean {
    switch (message.kind) {
      case "committed": {
        const commit = this.#inFlight.get(message.id);
        if (commit === undefined)
          throw new Error(`the store host confirmed commit ${message.id}, which is not in flight`);
        this.#inFlight.delete(message.id);
        // Into the view before anything else runs: a "sealed" after this message covers it.
        this.#remember(commit.writes);
        commit.resolve();
        return true;
      }
      case "sealed":
        this.#view.sealInPlace();
        return true;
      case "released":
        // LMDB's snapshot first: the view drops these commits, so reads must find them there.
        this.#lmdb.renewReads();
        this.#view.release();
        return true;
      default:
        return false;
    }
  }

  get(key: Key): unknown {
    return this.#view.get(key);
  }

  put(): void {
    throw new Error("ThreadStore.put: write through commit()");
  }

  insert(): void {
    throw new Error("ThreadStore.insert: write through commit()");
  }

  delete(): void {
    throw new Error("ThreadStore.delete: write through commit()");
  }

  scan(prefix: Key, options?: ScanOptions): Iterable<KeyValue> {
    return this.#view.scan(prefix, options);
  }

  commit(writes: readonly PendingWrite[]): Promise<void> {
    return this.#send(writes, []);
  }

  /**
   * The engine's commit target: the batch's writes and its messages to other threads'
   * partitions, durable together. The host never refuses: a store that cannot write ends the
   * process (the thread hears nothing more, and the host's failure stops Eddy).
   */
  commitTarget(): CommitTarget {
    return {
      commit: async (batch: CommitBatch): Promise<CommitRefusal | undefined> => {
        if (batch.published.length > 0) {
          throw new Error(
            `a partition thread's commit has ${batch.published.length} records to publish, which it cannot`,
          );
        }
        const outbound: OutboundRecord[] = batch.outbound.map((message) => ({
          partition: message.partition,
          record: ownBytes(encodeInboxRecord(message)),
        }));
        await this.#send(batch.writes, outbound);
        return undefined;
      },
    };
  }

  #send(writes: readonly PendingWrite[], outbound: readonly OutboundRecord[]): Promise<void> {
    if (this.#closed) return Promise.reject(new Error("ThreadStore.commit: the store is closed"));
    if (writes.length === 0 && outbound.length === 0) return Promise.resolve();
    const id = this.#nextId++;
    const frame = ownBytes(encodeWritesFrame(writes));
    const transfer = [frame.buffer, ...outbound.map((message) => message.record.buffer as ArrayBuffer)];
    return new Promise<void>((resolve) => {
      this.#inFlight.set(id, { writes, resolve });
      this.#port.postMessage({ kind: "commit", id, frame, outbound }, transfer);
    });
  }

  #remember(writes: readonly PendingWrite[]): void {
    for (const write of writes) {
      if (write.value === undefined) this.#view.delete(write.key);
      else if (write.fresh === true) this.#view.insert(write.key, write.value);
      else this.#view.put(write.key, write.value);
    }
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.#lmdb.close();
  }
}
