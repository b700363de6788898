// The admin listener (`--admin-port`, default 8093, on the ingress's `--host`): what operators and
// their monitoring stack read from a running Eddy. Today: GET /metrics, the Prometheus metrics
// (metrics.ts). It takes the same bearer token as the ingress and egress; errors are JSON with a
// code and a message naming what was wrong.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import { bearerTokenMatches, bearerTokenRefusal, closeServer, listenOn } from "../io/http-server.ts";
import type { RuntimeMetrics } from "./metrics.ts";

export interface AdminServerOptions {
  readonly port: number;
  readonly host: string;
  /** Every request needs `Authorization: Bearer <token>` when set. */
  readonly token?: string | undefined;
  readonly metrics: RuntimeMetrics;
}

/** A refused admin request's body: `{"code": …, "message": …}`. */
export function replyError(res: ServerResponse, status: number, code: string, message: string): void {
  const body = `${JSON.stringify({ code, message })}\n`;
  res.writeHead(status, { "content-type": "application/json", "content-length": Buffer.byteLength(body) });
  res.end(body);
}

export class AdminServer {
  readonly #server: Server;
  readonly #options: AdminServerOptions;

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

  close(): Promise<void> {
    return closeServer(this.#server);
  }

  async #handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    if (!this.#authorized(req, res)) return;
    const path = (req.url ?? "/").split("?")[0] ?? "/";
    if (path === "/metrics") {
      if (req.method !== "GET" && req.method !== "HEAD") {
        res.setHeader("allow", "GET, HEAD");
        replyError(res, 405, "method-not-allowed", `${req.method} ${path}: only GET and HEAD`);
        return;
      }
      const { contentType, body } = await this.#options.metrics.exposition();
      res.writeHead(200, { "content-type": contentType, "content-length": Buffer.byteLength(body) });
      res.end(req.method === "HEAD" ? undefined : body);
      return;
    }
    replyError(res, 404, "not-found", `${req.method} ${path}: no such route (the admin listener serves /metrics)`);
  }

  #authorized(req: IncomingMessage, res: ServerResponse): boolean {
    const token = this.#options.token;
    if (token === undefined || bearerTokenMatches(req, token)) return true;
    res.setHeader("www-authenticate", 'Bearer realm="eddy"');
    replyError(res, 401, "unauthorized", bearerTokenRefusal(req));
    return false;
  }
}
