// The admin listener (`--admin-port`, default 8093, on the ingress's `--host`): what operators,
// their monitoring stack, the web UI and the CLI read from a running Eddy. GET /metrics
// (Prometheus, metrics.ts), the JSON admin API under /v1/ (admin-api.ts) and its OpenAPI
// document at /openapi.json, the UI's files under /ui/, and /healthz and /readyz for probes.
// It opens before the store, so until the runtime is attached the API answers 503 not-ready.
// Every request but the probes and the UI's files takes the same bearer token as the ingress;
// errors are JSON with a code and a message naming what was wrong.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import { bearerTokenMatches, bearerTokenRefusal, closeServer, listenOn } from "../io/http-server.ts";
import {
  type AdminCall,
  AdminRefusal,
  type AdminReply,
  type AdminRuntime,
  type HttpMethod,
  matchRoute,
} from "./admin-api.ts";
import { ADMIN_FORWARDED_HEADER, answerForCluster } from "./cluster-admin.ts";
import type { RuntimeMetrics } from "./metrics.ts";
import { openApiDocument } from "./openapi.ts";
import { serveUi } from "./ui-assets.ts";

export interface AdminServerOptions {
  readonly port: number;
  readonly host: string;
  /** Every request needs `Authorization: Bearer <token>` when set. */
  readonly token?: string | undefined;
  readonly metrics: RuntimeMetrics;
  /** The version the OpenAPI document states. */
  readonly version: string;
}

const LOOPBACK = new Set(["127.0.0.1", "::1", "localhost"]);
const LOOPBACK_NAMES = new Set(["127.0.0.1", "localhost", "[::1]"]);

/** The largest request body the API reads (a state value, a list of ids). */
const BODY_BYTES_MAX = 4 * 1024 * 1024;

/** A refused admin request's body: `{"code": …, "message": …}`. */
export function replyError(res: ServerResponse, status: number, code: string, message: string): void {
  replyJson(res, status, { code, message });
}

function replyJson(res: ServerResponse, status: number, body: unknown, head = false): void {
  const text = `${JSON.stringify(body)}\n`;
  res.writeHead(status, {
    "content-type": "application/json",
    "content-length": Buffer.byteLength(text),
    "cache-control": "no-store",
  });
  res.end(head ? undefined : text);
}

/**
 * Answers an admin API request (/v1/…) for `runtime` (undefined: not started yet): what the
 * admin listener and the control socket share. Resolves once the reply is written. In a
 * cluster, the route's scope says which workers answer, unless another worker is asking.
 */
export async function answerApi(
  runtime: AdminRuntime | undefined,
  req: IncomingMessage,
  res: ServerResponse,
  path: string,
  query: URLSearchParams,
): Promise<void> {
  const method = req.method ?? "GET";
  let reply: AdminReply;
  try {
    const matched = matchRoute(method === "HEAD" ? "GET" : method, path);
    if (!("route" in matched)) {
      req.resume();
      if (matched.allowed.length > 0) {
        res.setHeader("allow", matched.allowed.join(", "));
        replyError(res, 405, "method-not-allowed", `${method} ${path}: only ${matched.allowed.join(", ")}`);
      } else {
        replyError(res, 404, "not-found", `${method} ${path}: no such route (GET /openapi.json lists them)`);
      }
      return;
    }
    if (runtime === undefined) {
      req.resume();
      replyError(res, 503, "not-ready", "the runtime is starting (restoring its state); ask again soon");
      return;
    }
    const call: AdminCall = { runtime, params: matched.params, query, body: () => readJsonBody(req) };
    const peers = runtime.peers;
    reply =
      peers === undefined || req.headers[ADMIN_FORWARDED_HEADER] !== undefined
        ? await matched.route.handle(call)
        : await answerForCluster({
            route: matched.route,
            call,
            request: {
              method: (method === "HEAD" ? "GET" : method) as HttpMethod,
              pathAndQuery: `${path}${query.size === 0 ? "" : `?${query}`}`,
              hasBody: hasBody(req),
            },
            peers,
          });
  } catch (error) {
    if (!(error instanceof AdminRefusal)) throw error;
    req.resume();
    reply = { status: error.status, body: { code: error.code, message: error.message } };
  }
  replyJson(res, reply.status, reply.body, method === "HEAD");
}

/** Whether a request comes with a body (which a call forwarded to another worker carries on). */
function hasBody(req: IncomingMessage): boolean {
  const length = req.headers["content-length"];
  return length === undefined ? req.headers["transfer-encoding"] !== undefined : Number(length) > 0;
}

