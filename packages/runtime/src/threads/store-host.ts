// The main thread's side of partition threads: the one store every thread commits to. Each
// partition thread runs its partitions' engine and sends each group commit here as a frame;
// the host makes it durable in the store's write-ahead log, in one order for the whole
// process, and answers. So a checkpoint of the store is one consistent cut across threads,
// and a store opens with any number of threads: partitions change threads, never stores.
//
// A message to a partition another thread runs travels as the cluster's does (cluster/
// inbox-record.ts), with the store in the place of Kafka's inbox topic: the sender's commit
// carries it, the host writes it into the target partition's inbox table (schema
// tables.threadInbox) at the next offset of that inbox, in the same durable write as the
// sender's writes, and only then hands it to the owner. The owner delivers it and records
// the inbox position in its partition, in one commit (PartitionSet.deliverFromInbox); the
// host deletes the rows that position has passed in that same write. After a crash the rows
// at or past the position are still there and are handed over again: nothing is lost, and
// nothing is delivered twice, since the position and the delivery's effects commit together.
//
// Commits arriving while the store writes one are gathered into the next write, so threads
// share log syncs. The host is a bounded queue of at most one commit per thread (a thread has
// one commit in flight at a time, engine.ts).
import type { PendingWrite } from "../core/overlay-kv.ts";
import { inPartition, partitionOfKey, rowWrite, tables } from "../core/schema.ts";
import type { DurableStore } from "../engine/engine.ts";
import { decodeWritesFrame } from "../store/writes-frame.ts";
import { readInbox } from "./thread-inbox.ts";
import type { InboxEntry, ToHost, ToThread } from "./thread-protocol.ts";

const INBOX_POSITION_KEY = tables.inboxPosition.key();

/** One partition's inbox as the host knows it. */
interface Inbox {
  /** The offset the next message gets. */
  next: number;
  /** Offsets written and not yet passed by the partition's inbox position, ascending. */
  readonly kept: number[];
  /** What was waiting at the host's start, until its owner takes it (waiting()). */
  waiting: readonly InboxEntry[];
}

interface QueuedCommit {
  readonly thread: number;
  readonly id: number;
  readonly frame: Uint8Array;
  readonly outbound: readonly { readonly partition: number; readonly record: Uint8Array }[];
}

/**
 * The store's apply hooks (LoggedStore's onApply), handed on to the host once it exists: the
 * store opens before the host, which reads it at its construction.
 */
export class ApplyRelay {
  #host: StoreHost | undefined;
  readonly onApply = {
    sealed: (): void => this.#host?.sealed(),
    released: (): void => this.#host?.released(),
  };

  connect(host: StoreHost): void {
    this.#host = host;
  }
}

/** What the host needs of a thread's port (a Worker or a MessagePort): to post, and to hear. */
export interface ThreadPort {
  postMessage(message: ToThread): void;
  on(event: "message", listener: (message: ToHost) => void): unknown;
}

export class StoreHost {
  readonly #store: DurableStore;
  readonly #ownerOf: (partition: number) => number;
  readonly #inboxes: Inbox[];
  readonly #threads = new Map<number, ThreadPort>();
  #queue: QueuedCommit[] = [];
  /** The write loop while it runs (commits that arrive meanwhile join its next write). */
  #writing: Promise<void> | undefined;
  /** Set when a write failed: the store cannot go on, and no commit is answered again. */
  #failure: Error | undefined;
  readonly #onFailure: (error: Error) => void;

