// The StateFun playground HTTP egress (io.statefun.playground.v1/egress), egress id
// io.statefun.playground/egress. Functions send `io.statefun.playground/EgressRecord`
// JSON {topic, payload}; `GET /<topic>` pops the oldest payload (404 when there is none,
// 405 for a topic the module does not declare). Records live in the store, written in
// the same commit that settles the outbox and popped in a commit of their own, so a
// record is handed out exactly once across crashes.
//
// A record's row is keyed by the topic, a sequence number, then the partition of the function
// that sent it: partition threads (threads/) each write the records of their own partitions
// with sequence numbers of their own, so the partition keeps their rows apart, and each thread
// pops only the rows of its partitions (popOldest's `owns`). The HTTP side then runs once, on
// the main thread, and pops from the threads in turn (PlaygroundEgressOptions.pop). Rows
// written before the partition was in the key have none: the first thread pops those.
//
// In a cluster (`inCluster`) a record is a row of the partition whose function sent it
// (tables.playgroundEgress, keyed by the sending outbox entry's seq), committed in that
// partition's changelog with the entry's settlement, so it moves with the partition and is
// handed out once whoever runs it. A GET pops the oldest record of a partition this worker runs
// (taking the partitions in turn), and when it has none asks the other workers over their
// ingress (egress-routes.ts); 404 only when none had one, 503 when one could not say. Order
// holds within a partition; across partitions and workers records come in no set order.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import { addressKey } from "../../core/address.ts";
import type { KV } from "../../core/kv.ts";
import { partitionOf } from "../../core/partitioning.ts";
import type { OutboxEntry } from "../../core/records.ts";
import { putRow, scanRows, tables } from "../../core/schema.ts";
import { COMMIT_ABORTED, type EgressConnector, type EgressSettlement, type EgressSink } from "../../engine/ports.ts";
import { errorCode } from "../../errors.ts";
import { authorize, closeServer, listenOn, replyText } from "../http-server.ts";
import { EgressPeers } from "./egress-routes.ts";

export const PLAYGROUND_EGRESS_ID = "io.statefun.playground/egress";
export const EGRESS_RECORD_TYPENAME = "io.statefun.playground/EgressRecord";

export interface PlaygroundEgressOptions {
  readonly port: number;
  readonly host: string;
  readonly topics: readonly string[];
  /** Requests must carry `Authorization: Bearer <token>` when set. */
  readonly token?: string;
  /** Where GET takes a topic's oldest record from; default this egress's own store (popOldest). */
  readonly pop?: (topic: string) => Promise<string | undefined>;
  /** A worker of a cluster: records are rows of the sending partition (see the top of this file). */
  readonly inCluster?: boolean;
}

/** Which rows this egress pops: all of them, or a partition thread's. */
export interface EgressRowOwner {
  /** Whether this egress pops the rows of `partition`. */
  owns(partition: number): boolean;
  /** Whether it pops the rows written before the partition was in the key. */
  readonly ownsUnpartitioned: boolean;
}

const table = (topic: string) => ["io", "playground-egress", topic];

export class PlaygroundEgress implements EgressConnector {
  readonly egressIds = [PLAYGROUND_EGRESS_ID];
  readonly #options: PlaygroundEgressOptions;
  readonly #server: Server;
  #engine: EgressSink | undefined;
  #partitionCount = 1;
  #owner: EgressRowOwner | undefined;
  readonly #nextSeq = new Map<string, number>();
  /** In a cluster: the other workers' ingress URLs, and how to ask them. */
  #peers: (() => readonly string[]) | undefined;
  readonly #peerClient: EgressPeers | undefined;
  /** In a cluster: the index among the partitions run here that the next pop looks at first. */
  #nextPartition = 0;

