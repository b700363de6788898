// How the CLI talks to a running Eddy's admin API (docs/admin-api.md): over the control socket
// in its state directory (on the machine: no port, no token), or at --admin URL with the bearer
// token of --token-file / EDDY_TOKEN. Every answer is JSON; an error answer ({code, message})
// becomes an AdminError carrying the code, so a command can react to one and main prints it in
// one line. Only answers that promise nothing happened are asked again (RETRIED_CODES).
import { request as httpRequest, type IncomingMessage, type RequestOptions } from "node:http";
import { request as httpsRequest } from "node:https";
import { join } from "node:path";
import { readToken } from "./token.ts";
import { CommandError, UsageError } from "./usage.ts";

/** The options every command that reaches a running Eddy takes. */
export const ADMIN_CLIENT_OPTIONS = {
  "state-dir": { type: "string" },
  admin: { type: "string" },
  "token-file": { type: "string" },
} as const;

const STATE_DIR_DEFAULT = "eddy-state";
/**
 * The runtime's CONTROL_SOCKET (control-socket.ts), written out: importing @eddy/runtime costs
 * `eddy state` and `eddy top` about a second of loading for one name. A test holds the two equal.
 */
export const CONTROL_SOCKET_NAME = "eddy.sock";
/** Long enough for a state write that waits for the address's batch in flight. */
const REQUEST_TIMEOUT_MS_DEFAULT = 60_000;
/**
 * Answers that promise nothing happened, asked again a few times: a refused commit, and an Eddy
 * still starting (its socket answers before its store is open).
 */
const RETRIED_CODES: ReadonlySet<string> = new Set(["commit-aborted", "not-ready"]);
const RETRIES_MAX = 3;
const RETRY_BACKOFF_MS = 200;

/** An error answer of the admin API: its HTTP status and code, the message as the API wrote it. */
export class AdminError extends CommandError {
  override name = "AdminError";
  readonly status: number;
  readonly code: string;
  constructor(status: number, code: string, message: string) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

export type HttpMethod = "GET" | "PUT" | "POST" | "DELETE";

export interface AdminClient {
  /** Where the Eddy is, for messages: "the Eddy on DIR" or the admin URL. */
  readonly where: string;
  /** The JSON answer of `method path` (path starting `/v1/…`); throws AdminError or CommandError. */
  call<T>(method: HttpMethod, path: string, body?: unknown, timeoutMs?: number): Promise<T>;
}

interface Answer {
  readonly status: number;
  readonly text: string;
}

/** One HTTP exchange: the only part that differs between the socket and a URL. */
type Transport = (method: HttpMethod, path: string, body: string | undefined, timeoutMs: number) => Promise<Answer>;

export interface AdminClientValues {
  readonly "state-dir"?: string | undefined;
  readonly admin?: string | undefined;
  readonly "token-file"?: string | undefined;
}

/** Whether the command line names an Eddy to reach by its API (--admin), rather than a state directory. */
export function namesAdminUrl(values: AdminClientValues): boolean {
  return values.admin !== undefined;
}

/**
 * The client for the Eddy the command line names: --admin URL, else the one running on
 * --state-dir. `pid`: the process that runs on the state directory, when the caller knows it
 * (for messages).
 */
export function adminClient(values: AdminClientValues, pid?: number): AdminClient {
  if (values.admin !== undefined) {
    if (values["state-dir"] !== undefined) {
      throw new UsageError("give either --state-dir DIR (the Eddy on this machine) or --admin URL, not both");
    }
    const base = parseAdminUrl(values.admin);
    const token = readToken(values["token-file"]);
    return client(base, urlTransport(base, token), token !== undefined);
  }
  if (values["token-file"] !== undefined) {
    throw new UsageError("--token-file is for --admin URL; the control socket in the state directory needs none");
  }
  const stateDir = values["state-dir"] ?? STATE_DIR_DEFAULT;
  const where = `the Eddy on ${stateDir}${pid === undefined ? "" : ` (process ${pid})`}`;
  return client(where, socketTransport(stateDir, where), true);
}

function parseAdminUrl(text: string): string {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new UsageError(`--admin ${text}: expected the admin listener's URL, such as http://127.0.0.1:8093`);
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") {
    throw new UsageError(`--admin ${text}: expected an http:// or https:// URL`);
  }
  return `${url.origin}${url.pathname.replace(/\/+$/, "")}`;
}

