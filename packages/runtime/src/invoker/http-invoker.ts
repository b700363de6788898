// Invokes remote functions over HTTP with undici pools (one per origin), as StateFun's
// async transport does: POST application/octet-stream, every failure retried with
// exponential backoff (2 ms doubling, jittered) inside a total call budget, then reported as a
// value naming the URL, the attempts and the last cause (the caller names the address).
// Failed attempts are logged per endpoint URL as they happen, through a RepeatedFailureLog:
// an endpoint that cannot be reached is said at once, not when the budget runs out, and its
// repeats are counted into a summary line per interval (and one at close).
//
// An empty 2xx application/octet-stream body is "success with no effects", as in StateFun:
// the official Python SDK answers a batch without effects that way. An empty body with
// any other content type (a proxy's blank page) is a failure.
//
// Multi-address requests: a function server that announces the format on a 2xx reply
// (`eddy-multi-address: 1`, Eddy's SDK does) is remembered by URL, and from then on the
// attempts to it are queued and sent together (invoker/multi-address.ts). Each address keeps
// its own retry loop and budget as above; only the requests are shared. A 2xx single reply
// without the announcement forgets the server (a multi-address request that fails as a whole
// is retried as single requests, so a server replaced by one that does not announce is
// forgotten at its first answer), so a server that never announces sees the standard protocol only.
import { createHash } from "node:crypto";
import {
  announcesMultiAddress,
  decodeFromFunction,
  encodeToFunction,
  MULTI_ADDRESS_CONTENT_TYPE,
  type ToFunction,
} from "@eddy/protocol";
import { SIGNATURE_HEADER, signBody } from "@eddy/sdk";
import { Pool } from "undici";
import { type Address, formatAddress } from "../core/address.ts";
import type { FailurePolicy } from "../core/partition-core.ts";
import type { InvokeOutcome, Invoker } from "../engine/engine.ts";
import { backoffMs } from "../io/backoff.ts";
import { addressFields, type Logger, NOOP_LOGGER } from "../observe/logger.ts";
import {
  type FailureReport,
  RepeatedFailureLog,
  SUMMARY_INTERVAL_MS_DEFAULT,
} from "../observe/repeated-failure-log.ts";
import { functionMessage } from "./function-message.ts";
import { post } from "./http-post.ts";
import {
  type Attempt,
  AttemptCoalescer,
  multiAddressOutcomes,
  multiAddressRequest,
  type QueuedAttempt,
} from "./multi-address.ts";

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

export interface HttpInvokerOptions {
  readonly retryBaseMs?: number;
  /** Where failing and recovering endpoints are reported; default nowhere. */
  readonly log?: Logger;
  /** What happens to a batch once its call budget is spent, for the failing line. */
  readonly failurePolicy?: FailurePolicy;
  /** Milliseconds, for spacing the repeat summaries; default Date.now. */
  readonly clock?: () => number;
  readonly summaryIntervalMs?: number;
}

/** The call whose failure made an endpoint's first failing line. */
interface FailedCall {
  readonly target: Address;
  readonly callTimeoutMs: number;
}

/**
 * Where an endpoint's calls go: its pool and path, and the keys its requests are shared
 * and its multi-address announcement remembered by. Endpoints that reach one server with
 * the same connection settings and signing key (function types one URL template maps to
 * one URL) share one route, so their calls share requests.
 */
