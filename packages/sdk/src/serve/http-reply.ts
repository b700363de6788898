// Maps an Endpoint.invoke() result to an HTTP reply, shared by every adapter.
// Success is 200 application/octet-stream (what StateFun runtimes require); a failure
// is its status with the error text as text/plain, so operators see why in logs.
import type { Endpoint } from "../endpoint.ts";
import { SIGNATURE_HEADER, type SigningKey, verifySignature } from "../signature.ts";

/** StateFun's default payload limit (payload_max_bytes), applied to request bodies. */
export const DEFAULT_MAX_BODY_BYTES = 32 * 1024 * 1024;

export interface HttpReply {
  readonly status: number;
  /** Lower-case header names; always includes content-type. */
  readonly headers: Readonly<Record<string, string>>;
  readonly body: Uint8Array;
}

const encoder = new TextEncoder();

export function errorReply(status: number, message: string, headers: Record<string, string> = {}): HttpReply {
  return {
    status,
    headers: { ...headers, "content-type": "text/plain; charset=utf-8" },
    body: encoder.encode(`${message}\n`),
  };
}

export function tooLargeReply(maxBodyBytes: number): HttpReply {
  return errorReply(413, `request body is larger than the limit of ${maxBodyBytes} bytes`);
}

/** RFC 9110 §15.5.6: a 405 names the methods that are allowed. */
export function methodNotAllowedReply(method: string): HttpReply {
  return errorReply(405, `${method} is not supported; StateFun function endpoints take POST with a ToFunction body`, {
    allow: "POST",
  });
}

/** Answers a request body; the signature header is checked first when the handler has signing keys. */
export type Responder = (body: Uint8Array, signature: string | undefined) => Promise<HttpReply>;

export function responder(endpoint: Endpoint, signingKeys: SigningKey | readonly SigningKey[] | undefined): Responder {
  const keys: readonly SigningKey[] =
    signingKeys === undefined
      ? []
      : typeof signingKeys === "string" || signingKeys instanceof Uint8Array
        ? [signingKeys]
        : signingKeys;
  return async (body, signature) => {
    if (keys.length > 0) {
      const check = verifySignature(keys, signature, body, Date.now());
      if (!check.ok)
        return errorReply(401, `refused: ${check.reason} (this endpoint only answers requests signed by its runtime)`);
    }
    const result = await endpoint.invoke(body);
    if (result.ok) return { status: 200, headers: { "content-type": "application/octet-stream" }, body: result.body };
    return errorReply(result.status, result.message);
  };
}

export { SIGNATURE_HEADER };
