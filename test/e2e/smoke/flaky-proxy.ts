// An HTTP proxy in front of a function server that misbehaves on purpose, seeded: some
// requests get a 503, some stall before being forwarded, some have their connection cut
// mid-request, and at times the function server is "down" (every request refused) for a
// while. The runtime must ride all of it out without losing or duplicating an effect.
import { createServer, request, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { Random } from "./commands.ts";

export interface FlakyProxy {
  readonly url: string;
  readonly counts: { forwarded: number; unavailable: number; stalled: number; cut: number; down: number };
  /**
   * Refuses every request for `ms` (the function server is down), counted from the next
   * request: an outage that fell where no request came (Eddy killed and starting again)
   * would test nothing.
   */
  takeDown(ms: number): void;
  close(): Promise<void>;
}

export async function flakyProxy(targetUrl: string, seed: number): Promise<FlakyProxy> {
  const target = new URL(targetUrl);
  const random = new Random(seed);
  const counts = { forwarded: 0, unavailable: 0, stalled: 0, cut: 0, down: 0 };
  let downUntil = 0;
  let outageMs = 0;
  const server: Server = createServer((req, res) => {
    if (outageMs > 0) {
      downUntil = Date.now() + outageMs;
      outageMs = 0;
    }
    if (Date.now() < downUntil) {
      counts.down++;
      req.socket.destroy();
      return;
    }
    const roll = random.next();
    if (roll < 0.05) {
      counts.unavailable++;
      req.resume();
      res.writeHead(503, { "content-type": "text/plain" }).end("injected 503");
      return;
    }
    if (roll < 0.08) {
      counts.cut++;
      req.socket.destroy();
      return;
    }
    const delayMs = roll < 0.12 ? 200 + random.int(600) : 0;
    if (delayMs > 0) counts.stalled++;
    const chunks: Buffer[] = [];
    req.on("data", (chunk: Buffer) => chunks.push(chunk));
    req.on("end", () => {
      setTimeout(() => {
        counts.forwarded++;
        const upstream = request(
          { host: target.hostname, port: target.port, path: req.url, method: req.method, headers: req.headers },
          (reply) => {
            res.writeHead(reply.statusCode ?? 502, reply.headers);
            reply.pipe(res);
          },
        );
        upstream.on("error", () => res.destroy());
        upstream.end(Buffer.concat(chunks));
      }, delayMs);
    });
  });
  await new Promise<void>((done) => server.listen(0, "127.0.0.1", done));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/`,
    counts,
    takeDown(ms) {
      outageMs = ms;
    },
    close: () =>
      new Promise<void>((done) => {
        server.closeAllConnections();
        server.close(() => done());
      }),
  };
}
