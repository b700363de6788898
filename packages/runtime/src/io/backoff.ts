// The one backoff formula for everything that retries the world (brokers, Kinesis, blob
// stores, function endpoints): exponential, capped, with jitter. The jitter keeps many
// readers that failed together (every shard of a stream, every partition of a broker that
// restarted) from coming back in the same millisecond; half the delay stays fixed, so the
// delay still grows with the attempts.

export interface Backoff {
  /** The delay ceiling of the first attempt. */
  readonly baseMs: number;
  /** The delay ceiling no attempt goes past. */
  readonly maxMs: number;
}

/** The connectors' retries: 100–200 ms after the first failure, doubling to 2.5–5 s. */
export const CONNECTOR_BACKOFF: Backoff = { baseMs: 200, maxMs: 5_000 };

/**
 * The pause before retry number `attempt` (1 for the first): a ceiling of baseMs·2^(attempt-1),
 * at most maxMs, of which a random half is taken off ("equal jitter"). `random` returns a
 * number in [0, 1), as Math.random does; tests pass their own.
 */
export function backoffMs(attempt: number, backoff: Backoff, random: () => number = Math.random): number {
  const exponent = Math.min(Math.max(attempt, 1) - 1, 30);
  const ceilingMs = Math.min(backoff.maxMs, backoff.baseMs * 2 ** exponent);
  return ceilingMs / 2 + random() * (ceilingMs / 2);
}
