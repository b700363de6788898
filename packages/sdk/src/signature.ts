// Signed function calls: Eddy's runtime signs each request body with a key configured for
// the endpoint, and an SDK handler given the key refuses requests without a valid
// signature, so a function URL that is reachable from outside cannot be used to run the
// function on made-up state. The header:
//
//   Eddy-Signature: t=<unix time in ms>,v1=<hex HMAC-SHA256(key, "<t>." + body)>
//
// The time bounds how long a captured request can be replayed (5 minutes by default). A
// handler may hold several keys, so a key can be rotated without downtime.
import { createHmac, timingSafeEqual } from "node:crypto";

export const SIGNATURE_HEADER = "eddy-signature";
export const SIGNATURE_TOLERANCE_MS = 5 * 60_000;

export type SigningKey = string | Uint8Array;

function mac(key: SigningKey, timestamp: string, body: Uint8Array): Buffer {
  return createHmac("sha256", key).update(`${timestamp}.`).update(body).digest();
}

/** The Eddy-Signature header value for `body`, signed at `nowMs`. */
export function signBody(key: SigningKey, body: Uint8Array, nowMs: number): string {
  const timestamp = String(Math.floor(nowMs));
  return `t=${timestamp},v1=${mac(key, timestamp, body).toString("hex")}`;
}

export type SignatureCheck = { readonly ok: true } | { readonly ok: false; readonly reason: string };

/** Checks an Eddy-Signature header against `body` with any of `keys`. */
export function verifySignature(
  keys: readonly SigningKey[],
  header: string | undefined,
  body: Uint8Array,
  nowMs: number,
  toleranceMs: number = SIGNATURE_TOLERANCE_MS,
): SignatureCheck {
  if (header === undefined || header === "")
    return { ok: false, reason: `the request has no ${SIGNATURE_HEADER} header` };
  const fields = new Map<string, string>();
  for (const part of header.split(",")) {
    const equals = part.indexOf("=");
    if (equals > 0) fields.set(part.slice(0, equals).trim(), part.slice(equals + 1).trim());
  }
  const timestamp = fields.get("t");
  const signature = fields.get("v1");
  if (
    timestamp === undefined ||
    !/^\d+$/.test(timestamp) ||
    signature === undefined ||
    !/^[0-9a-f]{64}$/.test(signature)
  ) {
    return { ok: false, reason: `the ${SIGNATURE_HEADER} header is malformed (expected t=<ms>,v1=<64 hex digits>)` };
  }
  const skewMs = Math.abs(nowMs - Number(timestamp));
  if (skewMs > toleranceMs) {
    return {
      ok: false,
      reason: `the signature is ${Math.round(skewMs / 1000)} s away from now (tolerance ${toleranceMs / 1000} s)`,
    };
  }
  const given = Buffer.from(signature, "hex");
  for (const key of keys) if (timingSafeEqual(mac(key, timestamp, body), given)) return { ok: true };
  return { ok: false, reason: "the signature does not match the body under any configured key" };
}
