// The eddy command line. Each command lives in its own module under commands/;
// this file dispatches, answers --help for every command, and turns the errors a user can
// cause into one line: usage errors exit 2, the others 1. An error of any other class is
// a bug in Eddy and keeps its stack.

import { BlobStoreError, DeadLetterError, StartupError } from "@eddy/runtime";
import { checkpointsCommand, savepointCommand } from "./commands/checkpoints.ts";
import { deadLettersCommand } from "./commands/dead-letters.ts";
import { devCommand } from "./commands/dev.ts";
import { ConfigurationError, runCommand, StoppedError } from "./commands/run.ts";
import { sendCommand } from "./commands/send.ts";
import { serveCommand } from "./commands/serve.ts";
import { stateCommand } from "./commands/state.ts";
import { topCommand } from "./commands/top.ts";
import { asksForHelp, commandUsage, INDEX } from "./help.ts";
import { quietOnClosedPipe } from "./output.ts";
import { CommandError, UsageError } from "./usage.ts";

const commands: Record<string, (args: string[]) => Promise<void>> = {
  checkpoints: checkpointsCommand,
  "dead-letters": deadLettersCommand,
  dev: devCommand,
  run: runCommand,
  savepoint: savepointCommand,
  send: sendCommand,
  serve: serveCommand,
  state: stateCommand,
  top: topCommand,
};

/** Errors that say what the user (or the user's environment) got wrong: printed in one line. */
function isKnownError(error: unknown): error is Error {
  return (
    error instanceof ConfigurationError ||
    error instanceof StoppedError ||
    error instanceof CommandError ||
    error instanceof StartupError ||
    error instanceof DeadLetterError ||
    error instanceof BlobStoreError
  );
}

/** Node found no module to import: the functions file given, or a package it imports. */
function moduleNotFound(error: unknown): string | undefined {
  if ((error as NodeJS.ErrnoException).code !== "ERR_MODULE_NOT_FOUND") return undefined;
  // "imported from" names one of our files when the file on the command line is missing: not the user's concern.
  return (error as Error).message.replace(/ imported from \S*\/packages\/cli\/src\/\S*$/, "");
}

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  if (command === undefined || command === "-h" || command === "--help" || command === "help") {
    const usage = command === "help" && rest[0] !== undefined ? commandUsage(rest[0]) : undefined;
    process.stdout.write(usage ?? INDEX);
    return command === undefined ? 2 : 0;
  }
  if (command === "-v" || command === "--version") {
    const pkg = (await import("../package.json", { with: { type: "json" } })).default;
    process.stdout.write(`eddy ${pkg.version}\n`);
    return 0;
  }
  const run = commands[command];
  if (run === undefined) {
    process.stderr.write(`eddy: unknown command "${command}"\n\n${INDEX}`);
    return 2;
  }
  if (asksForHelp(rest)) {
    process.stdout.write(commandUsage(command) ?? INDEX);
    return 0;
  }
  try {
    await run(rest);
    return 0;
  } catch (error) {
    // node:util parseArgs refuses unknown options and missing values with a TypeError whose code says so.
    const parseError = String((error as NodeJS.ErrnoException).code ?? "").startsWith("ERR_PARSE_ARGS_");
    if (error instanceof UsageError || parseError) {
      process.stderr.write(`eddy ${command}: ${(error as Error).message}\n(eddy ${command} --help shows its usage)\n`);
      return 2;
    }
    if (isKnownError(error)) {
      process.stderr.write(`eddy ${command}: ${error.message}\n`);
      return 1;
    }
    const missing = moduleNotFound(error);
    if (missing !== undefined) {
      process.stderr.write(`eddy ${command}: ${missing}\n`);
      return 1;
    }
    throw error;
  }
}

quietOnClosedPipe();
process.exitCode = await main(process.argv.slice(2));