function client(where: string, transport: Transport, hasToken: boolean): AdminClient {
  return {
    where,
    async call<T>(method: HttpMethod, path: string, body?: unknown, timeoutMs = REQUEST_TIMEOUT_MS_DEFAULT) {
      const text = body === undefined ? undefined : JSON.stringify(body);
      for (let attempt = 0; ; attempt++) {
        const answer = await transport(method, path, text, timeoutMs);
        const parsed = parseJson(answer.text);
        if (answer.status >= 200 && answer.status < 300) {
          if (parsed === undefined) {
            throw new CommandError(`${where} answered ${method} ${path} with something other than JSON`);
          }
          return parsed as T;
        }
        const error = errorOf(answer.status, parsed, where, method, path, hasToken);
        if (!RETRIED_CODES.has(error.code) || attempt >= RETRIES_MAX) throw error;
        await new Promise((resume) => setTimeout(resume, RETRY_BACKOFF_MS * (attempt + 1)));
      }
    },
  };
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return undefined;
  }
}

function errorOf(
  status: number,
  body: unknown,
  where: string,
  method: string,
  path: string,
  hasToken: boolean,
): AdminError {
  const fields = (typeof body === "object" && body !== null ? body : {}) as Record<string, unknown>;
  const code = typeof fields.code === "string" ? fields.code : `http-${status}`;
  // The control socket of an Eddy from before the admin API answered {"error": …}.
  const said = typeof fields.message === "string" ? fields.message : fields.error;
  let message = typeof said === "string" ? said : `${where} answered ${method} ${path} with HTTP ${status}`;
  if (status === 401 && !hasToken) message += "; give the token with --token-file F (or EDDY_TOKEN)";
  if (code === "not-found" || (status === 405 && fields.code === undefined)) {
    message += ` (${where} serves no ${method} ${path}: is it an older Eddy?)`;
  }
  return new AdminError(status, code, message);
}

/** Reads a whole answer; the body is text (JSON expected, judged by the caller). */
function exchange(
  send: (options: RequestOptions, onAnswer: (res: IncomingMessage) => void) => ReturnType<typeof httpRequest>,
  options: RequestOptions,
  body: string | undefined,
  timeoutMs: number,
): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = send(options, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (chunk: Buffer) => chunks.push(chunk));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString("utf8") }));
      res.on("error", reject);
    });
    req.setTimeout(timeoutMs, () => req.destroy(Object.assign(new Error("timeout"), { code: "ETIMEDOUT" })));
    req.on("error", reject);
    req.end(body);
  });
}

function headersFor(body: string | undefined, token: string | undefined): Record<string, string> {
  const headers: Record<string, string> = { accept: "application/json" };
  if (body !== undefined) headers["content-type"] = "application/json";
  if (token !== undefined) headers.authorization = `Bearer ${token}`;
  return headers;
}

function socketTransport(stateDir: string, where: string): Transport {
  const socketPath = join(stateDir, CONTROL_SOCKET_NAME);
  return async (method, path, body, timeoutMs) => {
    try {
      return await exchange(
        httpRequest,
        { socketPath, path, method, headers: headersFor(body, undefined) },
        body,
        timeoutMs,
      );
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      // No socket, or one left behind by a process that is gone (kill -9).
      if (code === "ENOENT" || code === "ECONNREFUSED") {
        throw new CommandError(
          `no Eddy runs on ${stateDir}: start one there (eddy run or eddy dev --state-dir ${stateDir}), or give --admin URL to reach one elsewhere`,
        );
      }
      throw new CommandError(
        code === "ETIMEDOUT"
          ? `${where} did not answer ${method} ${path} within ${timeoutMs / 1000} s`
          : `${where} did not answer on its control socket ${socketPath} (${code ?? (error as Error).message})`,
      );
    }
  };
}

function urlTransport(base: string, token: string | undefined): Transport {
  return async (method, path, body, timeoutMs) => {
    const url = new URL(`${base}${path}`);
    const send = url.protocol === "https:" ? httpsRequest : httpRequest;
    try {
      return await exchange(
        (options, onAnswer) => send(url, options, onAnswer),
        { method, headers: headersFor(body, token) },
        body,
        timeoutMs,
      );
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      throw new CommandError(
        code === "ETIMEDOUT"
          ? `${url.origin} did not answer ${method} ${path} within ${timeoutMs / 1000} s`
          : `no Eddy admin listener answered at ${url.origin} (${code ?? (error as Error).message}); is the URL right (eddy run prints it: "admin listening on …")?`,
      );
    }
  };
}
