// The StateFun playground HTTP ingress (io.statefun.playground.v1/ingress): PUT or POST
// /<namespace>/<type>/<id> with the message as the body and its typename in
// `Content-Type: application/vnd.<typename>` (default io.statefun.types/string, bytes as
// they are, as StateFun's playground does; text/plain and application/json are read as
// typed-body.ts says). The reply is sent only once the message is durable: 200 means it
// will be processed, exactly once.
//
// Eddy's additions:
// - `Idempotency-Key`: a request retried with the same key (for the same address) is
//   delivered at most once, and gets the same answer.
// - Request-reply: with `Prefer: wait=<seconds>` the message's caller is a reply address
//   standing for this request, and the first message the function sends to it is the
//   response (200), once that reply is durable. No reply within the wait: 202 with a
//   Location to poll (`GET /replies/<request id>`, which takes `Prefer: wait` too); the
//   message is processed exactly once either way.
// - In a cluster: GET /dead-letters and POST /dead-letters/replay, the worker's dead letters
//   (dead-letter-routes.ts; one or two segments, so never a function's path), and POST
//   /playground-egress/<topic>, a record of the playground egress this worker holds, for the
//   egress of another worker (egress-routes.ts).
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { FunctionTypename } from "../../core/address.ts";
import type { ReplyLookup, RequestSink } from "../../engine/ports.ts";
import type { Tracer } from "../../engine/tracer.ts";
import { formatBytes, readBody } from "../http-body.ts";
import { authorize, closeServer, listenOn, replyText } from "../http-server.ts";
import { argumentFromBody, replyBody } from "../typed-body.ts";
import { isDeadLetterPath, serveDeadLetters } from "./dead-letter-routes.ts";
import { isEgressPopPath, serveEgressPop } from "./egress-routes.ts";
import {
  FORWARDED_HEADER,
  Forwarder,
  type IngressRouting,
  MINTED_REQUEST_ID,
  mintRequestId,
  REPLIES_PATH,
  REQUEST_ID_HEADER,
} from "./forwarding.ts";

export interface PlaygroundIngressOptions {
  readonly port: number;
  readonly host: string;
  readonly maxBodyBytes: number;
  /** Requests must carry `Authorization: Bearer <token>` when set. */
  readonly token?: string;
  /**
   * Resolves once everything committed so far is in a checkpoint (--ack-after-checkpoint):
   * a message is then acknowledged only once it would survive the loss of the disk.
   */
  readonly checkpointed?: () => Promise<void>;
  /**
   * How long a request is held while there is no room for it (the memory budget, or its
   * address's backlog, is full) before it is answered 503 with Retry-After; default 10 s.
   */
  readonly holdMs?: number;
  /** In a cluster: where requests for instances other workers run go (forwarding.ts). */
  readonly routing?: IngressRouting;
  /**
   * Listen with SO_REUSEPORT: partition threads each listen on the one port, and the kernel
   * spreads the connections over them (threads/partition-thread.ts).
   */
  readonly reusePort?: boolean;
  /** Told the status of every answered request (metrics). */
  readonly answered?: (status: number) => void;
  /**
   * Traces: a span per accepted message ("accept io.statefun.playground/ingress"), continuing
   * the request's `traceparent`; the message carries it on. Absent: tracing is off.
   */
  readonly tracer?: Tracer;
}

export const INGRESS_HOLD_MS_DEFAULT = 10_000;

/** The ingress's id, as the log, the metrics and the traces name it (the module gives it none). */
export const PLAYGROUND_INGRESS_ID = "io.statefun.playground/ingress";

/** Seconds a client is told to wait (Retry-After) after a 503 for want of room. */
const RETRY_AFTER_SECONDS = 1;

/** The longest `Prefer: wait` honoured, in seconds (longer asks wait this long). */
const MAX_WAIT_SECONDS = 300;

/**
 * The seconds of a `Prefer: wait=<seconds>` preference (RFC 7240), if the header has one:
 * undefined when absent, an error message when malformed.
 */
function preferredWait(header: string | string[] | undefined): number | string | undefined {
  const values = Array.isArray(header) ? header : header === undefined ? [] : [header];
  for (const value of values) {
    for (const preference of value.split(",")) {
      const [name = "", ...rest] = preference.split("=");
      if (name.trim().toLowerCase() !== "wait") continue;
      const seconds = rest
        .join("=")
        .trim()
        .replace(/^"(.*)"$/, "$1");
      if (!/^\d+(\.\d+)?$/.test(seconds)) return `Prefer: wait=${seconds} is not a number of seconds`;
      return Math.min(Number(seconds), MAX_WAIT_SECONDS);
    }
  }
  return undefined;
}

type Target = { ok: true; typename: FunctionTypename; id: string } | { ok: false; message: string };

