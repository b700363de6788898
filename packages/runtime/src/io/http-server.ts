// The small pieces every HTTP ingress and egress shares: listen and report the URL, close
// without waiting for idle keep-alive connections, and answer with a line of text.
import { timingSafeEqual } from "node:crypto";
import type { IncomingMessage, Server, ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";

/**
 * Listens on host:port (0 = any free port) and returns the server's base URL. With
 * `reusePort`, other listeners may share the port (SO_REUSEPORT, Linux).
 */
export async function listenOn(server: Server, port: number, host: string, reusePort = false): Promise<string> {
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen({ port, host, ...(reusePort ? { reusePort: true } : {}) }, () => {
      server.off("error", reject);
      resolve();
    });
  });
  const { port: bound } = server.address() as AddressInfo;
  return `http://${host.includes(":") ? `[${host}]` : host}:${bound}/`;
}

export function closeServer(server: Server): Promise<void> {
  return new Promise<void>((resolve) => {
    server.close(() => resolve());
    server.closeAllConnections();
  });
}

/**
 * Checks `Authorization: Bearer <token>` when the runtime has a token, answering 401 when it
 * is missing or wrong. Returns whether the request may go on.
 */
export function authorize(req: IncomingMessage, res: ServerResponse, token: string | undefined): boolean {
  if (token === undefined || bearerTokenMatches(req, token)) return true;
  res.setHeader("www-authenticate", 'Bearer realm="eddy"');
  replyText(res, 401, bearerTokenRefusal(req));
  return false;
}

/** Whether the request carries `Authorization: Bearer <token>` (compared in constant time). */
export function bearerTokenMatches(req: IncomingMessage, token: string): boolean {
  const given = Buffer.from(req.headers.authorization ?? "");
  const expected = Buffer.from(`Bearer ${token}`);
  return given.length === expected.length && timingSafeEqual(given, expected);
}

/** What a request without the right token is told. */
export function bearerTokenRefusal(req: IncomingMessage): string {
  return `${req.headers.authorization === undefined ? "missing" : "wrong"} bearer token: send Authorization: Bearer <token>`;
}

export function replyText(res: ServerResponse, status: number, text: string): void {
  const body = `${text}\n`;
  res.writeHead(status, { "content-type": "text/plain; charset=utf-8", "content-length": Buffer.byteLength(body) });
  res.end(body);
}
