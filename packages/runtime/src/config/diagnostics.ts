// The one error format of the config loader. A diagnostic is a value, never thrown: it
// names the file, the 1-based line and column of the offending YAML node, the dotted field
// path inside the document, what was wrong and what was expected.

export interface SourceLocation {
  readonly file: string;
  /** 1-based. */
  readonly line: number;
  /** 1-based. */
  readonly column: number;
}

/** A location plus the dotted field path there, e.g. `spec.functions`. */
export interface FieldLocation extends SourceLocation {
  readonly field: string;
}

export function formatLocation(location: SourceLocation): string {
  return `${location.file}:${location.line}:${location.column}`;
}

export const ConfigErrorCode = {
  /** The file is not well-formed YAML. */
  SYNTAX: "syntax",
  /** The file could not be read. */
  UNREADABLE: "unreadable",
  MISSING_FIELD: "missing-field",
  /** A value of the wrong YAML type (a list where a string belongs, ...). */
  WRONG_TYPE: "wrong-type",
  /** A value of the right type that is not acceptable (a bad duration, a negative size, ...). */
  INVALID_VALUE: "invalid-value",
  UNKNOWN_KIND: "unknown-kind",
  /** A function type, namespace, ingress or egress bound twice. */
  DUPLICATE: "duplicate",
  /** A file referenced by the configuration (TLS material) cannot be read. */
  MISSING_FILE: "missing-file",
} as const;
export type ConfigErrorCode = (typeof ConfigErrorCode)[keyof typeof ConfigErrorCode];

export const ConfigWarningCode = {
  /** An unknown property that looks like a misspelt known one. */
  LIKELY_TYPO: "likely-typo",
  /** A known property that has no effect where it is (shadowed, or meaningless for this transport). */
  IGNORED: "ignored",
  DUPLICATE_KEY: "duplicate-key",
} as const;
export type ConfigWarningCode = (typeof ConfigWarningCode)[keyof typeof ConfigWarningCode];

function prefix(location: SourceLocation, field: string): string {
  return field === "" ? `${formatLocation(location)}: ` : `${formatLocation(location)}: ${field}: `;
}

export class ConfigError implements SourceLocation {
  readonly code: ConfigErrorCode;
  readonly file: string;
  readonly line: number;
  readonly column: number;
  /** Dotted path inside the document, e.g. `spec.transport.call`; empty for the document itself. */
  readonly field: string;
  readonly message: string;
  readonly expected: string;

  constructor(code: ConfigErrorCode, location: SourceLocation, field: string, message: string, expected: string) {
    this.code = code;
    this.file = location.file;
    this.line = location.line;
    this.column = location.column;
    this.field = field;
    this.message = message;
    this.expected = expected;
  }

  /** `module.yaml:12:5: spec.transport.call: "2 mins" is not a duration; expected e.g. 2min, 30s, 500ms` */
  format(): string {
    return `${prefix(this, this.field)}${this.message}; expected ${this.expected}`;
  }
}

export class ConfigWarning implements SourceLocation {
  readonly code: ConfigWarningCode;
  readonly file: string;
  readonly line: number;
  readonly column: number;
  readonly field: string;
  readonly message: string;

  constructor(code: ConfigWarningCode, location: SourceLocation, field: string, message: string) {
    this.code = code;
    this.file = location.file;
    this.line = location.line;
    this.column = location.column;
    this.field = field;
    this.message = message;
  }

  /** `module.yaml:4:3: spec.urlPathTemplte: unknown property, ignored; did you mean urlPathTemplate?` */
  format(): string {
    return `${prefix(this, this.field)}${this.message}`;
  }
}

/** In source order within a file (stable; files keep the order they were loaded in). */
export function sortDiagnostics<T extends SourceLocation>(diagnostics: readonly T[]): T[] {
  const fileOrder = new Map<string, number>();
  for (const d of diagnostics) if (!fileOrder.has(d.file)) fileOrder.set(d.file, fileOrder.size);
  const rank = (d: T) => fileOrder.get(d.file) ?? 0;
  return [...diagnostics].sort((a, b) => rank(a) - rank(b) || a.line - b.line || a.column - b.column);
}
