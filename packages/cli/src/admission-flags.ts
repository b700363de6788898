// --memory-budget and --ingress-hold, shared by eddy run and eddy dev: how much work the
// runtime takes in before its sources wait, and how long the HTTP ingress holds a request
// that finds no room before it answers 503 with Retry-After.
import { parseDuration } from "@eddy/runtime";
import { parseSize } from "./sizes.ts";
import { UsageError } from "./usage.ts";

export const ADMISSION_OPTIONS = {
  "memory-budget": { type: "string" },
  "ingress-hold": { type: "string" },
} as const;

/** Below this a budget holds a few hundred small messages: less would serialize everything. */
const MEMORY_BUDGET_BYTES_MIN = 64 * 1024;

export interface AdmissionFlags {
  readonly memoryBudgetBytes?: number;
  readonly ingressHoldMs?: number;
}

export function admissionFlags(values: {
  readonly "memory-budget"?: string | undefined;
  readonly "ingress-hold"?: string | undefined;
}): AdmissionFlags {
  const budgetText = values["memory-budget"];
  const holdText = values["ingress-hold"];
  let memoryBudgetBytes: number | undefined;
  if (budgetText !== undefined) {
    memoryBudgetBytes = parseSize("--memory-budget", budgetText, "24MiB");
    if (memoryBudgetBytes < MEMORY_BUDGET_BYTES_MIN) {
      throw new UsageError(`--memory-budget: "${budgetText}" is under 64KiB; expected a size such as 24MiB`);
    }
  }
  let ingressHoldMs: number | undefined;
  if (holdText !== undefined) {
    const parsed = parseDuration(holdText);
    if (!parsed.ok)
      throw new UsageError(`--ingress-hold: "${holdText}" ${parsed.reason}; expected a duration such as 10s`);
    ingressHoldMs = parsed.ms;
  }
  return {
    ...(memoryBudgetBytes === undefined ? {} : { memoryBudgetBytes }),
    ...(ingressHoldMs === undefined ? {} : { ingressHoldMs }),
  };
}
