// Fetch-style adapter: (Request) => Promise<Response>, for runtimes built on the fetch
// API (AWS Lambda function URLs via a fetch shim, Cloudflare Workers, Bun, Deno).
// The body is read chunk by chunk and refused with 413 as soon as it passes the limit,
// so a chunked request without a content-length cannot grow memory either.
import type { Endpoint } from "../endpoint.ts";
import {
  DEFAULT_MAX_BODY_BYTES,
  type HttpReply,
  methodNotAllowedReply,
  responder,
  SIGNATURE_HEADER,
  tooLargeReply,
} from "./http-reply.ts";
import type { HandlerOptions } from "./node.ts";

function toResponse(reply: HttpReply): Response {
  return new Response(reply.body as Uint8Array<ArrayBuffer>, { status: reply.status, headers: reply.headers });
}

/** The whole body, or undefined once it grows past `maxBodyBytes` (the rest is not read). */
async function readBody(request: Request, maxBodyBytes: number): Promise<Uint8Array | undefined> {
  if (request.body === null) return new Uint8Array(0);
  const reader = request.body.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    size += value.length;
    if (size > maxBodyBytes) {
      await reader.cancel("request body too large").catch(() => {});
      return undefined;
    }
    chunks.push(value);
  }
  if (chunks.length === 1) return chunks[0];
  const body = new Uint8Array(size);
  let offset = 0;
  for (const chunk of chunks) {
    body.set(chunk, offset);
    offset += chunk.length;
  }
  return body;
}

export function fetchHandler(
  endpoint: Endpoint,
  options: HandlerOptions = {},
): (request: Request) => Promise<Response> {
  const maxBodyBytes = options.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES;
  const respond = responder(endpoint, options);
  return async (request) => {
    if (request.method !== "POST") return toResponse(methodNotAllowedReply(request.method));
    if (Number(request.headers.get("content-length")) > maxBodyBytes) return toResponse(tooLargeReply(maxBodyBytes));
    const body = await readBody(request, maxBodyBytes);
    if (body === undefined) return toResponse(tooLargeReply(maxBodyBytes));
    return toResponse(
      await respond(body, {
        contentType: request.headers.get("content-type") ?? undefined,
        signature: request.headers.get(SIGNATURE_HEADER) ?? undefined,
      }),
    );
  };
}
