// The eddy command line. Each command lives in its own module under commands/;
// this file dispatches, answers --help for every command, and turns the errors a user can
// cause into one line: usage errors exit 2, the others 1. An error of any other class is
// a bug in Eddy and keeps its stack.

import { asksForHelp, commandUsage, INDEX } from "./help.ts";
import { quietOnClosedPipe } from "./output.ts";
import { CommandError, UsageError } from "./usage.ts";

type Command = (args: string[]) => Promise<void>;

// Each command's module is loaded when that command runs: the runtime takes about a second to
// load, which `eddy state`, `eddy top`, `eddy send` and `--help` do without.
const commands: Record<string, () => Promise<Command>> = {
  checkpoints: async () => (await import("./commands/checkpoints.ts")).checkpointsCommand,
  "dead-letters": async () => (await import("./commands/dead-letters.ts")).deadLettersCommand,
  dev: async () => (await import("./commands/dev.ts")).devCommand,
  run: async () => (await import("./commands/run.ts")).runCommand,
  savepoint: async () => (await import("./commands/checkpoints.ts")).savepointCommand,
  send: async () => (await import("./commands/send.ts")).sendCommand,
  serve: async () => (await import("./commands/serve.ts")).serveCommand,
  state: async () => (await import("./commands/state.ts")).stateCommand,
  top: async () => (await import("./commands/top.ts")).topCommand,
};

/** Errors that say what the user (or the user's environment) got wrong: printed in one line. */
async function isKnownError(error: unknown): Promise<boolean> {
  if (error instanceof CommandError) return true;
  // The runtime's own: loaded here only when an error is not the CLI's.
  const { BlobStoreError, DeadLetterError, StartupError } = await import("@eddy/runtime");
  const { ConfigurationError, StoppedError } = await import("./commands/run.ts");
  return (
    error instanceof ConfigurationError ||
    error instanceof StoppedError ||
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
  const load = commands[command];
  if (load === undefined) {
    process.stderr.write(`eddy: unknown command "${command}"\n\n${INDEX}`);
    return 2;
  }
  if (asksForHelp(rest)) {
    process.stdout.write(commandUsage(command) ?? INDEX);
    return 0;
  }
  try {
    await (await load())(rest);
    return 0;
  } catch (error) {
    // node:util parseArgs refuses unknown options and missing values with a TypeError whose code says so.
    const parseError = String((error as NodeJS.ErrnoException).code ?? "").startsWith("ERR_PARSE_ARGS_");
    if (error instanceof UsageError || parseError) {
      process.stderr.write(`eddy ${command}: ${(error as Error).message}\n(eddy ${command} --help shows its usage)\n`);
      return 2;
    }
    if (await isKnownError(error)) {
      process.stderr.write(`eddy ${command}: ${(error as Error).message}\n`);
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
