// In a cluster every worker serves the HTTP ingress, but only one runs a given function
// instance: a request for an instance another worker runs is forwarded to it as it came
// (method, path, body, the headers that mean something to the ingress), and its answer relayed
// as it came back, as Restate's ingress hands a call to its partition's leader. The owner
// answers exactly as if the client had asked it: 200 after its commit, the reply for
// `Prefer: wait`, 202 with a Location to poll (`GET /replies/<id>`, itself forwarded to the
// owner of the request's partition, which holds its durable answer). A forwarded request is
// never forwarded again (`eddy-forwarded`): ownership that moved meanwhile is a 503 with
// Retry-After, which the client's retry resolves, never a loop between workers.
import { randomUUID } from "node:crypto";
import type { IncomingMessage, ServerResponse } from "node:http";
import { Agent, request } from "undici";
import type { Address } from "../../core/address.ts";
import { makeRequestId } from "../../core/records.ts";
import { errorMessage } from "../../errors.ts";
import { replyText } from "../http-server.ts";
import type { DeadLetterAdmin } from "./dead-letter-routes.ts";
import type { EgressPopper } from "./egress-routes.ts";

/** Where requests go in a cluster. For each answer: undefined = this worker; a URL = the owner; null = nobody yet. */
export interface IngressRouting {
  ownerOfTarget(target: Address): string | null | undefined;
  ownerOfRequest(requestId: string): string | null | undefined;
  /** The worker's dead letters, which its ingress serves (dead-letter-routes.ts). */
  readonly deadLetters?: DeadLetterAdmin;
  /** The worker's side of the playground egress, which its ingress serves (egress-routes.ts). */
  readonly playgroundEgress?: EgressPopper;
  /** The ingress URLs of the other workers that run partitions now. */
  peers?(): readonly string[];
}

/** Where a request's reply is polled: GET /replies/<request id>. */
export const REPLIES_PATH = "/replies/";
/** How many request ids a forward draws for one whose replies the owner keeps (about 1 in the worker count is). */
const MINT_DRAWS_MAX = 256;

/**
 * A request id (records.ts makeRequestId) whose replies `ownerUrl` keeps, by `routing`; or
 * undefined if no draw found one (the ownership is moving: the request goes without one).
 */
export function mintRequestId(routing: IngressRouting, ownerUrl: string, nowMs: number): string | undefined {
  for (let draw = 0; draw < MINT_DRAWS_MAX; draw++) {
    const requestId = makeRequestId(nowMs, randomUUID());
    if (routing.ownerOfRequest(requestId) === ownerUrl) return requestId;
  }
  return undefined;
}

/** Marks a request one worker forwarded to another. */
export const FORWARDED_HEADER = "eddy-forwarded";
/**
 * On a forwarded request-reply without an Idempotency-Key: the request id the forwarding
 * worker chose (one whose replies the owner keeps), so that it can send its client to poll
 * should the owner die during the wait (see forward).
 */
export const REQUEST_ID_HEADER = "eddy-request-id";
/** What a request id minted for a forward looks like (records.ts makeRequestId with a UUID). */
export const MINTED_REQUEST_ID = /^[0-9a-z]{1,11}\.[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
/** What a forwarded request carries of the client's headers. */
const FORWARDED_REQUEST_HEADERS = ["content-type", "idempotency-key", "prefer", "accept", "authorization"] as const;
/** What a relayed answer carries of the owner's headers (a 401 must carry its challenge). */
const RELAYED_RESPONSE_HEADERS = [
  "content-type",
  "location",
  "retry-after",
  "eddy-typename",
  "content-location",
  "www-authenticate",
];
export const RETRY_AFTER_SECONDS = 1;
/** Beyond what the owner may hold a request (its Prefer: wait, its admission hold). */
const FORWARD_SLACK_MS = 15_000;

/** One ingress's forwarding: its connections to the other workers, kept alive between requests. */
export class Forwarder {
  readonly #agent = new Agent({ keepAliveTimeout: 30_000, connections: 64 });

  /**
   * Sends the request to `ownerUrl` and relays the answer. When the owner cannot be reached or
   * does not answer, what it did is unknown. With `requestId` (a request-reply this worker
   * minted an id for, sent as REQUEST_ID_HEADER), the client hears 202 with the Location to
   * poll: the partition's next owner answers there from what was committed, the reply or 404
   * if the request was never taken (then sending it again is safe). Otherwise it hears 503
   * with Retry-After: a retry with the same Idempotency-Key is safe.
   */
  forward(
    ownerUrl: string,
    req: IncomingMessage,
    body: Uint8Array | undefined,
    res: ServerResponse,
    waitMs: number,
    requestId?: string,
  ): Promise<void> {
    return forwardRequest(this.#agent, ownerUrl, req, body, res, waitMs, requestId);
  }

  async close(): Promise<void> {
    await this.#agent.close();
  }
}

async function forwardRequest(
  agent: Agent,
  ownerUrl: string,
  req: IncomingMessage,
  body: Uint8Array | undefined,
  res: ServerResponse,
  waitMs: number,
  requestId: string | undefined,
): Promise<void> {
  const headers: Record<string, string> = { [FORWARDED_HEADER]: "1" };
  if (requestId !== undefined) headers[REQUEST_ID_HEADER] = requestId;
  for (const name of FORWARDED_REQUEST_HEADERS) {
    const value = req.headers[name];
    if (typeof value === "string") headers[name] = value;
  }
  const timeoutMs = waitMs + FORWARD_SLACK_MS;
  let answer: Awaited<ReturnType<typeof request>>;
  let bytes: Buffer;
  try {
    answer = await request(ownerTarget(ownerUrl, req.url), {
      method: req.method === "POST" ? "POST" : req.method === "GET" ? "GET" : "PUT",
      headers,
      ...(body === undefined ? {} : { body }),
      dispatcher: agent,
      headersTimeout: timeoutMs,
      bodyTimeout: timeoutMs,
    });
    // An owner gone while sending its answer's body did not answer either: 503, never a 500.
    bytes = Buffer.from(await answer.body.arrayBuffer());
  } catch (error) {
    if (requestId !== undefined) {
      const location = `${REPLIES_PATH}${encodeURIComponent(requestId)}`;
      res.setHeader("location", location);
      replyText(
        res,
        202,
        `the worker that runs this (${ownerUrl}) did not answer (${errorMessage(error)}); it may have taken the request: GET ${location} for its reply (404 there: it was not taken, send it again)`,
      );
      return;
    }
    res.setHeader("retry-after", String(RETRY_AFTER_SECONDS));
    replyText(res, 503, `the worker that runs this (${ownerUrl}) did not answer: ${errorMessage(error)}`);
    return;
  }
  const relayed: Record<string, string> = { "content-length": String(bytes.length) };
  for (const name of RELAYED_RESPONSE_HEADERS) {
    const value = answer.headers[name];
    if (typeof value === "string") relayed[name] = value;
  }
  res.writeHead(answer.statusCode, relayed);
  res.end(bytes);
}

/**
 * The owner's origin with the request's path and query: never whatever else the path might
 * resolve to (an absolute URL in the request line would otherwise pick the host).
 */
function ownerTarget(ownerUrl: string, path: string | undefined): URL {
  const target = new URL(ownerUrl);
  const whole = path ?? "/";
  const queryAt = whole.indexOf("?");
  const pathname = queryAt < 0 ? whole : whole.slice(0, queryAt);
  target.pathname = pathname.startsWith("/") ? pathname : `/${pathname}`;
  target.search = queryAt < 0 ? "" : whole.slice(queryAt);
  return target;
}
