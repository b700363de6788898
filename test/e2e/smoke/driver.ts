// The smoke test's source and checker, talking to a running Eddy over the playground
// ingress and egress. Commands carry an Idempotency-Key, so a command whose reply was
// lost to a crash is retried without being applied twice (the source is exactly-once,
// as StateFun's checkpointed source is).
import { setTimeout as sleep } from "node:timers/promises";
import {
  FUNCTION_TYPENAME,
  SOURCE_COMMAND_TYPENAME,
  type SourceCommand,
  VERIFICATION_TOPIC,
  type VerificationResult,
  type Workload,
} from "./commands.ts";

export interface Endpoints {
  /** Where the runtime's playground ingress and egress listen right now (they move when it restarts). */
  ingressUrl(): string;
  egressUrl(): string;
}

/** Sends one source command until the runtime acknowledges it (200), riding out restarts. `key` makes retries idempotent. */
export async function sendCommand(
  endpoints: Endpoints,
  key: string,
  command: SourceCommand,
  deadlineMs: number,
): Promise<void> {
  for (let attempt = 0; ; attempt++) {
    try {
      const response = await fetch(`${endpoints.ingressUrl()}${FUNCTION_TYPENAME}/${command.target}`, {
        method: "PUT",
        headers: {
          "content-type": `application/vnd.${SOURCE_COMMAND_TYPENAME}`,
          "idempotency-key": key,
        },
        body: JSON.stringify(command),
        signal: AbortSignal.timeout(5_000),
      });
      const text = await response.text();
      if (response.status === 200) return;
      if (response.status !== 503) throw new Error(`command ${key}: HTTP ${response.status}: ${text}`);
    } catch (error) {
      if (error instanceof Error && error.message.startsWith(`command ${key}:`)) throw error;
      // The runtime is down or restarting: try again.
    }
    if (Date.now() > deadlineMs) throw new Error(`command ${key} was never acknowledged`);
    await sleep(Math.min(20 * 2 ** attempt, 200));
  }
}

/**
 * Sends every command with `concurrency` senders; order per sender is kept. `paceMs`: a
 * sender's pause after each acknowledged command, to spread the sending over time.
 */
export async function sendAll(
  endpoints: Endpoints,
  workload: Workload,
  concurrency: number,
  deadlineMs: number,
  paceMs = 0,
): Promise<void> {
  let next = 0;
  const senders = Array.from({ length: concurrency }, async () => {
    while (next < workload.commands.length) {
      const position = next++;
      await sendCommand(endpoints, `smoke-${position}`, workload.commands[position] as SourceCommand, deadlineMs);
      if (paceMs > 0) await sleep(paceMs);
    }
  });
  await Promise.all(senders);
}

/** Pops one record of a playground egress topic, or undefined when there is none (or the runtime is down). */
export async function pop(endpoints: Endpoints, topic: string): Promise<string | undefined> {
  try {
    const response = await fetch(`${endpoints.egressUrl()}${topic}`, { signal: AbortSignal.timeout(5_000) });
    const text = await response.text();
    if (response.status === 200) return text;
    if (response.status === 404) return undefined;
    throw new Error(`GET ${topic}: HTTP ${response.status}: ${text}`);
  } catch (error) {
    if (error instanceof Error && error.message.startsWith("GET ")) throw error;
    return undefined;
  }
}

/** Waits (up to ~5 s of empty polls) for the next record of a topic; the error carries the runtime's output. */
export async function nextRecord(endpoints: Endpoints & { readonly output: string }, topic: string): Promise<string> {
  for (let tries = 0; tries < 500; tries++) {
    const record = await pop(endpoints, topic);
    if (record !== undefined) return record;
    await sleep(10);
  }
  throw new Error(`no record arrived on ${topic}\n${endpoints.output}`);
}

/**
 * StateFun's checker: keeps asking every instance to verify against its expected count
 * until each has reported actual == expected; any actual > expected fails at once.
 */
let verifications = 0;

export async function verifyAll(
  endpoints: Endpoints,
  expected: readonly number[],
  deadlineMs: number,
  /** The next verification record, or undefined for none yet; default: popped from the playground egress. */
  nextVerification: () => Promise<string | undefined> = () => pop(endpoints, VERIFICATION_TOPIC),
): Promise<void> {
  const pending = new Set(expected.map((_, id) => id));
  const call = verifications++;
  let round = 0;
  while (pending.size > 0) {
    if (Date.now() > deadlineMs) {
      const sample = [...pending].slice(0, 10).join(", ");
      throw new Error(`${pending.size} instance(s) never reached their expected count (e.g. ${sample})`);
    }
    await Promise.all(
      [...pending].map((id) =>
        sendCommand(
          endpoints,
          `verify-${call}-${round}-${id}`,
          { target: id, commands: [{ verify: expected[id] ?? 0 }] },
          deadlineMs,
        ),
      ),
    );
    round++;
    const roundEndsAt = Date.now() + 1_000;
    while (Date.now() < roundEndsAt && pending.size > 0) {
      const record = await nextVerification();
      if (record === undefined) {
        await sleep(20);
        continue;
      }
      const result = JSON.parse(record) as VerificationResult;
      if (result.actual > result.expected) {
        throw new Error(`instance ${result.id} over-counted: actual ${result.actual} > expected ${result.expected}`);
      }
      if (result.actual === result.expected) pending.delete(result.id);
    }
  }
}
