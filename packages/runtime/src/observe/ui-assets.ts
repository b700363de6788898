// The web UI's files, served by the admin listener under /ui/: the static app in
// packages/runtime/ui (plain ES modules, no build step) and uPlot's files from node_modules, so
// the UI works offline. Only files listed when the module first serves are ever read: a request
// path is looked up in that list, never joined onto a directory, so no path can escape it.
// The files hold no data (the app asks /v1/ for that, with the token), so they need no token.
import { createHash } from "node:crypto";
import { readdir, readFile } from "node:fs/promises";
import type { IncomingMessage, ServerResponse } from "node:http";
import { dirname, extname, join, relative, sep } from "node:path";
import { fileURLToPath } from "node:url";

/** The prefix every UI path starts with; `/ui` alone redirects here. */
export const UI_PREFIX = "/ui/";

const UI_DIR = fileURLToPath(new URL("../../ui/", import.meta.url));

const CONTENT_TYPES: Readonly<Record<string, string>> = {
  ".html": "text/html; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
  ".css": "text/css; charset=utf-8",
  ".svg": "image/svg+xml",
  ".png": "image/png",
  ".ico": "image/x-icon",
};

// The app talks only to the listener that served it; nothing may frame it (its buttons edit
// state and replay dead letters, so a page must not overlay them: clickjacking).
const SECURITY_HEADERS: Readonly<Record<string, string>> = {
  "content-security-policy":
    "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'",
  "x-content-type-options": "nosniff",
  "referrer-policy": "no-referrer",
  "x-frame-options": "DENY",
};

/** A UI file as it is served: read once, its ETag a hash of its bytes. */
interface Asset {
  readonly body: Buffer;
  readonly contentType: string;
  readonly etag: string;
}

/** What a request under /ui answers, before it is written to a response. */
export type UiReply =
  | { readonly status: 200; readonly headers: Readonly<Record<string, string>>; readonly body: Buffer }
  | { readonly status: 304 | 308; readonly headers: Readonly<Record<string, string>> }
  | { readonly status: 400 | 404 | 405; readonly code: string; readonly message: string };

/** Where each servable UI path (relative to /ui/) is on disk. */
let catalog: Promise<ReadonlyMap<string, string>> | undefined;
const loaded = new Map<string, Promise<Asset>>();

async function listFiles(): Promise<ReadonlyMap<string, string>> {
  const files = new Map<string, string>();
  for (const entry of await readdir(UI_DIR, { recursive: true, withFileTypes: true })) {
    if (!entry.isFile() || entry.name.startsWith(".")) continue;
    const file = join(entry.parentPath, entry.name);
    if (CONTENT_TYPES[extname(file)] === undefined) continue;
    files.set(relative(UI_DIR, file).split(sep).join("/"), file);
  }
  // uPlot from this package's node_modules (resolved as Node would, so hoisting does not matter).
  const uplotEsm = fileURLToPath(import.meta.resolve("uplot/dist/uPlot.esm.js"));
  files.set("vendor/uPlot.esm.js", uplotEsm);
  files.set("vendor/uPlot.min.css", join(dirname(uplotEsm), "uPlot.min.css"));
  return files;
}

function load(file: string): Promise<Asset> {
  let asset = loaded.get(file);
  if (asset === undefined) {
    asset = readFile(file).then((body) => ({
      body,
      contentType: CONTENT_TYPES[extname(file)] ?? "application/octet-stream",
      etag: `"${createHash("sha256").update(body).digest("base64url").slice(0, 22)}"`,
    }));
    // A failed read is not remembered: the next request tries again.
    asset.catch(() => loaded.delete(file));
    loaded.set(file, asset);
  }
  return asset;
}

/**
 * What `method path` answers (path without the query), or undefined when the path is not the
 * UI's. `ifNoneMatch` is the request's If-None-Match header.
 */
export async function uiReply(method: string, path: string, ifNoneMatch?: string): Promise<UiReply | undefined> {
  if (path !== "/ui" && !path.startsWith(UI_PREFIX)) return undefined;
  if (method !== "GET" && method !== "HEAD") {
    return { status: 405, code: "method-not-allowed", message: `${method} ${path}: the UI's files take GET and HEAD` };
  }
  // Relative, so that behind a proxy that mounts Eddy under /eddy/, /eddy/ui goes to /eddy/ui/.
  if (path === "/ui") return { status: 308, headers: { location: "ui/" } };
  let name: string;
  try {
    name = decodeURIComponent(path.slice(UI_PREFIX.length));
  } catch {
    return { status: 400, code: "bad-request", message: `${path}: malformed percent-encoding` };
  }
  if (name === "") name = "index.html";
  catalog ??= listFiles().catch((error: unknown) => {
    catalog = undefined;
    throw error;
  });
  const file = (await catalog).get(name);
  if (file === undefined) return { status: 404, code: "not-found", message: `${path}: no such file of the UI` };
  const asset = await load(file);
  // Revalidated on every load (no-cache) but answered 304 while unchanged: an upgraded Eddy never
  // mixes old and new modules, and a reload over a slow link costs a round trip per file.
  const headers = { "cache-control": "no-cache", etag: asset.etag, ...SECURITY_HEADERS };
  if (ifNoneMatch?.split(/\s*,\s*/).includes(asset.etag)) {
    return { status: 304, headers };
  }
  return {
    status: 200,
    headers: { ...headers, "content-type": asset.contentType, "content-length": String(asset.body.length) },
    body: asset.body,
  };
}

/**
 * Answers a request for the UI and returns true, or returns false (and writes nothing) when its
 * path is not the UI's. Errors are the admin API's JSON `{"code", "message"}`.
 */
export async function serveUi(req: IncomingMessage, res: ServerResponse, path: string): Promise<boolean> {
  const method = req.method ?? "GET";
  const reply = await uiReply(method, path, req.headers["if-none-match"]);
  if (reply === undefined) return false;
  if ("code" in reply) {
    const body = `${JSON.stringify({ code: reply.code, message: reply.message })}\n`;
    if (reply.status === 405) res.setHeader("allow", "GET, HEAD");
    res.writeHead(reply.status, { "content-type": "application/json", "content-length": Buffer.byteLength(body) });
    res.end(body);
  } else {
    res.writeHead(reply.status, reply.headers);
    res.end(reply.status === 200 && method !== "HEAD" ? reply.body : undefined);
  }
  return true;
}
