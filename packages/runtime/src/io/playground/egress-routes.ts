// The playground egress of a cluster (egress.ts): each worker holds the records that the
// functions of its partitions sent, in those partitions' rows. A GET on any worker's egress pops
// one of its own records; when it has none, it asks the other workers in turn, over their HTTP
// ingress:
//
//   POST /playground-egress/<topic>   pops the oldest record of <topic> among the partitions this
//                                      worker runs, in a commit of that partition: 200 with the
//                                      payload once durable, 404 when it has none
//
// Why this path: a function's path is always exactly three segments (/<namespace>/<type>/<id>),
// so a path of two can never be a function's (as /dead-letters and GET /replies/<id>). It sits
// behind the ingress's bearer token, and is never forwarded: each worker answers for itself.
import type { IncomingMessage, ServerResponse } from "node:http";
import { Agent, request } from "undici";
import { COMMIT_ABORTED } from "../../engine/ports.ts";
import { errorCode, errorMessage } from "../../errors.ts";
import { replyText } from "../http-server.ts";

export const EGRESS_POP_PATH = "/playground-egress/";
/** How long a worker waits for another's pop (a commit on that worker). */
const PEER_POP_TIMEOUT_MS = 10_000;

/** This worker's side of a cluster's playground egress, for its ingress to serve. */
export interface EgressPopper {
  readonly topics: readonly string[];
  /** Pops the oldest record of `topic` among the partitions this worker runs; resolves once durable. */
  popLocal(topic: string): Promise<string | undefined>;
}

/** `/playground-egress/<topic>`, exactly two segments: `/playground-egress/<type>/<id>` is a function's. */
export function isEgressPopPath(url: string | undefined): boolean {
  const path = (url ?? "").split("?")[0] ?? "";
  if (!path.startsWith(EGRESS_POP_PATH)) return false;
  const topic = path.slice(EGRESS_POP_PATH.length);
  return topic !== "" && !topic.includes("/");
}

/** Serves a request whose path isEgressPopPath; `popper` is undefined without a playground egress in a cluster. */
export async function serveEgressPop(
  req: IncomingMessage,
  res: ServerResponse,
  popper: EgressPopper | undefined,
): Promise<void> {
  if (popper === undefined) {
    replyText(res, 404, "no playground egress of a cluster here: GET /<topic> on the playground egress itself");
    return;
  }
  if (req.method !== "POST") {
    replyText(res, 405, `${req.method} ${EGRESS_POP_PATH}<topic> is not supported; POST it`);
    return;
  }
  const raw = (req.url ?? "").slice(EGRESS_POP_PATH.length).split("?")[0] ?? "";
  let topic: string;
  try {
    topic = decodeURIComponent(raw);
  } catch {
    replyText(res, 400, `${EGRESS_POP_PATH}${raw}: not a topic name`);
    return;
  }
  if (!popper.topics.includes(topic)) {
    replyText(
      res,
      404,
      `topic ${JSON.stringify(topic)} is not declared; the module declares ${popper.topics.join(", ")}`,
    );
    return;
  }
  let payload: string | undefined;
  try {
    payload = await popper.popLocal(topic);
  } catch (error) {
    // The pop's commit was refused: the record is still there for the next ask.
    if (errorCode(error) === COMMIT_ABORTED) replyText(res, 503, "try again: the commit was aborted");
    else replyText(res, 500, `egress error: ${errorMessage(error)}`);
    return;
  }
  if (payload === undefined) replyText(res, 404, `no records in topic ${topic} on this worker`);
  else {
    res.writeHead(200, { "content-type": "text/plain; charset=utf-8", "content-length": Buffer.byteLength(payload) });
    res.end(payload);
  }
}

/** What asking the other workers gave: a record, and the workers that could not say. */
export interface PeerPop {
  readonly payload: string | undefined;
  /** "<worker url>: <why>" for each worker that did not answer 200 or 404. */
  readonly failed: readonly string[];
}

/** Asks the other workers' ingresses, in turn, for a record of `topic` (serveEgressPop). */
export class EgressPeers {
  readonly #agent = new Agent({ keepAliveTimeout: 30_000, connections: 8 });

  async pop(peers: readonly string[], topic: string, authorization: string | undefined): Promise<PeerPop> {
    const failed: string[] = [];
    for (const peer of peers) {
      try {
        const answer = await request(new URL(`${EGRESS_POP_PATH.slice(1)}${encodeURIComponent(topic)}`, peer), {
          method: "POST",
          dispatcher: this.#agent,
          headers: authorization === undefined ? {} : { authorization },
          headersTimeout: PEER_POP_TIMEOUT_MS,
          bodyTimeout: PEER_POP_TIMEOUT_MS,
        });
        const text = await answer.body.text();
        if (answer.statusCode === 200) return { payload: text, failed };
        if (answer.statusCode !== 404) failed.push(`${peer}: HTTP ${answer.statusCode}: ${text.trim()}`);
      } catch (error) {
        failed.push(`${peer}: ${errorMessage(error)}`);
      }
    }
    return { payload: undefined, failed };
  }

  close(): Promise<void> {
    return this.#agent.close();
  }
}