  constructor(options: PlaygroundEgressOptions) {
    this.#options = options;
    this.#peerClient = options.inCluster === true ? new EgressPeers() : undefined;
    this.#server = createServer((req, res) => {
      this.#handle(req, res).catch((error: unknown) => {
        // The pop's commit was aborted: the record is still there for the next GET.
        if (errorCode(error) === COMMIT_ABORTED) replyText(res, 503, "try again: the commit was aborted");
        else replyText(res, 500, `egress error: ${String(error)}`);
      });
    });
  }

  get topics(): readonly string[] {
    return this.#options.topics;
  }

  get rowsInSourcePartition(): boolean {
    return this.#options.inCluster === true;
  }

  /** In a cluster: where the other workers are, to ask them when this one holds no record. */
  attachPeers(peers: () => readonly string[]): void {
    this.#peers = peers;
  }

  /**
   * Connects the HTTP side to the engine (the engine is built with this connector first), over
   * `partitionCount` partitions (a row's partition only keeps threads' rows apart: any count
   * works, the engine's spreads them as the threads are); `owner` limits what popOldest takes to
   * a partition thread's rows.
   */
  attach(engine: EgressSink, store: KV, partitionCount = 1, owner?: EgressRowOwner): void {
    this.#engine = engine;
    this.#partitionCount = partitionCount;
    this.#owner = owner;
    for (const topic of this.#options.topics) {
      // Every writer starts past the highest sequence number stored (the last row's).
      let last = 0;
      for (const { key } of store.scan(table(topic))) last = key[3] as number;
      this.#nextSeq.set(topic, last + 1);
    }
  }

  deliver(entry: OutboxEntry, transaction: KV, settle: EgressSettlement): void {
    if (entry.value.typename !== EGRESS_RECORD_TYPENAME) {
      settle.rejected(`the playground egress takes ${EGRESS_RECORD_TYPENAME}, got ${entry.value.typename}`);
      return;
    }
    let record: { topic?: unknown; payload?: unknown };
    try {
      record = JSON.parse(new TextDecoder().decode(entry.value.value)) as typeof record;
    } catch (cause) {
      settle.rejected(`the EgressRecord is not JSON: ${String(cause)}`);
      return;
    }
    // The module's topics decide, not #nextSeq: a cluster's worker may deliver before attach().
    const declared = typeof record.topic === "string" && this.#options.topics.includes(record.topic);
    const seq = typeof record.topic === "string" ? this.#nextSeq.get(record.topic) : undefined;
    if (!declared || (seq === undefined && this.#options.inCluster !== true)) {
      settle.rejected(
        `topic ${JSON.stringify(record.topic)} is not declared; the module declares ${this.#options.topics.join(", ")}`,
      );
      return;
    }
    const topic = record.topic as string;
    const payload = typeof record.payload === "string" ? record.payload : JSON.stringify(record.payload ?? null);
    if (this.#options.inCluster === true) {
      // `transaction` is the sending partition's rows; the entry's seq is unique and rising there.
      putRow(transaction, tables.playgroundEgress.key(topic, entry.seq), payload);
      settle.delivered();
      return;
    }
    const next = seq as number;
    this.#nextSeq.set(topic, next + 1);
    const partition = partitionOf(addressKey(entry.source), this.#partitionCount);
    transaction.put([...table(topic), next, partition], payload);
    settle.delivered();
  }

  listen(): Promise<string> {
    return listenOn(this.#server, this.#options.port, this.#options.host);
  }

  async close(): Promise<void> {
    await closeServer(this.#server);
    await this.#peerClient?.close();
  }

  async #handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    if (!authorize(req, res, this.#options.token)) return;
    const topic = decodeURIComponent((req.url ?? "/").split("?")[0]?.slice(1) ?? "");
    if (req.method !== "GET" || !this.#options.topics.includes(topic)) {
      replyText(res, 405, `GET /<topic> with one of: ${this.#options.topics.join(", ")}`);
      return;
    }
    if (this.#options.pop === undefined && this.#engine === undefined) {
      replyText(res, 503, "the runtime is starting");
      return;
    }
    let payload = await (this.#options.pop ?? ((name: string) => this.popOldest(name)))(topic);
    if (payload === undefined && this.#peerClient !== undefined) {
      const asked = await this.#peerClient.pop(this.#peers?.() ?? [], topic, req.headers.authorization);
      payload = asked.payload;
      if (payload === undefined && asked.failed.length > 0) {
        // Another worker may hold records: "none" would not be true.
        res.setHeader("retry-after", "1");
        replyText(res, 503, `no records here, and not every worker could be asked: ${asked.failed.join("; ")}`);
        return;
      }
    }
    if (payload === undefined) replyText(res, 404, `no records in topic ${topic}`);
    else {
      res.writeHead(200, { "content-type": "text/plain; charset=utf-8", "content-length": Buffer.byteLength(payload) });
      res.end(payload);
    }
  }

  /** Takes the oldest record of `topic` among the rows this egress pops, in a commit of its own. */
  popOldest(topic: string): Promise<string | undefined> {
    const engine = this.#engine;
    if (engine === undefined) return Promise.reject(new Error("the playground egress is not attached to an engine"));
    if (this.#options.inCluster === true) {
      return engine.transactOwned((owned, rowsOf) => {
        for (let turn = 0; turn < owned.length; turn++) {
          const index = (this.#nextPartition + turn) % owned.length;
          const rows = rowsOf(owned[index] as number);
          for (const row of scanRows(rows, tables.playgroundEgress.of(topic))) {
            rows.delete(row.key);
            this.#nextPartition = index + 1;
            return row.value;
          }
        }
        return undefined;
      });
    }
    const owner = this.#owner;
    return engine.transact((transaction) => {
      for (const row of transaction.scan(table(topic))) {
        if (owner !== undefined && !ownsRow(owner, row.key)) continue;
        transaction.delete(row.key);
        return row.value as string;
      }
      return undefined;
    });
  }
}

function ownsRow(owner: EgressRowOwner, key: readonly unknown[]): boolean {
  const partition = key[4];
  return typeof partition === "number" ? owner.owns(partition) : owner.ownsUnpartitioned;
}
