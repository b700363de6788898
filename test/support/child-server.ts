// Starting a test server as a child process: on a free port of 127.0.0.1, in a temporary
// directory that holds its output, ready once something answers HTTP on the port. A port
// taken by someone else between the choice and the bind is retried with another. stop() ends
// that one child by its PID (SIGTERM, then SIGKILL) and removes its directory; children still
// running when the test process exits are killed.
import { type ChildProcess, spawn } from "node:child_process";
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { freePort } from "./ports.ts";

const READY_TIMEOUT_MS = 15_000;
const STOP_TIMEOUT_MS = 5_000;
const PROBE_INTERVAL_MS = 25;
/** A free port can be taken by someone else before the server binds it: try this many. */
const START_ATTEMPTS_MAX = 3;
/** How much of the server's output an error quotes. */
const OUTPUT_QUOTED_CHARS_MAX = 2_000;
/** What Go and Node servers print when the port is taken. */
const PORT_IN_USE = /address already in use|EADDRINUSE/i;

export interface ChildServer {
  /** http://127.0.0.1:<port> */
  readonly endpoint: string;
  /** Ends the server and removes its directory. Idempotent. */
  stop(): Promise<void>;
}

/** Children still running, killed if the test process exits without stopping them. */
const running = new Set<ChildProcess>();
process.on("exit", () => {
  for (const child of running) child.kill("SIGKILL");
});

/**
 * Spawns the command `command(directory, port)` gives until one binds its port, then waits
 * until it answers HTTP (`probeMethod`, GET by default). `name` is for errors.
 */
export async function startChildServer(
  name: string,
  command: (directory: string, port: number) => [string, string[]],
  probeMethod = "GET",
): Promise<ChildServer> {
  for (let attempt = 1; ; attempt++) {
    const directory = mkdtempSync(join(tmpdir(), `eddy-${name}-`));
    const port = await freePort();
    const [file, args] = command(directory, port);
    const logPath = join(directory, "server.log");
    const { exited, stop } = spawnInDirectory(file, args, directory, logPath);
    const endpoint = `http://127.0.0.1:${port}`;
    if (await waitUntilAnswering(endpoint, probeMethod, exited)) return { endpoint, stop };
    const output = readFileSync(logPath, "utf8").trim();
    await stop();
    if (attempt >= START_ATTEMPTS_MAX || !PORT_IN_USE.test(output)) {
      throw new Error(
        `${name} did not start on ${endpoint} (${file} ${args.join(" ")}):\n${output.slice(-OUTPUT_QUOTED_CHARS_MAX)}`,
      );
    }
  }
}

/**
 * Runs `file` in `directory` (its output to `logPath`, the environment `env`, default the
 * test's), tracked so that it dies with the test process. `exited` resolves once it has ended
 * (or could not be run at all); `stop` ends it by its PID (SIGTERM, then SIGKILL) and removes
 * `directory`. Idempotent.
 */
export function spawnInDirectory(
  file: string,
  args: readonly string[],
  directory: string,
  logPath: string,
  env: NodeJS.ProcessEnv = process.env,
): { readonly exited: Promise<void>; stop(): Promise<void> } {
  const log = openSync(logPath, "w");
  const child = spawn(file, args, { cwd: directory, env, stdio: ["ignore", log, log] });
  closeSync(log);
  running.add(child);
  // "error": the binary could not be run at all, and then there is no "exit".
  const exited = new Promise<void>((resolve) => {
    child.once("exit", () => resolve());
    child.once("error", () => resolve());
  });
  void exited.then(() => running.delete(child));
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null && child.pid !== undefined) {
      process.kill(child.pid, "SIGTERM");
      const timedOut = await Promise.race([exited.then(() => false), sleep(STOP_TIMEOUT_MS, true, { ref: false })]);
      if (timedOut && child.exitCode === null && child.signalCode === null) {
        process.kill(child.pid, "SIGKILL");
        await exited;
      }
    }
    rmSync(directory, { recursive: true, force: true });
  };
  return { exited, stop };
}

/** True once something answers HTTP on `endpoint`; false if the process exits or READY_TIMEOUT_MS passes. */
async function waitUntilAnswering(endpoint: string, method: string, exited: Promise<void>): Promise<boolean> {
  let gone = false;
  void exited.then(() => {
    gone = true;
  });
  const deadline = Date.now() + READY_TIMEOUT_MS;
  while (!gone && Date.now() < deadline) {
    try {
      const response = await fetch(endpoint, { method, signal: AbortSignal.timeout(1_000) });
      await response.body?.cancel();
      return true;
    } catch {
      await sleep(PROBE_INTERVAL_MS);
    }
  }
  return false;
}
