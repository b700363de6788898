// --log-level, shared by eddy run and eddy dev: the least level the runtime logs (its JSON
// lines on stderr, readable ones on a terminal). Default info, or EDDY_LOG_LEVEL; a value that
// is not a level is a usage error naming where it came from and the levels there are.
import { isLogLevel, LOG_LEVELS, type LogLevel } from "@eddy/runtime";
import { UsageError } from "./usage.ts";

export const LOG_OPTIONS = {
  "log-level": { type: "string" },
} as const;

export function logLevelFlag(
  values: { readonly "log-level"?: string | undefined },
  env: NodeJS.ProcessEnv = process.env,
): { readonly logLevel?: LogLevel } {
  const flag = values["log-level"];
  if (flag !== undefined) return { logLevel: parseLevel("--log-level", flag) };
  const fromEnv = env.EDDY_LOG_LEVEL;
  return fromEnv === undefined || fromEnv === "" ? {} : { logLevel: parseLevel("EDDY_LOG_LEVEL", fromEnv) };
}

function parseLevel(where: string, text: string): LogLevel {
  if (!isLogLevel(text)) throw new UsageError(`${where}: "${text}" is not one of ${LOG_LEVELS.join(", ")}`);
  return text;
}
