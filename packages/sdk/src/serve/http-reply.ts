// The one mapping from an invoke() result to an HTTP reply, shared by every adapter.
// Success is 200 application/octet-stream (what StateFun runtimes require); a failure
// is its status with the error text as text/plain, so operators see why in logs.
import type { Endpoint } from "../endpoint.ts";

/** StateFun's default payload limit (payload_max_bytes), applied to request bodies. */
export const DEFAULT_MAX_BODY_BYTES = 32 * 1024 * 1024;

export interface HttpReply {
  readonly status: number;
  readonly contentType: string;
  readonly body: Uint8Array;
}

const encoder = new TextEncoder();

export function errorReply(status: number, message: string): HttpReply {
  return { status, contentType: "text/plain; charset=utf-8", body: encoder.encode(`${message}\n`) };
}

export function tooLargeReply(maxBodyBytes: number): HttpReply {
  return errorReply(413, `request body is larger than the limit of ${maxBodyBytes} bytes`);
}

export function methodNotAllowedReply(method: string): HttpReply {
  return errorReply(405, `${method} is not supported; StateFun function endpoints take POST with a ToFunction body`);
}

export async function replyTo(endpoint: Endpoint, body: Uint8Array): Promise<HttpReply> {
  const result = await endpoint.invoke(body);
  if (result.ok) return { status: 200, contentType: "application/octet-stream", body: result.body };
  return errorReply(result.status, result.message);
}