interface Route {
  /** The first endpoint of the route: its settings are the route's (the call budget excepted, which is each call's). */
  readonly endpoint: HttpFunctionEndpoint;
  readonly path: string;
  readonly pool: Pool;
  /** The function server: the URL, and the socket for a unix-socket URL (whose host means nothing). */
  readonly server: string;
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

const REQUEST_HEADERS = {
  "content-type": "application/octet-stream",
  accept: "application/octet-stream",
  "user-agent": "eddy",
};

const MULTI_ADDRESS_REQUEST_HEADERS = {
  "content-type": MULTI_ADDRESS_CONTENT_TYPE,
  accept: MULTI_ADDRESS_CONTENT_TYPE,
  "user-agent": "eddy",
};

function formatMs(ms: number): string {
  return ms >= 1000 && ms % 1000 === 0 ? `${ms / 1000} s` : `${ms} ms`;
}

function afterBudget(policy: FailurePolicy | undefined, callTimeoutMs: number): string {
  const budget = `each batch for up to ${formatMs(callTimeoutMs)}`;
  switch (policy) {
    case "retry":
      return "Eddy keeps retrying (failure policy: retry)";
    case "dead-letter":
      return `Eddy retries ${budget}, then keeps it as a dead letter (failure policy: dead-letter)`;
    case "stop":
      return `Eddy retries ${budget}, then stops (failure policy: stop)`;
    case undefined:
      return `Eddy retries ${budget}`;
  }
}

/** One line per report: the endpoint's URL, and the function and cause when it starts failing. */
function logFailure(
  log: Logger,
  report: FailureReport<FailedCall>,
  policy: FailurePolicy | undefined,
  summaryIntervalMs: number,
): void {
  const endpoint = report.key;
  switch (report.kind) {
    case "failing": {
      const { target, callTimeoutMs } = report.context;
      log.warn(
        `calling ${formatAddress(target)} at ${endpoint} failed: ${report.cause}; ${afterBudget(policy, callTimeoutMs)}; repeats are summarized every ${formatMs(summaryIntervalMs)}`,
        { ...addressFields(target), endpoint },
      );
      return;
    }
    case "repeated":
      log.warn(
        `${endpoint} failed ${report.count} more time${report.count === 1 ? "" : "s"} in the last ${Math.round(report.periodMs / 1000)} s (last: ${report.lastCause})`,
        { ...addressFields(report.context.target), endpoint, repeated: report.count, periodMs: report.periodMs },
      );
      return;
    case "recovered":
      log.info(
        `${endpoint} is reachable again after ${report.failedCount} failed call${report.failedCount === 1 ? "" : "s"}`,
        { endpoint },
      );
      return;
  }
}

function isOctetStream(contentType: string | undefined): boolean {
  // Lenient like the Netty transport: parameters allowed; a missing header is tolerated (Go's SDK may omit it).
  return contentType === undefined || contentType.split(";")[0]?.trim().toLowerCase() === "application/octet-stream";
}

export class HttpInvoker implements Invoker {
  readonly #resolver: EndpointResolver;
  readonly #pools = new Map<string, Pool>();
  readonly #routes = new WeakMap<HttpFunctionEndpoint, Route>();
  /** The routes by server, connection settings and signing key. */
  readonly #routesByKey = new Map<string, Route>();
  readonly #retryBaseMs: number;
  readonly #failures: RepeatedFailureLog<FailedCall>;
  /** The function servers (Route.server) that announced multi-address requests on their last 2xx single reply. */
  readonly #multiAddressServers = new Set<string>();
  /** Attempts queued per route, sent together once the event loop's I/O callbacks that queued them are done. */
  readonly #coalescer = new AttemptCoalescer<Route>((route, group) => this.#sendGroup(route, group));
  #closed = false;

