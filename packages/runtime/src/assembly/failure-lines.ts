// The engine's failure reports as log lines, for the embedded runtime and a cluster worker
// alike: a dead letter is one line each (each has its own id to replay), while a batch whose
// call budget ran out is said once per address and then summarized with a count, since under
// the retry policy the same address fails the same way on every retry.
import { type Address, addressKey, formatAddress } from "../core/address.ts";
import type { FailurePolicy } from "../core/partition-core.ts";
import type { DeadLetter } from "../core/records.ts";
import { addressFields, type Logger } from "../observe/logger.ts";
import { RepeatedFailureLog, SUMMARY_INTERVAL_MS_DEFAULT } from "../observe/repeated-failure-log.ts";

export interface FailureLines {
  readonly onDeadLetter: (letter: DeadLetter, id: string) => void;
  readonly onInvokeFailure: (target: Address, reason: string) => void;
  /** Says the repeats not yet summarized; for the runtime's stop. */
  flush(): void;
}

export function failureLines(log: Logger, policy: FailurePolicy, clock?: () => number): FailureLines {
  const failures = new RepeatedFailureLog<Address>({
    report(report) {
      if (report.kind === "recovered") return; // never reported: the engine says only when a batch fails
      const fields = { ...addressFields(report.context), failurePolicy: policy };
      switch (report.kind) {
        case "failing":
          log.warn(
            `${formatAddress(report.context)}: ${report.cause} (failure policy: ${policy}); repeats are summarized every ${SUMMARY_INTERVAL_MS_DEFAULT / 1000} s`,
            fields,
          );
          return;
        case "repeated":
          log.warn(
            `${formatAddress(report.context)} failed ${report.count} more time${report.count === 1 ? "" : "s"} in the last ${Math.round(report.periodMs / 1000)} s (last: ${report.lastCause})`,
            { ...fields, repeated: report.count, periodMs: report.periodMs },
          );
          return;
      }
    },
    ...(clock === undefined ? {} : { clock }),
  });
  return {
    onDeadLetter: (letter, id) =>
      log.warn(`dead letter ${id} for ${formatAddress(letter.target)}: ${letter.reason}`, {
        ...addressFields(letter.target),
        deadLetter: id,
      }),
    onInvokeFailure: (target, reason) => failures.failed(addressKey(target), reason, target),
    flush: () => failures.flush(),
  };
}
