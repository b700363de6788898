// Coalesces the call attempts of many addresses to one function server into multi-address
// requests (Eddy's optional format, @eddy/protocol's multi-address.ts), for servers that
// announced it. The HTTP invoker queues attempts per channel (one server, one set of
// connection settings, one signing key). The queues are flushed by setImmediate, after the
// event loop's I/O callbacks of the iteration: so the calls the engine issues in one loop
// meet, and so do those it issues as the replies read in one iteration come in, each in its
// own callback (a microtask flush sent most calls of a chain of functions alone). A flush
// makes requests of at most REQUEST_CALLS_MAX calls and REQUEST_TO_FUNCTION_BYTES_MAX bytes
// of ToFunction (a larger call goes alone); a group of one is sent as the standard single
// request. Every queued attempt is settled exactly once, with its own outcome; retries stay
// with the caller, one loop per address.
import {
  decodeFromFunction,
  decodeMultiAddressResponse,
  encodeMultiAddressRequest,
  type FromFunction,
  MULTI_ADDRESS_CONTENT_TYPE,
} from "@eddy/protocol";
import type { Address } from "../core/address.ts";
import { functionMessage } from "./function-message.ts";
import type { PostResult } from "./http-post.ts";

/** The most calls one multi-address request carries. */
export const REQUEST_CALLS_MAX = 64;
/** The most ToFunction bytes one multi-address request carries (a larger call goes alone). */
export const REQUEST_TO_FUNCTION_BYTES_MAX = 4 << 20;

/**
 * One attempt's outcome. `alone`: the failure was a whole multi-address request's (the
 * connection, the status, the body), so the address's next attempt goes in a request of its
 * own: a call that breaks the requests it is in (a reply over the size limit, a crash of the
 * function server) cannot keep failing the others.
 */
export type Attempt =
  | { readonly ok: true; readonly response: FromFunction }
  | { readonly ok: false; readonly reason: string; readonly alone?: true };

export interface QueuedAttempt {
  readonly target: Address;
  /** The encoded ToFunction. */
  readonly toFunction: Uint8Array;
  readonly traceparent: string | undefined;
  /** What is left of the call's budget: the request's timeout is the smallest of its calls'. */
  readonly timeoutMs: number;
  readonly settle: (attempt: Attempt) => void;
  /** A bug on the way (every failure of the call is an Attempt): the caller's promise rejects, as an unqueued attempt's would. */
  readonly fail: (error: unknown) => void;
}

/** Queues attempts per channel and hands them on, grouped within the bounds, once the event loop's current I/O callbacks are done. */
export class AttemptCoalescer<Channel> {
  readonly #queues = new Map<Channel, QueuedAttempt[]>();
  readonly #send: (channel: Channel, group: readonly QueuedAttempt[]) => void;
  readonly #callsMax: number;
  readonly #bytesMax: number;
  #flushQueued = false;

  constructor(
    send: (channel: Channel, group: readonly QueuedAttempt[]) => void,
    bounds: { callsMax?: number; bytesMax?: number } = {},
  ) {
    this.#send = send;
    this.#callsMax = bounds.callsMax ?? REQUEST_CALLS_MAX;
    this.#bytesMax = bounds.bytesMax ?? REQUEST_TO_FUNCTION_BYTES_MAX;
  }

  enqueue(channel: Channel, attempt: QueuedAttempt): void {
    let queue = this.#queues.get(channel);
    if (queue === undefined) {
      queue = [];
      this.#queues.set(channel, queue);
    }
    queue.push(attempt);
    if (!this.#flushQueued) {
      this.#flushQueued = true;
      setImmediate(() => this.#flush());
    }
  }

  #flush(): void {
    this.#flushQueued = false;
    const queues = [...this.#queues];
    this.#queues.clear();
    for (const [channel, queue] of queues) {
      let group: QueuedAttempt[] = [];
      let groupBytes = 0;
      for (const attempt of queue) {
        const bytes = attempt.toFunction.length;
        if (group.length > 0 && (group.length === this.#callsMax || groupBytes + bytes > this.#bytesMax)) {
          this.#send(channel, group);
          group = [];
          groupBytes = 0;
        }
        group.push(attempt);
        groupBytes += bytes;
      }
      if (group.length > 0) this.#send(channel, group);
    }
  }
}

/** The body of a multi-address request for `group`, and its timeout: the smallest budget left of its calls. */
export function multiAddressRequest(group: readonly QueuedAttempt[]): { body: Uint8Array; timeoutMs: number } {
  let timeoutMs = Number.POSITIVE_INFINITY;
  for (const attempt of group) timeoutMs = Math.min(timeoutMs, attempt.timeoutMs);
  const body = encodeMultiAddressRequest(
    group.map((attempt) => ({ toFunction: attempt.toFunction, traceparent: attempt.traceparent })),
  );
  return { body, timeoutMs };
}

/**
 * What a multi-address request's reply means for each of its calls, in their order. A
 * failure of the whole request fails each call with `alone`; a server that answered outside
 * the format (replaced by one that does not announce it) is forgotten by the single reply
 * to the first of those retries.
 */
export function multiAddressOutcomes(reply: PostResult, group: readonly QueuedAttempt[]): Attempt[] {
  const about = `(a multi-address request of ${group.length} calls)`;
  const all = (reason: string) => group.map((): Attempt => ({ ok: false, reason: `${reason} ${about}`, alone: true }));
  if (!reply.ok) return all(reply.reason);
  const { statusCode, contentType, body } = reply;
  if (statusCode < 200 || statusCode > 299) {
    const text = new TextDecoder().decode(body.subarray(0, 300)).trim();
    return all(`HTTP ${statusCode}${text === "" ? "" : `: ${text}`}`);
  }
  if (contentType?.split(";")[0]?.trim().toLowerCase() !== MULTI_ADDRESS_CONTENT_TYPE) {
    return all(`reply has content type ${String(contentType)}; expected ${MULTI_ADDRESS_CONTENT_TYPE}`);
  }
  const decoded = decodeMultiAddressResponse(body, group.length);
  if (!decoded.ok) return all(decoded.error);
  if (decoded.value.length !== group.length) {
    return all(`the reply has ${decoded.value.length} results for ${group.length} calls`);
  }
  return decoded.value.map((result, index): Attempt => {
    const target = (group[index] as QueuedAttempt).target;
    if (!result.ok) return { ok: false, reason: functionMessage(target, result.error) };
    // An empty FromFunction is success without effects, as an empty single reply is.
    const response = decodeFromFunction(result.fromFunction);
    if (!response.ok) return { ok: false, reason: `the call's result is not a FromFunction: ${response.error}` };
    return { ok: true, response: response.value };
  });
}
