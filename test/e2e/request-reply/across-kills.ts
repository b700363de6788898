// The exactly-once check of request-reply across kill -9 of the runtime: one client sends
// requests in order to a counter, each with its own Idempotency-Key and retried until
// answered, while the runtime is killed with SIGKILL at random moments and restarted on the
// same state directory. Each answer is the count after that request: a request applied twice
// would skip a number, one lost would never be answered.
import { setTimeout as sleep } from "node:timers/promises";
import type { EddyProcess } from "../smoke/cluster.ts";

/** How long one request may go unanswered, across restarts, before the check gives up. */
const REQUEST_ANSWERED_WITHIN_MS = 60_000;
const RETRY_PAUSE_MS = 50;

export interface AcrossKillsOptions {
  /** Ingress path of the counter, e.g. "rr/counter/crash". */
  readonly path: string;
  /** Idempotency keys are `<keyPrefix>-<n>`: unique per check. */
  readonly keyPrefix: string;
  /** How many times the runtime is killed (default 3). */
  readonly kills?: number;
  /** The client runs until all kills are done and at least this many requests are answered (default 20). */
  readonly requestsMin?: number;
}

/**
 * Runs the client against `eddy` while killing and restarting it; returns the answers in
 * order (["1", "2", …] when every request applied exactly once). Throws on an answer that is
 * neither 200 nor a retryable 202/503, or when a request stays unanswered too long.
 */
export async function countAcrossKills(eddy: EddyProcess, options: AcrossKillsOptions): Promise<string[]> {
  const kills = options.kills ?? 3;
  const requestsMin = options.requestsMin ?? 20;
  const answers: string[] = [];
  let killerDone = false;
  const client = (async () => {
    for (let request = 1; !killerDone || request <= requestsMin; request++) {
      answers.push(await askUntilAnswered(eddy, options.path, `${options.keyPrefix}-${request}`));
    }
  })();
  // The client fails alone if it fails: the killer stops at once then, not after its kills.
  let clientFailed = false;
  client.catch(() => {
    clientFailed = true;
  });
  try {
    for (let kill = 0; kill < kills && !clientFailed; kill++) {
      await sleep(50 + Math.floor(Math.random() * 150));
      await eddy.kill();
      await eddy.start();
    }
  } finally {
    killerDone = true;
  }
  await client;
  return answers;
}

/** POSTs with `Prefer: wait=5` and the key until a 200, through the runtime's restarts. */
async function askUntilAnswered(eddy: EddyProcess, path: string, key: string): Promise<string> {
  const deadline = Date.now() + REQUEST_ANSWERED_WITHIN_MS;
  while (Date.now() < deadline) {
    let status: number;
    let body: string;
    try {
      const response = await fetch(`${eddy.ingressUrl()}${path}`, {
        method: "POST",
        headers: { prefer: "wait=5", "idempotency-key": key },
        body: "x",
      });
      status = response.status;
      body = await response.text();
    } catch {
      await sleep(RETRY_PAUSE_MS); // the runtime is down, or went down while answering
      continue;
    }
    if (status === 200) return body;
    if (status !== 202 && status !== 503)
      throw new Error(`${path} with Idempotency-Key ${key}: HTTP ${status}: ${body}`);
    if (status === 503) await sleep(RETRY_PAUSE_MS);
  }
  throw new Error(`${path} with Idempotency-Key ${key}: not answered within ${REQUEST_ANSWERED_WITHIN_MS} ms`);
}
