// Calls between threads over a port (a Worker, its parentPort, or one end of a MessageChannel
// between two partition threads): each side may call methods the other serves. Calls made in
// one event-loop turn leave in one message, and so do the answers of one turn: a message
// between threads costs microseconds on both sides, so a busy ingress sends one per turn, not
// one per request.
import type { Answer, Call, CallMessage } from "./thread-protocol.ts";

/** What a channel needs of its port: to post (the owner of the port hands received messages to receive()). */
export interface PostPort {
  postMessage(message: CallMessage, transfer?: readonly ArrayBuffer[]): void;
}

/** A method the other side may call: its arguments as they were posted. */
export type CallHandler = (...args: never[]) => Promise<unknown>;

export class CallChannel {
  readonly #port: PostPort;
  readonly #handlers: Readonly<Record<string, CallHandler>>;
  readonly #waiting = new Map<number, (answer: Answer) => void>();
  #nextId = 1;
  #outgoing: Call[] = [];
  #transfer: ArrayBuffer[] = [];
  #answers: Answer[] = [];
  #failure: Error | undefined;

  constructor(port: PostPort, handlers: Readonly<Record<string, CallHandler>> = {}) {
    this.#port = port;
    this.#handlers = handlers;
  }

  /** Calls `method` on the other side; `transfer` moves the buffers it names instead of copying them. */
  call(method: string, args: readonly unknown[], transfer?: readonly ArrayBuffer[]): Promise<unknown> {
    if (this.#failure !== undefined) return Promise.reject(this.#failure);
    const id = this.#nextId++;
    return new Promise((resolve, reject) => {
      this.#waiting.set(id, (answer) => {
        if ("error" in answer) reject(new Error(answer.error));
        else resolve(answer.value);
      });
      if (this.#outgoing.length === 0) setImmediate(() => this.#flushCalls());
      this.#outgoing.push({ id, method, args });
      if (transfer !== undefined) this.#transfer.push(...transfer);
    });
  }

  /** Handles a message of this channel ("calls" or "answers"); false for any other. */
  receive(message: { readonly kind: string }): boolean {
    const received = message as CallMessage;
    if (received.kind === "answers") {
      for (const answer of received.answers) {
        const settle = this.#waiting.get(answer.id);
        this.#waiting.delete(answer.id);
        settle?.(answer);
      }
      return true;
    }
    if (received.kind !== "calls") return false;
    for (const { id, method, args } of received.calls) {
      const handler = this.#handlers[method] as ((...args: readonly unknown[]) => Promise<unknown>) | undefined;
      if (handler === undefined) {
        this.#answer({ id, error: `no call ${method}` });
        continue;
      }
      handler(...args).then(
        (value) => this.#answer({ id, value }),
        (error: unknown) => this.#answer({ id, error: error instanceof Error ? error.message : String(error) }),
      );
    }
    return true;
  }

  /** The other side is gone: calls waiting and to come fail with `error`. */
  fail(error: Error): void {
    if (this.#failure !== undefined) return;
    this.#failure = error;
    const waiting = [...this.#waiting.values()];
    this.#waiting.clear();
    for (const settle of waiting) settle({ id: 0, error: error.message });
  }

  #answer(answer: Answer): void {
    if (this.#answers.length === 0) setImmediate(() => this.#flushAnswers());
    this.#answers.push(answer);
  }

  #flushCalls(): void {
    const calls = this.#outgoing;
    const transfer = this.#transfer;
    this.#outgoing = [];
    this.#transfer = [];
    this.#port.postMessage({ kind: "calls", calls }, transfer);
  }

  #flushAnswers(): void {
    const answers = this.#answers;
    this.#answers = [];
    this.#port.postMessage({ kind: "answers", answers });
  }
}
