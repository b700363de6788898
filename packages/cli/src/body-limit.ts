// --ingress-body-limit: the largest request body the HTTP ingress takes (default 4 MiB),
// in bytes or with a binary unit (512KiB, 32MiB). At most what a function call may carry.
import { INGRESS_BODY_BYTES_LIMIT_MAX } from "@eddy/runtime";
import { parseSize } from "./sizes.ts";
import { UsageError } from "./usage.ts";

export function parseIngressBodyLimit(text: string | undefined): number | undefined {
  if (text === undefined) return undefined;
  const bytes = parseSize("--ingress-body-limit", text, "4MiB");
  if (bytes > INGRESS_BODY_BYTES_LIMIT_MAX) {
    throw new UsageError(
      `--ingress-body-limit: "${text}" is over ${INGRESS_BODY_BYTES_LIMIT_MAX / (1 << 20)}MiB, the most a function call carries (payload_max_bytes' default): a larger message could never be delivered`,
    );
  }
  return bytes;
}
