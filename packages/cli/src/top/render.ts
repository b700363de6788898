// `eddy top`'s view as plain text lines: a header, the totals, and a table with a row per
// function type. No terminal codes here (commands/top.ts adds them when it draws on a
// terminal), so --once prints exactly these lines and tests read them.
import type { LatencyMs, TopView } from "./view.ts";

/** The columns of text, left-aligned; the numbers are right-aligned so their digits line up. */
const LEFT_ALIGNED = new Set([0, 7, 8]);
const COLUMNS = ["FUNCTION TYPE", "MSG/S", "P50 MS", "P99 MS", "BACKLOG", "IN FLIGHT", "FAIL/S", "PAUSED", "HEALTH"];

/** A rate or a latency: a decimal below 10, whole above; "-" when not known. */
export function formatNumber(value: number | null | undefined): string {
  if (value === null || value === undefined) return "-";
  return value < 10 ? value.toFixed(1) : Math.round(value).toString();
}

function latency(value: LatencyMs | null, which: "p50" | "p99"): string {
  return value === null ? "-" : formatNumber(value[which]);
}

export function renderTop(view: TopView, header: string): string[] {
  const { totals } = view;
  const lines = [
    header,
    [
      `total ${formatNumber(totals.messagesPerSecond)} msg/s`,
      `ingress ${formatNumber(totals.ingressRequestsPerSecond)} req/s`,
      `egress ${formatNumber(totals.egressRecordsPerSecond)} rec/s`,
      `commit p99 ${latency(totals.commitLatencyMs, "p99")} ms`,
      `Kafka lag ${totals.kafkaLagMessages ?? "-"}`,
    ].join("   "),
    "",
  ];
  const cells = view.rows.map((row) => [
    row.typename,
    formatNumber(row.messagesPerSecond),
    latency(row.latencyMs, "p50"),
    latency(row.latencyMs, "p99"),
    String(row.backlog),
    String(row.inFlight),
    formatNumber(row.failuresPerSecond),
    row.paused ? "yes" : "no",
    row.health ?? "-",
  ]);
  const widths = COLUMNS.map((title, column) =>
    Math.max(title.length, ...cells.map((row) => (row[column] ?? "").length)),
  );
  const line = (row: readonly string[]) =>
    row
      .map((cell, column) =>
        LEFT_ALIGNED.has(column) ? cell.padEnd(widths[column] ?? 0) : cell.padStart(widths[column] ?? 0),
      )
      .join("  ")
      .trimEnd();
  lines.push(line(COLUMNS), ...cells.map(line));
  if (cells.length === 0) lines.push("(no function types yet)");
  return lines;
}
