// Flink's duration syntax (org.apache.flink.util.TimeUtils.parseDuration), which StateFun
// uses for every timeout in module.yaml: digits, optional whitespace, an optional unit; no
// unit means milliseconds. No sign, no fraction. Results are milliseconds (fractional for
// µs and ns, which Flink accepts too).

const UNIT_MS: ReadonlyMap<string, number> = new Map([
  ...labels(86_400_000, ["d"], ["day"]),
  ...labels(3_600_000, ["h"], ["hour"]),
  ...labels(60_000, ["min", "m"], ["minute"]),
  ...labels(1000, ["s"], ["sec", "second"]),
  ...labels(1, ["ms"], ["milli", "millisecond"]),
  // Flink spells the microsecond label `µs`; `us` is accepted too because nobody can type µ.
  ...labels(1e-3, ["µs", "us"], ["micro", "microsecond"]),
  ...labels(1e-6, ["ns"], ["nano", "nanosecond"]),
]);

function labels(ms: number, singular: readonly string[], plural: readonly string[]): [string, number][] {
  return [...singular, ...plural, ...plural.map((label) => `${label}s`)].map((label) => [label, ms]);
}

export const DURATION_EXAMPLES = "e.g. 2min, 30s, 500ms";
export const DURATION_UNITS = "d, h, min, s, ms, µs, ns";

export type DurationParse =
  | { readonly ok: true; readonly ms: number }
  | { readonly ok: false; readonly reason: string };

export function parseDuration(text: string): DurationParse {
  const trimmed = text.trim();
  const digits = /^[0-9]*/.exec(trimmed)?.[0] ?? "";
  if (digits === "") {
    return { ok: false, reason: "does not start with a number" };
  }
  const value = Number(digits);
  const unit = trimmed.slice(digits.length).trim().toLowerCase();
  const unitMs = unit === "" ? 1 : UNIT_MS.get(unit);
  if (unitMs === undefined) {
    return { ok: false, reason: `unknown unit "${unit}"` };
  }
  const ms = value * unitMs;
  if (!Number.isSafeInteger(value) || !Number.isFinite(ms) || ms > Number.MAX_SAFE_INTEGER) {
    return { ok: false, reason: "is too large" };
  }
  return { ok: true, ms };
}

/** The shortest exact rendering in the same syntax: 120000 → "2min", 1500 → "1500ms". */
export function formatDuration(ms: number): string {
  const units: readonly [string, number][] = [
    ["d", 86_400_000],
    ["h", 3_600_000],
    ["min", 60_000],
    ["s", 1000],
    ["ms", 1],
  ];
  for (const [label, size] of units) {
    if (ms !== 0 && ms % size === 0) return `${ms / size}${label}`;
  }
  return `${ms}ms`;
}