function parseTarget(url: string): Target {
  const path = url.split("?")[0] ?? "";
  const parts = path.split("/").slice(1);
  if (parts.length !== 3 || parts.some((part) => part === "")) {
    return { ok: false, message: `path ${path} is not /<namespace>/<type>/<id>` };
  }
  try {
    const [namespace, type, id] = parts.map((part) => decodeURIComponent(part)) as [string, string, string];
    return { ok: true, typename: `${namespace}/${type}` as FunctionTypename, id };
  } catch {
    return { ok: false, message: `path ${path} has a malformed %-escape` };
  }
}

export class PlaygroundIngress {
  readonly #server: Server;
  readonly #engine: RequestSink;
  readonly #options: PlaygroundIngressOptions;
  readonly #forwarder: Forwarder | undefined;

  constructor(engine: RequestSink, options: PlaygroundIngressOptions) {
    this.#engine = engine;
    this.#options = options;
    this.#forwarder = options.routing === undefined ? undefined : new Forwarder();
    const answered = options.answered;
    this.#server = createServer((req, res) => {
      if (answered !== undefined) res.once("finish", () => answered(res.statusCode));
      this.#handle(req, res).catch((error: unknown) => replyText(res, 500, `ingress error: ${String(error)}`));
    });
  }

  listen(): Promise<string> {
    return listenOn(this.#server, this.#options.port, this.#options.host, this.#options.reusePort === true);
  }

  async close(): Promise<void> {
    await closeServer(this.#server);
    await this.#forwarder?.close();
  }

  /**
   * Where a request goes in a cluster: undefined to take it here; true when it was answered
   * (forwarded to the owner, or 503 while nobody owns it yet). A request another worker
   * forwarded is always taken here.
   */
  async #routed(
    req: IncomingMessage,
    res: ServerResponse,
    owner: string | null | undefined,
    body: Uint8Array | undefined,
    waitMs: number,
    mint = false,
  ): Promise<true | undefined> {
    if (owner === undefined || this.#forwarder === undefined || req.headers[FORWARDED_HEADER] !== undefined) {
      return undefined;
    }
    if (owner === null) {
      res.setHeader("retry-after", String(RETRY_AFTER_SECONDS));
      replyText(res, 503, "the cluster is moving this instance to a worker; send again");
      return true;
    }
    const routing = this.#options.routing as IngressRouting;
    const requestId = mint ? mintRequestId(routing, owner, Date.now()) : undefined;
    await this.#forwarder.forward(owner, req, body, res, waitMs, requestId);
    return true;
  }

  async #handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const startedAt = performance.now();
    if (!authorize(req, res, this.#options.token)) return;
    if (isDeadLetterPath(req.url)) {
      await serveDeadLetters(req, res, this.#options.routing?.deadLetters, this.#options.maxBodyBytes);
      return;
    }
    if (isEgressPopPath(req.url)) {
      await serveEgressPop(req, res, this.#options.routing?.playgroundEgress);
      return;
    }
    const wait = preferredWait(req.headers.prefer);
    if (typeof wait === "string") {
      replyText(res, 400, wait);
      return;
    }
    if (req.method === "GET" && req.url?.startsWith(REPLIES_PATH)) {
      await this.#poll(req, res, wait ?? 0);
      return;
    }
    if (req.method !== "PUT" && req.method !== "POST") {
      replyText(
        res,
        405,
        `${req.method} is not supported; send PUT or POST /<namespace>/<type>/<id>, or GET ${REPLIES_PATH}<request id>`,
      );
      return;
    }
    const target = parseTarget(req.url ?? "/");
    if (!target.ok) {
      replyText(res, 400, target.message);
      return;
    }
    const read = await readBody(req, this.#options.maxBodyBytes);
    const idempotencyKey = req.headers["idempotency-key"];
    const keyed = typeof idempotencyKey === "string" && idempotencyKey !== "";
    if (read.ok && this.#options.routing !== undefined) {
      const owner = this.#options.routing.ownerOfTarget({ typename: target.typename, id: target.id });
      // A request-reply without a key cannot be sent again safely: it goes with an id of its
      // own, so that its client can poll for it whatever happens to the owner (forwarding.ts).
      const mint = wait !== undefined && !keyed;
      if ((await this.#routed(req, res, owner, read.body, (wait ?? 0) * 1000, mint)) === true) return;
    }
    if (!read.ok) {
      // Names the limit and the flag that raises it: the sender cannot see Eddy's command line.
      replyText(res, 413, `request body larger than ${formatBytes(this.#options.maxBodyBytes)} (--ingress-body-limit)`);
      return;
    }
    const argument = argumentFromBody(req.headers["content-type"], read.body);
    if (!argument.ok) {
      replyText(res, argument.status, argument.message);
      return;
    }
    const minted = forwardedRequestId(req);
    const address = { typename: target.typename, id: target.id };
    const span = this.#options.tracer?.start(`accept ${PLAYGROUND_INGRESS_ID}`, "server", traceparentOf(req), {
      "eddy.ingress": PLAYGROUND_INGRESS_ID,
      "eddy.address": `${target.typename}/${target.id}`,
    });
    const accepted = await this.#engine.accept(
      span === undefined
        ? { target: address, argument: argument.argument }
        : { target: address, argument: argument.argument, trace: span.traceparent },
      {
        ...(keyed ? { idempotencyKey } : {}),
        ...(wait === undefined ? {} : { expectReply: true, replyWaitMs: wait * 1000 }),
        ...(wait === undefined || minted === undefined ? {} : { requestId: minted }),
        holdMs: this.#options.holdMs ?? INGRESS_HOLD_MS_DEFAULT,
      },
    );
    span?.end(accepted.ok ? undefined : accepted.message);
    if (!accepted.ok) {
      // Overloaded, its commit aborted, or its target's partition run by another worker (a cluster,
      // until requests are forwarded): nothing was taken, so the client may send it again.
      if (accepted.code === "overloaded" || accepted.code === "commit-aborted" || accepted.code === "not-owner") {
        res.setHeader("retry-after", String(RETRY_AFTER_SECONDS));
      }
      replyText(res, accepted.code === "unknown-function" ? 404 : 503, accepted.message);
      return;
    }
    if (wait === undefined || accepted.requestId === undefined) {
      // Fire-and-forget, or a retry of a request that did not wait for a reply the first time.
      await this.#options.checkpointed?.();
      replyText(res, 200, accepted.duplicate ? "accepted before (same Idempotency-Key)" : "accepted");
      return;
    }
    const leftMs = wait * 1000 - (performance.now() - startedAt);
    const lookup = await this.#engine.awaitReply(accepted.requestId, leftMs);
    await this.#options.checkpointed?.();
    // Taken, and its partition moved during the wait: the client polls where it went.
    this.#answer(req, res, accepted.requestId, lookup.state === "elsewhere" ? { state: "pending" } : lookup);
  }

  /** GET /replies/<request id>: the reply if it is there (waiting up to `wait` seconds for it). */
  async #poll(req: IncomingMessage, res: ServerResponse, wait: number): Promise<void> {
    const raw = (req.url ?? "").slice(REPLIES_PATH.length).split("?")[0] ?? "";
    let requestId = "";
    try {
      requestId = decodeURIComponent(raw);
    } catch {
      // a malformed %-escape: answered below like any other path that names no request
    }
    if (requestId === "" || requestId.includes("/")) {
      replyText(res, 400, `expected GET ${REPLIES_PATH}<request id>`);
      return;
    }
    if (this.#options.routing !== undefined) {
      const owner = this.#options.routing.ownerOfRequest(requestId);
      if ((await this.#routed(req, res, owner, undefined, wait * 1000)) === true) return;
    }
    const lookup = await this.#engine.awaitReply(requestId, wait * 1000);
    await this.#options.checkpointed?.();
    this.#answer(req, res, requestId, lookup);
  }

  #answer(req: IncomingMessage, res: ServerResponse, requestId: string, lookup: ReplyLookup): void {
    const location = `${REPLIES_PATH}${encodeURIComponent(requestId)}`;
    switch (lookup.state) {
      case "answered": {
        const { contentType, body } = replyBody(lookup.value, req.headers.accept);
        res.writeHead(200, {
          "content-type": contentType,
          "content-length": body.length,
          "eddy-typename": lookup.value.typename,
          "content-location": location,
        });
        res.end(body);
        return;
      }
      case "pending":
        res.setHeader("location", location);
        replyText(res, 202, `accepted; no reply yet: GET ${location} for it (Prefer: wait=<seconds> to wait)`);
        return;
      case "elsewhere":
        // Its partition is being restored here, or just moved: the client asks again.
        res.setHeader("retry-after", String(RETRY_AFTER_SECONDS));
        replyText(res, 503, `request ${requestId}: its partition is moving between workers; ask again`);
        return;
      case "unknown":
        replyText(res, 404, `no request ${requestId}: never accepted, or its reply is past the retention`);
        return;
    }
  }
}

/** The request id the forwarding worker minted for this request, if it is one (REQUEST_ID_HEADER). */
/** The request's W3C `traceparent`, if it has one (the tracer checks its form). */
function traceparentOf(req: IncomingMessage): string | undefined {
  const header = req.headers.traceparent;
  return typeof header === "string" ? header : undefined;
}

function forwardedRequestId(req: IncomingMessage): string | undefined {
  if (req.headers[FORWARDED_HEADER] === undefined) return undefined;
  const value = req.headers[REQUEST_ID_HEADER];
  return typeof value === "string" && MINTED_REQUEST_ID.test(value) ? value : undefined;
}