async function readJsonBody(req: IncomingMessage): Promise<Record<string, unknown>> {
  const chunks: Buffer[] = [];
  let bytes = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    bytes += chunk.length;
    if (bytes > BODY_BYTES_MAX) {
      throw new AdminRefusal(413, "body-too-large", `the request body is over ${BODY_BYTES_MAX} bytes`);
    }
    chunks.push(chunk);
  }
  const text = Buffer.concat(chunks).toString("utf8");
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch (error) {
    throw new AdminRefusal(
      400,
      "bad-request",
      text === "" ? "the request needs a JSON body" : `the body is not JSON: ${(error as Error).message}`,
    );
  }
  if (typeof body !== "object" || body === null || Array.isArray(body)) {
    throw new AdminRefusal(400, "bad-request", "the body must be a JSON object");
  }
  return body as Record<string, unknown>;
}

export class AdminServer {
  readonly #server: Server;
  readonly #options: AdminServerOptions;
  #runtime: AdminRuntime | undefined;
  #openApi: string | undefined;

  constructor(options: AdminServerOptions) {
    this.#options = options;
    this.#server = createServer((req, res) => {
      this.#handle(req, res).catch((error: unknown) => {
        if (!res.headersSent) replyError(res, 500, "internal", `admin error: ${String(error)}`);
        else res.destroy();
      });
    });
  }

  /** Listens; resolves with the base URL. A port in use (or refused) rejects with the errno error. */
  listen(): Promise<string> {
    return listenOn(this.#server, this.#options.port, this.#options.host);
  }

  /** The runtime has started: the API answers for it, and /readyz says ready. */
  attach(runtime: AdminRuntime): void {
    this.#runtime = runtime;
  }

  get runtime(): AdminRuntime | undefined {
    return this.#runtime;
  }

  close(): Promise<void> {
    return closeServer(this.#server);
  }

  async #handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    if (!this.#hostAllowed(req, res)) return;
    const url = new URL(req.url ?? "/", "http://admin");
    const path = url.pathname;
    // The UI's files hold no data and a browser cannot send a bearer token to open a page: they
    // are served without one; the app sends it with every /v1/ request.
    if (await serveUi(req, res, path)) return;
    // Probes say only whether the process serves and is ready; they need no token.
    if (path === "/healthz" || path === "/readyz") {
      req.resume();
      if (!this.#readOnly(req, res, path)) return;
      if (path === "/healthz") replyJson(res, 200, { status: "ok" }, req.method === "HEAD");
      else if (this.#runtime === undefined)
        replyError(res, 503, "not-ready", "the runtime is starting (restoring its state)");
      else replyJson(res, 200, { status: "ready" }, req.method === "HEAD");
      return;
    }
    if (!this.#authorized(req, res)) return;
    if (path === "/metrics") {
      req.resume();
      if (!this.#readOnly(req, res, path)) return;
      const { contentType, body } = await this.#options.metrics.exposition();
      res.writeHead(200, { "content-type": contentType, "content-length": Buffer.byteLength(body) });
      res.end(req.method === "HEAD" ? undefined : body);
      return;
    }
    if (path === "/openapi.json") {
      req.resume();
      if (!this.#readOnly(req, res, path)) return;
      this.#openApi ??= JSON.stringify(openApiDocument(this.#options.version));
      res.writeHead(200, { "content-type": "application/json", "content-length": Buffer.byteLength(this.#openApi) });
      res.end(req.method === "HEAD" ? undefined : this.#openApi);
      return;
    }
    if (path.startsWith("/v1/")) {
      await answerApi(this.#runtime, req, res, path, url.searchParams);
      return;
    }
    req.resume();
    replyError(res, 404, "not-found", `${req.method} ${path}: no such route (GET /openapi.json lists them)`);
  }

  /**
   * On a loopback address, only requests naming a loopback host: a web page the operator opens
   * elsewhere cannot reach the API through a DNS name rebound to 127.0.0.1 (its requests carry
   * that name). Listening on another address, the token is the guard.
   */
  #hostAllowed(req: IncomingMessage, res: ServerResponse): boolean {
    if (!LOOPBACK.has(this.#options.host)) return true;
    const host = req.headers.host ?? "";
    const name = host.startsWith("[") ? host.slice(0, host.indexOf("]") + 1) : host.split(":")[0];
    if (name !== undefined && LOOPBACK_NAMES.has(name.toLowerCase())) return true;
    req.resume();
    replyError(
      res,
      403,
      "forbidden-host",
      `Host: ${host}: the admin listener on ${this.#options.host} answers only requests to a loopback name (127.0.0.1, localhost, [::1])`,
    );
    return false;
  }

  #readOnly(req: IncomingMessage, res: ServerResponse, path: string): boolean {
    if (req.method === "GET" || req.method === "HEAD") return true;
    res.setHeader("allow", "GET, HEAD");
    replyError(res, 405, "method-not-allowed", `${req.method} ${path}: only GET and HEAD`);
    return false;
  }

  #authorized(req: IncomingMessage, res: ServerResponse): boolean {
    const token = this.#options.token;
    if (token === undefined || bearerTokenMatches(req, token)) return true;
    req.resume();
    res.setHeader("www-authenticate", 'Bearer realm="eddy"');
    replyError(res, 401, "unauthorized", bearerTokenRefusal(req));
    return false;
  }
}
