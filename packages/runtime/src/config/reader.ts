// Typed reads from a parsed YAML document that never throw: each read either returns a
// value or records a ConfigError at the exact node (file:line:column, dotted field) and
// returns undefined, so one pass over a file reports every problem in it.
import { type Document, isAlias, isMap, isScalar, isSeq, type LineCounter, type Node, type Scalar } from "yaml";
import {
  ConfigError,
  type ConfigErrorCode,
  ConfigWarning,
  ConfigWarningCode,
  type FieldLocation,
  type SourceLocation,
} from "./diagnostics.ts";
import { DURATION_EXAMPLES, DURATION_UNITS, parseDuration } from "./duration.ts";

/** A value in the document together with its dotted path and the node to point at. */
export interface Entry {
  readonly path: string;
  /** Null for an empty value (`key:`). */
  readonly value: Node | null;
  /** The key, when the value is empty or the problem is the key itself. */
  readonly key: Node | undefined;
}

/** A mapping with its keys resolved to strings; the last of duplicate keys wins, as in StateFun. */
export interface MapView {
  readonly path: string;
  readonly entries: ReadonlyMap<string, Entry>;
  /** Where a missing key is reported: the key that holds this mapping, or the mapping itself. */
  readonly anchor: Node;
}

export function child(path: string, key: string | number): string {
  if (typeof key === "number") return `${path}[${key}]`;
  return path === "" ? key : `${path}.${key}`;
}

export class Reader {
  readonly file: string;
  readonly errors: ConfigError[];
  readonly warnings: ConfigWarning[];
  readonly #lineCounter: LineCounter;
  readonly #document: Document.Parsed | undefined;

  constructor(
    file: string,
    lineCounter: LineCounter,
    document: Document.Parsed | undefined,
    sink: { errors: ConfigError[]; warnings: ConfigWarning[] },
  ) {
    this.file = file;
    this.#lineCounter = lineCounter;
    this.#document = document;
    this.errors = sink.errors;
    this.warnings = sink.warnings;
  }

  /** The location of a field: its value, or its key when the value is empty. */
  locateField(entry: Entry): FieldLocation {
    return { ...this.locate(this.where(entry)), field: entry.path };
  }

  locate(at: Node | number | undefined): SourceLocation {
    const offset = typeof at === "number" ? at : (at?.range?.[0] ?? 0);
    const { line, col } = this.#lineCounter.linePos(offset);
    return { file: this.file, line, column: col };
  }

  error(code: ConfigErrorCode, at: Node | number | undefined, field: string, message: string, expected: string): void {
    this.errors.push(new ConfigError(code, this.locate(at), field, message, expected));
  }

  warn(code: ConfigWarningCode, at: Node | number | undefined, field: string, message: string): void {
    this.warnings.push(new ConfigWarning(code, this.locate(at), field, message));
  }

  /** Where an entry's problem is shown: its value, or its key when the value is empty. */
  where(entry: Entry): Node | undefined {
    return entry.value ?? entry.key;
  }

