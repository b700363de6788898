// Greets a person through one worker's playground ingress and returns the greeting, as a
// client of a cluster should ask: request-reply (`Prefer: wait`), an Idempotency-Key so that
// a retry is applied once, and a retry after a 503 (nobody runs the instance yet, or the
// worker that ran it stopped answering) when Retry-After says so. A 202 (no reply within the
// wait) is polled at its Location. Anything else is an error, as is the deadline passing.
import { setTimeout as sleep } from "node:timers/promises";

/** Seconds the ingress holds a request for its reply. */
const WAIT_SECONDS = 5;
/** The owner may hold a forwarded request for the wait plus its admission hold. */
const REQUEST_TIMEOUT_MS = 30_000;
/** Between attempts when the worker could not be reached at all or named no Retry-After. */
const RETRY_GAP_MS_DEFAULT = 1_000;
const RETRY_GAP_MS_MAX = 5_000;

export interface Greeting {
  readonly text: string;
  /** Attempts answered 503, or not answered, before the greeting came. */
  readonly retries: number;
  /** Times the reply was asked for at its Location after a 202 (it had not come within the wait). */
  readonly polls: number;
  readonly tookMs: number;
}

/** What one request came back with: the greeting, where to poll for it, or to ask again (after how long, and why). */
type Attempt =
  | { readonly kind: "greeting"; readonly text: string }
  | { readonly kind: "poll"; readonly location: string }
  | { readonly kind: "again"; readonly gapMs: number; readonly why: string };

/**
 * Sends `{"name": name}` to example/person/<name> through `ingressUrl` until the greeting
 * comes back or `deadlineMs` (a Date.now() time) passes; throws with the last answer then.
 */
export async function greet(
  ingressUrl: string,
  name: string,
  idempotencyKey: string,
  deadlineMs: number,
): Promise<Greeting> {
  const startedAt = Date.now();
  let retries = 0;
  let polls = 0;
  let target = new URL(`example/person/${encodeURIComponent(name)}`, ingressUrl);
  let method: "PUT" | "GET" = "PUT";
  for (;;) {
    const attempt = await send(target, method, name, idempotencyKey);
    if (attempt.kind === "greeting") return { text: attempt.text, retries, polls, tookMs: Date.now() - startedAt };
    if (attempt.kind === "poll") {
      // 202: the request is taken; its reply is polled where the ingress said.
      target = new URL(attempt.location, ingressUrl);
      method = "GET";
      polls++;
      continue;
    }
    if (Date.now() + attempt.gapMs > deadlineMs) {
      throw new Error(
        `greeting ${name} through ${ingressUrl}: no answer after ${((Date.now() - startedAt) / 1000).toFixed(1)} s and ${retries + 1} attempts; last: ${attempt.why}`,
      );
    }
    retries++;
    await sleep(attempt.gapMs);
  }
}

async function send(target: URL, method: "PUT" | "GET", name: string, idempotencyKey: string): Promise<Attempt> {
  let response: Response;
  try {
    response = await fetch(target, {
      method,
      headers: {
        prefer: `wait=${WAIT_SECONDS}`,
        ...(method === "PUT"
          ? { "content-type": "application/vnd.example/GreetRequest", "idempotency-key": idempotencyKey }
          : {}),
      },
      ...(method === "PUT" ? { body: JSON.stringify({ name }) } : {}),
      signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
    });
  } catch (error) {
    const cause = error instanceof Error && error.cause instanceof Error ? error.cause.message : String(error);
    return { kind: "again", gapMs: RETRY_GAP_MS_DEFAULT, why: `${method} ${target.href} failed: ${cause}` };
  }
  const body = await response.text();
  if (response.status === 200) return { kind: "greeting", text: body };
  const location = response.headers.get("location");
  if (response.status === 202 && location !== null) return { kind: "poll", location };
  if (response.status === 503) {
    const seconds = Number(response.headers.get("retry-after") ?? Number.NaN);
    const gapMs =
      Number.isFinite(seconds) && seconds >= 0 ? Math.min(seconds * 1000, RETRY_GAP_MS_MAX) : RETRY_GAP_MS_DEFAULT;
    return { kind: "again", gapMs, why: `503 ${body.trim()}` };
  }
  throw new Error(`greeting ${name}: ${method} ${target.href} answered ${response.status}: ${body.trim()}`);
}
