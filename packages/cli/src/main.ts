// The eddy command line. Each command lives in its own module under commands/;
// this file only dispatches and turns usage errors into exit code 2.
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
  dev <functions.ts> --module <module.yaml> [--state-dir DIR] [--host H] [--token-file F]
      [--retention 24h]
      The runtime with your TypeScript functions in-process (no HTTP hop);
      saving the functions file reloads it.
  dead-letters list [--state-dir DIR] [--json]
  dead-letters replay <number>... | --all [--state-dir DIR]
      List what the failure policy set aside (works while Eddy runs), or queue
      it for delivery at the next start (Eddy must be stopped).
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
  "dead-letters": deadLettersCommand,
  dev: devCommand,
  run: runCommand,
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
    if (error instanceof UsageError) {
      process.stderr.write(`eddy ${command}: ${error.message}\n\n${USAGE}`);
      return 2;
    }
    if (error instanceof ConfigurationError || error instanceof CommandError) {
      process.stderr.write(`eddy ${command}: ${error.message}\n`);
      return 1;
    }
    throw error;
  }
}

process.exitCode = await main(process.argv.slice(2));
