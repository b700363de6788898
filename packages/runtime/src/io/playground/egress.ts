// The StateFun playground HTTP egress (io.statefun.playground.v1/egress), egress id
// io.statefun.playground/egress. Functions send `io.statefun.playground/EgressRecord`
// JSON {topic, payload}; `GET /<topic>` pops the oldest payload (404 when there is none,
// 405 for a topic the module does not declare). Records live in the store, written in
// the same commit that settles the outbox and popped in a commit of their own, so a
// record is handed out exactly once across crashes.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { KV } from "../../core/kv.ts";
import type { OutboxEntry } from "../../core/records.ts";
import { COMMIT_ABORTED, type EgressConnector, type EgressSettlement, type EgressSink } from "../../engine/ports.ts";
import { errorCode } from "../../errors.ts";
import { authorize, closeServer, listenOn, replyText } from "../http-server.ts";

export const PLAYGROUND_EGRESS_ID = "io.statefun.playground/egress";
export const EGRESS_RECORD_TYPENAME = "io.statefun.playground/EgressRecord";

export interface PlaygroundEgressOptions {
  readonly port: number;
  readonly host: string;
  readonly topics: readonly string[];
  /** Requests must carry `Authorization: Bearer <token>` when set. */
  readonly token?: string;
}

const table = (topic: string) => ["io", "playground-egress", topic];

export class PlaygroundEgress implements EgressConnector {
  readonly egressIds = [PLAYGROUND_EGRESS_ID];
  readonly #options: PlaygroundEgressOptions;
  readonly #server: Server;
  #engine: EgressSink | undefined;
  readonly #nextSeq = new Map<string, number>();

  constructor(options: PlaygroundEgressOptions) {
    this.#options = options;
    this.#server = createServer((req, res) => {
      this.#handle(req, res).catch((error: unknown) => {
        // The pop's commit was aborted: the record is still there for the next GET.
        if (errorCode(error) === COMMIT_ABORTED) replyText(res, 503, "try again: the commit was aborted");
        else replyText(res, 500, `egress error: ${String(error)}`);
      });
    });
  }

  /** Connects the HTTP side to the engine (the engine is built with this connector first). */
  attach(engine: EgressSink, store: KV): void {
    this.#engine = engine;
    for (const topic of this.#options.topics) {
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
    const seq = typeof record.topic === "string" ? this.#nextSeq.get(record.topic) : undefined;
    if (typeof record.topic !== "string" || seq === undefined) {
      settle.rejected(
        `topic ${JSON.stringify(record.topic)} is not declared; the module declares ${this.#options.topics.join(", ")}`,
      );
      return;
    }
    const payload = typeof record.payload === "string" ? record.payload : JSON.stringify(record.payload ?? null);
    this.#nextSeq.set(record.topic, seq + 1);
    transaction.put([...table(record.topic), seq], payload);
    settle.delivered();
  }

  listen(): Promise<string> {
    return listenOn(this.#server, this.#options.port, this.#options.host);
  }

  close(): Promise<void> {
    return closeServer(this.#server);
  }

  async #handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    if (!authorize(req, res, this.#options.token)) return;
    const topic = decodeURIComponent((req.url ?? "/").split("?")[0]?.slice(1) ?? "");
    if (req.method !== "GET" || !this.#options.topics.includes(topic)) {
      replyText(res, 405, `GET /<topic> with one of: ${this.#options.topics.join(", ")}`);
      return;
    }
    const engine = this.#engine;
    if (engine === undefined) {
      replyText(res, 503, "the runtime is starting");
      return;
    }
    const payload = await engine.transact((transaction) => {
      const [oldest] = transaction.scan(table(topic), { limit: 1 });
      if (oldest === undefined) return undefined;
      transaction.delete(oldest.key);
      return oldest.value as string;
    });
    if (payload === undefined) replyText(res, 404, `no records in topic ${topic}`);
    else {
      res.writeHead(200, { "content-type": "text/plain; charset=utf-8", "content-length": Buffer.byteLength(payload) });
      res.end(payload);
    }
  }
}
