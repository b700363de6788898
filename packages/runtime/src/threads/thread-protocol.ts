// What the main thread (the store host, store-host.ts) and a partition thread
// (partition-thread.ts) say to each other over the thread's MessagePort. Bytes travel as
// bytes, never as records: a commit is its write-ahead-log frame (store/writes-frame.ts), a
// message between partitions is a cluster inbox record (cluster/inbox-record.ts), so the
// host never clones a record (a structured clone turns a Buffer into a plain Uint8Array, and
// costs both threads), and the formats are the ones the log and the cluster already read.

/** A message for a partition another thread runs, as its inbox record. */
export interface OutboundRecord {
  readonly partition: number;
  readonly record: Uint8Array;
}

/** A message in a partition's inbox, at the offset the host gave it. */
export interface InboxEntry {
  readonly offset: number;
  readonly record: Uint8Array;
}

export type ToHost =
  /**
   * A group commit of the thread's partitions: its writes (a writes frame), and the messages
   * it sends to partitions other threads run, which the host puts in their inboxes in the
   * same durable write.
   */
  | {
      readonly kind: "commit";
      readonly id: number;
      readonly frame: Uint8Array;
      readonly outbound: readonly OutboundRecord[];
    }
  /** The thread has started its engine and delivered its waiting inbox entries. */
  | { readonly kind: "ready" }
  /** The engine stopped itself (the failure policy "stop"): the runtime stops, for `reason`. */
  | { readonly kind: "stop"; readonly reason: string }
  | CallMessage;

/** Calls either side makes of the other, and their answers, each gathered over an event-loop turn (call-channel.ts). */
export type CallMessage =
  | { readonly kind: "calls"; readonly calls: readonly Call[] }
  | { readonly kind: "answers"; readonly answers: readonly Answer[] };

/** A call into a thread (partition-thread.ts lists the methods a partition thread serves). */
export interface Call {
  readonly id: number;
  readonly method: string;
  readonly args: readonly unknown[];
}

/** What a call came to: its value, or the message of the error it threw. */
export type Answer = { readonly id: number; readonly value: unknown } | { readonly id: number; readonly error: string };

export type ToThread =
  /** The commit `id` is durable. */
  | { readonly kind: "committed"; readonly id: number }
  /**
   * The host's store began moving what it holds in memory to LMDB: every commit the thread was
   * told of before this message is in that move. The thread seals its view of them.
   */
  | { readonly kind: "sealed" }
  /** The move is done: LMDB shows those commits, and the thread's view may drop them. */
  | { readonly kind: "released" }
  /** Durable messages for a partition the thread runs, in offset order. */
  | { readonly kind: "inbox"; readonly partition: number; readonly entries: readonly InboxEntry[] }
  | CallMessage;

/**
 * `bytes` in an ArrayBuffer of their own, to post (and transfer). A structured clone copies a
 * view's whole ArrayBuffer, and the encoders hand out views into big pools (msgpackr's buffer,
 * Node's Buffer pool): posted as they are, every message would copy the pool.
 */
export function ownBytes(bytes: Uint8Array): Uint8Array<ArrayBuffer> {
  const own = new Uint8Array(bytes.length);
  own.set(bytes);
  return own;
}
