// Keeps V8's old generation near a target size, the way Go's GOMEMLIMIT does: a soft limit
// that makes the collector work harder only as the heap nears it, never a hard cap.
//
// After a full collection V8 lets the old generation grow to what survived times a factor
// it picks from its GC and allocation speeds, up to 4. The runtime keeps little for long (the
// memory budget bounds admitted work) but allocates fast, so V8 picks a high factor and the
// heap fills with garbage: behind a Kafka backlog, peak heap 300–850 MiB where 60–110 MiB was
// live (bench/backlog). A fixed low factor (`--heap-growing-percent`) bounds that but makes
// every full collection come sooner, also when the heap is far below any concern: 30%, with
// a 2×8 MiB young generation, cost about 40% of the records/s.
//
// The governor instead chooses the factor after each full collection so that the next limit
// lands on the target: target ÷ live, kept between 1.1 (V8's own minimum: with more live than
// the target the heap grows with it, slowly, and nothing fails) and 4 (V8's maximum). V8 reads
// `--heap-growing-percent` each time it sets a limit, so the flag, set here after a
// collection, shapes the limit the next one sets; live sizes change slowly next to that.
import { constants, type PerformanceEntry, PerformanceObserver } from "node:perf_hooks";
import { getHeapStatistics, setFlagsFromString } from "node:v8";

/** V8's smallest and largest old-generation growing factors (heap-controller.h). */
const FACTOR_MIN = 1.1;
const FACTOR_MAX = 4;
/** The smallest target: the runtime's code, modules and connections alone take ~50 MiB. */
const HEAP_TARGET_BYTES_MIN = 64 * 1024 * 1024;

/**
 * The old generation's target for a memory budget: four times the budget (a budgeted byte
 * costs a few bytes of heap while admitted), at least 64 MiB. For the default 24 MiB budget,
 * 96 MiB: with the eddy command's other settings, peak RSS 333–361 MiB behind 100k to 3M
 * waiting Kafka records; a 16 MiB budget (64 MiB) gave ~60 MiB less at ~15% fewer records/s
 * (bench/backlog).
 */
export function heapTargetBytes(memoryBudgetBytes: number): number {
  return Math.max(HEAP_TARGET_BYTES_MIN, 4 * memoryBudgetBytes);
}

export interface HeapGovernor {
  readonly targetBytes: number;
  /** The growing percent last set (0: never set). */
  readonly growingPercent: number;
  stop(): void;
}

/** The `--heap-growing-percent` that puts the next limit at `targetBytes` when `liveBytes` survived. */
export function growingPercentFor(liveBytes: number, targetBytes: number): number {
  const factor = Math.min(FACTOR_MAX, Math.max(FACTOR_MIN, targetBytes / Math.max(liveBytes, 1)));
  return Math.max(1, Math.round((factor - 1) * 100));
}

/**
 * Steers the old generation toward `targetBytes` from now on. Process-wide (a V8 flag):
 * the eddy command starts one for the runtime; an embedder decides for its own process.
 */
export function startHeapGovernor(targetBytes: number): HeapGovernor {
  let growingPercent = 0;
  const steer = () => {
    const live = getHeapStatistics().used_heap_size;
    const percent = growingPercentFor(live, targetBytes);
    if (percent === growingPercent) return;
    growingPercent = percent;
    setFlagsFromString(`--heap-growing-percent=${percent}`);
  };
  const observer = new PerformanceObserver((list) => {
    for (const entry of list.getEntries()) {
      const kind = (entry as PerformanceEntry & { detail?: { kind?: number } }).detail?.kind;
      if (kind === constants.NODE_PERFORMANCE_GC_MAJOR) {
        steer();
        return;
      }
    }
  });
  observer.observe({ entryTypes: ["gc"] });
  // Until the first full collection, from what the heap holds now (little: the factor is 4).
  steer();
  return {
    targetBytes,
    get growingPercent() {
      return growingPercent;
    },
    /** Hands the factor back to V8. */
    stop() {
      observer.disconnect();
      if (growingPercent !== 0) setFlagsFromString("--heap-growing-percent=0");
      growingPercent = 0;
    },
  };
}
