// Eddy's log as the tests read it: `eddy run` and `eddy dev` write JSON lines to stderr (one
// record each: level, time, msg and the fields the line is about), beside the command's own
// `eddy: …` lines on stdout. These pick the records out of a process's mixed output.

export interface LogRecord {
  readonly level: "debug" | "info" | "warn" | "error";
  readonly msg: string;
  readonly functionType?: string;
  readonly address?: string;
  readonly endpoint?: string;
  readonly connector?: string;
  readonly deadLetter?: string;
  readonly worker?: string;
  readonly repeated?: number;
}

/** The JSON log records in `output`, in order; other lines are skipped. */
export function logRecords(output: string): LogRecord[] {
  return output
    .split("\n")
    .filter((line) => line.startsWith("{") && line.endsWith("}"))
    .map((line) => JSON.parse(line) as LogRecord);
}

/** The messages of the JSON log records in `output`. */
export function logMessages(output: string): string[] {
  return logRecords(output).map((record) => record.msg);
}
