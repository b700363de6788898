// --retention: how long the ingress remembers idempotency keys and the replies of
// request-reply calls (default 24 h), in Flink's duration syntax like every other duration.
import { parseDuration } from "@eddy/runtime";
import { UsageError } from "./usage.ts";

export function parseRetention(text: string | undefined): number | undefined {
  if (text === undefined) return undefined;
  const parsed = parseDuration(text);
  if (!parsed.ok || parsed.ms < 1000) {
    const why = parsed.ok ? "is shorter than 1s" : parsed.reason;
    throw new UsageError(`--retention: "${text}" ${why}; expected a duration such as 24h, 90min or 7d`);
  }
  return parsed.ms;
}
