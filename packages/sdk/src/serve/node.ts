// node:http adapter: a (req, res) handler, also usable as Express/Connect middleware,
// and serve() to start a server. Bodies over the limit are refused with 413 while
// being read, so an oversized request cannot grow memory.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import type { Endpoint } from "../endpoint.ts";
import type { SigningKey } from "../signature.ts";
import {
  DEFAULT_MAX_BODY_BYTES,
  errorReply,
  type HttpReply,
  methodNotAllowedReply,
  responder,
  SIGNATURE_HEADER,
  tooLargeReply,
} from "./http-reply.ts";

export interface HandlerOptions {
  /** Largest accepted request body; default 32 MiB. */
  readonly maxBodyBytes?: number;
  /**
   * The key(s) the runtime signs requests with (`signing_key` of the endpoint's transport in
   * module.yaml). When given, requests without a valid Eddy-Signature are refused with 401.
   */
  readonly signingKeys?: SigningKey | readonly SigningKey[];
  /**
   * Announce and accept Eddy's multi-address requests (the calls of several addresses in one
   * request; other runtimes never send them); default true. False keeps the standard
   * StateFun protocol only: no announcement, and such requests are refused with 415.
   */
  readonly multiAddress?: boolean;
}

type ReadBody = { ok: true; body: Uint8Array } | { ok: false; reply: HttpReply };

function readBody(req: IncomingMessage, maxBodyBytes: number): Promise<ReadBody> {
  // Express's raw() parser (or similar) may already have read the body.
  const parsed = (req as { body?: unknown }).body;
  if (parsed instanceof Uint8Array) {
    return Promise.resolve(
      parsed.length > maxBodyBytes ? { ok: false, reply: tooLargeReply(maxBodyBytes) } : { ok: true, body: parsed },
    );
  }
  if (req.readableEnded) {
    // Another body parser (express.json(), express.text(), ...) consumed the stream: waiting would hang.
    return Promise.resolve({
      ok: false,
      reply: errorReply(
        500,
        `the request body was already read by another body parser (req.body is ${parsed === null ? "null" : typeof parsed}); mount this handler before that parser or put express.raw({ type: "*/*" }) in front of it`,
      ),
    });
  }
  const declared = Number(req.headers["content-length"]);
  if (declared > maxBodyBytes) {
    req.resume();
    return Promise.resolve({ ok: false, reply: tooLargeReply(maxBodyBytes) });
  }
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let refused = false;
    req.on("data", (chunk: Buffer) => {
      if (refused) return;
      size += chunk.length;
      if (size > maxBodyBytes) {
        refused = true;
        chunks.length = 0;
        resolve({ ok: false, reply: tooLargeReply(maxBodyBytes) });
        return;
      }
      chunks.push(chunk);
    });
    req.on("end", () => {
      if (!refused)
        resolve({ ok: true, body: chunks.length === 1 ? (chunks[0] as Buffer) : Buffer.concat(chunks, size) });
    });
    req.on("error", reject);
  });
}

function send(res: ServerResponse, reply: HttpReply): void {
  res.writeHead(reply.status, { ...reply.headers, "content-length": reply.body.length });
  res.end(reply.body);
}

export type NodeHandler = (req: IncomingMessage, res: ServerResponse, next?: (error?: unknown) => void) => void;

/** A node:http request handler; works as Express/Connect middleware too (mount it on the path you want). */
export function nodeHandler(endpoint: Endpoint, options: HandlerOptions = {}): NodeHandler {
  const maxBodyBytes = options.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES;
  const respond = responder(endpoint, options);
  return (req, res, next) => {
    if (req.method !== "POST") {
      send(res, methodNotAllowedReply(req.method ?? "?"));
      return;
    }
    readBody(req, maxBodyBytes)
      .then((read) => {
        if (!read.ok) return read.reply;
        const signature = req.headers[SIGNATURE_HEADER];
        return respond(read.body, {
          contentType: req.headers["content-type"],
          signature: typeof signature === "string" ? signature : undefined,
        });
      })
      .then((reply) => send(res, reply))
      .catch((error: unknown) => {
        if (next !== undefined) next(error);
        else res.destroy(error instanceof Error ? error : undefined);
      });
  };
}

export interface ServeOptions extends HandlerOptions {
  /** Default 8000; 0 picks a free port. */
  readonly port?: number;
  /** Default 127.0.0.1: bind to other interfaces only when you mean to. */
  readonly host?: string;
}

export interface RunningServer {
  readonly server: Server;
  readonly url: string;
  close(): Promise<void>;
}

/** Serves the endpoint over HTTP on every path. */
export async function serve(endpoint: Endpoint, options: ServeOptions = {}): Promise<RunningServer> {
  const server = createServer({ keepAliveTimeout: 65_000 }, nodeHandler(endpoint, options));
  const host = options.host ?? "127.0.0.1";
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(options.port ?? 8000, host, () => {
      server.off("error", reject);
      resolve();
    });
  });
  const { port } = server.address() as AddressInfo;
  const shownHost = host.includes(":") ? `[${host}]` : host;
  return {
    server,
    url: `http://${shownHost}:${port}/`,
    close: () =>
      new Promise<void>((resolve, reject) => {
        server.close((error) => (error ? reject(error) : resolve()));
        server.closeIdleConnections();
      }),
  };
}