  /**
   * `store` is open (a LoggedStore; the simulation's in-memory store); `ownerOf` names the
   * thread that runs each partition. Reads every partition's inbox (rows and position) now,
   * once, before any thread commits.
   */
  constructor(
    store: DurableStore,
    partitionCount: number,
    ownerOf: (partition: number) => number,
    onFailure: (error: Error) => void,
  ) {
    this.#store = store;
    this.#ownerOf = ownerOf;
    this.#onFailure = onFailure;
    this.#inboxes = [];
    for (let partition = 0; partition < partitionCount; partition++) {
      const { position, offsets, waiting } = readInbox(store, partition);
      const last = offsets.at(-1);
      this.#inboxes.push({
        next: last === undefined ? position : Math.max(position, last + 1),
        kept: [...offsets],
        waiting,
      });
    }
  }

  /**
   * The messages waiting in `partition`'s inbox (at or past its position) when the host
   * started, read once then: for its owner, at its start. Handed over once.
   */
  waiting(partition: number): readonly InboxEntry[] {
    const inbox = this.#inboxes[partition] as Inbox;
    const waiting = inbox.waiting;
    inbox.waiting = [];
    return waiting;
  }

  /** Connects thread `thread`'s port: its commits are taken from now on. */
  attach(thread: number, port: ThreadPort): void {
    this.#threads.set(thread, port);
    port.on("message", (message: ToHost) => {
      if (message.kind !== "commit") return;
      this.#queue.push({ thread, id: message.id, frame: message.frame, outbound: message.outbound });
      if (this.#writing === undefined) void this.#writeQueued();
    });
  }

  /** The store's apply took what it held in memory: every thread's view seals what it was told. */
  sealed(): void {
    for (const port of this.#threads.values()) port.postMessage({ kind: "sealed" });
  }

  /** LMDB shows what the last apply took. */
  released(): void {
    for (const port of this.#threads.values()) port.postMessage({ kind: "released" });
  }

  /** Whether no commit is waiting or being written. */
  get idle(): boolean {
    return this.#writing === undefined && this.#queue.length === 0;
  }

  /** Resolves once no commit is waiting or being written (after the threads stopped: all is durable). */
  async drained(): Promise<void> {
    while (this.#writing !== undefined) await this.#writing;
  }

  #writeQueued(): Promise<void> {
    const writing = this.#writeAll().finally(() => {
      this.#writing = undefined;
    });
    this.#writing = writing;
    return writing;
  }

  async #writeAll(): Promise<void> {
    try {
      while (this.#queue.length > 0 && this.#failure === undefined) {
        const commits = this.#queue;
        this.#queue = [];
        const { writes, deliveries } = this.#gather(commits);
        await this.#store.commit(writes);
        for (const commit of commits) this.#post(commit.thread, { kind: "committed", id: commit.id });
        for (const [partition, entries] of deliveries) {
          this.#post(this.#ownerOf(partition), { kind: "inbox", partition, entries });
        }
      }
    } catch (error) {
      this.#failure = error instanceof Error ? error : new Error(String(error));
      this.#onFailure(this.#failure);
    }
  }

  /**
   * One durable write for several threads' commits, in the order they came: each one's
   * writes, then its messages as inbox rows; and for every inbox position a commit moves, the
   * deletes of the rows it passed (written earlier, so after them in the log).
   */
  #gather(commits: readonly QueuedCommit[]): {
    writes: PendingWrite[];
    deliveries: Map<number, InboxEntry[]>;
  } {
    const writes: PendingWrite[] = [];
    const deliveries = new Map<number, InboxEntry[]>();
    for (const commit of commits) {
      for (const write of decodeWritesFrame(commit.frame)) {
        writes.push(write);
        const partition = partitionOfKey(write.key);
        if (partition !== undefined && typeof write.value === "number" && isInboxPositionKey(write.key)) {
          this.#trim(partition, write.value, writes);
        }
      }
      for (const { partition, record } of commit.outbound) {
        const inbox = this.#inboxes[partition];
        if (inbox === undefined) throw new Error(`a commit sends a message to partition ${partition}, which is none`);
        const offset = inbox.next++;
        inbox.kept.push(offset);
        // Fresh: offsets only grow, so the row is new; if its delivery's trim comes before the
        // store's next apply, the two cancel in its memtable and LMDB never sees either.
        writes.push({ ...rowWrite(inPartition(partition, tables.threadInbox.key(offset)), record), fresh: true });
        const entries = deliveries.get(partition);
        if (entries === undefined) deliveries.set(partition, [{ offset, record }]);
        else entries.push({ offset, record });
      }
    }
    return { writes, deliveries };
  }

  /** Deletes `partition`'s inbox rows before `position`. */
  #trim(partition: number, position: number, writes: PendingWrite[]): void {
    const inbox = this.#inboxes[partition] as Inbox;
    let passed = 0;
    while (passed < inbox.kept.length && (inbox.kept[passed] as number) < position) {
      writes.push(rowWrite(inPartition(partition, tables.threadInbox.key(inbox.kept[passed] as number)), undefined));
      passed++;
    }
    if (passed > 0) inbox.kept.splice(0, passed);
  }

  #post(thread: number, message: ToThread): void {
    this.#threads.get(thread)?.postMessage(message);
  }
}

/** Whether a store key is a partition's inbox position row (["p", n, ...INBOX_POSITION_KEY]). */
function isInboxPositionKey(key: readonly unknown[]): boolean {
  return (
    key.length === 2 + INBOX_POSITION_KEY.length && key[2] === INBOX_POSITION_KEY[0] && key[3] === INBOX_POSITION_KEY[1]
  );
}