  resolve(node: Node | null): Node | null {
    if (node !== null && isAlias(node) && this.#document !== undefined) {
      return (node.resolve(this.#document) as Node | undefined) ?? null;
    }
    return node;
  }

  /** Null, or a scalar whose value is null (`key:`, `key: ~`). */
  isEmpty(entry: Entry): boolean {
    const node = this.resolve(entry.value);
    return node === null || (isScalar(node) && node.value === null);
  }

  map(entry: Entry, expected: string): MapView | undefined {
    const node = this.resolve(entry.value);
    if (node === null || !isMap(node)) {
      this.wrongType(entry, expected);
      return undefined;
    }
    const entries = new Map<string, Entry>();
    for (const pair of node.items) {
      const keyNode = pair.key as Node | null;
      const key = keyNode !== null && isScalar(keyNode) ? String(keyNode.value) : undefined;
      if (key === undefined) {
        this.error("wrong-type", keyNode ?? node, entry.path, "a key is not a plain string", "string keys");
        continue;
      }
      const path = child(entry.path, key);
      if (entries.has(key)) {
        this.warn(ConfigWarningCode.DUPLICATE_KEY, keyNode ?? node, path, "duplicate key; the last one wins");
      }
      entries.set(key, { path, value: (pair.value as Node | null) ?? null, key: keyNode ?? undefined });
    }
    return { path: entry.path, entries, anchor: entry.key ?? node };
  }

  /** A present, non-empty entry, or undefined with a "missing" error naming what belongs there. */
  require(map: MapView, key: string, expected: string, knownKeys: readonly string[] = []): Entry | undefined {
    const entry = map.entries.get(key);
    if (entry !== undefined && !this.isEmpty(entry)) return entry;
    const path = child(map.path, key);
    if (entry !== undefined) {
      this.error("missing-field", this.where(entry), path, `${key} is empty`, expected);
      return undefined;
    }
    // A misspelt key is the likely cause: point at it rather than at the enclosing mapping.
    const lookalike = [...map.entries.values()].find(
      (candidate) =>
        closestKey(candidate.path.slice(map.path === "" ? 0 : map.path.length + 1), [key, ...knownKeys]) === key,
    );
    if (lookalike !== undefined) {
      const spelt = lookalike.path.slice(map.path === "" ? 0 : map.path.length + 1);
      this.error(
        "missing-field",
        lookalike.key,
        path,
        `missing required field ${key} (found "${spelt}": a typo?)`,
        expected,
      );
    } else {
      this.error("missing-field", map.anchor, path, `missing required field ${key}`, expected);
    }
    return undefined;
  }

  /** An entry that is present and not empty; an empty optional value means "use the default". */
  optional(map: MapView, key: string): Entry | undefined {
    const entry = map.entries.get(key);
    return entry === undefined || this.isEmpty(entry) ? undefined : entry;
  }

  /** A scalar as text. Numbers and booleans keep their source spelling, as Jackson coerces them. */
  string(entry: Entry, expected: string): string | undefined {
    const node = this.resolve(entry.value);
    if (node === null || !isScalar(node) || node.value === null) {
      this.wrongType(entry, expected);
      return undefined;
    }
    return typeof node.value === "string" ? node.value : scalarSource(node);
  }

  integer(entry: Entry, expected: string, min: number, max = Number.MAX_SAFE_INTEGER): number | undefined {
    const node = this.resolve(entry.value);
    if (node === null || !isScalar(node) || node.value === null) {
      this.wrongType(entry, expected);
      return undefined;
    }
    const text = scalarSource(node);
    const value = typeof node.value === "number" ? node.value : /^[-+]?[0-9]+$/.test(text) ? Number(text) : Number.NaN;
    if (!Number.isSafeInteger(value)) {
      this.error("wrong-type", node, entry.path, `${quote(text)} is not an integer`, expected);
      return undefined;
    }
    if (value < min || value > max) {
      const bound = value < min ? `below the minimum ${min}` : `above the maximum ${max}`;
      this.error("invalid-value", node, entry.path, `${text} is ${bound}`, expected);
      return undefined;
    }
    return value;
  }

  /** A Flink duration in ms; a YAML number is milliseconds, as in StateFun. */
  duration(entry: Entry, options: { readonly allowZero: boolean }): number | undefined {
    const expected = `a duration, ${DURATION_EXAMPLES} (units ${DURATION_UNITS}; a bare number is milliseconds)`;
    const node = this.resolve(entry.value);
    if (node === null || !isScalar(node) || node.value === null) {
      this.wrongType(entry, expected);
      return undefined;
    }
    const text = scalarSource(node);
    const parsed = parseDuration(text);
    if (!parsed.ok) {
      this.error("invalid-value", node, entry.path, `${quote(text)} is not a duration: ${parsed.reason}`, expected);
      return undefined;
    }
    if (parsed.ms === 0 && !options.allowZero) {
      this.error(
        "invalid-value",
        node,
        entry.path,
        `${quote(text)} is zero`,
        `a duration larger than 0, ${DURATION_EXAMPLES}`,
      );
      return undefined;
    }
    return parsed.ms;
  }

  list(entry: Entry, expected: string): Entry[] | undefined {
    const node = this.resolve(entry.value);
    if (node === null || !isSeq(node)) {
      this.wrongType(entry, expected);
      return undefined;
    }
    return node.items.map((item, index) => ({
      path: child(entry.path, index),
      value: (item as Node | null) ?? null,
      key: node,
    }));
  }

  /**
   * Unknown keys are ignored, as StateFun does; one that looks like a misspelt known key is
   * worth a warning, because the setting it was meant to change silently keeps its default.
   */
  checkKeys(map: MapView, known: readonly string[]): void {
    for (const [key, entry] of map.entries) {
      if (known.includes(key)) continue;
      const suggestion = closestKey(key, known);
      if (suggestion !== undefined) {
        this.warn(
          ConfigWarningCode.LIKELY_TYPO,
          entry.key,
          entry.path,
          `unknown property, ignored; did you mean ${suggestion}?`,
        );
      }
    }
  }

  wrongType(entry: Entry, expected: string): void {
    const node = this.resolve(entry.value);
    const found = describeNode(node);
    this.error("wrong-type", node ?? entry.key, entry.path, `found ${found}`, expected);
  }
}

function scalarSource(node: Scalar): string {
  return typeof node.source === "string" && node.source !== "" ? node.source : String(node.value);
}

export function quote(text: string): string {
  return JSON.stringify(text);
}

function describeNode(node: Node | null): string {
  if (node === null) return "nothing";
  if (isMap(node)) return "a mapping";
  if (isSeq(node)) return "a list";
  if (isScalar(node)) {
    const value = node.value;
    if (value === null) return "nothing";
    if (typeof value === "string") return `the string ${quote(value)}`;
    if (typeof value === "number") return `the number ${scalarSource(node)}`;
    if (typeof value === "boolean") return `the boolean ${String(value)}`;
  }
  return "an unsupported value";
}

function normalizeKey(key: string): string {
  return key.toLowerCase().replace(/[-_\s]/g, "");
}

/** The known key `candidate` was most likely meant to be, if any. */
export function closestKey(candidate: string, known: readonly string[]): string | undefined {
  const normalized = normalizeKey(candidate);
  let best: { key: string; distance: number } | undefined;
  for (const key of known) {
    const distance = normalizeKey(key) === normalized ? 0 : editDistance(candidate.toLowerCase(), key.toLowerCase());
    const limit = key.length <= 4 ? 1 : 2;
    if (distance <= limit && (best === undefined || distance < best.distance)) best = { key, distance };
  }
  return best?.key;
}

/** Optimal string alignment distance: insertions, deletions, substitutions and adjacent swaps. */
function editDistance(a: string, b: string): number {
  const rows = a.length + 1;
  const cols = b.length + 1;
  const d: number[] = new Array<number>(rows * cols).fill(0);
  const at = (i: number, j: number) => d[i * cols + j] ?? 0;
  for (let i = 0; i < rows; i++) d[i * cols] = i;
  for (let j = 0; j < cols; j++) d[j] = j;
  for (let i = 1; i < rows; i++) {
    for (let j = 1; j < cols; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let value = Math.min(at(i - 1, j) + 1, at(i, j - 1) + 1, at(i - 1, j - 1) + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1])
        value = Math.min(value, at(i - 2, j - 2) + 1);
      d[i * cols + j] = value;
    }
  }
  return at(a.length, b.length);
}
