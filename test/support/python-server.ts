// Python servers for tests and examples: a script run with the StateFun Python SDK's
// virtualenv (.tools/python, made by scripts/ensure-python.sh) that listens on 127.0.0.1
// and prints its port as its first line. The server is a child of this process: close()
// ends it by its PID, and one left running when this process exits is killed then.
import assert from "node:assert/strict";
import { type ChildProcessByStdio, spawn, spawnSync } from "node:child_process";
import { once } from "node:events";
import { resolve } from "node:path";
import { createInterface } from "node:readline";
import type { Readable, Writable } from "node:stream";

const root = resolve(import.meta.dirname, "../..");
/** The interpreter of the virtualenv scripts/ensure-python.sh makes. */
export const VENV_PYTHON = resolve(root, ".tools/python/bin/python");

/** A first pip install from PyPI can take minutes; a ready virtualenv answers at once. */
const ENSURE_TIMEOUT_MS = 15 * 60_000;
const PORT_TIMEOUT_MS = 30_000;
/** How much of the server's stderr an error quotes. */
const LOG_QUOTED_CHARS_MAX = 4_000;

/** Runs scripts/ensure-python.sh (idempotent); throws with the reason if the SDK cannot be installed. */
export function ensurePython(): void {
  const ensure = spawnSync("sh", [resolve(root, "scripts/ensure-python.sh")], {
    cwd: root,
    stdio: ["ignore", "inherit", "inherit"],
    timeout: ENSURE_TIMEOUT_MS,
  });
  if (ensure.error !== undefined) throw new Error(`scripts/ensure-python.sh: ${ensure.error.message}`);
  if (ensure.status !== 0) throw new Error(`scripts/ensure-python.sh failed (exit ${ensure.status})`);
}

export interface PythonServer {
  readonly port: number;
  /** http://127.0.0.1:<port>/ */
  readonly url: string;
  /** What the server wrote to stderr so far. */
  log(): string;
  /** Closes its stdin and sends SIGTERM to its PID, then waits for it to exit. Idempotent. */
  close(): Promise<void>;
}

export interface PythonServerOptions {
  /** Arguments after the script, e.g. ["0"] for any free port. */
  readonly args?: readonly string[];
  readonly cwd?: string;
  /** Also copy its stderr to this process's stderr as it comes (default: only collected, for log()). */
  readonly echoStderr?: boolean;
}

const running = new Set<ChildProcessByStdio<Writable, Readable, Readable>>();
process.on("exit", () => {
  for (const child of running) child.kill("SIGKILL");
});

/**
 * Runs `script` with the virtualenv's Python (ensurePython() first) and resolves once it has
 * printed its port. Rejects, quoting its stderr, if it exits first or prints no port in 30 s.
 */
export async function startPythonServer(script: string, options: PythonServerOptions = {}): Promise<PythonServer> {
  ensurePython();
  const child = spawn(VENV_PYTHON, ["-B", script, ...(options.args ?? [])], {
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
  const name = `${script} ${(options.args ?? []).join(" ")}`.trim();
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
