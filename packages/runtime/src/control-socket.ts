// A running Eddy's control socket: a Unix socket in the state directory (eddy.sock, only
// its owner can connect), so the CLI can ask the process that holds the state to act on
// it: take a checkpoint or a savepoint now; and a benchmark can ask it how much memory it
// holds (POST /memory). It also answers the admin API (/v1/…, observe/admin-api.ts), which
// `eddy state`, `eddy dead-letters` and `eddy top` use: the socket's owner needs no token.
// HTTP over the socket, JSON replies.
import { chmodSync, rmSync } from "node:fs";
import { createServer, type IncomingMessage, request, type ServerResponse } from "node:http";
import { join } from "node:path";
import type { AdmissionReport } from "./engine/engine.ts";
import type { HeapGovernor } from "./heap-governor.ts";

export const CONTROL_SOCKET = "eddy.sock";

export type ControlHandler = (path: string) => Promise<{ readonly status: number; readonly body: unknown }>;

/** Answers the admin API's requests (/v1/…, any method) over the socket: the CLI's way in, with no port or token. */
export type ControlApi = (
  req: IncomingMessage,
  res: ServerResponse,
  path: string,
  query: URLSearchParams,
) => Promise<void>;

/**
 * The reply to POST /memory: the process's memory (process.memoryUsage()), the memory
 * budget's use, the log bytes of the store's writes waiting in memory for LMDB, and the heap
 * governor's target and last growing percent (when the runtime steers the heap).
 */
export interface MemoryReport {
  readonly rssBytes: number;
  readonly heapUsedBytes: number;
  readonly heapTotalBytes: number;
  readonly externalBytes: number;
  readonly arrayBuffersBytes: number;
  readonly admission: AdmissionReport;
  readonly memtableBytes: number;
  readonly heapGovernor?: { readonly targetBytes: number; readonly growingPercent: number };
}

export function memoryReport(
  admission: AdmissionReport,
  memtableBytes: number,
  governor: HeapGovernor | undefined,
): MemoryReport {
  const usage = process.memoryUsage();
  return {
    rssBytes: usage.rss,
    heapUsedBytes: usage.heapUsed,
    heapTotalBytes: usage.heapTotal,
    externalBytes: usage.external,
    arrayBuffersBytes: usage.arrayBuffers,
    admission,
    memtableBytes,
    ...(governor === undefined
      ? {}
      : { heapGovernor: { targetBytes: governor.targetBytes, growingPercent: governor.growingPercent } }),
  };
}

export interface ControlSocket {
  close(): Promise<void>;
}

export async function listenControlSocket(
  stateDir: string,
  handle: ControlHandler,
  api?: ControlApi,
): Promise<ControlSocket> {
  const path = join(stateDir, CONTROL_SOCKET);
  // Left behind by kill -9; this process holds the state directory's lock, so no one else serves it.
  rmSync(path, { force: true });
  const server = createServer((req, res) => {
    const reply = (status: number, body: unknown) => {
      res.writeHead(status, { "content-type": "application/json" });
      res.end(JSON.stringify(body));
    };
    const url = new URL(req.url ?? "/", "http://control");
    if (api !== undefined && url.pathname.startsWith("/v1/")) {
      api(req, res, url.pathname, url.searchParams).catch((error: unknown) => {
        if (res.headersSent) res.destroy();
        else reply(500, { code: "internal", message: error instanceof Error ? error.message : String(error) });
      });
      return;
    }
    if (req.method !== "POST") {
      reply(405, { error: "POST only" });
      return;
    }
    req.resume();
    handle(req.url ?? "/").then(
      (result) => reply(result.status, result.body),
      (error: unknown) => reply(500, { error: error instanceof Error ? error.message : String(error) }),
    );
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(path, () => resolve());
  });
  chmodSync(path, 0o600);
  return {
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
        rmSync(path, { force: true });
      }),
  };
}

/** Asks the Eddy running on `stateDir` to do `path`; the reply's status and JSON body. */
export function callControlSocket(stateDir: string, path: string): Promise<{ status: number; body: unknown }> {
  return new Promise((resolve, reject) => {
    const req = request({ socketPath: join(stateDir, CONTROL_SOCKET), path, method: "POST" }, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (chunk: Buffer) => chunks.push(chunk));
      res.on("end", () => {
        try {
          resolve({ status: res.statusCode ?? 0, body: JSON.parse(Buffer.concat(chunks).toString("utf8")) });
        } catch (error) {
          reject(error);
        }
      });
      res.on("error", reject);
    });
    req.on("error", reject);
    req.end();
  });
}
