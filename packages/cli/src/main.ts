// The eddy command line. Each command lives in its own module under commands/;
// this file only dispatches and turns usage errors into exit code 2.

import { StartupError } from "@eddy/runtime";
import { checkpointsCommand, savepointCommand } from "./commands/checkpoints.ts";
import { deadLettersCommand } from "./commands/dead-letters.ts";
import { devCommand } from "./commands/dev.ts";
import { ConfigurationError, runCommand } from "./commands/run.ts";
import { sendCommand } from "./commands/send.ts";
import { serveCommand } from "./commands/serve.ts";
import { CommandError, UsageError } from "./usage.ts";

const USAGE = `Usage: eddy <command> [options]

Commands:
  run <module.yaml>... [--state-dir DIR] [--host H] [--failure-policy retry|dead-letter|stop]
      [--token-file F] [--retention 24h]
      Run the embedded runtime on StateFun module files: durable state in DIR
      (default ./eddy-state), exactly-once across crashes. Ingress and egress
      listen on 127.0.0.1 unless --host says otherwise; with a token (the file's
      content, or EDDY_TOKEN) they answer only Authorization: Bearer <token>.
      --retention: how long idempotency keys and request-reply answers are kept.
      Checkpoints: --checkpoints URL (file:///dir, s3://bucket/prefix?endpoint=…,
      gs://bucket/prefix) [--checkpoint-interval 10s] [--checkpoint-retain 3]
      [--ack-after-checkpoint]: incremental checkpoints of all state to blob
      storage; started on an empty state directory, Eddy restores the newest one
      that verifies. --ack-after-checkpoint: HTTP ingress answers only once a
      checkpoint holds the message (it survives the loss of the disk).
  dev <functions.ts> --module <module.yaml> [--state-dir DIR] [--host H] [--token-file F]
      [--retention 24h] [--checkpoints URL ...as for run]
      The runtime with your TypeScript functions in-process (no HTTP hop);
      saving the functions file reloads it.
  dead-letters list [--state-dir DIR] [--json]
  dead-letters replay <number>... | --all [--state-dir DIR]
      List what the failure policy set aside (works while Eddy runs), or queue
      it for delivery at the next start (Eddy must be stopped).
  checkpoints list|verify [ID] --checkpoints URL [--json]
  checkpoints restore <ID|NAME> --checkpoints URL [--state-dir DIR]
  checkpoints create [--state-dir DIR] [--checkpoints URL]
  savepoint <NAME> [--state-dir DIR] [--checkpoints URL]
      List the checkpoints and savepoints a store holds; verify that they would
      restore (every file's size and SHA-256); restore one into an empty state
      directory; take a checkpoint or a named savepoint (never deleted by
      retention) now, through the Eddy running on DIR, or directly when none is.
  send <namespace/type/id> <value> [--type T] [--wait S] [--idempotency-key K]
       [--ingress URL] [--token-file F]
      Send a message through a running Eddy's HTTP ingress (default
      http://127.0.0.1:8090/); with --wait, print the function's reply.
      The value is a string, or a value of type T (42, true, JSON).
  serve <functions.ts> [--port N] [--host H]
      Serve the stateful functions a module exports over HTTP, speaking the
      StateFun 3.x protocol (default http://127.0.0.1:8000/).

Options:
  -h, --help     Show this help
  -v, --version  Show the version
`;

const commands: Record<string, (args: string[]) => Promise<void>> = {
  checkpoints: checkpointsCommand,
  "dead-letters": deadLettersCommand,
  dev: devCommand,
  run: runCommand,
  savepoint: savepointCommand,
  send: sendCommand,
  serve: serveCommand,
};

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  if (command === undefined || command === "-h" || command === "--help" || command === "help") {
    process.stdout.write(USAGE);
    return command === undefined ? 2 : 0;
  }
  if (command === "-v" || command === "--version") {
    const pkg = (await import("../package.json", { with: { type: "json" } })).default;
    process.stdout.write(`eddy ${pkg.version}\n`);
    return 0;
  }
  const run = commands[command];
  if (run === undefined) {
    process.stderr.write(`eddy: unknown command "${command}"\n\n${USAGE}`);
    return 2;
  }
  try {
    await run(rest);
    return 0;
  } catch (error) {
    // node:util parseArgs refuses unknown options and missing values with a TypeError whose code says so.
    const parseError = String((error as NodeJS.ErrnoException).code ?? "").startsWith("ERR_PARSE_ARGS_");
    if (error instanceof UsageError || parseError) {
      process.stderr.write(`eddy ${command}: ${(error as Error).message}\n\n${USAGE}`);
      return 2;
    }
    if (error instanceof ConfigurationError || error instanceof CommandError || error instanceof StartupError) {
      process.stderr.write(`eddy ${command}: ${error.message}\n`);
      return 1;
    }
    throw error;
  }
}

process.exitCode = await main(process.argv.slice(2));
