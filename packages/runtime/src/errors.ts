// Errors at the runtime's boundaries: every failure that crosses one carries a stable `code`
// (what callers branch on, never the message text) and a `retriable` flag (whether trying the
// same thing again may succeed: a broker restarting, a fenced commit whose partitions come
// back, a connection reset). A failure is a value where the caller can take a value
// (`Failure`, `Result`), and an `EddyError` where it must travel through a rejection or a
// throw (a loop step, a promise a library awaits). Exceptions that are neither are bugs.
//
// The split follows Kafka's own clients: kafkajs marks every error `retriable` and retries
// only those; Kafka Streams turns a fenced producer into "give the task up" and everything
// else into "stop". A bug retried as if it were an outage hides it; an outage treated as a
// bug stops the process for nothing.

/** A failure as a value: what went wrong (`code`), in words (`message`), and whether to try again. */
export interface Failure<Code extends string = string> {
  readonly ok: false;
  readonly code: Code;
  readonly message: string;
  readonly retriable: boolean;
}

/** Success with a value, or a Failure. */
export type Result<T, Code extends string = string> = { readonly ok: true; readonly value: T } | Failure<Code>;

export function failure<Code extends string>(code: Code, message: string, retriable: boolean): Failure<Code> {
  return { ok: false, code, message, retriable };
}

export function success<T>(value: T): { readonly ok: true; readonly value: T } {
  return { ok: true, value };
}

/** A Failure carried through a throw or a rejection. */
export class EddyError extends Error {
  readonly code: string;
  readonly retriable: boolean;

  constructor(code: string, message: string, options: { readonly retriable: boolean; readonly cause?: unknown }) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = "EddyError";
    this.code = code;
    this.retriable = options.retriable;
  }

  static from(failed: Failure): EddyError {
    return new EddyError(failed.code, failed.message, { retriable: failed.retriable });
  }

  toFailure(): Failure {
    return failure(this.code, this.message, this.retriable);
  }
}

/**
 * A broken invariant: the code, not the world, is wrong. Never retried; whoever catches it
 * stops (with the stack, which is for the developers, not the user).
 */
export class BugError extends EddyError {
  constructor(message: string, cause?: unknown) {
    super("bug", message, { retriable: false, cause });
    this.name = "BugError";
  }
}

/**
 * Whether an error may go away if the same thing is tried again. An EddyError says so
 * itself. JavaScript's own errors for wrong code (TypeError, RangeError, ReferenceError,
 * SyntaxError) never go away. Anything else (a socket error, a library's protocol error) is
 * taken as the world's and retriable: the caller's loop bounds how long it keeps trying.
 */
export function isRetriable(error: unknown): boolean {
  if (error instanceof EddyError) return error.retriable;
  if (
    error instanceof TypeError ||
    error instanceof RangeError ||
    error instanceof ReferenceError ||
    error instanceof SyntaxError
  ) {
    return false;
  }
  return true;
}

/** The code to branch on for any error: an EddyError's, a Node system error's (ECONNREFUSED…), else "unknown". */
export function errorCode(error: unknown): string {
  if (error instanceof EddyError) return error.code;
  const code = (error as { code?: unknown } | undefined)?.code;
  return typeof code === "string" ? code : "unknown";
}

/** One line for a log: the message, without the stack. */
export function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