  constructor(resolver: EndpointResolver, options: HttpInvokerOptions = {}) {
    this.#resolver = resolver;
    this.#retryBaseMs = options.retryBaseMs ?? 2;
    const log = options.log ?? NOOP_LOGGER;
    const summaryIntervalMs = options.summaryIntervalMs ?? SUMMARY_INTERVAL_MS_DEFAULT;
    this.#failures = new RepeatedFailureLog<FailedCall>({
      report: (report) => logFailure(log, report, options.failurePolicy, summaryIntervalMs),
      summaryIntervalMs,
      ...(options.clock === undefined ? {} : { clock: options.clock }),
    });
  }

  async invoke(target: Address, request: ToFunction, traceparent?: string): Promise<InvokeOutcome> {
    const endpoint = this.#resolver.endpointFor(target.typename);
    if (endpoint === undefined) return { ok: false, reason: `no endpoint serves ${target.typename}` };
    const body = encodeToFunction(request);
    const route = this.#route(endpoint);
    const startedAt = performance.now();
    let tries = 0;
    let lastReason = "";
    let alone = false;
    for (;;) {
      tries++;
      const remainingMs = endpoint.callTimeoutMs - (performance.now() - startedAt);
      const timeoutMs = Math.max(Math.ceil(remainingMs), 10);
      const result: Attempt =
        !alone && this.#multiAddressServers.has(route.server)
          ? await this.#queue(route, target, body, timeoutMs, traceparent)
          : await this.#attempt(target, route, body, timeoutMs, traceparent);
      if (result.ok) {
        this.#failures.succeeded(endpoint.url);
        return result;
      }
      lastReason = result.reason;
      alone = result.alone === true;
      // Closing destroys the pools: calls cut off by that are not the endpoint's failure.
      if (!this.#closed)
        this.#failures.failed(endpoint.url, lastReason, { target, callTimeoutMs: endpoint.callTimeoutMs });
      // Jittered, so that the batches a restarting endpoint failed together do not all come back together.
      const pauseMs = backoffMs(tries, { baseMs: this.#retryBaseMs, maxMs: this.#retryBaseMs * 2 ** 20 });
      const left = endpoint.callTimeoutMs - (performance.now() - startedAt);
      if (this.#closed || left < pauseMs + 1) break;
      await sleep(pauseMs);
    }
    const elapsedMs = Math.round(performance.now() - startedAt);
    return {
      ok: false,
      reason: `POST ${endpoint.url} failed ${tries} time(s) in ${elapsedMs} ms (call budget ${endpoint.callTimeoutMs} ms); last: ${lastReason}`,
    };
  }

  /** One attempt as the standard protocol has it: one ToFunction, one POST. */
  async #attempt(
    target: Address,
    route: Route,
    body: Uint8Array,
    timeoutMs: number,
    traceparent: string | undefined,
  ): Promise<Attempt> {
    const endpoint = route.endpoint;
    let headers: Record<string, string> =
      endpoint.signingKey === undefined
        ? REQUEST_HEADERS
        : { ...REQUEST_HEADERS, [SIGNATURE_HEADER]: signBody(endpoint.signingKey, body, Date.now()) };
    // A function server can join the call's trace (W3C Trace Context); sent only while tracing is on.
    if (traceparent !== undefined) headers = { ...headers, traceparent };
    const reply = await post(route.pool, {
      path: route.path,
      headers,
      body,
      timeoutMs,
      maxResponseBytes: endpoint.maxResponseBytes,
    });
    if (!reply.ok) return reply;
    const { statusCode, contentType, body: bytes } = reply;
    if (statusCode < 200 || statusCode > 299) {
      const text = functionMessage(target, new TextDecoder().decode(bytes.subarray(0, 300)).trim());
      return { ok: false, reason: `HTTP ${statusCode}${text === "" ? "" : `: ${text}`}` };
    }
    // Learned, or forgotten, from every 2xx reply: a server may be replaced by one that does not announce.
    if (announcesMultiAddress(reply.multiAddress)) this.#multiAddressServers.add(route.server);
    else if (this.#multiAddressServers.size > 0) this.#multiAddressServers.delete(route.server);
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

  /** One attempt queued to share a request with the other attempts to its route made in this event-loop iteration. */
  #queue(
    route: Route,
    target: Address,
    toFunction: Uint8Array,
    timeoutMs: number,
    traceparent: string | undefined,
  ): Promise<Attempt> {
    return new Promise<Attempt>((settle, fail) =>
      this.#coalescer.enqueue(route, { target, toFunction, traceparent, timeoutMs, settle, fail }),
    );
  }

  /** Sends a flushed group: one attempt as a single request, more as one multi-address request. */
  #sendGroup(route: Route, group: readonly QueuedAttempt[]): void {
    const first = group[0] as QueuedAttempt;
    if (group.length === 1) {
      this.#attempt(first.target, route, first.toFunction, first.timeoutMs, first.traceparent).then(
        first.settle,
        first.fail,
      );
      return;
    }
    const { body, timeoutMs } = multiAddressRequest(group);
    const endpoint = route.endpoint;
    const headers =
      endpoint.signingKey === undefined
        ? MULTI_ADDRESS_REQUEST_HEADERS
        : {
            ...MULTI_ADDRESS_REQUEST_HEADERS,
            [SIGNATURE_HEADER]: signBody(endpoint.signingKey, body, Date.now()),
          };
    post(route.pool, { path: route.path, headers, body, timeoutMs, maxResponseBytes: endpoint.maxResponseBytes })
      .then((reply) => {
        const attempts = multiAddressOutcomes(reply, group);
        for (let index = 0; index < group.length; index++) {
          (group[index] as QueuedAttempt).settle(attempts[index] as Attempt);
        }
      })
      .catch((error: unknown) => {
        for (const queued of group) queued.fail(error);
      });
  }

  /** The pool, request path and sharing keys of an endpoint, worked out once per endpoint object. */
  #route(endpoint: HttpFunctionEndpoint): Route {
    let route = this.#routes.get(endpoint);
    if (route === undefined) {
      const url = new URL(endpoint.url);
      const path = `${url.pathname}${url.search}`;
      const { pool, key } = this.#pool(endpoint, url);
      const server = `${endpoint.url}|${endpoint.unixSocketPath ?? ""}`;
      const signedBy =
        endpoint.signingKey === undefined ? "" : createHash("sha256").update(endpoint.signingKey).digest("hex");
      const routeKey = `${key}|${path}|${signedBy}`;
      route = this.#routesByKey.get(routeKey);
      if (route === undefined) {
        route = { endpoint, path, pool, server };
        this.#routesByKey.set(routeKey, route);
      }
      this.#routes.set(endpoint, route);
    }
    return route;
  }

  /**
   * One pool per origin and connection settings: endpoints that reach the same origin with
   * other TLS material (a client certificate or not) or limits must not share connections.
   */
  #pool(endpoint: HttpFunctionEndpoint, url: URL): { pool: Pool; key: string } {
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
    return { pool, key };
  }

  async close(): Promise<void> {
    // Before the pools go: what they fail with from now on is the closing, not the endpoint.
    this.#failures.flush();
    this.#closed = true;
    const pools = [...this.#pools.values()];
    this.#pools.clear();
    this.#routesByKey.clear();
    await Promise.all(pools.map((pool) => pool.destroy()));
  }
}
