// How a transactional producer retries. A transaction that starts right after the previous
// commit often hears CONCURRENT_TRANSACTIONS (the coordinator is still writing the commit
// markers). The client's default is to wait 1 s before trying again, which made every
// transaction take a second; like Kafka's Java producer, try again after 20 ms (doubling while
// it lasts). Other errors keep the 1 s.
import { findErrorBy } from "@platformatic/kafka";

const CONCURRENT_TRANSACTIONS_RETRY_MS = 20;
const RETRY_DELAY_MS = 1_000;

/**
 * The client's retries nest (a connection's attempts inside each attempt of an operation),
 * so a broker that refuses the connection costs (retries + 1)² s before the caller hears
 * of it; 4 keeps that near 25 s and still gives CONCURRENT_TRANSACTIONS 300 ms.
 */
export const TRANSACTIONAL_RETRIES = 4;

/** The client's `retryDelay` for a transactional producer. */
export function transactionalRetryDelay(
  _client: unknown,
  _operation: string,
  attempt: number,
  _retries: number,
  error: Error,
): number {
  return findErrorBy(error, "apiId", "CONCURRENT_TRANSACTIONS") === null
    ? RETRY_DELAY_MS
    : Math.min(CONCURRENT_TRANSACTIONS_RETRY_MS * 2 ** Math.max(0, attempt - 1), RETRY_DELAY_MS);
}
