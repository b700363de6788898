// `eddy serve <functions.ts>`: loads a module, serves every stateful function it exports
// (directly or in an exported array) until SIGINT/SIGTERM.
import { resolve } from "node:path";
import { pathToFileURL } from "node:url";
import { parseArgs } from "node:util";
import { createEndpoint, exportedFunctions, serve } from "@eddy/sdk";
import { CommandError, UsageError } from "../usage.ts";

function parsePort(text: string | undefined): number {
  if (text === undefined) return 8000;
  const port = Number(text);
  if (!Number.isInteger(port) || port < 0 || port > 65535)
    throw new UsageError(`--port: "${text}" is not a port number`);
  return port;
}

export async function serveCommand(args: string[]): Promise<void> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: { port: { type: "string", short: "p" }, host: { type: "string" } },
  });
  const [modulePath, ...extra] = positionals;
  if (modulePath === undefined) throw new UsageError("give the module that exports your functions");
  if (extra.length > 0) throw new UsageError(`unexpected arguments: ${extra.join(" ")}`);
  const port = parsePort(values.port);

  const url = pathToFileURL(resolve(modulePath)).href;
  const module = (await import(url)) as Record<string, unknown>;
  const functions = exportedFunctions(module);
  if (functions.length === 0) {
    throw new UsageError(
      `${modulePath} exports no stateful functions (define them with statefulFunction() and export them)`,
    );
  }
  const host = values.host ?? "127.0.0.1";
  let server: Awaited<ReturnType<typeof serve>>;
  try {
    server = await serve(createEndpoint(functions), { port, host });
  } catch (error) {
    // The port is taken, or the address is not this machine's: the user's to change.
    if ((error as NodeJS.ErrnoException).syscall === "listen") {
      throw new CommandError(`${(error as Error).message} (--port and --host choose another)`);
    }
    throw error;
  }
  process.stdout.write(`eddy: serving ${functions.map((fn) => fn.typename).join(", ")} at ${server.url}\n`);

  await new Promise<void>((done) => {
    const stop = (signal: NodeJS.Signals) => {
      process.stdout.write(`eddy: ${signal}, closing\n`);
      server.close().then(done, done);
    };
    process.once("SIGINT", stop);
    process.once("SIGTERM", stop);
  });
}
