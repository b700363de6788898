// Invokes remote functions over HTTP with undici pools (one per origin), as StateFun's
// async transport does: POST application/octet-stream, every failure retried with
// exponential backoff (2 ms doubling) inside a total call budget, then reported as a
// value naming the URL, the address, the attempts and the last cause.
//
// An empty 2xx application/octet-stream body is "success with no effects", as in StateFun:
// the official Python SDK answers a batch without effects that way. An empty body with
// any other content type (a proxy's blank page) is a failure.
import { createHash } from "node:crypto";
import { decodeFromFunction, encodeToFunction, type FromFunction, type ToFunction } from "@eddy/protocol";
import { SIGNATURE_HEADER, signBody } from "@eddy/sdk";
import { Pool } from "undici";
import { type Address, formatAddress } from "../core/address.ts";
import type { InvokeOutcome, Invoker } from "../engine/engine.ts";
import { post } from "./http-post.ts";

export interface HttpFunctionEndpoint {
  /** The function's URL, template already applied. For a unix socket, the URL's host is ignored. */
  readonly url: string;
  readonly unixSocketPath?: string;
  /** Budget for all attempts of one batch. */
  readonly callTimeoutMs: number;
  readonly connectTimeoutMs: number;
  readonly maxResponseBytes: number;
  readonly poolSize: number;
  readonly tls?: { readonly ca?: string; readonly cert?: string; readonly key?: string; readonly passphrase?: string };
  /** Signs every request (Eddy-Signature), for functions that refuse unsigned calls. */
  readonly signingKey?: string;
}

export interface EndpointResolver {
  endpointFor(typename: string): HttpFunctionEndpoint | undefined;
}

type Attempt = { readonly ok: true; readonly response: FromFunction } | { readonly ok: false; readonly reason: string };

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

const REQUEST_HEADERS = {
  "content-type": "application/octet-stream",
  accept: "application/octet-stream",
  "user-agent": "eddy",
};

function isOctetStream(contentType: string | undefined): boolean {
  // Lenient like the Netty transport: parameters allowed; a missing header is tolerated (Go's SDK may omit it).
  return contentType === undefined || contentType.split(";")[0]?.trim().toLowerCase() === "application/octet-stream";
}

export class HttpInvoker implements Invoker {
  readonly #resolver: EndpointResolver;
  readonly #pools = new Map<string, Pool>();
  readonly #routes = new WeakMap<HttpFunctionEndpoint, { path: string; pool: Pool }>();
  readonly #retryBaseMs: number;
  #closed = false;

  constructor(resolver: EndpointResolver, options: { readonly retryBaseMs?: number } = {}) {
    this.#resolver = resolver;
    this.#retryBaseMs = options.retryBaseMs ?? 2;
  }

  async invoke(target: Address, request: ToFunction): Promise<InvokeOutcome> {
    const endpoint = this.#resolver.endpointFor(target.typename);
    if (endpoint === undefined) return { ok: false, reason: `no endpoint serves ${target.typename}` };
    const body = encodeToFunction(request);
    const { path, pool } = this.#route(endpoint);
    const startedAt = performance.now();
    let tries = 0;
    let lastReason = "";
    for (;;) {
      tries++;
      const remainingMs = endpoint.callTimeoutMs - (performance.now() - startedAt);
      const result = await this.#attempt(pool, path, body, endpoint, Math.max(Math.ceil(remainingMs), 10));
      if (result.ok) return result;
      lastReason = result.reason;
      const backoffMs = this.#retryBaseMs * 2 ** Math.min(tries - 1, 20);
      const left = endpoint.callTimeoutMs - (performance.now() - startedAt);
      if (this.#closed || left < backoffMs + 1) break;
      await sleep(backoffMs);
    }
    const elapsedMs = Math.round(performance.now() - startedAt);
    return {
      ok: false,
      reason: `POST ${endpoint.url} for ${formatAddress(target)} failed ${tries} time(s) in ${elapsedMs} ms (call budget ${endpoint.callTimeoutMs} ms); last: ${lastReason}`,
    };
  }

  async #attempt(
    pool: Pool,
    path: string,
    body: Uint8Array,
    endpoint: HttpFunctionEndpoint,
    timeoutMs: number,
  ): Promise<Attempt> {
    const headers =
      endpoint.signingKey === undefined
        ? REQUEST_HEADERS
        : { ...REQUEST_HEADERS, [SIGNATURE_HEADER]: signBody(endpoint.signingKey, body, Date.now()) };
    const reply = await post(pool, {
      path,
      headers,
      body,
      timeoutMs,
      maxResponseBytes: endpoint.maxResponseBytes,
    });
    if (!reply.ok) return reply;
    const { statusCode, contentType, body: bytes } = reply;
    if (statusCode < 200 || statusCode > 299) {
      const text = new TextDecoder().decode(bytes.subarray(0, 300)).trim();
      return { ok: false, reason: `HTTP ${statusCode}${text === "" ? "" : `: ${text}`}` };
    }
    if (bytes.length === 0 && contentType === undefined) {
      return {
        ok: false,
        reason: "reply is empty and has no content type; expected an application/octet-stream FromFunction",
      };
    }
    if (!isOctetStream(contentType)) {
      return { ok: false, reason: `reply has content type ${String(contentType)}; expected application/octet-stream` };
    }
    const decoded = decodeFromFunction(bytes);
    if (!decoded.ok) return { ok: false, reason: `reply is not a FromFunction: ${decoded.error}` };
    return { ok: true, response: decoded.value };
  }

  /** The pool and request path of an endpoint, worked out once per endpoint object. */
  #route(endpoint: HttpFunctionEndpoint): { path: string; pool: Pool } {
    let route = this.#routes.get(endpoint);
    if (route === undefined) {
      const url = new URL(endpoint.url);
      route = { path: `${url.pathname}${url.search}`, pool: this.#pool(endpoint, url) };
      this.#routes.set(endpoint, route);
    }
    return route;
  }

  /**
   * One pool per origin and connection settings: endpoints that reach the same origin with
   * other TLS material (a client certificate or not) or limits must not share connections.
   */
  #pool(endpoint: HttpFunctionEndpoint, url: URL): Pool {
    const tlsIdentity =
      endpoint.tls === undefined ? "" : createHash("sha256").update(JSON.stringify(endpoint.tls)).digest("hex");
    const key = [
      url.origin,
      endpoint.unixSocketPath ?? "",
      endpoint.poolSize,
      endpoint.connectTimeoutMs,
      endpoint.maxResponseBytes,
      tlsIdentity,
    ].join("|");
    let pool = this.#pools.get(key);
    if (pool === undefined) {
      const tls = endpoint.tls ?? {};
      pool = new Pool(url.origin, {
        connections: endpoint.poolSize,
        pipelining: 1,
        maxResponseSize: endpoint.maxResponseBytes,
        ...(endpoint.unixSocketPath === undefined ? {} : { socketPath: endpoint.unixSocketPath }),
        connect: { timeout: endpoint.connectTimeoutMs, ...tls },
      });
      this.#pools.set(key, pool);
    }
    return pool;
  }

  async close(): Promise<void> {
    this.#closed = true;
    const pools = [...this.#pools.values()];
    this.#pools.clear();
    await Promise.all(pools.map((pool) => pool.destroy()));
  }
}
