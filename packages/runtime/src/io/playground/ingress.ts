// The StateFun playground HTTP ingress (io.statefun.playground.v1/ingress): PUT or POST
// /<namespace>/<type>/<id> with the message as the body and its typename in
// `Content-Type: application/vnd.<typename>` (default io.statefun.types/string, bytes as
// they are, as StateFun's playground does). The reply is sent only once the message is
// durable: 200 means it will be processed, exactly once. A request retried with the same
// `Idempotency-Key` header is delivered at most once (Eddy's addition, for clients that
// retry after a lost reply).
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { FunctionTypename } from "../../core/address.ts";
import type { Engine } from "../../engine/engine.ts";
import { readBody } from "../http-body.ts";
import { closeServer, listenOn, replyText } from "../http-server.ts";

export interface PlaygroundIngressOptions {
  readonly port: number;
  readonly host: string;
  readonly maxBodyBytes: number;
}

const VND = "application/vnd.";
const DEFAULT_TYPENAME = "io.statefun.types/string";

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

function typenameOf(req: IncomingMessage): string {
  const contentType = req.headers["content-type"]?.split(";")[0]?.trim();
  return contentType?.startsWith(VND) ? contentType.slice(VND.length) : DEFAULT_TYPENAME;
}

export class PlaygroundIngress {
  readonly #server: Server;
  readonly #engine: Engine;
  readonly #options: PlaygroundIngressOptions;

  constructor(engine: Engine, options: PlaygroundIngressOptions) {
    this.#engine = engine;
    this.#options = options;
    this.#server = createServer((req, res) => {
      this.#handle(req, res).catch((error: unknown) => replyText(res, 500, `ingress error: ${String(error)}`));
    });
  }

  listen(): Promise<string> {
    return listenOn(this.#server, this.#options.port, this.#options.host);
  }

  close(): Promise<void> {
    return closeServer(this.#server);
  }

  async #handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    if (req.method !== "PUT" && req.method !== "POST") {
      replyText(res, 405, `${req.method} is not supported; send PUT or POST /<namespace>/<type>/<id>`);
      return;
    }
    const target = parseTarget(req.url ?? "/");
    if (!target.ok) {
      replyText(res, 400, target.message);
      return;
    }
    const read = await readBody(req, this.#options.maxBodyBytes);
    if (!read.ok) {
      replyText(res, 413, `message body is larger than the limit of ${this.#options.maxBodyBytes} bytes`);
      return;
    }
    const idempotencyKey = req.headers["idempotency-key"];
    const accepted = await this.#engine.accept(
      {
        target: { typename: target.typename, id: target.id },
        argument: { typename: typenameOf(req), hasValue: true, value: read.body },
      },
      typeof idempotencyKey === "string" && idempotencyKey !== "" ? { idempotencyKey } : {},
    );
    if (accepted.ok) replyText(res, 200, accepted.duplicate ? "accepted before (same Idempotency-Key)" : "accepted");
    else replyText(res, accepted.code === "unknown-function" ? 404 : 503, accepted.message);
  }
}
