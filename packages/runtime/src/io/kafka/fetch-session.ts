// Fetch-session errors are no trouble with the cluster: the broker evicted the session, or the
// client's session epoch fell behind the broker's (the client moves it on only after a fetch
// without errors, while the broker moves it on after every incremental fetch, so the fetch
// after one with a partition error, say an offset out of range, carries a stale epoch). The
// client has dropped the session by then: the same fetch again opens a new one.
import { findErrorBy } from "@platformatic/kafka";

const FETCH_SESSION_ERRORS = [
  "FETCH_SESSION_ID_NOT_FOUND",
  "INVALID_FETCH_SESSION_EPOCH",
  "FETCH_SESSION_TOPIC_ID_ERROR",
];

export function isFetchSessionError(error: unknown): boolean {
  return error instanceof Error && FETCH_SESSION_ERRORS.some((id) => findErrorBy(error, "apiId", id) !== null);
}
