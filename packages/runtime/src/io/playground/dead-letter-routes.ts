// A cluster worker's dead letters over its HTTP ingress, for `eddy dead-letters --cluster`
// (cluster/dead-letter-client.ts): in a cluster a worker's state directory is only a cache of
// the partitions it runs, so the letters are listed and replayed by the running workers, each
// for the partitions it runs now.
//
//   GET  /dead-letters         the letters of the partitions this worker runs, as committed (JSON:
//                              workerId, partitionCount, partitions, letters as `list --json`)
//   POST /dead-letters/replay  {"ids": ["<partition>-<epoch>-<count>", …]} or {"all": true}: replayed
//                              in a commit of the owning partitions, answered once it is durable
//
// Why these paths: a function's path is always exactly three segments (/<namespace>/<type>/<id>),
// so a path of one or two segments can never be a function's, whatever its names (the same
// rule keeps GET /replies/<request id> apart). They are never forwarded to another worker: each
// worker answers for itself, and the client asks every worker. They sit behind the ingress's
// bearer token like everything else it serves.
import type { IncomingMessage, ServerResponse } from "node:http";
import { type DeadLetter, deadLetterId, parseDeadLetterId } from "../../core/records.ts";
import { deadLetterToJson } from "../../dead-letters.ts";
import type { DeadLetterReplay } from "../../engine/engine.ts";
import { readBody } from "../http-body.ts";
import { replyText } from "../http-server.ts";

export const DEAD_LETTERS_PATH = "/dead-letters";
export const DEAD_LETTERS_REPLAY_PATH = "/dead-letters/replay";

/** What a cluster worker's ingress asks of the worker for these routes. */
export interface DeadLetterAdmin {
  readonly workerId: string;
  readonly partitionCount: number;
  /** The partitions the worker runs now and their letters, as committed. */
  list(): { readonly partitions: readonly number[]; readonly letters: readonly LetterOf[] };
  replay(selection: "all" | readonly { readonly partition: number; readonly seq: number }[]): Promise<DeadLetterReplay>;
}

interface LetterOf {
  readonly partition: number;
  readonly letter: DeadLetter;
}

/** GET /dead-letters's answer. */
export interface DeadLetterListing {
  readonly workerId: string;
  readonly partitionCount: number;
  /** The partitions the worker ran when it looked: the letters are all of theirs. */
  readonly partitions: readonly number[];
  readonly letters: readonly Record<string, unknown>[];
}

/** POST /dead-letters/replay's answer when it replayed. */
export interface DeadLetterReplayed {
  readonly workerId: string;
  readonly replayed: readonly Record<string, unknown>[];
}

/** Whether the request's path is one of these routes (the query aside). */
export function isDeadLetterPath(url: string | undefined): boolean {
  const path = (url ?? "").split("?")[0];
  return path === DEAD_LETTERS_PATH || path === DEAD_LETTERS_REPLAY_PATH;
}

function replyJson(res: ServerResponse, status: number, value: unknown): void {
  const body = `${JSON.stringify(value)}\n`;
  res.writeHead(status, { "content-type": "application/json", "content-length": Buffer.byteLength(body) });
  res.end(body);
}

function json(partition: number, letter: DeadLetter): Record<string, unknown> {
  return deadLetterToJson({ id: deadLetterId(partition, letter.seq), partition, letter });
}

/** Serves a request whose path isDeadLetterPath; `admin` is undefined outside a cluster. */
export async function serveDeadLetters(
  req: IncomingMessage,
  res: ServerResponse,
  admin: DeadLetterAdmin | undefined,
  maxBodyBytes: number,
): Promise<void> {
  if (admin === undefined) {
    replyText(
      res,
      404,
      "dead letters are served over HTTP by cluster workers only; here use eddy dead-letters list|replay --state-dir DIR",
    );
    return;
  }
  const path = (req.url ?? "").split("?")[0];
  if (path === DEAD_LETTERS_PATH) {
    if (req.method !== "GET") {
      replyText(
        res,
        405,
        `${req.method} ${DEAD_LETTERS_PATH} is not supported; GET it, or POST ${DEAD_LETTERS_REPLAY_PATH}`,
      );
      return;
    }
    const { partitions, letters } = admin.list();
    const listing: DeadLetterListing = {
      workerId: admin.workerId,
      partitionCount: admin.partitionCount,
      partitions,
      letters: letters.map(({ partition, letter }) => json(partition, letter)),
    };
    replyJson(res, 200, listing);
    return;
  }
  if (req.method !== "POST") {
    replyText(
      res,
      405,
      `${req.method} ${DEAD_LETTERS_REPLAY_PATH} is not supported; POST {"ids": [...]} or {"all": true}`,
    );
    return;
  }
  const read = await readBody(req, maxBodyBytes);
  if (!read.ok) {
    replyText(res, 413, "request body too large");
    return;
  }
  const selection = parseSelection(Buffer.from(read.body).toString("utf8"));
  if (typeof selection === "object" && "error" in selection) {
    replyText(res, 400, selection.error);
    return;
  }
  const result = await admin.replay(selection);
  if (result.ok) {
    const replayed: DeadLetterReplayed = {
      workerId: admin.workerId,
      replayed: result.replayed.map(({ partition, letter }) => json(partition, letter)),
    };
    replyJson(res, 200, replayed);
    return;
  }
  switch (result.code) {
    case "not-owner":
      replyJson(res, 409, { workerId: admin.workerId, error: result.message, partitions: result.partitions });
      return;
    case "no-letter":
      replyJson(res, 404, {
        workerId: admin.workerId,
        error: result.message,
        missing: result.missing.map(({ partition, seq }) => deadLetterId(partition, seq)),
      });
      return;
    default:
      res.setHeader("retry-after", "1");
      replyJson(res, 503, { workerId: admin.workerId, error: result.message });
  }
}

/** The body of a replay: `{"all": true}` or `{"ids": [...]}`, or what is wrong with it. */
function parseSelection(text: string): "all" | { partition: number; seq: number }[] | { error: string } {
  const expected = 'expected {"ids": ["<partition>-<epoch>-<count>", ...]} or {"all": true}';
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    return { error: `the body is not JSON: ${expected}` };
  }
  const { all, ids } = (typeof body === "object" && body !== null ? body : {}) as Record<string, unknown>;
  if (all === true && ids === undefined) return "all";
  if (all !== undefined || !Array.isArray(ids) || ids.length === 0) return { error: expected };
  const selection: { partition: number; seq: number }[] = [];
  for (const id of ids) {
    const key = typeof id === "string" ? parseDeadLetterId(id) : undefined;
    if (key === undefined) return { error: `${JSON.stringify(id)} is not a dead letter id: ${expected}` };
    selection.push(key);
  }
  return selection;
}
