// One HTTP POST of bytes through an undici dispatcher, with the reply collected as bytes.
// It uses the dispatcher's handler interface directly: undici's request() wraps every
// reply in a Readable stream and every call in an AbortSignal's timer and listeners,
// which cost the runtime more CPU than the protocol work of a small batch.
import { MULTI_ADDRESS_HEADER } from "@eddy/protocol";
import type { Dispatcher } from "undici";

export type PostResult =
  | {
      readonly ok: true;
      readonly statusCode: number;
      readonly contentType: string | undefined;
      /** The eddy-multi-address header: the function server accepts multi-address requests (invoker/multi-address.ts). */
      readonly multiAddress: string | undefined;
      readonly body: Uint8Array;
    }
  | { readonly ok: false; readonly reason: string };

export interface PostOptions {
  readonly path: string;
  readonly headers: Record<string, string>;
  readonly body: Uint8Array;
  /** Longest wait for the reply's headers, and then between pieces of its body. */
  readonly timeoutMs: number;
  /** A longer reply is cut off and reported. */
  readonly maxResponseBytes: number;
}

/**
 * The cause of a failed request in the words a user searches for: the system's own message
 * ("connect ECONNREFUSED 127.0.0.1:8000", "getaddrinfo ENOTFOUND functions") without its
 * code said twice, and undici's timeouts as what they mean.
 */
function describe(cause: unknown, timeoutMs: number): string {
  if (!(cause instanceof Error)) return String(cause);
  const code = (cause as { code?: string }).code;
  if (code === "UND_ERR_HEADERS_TIMEOUT") return `timeout: no reply within ${timeoutMs} ms`;
  if (code === "UND_ERR_BODY_TIMEOUT") return `timeout: the reply stalled for ${timeoutMs} ms`;
  if (code === "UND_ERR_CONNECT_TIMEOUT") return `connect timeout: ${cause.message}`;
  // Several addresses tried (a name that resolves to IPv6 and IPv4): an AggregateError with no message.
  if (cause.message === "" && cause instanceof AggregateError) {
    return cause.errors.map((error: unknown) => describe(error, timeoutMs)).join("; ");
  }
  if (code === undefined || cause.message.includes(code)) return cause.message;
  return `${code}: ${cause.message}`;
}

/** Collects one reply; settles the promise exactly once. */
class ReplyCollector implements Dispatcher.DispatchHandler {
  readonly #resolve: (result: PostResult) => void;
  readonly #maxBytes: number;
  readonly #timeoutMs: number;
  #statusCode = 0;
  #contentType: string | undefined;
  #multiAddress: string | undefined;
  #chunks: Buffer[] = [];
  #length = 0;
  #settled = false;

  constructor(resolve: (result: PostResult) => void, maxBytes: number, timeoutMs: number) {
    this.#resolve = resolve;
    this.#maxBytes = maxBytes;
    this.#timeoutMs = timeoutMs;
  }

  /** Required by undici to recognize the handler interface; nothing to do before the reply. */
  onRequestStart(): void {}

  onResponseStart(
    _controller: Dispatcher.DispatchController,
    statusCode: number,
    headers: Record<string, string | string[] | undefined>,
  ): void {
    this.#statusCode = statusCode;
    const contentType = headers["content-type"];
    this.#contentType = Array.isArray(contentType) ? contentType[0] : contentType;
    const multiAddress = headers[MULTI_ADDRESS_HEADER];
    this.#multiAddress = Array.isArray(multiAddress) ? multiAddress.join(",") : multiAddress;
  }

  onResponseData(controller: Dispatcher.DispatchController, chunk: Buffer): void {
    if (this.#statusCode < 200) return; // an informational reply; the real one follows
    this.#length += chunk.length;
    if (this.#length > this.#maxBytes) {
      this.#settle({ ok: false, reason: `reply is over the limit of ${this.#maxBytes} bytes` });
      controller.abort(new Error("reply over the size limit"));
      return;
    }
    this.#chunks.push(chunk);
  }

  onResponseEnd(): void {
    const chunks = this.#chunks;
    const body = chunks.length === 1 ? (chunks[0] as Buffer) : Buffer.concat(chunks, this.#length);
    this.#settle({
      ok: true,
      statusCode: this.#statusCode,
      contentType: this.#contentType,
      multiAddress: this.#multiAddress,
      body,
    });
  }

  onResponseError(_controller: Dispatcher.DispatchController, error: Error): void {
    this.#settle({ ok: false, reason: describe(error, this.#timeoutMs) });
  }

  #settle(result: PostResult): void {
    if (this.#settled) return;
    this.#settled = true;
    this.#chunks = [];
    this.#resolve(result);
  }
}

/** Sends one POST; every failure (connect, timeout, reset, oversized reply) comes back as a value. */
export function post(dispatcher: Dispatcher, options: PostOptions): Promise<PostResult> {
  return new Promise<PostResult>((resolve) => {
    const collector = new ReplyCollector(resolve, options.maxResponseBytes, options.timeoutMs);
    try {
      dispatcher.dispatch(
        {
          path: options.path,
          method: "POST",
          headers: options.headers,
          body: options.body,
          headersTimeout: options.timeoutMs,
          bodyTimeout: options.timeoutMs,
        },
        collector,
      );
    } catch (cause) {
      // A closed or destroyed dispatcher throws synchronously.
      collector.onResponseError(undefined as unknown as Dispatcher.DispatchController, cause as Error);
    }
  });
}
