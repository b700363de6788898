// Fastify adapter: a plugin that adds `POST <path>` taking the raw body. It registers
// its own application/octet-stream parser inside its encapsulated context, so it does
// not change how the rest of the app parses bodies.
import type { Endpoint } from "../endpoint.ts";
import { DEFAULT_MAX_BODY_BYTES, replyTo } from "./http-reply.ts";
import type { HandlerOptions } from "./node.ts";

// Structural types: the SDK does not depend on fastify.
interface FastifyReplyLike {
  code(status: number): FastifyReplyLike;
  header(name: string, value: string): FastifyReplyLike;
  send(payload: Uint8Array): unknown;
}
interface FastifyLike {
  addContentTypeParser(
    contentType: string | RegExp,
    options: { parseAs: "buffer"; bodyLimit: number },
    parser: (request: unknown, body: Buffer, done: (error: Error | null, body?: Buffer) => void) => void,
  ): void;
  post(path: string, handler: (request: { body: unknown }, reply: FastifyReplyLike) => Promise<unknown>): void;
}

export interface FastifyOptions extends HandlerOptions {
  /** Default "/". */
  readonly path?: string;
}

export function fastifyPlugin(endpoint: Endpoint, options: FastifyOptions = {}) {
  const maxBodyBytes = options.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES;
  return async function eddyStatefulFunctions(fastify: FastifyLike): Promise<void> {
    // Any content type: StateFun runtimes send application/octet-stream, but the body is what matters.
    fastify.addContentTypeParser(/.*/, { parseAs: "buffer", bodyLimit: maxBodyBytes }, (_request, body, done) =>
      done(null, body),
    );
    fastify.post(options.path ?? "/", async (request, reply) => {
      const body = request.body instanceof Uint8Array ? request.body : new Uint8Array(0);
      const result = await replyTo(endpoint, body);
      return reply.code(result.status).header("content-type", result.contentType).send(result.body);
    });
  };
}
