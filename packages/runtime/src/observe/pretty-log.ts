// Readable log lines for a terminal: pino writes its JSON line here, and this turns it into
// `12:04:05.123 WARN  <message>  endpoint=… repeated=3` in the same call (no worker thread,
// no transport): lines are few, and a person is reading them. A field whose value the message
// already says is left out, so the line does not say a thing twice.
import type { DestinationStream } from "pino";

const LEVEL_COLORS: Readonly<Record<string, string>> = {
  debug: "\u001b[90m",
  info: "\u001b[32m",
  warn: "\u001b[33m",
  error: "\u001b[31m",
};
const DIM = "\u001b[2m";
const RESET = "\u001b[0m";

/** Fields pino writes on every line; the rest are the line's own. */
const FRAMING = new Set(["level", "time", "msg"]);

export function prettyLine(json: string, colors: boolean): string {
  let record: Record<string, unknown>;
  try {
    record = JSON.parse(json) as Record<string, unknown>;
  } catch {
    return json.endsWith("\n") ? json : `${json}\n`; // not ours: as it came
  }
  const level = String(record.level ?? "");
  const message = String(record.msg ?? "");
  const time = typeof record.time === "string" ? record.time.slice(11, 23) : "";
  const extras: string[] = [];
  let stack: string | undefined;
  for (const [key, value] of Object.entries(record)) {
    if (FRAMING.has(key) || value === undefined) continue;
    if (key === "stack") {
      stack = String(value);
      continue;
    }
    const text = typeof value === "string" ? value : JSON.stringify(value);
    if (saysAlready(message, text)) continue;
    extras.push(`${key}=${text}`);
  }
  const label = level.toUpperCase().padEnd(5);
  const shown = colors ? `${LEVEL_COLORS[level] ?? ""}${label}${RESET}` : label;
  const tail = extras.length === 0 ? "" : colors ? `  ${DIM}${extras.join(" ")}${RESET}` : `  ${extras.join(" ")}`;
  return `${time} ${shown} ${message}${tail}\n${stack === undefined ? "" : `${stack}\n`}`;
}

/** The message names `text` already: as a part of it, or a number as a word of its own. */
function saysAlready(message: string, text: string): boolean {
  return /^\d+$/.test(text) ? new RegExp(`(^|\\D)${text}(\\D|$)`).test(message) : message.includes(text);
}

/** A pino destination that writes readable lines to `stream` (a terminal). */
export function prettyDestination(stream: { write(text: string): unknown }, colors: boolean): DestinationStream {
  return { write: (json: string) => void stream.write(prettyLine(json, colors)) };
}
