// Fastify adapter: a plugin that adds `POST <path>` taking the raw body. Inside its own
// encapsulated context it replaces every body parser with one that hands over the raw
// bytes, whatever the content type, so the rest of the app parses bodies as before.
// Other methods on the path get 405.
import type { Endpoint } from "../endpoint.ts";
import {
  DEFAULT_MAX_BODY_BYTES,
  type HttpReply,
  methodNotAllowedReply,
  responder,
  SIGNATURE_HEADER,
} from "./http-reply.ts";
import type { HandlerOptions } from "./node.ts";

// Structural types: the SDK does not depend on fastify.
interface FastifyReplyLike {
  code(status: number): FastifyReplyLike;
  headers(values: Record<string, string>): FastifyReplyLike;
  send(payload: Uint8Array): unknown;
}
interface FastifyRequestLike {
  readonly method: string;
  readonly body: unknown;
  readonly headers?: Readonly<Record<string, string | string[] | undefined>>;
}
type RouteHandler = (request: FastifyRequestLike, reply: FastifyReplyLike) => Promise<unknown>;
interface FastifyLike {
  removeAllContentTypeParsers(): void;
  addContentTypeParser(
    contentType: string,
    options: { parseAs: "buffer"; bodyLimit: number },
    parser: (request: unknown, body: Buffer, done: (error: Error | null, body?: Buffer) => void) => void,
  ): void;
  route(options: { method: string[]; url: string; handler: RouteHandler }): unknown;
}

export interface FastifyOptions extends HandlerOptions {
  /** Default "/". */
  readonly path?: string;
}

/** Methods answered with 405 (HEAD comes with GET). */
const OTHER_METHODS = ["GET", "PUT", "DELETE", "PATCH", "OPTIONS"];

function send(reply: FastifyReplyLike, result: HttpReply): FastifyReplyLike {
  return reply
    .code(result.status)
    .headers({ ...result.headers })
    .send(result.body) as FastifyReplyLike;
}

export function fastifyPlugin(endpoint: Endpoint, options: FastifyOptions = {}) {
  const maxBodyBytes = options.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES;
  const url = options.path ?? "/";
  const respond = responder(endpoint, options);
  return async function eddyStatefulFunctions(fastify: FastifyLike): Promise<void> {
    // Without this, fastify's own text/plain and JSON parsers would take those bodies.
    fastify.removeAllContentTypeParsers();
    fastify.addContentTypeParser("*", { parseAs: "buffer", bodyLimit: maxBodyBytes }, (_request, body, done) =>
      done(null, body),
    );
    fastify.route({
      method: ["POST"],
      url,
      handler: async (request, reply) => {
        const body = request.body instanceof Uint8Array ? request.body : new Uint8Array(0);
        const signature = request.headers?.[SIGNATURE_HEADER];
        const contentType = request.headers?.["content-type"];
        return send(
          reply,
          await respond(body, {
            contentType: typeof contentType === "string" ? contentType : undefined,
            signature: typeof signature === "string" ? signature : undefined,
          }),
        );
      },
    });
    fastify.route({
      method: OTHER_METHODS,
      url,
      handler: async (request, reply) => send(reply, methodNotAllowedReply(request.method)),
    });
  };
}
