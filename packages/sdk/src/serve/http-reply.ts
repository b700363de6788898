// Maps an Endpoint.invoke() result to an HTTP reply, shared by every adapter.
// Success is 200 application/octet-stream (what StateFun runtimes require); a failure
// is its status with the error text as text/plain, so operators see why in logs.
// A request in Eddy's multi-address content type goes to invokeMultiAddress() and is
// answered 200 in that content type. Unless turned off, every reply announces the format
// (`eddy-multi-address: 1`): Eddy's runtime sends multi-address requests only to a
// server that said so; other runtimes ignore the header.
import { MULTI_ADDRESS_CONTENT_TYPE, MULTI_ADDRESS_HEADER, MULTI_ADDRESS_VERSION } from "@eddy/protocol";
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

/** What a responder needs of a request besides its body. */
export interface RequestHeaders {
  readonly contentType: string | undefined;
  /** The Eddy-Signature header. */
  readonly signature: string | undefined;
}

/** Answers a request body; the signature header is checked first when the handler has signing keys. */
export type Responder = (body: Uint8Array, headers: RequestHeaders) => Promise<HttpReply>;

export interface ResponderOptions {
  readonly signingKeys?: SigningKey | readonly SigningKey[] | undefined;
  /** Announce and accept multi-address requests; default true. */
  readonly multiAddress?: boolean | undefined;
}

const ANNOUNCEMENT = { [MULTI_ADDRESS_HEADER]: MULTI_ADDRESS_VERSION };
const OCTET_STREAM = { "content-type": "application/octet-stream" };
const OCTET_STREAM_ANNOUNCED = { ...OCTET_STREAM, ...ANNOUNCEMENT };
const MULTI_ADDRESS = { "content-type": MULTI_ADDRESS_CONTENT_TYPE, ...ANNOUNCEMENT };

function isMultiAddress(contentType: string | undefined): boolean {
  if (contentType === undefined) return false;
  const semicolon = contentType.indexOf(";");
  return (
    (semicolon < 0 ? contentType : contentType.slice(0, semicolon)).trim().toLowerCase() === MULTI_ADDRESS_CONTENT_TYPE
  );
}

export function responder(endpoint: Endpoint, options: ResponderOptions = {}): Responder {
  const signingKeys = options.signingKeys;
  const keys: readonly SigningKey[] =
    signingKeys === undefined
      ? []
      : typeof signingKeys === "string" || signingKeys instanceof Uint8Array
        ? [signingKeys]
        : signingKeys;
  const announce = options.multiAddress ?? true;
  const announced = (reply: HttpReply): HttpReply =>
    announce ? { ...reply, headers: { ...reply.headers, ...ANNOUNCEMENT } } : reply;
  return async (body, headers) => {
    if (keys.length > 0) {
      // A multi-address body is signed as a whole, the same way as a single one.
      const check = verifySignature(keys, headers.signature, body, Date.now());
      if (!check.ok) {
        return announced(
          errorReply(401, `refused: ${check.reason} (this endpoint only answers requests signed by its runtime)`),
        );
      }
    }
    if (isMultiAddress(headers.contentType)) {
      if (!announce) {
        return errorReply(
          415,
          `${MULTI_ADDRESS_CONTENT_TYPE} is turned off at this endpoint (multiAddress: false); send one ToFunction per request as application/octet-stream`,
        );
      }
      const result = await endpoint.invokeMultiAddress(body);
      if (result.ok) return { status: 200, headers: MULTI_ADDRESS, body: result.body };
      return announced(errorReply(result.status, result.message));
    }
    const result = await endpoint.invoke(body);
    if (result.ok) return { status: 200, headers: announce ? OCTET_STREAM_ANNOUNCED : OCTET_STREAM, body: result.body };
    return announced(errorReply(result.status, result.message));
  };
}

export { SIGNATURE_HEADER };
