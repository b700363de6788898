// Fetch-style adapter: (Request) => Promise<Response>, for runtimes built on the fetch
// API (AWS Lambda function URLs via a fetch shim, Cloudflare Workers, Bun, Deno).
import type { Endpoint } from "../endpoint.ts";
import { DEFAULT_MAX_BODY_BYTES, type HttpReply, methodNotAllowedReply, replyTo, tooLargeReply } from "./http-reply.ts";
import type { HandlerOptions } from "./node.ts";

function toResponse(reply: HttpReply): Response {
  return new Response(reply.body as Uint8Array<ArrayBuffer>, {
    status: reply.status,
    headers: { "content-type": reply.contentType },
  });
}

export function fetchHandler(
  endpoint: Endpoint,
  options: HandlerOptions = {},
): (request: Request) => Promise<Response> {
  const maxBodyBytes = options.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES;
  return async (request) => {
    if (request.method !== "POST") return toResponse(methodNotAllowedReply(request.method));
    if (Number(request.headers.get("content-length")) > maxBodyBytes) return toResponse(tooLargeReply(maxBodyBytes));
    const body = new Uint8Array(await request.arrayBuffer());
    if (body.length > maxBodyBytes) return toResponse(tooLargeReply(maxBodyBytes));
    return toResponse(await replyTo(endpoint, body));
  };
}
