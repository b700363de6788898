// Servers for tests and examples that pick their own port: a program that listens on
// 127.0.0.1 and prints its port on stdout as its first line (the Python SDK server, the Go and
// Java SDK function servers). The server is a child of this process: close() ends it by its
// PID, and one left running when this process exits is killed then.
import assert from "node:assert/strict";
import { type ChildProcessByStdio, spawn } from "node:child_process";
import { once } from "node:events";
import { createInterface } from "node:readline";
import type { Readable, Writable } from "node:stream";

const PORT_TIMEOUT_MS = 30_000;
/** How much of the server's stderr an error quotes. */
const LOG_QUOTED_CHARS_MAX = 4_000;

export interface PortPrintingServer {
  readonly port: number;
  /** http://127.0.0.1:<port>/ */
  readonly url: string;
  /** What the server wrote to stderr so far. */
  log(): string;
  /** Closes its stdin and sends SIGTERM to its PID, then waits for it to exit. Idempotent. */
  close(): Promise<void>;
}

export interface PortPrintingServerOptions {
  /** How errors name the server (default: the command line). */
  readonly name?: string;
  readonly cwd?: string;
  /** Also copy its stderr to this process's stderr as it comes (default: only collected, for log()). */
  readonly echoStderr?: boolean;
}

const running = new Set<ChildProcessByStdio<Writable, Readable, Readable>>();
process.on("exit", () => {
  for (const child of running) child.kill("SIGKILL");
});

/**
 * Runs `file` with `args` and resolves once it has printed its port. Its stdin stays open
 * until close(), so a server that stops when stdin closes never outlives this process.
 * Rejects, quoting its stderr, if it exits first or prints no port in 30 s.
 */
export async function startPortPrintingServer(
  file: string,
  args: readonly string[],
  options: PortPrintingServerOptions = {},
): Promise<PortPrintingServer> {
  const child = spawn(file, args, {
    ...(options.cwd === undefined ? {} : { cwd: options.cwd }),
    stdio: ["pipe", "pipe", "pipe"],
  });
  running.add(child);
  let log = "";
  child.stderr.setEncoding("utf8").on("data", (chunk: string) => {
    log += chunk;
    if (options.echoStderr === true) process.stderr.write(chunk);
  });
  // Its stdout after the port is not read: drained, so a chatty server never blocks on a full pipe.
  const lines = createInterface({ input: child.stdout });
  const exited = once(child, "exit").then(() => {
    running.delete(child);
  });
  // "error" (it could not be run at all) comes without "exit".
  child.once("error", () => running.delete(child));
  const name = options.name ?? `${file} ${args.join(" ")}`.trim();
  const quoted = () => (log === "" ? "" : `\n--- its stderr ---\n${log.slice(-LOG_QUOTED_CHARS_MAX)}`);
  let timer: NodeJS.Timeout | undefined;
  const line = await new Promise<string>((resolveLine, reject) => {
    timer = setTimeout(
      () => reject(new Error(`${name} printed no port within ${PORT_TIMEOUT_MS} ms`)),
      PORT_TIMEOUT_MS,
    );
    lines.once("line", resolveLine);
    child.once("error", (error) => reject(new Error(`${name} could not be run: ${error.message}`)));
    child.once("exit", (code, signal) =>
      reject(new Error(`${name} exited (${signal ?? `code ${code}`}) before printing its port`)),
    );
  })
    .catch(async (error: Error) => {
      if (child.exitCode === null && child.signalCode === null && child.pid !== undefined) {
        process.kill(child.pid, "SIGKILL");
        await exited;
      }
      throw new Error(`${error.message}${quoted()}`);
    })
    .finally(() => clearTimeout(timer));
  lines.on("line", () => {});
  const port = Number(line.trim());
  assert.ok(Number.isInteger(port) && port > 0 && port < 65536, `${name} printed "${line}", not a port`);
  return {
    port,
    url: `http://127.0.0.1:${port}/`,
    log: () => log,
    async close() {
      child.stdin.end();
      if (child.exitCode === null && child.signalCode === null && child.pid !== undefined) {
        try {
          process.kill(child.pid, "SIGTERM");
        } catch (error) {
          // ESRCH: it has exited and Node has not reported it yet.
          if ((error as NodeJS.ErrnoException).code !== "ESRCH") throw error;
        }
      }
      await exited;
    },
  };
}
