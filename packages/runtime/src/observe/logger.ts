// The runtime's one way to say what happens: a Logger with four levels, a message for people
// and fields for machines (the function type, address, endpoint or connector a line is about).
// The eddy command logs JSON lines through pino to stderr (stdout is the command's own output),
// or readable lines when stderr is a terminal; an embedder that passes a line callback
// (RuntimeOptions.log) gets `eddy: <message>` lines as before; simulations log nowhere.
// Messages stay whole sentences (they name what they are about): the fields repeat it for
// filters and dashboards, so a reader of either never needs the other.
import { pino } from "pino";
import { type Address, formatAddress } from "../core/address.ts";
import { errorCode } from "../errors.ts";
import { prettyDestination } from "./pretty-log.ts";

export const LOG_LEVELS = ["debug", "info", "warn", "error"] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];
export const LOG_LEVEL_DEFAULT: LogLevel = "info";

export function isLogLevel(text: string): text is LogLevel {
  return (LOG_LEVELS as readonly string[]).includes(text);
}

/** What a line is about, beyond its message. Every field is optional; absent ones are not written. */
export interface LogFields {
  /** `namespace/name` of the function the line is about. */
  readonly functionType?: string;
  /** `namespace/name/id` of the instance the line is about. */
  readonly address?: string;
  /** The function endpoint's URL. */
  readonly endpoint?: string;
  /** An ingress or egress, as its lines name it: `Kafka ingress com.example/orders`. */
  readonly connector?: string;
  /** A dead letter's id (for `eddy dead-letters`). */
  readonly deadLetter?: string;
  /** The error's code (ECONNREFUSED, commit-aborted, ...), when it has one. */
  readonly error?: string;
  /** The failure policy that applies next. */
  readonly failurePolicy?: string;
  /** This worker's id, in a cluster. */
  readonly worker?: string;
  readonly checkpoint?: string;
  /** A blob store's URL (checkpoints, partition snapshots). */
  readonly blobs?: string;
  /** A summary of repeats: how many more times, within how many milliseconds. */
  readonly repeated?: number;
  readonly periodMs?: number;
  /** A bug's stack, when the line reports one. */
  readonly stack?: string;
}

export interface Logger {
  debug(message: string, fields?: LogFields): void;
  info(message: string, fields?: LogFields): void;
  warn(message: string, fields?: LogFields): void;
  error(message: string, fields?: LogFields): void;
  /** A logger whose every line carries `fields` too (a connector's name, a worker's id). */
  child(fields: LogFields): Logger;
}

/** The fields that name a function instance. */
export function addressFields(address: Address): { functionType: string; address: string } {
  return { functionType: address.typename, address: formatAddress(address) };
}

/** The field that names an error's code, when it has one. */
export function errorFields(error: unknown): { error?: string } {
  const code = errorCode(error);
  return code === "unknown" ? {} : { error: code };
}

/** Logs nothing: for tests and simulations that do not look at lines. */
export const NOOP_LOGGER: Logger = {
  debug: () => undefined,
  info: () => undefined,
  warn: () => undefined,
  error: () => undefined,
  child: () => NOOP_LOGGER,
};

const RANK: Readonly<Record<LogLevel, number>> = { debug: 0, info: 1, warn: 2, error: 3 };

/**
 * `eddy: <message>` to a line callback, at `level` and above; fields are left out, as the
 * message already says what they say, except a stack, which follows on its own lines. For
 * embedders and tests that read lines.
 */
export function lineLogger(write: (line: string) => void, level: LogLevel = LOG_LEVEL_DEFAULT): Logger {
  const least = RANK[level];
  const line = (message: string, fields?: LogFields) =>
    write(fields?.stack === undefined ? `eddy: ${message}` : `eddy: ${message}\n${fields.stack}`);
  const at = (rank: number) => (rank < least ? () => undefined : line);
  const logger: Logger = {
    debug: at(RANK.debug),
    info: at(RANK.info),
    warn: at(RANK.warn),
    error: at(RANK.error),
    child: () => logger,
  };
  return logger;
}

export interface PinoLoggerOptions {
  readonly level?: LogLevel;
  /** Where JSON lines go; default stderr, synchronously (a line written before exit is not lost). */
  readonly destination?: pino.DestinationStream;
  /** Readable lines instead of JSON; default when stderr is a terminal. Ignored with `destination`. */
  readonly pretty?: boolean;
}

let stderr: pino.DestinationStream | undefined;

/** One for the process, however many runtimes it starts (tests start many). */
function stderrDestination(): pino.DestinationStream {
  stderr ??= pino.destination({ fd: 2, sync: true });
  return stderr;
}

/** JSON lines: `{"level":"warn","time":"…","msg":"…","functionType":"…",…}`. */
export function pinoLogger(options: PinoLoggerOptions = {}): Logger {
  const destination =
    options.destination ??
    ((options.pretty ?? process.stderr.isTTY === true)
      ? prettyDestination(process.stderr, process.stderr.hasColors?.() === true)
      : stderrDestination());
  const root = pino(
    {
      level: options.level ?? LOG_LEVEL_DEFAULT,
      // No pid or hostname on every line: a cluster's lines carry the worker's id instead.
      base: null,
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
    },
    destination,
  );
  return wrap(root);
}

function wrap(pinoLogger: pino.Logger): Logger {
  return {
    debug: (message, fields) => pinoLogger.debug(fields ?? {}, message),
    info: (message, fields) => pinoLogger.info(fields ?? {}, message),
    warn: (message, fields) => pinoLogger.warn(fields ?? {}, message),
    error: (message, fields) => pinoLogger.error(fields ?? {}, message),
    child: (fields) => wrap(pinoLogger.child(fields)),
  };
}

/** The logger RuntimeOptions ask for: theirs, else lines to their callback, else pino on stderr. */
export function runtimeLogger(options: {
  readonly logger?: Logger;
  readonly log?: (line: string) => void;
  readonly logLevel?: LogLevel;
}): Logger {
  if (options.logger !== undefined) return options.logger;
  if (options.log !== undefined) return lineLogger(options.log, options.logLevel);
  return pinoLogger(options.logLevel === undefined ? {} : { level: options.logLevel });
}
