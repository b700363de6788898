// --ingress-body-limit: the largest request body the HTTP ingress takes (default 4 MiB),
// in bytes or with a binary unit (512KiB, 32MiB). At most what a function call may carry.
import { INGRESS_BODY_BYTES_LIMIT_MAX } from "@eddy/runtime";
import { UsageError } from "./usage.ts";

const UNIT_BYTES: Record<string, number> = { "": 1, b: 1, kib: 1 << 10, mib: 1 << 20 };

export function parseIngressBodyLimit(text: string | undefined): number | undefined {
  if (text === undefined) return undefined;
  const match = /^(\d+)\s*([a-z]*)$/i.exec(text.trim());
  const unit = UNIT_BYTES[(match?.[2] ?? "").toLowerCase()];
  const bytes = match === null || unit === undefined ? Number.NaN : Number(match[1]) * unit;
  if (!Number.isSafeInteger(bytes) || bytes < 1) {
    throw new UsageError(`--ingress-body-limit: "${text}" is not a size; expected bytes or KiB/MiB, such as 4MiB`);
  }
  if (bytes > INGRESS_BODY_BYTES_LIMIT_MAX) {
    throw new UsageError(
      `--ingress-body-limit: "${text}" is over ${INGRESS_BODY_BYTES_LIMIT_MAX / (1 << 20)}MiB, the most a function call carries (payload_max_bytes' default): a larger message could never be delivered`,
    );
  }
  return bytes;
}
