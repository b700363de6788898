// The checkpoint flags `run` and `dev` share: --checkpoints URL, --checkpoint-interval,
// --checkpoint-retain, --ack-after-checkpoint.
import { type CheckpointSettings, parseDuration } from "@eddy/runtime";
import { UsageError } from "./usage.ts";

export const CHECKPOINT_OPTIONS = {
  checkpoints: { type: "string" },
  "checkpoint-interval": { type: "string" },
  "checkpoint-retain": { type: "string" },
  "ack-after-checkpoint": { type: "boolean" },
} as const;

export function checkpointSettings(values: {
  checkpoints?: string | undefined;
  "checkpoint-interval"?: string | undefined;
  "checkpoint-retain"?: string | undefined;
  "ack-after-checkpoint"?: boolean | undefined;
}): CheckpointSettings | undefined {
  const location = values.checkpoints;
  if (location === undefined) {
    if (
      values["checkpoint-interval"] !== undefined ||
      values["checkpoint-retain"] !== undefined ||
      values["ack-after-checkpoint"] !== undefined
    ) {
      throw new UsageError(
        "--checkpoint-interval, --checkpoint-retain and --ack-after-checkpoint need --checkpoints <url>",
      );
    }
    return undefined;
  }
  let intervalMs: number | undefined;
  const interval = values["checkpoint-interval"];
  if (interval !== undefined) {
    const parsed = interval === "0" ? { ok: true as const, ms: 0 } : parseDuration(interval);
    if (!parsed.ok || (parsed.ms > 0 && parsed.ms < 100)) {
      const why = parsed.ok ? "is shorter than 100ms" : parsed.reason;
      throw new UsageError(
        `--checkpoint-interval: "${interval}" ${why}; expected a duration such as 10s or 1min (0: only on demand)`,
      );
    }
    intervalMs = parsed.ms;
  }
  let keep: number | undefined;
  const retain = values["checkpoint-retain"];
  if (retain !== undefined) {
    keep = Number(retain);
    if (!Number.isSafeInteger(keep) || keep < 1)
      throw new UsageError(`--checkpoint-retain: "${retain}" is not a count of 1 or more`);
  }
  return {
    location,
    ...(intervalMs === undefined ? {} : { intervalMs }),
    ...(keep === undefined ? {} : { keep }),
    ...(values["ack-after-checkpoint"] === true ? { acknowledgeAfterCheckpoint: true } : {}),
  };
}
